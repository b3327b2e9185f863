import Foundation
import Testing
import VaneCore
import VaneTestSupport

/// `vane gate evaluate | calibrate | report` against a `vane serve gatekeeper` process.
@Suite("vane gate", .timeLimit(.minutes(5)))
struct GateCLITests {
  /// A predictions CSV: n binary samples, the model's logit `scale · z` for outcomes drawn from σ(z).
  static func csv(
    _ n: Int,
    scale: Double,
    seed: UInt64,
    in directory: URL,
    name: String
  ) throws -> String {
    var random = SplitMix64(seed: seed)
    var lines = ["label,DOWN,UP,fold"]
    for i in 0 ..< n {
      let z = random.uniform() * 4 - 2
      let up = random.uniform() < 1 / (1 + exp(-z))
      let p = 1 / (1 + exp(-scale * z))
      lines.append("\(up ? "UP" : "DOWN"),\(1 - p),\(p),\(i * 5 / n)")
    }
    let url = directory.appendingPathComponent(name)
    try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  static func inputs(in directory: URL) throws -> String {
    var random = SplitMix64(seed: 5)
    var lines = ["ret_1h,rsi_14"]
    for _ in 0 ..< 2_000 {
      // Sums of 12 uniforms: mean 6, variance 1.
      let a = (0 ..< 12).reduce(0.0) { s, _ in s + random.uniform() } - 6,
        b = (0 ..< 12).reduce(0.0) { s, _ in s + random.uniform() } - 6
      lines.append("\(a),\(b)")
    }
    let url = directory.appendingPathComponent("inputs.csv")
    try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  @Test(
    "A Parquet or Feather file given as predictions or inputs exits 2 naming the format, before any call and without pasting its bytes"
  )
  func binaryFiles() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-gate-binary-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let parquet = directory.appendingPathComponent("preds.parquet")
    try Data(Array("PAR1".utf8) + [UInt8](repeating: 0x51, count: 200)).write(to: parquet)
    let feather = directory.appendingPathComponent("inputs.feather")
    try Data(Array("ARROW1".utf8) + [UInt8](repeating: 0x51, count: 200)).write(to: feather)
    let healthy = try Self.csv(100, scale: 1, seed: 1, in: directory, name: "p.csv")
    for (arguments, format) in [
      ([parquet.path], "Apache Parquet"), ([healthy, "--inputs", feather.path], "Feather v2"),
    ] {
      // Nothing listens on the address: the file is refused before any call is made.
      let result = try await VaneBinary.run(
        ["gate", "evaluate", "--address", "127.0.0.1:9", "--interval", "1h"] + arguments
      )
      #expect(result.status == 2, "\(result.stderr)")
      #expect(result.stderr.contains(format) && result.stderr.contains("not supported"))
      #expect(!result.stderr.contains("QQQQ") && result.stderr.utf8.count < 400, "\(result.stderr)")
    }
  }

  @Test(
    "evaluate exits 0 on a pass and 3 on a failure naming the gate; calibrate fixes the overconfidence; report writes the HTML page"
  )
  func endToEnd() async throws {
    let server = try await ServeProcess(.gatekeeper)
    defer { server.stop() }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-gate-cli-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let inputs = try Self.inputs(in: directory)

    let healthy = try Self.csv(25_000, scale: 1, seed: 1, in: directory, name: "healthy.csv")
    let pass = try await VaneBinary.run([
      "gate", "evaluate", "--address", server.address, healthy, "--interval", "1h", "--inputs",
      inputs,
    ])
    #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
    #expect(
      pass.stdout.hasPrefix("PASSED  healthy.csv under policy default")
        && pass.stdout.contains("pass  stacked_auc"),
      "\(pass.stdout)"
    )

    let overconfident = try Self.csv(
      25_000,
      scale: 12,
      seed: 2,
      in: directory,
      name: "overconfident.csv"
    )
    let html = directory.appendingPathComponent("report.html").path
    let fail = try await VaneBinary.run([
      "gate", "evaluate", "--address", server.address, overconfident, "--interval", "1h",
      "--inputs", inputs, "--html", html,
    ])
    #expect(fail.status == 3, "\(fail.stdout)\(fail.stderr)")
    #expect(
      fail.stdout.hasPrefix("FAILED") && fail.stdout.contains("FAIL  overconfidence")
        && fail.stdout.contains("overconfident"),
      "\(fail.stdout)"
    )
    #expect(try String(contentsOfFile: html, encoding: .utf8).contains("<svg"))

    let calibration = directory.appendingPathComponent("calibration.json").path
    let calibrate = try await VaneBinary.run([
      "gate", "calibrate", "--address", server.address, overconfident, "--cross-fit", "--out",
      calibration,
    ])
    #expect(calibrate.status == 0, "\(calibrate.stderr)")
    #expect(
      calibrate.stdout.contains("cross-validated log loss")
        && calibrate.stdout.contains("(cross-fitted)"),
      "\(calibrate.stdout)"
    )
    let document =
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: calibration)))
      as? [String: Any]
    #expect(["temperature", "platt", "isotonic"].contains(document?["method"] as? String ?? ""))

    let page = directory.appendingPathComponent("latest.html").path
    let report = try await VaneBinary.run([
      "gate", "report", "--address", server.address, "--html", page,
    ])
    #expect(
      report.status == 0 && report.stdout.hasPrefix("FAILED  overconfident.csv"),
      "\(report.stdout)\(report.stderr)"
    )
    let text = try String(contentsOfFile: page, encoding: .utf8)
    #expect(
      text.contains("overconfidence") && text.contains("reliability") && text.contains("<svg")
    )

    let missing = try await VaneBinary.run([
      "gate", "report", "--address", server.address, "r-nope",
    ])
    #expect(missing.status == 1 && missing.stderr.contains("notFound"), "\(missing.stderr)")
    let bad = try await VaneBinary.run(["gate", "evaluate", "--address", server.address, inputs])
    #expect(
      bad.status == 2 && bad.stderr.hasPrefix("ERROR: \(inputs):") && bad.stderr.contains("label"),
      "\(bad.stderr)"
    )
    // Probabilities that are not probabilities: refused on the client, naming the line (exit 2, not an RPC error).
    let sums = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-sums-\(UUID().uuidString).csv"
    )
    defer { try? FileManager.default.removeItem(at: sums) }
    try "label,DOWN,UP\nUP,0.4,0.6\nDOWN,1.5,1.5\n".write(
      to: sums,
      atomically: true,
      encoding: .utf8
    )
    let summing = try await VaneBinary.run([
      "gate", "evaluate", "--address", server.address, sums.path,
    ])
    #expect(
      summing.status == 2
        && summing.stderr.contains("\(sums.path):3: DOWN: probability 1.5 is outside [0, 1]"),
      "\(summing.stderr)"
    )
    try "label,DOWN,UP\nUP,0.4,0.6\nDOWN,0.5,0.6\n".write(
      to: sums,
      atomically: true,
      encoding: .utf8
    )
    let overOne = try await VaneBinary.run([
      "gate", "evaluate", "--address", server.address, sums.path,
    ])
    #expect(
      overOne.status == 2
        && overOne.stderr.contains("\(sums.path):3: the probabilities sum to 1.1"),
      "\(overOne.stderr)"
    )
    let unreadable = try await VaneBinary.run([
      "gate", "evaluate", "--address", server.address, "/nonexistent.csv",
    ])
    #expect(
      unreadable.status == 2 && unreadable.stderr.contains("/nonexistent.csv: cannot be read"),
      "\(unreadable.stderr)"
    )
    let both = try await VaneBinary.run([
      "gate", "evaluate", "--address", server.address, inputs, "--bundle", "/tmp",
    ])
    #expect(both.status == 64 && both.stderr.contains("not both"), "\(both.stderr)")
  }
}
