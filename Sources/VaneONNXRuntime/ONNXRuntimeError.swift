public import VaneCore

/// What goes wrong inside the engine, before it is given its node and op: load-time problems
/// become INVALID_ARGUMENT (or unsupported) errors naming the node, run-time ones name the node
/// and the input.
enum ONNXRuntimeError: Error {
  /// Bad input, a bad attribute, shapes that do not fit.
  case invalid(String)
  /// Valid ONNX the engine does not run (an op, a type, an attribute value).
  case unsupported(String)

  var message: String {
    switch self {
    case .invalid(let message), .unsupported(let message): message
    }
  }
}

extension VaneError {
  /// Marks an ``ONNXModel`` error as a model the engine does not support (an op, a type), as
  /// opposed to a broken one: the conformance report counts these as unsupported.
  public static let onnxUnsupportedPrefix = "unsupported: "

  /// Whether this error says the model uses something the engine does not run.
  public var isUnsupportedONNX: Bool { self.message.contains(Self.onnxUnsupportedPrefix) }
}
