public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore
internal import VaneFeatures
internal import Foundation

/// The feature service: candle ingestion and storage, indicators and feature sets, labels, online feature vectors and offline datasets.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct FeatureServiceImplementation: Vane_V1_FeatureService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = [
    "GetServiceInfo", "IngestCandles", "GetCoverage", "GetFeatures", "StreamFeatures",
    "BuildDataset",
    "DescribeFeatureSet", "ListFeatureSets",
  ]

  let runtime: RuntimeInfo
  let engine: FeatureEngine
  var store: CandleStore { self.engine.store }

  /// Opens (creating if needed) the candle store `candles.sqlite` in the data directory.
  public init(runtime: RuntimeInfo) throws {
    self.runtime = runtime
    self.engine = FeatureEngine(
      store: try CandleStore(
        path: URL(fileURLWithPath: runtime.dataDirectory).appendingPathComponent("candles.sqlite")
          .path
      )
    )
  }

  public func getServiceInfo(
    request: Vane_V1_GetServiceInfoRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ServiceInfo {
    try self.runtime.serviceInfo(implemented: Self.implemented)
  }

  public func ingestCandles(
    request: RPCAsyncSequence<Vane_V1_IngestCandlesRequest, any Error>,
    context: ServerContext
  ) async throws -> Vane_V1_IngestCandlesResponse {
    try await serviceEdge {
      var iterator = request.makeAsyncIterator()
      guard let first = try await iterator.next() else {
        throw VaneError.invalidArgument(field: "header", "the stream ended before its header")
      }
      var session = try IngestSession(first: first)
      var number = 1
      while let message = try await iterator.next() {
        try session.add(message, number: number)
        number += 1
      }
      // SQLite writes: the blocking pool's work, not the cooperative pool's.
      let ready = session
      return try await BlockingPool.shared.run { try ready.commit(to: self.engine, now: Date()) }
    }
  }

  public func getCoverage(
    request: Vane_V1_GetCoverageRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Coverage {
    try await serviceEdge {
      let range =
        request.hasRange
        ? try request.range.milliseconds(field: "range") : (start: Int64.min, end: Int64.max)
      let intervals = try request.intervals.enumerated().map {
        try CandleInterval($1, field: "intervals[\($0)]")
      }
      let series = try await BlockingPool.shared.run {
        // A symbol never ingested is NOT_FOUND, not an empty answer that reads like "no gaps".
        if !request.symbols.isEmpty {
          let known = try self.store.symbols()
          if let (index, absent) = request.symbols.enumerated().first(where: {
            !known.contains($0.element)
          }) {
            throw VaneError(
              .notFound,
              "symbols[\(index)]: no candles are stored for \(absent.prefix(64)) (ingest it first)"
            )
          }
        }
        return try self.store.coverage(
          symbols: request.symbols,
          intervals: intervals,
          from: range.start,
          to: range.end,
          maxGaps: request.maxGaps == 0 ? 100 : Int(request.maxGaps)
        )
      }
      return .with { $0.series = series.map(Vane_V1_SeriesCoverage.init) }
    }
  }

  public func getFeatures(
    request: Vane_V1_GetFeaturesRequest,
    context: ServerContext
  ) async throws -> Vane_V1_FeatureVector {
    // Frames are computed from the store (over a second after an ingest): on the blocking pool.
    try await serviceEdge {
      try await BlockingPool.shared.run { try self.featureVector(request, now: Date()) }
    }
  }

  public func streamFeatures(
    request: Vane_V1_StreamFeaturesRequest,
    response: RPCWriter<Vane_V1_FeatureVector>,
    context: ServerContext
  ) async throws {
    try await serviceEdge {
      guard !request.markets.isEmpty else {
        throw VaneError.invalidArgument(field: "markets", "give at least one market")
      }
      let set = try FeatureSet.requested(request.featureSetID, field: "feature_set_id")
      let markets = try request.markets.enumerated().map { index, market in
        let (symbol, interval) = try FeatureRequests.market(market, field: "markets[\(index)]")
        try set.check(interval, field: "markets[\(index)].interval")
        return (symbol: symbol, interval: interval)
      }
      // Subscribe before reading the current state, so no ingest falls between the two.
      let changes = self.engine.changes()
      var lastSent: [Int: Int64] = [:]
      var columnsSent: Set<Int> = []
      for (index, market) in markets.enumerated() {
        let frame = try await BlockingPool.shared.run {
          try self.engine.frame(symbol: market.symbol, interval: market.interval, featureSet: set)
        }
        lastSent[index] = frame.openTimes.last ?? .min
        if request.sendCurrent,
          let row = frame.status.lastIndex(where: { request.allowMissing || $0 == .complete })
        {
          try await response.write(
            FeatureRequests.vector(
              frame,
              row: row,
              set: set,
              includeColumns: request.includeColumns
            )
          )
          columnsSent.insert(index)
        }
      }
      // gRPC reports a cancelled RPC (client gone, deadline, server drain) through the context,
      // not by cancelling this task: race the follow loop against it. A stream never ends on
      // its own, so when the service starts shutting down it ends with UNAVAILABLE at once
      // instead of holding the drain for the whole grace period.
      try await self.follow(
        changes,
        markets: markets,
        set: set,
        request: request,
        response: response,
        context: context,
        sent: (lastSent, columnsSent)
      )
      throw VaneError(.cancelled, "StreamFeatures: the stream was cancelled")
    }
  }

  /// Sends each new bar of the markets until the call is cancelled or the service drains.
  private func follow(
    _ changes: AsyncStream<FeatureEngine.Change>,
    markets: [(symbol: String, interval: CandleInterval)],
    set: FeatureSet,
    request: Vane_V1_StreamFeaturesRequest,
    response: RPCWriter<Vane_V1_FeatureVector>,
    context: ServerContext,
    sent: ([Int: Int64], Set<Int>)
  ) async throws {
    let (lastSent, columnsSent) = sent
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await context.cancellation.cancelled }
      group.addTask {
        await self.runtime.drain.wait()
        try Task.checkCancellation()
        throw VaneError(
          .unavailable,
          "the feature service is shutting down; subscribe again (to another instance, or after it restarts)"
        )
      }
      group.addTask { [lastSent, columnsSent] in
        var lastSent = lastSent
        var columnsSent = columnsSent
        for await _ in changes {
          for (index, market) in markets.enumerated() {
            let frame = try await BlockingPool.shared.run {
              try self.engine.frame(
                symbol: market.symbol,
                interval: market.interval,
                featureSet: set
              )
            }
            let after = lastSent[index] ?? .min
            var row = frame.openTimes.firstIndex { $0 > after } ?? frame.rowCount
            while row < frame.rowCount {
              if request.allowMissing || frame.status[row] == .complete {
                let first = !columnsSent.contains(index)
                try await response.write(
                  FeatureRequests.vector(
                    frame,
                    row: row,
                    set: set,
                    includeColumns: request.includeColumns && first
                  )
                )
                columnsSent.insert(index)
              }
              lastSent[index] = frame.openTimes[row]
              row += 1
            }
          }
        }
      }
      try await group.next()
      group.cancelAll()
    }
  }

  public func buildDataset(
    request: Vane_V1_BuildDatasetRequest,
    response: RPCWriter<Vane_V1_DatasetChunk>,
    context: ServerContext
  ) async throws {
    try await serviceEdge {
      let started = Date()
      // Building a dataset reads and computes every frame: the blocking pool's work.
      let dataset = try await BlockingPool.shared.run { try self.dataset(request) }
      let spec = dataset.spec
      let horizons = spec.labels.horizons
      try await response.write(
        .with {
          $0.header = .with {
            $0.datasetID = dataset.id
            $0.featureSetID = spec.featureSet.id
            $0.featureSetHash = spec.featureSet.sha256
            $0.columns = spec.featureSet.columnNames
            $0.columnCount = UInt32(spec.featureSet.columns.count)
            $0.symbols = spec.symbols
            $0.interval = spec.interval.proto
            $0.labels = request.labels
            $0.classes = spec.labels.classes
            if request.hasRange { $0.range = request.range }
            $0.estimatedRows = Int64(dataset.candidateRows)
          }
        }
      )
      // Rows per chunk: as asked (default 4096), lowered so a chunk stays near 4 MiB.
      let bytesPerRow =
        8 * spec.featureSet.columns.count + 12 + horizons.count
        * (request.includeForwardReturns ? 20 : 12)
      let limit = max(1, (4 << 20) / bytesPerRow)
      let perChunk = min(request.rowsPerChunk == 0 ? 4096 : Int(request.rowsPerChunk), limit)
      var digest = DatasetDigest()
      var start = 0
      while start < dataset.rowCount {
        try Task.checkCancellation()
        let block = dataset.block(start ..< min(start + perChunk, dataset.rowCount))
        digest.update(block)
        try await response.write(
          .with {
            $0.rows = Vane_V1_DatasetRows(
              block,
              columns: spec.featureSet.columns.count,
              horizons: horizons,
              forwardReturns: request.includeForwardReturns
            )
          }
        )
        start += perChunk
      }
      try await response.write(
        .with {
          $0.summary = .with {
            $0.rowsEmitted = Int64(dataset.rowCount)
            $0.rowsExcluded = Int64(dataset.excludedCount)
            $0.missingValues = .init(spec.missingValues)
            $0.completeRows = Int64(dataset.completeRows)
            $0.rowsWithMissingValues = Int64(dataset.rowsWithMissingValues)
            $0.exclusions = dataset.exclusions.map { count in
              .with {
                $0.reason = .init(count.reason)
                $0.symbol = count.symbol
                $0.rows = Int64(count.rows)
                $0.firstOpenTime = .init(unixMilliseconds: count.firstOpenTime)
                $0.lastOpenTime = .init(unixMilliseconds: count.lastOpenTime)
              }
            }
            if let first = dataset.rows.first, let last = dataset.rows.last {
              $0.emittedRange = .init(
                start: dataset.frames[first.symbol].openTimes[first.row],
                end: dataset.frames[last.symbol].openTimes[last.row] + spec.interval.milliseconds
              )
            }
            $0.classBalance = zip(horizons, dataset.classBalance).map { bars, counts in
              .with {
                $0.horizonBars = UInt32(bars)
                $0.counts = counts.map(Int64.init)
              }
            }
            $0.contentSha256 = digest.finalize()
            $0.elapsed = .init(secondsDouble: Date().timeIntervalSince(started))
          }
        }
      )
    }
  }

  public func describeFeatureSet(
    request: Vane_V1_DescribeFeatureSetRequest,
    context: ServerContext
  ) async throws -> Vane_V1_FeatureSet {
    try await serviceEdge {
      Vane_V1_FeatureSet(
        try FeatureSet.requested(request.featureSetID, field: "feature_set_id"),
        includeColumns: true
      )
    }
  }

  public func listFeatureSets(
    request: Vane_V1_ListFeatureSetsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListFeatureSetsResponse {
    try await serviceEdge {
      guard request.page.pageSize >= 0 else {
        throw VaneError.invalidArgument(field: "page.page_size", "must not be negative")
      }
      // Pages are by id: the token is the last id of the previous page.
      let size = request.page.pageSize == 0 ? 50 : min(Int(request.page.pageSize), 1000)
      let remaining = FeatureSet.all.filter {
        request.page.pageToken.isEmpty || $0.id > request.page.pageToken
      }
      let page = remaining.prefix(size)
      return .with {
        $0.featureSets = page.map { Vane_V1_FeatureSet($0, includeColumns: request.includeColumns) }
        $0.page = .with {
          $0.totalSize = Int64(FeatureSet.all.count)
          if remaining.count > size, let last = page.last { $0.nextPageToken = last.id }
        }
      }
    }
  }
}
