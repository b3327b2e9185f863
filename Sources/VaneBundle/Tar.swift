internal import Foundation
internal import VaneCore

/// Limits on what an archive may hold: a hostile bundle must not exhaust memory or disk.
public struct ArchiveLimits: Sendable {
  /// Largest single file.
  public var maximumFileBytes: Int
  /// All files together (also the gzip decompression limit).
  public var maximumTotalBytes: Int
  /// Most entries.
  public var maximumEntries: Int

  /// The defaults are far above any bundle Vane writes (a 300-tree XGBoost or the V8 MLP is a
  /// few MB) and low enough that refusing a gzip bomb costs at most 256 MiB of memory.
  public init(
    maximumFileBytes: Int = 128 << 20,
    maximumTotalBytes: Int = 256 << 20,
    maximumEntries: Int = 10_000
  ) {
    self.maximumFileBytes = maximumFileBytes
    self.maximumTotalBytes = maximumTotalBytes
    self.maximumEntries = maximumEntries
  }

  public static let `default` = ArchiveLimits()
}

/// POSIX ustar archives: the reader takes what `tar` and Python's `tarfile` write (ustar, GNU
/// and pax `path` headers) and refuses anything a bundle must not contain; the writer writes
/// plain, deterministic ustar.
public enum Tar {
  /// One regular file of an archive.
  public struct Entry: Sendable, Equatable {
    public var path: String
    public var data: [UInt8]

    public init(path: String, data: [UInt8]) {
      self.path = path
      self.data = data
    }
  }

  static let block = 512

  /// The regular files of an archive, in archive order; directories are checked and skipped.
  /// - Throws: FAILED_PRECONDITION naming the entry: a bad header checksum, a truncated
  ///   archive, an absolute path or one with `..`, a link, device or FIFO, an unknown entry
  ///   type, a duplicate path; RESOURCE_EXHAUSTED past `limits`.
  public static func read(
    _ bytes: [UInt8],
    limits: ArchiveLimits = .default,
    name: String
  ) throws -> [Entry] {
    var entries: [Entry] = []
    var seen: Set<String> = []
    var offset = 0
    var total = 0
    var paxPath: String?
    func fail(_ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(name): \(reason)")
    }
    while true {
      guard offset + Self.block <= bytes.count else {
        // Archives end with two zero blocks, but some writers stop after one or none.
        if offset == bytes.count { break }
        throw fail("truncated archive (a header is cut at byte \(offset))")
      }
      let header = bytes[offset ..< (offset + Self.block)]
      if header.allSatisfy({ $0 == 0 }) { break }
      guard let stored = Self.octal(header, 148, 8) else {
        throw fail("entry at byte \(offset): unreadable header checksum")
      }
      var sum = 0
      for (i, byte) in header.enumerated() { sum += (148 ..< 156).contains(i) ? 32 : Int(byte) }
      guard sum == stored else {
        throw fail(
          "entry at byte \(offset): header checksum mismatch (not a tar archive, or corrupt)"
        )
      }
      guard let size = Self.octal(header, 124, 12) else {
        throw fail("entry at byte \(offset): unreadable or too large size field")
      }
      let type = header[header.startIndex + 156]
      var path = Self.string(header, 0, 100)
      if Self.string(header, 257, 6).hasPrefix("ustar") {
        let prefix = Self.string(header, 345, 155)
        if !prefix.isEmpty { path = prefix + "/" + path }
      }
      if let long = paxPath {
        path = long
        paxPath = nil
      }
      let dataStart = offset + Self.block
      let padded = (size + Self.block - 1) / Self.block * Self.block
      guard size <= limits.maximumFileBytes else {
        throw VaneError(
          .resourceExhausted,
          "\(name): '\(path)' has \(size) bytes (limit \(limits.maximumFileBytes))"
        )
      }
      guard dataStart + size <= bytes.count else {
        throw fail("'\(path)': truncated (\(size) bytes announced)")
      }
      let data = Array(bytes[dataStart ..< (dataStart + size)])
      offset = min(dataStart + padded, bytes.count)
      switch type {
      case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
        let clean = try Self.safePath(path, name: name)
        guard seen.insert(clean).inserted else { throw fail("'\(clean)' appears twice") }
        total += size
        guard total <= limits.maximumTotalBytes else {
          throw VaneError(
            .resourceExhausted,
            "\(name): content exceeds \(limits.maximumTotalBytes) bytes"
          )
        }
        entries.append(Entry(path: clean, data: data))
        guard entries.count <= limits.maximumEntries else {
          throw VaneError(.resourceExhausted, "\(name): more than \(limits.maximumEntries) entries")
        }
      case UInt8(ascii: "5"):
        _ = try Self.safePath(path, name: name)
      case UInt8(ascii: "x"):
        paxPath = try Self.paxPath(data, name: name)
      case UInt8(ascii: "g"):
        break  // Global pax attributes (e.g. git's comment): nothing a bundle needs.
      case UInt8(ascii: "1"), UInt8(ascii: "2"):
        throw fail("'\(path)' is a link; a bundle holds regular files only")
      case UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6"):
        throw fail("'\(path)' is a device or FIFO; a bundle holds regular files only")
      default:
        throw fail("'\(path)' has unsupported entry type '\(Character(Unicode.Scalar(type)))'")
      }
    }
    return entries
  }

  /// A relative path without `.` or `..` components, NUL or a leading `/` (a trailing `/` of a
  /// directory is dropped).
  static func safePath(_ raw: String, name: String) throws -> String {
    var path = raw
    while path.hasPrefix("./") { path.removeFirst(2) }
    if path.hasSuffix("/") { path.removeLast() }
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0"),
      parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
    else {
      throw VaneError(
        .failedPrecondition,
        "\(name): unsafe path '\(raw)' (absolute, empty, or with '.' or '..' components)"
      )
    }
    return path
  }

  static func string(_ header: ArraySlice<UInt8>, _ at: Int, _ length: Int) -> String {
    let field = header[(header.startIndex + at) ..< (header.startIndex + at + length)]
    return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
  }

  /// An octal field (NUL- or space-terminated); nil when unreadable or in GNU base-256 form.
  static func octal(_ header: ArraySlice<UInt8>, _ at: Int, _ length: Int) -> Int? {
    let field = header[(header.startIndex + at) ..< (header.startIndex + at + length)]
    guard let first = field.first, first & 0x80 == 0 else { return nil }
    let digits = field.drop { $0 == 32 }.prefix { $0 != 0 && $0 != 32 }
    guard !digits.isEmpty, digits.count <= 11, digits.allSatisfy({ (48 ... 55).contains($0) })
    else { return digits.isEmpty ? 0 : nil }
    return digits.reduce(0) { $0 * 8 + Int($1 - 48) }
  }

  /// The `path` record of a pax extended header ("<length> path=<value>\n" records).
  static func paxPath(_ data: [UInt8], name: String) throws -> String? {
    var index = 0
    var path: String?
    while index < data.count {
      guard let space = data[index...].firstIndex(of: 32),
        let length = Int(String(decoding: data[index ..< space], as: UTF8.self)),
        length > 0, index + length <= data.count, data[index + length - 1] == 10
      else { throw VaneError(.failedPrecondition, "\(name): malformed pax header") }
      let record = String(decoding: data[(space + 1) ..< (index + length - 1)], as: UTF8.self)
      if record.hasPrefix("path=") { path = String(record.dropFirst(5)) }
      index += length
    }
    return path
  }

  /// A ustar archive of `entries` (mode 0644, owner 0, time `modified`), ending with two zero
  /// blocks.
  /// - Throws: INVALID_ARGUMENT for a path that is unsafe or does not fit ustar's 255 bytes.
  public static func write(_ entries: [Entry], modified: Int64 = 0) throws -> [UInt8] {
    var out: [UInt8] = []
    for entry in entries {
      let path = try Self.safePath(entry.path, name: "archive")
      let bytes = Array(path.utf8)
      var name = bytes, prefix: [UInt8] = []
      if bytes.count > 100 {
        // Split at a '/' so that the prefix fits 155 bytes and the rest 100.
        guard
          let cut = bytes.indices.last(where: {
            bytes[$0] == 47 && $0 <= 155 && bytes.count - $0 - 1 <= 100
          })
        else {
          throw VaneError.invalidArgument(
            field: "path",
            "'\(path)' is too long for a ustar archive"
          )
        }
        prefix = Array(bytes[..<cut])
        name = Array(bytes[(cut + 1)...])
      }
      var header = [UInt8](repeating: 0, count: Self.block)
      func put(_ value: [UInt8], _ at: Int) {
        for (i, b) in value.enumerated() { header[at + i] = b }
      }
      func octal(_ value: Int, _ at: Int, _ width: Int) {
        put(Array(String(value, radix: 8).leftPadded(to: width - 1).utf8), at)
      }
      put(name, 0)
      octal(0o644, 100, 8)
      octal(0, 108, 8)
      octal(0, 116, 8)
      octal(entry.data.count, 124, 12)
      octal(Int(max(modified, 0)), 136, 12)
      put(Array("        ".utf8), 148)
      header[156] = UInt8(ascii: "0")
      put(Array("ustar".utf8) + [0] + Array("00".utf8), 257)
      put(Array("vane".utf8), 265)
      put(Array("vane".utf8), 297)
      put(prefix, 345)
      let sum = header.reduce(0) { $0 + Int($1) }
      put(Array(String(sum, radix: 8).leftPadded(to: 6).utf8) + [0, 32], 148)
      out += header
      out += entry.data
      out += [UInt8](repeating: 0, count: (Self.block - entry.data.count % Self.block) % Self.block)
    }
    out += [UInt8](repeating: 0, count: 2 * Self.block)
    return out
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    self.count >= width ? self : String(repeating: "0", count: width - self.count) + self
  }
}
