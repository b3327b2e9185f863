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
      Tar.Entry(path: "bundle.json", data: Array("{}".utf8)), Tar.Entry(path: "models/a.json", data: Array(repeating: 7, count: 1_000)),
      Tar.Entry(path: "empty", data: []), Tar.Entry(path: long, data: Array(0..<255)),
    ]
    let archive = try Tar.write(entries, modified: 1_700_000_000)
    #expect(archive.count % 512 == 0)
    #expect(try Tar.read(archive, name: "t") == entries)
    #expect(try Tar.read(try Gzip.decompress(try Gzip.compress(archive, name: "t"), name: "t"), name: "t") == entries)
  }
}
