internal import Foundation
internal import SwiftProtobuf
internal import VaneCore
public import VaneProto
internal import VaneQuality
public import VaneRollout
internal import VaneRuntime

// Conversions between deploy's wire types and VaneRollout's domain types, in one place.

extension Google_Protobuf_Duration {
  var totalSeconds: Double { Double(self.seconds) + Double(self.nanos) / 1e9 }

  init(seconds value: Double) {
    let whole = value.rounded(.towardZero)
    self.init(seconds: Int64(whole), nanos: Int32(((value - whole) * 1e9).rounded()))
  }
}

extension RolloutPlan {
  /// The domain plan of a request's (no steps: the server's default plan, with the request's
  /// other settings).
  /// - Throws: INVALID_ARGUMENT naming the field.
  init(_ proto: Vane_V1_RolloutPlan, field: String) throws {
    if proto.steps.isEmpty {
      self = .default
    } else {
      self.init(
        steps: try proto.steps.enumerated().map { i, step in
          try RolloutPlan.Step(step, field: "\(field).steps[\(i)]")
        }
      )
    }
    self.manualPromotion = proto.manualPromotion
    self.disableAutoRollback = proto.disableAutoRollback
    if proto.hasAnalysisInterval { self.analysisInterval = proto.analysisInterval.totalSeconds }
    if proto.hasPatience { self.patience = proto.patience.totalSeconds }
    switch proto.clock {
    case .unspecified: self.clock = .wall
    case .data: self.clock = .data
    case .UNRECOGNIZED(let raw):
      throw VaneError.invalidArgument(field: "\(field).clock", "\(raw) is not a RolloutClock")
    }
    try self.validate(field: field)
  }
}

extension RolloutPlan.Step {
  init(_ proto: Vane_V1_RolloutStep, field: String) throws {
    let kind: RolloutPlan.StepKind
    switch proto.kind {
    case .shadow: kind = .shadow
    case .canary: kind = .canary
    case .full: kind = .full
    case .unspecified, .UNRECOGNIZED:
      throw VaneError.invalidArgument(field: "\(field).kind", "is required: SHADOW, CANARY or FULL")
    }
    let share =
      kind == .full
      ? 100 : (kind == .shadow && proto.trafficPercent == 0 ? 100 : proto.trafficPercent)
    self.init(
      kind: kind,
      trafficPercent: share,
      duration: proto.duration.totalSeconds,
      thresholds: try proto.thresholds.enumerated().map { j, threshold in
        try RolloutPlan.Threshold(threshold, field: "\(field).thresholds[\(j)]")
      },
      minRequests: proto.minRequests == 0 ? 100 : Int(clamping: proto.minRequests),
      minMaturedOutcomes: Int(clamping: proto.minMaturedOutcomes)
    )
  }
}

extension RolloutPlan.Threshold {
  init(_ proto: Vane_V1_AnalysisThreshold, field: String) throws {
    guard let metric = RolloutPlan.Metric(rawValue: proto.metric) else {
      throw VaneError.invalidArgument(
        field: "\(field).metric",
        "'\(proto.metric.prefix(60))' is not a metric: \(RolloutPlan.Metric.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    let comparison: RolloutPlan.Comparison
    switch proto.comparison {
    case .lessThan: comparison = .lessThan
    case .lessOrEqual: comparison = .lessOrEqual
    case .greaterThan: comparison = .greaterThan
    case .greaterOrEqual: comparison = .greaterOrEqual
    case .unspecified, .UNRECOGNIZED:
      throw VaneError.invalidArgument(field: "\(field).comparison", "is required")
    }
    let reference: RolloutPlan.Reference
    switch proto.reference {
    case .unspecified, .absolute: reference = .absolute
    case .baselineDelta: reference = .baselineDelta
    case .baselineRatio: reference = .baselineRatio
    case .UNRECOGNIZED(let raw):
      throw VaneError.invalidArgument(
        field: "\(field).reference",
        "\(raw) is not a ThresholdReference"
      )
    }
    self.init(
      metric,
      comparison,
      proto.threshold,
      reference: reference,
      failureLimit: max(1, Int(proto.failureLimit))
    )
  }
}

extension Vane_V1_RolloutPlan {
  /// The wire form of a plan (what `vane deploy --plan` sends).
  public init(_ plan: RolloutPlan) {
    self.init()
    self.steps = plan.steps.map(Vane_V1_RolloutStep.init)
    self.manualPromotion = plan.manualPromotion
    self.disableAutoRollback = plan.disableAutoRollback
    self.analysisInterval = Google_Protobuf_Duration(seconds: plan.analysisInterval)
    self.patience = Google_Protobuf_Duration(seconds: plan.patience)
    self.clock = plan.clock == .data ? .data : .unspecified
  }
}

extension Vane_V1_RolloutStep {
  init(_ step: RolloutPlan.Step) {
    self.init()
    switch step.kind {
    case .shadow: self.kind = .shadow
    case .canary: self.kind = .canary
    case .full: self.kind = .full
    }
    self.trafficPercent = step.trafficPercent
    self.duration = Google_Protobuf_Duration(seconds: step.duration)
    self.thresholds = step.thresholds.map(Vane_V1_AnalysisThreshold.init)
    self.minRequests = UInt64(step.minRequests)
    self.minMaturedOutcomes = UInt64(step.minMaturedOutcomes)
  }
}

extension Vane_V1_AnalysisThreshold {
  init(_ threshold: RolloutPlan.Threshold) {
    self.init()
    self.metric = threshold.metric.rawValue
    self.comparison = Vane_V1_Comparison(threshold.comparison)
    self.threshold = threshold.threshold
    self.reference = Vane_V1_ThresholdReference(threshold.reference)
    self.failureLimit = UInt32(threshold.failureLimit)
  }
}

extension Vane_V1_Comparison {
  init(_ comparison: RolloutPlan.Comparison) {
    switch comparison {
    case .lessThan: self = .lessThan
    case .lessOrEqual: self = .lessOrEqual
    case .greaterThan: self = .greaterThan
    case .greaterOrEqual: self = .greaterOrEqual
    }
  }
}

extension Vane_V1_ThresholdReference {
  init(_ reference: RolloutPlan.Reference) {
    switch reference {
    case .absolute: self = .absolute
    case .baselineDelta: self = .baselineDelta
    case .baselineRatio: self = .baselineRatio
    }
  }
}

extension Vane_V1_RolloutState {
  init(_ state: Rollout.State) {
    switch state {
    case .pending: self = .pending
    case .verifying: self = .verifying
    case .shadow: self = .shadow
    case .canary: self = .canary
    case .full: self = .full
    case .paused: self = .paused
    case .rollingBack: self = .rollingBack
    case .promoted: self = .promoted
    case .rolledBack: self = .rolledBack
    case .failed: self = .failed
    case .aborted: self = .aborted
    }
  }

  /// The domain state (nil: unspecified or unknown).
  var domain: Rollout.State? { Rollout.State.allCases.first { Vane_V1_RolloutState($0) == self } }
}

extension Vane_V1_StepState {
  init(_ state: Rollout.StepState) {
    switch state {
    case .pending: self = .pending
    case .running: self = .running
    case .passed: self = .passed
    case .failed: self = .failed
    case .skipped: self = .skipped
    }
  }
}

extension Vane_V1_RolloutEventKind {
  init(_ kind: Rollout.EventKind) {
    switch kind {
    case .created: self = .created
    case .verified: self = .verified
    case .staged: self = .staged
    case .loaded: self = .loaded
    case .stepStarted: self = .stepStarted
    case .analysis: self = .analysis
    case .stepPassed: self = .stepPassed
    case .stepFailed: self = .stepFailed
    case .trafficChanged: self = .trafficChanged
    case .paused: self = .paused
    case .resumed: self = .resumed
    case .promoted: self = .promoted
    case .rollbackStarted: self = .rollbackStarted
    case .rolledBack: self = .rolledBack
    case .failed: self = .failed
    case .aborted: self = .aborted
    }
  }
}

extension Vane_V1_AnalysisResult {
  init(_ result: AnalysisResult) {
    self.init()
    self.stepIndex = UInt32(result.stepIndex)
    self.metric = result.threshold.metric.rawValue
    self.value = result.value ?? .nan
    if let baseline = result.baselineValue { self.baselineValue = baseline }
    self.comparedValue = result.comparedValue ?? .nan
    self.threshold = result.threshold.threshold
    self.comparison = Vane_V1_Comparison(result.threshold.comparison)
    self.reference = Vane_V1_ThresholdReference(result.threshold.reference)
    self.passed = result.passed
    self.inconclusive = result.inconclusive
    self.sampleCount = UInt64(result.sampleCount)
    self.time = Google_Protobuf_Timestamp(date: result.time)
    self.reason = result.reason
  }
}

extension Vane_V1_RolloutEvent {
  init(_ event: Rollout.Event, rolloutID: String) {
    self.init()
    self.rolloutID = rolloutID
    self.sequence = UInt64(event.sequence)
    self.time = Google_Protobuf_Timestamp(date: event.time)
    self.kind = Vane_V1_RolloutEventKind(event.kind)
    self.state = Vane_V1_RolloutState(event.state)
    self.stepIndex = Int32(event.stepIndex)
    self.trafficPercent = event.trafficPercent
    self.reason = event.reason
    self.actor = event.actor
    if let analysis = event.analysis { self.analysis = Vane_V1_AnalysisResult(analysis) }
  }
}

extension Vane_V1_Rollout {
  init(_ rollout: Rollout, history: Bool = true) {
    self.init()
    self.id = rollout.id
    self.requestID = rollout.requestID
    self.bundle = .with {
      $0.bundleID = rollout.bundleID
      $0.manifestSha256 = rollout.manifestSHA256
      $0.path = rollout.bundlePath
    }
    self.blessing = Vane_V1_Verdict(rollout.verdict)
    self.model = .with {
      $0.modelID = rollout.modelID
      $0.version = rollout.version
    }
    self.baseline = .with {
      $0.modelID = rollout.modelID
      $0.version = rollout.baselineVersion ?? ""
    }
    self.state = Vane_V1_RolloutState(rollout.state)
    self.currentStep = Int32(rollout.currentStep)
    self.trafficPercent = rollout.trafficPercent
    self.plan = Vane_V1_RolloutPlan(rollout.plan)
    self.steps = rollout.steps.map { status in
      .with {
        $0.index = UInt32(status.index)
        $0.step = Vane_V1_RolloutStep(status.step)
        $0.state = Vane_V1_StepState(status.state)
        if let start = status.startTime { $0.startTime = Google_Protobuf_Timestamp(date: start) }
        if let finish = status.finishTime {
          $0.finishTime = Google_Protobuf_Timestamp(date: finish)
        }
        $0.consecutiveFailures = UInt32(status.consecutiveFailures.max() ?? 0)
        $0.requestCount = UInt64(status.requestCount)
      }
    }
    self.analysis = rollout.analysis.map(Vane_V1_AnalysisResult.init)
    if history {
      self.history = rollout.history.map { Vane_V1_RolloutEvent($0, rolloutID: rollout.id) }
    }
    self.failureReason = rollout.failureReason ?? ""
    self.createTime = Google_Protobuf_Timestamp(date: rollout.createTime)
    self.updateTime = Google_Protobuf_Timestamp(date: rollout.updateTime)
    if let finish = rollout.finishTime { self.finishTime = Google_Protobuf_Timestamp(date: finish) }
  }
}
