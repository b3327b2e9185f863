internal import Foundation

/// Unbuffered standard output, so lines reach a pipe (a test, `head`, a log shipper) at once.
enum Output {
  static func line(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
  }
}
