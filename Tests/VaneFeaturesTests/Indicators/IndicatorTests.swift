import Foundation
import Testing

@testable import VaneFeatures

/// The kernels against TA-Lib's own output on real BTC candles (Fixtures/talib_btc_1h_golden.csv.gz,
/// made by scripts/talib_golden.py with talib 0.8.2 / TA-Lib C 0.8.1).
@Suite("Indicators: TA-Lib's values on BTC 1h", .enabled(if: IndicatorData.marketAvailable))
struct IndicatorGoldenTests {
  /// Read once for the whole suite.
  static let loaded: Result<(candles: Candles, golden: [String: [Double]]), any Error> = Result {
    (try IndicatorData.btc(), try IndicatorData.golden())
  }

  @Test("The fixture holds the same candles as the market file")
  func sameCandles() throws {
    let (candles, golden) = try Self.loaded.get()
    #expect(golden["close"] == candles.close)
    #expect(golden.values.allSatisfy { $0.count == IndicatorData.goldenRows })
  }

  @Test(
    "NaN exactly where TA-Lib has NaN, values within 1e-9 relative",
    arguments: IndicatorCase.allCases
  )
  func golden(_ indicator: IndicatorCase) throws {
    let (candles, golden) = try Self.loaded.get()
    let outputs = indicator.batch(candles)
    // The first column is the indicator's main line: TA-Lib's leading NaNs are its lookback.
    #expect(outputs[0].values.firstIndex { !$0.isNaN } == indicator.lookback)
    for (name, values) in outputs {
      let expected = try #require(golden[name], "fixture has no column \(name)")
      #expect(values.count == expected.count)
      #expect(
        zip(values, expected).allSatisfy { $0.isNaN == $1.isNaN },
        "\(name): NaN pattern differs from TA-Lib"
      )
      // Near zero (MACD histogram, ROC, CCI crossing zero) the floor is 1e-12 of the column's scale.
      let floor = 1e-3 * Agreement.magnitude(expected)
      let mismatch = Agreement.firstMismatch(values, expected) {
        Agreement.close($0, $1, floor: floor)
      }
      #expect(mismatch == nil, "\(name): first difference at \(String(describing: mismatch))")
    }
  }

  /// Stronger than the contract, and true today: every kernel repeats TA-Lib's operations in
  /// TA-Lib's order (IEEE-754 makes each of them exact-rounded), so the results are the same bits.
  @Test("Bit for bit TA-Lib's values", arguments: IndicatorCase.allCases)
  func bitIdentical(_ indicator: IndicatorCase) throws {
    let (candles, golden) = try Self.loaded.get()
    for (name, values) in indicator.batch(candles) {
      let expected = try #require(golden[name])
      let differing = zip(values, expected).filter { !Agreement.same($0, $1) }.count
      #expect(differing == 0, "\(name): \(differing) values differ from TA-Lib in the last bits")
    }
  }
}

@Suite("Indicators: lookbacks, short inputs, flat prices")
struct IndicatorEdgeTests {
  @Test("Lookback and convergence of the golden parameters")
  func table() {
    let expected: [IndicatorCase: (lookback: Int, convergence: Int)] = [
      .sma: (19, 19), .ema: (19, 250), .macd: (33, 333), .rsi: (14, 325), .atr: (14, 325),
      .natr: (14, 325),
      .bbands: (19, 19), .stddev: (19, 19), .adx: (27, 382), .obv: (0, Int.max), .mfi: (14, 14),
      .stoch: (17, 17), .willr: (13, 13), .cci: (19, 19), .roc: (10, 10),
    ]
    for indicator in IndicatorCase.allCases {
      #expect(indicator.lookback == expected[indicator]?.lookback, "\(indicator.rawValue) lookback")
      #expect(
        indicator.convergence == expected[indicator]?.convergence,
        "\(indicator.rawValue) convergence"
      )
    }
    // Other parameters follow TA-Lib's lookback formulas.
    #expect(Indicators.MACD(fast: 26, slow: 12, signal: 9).lookback == 33)  // swapped like TA-Lib
    #expect(Indicators.MACD(fast: 5, slow: 35, signal: 1).lookback == 34)
    #expect(Indicators.Stoch(fastK: 5, slowK: 3, slowD: 3).lookback == 8)
    #expect(Indicators.ADX(period: 2).lookback == 3)
    #expect(Indicators.ADX(period: 14).directionalLookback == 14)
    #expect(Indicators.EMA(period: 1).convergence == 0)
    #expect(Indicators.SMA(period: 1).lookback == 0)
  }

  @Test(
    "Inputs no longer than the lookback give only NaN; one more gives one value",
    arguments: IndicatorCase.allCases
  )
  func shortInputs(_ indicator: IndicatorCase) {
    let candles = Candles.random(count: 100, seed: 7)
    for length in Set([0, 1, indicator.lookback, indicator.lookback + 1]) {
      let prefix = candles[0 ..< length]
      for (name, values) in indicator.batch(prefix) {
        #expect(values.count == length, "\(name) at length \(length)")
        let lookback = indicator.lookback(of: name)
        let defined = values.indices.filter { !values[$0].isNaN }
        #expect(
          defined == (length > lookback ? Array(lookback ..< length) : []),
          "\(name) at length \(length)"
        )
      }
      for (name, values) in indicator.stream(prefix) {
        let lookback = indicator.lookback(of: name)
        #expect(
          values.prefix(lookback).allSatisfy { $0.isNaN },
          "\(name): stream values before the lookback"
        )
      }
    }
  }

  /// Expected values from talib 0.8.2 on 100 candles at 60000.1 with volume 5 (the last value; every
  /// defined value is the same): flat windows give 0 for RSI, STDDEV, WILLR, STOCH, CCI, ADX, MFI,
  /// NATR and ROC, and the averages give the price back. MACD's −3.637978807091713e-11 is TA-Lib's
  /// too: the 26- and 12-bar seed means of 60000.1 round differently.
  @Test("Flat prices give TA-Lib's values")
  func flat() {
    let flat = Candles.flat(60000.1, volume: 5, count: 100)
    let expected: [String: Double] = [
      "SMA_20": 60000.1, "EMA_20": 60000.1,
      "MACD_12_26_9": -3.637978807091713e-11, "MACD_SIGNAL_12_26_9": -3.637978807091713e-11,
      "MACD_HIST_12_26_9": 0,
      "RSI_14": 0, "ATR_14": 0, "NATR_14": 0,
      "BBANDS_UPPER_20_2_2": 60000.1, "BBANDS_MIDDLE_20_2_2": 60000.1,
      "BBANDS_LOWER_20_2_2": 60000.1,
      "STDDEV_20_1": 0, "ADX_14": 0, "PLUS_DI_14": 0, "MINUS_DI_14": 0, "OBV": 5, "MFI_14": 0,
      "STOCH_SLOWK_14_3_3": 0, "STOCH_SLOWD_14_3_3": 0, "WILLR_14": 0, "CCI_20": 0, "ROC_10": 0,
    ]
    for indicator in IndicatorCase.allCases {
      for (name, values) in indicator.batch(flat) + indicator.stream(flat) {
        let defined = values.filter { !$0.isNaN }
        #expect(
          !defined.isEmpty && defined.allSatisfy { $0 == expected[name] },
          "\(name): \(defined.last ?? .nan)"
        )
      }
    }
  }

  /// talib 0.8.2 on 100 candles with high = 60050.1, low = 59950.1, close = 60000.1: a constant
  /// range, the close mid-range.
  @Test("A constant range with the close in the middle gives TA-Lib's values")
  func constantRange() {
    let count = 100
    let candles = Candles(
      open: [Double](repeating: 60000.1, count: count),
      high: [Double](repeating: 60000.1 + 50, count: count),
      low: [Double](repeating: 60000.1 - 50, count: count),
      close: [Double](repeating: 60000.1, count: count),
      volume: [Double](repeating: 5, count: count)
    )
    let expected: [String: Double] = [
      "ATR_14": 100, "NATR_14": 0.16666638888935187, "WILLR_14": -50,
      "STOCH_SLOWK_14_3_3": 50, "STOCH_SLOWD_14_3_3": 50, "CCI_20": 0, "ADX_14": 0, "MFI_14": 0,
    ]
    for indicator in IndicatorCase.allCases {
      for (name, values) in indicator.batch(candles) + indicator.stream(candles) {
        guard let value = expected[name] else { continue }
        #expect(values.last == value, "\(name)")
      }
    }
  }

  @Test("RSI is 0 on a flat window after movement, as TA-Lib reports it")
  func rsiFlatAfterMovement() {
    // Wilder's averages decay but never reach zero, so only an all-flat window gives 0.
    let closes = [Double](repeating: 100, count: 15) + [101] + [Double](repeating: 101, count: 30)
    let rsi = Indicators.RSI(period: 14)(closes)
    #expect(rsi[14] == 0)
    #expect(rsi[15] == 100)
    #expect(rsi.last == 100)
  }
}
