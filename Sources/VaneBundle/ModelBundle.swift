public import Foundation
internal import VaneCore

/// A model bundle read from disk: a `.tar.gz` (or `.tar`) with `bundle.json` at its root, or
/// an unpacked directory. Opening checks the manifest and every listed file's size and
/// SHA-256, so what is read afterwards is exactly what the manifest (and its hash) names.
public struct ModelBundle: Sendable {
  public let manifest: BundleManifest
  /// The exact bytes of `bundle.json`, and their SHA-256 (hex): the hash blessings sign.
  public let manifestData: Data
  public let manifestSHA256: String
  private let files: [String: Data]

  /// Largest `bundle.json` read.
  public static let maximumManifestBytes = 16 << 20

  /// Opens and verifies a bundle.
  /// - Throws: INVALID_ARGUMENT for a relative path; NOT_FOUND when nothing is there;
  ///   FAILED_PRECONDITION for an unsafe archive, a bad manifest, a missing, extra or changed
  ///   file; RESOURCE_EXHAUSTED past `limits`.
  public static func open(path: String, limits: ArchiveLimits = .default) throws -> ModelBundle {
    guard path.hasPrefix("/") else {
      throw VaneError.invalidArgument(field: "path", "'\(path)' must be absolute")
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw VaneError(.notFound, "bundle \(path) does not exist")
    }
    var contents: [String: Data] = [:]
    // At most `concurrentReads` bundles in memory at once, each up to `maximumTotalBytes`.
    Self.readPermits.wait()
    defer { Self.readPermits.signal() }
    if isDirectory.boolValue {
      contents = try Self.readDirectory(path, limits: limits)
    } else {
      let attributes = try? FileManager.default.attributesOfItem(atPath: path)
      let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
      guard size <= limits.maximumTotalBytes else {
        throw VaneError(
          .resourceExhausted,
          "bundle \(path) has \(size) bytes (limit \(limits.maximumTotalBytes))"
        )
      }
      contents = try Self.readArchive(path, limits: limits)
    }
    guard let manifestData = contents.removeValue(forKey: "bundle.json") else {
      throw VaneError(.failedPrecondition, "\(path): no bundle.json at the root")
    }
    guard manifestData.count <= Self.maximumManifestBytes else {
      throw VaneError(
        .resourceExhausted,
        "\(path): bundle.json has \(manifestData.count) bytes (limit \(Self.maximumManifestBytes))"
      )
    }
    let manifest = try BundleManifest.decode(manifestData, name: path)
    for file in manifest.files {
      guard let data = contents[file.path] else {
        throw VaneError(
          .failedPrecondition,
          "\(path): \(file.path) is listed in bundle.json but missing"
        )
      }
      guard data.count == file.size, SHA256.hash(data: data).hexString == file.sha256.lowercased()
      else {
        throw VaneError(
          .failedPrecondition,
          "\(path): \(file.path) does not match its checksum in bundle.json (changed or corrupt)"
        )
      }
    }
    let listed = Set(manifest.files.map(\.path))
    if let extra = contents.keys.sorted().first(where: { !listed.contains($0) }) {
      throw VaneError(.failedPrecondition, "\(path): \(extra) is not listed in bundle.json")
    }
    return ModelBundle(
      manifest: manifest,
      manifestData: manifestData,
      manifestSHA256: SHA256.hash(data: manifestData).hexString,
      files: contents
    )
  }

  /// Bundles read at once, at most: each may hold up to `maximumTotalBytes` in memory. Callers
  /// run on the blocking pool; one past the bound waits there for a read to finish.
  public static let concurrentReads = 2
  private static let readPermits = DispatchSemaphore(value: Self.concurrentReads)

  /// The files of a `.tar.gz` or `.tar`, streamed: the file is read in 256 KiB pieces, inflated
  /// in 64 KiB pieces and parsed as it arrives, so a limit is checked when an entry's header
  /// arrives, before its bytes are inflated, and each file is gathered once.
  static func readArchive(_ path: String, limits: ArchiveLimits) throws -> [String: Data] {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw VaneError(.notFound, "bundle \(path) cannot be read")
    }
    defer { try? handle.close() }
    var contents: [String: Data] = [:]
    var reader = Tar.Reader(limits: limits, name: path)
    var inflater: GzipInflater?
    var first = true
    // What an archive within the limits inflates to at most: its files, a header and padding
    // per entry, and the end blocks. Past it, the rest is refused rather than inflated.
    let ceiling = limits.maximumTotalBytes + (limits.maximumEntries + 4) * 2 * Tar.block
    var inflated = 0
    func accept(_ piece: UnsafeRawBufferPointer) throws {
      inflated += piece.count
      guard inflated <= ceiling else {
        throw VaneError(.resourceExhausted, "\(path): decompresses to more than \(ceiling) bytes")
      }
      try reader.consume(piece) { contents[$0] = $1 }
    }
    do {
      while !reader.ended {
        let piece: Data
        do { piece = try handle.read(upToCount: 1 << 18) ?? Data() } catch {
          throw VaneError(.unavailable, "bundle \(path) cannot be read", cause: error)
        }
        if piece.isEmpty { break }
        if first {
          first = false
          if Gzip.isCompressed([UInt8](piece.prefix(2))) {
            inflater = try GzipInflater(name: path)
          }
        }
        try piece.withUnsafeBytes { raw in
          if let inflater {
            try inflater.inflate(raw) { try accept($0) }
          } else {
            try accept(raw)
          }
        }
      }
      // An archive that ended early leaves the rest of the stream unread.
      if let inflater, !reader.ended { try inflater.finish() }
    } catch let error as VaneError where error.code == .invalidArgument {
      // Corrupt compression is a bad bundle, as a bad archive is.
      throw VaneError(.failedPrecondition, error.message)
    }
    try reader.finish()
    return contents
  }

  /// Regular files under `root` by relative path; links are refused (they could leave it).
  static func readDirectory(_ root: String, limits: ArchiveLimits) throws -> [String: Data] {
    let manager = FileManager.default
    guard let walker = manager.enumerator(atPath: root) else {
      throw VaneError(.notFound, "bundle \(root) cannot be listed")
    }
    var contents: [String: Data] = [:]
    var total = 0
    while let relative = walker.nextObject() as? String {
      let full = root + "/" + relative
      let type = (try? manager.attributesOfItem(atPath: full))?[.type] as? FileAttributeType
      switch type {
      case .typeDirectory?: continue
      case .typeRegular?:
        let size =
          ((try? manager.attributesOfItem(atPath: full))?[.size] as? NSNumber)?.intValue ?? 0
        total += size
        guard size <= limits.maximumFileBytes, total <= limits.maximumTotalBytes,
          contents.count < limits.maximumEntries
        else {
          throw VaneError(
            .resourceExhausted,
            "bundle \(root): \(relative) goes past the size limits"
          )
        }
        guard let data = manager.contents(atPath: full) else {
          throw VaneError(.failedPrecondition, "bundle \(root): \(relative) cannot be read")
        }
        contents[relative] = data
      default:
        throw VaneError(
          .failedPrecondition,
          "bundle \(root): \(relative) is not a regular file (links, devices and FIFOs are refused)"
        )
      }
    }
    return contents
  }

  /// A listed file's bytes (verified when the bundle was opened).
  /// - Throws: NOT_FOUND when the manifest does not list it.
  public func data(_ path: String) throws -> Data {
    guard let data = self.files[path] else {
      throw VaneError(.notFound, "bundle \(self.manifest.id): no file \(path)")
    }
    return data
  }

  /// The out-of-fold predictions.
  /// - Throws: FAILED_PRECONDITION when the bundle has none or they are malformed.
  public func outOfFold() throws -> OutOfFold {
    guard let reference = self.manifest.outOfFold else {
      throw VaneError(
        .failedPrecondition,
        "bundle \(self.manifest.id) has no out-of-fold predictions to evaluate"
      )
    }
    return try OutOfFold.decode(
      try self.data(reference.file),
      classCount: self.manifest.task.classes.count,
      name: "bundle \(self.manifest.id): \(reference.file)"
    )
  }

  /// Writes a bundle: `files` (relative path → bytes) are listed in the manifest with their
  /// sizes and hashes, then `bundle.json` and the files go into a `.tar.gz` at `path`
  /// (atomically: a temporary file, then a rename).
  /// - Returns: the manifest as written and its SHA-256.
  @discardableResult
  public static func write(
    _ manifest: BundleManifest,
    files: [String: Data],
    to path: String
  ) throws -> (manifest: BundleManifest, sha256: String) {
    var manifest = manifest
    manifest.files = files.keys.sorted().map {
      BundleManifest.File(
        path: $0,
        sha256: SHA256.hash(data: files[$0]!).hexString,
        size: files[$0]!.count
      )
    }
    let manifestData = try manifest.encoded()
    _ = try BundleManifest.decode(manifestData, name: path)
    let entries =
      [Tar.Entry(path: "bundle.json", data: [UInt8](manifestData))]
      + files.keys.sorted().map { Tar.Entry(path: $0, data: [UInt8](files[$0]!)) }
    let archive = try Gzip.compress(try Tar.write(entries), name: path)
    let temporary = path + ".tmp-\(UUID().uuidString)"
    do {
      try Data(archive).write(to: URL(fileURLWithPath: temporary))
      if FileManager.default.fileExists(atPath: path) {
        try FileManager.default.removeItem(atPath: path)
      }
      try FileManager.default.moveItem(atPath: temporary, toPath: path)
    } catch {
      try? FileManager.default.removeItem(atPath: temporary)
      throw VaneError(.unavailable, "\(path): cannot write the bundle", cause: error)
    }
    return (manifest, SHA256.hash(data: manifestData).hexString)
  }
}
