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
      makeStream: { symbol, interval in
        V1.Stream(symbol: symbol, interval: interval, values: specs.map(\.value))
      }
    )
  }()
}

/// The `v1` columns and their computation: one stream of kernels over the market's bars, whose
/// state after each bar the columns read.
enum V1 {
  /// A column and how it reads the state after a bar. The state is passed by address: through a
  /// closure stored in an array, a value parameter would be copied whole for every column.
  struct Spec: Sendable {
    var column: FeatureColumn
    var value: @Sendable (UnsafePointer<Stream>) -> Double
  }

  /// TA-Lib's kernels and the rolling statistics that start over after every gap in the bars
  /// (an indicator never reads across a missing bar).
  struct Kernels: Sendable {
    var natr14 = Indicators.NATR.Stream(Indicators.NATR(period: 14))
    var bands = Indicators.BBands.Stream(Indicators.BBands(period: 20))
    var stddev20 = Indicators.StdDev.Stream(Indicators.StdDev(period: 20))
    var rsi6 = Indicators.RSI.Stream(Indicators.RSI(period: 6))
    var rsi14 = Indicators.RSI.Stream(Indicators.RSI(period: 14))
    var macd = Indicators.MACD.Stream(Indicators.MACD(fast: 12, slow: 26, signal: 9))
    var roc10 = Indicators.ROC.Stream(Indicators.ROC(period: 10))
    var stoch = Indicators.Stoch.Stream(Indicators.Stoch(fastK: 14, slowK: 3, slowD: 3))
    var willr14 = Indicators.WillR.Stream(Indicators.WillR(period: 14))
    var cci20 = Indicators.CCI.Stream(Indicators.CCI(period: 20))
    var adx14 = Indicators.ADX.Stream(Indicators.ADX(period: 14))
    var mfi14 = Indicators.MFI.Stream(Indicators.MFI(period: 14))
    var sma20 = Indicators.SMA.Stream(Indicators.SMA(period: 20))
    var ema50 = Indicators.EMA.Stream(Indicators.EMA(period: 50))
    var sma200 = Indicators.SMA.Stream(Indicators.SMA(period: 200))
    var ema12 = Indicators.EMA.Stream(Indicators.EMA(period: 12))
    var ema26 = Indicators.EMA.Stream(Indicators.EMA(period: 26))
    var sma50 = Indicators.SMA.Stream(Indicators.SMA(period: 50))
    var obv = Indicators.OBV.Stream()
    var parkinson24 = RollingMoments(w: 24)
    var volume24 = RollingMoments(w: 24)
    var volume168 = RollingMoments(w: 168)
  }

  /// The state after a market's latest bar: the bar, its gap-free run, and every kernel's
  /// value for it.
  struct Stream: FeatureRowStream {
    let step: Int64
    let interval: CandleInterval
    /// Per reference symbol: whether it is the target itself.
    let isTarget: [Bool]
    let values: [@Sendable (UnsafePointer<Stream>) -> Double]

    // The bar.
    var time: Int64 = 0
    var open = Double.nan, high = Double.nan, low = Double.nan, close = Double.nan
    var volume = Double.nan
    /// Position in the gap-free run (0: the first bar after a gap); -1 before any bar.
    var position = -1
    /// Closes of the run, this bar's last (enough for the longest return).
    var closes = RecentValues(capacity: 169)
    /// ln(close / previous close); NaN on a run's first bar.
    var logReturn1 = Double.nan

    var kernels = Kernels()
    var natr14 = Double.nan, stddev20 = Double.nan, rsi6 = Double.nan, rsi14 = Double.nan
    var roc10 = Double.nan, willr14 = Double.nan, cci20 = Double.nan, mfi14 = Double.nan
    var sma20 = Double.nan, ema50 = Double.nan, sma200 = Double.nan, ema12 = Double.nan
    var ema26 = Double.nan, sma50 = Double.nan
    var bands = Indicators.BBands.Value(upper: .nan, middle: .nan, lower: .nan)
    var macd = Indicators.MACD.Value(macd: .nan, signal: .nan, histogram: .nan)
    var stoch = Indicators.Stoch.Value(slowK: .nan, slowD: .nan)
    var adx = Indicators.ADX.Value(adx: .nan, plusDI: .nan, minusDI: .nan)
    /// OBV over the run, this bar's last (for 24-bar differences).
    var obv = RecentValues(capacity: 25)
    var parkinson24 = Double.nan
    var volume24 = (mean: Double.nan, std: Double.nan)
    var volume168 = (mean: Double.nan, std: Double.nan)

    // Statistics of one-bar returns: the missing return after a gap starts them over.
    var returns24 = RollingMoments(w: 24), returns72 = RollingMoments(w: 72)
    var returns168 = RollingMoments(w: 168), returns20 = RollingMoments(w: 20, ddof: 1)
    var rvol24 = Double.nan, rvol72 = Double.nan, rvol168 = Double.nan, hvol20 = Double.nan

    // Cross-asset, per reference symbol.
    var correlations: [RollingCorrelation]
    var referenceReturn1: [Double]
    var referenceReturn24: [Double]
    var correlation72: [Double]

    var h4: Higher
    var d1: Higher

    init(
      symbol: String,
      interval: CandleInterval,
      values: [@Sendable (UnsafePointer<Stream>) -> Double]
    ) {
      self.step = interval.milliseconds
      self.interval = interval
      self.isTarget = FeatureSet.v1References.map { $0 == symbol }
      self.values = values
      let references = FeatureSet.v1References.count
      self.correlations = Array(repeating: RollingCorrelation(w: 72), count: references)
      self.referenceReturn1 = Array(repeating: .nan, count: references)
      self.referenceReturn24 = self.referenceReturn1
      self.correlation72 = self.referenceReturn1
      self.h4 = Higher(interval: .h4, base: interval, longReturn: 6)
      self.d1 = Higher(interval: .d1, base: interval, longReturn: 7)
    }

    /// ln(close / close k bars earlier) within the run, else NaN.
    func logReturn(_ k: Int) -> Double {
      self.position >= k ? Foundation.log(self.close / self.closes.back(k)) : .nan
    }

    mutating func next(_ bar: Candle, references: FeatureReferences) {
      if self.position >= 0, bar.openTime - self.time == self.step {
        self.position += 1
      } else {
        self.position = 0
        self.closes.reset()
        self.obv.reset()
        self.kernels = Kernels()
      }
      self.time = bar.openTime
      (self.open, self.high, self.low, self.close) = (bar.open, bar.high, bar.low, bar.close)
      self.volume = bar.volume
      self.closes.push(bar.close)
      // Returns read straight from the run (a method of `self` here would copy the state).
      let position = self.position
      self.logReturn1 = position >= 1 ? Foundation.log(bar.close / self.closes.back(1)) : .nan
      let ownReturn24 = position >= 24 ? Foundation.log(bar.close / self.closes.back(24)) : .nan

      let (high, low, close, volume) = (bar.high, bar.low, bar.close, bar.volume)
      self.natr14 = self.kernels.natr14.update(high: high, low: low, close: close)
      self.bands = self.kernels.bands.update(close)
      self.stddev20 = self.kernels.stddev20.update(close)
      self.rsi6 = self.kernels.rsi6.update(close)
      self.rsi14 = self.kernels.rsi14.update(close)
      self.macd = self.kernels.macd.update(close)
      self.roc10 = self.kernels.roc10.update(close)
      self.stoch = self.kernels.stoch.update(high: high, low: low, close: close)
      self.willr14 = self.kernels.willr14.update(high: high, low: low, close: close)
      self.cci20 = self.kernels.cci20.update(high: high, low: low, close: close)
      self.adx = self.kernels.adx14.update(high: high, low: low, close: close)
      self.mfi14 = self.kernels.mfi14.update(high: high, low: low, close: close, volume: volume)
      self.sma20 = self.kernels.sma20.update(close)
      self.ema50 = self.kernels.ema50.update(close)
      self.sma200 = self.kernels.sma200.update(close)
      self.ema12 = self.kernels.ema12.update(close)
      self.ema26 = self.kernels.ema26.update(close)
      self.sma50 = self.kernels.sma50.update(close)
      self.obv.push(self.kernels.obv.update(close: close, volume: volume))
      self.parkinson24 = self.kernels.parkinson24.update(pow(Foundation.log(high / low), 2)).mean
      self.volume24 = self.kernels.volume24.update(volume)
      self.volume168 = self.kernels.volume168.update(volume)

      self.rvol24 = self.returns24.update(self.logReturn1).std
      self.rvol72 = self.returns72.update(self.logReturn1).std
      self.rvol168 = self.returns168.update(self.logReturn1).std
      self.hvol20 = self.returns20.update(self.logReturn1).std

      for i in self.isTarget.indices {
        let (r1, r24) =
          self.isTarget[i]
          ? (self.logReturn1, ownReturn24)
          : (
            Self.referenceReturn(references, i, at: bar.openTime, k: 1, step: self.step),
            Self.referenceReturn(references, i, at: bar.openTime, k: 24, step: self.step)
          )
        self.referenceReturn1[i] = r1
        self.referenceReturn24[i] = r24
        self.correlation72[i] = self.correlations[i].update(self.logReturn1, r1)
      }

      self.h4.next(bar, baseStep: self.step)
      self.d1.next(bar, baseStep: self.step)
    }

    func row(into row: UnsafeMutableBufferPointer<Double>) {
      let values = self.values
      withUnsafePointer(to: self) { state in
        for c in values.indices { row[c] = values[c](state) }
      }
    }

    /// Another symbol's ln(close[t] / close[t-k]) from its own series.
    static func referenceReturn(
      _ references: FeatureReferences,
      _ index: Int,
      at time: Int64,
      k: Int,
      step: Int64
    ) -> Double {
      guard let now = references.close(index, at: time),
        let then = references.close(index, at: time - Int64(k) * step)
      else { return .nan }
      return Foundation.log(now / then)
    }
  }

  /// A higher timeframe of the target, resampled from its own bars: complete buckets only, each
  /// run through its own kernels when its last bar arrives.
  struct Higher: Sendable {
    let interval: CandleInterval
    let base: CandleInterval
    let longReturn: Int
    private var bucketStart: Int64 = .min
    private var bucket: [Candle] = []

    // The latest complete bar and its run.
    private(set) var time: Int64 = .min
    private var position = -1
    private var closes: RecentValues
    var close = Double.nan
    private var rsi14 = Indicators.RSI.Stream(Indicators.RSI(period: 14))
    private var natr14 = Indicators.NATR.Stream(Indicators.NATR(period: 14))
    private var bands = Indicators.BBands.Stream(Indicators.BBands(period: 20))
    private var sma20 = Indicators.SMA.Stream(Indicators.SMA(period: 20))
    private var macd = Indicators.MACD.Stream(Indicators.MACD(fast: 12, slow: 26, signal: 9))
    private var adx14 = Indicators.ADX.Stream(Indicators.ADX(period: 14))
    private(set) var values = Values()
    /// Whether the latest complete bar is the one the target's latest bar reads: the bar that
    /// closed last by the target bar's close (missing when its bucket was incomplete).
    private(set) var aligned = false

    struct Values: Sendable {
      var logReturn1 = Double.nan, logReturnLong = Double.nan, rsi14 = Double.nan
      var natr14 = Double.nan, sma20 = Double.nan
      var bands = Indicators.BBands.Value(upper: .nan, middle: .nan, lower: .nan)
      var macd = Indicators.MACD.Value(macd: .nan, signal: .nan, histogram: .nan)
      var adx = Indicators.ADX.Value(adx: .nan, plusDI: .nan, minusDI: .nan)
    }

    init(interval: CandleInterval, base: CandleInterval, longReturn: Int) {
      self.interval = interval
      self.base = base
      self.longReturn = longReturn
      self.closes = RecentValues(capacity: longReturn + 1)
    }

    /// Takes the target's next bar.
    mutating func next(_ bar: Candle, baseStep: Int64) {
      let length = self.interval.milliseconds
      let start = bar.openTime.floorDivided(by: length) * length
      if start != self.bucketStart {
        self.bucketStart = start
        self.bucket.removeAll(keepingCapacity: true)
      }
      self.bucket.append(bar)
      // Ascending without duplicates: a full bucket is a complete one.
      if self.bucket.count == Int(length / baseStep) {
        self.advance(CandleResampler.merge(self.bucket[...], openTime: start))
      }
      let wanted = (bar.openTime + baseStep).floorDivided(by: length) * length - length
      self.aligned = self.time == wanted
    }

    private mutating func advance(_ bar: Candle) {
      if self.position >= 0, bar.openTime - self.time == self.interval.milliseconds {
        self.position += 1
      } else {
        self.position = 0
        self.closes.reset()
        self.rsi14 = Indicators.RSI.Stream(Indicators.RSI(period: 14))
        self.natr14 = Indicators.NATR.Stream(Indicators.NATR(period: 14))
        self.bands = Indicators.BBands.Stream(Indicators.BBands(period: 20))
        self.sma20 = Indicators.SMA.Stream(Indicators.SMA(period: 20))
        self.macd = Indicators.MACD.Stream(Indicators.MACD(fast: 12, slow: 26, signal: 9))
        self.adx14 = Indicators.ADX.Stream(Indicators.ADX(period: 14))
      }
      self.time = bar.openTime
      self.close = bar.close
      self.closes.push(bar.close)
      let long = self.longReturn
      self.values.logReturn1 =
        self.position >= 1 ? Foundation.log(bar.close / self.closes.back(1)) : .nan
      self.values.logReturnLong =
        self.position >= long ? Foundation.log(bar.close / self.closes.back(long)) : .nan
      self.values.rsi14 = self.rsi14.update(bar.close)
      self.values.natr14 = self.natr14.update(high: bar.high, low: bar.low, close: bar.close)
      self.values.bands = self.bands.update(bar.close)
      self.values.sma20 = self.sma20.update(bar.close)
      self.values.macd = self.macd.update(bar.close)
      self.values.adx = self.adx14.update(high: bar.high, low: bar.low, close: bar.close)
    }
  }

  // MARK: Column builders

  static func column(
    _ name: String,
    _ group: String,
    lookback: Int,
    scaled: Bool = true,
    _ definition: String,
    _ value: @escaping @Sendable (UnsafePointer<Stream>) -> Double
  ) -> Spec {
    Spec(
      column: FeatureColumn(
        name: name,
        definition: definition,
        lookback: lookback,
        group: group,
        scaled: scaled
      ),
      value: value
    )
  }

  /// Bars per year at an interval, for annualising volatility.
  static func barsPerYear(_ step: Int64) -> Double { 365 * 86_400_000 / Double(step) }

  /// Columns read on a higher timeframe: lookback in target bars is the worst case over how
  /// the target bar sits inside the higher bar.
  static func higherLookback(_ bars: Int, ratio: Int) -> Int { bars * ratio + ratio - 1 }

  /// Bollinger %b; NaN when the bands coincide.
  static func percentB(_ close: Double, _ bands: Indicators.BBands.Value) -> Double {
    let width = bands.upper - bands.lower
    return width > 0 ? (close - bands.lower) / width : .nan
  }

  static var specs: [Spec] {
    var specs: [Spec] = []
    // Returns.
    for k in [1, 3, 6, 12, 24, 72, 168] {
      specs.append(
        column("logret_\(k)", "returns", lookback: k + 1, "ln(close[t] / close[t-\(k)])") { s in
          s.pointee.logReturn(k)
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
        ) { s in
          w == 24 ? s.pointee.rvol24 : w == 72 ? s.pointee.rvol72 : s.pointee.rvol168
        }
      )
    }
    specs.append(
      column(
        "hvol_20",
        "volatility",
        lookback: 21,
        "historical volatility: sample standard deviation (ddof 1) of the last 20 one-bar log returns, annualised by sqrt(bars per 365-day year)"
      ) { s in
        s.pointee.hvol20 * barsPerYear(s.pointee.step).squareRoot()
      }
    )
    specs.append(
      column(
        "natr_14",
        "volatility",
        lookback: 15,
        "TA-Lib NATR(14) / 100: Wilder ATR(14) divided by close"
      ) { s in
        s.pointee.natr14 * 0.01
      }
    )
    specs.append(
      column(
        "bb_width_20",
        "volatility",
        lookback: 20,
        "(upper - lower) / middle of TA-Lib BBANDS(20, 2, 2) (SMA middle, population std-dev)"
      ) { s in
        (s.pointee.bands.upper - s.pointee.bands.lower) / s.pointee.bands.middle
      }
    )
    specs.append(
      column("stddev_20_rel", "volatility", lookback: 20, "TA-Lib STDDEV(close, 20, 1) / close") {
        s in
        s.pointee.stddev20 / s.pointee.close
      }
    )
    specs.append(
      column(
        "parkinson_24",
        "volatility",
        lookback: 24,
        "Parkinson range volatility over 24 bars: sqrt(mean(ln(high/low)^2) / (4 ln 2))"
      ) { s in
        (s.pointee.parkinson24 / (4 * Foundation.log(2.0))).squareRoot()
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
        ) { s in
          (period == 6 ? s.pointee.rsi6 : s.pointee.rsi14) * 0.01
        }
      )
    }
    for (name, part) in [("macd_rel", 0), ("macd_signal_rel", 1), ("macd_hist_rel", 2)] {
      let label = ["MACD line", "signal line", "histogram"][part]
      specs.append(
        column(name, "momentum", lookback: 34, "TA-Lib MACD(12, 26, 9) \(label) divided by close") {
          s in
          (part == 0
            ? s.pointee.macd.macd : part == 1 ? s.pointee.macd.signal : s.pointee.macd.histogram)
            / s.pointee.close
        }
      )
    }
    specs.append(
      column("roc_10", "momentum", lookback: 11, "TA-Lib ROC(10) / 100: close[t] / close[t-10] - 1")
      { s in
        s.pointee.roc10 * 0.01
      }
    )
    for (name, part) in [("stoch_k", 0), ("stoch_d", 1)] {
      specs.append(
        column(
          name,
          "momentum",
          lookback: 18,
          "TA-Lib STOCH(14, 3 SMA, 3 SMA) \(part == 0 ? "slow %K" : "slow %D") / 100"
        ) { s in
          (part == 0 ? s.pointee.stoch.slowK : s.pointee.stoch.slowD) * 0.01
        }
      )
    }
    specs.append(
      column("willr_14", "momentum", lookback: 14, "TA-Lib WILLR(14) / 100, in [-1, 0]") { s in
        s.pointee.willr14 * 0.01
      }
    )
    specs.append(
      column("cci_20", "momentum", lookback: 20, "TA-Lib CCI(20) / 100") { s in
        s.pointee.cci20 * 0.01
      }
    )
    specs.append(
      column("adx_14", "momentum", lookback: 28, "TA-Lib ADX(14) / 100") { s in
        s.pointee.adx.adx * 0.01
      }
    )
    specs.append(
      column("plus_di_14", "momentum", lookback: 15, "TA-Lib PLUS_DI(14) / 100") { s in
        s.pointee.adx.plusDI * 0.01
      }
    )
    specs.append(
      column("minus_di_14", "momentum", lookback: 15, "TA-Lib MINUS_DI(14) / 100") { s in
        s.pointee.adx.minusDI * 0.01
      }
    )
    specs.append(
      column("mfi_14", "momentum", lookback: 15, "TA-Lib MFI(14) / 100") { s in
        s.pointee.mfi14 * 0.01
      }
    )
    // Trend.
    specs.append(
      column("close_sma_20", "trend", lookback: 20, "ln(close / SMA(close, 20))") { s in
        Foundation.log(s.pointee.close / s.pointee.sma20)
      }
    )
    specs.append(
      column(
        "close_ema_50",
        "trend",
        lookback: 50,
        "ln(close / EMA(close, 50)), EMA seeded with an SMA (TA-Lib)"
      ) { s in
        Foundation.log(s.pointee.close / s.pointee.ema50)
      }
    )
    specs.append(
      column("close_sma_200", "trend", lookback: 200, "ln(close / SMA(close, 200))") { s in
        Foundation.log(s.pointee.close / s.pointee.sma200)
      }
    )
    specs.append(
      column(
        "ema_12_26",
        "trend",
        lookback: 26,
        "ln(EMA(close, 12) / EMA(close, 26)), both SMA-seeded (TA-Lib)"
      ) { s in
        Foundation.log(s.pointee.ema12 / s.pointee.ema26)
      }
    )
    specs.append(
      column("sma_50_200", "trend", lookback: 200, "ln(SMA(close, 50) / SMA(close, 200))") { s in
        Foundation.log(s.pointee.sma50 / s.pointee.sma200)
      }
    )
    specs.append(
      column(
        "bb_pctb_20",
        "trend",
        lookback: 20,
        "Bollinger %b: (close - lower) / (upper - lower) of TA-Lib BBANDS(20, 2, 2); missing when the bands coincide"
      ) { s in
        percentB(s.pointee.close, s.pointee.bands)
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
        ) { s in
          let (mean, std) = w == 24 ? s.pointee.volume24 : s.pointee.volume168
          return std > 0 ? (s.pointee.volume - mean) / std : .nan
        }
      )
    }
    specs.append(
      column(
        "volume_ratio_24",
        "volume",
        lookback: 24,
        "volume / SMA(volume, 24); missing when the average is 0"
      ) { s in
        s.pointee.volume24.mean > 0 ? s.pointee.volume / s.pointee.volume24.mean : .nan
      }
    )
    specs.append(
      column(
        "obv_flow_24",
        "volume",
        lookback: 25,
        "(OBV[t] - OBV[t-24]) / sum of volume over bars t-23..t: signed share of volume in 24 bars (TA-Lib OBV; differences do not depend on where OBV starts)"
      ) { s in
        let total = s.pointee.volume24.mean * 24
        guard s.pointee.position >= 24, total > 0 else { return .nan }
        return (s.pointee.obv.back(0) - s.pointee.obv.back(24)) / total
      }
    )
    // Candle shape.
    specs.append(
      column("body", "candle", lookback: 1, "(close - open) / (high - low); 0 when high == low") {
        s in
        s.pointee.high > s.pointee.low
          ? (s.pointee.close - s.pointee.open) / (s.pointee.high - s.pointee.low) : 0
      }
    )
    specs.append(
      column("upper_wick", "candle", lookback: 1, "(high - max(open, close)) / close") { s in
        (s.pointee.high - max(s.pointee.open, s.pointee.close)) / s.pointee.close
      }
    )
    specs.append(
      column("lower_wick", "candle", lookback: 1, "(min(open, close) - low) / close") { s in
        (min(s.pointee.open, s.pointee.close) - s.pointee.low) / s.pointee.close
      }
    )
    specs.append(
      column("range_pct", "candle", lookback: 1, "(high - low) / close") { s in
        (s.pointee.high - s.pointee.low) / s.pointee.close
      }
    )
    specs.append(
      column("gap_open", "candle", lookback: 2, "ln(open[t] / close[t-1])") { s in
        s.pointee.position >= 1 ? Foundation.log(s.pointee.open / s.pointee.closes.back(1)) : .nan
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
          ) { s in
            // 1970-01-01 was a Thursday: shift by 3 days so Monday is 0.
            let offset: Int64 = name == "dow" ? 3 * 86_400_000 : 0
            // Whole hours for the hour of day, whole days for the day of week.
            let unit: Int64 = name == "hour" ? 3_600_000 : 86_400_000
            let shifted = s.pointee.time + offset
            let phase =
              Double(
                shifted.floorDivided(by: unit) * unit - shifted.floorDivided(by: period) * period
              ) / Double(period)
            return function(2 * Double.pi * phase)
          }
        )
      }
    }
    // Higher timeframes, from completed bars only.
    for (prefix, hours) in [("h4", 4), ("d1", 24)] {
      let frame = prefix == "h4" ? "4h" : "1d"
      typealias HigherSpec = (
        name: String, bars: Int, definition: String,
        value: @Sendable (Higher.Values, Double) -> Double
      )
      let long = prefix == "h4" ? 6 : 7
      var higherSpecs: [HigherSpec] = [
        ("logret_1", 2, "ln(close / previous close)", { v, _ in v.logReturn1 }),
        (
          "logret_\(long)", long + 1, "ln(close / close \(long) bars earlier)",
          { v, _ in
            v.logReturnLong
          }
        ),
        ("rsi_14", 15, "TA-Lib RSI(14) / 100", { v, _ in v.rsi14 * 0.01 }),
        ("natr_14", 15, "TA-Lib NATR(14) / 100", { v, _ in v.natr14 * 0.01 }),
        (
          "bb_pctb_20", 20, "Bollinger %b of BBANDS(20, 2, 2)",
          { v, close in
            percentB(close, v.bands)
          }
        ),
        (
          "close_sma_20", 20, "ln(close / SMA(close, 20))",
          { v, close in
            Foundation.log(close / v.sma20)
          }
        ),
      ]
      if prefix == "h4" {
        higherSpecs.append(
          (
            "macd_hist_rel", 34, "TA-Lib MACD(12, 26, 9) histogram / close",
            { v, close in
              v.macd.histogram / close
            }
          )
        )
        higherSpecs.append(("adx_14", 28, "TA-Lib ADX(14) / 100", { v, _ in v.adx.adx * 0.01 }))
      }
      for (name, bars, definition, value) in higherSpecs {
        specs.append(
          column(
            "\(prefix)_\(name)",
            "timeframe_\(frame)",
            lookback: higherLookback(bars, ratio: hours),
            "\(definition), on \(frame) bars resampled from complete 1h buckets, read from the latest \(frame) bar closed by the row's close"
          ) { s in
            // Fields read through the pointer: a method of `Higher` would copy it per row.
            if prefix == "h4" {
              s.pointee.h4.aligned ? value(s.pointee.h4.values, s.pointee.h4.close) : .nan
            } else {
              s.pointee.d1.aligned ? value(s.pointee.d1.values, s.pointee.d1.close) : .nan
            }
          }
        )
      }
    }
    // Cross-asset.
    for (index, reference) in FeatureSet.v1References.enumerated() {
      let r = reference.replacingOccurrences(of: "USDT", with: "").lowercased()
      specs.append(
        column(
          "\(r)_logret_1",
          "cross_asset",
          lookback: 2,
          "\(reference): ln(close[t] / close[t-1]) from its own 1h series"
        ) { s in
          s.pointee.referenceReturn1[index]
        }
      )
      specs.append(
        column(
          "\(r)_logret_24",
          "cross_asset",
          lookback: 25,
          "\(reference): ln(close[t] / close[t-24]) from its own 1h series"
        ) { s in
          s.pointee.referenceReturn24[index]
        }
      )
      specs.append(
        column(
          "\(r)_corr_72",
          "cross_asset",
          lookback: 73,
          "Pearson correlation of the target's and \(reference)'s one-bar log returns over the last 72 bars (1 for the symbol itself)"
        ) { s in
          s.pointee.correlation72[index]
        }
      )
      specs.append(
        column(
          "\(r)_rs_24",
          "cross_asset",
          lookback: 25,
          "relative strength: ln(close[t]/close[t-24]) of the target minus that of \(reference) (0 for the symbol itself)"
        ) { s in
          s.pointee.logReturn(24) - s.pointee.referenceReturn24[index]
        }
      )
    }
    return specs
  }
}
