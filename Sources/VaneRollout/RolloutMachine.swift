public import Foundation
internal import VaneCore

/// The rollout's life as a pure state machine: every transition changes the ``Rollout`` and
/// returns what must be done about it after (the caller stores the rollout, then performs the
/// actions). No I/O, no clock: `now` is given.
///
/// PENDING → VERIFYING → (SHADOW | CANARY)* → FULL → PROMOTED, with PAUSED beside any step,
/// ROLLING_BACK → ROLLED_BACK from any stepping state, ABORTED for a Rollback before any traffic
/// moved (PENDING or VERIFYING), and FAILED when the bundle cannot be staged or loaded. A model's first version (no baseline) has nothing to compare with or
/// fall back on: its SHADOW and CANARY steps are skipped and it goes straight to FULL.
public struct RolloutMachine: Sendable {
  /// What to do after a transition.
  public enum Action: Sendable, Equatable {
    /// Make the predictor's split this (idempotent).
    case applySplit(Rollout.Split)
    /// Unload a version (the baseline after promotion, the new one after a rollback).
    case unload(version: String)
  }

  public var rollout: Rollout

  public init(_ rollout: Rollout) { self.rollout = rollout }

  // MARK: Intake

  public mutating func created(now: Date, actor: String) {
    self.emit(
      .created,
      now: now,
      reason:
        "rolling out \(self.rollout.bundleID) as \(self.rollout.modelID)/\(self.rollout.version)",
      actor: actor
    )
  }

  /// The bundle and its blessing verified; staging and loading follow.
  public mutating func verified(now: Date) {
    self.rollout.state = .verifying
    self.emit(
      .verified,
      now: now,
      reason: "blessing by key \(self.rollout.verdict.publicKeyID) and every file hash verified"
    )
  }

  /// The driver of a data-clocked rollout reported the data time `now` (no event: the events
  /// that follow carry it).
  public mutating func advanced(to now: Date) {
    self.rollout.dataTime = now
  }

  public mutating func staged(path: String, now: Date) {
    self.rollout.bundlePath = path
    self.emit(.staged, now: now, reason: "unpacked into \(path)")
  }

  /// The new version is READY in the predictor: the first step begins.
  public mutating func loaded(now: Date) throws -> [Action] {
    guard self.rollout.state == .verifying else { throw self.refusal("loaded") }
    self.emit(.loaded, now: now, reason: "\(self.rollout.version) is READY in the predictor")
    return self.start(step: 0, now: now)
  }

  /// Staging or loading failed: terminal, nothing reached traffic.
  public mutating func failed(reason: String, now: Date) {
    guard !self.rollout.state.isTerminal else { return }
    self.rollout.state = .failed
    self.rollout.failureReason = reason
    self.finish(now: now)
    self.emit(.failed, now: now, reason: reason)
  }

  // MARK: Steps

  /// Starts step `index`, skipping what a first version cannot do.
  mutating func start(step index: Int, now: Date) -> [Action] {
    var index = index
    while index < self.rollout.steps.count - 1, self.rollout.baselineVersion == nil {
      self.rollout.steps[index].state = .skipped
      self.rollout.steps[index].finishTime = now
      index += 1
    }
    let plan = self.rollout.plan
    if plan.manualPromotion, plan.steps[index].kind == .full, !self.rollout.holdingForPromotion,
      self.rollout.baselineVersion != nil,
      self.rollout.state != .paused
    {
      // Hold before FULL until Promote.
      self.rollout.pausedFrom = self.rollout.state
      self.rollout.holdingForPromotion = true
      self.rollout.currentStep = index
      self.rollout.state = .paused
      self.emit(
        .paused,
        now: now,
        reason: "manual promotion: waiting for Promote before the FULL step"
      )
      return []
    }
    self.rollout.holdingForPromotion = false
    self.rollout.currentStep = index
    self.rollout.analysis = []
    var status = self.rollout.steps[index]
    status.state = .running
    status.startTime = now
    status.elapsedBeforePause = 0
    status.consecutiveFailures = [Int](repeating: 0, count: status.step.thresholds.count)
    status.requestCount = 0
    self.rollout.steps[index] = status
    switch status.step.kind {
    case .shadow: self.rollout.state = .shadow
    case .canary: self.rollout.state = .canary
    case .full: self.rollout.state = .full
    }
    self.emit(
      .stepStarted,
      now: now,
      reason:
        "step \(index): \(status.step.kind.rawValue.uppercased()) \(Self.percent(status.step.trafficPercent))"
    )
    return self.applySplit(self.desiredSplit, now: now)
  }

  /// The split the predictor should have in the current state.
  public var desiredSplit: Rollout.Split {
    let r = self.rollout
    let new = r.version
    guard let baseline = r.baselineVersion else {
      return .init(weights: [new: 100], shadows: [], shadowPercent: 100)
    }
    switch r.state {
    case .shadow:
      return .init(
        weights: [baseline: 100],
        shadows: [new],
        shadowPercent: r.steps[r.currentStep].step.trafficPercent
      )
    case .canary:
      let p = r.steps[r.currentStep].step.trafficPercent
      return .init(weights: [baseline: 100 - p, new: p], shadows: [], shadowPercent: 100)
    case .full, .promoted:
      return .init(weights: [new: 100], shadows: [], shadowPercent: 100)
    case .pending, .verifying, .rollingBack, .rolledBack, .failed, .aborted:
      return .init(weights: [baseline: 100], shadows: [], shadowPercent: 100)
    case .paused:
      return r.split ?? .init(weights: [baseline: 100], shadows: [], shadowPercent: 100)
    }
  }

  mutating func applySplit(_ split: Rollout.Split, now: Date) -> [Action] {
    guard split != self.rollout.split else { return [] }
    self.rollout.split = split
    self.rollout.trafficPercent = split.weights[self.rollout.version] ?? 0
    let shadow =
      split.shadows.isEmpty
      ? ""
      : ", mirrored to \(split.shadows.joined(separator: ", ")) at \(Self.percent(split.shadowPercent))"
    let weights = split.weights.sorted { $0.key < $1.key }.map {
      "\($0.key)=\(Self.percent($0.value))"
    }.joined(separator: " ")
    self.emit(.trafficChanged, now: now, reason: weights + shadow)
    return [.applySplit(split)]
  }

  /// An analysis of the current step: thresholds judged, failures counted; the step passes
  /// (its duration done and every threshold passed) or fails (a threshold failing
  /// `failure_limit` times in a row). A paused rollout records the analysis and does nothing.
  public mutating func analyzed(
    _ sample: AnalysisSample,
    requestsInStep: Int,
    now: Date
  ) -> [Action] {
    let r = self.rollout
    guard r.state.isStepping || r.state == .paused, r.currentStep >= 0, !r.holdingForPromotion
    else { return [] }
    let index = r.currentStep
    var status = r.steps[index]
    let results = Analysis.evaluate(
      step: status.step,
      index: index,
      sample: sample,
      requestsInStep: requestsInStep,
      at: now
    )
    status.requestCount = requestsInStep
    self.rollout.analysis = results
    for result in results {
      self.emit(.analysis, now: now, reason: result.reason, analysis: result)
    }
    guard r.state != .paused else {
      self.rollout.steps[index] = status
      return []
    }
    for (t, result) in results.enumerated() where !result.inconclusive {
      status.consecutiveFailures[t] = result.passed ? 0 : status.consecutiveFailures[t] + 1
    }
    self.rollout.steps[index] = status
    if let failing = results.indices.first(where: {
      status.consecutiveFailures[$0] >= status.step.thresholds[$0].failureLimit
    }) {
      let reason =
        "step \(index) failed: \(results[failing].reason) (\(status.consecutiveFailures[failing]) analyses in a row)"
      return self.failStep(reason: reason, now: now)
    }
    let elapsed =
      status.elapsedBeforePause + (status.startTime.map { now.timeIntervalSince($0) } ?? 0)
    let allPassed = results.allSatisfy { $0.passed && !$0.inconclusive }
    guard allPassed, elapsed >= status.step.duration, requestsInStep >= status.step.minRequests,
      sample.candidate.maturedOutcomes >= status.step.minMaturedOutcomes
    else { return [] }
    return self.passStep(
      now: now,
      reason: "step \(index) passed after \(Int(elapsed)) s, \(requestsInStep) requests"
    )
  }

  mutating func passStep(now: Date, reason: String, state: Rollout.StepState = .passed) -> [Action]
  {
    let index = self.rollout.currentStep
    self.rollout.steps[index].state = state
    self.rollout.steps[index].finishTime = now
    self.emit(.stepPassed, now: now, reason: reason)
    if self.rollout.steps[index].step.kind == .full { return self.promoted(now: now) }
    return self.start(step: index + 1, now: now)
  }

  mutating func promoted(now: Date) -> [Action] {
    self.rollout.state = .promoted
    self.rollout.currentStep = -1
    self.finish(now: now)
    self.emit(
      .promoted,
      now: now,
      reason: "\(self.rollout.version) serves all of \(self.rollout.modelID)"
    )
    return self.rollout.baselineVersion.map { [.unload(version: $0)] } ?? []
  }

  mutating func failStep(reason: String, now: Date) -> [Action] {
    let index = self.rollout.currentStep
    self.rollout.steps[index].state = .failed
    self.rollout.steps[index].finishTime = now
    self.emit(.stepFailed, now: now, reason: reason)
    if self.rollout.plan.disableAutoRollback {
      self.pauseTimer(now: now)
      self.rollout.pausedFrom = self.rollout.state
      self.rollout.state = .paused
      self.emit(.paused, now: now, reason: "auto-rollback is disabled: paused on the failed step")
      return []
    }
    return self.beginRollback(reason: reason, now: now, actor: "system")
  }

  /// The predictor could not be reached for `seconds`: past the plan's patience the step fails.
  public mutating func predictorUnreachable(for seconds: Double, now: Date) -> [Action] {
    guard self.rollout.state.isStepping, seconds > self.rollout.plan.patience else { return [] }
    return self.failStep(
      reason:
        "the predictor was unreachable for \(Int(seconds)) s (patience \(Int(self.rollout.plan.patience)) s)",
      now: now
    )
  }

  // MARK: Commands

  /// Ends the current step as passed (or goes straight to FULL); also continues past a
  /// manual-promotion hold.
  /// - Throws: FAILED_PRECONDITION while PENDING, VERIFYING, rolling back or terminal.
  public mutating func promote(
    skipToFull: Bool,
    reason: String,
    actor: String,
    now: Date
  ) throws -> [Action] {
    let r = self.rollout
    guard r.state.isStepping || r.state == .paused, r.currentStep >= 0 else {
      throw self.refusal("promoted")
    }
    let note = reason.isEmpty ? "promoted by \(actor)" : reason
    if r.holdingForPromotion {
      self.rollout.state = r.pausedFrom ?? .canary
      self.rollout.pausedFrom = nil
      self.rollout.holdingForPromotion = false
      self.emit(.resumed, now: now, reason: note, actor: actor)
      // `start` would hold again: start FULL directly.
      return self.startFull(at: r.currentStep, now: now)
    }
    if r.state == .paused {
      self.rollout.state = r.pausedFrom ?? .canary
      self.rollout.pausedFrom = nil
      self.emit(.resumed, now: now, reason: note, actor: actor)
    }
    if skipToFull {
      let last = self.rollout.steps.count - 1
      for i in self.rollout.currentStep ..< last
      where self.rollout.steps[i].state == .running || self.rollout.steps[i].state == .pending {
        self.rollout.steps[i].state = .skipped
        self.rollout.steps[i].finishTime = now
      }
      if self.rollout.currentStep == last { return self.passStep(now: now, reason: note) }
      return self.startFull(at: last, now: now)
    }
    return self.passStep(now: now, reason: note)
  }

  mutating func startFull(at index: Int, now: Date) -> [Action] {
    self.rollout.holdingForPromotion = true  // so `start` does not hold again
    let actions = self.start(step: index, now: now)
    self.rollout.holdingForPromotion = false
    return actions
  }

  /// Freezes the rollout at its traffic; the step timer stops. Pausing a paused rollout changes
  /// nothing. - Throws: FAILED_PRECONDITION when terminal or rolling back.
  public mutating func pause(reason: String, actor: String, now: Date) throws {
    let r = self.rollout
    guard !r.state.isTerminal, r.state != .rollingBack else { throw self.refusal("paused") }
    guard r.state != .paused else { return }
    self.pauseTimer(now: now)
    self.rollout.pausedFrom = r.state
    self.rollout.state = .paused
    self.emit(
      .paused,
      now: now,
      reason: reason.isEmpty ? "paused by \(actor)" : reason,
      actor: actor
    )
  }

  /// Resumes a paused rollout where it stopped. - Throws: FAILED_PRECONDITION when not paused.
  public mutating func resume(reason: String, actor: String, now: Date) throws -> [Action] {
    let r = self.rollout
    guard r.state == .paused, let from = r.pausedFrom else { throw self.refusal("resumed") }
    if r.holdingForPromotion {
      return try self.promote(skipToFull: false, reason: reason, actor: actor, now: now)
    }
    self.rollout.state = from
    self.rollout.pausedFrom = nil
    if r.currentStep >= 0, self.rollout.steps[r.currentStep].state == .running {
      self.rollout.steps[r.currentStep].startTime = now
    }
    self.emit(
      .resumed,
      now: now,
      reason: reason.isEmpty ? "resumed by \(actor)" : reason,
      actor: actor
    )
    // A pause on a failed step (auto-rollback off) resumes into a rerun of that step.
    if r.currentStep >= 0, self.rollout.steps[r.currentStep].state == .failed {
      return self.start(step: r.currentStep, now: now)
    }
    return []
  }

  /// Back to the baseline: its full weight first, then the new version unloaded.
  /// - Throws: FAILED_PRECONDITION when terminal.
  public mutating func rollback(reason: String, actor: String, now: Date) throws -> [Action] {
    guard !self.rollout.state.isTerminal else { throw self.refusal("rolled back") }
    guard self.rollout.state != .rollingBack else { return [] }
    if self.rollout.state == .pending || self.rollout.state == .verifying {
      // Nothing reached traffic: the rollout ends here, and a version loaded meanwhile goes.
      self.rollout.state = .aborted
      self.rollout.failureReason =
        reason.isEmpty ? "aborted by \(actor) before any traffic moved" : reason
      self.finish(now: now)
      self.emit(.aborted, now: now, reason: self.rollout.failureReason!, actor: actor)
      return [.unload(version: self.rollout.version)]
    }
    return self.beginRollback(
      reason: reason.isEmpty ? "rolled back by \(actor)" : reason,
      now: now,
      actor: actor
    )
  }

  mutating func beginRollback(reason: String, now: Date, actor: String) -> [Action] {
    if self.rollout.state == .paused { self.rollout.pausedFrom = nil }
    self.rollout.holdingForPromotion = false
    self.rollout.state = .rollingBack
    self.rollout.failureReason = reason
    if self.rollout.currentStep >= 0, self.rollout.steps[self.rollout.currentStep].state == .running
    {
      self.rollout.steps[self.rollout.currentStep].state = .skipped
      self.rollout.steps[self.rollout.currentStep].finishTime = now
    }
    self.emit(.rollbackStarted, now: now, reason: reason, actor: actor)
    var actions: [Action] = []
    if self.rollout.baselineVersion != nil {
      actions += self.applySplit(self.desiredSplit, now: now)
    }
    return actions + [.unload(version: self.rollout.version)]
  }

  /// The rollback's split and unload are done: terminal.
  public mutating func rolledBack(now: Date) {
    guard self.rollout.state == .rollingBack else { return }
    self.rollout.state = .rolledBack
    self.rollout.currentStep = -1
    self.rollout.trafficPercent = 0
    self.finish(now: now)
    self.emit(
      .rolledBack,
      now: now,
      reason: "back on \(self.rollout.baselineVersion ?? "no version")"
    )
  }

  // MARK: Helpers

  mutating func pauseTimer(now: Date) {
    let index = self.rollout.currentStep
    guard index >= 0, let start = self.rollout.steps[index].startTime else { return }
    self.rollout.steps[index].elapsedBeforePause += now.timeIntervalSince(start)
    self.rollout.steps[index].startTime = nil
  }

  mutating func finish(now: Date) {
    self.rollout.finishTime = now
  }

  mutating func emit(
    _ kind: Rollout.EventKind,
    now: Date,
    reason: String,
    actor: String = "system",
    analysis: AnalysisResult? = nil
  ) {
    self.rollout.lastSequence += 1
    self.rollout.updateTime = now
    self.rollout.history.append(
      Rollout.Event(
        sequence: self.rollout.lastSequence,
        time: now,
        kind: kind,
        state: self.rollout.state,
        stepIndex: self.rollout.currentStep,
        trafficPercent: self.rollout.trafficPercent,
        reason: reason,
        actor: actor,
        analysis: analysis
      )
    )
    if self.rollout.history.count > Rollout.historyLimit {
      self.rollout.history.removeFirst(self.rollout.history.count - Rollout.historyLimit)
    }
  }

  func refusal(_ what: String) -> VaneError {
    VaneError(
      .failedPrecondition,
      "rollout \(self.rollout.id) is \(self.rollout.state.rawValue.uppercased()): it cannot be \(what) now"
    )
  }

  static func percent(_ value: Double) -> String { String(format: "%g%%", value) }
}
