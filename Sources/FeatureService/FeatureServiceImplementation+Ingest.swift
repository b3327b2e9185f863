internal import Foundation
internal import GRPCCore
internal import SwiftProtobuf
internal import VaneCore
internal import VaneFeatures
internal import VaneProto
internal import VaneRuntime

/// One IngestCandles stream being received: the header, then rows gathered batch by batch.
/// Nothing touches the store until ``commit(to:now:)``, so a cancelled stream stores nothing.
struct IngestSession {
  /// Most candles one stream may carry: bounds the memory a client can make the server hold.
  static let maximumCandles = 10_000_000

  let symbol: String
  let interval: CandleInterval
  let source: String
  let policy: ConflictPolicy
  let options: Vane_V1_IngestOptions
  let reportLimit: Int
  private(set) var rows: [CandleRow] = []
  private(set) var clientRejected: [RowProblem] = []
  private var nextIndex = 0

  /// Starts a session from the stream's first message.
  init(first message: Vane_V1_IngestCandlesRequest) throws {
    guard case .header(let header) = message.payload else {
      throw VaneError.invalidArgument(
        field: "header",
        "the first IngestCandles message must carry the header"
      )
    }
    guard header.hasMarket else {
      throw VaneError.invalidArgument(field: "header.market", "is required")
    }
    try CandleStore.check(symbol: header.market.symbol, field: "header.market.symbol")
    self.symbol = header.market.symbol
    self.interval = try CandleInterval(header.market.interval, field: "header.market.interval")
    self.source = header.source
    self.options = header.options
    self.policy = try ConflictPolicy(header.options.onDuplicate)
    let limit = header.options.maxReportedInvalidRows
    guard limit <= 10_000 else {
      throw VaneError.invalidArgument(
        field: "header.options.max_reported_invalid_rows",
        "at most 10000 (got \(limit))"
      )
    }
    self.reportLimit = limit == 0 ? 100 : Int(limit)
  }

  /// Adds one later message of the stream.
  mutating func add(_ message: Vane_V1_IngestCandlesRequest, number: Int) throws {
    guard case .batch(let batch) = message.payload else {
      throw VaneError.invalidArgument(
        field: "message[\(number)]",
        "only the first message may carry a header; later ones carry a batch"
      )
    }
    guard batch.lines.isEmpty || batch.lines.count == batch.candles.count else {
      throw VaneError.invalidArgument(
        field: "message[\(number)].batch.lines",
        "has \(batch.lines.count) entries for \(batch.candles.count) candles; give one per candle or none"
      )
    }
    guard self.rows.count + batch.candles.count <= Self.maximumCandles else {
      throw VaneError(
        .resourceExhausted,
        "IngestCandles: more than \(Self.maximumCandles) candles in one stream; split the upload"
      )
    }
    self.rows.reserveCapacity(self.rows.count + batch.candles.count)
    for (position, proto) in batch.candles.enumerated() {
      let line = batch.lines.isEmpty ? 0 : Int(clamping: batch.lines[position])
      let candle = try Candle(proto, field: "message[\(number)].batch.candles[\(position)]")
      self.rows.append(
        CandleRow(file: batch.file, line: line, candle: candle, index: self.nextIndex)
      )
      self.nextIndex += 1
    }
    for row in batch.rejectedRows {
      self.clientRejected.append(
        RowProblem(
          file: row.file,
          line: Int(clamping: row.line),
          kind: .init(row.reason),
          reason: row.message.isEmpty ? "rejected by the client" : row.message,
          openTime: row.hasOpenTime
            ? try? row.openTime.unixMilliseconds(field: "rejected_rows.open_time") : nil,
          index: nil
        )
      )
    }
  }

  /// Validates everything received and stores it in one transaction (unless a dry run).
  /// Validates and stores the stream's rows, tells `engine` what changed, and describes the
  /// stored series.
  func commit(to engine: FeatureEngine, now: Date) throws -> Vane_V1_IngestCandlesResponse {
    let store = engine.store
    let started = Date()
    let nowMs = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
    let reference =
      self.options.hasReferenceTime
      ? try self.options.referenceTime.unixMilliseconds(field: "header.options.reference_time")
      : nowMs
    var response = Vane_V1_IngestCandlesResponse()
    response.market = .with {
      $0.symbol = self.symbol
      $0.interval = self.interval.proto
    }
    response.source = self.source
    response.dryRun = self.options.dryRun
    response.received = Int64(self.rows.count)
    response.clientRejected = Int64(self.clientRejected.count)
    guard !self.rows.isEmpty else {
      response.invalid = response.clientRejected
      (response.invalidRows, response.invalidRowsTruncated) = self.reported(self.clientRejected)
      try self.describeStored(in: engine, into: &response)
      return response
    }
    let report = try CandleValidator.validate(
      rows: self.rows,
      problems: self.clientRejected,
      name: "the stream",
      interval: self.interval,
      asOf: reference,
      onConflict: self.policy,
      strict: self.options.strict
    )
    let outcome = try store.ingest(
      symbol: self.symbol,
      interval: self.interval,
      rows: report.acceptedRows,
      source: self.source,
      onConflict: self.policy,
      strict: self.options.strict,
      dryRun: self.options.dryRun,
      at: nowMs
    )

    response.accepted = Int64(outcome.inserted)
    response.replaced = Int64(outcome.replaced)
    // An in-stream copy overwritten by a later one was dropped, like a duplicate.
    response.duplicatesDropped = Int64(
      report.duplicates + report.replacedInBatch + outcome.unchanged
    )
    response.conflicts = Int64(report.conflicts + outcome.conflicts)
    response.enriched = Int64(outcome.enriched)
    response.offGridDropped = Int64(report.offGrid.count)
    let invalid = (report.rejected + outcome.rejected).sorted {
      ($0.index ?? -1) < ($1.index ?? -1)
    }
    response.invalid = Int64(invalid.count)
    (response.invalidRows, response.invalidRowsTruncated) = self.reported(invalid)
    (response.offGridRows, response.offGridRowsTruncated) = self.reported(report.offGrid)
    if let unfinished = report.unfinished, let openTime = unfinished.openTime {
      response.unfinishedLastCandle = true
      response.unfinishedOpenTime = .init(unixMilliseconds: openTime)
    }
    let rejected = Set(outcome.rejected.compactMap(\.openTime))
    let written = report.acceptedRows.lazy.map(\.candle.openTime).filter { !rejected.contains($0) }
    if outcome.inserted + outcome.replaced > 0, let first = written.min(), let last = written.max()
    {
      // The range spans what this stream sent and the store now holds (new or replaced).
      response.ingestedRange = .init(start: first, end: last + self.interval.milliseconds)
    }
    if !response.dryRun, response.accepted + response.replaced + response.enriched > 0 {
      // Every row the stream sent is at or after its earliest open time: only those can have
      // changed in the store.
      engine.didIngest(
        symbol: self.symbol,
        interval: self.interval,
        from: self.rows.lazy.map(\.candle.openTime).min()
      )
    }
    try self.describeStored(in: engine, into: &response)
    if !response.dryRun, outcome.inserted + outcome.replaced > 0, let newest = written.max() {
      let candles = try engine.candles(symbol: self.symbol, interval: self.interval)
      if candles.last?.openTime == newest,
        let suspect = SuspectVolume.check(candles, at: candles.count - 1)
      {
        response.suspectLastCandle = true
        response.suspectOpenTime = .init(unixMilliseconds: suspect.openTime)
        response.suspectReason = suspect.reason
      }
    }
    response.elapsed = .init(secondsDouble: Date().timeIntervalSince(started))
    return response
  }

  /// The first `reportLimit` problems in wire form, and whether more were left out.
  private func reported(_ problems: [RowProblem]) -> ([Vane_V1_InvalidRow], Bool) {
    (
      problems.prefix(self.reportLimit).map(Vane_V1_InvalidRow.init),
      problems.count > self.reportLimit
    )
  }

  /// The stored series after the stream, from the engine's copy (an ingest of one bar rereads
  /// one row, where counting gaps in SQL scanned the whole series).
  private func describeStored(
    in engine: FeatureEngine,
    into response: inout Vane_V1_IngestCandlesResponse
  ) throws {
    let candles = try engine.candles(symbol: self.symbol, interval: self.interval)
    guard let first = candles.first?.openTime, let last = candles.last?.openTime else { return }
    let step = self.interval.milliseconds
    response.storedRange = .init(start: first, end: last + step)
    response.storedCount = Int64(candles.count)
    response.gapCount = Int64(
      zip(candles, candles.dropFirst()).count { $1.openTime - $0.openTime > step }
    )
  }

}

extension Vane_V1_SeriesCoverage {
  init(_ coverage: SeriesCoverage) {
    self.init()
    self.market = .with {
      $0.symbol = coverage.symbol
      $0.interval = coverage.interval.proto
    }
    self.range = .init(start: coverage.first, end: coverage.last + coverage.interval.milliseconds)
    self.candleCount = Int64(coverage.count)
    self.expectedCount = Int64(coverage.expectedCount)
    self.missingCount = Int64(coverage.missingBars)
    self.gaps = coverage.gaps.map { gap in
      .with {
        $0.range = .init(start: gap.start, end: gap.end)
        $0.missingBars = Int64(gap.missingBars)
      }
    }
    self.gapsTruncated = coverage.gaps.count < coverage.gapCount
    if let lastIngest = coverage.lastIngest {
      self.lastIngestTime = .init(unixMilliseconds: lastIngest)
    }
    self.sources = coverage.sources
  }
}
