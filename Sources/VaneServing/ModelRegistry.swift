public import Foundation
public import VaneBundle
public import VaneCore
internal import Synchronization
public import VaneFeatures

/// The predictor's loaded versions: ``RegistryState`` behind one `Mutex`, with the I/O its
/// transitions ask for — bundles read and warmed on the blocking pool, drains timed, shadows
/// scored off the answer path — and each version's counters.
public final class ModelRegistry: Sendable {
  public typealias State = RegistryState<LoadedModel>

  /// One answered request.
  public struct Answer: Sendable {
    public var modelID: String
    public var version: String
    public var pinned: Bool
    public var outputs: [[ServableModel.HorizonOutput]]
    /// The version's model (held by reference: ``LoadedModel``).
    public var loaded: LoadedModel
    public var model: ServableModel { self.loaded.model }
    public var shadowVersions: [String]
    public var sampledOut: Bool
    public var inference: Duration
    /// Key of the answer in the prediction log (logged only when the registry has one).
    public var predictionID: String
    /// The trust checks' findings, one per row.
    public var trust: [TrustReport]
  }

  /// What a request says about itself, for the prediction log.
  public struct RequestContext: Sendable {
    /// Empty: the request is named by its prediction's id (a request that brings no id of its
    /// own needs only a distinct one, and that one is made anyway).
    public var requestID: String
    /// The market and bar the input describes, when it says.
    public var symbol: String?
    public var barTime: Int64?

    public init(requestID: String, symbol: String? = nil, barTime: Int64? = nil) {
      self.requestID = requestID
      self.symbol = symbol
      self.barTime = barTime
    }
  }

  /// What ``load(_:)`` is asked to do.
  public struct LoadRequest: Sendable {
    public var path: String
    /// When set, the bundle's manifest hash must equal it.
    public var expectedManifestSHA256: String?
    /// Empty: the bundle's own (its symbols and interval, e.g. `BTCUSDT_1h`).
    public var modelID: String
    /// Empty: the bundle id.
    public var version: String
    public var replace: Bool
    public var shadow: Bool
    /// Native model code or the models' ONNX exports on Vane's engine.
    public var runtime: ServableModel.Runtime = .native
    /// Wait for READY or FAILED.
    public var wait: Bool
    /// Expiry and out-of-distribution checks of the version.
    public var trust: TrustPolicy
    /// What the version does with inputs with missing values (nil: the bundle's choice).
    public var missingValues: MissingValues?

    public init(
      path: String,
      expectedManifestSHA256: String? = nil,
      modelID: String = "",
      version: String = "",
      replace: Bool = false,
      shadow: Bool = false,
      wait: Bool = false,
      trust: TrustPolicy = .default,
      runtime: ServableModel.Runtime = .native,
      missingValues: MissingValues? = nil
    ) {
      self.runtime = runtime
      self.missingValues = missingValues
      self.trust = trust
      self.path = path
      self.expectedManifestSHA256 = expectedManifestSHA256
      self.modelID = modelID
      self.version = version
      self.replace = replace
      self.shadow = shadow
      self.wait = wait
    }
  }

  /// A version as listed, with what it serves and its counters.
  public struct Listing: Sendable {
    public var info: State.VersionInfo
    public var model: ServableModel?
    public var counters: VersionCounters.Snapshot

    public init(info: State.VersionInfo, model: ServableModel?, counters: VersionCounters.Snapshot)
    {
      self.info = info
      self.model = model
      self.counters = counters
    }
  }

  private let state: Mutex<State>
  private let counters = Mutex<[VersionKey: VersionCounters]>([:])
  private let shadowQueue: AsyncStream<ShadowJob>.Continuation
  private let shadowJobs: AsyncStream<ShadowJob>
  private let shadowDrops = Atomic<Int>(0)
  /// Shadow requests queued and scored so far (``settleShadows()`` waits for the one to reach the other).
  private let shadowsQueued = Atomic<Int>(0)
  private let shadowsScored = Atomic<Int>(0)
  private let pool: BlockingPool
  /// Where answers are logged (nil: not logged).
  public let log: PredictionLog?
  /// How long an unloaded version may drain when the request does not say.
  public let defaultDrainTimeout: Duration

  struct ShadowJob: Sendable {
    var modelID: String
    var target: State.Lease.Target
    var features: [Double]
    var count: Int
    var horizons: [Int]
    var context: RequestContext
    var predictionID: String
  }

  /// - Parameter shadowQueueCapacity: shadow requests waiting to be scored; beyond it a
  ///   shadow request is dropped and counted, never waited for.
  public init(
    maximumVersions: Int = 64,
    shadowQueueCapacity: Int = 1024,
    defaultDrainTimeout: Duration = .seconds(30),
    log: PredictionLog? = nil,
    pool: BlockingPool = .shared
  ) {
    self.log = log
    self.state = Mutex(State(maximumVersions: maximumVersions))
    (self.shadowJobs, self.shadowQueue) = AsyncStream<ShadowJob>.makeStream(
      bufferingPolicy: .bufferingOldest(shadowQueueCapacity)
    )
    self.defaultDrainTimeout = defaultDrainTimeout
    self.pool = pool
  }

  // MARK: Versions

  /// Reads and verifies a bundle, then loads it as a version: the version is LOADING once this
  /// returns (READY or FAILED with `wait`); reading the models and warming them up run on the
  /// blocking pool, never on a request's path. A failure leaves what serves untouched.
  /// - Throws: INVALID_ARGUMENT (relative path), NOT_FOUND (no such file), FAILED_PRECONDITION
  ///   (the bundle does not verify, its hash is not the expected one; with `wait`, any load
  ///   failure), ALREADY_EXISTS, RESOURCE_EXHAUSTED.
  public func load(_ request: LoadRequest) async throws -> State.VersionInfo {
    guard request.path.hasPrefix("/") else {
      throw VaneError.invalidArgument(
        field: "bundle_path",
        "'\(request.path)' must be an absolute path on the predictor's host"
      )
    }
    let bundle = try await self.pool.run { try ModelBundle.open(path: request.path) }
    if let expected = request.expectedManifestSHA256, !expected.isEmpty,
      expected.lowercased() != bundle.manifestSHA256
    {
      throw VaneError(
        .failedPrecondition,
        "bundle \(request.path): manifest sha256 \(bundle.manifestSHA256) is not the expected \(expected)"
      )
    }
    if request.runtime == .onnx,
      let missing = bundle.manifest.models.first(where: { $0.kind != .stack && $0.onnx == nil })
    {
      // Known from the manifest alone: refused now rather than as a FAILED version.
      throw VaneError(
        .failedPrecondition,
        "bundle \(bundle.manifest.id): model \(missing.name) has no ONNX export, so it cannot run on INFERENCE_RUNTIME_ONNX (train with export_onnx)"
      )
    }
    if let choice = request.missingValues {
      // Known from the manifest alone, as the runtime above.
      try ServableModel.check(missingValues: choice, manifest: bundle.manifest, field: "missing")
    }
    let modelID = request.modelID.isEmpty ? Self.defaultModelID(bundle.manifest) : request.modelID
    let version = request.version.isEmpty ? bundle.manifest.id : request.version
    let instance = try self.state.withLock {
      try $0.beginLoad(
        modelID: modelID,
        version: version,
        source: request.path,
        replace: request.replace,
        now: Date()
      )
    }
    let finishing = Task {
      await self.finishLoad(
        instance,
        bundle: bundle,
        modelID: modelID,
        version: version,
        shadow: request.shadow,
        trust: request.trust,
        runtime: request.runtime,
        missingValues: request.missingValues
      )
    }
    if request.wait {
      await finishing.value
      let info = self.info(modelID: modelID, version: version)
      if case .failed(let reason)? = info?.status {
        throw VaneError(.failedPrecondition, "\(modelID)/\(version) failed to load: \(reason)")
      }
      if request.replace, self.failedInstances.withLock({ $0.contains(instance) }) {
        throw VaneError(
          .failedPrecondition,
          "\(modelID)/\(version): the replacement failed to load (the old bundle goes on serving): \(info?.lastError ?? "unknown reason")"
        )
      }
    }
    guard let info = self.info(modelID: modelID, version: version) else {
      throw VaneError(.unavailable, "\(modelID)/\(version) was unloaded while it loaded")
    }
    return info
  }

  /// Failed replacements, by instance, so a waiting load can say so.
  private let failedInstances = Mutex<Set<Int>>([])

  private func finishLoad(
    _ instance: State.InstanceID,
    bundle: ModelBundle,
    modelID: String,
    version: String,
    shadow: Bool,
    trust: TrustPolicy,
    runtime: ServableModel.Runtime,
    missingValues: MissingValues?
  ) async {
    do {
      let model = try await self.pool.run { () throws -> ServableModel in
        var model = try ServableModel(bundle: bundle, runtime: runtime)
        model.policy = trust
        if let missingValues { try model.choose(missingValues: missingValues, field: "missing") }
        if trust.maxModelAge != nil, model.dataEnd == nil {
          throw VaneError(
            .failedPrecondition,
            "max_model_age is set, but bundle \(bundle.manifest.id) does not record when its training data ended (it predates reference statistics)"
          )
        }
        try self.log?.register(
          Self.logRecord(model, bundle: bundle, modelID: modelID, version: version)
        )
        // Warm-up: the first predictions touch every code path and page before traffic does.
        let rows = model.warmUpRows
        _ = try model.predict(rows.values, count: rows.count)
        return model
      }
      self.state.withLock { $0.loaded(instance, model: LoadedModel(model)) }
      let now = Date()
      self.state.withLock { state in
        _ = state.warmed(instance, now: now)
        if shadow { state.addShadow(modelID: modelID, version: version, now: now) }
      }
      self.counters.withLock {
        $0[VersionKey(modelID, version)] = $0[VersionKey(modelID, version)] ?? VersionCounters()
      }
    } catch {
      let reason = (error as? VaneError)?.message ?? "\(error)"
      self.failedInstances.withLock { _ = $0.insert(instance) }
      _ = self.state.withLock { $0.loadFailed(instance, reason: reason) }
    }
  }

  /// Unloads a version after its in-flight requests finish, or `drainTimeout` passes.
  public func unload(
    modelID: String,
    version: String,
    force: Bool,
    drainTimeout: Duration?,
    wait: Bool
  ) async throws -> State.VersionInfo {
    let before = self.info(modelID: modelID, version: version)
    let actions = try self.state.withLock {
      try $0.unload(modelID: modelID, version: version, force: force, now: Date())
    }
    self.perform(actions)
    var last = before.map { info -> State.VersionInfo in
      var info = info
      info.status = .draining
      info.trafficPercent = 0
      info.shadow = false
      return info
    }
    if let serving = self.servingInstance(modelID: modelID, version: version) {
      let timeout = drainTimeout ?? self.defaultDrainTimeout
      let timer = Task {
        try? await Task.sleep(for: timeout)
        self.perform(self.state.withLock { $0.drainTimedOut(serving) })
      }
      if wait {
        while self.state.withLock({ $0.status(modelID: modelID, version: version) }) != nil {
          try? await Task.sleep(for: .milliseconds(5))
        }
        timer.cancel()
      }
    }
    if let now = self.info(modelID: modelID, version: version) { last = now }
    guard let last else { throw VaneError(.notFound, "no version \(modelID)/\(version) is loaded") }
    return last
  }

  private func servingInstance(modelID: String, version: String) -> State.InstanceID? {
    self.state.withLock { state -> State.InstanceID? in
      guard state.status(modelID: modelID, version: version) == .draining else { return nil }
      return state.drainingInstance(modelID: modelID, version: version)
    }
  }

  /// Replaces a model's split (see ``RegistryState/setSplit(modelID:weights:shadows:shadowSamplePercent:expectedEtag:now:)``).
  public func setSplit(
    modelID: String,
    weights: [String: Double],
    shadows: [String],
    shadowSamplePercent: Double?,
    expectedEtag: UInt64?
  ) throws -> State.Split {
    try self.state.withLock {
      try $0.setSplit(
        modelID: modelID,
        weights: weights,
        shadows: shadows,
        shadowSamplePercent: shadowSamplePercent,
        expectedEtag: expectedEtag,
        now: Date()
      )
    }
  }

  public func split(of modelID: String) -> State.Split? {
    self.state.withLock { $0.split(of: modelID) }
  }

  /// Every version with its counters, ordered by model id then load order.
  public func list() -> [Listing] {
    let (infos, models) = self.state.withLock { state in
      let infos = state.list()
      return (infos, infos.map { state.model(modelID: $0.modelID, version: $0.version)?.model })
    }
    let counters = self.counters.withLock { all in
      infos.map {
        all[VersionKey($0.modelID, $0.version)]?.snapshot() ?? VersionCounters().snapshot()
      }
    }
    return zip(zip(infos, models), counters).map { Listing(info: $0.0, model: $0.1, counters: $1) }
  }

  public func info(modelID: String, version: String) -> State.VersionInfo? {
    self.state.withLock { $0.list().first { $0.modelID == modelID && $0.version == version } }
  }

  /// Feature set ids of the versions a request for `modelID` (pinned to a version or not) may
  /// route to: READY and weighted, or the pinned one.
  /// - Returns: feature set id → the most bars one input of those versions is, and whether one of
  ///   them keeps inputs with missing values (their feature requests then ask for such bars).
  public func featureSets(
    modelID: String,
    pinned: String?
  ) -> [String: (bars: Int, keepsMissing: Bool)] {
    self.state.withLock { state in
      let infos = state.list().filter { info in
        (modelID.isEmpty || info.modelID == modelID) && info.status == .ready
          && (pinned.map { info.version == $0 } ?? (info.trafficPercent > 0 || info.shadow))
      }
      var sets: [String: (bars: Int, keepsMissing: Bool)] = [:]
      for info in infos {
        guard let loaded = state.model(modelID: info.modelID, version: info.version) else {
          continue
        }
        let set = loaded.model.manifest.featureSet.id, known = sets[set] ?? (1, false)
        sets[set] = (
          max(known.bars, loaded.model.inputBars),
          known.keepsMissing || loaded.model.missingValues.keepsRows
        )
      }
      return sets
    }
  }

  /// Shadow requests dropped because the queue was full.
  public var droppedShadows: Int { self.shadowDrops.load(ordering: .relaxed) }

  /// Waits until every shadow request queued before the call has been scored (or the queue
  /// finished). - Returns: how many were scored meanwhile.
  public func settleShadows() async throws -> Int {
    let target = self.shadowsQueued.load(ordering: .acquiring)
    let before = self.shadowsScored.load(ordering: .acquiring)
    // The scorer is one task working through a bounded queue: a short poll is enough.
    // (A request dropped after the target was read leaves the queued count below it.)
    while self.shadowsScored.load(ordering: .acquiring)
      < min(target, self.shadowsQueued.load(ordering: .acquiring))
    {
      try await Task.sleep(for: .milliseconds(1))
    }
    return max(0, target - before)
  }

  // MARK: Answering

  /// Routes one request and answers it on the version it routed to; the version cannot go
  /// while the request runs. Shadows get a copy through the bounded queue.
  /// - Parameter rows: the request's rows for the model it routed to (`values`, `count` rows
  ///   of its columns); what it throws fails the request.
  public func predict(
    _ route: State.Route,
    horizons: [Int],
    context: RequestContext = RequestContext(requestID: ""),
    rows: (ServableModel) throws -> (values: [Double], count: Int)
  ) throws -> Answer {
    let lease = try self.state.withLock { try $0.acquire(route) }
    defer { self.perform(self.state.withLock { $0.release(lease) }) }
    // One reading of the wall clock per request: the expiry check, the prediction's id, its
    // log time and the version's counters.
    let now = Date()
    // One copy for the whole request: each read through the class copied the struct anew.
    let model = lease.primary.model.model
    let started = ContinuousClock.now
    let outputs: [[ServableModel.HorizonOutput]]
    let features: [Double], count: Int
    let trust: [TrustReport]
    do {
      (features, count) = try rows(model)
      // Checked, imputed and scaled once for the trust checks and the models.
      let inputs = try model.inputs(features, count: count)
      trust = model.assess(inputs, now: now)
      try Self.refuseUntrusted(
        trust,
        model: model,
        name: "\(lease.modelID)/\(lease.primary.version)"
      )
      outputs = try model.predict(inputs, horizons: horizons)
    } catch {
      self.record(
        lease.modelID,
        lease.primary.version,
        latency: ContinuousClock.now - started,
        error: true,
        shadow: false,
        at: now
      )
      for shadow in lease.shadows {
        self.perform(self.state.withLock { $0.release(shadow.instance) })
      }
      throw error
    }
    let inference = ContinuousClock.now - started
    let predictionID = Self.newPredictionID(at: now)
    var context = context
    if context.requestID.isEmpty { context.requestID = predictionID }
    let logged = self.logAnswers(
      id: predictionID,
      modelID: lease.modelID,
      version: lease.primary.version,
      shadow: false,
      context: context,
      model: model,
      features: features,
      count: count,
      outputs: outputs,
      trust: trust,
      latency: inference,
      answeredAt: now
    )
    self.record(
      lease.modelID,
      lease.primary.version,
      latency: inference,
      error: false,
      shadow: false,
      logged: logged,
      at: now
    )
    for shadow in lease.shadows {
      let job = ShadowJob(
        modelID: lease.modelID,
        target: shadow,
        features: features,
        count: count,
        horizons: horizons,
        context: context,
        predictionID: predictionID
      )
      // Counted before the yield, so the scorer never counts past what is queued.
      self.shadowsQueued.add(1, ordering: .releasing)
      if case .enqueued = self.shadowQueue.yield(job) { continue }
      self.shadowsQueued.subtract(1, ordering: .releasing)
      self.shadowDrops.add(1, ordering: .relaxed)
      self.perform(self.state.withLock { $0.release(shadow.instance) })
    }
    return Answer(
      modelID: lease.modelID,
      version: lease.primary.version,
      pinned: lease.pinned,
      outputs: outputs,
      loaded: lease.primary.model,
      shadowVersions: lease.shadows.map { $0.version },
      sampledOut: lease.sampledOut,
      inference: inference,
      predictionID: predictionID,
      trust: trust
    )
  }

  /// Scores queued shadow requests until the queue is finished (``finishShadows()``).
  public func runShadows() async {
    for await job in self.shadowJobs {
      let started = ContinuousClock.now
      let model = job.target.model.model
      let inputs = try? model.inputs(job.features, count: job.count)
      let outputs = inputs.flatMap { try? model.predict($0, horizons: job.horizons) }
      let latency = ContinuousClock.now - started
      var logged = (written: 0, dropped: 0)
      let now = Date()
      if let outputs {
        logged = self.logAnswers(
          id: job.predictionID + "-shadow-" + job.target.version,
          modelID: job.modelID,
          version: job.target.version,
          shadow: true,
          context: job.context,
          model: model,
          features: job.features,
          count: job.count,
          outputs: outputs,
          trust: inputs.map { model.assess($0, now: now) } ?? [],
          latency: latency,
          answeredAt: now
        )
      }
      self.record(
        job.modelID,
        job.target.version,
        latency: latency,
        error: outputs == nil,
        shadow: true,
        logged: logged,
        at: now
      )
      self.perform(self.state.withLock { $0.release(job.target.instance) })
      self.shadowsScored.add(1, ordering: .releasing)
    }
    // Finished: nothing queued is left to wait for.
    self.shadowsScored.store(self.shadowsQueued.load(ordering: .acquiring), ordering: .releasing)
  }

  /// No more shadow requests: ``runShadows()`` ends once the queue is empty.
  public func finishShadows() { self.shadowQueue.finish() }

  // MARK: Logging and trust

  /// Throws FAILED_PRECONDITION when the model's policy refuses what the checks found.
  static func refuseUntrusted(
    _ reports: [TrustReport],
    model: ServableModel,
    name: @autoclosure () -> String
  ) throws {
    let policy = model.policy
    for (row, report) in reports.enumerated() {
      let prefix = reports.count > 1 ? "row \(row): " : ""
      if report.expired, policy.onExpired == .refuse, let end = model.dataEnd,
        let age = policy.maxModelAge
      {
        throw VaneError(
          .failedPrecondition,
          "\(prefix)\(name()) has expired: its training data ended \(ISO8601DateFormatter().string(from: end)), more than max_model_age \(age.components.seconds) s ago"
        )
      }
      if report.outOfDistribution, policy.onOutOfDistribution == .refuse {
        var reasons: [String] = []
        if !report.outOfBoundColumns.isEmpty, let bound = policy.zBound {
          reasons.append(
            "\(report.outOfBoundColumns.prefix(20).joined(separator: ", ")) beyond \(bound) training standard deviations"
          )
        }
        if report.dissimilar, let index = report.dissimilarity,
          let threshold = policy.dissimilarityThreshold
        {
          reasons.append("dissimilarity \((index * 1000).rounded() / 1000) above \(threshold)")
        }
        throw VaneError(
          .failedPrecondition,
          "\(prefix)\(name()): the input is out of distribution: \(reasons.joined(separator: "; "))"
        )
      }
    }
  }

  /// Logs one answer per row (a batch of several rows gets ids `id-<row>`).
  /// Queues a request's answers for the prediction log. - Returns: how many were queued and
  /// how many dropped (the queue was full), for the version's counters.
  private func logAnswers(
    id: String,
    modelID: String,
    version: String,
    shadow: Bool,
    context: RequestContext,
    model: ServableModel,
    features: [Double],
    count: Int,
    outputs: [[ServableModel.HorizonOutput]],
    trust: [TrustReport],
    latency: Duration,
    answeredAt now: Date
  ) -> (written: Int, dropped: Int) {
    guard let log = self.log else { return (0, 0) }
    var tally = (written: 0, dropped: 0)
    let width = model.columns.count
    let answeredAt = Int64(now.timeIntervalSince1970 * 1000)
    // The bar each input is answered for (an LSTM's window logs its last bar).
    let features = model.answeredBars(features, count: count)
    for row in 0 ..< count {
      let logged = log.submit(
        PredictionLog.Record(
          id: count == 1 ? id : "\(id)-\(row)",
          requestID: context.requestID,
          modelID: modelID,
          version: version,
          shadow: shadow,
          symbol: context.symbol,
          barTime: context.barTime,
          featureSetHash: model.manifest.featureSet.sha256,
          // One row: the row itself, not a copy of it.
          features: count == 1 ? features : Array(features[(row * width) ..< ((row + 1) * width)]),
          outputs: outputs[row],
          trust: row < trust.count ? trust[row] : TrustReport(),
          latency: latency,
          answeredAt: answeredAt
        )
      )
      if logged { tally.written += 1 } else { tally.dropped += 1 }
    }
    return tally
  }

  /// A prediction's id: "p" and a fresh time-ordered id (unique within the process, no system
  /// call), so the log's keys arrive in order.
  static func newPredictionID(at now: Date) -> String {
    RequestID.makeTimeOrdered(
      unixMilliseconds: Int64(now.timeIntervalSince1970 * 1000),
      prefix: "p"
    )
  }

  /// What the log keeps of a loaded version.
  static func logRecord(
    _ model: ServableModel,
    bundle: ModelBundle,
    modelID: String,
    version: String
  ) -> PredictionLog.VersionRecord {
    let manifest = model.manifest
    // The label definition the version was trained on: spec.json's `labels`, as written.
    var labels: String?
    if manifest.files.contains(where: { $0.path == "spec.json" }),
      let data = try? bundle.data("spec.json"),
      let spec = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let value = spec["labels"],
      let encoded = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
    {
      labels = String(decoding: encoded, as: UTF8.self)
    }
    return PredictionLog.VersionRecord(
      modelID: modelID,
      version: version,
      manifestSHA256: model.manifestSHA256,
      featureSetID: manifest.featureSet.id,
      interval: manifest.interval,
      barMs: CandleInterval(rawValue: manifest.interval)?.milliseconds ?? 0,
      taskKind: manifest.task.kind,
      classes: manifest.task.classes,
      columns: manifest.featureSet.columns,
      labels: labels,
      reference: model.reference
    )
  }

  // MARK: Helpers

  /// Carries out the registry's actions. A released instance needs nothing more here: the
  /// state has dropped its reference, and the model goes with the last lease that holds it.
  private func perform(_ actions: [State.Action]) {
    _ = actions
  }

  private func record(
    _ modelID: String,
    _ version: String,
    latency: Duration,
    error: Bool,
    shadow: Bool,
    logged: (written: Int, dropped: Int) = (0, 0),
    at now: Date
  ) {
    // One lock and one lookup a request: the log's tallies go with the request's own.
    self.counters.withLock { all in
      all[VersionKey(modelID, version), default: VersionCounters()].record(
        latency: latency,
        error: error,
        shadow: shadow,
        at: now,
        logged: logged
      )
    }
  }

  /// A bundle's own model id: its symbols and interval, e.g. `BTCUSDT_1h`.
  public static func defaultModelID(_ manifest: BundleManifest) -> String {
    (manifest.symbols.joined(separator: "+") + "_" + manifest.interval)
  }
}

/// Request counters of one version: totals since load and latencies over a trailing window.
public struct VersionCounters: Sendable {
  public struct Snapshot: Sendable, Equatable {
    public var requests: UInt64
    public var errors: UInt64
    public var shadowRequests: UInt64
    public var shadowErrors: UInt64
    public var latencyP50: Duration
    public var latencyP99: Duration
    /// Latencies the percentiles are over.
    public var window: Int
    public var lastRequest: Date?
    /// Answers written to the prediction log's queue, and dropped because it was full.
    public var logged: UInt64
    public var logDropped: UInt64
  }

  /// Latencies kept for the percentiles.
  public static let windowSize = 1024

  private var requests: UInt64 = 0
  private var errors: UInt64 = 0
  private var shadowRequests: UInt64 = 0
  private var shadowErrors: UInt64 = 0
  private var latencies: [Duration] = []
  private var next = 0
  private var lastRequest: Date?
  private var logged: UInt64 = 0
  private var logDropped: UInt64 = 0

  public init() {}

  /// One request: its latency and outcome, and its answers queued for the prediction log or
  /// dropped there.
  mutating func record(
    latency: Duration,
    error: Bool,
    shadow: Bool,
    at now: Date,
    logged: (written: Int, dropped: Int) = (0, 0)
  ) {
    self.logged += UInt64(logged.written)
    self.logDropped += UInt64(logged.dropped)
    if shadow {
      self.shadowRequests += 1
      if error { self.shadowErrors += 1 }
    } else {
      self.requests += 1
      if error { self.errors += 1 }
    }
    if self.latencies.count < Self.windowSize {
      self.latencies.append(latency)
    } else {
      self.latencies[self.next] = latency
      self.next = (self.next + 1) % Self.windowSize
    }
    self.lastRequest = now
  }

  public func snapshot() -> Snapshot {
    let sorted = self.latencies.sorted()
    func quantile(_ q: Double) -> Duration {
      sorted.isEmpty
        ? .zero
        : sorted[
          min(
            sorted.count - 1,
            Int((q * Double(sorted.count)).rounded(.up)) - 1 < 0
              ? 0 : Int((q * Double(sorted.count)).rounded(.up)) - 1
          )
        ]
    }
    return Snapshot(
      requests: self.requests,
      errors: self.errors,
      shadowRequests: self.shadowRequests,
      shadowErrors: self.shadowErrors,
      latencyP50: quantile(0.5),
      latencyP99: quantile(0.99),
      window: sorted.count,
      lastRequest: self.lastRequest,
      logged: self.logged,
      logDropped: self.logDropped
    )
  }
}

/// A loaded version's model, shared by reference: a request's lease and its answer each take
/// one retain of it, where copying the struct retained each of its many fields, twice a
/// request.
public final class LoadedModel: Sendable {
  public let model: ServableModel

  public init(_ model: ServableModel) { self.model = model }
}
