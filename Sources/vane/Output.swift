internal import ArgumentParser
internal import Foundation

/// Unbuffered standard output, so lines reach a pipe (a test, `head`, a log shipper) at once.
enum Output {
  static func line(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
  }

  /// Prints `ERROR: <file>: <reason>` to standard error and returns exit code 2, the code every
  /// client command documents for an input file it cannot read or parse (ArgumentParser keeps
  /// 64 for bad arguments).
  /// A reason that already starts with the path (a parser's `file:line: …`) is printed as is.
  static func fileError(_ path: String, _ reason: String) -> ExitCode {
    let text = reason.hasPrefix("\(path):") ? reason : "\(path): \(reason)"
    FileHandle.standardError.write(Data("ERROR: \(text)\n".utf8))
    return ExitCode(2)
  }
}
