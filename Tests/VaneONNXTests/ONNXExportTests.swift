import Foundation
import Testing
import VaneCore
import VaneModels
import VaneONNXRuntime
import VaneTestSupport

@testable import VaneONNX

/// Every model kind exported and run by ONNX Runtime (Python) on the inputs the native model
/// saw: the probabilities agree to 1e-5.
@Suite("ONNX export")
struct ONNXExportTests {
  // MARK: Data

  /// Rows of `d` normal features; binary: a noisy linear-and-product rule; 3 classes: its terciles.
  static func tabular(
    _ n: Int,
    features d: Int,
    classes k: Int,
    seed: UInt64
  ) -> (x: [Double], y: [Int]) {
    var rng = SplitMix64(seed: seed)
    var x: [Double] = [], y: [Int] = []
    for _ in 0 ..< n {
      let row = (0 ..< d).map { _ in rng.normal() }
      x += row
      let score = 0.9 * row[0] - 0.6 * row[1] + 0.5 * row[2] * row[3 % d] + 0.5 * rng.normal()
      y.append(k == 2 ? (score > 0 ? 1 : 0) : (score < -0.4 ? 0 : score < 0.4 ? 1 : 2))
    }
    return (x, y)
  }

  /// Windows of `L` steps × `d` features and three heads: the first feature's sum, the second's
  /// trend, the third's last value.
  static func windows(
    _ n: Int,
    length L: Int,
    features d: Int,
    seed: UInt64
  ) -> (x: [Double], y: [Int]) {
    var rng = SplitMix64(seed: seed)
    var x: [Double] = [], y: [Int] = []
    for _ in 0 ..< n {
      let w = (0 ..< (L * d)).map { _ in rng.normal() }
      x += w
      y.append((0 ..< L).reduce(0.0) { $0 + w[$1 * d] } > 0 ? 1 : 0)
      y.append(w[(L - 1) * d + 1] > w[1] ? 1 : 0)
      y.append(w[(L - 1) * d + 2 % d] > 0 ? 1 : 0)
    }
    return (x, y)
  }

  /// A transform with distinct per-column centers and scales.
  static func transform(columns: Int, zeroNonFinite: Bool) -> ONNXInputTransform {
    ONNXInputTransform(
      center: (0 ..< columns).map { [10, -3, 0.5, 100, 2.25][$0 % 5] },
      scale: (0 ..< columns).map { [2, 0.5, 3, 10, 0.75][$0 % 5] },
      zeroNonFinite: zeroNonFinite
    )
  }

  /// Raw values whose transform gives `scaled` (column = index mod `columns`).
  static func raw(_ scaled: [Double], _ t: ONNXInputTransform, columns: Int) -> [Double] {
    scaled.indices.map { scaled[$0] * t.scale[$0 % columns] + t.center[$0 % columns] }
  }

  /// What the native path feeds the model: (x − center) / scale, then non-finite → 0 when asked.
  static func prepare(_ raw: [Double], _ t: ONNXInputTransform, columns: Int) -> [Double] {
    raw.indices.map { i in
      let value = t.scales ? (raw[i] - t.center[i % columns]) / t.scale[i % columns] : raw[i]
      return t.zeroNonFinite && !value.isFinite ? 0 : value
    }
  }

  /// Some NaN and ±∞ among `values`.
  static func spoil(_ values: [Double], seed: UInt64, infinities: Bool) -> [Double] {
    var rng = SplitMix64(seed: seed)
    return values.map { value in
      let u = rng.uniform()
      if u < 0.08 { return .nan }
      if infinities, u < 0.10 { return .infinity }
      if infinities, u < 0.12 { return -.infinity }
      return value
    }
  }

  static func neural(seed: UInt64) -> NeuralTraining {
    var settings = NeuralTraining()
    settings.maxEpochs = 6
    settings.batchSize = 64
    settings.learningRate = 5e-3
    settings.patience = 3
    settings.seed = seed
    return settings
  }

  // MARK: Cases

  static func logisticRegressionCases() throws -> [ONNXRuntimeHarness.Case] {
    var cases: [ONNXRuntimeHarness.Case] = []
    let d = 5
    for (k, transformed) in [(2, false), (3, true), (2, true), (3, false)] {
      let (x, y) = Self.tabular(400, features: d, classes: k, seed: UInt64(10 + k))
      let model = try LogisticRegression.fit(
        features: x,
        count: 400,
        featureCount: d,
        labels: y,
        classCount: k
      )
      let (test, _) = Self.tabular(60, features: d, classes: k, seed: 99)
      let name = "logistic_\(k)class" + (transformed ? "_transform" : "")
      if transformed {
        let t = Self.transform(columns: d, zeroNonFinite: true)
        let raw = Self.spoil(Self.raw(test, t, columns: d), seed: 5, infinities: true)
        let onnx = try ONNXExport.logisticRegression(
          model,
          transform: t,
          classNames: (0 ..< k).map { "class \($0)" }
        )
        cases.append(
          .init(
            name: name,
            model: onnx,
            input: "features",
            inputShape: [60, d],
            inputs: raw,
            outputShape: [60, k],
            expected: model.probabilities(Self.prepare(raw, t, columns: d), count: 60)
          )
        )
      } else {
        let onnx = try ONNXExport.logisticRegression(model)
        cases.append(
          .init(
            name: name,
            model: onnx,
            input: "features",
            inputShape: [60, d],
            inputs: test,
            outputShape: [60, k],
            expected: model.probabilities(test, count: 60)
          )
        )
      }
    }
    return cases
  }

  static func mlpCases() throws -> [ONNXRuntimeHarness.Case] {
    var cases: [ONNXRuntimeHarness.Case] = []
    let d = 4
    let variants: [(Int, MLP.Activation, Bool)] = [
      (2, .relu, false), (2, .gelu, true), (3, .gelu, false), (3, .relu, true), (3, .tanh, false),
    ]
    for (index, (k, activation, transformed)) in variants.enumerated() {
      let (x, y) = Self.tabular(600, features: d, classes: k, seed: UInt64(20 + index))
      let (vx, vy) = Self.tabular(200, features: d, classes: k, seed: UInt64(40 + index))
      let model = try MLP.train(
        features: x,
        count: 600,
        featureCount: d,
        labels: y,
        classCount: k,
        validation: (vx, 200, vy),
        units: [8, 6],
        activation: activation,
        dropout: 0.1,
        training: Self.neural(seed: UInt64(index))
      )
      let (test, _) = Self.tabular(60, features: d, classes: k, seed: 98)
      let name = "mlp_\(k)class_\(activation.rawValue)" + (transformed ? "_transform" : "")
      if transformed {
        let t = Self.transform(columns: d, zeroNonFinite: true)
        let raw = Self.spoil(Self.raw(test, t, columns: d), seed: 6, infinities: true)
        cases.append(
          .init(
            name: name,
            model: try ONNXExport.mlp(model, transform: t),
            input: "features",
            inputShape: [60, d],
            inputs: raw,
            outputShape: [60, k],
            expected: model.probabilities(Self.prepare(raw, t, columns: d), count: 60)
          )
        )
      } else {
        cases.append(
          .init(
            name: name,
            model: try ONNXExport.mlp(
              model,
              classNames: k == 2 ? ["down", "up"] : ["down", "flat", "up"]
            ),
            input: "features",
            inputShape: [60, d],
            inputs: test,
            outputShape: [60, k],
            expected: model.probabilities(test, count: 60)
          )
        )
      }
    }
    return cases
  }

  static func lstmCases() throws -> [ONNXRuntimeHarness.Case] {
    var cases: [ONNXRuntimeHarness.Case] = []
    let (L, d, heads) = (6, 3, 3)
    for (layers, transformed) in [(1, false), (2, true), (2, false)] {
      let (x, y) = Self.windows(300, length: L, features: d, seed: UInt64(60 + layers))
      let (vx, vy) = Self.windows(100, length: L, features: d, seed: UInt64(70 + layers))
      var settings = Self.neural(seed: UInt64(layers))
      settings.batchSize = 32
      settings.maxEpochs = 3
      let model = try LSTM.train(
        sequences: x,
        count: 300,
        sequenceLength: L,
        featureCount: d,
        labels: y,
        heads: heads,
        validation: (vx, 100, vy),
        hiddenSize: 8,
        layerCount: layers,
        dropout: 0.1,
        training: settings
      )
      let (test, _) = Self.windows(40, length: L, features: d, seed: 97)
      let name = "lstm_\(layers)layer" + (transformed ? "_transform" : "")
      if transformed {
        let t = Self.transform(columns: d, zeroNonFinite: true)
        let raw = Self.spoil(Self.raw(test, t, columns: d), seed: 7, infinities: true)
        cases.append(
          .init(
            name: name,
            model: try ONNXExport.lstm(model, transform: t, headNames: ["5h", "12h", "24h"]),
            input: "sequences",
            inputShape: [40, L, d],
            inputs: raw,
            outputShape: [40, heads],
            expected: model.probabilities(Self.prepare(raw, t, columns: d), count: 40)
          )
        )
      } else {
        cases.append(
          .init(
            name: name,
            model: try ONNXExport.lstm(model),
            input: "sequences",
            inputShape: [40, L, d],
            inputs: test,
            outputShape: [40, heads],
            expected: model.probabilities(test, count: 40)
          )
        )
      }
    }
    return cases
  }

  /// Binary and 3-class models with NaN features: early-stopped (the JSON holds the kept rounds
  /// only), and trained without early stopping with `rounds` then lowered, as a model whose JSON
  /// holds more rounds than it uses (the export must drop the rest).
  static func xgboostCases() throws -> [ONNXRuntimeHarness.Case] {
    var cases: [ONNXRuntimeHarness.Case] = []
    let d = 5
    for (k, transformed, earlyStopped) in [
      (2, false, true), (3, true, true), (2, true, false), (3, false, false),
    ] {
      let (clean, y) = Self.tabular(800, features: d, classes: k, seed: UInt64(80 + k))
      let x = Self.spoil(clean, seed: UInt64(90 + k), infinities: false)
      var parameters = XGBoostModel.Parameters()
      parameters.rounds = earlyStopped ? 80 : 30
      parameters.earlyStoppingRounds = earlyStopped ? 5 : 0
      parameters.learningRate = 0.4
      parameters.maxDepth = 4
      parameters.threads = 1
      parameters.seed = 3
      let train = 0 ..< (600 * d), valid = (600 * d) ..< (800 * d)
      var model = try XGBoostModel.fit(
        features: Array(x[train]),
        count: 600,
        featureCount: d,
        labels: Array(y[0 ..< 600]),
        classCount: k,
        validation: earlyStopped ? (Array(x[valid]), 200, Array(y[600 ..< 800])) : nil,
        parameters: parameters
      )
      let perRound = k == 2 ? 1 : k
      var test = Self.spoil(
        Self.tabular(60, features: d, classes: k, seed: 96).x,
        seed: 8,
        infinities: false
      )
      if earlyStopped {
        #expect(
          model.rounds < parameters.rounds,
          "early stopping kept \(model.rounds) of \(parameters.rounds) rounds"
        )
      } else {
        #expect(model.rounds == 30)
        let all = try model.probabilities(test, count: 60)
        model.rounds = 12
        let kept = try model.probabilities(test, count: 60)
        #expect(
          zip(kept, all).map { abs($0 - $1) }.max()! > 1e-3,
          "the dropped rounds change the probabilities"
        )
      }
      let trees = try TreeEnsemble.xgboost(
        model.json,
        classCount: k,
        featureCount: d,
        rounds: model.rounds
      )
      #expect(trees.trees.count == model.rounds * perRound)
      #expect(trees.totalTrees == (earlyStopped ? model.rounds : 30) * perRound)
      // Rows sitting exactly on split thresholds (x < t goes left, x == t right).
      for (row, tree) in trees.trees.prefix(20).enumerated() where !tree.isLeaf(0) {
        test[row * d + tree.feature[0]] = Double(tree.value[0])
      }
      let name =
        "xgboost_\(k)class" + (earlyStopped ? "_early_stopped" : "_12_of_30_rounds")
        + (transformed ? "_transform" : "")
      if transformed {
        let t = Self.transform(columns: d, zeroNonFinite: false)
        let raw = Self.raw(test, t, columns: d)
        cases.append(
          .init(
            name: name,
            model: try ONNXExport.xgboost(model, transform: t),
            input: "features",
            inputShape: [60, d],
            inputs: raw,
            outputShape: [60, k],
            expected: try model.probabilities(Self.prepare(raw, t, columns: d), count: 60)
          )
        )
      } else {
        cases.append(
          .init(
            name: name,
            model: try ONNXExport.xgboost(model, classNames: (0 ..< k).map { "c\($0)" }),
            input: "features",
            inputShape: [60, d],
            inputs: test,
            outputShape: [60, k],
            expected: try model.probabilities(test, count: 60)
          )
        )
      }
    }
    // Imbalanced labels and two shallow rounds: every leaf weight is positive, where older ONNX
    // Runtime aggregators skip the two-class TreeEnsembleClassifier's logistic (the export's
    // regressor-plus-sigmoid must not care).
    let (x, _) = Self.tabular(400, features: d, classes: 2, seed: 85)
    let y = (0 ..< 400).map { $0 % 20 == 0 ? 0 : 1 }
    var parameters = XGBoostModel.Parameters()
    parameters.rounds = 2
    parameters.earlyStoppingRounds = 0
    parameters.maxDepth = 2
    parameters.learningRate = 0.3
    parameters.threads = 1
    let model = try XGBoostModel.fit(
      features: x,
      count: 400,
      featureCount: d,
      labels: y,
      classCount: 2,
      parameters: parameters
    )
    let trees = try TreeEnsemble.xgboost(
      model.json,
      classCount: 2,
      featureCount: d,
      rounds: model.rounds
    )
    let leaves = trees.trees.flatMap { tree in
      tree.value.indices.filter { tree.isLeaf($0) }.map { tree.value[$0] }
    }
    #expect(leaves.allSatisfy { $0 > 0 }, "leaf weights \(leaves)")
    let test = Self.tabular(60, features: d, classes: 2, seed: 95).x
    cases.append(
      .init(
        name: "xgboost_2class_positive_leaves",
        model: try ONNXExport.xgboost(model),
        input: "features",
        inputShape: [60, d],
        inputs: test,
        outputShape: [60, 2],
        expected: try model.probabilities(test, count: 60)
      )
    )
    return cases
  }

  // MARK: Tests

  @Test(
    "ONNX Runtime reproduces every exported model (logistic regression, MLP, LSTM, XGBoost; with and without input transform) to 1e-5",
    .enabled(
      if: ONNXRuntimeHarness.enabled,
      "needs python3 with onnxruntime, or VANE_REQUIRE_ONNXRUNTIME=1"
    )
  )
  func onnxRuntimeMatchesNative() throws {
    let cases =
      try Self.logisticRegressionCases() + Self.mlpCases() + Self.lstmCases() + Self.xgboostCases()
    let (results, versions, directory) = try ONNXRuntimeHarness.check(cases)
    defer { try? FileManager.default.removeItem(at: directory) }
    var summary: [String] = []
    for c in cases {
      guard let result = results[c.name] else {
        Issue.record("\(c.name): not checked by onnx_check.py")
        continue
      }
      #expect(result.error == nil, "\(c.name): \(result.error ?? "")")
      #expect(
        result.checker == "ok" || (result.checker == "skipped" && !ONNXRuntimeHarness.required),
        "\(c.name): onnx.checker \(result.checker)"
      )
      #expect(result.producer == "vane")
      let kind =
        c.name.hasPrefix("logistic") ? "logistic_regression" : String(c.name.prefix { $0 != "_" })
      #expect(result.metadata[ONNXExport.kindKey] == kind, "\(c.name): metadata \(result.metadata)")
      let difference = try #require(result.maxAbsDiff, "\(c.name): no difference reported")
      #expect(difference < 1e-5, "\(c.name): max |ONNX − native| = \(difference)")
      summary.append("\(c.name) \(String(format: "%.2e", difference))")
    }
    #expect(results.count == cases.count)
    print("ONNX export vs native (\(versions)): " + summary.joined(separator: ", "))
  }

  @Test("Transforms, names and metadata that do not fit the model are refused naming the field")
  func refusesMisfits() throws {
    let (x, y) = Self.tabular(100, features: 3, classes: 2, seed: 1)
    let model = try LogisticRegression.fit(
      features: x,
      count: 100,
      featureCount: 3,
      labels: y,
      classCount: 2
    )
    func field(_ body: () throws -> Data) -> String? {
      do {
        _ = try body()
        return nil
      } catch let error as VaneError {
        return error.code == .invalidArgument
          ? String(error.message.prefix { $0 != ":" }) : "\(error.code)"
      } catch {
        return "\(error)"
      }
    }
    #expect(
      field {
        try ONNXExport.logisticRegression(model, transform: .init(center: [0, 0], scale: [1, 1]))
      } == "transform.center"
    )
    #expect(
      field {
        try ONNXExport.logisticRegression(
          model,
          transform: .init(center: [0, 0, 0], scale: [1, 0, 1])
        )
      } == "transform.scale[1]"
    )
    #expect(
      field {
        try ONNXExport.logisticRegression(
          model,
          transform: .init(center: [0, .nan, 0], scale: [1, 1, 1])
        )
      } == "transform.center[1]"
    )
    #expect(
      field { try ONNXExport.logisticRegression(model, classNames: ["only one"]) } == "class_names"
    )
    #expect(
      field { try ONNXExport.logisticRegression(model, metadata: [ONNXExport.kindKey: "other"]) }
        == "metadata[vane.model_kind]"
    )
    var broken = model
    broken.weights.removeLast()
    #expect(field { try ONNXExport.logisticRegression(broken) } == "model.weights")
    #expect(
      field {
        try ONNXExport.logisticRegression(
          model,
          transform: .init(zeroNonFinite: true),
          metadata: ["bundle": "b1"]
        )
      } == nil
    )

    let lstm = LSTM(
      inputCount: 2,
      hiddenSize: 3,
      layerCount: 2,
      sequenceLength: 4,
      heads: 2,
      dropout: 0,
      seed: 1
    )
    var badLSTM = lstm
    badLSTM.layers[1].recurrentWeights.append(0)
    #expect(field { try ONNXExport.lstm(badLSTM) } == "model.layers[1].recurrent_weights")
    #expect(field { try ONNXExport.lstm(lstm, headNames: ["5h"]) } == "head_names")
    var mlp = MLP(inputCount: 3, classCount: 3, units: [4], activation: .gelu, dropout: 0, seed: 1)
    mlp.temperature = 0
    #expect(field { try ONNXExport.mlp(mlp) } == "model.temperature")
  }

  @Test("The ModelProto starts with IR version 8 and names the producer")
  func header() throws {
    let lstm = LSTM(
      inputCount: 2,
      hiddenSize: 3,
      layerCount: 1,
      sequenceLength: 4,
      heads: 2,
      dropout: 0,
      seed: 1
    )
    let bytes = [UInt8](try ONNXExport.lstm(lstm))
    // Field 1 (ir_version) = 8, then field 2 (producer_name) = "vane".
    #expect(Array(bytes.prefix(8)) == [0x08, 0x08, 0x12, 0x04] + Array("vane".utf8))
  }
}

/// Vane's own engine on Vane's own exports: every exported model (the same cases ONNX Runtime
/// checks) answers as the native model does, to 1e-5.
@Suite("ONNX engine: Vane's exports")
struct ONNXEngineExportTests {
  @Test(
    "The engine reproduces every exported model (logistic regression, MLP, LSTM, XGBoost; with and without input transform) to 1e-5"
  )
  func engineMatchesNative() async throws {
    // Training the models takes seconds: on the blocking pool, not the two cooperative threads
    // the rest of the suite's async tests share.
    try await BlockingPool.shared.run { try Self.check() }
  }

  static func check() throws {
    let cases =
      try ONNXExportTests.logisticRegressionCases() + ONNXExportTests.mlpCases()
      + ONNXExportTests.lstmCases() + ONNXExportTests.xgboostCases()
    var summary: [String] = []
    for c in cases {
      let model = try ONNXModel(data: c.model)
      let input = try #require(model.inputs.first { $0.name == c.input })
      let tensor =
        input.elementType == .float
        ? ONNXTensor(shape: c.inputShape, floats: c.inputs.map(Float.init))
        : ONNXTensor(shape: c.inputShape, doubles: c.inputs)
      let outputs = try model.run([c.input: tensor])
      let probabilities = try #require(
        outputs["probabilities"],
        "\(c.name): outputs \(outputs.keys.sorted())"
      )
      #expect(probabilities.shape == c.outputShape, "\(c.name)")
      let values = try #require(
        probabilities.elementType == .double
          ? { if case .double(let v) = probabilities.values { v } else { nil } }() : nil,
        "\(c.name): \(probabilities.elementType)"
      )
      let difference = zip(values, c.expected).map { abs($0 - $1) }.max() ?? .infinity
      #expect(difference < 1e-5, "\(c.name): max |engine − native| = \(difference)")
      summary.append("\(c.name) \(String(format: "%.1e", difference))")
    }
    print("ONNX engine vs native: " + summary.joined(separator: ", "))
  }
}
