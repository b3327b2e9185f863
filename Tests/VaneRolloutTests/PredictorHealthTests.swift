import Foundation
import Testing

@testable import VaneRollout

/// What deploy makes of the predictor's health stream, without I/O.
@Suite("Predictor health")
struct PredictorHealthTests {
  static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

  struct Case: CustomTestStringConvertible, Sendable {
    let name: String
    let observations: [PredictorHealth.Observation]
    /// The action of each observation.
    let actions: [PredictorHealth.Action]
    let status: PredictorHealth.Status
    let recoveries: Int
    var testDescription: String { self.name }
  }

  /// Observation i happens at t0 + i seconds.
  static func at(_ i: Int) -> Date { Self.t0.addingTimeInterval(Double(i)) }

  static let cases: [Case] = [
    Case(
      name: "first SERVING reconciles (what happened before deploy started is unknown)",
      observations: [.serving],
      actions: [.reconcile],
      status: .serving,
      recoveries: 0
    ),
    Case(
      name: "SERVING again changes nothing",
      observations: [.serving, .serving, .serving],
      actions: [.reconcile, .none, .none],
      status: .serving,
      recoveries: 0
    ),
    Case(
      name: "a kill: the stream breaks (down from then), the restart says SERVING (reconcile)",
      observations: [.serving, .streamEnded, .serving],
      actions: [.reconcile, .wentDown(since: at(1)), .reconcile],
      status: .serving,
      recoveries: 1
    ),
    Case(
      name: "an outage keeps its start while the stream keeps failing",
      observations: [.serving, .streamEnded, .streamEnded, .notServing, .streamEnded],
      actions: [.reconcile, .wentDown(since: at(1)), .none, .none, .none],
      status: .unreachable,
      recoveries: 0
    ),
    Case(
      name: "a drain (NOT_SERVING) then the stream ends then the restart",
      observations: [.serving, .notServing, .streamEnded, .serving],
      actions: [.reconcile, .wentDown(since: at(1)), .none, .reconcile],
      status: .serving,
      recoveries: 1
    ),
    Case(
      name: "deploy starts while the predictor is down",
      observations: [.streamEnded, .serving],
      actions: [.wentDown(since: at(0)), .reconcile],
      status: .serving,
      recoveries: 1
    ),
    Case(
      name: "two restarts count two recoveries",
      observations: [.serving, .streamEnded, .serving, .notServing, .serving],
      actions: [
        .reconcile, .wentDown(since: at(1)), .reconcile, .wentDown(since: at(3)), .reconcile,
      ],
      status: .serving,
      recoveries: 2
    ),
  ]

  @Test("Observations, the action each asks for, and the status after", arguments: Self.cases)
  func transitions(_ c: Case) {
    var health = PredictorHealth()
    #expect(health.status == .unknown)
    var actions: [PredictorHealth.Action] = []
    for (i, observation) in c.observations.enumerated() {
      actions.append(health.observe(observation, now: Self.at(i)))
    }
    #expect(actions == c.actions)
    #expect(health.status == c.status)
    #expect(health.recoveries == c.recoveries)
    #expect((health.downSince == nil) == (c.status == .serving))
  }
}
