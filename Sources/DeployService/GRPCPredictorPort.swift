internal import Foundation
internal import GRPCCore
internal import SwiftProtobuf
internal import VaneCore
internal import VaneProto
internal import VaneRollout
internal import VaneRuntime
internal import GRPCShimTransport

/// Deploy's calls to the predictor over gRPC: one long-lived client, a deadline per call, the
/// admin token on admin calls when the stack has one.
struct GRPCPredictorPort: PredictorPort {
  let client: UpstreamClient
  let deadline: Duration
  /// Sent on LoadModel, SetTrafficSplit and UnloadModel.
  let adminMetadata: Metadata

  private func predictor<R: Sendable>(
    deadline: Duration? = nil,
    _ body: (Vane_V1_PredictorService.Client<ShimClientTransport>) async throws -> R
  ) async throws -> R {
    try await self.client.call(deadline: deadline ?? self.deadline) { grpc in
      try await body(Vane_V1_PredictorService.Client(wrapping: grpc))
    }
  }

  func load(path: String, modelID: String, version: String) async throws {
    do {
      // A load waits for the bundle to be read and warmed.
      _ = try await self.predictor(deadline: max(self.deadline, .seconds(120))) { client in
        try await client.loadModel(
          .with {
            $0.bundlePath = path
            $0.modelID = modelID
            $0.version = version
            $0.wait = true
          },
          metadata: self.adminMetadata
        )
      }
    } catch let error as VaneError where error.code == .alreadyExists {
      // Loaded before (a restart of deploy): fine when it serves the same bundle and is READY.
      let listed = try await self.versions(modelID: modelID).first { $0.version == version }
      guard let listed, listed.ready, listed.bundlePath == path else { throw error }
    }
  }

  func versions(modelID: String) async throws -> [PredictorVersion] {
    let response = try await self.predictor { client in
      try await client.listModels(.with { $0.modelID = modelID })
    }
    return response.versions.map { version in
      func ms(_ duration: Google_Protobuf_Duration) -> Double? {
        duration.seconds == 0 && duration.nanos == 0
          ? nil : Double(duration.seconds) * 1000 + Double(duration.nanos) / 1e6
      }
      return PredictorVersion(
        version: version.ref.version,
        ready: version.status == .ready,
        bundlePath: version.bundle.path,
        trafficPercent: version.trafficPercent,
        shadow: version.shadow,
        requests: Int(version.counters.requests),
        errors: Int(version.counters.errors),
        shadowRequests: Int(version.counters.shadowRequests),
        shadowErrors: Int(version.counters.shadowErrors),
        latencyP50Ms: ms(version.counters.latencyP50),
        latencyP99Ms: ms(version.counters.latencyP99)
      )
    }
  }

  func apply(modelID: String, split: Rollout.Split) async throws {
    _ = try await self.predictor { client in
      try await client.setTrafficSplit(
        .with {
          $0.modelID = modelID
          $0.weights = split.weights
          $0.shadowVersions = split.shadows
          $0.shadowSamplePercent = split.shadowPercent
        },
        metadata: self.adminMetadata
      )
    }
  }

  func settle() async throws {
    _ = try await self.predictor { client in
      try await client.settle(
        Vane_V1_SettleRequest(),
        metadata: self.adminMetadata
      )
    }
  }

  func unload(modelID: String, version: String) async throws {
    do {
      _ = try await self.predictor { client in
        try await client.unloadModel(
          .with {
            $0.model = .with {
              $0.modelID = modelID
              $0.version = version
            }
            // Deploy has moved the traffic first; force covers a model's first version, whose
            // rollback leaves the model without one.
            $0.force = true
          },
          metadata: self.adminMetadata
        )
      }
    } catch let error as VaneError where error.code == .notFound {
      return
    }
  }

  func live(
    modelID: String,
    version: String,
    since: Date,
    by clock: RolloutPlan.Clock,
    compareWith: String?
  ) async throws -> LiveFigures {
    guard !version.isEmpty else { return LiveFigures() }
    let response: Vane_V1_GetModelStatsResponse
    do {
      response = try await self.predictor { client in
        try await client.getModelStats(
          .with {
            $0.model = .with {
              $0.modelID = modelID
              $0.version = version
            }
            switch clock {
            case .wall: $0.since = Google_Protobuf_Timestamp(date: since)
            case .data: $0.sinceBar = Google_Protobuf_Timestamp(date: since)
            }
            if let compareWith { $0.compareWith = compareWith }
          }
        )
      }
    } catch let error as VaneError
      where error.code == .notFound || error.code == .failedPrecondition
    {
      // Nothing logged yet, or a predictor without a log: no live figures (inconclusive).
      return LiveFigures()
    }
    guard let stats = response.versions.first else { return LiveFigures() }
    var figures = LiveFigures()
    if let h = stats.horizons.first {
      figures.maturedOutcomes = Int(h.matured)
      figures.auc = h.hasAuc ? h.auc : nil
      figures.logLoss = h.hasLogLoss ? h.logLoss : nil
      figures.brier = h.hasBrier ? h.brier : nil
      figures.scorePSI = h.hasScorePsi ? h.scorePsi : nil
      figures.meanConfidence = h.hasMeanConfidence ? h.meanConfidence : nil
    }
    if stats.hasPaired {
      figures.pairs = AnalysisSample.Pairs(
        count: Int(stats.paired.count),
        disagreementRate: stats.paired.disagreementRate,
        meanAbsProbDiff: stats.paired.meanAbsProbDiff
      )
    }
    return figures
  }
}
