import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneBundle

@Suite("Tar: what the writer writes the reader reads; hostile archives are refused")
struct TarTests {
  @Test("Write then read is the identity, long paths included")
  func roundTrip() throws {
    let long = String(repeating: "d/", count: 60) + "file.bin"
    let entries = [
      Tar.Entry(path: "bundle.json", data: Array("{}".utf8)),
      Tar.Entry(path: "models/a.json", data: Array(repeating: 7, count: 1_000)),
      Tar.Entry(path: "empty", data: []), Tar.Entry(path: long, data: Array(0 ..< 255)),
    ]
    let archive = try Tar.write(entries, modified: 1_700_000_000)
    #expect(archive.count % 512 == 0)
    #expect(try Tar.read(archive, name: "t") == entries)
    #expect(
      try Tar.read(try Gzip.decompress(try Gzip.compress(archive, name: "t"), name: "t"), name: "t")
        == entries
    )
  }
}

extension TarTests {
  static func header(
    _ path: String,
    type: Character = "0",
    size: Int = 0,
    linkTarget: String = ""
  ) -> [UInt8] {
    TarFixture.header(path, type: type, size: size, linkTarget: linkTarget)
  }

  static func archive(_ blocks: [UInt8]...) -> [UInt8] {
    blocks.flatMap { $0 } + [UInt8](repeating: 0, count: 1024)
  }

  static let data = Array("hello".utf8) + [UInt8](repeating: 0, count: 507)

  @Test(
    "Hostile archives are refused with the reason",
    arguments: [
      ("absolute path", archive(header("/etc/passwd", size: 5), data), "unsafe path"),
      ("parent directory", archive(header("models/../../x", size: 5), data), "unsafe path"),
      (
        "symbolic link", archive(header("models/a", type: "2", linkTarget: "/etc/passwd")),
        "is a link"
      ),
      ("hard link", archive(header("models/a", type: "1", linkTarget: "bundle.json")), "is a link"),
      ("device", archive(header("dev", type: "3")), "device or FIFO"),
      ("fifo", archive(header("pipe", type: "6")), "device or FIFO"),
      (
        "GNU long name", archive(header("././@LongLink", type: "L", size: 5), data),
        "unsupported entry type"
      ),
      (
        "duplicate", archive(header("a", size: 5), data, header("a", size: 5), data),
        "appears twice"
      ),
      ("truncated data", header("a", size: 5000) + data, "truncated"),
      ("truncated header", Array(header("a", size: 5).prefix(300)), "truncated archive"),
      ("not tar", [UInt8](repeating: 65, count: 1024), "checksum"),
    ] as [(String, [UInt8], String)]
  )
  func hostile(name: String, bytes: [UInt8], reason: String) {
    #expect {
      _ = try Tar.read(bytes, name: name)
    } throws: { error in
      guard let error = error as? VaneError, error.code == .failedPrecondition else { return false }
      return error.message.contains(reason)
    }
  }

  @Test("Corrupting one header byte is caught by the checksum")
  func corruptHeader() throws {
    var archive = try Tar.write([Tar.Entry(path: "a", data: Array("x".utf8))])
    archive[0] = UInt8(ascii: "b")
    #expect(throws: VaneError.self) { _ = try Tar.read(archive, name: "t") }
  }

  @Test("Limits: a file, the total and the entry count")
  func limits() throws {
    let archive = try Tar.write(
      (0 ..< 5).map { Tar.Entry(path: "f\($0)", data: [UInt8](repeating: 1, count: 1_000)) }
    )
    for limits in [
      ArchiveLimits(maximumFileBytes: 999), ArchiveLimits(maximumTotalBytes: 4_999),
      ArchiveLimits(maximumEntries: 4),
    ] {
      #expect { _ = try Tar.read(archive, limits: limits, name: "t") } throws: {
        ($0 as? VaneError)?.code == .resourceExhausted
      }
    }
    #expect(
      try Tar.read(
        archive,
        limits: ArchiveLimits(maximumFileBytes: 1_000, maximumTotalBytes: 5_000, maximumEntries: 5),
        name: "t"
      ).count == 5
    )
  }

  @Test(
    "Pax path headers (as Python's tarfile writes for long names) are honoured; directories are skipped"
  )
  func pax() throws {
    let long = String(repeating: "x", count: 300)
    let record = " path=\(long)\n"
    var length = record.utf8.count + 3
    if String(length).count + record.utf8.count != length {
      length = String(length + 1).count + record.utf8.count
    }
    let pax = Array("\(length)\(record)".utf8)
    let padded = pax + [UInt8](repeating: 0, count: (512 - pax.count % 512) % 512)
    let bytes = Self.archive(
      Self.header("models/", type: "5"),
      Self.header("PaxHeader", type: "x", size: pax.count),
      padded,
      Self.header("short", size: 5),
      Self.data
    )
    #expect(try Tar.read(bytes, name: "t") == [Tar.Entry(path: long, data: Array("hello".utf8))])
  }
}

@Suite("Streaming: archives and gzip read piece by piece, limits checked as headers arrive")
struct TarStreamingTests {
  static let entries = [
    Tar.Entry(path: "bundle.json", data: Array("{}".utf8)),
    Tar.Entry(
      path: "models/a.bin",
      data: (0 ..< 70_000).map { UInt8(truncatingIfNeeded: $0 * 31) }
    ),
    Tar.Entry(path: "empty", data: []),
    Tar.Entry(path: String(repeating: "d/", count: 60) + "f", data: Array(0 ..< 255)),
  ]

  /// `bytes` cut into pieces of the sizes `SeededRandom(seed)` draws (1 byte to 3 blocks).
  static func pieces(_ bytes: [UInt8], seed: UInt64) -> [[UInt8]] {
    var random = SeededRandom(seed: seed)
    var out: [[UInt8]] = [], start = 0
    while start < bytes.count {
      let size = Int.random(in: 1 ... 1_536, using: &random)
      out.append(Array(bytes[start ..< min(bytes.count, start + size)]))
      start += size
    }
    return out
  }

  @Test("Any cut into pieces reads the same entries as the whole archive", arguments: 1 ... 8)
  func pieces(seed: UInt64) throws {
    let archive = try Tar.write(Self.entries)
    var reader = Tar.Reader(name: "t")
    var read: [Tar.Entry] = []
    for piece in Self.pieces(archive, seed: seed) {
      try piece.withUnsafeBytes { raw in
        try reader.consume(raw) { read.append(Tar.Entry(path: $0, data: [UInt8]($1))) }
      }
    }
    try reader.finish()
    #expect(read == Self.entries && reader.ended)
  }

  @Test("Gzip inflated piece by piece, members concatenated, equals the whole", arguments: 1 ... 4)
  func inflate(seed: UInt64) throws {
    let archive = try Tar.write(Self.entries)
    let half = archive.count / 2
    // Two gzip members, as `cat a.gz b.gz` makes.
    let compressed =
      try Gzip.compress(Array(archive[..<half]), name: "t")
      + Gzip.compress(Array(archive[half...]), name: "t")
    let inflater = try GzipInflater(name: "t")
    var out: [UInt8] = []
    for piece in Self.pieces(compressed, seed: seed) {
      try piece.withUnsafeBytes { raw in try inflater.inflate(raw) { out += $0 } }
    }
    try inflater.finish()
    #expect(out == archive)
    #expect(try Gzip.decompress(compressed, name: "t") == archive)
    // Cut short: the last member never ends.
    let truncated = try GzipInflater(name: "t")
    try compressed.dropLast(9).withUnsafeBytes { raw in try truncated.inflate(raw) { _ in } }
    #expect { try truncated.finish() } throws: {
      ($0 as? VaneError)?.message.contains("truncated") == true
    }
  }

  @Test(
    "A member over the limits is refused when its header arrives, before any of its bytes",
    arguments: [
      (TarTests.header("huge", size: 1 << 30), ArchiveLimits(), "1073741824 bytes"),
      (
        TarTests.header("b", size: 600),
        ArchiveLimits(maximumFileBytes: 1_000, maximumTotalBytes: 1_000),
        "content exceeds"
      ),
    ]
  )
  func refusedAtHeader(header: [UInt8], limits: ArchiveLimits, reason: String) throws {
    var reader = Tar.Reader(limits: limits, name: "t")
    let first = TarTests.header("a", size: 500) + [UInt8](repeating: 1, count: 512)
    try first.withUnsafeBytes { raw in try reader.consume(raw) { _, _ in } }
    // Only the header: nothing of the member itself has been given.
    #expect {
      try header.withUnsafeBytes { raw in try reader.consume(raw) { _, _ in } }
    } throws: {
      ($0 as? VaneError)?.code == .resourceExhausted
        && ($0 as? VaneError)?.message.contains(reason) == true
    }
  }
}
