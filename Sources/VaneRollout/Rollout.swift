public import Foundation
public import VaneBundle

/// One rollout of one bundle as one model version: where it is, what happened, and the traffic
/// the predictor should have now. Changed only through ``RolloutMachine``; stored whole after
/// every change.
public struct Rollout: Sendable, Equatable, Codable {
  public enum State: String, Sendable, Codable, CaseIterable {
    case pending, verifying, shadow, canary, full, paused
    case rollingBack = "rolling_back"
    case promoted
    case rolledBack = "rolled_back"
    case failed
    /// Stopped before any traffic reached the new version (a Rollback while verifying).
    case aborted

    public var isTerminal: Bool {
      self == .promoted || self == .rolledBack || self == .failed || self == .aborted
    }
    /// States in which a step runs.
    public var isStepping: Bool { self == .shadow || self == .canary || self == .full }
  }

  public enum StepState: String, Sendable, Codable {
    case pending, running, passed, failed, skipped
  }

  public struct StepStatus: Sendable, Equatable, Codable {
    public var index: Int
    public var step: RolloutPlan.Step
    public var state: StepState
    public var startTime: Date?
    public var finishTime: Date?
    /// Per threshold: the current run of failing analyses.
    public var consecutiveFailures: [Int]
    /// Requests the new version has seen in this step (at the last analysis).
    public var requestCount: Int
    /// Seconds the step ran before a pause (the timer goes on from there on resume).
    public var elapsedBeforePause: Double
  }

  public enum EventKind: String, Sendable, Codable {
    case created, verified, staged, loaded
    case stepStarted = "step_started"
    case analysis
    case stepPassed = "step_passed"
    case stepFailed = "step_failed"
    case trafficChanged = "traffic_changed"
    case paused, resumed, promoted
    case rollbackStarted = "rollback_started"
    case rolledBack = "rolled_back"
    case failed, aborted
  }

  public struct Event: Sendable, Equatable, Codable {
    public var sequence: Int
    public var time: Date
    public var kind: EventKind
    public var state: State
    public var stepIndex: Int
    public var trafficPercent: Double
    public var reason: String
    public var actor: String
    public var analysis: AnalysisResult?
  }

  /// The predictor's split for the model while the rollout is where it is.
  public struct Split: Sendable, Equatable, Codable {
    public var weights: [String: Double]
    public var shadows: [String]
    public var shadowPercent: Double
  }

  public var id: String
  public var requestID: String
  /// The `x-request-id` of the Deploy call that started it: the rollout's own work (loads,
  /// splits, analyses) runs and logs under it. Nil in rollouts stored before it was kept.
  public var originRequestID: String?
  /// The staged bundle the predictor loads, and what it is.
  public var bundlePath: String
  public var bundleID: String
  public var manifestSHA256: String
  public var verdict: Verdict
  public var modelID: String
  public var version: String
  /// The version it replaces (nil: the model's first), and the bundle it was loaded from (so a
  /// restarted predictor can be given it again).
  public var baselineVersion: String?
  public var baselineBundlePath: String?
  public var state: State
  /// Index of the current step (−1 before the first and after a terminal state).
  public var currentStep: Int
  /// The new version's share of primary traffic.
  public var trafficPercent: Double
  public var plan: RolloutPlan
  public var steps: [StepStatus]
  /// Latest result of each threshold of the current step.
  public var analysis: [AnalysisResult]
  /// Oldest first, at most ``historyLimit``.
  public var history: [Event]
  public var failureReason: String?
  public var createTime: Date
  public var updateTime: Date
  public var finishTime: Date?
  /// The state a pause left (to resume into), and whether the pause is the manual-promotion hold.
  public var pausedFrom: State?
  public var holdingForPromotion: Bool
  /// The split last asked of the predictor (re-asserted after a restart of either side).
  public var split: Split?
  public var lastSequence: Int
  /// A data-clocked plan's clock: the data time its driver last reported (nil before the first
  /// report, and for wall-clocked plans).
  public var dataTime: Date?

  public static let historyLimit = 1000

  public init(
    id: String,
    requestID: String,
    bundlePath: String,
    bundleID: String,
    manifestSHA256: String,
    verdict: Verdict,
    modelID: String,
    version: String,
    baselineVersion: String?,
    baselineBundlePath: String? = nil,
    plan: RolloutPlan,
    now: Date
  ) {
    self.baselineBundlePath = baselineBundlePath
    self.id = id
    self.requestID = requestID
    self.bundlePath = bundlePath
    self.bundleID = bundleID
    self.manifestSHA256 = manifestSHA256
    self.verdict = verdict
    self.modelID = modelID
    self.version = version
    self.baselineVersion = baselineVersion
    self.state = .pending
    self.currentStep = -1
    self.trafficPercent = 0
    self.plan = plan
    self.steps = plan.steps.enumerated().map { index, step in
      StepStatus(
        index: index,
        step: step,
        state: .pending,
        startTime: nil,
        finishTime: nil,
        consecutiveFailures: [Int](repeating: 0, count: step.thresholds.count),
        requestCount: 0,
        elapsedBeforePause: 0
      )
    }
    self.analysis = []
    self.history = []
    self.failureReason = nil
    self.createTime = now
    self.updateTime = now
    self.finishTime = nil
    self.pausedFrom = nil
    self.holdingForPromotion = false
    self.split = nil
    self.lastSequence = 0
  }
}
