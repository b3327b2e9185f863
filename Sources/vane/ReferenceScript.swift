import ArgumentParser
import VaneCore
internal import Foundation

/// A Python script that times the reference library (TA-Lib, scikit-learn) on the same arrays a
/// benchmark times Vane on, and prints its figures as one JSON object.
enum ReferenceScript {
  /// Writes `files` (name → bytes) to a scratch directory, runs `python3 script` with their
  /// paths followed by `arguments`, and decodes its standard output.
  /// - Throws: when python3 or the script fails (the benchmark then prints Vane's figures alone).
  static func run<T: Decodable>(
    _ script: String,
    files: [(String, Data)],
    arguments: [String] = [],
    as type: T.Type
  ) throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-\(getpid())-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    var paths: [String] = []
    for (name, data) in files {
      let url = directory.appendingPathComponent(name)
      try data.write(to: url)
      paths.append(url.path)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script] + paths + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let json = FileDescriptorReader.readAll(output.fileHandleForReading.fileDescriptor)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw ValidationError("\(script) exited with \(process.terminationStatus)")
    }
    return try JSONDecoder().decode(T.self, from: Data(json))
  }
}
