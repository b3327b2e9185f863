public import Foundation
public import ServiceLifecycle
public import VaneBundle
internal import VaneCore

/// Drives every active rollout: stages and loads the new version, runs the analyses at each
/// plan's interval, carries out what ``RolloutMachine`` decides (traffic splits, unloads),
/// stores the rollout after every transition and tells watchers. A coarse coordinator, so an
/// actor; the decisions themselves are the pure machine's.
///
/// After a restart of deploy it takes up every stored rollout that is not terminal and
/// re-asserts its split. When the predictor restarts (its listing lacks a version the rollout
/// needs), the versions are loaded again and the split re-applied; the gap counts as
/// measurement errors of the step, and past the plan's patience the step fails.
///
/// A rollout whose plan runs on the data clock is left alone by the loop: it moves only when
/// its driver calls ``advance(id:to:)``, and every time after its creation is that clock's.
///
/// Every transition is saved to SQLite before its events go out, synchronously on the actor,
/// which keeps saves in transition order (an awaited save would let another transition's save
/// overtake it). So the actor runs on a thread of its own, never on the cooperative pool.
public actor RolloutController: Service {
  /// The thread every controller's isolated code runs on (the saves block it, briefly).
  static let executor = ThreadExecutor(name: "vane-rollouts")

  public nonisolated var unownedExecutor: UnownedSerialExecutor {
    Self.executor.asUnownedSerialExecutor()
  }

  /// Whether isolated code runs on ``executor``'s thread (for tests).
  var isOnItsThread: Bool { Self.executor.isCurrent }

  public nonisolated let store: RolloutStore
  let predictor: any PredictorPort
  let clock: @Sendable () -> Date
  /// How often the loop looks at the rollouts (each is analysed at its own plan's interval).
  let tick: Duration

  private var machines: [String: RolloutMachine] = [:]
  private var lastAnalysis: [String: Date] = [:]
  private var unreachableSince: [String: Date] = [:]
  private var measurementErrors: [String: Int] = [:]
  /// The baseline's last figures measured with traffic: what a FULL step (where the baseline
  /// answers nothing) is compared with.
  private var lastBaseline: [String: AnalysisSample.Figures] = [:]
  /// Counters when the current step's window began: (step, candidate, baseline).
  private var windows:
    [String: (step: Int, candidate: PredictorVersion?, baseline: PredictorVersion?, since: Date)] =
      [:]
  private var watchers: [String: [UUID: AsyncStream<Rollout.Event>.Continuation]] = [:]
  /// Bundles verified by Deploy, waiting to be staged and loaded (by rollout id).
  private var bundles: [String: ModelBundle] = [:]
  private var staging: Set<String> = []
  /// The predictor's health as its stream reports it (``observePredictorHealth(_:)``).
  public private(set) var predictorHealth = PredictorHealth()
  let intake: BundleIntake

  public init(
    store: RolloutStore,
    predictor: any PredictorPort,
    intake: BundleIntake,
    tick: Duration = .milliseconds(250),
    clock: @escaping @Sendable () -> Date = { Date() }
  ) throws {
    self.store = store
    self.predictor = predictor
    self.intake = intake
    self.tick = tick
    self.clock = clock
    for rollout in try store.active() { self.machines[rollout.id] = RolloutMachine(rollout) }
  }

  // MARK: Commands

  /// Starts a rollout of a verified bundle: stored VERIFYING, then staged, loaded and stepped
  /// in the background.
  /// - Throws: FAILED_PRECONDITION when the model id has an active rollout (naming it).
  public func start(_ rollout: Rollout, bundle: ModelBundle, actor: String) throws -> Rollout {
    if let active = self.machines.values.first(where: {
      $0.rollout.modelID == rollout.modelID && !$0.rollout.state.isTerminal
    }) {
      throw VaneError(
        .failedPrecondition,
        "model \(rollout.modelID) has an active rollout, \(active.rollout.id) (\(active.rollout.state.rawValue.uppercased())): one rollout per model at a time"
      )
    }
    var machine = RolloutMachine(rollout)
    machine.created(now: self.clock(), actor: actor)
    machine.verified(now: self.clock())
    try self.commit(machine)
    self.bundles[rollout.id] = bundle
    return machine.rollout
  }

  public func promote(
    id: String,
    skipToFull: Bool,
    reason: String,
    actor: String
  ) async throws -> Rollout {
    try await self.command(id) { machine, now in
      try machine.promote(skipToFull: skipToFull, reason: reason, actor: actor, now: now)
    }
  }

  public func pause(id: String, reason: String, actor: String) async throws -> Rollout {
    try await self.command(id) { machine, now in
      try machine.pause(reason: reason, actor: actor, now: now)
      return []
    }
  }

  public func resume(id: String, reason: String, actor: String) async throws -> Rollout {
    try await self.command(id) { machine, now in
      try machine.resume(reason: reason, actor: actor, now: now)
    }
  }

  public func rollback(id: String, reason: String, actor: String) async throws -> Rollout {
    try await self.command(id) { machine, now in
      try machine.rollback(reason: reason, actor: actor, now: now)
    }
  }

  private func command(
    _ id: String,
    _ body: (inout RolloutMachine, Date) throws -> [RolloutMachine.Action]
  ) async throws -> Rollout {
    guard var machine = self.machines[id] else {
      guard let stored = try self.store.rollout(id: id) else {
        throw VaneError(.notFound, "no rollout \(id)")
      }
      // Terminal: the machine refuses with the state in the message.
      var terminal = RolloutMachine(stored)
      _ = try body(&terminal, self.now(stored))
      return stored
    }
    let actions = try body(&machine, self.now(machine.rollout))
    try self.commit(machine)
    await self.perform(actions, id: id)
    return self.machines[id]?.rollout ?? machine.rollout
  }

  /// Moves a data-clocked rollout's clock to `now` and does what is due by then: staging and
  /// loading, the analysis and the step's transitions. A terminal rollout is returned as it is.
  /// - Throws: NOT_FOUND; FAILED_PRECONDITION when the plan runs on the wall clock or `now` is
  ///   before the rollout's clock.
  public func advance(id: String, to now: Date) async throws -> Rollout {
    guard var machine = self.machines[id] else {
      guard let stored = try self.store.rollout(id: id) else {
        throw VaneError(.notFound, "no rollout \(id)")
      }
      return stored
    }
    guard machine.rollout.plan.clock == .data else {
      throw VaneError(
        .failedPrecondition,
        "rollout \(id) runs on the wall clock: only a plan with clock: data is advanced by its driver"
      )
    }
    if let last = machine.rollout.dataTime, now < last {
      throw VaneError(
        .failedPrecondition,
        "rollout \(id)'s clock is at \(ISO8601DateFormatter().string(from: last)); it cannot go back to \(ISO8601DateFormatter().string(from: now))"
      )
    }
    machine.advanced(to: now)
    try self.commit(machine)
    await RequestID.$current.withValue(machine.rollout.originRequestID) {
      await self.step(id, machine: machine, now: now)
    }
    return try await self.rollout(id: id) ?? machine.rollout
  }

  /// What now is for a rollout: the wall clock, or a data-clocked plan's last reported time.
  private func now(_ rollout: Rollout) -> Date {
    rollout.plan.clock == .data ? (rollout.dataTime ?? self.clock()) : self.clock()
  }

  /// The rollout as it is now (active ones from memory, others from the store, read on the
  /// blocking pool: SQLite must not hold one of the cooperative pool's threads).
  public func rollout(id: String) async throws -> Rollout? {
    if let machine = self.machines[id] { return machine.rollout }
    let store = self.store
    return try await BlockingPool.shared.run { try store.rollout(id: id) }
  }

  /// Events from now on; the stream ends after the event that reaches a terminal state.
  public func watch(id: String) async -> (Rollout?, AsyncStream<Rollout.Event>) {
    let (stream, continuation) = AsyncStream<Rollout.Event>.makeStream(
      bufferingPolicy: .bufferingNewest(4096)
    )
    guard let machine = self.machines[id] else {
      continuation.finish()
      let store = self.store
      let stored = try? await BlockingPool.shared.run { try store.rollout(id: id) }
      return (stored ?? nil, stream)
    }
    let key = UUID()
    self.watchers[id, default: [:]][key] = continuation
    continuation.onTermination = { [weak self] _ in
      Task { await self?.unwatch(id, key) }
    }
    return (machine.rollout, stream)
  }

  private func unwatch(_ id: String, _ key: UUID) { self.watchers[id]?[key] = nil }

  // MARK: Predictor health

  /// Takes what the predictor's health stream said. When it goes down, the active rollouts'
  /// outage starts (their step's patience counts from then); when it is back, every active
  /// rollout is looked at on the loop's next pass instead of at its next analysis, so a
  /// restarted predictor gets its versions and split back within a tick.
  /// - Returns: the health status before and after.
  @discardableResult
  public func observePredictorHealth(
    _ observation: PredictorHealth.Observation
  ) -> (from: PredictorHealth.Status, to: PredictorHealth.Status) {
    let before = self.predictorHealth.status
    switch self.predictorHealth.observe(observation, now: self.clock()) {
    case .none:
      break
    case .wentDown(let since):
      // A data-clocked rollout measures its outage on its own clock, when it is advanced.
      for (id, machine) in self.machines
      where !machine.rollout.state.isTerminal && machine.rollout.plan.clock == .wall
        && self.unreachableSince[id] == nil
      {
        self.unreachableSince[id] = since
      }
    case .reconcile:
      for id in self.machines.keys { self.lastAnalysis[id] = nil }
    }
    return (before, self.predictorHealth.status)
  }

  // MARK: The loop

  public func run() async throws {
    // Graceful shutdown cancels the loop between passes (a cancelled sleep is the way out,
    // not a failure of the service).
    await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        await self.step()
        try? await Task.sleep(for: self.tick)
      }
    }
    for (_, continuations) in self.watchers {
      for continuation in continuations.values { continuation.finish() }
    }
  }

  /// One pass over the active rollouts.
  public func step() async {
    let now = self.clock()
    for id in self.machines.keys.sorted() {
      // A data-clocked rollout moves when advanced; only a rollback whose actions failed is
      // retried here, so a rollout its driver stopped advancing cannot stay half rolled back.
      guard let machine = self.machines[id],
        machine.rollout.plan.clock == .wall || machine.rollout.state == .rollingBack
      else { continue }
      // The rollout's work carries the id of the Deploy call that started it (logs, and the
      // calls it makes to the predictor).
      await RequestID.$current.withValue(machine.rollout.originRequestID) {
        await self.step(id, machine: machine, now: now)
      }
    }
  }

  private func step(_ id: String, machine: RolloutMachine, now: Date) async {
    switch machine.rollout.state {
    case .verifying:
      if !self.staging.contains(id) { await self.stageAndLoad(id) }
    case .rollingBack:
      await self.perform(self.rollbackActions(machine), id: id)
    case .shadow, .canary, .full, .paused:
      let interval = machine.rollout.plan.analysisInterval
      // Due at the plan's interval, and also as soon as the step's duration is up, so a
      // step does not outlast its duration by an analysis interval.
      var due = true
      if let last = self.lastAnalysis[id], now.timeIntervalSince(last) < interval {
        due = false
        let r = machine.rollout
        if r.state.isStepping, r.currentStep >= 0, let start = r.steps[r.currentStep].startTime {
          let end = start.addingTimeInterval(
            r.steps[r.currentStep].step.duration - r.steps[r.currentStep].elapsedBeforePause
          )
          due = last < end && now >= end
        }
      }
      if !due { return }
      self.lastAnalysis[id] = now
      await self.analyze(id)
    case .pending, .promoted, .rolledBack, .failed, .aborted:
      return
    }
  }

  private func rollbackActions(_ machine: RolloutMachine) -> [RolloutMachine.Action] {
    var actions: [RolloutMachine.Action] = []
    if machine.rollout.baselineVersion != nil, let split = machine.rollout.split {
      actions.append(.applySplit(split))
    }
    return actions + [.unload(version: machine.rollout.version)]
  }

  private func stageAndLoad(_ id: String) async {
    guard let rollout = self.machines[id]?.rollout else { return }
    self.staging.insert(id)
    defer { self.staging.remove(id) }
    do {
      // After a restart the verified bundle is gone from memory: the staged copy (or the
      // original path) is opened and checked again.
      let bundle: ModelBundle
      if let verified = self.bundles[id] {
        bundle = verified
      } else {
        bundle = try await BlockingPool.shared.run {
          try ModelBundle.open(path: rollout.bundlePath)
        }
      }
      guard bundle.manifestSHA256 == rollout.manifestSHA256 else {
        throw VaneError(
          .failedPrecondition,
          "\(rollout.bundlePath) no longer holds manifest \(rollout.manifestSHA256)"
        )
      }
      let path = try await self.intake.stage(bundle)
      // The actor may have run a command meanwhile: transitions start from the current rollout.
      if path != rollout.bundlePath, var current = self.machines[id],
        current.rollout.state == .verifying
      {
        current.staged(path: path, now: self.now(current.rollout))
        try self.commit(current)
      }
      try await self.predictor.load(path: path, modelID: rollout.modelID, version: rollout.version)
      guard var current = self.machines[id], current.rollout.state == .verifying else {
        // Aborted while it loaded: the version must not stay behind.
        try? await self.predictor.unload(modelID: rollout.modelID, version: rollout.version)
        return
      }
      let actions = try current.loaded(now: self.now(current.rollout))
      self.bundles[id] = nil
      try self.commit(current)
      await self.perform(actions, id: id)
    } catch {
      guard var current = self.machines[id], current.rollout.state == .verifying else { return }
      let reason = (error as? VaneError)?.message ?? "\(error)"
      current.failed(
        reason: "staging or loading \(rollout.bundleID) failed: \(reason)",
        now: self.now(current.rollout)
      )
      self.bundles[id] = nil
      try? self.commit(current)
    }
  }

  /// Measures the step's window, reconciles the predictor with the stored rollout, and lets
  /// the machine judge.
  private func analyze(_ id: String) async {
    guard let r = self.machines[id]?.rollout else { return }
    let now = self.now(r)
    // Calls to the predictor suspend; a command may change the rollout meanwhile, and then
    // this analysis (measured for the old state) is dropped.
    func current() -> RolloutMachine? {
      guard let machine = self.machines[id], machine.rollout.lastSequence == r.lastSequence else {
        return nil
      }
      return machine
    }
    let versions: [PredictorVersion]
    do {
      // On the data clock the analysis must not depend on how far the predictor's background
      // work got: it reads after the predictor has settled.
      if r.plan.clock == .data { try await self.predictor.settle() }
      versions = try await self.predictor.versions(modelID: r.modelID)
      self.unreachableSince[id] = nil
    } catch {
      let since = self.unreachableSince[id] ?? now
      self.unreachableSince[id] = since
      self.measurementErrors[id, default: 0] += 1
      guard var machine = current() else { return }
      let actions = machine.predictorUnreachable(for: now.timeIntervalSince(since), now: now)
      try? self.commit(machine)
      await self.perform(actions, id: id)
      return
    }
    // A restarted predictor lacks the versions: load them again and re-apply the split.
    var reloaded = false
    for (version, path) in [(r.version, r.bundlePath), (r.baselineVersion, r.baselineBundlePath)] {
      guard let version, let path, !path.isEmpty,
        !versions.contains(where: { $0.version == version && $0.ready })
      else { continue }
      reloaded = true
      self.measurementErrors[id, default: 0] += 1
      try? await self.predictor.load(path: path, modelID: r.modelID, version: version)
    }
    if let split = r.split, reloaded || !Self.matches(split, versions) {
      try? await self.predictor.apply(modelID: r.modelID, split: split)
    }
    if reloaded { return }
    let candidate = versions.first { $0.version == r.version }
    let baseline = r.baselineVersion.flatMap { b in versions.first { $0.version == b } }
    // A new step (or a restart) opens a new window.
    guard let window = self.windows[id], window.step == r.currentStep else {
      self.windows[id] = (r.currentStep, candidate, baseline, now)
      self.measurementErrors[id] = 0
      return
    }
    let shadowStep = r.state == .shadow || (r.state == .paused && r.pausedFrom == .shadow)
    func delta(
      _ now: PredictorVersion?,
      _ then: PredictorVersion?,
      shadow: Bool
    ) -> (requests: Int, errors: Int) {
      guard let now else { return (0, 0) }
      let requests =
        shadow
        ? now.shadowRequests - (then?.shadowRequests ?? 0) : now.requests - (then?.requests ?? 0)
      let errors =
        shadow ? now.shadowErrors - (then?.shadowErrors ?? 0) : now.errors - (then?.errors ?? 0)
      return (max(0, requests), max(0, errors))
    }
    let c = delta(candidate, window.candidate, shadow: shadowStep),
      b = delta(baseline, window.baseline, shadow: false)
    // The prediction log is read only for the metrics that come from it (it is the costly call).
    let step = r.steps[r.currentStep].step
    let logged = step.thresholds.filter { $0.metric.fromLog }
    var candidateLive: LiveFigures?, baselineLive: LiveFigures?
    if !logged.isEmpty || step.minMaturedOutcomes > 0 {
      let pairs = shadowStep && logged.contains { $0.metric.needsPairs }
      candidateLive = try? await self.predictor.live(
        modelID: r.modelID,
        version: r.version,
        since: window.since,
        by: r.plan.clock,
        compareWith: pairs ? r.baselineVersion : nil
      )
    }
    if logged.contains(where: { $0.reference != .absolute }) {
      baselineLive = try? await self.predictor.live(
        modelID: r.modelID,
        version: r.baselineVersion ?? "",
        since: window.since,
        by: r.plan.clock,
        compareWith: nil
      )
    }
    func figures(
      _ counts: (requests: Int, errors: Int),
      _ version: PredictorVersion?,
      _ live: LiveFigures?
    ) -> AnalysisSample.Figures {
      AnalysisSample.Figures(
        requests: counts.requests,
        errors: counts.errors,
        latencyP50Ms: version?.latencyP50Ms,
        latencyP99Ms: version?.latencyP99Ms,
        meanConfidence: live?.meanConfidence,
        maturedOutcomes: live?.maturedOutcomes ?? 0,
        liveAUC: live?.auc,
        liveLogLoss: live?.logLoss,
        liveBrier: live?.brier,
        scorePSI: live?.scorePSI
      )
    }
    var baselineFigures = r.baselineVersion == nil ? nil : figures(b, baseline, baselineLive)
    if let measured = baselineFigures, measured.requests > 0 {
      self.lastBaseline[id] = measured
    } else if baselineFigures != nil, let earlier = self.lastBaseline[id] {
      baselineFigures = earlier
    }
    let sample = AnalysisSample(
      candidate: figures(c, candidate, candidateLive),
      baseline: baselineFigures,
      pairs: candidateLive?.pairs,
      measurementErrors: self.measurementErrors[id] ?? 0
    )
    guard var machine = current() else { return }
    let actions = machine.analyzed(sample, requestsInStep: c.requests, now: now)
    try? self.commit(machine)
    await self.perform(actions, id: id)
  }

  /// Whether the predictor's listing has the split.
  static func matches(_ split: Rollout.Split, _ versions: [PredictorVersion]) -> Bool {
    for version in versions {
      let weight = split.weights[version.version] ?? 0
      if abs(version.trafficPercent - weight) > 1e-6 { return false }
      if version.shadow != split.shadows.contains(version.version) { return false }
    }
    return split.weights.keys.allSatisfy { key in versions.contains { $0.version == key } }
  }

  /// Carries out the machine's actions; a rollback whose actions all succeeded is finished.
  private func perform(_ actions: [RolloutMachine.Action], id: String) async {
    guard let rollout = self.machines[id]?.rollout ?? (try? self.store.rollout(id: id)) ?? nil
    else { return }
    var failed = false
    for action in actions {
      do {
        switch action {
        case .applySplit(let split):
          try await self.predictor.apply(modelID: rollout.modelID, split: split)
        case .unload(let version):
          try await self.predictor.unload(modelID: rollout.modelID, version: version)
        }
      } catch {
        failed = true
      }
    }
    if !failed, var machine = self.machines[id], machine.rollout.state == .rollingBack {
      machine.rolledBack(now: self.now(machine.rollout))
      try? self.commit(machine)
    }
  }

  /// Stores the machine's rollout and sends its new events to watchers; a terminal rollout
  /// leaves the active set.
  private func commit(_ machine: RolloutMachine) throws {
    let rollout = machine.rollout
    let before = self.machines[rollout.id]?.rollout.lastSequence ?? 0
    try self.store.save(rollout)
    if rollout.state.isTerminal {
      self.machines[rollout.id] = nil
      self.windows[rollout.id] = nil
      self.lastAnalysis[rollout.id] = nil
      self.lastBaseline[rollout.id] = nil
    } else {
      self.machines[rollout.id] = machine
    }
    let fresh = rollout.history.filter { $0.sequence > before }
    for continuation in self.watchers[rollout.id]?.values ?? [:].values {
      for event in fresh { continuation.yield(event) }
      if rollout.state.isTerminal { continuation.finish() }
    }
    if rollout.state.isTerminal { self.watchers[rollout.id] = nil }
  }
}
