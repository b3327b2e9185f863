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

/// A reference script kept running between rounds: it prints one JSON line when it is ready,
/// then answers each line written to it with one JSON line, so a benchmark can alternate rounds
/// of the reference and of Vane in one run.
final class ReferenceSession {
  private let process = Process()
  private let input = Pipe()
  private let output = Pipe()
  private var buffered: [UInt8] = []

  /// Starts `python3 script arguments…` (python3 from PATH).
  init(_ script: String, arguments: [String]) throws {
    self.process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    self.process.arguments = ["python3", script] + arguments
    self.process.standardInput = self.input
    self.process.standardOutput = self.output
    self.process.standardError = FileHandle.nullDevice
    try self.process.run()
  }

  deinit {
    try? self.input.fileHandleForWriting.close()
    self.process.waitUntilExit()
  }

  /// The next line the script prints, decoded.
  /// - Throws: when the script ended or printed something that does not decode.
  func next<T: Decodable>(_ type: T.Type) throws -> T {
    while true {
      if let end = self.buffered.firstIndex(of: UInt8(ascii: "\n")) {
        let line = Data(self.buffered[..<end])
        self.buffered.removeSubrange(...end)
        return try JSONDecoder().decode(T.self, from: line)
      }
      let chunk = self.output.fileHandleForReading.availableData
      guard !chunk.isEmpty else {
        throw ValidationError("the reference script ended early")
      }
      // One answer is a few hundred bytes; a script printing without end is cut off.
      guard self.buffered.count + chunk.count <= 1 << 20 else {
        throw ValidationError("the reference script printed a line over 1 MiB")
      }
      self.buffered += chunk
    }
  }

  /// Writes `line` to the script, then reads its answer.
  func ask<T: Decodable>(_ line: String, as type: T.Type) throws -> T {
    try self.input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    return try self.next(type)
  }
}
