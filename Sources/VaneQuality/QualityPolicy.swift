internal import Foundation
internal import VaneCore
internal import Yams

/// What a model must meet to pass: a named list of gates, each "metric <op> threshold", the
/// metric taken as is or relative to a baseline (the incumbent). Read from YAML or JSON; every
/// key is checked, and an error names the line, column and key.
///
/// ```yaml
/// name: strict-1h
/// gates:
///   - name: stacked_auc
///     metric: auc
///     op: ">="
///     threshold: 0.58
///   - name: oof_samples
///     metric: n
///     op: ">="
///     threshold: {1h: 20000, 4h: 8000}   # per bar interval
///   - name: no_worse_than_production
///     metric: log_loss
///     op: "<="
///     threshold: 0.002
///     reference: baseline_delta          # candidate − baseline
///     skip_without_baseline: true
///     severity: warning
///   - name: input_mean
///     metric: input_max_abs_mean
///     op: "<"
///     threshold: 0.1
///     when_unmeasured: warn              # this gate's own choice
/// when_unmeasured: fail                  # a gate whose metric was not measured: fail (default), skip or warn
/// ```
public struct QualityPolicy: Sendable, Equatable {
  /// The check `value <op> threshold`.
  public enum Comparison: String, Sendable, Codable, CaseIterable {
    case lessThan = "<"
    case lessOrEqual = "<="
    case greaterThan = ">"
    case greaterOrEqual = ">="

    public func holds(_ value: Double, _ threshold: Double) -> Bool {
      switch self {
      case .lessThan: value < threshold
      case .lessOrEqual: value <= threshold
      case .greaterThan: value > threshold
      case .greaterOrEqual: value >= threshold
      }
    }

    /// Whether larger thresholds are stricter.
    var largerIsStricter: Bool { self == .greaterThan || self == .greaterOrEqual }
  }

  /// What the threshold is compared with.
  public enum Reference: String, Sendable, Codable, CaseIterable {
    /// The candidate's value.
    case absolute
    /// Candidate − baseline.
    case baselineDelta = "baseline_delta"
    /// Candidate / baseline.
    case baselineRatio = "baseline_ratio"
  }

  /// Whether a failing gate fails the report or only warns.
  public enum Severity: String, Sendable, Codable, CaseIterable { case blocking, warning }

  /// What a gate does when its metric could not be measured (scaled-input gates judged without
  /// the inputs, a metric the predictions cannot give): fail it (the default: nothing passes by
  /// omission), skip it, or only warn.
  public enum Unmeasured: String, Sendable, Codable, CaseIterable { case fail, skip, warn }

  /// One gate.
  public struct Gate: Sendable, Equatable, Codable {
    public var name: String
    /// A metric name (``MetricCatalog``).
    public var metric: String
    public var comparison: Comparison
    /// The threshold, unless `intervalThresholds` has one for the subject's bar interval.
    public var threshold: Double?
    /// Thresholds per bar interval ("1h", "4h", …); a subject of unknown interval gets the
    /// strictest.
    public var intervalThresholds: [String: Double]
    public var reference: Reference
    public var severity: Severity
    /// Relative gates: skip instead of failing when there is no baseline.
    public var skipWithoutBaseline: Bool
    /// Why the gate exists, shown in reports.
    public var note: String
    /// What happens when the metric was not measured (the gate's own `when_unmeasured`, else
    /// the policy's).
    public var whenUnmeasured: Unmeasured

    public init(
      name: String,
      metric: String,
      comparison: Comparison,
      threshold: Double?,
      intervalThresholds: [String: Double] = [:],
      reference: Reference = .absolute,
      severity: Severity = .blocking,
      skipWithoutBaseline: Bool = false,
      note: String = "",
      whenUnmeasured: Unmeasured = .fail
    ) {
      self.name = name
      self.metric = metric
      self.comparison = comparison
      self.threshold = threshold
      self.intervalThresholds = intervalThresholds
      self.reference = reference
      self.severity = severity
      self.skipWithoutBaseline = skipWithoutBaseline
      self.note = note
      self.whenUnmeasured = whenUnmeasured
    }
  }

  public var name: String
  public var gates: [Gate]
  /// The policy's `when_unmeasured`: what its gates without their own do.
  public var whenUnmeasured: Unmeasured = .fail

  /// The policy this project's users already run.
  public static let defaultYAML = """
    # Vane's default quality policy: what this project's users already run.
    name: default
    gates:
      - name: base_auc
        metric: base_auc_min
        op: ">="
        threshold: 0.55
        note: every base model's out-of-fold AUC; a weaker one adds noise to the stack
      - name: stacked_auc
        metric: auc
        op: ">="
        threshold: 0.58
        note: the stacked (final) model's out-of-fold AUC
      - name: oof_samples
        metric: n
        op: ">="
        threshold: {1h: 20000, 4h: 8000}
        note: out-of-fold samples; fewer and no metric here can be trusted
      - name: overconfidence
        metric: share_above_0_99
        op: "<"
        threshold: 0.10
        note: share of predictions more than 99 % confident
      - name: class_share_min
        metric: pred_share_min
        op: ">="
        threshold: 0.15
        note: each class must be predicted at least 15 % of the time
      - name: class_share_max
        metric: pred_share_max
        op: "<="
        threshold: 0.60
        note: no class may be predicted more than 60 % of the time
      - name: logit_range
        metric: max_abs_logit
        op: "<"
        threshold: 15
        note: largest |logit|; larger comes from unscaled inputs
      - name: input_mean
        metric: input_max_abs_mean
        op: "<"
        threshold: 0.1
        note: scaled inputs, largest |mean| of a column
      - name: input_std
        metric: input_max_std_deviation
        op: "<"
        threshold: 0.1
        note: scaled inputs, largest |std - 1| of a column
      - name: finite
        metric: non_finite
        op: "<="
        threshold: 0
        note: NaN or infinite predictions
    """

  public static let `default` = try! QualityPolicy.parse(Self.defaultYAML, source: "default policy")

  /// Parses a policy document (YAML, or JSON, which YAML reads).
  /// - Parameters:
  ///   - source: what to call the document in errors (a file name).
  ///   - name: the policy's name when it is stored under one (it replaces the text's `name`,
  ///     which may then be left out).
  /// - Throws: INVALID_ARGUMENT naming the source, line:column and key: a document that is
  ///   empty or not YAML, an unknown key or metric, a bad comparison, a value of the wrong type,
  ///   a duplicate gate name, or a policy with no gate at all.
  public static func parse(
    _ text: String,
    source: String,
    name storedName: String? = nil
  ) throws -> QualityPolicy {
    let reader = YAMLReader(source: source)
    guard let root = try reader.compose(text), let mapping = root.mapping else {
      throw VaneError(
        .invalidArgument,
        "\(source): the policy is empty or not a mapping; an empty policy would pass everything"
      )
    }
    var name: String?
    var gates: [(gate: Gate, ownUnmeasured: Bool)] = []
    var whenUnmeasured = Unmeasured.fail
    for (keyNode, value) in mapping {
      let key = try reader.key(keyNode)
      switch key {
      case "name": name = try reader.string(value, key: key)
      case "gates":
        guard let entries = value.sequence else {
          throw reader.error(value, key, "must be a list of gates")
        }
        for (index, entry) in entries.enumerated() {
          let gate = try Self.gate(entry, at: "gates[\(index)]", reader: reader)
          if gates.contains(where: { $0.gate.name == gate.gate.name }) {
            throw reader.error(
              entry,
              "gates[\(index)].name",
              "duplicate gate name '\(gate.gate.name)'"
            )
          }
          gates.append(gate)
        }
      case "when_unmeasured":
        whenUnmeasured = try Self.unmeasured(value, key: key, reader: reader)
      default:
        throw reader.error(keyNode, key, "is not a policy key; known: name, gates, when_unmeasured")
      }
    }
    guard let name = storedName ?? name else {
      throw VaneError.invalidArgument(field: "\(source): name", "the policy needs a name")
    }
    guard !gates.isEmpty else {
      throw VaneError(
        .invalidArgument,
        "\(source): gates: the policy has no gate; it would pass everything"
      )
    }
    var policy = QualityPolicy(
      name: name,
      gates: gates.map { entry in
        var gate = entry.gate
        if !entry.ownUnmeasured { gate.whenUnmeasured = whenUnmeasured }
        return gate
      }
    )
    policy.whenUnmeasured = whenUnmeasured
    return policy
  }

  static func unmeasured(_ node: Node, key: String, reader: YAMLReader) throws -> Unmeasured {
    let text = try reader.string(node, key: key)
    guard let value = Unmeasured(rawValue: text) else {
      throw reader.error(
        node,
        key,
        "'\(text.prefix(40))' is not one of \(Unmeasured.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    return value
  }

  static let gateKeys = [
    "name", "metric", "op", "threshold", "reference", "severity", "skip_without_baseline",
    "when_unmeasured", "note",
  ]

  /// A gate, and whether it set its own `when_unmeasured`.
  static func gate(
    _ node: Node,
    at path: String,
    reader: YAMLReader
  ) throws -> (gate: Gate, ownUnmeasured: Bool) {
    guard let mapping = node.mapping else {
      throw reader.error(
        node,
        path,
        "must be a mapping with \(Self.gateKeys.joined(separator: ", "))"
      )
    }
    var fields: [String: Node] = [:]
    for (keyNode, value) in mapping {
      let key = try reader.key(keyNode)
      guard Self.gateKeys.contains(key) else {
        throw reader.error(
          keyNode,
          "\(path).\(key)",
          "is not a gate key; known: \(Self.gateKeys.joined(separator: ", "))"
        )
      }
      fields[key] = value
    }
    for required in ["name", "metric", "op", "threshold"] where fields[required] == nil {
      throw reader.error(node, "\(path).\(required)", "is required")
    }
    let name = try reader.string(fields["name"]!, key: "\(path).name")
    guard name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) })
    else {
      throw reader.error(
        fields["name"]!,
        "\(path).name",
        "'\(name)' must be letters, digits, '.', '_' or '-' (at most 64)"
      )
    }
    let metric = try reader.string(fields["metric"]!, key: "\(path).metric")
    guard MetricCatalog.isKnown(metric) else {
      throw reader.error(
        fields["metric"]!,
        "\(path).metric",
        "unknown metric \(MessageText.quote(metric)); known: \(MetricCatalog.summary)"
      )
    }
    let opText = try reader.string(fields["op"]!, key: "\(path).op")
    guard let comparison = Comparison(rawValue: opText) else {
      throw reader.error(
        fields["op"]!,
        "\(path).op",
        "unknown comparison '\(opText)'; one of <, <=, >, >="
      )
    }
    var threshold: Double?
    var perInterval: [String: Double] = [:]
    let thresholdNode = fields["threshold"]!
    if let entries = thresholdNode.mapping {
      guard !entries.isEmpty else {
        throw reader.error(
          thresholdNode,
          "\(path).threshold",
          "must be a number or map intervals to numbers"
        )
      }
      for (intervalNode, value) in entries {
        let interval = try reader.key(intervalNode)
        guard ["15m", "1h", "4h", "1d"].contains(interval) else {
          throw reader.error(
            intervalNode,
            "\(path).threshold.\(interval)",
            "is not an interval (15m, 1h, 4h, 1d)"
          )
        }
        perInterval[interval] = try reader.number(value, key: "\(path).threshold.\(interval)")
      }
    } else {
      threshold = try reader.number(thresholdNode, key: "\(path).threshold")
    }
    func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ fallback: T) throws -> T
    where T.RawValue == String {
      guard let node = fields[key] else { return fallback }
      let text = try reader.string(node, key: "\(path).\(key)")
      guard let value = T(rawValue: text) else {
        throw reader.error(
          node,
          "\(path).\(key)",
          "'\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))"
        )
      }
      return value
    }
    let reference: Reference = try choice("reference", .absolute)
    if reference == .baselineRatio, let threshold, threshold <= 0 {
      throw reader.error(
        thresholdNode,
        "\(path).threshold",
        "a baseline ratio threshold must be positive"
      )
    }
    var skip = false
    if let node = fields["skip_without_baseline"] {
      guard let value = node.scalar.flatMap({ Bool.construct(from: $0) }) else {
        throw reader.error(node, "\(path).skip_without_baseline", "must be true or false")
      }
      guard reference != .absolute || !value else {
        throw reader.error(
          node,
          "\(path).skip_without_baseline",
          "only a relative gate (reference baseline_delta or baseline_ratio) has a baseline to skip without"
        )
      }
      skip = value
    }
    let gate = Gate(
      name: name,
      metric: metric,
      comparison: comparison,
      threshold: threshold,
      intervalThresholds: perInterval,
      reference: reference,
      severity: try choice("severity", .blocking),
      skipWithoutBaseline: skip,
      note: try fields["note"].map { try reader.string($0, key: "\(path).note") } ?? "",
      whenUnmeasured: try fields["when_unmeasured"].map {
        try Self.unmeasured($0, key: "\(path).when_unmeasured", reader: reader)
      } ?? .fail
    )
    return (gate, fields["when_unmeasured"] != nil)
  }
}

/// The metric names a gate may check: everything ``Measurement`` gives, plus what only a gate
/// input has (base models, folds, scaled inputs).
public enum MetricCatalog {
  /// Names measured on the predictions.
  public static let measured: Set<String> = [
    "n", "log_loss", "log_loss_skill", "brier", "ece", "mce", "ece_equal_mass", "accuracy",
    "balanced_accuracy", "mcc",
    "f1_macro", "auc", "pred_share_min", "pred_share_max", "mean_confidence", "share_above_0_99",
    "logit_min", "logit_max",
    "max_abs_logit", "nan_count", "inf_count", "non_finite",
  ]
  /// Names from the rest of the gate input.
  public static let derived: Set<String> = [
    "base_auc_min", "fold_auc_min", "input_max_abs_mean", "input_max_std_deviation",
  ]
  /// Families followed by a class name (`precision/UP`), a base model (`base_auc/xgb`) or a fold
  /// id (`fold_auc/3`).
  public static let families = [
    "base_rate/", "pred_rate/", "bias/", "precision/", "recall/", "pred_share/", "base_auc/",
    "fold_auc/",
  ]

  /// Whether a gate may name `metric`; `fold_auc_qNN` is the NN-th percentile of fold AUCs.
  public static func isKnown(_ metric: String) -> Bool {
    if Self.measured.contains(metric) || Self.derived.contains(metric) { return true }
    if let family = Self.families.first(where: metric.hasPrefix) {
      return metric.count > family.count
    }
    return Self.foldQuantile(metric) != nil
  }

  /// The quantile q of `fold_auc_qNN` (NN from 0 to 100), else nil.
  static func foldQuantile(_ metric: String) -> Double? {
    guard metric.hasPrefix("fold_auc_q"), let percent = Int(metric.dropFirst("fold_auc_q".count)),
      (0 ... 100).contains(percent),
      metric.count <= "fold_auc_q100".count
    else { return nil }
    return Double(percent) / 100
  }

  static let summary =
    "n, auc, log_loss, log_loss_skill, brier, ece, mce, accuracy, balanced_accuracy, mcc, f1_macro, share_above_0_99, pred_share_min, pred_share_max, max_abs_logit, non_finite, base_auc_min, fold_auc_min, fold_auc_qNN, input_max_abs_mean, input_max_std_deviation, and per class or model precision/C, recall/C, pred_share/C, base_rate/C, pred_rate/C, bias/C, base_auc/M, fold_auc/F"

  /// Why a failing value of `metric` matters, in a few words.
  static func consequence(_ metric: String) -> String {
    switch metric {
    case "auc": "barely better than chance at ranking ups over downs"
    case "base_auc_min": "this base model adds noise to the stack"
    case "fold_auc_min": "the model fails in some market periods"
    case "n": "too few out-of-fold samples to trust any metric"
    case "share_above_0_99": "direction models are never that sure; the model is overconfident"
    case "pred_share_min", "pred_share_max": "the model has collapsed toward one answer"
    case "max_abs_logit", "logit_min", "logit_max":
      "typical of unscaled inputs; its probabilities saturate"
    case "input_max_abs_mean", "input_max_std_deviation":
      "inputs are not standardised: the scaler was not fitted on these data, or not applied"
    case "non_finite", "nan_count", "inf_count":
      "the model emits non-numbers, so none of its outputs can be trusted"
    case "ece", "mce", "ece_equal_mass": "its probabilities do not mean what they say"
    case "log_loss", "log_loss_skill", "brier": "its probabilities fit the outcomes worse"
    default:
      if metric.hasPrefix("fold_auc") {
        "the model fails in some market periods"
      } else if metric.hasPrefix("base_auc/") {
        "this base model adds noise to the stack"
      } else if metric.hasPrefix("pred_share/") || metric.hasPrefix("bias/")
        || metric.hasPrefix("pred_rate/")
      {
        "the model leans toward one answer"
      } else {
        "below what the policy requires"
      }
    }
  }
}
