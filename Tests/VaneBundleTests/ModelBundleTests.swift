import Foundation
import Testing
import VaneCore

@testable import VaneBundle

@Suite("Model bundles: written, opened, verified")
struct ModelBundleTests {
  static func manifest(id: String = "btc-1h") -> BundleManifest {
    BundleManifest(
      id: id,
      created: "2026-11-22T00:00:00Z",
      symbols: ["BTCUSDT"],
      interval: "1h",
      task: .init(kind: "binary", classes: ["DOWN", "UP"], horizons: [1]),
      featureSet: .init(id: "v1", sha256: "00", columns: ["a"]),
      models: [.init(name: "m", kind: .logisticRegression, file: "models/m.json", role: .single)],
      outOfFold: .init(file: "reports/oof.json")
    )
  }

  static let oof = OutOfFold(
    labels: [0, 1, 1],
    foldIds: [0, 0, 1],
    final: "m",
    models: ["m": .init(values: [0.9, 0.1, 0.2, 0.8, .nan, .nan], valuesAreLogits: false)]
  )

  static func temporary() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bundle-\(UUID().uuidString)"
    )
  }

  @Test(
    "Write then open: the same manifest, files and OOF predictions (NaN kept); the hash is of bundle.json's bytes"
  )
  func roundTrip() throws {
    let directory = Self.temporary()
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("b.tar.gz").path
    let files = [
      "models/m.json": Data("{\"w\":[1]}".utf8), "reports/oof.json": try Self.oof.encoded(),
    ]
    let (manifest, hash) = try ModelBundle.write(Self.manifest(), files: files, to: path)
    let bundle = try ModelBundle.open(path: path)
    #expect(
      bundle.manifest == manifest && bundle.manifestSHA256 == hash
        && SHA256.hash(data: bundle.manifestData).hexString == hash
    )
    #expect(try bundle.data("models/m.json") == files["models/m.json"])
    let oof = try bundle.outOfFold()
    #expect(oof.labels == Self.oof.labels && oof.models["m"]!.values[4].isNaN)
    // The same bundle unpacked into a directory opens to the same hash.
    let unpacked = directory.appendingPathComponent("unpacked")
    for entry in try Tar.read(
      try Gzip.decompress([UInt8](Data(contentsOf: URL(fileURLWithPath: path))), name: "b"),
      name: "b"
    ) {
      let file = unpacked.appendingPathComponent(entry.path)
      try FileManager.default.createDirectory(
        at: file.deletingLastPathComponent(),
        withIntermediateDirectories: true
      )
      try Data(entry.data).write(to: file)
    }
    #expect(try ModelBundle.open(path: unpacked.path).manifestSHA256 == hash)
    // A changed file, an extra file and a symbolic link are each refused.
    try Data("{\"w\":[2]}".utf8).write(to: unpacked.appendingPathComponent("models/m.json"))
    #expect { _ = try ModelBundle.open(path: unpacked.path) } throws: {
      ($0 as? VaneError)?.message.contains("does not match its checksum") == true
    }
    try files["models/m.json"]!.write(to: unpacked.appendingPathComponent("models/m.json"))
    try Data().write(to: unpacked.appendingPathComponent("models/extra"))
    #expect { _ = try ModelBundle.open(path: unpacked.path) } throws: {
      ($0 as? VaneError)?.message.contains("not listed") == true
    }
    try FileManager.default.removeItem(at: unpacked.appendingPathComponent("models/extra"))
    try FileManager.default.createSymbolicLink(
      atPath: unpacked.appendingPathComponent("models/link").path,
      withDestinationPath: "/etc/passwd"
    )
    #expect { _ = try ModelBundle.open(path: unpacked.path) } throws: {
      ($0 as? VaneError)?.message.contains("not a regular file") == true
    }
  }

  @Test(
    "Bad manifests are refused naming the key",
    arguments: [
      (#"{"schema_version": 2}"#, "not a bundle manifest"),
      ("not json", "not a bundle manifest"),
    ]
  )
  func badManifest(text: String, reason: String) {
    #expect { _ = try BundleManifest.decode(Data(text.utf8), name: "b") } throws: {
      ($0 as? VaneError)?.message.contains(reason) == true
    }
  }

  @Test("Manifest checks: version, id, classes, unsafe or unlisted paths")
  func manifestChecks() throws {
    func refused(_ change: (inout BundleManifest) -> Void, _ key: String) throws {
      var manifest = Self.manifest()
      manifest.files = [
        .init(path: "models/m.json", sha256: String(repeating: "0", count: 64), size: 1),
        .init(path: "reports/oof.json", sha256: String(repeating: "0", count: 64), size: 1),
      ]
      change(&manifest)
      let data = try manifest.encoded()
      #expect { _ = try BundleManifest.decode(data, name: "b") } throws: {
        ($0 as? VaneError)?.message.contains("bundle.json: \(key)") == true
      }
    }
    try refused({ $0.schemaVersion = 9 }, "schema_version")
    try refused({ $0.id = "a/b" }, "id")
    try refused({ $0.task.classes = ["UP"] }, "task.classes")
    try refused({ $0.files[0].path = "../m.json" }, "files[0].path")
    try refused({ $0.files[1].path = "models/m.json" }, "files[1].path")
    try refused({ $0.models[0].file = "models/other.json" }, "models[0].file")
    try refused({ $0.outOfFold = .init(file: "x") }, "out_of_fold.file")
  }
}
