public import Foundation

/// What deploy knows of the predictor from its health stream (grpc.health.v1 Watch), and what
/// each change asks of ``RolloutController``. Pure: the stream is followed elsewhere.
///
/// The analysis loop finds a restarted predictor on its own (ListModels lacks the versions), but
/// only at the plan's analysis interval. Health tells at once: the stream breaks when the
/// predictor dies and reports SERVING when it is back, and that is when its versions are
/// reloaded and the split re-applied.
public struct PredictorHealth: Sendable, Equatable {
  public enum Status: String, Sendable, Equatable {
    /// Nothing heard yet.
    case unknown
    case serving
    /// The predictor answered NOT_SERVING (draining, shutting down).
    case notServing = "not_serving"
    /// The stream failed or ended: the predictor is gone or unreachable.
    case unreachable
  }

  /// What the health stream said.
  public enum Observation: Sendable, Equatable {
    case serving
    case notServing
    case streamEnded
  }

  /// What the controller does after an observation.
  public enum Action: Sendable, Equatable {
    case none
    /// The predictor went down: the active rollouts' outage starts now (the step's patience
    /// counts from here).
    case wentDown(since: Date)
    /// The predictor is (back) up: look at every active rollout now, reload what it lacks
    /// and re-apply the split.
    case reconcile
  }

  public private(set) var status: Status = .unknown
  /// When the current outage began; nil while serving.
  public private(set) var downSince: Date?
  /// How many times the predictor came back after being down.
  public private(set) var recoveries = 0

  public init() {}

  public mutating func observe(_ observation: Observation, now: Date) -> Action {
    switch (self.status, observation) {
    case (.serving, .serving):
      return .none
    case (.unknown, .serving):
      // First contact (deploy just started): whatever happened before is not known.
      self.status = .serving
      return .reconcile
    case (.notServing, .serving), (.unreachable, .serving):
      self.status = .serving
      self.downSince = nil
      self.recoveries += 1
      return .reconcile
    case (_, .notServing), (_, .streamEnded):
      let next: Status = observation == .notServing ? .notServing : .unreachable
      let wasDown = self.status == .notServing || self.status == .unreachable
      self.status = next
      if wasDown { return .none }
      let since = now
      self.downSince = since
      return .wentDown(since: since)
    }
  }
}
