internal import VaneCore
internal import GRDB
internal import Foundation

/// Coverage of one stored series: its range and its holes.
public struct SeriesCoverage: Sendable, Equatable {
  public var symbol: String
  public var interval: CandleInterval
  public var count: Int
  /// Open times of the first and last stored bar (ms).
  public var first: Int64
  public var last: Int64
  public var gaps: [CandleGap]
}

/// What one ingest stored.
public struct IngestOutcome: Sendable, Equatable {
  /// Candles written that were not stored before.
  public var inserted: Int
  /// Candles already stored, identical (a repeated ingest stores nothing twice).
  public var unchanged: Int
}

/// Candles in SQLite (GRDB), keyed by (symbol, interval, open time). One batch is one
/// transaction: it is stored whole or not at all, and storing it again changes nothing.
public final class CandleStore: Sendable {
  private let database: DatabaseQueue

  /// Opens (creating if needed) the store at `path`; ":memory:" for a private in-memory store.
  public init(path: String) throws {
    do {
      if path == ":memory:" {
        self.database = try DatabaseQueue()
      } else {
        try FileManager.default.createDirectory(
          at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        self.database = try DatabaseQueue(path: path)
      }
      try Self.migrator.migrate(self.database)
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(.unavailable, "candle store \(path): cannot open", cause: error)
    }
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-candles") { db in
      try db.execute(sql: """
        CREATE TABLE candle (
          symbol TEXT NOT NULL,
          interval TEXT NOT NULL,
          open_time INTEGER NOT NULL,
          open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
          volume REAL NOT NULL,
          quote_volume REAL, trade_count INTEGER, taker_buy_base_volume REAL, taker_buy_quote_volume REAL,
          PRIMARY KEY (symbol, interval, open_time)
        ) WITHOUT ROWID
        """)
    }
    return migrator
  }

  /// Stores a validated batch atomically. A candle already stored with different values fails
  /// the whole batch (INVALID_ARGUMENT, naming the time): stored history is never overwritten.
  @discardableResult
  public func ingest(symbol: String, interval: CandleInterval, candles: [Candle]) throws -> IngestOutcome {
    try Self.check(symbol: symbol)
    do {
      return try self.database.write { db in
        let existing = try Statement.fetchExisting(db, symbol: symbol, interval: interval, candles: candles)
        var outcome = IngestOutcome(inserted: 0, unchanged: 0)
        let insert = try db.makeStatement(sql: """
          INSERT INTO candle (symbol, interval, open_time, open, high, low, close, volume,
            quote_volume, trade_count, taker_buy_base_volume, taker_buy_quote_volume)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """)
        for candle in candles {
          if let stored = existing[candle.openTime] {
            guard stored == candle else {
              throw VaneError.invalidArgument(
                field: "candles[\(CandleTime.format(candle.openTime))]",
                "\(symbol) \(interval.rawValue) already has a different candle at this time; nothing from this batch was stored")
            }
            outcome.unchanged += 1
            continue
          }
          try insert.execute(arguments: [
            symbol, interval.rawValue, candle.openTime, candle.open, candle.high, candle.low, candle.close,
            candle.volume, candle.quoteVolume, candle.tradeCount, candle.takerBuyBaseVolume, candle.takerBuyQuoteVolume,
          ])
          outcome.inserted += 1
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
  public func candles(symbol: String, interval: CandleInterval, from: Int64 = .min, to: Int64 = .max) throws -> [Candle] {
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
    let series: [(String, String)] = try self.database.read { db in
      try Row.fetchAll(
        db, sql: "SELECT DISTINCT symbol, interval FROM candle \(symbol == nil ? "" : "WHERE symbol = ?") ORDER BY symbol, interval",
        arguments: symbol.map { [$0] } ?? []
      ).map { ($0[0], $0[1]) }
    }
    return try series.compactMap { symbol, intervalName in
      guard let interval = CandleInterval(rawValue: intervalName) else { return nil }
      let times: [Int64] = try self.database.read { db in
        try Int64.fetchAll(db, sql: "SELECT open_time FROM candle WHERE symbol = ? AND interval = ? ORDER BY open_time", arguments: [symbol, intervalName])
      }
      guard let first = times.first, let last = times.last else { return nil }
      var gaps: [CandleGap] = []
      for (a, b) in zip(times, times.dropFirst()) where b - a > interval.milliseconds {
        gaps.append(CandleGap(start: a + interval.milliseconds, end: b, missingBars: Int((b - a) / interval.milliseconds) - 1))
      }
      return SeriesCoverage(symbol: symbol, interval: interval, count: times.count, first: first, last: last, gaps: gaps)
    }
  }

  static func check(symbol: String) throws {
    guard !symbol.isEmpty, symbol.count <= 32, symbol.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
      throw VaneError.invalidArgument(field: "symbol", "'\(symbol)' is not a symbol like BTCUSDT (A-Z and 0-9, at most 32)")
    }
  }

  static func candle(from row: Row) -> Candle {
    Candle(
      openTime: row[0], open: row[1], high: row[2], low: row[3], close: row[4], volume: row[5],
      quoteVolume: row[6], tradeCount: row[7], takerBuyBaseVolume: row[8], takerBuyQuoteVolume: row[9])
  }
}

private enum Statement {
  /// The stored candles at the batch's open times, by open time.
  static func fetchExisting(_ db: Database, symbol: String, interval: CandleInterval, candles: [Candle]) throws -> [Int64: Candle] {
    guard let low = candles.map(\.openTime).min(), let high = candles.map(\.openTime).max() else { return [:] }
    let rows = try Row.fetchAll(
      db,
      sql: """
        SELECT open_time, open, high, low, close, volume, quote_volume, trade_count,
               taker_buy_base_volume, taker_buy_quote_volume
        FROM candle WHERE symbol = ? AND interval = ? AND open_time BETWEEN ? AND ?
        """,
      arguments: [symbol, interval.rawValue, low, high])
    return Dictionary(uniqueKeysWithValues: rows.map { row in
      let candle = CandleStore.candle(from: row)
      return (candle.openTime, candle)
    })
  }
}
