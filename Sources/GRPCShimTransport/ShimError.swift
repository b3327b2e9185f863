public import GRPCCore
internal import CGRPCShim

/// An error reported by the C shim: the status code it chose and its message.
public struct ShimError: Error, CustomStringConvertible, Sendable {
  /// The gRPC status code that best describes the failure.
  public var code: Status.Code
  /// What went wrong, as the shim worded it.
  public var message: String
  /// What this layer was doing when it failed.
  public var operation: String

  public var description: String { "\(self.operation): \(self.message) (\(self.code))" }

  init(operation: String, _ error: vane_shim_error) {
    var error = error
    self.operation = operation
    self.code = Status.Code(rawValue: Int(error.code)) ?? .internalError
    self.message = withUnsafeBytes(of: &error.message) { raw in
      let bytes = raw.prefix { $0 != 0 }
      return String(decoding: bytes, as: UTF8.self)
    }
  }

  init(operation: String, code: Status.Code, message: String) {
    self.operation = operation
    self.code = code
    self.message = message
  }

  /// The error as the `RPCError` GRPCCore expects from a transport.
  var rpcError: RPCError {
    RPCError(
      code: RPCError.Code(self.code) ?? .internalError,
      message: self.description,
      cause: self
    )
  }

  /// Runs a shim call that reports failure through a `vane_shim_error`.
  static func check(
    _ operation: String,
    _ call: (UnsafeMutablePointer<vane_shim_error>) -> Int32
  ) throws(ShimError) {
    var error = vane_shim_error()
    if call(&error) != 0 { throw ShimError(operation: operation, error) }
  }
}

extension Status.Code {
  init(shimCode: Int32) {
    self = Status.Code(rawValue: Int(shimCode)) ?? .unknown
  }
}
