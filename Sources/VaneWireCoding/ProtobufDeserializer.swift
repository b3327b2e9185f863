public import GRPCCore
public import SwiftProtobuf

/// Decodes a protobuf message from the wire in code specialised for its type, wherever GRPCCore
/// calls it from.
///
/// The counterpart of ``ProtobufSerializer``: a client reads its responses through GRPCCore's
/// type-erased response sequence, where GRPCProtobuf's generic deserializer runs unspecialised
/// (callgrind: 26.5k instructions to decode a `PredictResponse`). This one keeps a closure
/// specialised for `Message`, made where the type is known.
public struct ProtobufDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
  @usableFromInline
  let decode: @Sendable ([UInt8]) throws -> Message

  /// A deserializer for `Message`. Create it where `Message` is a concrete type (as generated
  /// code does), so that the closure it keeps is specialised.
  @inlinable
  public init() {
    self.decode = { bytes in try Message(serializedBytes: bytes) }
  }

  /// The message these bytes encode; errors are `invalidArgument`, as GRPCProtobuf's are.
  @inlinable
  public func deserialize<Bytes: GRPCContiguousBytes>(
    _ serializedMessageBytes: Bytes
  ) throws
    -> Message
  {
    do {
      return try self.decode(serializedMessageBytes.wireArray)
    } catch {
      throw RPCError(
        code: .invalidArgument,
        message: "Can't deserialize to message of type \(Message.self).",
        cause: error
      )
    }
  }
}
