public import Foundation
public import VaneBundle
public import VaneCore
internal import Synchronization

/// The predictor's loaded versions: ``RegistryState`` behind one `Mutex`, with the I/O its
/// transitions ask for — bundles read and warmed on the blocking pool, drains timed, shadows
/// scored off the answer path — and each version's counters.
public final class ModelRegistry: Sendable {
  public typealias State = RegistryState<ServableModel>

  /// One answered request.
  public struct Answer: Sendable {
    public var modelID: String
    public var version: String
    public var pinned: Bool
    public var outputs: [[ServableModel.HorizonOutput]]
    public var model: ServableModel
    public var shadowVersions: [String]
    public var sampledOut: Bool
    public var inference: Duration
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
    /// Wait for READY or FAILED.
    public var wait: Bool

    public init(path: String, expectedManifestSHA256: String? = nil, modelID: String = "", version: String = "", replace: Bool = false, shadow: Bool = false, wait: Bool = false) {
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

    public init(info: State.VersionInfo, model: ServableModel?, counters: VersionCounters.Snapshot) {
      self.info = info
      self.model = model
      self.counters = counters
    }
  }

  private let state: Mutex<State>
  private let counters = Mutex<[String: VersionCounters]>([:])
  private let shadowQueue: AsyncStream<ShadowJob>.Continuation
  private let shadowJobs: AsyncStream<ShadowJob>
  private let shadowDrops = Atomic<Int>(0)
  private let pool: BlockingPool
  /// How long an unloaded version may drain when the request does not say.
  public let defaultDrainTimeout: Duration

  struct ShadowJob: Sendable {
    var modelID: String
    var target: State.Lease.Target
    var features: [Double]
    var count: Int
    var horizons: [Int]
  }

  /// - Parameter shadowQueueCapacity: shadow requests waiting to be scored; beyond it a
  ///   shadow request is dropped and counted, never waited for.
  public init(maximumVersions: Int = 64, shadowQueueCapacity: Int = 1024, defaultDrainTimeout: Duration = .seconds(30), pool: BlockingPool = .shared) {
    self.state = Mutex(State(maximumVersions: maximumVersions))
    (self.shadowJobs, self.shadowQueue) = AsyncStream<ShadowJob>.makeStream(bufferingPolicy: .bufferingOldest(shadowQueueCapacity))
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
    guard request.path.hasPrefix("/") else { throw VaneError.invalidArgument(field: "bundle_path", "'\(request.path)' must be an absolute path on the predictor's host") }
    let bundle = try await self.pool.run { try ModelBundle.open(path: request.path) }
    if let expected = request.expectedManifestSHA256, !expected.isEmpty, expected.lowercased() != bundle.manifestSHA256 {
      throw VaneError(.failedPrecondition, "bundle \(request.path): manifest sha256 \(bundle.manifestSHA256) is not the expected \(expected)")
    }
    let modelID = request.modelID.isEmpty ? Self.defaultModelID(bundle.manifest) : request.modelID
    let version = request.version.isEmpty ? bundle.manifest.id : request.version
    let instance = try self.state.withLock {
      try $0.beginLoad(modelID: modelID, version: version, source: request.path, replace: request.replace, now: Date())
    }
    let finishing = Task {
      await self.finishLoad(instance, bundle: bundle, modelID: modelID, version: version, shadow: request.shadow)
    }
    if request.wait {
      await finishing.value
      let info = self.info(modelID: modelID, version: version)
      if case .failed(let reason)? = info?.status { throw VaneError(.failedPrecondition, "\(modelID)/\(version) failed to load: \(reason)") }
      if request.replace, self.failedInstances.withLock({ $0.contains(instance) }) {
        throw VaneError(
          .failedPrecondition, "\(modelID)/\(version): the replacement failed to load (the old bundle goes on serving): \(info?.lastError ?? "unknown reason")")
      }
    }
    guard let info = self.info(modelID: modelID, version: version) else {
      throw VaneError(.unavailable, "\(modelID)/\(version) was unloaded while it loaded")
    }
    return info
  }

  /// Failed replacements, by instance, so a waiting load can say so.
  private let failedInstances = Mutex<Set<Int>>([])

  private func finishLoad(_ instance: State.InstanceID, bundle: ModelBundle, modelID: String, version: String, shadow: Bool) async {
    do {
      let model = try await self.pool.run { () throws -> ServableModel in
        let model = try ServableModel(bundle: bundle)
        // Warm-up: the first predictions touch every code path and page before traffic does.
        let rows = model.warmUpRows
        _ = try model.predict(rows.values, count: rows.count)
        return model
      }
      self.state.withLock { $0.loaded(instance, model: model) }
      let now = Date()
      self.state.withLock { state in
        _ = state.warmed(instance, now: now)
        if shadow { state.addShadow(modelID: modelID, version: version, now: now) }
      }
      self.counters.withLock { $0[Self.key(modelID, version)] = $0[Self.key(modelID, version)] ?? VersionCounters() }
    } catch {
      let reason = (error as? VaneError)?.message ?? "\(error)"
      self.failedInstances.withLock { _ = $0.insert(instance) }
      _ = self.state.withLock { $0.loadFailed(instance, reason: reason) }
    }
  }

  /// Unloads a version after its in-flight requests finish, or `drainTimeout` passes.
  public func unload(modelID: String, version: String, force: Bool, drainTimeout: Duration?, wait: Bool) async throws -> State.VersionInfo {
    let before = self.info(modelID: modelID, version: version)
    let actions = try self.state.withLock { try $0.unload(modelID: modelID, version: version, force: force, now: Date()) }
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
  public func setSplit(modelID: String, weights: [String: Double], shadows: [String], shadowSamplePercent: Double?, expectedEtag: UInt64?) throws -> State.Split {
    try self.state.withLock {
      try $0.setSplit(modelID: modelID, weights: weights, shadows: shadows, shadowSamplePercent: shadowSamplePercent, expectedEtag: expectedEtag, now: Date())
    }
  }

  public func split(of modelID: String) -> State.Split? { self.state.withLock { $0.split(of: modelID) } }

  /// Every version with its counters, ordered by model id then load order.
  public func list() -> [Listing] {
    let (infos, models) = self.state.withLock { state in
      let infos = state.list()
      return (infos, infos.map { state.model(modelID: $0.modelID, version: $0.version) })
    }
    let counters = self.counters.withLock { all in infos.map { all[Self.key($0.modelID, $0.version)]?.snapshot() ?? VersionCounters().snapshot() } }
    return zip(zip(infos, models), counters).map { Listing(info: $0.0, model: $0.1, counters: $1) }
  }

  public func info(modelID: String, version: String) -> State.VersionInfo? {
    self.state.withLock { $0.list().first { $0.modelID == modelID && $0.version == version } }
  }

  /// Shadow requests dropped because the queue was full.
  public var droppedShadows: Int { self.shadowDrops.load(ordering: .relaxed) }

  // MARK: Answering

  /// Routes one request and answers it on the version it routed to; the version cannot go
  /// while the request runs. Shadows get a copy through the bounded queue.
  /// - Parameter rows: the request's rows for the model it routed to (`values`, `count` rows
  ///   of its columns); what it throws fails the request.
  public func predict(
    _ route: State.Route, horizons: [Int], rows: (ServableModel) throws -> (values: [Double], count: Int)
  ) throws -> Answer {
    let lease = try self.state.withLock { try $0.acquire(route) }
    defer { self.perform(self.state.withLock { $0.release(lease) }) }
    let started = ContinuousClock.now
    let outputs: [[ServableModel.HorizonOutput]]
    let features: [Double], count: Int
    do {
      (features, count) = try rows(lease.primary.model)
      outputs = try lease.primary.model.predict(features, count: count, horizons: horizons)
    } catch {
      self.record(lease.modelID, lease.primary.version, latency: ContinuousClock.now - started, error: true, shadow: false)
      for shadow in lease.shadows { self.perform(self.state.withLock { $0.release(shadow.instance) }) }
      throw error
    }
    let inference = ContinuousClock.now - started
    self.record(lease.modelID, lease.primary.version, latency: inference, error: false, shadow: false)
    for shadow in lease.shadows {
      let job = ShadowJob(modelID: lease.modelID, target: shadow, features: features, count: count, horizons: horizons)
      if case .enqueued = self.shadowQueue.yield(job) { continue }
      self.shadowDrops.add(1, ordering: .relaxed)
      self.perform(self.state.withLock { $0.release(shadow.instance) })
    }
    return Answer(
      modelID: lease.modelID, version: lease.primary.version, pinned: lease.pinned, outputs: outputs, model: lease.primary.model,
      shadowVersions: lease.shadows.map(\.version), sampledOut: lease.sampledOut, inference: inference)
  }

  /// Scores queued shadow requests until the queue is finished (``finishShadows()``).
  public func runShadows() async {
    for await job in self.shadowJobs {
      let started = ContinuousClock.now
      let failed = (try? job.target.model.predict(job.features, count: job.count, horizons: job.horizons)) == nil
      self.record(job.modelID, job.target.version, latency: ContinuousClock.now - started, error: failed, shadow: true)
      self.perform(self.state.withLock { $0.release(job.target.instance) })
    }
  }

  /// No more shadow requests: ``runShadows()`` ends once the queue is empty.
  public func finishShadows() { self.shadowQueue.finish() }

  // MARK: Helpers

  /// Carries out the registry's actions. A released instance needs nothing more here: the
  /// state has dropped its reference, and the model goes with the last lease that holds it.
  private func perform(_ actions: [State.Action]) {
    _ = actions
  }

  private func record(_ modelID: String, _ version: String, latency: Duration, error: Bool, shadow: Bool) {
    self.counters.withLock { all in
      all[Self.key(modelID, version), default: VersionCounters()].record(latency: latency, error: error, shadow: shadow, at: Date())
    }
  }

  static func key(_ modelID: String, _ version: String) -> String { modelID + "\u{0}" + version }

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

  public init() {}

  mutating func record(latency: Duration, error: Bool, shadow: Bool, at now: Date) {
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
      sorted.isEmpty ? .zero : sorted[min(sorted.count - 1, Int((q * Double(sorted.count)).rounded(.up)) - 1 < 0 ? 0 : Int((q * Double(sorted.count)).rounded(.up)) - 1)]
    }
    return Snapshot(
      requests: self.requests, errors: self.errors, shadowRequests: self.shadowRequests, shadowErrors: self.shadowErrors, latencyP50: quantile(0.5),
      latencyP99: quantile(0.99), window: sorted.count, lastRequest: self.lastRequest)
  }
}
