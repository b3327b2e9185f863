public import ServiceLifecycle
public import Foundation
public import VaneCore

/// Where realized outcomes come from: the labels of a series' bars under a version's label
/// definition, known only once each bar's horizon bar has closed (the feature service's
/// candles, over gRPC, in the predictor).
public protocol OutcomeSource: Sendable {
  /// Class index by bar open time for the bars of `symbol` opened in
  /// [`from`, `to`] whose horizon bar has closed and is stored; bars without one are left out.
  func outcomes(
    version: PredictionLog.VersionRecord,
    symbol: String,
    horizon: Int,
    from: Int64,
    to: Int64
  ) async throws -> [Int64: Int]
}

/// Joins logged answers with their realized outcomes: every `interval`, each group of answers
/// whose horizon bar has closed by the clock is asked of the ``OutcomeSource``, and what it
/// knows is stored. An answer is never joined before bar `as_of + horizon` has closed, and
/// what is not known yet stays pending for the next pass (also after a restart).
public struct OutcomeJoiner: Service {
  public let log: PredictionLog
  public let source: any OutcomeSource
  public let interval: Duration
  /// Now, in Unix ms (a test controls it).
  public let clock: @Sendable () -> Int64
  /// Bars asked for in one call, at most.
  public let maximumSpan: Int64
  let pool: BlockingPool

  public init(
    log: PredictionLog,
    source: any OutcomeSource,
    interval: Duration = .seconds(5),
    maximumBars: Int64 = 5_000,
    clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
    pool: BlockingPool = .shared
  ) {
    self.log = log
    self.source = source
    self.interval = interval
    self.maximumSpan = maximumBars
    self.clock = clock
    self.pool = pool
  }

  public func run() async {
    try? await cancelWhenGracefulShutdown {
      while !Task.isCancelled {
        _ = try? await self.joinOnce()
        try await Task.sleep(for: self.interval)
      }
    }
  }

  /// One pass. - Returns: how many answers matured.
  /// - Throws: what the log or the source threw (the pass stops there; the next one retries).
  @discardableResult
  public func joinOnce() async throws -> Int {
    let now = self.clock()
    let groups = try await self.pool.run { try self.log.pendingGroups(now: now) }
    var matured = 0
    for group in groups {
      // Long ranges are asked for in spans, so one call stays bounded.
      let span = self.maximumSpan * group.version.barMs
      var from = group.firstBar
      while from <= group.lastBar {
        let to = min(group.lastBar, from + span - group.version.barMs)
        let outcomes = try await self.source.outcomes(
          version: group.version,
          symbol: group.symbol,
          horizon: group.horizon,
          from: from,
          to: to
        )
        matured += try await self.pool.run {
          try self.log.recordOutcomes(group, outcomes: outcomes, now: now)
        }
        from = to + group.version.barMs
      }
    }
    return matured
  }
}
