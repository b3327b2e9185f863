public import Foundation
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
    var reader = Reader(limits: limits, name: name)
    var entries: [Entry] = []
    try bytes.withUnsafeBytes { raw in
      try reader.consume(raw) { entries.append(Entry(path: $0, data: [UInt8]($1))) }
    }
    try reader.finish()
    return entries
  }

  /// An archive read as it arrives, piece by piece: every limit is checked when an entry's
  /// header arrives, before any of its bytes, and each file's bytes are gathered once, into a
  /// buffer of the size its header announced. A bundle inflated through it never holds more
  /// than the files it keeps.
  public struct Reader {
    let limits: ArchiveLimits
    let name: String
    /// Bytes of the header being read (fewer than a block).
    private var header: [UInt8] = []
    /// The entry whose bytes are being read.
    private var member: Member?
    /// Padding bytes still to skip after the last member's data.
    private var padding = 0
    /// Archive bytes consumed, for messages.
    private var offset = 0
    private var seen: Set<String> = []
    private var total = 0
    private var paxPath: String?
    /// Whether the end-of-archive block has arrived (what follows is ignored).
    public private(set) var ended = false

    private struct Member {
      enum Kind { case file, pax, skipped }
      var path: String
      var kind: Kind
      var size: Int
      var remaining: Int
      var data: Data
    }

    /// Longest pax extended header read (a path record needs a few hundred bytes).
    static let maximumPaxBytes = 1 << 16

    public init(limits: ArchiveLimits = .default, name: String) {
      self.limits = limits
      self.name = name
    }

    private func fail(_ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(self.name): \(reason)")
    }

    /// Reads the next piece of the archive; `entry` receives each regular file (its safe path
    /// and bytes) once its last byte has arrived.
    /// - Throws: what ``Tar/read(_:limits:name:)`` throws, as soon as the offending header or
    ///   byte arrives; what `entry` throws.
    public mutating func consume(
      _ bytes: UnsafeRawBufferPointer,
      entry: (String, Data) throws -> Void
    ) throws {
      var index = 0
      while index < bytes.count, !self.ended {
        if var member = self.member {
          // Out of `self` while it grows, so its buffer is never shared (no copy on write).
          self.member = nil
          let take = min(member.remaining, bytes.count - index)
          if member.kind != .skipped {
            member.data.append(
              contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index ..< (index + take)])
            )
          }
          member.remaining -= take
          index += take
          self.offset += take
          if member.remaining == 0 {
            self.padding = (Tar.block - member.size % Tar.block) % Tar.block
            switch member.kind {
            case .file: try entry(member.path, member.data)
            case .pax: self.paxPath = try Tar.paxPath([UInt8](member.data), name: self.name)
            case .skipped: break
            }
          } else {
            self.member = member
          }
        } else if self.padding > 0 {
          let skip = min(self.padding, bytes.count - index)
          self.padding -= skip
          index += skip
          self.offset += skip
        } else {
          let take = min(Tar.block - self.header.count, bytes.count - index)
          self.header.append(contentsOf: bytes[index ..< (index + take)])
          index += take
          if self.header.count == Tar.block {
            try self.begin(entry: entry)
            self.offset += Tar.block
            self.header.removeAll(keepingCapacity: true)
          }
        }
      }
    }

    /// Checks a complete header and starts its entry.
    private mutating func begin(entry: (String, Data) throws -> Void) throws {
      let header = self.header[...]
      if header.allSatisfy({ $0 == 0 }) {
        self.ended = true
        return
      }
      let at = self.offset
      guard let stored = Tar.octal(header, 148, 8) else {
        throw self.fail("entry at byte \(at): unreadable header checksum")
      }
      var sum = 0
      for (i, byte) in header.enumerated() { sum += (148 ..< 156).contains(i) ? 32 : Int(byte) }
      guard sum == stored else {
        throw self.fail(
          "entry at byte \(at): header checksum mismatch (not a tar archive, or corrupt)"
        )
      }
      guard let size = Tar.octal(header, 124, 12) else {
        throw self.fail("entry at byte \(at): unreadable or too large size field")
      }
      let type = header[header.startIndex + 156]
      var path = Tar.string(header, 0, 100)
      if Tar.string(header, 257, 6).hasPrefix("ustar") {
        let prefix = Tar.string(header, 345, 155)
        if !prefix.isEmpty { path = prefix + "/" + path }
      }
      if let long = self.paxPath {
        path = long
        self.paxPath = nil
      }
      guard size <= self.limits.maximumFileBytes else {
        throw VaneError(
          .resourceExhausted,
          "\(self.name): '\(path.prefix(256))' has \(size) bytes (limit \(self.limits.maximumFileBytes))"
        )
      }
      let kind: Member.Kind
      switch type {
      case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
        path = try Tar.safePath(path, name: self.name)
        guard self.seen.insert(path).inserted else {
          throw self.fail("'\(path)' appears twice")
        }
        self.total += size
        guard self.total <= self.limits.maximumTotalBytes else {
          throw VaneError(
            .resourceExhausted,
            "\(self.name): content exceeds \(self.limits.maximumTotalBytes) bytes"
          )
        }
        guard self.seen.count <= self.limits.maximumEntries else {
          throw VaneError(
            .resourceExhausted,
            "\(self.name): more than \(self.limits.maximumEntries) entries"
          )
        }
        kind = .file
      case UInt8(ascii: "5"):
        _ = try Tar.safePath(path, name: self.name)
        kind = .skipped
      case UInt8(ascii: "x"):
        guard size <= Self.maximumPaxBytes else {
          throw self.fail("a pax header of \(size) bytes (at most \(Self.maximumPaxBytes))")
        }
        kind = .pax
      case UInt8(ascii: "g"):
        kind = .skipped  // Global pax attributes (e.g. git's comment): nothing a bundle needs.
      case UInt8(ascii: "1"), UInt8(ascii: "2"):
        throw self.fail("'\(path.prefix(256))' is a link; a bundle holds regular files only")
      case UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6"):
        throw self.fail(
          "'\(path.prefix(256))' is a device or FIFO; a bundle holds regular files only"
        )
      default:
        throw self.fail(
          "'\(path.prefix(256))' has unsupported entry type '\(Character(Unicode.Scalar(type)))'"
        )
      }
      let member = Member(
        path: path,
        kind: kind,
        size: size,
        remaining: size,
        data: Data(capacity: kind == .skipped ? 0 : size)
      )
      if size == 0 {
        switch kind {
        case .file: try entry(path, member.data)
        case .pax: self.paxPath = try Tar.paxPath([], name: self.name)
        case .skipped: break
        }
      } else {
        self.member = member
      }
    }

    /// Checks that the archive did not stop inside a header or a file.
    /// - Throws: FAILED_PRECONDITION naming where it was cut.
    public func finish() throws {
      if let member = self.member {
        throw self.fail("'\(member.path.prefix(256))': truncated (\(member.size) bytes announced)")
      }
      // Archives end with two zero blocks, but some writers stop after one or none.
      if !self.ended, !self.header.isEmpty {
        throw self.fail("truncated archive (a header is cut at byte \(self.offset))")
      }
    }
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
