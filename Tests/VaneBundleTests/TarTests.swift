import Foundation
import Testing
import VaneCore

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
  /// One ustar header block for `path` of `type` announcing `size` bytes, with a valid checksum.
  static func header(
    _ path: String,
    type: Character = "0",
    size: Int = 0,
    linkTarget: String = ""
  ) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, _ at: Int) {
      for (i, b) in text.utf8.enumerated() { block[at + i] = b }
    }
    put(path, 0)
    put("0000644", 100)
    put(String(size, radix: 8), 124)
    put("00000000000", 136)
    put("        ", 148)
    block[156] = type.asciiValue!
    put(linkTarget, 157)
    put("ustar", 257)
    block[262] = 0
    put("00", 263)
    let sum = block.reduce(0) { $0 + Int($1) }
    put(String(sum, radix: 8) + "\0 ", 148)
    return block
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
