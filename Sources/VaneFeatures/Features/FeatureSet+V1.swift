internal import Foundation

extension FeatureSet {
  /// Symbols whose 1h series the `v1` cross-asset columns read.
  public static let v1References = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]

  /// `v1`: 78 scale-free columns for one symbol at 1h (see each column's definition).
  /// No raw price reaches a model: prices appear only as ratios, log returns or values
  /// divided by the close. Higher timeframes use completed 4h and 1d bars only, resampled
  /// from the symbol's own 1h candles (a bucket with a missing hour makes no bar).
  public static let v1: FeatureSet = {
    let specs = V1.specs
    return FeatureSet(
      id: "v1",
      summary: """
        Direction features for one symbol at 1h: log returns over 1h to 1 week, realised and \
        historical volatility, TA-Lib indicators normalised to be scale-free, Bollinger %b, volume \
        z-scores, candle shape, hour/day cyclic encodings, 4h and 1d features from completed bars \
        only, and cross-asset returns, correlations and relative strength against BTC, ETH, SOL \
        and BNB. Indicators restart after a gap in the candles; a value whose lookback crosses a \
        gap is missing.
        """,
      columns: specs.map(\.column),
      intervals: [.h1],
      computationVersion: 1,
      referenceSymbols: Self.v1References,
      compute: { inputs in V1.frame(inputs, specs: specs) }
    )
  }()
}

/// The `v1` columns and their computation.
enum V1 {
  struct Spec: Sendable {
    var column: FeatureColumn
    var compute: @Sendable (Context) -> [Double]
  }

  /// Arrays one computation shares between columns (a frame is computed at once, then
  /// dropped: the context never escapes `frame`).
  final class Context {
    let inputs: FeatureInputs
    let step: Int64
    let times: [Int64]
    let open: [Double], high: [Double], low: [Double], close: [Double], volume: [Double]
    let segments: [Range<Int>]
    /// Position of each bar within its gap-free segment (0 = first bar after a gap).
    let position: [Int]
    var memo: [String: [Double]] = [:]

    init(_ inputs: FeatureInputs) {
      self.inputs = inputs
      self.step = inputs.interval.milliseconds
      let candles = inputs.candles
      self.times = candles.map(\.openTime)
      self.open = candles.map(\.open)
      self.high = candles.map(\.high)
      self.low = candles.map(\.low)
      self.close = candles.map(\.close)
      self.volume = candles.map(\.volume)
      self.segments = SeriesMath.segments(self.times, step: self.step)
      var position = [Int](repeating: 0, count: candles.count)
      for segment in self.segments {
        for i in segment { position[i] = i - segment.lowerBound }
      }
      self.position = position
    }

    var count: Int { self.times.count }

    /// A value computed once per frame.
    func memo(_ key: String, _ make: () -> [Double]) -> [Double] {
      if let value = self.memo[key] { return value }
      let value = make()
      self.memo[key] = value
      return value
    }

    /// A kernel of close run on each segment.
    func closeKernel(_ key: String, _ kernel: @escaping ([Double]) -> [Double]) -> [Double] {
      self.memo(key) {
        SeriesMath.perSegment(self.segments, count: self.count) { kernel(Array(self.close[$0])) }
      }
    }

    /// A kernel of high, low, close run on each segment.
    func hlcKernel(
      _ key: String,
      _ kernel: @escaping ([Double], [Double], [Double]) -> [Double]
    ) -> [Double] {
      self.memo(key) {
        SeriesMath.perSegment(self.segments, count: self.count) {
          kernel(Array(self.high[$0]), Array(self.low[$0]), Array(self.close[$0]))
        }
      }
    }

    /// One-bar log returns (NaN on the first bar of each segment).
    var logReturns: [Double] {
      self.memo("lr1") { SeriesMath.logReturn(self.close, k: 1, position: self.position) }
    }

    /// Completed higher-timeframe bars of the target, their own context, and for each target
    /// row the index of the latest one closed by the row's close.
    lazy var h4: Higher = Higher(self, interval: .h4)
    lazy var d1: Higher = Higher(self, interval: .d1)
  }

  /// A higher timeframe of the target, resampled from its own bars.
  final class Higher {
    let context: Context
    let alignment: [Int?]

    init(_ base: Context, interval: CandleInterval) {
      let bars = CandleResampler.resample(
        base.inputs.candles,
        from: base.inputs.interval,
        to: interval
      )
      self.context = Context(
        FeatureInputs(
          symbol: base.inputs.symbol,
          interval: interval,
          candles: bars,
          references: [:]
        )
      )
      self.alignment = SeriesMath.alignCompleted(
        base.times,
        step: base.step,
        higherOpenTimes: self.context.times,
        higherStep: interval.milliseconds
      )
    }

    /// A higher-timeframe column read at each target row.
    func aligned(_ values: [Double]) -> [Double] {
      self.alignment.map { $0.map { values[$0] } ?? .nan }
    }
  }

  // MARK: Column builders

  static func column(
    _ name: String,
    _ group: String,
    lookback: Int,
    scaled: Bool = true,
    _ definition: String,
    _ compute: @escaping @Sendable (Context) -> [Double]
  ) -> Spec {
    Spec(
      column: FeatureColumn(
        name: name,
        definition: definition,
        lookback: lookback,
        group: group,
        scaled: scaled
      ),
      compute: compute
    )
  }

  static func ratio(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 / $1 } }
  static func logRatio(_ a: [Double], _ b: [Double]) -> [Double] {
    zip(a, b).map { Foundation.log($0 / $1) }
  }
  static func scaled(_ a: [Double], _ factor: Double) -> [Double] { a.map { $0 * factor } }

  /// Bars per year at an interval, for annualising volatility.
  static func barsPerYear(_ step: Int64) -> Double { 365 * 86_400_000 / Double(step) }

  /// Columns read on a higher timeframe: lookback in target bars is the worst case over how
  /// the target bar sits inside the higher bar.
  static func higherLookback(_ bars: Int, ratio: Int) -> Int { bars * ratio + ratio - 1 }

  static var specs: [Spec] {
    var specs: [Spec] = []
    // Returns.
    for k in [1, 3, 6, 12, 24, 72, 168] {
      specs.append(
        column("logret_\(k)", "returns", lookback: k + 1, "ln(close[t] / close[t-\(k)])") { c in
          SeriesMath.logReturn(c.close, k: k, position: c.position)
        }
      )
    }
    // Volatility.
    for w in [24, 72, 168] {
      specs.append(
        column(
          "rvol_\(w)",
          "volatility",
          lookback: w + 1,
          "population standard deviation of the last \(w) one-bar log returns"
        ) { c in
          SeriesMath.rollingMoments(c.logReturns, w: w).std
        }
      )
    }
    specs.append(
      column(
        "hvol_20",
        "volatility",
        lookback: 21,
        "historical volatility: sample standard deviation (ddof 1) of the last 20 one-bar log returns, annualised by sqrt(bars per 365-day year)"
      ) { c in
        scaled(
          SeriesMath.rollingMoments(c.logReturns, w: 20, ddof: 1).std,
          barsPerYear(c.step).squareRoot()
        )
      }
    )
    specs.append(
      column(
        "natr_14",
        "volatility",
        lookback: 15,
        "TA-Lib NATR(14) / 100: Wilder ATR(14) divided by close"
      ) { c in
        scaled(
          c.hlcKernel("natr14") { Indicators.NATR(period: 14)(high: $0, low: $1, close: $2) },
          0.01
        )
      }
    )
    specs.append(
      column(
        "bb_width_20",
        "volatility",
        lookback: 20,
        "(upper - lower) / middle of TA-Lib BBANDS(20, 2, 2) (SMA middle, population std-dev)"
      ) { c in
        let bands = bbands(c)
        return zip(bands.upper, zip(bands.lower, bands.middle)).map { ($0 - $1.0) / $1.1 }
      }
    )
    specs.append(
      column("stddev_20_rel", "volatility", lookback: 20, "TA-Lib STDDEV(close, 20, 1) / close") {
        c in
        ratio(c.closeKernel("stddev20") { Indicators.StdDev(period: 20)($0) }, c.close)
      }
    )
    specs.append(
      column(
        "parkinson_24",
        "volatility",
        lookback: 24,
        "Parkinson range volatility over 24 bars: sqrt(mean(ln(high/low)^2) / (4 ln 2))"
      ) { c in
        let squared = zip(c.high, c.low).map { pow(Foundation.log($0 / $1), 2) }
        return segmentMoments(c, "parkinson", squared, w: 24).mean.map {
          ($0 / (4 * Foundation.log(2.0))).squareRoot()
        }
      }
    )
    // Momentum.
    for period in [6, 14] {
      specs.append(
        column(
          "rsi_\(period)",
          "momentum",
          lookback: period + 1,
          "TA-Lib RSI(\(period)) / 100 (Wilder smoothing seeded with an SMA)"
        ) { c in
          scaled(c.closeKernel("rsi\(period)") { Indicators.RSI(period: period)($0) }, 0.01)
        }
      )
    }
    for (name, part) in [("macd_rel", 0), ("macd_signal_rel", 1), ("macd_hist_rel", 2)] {
      let label = ["MACD line", "signal line", "histogram"][part]
      specs.append(
        column(name, "momentum", lookback: 34, "TA-Lib MACD(12, 26, 9) \(label) divided by close") {
          c in
          ratio(macd(c)[part], c.close)
        }
      )
    }
    specs.append(
      column("roc_10", "momentum", lookback: 11, "TA-Lib ROC(10) / 100: close[t] / close[t-10] - 1")
      { c in
        scaled(c.closeKernel("roc10") { Indicators.ROC(period: 10)($0) }, 0.01)
      }
    )
    for (name, part) in [("stoch_k", 0), ("stoch_d", 1)] {
      specs.append(
        column(
          name,
          "momentum",
          lookback: 18,
          "TA-Lib STOCH(14, 3 SMA, 3 SMA) \(part == 0 ? "slow %K" : "slow %D") / 100"
        ) { c in
          scaled(stoch(c)[part], 0.01)
        }
      )
    }
    specs.append(
      column("willr_14", "momentum", lookback: 14, "TA-Lib WILLR(14) / 100, in [-1, 0]") { c in
        scaled(
          c.hlcKernel("willr14") { Indicators.WillR(period: 14)(high: $0, low: $1, close: $2) },
          0.01
        )
      }
    )
    specs.append(
      column("cci_20", "momentum", lookback: 20, "TA-Lib CCI(20) / 100") { c in
        scaled(
          c.hlcKernel("cci20") { Indicators.CCI(period: 20)(high: $0, low: $1, close: $2) },
          0.01
        )
      }
    )
    specs.append(
      column("adx_14", "momentum", lookback: 28, "TA-Lib ADX(14) / 100") { c in
        scaled(adx(c)[0], 0.01)
      }
    )
    specs.append(
      column("plus_di_14", "momentum", lookback: 15, "TA-Lib PLUS_DI(14) / 100") { c in
        scaled(adx(c)[1], 0.01)
      }
    )
    specs.append(
      column("minus_di_14", "momentum", lookback: 15, "TA-Lib MINUS_DI(14) / 100") { c in
        scaled(adx(c)[2], 0.01)
      }
    )
    specs.append(
      column("mfi_14", "momentum", lookback: 15, "TA-Lib MFI(14) / 100") { c in
        scaled(
          c.memo("mfi14") {
            SeriesMath.perSegment(c.segments, count: c.count) {
              Indicators.MFI(period: 14)(
                high: Array(c.high[$0]),
                low: Array(c.low[$0]),
                close: Array(c.close[$0]),
                volume: Array(c.volume[$0])
              )
            }
          },
          0.01
        )
      }
    )
    // Trend.
    specs.append(
      column("close_sma_20", "trend", lookback: 20, "ln(close / SMA(close, 20))") { c in
        logRatio(c.close, c.closeKernel("sma20") { Indicators.SMA(period: 20)($0) })
      }
    )
    specs.append(
      column(
        "close_ema_50",
        "trend",
        lookback: 50,
        "ln(close / EMA(close, 50)), EMA seeded with an SMA (TA-Lib)"
      ) { c in
        logRatio(c.close, c.closeKernel("ema50") { Indicators.EMA(period: 50)($0) })
      }
    )
    specs.append(
      column("close_sma_200", "trend", lookback: 200, "ln(close / SMA(close, 200))") { c in
        logRatio(c.close, c.closeKernel("sma200") { Indicators.SMA(period: 200)($0) })
      }
    )
    specs.append(
      column(
        "ema_12_26",
        "trend",
        lookback: 26,
        "ln(EMA(close, 12) / EMA(close, 26)), both SMA-seeded (TA-Lib)"
      ) { c in
        logRatio(
          c.closeKernel("ema12") { Indicators.EMA(period: 12)($0) },
          c.closeKernel("ema26") { Indicators.EMA(period: 26)($0) }
        )
      }
    )
    specs.append(
      column("sma_50_200", "trend", lookback: 200, "ln(SMA(close, 50) / SMA(close, 200))") { c in
        logRatio(
          c.closeKernel("sma50") { Indicators.SMA(period: 50)($0) },
          c.closeKernel("sma200") { Indicators.SMA(period: 200)($0) }
        )
      }
    )
    specs.append(
      column(
        "bb_pctb_20",
        "trend",
        lookback: 20,
        "Bollinger %b: (close - lower) / (upper - lower) of TA-Lib BBANDS(20, 2, 2); missing when the bands coincide"
      ) { c in
        percentB(c)
      }
    )
    // Volume.
    for w in [24, 168] {
      specs.append(
        column(
          "volume_z_\(w)",
          "volume",
          lookback: w,
          "(volume - mean) / population std-dev of volume over the last \(w) bars (current included); missing when the std-dev is 0"
        ) { c in
          let (mean, std) = segmentMoments(c, "volume", c.volume, w: w)
          return (0 ..< c.count).map { std[$0] > 0 ? (c.volume[$0] - mean[$0]) / std[$0] : .nan }
        }
      )
    }
    specs.append(
      column(
        "volume_ratio_24",
        "volume",
        lookback: 24,
        "volume / SMA(volume, 24); missing when the average is 0"
      ) { c in
        let mean = segmentMoments(c, "volume", c.volume, w: 24).mean
        return zip(c.volume, mean).map { $1 > 0 ? $0 / $1 : .nan }
      }
    )
    specs.append(
      column(
        "obv_flow_24",
        "volume",
        lookback: 25,
        "(OBV[t] - OBV[t-24]) / sum of volume over bars t-23..t: signed share of volume in 24 bars (TA-Lib OBV; differences do not depend on where OBV starts)"
      ) { c in
        let obv = c.memo("obv") {
          SeriesMath.perSegment(c.segments, count: c.count) {
            Indicators.OBV()(close: Array(c.close[$0]), volume: Array(c.volume[$0]))
          }
        }
        let total = segmentMoments(c, "volume", c.volume, w: 24).mean.map { $0 * 24 }
        return (0 ..< c.count).map { i in
          guard c.position[i] >= 24, total[i] > 0 else { return .nan }
          return (obv[i] - obv[i - 24]) / total[i]
        }
      }
    )
    // Candle shape.
    specs.append(
      column("body", "candle", lookback: 1, "(close - open) / (high - low); 0 when high == low") {
        c in
        (0 ..< c.count).map {
          c.high[$0] > c.low[$0] ? (c.close[$0] - c.open[$0]) / (c.high[$0] - c.low[$0]) : 0
        }
      }
    )
    specs.append(
      column("upper_wick", "candle", lookback: 1, "(high - max(open, close)) / close") { c in
        (0 ..< c.count).map { (c.high[$0] - max(c.open[$0], c.close[$0])) / c.close[$0] }
      }
    )
    specs.append(
      column("lower_wick", "candle", lookback: 1, "(min(open, close) - low) / close") { c in
        (0 ..< c.count).map { (min(c.open[$0], c.close[$0]) - c.low[$0]) / c.close[$0] }
      }
    )
    specs.append(
      column("range_pct", "candle", lookback: 1, "(high - low) / close") { c in
        (0 ..< c.count).map { (c.high[$0] - c.low[$0]) / c.close[$0] }
      }
    )
    specs.append(
      column("gap_open", "candle", lookback: 2, "ln(open[t] / close[t-1])") { c in
        (0 ..< c.count).map {
          c.position[$0] >= 1 ? Foundation.log(c.open[$0] / c.close[$0 - 1]) : .nan
        }
      }
    )
    // Calendar (of the bar's open time, UTC).
    for (name, period, label) in [
      ("hour", Int64(86_400_000), "hour of day"),
      ("dow", Int64(7 * 86_400_000), "day of week (Monday 0)"),
    ] {
      for (suffix, function) in [("sin", sin as @Sendable (Double) -> Double), ("cos", cos)] {
        specs.append(
          column(
            "\(name)_\(suffix)",
            "calendar",
            lookback: 1,
            scaled: false,
            "\(suffix)(2π × \(label) / \(name == "hour" ? 24 : 7)) at the bar's open time (UTC)"
          ) { c in
            // 1970-01-01 was a Thursday: shift by 3 days so Monday is 0.
            let offset: Int64 = name == "dow" ? 3 * 86_400_000 : 0
            // Whole hours for the hour of day, whole days for the day of week.
            let unit: Int64 = name == "hour" ? 3_600_000 : 86_400_000
            return c.times.map { t in
              let shifted = t + offset
              let phase =
                Double(
                  shifted.floorDivided(by: unit) * unit - shifted.floorDivided(by: period) * period
                ) / Double(period)
              return function(2 * Double.pi * phase)
            }
          }
        )
      }
    }
    // Higher timeframes, from completed bars only.
    for (prefix, hours, higher) in [("h4", 4, \Context.h4), ("d1", 24, \Context.d1)] {
      let frame = prefix == "h4" ? "4h" : "1d"
      typealias HigherSpec = (
        name: String, bars: Int, definition: String, compute: @Sendable (Context) -> [Double]
      )
      let long = prefix == "h4" ? 6 : 7
      var higherSpecs: [HigherSpec] = []
      higherSpecs.append(
        (
          "logret_1", 2, "ln(close / previous close)",
          { SeriesMath.logReturn($0.close, k: 1, position: $0.position) }
        )
      )
      higherSpecs.append(
        (
          "logret_\(long)", long + 1, "ln(close / close \(long) bars earlier)",
          { SeriesMath.logReturn($0.close, k: long, position: $0.position) }
        )
      )
      higherSpecs.append(
        (
          "rsi_14", 15, "TA-Lib RSI(14) / 100",
          { scaled($0.closeKernel("rsi14") { Indicators.RSI(period: 14)($0) }, 0.01) }
        )
      )
      higherSpecs.append(
        (
          "natr_14", 15, "TA-Lib NATR(14) / 100",
          {
            scaled(
              $0.hlcKernel("natr14") { Indicators.NATR(period: 14)(high: $0, low: $1, close: $2) },
              0.01
            )
          }
        )
      )
      higherSpecs.append(("bb_pctb_20", 20, "Bollinger %b of BBANDS(20, 2, 2)", { percentB($0) }))
      higherSpecs.append(
        (
          "close_sma_20", 20, "ln(close / SMA(close, 20))",
          { logRatio($0.close, $0.closeKernel("sma20") { Indicators.SMA(period: 20)($0) }) }
        )
      )
      if prefix == "h4" {
        higherSpecs.append(
          (
            "macd_hist_rel", 34, "TA-Lib MACD(12, 26, 9) histogram / close",
            { ratio(macd($0)[2], $0.close) }
          )
        )
        higherSpecs.append(("adx_14", 28, "TA-Lib ADX(14) / 100", { scaled(adx($0)[0], 0.01) }))
      }
      for (name, bars, definition, compute) in higherSpecs {
        specs.append(
          column(
            "\(prefix)_\(name)",
            "timeframe_\(frame)",
            lookback: higherLookback(bars, ratio: hours),
            "\(definition), on \(frame) bars resampled from complete 1h buckets, read from the latest \(frame) bar closed by the row's close"
          ) { c in
            let h = c[keyPath: higher]
            return h.aligned(compute(h.context))
          }
        )
      }
    }
    // Cross-asset.
    for reference in FeatureSet.v1References {
      let r = reference.replacingOccurrences(of: "USDT", with: "").lowercased()
      specs.append(
        column(
          "\(r)_logret_1",
          "cross_asset",
          lookback: 2,
          "\(reference): ln(close[t] / close[t-1]) from its own 1h series"
        ) { c in
          referenceReturn(c, reference, k: 1)
        }
      )
      specs.append(
        column(
          "\(r)_logret_24",
          "cross_asset",
          lookback: 25,
          "\(reference): ln(close[t] / close[t-24]) from its own 1h series"
        ) { c in
          referenceReturn(c, reference, k: 24)
        }
      )
      specs.append(
        column(
          "\(r)_corr_72",
          "cross_asset",
          lookback: 73,
          "Pearson correlation of the target's and \(reference)'s one-bar log returns over the last 72 bars (1 for the symbol itself)"
        ) { c in
          SeriesMath.rollingCorrelation(c.logReturns, referenceReturn(c, reference, k: 1), w: 72)
        }
      )
      specs.append(
        column(
          "\(r)_rs_24",
          "cross_asset",
          lookback: 25,
          "relative strength: ln(close[t]/close[t-24]) of the target minus that of \(reference) (0 for the symbol itself)"
        ) { c in
          zip(
            SeriesMath.logReturn(c.close, k: 24, position: c.position),
            referenceReturn(c, reference, k: 24)
          ).map { $0 - $1 }
        }
      )
    }
    return specs
  }

  // MARK: Shared intermediates

  static func bbands(_ c: Context) -> (upper: [Double], middle: [Double], lower: [Double]) {
    let parts = ["upper", "middle", "lower"].map { part in
      c.memo("bb20.\(part)") {
        SeriesMath.perSegment(c.segments, count: c.count) { segment in
          let bands = Indicators.BBands(period: 20)(Array(c.close[segment]))
          return part == "upper" ? bands.upper : part == "middle" ? bands.middle : bands.lower
        }
      }
    }
    return (parts[0], parts[1], parts[2])
  }

  static func percentB(_ c: Context) -> [Double] {
    let bands = bbands(c)
    return (0 ..< c.count).map { i in
      let width = bands.upper[i] - bands.lower[i]
      return width > 0 ? (c.close[i] - bands.lower[i]) / width : .nan
    }
  }

  static func macd(_ c: Context) -> [[Double]] {
    ["macd", "signal", "histogram"].map { part in
      c.memo("macd.\(part)") {
        SeriesMath.perSegment(c.segments, count: c.count) { segment in
          let output = Indicators.MACD(fast: 12, slow: 26, signal: 9)(Array(c.close[segment]))
          return part == "macd" ? output.macd : part == "signal" ? output.signal : output.histogram
        }
      }
    }
  }

  static func stoch(_ c: Context) -> [[Double]] {
    ["k", "d"].map { part in
      c.memo("stoch.\(part)") {
        SeriesMath.perSegment(c.segments, count: c.count) { segment in
          let output = Indicators.Stoch(fastK: 14, slowK: 3, slowD: 3)(
            high: Array(c.high[segment]),
            low: Array(c.low[segment]),
            close: Array(c.close[segment])
          )
          return part == "k" ? output.slowK : output.slowD
        }
      }
    }
  }

  static func adx(_ c: Context) -> [[Double]] {
    ["adx", "plus", "minus"].map { part in
      c.memo("adx.\(part)") {
        SeriesMath.perSegment(c.segments, count: c.count) { segment in
          let output = Indicators.ADX(period: 14).components(
            high: Array(c.high[segment]),
            low: Array(c.low[segment]),
            close: Array(c.close[segment])
          )
          return part == "adx" ? output.adx : part == "plus" ? output.plusDI : output.minusDI
        }
      }
    }
  }

  /// Rolling mean and population std-dev of `x` over `w` bars, restarting after every gap.
  static func segmentMoments(
    _ c: Context,
    _ key: String,
    _ x: [Double],
    w: Int
  ) -> (mean: [Double], std: [Double]) {
    let meanKey = "\(key).mean.\(w)", stdKey = "\(key).std.\(w)"
    if let mean = c.memo[meanKey], let std = c.memo[stdKey] { return (mean, std) }
    var mean = [Double](repeating: .nan, count: c.count)
    var std = mean
    for segment in c.segments {
      let moments = SeriesMath.rollingMoments(Array(x[segment]), w: w)
      for (offset, i) in segment.enumerated() {
        mean[i] = moments.mean[offset]
        std[i] = moments.std[offset]
      }
    }
    c.memo[meanKey] = mean
    c.memo[stdKey] = std
    return (mean, std)
  }

  /// A reference symbol's k-bar log return at each target row, from its own series (the
  /// target's own when the reference is the target): NaN when either bar is missing.
  static func referenceReturn(_ c: Context, _ reference: String, k: Int) -> [Double] {
    c.memo("ref.\(reference).\(k)") {
      if reference == c.inputs.symbol {
        return SeriesMath.logReturn(c.close, k: k, position: c.position)
      }
      guard let series = c.inputs.references[reference], !series.isEmpty else {
        return [Double](repeating: .nan, count: c.count)
      }
      var byTime: [Int64: Double] = [:]
      byTime.reserveCapacity(series.count)
      for candle in series { byTime[candle.openTime] = candle.close }
      let span = Int64(k) * c.step
      return c.times.map { t in
        guard let now = byTime[t], let then = byTime[t - span] else { return .nan }
        return Foundation.log(now / then)
      }
    }
  }

  // MARK: Frame

  static func frame(_ inputs: FeatureInputs, specs: [Spec]) -> FeatureFrame {
    let context = Context(inputs)
    let columns = specs.map { $0.compute(context) }
    var status = [RowStatus](repeating: .complete, count: context.count)
    let firstTime = context.times.first ?? 0
    for r in 0 ..< context.count {
      for (c, spec) in specs.enumerated() where !columns[c][r].isFinite {
        let lookback = spec.column.lookback
        if context.times[r] - firstTime < Int64(lookback - 1) * context.step {
          status[r] = .warmup
        } else if context.position[r] < lookback - 1 || Self.higherGap(context, spec, row: r) {
          status[r] = .gap
        } else {
          status[r] = .missingFeature
        }
        break
      }
    }
    return FeatureFrame(
      symbol: inputs.symbol,
      interval: inputs.interval,
      openTimes: context.times,
      columns: columns,
      status: status
    )
  }

  /// Whether a higher-timeframe column is missing because bars inside its window are.
  static func higherGap(_ c: Context, _ spec: Spec, row: Int) -> Bool {
    guard spec.column.group.hasPrefix("timeframe_") else { return false }
    let window = Int64(spec.column.lookback) * c.step
    let start = c.times[row] - window
    // Any missing target bar within the window (binary search for the window's first bar).
    var low = 0, high = row
    while low < high {
      let mid = (low + high) / 2
      if c.times[mid] < start { low = mid + 1 } else { high = mid }
    }
    return Int64(row - low) < window / c.step - 1 || c.position[row] < row - low
  }
}
