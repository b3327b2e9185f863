import Foundation
import Testing
import VaneBundle
import VaneCore
import VaneTestSupport

/// Peak memory of reading hostile and large bundles, measured on a `vane model inspect` child
/// process (its own high-water mark): a bundle is inflated and parsed as it arrives, so a gzip
/// bomb costs nothing beyond an idle run and a large member costs about its own size once.
@Suite("Bundle reads: peak memory stays near the largest member", .serialized)
struct BundleMemoryTests {
  static let mebibyte = 1 << 20

  /// A `.tar.gz` of `bundle.json` then `member` announced at `size` bytes of zeros, written as
  /// concatenated gzip members (one compressed MiB of zeros repeated), so that building even a
  /// gigabyte costs the test nothing.
  static func write(
    to path: String,
    manifest: [UInt8],
    member: String,
    size: Int
  ) throws {
    precondition(size % Self.mebibyte == 0)
    var head = TarFixture.header("bundle.json", size: manifest.count) + manifest
    head += [UInt8](repeating: 0, count: (512 - manifest.count % 512) % 512)
    head += TarFixture.header(member, size: size)
    var out = try Gzip.compress(head, name: "head")
    let zeros = try Gzip.compress([UInt8](repeating: 0, count: Self.mebibyte), name: "zeros")
    for _ in 0 ..< (size / Self.mebibyte) { out += zeros }
    out += try Gzip.compress([UInt8](repeating: 0, count: 1024), name: "end")
    try Data(out).write(to: URL(fileURLWithPath: path))
  }

  /// A manifest listing `member`: `size` zero bytes.
  static func manifest(member: String, size: Int) throws -> [UInt8] {
    var hasher = SHA256()
    let zeros = [UInt8](repeating: 0, count: Self.mebibyte)
    for _ in 0 ..< (size / Self.mebibyte) { hasher.update(data: zeros) }
    let manifest = BundleManifest(
      id: "memory",
      created: "2026-12-05T00:00:00Z",
      symbols: ["BTCUSDT"],
      interval: "1h",
      task: .init(kind: "binary", classes: ["DOWN", "UP"], horizons: [1]),
      featureSet: .init(id: "v1", sha256: String(repeating: "0", count: 64), columns: ["a"]),
      files: [.init(path: member, sha256: hasher.finalize().hexString, size: size)]
    )
    return [UInt8](try manifest.encoded())
  }

  /// `vane model inspect path`, on the kernels already chosen (no restart), with one malloc
  /// arena: each thread that runs work gets an arena of its own otherwise, and a loaded machine
  /// starts more threads in one run than in another, which is noise about threads, not about
  /// what the reader keeps.
  static func inspect(_ path: String) async throws -> ChildProcess.Result {
    try await ChildProcess.run(
      VaneBinary.url.path,
      ["model", "inspect", path],
      environment: [
        "OPENBLAS_CORETYPE": ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "Haswell",
        "MALLOC_ARENA_MAX": "1",
      ]
    )
  }

  @Test(
    "A gzip bomb (a 1 GiB member) is refused at its header, and a 120 MiB member opens within 1.25× its size above an idle run"
  )
  func peaks() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-memory-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let small = directory.appendingPathComponent("small.tar.gz").path
    let bomb = directory.appendingPathComponent("bomb.tar.gz").path
    let large = directory.appendingPathComponent("large.tar.gz").path
    let member = "models/big.bin"
    try await BlockingPool.shared.run {
      try Self.write(
        to: small,
        manifest: try Self.manifest(member: member, size: Self.mebibyte),
        member: member,
        size: Self.mebibyte
      )
      try Self.write(
        to: bomb,
        manifest: try Self.manifest(member: member, size: Self.mebibyte),
        member: member,
        size: 1 << 30
      )
      try Self.write(
        to: large,
        manifest: try Self.manifest(member: member, size: 120 * Self.mebibyte),
        member: member,
        size: 120 * Self.mebibyte
      )
    }
    let idle = try await Self.inspect(small)
    #expect(idle.status == 0, "\(idle.stderr)")

    // Refused at its header, the 1 GiB member costs nothing: measured at 3 MiB *under* an idle
    // run (which opens its 1 MiB member), so 16 MiB is room for noise, and a reader that inflated
    // the member would cost hundreds of MiB.
    let refused = try await Self.inspect(bomb)
    #expect(
      refused.status == 2 && refused.stderr.contains("1073741824 bytes"),
      "\(refused.stderr)"
    )
    let bombCost = refused.peakResidentBytes - idle.peakResidentBytes
    #expect(bombCost < 16 * Self.mebibyte, "the bomb cost \(bombCost >> 20) MiB above an idle run")

    let opened = try await Self.inspect(large)
    #expect(opened.status == 0, "\(opened.stderr)")
    let largeCost = opened.peakResidentBytes - idle.peakResidentBytes
    #expect(
      largeCost < 150 * Self.mebibyte,
      "a 120 MiB member cost \(largeCost >> 20) MiB above an idle run (idle \(idle.peakResidentBytes >> 20) MiB)"
    )
  }
}
