import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneFeatures

@Suite("Candle store (SQLite via GRDB)", .computeBound)
struct CandleStoreTests {
  static func hourly(_ hours: Range<Int64>, close: Double = 1.5) -> [Candle] {
    hours.map {
      Candle(
        openTime: $0 * 3_600_000,
        open: 1,
        high: 2,
        low: 0.5,
        close: close,
        volume: 3,
        tradeCount: $0
      )
    }
  }

  @Test("Stored candles read back identical; ingesting the same batch again stores nothing twice")
  func roundTripAndIdempotence() throws {
    let store = try CandleStore(path: ":memory:")
    let batch = Self.hourly(0 ..< 48)
    #expect(
      try store.ingest(symbol: "BTCUSDT", interval: .h1, candles: batch)
        == IngestOutcome(inserted: 48, unchanged: 0)
    )
    #expect(try store.candles(symbol: "BTCUSDT", interval: .h1) == batch)
    #expect(
      try store.ingest(symbol: "BTCUSDT", interval: .h1, candles: batch)
        == IngestOutcome(inserted: 0, unchanged: 48)
    )
    #expect(try store.candles(symbol: "BTCUSDT", interval: .h1).count == 48)
  }

  @Test("A batch that contradicts stored history fails whole and loses nothing already stored")
  func conflictIsAtomic() throws {
    let store = try CandleStore(path: ":memory:")
    try store.ingest(symbol: "ETHUSDT", interval: .h1, candles: Self.hourly(0 ..< 10))
    // Hours 10..<20 are new, hour 5 contradicts what is stored.
    let batch =
      Self.hourly(10 ..< 20) + [
        Candle(openTime: 5 * 3_600_000, open: 1, high: 2, low: 0.5, close: 1.9, volume: 3)
      ]
    #expect {
      try store.ingest(symbol: "ETHUSDT", interval: .h1, candles: batch)
    } throws: { error in
      guard let error = error as? VaneError else { return false }
      return error.code == .invalidArgument && error.message.contains("1970-01-01 05:00:00")
    }
    #expect(try store.candles(symbol: "ETHUSDT", interval: .h1) == Self.hourly(0 ..< 10))
  }

  @Test("Coverage reports range and gaps per series, and survives reopening the file")
  func coverageAndPersistence() throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-store-\(UUID().uuidString)/feature.sqlite"
    ).path
    defer {
      try? FileManager.default.removeItem(
        atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path
      )
    }
    do {
      let store = try CandleStore(path: path)
      try store.ingest(
        symbol: "SOLUSDT",
        interval: .h1,
        candles: Self.hourly(0 ..< 5) + Self.hourly(8 ..< 10)
      )
      try store.ingest(
        symbol: "SOLUSDT",
        interval: .h4,
        candles: [Candle(openTime: 0, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3)]
      )
    }
    let reopened = try CandleStore(path: path)
    let coverage = try reopened.coverage(symbol: "SOLUSDT")
    #expect(coverage.map(\.interval) == [.h1, .h4])
    let hourly = try #require(coverage.first)
    #expect(hourly.count == 7)
    #expect(hourly.first == 0)
    #expect(hourly.last == 9 * 3_600_000)
    #expect(hourly.gaps == [CandleGap(start: 5 * 3_600_000, end: 8 * 3_600_000, missingBars: 3)])
  }

  @Test(
    "A malformed symbol is refused, naming the field",
    arguments: ["", "btcusdt", "BTC-USDT", String(repeating: "A", count: 33)]
  )
  func badSymbol(symbol: String) throws {
    let store = try CandleStore(path: ":memory:")
    #expect {
      try store.ingest(symbol: symbol, interval: .h1, candles: Self.hourly(0 ..< 1))
    } throws: { ($0 as? VaneError)?.message.hasPrefix("symbol:") == true }
  }

  @Test(
    "The real BTC 1h file stored whole: 52,549 bars and its 59 missing hours",
    .enabled(if: MarketData.available)
  )
  func realFile() throws {
    let report = try CandleValidator.validate(
      try CandleFileParser.read(path: MarketData.path("binance_BTCUSDT_1h.csv.gz")),
      asOf: MarketData.end
    )
    let store = try CandleStore(path: ":memory:")
    #expect(
      try store.ingest(symbol: "BTCUSDT", interval: .h1, candles: report.accepted).inserted
        == 52_549
    )
    let coverage = try #require(try store.coverage().first)
    #expect(coverage.count == 52_549)
    #expect(coverage.gaps.reduce(0) { $0 + $1.missingBars } == 59)
    #expect(coverage.gaps == report.gaps)
  }
}
