import Foundation
import Testing
import VaneTestSupport

@testable import VaneFeatures

@Suite("Resampling 1h → 4h → 1d", .computeBound)
struct ResampleTests {
  static func bar(
    _ hour: Int64,
    _ o: Double,
    _ h: Double,
    _ l: Double,
    _ c: Double,
    _ v: Double
  ) -> Candle {
    Candle(openTime: hour * 3_600_000, open: o, high: h, low: l, close: c, volume: v)
  }

  @Test("A complete bucket takes the first open, extreme high and low, last close, summed volume")
  func merge() {
    let hours = [
      Self.bar(0, 10, 12, 9, 11, 1), Self.bar(1, 11, 15, 10, 14, 2), Self.bar(2, 14, 14, 8, 9, 3),
      Self.bar(3, 9, 10, 9, 10, 4),
    ]
    #expect(
      CandleResampler.resample(hours, from: .h1, to: .h4) == [
        Candle(openTime: 0, open: 10, high: 15, low: 8, close: 10, volume: 10)
      ]
    )
  }

  @Test("An incomplete bucket (a missing hour, or a series that starts mid-bucket) is left out")
  func incomplete() {
    let missing = [
      Self.bar(0, 1, 1, 1, 1, 1), Self.bar(1, 1, 1, 1, 1, 1), Self.bar(3, 1, 1, 1, 1, 1),
      Self.bar(4, 1, 1, 1, 1, 1),
    ]
    #expect(CandleResampler.resample(missing, from: .h1, to: .h4).isEmpty)
    let lateStart = (2 ..< 12).map { Self.bar($0, 1, 1, 1, 1, 1) }
    #expect(
      CandleResampler.resample(lateStart, from: .h1, to: .h4).map(\.openTime) == [
        4 * 3_600_000, 8 * 3_600_000,
      ]
    )
  }

  /// How many of the reference file's bars our resampled bars equal (OHLC exactly, volume to
  /// 1e-9 relative), over the buckets both have.
  static func matchRate(
    symbol: String,
    to interval: CandleInterval,
    from source: [Candle],
    sourceInterval: CandleInterval
  ) throws -> (rate: Double, compared: Int) {
    let reference = try CandleValidator.validate(
      try CandleFileParser.read(
        path: MarketData.path("binance_\(symbol)_\(interval.rawValue).csv.gz")
      ),
      asOf: MarketData.end
    )
    let ours = Dictionary(
      uniqueKeysWithValues: CandleResampler.resample(source, from: sourceInterval, to: interval).map
      { ($0.openTime, $0) }
    )
    var compared = 0
    var equal = 0
    for bar in reference.accepted {
      guard let mine = ours[bar.openTime] else { continue }
      compared += 1
      let volumeClose = abs(mine.volume - bar.volume) <= 1e-9 * max(1, abs(bar.volume))
      if mine.open == bar.open && mine.high == bar.high && mine.low == bar.low
        && mine.close == bar.close && volumeClose
      {
        equal += 1
      }
    }
    return (Double(equal) / Double(max(compared, 1)), compared)
  }

  @Test(
    "Resampled real 1h data equals the real 4h and 1d files on ≥ 99.5% of complete buckets",
    .enabled(if: MarketData.available),
    arguments: ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
  )
  func againstRealFiles(symbol: String) throws {
    let hourly = try CandleValidator.validate(
      try CandleFileParser.read(path: MarketData.path("binance_\(symbol)_1h.csv.gz")),
      asOf: MarketData.end
    ).accepted
    let fourHour = try Self.matchRate(symbol: symbol, to: .h4, from: hourly, sourceInterval: .h1)
    let fourHourly = CandleResampler.resample(hourly, from: .h1, to: .h4)
    let daily = try Self.matchRate(symbol: symbol, to: .d1, from: fourHourly, sourceInterval: .h4)
    print(
      "resample \(symbol): 4h \(String(format: "%.4f", fourHour.rate)) of \(fourHour.compared) buckets, 1d \(String(format: "%.4f", daily.rate)) of \(daily.compared)"
    )
    #expect(fourHour.compared > 9_000)
    #expect(fourHour.rate >= 0.995)
    #expect(daily.compared > 1_500)
    #expect(daily.rate >= 0.995)
  }
}
