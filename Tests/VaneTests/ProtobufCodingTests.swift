import GRPCCore
import SwiftProtobuf
import Testing
import VaneProto
import VaneWireCoding

/// The coders the generated stubs use write SwiftProtobuf's bytes and read them back, through
/// the shim transport's `[UInt8]` and through any other byte type, and refuse what they cannot
/// decode as GRPCProtobuf's coders do.
@Suite("Protobuf coders")
struct ProtobufCodingTests {
  /// A transport byte type other than `[UInt8]`, to take the copying path.
  struct OtherBytes: GRPCContiguousBytes, Equatable {
    var storage: [UInt8]
    init(repeating byte: UInt8, count: Int) {
      self.storage = [UInt8](repeating: byte, count: count)
    }
    init<Bytes: Sequence>(_ sequence: Bytes) where Bytes.Element == UInt8 {
      self.storage = [UInt8](sequence)
    }
    var count: Int { self.storage.count }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
      try self.storage.withUnsafeBytes(body)
    }
    mutating func withUnsafeMutableBytes<R>(
      _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) rethrows -> R {
      try self.storage.withUnsafeMutableBytes(body)
    }
  }

  static let response = Vane_V1_PredictResponse.with {
    $0.model = .with {
      $0.modelID = "btc-direction"
      $0.version = "v7"
    }
    $0.pinned = true
    $0.predictions = [1, 4, 12].map { horizon in
      .with {
        $0.horizonBars = UInt32(horizon)
        $0.predictedClass = "up"
        $0.confidence = 0.5 + Double(horizon) / 100
        $0.resolveTime = .init(seconds: 1_700_000_000 + Int64(horizon) * 3600)
      }
    }
    $0.featureSetHash = String(repeating: "ab", count: 32)
    $0.predictionID = "p-42"
  }

  /// Calls the coders where the message type is a generic parameter, as GRPCCore's type-erased
  /// writers and sequences do.
  static func roundTrip<Message: SwiftProtobuf.Message, Bytes: GRPCContiguousBytes>(
    _ message: Message,
    as bytes: Bytes.Type
  ) throws -> (Bytes, Message) {
    let encoded: Bytes = try ProtobufSerializer<Message>().serialize(message)
    return (encoded, try ProtobufDeserializer<Message>().deserialize(encoded))
  }

  @Test("write → read is identity, with SwiftProtobuf's own bytes")
  func roundTripArray() throws {
    let (bytes, decoded) = try Self.roundTrip(Self.response, as: [UInt8].self)
    #expect(bytes == (try Self.response.serializedBytes() as [UInt8]))
    #expect(decoded == Self.response)
  }

  @Test("write → read through a byte type other than [UInt8]")
  func roundTripOtherBytes() throws {
    let (bytes, decoded) = try Self.roundTrip(Self.response, as: OtherBytes.self)
    #expect(bytes.storage == (try Self.response.serializedBytes() as [UInt8]))
    #expect(decoded == Self.response)
  }

  @Test("an empty message is zero bytes, and zero bytes decode to it")
  func empty() throws {
    let (bytes, decoded) = try Self.roundTrip(Vane_V1_PredictResponse(), as: [UInt8].self)
    #expect(bytes.isEmpty)
    #expect(decoded == Vane_V1_PredictResponse())
  }

  @Test(
    "bytes that are not the message are invalidArgument, naming its type",
    arguments: [
      // A length-delimited field whose length runs past the end.
      [0x0A, 0x7F, 0x01],
      // A varint that never ends.
      [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
      // Wire type 7 does not exist.
      [0x0F],
    ] as [[UInt8]]
  )
  func malformed(bytes: [UInt8]) throws {
    for input in [bytes, try Self.response.serializedBytes() + bytes] {
      let error = #expect(throws: RPCError.self) {
        try ProtobufDeserializer<Vane_V1_PredictResponse>().deserialize(input)
      }
      #expect(error?.code == .invalidArgument)
      #expect(error?.message.contains("Vane_V1_PredictResponse") == true)
      #expect(throws: RPCError.self) {
        try ProtobufDeserializer<Vane_V1_PredictResponse>().deserialize(OtherBytes(input))
      }
    }
  }
}
