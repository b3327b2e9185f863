public import Foundation

/// What deploy asks of the predictor: gRPC calls in the service, a fake in tests.
public protocol PredictorPort: Sendable {
  /// Loads a bundle as a version and waits until it is READY (a version already loaded and
  /// READY counts as loaded).
  func load(path: String, modelID: String, version: String) async throws
  /// The model's loaded versions with their counters.
  func versions(modelID: String) async throws -> [PredictorVersion]
  /// Makes the model's split this (idempotent).
  func apply(modelID: String, split: Rollout.Split) async throws
  /// Unloads a version (one not loaded counts as unloaded).
  func unload(modelID: String, version: String) async throws
  /// Live figures of a version from answers since `since` (paired with `compareWith`'s): answers
  /// made since then by the wall clock, or for bars opened since then by the data clock.
  func live(
    modelID: String,
    version: String,
    since: Date,
    by clock: RolloutPlan.Clock,
    compareWith: String?
  ) async throws -> LiveFigures
  /// Finishes the predictor's queued work (shadow copies scored, answers logged, outcomes due
  /// joined), so an analysis on the data clock reads the same counters and log every run.
  func settle() async throws
}

/// One loaded version as the predictor lists it.
public struct PredictorVersion: Sendable, Equatable {
  public var version: String
  public var ready: Bool
  public var bundlePath: String
  public var trafficPercent: Double
  public var shadow: Bool
  /// Cumulative since load.
  public var requests: Int
  public var errors: Int
  public var shadowRequests: Int
  public var shadowErrors: Int
  public var latencyP50Ms: Double?
  public var latencyP99Ms: Double?

  public init(
    version: String,
    ready: Bool,
    bundlePath: String = "",
    trafficPercent: Double,
    shadow: Bool,
    requests: Int = 0,
    errors: Int = 0,
    shadowRequests: Int = 0,
    shadowErrors: Int = 0,
    latencyP50Ms: Double? = nil,
    latencyP99Ms: Double? = nil
  ) {
    self.version = version
    self.ready = ready
    self.bundlePath = bundlePath
    self.trafficPercent = trafficPercent
    self.shadow = shadow
    self.requests = requests
    self.errors = errors
    self.shadowRequests = shadowRequests
    self.shadowErrors = shadowErrors
    self.latencyP50Ms = latencyP50Ms
    self.latencyP99Ms = latencyP99Ms
  }
}

/// A version's live-outcome figures since a time.
public struct LiveFigures: Sendable, Equatable {
  public var maturedOutcomes: Int
  public var auc: Double?
  public var logLoss: Double?
  public var brier: Double?
  public var scorePSI: Double?
  public var meanConfidence: Double?
  public var pairs: AnalysisSample.Pairs?

  public init(
    maturedOutcomes: Int = 0,
    auc: Double? = nil,
    logLoss: Double? = nil,
    brier: Double? = nil,
    scorePSI: Double? = nil,
    meanConfidence: Double? = nil,
    pairs: AnalysisSample.Pairs? = nil
  ) {
    self.maturedOutcomes = maturedOutcomes
    self.auc = auc
    self.logLoss = logLoss
    self.brier = brier
    self.scorePSI = scorePSI
    self.meanConfidence = meanConfidence
    self.pairs = pairs
  }
}
