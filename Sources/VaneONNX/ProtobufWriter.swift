internal import Foundation

/// The protobuf wire format (https://protobuf.dev/programming-guides/encoding/), write side only:
/// just enough to serialise ONNX's messages without a generated onnx.proto.
///
/// Every `write…(field:…)` method appends one field: its tag (field number << 3 | wire type) and
/// its value. Scalars go out as varints (int32/int64/enum/bool: two's complement, so negative
/// values take ten bytes, as protobuf's int32/int64 do), fixed32/fixed64 little-endian
/// (float/double), or length-delimited (strings, bytes, nested messages, packed repeated scalars).
struct ProtobufWriter: Sendable {
  /// The wire types this writer emits (3 and 4, the deprecated groups, are never written).
  enum WireType: UInt64, Sendable {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5
  }

  /// What has been written so far.
  private(set) var bytes: [UInt8] = []

  init() {}

  /// The bytes written so far, as `Data`.
  var data: Data { Data(self.bytes) }

  // MARK: Raw encodings (no tag)

  /// A base-128 varint: seven bits per byte, least significant group first, the high bit set on
  /// every byte but the last.
  mutating func writeVarint(_ value: UInt64) {
    var rest = value
    while rest >= 0x80 {
      self.bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    self.bytes.append(UInt8(rest))
  }

  /// Four bytes, little-endian.
  mutating func writeRawFixed32(_ value: UInt32) {
    for shift in stride(from: 0, to: 32, by: 8) {
      self.bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
    }
  }

  /// Eight bytes, little-endian.
  mutating func writeRawFixed64(_ value: UInt64) {
    for shift in stride(from: 0, to: 64, by: 8) {
      self.bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
  }

  /// A field's key: `field << 3 | wireType`, as a varint.
  mutating func writeTag(field: Int, _ wireType: WireType) {
    precondition(field > 0 && field < 1 << 29, "protobuf field numbers are 1..<2^29")
    self.writeVarint(UInt64(field) << 3 | wireType.rawValue)
  }

  // MARK: Fields

  /// An int64 (or uint64 reinterpreted) field as a varint; negative values take ten bytes.
  mutating func writeInt64(field: Int, _ value: Int64) {
    self.writeTag(field: field, .varint)
    self.writeVarint(UInt64(bitPattern: value))
  }

  /// An int32 or enum field: sign-extended to 64 bits, as protobuf writes them.
  mutating func writeInt32(field: Int, _ value: Int32) {
    self.writeInt64(field: field, Int64(value))
  }

  mutating func writeBool(field: Int, _ value: Bool) {
    self.writeTag(field: field, .varint)
    self.writeVarint(value ? 1 : 0)
  }

  mutating func writeFixed32(field: Int, _ value: UInt32) {
    self.writeTag(field: field, .fixed32)
    self.writeRawFixed32(value)
  }

  mutating func writeFixed64(field: Int, _ value: UInt64) {
    self.writeTag(field: field, .fixed64)
    self.writeRawFixed64(value)
  }

  /// A float field: its IEEE 754 bits as fixed32.
  mutating func writeFloat(field: Int, _ value: Float) {
    self.writeFixed32(field: field, value.bitPattern)
  }

  /// A double field: its IEEE 754 bits as fixed64.
  mutating func writeDouble(field: Int, _ value: Double) {
    self.writeFixed64(field: field, value.bitPattern)
  }

  /// A bytes field: the length as a varint, then the bytes.
  mutating func writeBytes(field: Int, _ value: some Collection<UInt8>) {
    self.writeTag(field: field, .lengthDelimited)
    self.writeVarint(UInt64(value.count))
    self.bytes.append(contentsOf: value)
  }

  /// A string field: its UTF-8 bytes, length-delimited.
  mutating func writeString(field: Int, _ value: String) {
    self.writeBytes(field: field, Array(value.utf8))
  }

  /// An embedded message: `body` writes the message's fields into a fresh writer, which then goes
  /// out length-delimited.
  mutating func writeMessage(field: Int, _ body: (inout ProtobufWriter) -> Void) {
    var nested = ProtobufWriter()
    body(&nested)
    self.writeBytes(field: field, nested.bytes)
  }

  // MARK: Packed repeated scalars

  /// A packed repeated int64/int32/enum field: one length-delimited record of varints. Nothing
  /// is written for an empty list (an absent field and an empty one read the same).
  mutating func writePackedInt64s(field: Int, _ values: [Int64]) {
    guard !values.isEmpty else { return }
    var body = ProtobufWriter()
    for value in values { body.writeVarint(UInt64(bitPattern: value)) }
    self.writeBytes(field: field, body.bytes)
  }

  /// A packed repeated float field: one length-delimited record of fixed32 values.
  mutating func writePackedFloats(field: Int, _ values: [Float]) {
    guard !values.isEmpty else { return }
    var body = ProtobufWriter()
    body.bytes.reserveCapacity(values.count * 4)
    for value in values { body.writeRawFixed32(value.bitPattern) }
    self.writeBytes(field: field, body.bytes)
  }

  /// A packed repeated double field: one length-delimited record of fixed64 values.
  mutating func writePackedDoubles(field: Int, _ values: [Double]) {
    guard !values.isEmpty else { return }
    var body = ProtobufWriter()
    body.bytes.reserveCapacity(values.count * 8)
    for value in values { body.writeRawFixed64(value.bitPattern) }
    self.writeBytes(field: field, body.bytes)
  }
}
