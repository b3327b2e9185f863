import Foundation
import Testing
import VaneCore
import VaneMath
import VaneTestSupport

@testable import VaneQuality

@Suite("Metrics: closed forms and properties")
struct MetricsTests {
  @Test(
    "AUC by hand: ties count one half",
    arguments: [
      ([0.1, 0.4, 0.35, 0.8], [false, false, true, true], 0.75),
      ([0.5, 0.5, 0.5, 0.5], [false, true, false, true], 0.5),
      ([0.2, 0.9], [false, true], 1.0),
      ([0.2, 0.9], [true, false], 0.0),
      ([0.3, 0.3, 0.7], [false, true, true], 0.75),
    ]
  )
  func aucByHand(scores: [Double], positive: [Bool], expected: Double) {
    #expect(Metrics.rocAUC(scores: scores, positive: positive) == expected)
  }

  @Test("AUC equals the pairwise count on random data with ties, and is NaN with one class")
  func aucPairwise() {
    var rng = SplitMix64(seed: 3)
    let scores = (0 ..< 400).map { _ in Double(Int.random(in: 0 ..< 30, using: &rng)) / 30 }
    let positive = (0 ..< 400).map { _ in Bool.random(using: &rng) }
    var wins = 0.0, pairs = 0.0
    for i in scores.indices where positive[i] {
      for j in scores.indices where !positive[j] {
        pairs += 1
        wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0
      }
    }
    #expect(abs(Metrics.rocAUC(scores: scores, positive: positive) - wins / pairs) < 1e-12)
    #expect(Metrics.rocAUC(scores: [0.1, 0.2], positive: [true, true]).isNaN)
  }

  @Test(
    "The radix order sorts like the standard library, stably, with negatives, zeros and NaN last"
  )
  func radixOrder() {
    var rng = SplitMix64(seed: 11)
    var values = (0 ..< 5000).map { _ in Double.random(in: -1e6 ... 1e6, using: &rng) }
    values += [0.0, -0.0, .nan, -.infinity, .infinity, 1e-300, -1e-300, 3, 3, 3]
    let order = RadixSort.ascendingOrder(values).map(Int.init)
    let sorted = order.map { values[$0] }
    #expect(zip(sorted, sorted.dropFirst()).allSatisfy { $0 <= $1 || $1.isNaN })
    #expect(sorted.last!.isNaN)
    let threes = order.filter { values[$0] == 3 }
    #expect(threes == threes.sorted())
  }

  @Test("ECE: perfectly calibrated bins give 0; an overconfident model gives the gap")
  func ece() {
    // Confidence 0.8 with 80 % right, and 0.6 with 60 % right: calibrated.
    let confidence = [Double](repeating: 0.8, count: 10) + [Double](repeating: 0.6, count: 5)
    let correct = (0 ..< 10).map { $0 < 8 } + (0 ..< 5).map { $0 < 3 }
    #expect(
      abs(Metrics.calibrationUniform(confidence: confidence, correct: correct).expected) < 1e-12
    )
    // Always 0.995 confident, right half the time: ECE = MCE = 0.495.
    let over = Metrics.calibrationUniform(
      confidence: [Double](repeating: 0.995, count: 100),
      correct: (0 ..< 100).map { $0 % 2 == 0 }
    )
    #expect(abs(over.expected - 0.495) < 1e-12 && abs(over.maximum - 0.495) < 1e-12)
    #expect(over.bins[14].count == 100)
    let mass = Metrics.calibrationQuantile(
      confidence: (0 ..< 31).map { Double($0) / 31 },
      correct: [Bool](repeating: true, count: 31)
    )
    #expect(mass.bins.map(\.count) == [3] + [Int](repeating: 2, count: 14))
  }

  @Test("PSI is 0 for the same distribution and grows with a shift")
  func psi() {
    var rng = SplitMix64(seed: 5)
    let reference = (0 ..< 10_000).map { _ in Double.random(in: 0 ..< 1, using: &rng) }
    let same = (0 ..< 10_000).map { _ in Double.random(in: 0 ..< 1, using: &rng) }
    let shifted = same.map { min($0 + 0.2, 1) }
    #expect(Metrics.psi(scores: reference, reference: reference) == 0)
    #expect(Metrics.psi(scores: same, reference: reference) < 0.01)
    #expect(Metrics.psi(scores: shifted, reference: reference) > 0.25)
  }

  @Test("The report counts NaN and infinite predictions and leaves them out of the metrics")
  func report() throws {
    let predictions = try Predictions(
      binary: [0.9, 0.2, .nan, 0.7, .infinity, 0.1],
      labels: [1, 0, 1, 1, 0, 0],
      logits: [2.2, -1.4, .nan, 0.8, 40, -2.2]
    )
    let report = MetricsReport(predictions)
    #expect(report.nanCount == 1 && report.infiniteCount == 1)
    #expect(report.rocAUC == 1 && report.accuracy == 1)
    #expect(report.confusion == [[2, 0], [0, 2]])
    #expect(report.predictedClassShare == [0.5, 0.5])
    // The logit range is over the finite samples (the non-finite ones are counted above).
    #expect(report.maxAbsLogit == 2.2)
  }

  @Test(
    "Bad predictions are refused, naming the field",
    arguments: ["labels[1]", "probabilities", "class_count"]
  )
  func refused(field: String) {
    #expect {
      switch field {
      case "labels[1]": _ = try Predictions(binary: [0.1, 0.2], labels: [0, 2])
      case "probabilities": _ = try Predictions(binary: [0.1], labels: [0, 1])
      default: _ = try Predictions(probabilities: [1], classCount: 1, labels: [0])
      }
    } throws: { ($0 as? VaneError)?.message.hasPrefix("\(field):") == true }
  }
}

@Suite("Calibration: fits, round trips, refusals")
struct CalibrationTests {
  /// Binary samples whose true probability is σ(z) but whose model says σ(k·z + c).
  static func miscalibrated(_ n: Int, k: Double, c: Double, seed: UInt64) throws -> Predictions {
    var rng = SplitMix64(seed: seed)
    var logits: [Double] = [], labels: [Int] = []
    for _ in 0 ..< n {
      let z = Double.random(in: -3 ... 3, using: &rng)
      labels.append(Double.random(in: 0 ..< 1, using: &rng) < Logistic.sigmoid(z) ? 1 : 0)
      logits.append(k * z + c)
    }
    return try Predictions(binary: logits.map(Logistic.sigmoid), labels: labels, logits: logits)
  }

  @Test(
    "Temperature and Platt recover the distortion; isotonic is monotone; each lowers the NLL",
    arguments: [CalibrationMethod.temperature, .platt, .isotonic]
  )
  func recovers(method: CalibrationMethod) throws {
    let predictions = try Self.miscalibrated(20_000, k: 3, c: 0, seed: 1)
    let calibration = try Calibrator.fit(method, predictions)
    switch calibration {
    case .temperature(let t): #expect(abs(t - 3) < 0.15, "T = \(t)")
    case .platt(let a, let b):
      #expect(abs(a - 1.0 / 3) < 0.02 && abs(b) < 0.05, "a = \(a), b = \(b)")
    case .isotonic(let maps):
      #expect(maps.count == 2)
      for map in maps {
        #expect(
          zip(map.x, map.x.dropFirst()).allSatisfy { $0 <= $1 }
            && zip(map.y, map.y.dropFirst()).allSatisfy { $0 <= $1 }
        )
      }
    case .vector, .none: Issue.record("\(calibration.method) for a binary model")
    }
    let after = Metrics.logLoss(calibration.apply(predictions))
    #expect(after < Metrics.logLoss(predictions))
    #expect(try Calibration.decode(try calibration.json()) == calibration)
    let reread = try Calibration(
      method: calibration.method,
      parametersJSON: calibration.parametersJSON(),
      classCount: 2
    )
    #expect(reread == calibration)
  }

  @Test(
    "Serving rows (no labels) calibrate exactly as the labelled predictions do",
    arguments: [
      (CalibrationMethod.none, 2), (.temperature, 2), (.platt, 2), (.isotonic, 2),
      (.none, 3), (.temperature, 3), (.vector, 3), (.isotonic, 3),
    ]
  )
  func servingEqualsLabelled(method: CalibrationMethod, classes: Int) throws {
    var rng = SplitMix64(seed: UInt64(classes))
    var probabilities: [Double] = [], labels: [Int] = []
    for _ in 0 ..< 1500 {
      let z = (0 ..< classes).map { _ in Double.random(in: -4 ... 4, using: &rng) }
      probabilities += Logistic.softmax(z, columns: classes)
      labels.append(Int.random(in: 0 ..< classes, using: &rng))
    }
    // Rows at the clip bounds as well.
    probabilities += [1] + [Double](repeating: 0, count: classes - 1)
    labels.append(0)
    // Fitted without logits, as a served model's probabilities are calibrated.
    let predictions = try Predictions(
      probabilities: probabilities,
      classCount: classes,
      labels: labels
    )
    let calibration = try Calibrator.fit(method, predictions)
    let served = try calibration.apply(probabilities: probabilities, classCount: classes)
    #expect(
      served.map(\.bitPattern) == calibration.apply(predictions).probabilities.map(\.bitPattern)
    )
    if case .none = calibration {} else { #expect(served != probabilities) }
    #expect(throws: VaneError.self) {
      try calibration.apply(probabilities: Array(probabilities.dropLast()), classCount: classes)
    }
    #expect(throws: VaneError.self) { try calibration.apply(probabilities: [0.5], classCount: 1) }
  }

  @Test("Vector scaling and temperature for three classes lower the NLL")
  func multiclass() throws {
    var rng = SplitMix64(seed: 9)
    var logits: [Double] = [], labels: [Int] = []
    for _ in 0 ..< 6000 {
      let z = (0 ..< 3).map { _ in Double.random(in: -2 ... 2, using: &rng) }
      let e = z.map(exp), total = e.reduce(0, +)
      let u = Double.random(in: 0 ..< 1, using: &rng)
      labels.append(u < e[0] / total ? 0 : u < (e[0] + e[1]) / total ? 1 : 2)
      logits += z.map { $0 * 2.5 }
    }
    var probabilities = [Double](repeating: 0, count: logits.count)
    probabilities = Logistic.softmax(logits, columns: 3)
    let predictions = try Predictions(
      probabilities: probabilities,
      classCount: 3,
      labels: labels,
      logits: logits
    )
    for method in [CalibrationMethod.vector, .temperature, .isotonic] {
      let calibration = try Calibrator.fit(method, predictions)
      let calibrated = calibration.apply(predictions)
      #expect(Metrics.logLoss(calibrated) < Metrics.logLoss(predictions) - 0.02, "\(method)")
      // Rows still sum to 1 (isotonic is one-vs-rest, then renormalised).
      for i in stride(from: 0, to: 6000, by: 97) {
        #expect(abs((0 ..< 3).map { calibrated.probability(i, $0) }.reduce(0, +) - 1) < 1e-12)
      }
      #expect(
        try Calibration(method: method, parametersJSON: calibration.parametersJSON(), classCount: 3)
          == calibration
      )
    }
    if case .temperature(let t) = try Calibrator.fit(.temperature, predictions) {
      #expect(abs(t - 2.5) < 0.2)
    }
    #expect(throws: VaneError.self) { _ = try Calibrator.fit(.platt, predictions) }
  }

  @Test("Isotonic is refused below 1,000 samples; auto then chooses among the others")
  func isotonicMinimum() throws {
    let small = try Self.miscalibrated(500, k: 2, c: 0.3, seed: 4)
    #expect { _ = try Calibrator.fit(.isotonic, small) } throws: {
      ($0 as? VaneError)?.message.contains("at least 1000") == true
    }
    #expect { _ = try Calibrator.fit(.temperature, small.subset(Array(0 ..< 49))) } throws: {
      ($0 as? VaneError)?.message.contains("at least 50 samples") == true
    }
    let choice = try Calibrator.choose(small)
    #expect(choice.crossValidatedNLL[.isotonic] == nil)
    #expect(Set(choice.crossValidatedNLL.keys) == [.temperature, .platt])
    // With an offset, Platt (which has a bias) beats a temperature alone.
    #expect(choice.chosen.method == .platt)
  }

  @Test("The parameters use the API's JSON layout")
  func layout() throws {
    #expect(Calibration.temperature(1.5).parametersJSON() == #"{"temperature":1.5}"#)
    #expect(Calibration.platt(a: 0.5, b: -1).parametersJSON() == #"{"a":0.5,"b":-1}"#)
    #expect(
      Calibration.vector(scale: [1, 2], bias: [0, 0.5]).parametersJSON()
        == #"{"bias":[0,0.5],"scale":[1,2]}"#
    )
    #expect(Calibration.none.parametersJSON() == "{}")
    let iso = Calibration.isotonic([
      .init(x: [0.2, 0.8], y: [0.1, 0.9]), .init(x: [0.2, 0.8], y: [0.1, 0.9]),
    ])
    #expect(
      iso.parametersJSON()
        == #"{"classes":[{"x":[0.2,0.8],"y":[0.1,0.9]},{"x":[0.2,0.8],"y":[0.1,0.9]}]}"#
    )
  }

  @Test(
    "Corrupt calibration parameters are refused, naming the parameter",
    arguments: [
      (CalibrationMethod.temperature, #"{"temperature":-1}"#, "calibration.temperature"),
      (
        .isotonic, #"{"classes":[{"x":[0.2,0.1],"y":[0,1]},{"x":[0.1],"y":[0]}]}"#,
        "calibration.isotonic.classes[0]"
      ),
      (.isotonic, #"{"classes":[{"x":[0.1],"y":[0]}]}"#, "calibration.isotonic.classes"),
      (.platt, #"{"a":1}"#, "calibration.parameters_json"),
      (.vector, #"{"scale":[1,1,1],"bias":[0,0]}"#, "calibration.vector"),
      (.temperature, "not json", "calibration.parameters_json"),
      (.auto, "{}", "calibration.method"),
    ]
  )
  func corrupt(method: CalibrationMethod, json: String, field: String) {
    #expect {
      _ = try Calibration(method: method, parametersJSON: json, classCount: nil)
    } throws: { ($0 as? VaneError)?.message.contains(field) == true }
    #expect(throws: VaneError.self) { _ = try Calibration.decode(Data("not json".utf8)) }
  }
}
