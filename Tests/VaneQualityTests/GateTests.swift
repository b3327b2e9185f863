import Foundation
import Testing
import VaneCore
import VaneMath
import VaneTestSupport

@testable import VaneQuality

@Suite("Quality gates: the failures real models show, each caught by the right gate", .computeBound)
struct GateTests {
  static func model(
    _ n: Int,
    seed: UInt64,
    logit: (Double, Double) -> Double = { z, _ in z }
  ) throws -> Predictions {
    try QualityFixtures.model(n, seed: seed, logit: logit)
  }

  static func scaledInputs(mean: Double = 0, std: Double = 1) -> InputSummary {
    QualityFixtures.scaledInputs(mean: mean, std: std)
  }

  static let binary = ["DOWN", "UP"]

  static func verdict(
    _ predictions: Predictions,
    inputs: InputSummary? = scaledInputs(),
    interval: String? = "1h"
  ) -> GateVerdict {
    QualityPolicy.default.evaluate(
      GateInput(
        model: Measurement(predictions, classes: Self.binary),
        interval: interval,
        inputs: inputs
      )
    )
  }

  @Test("A healthy model passes the default policy, every gate reporting its value")
  func healthy() throws {
    let verdict = Self.verdict(try Self.model(25_000, seed: 1))
    #expect(verdict.passed, "\(verdict.failures.map(\.reason))")
    #expect(verdict.results.map(\.gate) == QualityPolicy.default.gates.map(\.name))
    #expect(
      verdict.results.allSatisfy {
        $0.value != nil && $0.comparedValue == $0.value && !$0.reason.isEmpty
      }
    )
  }

  @Test(
    "Each seeded failure is caught by the gate that names it, with the reason",
    arguments: [
      ("overconfident", "overconfidence", "overconfident"),
      ("one class", "class_share_max", "class UP"),
      ("unscaled logits", "logit_range", "unscaled"),
      ("NaN outputs", "finite", "non-numbers"),
      ("chance", "stacked_auc", "chance"),
      ("too few samples", "oof_samples", "too few"),
    ]
  )
  func seededFailure(kind: String, gate: String, reason: String) throws {
    let predictions: Predictions
    switch kind {
    case "overconfident": predictions = try Self.model(25_000, seed: 2) { z, _ in z * 12 }
    case "one class": predictions = try Self.model(25_000, seed: 3) { z, _ in 1.5 + 0.2 * z }
    case "unscaled logits": predictions = try Self.model(25_000, seed: 4) { z, _ in z * 12_000 }
    case "NaN outputs":
      let good = try Self.model(25_000, seed: 5)
      var p = (0 ..< good.count).map { good.probability($0, 1) }
      for i in stride(from: 0, to: p.count, by: 500) { p[i] = .nan }
      predictions = try Predictions(binary: p, labels: good.labels, logits: good.logits)
    case "chance": predictions = try Self.model(25_000, seed: 6) { _, u in (u - 0.5) * 0.8 }
    default: predictions = try Self.model(5_000, seed: 7)
    }
    let verdict = Self.verdict(predictions)
    #expect(!verdict.passed)
    let result = try #require(verdict.results.first { $0.gate == gate })
    #expect(!result.passed && !result.skipped && result.severity == .blocking)
    #expect(result.reason.contains(reason), "\(result.reason)")
    // The failing gate is named among the failures; a seeded failure does not trip everything.
    #expect(verdict.failures.map(\.gate).contains(gate))
    #expect(verdict.failures.count <= 4, "\(verdict.failures.map(\.gate))")
  }

  @Test("A three-class model predicting HOLD almost always fails class_share_max naming HOLD")
  func threeClassCollapse() throws {
    var rng = SplitMix64(seed: 13)
    var rows: [Double] = [], labels: [Int] = []
    for _ in 0 ..< 25_000 {
      let hold = Double.random(in: 0.5 ... 0.8, using: &rng),
        down = Double.random(in: 0 ..< (1 - hold), using: &rng)
      rows += [down, hold, 1 - hold - down]
      labels.append(Int.random(in: 0 ..< 3, using: &rng))
    }
    let predictions = try Predictions(probabilities: rows, classCount: 3, labels: labels)
    let verdict = QualityPolicy.default.evaluate(
      GateInput(
        model: Measurement(predictions, classes: ["DOWN", "HOLD", "UP"]),
        interval: "1h",
        inputs: Self.scaledInputs()
      )
    )
    let gate = try #require(verdict.results.first { $0.gate == "class_share_max" })
    #expect(!gate.passed && gate.reason.contains("class HOLD") && gate.value! > 0.97)
  }

  @Test("Unscaled inputs fail the normalisation gates, naming the column")
  func unscaledInputs() throws {
    let verdict = Self.verdict(
      try Self.model(25_000, seed: 8),
      inputs: Self.scaledInputs(mean: 35_000, std: 900)
    )
    let mean = try #require(verdict.results.first { $0.gate == "input_mean" })
    #expect(!mean.passed && mean.reason.contains("column '"), "\(mean.reason)")
    #expect(verdict.results.first { $0.gate == "input_std" }?.passed == false)
  }

  @Test(
    "Missing inputs fail their gate instead of passing; 4h needs 8,000 samples; an unknown interval gets the strictest"
  )
  func missing() throws {
    let predictions = try Self.model(9_000, seed: 9)
    let verdict = Self.verdict(predictions, inputs: nil, interval: "4h")
    let input = try #require(verdict.results.first { $0.gate == "input_mean" })
    #expect(!input.passed && input.value == nil && input.reason.contains("not measured"))
    let samples = try #require(verdict.results.first { $0.gate == "oof_samples" })
    #expect(samples.passed && samples.threshold == 8_000)
    let unknown = try #require(
      Self.verdict(predictions, interval: nil).results.first { $0.gate == "oof_samples" }
    )
    #expect(!unknown.passed && unknown.threshold == 20_000 && unknown.reason.contains("strictest"))
  }

  /// A policy with the two scaled-input gates, `policyLine` at the top level and `gateLine` on
  /// input_mean only.
  static func unmeasuredPolicy(_ policyLine: String, _ gateLine: String) -> String {
    """
    name: u
    \(policyLine)
    gates:
      - {name: stacked_auc, metric: auc, op: ">=", threshold: 0.5}
      - {name: input_mean, metric: input_max_abs_mean, op: "<", threshold: 0.1\(gateLine)}
      - {name: input_std, metric: input_max_std_deviation, op: "<", threshold: 0.1}

    """
  }

  @Test(
    "when_unmeasured: an unmeasured gate fails, is skipped or only warns as the policy (or the gate) says, and its reason says which",
    arguments: [
      // (policy line, gate line, input_mean's outcome, input_std's outcome, the verdict passes)
      ("", "", "fail", "fail", false),
      ("when_unmeasured: skip", "", "skip", "skip", true),
      ("when_unmeasured: warn", "", "warn", "warn", true),
      ("when_unmeasured: skip", ", when_unmeasured: fail", "fail", "skip", false),
      ("", ", when_unmeasured: warn", "warn", "fail", false),
    ]
  )
  func unmeasured(
    policyLine: String,
    gateLine: String,
    mean: String,
    std: String,
    passes: Bool
  ) throws {
    let policy = try QualityPolicy.parse(
      Self.unmeasuredPolicy(policyLine, gateLine),
      source: "u.yaml"
    )
    let predictions = try Self.model(5_000, seed: 4)
    let verdict = policy.evaluate(
      GateInput(model: Measurement(predictions, classes: Self.binary), interval: "1h", inputs: nil)
    )
    func outcome(_ gate: String) throws -> String {
      let result = try #require(verdict.results.first { $0.gate == gate })
      #expect(result.value == nil && result.reason.contains("not measured") && !result.passed)
      let said = result.skipped ? "skip" : result.severity == .warning ? "warn" : "fail"
      #expect(result.reason.contains("(when_unmeasured: \(said))"), "\(result.reason)")
      return said
    }
    #expect(try outcome("input_mean") == mean && outcome("input_std") == std)
    #expect(verdict.passed == passes, "\(verdict.failures.map(\.reason))")
    // Measured, the same gates are judged on their values whatever when_unmeasured says.
    let measured = policy.evaluate(
      GateInput(
        model: Measurement(predictions, classes: Self.binary),
        interval: "1h",
        inputs: Self.scaledInputs()
      )
    )
    #expect(measured.passed && measured.results.allSatisfy { $0.value != nil && !$0.skipped })
    #expect(throws: VaneError.self) {
      try QualityPolicy.parse(
        Self.unmeasuredPolicy("when_unmeasured: ignore", ""),
        source: "u.yaml"
      )
    }
    #expect(throws: VaneError.self) {
      try QualityPolicy.parse(
        Self.unmeasuredPolicy("", ", when_unmeasured: maybe"),
        source: "u.yaml"
      )
    }
  }

  static let relativePolicy = """
    name: r
    gates:
      - {name: auc_vs_prod, metric: auc, op: ">=", threshold: -0.01, reference: baseline_delta}
      - {name: loss_ratio, metric: log_loss, op: "<=", threshold: 1.02, reference: baseline_ratio, skip_without_baseline: true}
      - {name: ece_hint, metric: ece, op: "<", threshold: 0.0001, severity: warning}
    """

  @Test("Relative gates compare with the baseline; skip only where allowed; warnings do not fail")
  func relative() throws {
    let policy = try QualityPolicy.parse(Self.relativePolicy, source: "r.yaml")
    let strong = Measurement(try Self.model(20_000, seed: 10), classes: Self.binary)
    let weak = Measurement(
      try Self.model(20_000, seed: 11) { z, u in 0.3 * z + (u - 0.5) },
      classes: Self.binary
    )
    let better = policy.evaluate(GateInput(model: strong, baseline: weak.values))
    #expect(
      better.passed && better.warnings.map(\.gate) == ["ece_hint"],
      "\(better.results.map(\.reason))"
    )
    let delta = better.results[0]
    #expect(
      delta.comparedValue == strong.values["auc"]! - weak.values["auc"]!
        && delta.baselineValue == weak.values["auc"]
    )
    let worse = policy.evaluate(GateInput(model: weak, baseline: strong.values))
    #expect(!worse.passed && worse.results[0].reason.contains("worse than the baseline"))
    #expect(!worse.results[1].passed)
    let alone = policy.evaluate(GateInput(model: strong))
    #expect(!alone.passed)  // no baseline: the first gate fails ...
    #expect(alone.results[0].reason.contains("no baseline") && !alone.results[0].skipped)
    // ... the second may skip.
    #expect(alone.results[1].skipped && alone.results[1].reason.contains("skipped"))
  }

  @Test("Fold quantile and base-model gates read the gate input")
  func foldsAndBases() throws {
    let policy = try QualityPolicy.parse(
      """
      name: f
      gates:
        - {name: worst_decile, metric: fold_auc_q10, op: ">=", threshold: 0.52}
        - {name: bases, metric: base_auc_min, op: ">=", threshold: 0.55}
      """,
      source: "f.yaml"
    )
    let model = Measurement(try Self.model(20_000, seed: 14), classes: Self.binary)
    var folds: [Int: Double] = [:]
    for i in 0 ..< 20 { folds[i] = 0.6 + 0.001 * Double(i) }
    folds[3] = 0.49
    folds[7] = 0.5
    folds[9] = 0.45
    let verdict = policy.evaluate(
      GateInput(model: model, baseAUCs: ["xgb": 0.61, "lstm": 0.53], foldAUCs: folds)
    )
    #expect(!verdict.results[0].passed)
    #expect(!verdict.results[1].passed && verdict.results[1].reason.contains("base model lstm"))
  }
}

@Suite("Quality policy files")
struct PolicyTests {
  @Test("The default policy has the thresholds this project's users run")
  func defaults() throws {
    let gates = Dictionary(uniqueKeysWithValues: QualityPolicy.default.gates.map { ($0.name, $0) })
    #expect(gates["base_auc"]?.threshold == 0.55 && gates["stacked_auc"]?.threshold == 0.58)
    #expect(gates["oof_samples"]?.intervalThresholds == ["1h": 20_000, "4h": 8_000])
    #expect(
      gates["overconfidence"]?.threshold == 0.10 && gates["class_share_min"]?.threshold == 0.15
        && gates["class_share_max"]?.threshold == 0.60
    )
    #expect(
      gates["logit_range"]?.threshold == 15 && gates["input_mean"]?.threshold == 0.1
        && gates["input_std"]?.threshold == 0.1
    )
    #expect(gates["finite"]?.threshold == 0 && gates["finite"]?.comparison == .lessOrEqual)
    #expect(
      QualityPolicy.default.gates.allSatisfy {
        $0.severity == .blocking && $0.reference == .absolute
      }
    )
  }

  @Test(
    "Bad policies are refused, naming the line:column and the key",
    arguments: [
      ("", "empty"),
      ("# nothing but a comment\n", "empty"),
      ("name: x\n", "no gate"),
      ("name: x\ngates: []\n", "no gate"),
      ("gates:\n  - {name: a, metric: auc, op: '>=', threshold: 0.5}\n", "needs a name"),
      (
        "name: x\ngates:\n  - {name: a, metric: aucc, op: '>=', threshold: 0.5}\n",
        "p.yaml:3:23: gates[0].metric: unknown metric 'aucc'"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '=>', threshold: 0.5}\n",
        "p.yaml:3:32: gates[0].op: unknown comparison '=>'"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '>=', threshold: lots}\n",
        "gates[0].threshold: must be a number"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '>='}\n", "gates[0].threshold: is required"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '>=', threshold: 0.5}\n  - {name: a, metric: ece, op: '<', threshold: 0.1}\n",
        "p.yaml:4:5: gates[1].name: duplicate gate name 'a'"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: n, op: '>=', threshold: {2h: 10}}\n",
        "gates[0].threshold.2h: is not an interval"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '>=', threshold: 0.5, colour: red}\n",
        "gates[0].colour: is not a gate key"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '>=', threshold: 0.5, severity: fatal}\n",
        "gates[0].severity: 'fatal' is not one of"
      ),
      (
        "name: x\ngates:\n  - {name: a, metric: auc, op: '>=', threshold: 0.5, skip_without_baseline: true}\n",
        "only a relative gate"
      ),
      ("name: [x\n", "not YAML"),
      ("colour: red\n", "p.yaml:1:1: colour: is not a policy key"),
    ]
  )
  func refused(text: String, message: String) {
    #expect {
      _ = try QualityPolicy.parse(text, source: "p.yaml")
    } throws: { error in
      guard let error = error as? VaneError, error.code == .invalidArgument else { return false }
      return error.message.contains(message)
    }
  }

  @Test("JSON is read too, with the same gates")
  func json() throws {
    let policy = try QualityPolicy.parse(
      #"{"name": "j", "gates": [{"name": "cal", "metric": "ece", "op": "<=", "threshold": 0.05}, {"name": "folds", "metric": "fold_auc_q10", "op": ">=", "threshold": 0.5}]}"#,
      source: "j.json"
    )
    #expect(
      policy.name == "j" && policy.gates.map(\.metric) == ["ece", "fold_auc_q10"]
        && policy.gates[0].threshold == 0.05
    )
  }

  @Test(
    "Metric names: measured, derived, per-class families and fold quantiles",
    arguments: [
      ("auc", true), ("precision/UP", true), ("precision/", false), ("fold_auc_q10", true),
      ("fold_auc_q101", false),
      ("fold_auc_qx", false), ("base_auc/xgb", true), ("sharpe", false),
      ("input_max_abs_mean", true),
    ]
  )
  func metricNames(name: String, known: Bool) {
    #expect(MetricCatalog.isKnown(name) == known)
  }
}
