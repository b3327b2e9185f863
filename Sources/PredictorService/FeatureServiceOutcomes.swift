internal import Foundation
internal import GRPCCore
internal import SwiftProtobuf
internal import VaneCore
internal import VaneFeatures
internal import VaneProto
internal import VaneRuntime
internal import VaneServing

/// Realized outcomes from the feature service: BuildDataset over the pending bars with the
/// version's own label definition, so a live outcome is labelled exactly as its training rows
/// were. The feature service labels a bar only when its horizon bar is stored.
struct FeatureServiceOutcomes: OutcomeSource {
  let client: UpstreamClient
  let deadline: Duration

  func outcomes(
    version: PredictionLog.VersionRecord,
    symbol: String,
    horizon: Int,
    from: Int64,
    to: Int64
  ) async throws -> [Int64: Int] {
    guard let interval = CandleInterval(rawValue: version.interval) else { return [:] }
    var labels = Vane_V1_LabelSpec()
    if let json = version.labels {
      var options = JSONDecodingOptions()
      options.ignoreUnknownFields = true
      labels = try Vane_V1_LabelSpec(jsonString: json, options: options)
    } else {
      labels.kind = version.classes.count == 2 ? .binaryDirection : .threeClass
    }
    labels.horizons = [.with { $0.bars = UInt32(horizon) }]
    let request = Vane_V1_BuildDatasetRequest.with {
      $0.symbols = [symbol]
      $0.interval = interval.proto
      $0.featureSetID = version.featureSetID
      $0.labels = labels
      $0.range = .with {
        $0.start = Google_Protobuf_Timestamp(unixMilliseconds: from)
        $0.end = Google_Protobuf_Timestamp(unixMilliseconds: to + interval.milliseconds)
      }
      $0.keepIncompleteRows = true
      $0.rowsPerChunk = 4096
    }
    return try await self.client.call(deadline: self.deadline) { grpc in
      try await Vane_V1_FeatureService.Client(wrapping: grpc).buildDataset(request) { response in
        var outcomes: [Int64: Int] = [:]
        for try await chunk in response.messages {
          guard case .rows(let rows)? = chunk.chunk else { continue }
          for series in rows.labels where series.horizonBars == UInt32(horizon) {
            for (i, label) in series.label.enumerated()
            where label >= 0 && i < rows.openTimeUnixMs.count {
              outcomes[rows.openTimeUnixMs[i]] = Int(label)
            }
          }
        }
        return outcomes
      }
    }
  }
}
