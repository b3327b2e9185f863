import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneQuality

@Suite("Quality gates: the failures real models show, each caught by the right gate")
struct GateTests {
  /// n binary samples: outcomes drawn from σ(z), the model's logit `logit(z, u)`.
  static func model(_ n: Int, seed: UInt64, logit: (Double, Double) -> Double = { z, _ in z }) throws -> Predictions {
    var rng = SplitMix64(seed: seed)
    var logits: [Double] = [], labels: [Int] = []
    for _ in 0..<n {
      let z = Double.random(in: -2...2, using: &rng)
      labels.append(Double.random(in: 0..<1, using: &rng) < Calibration.sigmoid(z) ? 1 : 0)
      logits.append(logit(z, Double.random(in: 0..<1, using: &rng)))
    }
    return try Predictions(binary: logits.map(Calibration.sigmoid), labels: labels, logits: logits)
  }

  static func scaledInputs(mean: Double = 0, std: Double = 1) -> InputSummary {
    var rng = SplitMix64(seed: 77)
    var values: [Double] = []
    for _ in 0..<5000 {
      for _ in 0..<3 {
        // Box–Muller: standard normal draws.
        let u = Double.random(in: Double.ulpOfOne..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
        values.append(mean + std * (-2 * log(u)).squareRoot() * cos(2 * .pi * v))
      }
    }
    return InputSummary(columns: ["a", "b", "c"], values: values)
  }

  static func verdict(_ predictions: Predictions, inputs: InputSummary = scaledInputs(), interval: String = "1h") -> GateVerdict {
    QualityPolicy.default.evaluate(GateInput(model: MetricsReport(predictions), interval: interval, inputs: inputs))
  }

  @Test("A healthy model passes the default policy, every gate reporting its value")
  func healthy() throws {
    let verdict = Self.verdict(try Self.model(25_000, seed: 1))
    #expect(verdict.passed, "\(verdict.failures.map(\.reason))")
    #expect(verdict.results.count >= 9)
    #expect(verdict.results.allSatisfy { $0.value != nil && !$0.reason.isEmpty })
  }

  @Test("Each seeded failure is caught by the gate that names it", arguments: [
    ("overconfident", "max_share_above_0_99", "overconfident"),
    ("one class", "class_share[1]", "collapsed"),
    ("unscaled logits", "max_abs_logit", "unscaled"),
    ("NaN outputs", "max_non_finite", "NaN"),
    ("chance", "min_stacked_auc", "chance"),
    ("too few samples", "min_samples", "too few"),
  ])
  func seededFailure(kind: String, gate: String, reason: String) throws {
    let predictions: Predictions
    switch kind {
    case "overconfident": predictions = try Self.model(25_000, seed: 2) { z, _ in z * 12 }
    case "one class": predictions = try Self.model(25_000, seed: 3) { z, _ in 1.5 + 0.2 * z }
    case "unscaled logits": predictions = try Self.model(25_000, seed: 4) { z, _ in z * 12_000 }
    case "NaN outputs":
      let good = try Self.model(25_000, seed: 5)
      var p = (0..<good.count).map { good.probability($0, 1) }
      for i in stride(from: 0, to: p.count, by: 500) { p[i] = .nan }
      predictions = try Predictions(binary: p, labels: good.labels, logits: good.logits)
    case "chance": predictions = try Self.model(25_000, seed: 6) { _, u in (u - 0.5) * 0.8 }
    default: predictions = try Self.model(5_000, seed: 7)
    }
    let verdict = Self.verdict(predictions)
    #expect(!verdict.passed)
    let result = try #require(verdict.results.first { $0.gate == gate })
    #expect(!result.passed)
    #expect(result.reason.contains(reason), "\(result.reason)")
  }

  @Test("Unscaled inputs fail the normalisation gates, naming the column")
  func unscaledInputs() throws {
    let verdict = Self.verdict(try Self.model(25_000, seed: 8), inputs: Self.scaledInputs(mean: 35_000, std: 900))
    let mean = try #require(verdict.results.first { $0.gate == "input_mean_abs_max" })
    #expect(!mean.passed && mean.reason.contains("scaled input '"))
    #expect(verdict.results.first { $0.gate == "input_std_deviation_max" }?.passed == false)
  }

  @Test("Missing inputs fail their gate instead of passing; 4h needs 8,000 samples")
  func missing() throws {
    let predictions = try Self.model(9_000, seed: 9)
    let verdict = QualityPolicy.default.evaluate(GateInput(model: MetricsReport(predictions), interval: "4h"))
    #expect(verdict.results.first { $0.gate == "input_normalization" }?.passed == false)
    #expect(verdict.results.first { $0.gate == "min_samples" }?.passed == true)
  }

  @Test("Relative gates compare with the incumbent")
  func relative() throws {
    let policy = try QualityPolicy.parse("name: r\nrelative:\n  - {metric: roc_auc, max_worse: 0.01}\n", source: "r.yaml")
    let strong = MetricsReport(try Self.model(20_000, seed: 10))
    let weak = MetricsReport(try Self.model(20_000, seed: 11) { z, u in 0.3 * z + (u - 0.5) })
    #expect(policy.evaluate(GateInput(model: strong, baseline: weak)).passed)
    let verdict = policy.evaluate(GateInput(model: weak, baseline: strong))
    #expect(!verdict.passed && verdict.results[0].reason.contains("worse than the incumbent"))
    #expect(!policy.evaluate(GateInput(model: strong)).passed)  // no baseline given: not a pass
  }
}

@Suite("Quality policy files")
struct PolicyTests {
  @Test("The default policy has the thresholds this project's users run")
  func defaults() {
    let policy = QualityPolicy.default
    #expect(policy.minBaseAUC == 0.55 && policy.minStackedAUC == 0.58)
    #expect(policy.minSamples == ["1h": 20_000, "4h": 8_000])
    #expect(policy.maxShareAbove99 == 0.10 && policy.classShare?.min == 0.15 && policy.classShare?.max == 0.60)
    #expect(policy.maxAbsLogit == 15 && policy.inputMeanAbsMax == 0.1 && policy.inputStdDeviationMax == 0.1 && policy.maxNonFinite == 0)
  }

  @Test("Bad policies are refused, naming the line and the key", arguments: [
    ("", "empty"),
    ("# nothing but a comment\n", "empty"),
    ("name: x\n", "no gate"),
    ("name: x\nabsolute:\n  min_aucc: 0.5\n", "p.yaml:3: min_aucc: is not a gate"),
    ("name: x\nabsolute:\n  min_stacked_auc: 1.5\n", "p.yaml:3: min_stacked_auc: must be between 0 and 1"),
    ("name: x\nabsolute:\n  class_share: {min: 0.6, max: 0.2}\n", "p.yaml:3: class_share: min must be below max"),
    ("name: x\nabsolute:\n  min_samples: {2h: 10}\n", "p.yaml:3: min_samples.2h: is not an interval"),
    ("name: x\nrelative:\n  - {metric: sharpe, max_worse: 0.1}\n", "p.yaml:3: relative[0].metric: 'sharpe' is not one of"),
    ("name: x\nabsolute:\n  max_abs_logit: lots\n", "p.yaml:3: max_abs_logit: must be a number"),
    ("name: [x\n", "not YAML"),
    ("colour: red\n", "p.yaml:1: colour: is not a policy key"),
  ])
  func refused(text: String, message: String) {
    #expect {
      _ = try QualityPolicy.parse(text, source: "p.yaml")
    } throws: { error in
      guard let error = error as? VaneError, error.code == .invalidArgument else { return false }
      return error.message.contains(message)
    }
  }

  @Test("JSON is YAML: the same policy reads from JSON")
  func json() throws {
    let policy = try QualityPolicy.parse(#"{"name": "j", "absolute": {"max_ece": 0.05, "min_fold_auc": {"quantile": 0.1, "min": 0.5}}}"#, source: "j.json")
    #expect(policy.maxECE == 0.05 && policy.minFoldAUC?.quantile == 0.1 && policy.gateCount == 2)
  }
}
