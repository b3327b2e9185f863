import Foundation
import Testing
import VaneCore

@testable import VaneServing

/// The registry's transitions, without I/O: models are strings standing for loaded bundles.
@Suite("Model registry state machine")
struct RegistryStateTests {
  typealias State = RegistryState<String>
  static let now = Date(timeIntervalSince1970: 1_800_000_000)

  /// Loads `version` of `model` through LOADING → WARMING → READY.
  @discardableResult
  static func load(
    _ state: inout State,
    _ model: String,
    _ version: String,
    replace: Bool = false
  ) throws -> (State.InstanceID, [State.Action]) {
    let id = try state.beginLoad(
      modelID: model,
      version: version,
      source: "/b/\(version).tar.gz",
      replace: replace,
      now: now
    )
    state.loaded(id, model: "\(model)/\(version)#\(id)")
    return (id, state.warmed(id, now: now))
  }

  static func code(_ body: () throws -> Void) -> VaneError.Code? {
    do { try body() } catch let error as VaneError { return error.code } catch { return nil }
    return nil
  }

  @Test("LOADING → WARMING → READY; the first version takes all traffic, a later one none")
  func lifecycle() throws {
    var state = State()
    let id = try state.beginLoad(
      modelID: "btc",
      version: "v1",
      source: "/b/v1",
      replace: false,
      now: Self.now
    )
    #expect(state.status(modelID: "btc", version: "v1") == .loading)
    #expect(Self.code { _ = try state.acquire(.init(modelID: "btc")) } == .unavailable)
    state.loaded(id, model: "m1")
    #expect(state.status(modelID: "btc", version: "v1") == .warming)
    #expect(state.warmed(id, now: Self.now).isEmpty)
    #expect(state.status(modelID: "btc", version: "v1") == .ready)
    #expect(state.split(of: "btc")?.weights == ["v1": 100])
    try Self.load(&state, "btc", "v2")
    #expect(state.split(of: "btc")?.weights == ["v1": 100])
    #expect(state.list().map(\.version) == ["v1", "v2"])
    #expect(state.list().map(\.trafficPercent) == [100, 0])
    let lease = try state.acquire(.init(modelID: "btc"))
    #expect(lease.primary.model == "m1" && lease.primary.version == "v1")
  }

  @Test(
    "A failed load: a new version is FAILED with the reason; a failed replacement leaves the old instance serving"
  )
  func failures() throws {
    var state = State()
    let (first, _) = try Self.load(&state, "btc", "v1")
    let bad = try state.beginLoad(
      modelID: "btc",
      version: "v2",
      source: "/b/v2",
      replace: false,
      now: Self.now
    )
    _ = state.loadFailed(bad, reason: "checksum mismatch")
    #expect(state.status(modelID: "btc", version: "v2") == .failed("checksum mismatch"))
    let replacement = try state.beginLoad(
      modelID: "btc",
      version: "v1",
      source: "/b/v1b",
      replace: true,
      now: Self.now
    )
    _ = state.loadFailed(replacement, reason: "unknown model kind")
    #expect(state.status(modelID: "btc", version: "v1") == .ready)
    #expect(state.list().first { $0.version == "v1" }?.lastError == "unknown model kind")
    let lease = try state.acquire(.init(modelID: "btc"))
    #expect(lease.primary.instance == first)
    #expect(
      Self.code {
        _ = try state.beginLoad(
          modelID: "btc",
          version: "v1",
          source: "x",
          replace: false,
          now: Self.now
        )
      } == .alreadyExists
    )
  }

  @Test(
    "Hot swap: a request in flight finishes on the old instance, which is released only after it"
  )
  func swapUnderLoad() throws {
    var state = State()
    let (old, _) = try Self.load(&state, "btc", "v1")
    let inFlight = try state.acquire(.init(modelID: "btc"))
    let (new, actions) = try Self.load(&state, "btc", "v1", replace: true)
    #expect(actions.isEmpty, "the old instance has a request in flight")
    #expect(state.instanceCount == 2)
    // New requests go to the new instance at once.
    let next = try state.acquire(.init(modelID: "btc"))
    #expect(next.primary.instance == new)
    #expect(inFlight.primary.instance == old)
    let released = state.release(inFlight)
    #expect(released.count == 1)
    if case .release(let id) = released.first { #expect(id == old) }
    #expect(state.instanceCount == 1)
    #expect(state.release(next).isEmpty)
  }

  @Test(
    "Unload: refused with traffic unless forced; forced weight is spread in proportion; the version drains, then goes"
  )
  func unload() throws {
    var state = State()
    try Self.load(&state, "btc", "v1")
    try Self.load(&state, "btc", "v2")
    try Self.load(&state, "btc", "v3")
    _ = try state.setSplit(
      modelID: "btc",
      weights: ["v1": 50, "v2": 30, "v3": 20],
      shadows: [],
      shadowSamplePercent: nil,
      expectedEtag: nil,
      now: Self.now
    )
    #expect(
      Self.code { _ = try state.unload(modelID: "btc", version: "v1", force: false, now: Self.now) }
        == .failedPrecondition
    )
    #expect(
      Self.code { _ = try state.unload(modelID: "btc", version: "v9", force: false, now: Self.now) }
        == .notFound
    )
    let lease = try state.acquire(.init(modelID: "btc", pinned: "v1"))
    #expect(try state.unload(modelID: "btc", version: "v1", force: true, now: Self.now).isEmpty)
    let weights = try #require(state.split(of: "btc")?.weights)
    #expect(
      abs(weights["v2"]! - 60) < 1e-9 && abs(weights["v3"]! - 40) < 1e-9 && weights["v1"] == nil
    )
    #expect(state.status(modelID: "btc", version: "v1") == .draining)
    #expect(
      Self.code { _ = try state.acquire(.init(modelID: "btc", pinned: "v1")) } == .unavailable
    )
    #expect(state.release(lease).count == 1)
    #expect(state.status(modelID: "btc", version: "v1") == nil)
    // A version without traffic goes at once; a stuck request does not hold a drain past its timeout.
    let stuck = try state.acquire(.init(modelID: "btc", pinned: "v3"))
    _ = try state.setSplit(
      modelID: "btc",
      weights: ["v2": 100],
      shadows: [],
      shadowSamplePercent: nil,
      expectedEtag: nil,
      now: Self.now
    )
    #expect(try state.unload(modelID: "btc", version: "v3", force: false, now: Self.now).isEmpty)
    #expect(state.drainTimedOut(stuck.primary.instance).count == 1)
    #expect(state.status(modelID: "btc", version: "v3") == nil)
    #expect(state.release(stuck).isEmpty)
  }

  /// (what is wrong, weights, shadows, sample, etag offset, expected code)
  static let badSplits: [(String, [String: Double], [String], Double?, Int, VaneError.Code)] = [
    ("sum below 100", ["v1": 60, "v2": 30], [], nil, 0, .invalidArgument),
    ("negative weight", ["v1": 110, "v2": -10], [], nil, 0, .invalidArgument),
    ("weighted and shadow", ["v1": 100, "v2": 0.0000001], ["v2"], nil, 0, .invalidArgument),
    ("unknown version", ["v1": 50, "v9": 50], [], nil, 0, .notFound),
    ("a weighted version not READY", ["v1": 50, "v3": 50], [], nil, 0, .failedPrecondition),
    ("sample above 100", ["v1": 100], ["v2"], 150, 0, .invalidArgument),
    ("stale etag", ["v1": 100], [], nil, -1, .aborted),
  ]

  @Test(
    "Bad splits are refused with the right code, and change nothing",
    arguments: RegistryStateTests.badSplits.map(\.0)
  )
  func badSplit(name: String) throws {
    let (_, weights, shadows, sample, etagOffset, expected) = try #require(
      Self.badSplits.first { $0.0 == name }
    )
    var state = State()
    try Self.load(&state, "btc", "v1")
    try Self.load(&state, "btc", "v2")
    _ = try state.beginLoad(
      modelID: "btc",
      version: "v3",
      source: "x",
      replace: false,
      now: Self.now
    )
    let before = try #require(state.split(of: "btc"))
    let etag = etagOffset == 0 ? before.etag : before.etag &- 1
    #expect(
      Self.code {
        _ = try state.setSplit(
          modelID: "btc",
          weights: weights,
          shadows: shadows,
          shadowSamplePercent: sample,
          expectedEtag: etag,
          now: Self.now
        )
      } == expected
    )
    #expect(state.split(of: "btc") == before)
  }

  @Test(
    "Sticky routing: a key keeps its version; moving 10 % of weight moves about 10 % of keys, all to the version that gained"
  )
  func sticky() throws {
    let keys = (0 ..< 20_000).map { "client-\($0)" }
    let before = keys.map { State.pick(["a": 90, "b": 10], key: $0, draw: 0)! }
    #expect(keys.map { State.pick(["a": 90, "b": 10], key: $0, draw: 0)! } == before)
    let share = Double(before.filter { $0 == "b" }.count) / Double(keys.count)
    #expect(abs(share - 0.10) < 0.01, "share of b: \(share)")
    let after = keys.map { State.pick(["a": 80, "b": 20], key: $0, draw: 0)! }
    let moved = zip(before, after).filter { $0 != $1 }
    #expect(moved.allSatisfy { $0.0 == "a" && $0.1 == "b" })
    let movedShare = Double(moved.count) / Double(keys.count)
    #expect(abs(movedShare - 0.10) < 0.01, "moved: \(movedShare)")
  }

  @Test(
    "Shadows: a sampled request holds the shadows too; one not sampled says so; a pinned one has none"
  )
  func shadows() throws {
    var state = State()
    try Self.load(&state, "btc", "v1")
    try Self.load(&state, "btc", "v2")
    _ = try state.setSplit(
      modelID: "btc",
      weights: ["v1": 100],
      shadows: ["v2"],
      shadowSamplePercent: 25,
      expectedEtag: nil,
      now: Self.now
    )
    let sampled = try state.acquire(.init(modelID: "btc", shadowDraw: 0.1))
    #expect(sampled.shadows.map(\.version) == ["v2"] && !sampled.sampledOut)
    let skipped = try state.acquire(.init(modelID: "btc", shadowDraw: 0.5))
    #expect(skipped.shadows.isEmpty && skipped.sampledOut)
    let pinned = try state.acquire(.init(modelID: "btc", pinned: "v2", shadowDraw: 0))
    #expect(pinned.shadows.isEmpty && pinned.pinned && pinned.primary.version == "v2")
    #expect(
      Self.code { _ = try state.unload(modelID: "btc", version: "v2", force: false, now: Self.now) }
        == .failedPrecondition
    )
  }

  @Test(
    "Routing errors: nothing loaded, no model id among several, an unknown model or pinned version"
  )
  func routingErrors() throws {
    var state = State()
    #expect(Self.code { _ = try state.acquire(.init(modelID: "")) } == .unavailable)
    try Self.load(&state, "btc", "v1")
    #expect(try state.acquire(.init(modelID: "")).modelID == "btc")
    try Self.load(&state, "eth", "v1")
    #expect(Self.code { _ = try state.acquire(.init(modelID: "")) } == .invalidArgument)
    #expect(Self.code { _ = try state.acquire(.init(modelID: "sol")) } == .notFound)
    #expect(Self.code { _ = try state.acquire(.init(modelID: "btc", pinned: "v7")) } == .notFound)
  }
}
