import Foundation
import Testing
import VaneCore
import VaneMath
import VaneTestSupport

@testable import VaneModels

@Suite("Walk-forward folds")
struct WalkForwardTests {
  static let hour: Int64 = 3_600_000

  /// Hourly rows with a gap of 10 missing hours after row 300; labels resolve `horizon` bars later.
  static func rows(_ n: Int, horizon: Int = 5) -> (open: [Int64], labelEnd: [Int64]) {
    let open = (0 ..< n).map { Int64($0 + ($0 >= 300 ? 10 : 0)) * hour }
    return (open, open.map { $0 + Int64(horizon + 1) * hour })
  }

  @Test(
    "Boundaries: expanding and rolling windows, purge and embargo, validation tail",
    arguments: [WalkForwardPlan.Window.expanding, .rolling]
  )
  func boundaries(window: WalkForwardPlan.Window) throws {
    let (open, labelEnd) = Self.rows(1_000)
    let plan = try WalkForwardPlan(
      window: window,
      trainBars: 200,
      testBars: 100,
      purgeBars: 5,
      embargoBars: 3,
      validationBars: 20
    )
    let folds = try plan.folds(openTimes: open, labelEnds: labelEnd, barMs: Self.hour)
    #expect(folds.map(\.number) == Array(1 ... folds.count))
    #expect(folds.first?.testRange.lowerBound == (200 + 5 + 3) * Self.hour)
    for fold in folds {
      // Nothing trained on resolves after the training window ends; test starts after the gap.
      let trainEnd = fold.testRange.lowerBound - 8 * Self.hour
      #expect(fold.trainRange.upperBound == trainEnd)
      #expect(
        fold.trainRows.allSatisfy {
          labelEnd[$0] <= trainEnd - 20 * Self.hour && open[$0] >= fold.trainRange.lowerBound
        }
      )
      #expect(
        fold.validationRows.allSatisfy {
          open[$0] >= trainEnd - 20 * Self.hour && labelEnd[$0] <= trainEnd
        }
      )
      #expect(fold.testRows.allSatisfy { fold.testRange.contains(open[$0]) })
      #expect(
        Set(fold.trainRows).isDisjoint(with: fold.testRows)
          && Set(fold.validationRows).isDisjoint(with: fold.testRows)
      )
      if window == .rolling {
        #expect(fold.trainRange.count == Int(200 * Self.hour))
      } else {
        #expect(fold.trainRange.lowerBound == 0)
      }
    }
    // Consecutive test folds tile the data after the first training window.
    for (a, b) in zip(folds, folds.dropFirst()) {
      #expect(a.testRange.upperBound == b.testRange.lowerBound)
    }
  }

  @Test(
    "Overlapping folds: each row's out-of-fold prediction comes from the most recent fold covering it; max_folds keeps the latest"
  )
  func overlapping() throws {
    let (open, labelEnd) = Self.rows(600)
    let plan = try WalkForwardPlan(trainBars: 100, testBars: 50, retrainEveryBars: 25, purgeBars: 5)
    let folds = try plan.folds(openTimes: open, labelEnds: labelEnd, barMs: Self.hour)
    let source = WalkForwardPlan.outOfFoldSource(rowCount: open.count, folds: folds)
    for (row, fold) in source.enumerated() {
      guard let fold else { continue }
      #expect(folds[fold].testRows.contains(row))
      #expect(!folds[(fold + 1)...].contains { $0.testRows.contains(row) })
    }
    let limited = try WalkForwardPlan(
      trainBars: 100,
      testBars: 50,
      retrainEveryBars: 25,
      purgeBars: 5,
      maxFolds: 3
    )
    #expect(
      try limited.folds(openTimes: open, labelEnds: labelEnd, barMs: Self.hour).map(\.testRange)
        == folds.suffix(3).map(\.testRange)
    )
  }

  @Test("Refusals: bad plans name the field; data too short for a fold")
  func refusals() throws {
    #expect { _ = try WalkForwardPlan(trainBars: 0, testBars: 10, purgeBars: 1) } throws: {
      ($0 as? VaneError)?.message.hasPrefix("walk_forward.train_bars") == true
    }
    #expect {
      _ = try WalkForwardPlan(trainBars: 10, testBars: 10, retrainEveryBars: 20, purgeBars: 1)
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("walk_forward.retrain_every_bars") == true
    }
    #expect {
      _ = try WalkForwardPlan(trainBars: 10, testBars: 10, purgeBars: 1, validationBars: 10)
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("walk_forward.validation_bars") == true
    }
    let (open, labelEnd) = Self.rows(50)
    #expect {
      _ = try WalkForwardPlan(trainBars: 100, testBars: 10, purgeBars: 5).folds(
        openTimes: open,
        labelEnds: labelEnd,
        barMs: Self.hour
      )
    } throws: {
      ($0 as? VaneError)?.code == .failedPrecondition
    }
    #expect {
      _ = try WalkForwardPlan(trainBars: 10, testBars: 10, purgeBars: 5).folds(
        openTimes: [1, 0],
        labelEnds: [1, 1],
        barMs: Self.hour
      )
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("open_times[1]") == true
    }
  }
}

/// The walk-forward must be honest about time: a label that is a function of the future must
/// not be predictable, and a planted leak must show.
@Suite("Leakage")
struct LeakageTests {
  /// A shuffle-free series: x_t is a random walk's step, the label is whether the sum of the
  /// next `h` steps is positive: a function of future values only. Features at t: the last 5
  /// steps (known at t).
  static func series(
    _ n: Int,
    horizon h: Int,
    seed: UInt64
  ) -> (x: [Double], labels: [Int], open: [Int64], labelEnd: [Int64]) {
    var rng = SplitMix64(seed: seed)
    let steps = (0 ..< (n + h + 5)).map { _ in rng.uniform() - 0.5 }
    var x: [Double] = [], labels: [Int] = []
    for t in 0 ..< n {
      x += (0 ..< 5).map { steps[t + 5 - $0] }
      labels.append(steps[(t + 6) ... (t + 5 + h)].reduce(0, +) > 0 ? 1 : 0)
    }
    let open = (0 ..< n).map { Int64($0) * WalkForwardTests.hour }
    return (x, labels, open, open.map { $0 + Int64(h + 1) * WalkForwardTests.hour })
  }

  /// Pooled out-of-fold AUC of a logistic regression over the plan's folds, with `extra`
  /// appended to each row's features.
  static func oofAUC(
    _ data: (x: [Double], labels: [Int], open: [Int64], labelEnd: [Int64]),
    plan: WalkForwardPlan,
    width: Int
  ) throws -> Double {
    let folds = try plan.folds(
      openTimes: data.open,
      labelEnds: data.labelEnd,
      barMs: WalkForwardTests.hour
    )
    var scores: [Double] = [], truth: [Bool] = []
    for fold in folds {
      let train = fold.trainRows
      let model = try LogisticRegression.fit(
        features: train.flatMap { data.x[($0 * width) ..< ($0 * width + width)] },
        count: train.count,
        featureCount: width,
        labels: train.map { data.labels[$0] },
        classCount: 2
      )
      let test = fold.testRows
      let p = model.probabilities(
        test.flatMap { data.x[($0 * width) ..< ($0 * width + width)] },
        count: test.count
      )
      scores += (0 ..< test.count).map { p[2 * $0 + 1] }
      truth += test.map { data.labels[$0] == 1 }
    }
    return Self.auc(scores, truth)
  }

  static func auc(_ scores: [Double], _ positive: [Bool]) -> Double {
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    var rankSum = 0.0, positives = 0.0
    for (rank, i) in order.enumerated() where positive[i] {
      rankSum += Double(rank + 1)
      positives += 1
    }
    let negatives = Double(scores.count) - positives
    return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
  }

  @Test("A label that is a function of the future scores AUC ≈ 0.5 out of fold")
  func futureIsUnpredictable() throws {
    let data = Self.series(6_000, horizon: 12, seed: 1)
    let plan = try WalkForwardPlan(trainBars: 1_000, testBars: 500, purgeBars: 12)
    let auc = try Self.oofAUC(data, plan: plan, width: 5)
    #expect(abs(auc - 0.5) < 0.03, "AUC \(auc)")
  }

  @Test("A planted leak (a feature made of the future) shows as an AUC far above chance")
  func plantedLeakIsCaught() throws {
    var data = Self.series(6_000, horizon: 12, seed: 2)
    // Plant: append the next step (a future value, unknown at t) as a sixth feature.
    var leaky: [Double] = []
    var rng = SplitMix64(seed: 2)
    let steps = (0 ..< (6_000 + 12 + 5)).map { _ in rng.uniform() - 0.5 }
    for t in 0 ..< 6_000 { leaky += data.x[(t * 5) ..< (t * 5 + 5)] + [steps[t + 6]] }
    data.x = leaky
    let plan = try WalkForwardPlan(trainBars: 1_000, testBars: 500, purgeBars: 12)
    let auc = try Self.oofAUC(data, plan: plan, width: 6)
    #expect(auc > 0.6, "AUC \(auc): the leak must show")
  }
}
