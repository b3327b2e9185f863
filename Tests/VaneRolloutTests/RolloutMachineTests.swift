import Foundation
import Testing
import VaneCore
import VaneBundle

@testable import VaneRollout

/// The rollout state machine without I/O: transitions, the splits they ask for, refusals.
@Suite("Rollout state machine")
struct RolloutMachineTests {
  static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
  static let verdict = Verdict(
    manifestSHA256: String(repeating: "a", count: 64),
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

  static func plan(
    manual: Bool = false,
    noRollback: Bool = false,
    thresholds: [RolloutPlan.Threshold] = [
      RolloutPlan.Threshold(.errorRate, .lessOrEqual, 0.05, failureLimit: 2)
    ]
  ) -> RolloutPlan {
    RolloutPlan(
      steps: [
        .init(
          kind: .shadow,
          trafficPercent: 100,
          duration: 60,
          thresholds: thresholds,
          minRequests: 10
        ),
        .init(
          kind: .canary,
          trafficPercent: 20,
          duration: 60,
          thresholds: thresholds,
          minRequests: 10
        ),
        .init(
          kind: .full,
          trafficPercent: 100,
          duration: 0,
          thresholds: thresholds,
          minRequests: 10
        ),
      ],
      manualPromotion: manual,
      disableAutoRollback: noRollback,
      analysisInterval: 5
    )
  }

  static func machine(
    baseline: String? = "v1",
    plan: RolloutPlan = Self.plan()
  ) throws -> RolloutMachine {
    var machine = RolloutMachine(
      Rollout(
        id: "r1",
        requestID: "",
        bundlePath: "/b",
        bundleID: "b2",
        manifestSHA256: Self.verdict.manifestSHA256,
        verdict: Self.verdict,
        modelID: "btc",
        version: "v2",
        baselineVersion: baseline,
        plan: plan,
        now: Self.t0
      )
    )
    machine.created(now: Self.t0, actor: "admin")
    machine.verified(now: Self.t0)
    return machine
  }

  static let good = AnalysisSample(
    candidate: .init(requests: 50, errors: 0),
    baseline: .init(requests: 50, errors: 0)
  )
  static let bad = AnalysisSample(
    candidate: .init(requests: 50, errors: 25),
    baseline: .init(requests: 50, errors: 0)
  )
  static let empty = AnalysisSample(
    candidate: .init(requests: 0, errors: 0),
    baseline: .init(requests: 0, errors: 0)
  )

  static func at(_ seconds: Double) -> Date { Self.t0.addingTimeInterval(seconds) }

  @Test(
    "A clean rollout: shadow, canary 20 %, full, promoted; each step asks for its split and the baseline is unloaded last"
  )
  func promoted() throws {
    var m = try Self.machine()
    #expect(
      try m.loaded(now: Self.at(1)) == [
        .applySplit(.init(weights: ["v1": 100], shadows: ["v2"], shadowPercent: 100))
      ]
    )
    #expect(m.rollout.state == .shadow && m.rollout.currentStep == 0)
    // Passing analyses do not end a step before its duration.
    #expect(m.analyzed(Self.good, requestsInStep: 50, now: Self.at(30)) == [])
    #expect(
      m.analyzed(Self.good, requestsInStep: 50, now: Self.at(61)) == [
        .applySplit(.init(weights: ["v1": 80, "v2": 20], shadows: [], shadowPercent: 100))
      ]
    )
    #expect(m.rollout.state == .canary && m.rollout.trafficPercent == 20)
    #expect(
      m.analyzed(Self.good, requestsInStep: 50, now: Self.at(122)) == [
        .applySplit(.init(weights: ["v2": 100], shadows: [], shadowPercent: 100))
      ]
    )
    #expect(m.rollout.state == .full)
    #expect(
      m.analyzed(Self.good, requestsInStep: 50, now: Self.at(123)) == [.unload(version: "v1")]
    )
    #expect(
      m.rollout.state == .promoted && m.rollout.finishTime != nil && m.rollout.currentStep == -1
    )
    #expect(m.rollout.steps.map(\.state) == [.passed, .passed, .passed])
    let kinds = m.rollout.history.map(\.kind)
    #expect(
      kinds.first == .created && kinds.last == .promoted
        && kinds.filter { $0 == .stepStarted }.count == 3
    )
    #expect(m.rollout.history.map(\.sequence) == Array(1 ... m.rollout.history.count))
  }

  @Test(
    "Failing analyses: below the failure limit the step holds; at it the rollout rolls back to the baseline's full weight, then unloads"
  )
  func rolledBack() throws {
    var m = try Self.machine()
    _ = try m.loaded(now: Self.at(1))
    #expect(m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(10)) == [])
    #expect(m.rollout.steps[0].consecutiveFailures == [1])
    // A pass in between resets the count.
    _ = m.analyzed(Self.good, requestsInStep: 50, now: Self.at(15))
    #expect(m.rollout.steps[0].consecutiveFailures == [0])
    _ = m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(20))
    let actions = m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(25))
    #expect(
      actions == [
        .applySplit(.init(weights: ["v1": 100], shadows: [], shadowPercent: 100)),
        .unload(version: "v2"),
      ]
    )
    #expect(
      m.rollout.state == .rollingBack && m.rollout.failureReason?.contains("error_rate") == true
    )
    m.rolledBack(now: Self.at(26))
    #expect(m.rollout.state == .rolledBack && m.rollout.steps[0].state == .failed)
    #expect(throws: VaneError.self) {
      _ = try m.rollback(reason: "", actor: "admin", now: Self.at(30))
    }
  }

  @Test(
    "Too few requests or unmeasurable metrics are INCONCLUSIVE: the step holds however long it runs"
  )
  func inconclusiveHolds() throws {
    var m = try Self.machine()
    _ = try m.loaded(now: Self.at(1))
    for t in stride(from: 10.0, through: 3_600, by: 10) {
      #expect(m.analyzed(Self.empty, requestsInStep: 3, now: Self.at(t)) == [])
    }
    #expect(m.rollout.state == .shadow)
    #expect(m.rollout.analysis.allSatisfy { $0.inconclusive && !$0.passed })
    // Enough requests but nothing measurable (no paired answers) still holds.
    var pairs = try Self.machine(
      plan: Self.plan(thresholds: [.init(.disagreementRate, .lessOrEqual, 0.2)])
    )
    _ = try pairs.loaded(now: Self.at(1))
    #expect(pairs.analyzed(Self.good, requestsInStep: 50, now: Self.at(100)) == [])
    #expect(pairs.rollout.state == .shadow && pairs.rollout.analysis[0].inconclusive)
  }

  @Test("min_matured_outcomes: a passing step waits for that many joined outcomes")
  func waitsForOutcomes() throws {
    var plan = Self.plan(thresholds: [.init(.liveAUC, .greaterOrEqual, 0.5)])
    plan.steps[0].minMaturedOutcomes = 30
    var m = try Self.machine(plan: plan)
    _ = try m.loaded(now: Self.at(1))
    var sample = Self.good
    sample.candidate.liveAUC = 0.6
    sample.candidate.maturedOutcomes = 10
    #expect(m.analyzed(sample, requestsInStep: 50, now: Self.at(100)) == [])
    #expect(m.rollout.analysis[0].inconclusive)
    sample.candidate.maturedOutcomes = 30
    #expect(m.analyzed(sample, requestsInStep: 50, now: Self.at(110)) != [])
    #expect(m.rollout.state == .canary)
  }

  @Test(
    "Pause freezes traffic and the step timer; resume continues it; pausing twice changes nothing"
  )
  func pauseResume() throws {
    var m = try Self.machine()
    _ = try m.loaded(now: Self.at(0))
    try m.pause(reason: "", actor: "admin@x", now: Self.at(40))
    let sequence = m.rollout.lastSequence
    try m.pause(reason: "", actor: "admin@x", now: Self.at(41))
    #expect(m.rollout.lastSequence == sequence && m.rollout.state == .paused)
    // Analyses while paused are recorded, never acted on.
    #expect(m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(50)) == [])
    #expect(m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(55)) == [])
    #expect(m.rollout.state == .paused)
    #expect(try m.resume(reason: "", actor: "admin@x", now: Self.at(500)) == [])
    #expect(m.rollout.state == .shadow)
    // 40 s ran before the pause: 20 more are needed, not 60.
    #expect(m.analyzed(Self.good, requestsInStep: 50, now: Self.at(510)) == [])
    #expect(m.analyzed(Self.good, requestsInStep: 50, now: Self.at(521)) != [])
    #expect(m.rollout.state == .canary)
    #expect(throws: VaneError.self) { _ = try m.resume(reason: "", actor: "a", now: Self.at(530)) }
  }

  @Test(
    "Manual promotion holds before FULL until Promote; Promote skip_to_full skips the remaining steps"
  )
  func manualPromotion() throws {
    var m = try Self.machine(plan: Self.plan(manual: true))
    _ = try m.loaded(now: Self.at(0))
    _ = m.analyzed(Self.good, requestsInStep: 50, now: Self.at(61))
    #expect(m.analyzed(Self.good, requestsInStep: 50, now: Self.at(122)) == [])
    #expect(
      m.rollout.state == .paused && m.rollout.holdingForPromotion && m.rollout.trafficPercent == 20
    )
    #expect(
      try m.promote(skipToFull: false, reason: "", actor: "admin", now: Self.at(200)) == [
        .applySplit(.init(weights: ["v2": 100], shadows: [], shadowPercent: 100))
      ]
    )
    #expect(m.rollout.state == .full)

    var skip = try Self.machine()
    _ = try skip.loaded(now: Self.at(0))
    #expect(
      try skip.promote(skipToFull: true, reason: "", actor: "admin", now: Self.at(5)) == [
        .applySplit(.init(weights: ["v2": 100], shadows: [], shadowPercent: 100))
      ]
    )
    #expect(skip.rollout.steps.map(\.state) == [.skipped, .skipped, .running])
  }

  @Test(
    "A model's first version skips shadow and canary and goes straight to FULL; its rollback just unloads it"
  )
  func firstVersion() throws {
    var m = try Self.machine(baseline: nil)
    #expect(
      try m.loaded(now: Self.at(0)) == [
        .applySplit(.init(weights: ["v2": 100], shadows: [], shadowPercent: 100))
      ]
    )
    #expect(
      m.rollout.state == .full && m.rollout.steps.map(\.state) == [.skipped, .skipped, .running]
    )
    // Relative checks have nothing to compare with: moot, not failed.
    var plan = Self.plan(thresholds: [
      .init(.errorRate, .lessOrEqual, 0.01, reference: .baselineDelta)
    ])
    plan.steps[2].minRequests = 1
    var relative = try Self.machine(baseline: nil, plan: plan)
    _ = try relative.loaded(now: Self.at(0))
    #expect(
      relative.analyzed(
        .init(candidate: .init(requests: 5, errors: 0)),
        requestsInStep: 5,
        now: Self.at(1)
      ) == []
    )
    #expect(relative.rollout.state == .promoted)
    var back = try Self.machine(baseline: nil)
    _ = try back.loaded(now: Self.at(0))
    #expect(
      try back.rollback(reason: "", actor: "admin", now: Self.at(1)) == [.unload(version: "v2")]
    )
  }

  @Test("A rollback before any traffic moved ends ABORTED, unloading what may have loaded")
  func aborted() throws {
    var m = try Self.machine()
    #expect(try m.rollback(reason: "", actor: "admin", now: Self.at(1)) == [.unload(version: "v2")])
    #expect(
      m.rollout.state == .aborted && m.rollout.state.isTerminal
        && m.rollout.history.last?.kind == .aborted
    )
    #expect(throws: VaneError.self) { _ = try m.loaded(now: Self.at(2)) }
  }

  @Test("With auto-rollback disabled a failed step pauses; resume reruns the step")
  func noAutoRollback() throws {
    var m = try Self.machine(plan: Self.plan(noRollback: true))
    _ = try m.loaded(now: Self.at(0))
    _ = m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(10))
    #expect(m.analyzed(Self.bad, requestsInStep: 50, now: Self.at(20)) == [])
    #expect(m.rollout.state == .paused && m.rollout.steps[0].state == .failed)
    #expect(try m.resume(reason: "", actor: "a", now: Self.at(30)) == [])
    #expect(m.rollout.state == .shadow && m.rollout.steps[0].state == .running)
  }

  @Test("The predictor unreachable past the plan's patience fails the step and rolls back")
  func unreachable() throws {
    var m = try Self.machine()
    _ = try m.loaded(now: Self.at(0))
    #expect(m.predictorUnreachable(for: 60, now: Self.at(60)) == [])
    #expect(m.predictorUnreachable(for: 121, now: Self.at(121)) != [])
    #expect(m.rollout.state == .rollingBack)
  }

  @Test(
    "Refusals: commands in states that do not allow them are FAILED_PRECONDITION",
    arguments: [
      "promote-verifying", "loaded-twice", "pause-terminal", "resume-running",
    ]
  )
  func refusals(_ name: String) throws {
    var m = try Self.machine()
    switch name {
    case "promote-verifying":
      #expect(throws: VaneError.self) {
        _ = try m.promote(skipToFull: false, reason: "", actor: "a", now: Self.at(0))
      }
    case "loaded-twice":
      _ = try m.loaded(now: Self.at(0))
      #expect(throws: VaneError.self) { _ = try m.loaded(now: Self.at(1)) }
    case "pause-terminal":
      m.failed(reason: "load failed", now: Self.at(0))
      #expect(m.rollout.state == .failed)
      #expect(throws: VaneError.self) { try m.pause(reason: "", actor: "a", now: Self.at(1)) }
    default:
      _ = try m.loaded(now: Self.at(0))
      #expect(throws: VaneError.self) { _ = try m.resume(reason: "", actor: "a", now: Self.at(1)) }
    }
  }

  @Test(
    "Plans: the default validates; bad ones name the field",
    arguments: [
      ("empty", "plan.steps"), ("not-full-last", "plan.steps"),
      ("canary-100", "plan.steps[0].traffic_percent"),
      ("pairs-in-canary", "plan.steps[0].thresholds[0].metric"),
    ]
  )
  func plans(_ name: String, _ field: String) throws {
    try RolloutPlan.default.validate()
    var plan = Self.plan()
    switch name {
    case "empty": plan.steps = []
    case "not-full-last": plan.steps.removeLast()
    case "canary-100": plan.steps[0] = .init(kind: .canary, trafficPercent: 100, duration: 1)
    default:
      plan.steps[0] = .init(
        kind: .canary,
        trafficPercent: 10,
        duration: 1,
        thresholds: [.init(.disagreementRate, .lessOrEqual, 0.1)]
      )
    }
    let error = #expect(throws: VaneError.self) { try plan.validate() }
    #expect(error?.message.contains(field) == true, "\(error?.message ?? "")")
  }

  @Test(
    "The store keeps a rollout whole: write then read is the identity; active lists what is not terminal"
  )
  func store() throws {
    let store = try RolloutStore(path: ":memory:")
    var m = try Self.machine()
    _ = try m.loaded(now: Self.at(0))
    _ = m.analyzed(Self.good, requestsInStep: 50, now: Self.at(10))
    try store.save(m.rollout)
    #expect(try store.rollout(id: "r1") == m.rollout)
    #expect(try store.active().map(\.id) == ["r1"])
    m.failed(reason: "x", now: Self.at(11))
    try store.save(m.rollout)
    #expect(try store.active().isEmpty)
    #expect(try store.rollouts(states: [.failed]).count == 1)
  }
}

/// Rollout plans written as YAML.
@Suite("Rollout plan YAML")
struct RolloutPlanYAMLTests {
  @Test(
    "A plan document reads into the plan it says; durations take units; steps may be left to the default"
  )
  func reads() throws {
    let plan = try RolloutPlan.parse(
      """
      steps:
        - kind: shadow
          duration: 90s
          min_requests: 50
          thresholds:
            - {metric: disagreement_rate, op: "<=", threshold: 0.2, failure_limit: 3}
        - kind: canary
          traffic_percent: 25
          duration: 10m
          min_matured_outcomes: 40
          thresholds:
            - {metric: live_auc, op: ">=", threshold: -0.02, reference: baseline_delta}
        - kind: full
      manual_promotion: true
      analysis_interval: 500ms
      patience: 2m
      """,
      source: "plan.yaml"
    )
    #expect(plan.steps.map(\.kind) == [.shadow, .canary, .full])
    #expect(
      plan.steps[0].duration == 90 && plan.steps[0].minRequests == 50
        && plan.steps[0].trafficPercent == 100
    )
    #expect(
      plan.steps[1].duration == 600 && plan.steps[1].trafficPercent == 25
        && plan.steps[1].minMaturedOutcomes == 40
    )
    #expect(
      plan.steps[1].thresholds == [
        .init(.liveAUC, .greaterOrEqual, -0.02, reference: .baselineDelta)
      ]
    )
    #expect(plan.steps[0].thresholds[0].failureLimit == 3)
    #expect(plan.manualPromotion && plan.analysisInterval == 0.5 && plan.patience == 120)
    #expect(
      try RolloutPlan.parse("manual_promotion: false\n", source: "p").steps
        == RolloutPlan.default.steps
    )
  }

  @Test(
    "Bad plans name the line, column and key",
    arguments: [
      ("steps:\n  - kind: sideways\n", "2:11: steps[0].kind"),
      ("steps:\n  - kind: full\n    colour: red\n", "3:5: steps[0].colour"),
      (
        "steps:\n  - kind: shadow\n    thresholds:\n      - {metric: vibes, op: '<', threshold: 1}\n",
        "steps[0].thresholds[0].metric"
      ),
      ("steps:\n  - kind: canary\n    duration: soon\n  - kind: full\n", "steps[0].duration"),
      ("steps:\n  - kind: canary\n", "the last step must be FULL"),
      ("steps: [\n", "not YAML"),
      ("steps:\n  - kind: full\n    min_requests: 0\n", "3:19: steps[0].min_requests"),
    ]
  )
  func refuses(_ text: String, _ expected: String) {
    let error = #expect(throws: VaneError.self) { try RolloutPlan.parse(text, source: "plan.yaml") }
    #expect(
      error?.code == .invalidArgument && error?.message.contains(expected) == true,
      "\(error?.message ?? "")"
    )
  }
}
