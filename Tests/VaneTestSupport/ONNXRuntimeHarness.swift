public import Foundation

/// Runs `scripts/onnx_check.py` (ONNX Runtime from Python) over exported models and reads its
/// verdict. The tests that need it run when `python3 -c "import onnxruntime"` works, or when
/// VANE_REQUIRE_ONNXRUNTIME=1 (then a missing onnxruntime fails them instead of skipping).
public enum ONNXRuntimeHarness {
  /// One exported model with its input and the native output, both row-major.
  public struct Case: Sendable {
    public var name: String
    public var model: Data
    public var input: String
    public var inputShape: [Int]
    public var inputs: [Double]
    public var outputShape: [Int]
    public var expected: [Double]

    public init(
      name: String,
      model: Data,
      input: String,
      inputShape: [Int],
      inputs: [Double],
      outputShape: [Int],
      expected: [Double]
    ) {
      self.name = name
      self.model = model
      self.input = input
      self.inputShape = inputShape
      self.inputs = inputs
      self.outputShape = outputShape
      self.expected = expected
    }
  }

  /// What the script said about one case.
  public struct Result: Sendable {
    public var name: String
    public var maxAbsDiff: Double?
    public var checker: String
    public var producer: String?
    public var metadata: [String: String]
    public var error: String?
  }

  public static let required =
    ProcessInfo.processInfo.environment["VANE_REQUIRE_ONNXRUNTIME"] == "1"

  /// Whether python3 can import onnxruntime.
  public static let available: Bool = (try? Self.python(["-c", "import onnxruntime"]).status) == 0

  public static var enabled: Bool { Self.required || Self.available }

  static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("scripts/onnx_check.py")

  /// Runs python3 with `arguments`; stdout and stderr go through files (no pipe can fill up).
  public static func python(
    _ arguments: [String]
  ) throws -> (status: Int32, stdout: String, stderr: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-python-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let out = directory.appendingPathComponent("stdout"),
      err = directory.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    process.standardOutput = outHandle
    process.standardError = errHandle
    var environment = ProcessInfo.processInfo.environment
    environment["OMP_NUM_THREADS"] = "1"
    process.environment = environment
    try process.run()
    process.waitForExit()
    try outHandle.close()
    try errHandle.close()
    return (
      process.terminationStatus, String(decoding: try Data(contentsOf: out), as: UTF8.self),
      String(decoding: try Data(contentsOf: err), as: UTF8.self)
    )
  }

  /// A JSON array of numbers, non-finite values as "nan", "inf", "-inf" (shortest round-trip
  /// decimal text, so Python reads the same doubles).
  static func jsonArray(_ values: [Double]) -> String {
    "["
      + values.map {
        $0.isNaN ? "\"nan\"" : $0.isInfinite ? ($0 > 0 ? "\"inf\"" : "\"-inf\"") : "\($0)"
      }.joined(separator: ",") + "]"
  }

  /// A JSON string literal (the names here are plain ASCII; quotes and backslashes escaped).
  static func jsonString(_ text: String) -> String {
    "\""
      + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
        of: "\"",
        with: "\\\""
      ) + "\""
  }

  /// Writes the cases to a temporary directory, runs the script on it, and returns its results
  /// by case name, with the script's versions.
  public static func check(
    _ cases: [Case]
  ) throws -> (results: [String: Result], versions: String, directory: URL) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-onnx-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var entries: [String] = []
    for c in cases {
      let file = "\(c.name).onnx"
      try c.model.write(to: directory.appendingPathComponent(file))
      entries.append(
        "{\"name\": \(Self.jsonString(c.name)), \"model\": \(Self.jsonString(file)), \"input\": \(Self.jsonString(c.input)), "
          + "\"input_shape\": \(c.inputShape), \"inputs\": \(Self.jsonArray(c.inputs)), \"output\": \"probabilities\", "
          + "\"output_shape\": \(c.outputShape), \"expected\": \(Self.jsonArray(c.expected))}"
      )
    }
    try Data("{\"cases\": [\n\(entries.joined(separator: ",\n"))\n]}\n".utf8).write(
      to: directory.appendingPathComponent("cases.json")
    )
    let run = try Self.python([Self.script.path, directory.path])
    guard
      let document = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
        as? [String: Any]
    else {
      throw HarnessError(
        "onnx_check.py exited \(run.status) without a JSON verdict; stdout: \(run.stdout.prefix(2000)) stderr: \(run.stderr.suffix(4000))"
      )
    }
    if let error = document["error"] as? String { throw HarnessError("onnx_check.py: \(error)") }
    var results: [String: Result] = [:]
    for entry in document["results"] as? [[String: Any]] ?? [] {
      guard let name = entry["name"] as? String else { continue }
      let difference =
        (entry["max_abs_diff"] as? Double)
        ?? (entry["max_abs_diff"] as? String).flatMap(Double.init)
      results[name] = Result(
        name: name,
        maxAbsDiff: difference,
        checker: entry["checker"] as? String ?? "missing",
        producer: entry["producer"] as? String,
        metadata: entry["metadata"] as? [String: String] ?? [:],
        error: entry["error"] as? String
      )
    }
    let versions =
      "onnxruntime \(document["onnxruntime"] as? String ?? "?"), onnx \(document["onnx"] as? String ?? "not installed")"
    return (results, versions, directory)
  }

  public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
  }
}
