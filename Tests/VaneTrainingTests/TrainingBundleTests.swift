import Foundation
import Synchronization
import Testing
import VaneBundle
import VaneCore
import VaneModels
import VaneQuality
import VaneTestSupport

@testable import VaneTraining

/// Finished folds kept in memory.
final class MemoryCheckpoints: FoldCheckpoints {
  let outputs = Mutex<[String: FoldOutput]>([:])

  static func key(_ model: String, _ horizons: [Int], _ fold: Int) -> String {
    "\(model)|\(horizons)|\(fold)"
  }

  func finished(model: String, horizons: [Int], fold: Int) throws -> FoldOutput? {
    self.outputs.withLock { $0[Self.key(model, horizons, fold)] }
  }

  func record(_ output: FoldOutput) throws {
    self.outputs.withLock { $0[Self.key(output.model, output.horizons, output.fold)] = output }
  }

  var count: Int { self.outputs.withLock { $0.count } }
}

@Suite("Final fit, bundles, checkpoints")
struct TrainingBundleTests {
  static func spec() throws -> RunSpec {
    var xgb = XGBoostModel.Parameters()
    xgb.rounds = 30
    xgb.maxDepth = 3
    xgb.earlyStoppingRounds = 5
    xgb.threads = 1
    var lstm = LSTM.Training()
    lstm.maxEpochs = 3
    lstm.batchSize = 64
    lstm.learningRate = 1e-2
    return RunSpec(
      models: [
        ModelSpec(name: "logreg", kind: .logisticRegression(.init())),
        ModelSpec(name: "xgb", kind: .xgboost(xgb)),
        ModelSpec(
          name: "lstm",
          kind: .lstm(sequenceLength: 4, hiddenSize: 4, layers: 1, dropout: 0, training: lstm)
        ),
      ],
      plan: try WalkForwardPlan(
        trainBars: 300,
        testBars: 150,
        purgeBars: 3,
        embargoBars: 1,
        validationBars: 30
      ),
      stacking: .init(minimumFolds: 2)
    )
  }

  @Test("The final window ends when the last label resolves, purged and with its validation tail")
  func finalWindow() throws {
    let hour: Int64 = 3_600_000
    let open = (0 ..< 100).map { Int64($0) * hour }
    let ends = open.map { $0 + 4 * hour }
    let expanding = try WalkForwardPlan(
      trainBars: 50,
      testBars: 10,
      purgeBars: 3,
      validationBars: 10
    )
    let window = try expanding.finalWindow(openTimes: open, labelEnds: ends, barMs: hour)
    #expect(window.trainRows.first == 0)
    #expect(
      window.trainRows.allSatisfy { ends[$0] <= window.validationRows.map { open[$0] }.min()! }
    )
    #expect(window.validationRows.allSatisfy { ends[$0] <= window.trainRange.upperBound })
    #expect(window.validationRows.last == 99)
    let rolling = try WalkForwardPlan(window: .rolling, trainBars: 50, testBars: 10, purgeBars: 3)
    let last = try rolling.finalWindow(openTimes: open, labelEnds: ends, barMs: hour)
    // 50 bars ending when the last label resolves (4 bars after the last open), as a fold's
    // window ends at its purged training end.
    #expect(last.trainRows == Array(54 ... 99))
  }

  @Test(
    "A bundle holds every model, the scaler, calibration and OOF files the gatekeeper reads; it opens and verifies"
  )
  func bundle() throws {
    let data = try WalkForwardRunTests.data(rows: 2_400, seed: 3)
    let spec = try Self.spec()
    let runs = try WalkForwardRun.run(spec, data: data)
    let final = try WalkForwardRun.fitFinal(spec, data: data, runs: runs)
    #expect(final.models.map(\.name) == ["logreg", "logreg", "xgb", "xgb", "lstm"])
    #expect(final.stacks.map(\.horizon) == [1, 3])
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bundle-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("b.tar.gz").path
    let request = BundleRequest(
      id: "test-bundle",
      created: Date(timeIntervalSince1970: 1_700_000_000),
      symbols: data.symbols,
      interval: "1h",
      taskKind: "binary",
      featureSetID: "test",
      featureSetSHA256: String(repeating: "0", count: 64),
      calibration: .auto,
      provenance: ["seed": "3"],
      spec: Data("{}".utf8)
    )
    let written = try TrainingBundle.write(request, data: data, runs: runs, final: final, to: path)
    #expect(written.finalModel == "stack")
    let bundle = try ModelBundle.open(path: path)
    #expect(bundle.manifestSHA256 == written.manifestSHA256)
    #expect(bundle.manifest.models.count == 7)
    #expect(bundle.manifest.models.filter { $0.role == .meta }.count == 2)
    let oof = try bundle.outOfFold()
    #expect(oof.final == "stack")
    #expect(Set(oof.models.keys) == ["logreg", "xgb", "lstm", "stack"])
    #expect(oof.labels.count > 500)
    #expect(oof.foldIds.allSatisfy { $0 > 0 })
    // The served model's OOF values in the file are the run's, row for row.
    let stack = try #require(runs.first { $0.name == "stack" && $0.horizon == 1 })
    let stored = try #require(oof.models["stack"]).values
    let rows = (0 ..< data.rowCount).filter { row in
      data.labels[0][row] >= 0
        && runs.filter { $0.horizon == 1 }.allSatisfy { $0.outOfFold[2 * row].isFinite }
    }
    #expect(stored == rows.flatMap { stack.outOfFold[(2 * $0) ..< (2 * $0 + 2)] })
    // Calibration from the gatekeeper library, readable as the gatekeeper reads it.
    let calibration = try #require(bundle.manifest.calibration)
    _ = try Calibration(
      method: try #require(CalibrationMethod(rawValue: calibration.method)),
      parametersJSON: calibration.parameters,
      classCount: 2
    )
    #expect(!written.calibrationScores.isEmpty)
    // XGBoost's file is its own JSON, and it predicts what the final model predicts.
    let xgbEntry = try #require(
      bundle.manifest.models.first { $0.kind == .xgboost && $0.horizons == [1] }
    )
    guard
      case .xgboost(let xgb) = try #require(
        final.models.first { $0.name == "xgb" && $0.horizons == [1] }
      ).model
    else {
      Issue.record("not xgboost")
      return
    }
    #expect(try bundle.data(xgbEntry.file) == xgb.json)
    // A correlation matrix of the bases per horizon, 1 on the diagonal.
    let matrix = try #require(written.correlations[1])
    #expect(matrix.models == ["logreg", "xgb", "lstm"])
    for i in 0 ..< 3 { #expect(abs(matrix.values[i][i] - 1) < 1e-12) }
    _ = try bundle.data("reports/training.json")
    _ = try bundle.data("models/scaler.json")
  }

  @Test(
    "The bundle's ONNX models take raw features and give the native predictions within 1e-5 in ONNX Runtime",
    .enabled(
      if: ONNXRuntimeHarness.enabled,
      "needs python3 with onnxruntime, or VANE_REQUIRE_ONNXRUNTIME=1"
    )
  )
  func bundleONNX() throws {
    let data = try WalkForwardRunTests.data(rows: 2_000, seed: 4)
    var spec = try Self.spec()
    spec.models.append(
      ModelSpec(
        name: "mlp",
        kind: .mlp(
          units: [8, 4],
          activation: .gelu,
          dropout: 0.1,
          training: {
            var training = MLP.Training()
            training.maxEpochs = 3
            training.batchSize = 64
            return training
          }()
        )
      )
    )
    let runs = try WalkForwardRun.run(spec, data: data)
    let final = try WalkForwardRun.fitFinal(spec, data: data, runs: runs)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bundle-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let request = BundleRequest(
      id: "onnx-bundle",
      created: Date(),
      symbols: data.symbols,
      interval: "1h",
      taskKind: "binary",
      featureSetID: "test",
      featureSetSHA256: String(repeating: "0", count: 64),
      exportONNX: true
    )
    let path = directory.appendingPathComponent("b.tar.gz").path
    _ = try TrainingBundle.write(request, data: data, runs: runs, final: final, to: path)
    let bundle = try ModelBundle.open(path: path)
    #expect(bundle.manifest.models.filter { $0.onnx != nil }.count == final.models.count)
    // Raw features in, as the predictor will send them; some missing.
    var raw = data
    for row in stride(from: 0, to: raw.rowCount, by: 37) {
      raw.features[row * raw.columns.count + 1] = .nan
    }
    let rows = Array((raw.rowCount - 300) ..< raw.rowCount)
    let windows = raw.windows(length: 4)
    let width = raw.columns.count
    var cases: [ONNXRuntimeHarness.Case] = []
    for model in final.models {
      let entry = try #require(
        bundle.manifest.models.first { $0.name == model.name && $0.horizons == model.horizons }
      )
      let onnx = try bundle.data(try #require(entry.onnx))
      let name = "\(model.name)_h\(model.horizons.map(String.init).joined(separator: "_"))"
      if case .lstm(let lstm) = model.model {
        let tested = rows.filter { windows[$0] != nil }
        let scaled = WalkForwardRun.matrix(
          raw,
          rows: Array(0 ..< raw.rowCount),
          scaler: final.scaler,
          finite: true
        )
        let native = lstm.probabilities(
          WalkForwardRun.sequences(tested, windows: windows, scaled: scaled, width: width),
          count: tested.count
        )
        let inputs = tested.flatMap { r in
          windows[r]!.flatMap { raw.features[($0 * width) ..< (($0 + 1) * width)] }
        }
        cases.append(
          .init(
            name: name,
            model: onnx,
            input: "sequences",
            inputShape: [tested.count, 4, width],
            inputs: inputs,
            outputShape: [tested.count, lstm.heads],
            expected: native
          )
        )
      } else {
        let native = try WalkForwardRun.predictTabular(
          model.model,
          data: raw,
          rows: rows,
          scaler: final.scaler
        )
        cases.append(
          .init(
            name: name,
            model: onnx,
            input: "features",
            inputShape: [rows.count, width],
            inputs: raw.rows(rows),
            outputShape: [rows.count, 2],
            expected: native
          )
        )
      }
    }
    let (results, versions, checked) = try ONNXRuntimeHarness.check(cases)
    defer { try? FileManager.default.removeItem(at: checked) }
    #expect(results.count == cases.count, "\(versions)")
    for c in cases {
      let result = try #require(results[c.name])
      #expect(result.error == nil, "\(c.name): \(result.error ?? "")")
      #expect(
        (result.maxAbsDiff ?? 1) < 1e-5,
        "\(c.name): \(result.maxAbsDiff ?? .nan) (\(versions))"
      )
    }
  }

  @Test(
    "A run stopped after some folds resumes from its checkpoints to the same OOF predictions as a run never stopped"
  )
  func resume() throws {
    let data = try WalkForwardRunTests.data(rows: 2_000, seed: 5)
    let spec = try Self.spec()
    let straight = try WalkForwardRun.run(spec, data: data)
    let checkpoints = MemoryCheckpoints()
    var started = 0
    #expect(throws: VaneError.self) {
      try WalkForwardRun.run(spec, data: data, control: RunControl(checkpoints: checkpoints)) {
        event in
        if case .fold = event { started += 1 }
        return started < 7
      }
    }
    let kept = checkpoints.count
    #expect(kept == 6)
    var resumed = 0
    let again = try WalkForwardRun.run(
      spec,
      data: data,
      control: RunControl(checkpoints: checkpoints)
    ) { event in
      if case .fold(_, _, _, _, true) = event { resumed += 1 }
      return true
    }
    #expect(resumed == kept)
    #expect(again.count == straight.count)
    for (a, b) in zip(again, straight) {
      #expect(a.name == b.name && a.horizon == b.horizon)
      #expect(
        a.outOfFold.elementsEqual(b.outOfFold) { $0 == $1 || ($0.isNaN && $1.isNaN) },
        "\(a.name) h\(a.horizon)"
      )
    }
  }

  @Test("A cancellation flag stops training inside a fold")
  func cancellation() throws {
    let data = try WalkForwardRunTests.data(rows: 2_000, seed: 6)
    let flag = CancellationFlag()
    var folds = 0
    let error = #expect(throws: VaneError.self) {
      try WalkForwardRun.run(try Self.spec(), data: data, control: RunControl(cancellation: flag)) {
        event in
        if case .fold = event { folds += 1 }
        if folds == 2 { flag.cancel() }
        return true
      }
    }
    #expect(error?.code == .cancelled)
    #expect(folds == 2)
  }

  @Test("The same spec and seed give the same bundle metrics")
  func deterministic() throws {
    let data = try WalkForwardRunTests.data(rows: 2_000, seed: 8)
    let spec = try Self.spec()
    let a = try WalkForwardRun.run(spec, data: data), b = try WalkForwardRun.run(spec, data: data)
    for (x, y) in zip(a, b) { #expect(x.metrics == y.metrics, "\(x.name) h\(x.horizon)") }
  }
}
