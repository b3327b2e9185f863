internal import Foundation
internal import VaneCore

extension ModelBundle {
  /// The file beside a bundle holding the gatekeeper's verdict over it (the API's `Verdict` as
  /// JSON): the trainer writes it when the bundle is blessed, deploy reads it.
  public static func verdictPath(for bundlePath: String) -> String { bundlePath + ".verdict.json" }

  /// Writes the verified bundle as a directory at `directory`: `bundle.json` and every listed
  /// file, nothing else. The files go into a temporary sibling first, then one rename puts the
  /// whole directory in place, so a reader sees all of it or none; when `directory` exists
  /// already and holds this same manifest, nothing is written (unpacking is idempotent).
  /// Paths were checked when the bundle was opened (relative, no `..`, no links), so nothing
  /// lands outside `directory`.
  /// - Throws: ALREADY_EXISTS when `directory` holds another bundle; UNAVAILABLE when writing fails.
  public func unpack(to directory: String) throws {
    let manager = FileManager.default
    let target = URL(fileURLWithPath: directory)
    if manager.fileExists(atPath: target.path) {
      let existing = try? ModelBundle.open(path: target.path)
      guard existing?.manifestSHA256 == self.manifestSHA256 else {
        throw VaneError(
          .alreadyExists,
          "\(directory) holds another bundle than \(self.manifest.id) (\(self.manifestSHA256))"
        )
      }
      return
    }
    let parent = target.deletingLastPathComponent()
    let scratch = parent.appendingPathComponent(".unpack-\(UUID().uuidString)")
    do {
      try manager.createDirectory(at: scratch, withIntermediateDirectories: true)
      try self.manifestData.write(to: scratch.appendingPathComponent("bundle.json"))
      for file in self.manifest.files {
        let url = scratch.appendingPathComponent(file.path)
        // The standardized path must stay under the scratch directory (checked on open too).
        guard url.standardizedFileURL.path.hasPrefix(scratch.standardizedFileURL.path + "/") else {
          throw VaneError(
            .failedPrecondition,
            "bundle \(self.manifest.id): \(file.path) would leave the artifact directory"
          )
        }
        try manager.createDirectory(
          at: url.deletingLastPathComponent(),
          withIntermediateDirectories: true
        )
        try self.data(file.path).write(to: url)
      }
      try manager.moveItem(at: scratch, to: target)
    } catch let error as VaneError {
      try? manager.removeItem(at: scratch)
      throw error
    } catch {
      try? manager.removeItem(at: scratch)
      // Another unpack of the same bundle won the rename: fine when it is the same bundle.
      if let existing = try? ModelBundle.open(path: target.path),
        existing.manifestSHA256 == self.manifestSHA256
      {
        return
      }
      throw VaneError(
        .unavailable,
        "unpacking \(self.manifest.id) into \(directory) failed",
        cause: error
      )
    }
  }
}
