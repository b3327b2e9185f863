import Foundation
import Testing
import VaneBundle
import VaneCore
import VaneQuality

@testable import VaneServing

/// `vane import` / ImportModel: foreign models as bundles the predictor serves, answering as
/// their own runtimes do, and every mapping mistake refused with the field that is wrong.
@Suite("Model import")
struct ModelImportTests {
  static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent()
  static let lightgbm = tests.appendingPathComponent("VaneModelsTests/Fixtures/lightgbm")
  static let foreign = tests.appendingPathComponent("VaneONNXTests/Fixtures/foreign")

  /// The 13 real indicators the fixtures were trained on, as v1 columns.
  static let columns = [
    "rsi_14", "natr_14", "macd_hist_rel", "bb_pctb_20", "adx_14", "plus_di_14", "minus_di_14",
    "mfi_14", "stoch_k", "stoch_d", "willr_14", "cci_20", "roc_10",
  ]

  static func mapping(
    classes: [String] = ["DOWN", "UP"],
    extra: String = "",
    columns: [String]? = ModelImportTests.columns
  ) -> String {
    """
    symbols: [BTCUSDT]
    interval: 1h
    classes: [\(classes.joined(separator: ", "))]
    horizon: 1
    name: imported
    \(columns.map { "columns: [\($0.joined(separator: ", "))]" } ?? "")
    \(extra)
    """
  }

  static func prepare(
    _ file: URL,
    mapping: String,
    extras: ModelImport.Extras = .init()
  ) throws -> ModelImport.Prepared {
    try ModelImport.prepare(
      model: try Data(contentsOf: file),
      fileName: file.path,
      mapping: try ModelImport.Mapping.parse(mapping, source: "mapping.yaml"),
      extras: extras,
      now: Date(timeIntervalSince1970: 1_800_000_000)
    )
  }

  /// Writes, opens and loads a bundle as the predictor does.
  static func serve(_ prepared: ModelImport.Prepared) throws -> ServableModel {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-import-\(UUID().uuidString).tar.gz"
    ).path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try ModelImport.write(prepared, to: path)
    return try ServableModel(bundle: try ModelBundle.open(path: path))
  }

  /// A fixture's tensor (`{"dtype", "shape", "data"}`, NaN as "NaN") read exactly.
  struct Tensor: Decodable {
    var shape: [Int]
    var data: [Number]
    var values: [Double] { self.data.map(\.value) }
    struct Number: Decodable {
      var value: Double
      init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Double.self) {
          self.value = value
        } else {
          self.value = try container.decode(String.self) == "NaN" ? .nan : .infinity
        }
      }
    }
  }

  struct Fixture: Decodable {
    var inputs: [String: Tensor]
    var outputs: [String: Tensor]
    static func load(_ url: URL) throws -> Fixture {
      try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }
  }

  @Test(
    "A LightGBM text model serves lightgbm's own probabilities (within 1e-9), missing values included"
  )
  func lightgbmServes() throws {
    let prepared = try Self.prepare(
      Self.lightgbm.appendingPathComponent("binary_nan.txt"),
      mapping: Self.mapping()
    )
    #expect(prepared.format == .lightgbm && prepared.columns == Self.columns && !prepared.blessable)
    #expect(
      prepared.manifest.models.map(\.kind) == [.lightgbm] && prepared.manifest.featureSet.id == "v1"
    )
    #expect(prepared.notes.contains { $0.contains("cannot judge or bless") })
    let model = try Self.serve(prepared)
    let fixture = try Fixture.load(Self.lightgbm.appendingPathComponent("binary_nan.json"))
    let x = try #require(fixture.inputs["x"]),
      expected = try #require(fixture.outputs["probabilities"]).values
    let answers = try model.predict(x.values, count: x.shape[0])
    let got = answers.flatMap { $0[0].raw }
    let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
    #expect(got.count == expected.count && worst <= 1e-9, "largest difference \(worst)")
  }

  /// (fixture, classes, mapping extra, output used)
  static let onnxCases: [(String, [String], String, String)] = [
    ("skl2onnx_logistic", ["DOWN", "UP"], "", "output_probability"),
    ("onnxmltools_lightgbm_3class", ["DOWN", "FLAT", "UP"], "", "probabilities"),
    ("pytorch_mlp_batchnorm", ["DOWN", "FLAT", "UP"], "output: scores", "scores"),
  ]

  @Test(
    "ONNX graphs from skl2onnx, onnxmltools and PyTorch serve ONNX Runtime's probabilities (within 1e-5)",
    arguments: ModelImportTests.onnxCases.map(\.0)
  )
  func onnxServes(name: String) throws {
    let (_, classes, extra, output) = try #require(Self.onnxCases.first { $0.0 == name })
    let prepared = try Self.prepare(
      Self.foreign.appendingPathComponent("\(name).onnx"),
      mapping: Self.mapping(classes: classes, extra: extra)
    )
    #expect(prepared.format == .onnx && prepared.manifest.models.map(\.kind) == [.onnx])
    let model = try Self.serve(prepared)
    let fixture = try Fixture.load(Self.foreign.appendingPathComponent("\(name).json"))
    let x = try #require(fixture.inputs.values.first),
      expected = try #require(fixture.outputs[output]).values
    let got = try model.predict(x.values, count: x.shape[0]).flatMap { $0[0].raw }
    let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
    #expect(got.count == expected.count && worst <= 1e-5, "largest difference \(worst)")
  }

  @Test(
    "A PyTorch LSTM with one sigmoid head per horizon serves each horizon from its column, on windows of 16 bars"
  )
  func multiHead() throws {
    let prepared = try Self.prepare(
      Self.foreign.appendingPathComponent("pytorch_lstm.onnx"),
      mapping: Self.mapping(
        extra: "inputs:\n  windows: [\(Self.columns.joined(separator: ", "))]",
        columns: nil
      ).replacingOccurrences(of: "horizon: 1", with: "horizons: [1, 4, 12]")
    )
    #expect(
      prepared.manifest.task.horizons == [1, 4, 12]
        && prepared.manifest.models[0].horizons == [1, 4, 12]
    )
    let model = try Self.serve(prepared)
    #expect(model.inputBars == 16 && model.horizons == [1, 4, 12])
    let fixture = try Fixture.load(Self.foreign.appendingPathComponent("pytorch_lstm.json"))
    let x = try #require(fixture.inputs["windows"]),
      scores = try #require(fixture.outputs["scores"]).values
    let rows = x.shape[0]
    let answers = try model.predict(x.values, count: rows)
    var worst = 0.0
    for r in 0 ..< rows {
      #expect(answers[r].map(\.horizon) == [1, 4, 12])
      for (head, answer) in answers[r].enumerated() {
        worst = max(
          worst,
          abs(answer.raw[1] - scores[r * 3 + head]),
          abs(answer.raw[0] + answer.raw[1] - 1)
        )
      }
    }
    #expect(worst <= 1e-5, "largest difference \(worst)")
    // One horizon asked for: that head only.
    #expect(
      try model.predict(Array(x.values.prefix(16 * 13)), count: 1, horizons: [4])[0].map(\.horizon)
        == [4]
    )
    // A tree file has one output: several horizons are refused.
    let trees = try #require(throws: VaneError.self) {
      try Self.prepare(
        Self.lightgbm.appendingPathComponent("binary_nan.txt"),
        mapping: Self.mapping().replacingOccurrences(of: "horizon: 1", with: "horizons: [1, 4]")
      )
    }
    #expect(trees.message.contains("several horizons need an ONNX graph"))
  }

  @Test(
    "A scaler is applied before the model, a calibration after it, and out-of-fold predictions make the bundle blessable"
  )
  func extras() throws {
    // A scaler over more columns than the model reads, in another order: it is cut to the model's.
    let wide = ["hvol_20"] + Self.columns.reversed()
    let center = wide.indices.map { 0.01 * Double($0) },
      scale = wide.indices.map { 1 + 0.1 * Double($0) }
    let scaler = try JSONSerialization.data(withJSONObject: [
      "method": "standard", "columns": wide, "center": center, "scale": scale, "fittedRows": 100,
    ])
    let calibration = Data(#"{"method": "temperature", "parameters": {"temperature": 2.0}}"#.utf8)
    var csv = "label,DOWN,UP,fold\n"
    for i in 0 ..< 50 {
      csv +=
        "\(i % 3 == 0 ? "UP" : "DOWN"),\(0.4 + 0.004 * Double(i)),\(0.6 - 0.004 * Double(i)),\(i / 25)\n"
    }
    let file = Self.lightgbm.appendingPathComponent("binary_nan.txt")
    let prepared = try Self.prepare(
      file,
      mapping: Self.mapping(),
      extras: .init(scaler: scaler, calibration: calibration, outOfFold: Data(csv.utf8))
    )
    #expect(
      prepared.blessable && prepared.notes.count == 1 && prepared.notes[0].contains("input_mean")
    )
    let model = try Self.serve(prepared)
    let plain = try Self.serve(try Self.prepare(file, mapping: Self.mapping()))

    let row = Self.columns.indices.map { 0.3 + 0.05 * Double($0) }
    // The scaled row, by hand: each column through its own centre and scale in the wide scaler.
    let scaled = Self.columns.enumerated().map { c, column in
      let i = wide.firstIndex(of: column)!
      return (row[c] - center[i]) / scale[i]
    }
    let answer = try model.predict(row, count: 1)[0][0]
    let byHand = try plain.predict(scaled, count: 1)[0][0]
    #expect(answer.raw == byHand.raw)
    let calibrated = try Calibration(
      method: .temperature,
      parametersJSON: #"{"temperature":2.0}"#,
      classCount: 2
    ).apply(probabilities: answer.raw, classCount: 2)
    #expect(answer.calibrated == calibrated && answer.calibrated != answer.raw)

    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-import-\(UUID().uuidString).tar.gz"
    ).path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try ModelImport.write(prepared, to: path)
    let oof = try ModelBundle.open(path: path).outOfFold()
    #expect(
      oof.labels.count == 50 && oof.labels.prefix(3) == [1, 0, 0] && oof.foldIds.last == 1
        && oof.final == "imported"
    )
  }

  @Test("A LightGBM file whose feature names are feature-set columns needs no column list")
  func namesFromTheFile() throws {
    let text = try String(
      contentsOf: Self.lightgbm.appendingPathComponent("binary_nan.txt"),
      encoding: .utf8
    )
    .replacingOccurrences(
      of: "feature_names=" + (0 ..< 13).map { "Column_\($0)" }.joined(separator: " "),
      with: "feature_names=" + Self.columns.joined(separator: " ")
    )
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-named-\(UUID().uuidString).txt"
    )
    try text.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    let prepared = try Self.prepare(file, mapping: Self.mapping(columns: nil))
    #expect(prepared.columns == Self.columns)
    // The generic names of the original file are no feature-set columns: the list is required.
    let error = try #require(throws: VaneError.self) {
      try Self.prepare(
        Self.lightgbm.appendingPathComponent("binary_nan.txt"),
        mapping: Self.mapping(columns: nil)
      )
    }
    #expect(error.message.contains("columns is required") && error.message.contains("Column_0"))
  }

  /// (what is wrong, fixture file, mapping, what the message must contain)
  static let refusals: [(String, String, String, String)] = [
    (
      "an unmapped input", "foreign/skl2onnx_logistic.onnx",
      mapping(extra: "inputs:\n  Y: [rsi_14]", columns: nil),
      "the model's input(s) X are not mapped; Y are not inputs of the model (its inputs: X [?, 13])"
    ),
    (
      "too few columns", "foreign/skl2onnx_logistic.onnx",
      mapping(columns: Array(columns.dropLast())),
      "inputs.X: 12 column(s) mapped, the model's input X is [?, 13]"
    ),
    (
      "an unknown column", "foreign/skl2onnx_logistic.onnx",
      mapping(columns: ["rsi14"] + columns.dropFirst()),
      "not columns of feature set v1: rsi14 (did you mean rsi14 → rsi_14?)"
    ),
    (
      "a missing transform", "foreign/pytorch_attention.onnx",
      mapping(classes: ["DOWN", "FLAT", "UP"]), "not 3 probabilities per row"
    ),
    (
      "an unknown output", "foreign/skl2onnx_logistic.onnx", mapping(extra: "output: proba"),
      "output: 'proba' is not an output of the model (output_label, output_probability)"
    ),
    (
      "a sequence input without its window", "foreign/pytorch_lstm.onnx",
      mapping(classes: ["DOWN", "FLAT", "UP"], columns: ["rsi_14"]),
      "inputs.windows: 1 column(s) mapped, the model's input windows is [?, 16, 13]"
    ),
    (
      "classes the trees do not give", "lightgbm/binary_nan.txt",
      mapping(classes: ["DOWN", "FLAT", "UP"]), "classes: 3 classes, the model gives 2"
    ),
    (
      "a regression", "lightgbm/regression.txt", mapping(),
      "objective 'regression' gives no class probabilities"
    ),
    (
      "too many tree columns", "lightgbm/binary_nan.txt", mapping(columns: columns + ["hvol_20"]),
      "columns: 14 columns mapped; the model reads 13 features"
    ),
    (
      "an unknown interval", "lightgbm/binary_nan.txt",
      mapping().replacingOccurrences(of: "interval: 1h", with: "interval: 7m"),
      "interval '7m' is not one feature set v1 is defined for"
    ),
  ]

  @Test(
    "Mapping mistakes are refused with INVALID_ARGUMENT naming the field and what is wrong",
    arguments: ModelImportTests.refusals.map(\.0)
  )
  func refuses(problem: String) throws {
    let (_, file, mapping, message) = try #require(Self.refusals.first { $0.0 == problem })
    let url =
      file.hasPrefix("foreign/")
      ? Self.foreign.appendingPathComponent(String(file.dropFirst(8)))
      : Self.lightgbm.appendingPathComponent(String(file.dropFirst(9)))
    let error = try #require(throws: VaneError.self) {
      let prepared = try Self.prepare(url, mapping: mapping)
      _ = try Self.serve(prepared)
    }
    #expect(error.code == .invalidArgument)
    #expect(error.message.contains(message), "message: \(error.message)")
  }

  /// (what is wrong, the document, what the message must contain)
  static let badDocuments: [(String, String, String)] = [
    ("no symbols", "interval: 1h\nclasses: [DOWN, UP]\nhorizon: 1", "symbols is required"),
    (
      "one class", "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [UP]\nhorizon: 1",
      "classes: need two or more distinct classes"
    ),
    (
      "a fractional horizon", "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1.5",
      "horizon: must be a whole number"
    ),
    (
      "an unknown key",
      "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1\nhorizon_bars: 2",
      "horizon_bars: is not a key here"
    ),
    (
      "columns and inputs",
      "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1\ncolumns: [a]\ninputs: {x: [a]}",
      "give columns or inputs, not both"
    ),
    (
      "horizon and horizons",
      "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1\nhorizons: [2]",
      "give horizon or horizons, not both"
    ),
    (
      "a repeated horizon",
      "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizons: [2, 2]",
      "horizons: lists a horizon twice"
    ),
    (
      "a bad transform",
      "symbols: [BTCUSDT]\ninterval: 1h\nclasses: [DOWN, UP]\nhorizon: 1\noutput_transform: tanh",
      "'tanh' is not one of none, softmax, sigmoid"
    ),
    ("not YAML", "symbols: [BTCUSDT\n", "not YAML or JSON"),
  ]

  @Test(
    "Malformed mapping documents are refused naming the line and key",
    arguments: ModelImportTests.badDocuments.map(\.0)
  )
  func badDocument(problem: String) throws {
    let (_, text, message) = try #require(Self.badDocuments.first { $0.0 == problem })
    let error = try #require(throws: VaneError.self) {
      try ModelImport.Mapping.parse(text, source: "m.yaml")
    }
    #expect(error.code == .invalidArgument && error.message.hasPrefix("m.yaml"))
    #expect(error.message.contains(message), "message: \(error.message)")
  }

  @Test("Formats are recognised from content")
  func formats() throws {
    #expect(ModelImport.Format.detect(Data("tree\nversion=v4\n".utf8)) == .lightgbm)
    #expect(
      ModelImport.Format.detect(Data(#"  {"learner": {}, "version": [3, 1, 2]}"#.utf8)) == .xgboost
    )
    #expect(
      ModelImport.Format.detect(
        try Data(contentsOf: Self.foreign.appendingPathComponent("skl2onnx_logistic.onnx"))
      ) == .onnx
    )
  }
}
