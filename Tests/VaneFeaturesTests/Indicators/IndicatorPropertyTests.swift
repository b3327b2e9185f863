import Foundation
import Testing

@testable import VaneFeatures

@Suite("Indicators: streaming equals batch")
struct IndicatorStreamingTests {
  static func expectSame(_ indicator: IndicatorCase, _ candles: Candles, _ label: String) {
    let batch = indicator.batch(candles)
    let stream = indicator.stream(candles)
    #expect(batch.map(\.name) == stream.map(\.name))
    for ((name, b), (_, s)) in zip(batch, stream) {
      let mismatch = Agreement.firstMismatch(b, s, Agreement.same)
      #expect(
        mismatch == nil,
        "\(name) on \(label): batch and stream differ at \(String(describing: mismatch))"
      )
    }
  }

  @Test(
    "Every value, on the real BTC candles",
    .enabled(if: IndicatorData.marketAvailable),
    arguments: IndicatorCase.allCases
  )
  func realData(_ indicator: IndicatorCase) throws {
    let candles = try IndicatorGoldenTests.loaded.get().candles
    Self.expectSame(indicator, candles, "BTC 1h")
  }

  @Test(
    "Every value, on random candles with flat stretches, jumps and zero volume",
    arguments: IndicatorCase.allCases,
    [1, 2, 3] as [UInt64]
  )
  func randomData(_ indicator: IndicatorCase, seed: UInt64) {
    Self.expectSame(indicator, Candles.random(count: 3_000, seed: seed), "random seed \(seed)")
  }

  @Test("Other parameters, on random candles")
  func otherParameters() {
    let c = Candles.random(count: 1_500, seed: 11)
    func same(_ label: String, _ batch: [Double], _ stream: [Double]) {
      #expect(Agreement.firstMismatch(batch, stream, Agreement.same) == nil, "\(label)")
    }
    for period in [1, 2, 3, 30] {
      var sma = Indicators.SMA.Stream(Indicators.SMA(period: period))
      same("SMA \(period)", Indicators.SMA(period: period)(c.close), c.close.map { sma.update($0) })
      var ema = Indicators.EMA.Stream(Indicators.EMA(period: period))
      same("EMA \(period)", Indicators.EMA(period: period)(c.close), c.close.map { ema.update($0) })
      var roc = Indicators.ROC.Stream(Indicators.ROC(period: period))
      same("ROC \(period)", Indicators.ROC(period: period)(c.close), c.close.map { roc.update($0) })
      var atr = Indicators.ATR.Stream(Indicators.ATR(period: period))
      same(
        "ATR \(period)",
        Indicators.ATR(period: period)(high: c.high, low: c.low, close: c.close),
        c.close.indices.map { atr.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) }
      )
      let stoch = Indicators.Stoch(fastK: period, slowK: Swift.max(1, period / 2), slowD: 2)
      var stochStream = Indicators.Stoch.Stream(stoch)
      let stochValues = c.close.indices.map {
        stochStream.update(high: c.high[$0], low: c.low[$0], close: c.close[$0])
      }
      same(
        "STOCH \(period) %K",
        stoch(high: c.high, low: c.low, close: c.close).slowK,
        stochValues.map(\.slowK)
      )
      same(
        "STOCH \(period) %D",
        stoch(high: c.high, low: c.low, close: c.close).slowD,
        stochValues.map(\.slowD)
      )
      guard period >= 2 else { continue }
      var rsi = Indicators.RSI.Stream(Indicators.RSI(period: period))
      same("RSI \(period)", Indicators.RSI(period: period)(c.close), c.close.map { rsi.update($0) })
      var sd = Indicators.StdDev.Stream(Indicators.StdDev(period: period, deviations: 1.5))
      same(
        "STDDEV \(period)",
        Indicators.StdDev(period: period, deviations: 1.5)(c.close),
        c.close.map { sd.update($0) }
      )
      let bands = Indicators.BBands(period: period, deviationsUp: 2.5, deviationsDown: 1.5)
      var bandStream = Indicators.BBands.Stream(bands)
      let bandValues = c.close.map { bandStream.update($0) }
      same("BBANDS \(period) upper", bands(c.close).upper, bandValues.map(\.upper))
      same("BBANDS \(period) lower", bands(c.close).lower, bandValues.map(\.lower))
      var willr = Indicators.WillR.Stream(Indicators.WillR(period: period))
      same(
        "WILLR \(period)",
        Indicators.WillR(period: period)(high: c.high, low: c.low, close: c.close),
        c.close.indices.map { willr.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) }
      )
      var cci = Indicators.CCI.Stream(Indicators.CCI(period: period))
      same(
        "CCI \(period)",
        Indicators.CCI(period: period)(high: c.high, low: c.low, close: c.close),
        c.close.indices.map { cci.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) }
      )
      var mfi = Indicators.MFI.Stream(Indicators.MFI(period: period))
      same(
        "MFI \(period)",
        Indicators.MFI(period: period)(high: c.high, low: c.low, close: c.close, volume: c.volume),
        c.close.indices.map {
          mfi.update(high: c.high[$0], low: c.low[$0], close: c.close[$0], volume: c.volume[$0])
        }
      )
      var adx = Indicators.ADX.Stream(Indicators.ADX(period: period))
      let adxValues = c.close.indices.map {
        adx.update(high: c.high[$0], low: c.low[$0], close: c.close[$0])
      }
      let adxBatch = Indicators.ADX(period: period).components(
        high: c.high,
        low: c.low,
        close: c.close
      )
      same("ADX \(period)", adxBatch.adx, adxValues.map(\.adx))
      same("+DI \(period)", adxBatch.plusDI, adxValues.map(\.plusDI))
      same(
        "ADX \(period) line",
        Indicators.ADX(period: period)(high: c.high, low: c.low, close: c.close),
        adxBatch.adx
      )
    }
    for (fast, slow, signal) in [(12, 26, 9), (26, 12, 9), (5, 35, 1), (2, 3, 2), (7, 7, 4)] {
      let macd = Indicators.MACD(fast: fast, slow: slow, signal: signal)
      var stream = Indicators.MACD.Stream(macd)
      let values = c.close.map { stream.update($0) }
      same("MACD \(fast)/\(slow)/\(signal)", macd(c.close).macd, values.map(\.macd))
      same("MACD signal \(fast)/\(slow)/\(signal)", macd(c.close).signal, values.map(\.signal))
    }
  }

  @Test("ADX's +DI/−DI exist before the ADX does")
  func directionalBeforeADX() {
    let c = Candles.random(count: 20, seed: 5)
    let out = Indicators.ADX(period: 14).components(high: c.high, low: c.low, close: c.close)
    #expect(out.adx.allSatisfy { $0.isNaN })
    #expect(out.plusDI.firstIndex { !$0.isNaN } == 14)
    #expect(out.minusDI.firstIndex { !$0.isNaN } == 14)
    let full = Indicators.ADX(period: 14).components(
      high: c.high + c.high,
      low: c.low + c.low,
      close: c.close + c.close
    )
    #expect(Array(full.plusDI[0 ..< 20]).elementsEqual(out.plusDI, by: Agreement.same))
  }
}

@Suite(
  "Indicators: independent of where the history starts",
  .enabled(if: IndicatorData.marketAvailable)
)
struct IndicatorHistoryTests {
  /// Computing on 1,000 more bars of history changes nothing from `convergence` on: finite windows
  /// only by their running sums' rounding residue, recursive kernels by less than their seed's
  /// 1e-10 remaining influence. The tolerance is 1e-9 relative, floored at the scale of the state
  /// the seed lives in (the price for MACD's EMAs, the output's own scale otherwise).
  @Test(
    "Values from `convergence` on equal those computed with a longer history",
    arguments: IndicatorCase.allCases
  )
  func prefix(_ indicator: IndicatorCase) throws {
    let all = try IndicatorGoldenTests.loaded.get().candles
    let start = 1_000
    let series = all[start ..< all.count]
    let long = indicator.batch(all)
    let short = indicator.batch(series)
    for ((name, longValues), (_, shortValues)) in zip(long, short) {
      let tail = Array(longValues[start...])
      if indicator == .obv {
        // A cumulative level: only changes since the first bar are start-independent.
        let scale = series.volume.reduce(0, +)
        let longChanges = tail.map { $0 - tail[0] }
        let shortChanges = shortValues.map { $0 - shortValues[0] }
        let mismatch = Agreement.firstMismatch(longChanges, shortChanges) {
          Agreement.close($0, $1, floor: scale)
        }
        #expect(mismatch == nil, "\(name): \(String(describing: mismatch))")
        continue
      }
      let scale =
        indicator == .macd ? Agreement.magnitude(series.close) : Agreement.magnitude(shortValues)
      let mismatch = Agreement.firstMismatch(tail, shortValues, from: indicator.convergence) {
        Agreement.close($0, $1, floor: scale)
      }
      #expect(mismatch == nil, "\(name): \(String(describing: mismatch))")
    }
  }

  @Test("Pure window functions (WILLR, ROC) are exactly equal from the lookback on")
  func exactWindows() throws {
    let all = try IndicatorGoldenTests.loaded.get().candles
    let series = all[1_000 ..< all.count]
    for indicator in [IndicatorCase.willr, .roc] {
      for ((name, longValues), (_, shortValues)) in zip(
        indicator.batch(all),
        indicator.batch(series)
      ) {
        let mismatch = Agreement.firstMismatch(
          Array(longValues[1_000...]),
          shortValues,
          from: indicator.lookback,
          Agreement.same
        )
        #expect(mismatch == nil, "\(name): \(String(describing: mismatch))")
      }
    }
  }

  @Test(
    "Recursive kernels do depend on the start before `convergence` (the property is not vacuous)"
  )
  func recursiveNotTrivial() throws {
    let all = try IndicatorGoldenTests.loaded.get().candles
    let series = all[1_000 ..< all.count]
    for indicator in [IndicatorCase.ema, .macd, .rsi, .atr, .adx] {
      let long = Array(indicator.batch(all)[0].values[1_000...])
      let short = indicator.batch(series)[0].values
      #expect(long[indicator.lookback] != short[indicator.lookback], "\(indicator.rawValue)")
    }
  }
}
