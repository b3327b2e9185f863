internal import Foundation
internal import VaneCore
internal import VaneQuality
internal import Yams

extension RolloutPlan {
  /// Reads a plan from YAML (or JSON), e.g.
  ///
  ///     steps:
  ///       - kind: shadow            # shadow, canary or full
  ///         traffic_percent: 100    # shadow: mirrored share; canary: the new version's share
  ///         duration: 10m           # seconds, or 30s / 10m / 2h
  ///         min_requests: 200
  ///         min_matured_outcomes: 0
  ///         thresholds:
  ///           - metric: error_rate
  ///             op: "<="
  ///             threshold: 0.01
  ///             reference: baseline_delta   # absolute, baseline_delta, baseline_ratio
  ///             failure_limit: 2
  ///       - kind: full
  ///     manual_promotion: false
  ///     disable_auto_rollback: false
  ///     analysis_interval: 30s
  ///     patience: 2m
  ///     clock: wall                     # wall, or data (moved by AdvanceRollout)
  ///
  /// `steps` may be left out for the server's default steps.
  /// - Throws: INVALID_ARGUMENT naming the source, line:column and key.
  public static func parse(_ text: String, source: String) throws -> RolloutPlan {
    let reader = YAMLReader(source: source)
    guard let root = try reader.compose(text) else {
      throw VaneError(.invalidArgument, "\(source): the plan is empty")
    }
    let fields = try reader.fields(
      root,
      at: "",
      known: [
        "steps", "manual_promotion", "disable_auto_rollback", "analysis_interval", "patience",
        "clock",
      ]
    )
    var plan = RolloutPlan.default
    if let steps = fields["steps"] {
      guard let entries = steps.sequence, !entries.isEmpty else {
        throw reader.error(steps, "steps", "must be a non-empty list of steps")
      }
      plan.steps = try entries.enumerated().map {
        try Self.step($1, at: "steps[\($0)]", reader: reader)
      }
    }
    if let node = fields["manual_promotion"] {
      plan.manualPromotion = try reader.bool(node, key: "manual_promotion")
    }
    if let node = fields["disable_auto_rollback"] {
      plan.disableAutoRollback = try reader.bool(node, key: "disable_auto_rollback")
    }
    if let node = fields["analysis_interval"] {
      plan.analysisInterval = try Self.seconds(node, key: "analysis_interval", reader: reader)
    }
    if let node = fields["patience"] {
      plan.patience = try Self.seconds(node, key: "patience", reader: reader)
    }
    if let node = fields["clock"] {
      let name = try reader.string(node, key: "clock")
      guard let clock = Clock(rawValue: name) else {
        throw reader.error(
          node,
          "clock",
          "'\(name.prefix(40))' is not a clock: \(Clock.allCases.map(\.rawValue).joined(separator: ", "))"
        )
      }
      plan.clock = clock
    }
    do {
      try plan.validate(field: source)
    } catch let error as VaneError {
      throw VaneError(.invalidArgument, error.message)
    }
    return plan
  }

  static let stepKeys = [
    "kind", "traffic_percent", "duration", "min_requests", "min_matured_outcomes", "thresholds",
  ]
  static let thresholdKeys = ["metric", "op", "threshold", "reference", "failure_limit"]

  static func step(_ node: Node, at path: String, reader: YAMLReader) throws -> Step {
    let fields = try reader.fields(node, at: path, known: Self.stepKeys)
    guard let kindNode = fields["kind"] else {
      throw reader.error(node, "\(path).kind", "is required: shadow, canary or full")
    }
    let kindText = try reader.string(kindNode, key: "\(path).kind")
    guard let kind = StepKind(rawValue: kindText.lowercased()) else {
      throw reader.error(kindNode, "\(path).kind", "'\(kindText)' is not shadow, canary or full")
    }
    let share =
      try fields["traffic_percent"].map { try reader.number($0, key: "\(path).traffic_percent") }
      ?? (kind == .canary ? 10 : 100)
    func count(_ key: String, _ fallback: Int) throws -> Int {
      guard let node = fields[key] else { return fallback }
      let value = try reader.number(node, key: "\(path).\(key)")
      guard value >= 0, value == value.rounded(), value < 1e12 else {
        throw reader.error(node, "\(path).\(key)", "must be a whole number ≥ 0")
      }
      return Int(value)
    }
    var thresholds: [Threshold] = []
    if let node = fields["thresholds"] {
      guard let entries = node.sequence else {
        throw reader.error(node, "\(path).thresholds", "must be a list")
      }
      for (j, entry) in entries.enumerated() {
        let at = "\(path).thresholds[\(j)]"
        let t = try reader.fields(entry, at: at, known: Self.thresholdKeys)
        for required in ["metric", "op", "threshold"] where t[required] == nil {
          throw reader.error(entry, "\(at).\(required)", "is required")
        }
        let metricText = try reader.string(t["metric"]!, key: "\(at).metric")
        guard let metric = Metric(rawValue: metricText) else {
          throw reader.error(
            t["metric"]!,
            "\(at).metric",
            "'\(metricText)' is not a metric: \(Metric.allCases.map(\.rawValue).joined(separator: ", "))"
          )
        }
        let opText = try reader.string(t["op"]!, key: "\(at).op")
        guard let comparison = Comparison(rawValue: opText) else {
          throw reader.error(t["op"]!, "\(at).op", "'\(opText)' is not one of <, <=, >, >=")
        }
        var reference = Reference.absolute
        if let node = t["reference"] {
          let text = try reader.string(node, key: "\(at).reference")
          guard let value = Reference(rawValue: text) else {
            throw reader.error(
              node,
              "\(at).reference",
              "'\(text)' is not absolute, baseline_delta or baseline_ratio"
            )
          }
          reference = value
        }
        var limit = 1
        if let node = t["failure_limit"] {
          let value = try reader.number(node, key: "\(at).failure_limit")
          guard value >= 1, value == value.rounded(), value < 1e6 else {
            throw reader.error(node, "\(at).failure_limit", "must be a whole number ≥ 1")
          }
          limit = Int(value)
        }
        thresholds.append(
          Threshold(
            metric,
            comparison,
            try reader.number(t["threshold"]!, key: "\(at).threshold"),
            reference: reference,
            failureLimit: limit
          )
        )
      }
    }
    return Step(
      kind: kind,
      trafficPercent: kind == .full ? 100 : share,
      duration: try fields["duration"].map {
        try Self.seconds($0, key: "\(path).duration", reader: reader)
      } ?? 0,
      thresholds: thresholds,
      minRequests: try Self.minimumRequests(fields["min_requests"], at: path, reader: reader),
      minMaturedOutcomes: try count("min_matured_outcomes", 0)
    )
  }

  /// A step's `min_requests` (default 100): at least 1, since a step never passes on no data.
  static func minimumRequests(_ node: Node?, at path: String, reader: YAMLReader) throws -> Int {
    guard let node else { return 100 }
    let value = try reader.number(node, key: "\(path).min_requests")
    guard value >= 1, value == value.rounded(), value < 1e12 else {
      throw reader.error(
        node,
        "\(path).min_requests",
        "must be a whole number ≥ 1 (a step never passes without requests)"
      )
    }
    return Int(value)
  }

  /// Seconds from a number or `30s`, `10m`, `2h`.
  static func seconds(_ node: Node, key: String, reader: YAMLReader) throws -> Double {
    guard let text = node.scalar?.string.trimmingCharacters(in: .whitespaces), !text.isEmpty else {
      throw reader.error(node, key, "must be a duration")
    }
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    var value: Double?
    if let plain = Double(text) {
      value = plain
    } else if let (suffix, scale) = units.first(where: {
      text.hasSuffix($0.0) && Double(text.dropLast($0.0.count)) != nil
    }) {
      value = Double(text.dropLast(suffix.count)).map { $0 * scale }
    }
    guard let value, value.isFinite, value >= 0 else {
      throw reader.error(node, key, "'\(text)' is not a duration (seconds, or 30s, 10m, 2h)")
    }
    return value
  }
}
