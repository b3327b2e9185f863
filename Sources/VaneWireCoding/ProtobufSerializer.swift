public import GRPCCore
public import SwiftProtobuf

/// Encodes a protobuf message for the wire in code specialised for its type, wherever GRPCCore
/// calls it from.
///
/// This is the serializer the generated vane.v1 stubs name (`make protos` points the gRPC
/// generator here with its `GRPCProtobufModuleName` option); it behaves as GRPCProtobuf's type of
/// the same name. The difference is where the encoding is compiled. GRPCCore writes a server's
/// responses through a type-erased writer, where a generic serializer's body runs unspecialised:
/// SwiftProtobuf then walks the message through witness tables, field by field (callgrind, `vane
/// bench predictor --wire-only`: 13.6k instructions to size and write a `PredictResponse`). This
/// serializer is made where the message type is known (the generated registration and client
/// stubs), and keeps a closure specialised for that type; the type-erased caller only calls it.
public struct ProtobufSerializer<Message: SwiftProtobuf.Message>: MessageSerializer {
  @usableFromInline
  let encode: @Sendable (Message) throws -> [UInt8]

  /// A serializer for `Message`. Create it where `Message` is a concrete type (as generated code
  /// does), so that the closure it keeps is specialised.
  @inlinable
  public init() {
    self.encode = { message in try message.serializedBytes() }
  }

  /// The message's binary encoding; errors are `invalidArgument`, as GRPCProtobuf's are.
  @inlinable
  public func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
    let bytes: [UInt8]
    do {
      bytes = try self.encode(message)
    } catch {
      throw RPCError(
        code: .invalidArgument,
        message: "Can't serialize message of type \(Message.self).",
        cause: error
      )
    }
    return Bytes.wireBytes(bytes)
  }
}

extension GRPCContiguousBytes {
  /// `bytes` as the transport's byte type: the array itself where that is `[UInt8]` (the shim
  /// transport's), a copy otherwise.
  @inlinable
  static func wireBytes(_ bytes: [UInt8]) -> Self {
    // A metadata comparison, where `as?` would be a runtime dynamic cast on every call.
    if Self.self == [UInt8].self {
      return unsafeBitCast(bytes, to: Self.self)
    }
    var copy = Self(repeating: 0, count: bytes.count)
    copy.withUnsafeMutableBytes { target in
      bytes.withUnsafeBytes { source in target.copyMemory(from: source) }
    }
    return copy
  }

  /// These bytes as an array: themselves where the type is `[UInt8]`, a copy otherwise.
  @inlinable
  var wireArray: [UInt8] {
    if Self.self == [UInt8].self {
      return unsafeBitCast(self, to: [UInt8].self)
    }
    return self.withUnsafeBytes { [UInt8]($0) }
  }
}
