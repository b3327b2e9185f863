internal import Foundation
public import GRPCCore
internal import SwiftProtobuf
internal import VaneCore
public import VaneProto
internal import VaneRuntime
internal import VaneServing

extension PredictorServiceImplementation {
  /// Default trailing window of GetModelStats.
  static let defaultStatsWindow = Duration.seconds(30 * 86_400)

  public func getModelStats(
    request: Vane_V1_GetModelStatsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_GetModelStatsResponse {
    try await serviceEdge {
      guard !request.model.modelID.isEmpty else {
        throw VaneError.invalidArgument(field: "model.model_id", "is required")
      }
      guard let log = self.registry.log else {
        throw VaneError(
          .failedPrecondition,
          "this predictor runs without a prediction log, so it has no live statistics"
        )
      }
      var window = Self.defaultStatsWindow
      if request.hasWindow {
        window = .seconds(request.window.seconds) + .nanoseconds(Int64(request.window.nanos))
        guard window > .zero else {
          throw VaneError.invalidArgument(field: "window", "must be positive")
        }
      }
      let since = request.hasSince ? try request.since.unixMilliseconds(field: "since") : nil
      let sinceBar =
        request.hasSinceBar ? try request.sinceBar.unixMilliseconds(field: "since_bar") : nil
      let modelID = request.model.modelID, version = request.model.version
      var versions = Set(log.versions(modelID: modelID).map(\.version))
      versions.formUnion(
        self.registry.list().filter { $0.info.modelID == modelID }.map(\.info.version)
      )
      if !version.isEmpty {
        guard versions.contains(version) else {
          throw VaneError(.notFound, "model \(modelID) has no version \(version) loaded or logged")
        }
        versions = [version]
      }
      guard !versions.isEmpty else {
        throw VaneError(.notFound, "no model \(modelID) is loaded or logged")
      }
      let labels = versions.sorted(), span = window, baseline = request.compareWith
      let stats = try await BlockingPool.shared.run {
        try labels.compactMap { label -> Vane_V1_VersionStats? in
          // A version still loading has not registered with the log yet.
          guard log.version(modelID: modelID, version: label) != nil else { return nil }
          var stats = Vane_V1_VersionStats(
            try log.statistics(
              modelID: modelID,
              version: label,
              window: span,
              since: since,
              sinceBar: sinceBar
            )
          )
          if !baseline.isEmpty, baseline != label {
            let pairs = try log.pairs(
              modelID: modelID,
              version: label,
              baseline: baseline,
              since: since,
              sinceBar: sinceBar
            )
            stats.paired = .with {
              $0.baselineVersion = pairs.baseline
              $0.count = Int64(pairs.count)
              $0.disagreementRate = pairs.disagreementRate
              $0.meanAbsProbDiff = pairs.meanAbsProbDiff
            }
          }
          return stats
        }
      }
      return .with {
        $0.versions = stats
        $0.computeTime = Google_Protobuf_Timestamp(date: Date())
      }
    }
  }

  public func settle(
    request: Vane_V1_SettleRequest,
    context: ServerContext
  ) async throws -> Vane_V1_SettleResponse {
    try await serviceEdge {
      guard let log = self.registry.log else {
        throw VaneError(
          .failedPrecondition,
          "this predictor runs without a prediction log: there is nothing to settle"
        )
      }
      let scored = try await self.registry.settleShadows()
      let written = try await BlockingPool.shared.run { try log.flush() }
      let matured = try await self.outcomeJoiner?.joinOnce() ?? 0
      return .with {
        $0.shadowsScored = UInt64(scored)
        $0.answersWritten = UInt64(written)
        $0.matured = UInt64(matured)
      }
    }
  }
}
