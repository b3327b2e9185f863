import Foundation
import Testing
import VaneBundle
import VaneCore
import VaneFeatures
import VaneModels
import VaneQuality
import VaneTestSupport

@testable import VaneServing
@testable import VaneTraining

/// A bundle the trainer writes, served: the predictor's path equals the trainer's final models.
@Suite("Serving a trained bundle")
struct ServableModelTests {
  /// Trains and writes a bundle of `models` (stacked when more than one) on synthetic rows.
  static func bundle(
    _ models: [ModelSpec],
    stack: Bool,
    onnx: Bool = false,
    missing: MissingValues = .exclude
  ) throws -> (
    data: TrainingData, final: FinalFit, bundle: ModelBundle, cleanup: @Sendable () -> Void
  ) {
    let data = try WalkForwardRunTests.data(rows: 2_000, seed: 5)
    let spec = RunSpec(
      models: models,
      plan: try WalkForwardPlan(
        trainBars: 300,
        testBars: 150,
        purgeBars: 3,
        embargoBars: 1,
        validationBars: 30
      ),
      stacking: stack ? .init(minimumFolds: 2) : nil,
      missingValues: missing
    )
    let runs = try WalkForwardRun.run(spec, data: data)
    let final = try WalkForwardRun.fitFinal(spec, data: data, runs: runs)
    let directory = TestScratch.directory("serve")
    let path = directory.appendingPathComponent("b.tar.gz").path
    let request = BundleRequest(
      id: "serve-test",
      created: Date(timeIntervalSince1970: 1_700_000_000),
      symbols: data.symbols,
      interval: "1h",
      taskKind: "binary",
      featureSetID: "test",
      featureSetSHA256: String(repeating: "0", count: 64),
      calibration: .temperature,
      exportONNX: onnx,
      missingValues: missing
    )
    _ = try TrainingBundle.write(request, data: data, runs: runs, final: final, to: path)
    return (
      data, final, try ModelBundle.open(path: path),
      { try? FileManager.default.removeItem(at: directory) }
    )
  }

  /// ``bundle(_:stack:)`` on the blocking pool: training must not hold a thread of the
  /// cooperative pool that the suite's RPC tests need.
  static func bundleOffPool(
    _ models: [ModelSpec],
    stack: Bool
  ) async throws -> (
    data: TrainingData, final: FinalFit, bundle: ModelBundle, cleanup: @Sendable () -> Void
  ) {
    try await BlockingPool.shared.run { try Self.bundle(models, stack: stack) }
  }

  static func models() -> [ModelSpec] {
    var xgb = XGBoostModel.Parameters()
    xgb.rounds = 30
    xgb.maxDepth = 3
    xgb.earlyStoppingRounds = 5
    xgb.threads = 1
    var mlp = MLP.Training()
    mlp.maxEpochs = 5
    mlp.batchSize = 64
    return [
      ModelSpec(name: "logreg", kind: .logisticRegression(.init())),
      ModelSpec(name: "xgb", kind: .xgboost(xgb)),
      ModelSpec(
        name: "mlp",
        kind: .mlp(units: [8], activation: .relu, dropout: 0.1, training: mlp)
      ),
    ]
  }

  /// Probabilities of a final model on raw rows, as the trainer computes them (libxgboost for
  /// XGBoost).
  static func trainerProbabilities(
    _ model: FittedModel,
    rows: [Double],
    count: Int,
    scaler: FeatureScaler?
  ) throws -> [Double] {
    let scaled = scaler.map { $0.transform(batch: rows) } ?? rows
    let finite = scaled.map { $0.isFinite ? $0 : 0 }
    switch model {
    case .logisticRegression(let m): return m.probabilities(finite, count: count)
    case .mlp(let m): return m.probabilities(finite, count: count)
    case .xgboost(let m): return try m.probabilities(scaled, count: count)
    case .lstm: preconditionFailure("not served")
    }
  }

  /// A bundle served as the trainer's final models read missing values: NaN to trees, the scaled
  /// center (0) to the others (NATIVE; IMPUTE, which is the same for them, without a tree).
  static func served(_ bundle: ModelBundle) throws -> ServableModel {
    var model = try ServableModel(bundle: bundle)
    let trees = bundle.manifest.models.contains { $0.kind == .xgboost }
    try model.choose(missingValues: trees ? .native : .impute, field: "missing")
    return model
  }

  /// Rows to predict: the data's own, with missing values in some.
  static func rows(_ data: TrainingData, count: Int) -> [Double] {
    var rows = Array(data.features[0 ..< (count * data.columns.count)])
    for r in stride(from: 0, to: count, by: 7) { rows[r * data.columns.count + 1] = .nan }
    return rows
  }

  @Test(
    "One logistic regression: raw equals the trainer's final model within 1e-12, calibrated is the bundle's calibration of it"
  )
  func single() async throws {
    let (data, final, bundle, cleanup) = try await Self.bundleOffPool(
      [ModelSpec(name: "logreg", kind: .logisticRegression(.init()))],
      stack: false
    )
    defer { cleanup() }
    #expect(bundle.manifest.models.allSatisfy { $0.role == .single })
    let servable = try Self.served(bundle)
    let n = 50
    let rows = Self.rows(data, count: n)
    let answers = try servable.predict(rows, count: n)
    #expect(answers.count == n && answers.allSatisfy { $0.map(\.horizon) == [1, 3] })
    for (h, horizon) in data.horizons.enumerated() {
      let model = try #require(final.models.first { $0.horizons == [horizon] })
      let expected = try Self.trainerProbabilities(
        model.model,
        rows: rows,
        count: n,
        scaler: final.scaler
      )
      let got = answers.flatMap { $0[h].raw }
      #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-12 })
    }
    let calibration = try Calibration(
      method: try #require(CalibrationMethod(rawValue: bundle.manifest.calibration!.method)),
      parametersJSON: bundle.manifest.calibration!.parameters,
      classCount: 2
    )
    let first = answers.flatMap { $0[0].raw }
    #expect(
      answers.flatMap { $0[0].calibrated }
        == (try calibration.apply(probabilities: first, classCount: 2))
    )
    #expect(calibration != .none && answers[0][0].calibrated != answers[0][0].raw)
    // The other horizon is not calibrated (the bundle's calibration was fitted at the first).
    #expect(answers.allSatisfy { $0[1].calibrated == $0[1].raw })
  }

  @Test(
    "A stack over logistic regression, XGBoost and an MLP: equal to the trainer's final models and meta-learner"
  )
  func stacked() async throws {
    let (data, final, bundle, cleanup) = try await Self.bundleOffPool(Self.models(), stack: true)
    defer { cleanup() }
    let servable = try Self.served(bundle)
    #expect(Set(servable.modelKinds) == [.logisticRegression, .xgboost, .mlp, .stack])
    let n = 60, width = data.columns.count
    let rows = Self.rows(data, count: n)
    let answers = try servable.predict(rows, count: n)
    var worstBase = 0.0, worstStack = 0.0
    for (h, horizon) in data.horizons.enumerated() {
      let stack = try #require(final.stacks.first { $0.horizon == horizon })
      var outputs: [[Double]] = []
      for name in stack.bases {
        let model = try #require(final.models.first { $0.name == name && $0.horizons == [horizon] })
        outputs.append(
          try Self.trainerProbabilities(model.model, rows: rows, count: n, scaler: final.scaler)
        )
      }
      let volatility = try #require(
        stack.volatilityColumn.flatMap { data.columns.firstIndex(of: $0) }
      )
      let meta = (0 ..< n).flatMap { r in
        StackFeatures.row(
          outputs.map { Array($0[(2 * r) ..< (2 * r + 2)]) },
          volatility: rows[r * width + volatility]
        )!
      }
      let expected = stack.model.probabilities(stack.scaler.transform(batch: meta), count: n)
      let got = answers.flatMap { $0[h].raw }
      worstStack = max(worstStack, zip(got, expected).map { abs($0 - $1) }.max()!)
      // XGBoost alone: the native trees beside libxgboost's float probabilities.
      let xgb = try #require(final.models.first { $0.name == "xgb" && $0.horizons == [horizon] })
      let libxgboost = try Self.trainerProbabilities(
        xgb.model,
        rows: rows,
        count: n,
        scaler: final.scaler
      )
      let xgbOnly = try ServableModelTests.nativeTrees(
        bundle,
        horizon: horizon,
        rows: rows,
        count: n,
        scaler: final.scaler
      )
      worstBase = max(worstBase, zip(xgbOnly, libxgboost).map { abs($0 - $1) }.max()!)
    }
    // libxgboost answers in float: its probabilities carry float rounding (~6e-8); the stack
    // reads their logits, so it agrees to the same order.
    #expect(worstBase <= 1e-6, "XGBoost: native vs libxgboost \(worstBase)")
    #expect(worstStack <= 1e-5, "stack: served vs trainer \(worstStack)")
  }

  /// The bundle's XGBoost model of `horizon` through the native evaluator.
  static func nativeTrees(
    _ bundle: ModelBundle,
    horizon: Int,
    rows: [Double],
    count: Int,
    scaler: FeatureScaler?
  ) throws -> [Double] {
    let entry = try #require(
      bundle.manifest.models.first { $0.kind == .xgboost && $0.horizons == [horizon] }
    )
    let ensemble = try TreeEnsemble.xgboost(
      try bundle.data(entry.file),
      classCount: 2,
      featureCount: bundle.manifest.featureSet.columns.count,
      rounds: 0
    )
    let scaled = scaler.map { $0.transform(batch: rows) } ?? rows
    let width = bundle.manifest.featureSet.columns.count
    return scaled.withUnsafeBufferPointer { all in
      (0 ..< count).flatMap { r in
        ensemble.probabilities(
          UnsafeBufferPointer(rebasing: all[(r * width) ..< ((r + 1) * width)])
        )
      }
    }
  }

  @Test("Model files: written and read through the same types, a round trip gives identical models")
  func roundTrip() throws {
    let model = try LogisticRegression.fit(
      features: [0, 1, 1, 0, 1, 1, 0.5, 0.2],
      count: 4,
      featureCount: 2,
      labels: [0, 1, 1, 0],
      classCount: 2,
      parameters: .init()
    )
    let file = BundleModelFile(
      kind: .logisticRegression,
      horizons: [1],
      classes: ["DOWN", "UP"],
      columns: ["a", "b"],
      model: model
    )
    let data = try BundleJSON.encoder().encode(file)
    let read = try BundleJSON.model(
      LogisticRegression.self,
      from: data,
      file: "m.json",
      kind: .logisticRegression,
      classes: ["DOWN", "UP"],
      columns: ["a", "b"]
    )
    #expect(read.model == model)
    #expect(
      read.model.probabilities([0.3, 0.7], count: 1) == model.probabilities([0.3, 0.7], count: 1)
    )
  }

  @Test(
    "A model file that does not fit the bundle is refused naming the file and the reason",
    arguments: [
      ("kind", #"vane.model.v1"#, "kind logistic_regression, bundle.json says mlp"),
      ("columns", #"vane.model.v1"#, "columns are not the feature set's"),
      ("format", #"vane.model.v0"#, "format 'vane.model.v0'"),
    ]
  )
  func refused(defect: String, format: String, message: String) throws {
    let model = try LogisticRegression.fit(
      features: [0, 1, 1, 0, 1, 1, 0.5, 0.2],
      count: 4,
      featureCount: 2,
      labels: [0, 1, 1, 0],
      classCount: 2,
      parameters: .init()
    )
    var file = BundleModelFile(
      kind: .logisticRegression,
      horizons: [1],
      classes: ["DOWN", "UP"],
      columns: ["a", "b"],
      model: model
    )
    file.format = format
    let data = try BundleJSON.encoder().encode(file)
    let error = try #require(throws: VaneError.self) {
      _ = try BundleJSON.model(
        LogisticRegression.self,
        from: data,
        file: "models/m.json",
        kind: defect == "kind" ? .mlp : .logisticRegression,
        classes: ["DOWN", "UP"],
        columns: defect == "columns" ? ["a", "c"] : ["a", "b"]
      )
    }
    #expect(error.code == .failedPrecondition)
    #expect(
      error.message.contains("models/m.json") && error.message.contains(message),
      "\(error.message)"
    )
  }

  @Test("Bad input: a wrong row width and an unknown horizon are INVALID_ARGUMENT naming the field")
  func badInput() async throws {
    let (_, _, bundle, cleanup) = try await Self.bundleOffPool(
      [ModelSpec(name: "logreg", kind: .logisticRegression(.init()))],
      stack: false
    )
    defer { cleanup() }
    let servable = try ServableModel(bundle: bundle)
    let width = try #require(throws: VaneError.self) { _ = try servable.predict([1, 2], count: 1) }
    #expect(width.code == .invalidArgument && width.message.contains("features"))
    let horizon = try #require(throws: VaneError.self) {
      _ = try servable.predict([1, 2, 0.5], count: 1, horizons: [7])
    }
    #expect(horizon.code == .invalidArgument && horizon.message.contains("horizon_bars"))
    // Inputs made for a model of another width are refused, not read past their end.
    let foreign = ServableModel.Inputs(count: 2, features: [1, 2], last: [1, 2], scaled: [1, 2])
    let mismatch = try #require(throws: VaneError.self) { _ = try servable.predict(foreign) }
    #expect(mismatch.code == .invalidArgument && mismatch.message.contains("another model"))
    #expect(servable.assess(foreign, now: Date()).count == 2)
  }

  @Test(
    "Served answers equal the bundle's ONNX export through ONNX Runtime within 1e-5 (logistic regression, XGBoost, MLP)",
    .enabled(
      if: ONNXRuntimeHarness.enabled,
      "needs python3 with onnxruntime, or VANE_REQUIRE_ONNXRUNTIME=1"
    )
  )
  func onnxParity() async throws {
    var cases: [ONNXRuntimeHarness.Case] = []
    // Trained with IMPUTE too: the export's graph imputes the scaler's values before scaling,
    // which for XGBoost differs from routing NaN.
    let trained =
      Self.models().map { ($0, MissingValues.exclude) } + [
        (Self.models()[1], .impute), (Self.models()[0], .impute),
      ]
    for (model, missing) in trained {
      let (data, _, bundle, cleanup) = try await BlockingPool.shared.run {
        try Self.bundle([model], stack: false, onnx: true, missing: missing)
      }
      defer { cleanup() }
      let served = missing == .impute ? try ServableModel(bundle: bundle) : try Self.served(bundle)
      #expect(served.missingValues == missing || missing == .exclude)
      let count = 200
      let rows = Self.rows(data, count: count)
      let horizon = data.horizons[0]
      let answers = try served.predict(rows, count: count, horizons: [horizon])
      let entry = try #require(bundle.manifest.models.first { $0.horizons == [horizon] })
      cases.append(
        .init(
          name: "\(model.name)-\(missing)",
          model: try bundle.data(try #require(entry.onnx)),
          input: "features",
          inputShape: [count, data.columns.count],
          inputs: rows,
          outputShape: [count, data.classes.count],
          expected: answers.flatMap { $0[0].raw }
        )
      )
    }
    let (results, versions, checked) = try ONNXRuntimeHarness.check(cases)
    defer { try? FileManager.default.removeItem(at: checked) }
    for c in cases {
      let result = try #require(results[c.name], "\(versions)")
      #expect(result.error == nil, "\(c.name): \(result.error ?? "")")
      #expect(
        (result.maxAbsDiff ?? 1) < 1e-5,
        "\(c.name): \(result.maxAbsDiff ?? .nan) (\(versions))"
      )
    }
  }

  static func lstmSpec() -> ModelSpec {
    var training = LSTM.Training()
    training.maxEpochs = 3
    training.batchSize = 64
    return ModelSpec(
      name: "lstm",
      kind: .lstm(sequenceLength: 4, hiddenSize: 6, layers: 1, dropout: 0, training: training)
    )
  }

  @Test(
    "An LSTM bundle answers windows of its sequence length, equal to the trainer's final LSTM within 1e-12; one bar is refused"
  )
  func lstm() async throws {
    let (data, final, bundle, cleanup) = try await Self.bundleOffPool(
      [Self.lstmSpec()],
      stack: false
    )
    defer { cleanup() }
    let model = try Self.served(bundle)
    #expect(model.inputBars == 4)
    let width = data.columns.count
    let windows = data.windows(length: 4)
    let rows = ((data.rowCount - 60) ..< data.rowCount).filter { windows[$0] != nil }
    // A missing value inside the windows: 0 after scaling, on both paths.
    var raw = data
    raw.features[windows[rows[0]]![1] * width + 2] = .nan
    let inputs = rows.flatMap { r in
      windows[r]!.flatMap { raw.features[($0 * width) ..< (($0 + 1) * width)] }
    }
    let served = try model.predict(inputs, count: rows.count)
    guard case .lstm(let lstm) = try #require(final.models.first).model else {
      Issue.record("not an LSTM")
      return
    }
    let scaled = WalkForwardRun.matrix(
      raw,
      rows: Array(0 ..< raw.rowCount),
      scaler: final.scaler,
      finite: true
    )
    let p = lstm.probabilities(
      WalkForwardRun.sequences(rows, windows: windows, scaled: scaled, width: width),
      count: rows.count
    )
    for (i, answers) in served.enumerated() {
      #expect(answers.map(\.horizon) == data.horizons)
      for (h, answer) in answers.enumerated() {
        #expect(abs(answer.raw[1] - p[i * data.horizons.count + h]) < 1e-12, "row \(i) head \(h)")
      }
    }
    #expect(throws: VaneError.self) {
      try model.predict(Array(data.features[0 ..< width]), count: 1)
    }
  }

  @Test(
    "Missing values: the trained choice is recorded and loaded; EXCLUDE refuses naming the columns; NATIVE needs a tree; IMPUTE fills with the stored training means, or the scaler's centers"
  )
  func missingChoices() async throws {
    let logreg = Self.models()[0], xgb = Self.models()[1]
    let (data, final, plain, cleanup) = try await BlockingPool.shared.run {
      try Self.bundle([logreg], stack: false)
    }
    defer { cleanup() }
    var model = try ServableModel(bundle: plain)
    #expect(plain.manifest.missingValues == "exclude" && model.missingValues == .exclude)
    let width = data.columns.count
    var row = Array(data.features[0 ..< width])
    row[1] = .nan
    let refusal = try #require(throws: VaneError.self) { try model.predict(row, count: 1) }
    #expect(refusal.code == .failedPrecondition && refusal.message.contains(data.columns[1]))
    let native = try #require(throws: VaneError.self) {
      try model.choose(missingValues: .native, field: "missing")
    }
    #expect(native.code == .invalidArgument && native.message.contains("logistic_regression"))
    // A bundle trained without imputation fills the scaler's centers: the scaled 0 its models
    // read for a missing value in training.
    try model.choose(missingValues: .impute, field: "missing")
    var centered = row
    centered[1] = try #require(final.scaler).center[1]
    #expect(try model.predict(row, count: 1) == model.predict(centered, count: 1))

    // Trained with IMPUTE: the scaler stores the final window's training means.
    let (_, imputedFinal, imputed, cleanupImputed) = try await BlockingPool.shared.run {
      try Self.bundle([xgb], stack: false, missing: .impute)
    }
    defer { cleanupImputed() }
    #expect(imputed.manifest.missingValues == "impute")
    let scaler = try #require(imputedFinal.scaler)
    let train = imputedFinal.window.trainRows.map { data.features[$0 * width + 1] }
      .filter(\.isFinite)
    let mean = train.reduce(0, +) / Double(train.count)
    #expect(abs(try #require(scaler.impute)[1] - mean) <= 1e-12 * max(1, abs(mean)))
    let trees = try ServableModel(bundle: imputed)
    #expect(trees.missingValues == .impute)
    var filled = row
    filled[1] = scaler.impute![1]
    #expect(try trees.predict(row, count: 1) == trees.predict(filled, count: 1))
    // The same trees may route NaN instead.
    var routed = trees
    try routed.choose(missingValues: .native, field: "missing")
    #expect(routed.missingValues == .native)
    _ = try routed.predict(row, count: 1)
  }

  @Test("A stack over an LSTM and a logistic regression serves every horizon from windows")
  func lstmStack() async throws {
    let (data, _, bundle, cleanup) = try await Self.bundleOffPool(
      [ModelSpec(name: "logreg", kind: .logisticRegression(.init())), Self.lstmSpec()],
      stack: true
    )
    defer { cleanup() }
    let model = try ServableModel(bundle: bundle)
    #expect(model.inputBars == 4 && model.modelKinds.contains(.stack))
    let width = data.columns.count
    let window = Array(data.features[((data.rowCount - 4) * width) ..< (data.rowCount * width)])
    let answers = try model.predict(window, count: 1)[0]
    #expect(answers.map(\.horizon) == data.horizons)
    #expect(
      answers.allSatisfy {
        $0.calibrated.allSatisfy(\.isFinite) && abs($0.calibrated.reduce(0, +) - 1) < 1e-9
      }
    )
  }
}
