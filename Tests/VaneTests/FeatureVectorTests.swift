import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
import VaneCore
import VaneFeatures
import VaneProto
import VaneRuntime
import VaneTestSupport
import FeatureService

/// GetFeatures, StreamFeatures, BuildDataset and the feature-set RPCs over the wire, on the
/// real 1h files.
@Suite(
  "Feature service: vectors, streams and datasets",
  .enabled(if: MarketData.available),
  .timeLimit(.minutes(5))
)
struct FeatureVectorTests {
  typealias Client = Vane_V1_FeatureService.Client<AnyClientTransport>

  /// Ingests the symbols' 1h files, bars opened in [from, until) only (from 2023 by default,
  /// which keeps debug builds quick).
  static func ingest(
    _ client: Client,
    _ symbols: [String],
    from: Int64 = RealSeries.recent,
    until: Int64 = .max
  ) async throws {
    for symbol in symbols {
      // Parsed once for every test, and cut into messages, off the cooperative pool.
      let messages = try await ComputeExecutor.shared.run {
        var file = try #require(RealSeries.hourlyFiles[symbol], "no 1h file for \(symbol)")
        file.rows = file.rows.filter { $0.candle.openTime >= from && $0.candle.openTime < until }
        return FeatureUpload.messages(file: file, symbol: symbol, interval: .h1, source: "test")
      }
      _ = try await FeatureIngestTests.ingest(client, messages)
    }
  }

  static let market = Vane_V1_Market.with {
    $0.symbol = "BTCUSDT"
    $0.interval = .interval1H
  }

  @Test(
    "GetFeatures: the latest closed bar, a bar by time, point-in-time; the same values the library computes",
    arguments: TransportKind.allCases
  )
  func vectors(transport: TransportKind) async throws {
    try await FeatureIngestTests.withFeatureService(transport) { client in
      try await Self.ingest(client, FeatureSet.v1References)
      let latest = try await client.getFeatures(
        .with {
          $0.market = Self.market
          $0.includeColumns = true
        }
      )
      #expect(try latest.asOf.unixMilliseconds(field: "t") == MarketData.end - 3_600_000)
      #expect(
        latest.columns == FeatureSet.v1.columnNames && latest.featureSetHash == FeatureSet.v1.sha256
      )
      #expect(latest.missingIndices.isEmpty && latest.values.allSatisfy(\.isFinite))
      let t: Int64 = 1_719_835_200_000  // 2024-07-01 12:00
      let atTime = try await client.getFeatures(
        .with {
          $0.market = Self.market
          $0.bar.asOf = .init(unixMilliseconds: t)
        }
      )
      let knownAt = try await client.getFeatures(
        .with {
          $0.market = Self.market
          $0.bar.knownAt = .init(unixMilliseconds: t + 3_600_000 + 59_000)
        }
      )
      #expect(atTime.values == knownAt.values)
      let frame = FeatureSet.v1.frame(RealSeries.inputs("BTCUSDT", from: RealSeries.recent))
      let row = try #require(frame.rowIndex(openTime: t))
      #expect(atTime.values.map(\.bitPattern) == frame.row(row).map(\.bitPattern))
    }
  }

  @Test("GetFeatures errors name the field and say how much history is needed")
  func errors() async throws {
    try await FeatureIngestTests.withFeatureService(.inProcess) { client in
      try await Self.ingest(client, ["BTCUSDT"], until: RealSeries.recent + 100 * 3_600_000)
      let cases: [(Vane_V1_GetFeaturesRequest, RPCError.Code, String)] = [
        (
          .with {
            $0.market = .with {
              $0.symbol = "btc"
              $0.interval = .interval1H
            }
          }, .invalidArgument, "market.symbol"
        ),
        (
          .with { $0.market = .with { $0.symbol = "BTCUSDT" } }, .invalidArgument, "market.interval"
        ),
        (
          .with {
            $0.market = .with {
              $0.symbol = "BTCUSDT"
              $0.interval = .interval4H
            }
          }, .invalidArgument, "market.interval"
        ),
        (
          .with {
            $0.market = Self.market
            $0.featureSetID = "v9"
          }, .notFound, "feature_set_id"
        ),
        (
          .with {
            $0.market = Self.market
            $0.bar.asOf = .init(unixMilliseconds: RealSeries.recent + 60_000)
          }, .invalidArgument, "bar.as_of"
        ),
        (
          .with {
            $0.market = .with {
              $0.symbol = "XRPUSDT"
              $0.interval = .interval1H
            }
          }, .notFound, "market"
        ),
        (.with { $0.market = Self.market }, .failedPrecondition, "needs 503 bars"),
        (
          .with {
            $0.market = Self.market
            $0.allowMissing = true
            $0.maxStaleness = .init(seconds: 3600)
          }, .failedPrecondition, "max_staleness"
        ),
        (
          .with {
            $0.market = Self.market
            $0.allowMissing = true
            $0.maxStaleness = .init(seconds: -5)
          }, .invalidArgument, "max_staleness: must be a non-negative"
        ),
      ]
      for (request, code, text) in cases {
        do {
          _ = try await client.getFeatures(request)
          Issue.record("accepted \(request)")
        } catch let error as RPCError {
          #expect(error.code == code, "\(error.message)")
          #expect(error.message.contains(text), "\(error.message)")
        }
      }
      let partial = try await client.getFeatures(
        .with {
          $0.market = Self.market
          $0.allowMissing = true
        }
      )
      #expect(!partial.missingIndices.isEmpty)
      #expect(partial.missingIndices.allSatisfy { partial.values[Int($0)].isNaN })
    }
  }

  @Test(
    "StreamFeatures sends the current vector, then one per newly ingested bar, in order",
    arguments: TransportKind.allCases
  )
  func stream(transport: TransportKind) async throws {
    let split: Int64 = 1_704_067_200_000  // 2024-01-01
    try await FeatureIngestTests.withFeatureService(transport) { client in
      try await Self.ingest(client, ["BTCUSDT"], from: split - 30 * 86_400_000, until: split)
      let request = Vane_V1_StreamFeaturesRequest.with {
        $0.markets = [Self.market]
        $0.sendCurrent = true
        $0.allowMissing = true
        $0.includeColumns = true
      }
      let times = try await withThrowingTaskGroup(of: [Int64].self) { group in
        group.addTask {
          try await client.streamFeatures(request) { response in
            var times: [Int64] = []
            for try await vector in response.messages {
              times.append(try vector.asOf.unixMilliseconds(field: "as_of"))
              if times.count == 4 { break }
            }
            return times
          }
        }
        try await Task.sleep(for: .milliseconds(500))
        let messages = try await ComputeExecutor.shared.run {
          var upload = try #require(RealSeries.hourlyFiles["BTCUSDT"])
          upload.rows = upload.rows.filter {
            $0.candle.openTime >= split && $0.candle.openTime < split + 3 * 3_600_000
          }
          return FeatureUpload.messages(
            file: upload,
            symbol: "BTCUSDT",
            interval: .h1,
            source: "live"
          )
        }
        _ = try await FeatureIngestTests.ingest(client, messages)
        let result = try await group.next()!
        group.cancelAll()
        return result
      }
      #expect(times == [split - 3_600_000, split, split + 3_600_000, split + 7_200_000])
    }
  }

  @Test("BuildDataset streams header, row chunks and a summary that accounts for every row")
  func dataset() async throws {
    try await FeatureIngestTests.withFeatureService(.shim) { client in
      try await Self.ingest(client, FeatureSet.v1References)
      let request = Vane_V1_BuildDatasetRequest.with {
        $0.symbols = ["ETHUSDT", "BTCUSDT"]
        $0.interval = .interval1H
        $0.labels = .with {
          $0.kind = .threeClass
          $0.horizons = [5, 12, 24].map { h in .with { $0.bars = h } }
          $0.holdVolatilityBand = .with { $0.multiple = 0.5 }
        }
        $0.range = .init(start: 1_688_169_600_000, end: 1_704_067_200_000)  // 2023 H2
        $0.rowsPerChunk = 1000
      }
      let chunks = try await client.buildDataset(request) { response in
        var chunks: [Vane_V1_DatasetChunk] = []
        for try await chunk in response.messages { chunks.append(chunk) }
        return chunks
      }
      guard case .header(let header)? = chunks.first?.chunk,
        case .summary(let summary)? = chunks.last?.chunk
      else {
        Issue.record("no header or summary")
        return
      }
      #expect(
        header.columnCount == 78 && header.classes == ["DOWN", "HOLD", "UP"]
          && header.symbols == ["ETHUSDT", "BTCUSDT"]
      )
      let rows = chunks.compactMap { if case .rows(let rows)? = $0.chunk { rows } else { nil } }
      #expect(rows.allSatisfy { $0.rowCount <= 1000 && $0.features.count == Int($0.rowCount) * 78 })
      let total = rows.reduce(0) { $0 + Int($1.rowCount) }
      #expect(Int64(total) == summary.rowsEmitted)
      #expect(summary.rowsEmitted + summary.rowsExcluded == header.estimatedRows)
      #expect(summary.classBalance.allSatisfy { $0.counts.reduce(0, +) == summary.rowsEmitted })
      #expect(summary.contentSha256.count == 64)
      // Bad requests name the field.
      for (bad, field) in [
        (Vane_V1_BuildDatasetRequest.with { $0.interval = .interval1H }, "symbols"),
        (
          .with {
            $0.symbols = ["BTCUSDT"]
            $0.interval = .interval1H
            $0.labels = .with {
              $0.kind = .threeClass
              $0.horizons = [.with { $0.bars = 5 }]
            }
          }, "labels.hold_band"
        ),
        (
          .with {
            $0.symbols = ["BTCUSDT"]
            $0.interval = .interval1H
            $0.labels = .with { $0.kind = .binaryDirection }
          }, "labels.horizons"
        ),
      ] {
        do {
          _ = try await client.buildDataset(bad) { response in
            for try await _ in response.messages {}
          }
          Issue.record("accepted a bad request")
        } catch let error as RPCError {
          #expect(
            error.code == .invalidArgument && error.message.hasPrefix(field),
            "\(error.message)"
          )
        }
      }
    }
  }

  @Test("DescribeFeatureSet and ListFeatureSets describe v1")
  func describe() async throws {
    try await FeatureIngestTests.withFeatureService(.inProcess) { client in
      let set = try await client.describeFeatureSet(.init())
      #expect(
        set.id == "v1" && set.isDefault && set.columns.count == 78
          && set.sha256 == FeatureSet.v1.sha256
      )
      #expect(set.columns.first { $0.name == "hour_sin" }?.scaled == false)
      let list = try await client.listFeatureSets(.init())
      #expect(list.featureSets.map(\.id) == ["v1"] && list.featureSets[0].columns.isEmpty)
    }
  }
}
