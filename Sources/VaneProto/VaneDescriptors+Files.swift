// Hand-written helpers over the generated descriptor set (Generated/DescriptorSet.swift).

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import SwiftProtobuf

extension VaneDescriptors {
  /// Why the embedded descriptor set could not be read (a broken `make protos` output).
  public enum DescriptorSetError: Error, Equatable {
    /// `fileDescriptorSetBase64` is not valid base64.
    case invalidBase64
    /// The bytes are not a well-formed FileDescriptorSet.
    case malformedDescriptorSet(String)
  }

  /// Protobuf package of every Vane API file.
  public static let protoPackage = "vane.v1"

  /// Every file of the set, in protoc's dependency order (imports first): the
  /// google/protobuf well-known types the API imports, then the vane/v1 files.
  public static func fileDescriptorProtos() throws -> [Google_Protobuf_FileDescriptorProto] {
    try decoded.get().protos
  }

  /// The exact serialized bytes of each FileDescriptorProto, as protoc wrote them,
  /// in the same order as `fileDescriptorProtos()`.
  ///
  /// Includes the well-known types (google/protobuf/*.proto). A C++ generated
  /// pool linked with libprotobuf already holds those, and adding a file twice
  /// aborts: use `serializedVaneFiles()` there.
  public static func serializedFiles() throws -> [[UInt8]] {
    try decoded.get().files.map(\.bytes)
  }

  /// Serialized bytes of the Vane API files only (package `vane.v1`), dependencies first.
  public static func serializedVaneFiles() throws -> [[UInt8]] {
    try decoded.get().files.filter { $0.proto.package == protoPackage }.map(\.bytes)
  }

  // MARK: - Decoding (once)

  private struct File: Sendable {
    var proto: Google_Protobuf_FileDescriptorProto
    var bytes: [UInt8]
  }

  private struct Decoded: Sendable {
    var protos: [Google_Protobuf_FileDescriptorProto]
    var files: [File]
  }

  private static let decoded: Result<Decoded, DescriptorSetError> = {
    do throws(DescriptorSetError) {
      return .success(try decode())
    } catch {
      return .failure(error)
    }
  }()

  private static func decode() throws(DescriptorSetError) -> Decoded {
    guard let data = Data(base64Encoded: fileDescriptorSetBase64) else {
      throw .invalidBase64
    }
    let bytes = [UInt8](data)
    let set: Google_Protobuf_FileDescriptorSet
    do {
      set = try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
    } catch {
      throw .malformedDescriptorSet("\(error)")
    }
    let raw = try rawFileEntries(bytes)
    guard raw.count == set.file.count else {
      throw .malformedDescriptorSet("\(raw.count) raw entries for \(set.file.count) files")
    }
    return Decoded(
      protos: set.file,
      files: zip(set.file, raw).map { File(proto: $0, bytes: $1) }
    )
  }

  /// Splits FileDescriptorSet wire bytes into the payloads of its field 1
  /// (`repeated FileDescriptorProto file = 1`), skipping any other field.
  private static func rawFileEntries(_ bytes: [UInt8]) throws(DescriptorSetError) -> [[UInt8]] {
    var entries: [[UInt8]] = []
    var index = 0

    func varint() throws(DescriptorSetError) -> UInt64 {
      var value: UInt64 = 0
      var shift: UInt64 = 0
      while index < bytes.count, shift < 64 {
        let byte = bytes[index]
        index += 1
        value |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return value }
        shift += 7
      }
      throw .malformedDescriptorSet("truncated varint at byte \(index)")
    }

    func skip(_ count: UInt64) throws(DescriptorSetError) -> Range<Int> {
      guard count <= UInt64(bytes.count - index) else {
        throw .malformedDescriptorSet("field overruns the buffer at byte \(index)")
      }
      let range = index ..< (index + Int(count))
      index = range.upperBound
      return range
    }

    while index < bytes.count {
      let tag = try varint()
      switch (tag >> 3, tag & 0x7) {
      case (1, 2):
        entries.append(Array(bytes[try skip(try varint())]))
      case (_, 0):
        _ = try varint()
      case (_, 1):
        _ = try skip(8)
      case (_, 2):
        _ = try skip(try varint())
      case (_, 5):
        _ = try skip(4)
      default:
        throw .malformedDescriptorSet("unsupported wire type \(tag & 0x7) at byte \(index)")
      }
    }
    return entries
  }
}
