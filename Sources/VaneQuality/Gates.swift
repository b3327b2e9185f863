internal import Foundation
internal import VaneCore

/// What a policy is checked against: the measurement of a model's out-of-fold predictions, and
/// what only the producer of those predictions knows.
public struct GateInput: Sendable {
  /// The model judged (for a stacked bundle: the meta-learner's predictions).
  public var model: Measurement
  /// Out-of-fold AUC of each base model of a stack, by name (`base_auc/<name>`,
  /// `base_auc_min`; a single model is its own base when this is empty).
  public var baseAUCs: [String: Double]
  /// Out-of-fold AUC per fold id (`fold_auc/<id>`, `fold_auc_min`, `fold_auc_qNN`).
  public var foldAUCs: [Int: Double]
  /// Bar interval of the data ("1h", "4h", …): picks per-interval thresholds.
  public var interval: String?
  /// Summary of the scaled inputs the model saw (`input_max_abs_mean`,
  /// `input_max_std_deviation`).
  public var inputs: InputSummary?
  /// The baseline's metrics, for relative gates.
  public var baseline: [String: Double]?

  public init(
    model: Measurement,
    baseAUCs: [String: Double] = [:],
    foldAUCs: [Int: Double] = [:],
    interval: String? = nil,
    inputs: InputSummary? = nil,
    baseline: [String: Double]? = nil
  ) {
    self.model = model
    self.baseAUCs = baseAUCs
    self.foldAUCs = foldAUCs
    self.interval = interval
    self.inputs = inputs
    self.baseline = baseline
  }

  /// Every metric a gate can read, with what a summary metric points at.
  public func metrics() -> (values: [String: Double], details: [String: String]) {
    var values = self.model.values
    var details = self.model.details
    let bases = self.baseAUCs.isEmpty ? (values["auc"].map { ["model": $0] } ?? [:]) : self.baseAUCs
    for (name, auc) in bases { values["base_auc/\(name)"] = auc }
    if let worst = bases.min(by: {
      $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key)
    }) {
      values["base_auc_min"] = worst.value
      details["base_auc_min"] =
        self.baseAUCs.isEmpty ? "a single model is its own base" : "base model \(worst.key)"
    }
    for (fold, auc) in self.foldAUCs { values["fold_auc/\(fold)"] = auc }
    if let worst = self.foldAUCs.min(by: {
      $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key)
    }) {
      values["fold_auc_min"] = worst.value
      details["fold_auc_min"] = "fold \(worst.key)"
    }
    if let inputs = self.inputs, !inputs.columns.isEmpty {
      let mean = inputs.mean.indices.max {
        Self.magnitude(inputs.mean[$0]) < Self.magnitude(inputs.mean[$1])
      }!
      values["input_max_abs_mean"] = Self.magnitude(inputs.mean[mean])
      details["input_max_abs_mean"] =
        "column '\(inputs.columns[mean])' (mean \(Self.format(inputs.mean[mean])))"
      let std = inputs.std.indices.max {
        Self.magnitude(inputs.std[$0] - 1) < Self.magnitude(inputs.std[$1] - 1)
      }!
      values["input_max_std_deviation"] = Self.magnitude(inputs.std[std] - 1)
      details["input_max_std_deviation"] =
        "column '\(inputs.columns[std])' (std \(Self.format(inputs.std[std])))"
    }
    return (values, details)
  }

  /// |x|, with NaN (a column that was all missing) the largest.
  static func magnitude(_ x: Double) -> Double { x.isNaN ? .infinity : abs(x) }

  static func format(_ x: Double) -> String { QualityFormat.number(x) }
}

/// How reasons, reports and the CLI write a metric: four significant digits, whole numbers
/// (counts) in full, non-finite values as Swift spells them, "—" for none.
public enum QualityFormat {
  public static func number(_ x: Double?) -> String {
    guard let x else { return "—" }
    if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return x.isFinite ? String(format: "%.4g", x) : "\(x)"
  }
}

/// One gate's outcome: a person reads `reason`; machines read the rest.
public struct GateResult: Sendable, Equatable, Codable {
  public var gate: String
  public var metric: String
  /// The candidate's value (nil when it could not be measured: then the gate fails).
  public var value: Double?
  /// The baseline's value, for relative gates.
  public var baselineValue: Double?
  /// What was compared with the threshold: the value, or its difference or ratio to the
  /// baseline.
  public var comparedValue: Double?
  public var threshold: Double
  public var comparison: QualityPolicy.Comparison
  public var reference: QualityPolicy.Reference
  public var severity: QualityPolicy.Severity
  public var passed: Bool
  public var skipped: Bool
  /// One line: what was measured against what, and why a failure matters.
  public var reason: String

  public init(
    gate: String,
    metric: String,
    value: Double?,
    baselineValue: Double?,
    comparedValue: Double?,
    threshold: Double,
    comparison: QualityPolicy.Comparison,
    reference: QualityPolicy.Reference,
    severity: QualityPolicy.Severity,
    passed: Bool,
    skipped: Bool,
    reason: String
  ) {
    self.gate = gate
    self.metric = metric
    self.value = value
    self.baselineValue = baselineValue
    self.comparedValue = comparedValue
    self.threshold = threshold
    self.comparison = comparison
    self.reference = reference
    self.severity = severity
    self.passed = passed
    self.skipped = skipped
    self.reason = reason
  }
}

/// A policy's verdict: passed when every blocking gate passed or was skipped as allowed.
public struct GateVerdict: Sendable, Equatable, Codable {
  public var policy: String
  public var results: [GateResult]
  public var passed: Bool { self.failures.isEmpty }
  /// Blocking gates that failed.
  public var failures: [GateResult] {
    self.results.filter { !$0.passed && !$0.skipped && $0.severity == .blocking }
  }
  /// Warning gates that failed.
  public var warnings: [GateResult] {
    self.results.filter { !$0.passed && !$0.skipped && $0.severity == .warning }
  }
}

extension QualityPolicy {
  /// Checks every gate in order. A gate whose metric is missing fails, saying so: a policy
  /// never passes silently.
  public func evaluate(_ input: GateInput) -> GateVerdict {
    self.evaluate(input, metrics: input.metrics())
  }

  /// ``evaluate(_:)`` with the input's metrics already gathered.
  func evaluate(
    _ input: GateInput,
    metrics: (values: [String: Double], details: [String: String])
  ) -> GateVerdict {
    let (values, details) = metrics
    return GateVerdict(
      policy: self.name,
      results: self.gates.map { Self.check($0, input: input, values: values, details: details) }
    )
  }

  static func check(
    _ gate: Gate,
    input: GateInput,
    values: [String: Double],
    details: [String: String]
  ) -> GateResult {
    let format = GateInput.format
    let op = gate.comparison.rawValue
    var threshold = gate.threshold
    var thresholdNote = ""
    if !gate.intervalThresholds.isEmpty {
      if let interval = input.interval {
        if let specific = gate.intervalThresholds[interval] {
          threshold = specific
        } else if threshold == nil {
          thresholdNote = " (the policy sets no threshold for \(interval))"
        }
      } else {
        // Unknown interval: the strictest threshold, so that nothing passes by omission.
        let all = Array(gate.intervalThresholds.values) + (gate.threshold.map { [$0] } ?? [])
        threshold = gate.comparison.largerIsStricter ? all.max() : all.min()
        thresholdNote = " (interval unknown: the strictest threshold)"
      }
    }
    var result = GateResult(
      gate: gate.name,
      metric: gate.metric,
      value: nil,
      baselineValue: nil,
      comparedValue: nil,
      threshold: threshold ?? .nan,
      comparison: gate.comparison,
      reference: gate.reference,
      severity: gate.severity,
      passed: false,
      skipped: false,
      reason: ""
    )
    guard let threshold else {
      result.reason = "\(gate.metric): no threshold applies\(thresholdNote)"
      return result
    }
    var value = values[gate.metric]
    if value == nil, let q = MetricCatalog.foldQuantile(gate.metric), !input.foldAUCs.isEmpty {
      value = Statistics.quantile(sorted: input.foldAUCs.values.sorted(), q)
    }
    guard let value else {
      let why = "\(gate.metric) was not measured: \(Self.missingReason(gate.metric, input: input))"
      // The policy's choice is stated in the reason, so a report says why it failed or not.
      switch gate.whenUnmeasured {
      case .fail: result.reason = "\(why) (when_unmeasured: fail)"
      case .skip:
        result.skipped = true
        result.reason = "\(why): skipped (when_unmeasured: skip)"
      case .warn:
        result.severity = .warning
        result.reason = "\(why): a warning only (when_unmeasured: warn)"
      }
      return result
    }
    result.value = value
    let about = details[gate.metric].map { " (\($0))" } ?? ""
    var compared = value
    var described = "\(gate.metric) \(format(value))\(about)"
    if gate.reference != .absolute {
      guard let baseline = input.baseline?[gate.metric] else {
        result.skipped = gate.skipWithoutBaseline
        result.reason =
          input.baseline == nil
          ? "no baseline to compare \(gate.metric) with\(gate.skipWithoutBaseline ? ": skipped" : "")"
          : "the baseline has no \(gate.metric)\(gate.skipWithoutBaseline ? ": skipped" : "")"
        return result
      }
      result.baselineValue = baseline
      if gate.reference == .baselineDelta {
        compared = value - baseline
        described =
          "\(gate.metric) \(format(value)) − baseline \(format(baseline)) = \(format(compared))"
      } else {
        compared = baseline == 0 ? (value == 0 ? 1 : .infinity) : value / baseline
        described =
          "\(gate.metric) \(format(value)) / baseline \(format(baseline)) = \(format(compared))"
      }
    }
    result.comparedValue = compared
    // NaN compares false either way: it fails.
    result.passed = gate.comparison.holds(compared, threshold)
    if result.passed {
      result.reason = "\(described) \(op) \(format(threshold))\(thresholdNote)"
    } else {
      let consequence =
        gate.reference == .absolute
        ? MetricCatalog.consequence(gate.metric)
        : "worse than the baseline: it would degrade production"
      result.reason = "\(described), not \(op) \(format(threshold))\(thresholdNote): \(consequence)"
    }
    return result
  }

  static func missingReason(_ metric: String, input: GateInput) -> String {
    switch metric {
    case "input_max_abs_mean", "input_max_std_deviation":
      "no summary of the scaled inputs was given, so normalisation cannot be checked"
    case "max_abs_logit", "logit_min", "logit_max":
      "the predictions carry no logits, so their range cannot be checked"
    case "fold_auc_min": "no per-fold AUCs (fold ids) were given"
    case "auc": "AUC is undefined (one class only, or no finite predictions)"
    default:
      if metric.hasPrefix("fold_auc") {
        "no per-fold AUCs (fold ids) were given"
      } else {
        "no such value for these predictions"
      }
    }
  }
}
