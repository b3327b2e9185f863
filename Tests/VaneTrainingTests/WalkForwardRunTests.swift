import Foundation
import Testing
import VaneCore
import VaneModels
import VaneTestSupport

@testable import VaneTraining

@Suite("Walk-forward runs: base models, OOF predictions, stacking", .computeBound)
struct WalkForwardRunTests {
  static let hour: Int64 = 3_600_000

  /// Two symbols pooled, hourly, with a gap; features: a lagged signal, noise, and `hvol_20`;
  /// labels at horizons 1 and 3 depend on the signal (so models can learn) and noise.
  static func data(rows n: Int, seed: UInt64) throws -> TrainingData {
    var rng = SplitMix64(seed: seed)
    var features: [Double] = [], open: [Int64] = [], symbol: [Int] = []
    var labels: [[Int]] = [[], []], ends: [[Int64]] = [[], []]
    for t in 0 ..< (n / 2) {
      let bar = Int64(t + (t >= 500 ? 7 : 0))
      for s in 0 ..< 2 {
        let signal = rng.normal(), noise = rng.normal()
        features += [signal, noise, 0.5 + 0.1 * rng.uniform()]
        open.append(bar * Self.hour)
        symbol.append(s)
        for (h, horizon) in [1, 3].enumerated() {
          labels[h].append(signal + 1.5 * rng.normal() > 0 ? 1 : 0)
          ends[h].append((bar + Int64(horizon) + 1) * Self.hour)
        }
      }
    }
    return try TrainingData(
      columns: ["signal", "noise", "hvol_20"],
      features: features,
      openTimes: open,
      symbolIndex: symbol,
      symbols: ["A", "B"],
      horizons: [1, 3],
      labels: labels,
      labelEnds: ends,
      classes: ["DOWN", "UP"],
      barMs: Self.hour
    )
  }

  @Test(
    "Logistic regression, XGBoost and an MLP per horizon, an LSTM over both, a stack: OOF on every tested row, nothing from the future"
  )
  func run() throws {
    let data = try Self.data(rows: 3_000, seed: 1)
    var xgb = XGBoostModel.Parameters()
    xgb.rounds = 40
    xgb.maxDepth = 3
    xgb.earlyStoppingRounds = 10
    xgb.threads = 1
    var mlp = MLP.Training()
    mlp.maxEpochs = 30
    mlp.batchSize = 64
    mlp.learningRate = 1e-2
    var lstm = LSTM.Training()
    lstm.maxEpochs = 15
    lstm.batchSize = 64
    lstm.learningRate = 1e-2
    let spec = RunSpec(
      models: [
        ModelSpec(name: "logreg", kind: .logisticRegression(.init())),
        ModelSpec(name: "xgb", kind: .xgboost(xgb)),
        ModelSpec(
          name: "mlp",
          kind: .mlp(units: [8], activation: .relu, dropout: 0.1, training: mlp)
        ),
        ModelSpec(
          name: "lstm",
          kind: .lstm(sequenceLength: 4, hiddenSize: 6, layers: 1, dropout: 0, training: lstm)
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
    var events = 0
    let runs = try WalkForwardRun.run(spec, data: data) { _ in
      events += 1
      return true
    }
    #expect(
      runs.map(\.name) == [
        "logreg", "logreg", "xgb", "xgb", "mlp", "mlp", "lstm", "lstm", "stack", "stack",
      ]
    )
    #expect(events > 0)
    for run in runs {
      #expect(run.outOfFoldRows > 500, "\(run.name) h\(run.horizon): \(run.outOfFoldRows) OOF rows")
      let auc = run.metrics["auc"] ?? 0
      // The signal is learnable at both horizons (labels are drawn with the same rule).
      #expect(auc > 0.6, "\(run.name) h\(run.horizon): AUC \(auc)")
      // No fold trained on anything at or after its test start.
      for fold in run.folds { #expect(fold.trainRange.upperBound <= fold.testRange.lowerBound) }
    }
    // The stack starts after its minimum folds: fewer OOF rows than its bases.
    let stack = try #require(runs.first { $0.name == "stack" && $0.horizon == 1 })
    let base = try #require(runs.first { $0.name == "logreg" && $0.horizon == 1 })
    #expect(stack.outOfFoldRows < base.outOfFoldRows)
  }

  @Test("Cancelling stops the run with CANCELLED")
  func cancel() throws {
    let data = try Self.data(rows: 2_000, seed: 2)
    let spec = RunSpec(
      models: [ModelSpec(name: "logreg", kind: .logisticRegression(.init()))],
      plan: try WalkForwardPlan(trainBars: 300, testBars: 150, purgeBars: 3)
    )
    var calls = 0
    #expect {
      _ = try WalkForwardRun.run(spec, data: data) { _ in
        calls += 1
        return calls < 3
      }
    } throws: { ($0 as? VaneError)?.code == .cancelled }
  }

  @Test("LSTM windows never cross a gap or a symbol")
  func windows() throws {
    let data = try Self.data(rows: 1_200, seed: 3)
    let windows = data.windows(length: 4)
    for (row, window) in windows.enumerated() {
      guard let window else { continue }
      #expect(window.last == row && window.count == 4)
      #expect(window.allSatisfy { data.symbolIndex[$0] == data.symbolIndex[row] })
      #expect(
        zip(window, window.dropFirst()).allSatisfy {
          data.openTimes[$1] - data.openTimes[$0] == Self.hour
        }
      )
    }
    // The first three bars of each symbol, and the three after the gap, have no window.
    #expect(windows.filter { $0 == nil }.count == 2 * 3 * 2)
  }
}
