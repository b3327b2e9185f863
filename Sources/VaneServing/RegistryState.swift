public import Foundation
internal import VaneCore

/// Where a loaded version is in its life.
public enum VersionStatus: Sendable, Equatable {
  /// The bundle is being read and verified (on the blocking pool).
  case loading
  /// Read; a few predictions are being run before it takes traffic.
  case warming
  /// Serving.
  case ready
  /// Unloading: no new requests; it goes once its in-flight requests have finished.
  case draining
  /// The load failed (the reason); listed until unloaded.
  case failed(String)
}

/// The predictor's registry as a pure state machine: model ids, their versions, each version's
/// loaded instance and in-flight count, and each model's traffic split.
///
/// No I/O: every transition returns what the caller must do after releasing the lock (start a
/// load, release an instance), so the registry is tested as a table of transitions. `Model` is
/// what a loaded instance holds (a ``ServableModel`` in the service; anything in tests).
///
/// Requests never see a half-made change: ``acquire(_:)`` hands out the instance the split
/// routes to and counts it in flight; a replaced or unloaded instance is released only once
/// its count is back to zero (or its drain timed out), so a request finishes on the version it
/// started with.
public struct RegistryState<Model: Sendable>: Sendable {
  /// Identifies one loaded (or loading) instance of a version's bundle.
  public typealias InstanceID = Int

  /// A model's traffic split.
  public struct Split: Sendable, Equatable {
    /// Version → percent of primary traffic (sums to 100 when not empty).
    public var weights: [String: Double] = [:] {
      didSet { self.routable = Self.ordered(self.weights) }
    }
    /// The versions with weight, in version order: what ``RegistryState/pick(_:key:draw:)``
    /// reads, kept with the weights rather than filtered and sorted for every request.
    public private(set) var routable: [Weighted] = []
    public var shadows: [String] = []
    public var shadowSamplePercent: Double = 100
    /// Changes on every update.
    public var etag: UInt64 = 0
    public var updated: Date = .distantPast

    /// A version and its percent of primary traffic.
    public struct Weighted: Sendable, Equatable {
      public var version: String
      public var weight: Double
    }

    static func ordered(_ weights: [String: Double]) -> [Weighted] {
      weights.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map {
        Weighted(version: $0.key, weight: $0.value)
      }
    }
  }

  /// A version as listed.
  public struct VersionInfo: Sendable, Equatable {
    public var modelID: String
    public var version: String
    public var status: VersionStatus
    /// The bundle it was loaded from (of the serving instance; of the new one while loading).
    public var source: String
    public var loadOrder: Int
    public var loadTime: Date
    public var trafficPercent: Double
    public var shadow: Bool
    /// Requests on its instances now.
    public var inFlight: Int
    /// Why the last replacement failed (the old instance kept serving), if it did.
    public var lastError: String?
  }

  /// One routed request's hold on what it runs: release it with ``release(_:)``.
  public struct Lease: Sendable {
    public struct Target: Sendable {
      public var version: String
      public var instance: InstanceID
      public var model: Model
    }
    public var modelID: String
    public var primary: Target
    public var pinned: Bool
    /// Shadows the request is mirrored to (each counted in flight too).
    public var shadows: [Target]
    /// Shadows are configured but this request was not sampled.
    public var sampledOut: Bool
  }

  /// What to do once the lock is released.
  public enum Action: Sendable {
    /// Drop the instance (its requests have all finished).
    case release(InstanceID)
  }

  /// What to route: a model id (empty: the only model), a pinned version, a routing key.
  public struct Route: Sendable {
    public var modelID: String
    public var pinned: String?
    public var routingKey: String?
    /// Uniform draws in [0, 1) for a request without a routing key and for shadow sampling
    /// (the caller's generator; fixed in tests).
    public var draw: Double
    public var shadowDraw: Double

    public init(
      modelID: String,
      pinned: String? = nil,
      routingKey: String? = nil,
      draw: Double = 0,
      shadowDraw: Double = 0
    ) {
      self.modelID = modelID
      self.pinned = pinned
      self.routingKey = routingKey
      self.draw = draw
      self.shadowDraw = shadowDraw
    }
  }

  private struct Instance: Sendable {
    var model: Model?
    var inFlight = 0
    var retiring = false
  }

  private struct Version: Sendable {
    var status: VersionStatus
    /// The instance that serves (nil until the first load is READY).
    var serving: InstanceID?
    /// A replacement being loaded beside it.
    var pending: InstanceID?
    var source: String
    var loadOrder: Int
    var loadTime: Date
    var lastError: String?
  }

  private struct Entry: Sendable {
    var versions: [String: Version] = [:]
    var split = Split()
  }

  private var models: [String: Entry] = [:]
  private var instances: [InstanceID: Instance] = [:]
  /// Which version each instance belongs to.
  private var owners: [InstanceID: (modelID: String, version: String)] = [:]
  private var nextInstance = 1
  private var nextOrder = 0
  private var nextEtag: UInt64 = 1
  /// Most versions held at once, over all models.
  public let maximumVersions: Int

  public init(maximumVersions: Int = 64) {
    self.maximumVersions = maximumVersions
  }

  // MARK: Loading

  /// A load starts: a new version in LOADING, or (with `replace`) a new instance beside the
  /// serving one. Returns the instance to load into.
  /// - Throws: ALREADY_EXISTS (the version exists, no `replace`; or it is still loading or
  ///   draining), RESOURCE_EXHAUSTED (too many versions).
  public mutating func beginLoad(
    modelID: String,
    version: String,
    source: String,
    replace: Bool,
    now: Date
  ) throws -> InstanceID {
    let id = self.nextInstance
    if let existing = self.models[modelID]?.versions[version] {
      guard replace else {
        throw VaneError(
          .alreadyExists,
          "\(modelID)/\(version) is already loaded (set replace to load the new bundle beside it)"
        )
      }
      guard existing.pending == nil, existing.status != .draining else {
        throw VaneError(
          .alreadyExists,
          "\(modelID)/\(version) is \(existing.pending != nil ? "already being replaced" : "unloading")"
        )
      }
      self.nextInstance += 1
      self.instances[id] = Instance()
      self.owners[id] = (modelID, version)
      self.models[modelID]!.versions[version]!.pending = id
      if case .failed = existing.status {
        // Nothing serves: the replacement loads as the version itself.
        self.models[modelID]!.versions[version]!.status = .loading
      }
      self.models[modelID]!.versions[version]!.source = source
      return id
    }
    guard self.versionCount < self.maximumVersions else {
      throw VaneError(
        .resourceExhausted,
        "\(self.maximumVersions) versions are loaded already: unload one first"
      )
    }
    self.nextInstance += 1
    self.instances[id] = Instance()
    self.owners[id] = (modelID, version)
    self.models[modelID, default: Entry()].versions[version] = Version(
      status: .loading,
      serving: nil,
      pending: id,
      source: source,
      loadOrder: self.nextOrder,
      loadTime: now
    )
    self.nextOrder += 1
    return id
  }

  /// The bundle was read: the instance warms up (still off the split).
  public mutating func loaded(_ instance: InstanceID, model: Model) {
    guard let owner = self.owners[instance], self.instances[instance] != nil else { return }
    self.instances[instance]!.model = model
    if self.models[owner.modelID]?.versions[owner.version]?.serving == nil {
      self.models[owner.modelID]!.versions[owner.version]!.status = .warming
    }
  }

  /// Warm-up passed: the instance serves. A replacement swaps in as one transition (the old
  /// instance drains); the first version of a model takes all its traffic.
  public mutating func warmed(_ instance: InstanceID, now: Date) -> [Action] {
    guard let owner = self.owners[instance], self.instances[instance]?.model != nil,
      var version = self.models[owner.modelID]?.versions[owner.version], version.pending == instance
    else { return [] }
    var actions: [Action] = []
    if let old = version.serving { actions += self.retire(old) }
    version.serving = instance
    version.pending = nil
    version.status = .ready
    version.lastError = nil
    version.loadTime = now
    self.models[owner.modelID]!.versions[owner.version] = version
    var entry = self.models[owner.modelID]!
    if entry.split.weights.isEmpty && !entry.split.shadows.contains(owner.version) {
      entry.split.weights = [owner.version: 100]
      entry.split.etag = self.takeEtag()
      entry.split.updated = now
      self.models[owner.modelID] = entry
    }
    return actions
  }

  /// The load failed: a new version is FAILED with the reason; a replacement is dropped and
  /// the serving instance goes on serving.
  public mutating func loadFailed(_ instance: InstanceID, reason: String) -> [Action] {
    guard let owner = self.owners[instance],
      var version = self.models[owner.modelID]?.versions[owner.version], version.pending == instance
    else {
      return []
    }
    version.pending = nil
    if version.serving == nil {
      version.status = .failed(reason)
    } else {
      version.lastError = reason
    }
    self.models[owner.modelID]!.versions[owner.version] = version
    self.instances[instance] = nil
    self.owners[instance] = nil
    return []
  }

  /// An instance was marked shadow at load: it joins the model's shadow set once READY.
  public mutating func addShadow(modelID: String, version: String, now: Date) {
    guard var entry = self.models[modelID], entry.versions[version] != nil,
      !entry.split.shadows.contains(version),
      entry.split.weights[version] == nil
    else { return }
    entry.split.shadows.append(version)
    entry.split.etag = self.takeEtag()
    entry.split.updated = now
    self.models[modelID] = entry
  }

  // MARK: Unloading

  /// Unloads a version: it leaves the split and drains. With `force` a weighted version's share
  /// goes to the other weighted versions in proportion (none left: the model answers
  /// UNAVAILABLE), and a shadow leaves the shadow set.
  /// - Throws: NOT_FOUND; FAILED_PRECONDITION when it has weight or is a shadow and `force` is
  ///   false.
  public mutating func unload(
    modelID: String,
    version: String,
    force: Bool,
    now: Date
  ) throws -> [Action] {
    guard var entry = self.models[modelID], let current = entry.versions[version] else {
      throw VaneError(.notFound, "no version \(modelID)/\(version) is loaded")
    }
    let weight = entry.split.weights[version] ?? 0
    let shadow = entry.split.shadows.contains(version)
    if !force {
      if weight > 0 {
        throw VaneError(
          .failedPrecondition,
          "\(modelID)/\(version) has \(Self.percent(weight)) % of traffic: move it first, or force"
        )
      }
      if shadow {
        throw VaneError(
          .failedPrecondition,
          "\(modelID)/\(version) is a shadow: remove it from the split first, or force"
        )
      }
    }
    if entry.split.weights[version] != nil || shadow {
      entry.split.weights[version] = nil
      entry.split.shadows.removeAll { $0 == version }
      let rest = entry.split.weights.values.reduce(0, +)
      if rest > 0 {
        for key in entry.split.weights.keys { entry.split.weights[key]! *= 100 / rest }
      } else {
        entry.split.weights = [:]
      }
      entry.split.etag = self.takeEtag()
      entry.split.updated = now
    }
    var actions: [Action] = []
    var drained = current
    drained.status = .draining
    if let pending = current.pending {
      // A replacement still loading is abandoned; its completion finds no version.
      self.instances[pending] = nil
      self.owners[pending] = nil
      drained.pending = nil
    }
    entry.versions[version] = drained
    self.models[modelID] = entry
    if let serving = current.serving {
      actions += self.retire(serving)
    } else {
      self.removeVersion(modelID: modelID, version: version)
    }
    return actions
  }

  /// The drain timeout passed: the instance goes now, whatever is in flight (their leases
  /// keep the model alive until they finish).
  public mutating func drainTimedOut(_ instance: InstanceID) -> [Action] {
    guard self.instances[instance]?.retiring == true else { return [] }
    return self.drop(instance)
  }

  // MARK: Routing

  /// Replaces a model's split and shadow set.
  /// - Throws: NOT_FOUND (model or version), INVALID_ARGUMENT (weights not in [0, 100] or not
  ///   summing to 100, a version both weighted and shadow, a sample percent outside [0, 100]),
  ///   FAILED_PRECONDITION (a weighted version or a shadow that is not READY), ABORTED (etag).
  public mutating func setSplit(
    modelID: String,
    weights: [String: Double],
    shadows: [String],
    shadowSamplePercent: Double?,
    expectedEtag: UInt64?,
    now: Date
  ) throws -> Split {
    guard var entry = self.models[modelID] else {
      throw VaneError(.notFound, "no model \(modelID) is loaded")
    }
    if let expectedEtag, expectedEtag != entry.split.etag {
      throw VaneError(
        .aborted,
        "the split of \(modelID) changed (etag \(entry.split.etag), expected \(expectedEtag)): read it again"
      )
    }
    for (version, weight) in weights.sorted(by: { $0.key < $1.key }) {
      guard weight.isFinite, (0 ... 100).contains(weight) else {
        throw VaneError.invalidArgument(
          field: "weights[\(version)]",
          "\(weight) is not in [0, 100]"
        )
      }
      guard let known = entry.versions[version] else {
        throw VaneError(.notFound, "no version \(modelID)/\(version) is loaded")
      }
      if weight > 0, known.status != .ready {
        throw VaneError(
          .failedPrecondition,
          "\(modelID)/\(version) is not READY (\(Self.name(known.status)))"
        )
      }
    }
    let total = weights.values.reduce(0, +)
    guard abs(total - 100) <= 1e-6 else {
      throw VaneError.invalidArgument(field: "weights", "sum to \(Self.percent(total)), not 100")
    }
    for version in shadows {
      guard let known = entry.versions[version] else {
        throw VaneError(.notFound, "no version \(modelID)/\(version) is loaded")
      }
      if (weights[version] ?? 0) > 0 {
        throw VaneError.invalidArgument(field: "shadow_versions", "\(version) is also weighted")
      }
      if known.status != .ready {
        throw VaneError(
          .failedPrecondition,
          "shadow \(modelID)/\(version) is not READY (\(Self.name(known.status)))"
        )
      }
    }
    guard Set(shadows).count == shadows.count else {
      throw VaneError.invalidArgument(field: "shadow_versions", "a version is listed twice")
    }
    let sample = shadowSamplePercent ?? 100
    guard sample.isFinite, (0 ... 100).contains(sample) else {
      throw VaneError.invalidArgument(
        field: "shadow_sample_percent",
        "\(sample) is not in [0, 100]"
      )
    }
    entry.split.weights = weights.filter { $0.value > 0 }
    entry.split.shadows = shadows
    entry.split.shadowSamplePercent = sample
    entry.split.etag = self.takeEtag()
    entry.split.updated = now
    self.models[modelID] = entry
    return entry.split
  }

  /// Routes one request and counts what it runs in flight.
  /// - Throws: INVALID_ARGUMENT (no model id while several are loaded), NOT_FOUND (unknown
  ///   model or pinned version), UNAVAILABLE (nothing READY to route to).
  public mutating func acquire(_ route: Route) throws -> Lease {
    let modelID: String
    if route.modelID.isEmpty {
      guard self.models.count == 1 else {
        throw self.models.isEmpty
          ? VaneError(.unavailable, "no model is loaded")
          : VaneError.invalidArgument(
            field: "model.model_id",
            "required: \(self.models.count) models are loaded"
          )
      }
      modelID = self.models.keys.first!
    } else {
      modelID = route.modelID
    }
    guard let entry = self.models[modelID] else {
      throw VaneError(.notFound, "no model \(modelID) is loaded")
    }
    let chosen: String
    if let pinned = route.pinned, !pinned.isEmpty {
      guard let version = entry.versions[pinned] else {
        throw VaneError(.notFound, "no version \(modelID)/\(pinned) is loaded")
      }
      guard version.status == .ready, version.serving != nil else {
        throw VaneError(
          .unavailable,
          "\(modelID)/\(pinned) is \(Self.name(version.status)), not READY"
        )
      }
      chosen = pinned
    } else {
      guard let picked = Self.pick(entry.split.routable, key: route.routingKey, draw: route.draw)
      else {
        throw VaneError(.unavailable, "\(modelID) has no READY version with traffic")
      }
      chosen = picked
    }
    let primary = self.hold(entry, version: chosen)!
    var shadows: [Lease.Target] = []
    var sampledOut = false
    if route.pinned == nil || route.pinned!.isEmpty, !entry.split.shadows.isEmpty {
      if route.shadowDraw * 100 < entry.split.shadowSamplePercent {
        shadows = entry.split.shadows.compactMap { self.hold(entry, version: $0) }
      } else {
        sampledOut = true
      }
    }
    return Lease(
      modelID: modelID,
      primary: primary,
      pinned: route.pinned.map { !$0.isEmpty } ?? false,
      shadows: shadows,
      sampledOut: sampledOut
    )
  }

  /// A request finished with what it held.
  public mutating func release(_ lease: Lease) -> [Action] {
    self.release(lease.primary.instance)
  }

  /// One target of a lease finished (a shadow scored off the answer path ends on its own).
  public mutating func release(_ instance: InstanceID) -> [Action] {
    guard self.instances[instance] != nil else { return [] }
    self.instances[instance]!.inFlight -= 1
    if self.instances[instance]!.retiring, self.instances[instance]!.inFlight <= 0 {
      return self.drop(instance)
    }
    return []
  }

  // MARK: Reading

  /// Every version, ordered by model id then load order.
  public func list() -> [VersionInfo] {
    self.models.keys.sorted().flatMap { modelID -> [VersionInfo] in
      let entry = self.models[modelID]!
      return entry.versions.map { version, state in
        let inFlight = [state.serving, state.pending].compactMap { $0 }.compactMap {
          self.instances[$0]?.inFlight
        }.reduce(0, +)
        return VersionInfo(
          modelID: modelID,
          version: version,
          status: state.status,
          source: state.source,
          loadOrder: state.loadOrder,
          loadTime: state.loadTime,
          trafficPercent: entry.split.weights[version] ?? 0,
          shadow: entry.split.shadows.contains(version),
          inFlight: inFlight,
          lastError: state.lastError
        )
      }.sorted { $0.loadOrder < $1.loadOrder }
    }
  }

  public func split(of modelID: String) -> Split? { self.models[modelID]?.split }

  public func status(modelID: String, version: String) -> VersionStatus? {
    self.models[modelID]?.versions[version]?.status
  }

  /// The serving model of a version, if READY.
  public func model(modelID: String, version: String) -> Model? {
    guard let serving = self.models[modelID]?.versions[version]?.serving else { return nil }
    return self.instances[serving]?.model
  }

  /// The instance a draining version waits for.
  public func drainingInstance(modelID: String, version: String) -> InstanceID? {
    guard let state = self.models[modelID]?.versions[version], state.status == .draining else {
      return nil
    }
    return state.serving
  }

  /// Instances loaded or loading, drained ones not yet released included.
  public var instanceCount: Int { self.instances.count }

  var versionCount: Int { self.models.values.reduce(0) { $0 + $1.versions.count } }

  // MARK: Helpers

  /// Takes `version` of `entry` (the model's entry, already read: not looked up again).
  private mutating func hold(_ entry: Entry, version: String) -> Lease.Target? {
    guard let serving = entry.versions[version]?.serving,
      let model = self.instances[serving]?.model
    else { return nil }
    self.instances[serving]!.inFlight += 1
    return Lease.Target(version: version, instance: serving, model: model)
  }

  /// The instance stops taking requests; it goes when its last one finishes.
  private mutating func retire(_ instance: InstanceID) -> [Action] {
    guard self.instances[instance] != nil else { return [] }
    self.instances[instance]!.retiring = true
    return self.instances[instance]!.inFlight <= 0 ? self.drop(instance) : []
  }

  private mutating func drop(_ instance: InstanceID) -> [Action] {
    guard let owner = self.owners[instance] else { return [] }
    self.instances[instance] = nil
    self.owners[instance] = nil
    if let version = self.models[owner.modelID]?.versions[owner.version],
      version.status == .draining, version.serving == instance
    {
      self.removeVersion(modelID: owner.modelID, version: owner.version)
    }
    return [.release(instance)]
  }

  private mutating func removeVersion(modelID: String, version: String) {
    self.models[modelID]?.versions[version] = nil
    if self.models[modelID]?.versions.isEmpty == true { self.models[modelID] = nil }
  }

  private mutating func takeEtag() -> UInt64 {
    defer { self.nextEtag += 1 }
    return self.nextEtag
  }

  /// Weighted rendezvous hashing: each version scores −ln(u)/w with u a hash of (key, version)
  /// in (0, 1); the lowest wins. The same key under the same split always picks the same
  /// version, and moving x % of weight moves about x % of keys. Without a key, `draw` picks by
  /// cumulative weight.
  static func pick(_ weights: [String: Double], key: String?, draw: Double) -> String? {
    Self.pick(Split.ordered(weights), key: key, draw: draw)
  }

  /// ``pick(_:key:draw:)`` over a split's ``Split/routable`` versions.
  static func pick(_ candidates: [Split.Weighted], key: String?, draw: Double) -> String? {
    guard !candidates.isEmpty else { return nil }
    if let key, !key.isEmpty {
      var best: (score: Double, version: String)?
      for candidate in candidates {
        let u =
          (Double(Self.hash(key + "\u{0}" + candidate.version) >> 11) + 0.5) / Double(1 << 53)
        let score = -Foundation.log(u) / candidate.weight
        if best == nil || score < best!.score { best = (score, candidate.version) }
      }
      return best!.version
    }
    let total = candidates.reduce(0) { $0 + $1.weight }
    var point = draw * total
    for candidate in candidates {
      if point < candidate.weight { return candidate.version }
      point -= candidate.weight
    }
    return candidates.last!.version
  }

  /// FNV-1a over the UTF-8 bytes, then a SplitMix64 finaliser: stable across runs and builds.
  static func hash(_ text: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      h ^= UInt64(byte)
      h = h &* 0x100_0000_01b3
    }
    h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
    h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
    return h ^ (h >> 31)
  }

  static func percent(_ value: Double) -> String { String(format: "%g", value) }

  static func name(_ status: VersionStatus) -> String {
    switch status {
    case .loading: "LOADING"
    case .warming: "WARMING"
    case .ready: "READY"
    case .draining: "DRAINING"
    case .failed: "FAILED"
    }
  }
}
