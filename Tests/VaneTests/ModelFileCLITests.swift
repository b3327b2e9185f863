import Foundation
import Testing
import VaneBundle

/// `vane model inspect|run` on ONNX files made elsewhere (the ONNX engine's foreign fixtures).
@Suite("vane model inspect, vane model run")
struct ModelFileCLITests {
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent()
    .appendingPathComponent("VaneONNXTests/Fixtures/foreign")

  @Test("inspect lists inputs, outputs, opsets and op counts")
  func inspect() async throws {
    let result = try await VaneBinary.run([
      "model", "inspect",
      Self.fixtures.appendingPathComponent("onnxmltools_lightgbm_binary.onnx").path,
    ])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(
      result.stdout.contains("input  float32  [?, 13]")
        && result.stdout.contains("TreeEnsembleClassifier  1")
        && result.stdout.contains("ai.onnx.ml"),
      "\(result.stdout)"
    )
  }

  @Test(
    "run answers as ONNX Runtime did, as JSON; bad JSON exits 2 naming the field, a refused input 1, a broken model 2"
  )
  func run() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-model-run-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let fixture =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: Self.fixtures.appendingPathComponent("pytorch_attention.json"))
      ) as! [String: Any]
    let inputs = directory.appendingPathComponent("in.json"),
      out = directory.appendingPathComponent("out.json")
    try JSONSerialization.data(withJSONObject: fixture["inputs"]!).write(to: inputs)
    let model = Self.fixtures.appendingPathComponent("pytorch_attention.onnx").path
    let result = try await VaneBinary.run([
      "model", "run", model, "--inputs", inputs.path, "--out", out.path,
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let got =
      try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as! [String: [String: Any]]
    let want = (fixture["outputs"] as! [String: [String: Any]])["scores"]!
    #expect(got["scores"]?["shape"] as? [Int] == want["shape"] as? [Int])
    let a = (got["scores"]?["data"] as? [Double]) ?? [], b = (want["data"] as? [Double]) ?? []
    #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 })

    try #"{"windows": {"dtype": "float32", "shape": [2, 16, 13], "data": [1, 2]}}"#.write(
      to: inputs,
      atomically: true,
      encoding: .utf8
    )
    let short = try await VaneBinary.run(["model", "run", model, "--inputs", inputs.path])
    #expect(
      short.status == 2
        && short.stderr.contains("'windows': data holds 2 values; shape [2, 16, 13] needs 416"),
      "\(short.stderr)"
    )
    try #"{"windows": {"dtype": "float16", "shape": [1], "data": [1]}}"#.write(
      to: inputs,
      atomically: true,
      encoding: .utf8
    )
    #expect(
      try await VaneBinary.run(["model", "run", model, "--inputs", inputs.path]).stderr.contains(
        "dtype 'float16' is not one of"
      )
    )
    try
      #"{"windows": {"dtype": "float32", "shape": [1, 16, 12], "data": \#(Array(repeating: 0, count: 192))}}"#
      .write(to: inputs, atomically: true, encoding: .utf8)
    let shape = try await VaneBinary.run(["model", "run", model, "--inputs", inputs.path])
    #expect(
      shape.status == 1 && shape.stderr.contains("input 'windows': shape [1, 16, 12]"),
      "\(shape.stderr)"
    )

    let broken = directory.appendingPathComponent("broken.onnx")
    try Data(try Data(contentsOf: URL(fileURLWithPath: model)).prefix(100)).write(to: broken)
    let truncated = try await VaneBinary.run(["model", "inspect", broken.path])
    #expect(
      truncated.status == 2 && truncated.stderr.contains("broken.onnx"),
      "\(truncated.stderr)"
    )
  }

  /// XGBoost JSON files (1.7.4, from the models' golden fixture) answer with xgboost's own margins.
  @Test("run on an XGBoost JSON file: margin equal to xgboost's, probabilities; inspect names it")
  func xgboostFile() async throws {
    let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .appendingPathComponent("VaneModelsTests/Fixtures/tree_margins.json")
    let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: golden)) as! [String: Any]
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-model-xgb-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    for case let entry as [String: Any] in fixture["cases"] as! [Any] {
      let name = entry["name"] as! String, classes = entry["classes"] as! Int,
        features = entry["features"] as! Int
      let model = directory.appendingPathComponent("\(name).json"),
        inputs = directory.appendingPathComponent("\(name).in.json")
      try (entry["model_json"] as! String).write(to: model, atomically: true, encoding: .utf8)
      let rows = entry["rows"] as! [[Any]]
      let data = rows.flatMap { $0.map { ($0 as? Double).map { $0 as Any } ?? "NaN" } }
      try JSONSerialization.data(withJSONObject: [
        "x": ["dtype": "float64", "shape": [rows.count, features], "data": data]
      ]).write(to: inputs)
      let inspect = try await VaneBinary.run(["model", "inspect", model.path])
      #expect(
        inspect.status == 0 && inspect.stdout.contains("XGBoost JSON")
          && inspect.stdout.contains("features: \(features)"),
        "\(inspect.stdout)\(inspect.stderr)"
      )
      let run = try await VaneBinary.run(["model", "run", model.path, "--inputs", inputs.path])
      #expect(run.status == 0, "\(run.stderr)")
      let out =
        try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: [String: Any]]
      let margins = (out["margin"]?["data"] as? [Double]) ?? []
      let expected = (entry["margins"] as! [Any]).flatMap { ($0 as? [Double]) ?? [$0 as! Double] }
      #expect(
        margins.count == expected.count
          && zip(margins, expected).allSatisfy { Float($0) == Float($1) },
        "\(name): margins differ from xgboost's"
      )
      #expect(out["probabilities"]?["shape"] as? [Int] == [rows.count, classes])
    }
  }

  /// LightGBM text files (from the models' fixtures, made by scripts/lightgbm_fixtures.py) answer
  /// with lightgbm's own raw scores and probabilities; a broken one exits 2 naming the line.
  @Test(
    "run on a LightGBM text file: margin and probabilities equal to lightgbm's; inspect; a broken file exits 2 with its line"
  )
  func lightgbmFile() async throws {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .appendingPathComponent("VaneModelsTests/Fixtures/lightgbm")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-model-lgb-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let model = fixtures.appendingPathComponent("categorical.txt").path
    let inspect = try await VaneBinary.run(["model", "inspect", model])
    #expect(inspect.status == 0, "\(inspect.stderr)")
    #expect(
      inspect.stdout.contains("LightGBM text, objective binary sigmoid:1")
        && inspect.stdout.contains("features: 15  classes: 2  trees: 40")
    )
    #expect(
      inspect.stdout.contains("(75 categorical)")
        && inspect.stdout.contains("margin  float64  [?]"),
      "\(inspect.stdout)"
    )

    // The fixture's inputs, cut from its text as written (a JSON round trip through
    // JSONSerialization could move a value off the threshold it sits on).
    let text = try String(
      contentsOf: fixtures.appendingPathComponent("categorical.json"),
      encoding: .utf8
    )
    let start = try #require(text.range(of: #"{"inputs":"#)),
      end = try #require(text.range(of: #","outputs":"#))
    let inputs = directory.appendingPathComponent("in.json")
    try String(text[start.upperBound ..< end.lowerBound]).write(
      to: inputs,
      atomically: true,
      encoding: .utf8
    )
    let run = try await VaneBinary.run([
      "model", "run", model, "--inputs", inputs.path, "--out",
      directory.appendingPathComponent("out.json").path,
    ])
    #expect(run.status == 0, "\(run.stderr)")
    struct Tensor: Decodable {
      var shape: [Int]
      var data: [Double]
    }
    let got = try JSONDecoder().decode(
      [String: Tensor].self,
      from: Data(contentsOf: directory.appendingPathComponent("out.json"))
    )
    // The fixture's closing brace.
    let outputs = text[end.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines).dropLast()
    let want = try JSONDecoder().decode([String: Tensor].self, from: Data(outputs.utf8))
    for name in ["margin", "probabilities"] {
      let a = try #require(got[name]), b = try #require(want[name])
      #expect(a.shape == b.shape && a.data.count == b.data.count)
      let worst = zip(a.data, b.data).map { abs($0 - $1) }.max() ?? .infinity
      #expect(worst <= 1e-9, "\(name): largest difference \(worst)")
    }

    let broken = directory.appendingPathComponent("broken.txt")
    try String(contentsOfFile: model, encoding: .utf8).replacingOccurrences(
      of: "Tree=7\n",
      with: "Tree=9\n"
    ).write(to: broken, atomically: true, encoding: .utf8)
    let refused = try await VaneBinary.run(["model", "inspect", broken.path])
    #expect(
      refused.status == 2 && refused.stderr.contains("'Tree=9' where Tree=7 belongs")
        && refused.stderr.contains("line "),
      "\(refused.stderr)"
    )
  }
}

/// `vane import`: a model file and a mapping in, a bundle out; refusals exit 1 naming the field.
@Suite("vane import")
struct ImportCLITests {
  @Test(
    "import writes a servable bundle and reports it; a bad mapping exits 1 naming the field; an existing --out needs --force; an unreadable file exits 2"
  )
  func importCommand() async throws {
    let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
    let model = tests.appendingPathComponent(
      "VaneONNXTests/Fixtures/foreign/skl2onnx_logistic.onnx"
    ).path
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-import-cli-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let mapping = directory.appendingPathComponent("mapping.yaml")
    let columns =
      "[rsi_14, natr_14, macd_hist_rel, bb_pctb_20, adx_14, plus_di_14, minus_di_14, mfi_14, stoch_k, stoch_d, willr_14, cci_20, roc_10]"
    try "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1\ncolumns: \(columns)\n"
      .write(to: mapping, atomically: true, encoding: .utf8)
    let out = directory.appendingPathComponent("b.tar.gz").path

    let written = try await VaneBinary.run([
      "import", model, "--features", mapping.path, "--out", out,
    ])
    #expect(written.status == 0, "\(written.stderr)")
    #expect(
      written.stdout.contains("wrote \(out)")
        && written.stdout.contains("model: onnx, 13 feature columns of v1")
        && written.stdout.contains("blessable: no"),
      "\(written.stdout)"
    )
    let bundle = try ModelBundle.open(path: out)
    #expect(
      bundle.manifest.models.map(\.kind) == [.onnx]
        && bundle.manifest.id.hasPrefix("skl2onnx_logistic-")
    )

    let again = try await VaneBinary.run([
      "import", model, "--features", mapping.path, "--out", out,
    ])
    #expect(again.status == 1 && again.stderr.contains("exists (use --force"))
    let forced = try await VaneBinary.run([
      "import", model, "--features", mapping.path, "--out", out, "--force",
    ])
    #expect(forced.status == 0, "\(forced.stderr)")

    try "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1\ncolumns: [rsi_14]\n"
      .write(to: mapping, atomically: true, encoding: .utf8)
    let refused = try await VaneBinary.run([
      "import", model, "--features", mapping.path, "--out",
      directory.appendingPathComponent("c.tar.gz").path,
    ])
    #expect(
      refused.status == 1
        && refused.stderr.contains(
          "mapping: inputs.X: 1 column(s) mapped, the model's input X is [?, 13]"
        ),
      "\(refused.stderr)"
    )
    #expect(
      !FileManager.default.fileExists(atPath: directory.appendingPathComponent("c.tar.gz").path)
    )
    let missing = try await VaneBinary.run([
      "import", directory.appendingPathComponent("none.onnx").path, "--features", mapping.path,
      "--out", out,
    ])
    #expect(missing.status == 2 && missing.stderr.contains("none.onnx: cannot be read"))
  }
}
