internal import Foundation

/// What this binary is: its version and the commit it was built from.
public enum BuildInfo {
  /// The suite's version; every service reports it in GetServiceInfo.
  public static let version = "0.1.0"

  /// The commit this binary was built from: `VANE_BUILD_COMMIT` when the build set it (the
  /// container image does), else the git checkout the executable was built in, else "unknown".
  public static let commit: String = {
    if let value = ProcessInfo.processInfo.environment["VANE_BUILD_COMMIT"], !value.isEmpty {
      return value
    }
    return Self.gitCommit(near: URL(fileURLWithPath: CommandLine.arguments.first ?? "."))
      ?? "unknown"
  }()

  /// Reads HEAD from the nearest enclosing git checkout, without running git.
  static func gitCommit(near executable: URL) -> String? {
    var directory = executable.resolvingSymlinksInPath().deletingLastPathComponent()
    let fileManager = FileManager.default
    for _ in 0 ..< 8 {
      let gitDirectory = directory.appendingPathComponent(".git")
      if let head = try? String(
        contentsOf: gitDirectory.appendingPathComponent("HEAD"),
        encoding: .utf8
      ) {
        let trimmed = head.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("ref: ") else { return trimmed.isEmpty ? nil : trimmed }
        let ref = String(trimmed.dropFirst(5))
        if let sha = try? String(
          contentsOf: gitDirectory.appendingPathComponent(ref),
          encoding: .utf8
        ) {
          return sha.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // Packed refs: "<sha> <ref>" lines.
        if let packed = try? String(
          contentsOf: gitDirectory.appendingPathComponent("packed-refs"),
          encoding: .utf8
        ) {
          for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
            return String(line.prefix { $0 != " " })
          }
        }
        return nil
      }
      let parent = directory.deletingLastPathComponent()
      if parent.path == directory.path || !fileManager.fileExists(atPath: parent.path) { break }
      directory = parent
    }
    return nil
  }
}
