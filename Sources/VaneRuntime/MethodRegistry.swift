public import GRPCCore
public import SwiftProtobuf
internal import VaneProto

/// Every Vane RPC with its request and response message types, so that tools like `vane call`
/// can turn JSON into a request for any method by name. A test checks this table against the
/// descriptor set, so it cannot fall behind the protos.
public struct MethodRegistry: Sendable {
  public struct Entry: Sendable {
    public let descriptor: MethodDescriptor
    public let input: any SwiftProtobuf.Message.Type
    public let output: any SwiftProtobuf.Message.Type

    init<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
      _ descriptor: MethodDescriptor,
      _ input: Input.Type,
      _ output: Output.Type
    ) {
      self.descriptor = descriptor
      self.input = input
      self.output = output
    }
  }

  public let entries: [Entry]

  /// Looks a method up as "Service/Method", "vane.v1.Service/Method" or "/vane.v1.Service/Method".
  public func entry(named name: String) -> Entry? {
    var name = name
    if name.hasPrefix("/") { name.removeFirst() }
    if !name.hasPrefix("vane.v1.") { name = "vane.v1." + name }
    return self.entries.first { $0.descriptor.fullyQualifiedMethod == name }
  }

  public static let vane = MethodRegistry(entries: VaneMethodTable.entries)
}

/// Serializes bytes that are already serialized: tools that convert JSON themselves.
public struct RawBytesSerializer: MessageSerializer {
  public init() {}
  public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }
}

/// Hands back the received bytes as they are.
public struct RawBytesDeserializer: MessageDeserializer {
  public init() {}
  public func deserialize<Bytes: GRPCContiguousBytes>(
    _ serializedMessageBytes: Bytes
  ) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}
