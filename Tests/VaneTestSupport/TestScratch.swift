public import Foundation

/// Scratch space shared across a test process: what a suite writes once and every test reads
/// (bundles, keys) lives under one directory, removed when the process exits. A test's own
/// files are better made and removed by the test itself.
public enum TestScratch {
  /// This process's scratch directory, made on first use.
  public static let root: URL = {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-tests-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
    )
    try! FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    // Swift Testing runs every suite in this one process: the files outlive any one test.
    atexit { try? FileManager.default.removeItem(at: TestScratch.root) }
    return root
  }()

  /// A new, empty directory under ``root`` whose name starts with `prefix`.
  public static func directory(_ prefix: String) -> URL {
    let directory = Self.root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
  }
}
