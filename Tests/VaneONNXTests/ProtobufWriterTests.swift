import Foundation
import Testing

@testable import VaneONNX

/// The wire format against the encodings the protobuf documentation spells out
/// (https://protobuf.dev/programming-guides/encoding/).
@Suite("Protobuf wire writer")
struct ProtobufWriterTests {
  static func bytes(_ body: (inout ProtobufWriter) -> Void) -> [UInt8] {
    var writer = ProtobufWriter()
    body(&writer)
    return writer.bytes
  }

  @Test("Varints: 1, 127, 128, 150, 300, 2^63 and -1 (ten bytes)")
  func varints() {
    #expect(Self.bytes { $0.writeVarint(0) } == [0x00])
    #expect(Self.bytes { $0.writeVarint(1) } == [0x01])
    #expect(Self.bytes { $0.writeVarint(127) } == [0x7F])
    #expect(Self.bytes { $0.writeVarint(128) } == [0x80, 0x01])
    #expect(Self.bytes { $0.writeVarint(150) } == [0x96, 0x01])
    #expect(Self.bytes { $0.writeVarint(300) } == [0xAC, 0x02])
    #expect(
      Self.bytes { $0.writeVarint(1 << 63) } == [
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
      ]
    )
    #expect(
      Self.bytes { $0.writeInt64(field: 1, -1) } == [
        0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
      ]
    )
    // int32 is sign-extended to 64 bits, as protobuf writes it.
    #expect(
      Self.bytes { $0.writeInt32(field: 1, -2) } == [
        0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
      ]
    )
  }

  @Test(
    "The documentation's messages: Test1 a = 150, Test2 b = \"testing\", Test3 c = Test1, Test5 packed f = [3, 270, 86942]"
  )
  func documentationExamples() {
    #expect(Self.bytes { $0.writeInt32(field: 1, 150) } == [0x08, 0x96, 0x01])
    #expect(
      Self.bytes { $0.writeString(field: 2, "testing") } == [
        0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67,
      ]
    )
    #expect(
      Self.bytes { $0.writeMessage(field: 3) { $0.writeInt32(field: 1, 150) } } == [
        0x1A, 0x03, 0x08, 0x96, 0x01,
      ]
    )
    #expect(
      Self.bytes { $0.writePackedInt64s(field: 6, [3, 270, 86942]) } == [
        0x32, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05,
      ]
    )
    #expect(Self.bytes { $0.writePackedInt64s(field: 4, []) }.isEmpty)
  }

  @Test("Fixed-width values are little-endian IEEE 754 bits; tags carry the wire type")
  func fixedWidth() {
    #expect(Self.bytes { $0.writeFloat(field: 2, 1) } == [0x15, 0x00, 0x00, 0x80, 0x3F])
    #expect(
      Self.bytes { $0.writeDouble(field: 1, 1) } == [
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F,
      ]
    )
    #expect(
      Self.bytes { $0.writeFixed32(field: 1, 0x0102_0304) } == [0x0D, 0x04, 0x03, 0x02, 0x01]
    )
    #expect(
      Self.bytes { $0.writePackedFloats(field: 7, [1, -2]) } == [
        0x3A, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,
      ]
    )
    #expect(
      Self.bytes { $0.writePackedDoubles(field: 10, [0.5]) } == [
        0x52, 0x08, 0, 0, 0, 0, 0, 0, 0xE0, 0x3F,
      ]
    )
    #expect(Self.bytes { $0.writeBool(field: 16, true) } == [0x80, 0x01, 0x01])
    // Field 20 (AttributeProto.type) needs a two-byte key.
    #expect(Self.bytes { $0.writeInt32(field: 20, 7) } == [0xA0, 0x01, 0x07])
  }

  @Test(
    "ONNX messages byte for byte: an opset import, an INTS attribute, a tensor, a value info with a symbolic batch"
  )
  func onnxMessages() {
    let opset = ONNX.OperatorSet(domain: "ai.onnx.ml", version: 3)
    #expect(
      Self.bytes { opset.encode(into: &$0) } == [0x0A, 0x0A] + Array("ai.onnx.ml".utf8) + [
        0x10, 0x03,
      ]
    )

    let perm = ONNX.Attribute.ints("perm", [1, 0, 2])
    #expect(
      Self.bytes { perm.encode(into: &$0) } == [0x0A, 0x04] + Array("perm".utf8) + [
        0x42, 0x03, 0x01, 0x00, 0x02, 0xA0, 0x01, 0x07,
      ]
    )

    let axis = ONNX.Attribute.int("axis", 0)
    #expect(
      Self.bytes { axis.encode(into: &$0) } == [0x0A, 0x04] + Array("axis".utf8) + [
        0x18, 0x00, 0xA0, 0x01, 0x02,
      ]
    )

    let tensor = ONNX.Tensor.doubles("w", [1, 2], dims: [2, 1])
    let expectedTensor: [UInt8] =
      [0x0A, 0x02, 0x02, 0x01, 0x10, 0x0B, 0x42, 0x01, 0x77, 0x4A, 0x10]
      + [0, 0, 0, 0, 0, 0, 0xF0, 0x3F] + [0, 0, 0, 0, 0, 0, 0x00, 0x40]
    #expect(Self.bytes { tensor.encode(into: &$0) } == expectedTensor)

    let info = ONNX.ValueInfo(name: "x", elementType: .double, shape: [.parameter("N"), .value(3)])
    // name; type { tensor_type { elem_type 11; shape { dim { dim_param "N" } dim { dim_value 3 } } } }
    let shape: [UInt8] = [0x0A, 0x03, 0x12, 0x01, 0x4E, 0x0A, 0x02, 0x08, 0x03]
    let tensorType: [UInt8] = [0x08, 0x0B, 0x12, UInt8(shape.count)] + shape
    let type: [UInt8] = [0x0A, UInt8(tensorType.count)] + tensorType
    #expect(
      Self.bytes { info.encode(into: &$0) } == [0x0A, 0x01, 0x78, 0x12, UInt8(type.count)] + type
    )
  }

  @Test("A length over 127 takes a two-byte varint prefix")
  func longLength() {
    let text = String(repeating: "a", count: 200)
    let encoded = Self.bytes { $0.writeString(field: 1, text) }
    #expect(Array(encoded.prefix(3)) == [0x0A, 0xC8, 0x01])
    #expect(encoded.count == 203)
  }
}
