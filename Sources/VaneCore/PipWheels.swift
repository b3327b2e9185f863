internal import Foundation

/// Shared libraries that pip wheels install (the xgboost wheel's libxgboost, NVIDIA's CUDA
/// runtime, cuBLAS and NVRTC), found where pip puts packages, without running Python.
public enum PipWheels {
  /// Where pip puts packages, most specific first: the active virtual environment's `lib`,
  /// the selected pyenv Pythons' (`PYENV_VERSION`, else the `version` file of `PYENV_ROOT` or
  /// `~/.pyenv`), the user's `~/.local/lib`, the system's `/usr/local/lib`.
  public static func roots(environment: [String: String], home: String?) -> [String] {
    var roots: [String] = []
    if let venv = environment["VIRTUAL_ENV"], !venv.isEmpty { roots.append("\(venv)/lib") }
    let pyenv =
      environment["PYENV_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
      ?? home.flatMap { $0.isEmpty ? nil : "\($0)/.pyenv" }
    if let pyenv {
      roots += Self.pyenvVersions(root: pyenv, selected: environment["PYENV_VERSION"]).map {
        "\(pyenv)/versions/\($0)/lib"
      }
    }
    if let home, !home.isEmpty { roots.append("\(home)/.local/lib") }
    roots.append("/usr/local/lib")
    return roots
  }

  /// pyenv's selected versions: `selected` (its `PYENV_VERSION`, names separated by colons),
  /// else the root's `version` file (a name a line; comments and "system" skipped); only those
  /// installed under `root/versions`.
  static func pyenvVersions(root: String, selected: String?) -> [String] {
    var names: [Substring]
    if let selected, !selected.isEmpty {
      names = selected.split(separator: ":")
    } else {
      // A few names at most: the first 4 KiB.
      let file = FileHandle(forReadingAtPath: "\(root)/version")
      defer { try? file?.close() }
      guard let data = try? file?.read(upToCount: 4096) else { return [] }
      names = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
    }
    return names.map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { name in
        !name.isEmpty && !name.hasPrefix("#") && name != "system" && !name.contains("/")
          && FileManager.default.fileExists(atPath: "\(root)/versions/\(name)/lib")
      }
  }

  /// The process's roots (its environment and home directory).
  public static var processRoots: [String] {
    Self.roots(
      environment: ProcessInfo.processInfo.environment,
      home: FileManager.default.homeDirectoryForCurrentUser.path
    )
  }

  /// The files at `relative` (a path inside a site-packages directory, such as
  /// `xgboost/lib/libxgboost.so`) present under `roots`: in the roots' order and, within one,
  /// the newest Python first.
  public static func files(_ relative: String, roots: [String]) -> [String] {
    roots.flatMap { root -> [String] in
      let pythons = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
        .compactMap { name -> (name: String, minor: Int)? in
          guard name.hasPrefix("python3."), let minor = Int(name.dropFirst("python3.".count))
          else { return nil }
          return (name, minor)
        }
        .sorted { $0.minor > $1.minor }
      return pythons.flatMap { python in
        ["site-packages", "dist-packages"].map { "\(root)/\(python.name)/\($0)/\(relative)" }
      }
      .filter { FileManager.default.fileExists(atPath: $0) }
    }
  }
}
