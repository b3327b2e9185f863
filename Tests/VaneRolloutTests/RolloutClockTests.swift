import Foundation
import Testing
import VaneBundle
import VaneCore
import VaneQuality

@testable import VaneRollout

/// A predictor in memory: versions load at once and count what the test says they answered.
actor FakePredictor: PredictorPort {
  var versions: [String: PredictorVersion] = [:]
  var liveWindows: [(since: Date, clock: RolloutPlan.Clock)] = []
  var settled = 0
  /// While set, changing the split or unloading fails (a predictor that is down).
  var down = false

  func setDown(_ value: Bool) { self.down = value }

  func load(path: String, modelID: String, version: String) async throws {
    if self.versions[version] == nil {
      self.versions[version] = PredictorVersion(
        version: version,
        ready: true,
        bundlePath: path,
        trafficPercent: 0,
        shadow: false
      )
    }
  }

  func versions(modelID: String) async throws -> [PredictorVersion] {
    self.versions.values.sorted { $0.version < $1.version }
  }

  func apply(modelID: String, split: Rollout.Split) async throws {
    if self.down { throw VaneError(.unavailable, "the predictor is down") }
    for name in self.versions.keys {
      self.versions[name]?.trafficPercent = split.weights[name] ?? 0
      self.versions[name]?.shadow = split.shadows.contains(name)
    }
  }

  func unload(modelID: String, version: String) async throws {
    if self.down { throw VaneError(.unavailable, "the predictor is down") }
    self.versions[version] = nil
  }

  func settle() async throws { self.settled += 1 }

  func live(
    modelID: String,
    version: String,
    since: Date,
    by clock: RolloutPlan.Clock,
    compareWith: String?
  ) async throws -> LiveFigures {
    self.liveWindows.append((since, clock))
    return LiveFigures(maturedOutcomes: 100, meanConfidence: 0.6)
  }

  /// The version answered `count` more requests (shadow copies while it is a shadow).
  func answered(_ version: String, _ count: Int) {
    if self.versions[version]?.shadow == true {
      self.versions[version]?.shadowRequests += count
    } else {
      self.versions[version]?.requests += count
    }
  }
}

/// Rollouts on the data clock: the controller's own loop leaves them alone, AdvanceRollout moves
/// them, and every time after creation is the data's.
@Suite("Rollouts on the data clock")
struct RolloutClockTests {
  static let t0 = Date(timeIntervalSince1970: 1_719_792_000)  // 2024-07-01 00:00 UTC
  static func bar(_ n: Int) -> Date { Self.t0.addingTimeInterval(Double(n) * 3600) }

  static func plan(_ clock: RolloutPlan.Clock) -> RolloutPlan {
    let errors = [RolloutPlan.Threshold(.errorRate, .lessOrEqual, 0.0)]
    return RolloutPlan(
      steps: [
        .init(
          kind: .shadow,
          trafficPercent: 100,
          duration: 3 * 3600,
          thresholds: errors + [RolloutPlan.Threshold(.meanConfidence, .greaterOrEqual, 0.5)],
          minRequests: 2
        ),
        .init(kind: .full, trafficPercent: 100, duration: 0, thresholds: errors, minRequests: 1),
      ],
      analysisInterval: 3600,
      patience: 6 * 3600,
      clock: clock
    )
  }

  /// A controller over a fake predictor serving v1, and a rollout of v2 started under `plan`.
  static func started(
    _ plan: RolloutPlan,
    in directory: URL
  ) async throws -> (RolloutController, FakePredictor, String) {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let manifest = BundleManifest(
      id: "b2",
      created: "2024-07-01T00:00:00Z",
      symbols: ["BTCUSDT"],
      interval: "1h",
      task: .init(kind: "binary", classes: ["DOWN", "UP"], horizons: [1]),
      featureSet: .init(id: "v1", sha256: "00", columns: ["a"]),
      models: [.init(name: "m", kind: .logisticRegression, file: "models/m.json", role: .single)],
      outOfFold: .init(file: "reports/oof.json")
    )
    let path = directory.appendingPathComponent("b2.tar.gz").path
    let (_, sha) = try ModelBundle.write(
      manifest,
      files: ["models/m.json": Data("{}".utf8), "reports/oof.json": Data("{}".utf8)],
      to: path
    )
    let predictor = FakePredictor()
    try await predictor.load(path: "/v1", modelID: "btc", version: "v1")
    try await predictor.apply(
      modelID: "btc",
      split: .init(weights: ["v1": 100], shadows: [], shadowPercent: 0)
    )
    let controller = try RolloutController(
      store: try RolloutStore(path: directory.appendingPathComponent("rollouts.sqlite").path),
      predictor: predictor,
      intake: BundleIntake(artifactRoot: directory.appendingPathComponent("artifacts").path)
    )
    let verdict = Verdict(
      manifestSHA256: sha,
      bundleID: "b2",
      reportID: "r",
      policyName: "default",
      policySHA256: "p",
      signTimeNanos: 0,
      publicKeyID: "k",
      algorithm: "ed25519",
      statement: Data(),
      signature: Data()
    )
    let rollout = Rollout(
      id: "ro-1",
      requestID: "",
      bundlePath: path,
      bundleID: "b2",
      manifestSHA256: sha,
      verdict: verdict,
      modelID: "btc",
      version: "v2",
      baselineVersion: "v1",
      baselineBundlePath: "/v1",
      plan: plan,
      now: Date()
    )
    _ = try await controller.start(rollout, bundle: try ModelBundle.open(path: path), actor: "test")
    return (controller, predictor, "ro-1")
  }

  @Test(
    "The loop leaves a data-clocked rollout alone; AdvanceRollout loads it, runs its analyses at the plan's interval of data time and passes its steps by that clock"
  )
  func advanced() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-clock-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let (controller, predictor, id) = try await Self.started(Self.plan(.data), in: directory)
    for _ in 0 ..< 3 { await controller.step() }
    #expect(try await controller.rollout(id: id)?.state == .verifying)

    // The first report loads it and starts the shadow step at that data time.
    var rollout = try await controller.advance(id: id, to: Self.bar(0))
    #expect(
      rollout.state == .shadow && rollout.steps[0].startTime == Self.bar(0)
        && rollout.dataTime == Self.bar(0)
    )
    #expect(
      rollout.history.filter { $0.kind != .created && $0.kind != .verified }.allSatisfy {
        $0.time == Self.bar(0)
      }
    )
    await #expect(throws: VaneError.self) {
      try await controller.advance(id: id, to: Self.bar(0).addingTimeInterval(-1))
    }

    // Bars arrive; each advance is one analysis at most (interval: one bar). The step passes
    // once three bars of data time have gone by with passing analyses, not before.
    for n in 1 ... 4 {
      await predictor.answered("v2", 1)
      rollout = try await controller.advance(id: id, to: Self.bar(n))
      if n < 3 { #expect(rollout.state == .shadow, "bar \(n)") }
    }
    #expect(
      rollout.steps[0].state == .passed && rollout.state == .full,
      "\(rollout.history.map { "\($0.kind) \($0.reason)" })"
    )
    // Bar 1 opens the analysis window, bar 2 has one request of the two asked (inconclusive),
    // bar 3 has both and the step's three hours are up.
    #expect(rollout.steps[0].finishTime == Self.bar(3) && rollout.steps[1].startTime == Self.bar(3))
    // The analysis read the log by bar time, from where its window opened.
    let windows = await predictor.liveWindows
    #expect(!windows.isEmpty && windows.allSatisfy { $0.clock == .data && $0.since >= Self.bar(0) })
    // Every analysis (bars 1 to 4) read a settled predictor.
    #expect(await predictor.settled == 4)

    // FULL passes on the next advance with a request; the loop never moved it meanwhile.
    await predictor.answered("v2", 1)
    for _ in 0 ..< 3 { await controller.step() }
    #expect(try await controller.rollout(id: id)?.state == .full)
    rollout = try await controller.advance(id: id, to: Self.bar(5))
    #expect(rollout.state == .promoted && rollout.finishTime == Self.bar(5), "\(rollout.state)")
    let left = await predictor.versions
    #expect(left["v1"] == nil && left["v2"]?.trafficPercent == 100, "\(left)")
    // A terminal rollout is returned as it is.
    #expect(try await controller.advance(id: id, to: Self.bar(9)) == rollout)
    await #expect(throws: VaneError.self) {
      try await controller.advance(id: "ro-none", to: Self.bar(9))
    }
  }

  @Test(
    "A rollback of a data-clocked rollout whose actions failed is finished by the loop, not left for an advance that may never come"
  )
  func rollbackRetried() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-clock-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let (controller, predictor, id) = try await Self.started(Self.plan(.data), in: directory)
    _ = try await controller.advance(id: id, to: Self.bar(0))
    await predictor.setDown(true)
    let stuck = try await controller.rollback(id: id, reason: "the replay ended", actor: "test")
    #expect(stuck.state == .rollingBack)
    await controller.step()
    #expect(try await controller.rollout(id: id)?.state == .rollingBack)
    await predictor.setDown(false)
    await controller.step()
    let finished = try #require(try await controller.rollout(id: id))
    #expect(finished.state == .rolledBack && finished.finishTime == Self.bar(0))
    let left = await predictor.versions
    #expect(left["v2"] == nil && left["v1"]?.trafficPercent == 100, "\(left)")
  }

  @Test(
    "The controller's isolated code, its SQLite saves included, runs on its own thread, never on the cooperative pool"
  )
  func ownThread() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-clock-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let (controller, _, id) = try await Self.started(Self.plan(.data), in: directory)
    #expect(!RolloutController.executor.isCurrent)
    #expect(await controller.isOnItsThread)
    // A save through a command, then a read of what it stored.
    _ = try await controller.advance(id: id, to: Self.bar(0))
    #expect(try controller.store.rollout(id: id)?.dataTime == Self.bar(0))
  }

  @Test("A wall-clocked rollout refuses AdvanceRollout, naming its clock")
  func wallRefuses() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-clock-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let (controller, _, id) = try await Self.started(Self.plan(.wall), in: directory)
    do {
      _ = try await controller.advance(id: id, to: Self.bar(0))
      Issue.record("advanced a wall-clocked rollout")
    } catch let error as VaneError {
      #expect(error.code == .failedPrecondition && error.message.contains("wall clock"), "\(error)")
    }
  }

  @Test(
    "Plans: clock: data reads from YAML and survives the store; a stored plan from before clocks reads as wall; a bad clock names the key"
  )
  func plans() throws {
    let yaml = "steps:\n  - kind: full\nanalysis_interval: 4h\nclock: data\n"
    let plan = try RolloutPlan.parse(yaml, source: "plan.yaml")
    #expect(plan.clock == .data && plan.analysisInterval == 4 * 3600)
    #expect(
      try JSONDecoder().decode(RolloutPlan.self, from: try JSONEncoder().encode(plan)) == plan
    )
    var object = try #require(
      try JSONSerialization.jsonObject(with: try JSONEncoder().encode(plan)) as? [String: Any]
    )
    object["clock"] = nil
    #expect(
      try JSONDecoder().decode(
        RolloutPlan.self,
        from: try JSONSerialization.data(withJSONObject: object)
      ).clock == .wall
    )
    #expect(throws: VaneError.self) { try RolloutPlan.parse("clock: bars\n", source: "plan.yaml") }
    do {
      _ = try RolloutPlan.parse("clock: bars\n", source: "plan.yaml")
    } catch let error as VaneError {
      #expect(error.message.contains("clock") && error.message.contains("wall, data"), "\(error)")
    }
  }
}
