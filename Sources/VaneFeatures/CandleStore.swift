internal import VaneCore
internal import GRDB
internal import VaneStore
internal import Foundation

/// Coverage of one stored series: its range and its holes.
public struct SeriesCoverage: Sendable, Equatable {
  public var symbol: String
  public var interval: CandleInterval
  /// Candles stored (within the range asked for).
  public var count: Int
  /// Open times of the first and last stored bar (ms).
  public var first: Int64
  public var last: Int64
  /// Runs of missing bars, oldest first (at most the number asked for).
  public var gaps: [CandleGap]
  /// All runs of missing bars in the range, and all missing bars, even when `gaps` is capped.
  public var gapCount: Int
  public var missingBars: Int
  /// When the series was last written to (ms), and the sources that fed it, sorted.
  public var lastIngest: Int64?
  public var sources: [String]

  /// The number of bars a gap-free series over the same range would have.
  public var expectedCount: Int { Int((self.last - self.first) / self.interval.milliseconds) + 1 }
}

/// What one ingest stored (or, in a dry run, would have stored).
public struct IngestOutcome: Sendable, Equatable {
  /// Candles written that were not stored before.
  public var inserted: Int
  /// Candles already stored, agreeing (see ``Candle/agrees(with:)``), or different but kept
  /// under ``ConflictPolicy/keepExisting``.
  public var unchanged: Int
  /// Agreeing candles whose exchange extras (quote volume, trades, taker volumes) filled in
  /// what the stored copy lacked: a subset of `unchanged`. Nothing stored is ever lost.
  public var enriched: Int
  /// Stored candles overwritten under ``ConflictPolicy/replace``.
  public var replaced: Int
  /// Candles that differed from the stored copy (a subset of unchanged, replaced or rejected).
  public var conflicts: Int
  /// Rows refused under ``ConflictPolicy/reject``, in open-time order.
  public var rejected: [RowProblem]

  public init(
    inserted: Int,
    unchanged: Int,
    enriched: Int = 0,
    replaced: Int = 0,
    conflicts: Int = 0,
    rejected: [RowProblem] = []
  ) {
    self.inserted = inserted
    self.unchanged = unchanged
    self.enriched = enriched
    self.replaced = replaced
    self.conflicts = conflicts
    self.rejected = rejected
  }
}

/// Candles in SQLite (GRDB), keyed by (symbol, interval, open time). One batch is one
/// transaction: it is stored whole or not at all, and storing it again changes nothing.
public final class CandleStore: Sendable {
  private let store: SQLiteStore
  private var database: DatabaseQueue { self.store.database }

  /// Opens (creating if needed) the store at `path`; ":memory:" for a private in-memory store.
  public init(path: String) throws {
    self.store = try SQLiteStore(name: "candle store", path: path, migrator: Self.migrator)
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-candles") { db in
      try db.execute(
        sql: """
          CREATE TABLE candle (
            symbol TEXT NOT NULL,
            interval TEXT NOT NULL,
            open_time INTEGER NOT NULL,
            open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
            volume REAL NOT NULL,
            quote_volume REAL, trade_count INTEGER, taker_buy_base_volume REAL, taker_buy_quote_volume REAL,
            PRIMARY KEY (symbol, interval, open_time)
          ) WITHOUT ROWID
          """
      )
    }
    migrator.registerMigration("v2-ingest-log") { db in
      // One row per committed ingest: where coverage gets "last ingest" and "sources" from.
      try db.execute(
        sql: """
          CREATE TABLE ingest_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            symbol TEXT NOT NULL, interval TEXT NOT NULL, source TEXT NOT NULL,
            at_ms INTEGER NOT NULL, inserted INTEGER NOT NULL, replaced INTEGER NOT NULL
          );
          CREATE INDEX ingest_log_series ON ingest_log (symbol, interval);
          """
      )
    }
    return migrator
  }

  /// Stores a validated batch atomically; a candle already stored with different values fails
  /// the whole batch (INVALID_ARGUMENT, naming the time): stored history is never overwritten.
  @discardableResult
  public func ingest(
    symbol: String,
    interval: CandleInterval,
    candles: [Candle]
  ) throws -> IngestOutcome {
    try self.ingest(
      symbol: symbol,
      interval: interval,
      rows: candles.map { CandleRow(file: "", line: 0, candle: $0) },
      source: "",
      onConflict: .fail,
      at: nil
    )
  }

  /// Stores validated rows (one per open time) in one transaction: all of them or, when it
  /// throws, none.
  /// - Parameters:
  ///   - source: recorded in the ingest log (coverage lists it).
  ///   - onConflict: what a row that differs from the stored candle does.
  ///   - strict: a row rejected under ``ConflictPolicy/reject`` fails the batch instead.
  ///   - dryRun: decide everything, write nothing.
  ///   - at: the ingest time for the log (ms); nil writes no log entry.
  /// - Throws: INVALID_ARGUMENT naming the open time under ``ConflictPolicy/fail``.
  @discardableResult
  public func ingest(
    symbol: String,
    interval: CandleInterval,
    rows: [CandleRow],
    source: String,
    onConflict: ConflictPolicy,
    strict: Bool = false,
    dryRun: Bool = false,
    at: Int64?
  ) throws -> IngestOutcome {
    try Self.check(symbol: symbol)
    do {
      return try self.database.write { db in
        let existing = try Statement.fetchExisting(
          db,
          symbol: symbol,
          interval: interval,
          candles: rows.map(\.candle)
        )
        var outcome = IngestOutcome(inserted: 0, unchanged: 0)
        var writes: [Candle] = []
        for row in rows {
          let candle = row.candle
          guard let stored = existing[candle.openTime] else {
            writes.append(candle)
            outcome.inserted += 1
            continue
          }
          if stored.agrees(with: candle) {
            outcome.unchanged += 1
            let filled = stored.filled(from: candle)
            if filled != stored {
              writes.append(filled)
              outcome.enriched += 1
            }
            continue
          }
          outcome.conflicts += 1
          switch onConflict {
          case .fail:
            let place = row.line > 0 ? " (\(row.file):\(row.line))" : ""
            throw VaneError.invalidArgument(
              field: "candles[\(CandleTime.format(candle.openTime))]",
              "\(symbol) \(interval.rawValue) already has a different candle at this time\(place); nothing from this batch was stored"
            )
          case .keepExisting:
            outcome.unchanged += 1
          case .replace:
            writes.append(candle)
            outcome.replaced += 1
          case .reject:
            let problem = RowProblem(
              file: row.file,
              line: row.line,
              kind: .conflictingDuplicate,
              reason: "differs from the stored candle at \(CandleTime.format(candle.openTime))",
              openTime: candle.openTime,
              index: row.index
            )
            if strict { throw CandleValidator.strictError(problem) }
            outcome.rejected.append(problem)
          }
        }
        guard !dryRun else { return outcome }
        let upsert = try db.makeStatement(
          sql: """
            INSERT OR REPLACE INTO candle (symbol, interval, open_time, open, high, low, close, volume,
              quote_volume, trade_count, taker_buy_base_volume, taker_buy_quote_volume)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        )
        for candle in writes {
          try upsert.execute(arguments: [
            symbol, interval.rawValue, candle.openTime, candle.open, candle.high, candle.low,
            candle.close,
            candle.volume, candle.quoteVolume, candle.tradeCount, candle.takerBuyBaseVolume,
            candle.takerBuyQuoteVolume,
          ])
        }
        if let at {
          try db.execute(
            sql:
              "INSERT INTO ingest_log (symbol, interval, source, at_ms, inserted, replaced) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [symbol, interval.rawValue, source, at, outcome.inserted, outcome.replaced]
          )
        }
        return outcome
      }
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(.unavailable, "candle store: the batch could not be written", cause: error)
    }
  }

  /// Stored candles of a series in [from, to), ascending.
  public func candles(
    symbol: String,
    interval: CandleInterval,
    from: Int64 = .min,
    to: Int64 = .max
  ) throws -> [Candle] {
    try self.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT open_time, open, high, low, close, volume, quote_volume, trade_count,
                 taker_buy_base_volume, taker_buy_quote_volume
          FROM candle WHERE symbol = ? AND interval = ? AND open_time >= ? AND open_time < ?
          ORDER BY open_time
          """,
        arguments: [symbol, interval.rawValue, from, to]
      ).map(Self.candle(from:))
    }
  }

  /// Coverage of every stored series (or of one symbol).
  public func coverage(symbol: String? = nil) throws -> [SeriesCoverage] {
    try self.coverage(symbols: symbol.map { [$0] } ?? [], intervals: [])
  }

  /// Every symbol with stored candles, at any interval.
  public func symbols() throws -> Set<String> {
    try self.database.read { db in
      Set(try String.fetchAll(db, sql: "SELECT DISTINCT symbol FROM candle"))
    }
  }

  /// Coverage of the stored series matching the filters (empty = all), ordered by symbol then
  /// interval, counted within [from, to); series with nothing in the range are left out.
  public func coverage(
    symbols: [String],
    intervals: [CandleInterval],
    from: Int64 = .min,
    to: Int64 = .max,
    maxGaps: Int = .max
  ) throws -> [SeriesCoverage] {
    try self.database.read { db in
      // Named series need no scan of the table for the stored ones (an ingest asks for its
      // own after every stream): a series with nothing stored is left out below.
      let series: [(String, CandleInterval)] =
        if !symbols.isEmpty, !intervals.isEmpty {
          Array(Set(symbols)).flatMap { symbol in Set(intervals).map { (symbol, $0) } }
        } else {
          try Row.fetchAll(
            db,
            sql: "SELECT DISTINCT symbol, interval FROM candle ORDER BY symbol, interval"
          )
          .compactMap { row -> (String, CandleInterval)? in
            guard let interval = CandleInterval(rawValue: row[1]) else { return nil }
            return (row[0], interval)
          }
          .filter { symbols.isEmpty || symbols.contains($0.0) }
          .filter { intervals.isEmpty || intervals.contains($0.1) }
        }
      // Interval order is by bar length, not by name.
      return try series.sorted { ($0.0, $0.1.milliseconds) < ($1.0, $1.1.milliseconds) }.compactMap
      { symbol, interval in
        try Self.coverage(
          db,
          symbol: symbol,
          interval: interval,
          from: from,
          to: to,
          maxGaps: maxGaps
        )
      }
    }
  }

  private static func coverage(
    _ db: Database,
    symbol: String,
    interval: CandleInterval,
    from: Int64,
    to: Int64,
    maxGaps: Int
  ) throws -> SeriesCoverage? {
    let arguments: StatementArguments = [symbol, interval.rawValue, from, to]
    guard
      let bounds = try Row.fetchOne(
        db,
        sql:
          "SELECT COUNT(*), MIN(open_time), MAX(open_time) FROM candle WHERE symbol = ? AND interval = ? AND open_time >= ? AND open_time < ?",
        arguments: arguments
      ), let first: Int64 = bounds[1], let last: Int64 = bounds[2]
    else { return nil }
    // Gaps from consecutive open times (SQLite window functions), so that only the gaps
    // themselves come back, not every time of the series.
    let step = interval.milliseconds
    let gapRows = try Row.fetchAll(
      db,
      sql: """
        SELECT previous, open_time FROM (
          SELECT open_time, LAG(open_time) OVER (ORDER BY open_time) AS previous
          FROM candle WHERE symbol = ? AND interval = ? AND open_time >= ? AND open_time < ?)
        WHERE open_time - previous > ? ORDER BY open_time
        """,
      arguments: [symbol, interval.rawValue, from, to, step]
    )
    let gaps = gapRows.map { row -> CandleGap in
      let previous: Int64 = row[0], next: Int64 = row[1]
      return CandleGap(
        start: previous + step,
        end: next,
        missingBars: Int((next - previous) / step) - 1
      )
    }
    let log = try Row.fetchOne(
      db,
      sql: "SELECT MAX(at_ms) FROM ingest_log WHERE symbol = ? AND interval = ?",
      arguments: [symbol, interval.rawValue]
    )
    let sources = try String.fetchAll(
      db,
      sql:
        "SELECT DISTINCT source FROM ingest_log WHERE symbol = ? AND interval = ? AND source <> '' ORDER BY source",
      arguments: [symbol, interval.rawValue]
    )
    return SeriesCoverage(
      symbol: symbol,
      interval: interval,
      count: bounds[0],
      first: first,
      last: last,
      gaps: Array(gaps.prefix(maxGaps)),
      gapCount: gaps.count,
      missingBars: gaps.reduce(0) { $0 + $1.missingBars },
      lastIngest: log?[0],
      sources: sources
    )
  }

  /// Checks that `symbol` looks like an exchange symbol; the error names `field`.
  public static func check(symbol: String, field: String = "symbol") throws {
    guard !symbol.isEmpty, symbol.count <= 32,
      symbol.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) })
    else {
      throw VaneError.invalidArgument(
        field: field,
        "'\(symbol)' is not a symbol like BTCUSDT (A-Z and 0-9, at most 32)"
      )
    }
  }

  static func candle(from row: Row) -> Candle {
    Candle(
      openTime: row[0],
      open: row[1],
      high: row[2],
      low: row[3],
      close: row[4],
      volume: row[5],
      quoteVolume: row[6],
      tradeCount: row[7],
      takerBuyBaseVolume: row[8],
      takerBuyQuoteVolume: row[9]
    )
  }
}

private enum Statement {
  /// The stored candles at the batch's open times, by open time.
  static func fetchExisting(
    _ db: Database,
    symbol: String,
    interval: CandleInterval,
    candles: [Candle]
  ) throws -> [Int64: Candle] {
    guard let low = candles.map(\.openTime).min(), let high = candles.map(\.openTime).max() else {
      return [:]
    }
    let rows = try Row.fetchAll(
      db,
      sql: """
        SELECT open_time, open, high, low, close, volume, quote_volume, trade_count,
               taker_buy_base_volume, taker_buy_quote_volume
        FROM candle WHERE symbol = ? AND interval = ? AND open_time BETWEEN ? AND ?
        """,
      arguments: [symbol, interval.rawValue, low, high]
    )
    return Dictionary(
      uniqueKeysWithValues: rows.map { row in
        let candle = CandleStore.candle(from: row)
        return (candle.openTime, candle)
      }
    )
  }
}
