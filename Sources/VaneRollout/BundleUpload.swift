public import Foundation
public import VaneBundle
internal import VaneCore

/// A bundle file arriving in chunks (deploy's UploadBundle): written to a temporary file in
/// the upload directory, bounded by the bundle size limit, then checked as a bundle and kept
/// under its manifest hash, so the same bundle uploaded twice is one file.
public final class BundleUpload {
  public let directory: String
  public let expectedSize: Int
  private let temporary: String
  private let handle: FileHandle
  private var received = 0
  private var finished = false

  /// - Throws: INVALID_ARGUMENT for a size of 0; RESOURCE_EXHAUSTED past the bundle limit;
  ///   UNAVAILABLE when the directory cannot be written.
  public init(directory: String, expectedSize: Int, limits: ArchiveLimits = .default) throws {
    guard expectedSize > 0 else {
      throw VaneError.invalidArgument(field: "header.size", "must be positive")
    }
    guard expectedSize <= limits.maximumTotalBytes else {
      throw VaneError(
        .resourceExhausted,
        "header.size: \(expectedSize) bytes; a bundle has at most \(limits.maximumTotalBytes)"
      )
    }
    self.directory = directory
    self.expectedSize = expectedSize
    self.temporary = directory + "/.upload-\(UUID().uuidString)"
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      guard FileManager.default.createFile(atPath: self.temporary, contents: nil) else {
        throw VaneError(.unavailable, "cannot create \(self.temporary)")
      }
      self.handle = try FileHandle(forWritingTo: URL(fileURLWithPath: self.temporary))
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(.unavailable, "uploads in \(directory): cannot write", cause: error)
    }
  }

  deinit {
    try? self.handle.close()
    if !self.finished { try? FileManager.default.removeItem(atPath: self.temporary) }
  }

  /// Appends the next chunk. - Throws: INVALID_ARGUMENT past the announced size.
  public func append(_ chunk: Data) throws {
    guard self.received + chunk.count <= self.expectedSize else {
      throw VaneError.invalidArgument(
        field: "chunk",
        "the upload has more than the \(self.expectedSize) bytes its header announced"
      )
    }
    do {
      try self.handle.write(contentsOf: chunk)
    } catch {
      throw VaneError(.unavailable, "writing the upload failed", cause: error)
    }
    self.received += chunk.count
  }

  /// Ends the upload. - Returns: the complete temporary file, for ``keep(_:in:)``.
  /// - Throws: INVALID_ARGUMENT when fewer bytes came than announced.
  public func finish() throws -> String {
    try? self.handle.close()
    guard self.received == self.expectedSize else {
      throw VaneError.invalidArgument(
        field: "chunk",
        "the upload ended after \(self.received) of the \(self.expectedSize) bytes its header announced"
      )
    }
    self.finished = true
    return self.temporary
  }

  /// Checks a finished upload as a bundle and keeps it as `<manifest sha256>.tar.gz` (the
  /// same bundle twice is one file); a file that is not a bundle is deleted.
  /// - Throws: what ``ModelBundle/open(path:limits:)`` throws for a file that is not a bundle.
  public static func keep(
    _ temporary: String,
    in directory: String
  ) throws -> (path: String, bundle: ModelBundle) {
    let manager = FileManager.default
    let bundle: ModelBundle
    do {
      bundle = try ModelBundle.open(path: temporary)
    } catch {
      try? manager.removeItem(atPath: temporary)
      throw error
    }
    let path = directory + "/" + bundle.manifestSHA256 + ".tar.gz"
    if manager.fileExists(atPath: path) {
      try? manager.removeItem(atPath: temporary)
    } else {
      do {
        try manager.moveItem(atPath: temporary, toPath: path)
      } catch {
        throw VaneError(.unavailable, "keeping the upload as \(path) failed", cause: error)
      }
    }
    return (path, bundle)
  }
}
