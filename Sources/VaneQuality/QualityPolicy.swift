internal import Foundation
internal import VaneCore
internal import Yams

/// What a model must meet to pass: absolute thresholds, and limits relative to a baseline
/// (the incumbent's report). Read from YAML (or JSON, which is YAML); every key is checked, and
/// an error names the key and its line.
public struct QualityPolicy: Sendable, Equatable {
  /// Lower-is-worse or higher-is-worse metrics a relative gate may name.
  public enum Metric: String, Sendable, CaseIterable {
    case rocAUC = "roc_auc", logLoss = "log_loss", brier, ece, accuracy

    /// Whether larger values are better.
    var higherIsBetter: Bool { self == .rocAUC || self == .accuracy }

    func value(_ report: MetricsReport) -> Double {
      switch self {
      case .rocAUC: report.rocAUC
      case .logLoss: report.logLoss
      case .brier: report.brier
      case .ece: report.calibration.expected
      case .accuracy: report.accuracy
      }
    }
  }

  /// "Not worse than the baseline by more than `maxWorse` on `metric`."
  public struct RelativeGate: Sendable, Equatable {
    public var metric: Metric
    public var maxWorse: Double
  }

  public var name: String
  /// Every base model's out-of-fold AUC at least this.
  public var minBaseAUC: Double?
  /// The final (stacked) model's out-of-fold AUC at least this.
  public var minStackedAUC: Double?
  /// The `quantile` of per-fold AUCs at least `min` (e.g. the worst decile of folds).
  public var minFoldAUC: (quantile: Double, min: Double)?
  /// Out-of-fold samples at least this many, per interval ("1h", "4h", …).
  public var minSamples: [String: Int]
  public var maxECE: Double?
  /// Share of predictions above 0.99 confidence below this.
  public var maxShareAbove99: Double?
  /// Each class's share of predictions within these bounds.
  public var classShare: (min: Double, max: Double)?
  /// |logit| below this.
  public var maxAbsLogit: Double?
  /// Scaled inputs: every column's |mean| below `inputMeanAbsMax`, |std − 1| below
  /// `inputStdDeviationMax`.
  public var inputMeanAbsMax: Double?
  public var inputStdDeviationMax: Double?
  /// NaN or infinite predictions at most this many.
  public var maxNonFinite: Int?
  public var relative: [RelativeGate]

  public static func == (a: QualityPolicy, b: QualityPolicy) -> Bool {
    a.name == b.name && a.minBaseAUC == b.minBaseAUC && a.minStackedAUC == b.minStackedAUC
      && a.minFoldAUC?.quantile == b.minFoldAUC?.quantile && a.minFoldAUC?.min == b.minFoldAUC?.min
      && a.minSamples == b.minSamples && a.maxECE == b.maxECE && a.maxShareAbove99 == b.maxShareAbove99
      && a.classShare?.min == b.classShare?.min && a.classShare?.max == b.classShare?.max
      && a.maxAbsLogit == b.maxAbsLogit && a.inputMeanAbsMax == b.inputMeanAbsMax
      && a.inputStdDeviationMax == b.inputStdDeviationMax && a.maxNonFinite == b.maxNonFinite && a.relative == b.relative
  }

  /// The policy this project's users already run.
  public static let defaultYAML = """
    # Vane's default quality policy.
    name: default
    absolute:
      min_base_auc: 0.55              # every base model, out of fold
      min_stacked_auc: 0.58           # the stacked model, out of fold
      min_samples: {1h: 20000, 4h: 8000}
      max_share_above_0_99: 0.10      # predictions more than 99 % confident
      class_share: {min: 0.15, max: 0.60}
      max_abs_logit: 15
      input_mean_abs_max: 0.1         # scaled inputs: |mean| per column
      input_std_deviation_max: 0.1    # scaled inputs: |std - 1| per column
      max_non_finite: 0               # NaN or infinite predictions
    """

  public static let `default` = try! QualityPolicy.parse(Self.defaultYAML, source: "default policy")

  /// Parses a policy document.
  /// - Parameter source: what to call the document in errors (a file name).
  /// - Throws: INVALID_ARGUMENT naming the source, line and key: an empty document, an unknown
  ///   key, a value of the wrong type or out of range, or a policy with no gate at all.
  public static func parse(_ text: String, source: String) throws -> QualityPolicy {
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      throw VaneError(.invalidArgument, "\(source): not YAML: \(error)")
    }
    guard let root = node, let mapping = root.mapping else {
      throw VaneError(.invalidArgument, "\(source): the policy is empty or not a mapping; an empty policy would pass everything")
    }
    let reader = Reader(source: source)
    var policy = QualityPolicy(
      name: "", minBaseAUC: nil, minStackedAUC: nil, minFoldAUC: nil, minSamples: [:], maxECE: nil, maxShareAbove99: nil,
      classShare: nil, maxAbsLogit: nil, inputMeanAbsMax: nil, inputStdDeviationMax: nil, maxNonFinite: nil, relative: [])
    for (keyNode, value) in mapping {
      let key = try reader.key(keyNode)
      switch key {
      case "name": policy.name = try reader.string(value, key: key)
      case "absolute":
        guard let gates = value.mapping else { throw reader.error(value, key, "must be a mapping of gates") }
        for (gateNode, gate) in gates {
          let name = try reader.key(gateNode)
          switch name {
          case "min_base_auc": policy.minBaseAUC = try reader.fraction(gate, key: name)
          case "min_stacked_auc": policy.minStackedAUC = try reader.fraction(gate, key: name)
          case "min_fold_auc":
            let fields = try reader.fields(gate, key: name, required: ["quantile", "min"])
            policy.minFoldAUC = (try reader.fraction(fields["quantile"]!, key: "\(name).quantile"), try reader.fraction(fields["min"]!, key: "\(name).min"))
          case "min_samples":
            guard let entries = gate.mapping, !entries.isEmpty else { throw reader.error(gate, name, "must map intervals to counts, e.g. {1h: 20000}") }
            for (intervalNode, count) in entries {
              let interval = try reader.key(intervalNode)
              guard ["15m", "1h", "4h", "1d"].contains(interval) else { throw reader.error(intervalNode, "\(name).\(interval)", "is not an interval (15m, 1h, 4h, 1d)") }
              policy.minSamples[interval] = try reader.count(count, key: "\(name).\(interval)")
            }
          case "max_ece": policy.maxECE = try reader.fraction(gate, key: name)
          case "max_share_above_0_99": policy.maxShareAbove99 = try reader.fraction(gate, key: name)
          case "class_share":
            let fields = try reader.fields(gate, key: name, required: ["min", "max"])
            let low = try reader.fraction(fields["min"]!, key: "\(name).min"), high = try reader.fraction(fields["max"]!, key: "\(name).max")
            guard low < high else { throw reader.error(gate, name, "min must be below max") }
            policy.classShare = (low, high)
          case "max_abs_logit": policy.maxAbsLogit = try reader.positive(gate, key: name)
          case "input_mean_abs_max": policy.inputMeanAbsMax = try reader.positive(gate, key: name)
          case "input_std_deviation_max": policy.inputStdDeviationMax = try reader.positive(gate, key: name)
          case "max_non_finite": policy.maxNonFinite = try reader.count(gate, key: name)
          default: throw reader.error(gateNode, name, "is not a gate; known: min_base_auc, min_stacked_auc, min_fold_auc, min_samples, max_ece, max_share_above_0_99, class_share, max_abs_logit, input_mean_abs_max, input_std_deviation_max, max_non_finite")
          }
        }
      case "relative":
        guard let entries = value.sequence else { throw reader.error(value, key, "must be a list of {metric, max_worse}") }
        for (index, entry) in entries.enumerated() {
          let fields = try reader.fields(entry, key: "relative[\(index)]", required: ["metric", "max_worse"])
          let metricName = try reader.string(fields["metric"]!, key: "relative[\(index)].metric")
          guard let metric = Metric(rawValue: metricName) else {
            throw reader.error(fields["metric"]!, "relative[\(index)].metric", "'\(metricName)' is not one of \(Metric.allCases.map(\.rawValue).joined(separator: ", "))")
          }
          let worse = try reader.number(fields["max_worse"]!, key: "relative[\(index)].max_worse")
          guard worse >= 0 else { throw reader.error(fields["max_worse"]!, "relative[\(index)].max_worse", "must not be negative") }
          policy.relative.append(RelativeGate(metric: metric, maxWorse: worse))
        }
      default:
        throw reader.error(keyNode, key, "is not a policy key; known: name, absolute, relative")
      }
    }
    guard !policy.name.isEmpty else { throw VaneError.invalidArgument(field: "\(source): name", "the policy needs a name") }
    guard policy.gateCount > 0 else {
      throw VaneError(.invalidArgument, "\(source): the policy has no gate; it would pass everything")
    }
    return policy
  }

  /// How many gates the policy sets.
  public var gateCount: Int {
    [minBaseAUC, minStackedAUC, maxECE, maxShareAbove99, maxAbsLogit, inputMeanAbsMax, inputStdDeviationMax].compactMap { $0 }.count
      + (minFoldAUC == nil ? 0 : 1) + (minSamples.isEmpty ? 0 : 1) + (classShare == nil ? 0 : 1)
      + (maxNonFinite == nil ? 0 : 1) + relative.count
  }

  /// Typed reads of YAML nodes with errors that name the source, line and key.
  struct Reader {
    let source: String

    func error(_ node: Node, _ key: String, _ reason: String) -> VaneError {
      let line = node.mark.map { "\($0.line)" } ?? "?"
      return VaneError(.invalidArgument, "\(self.source):\(line): \(key): \(reason)")
    }

    func key(_ node: Node) throws -> String {
      guard let key = node.scalar?.string else { throw self.error(node, "?", "keys must be plain text") }
      return key
    }

    func string(_ node: Node, key: String) throws -> String {
      guard let value = node.scalar?.string, !value.isEmpty else { throw self.error(node, key, "must be text") }
      return value
    }

    func number(_ node: Node, key: String) throws -> Double {
      guard let scalar = node.scalar, let value = Double(scalar.string), value.isFinite else {
        throw self.error(node, key, "must be a number")
      }
      return value
    }

    func fraction(_ node: Node, key: String) throws -> Double {
      let value = try self.number(node, key: key)
      guard (0...1).contains(value) else { throw self.error(node, key, "must be between 0 and 1 (got \(value))") }
      return value
    }

    func positive(_ node: Node, key: String) throws -> Double {
      let value = try self.number(node, key: key)
      guard value > 0 else { throw self.error(node, key, "must be positive (got \(value))") }
      return value
    }

    func count(_ node: Node, key: String) throws -> Int {
      guard let scalar = node.scalar, let value = Int(scalar.string), value >= 0 else {
        throw self.error(node, key, "must be a whole number ≥ 0")
      }
      return value
    }

    func fields(_ node: Node, key: String, required: [String]) throws -> [String: Node] {
      guard let mapping = node.mapping else { throw self.error(node, key, "must be a mapping with \(required.joined(separator: ", "))") }
      var fields: [String: Node] = [:]
      for (name, value) in mapping {
        let field = try self.key(name)
        guard required.contains(field) else { throw self.error(name, "\(key).\(field)", "is not a field; expected \(required.joined(separator: ", "))") }
        fields[field] = value
      }
      if let missing = required.first(where: { fields[$0] == nil }) {
        throw self.error(node, "\(key).\(missing)", "is required")
      }
      return fields
    }
  }
}
