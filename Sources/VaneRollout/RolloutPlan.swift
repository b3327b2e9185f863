internal import Foundation
internal import VaneCore

/// How a new version is exposed to traffic, step by step (the API's `RolloutPlan`, with
/// defaults resolved).
public struct RolloutPlan: Sendable, Equatable, Codable {
  public enum StepKind: String, Sendable, Codable, CaseIterable {
    /// The new version scores mirrored traffic; answers come from the baseline.
    case shadow
    /// The new version answers `trafficPercent` of requests.
    case canary
    /// The new version answers everything; the baseline stays loaded until the step passes.
    case full
  }

  /// What an analysis measures on the new version (and the baseline, over the same window).
  public enum Metric: String, Sendable, Codable, CaseIterable {
    case errorRate = "error_rate"
    case latencyP50Ms = "latency_p50_ms"
    case latencyP99Ms = "latency_p99_ms"
    case requestCount = "request_count"
    /// Share of paired answers (shadow and primary on the same input) whose predicted class differs.
    case disagreementRate = "disagreement_rate"
    /// Mean |p_new − p_baseline| of the baseline's predicted class over paired answers.
    case meanAbsProbDiff = "mean_abs_prob_diff"
    case meanConfidence = "mean_confidence"
    /// Answers joined with their realized outcome during the step.
    case maturedOutcomes = "matured_outcomes"
    case liveAUC = "live_auc"
    case liveLogLoss = "live_log_loss"
    case liveBrier = "live_brier"
    /// PSI of the live calibrated score against the bundle's out-of-fold deciles.
    case scorePSI = "score_psi"

    /// Metrics judged on matured outcomes (a step with `minMaturedOutcomes` waits for them).
    public var needsOutcomes: Bool { [.liveAUC, .liveLogLoss, .liveBrier].contains(self) }
    /// Metrics read from the predictor's prediction log (not its counters).
    public var fromLog: Bool {
      switch self {
      case .errorRate, .latencyP50Ms, .latencyP99Ms, .requestCount: false
      case .disagreementRate, .meanAbsProbDiff, .meanConfidence, .maturedOutcomes, .liveAUC,
        .liveLogLoss, .liveBrier, .scorePSI:
        true
      }
    }
    /// Metrics measured on paired answers.
    public var needsPairs: Bool { [.disagreementRate, .meanAbsProbDiff].contains(self) }
  }

  public enum Comparison: String, Sendable, Codable {
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
  }

  /// What the threshold is compared with: the value, or its difference or ratio to the baseline's.
  public enum Reference: String, Sendable, Codable {
    case absolute
    case baselineDelta = "baseline_delta"
    case baselineRatio = "baseline_ratio"
  }

  public struct Threshold: Sendable, Equatable, Codable {
    public var metric: Metric
    public var comparison: Comparison
    public var threshold: Double
    public var reference: Reference
    /// Consecutive failing analyses before the step fails (≥ 1).
    public var failureLimit: Int

    public init(
      _ metric: Metric,
      _ comparison: Comparison,
      _ threshold: Double,
      reference: Reference = .absolute,
      failureLimit: Int = 1
    ) {
      self.metric = metric
      self.comparison = comparison
      self.threshold = threshold
      self.reference = reference
      self.failureLimit = failureLimit
    }
  }

  public struct Step: Sendable, Equatable, Codable {
    public var kind: StepKind
    /// SHADOW: percent mirrored (1…100). CANARY: the new version's share, in (0, 100). FULL: 100.
    public var trafficPercent: Double
    /// Minimum time in the step, in seconds.
    public var duration: Double
    public var thresholds: [Threshold]
    /// Requests the new version must have seen in the step before an analysis counts.
    public var minRequests: Int
    /// Joined outcomes the step waits for before it can pass (0: none).
    public var minMaturedOutcomes: Int

    public init(
      kind: StepKind,
      trafficPercent: Double,
      duration: Double,
      thresholds: [Threshold] = [],
      minRequests: Int = 100,
      minMaturedOutcomes: Int = 0
    ) {
      self.kind = kind
      self.trafficPercent = trafficPercent
      self.duration = duration
      self.thresholds = thresholds
      self.minRequests = minRequests
      self.minMaturedOutcomes = minMaturedOutcomes
    }
  }

  public var steps: [Step]
  /// Hold (PAUSED) before the FULL step until Promote.
  public var manualPromotion: Bool
  /// On a failed step, pause instead of rolling back.
  public var disableAutoRollback: Bool
  /// Seconds between analyses.
  public var analysisInterval: Double
  /// Seconds the predictor may be unreachable before the step fails.
  public var patience: Double
  /// What the durations count, and what moves the rollout.
  public var clock: Clock

  /// The clock a plan runs on.
  public enum Clock: String, Sendable, Codable, CaseIterable {
    /// Wall time: deploy analyses the rollout at the plan's interval by itself.
    case wall
    /// Data time: the rollout moves only when its driver (a replay, a backtest) reports the
    /// bar time its traffic has reached, so the same data gives the same rollout.
    case data
  }

  public init(
    steps: [Step],
    manualPromotion: Bool = false,
    disableAutoRollback: Bool = false,
    analysisInterval: Double = 30,
    patience: Double = 120,
    clock: Clock = .wall
  ) {
    self.steps = steps
    self.manualPromotion = manualPromotion
    self.disableAutoRollback = disableAutoRollback
    self.analysisInterval = analysisInterval
    self.patience = patience
    self.clock = clock
  }

  private enum CodingKeys: String, CodingKey {
    case steps, manualPromotion, disableAutoRollback, analysisInterval, patience, clock
  }

  /// Reads a stored plan; plans stored before clocks existed ran on the wall clock.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      steps: try container.decode([Step].self, forKey: .steps),
      manualPromotion: try container.decode(Bool.self, forKey: .manualPromotion),
      disableAutoRollback: try container.decode(Bool.self, forKey: .disableAutoRollback),
      analysisInterval: try container.decode(Double.self, forKey: .analysisInterval),
      patience: try container.decode(Double.self, forKey: .patience),
      clock: try container.decodeIfPresent(Clock.self, forKey: .clock) ?? .wall
    )
  }

  /// Checks every default threshold: errors no worse than the baseline's by 1 point, p99 at
  /// most twice the baseline's, the shadow agreeing on at least 70 % of answers.
  public static let defaultThresholds: [Threshold] = [
    Threshold(.errorRate, .lessOrEqual, 0.01, reference: .baselineDelta, failureLimit: 2),
    Threshold(.latencyP99Ms, .lessOrEqual, 2, reference: .baselineRatio, failureLimit: 3),
  ]

  /// The server's plan when a Deploy names none: shadow 10 min, canary 10 % 10 min, canary
  /// 50 % 10 min, full.
  public static let `default` = RolloutPlan(steps: [
    Step(
      kind: .shadow,
      trafficPercent: 100,
      duration: 600,
      thresholds: Self.defaultThresholds + [
        Threshold(.disagreementRate, .lessOrEqual, 0.3, failureLimit: 2)
      ]
    ),
    Step(kind: .canary, trafficPercent: 10, duration: 600, thresholds: Self.defaultThresholds),
    Step(kind: .canary, trafficPercent: 50, duration: 600, thresholds: Self.defaultThresholds),
    Step(kind: .full, trafficPercent: 100, duration: 0, thresholds: Self.defaultThresholds),
  ])

  /// - Throws: INVALID_ARGUMENT naming the field: no steps, the last not FULL, a share out of
  ///   range, a negative duration or count, a non-finite threshold.
  public func validate(field: String = "plan") throws {
    guard !self.steps.isEmpty else {
      throw VaneError.invalidArgument(field: "\(field).steps", "is empty")
    }
    guard self.steps.last?.kind == .full else {
      throw VaneError.invalidArgument(field: "\(field).steps", "the last step must be FULL")
    }
    guard self.analysisInterval > 0, self.analysisInterval.isFinite else {
      throw VaneError.invalidArgument(field: "\(field).analysis_interval", "must be positive")
    }
    guard self.patience > 0, self.patience.isFinite else {
      throw VaneError.invalidArgument(field: "\(field).patience", "must be positive")
    }
    for (i, step) in self.steps.enumerated() {
      let name = "\(field).steps[\(i)]"
      if step.kind == .full, i != self.steps.count - 1 {
        throw VaneError.invalidArgument(field: "\(name).kind", "FULL must be the last step")
      }
      switch step.kind {
      case .shadow:
        guard step.trafficPercent > 0, step.trafficPercent <= 100 else {
          throw VaneError.invalidArgument(
            field: "\(name).traffic_percent",
            "a shadow mirrors (0, 100] percent"
          )
        }
      case .canary:
        guard step.trafficPercent > 0, step.trafficPercent < 100 else {
          throw VaneError.invalidArgument(
            field: "\(name).traffic_percent",
            "a canary's share is in (0, 100)"
          )
        }
      case .full: break
      }
      guard step.duration >= 0, step.duration.isFinite else {
        throw VaneError.invalidArgument(field: "\(name).duration", "must be ≥ 0")
      }
      guard step.minRequests >= 0 else {
        throw VaneError.invalidArgument(field: "\(name).min_requests", "must be ≥ 0")
      }
      guard step.minMaturedOutcomes >= 0 else {
        throw VaneError.invalidArgument(field: "\(name).min_matured_outcomes", "must be ≥ 0")
      }
      for (j, threshold) in step.thresholds.enumerated() {
        guard threshold.threshold.isFinite else {
          throw VaneError.invalidArgument(
            field: "\(name).thresholds[\(j)].threshold",
            "must be finite"
          )
        }
        guard threshold.failureLimit >= 1 else {
          throw VaneError.invalidArgument(
            field: "\(name).thresholds[\(j)].failure_limit",
            "must be ≥ 1"
          )
        }
        if threshold.metric.needsPairs, step.kind != .shadow {
          throw VaneError.invalidArgument(
            field: "\(name).thresholds[\(j)].metric",
            "\(threshold.metric.rawValue) needs paired answers, which only a SHADOW step has"
          )
        }
      }
    }
  }
}
