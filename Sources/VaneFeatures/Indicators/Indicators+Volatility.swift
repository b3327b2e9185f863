extension Indicators {
  /// Average true range, Wilder's (TA-Lib 0.8 `TA_ATR`).
  ///
  /// True range `TR[i]` for `i ≥ 1` (see `trueRange`). Seed: `ATR[n] = (TR[1] + … + TR[n]) / n`
  /// (the SMA of TR starting at bar 1, summed from 0 in order). Then, with `decay = (n−1)/n` and
  /// `alpha = 1 − decay`: `ATR = fma(ATR, decay, TR·alpha)` (TA-Lib 0.8's fused form of
  /// `(ATR·(n−1) + TR) / n`). Lookback `n`.
  ///
  /// `convergence`: the seed decays by `(n−1)/n` per bar: `lookback + m` with
  /// `((n−1)/n)^m < 1e-10` (325 for n = 14).
  public struct ATR: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 1.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 1, "ATR period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int {
      self.lookback + Indicators.decayBars(factor: Double(self.period - 1) / Double(self.period))
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(high: [Double], low: [Double], close: [Double]) -> [Double] {
      Self.compute(period: self.period, high: high, low: low, close: close, normalized: false)
    }

    /// ATR, or NATR when `normalized`: one loop, so NATR is exactly ATR's values rescaled.
    @inline(__always)
    static func compute(
      period: Int,
      high: [Double],
      low: [Double],
      close: [Double],
      normalized: Bool
    ) -> [Double] {
      Indicators.checkSameCount(high.count, low.count, close.count)
      let count = close.count
      return Indicators.series(high: high, low: low, close: close, lookback: period) {
        high,
        low,
        close,
        output in
        let decay = Double(period - 1) / Double(period)
        let alpha = 1.0 - decay
        var total = 0.0
        for index in 1 ... period {
          total += Indicators.trueRange(
            high: high[index],
            low: low[index],
            previousClose: close[index - 1]
          )
        }
        var atr = total / Double(period)
        output[period] = normalized ? NATR.value(atr: atr, close: close[period]) : atr
        @inline(__always) func step(_ index: Int) -> Double {
          let range = Indicators.trueRange(
            high: high[index],
            low: low[index],
            previousClose: close[index - 1]
          )
          atr = (range * alpha).addingProduct(atr, decay)
          return atr
        }
        // Four values at a time. NATR's division is off the recursion's path: NATR rescales each
        // group of four in one vector division while the recursion goes on with the next group
        // (the divider's throughput per value is half the scalar one's).
        var index = period + 1
        while index + 4 <= count {
          let group = SIMD4(step(index), step(index + 1), step(index + 2), step(index + 3))
          if normalized {
            NATR.rescale(group, close: close + index, into: output + index)
          } else {
            UnsafeMutableRawPointer(output + index).storeBytes(
              of: group,
              as: SIMD4<Double>.self
            )
          }
          index += 4
        }
        while index < count {
          let value = step(index)
          output[index] = normalized ? NATR.value(atr: value, close: close[index]) : value
          index += 1
        }
      }
    }

    /// One candle at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: ATR
      private let decay: Double
      private let alpha: Double
      private var seen = 0
      private var previousClose = 0.0
      private var atr = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: ATR) {
        self.indicator = indicator
        self.decay = Double(indicator.period - 1) / Double(indicator.period)
        self.alpha = 1.0 - self.decay
      }

      /// Adds the next candle; NaN for the first `period` candles.
      public mutating func update(high: Double, low: Double, close: Double) -> Double {
        let bar = self.seen
        self.seen += 1
        let previousClose = self.previousClose
        self.previousClose = close
        guard bar > 0 else { return .nan }
        let range = Indicators.trueRange(high: high, low: low, previousClose: previousClose)
        let period = self.indicator.period
        if bar < period {
          // `atr` holds the running TR sum until the seed.
          self.atr += range
          return .nan
        }
        if bar == period {
          self.atr = (self.atr + range) / Double(period)
        } else {
          self.atr = (range * self.alpha).addingProduct(self.atr, self.decay)
        }
        return self.atr
      }
    }
  }

  /// Normalised ATR (TA-Lib 0.8 `TA_NATR`): `(ATR / close) · 100`, 0 when `close == 0`.
  /// Lookback and convergence as `ATR`.
  public struct NATR: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 1.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 1, "NATR period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { ATR(period: self.period).convergence }

    @inline(__always)
    static func value(atr: Double, close: Double) -> Double {
      close != 0 ? (atr / close) * 100.0 : 0.0
    }

    /// `output[i] = value(atr: atr[i], close: close[i])` for four values: the same two IEEE
    /// operations per value as the scalar form, so bit for bit equal to it.
    @inline(__always)
    static func rescale(
      _ atr: SIMD4<Double>,
      close: UnsafePointer<Double>,
      into output: UnsafeMutablePointer<Double>
    ) {
      let c = UnsafeRawPointer(close).loadUnaligned(as: SIMD4<Double>.self)
      let q = (atr / c) * SIMD4(repeating: 100)
      UnsafeMutableRawPointer(output).storeBytes(
        of: q.replacing(with: 0, where: c .== 0),
        as: SIMD4<Double>.self
      )
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(high: [Double], low: [Double], close: [Double]) -> [Double] {
      ATR.compute(period: self.period, high: high, low: low, close: close, normalized: true)
    }

    /// One candle at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: NATR
      private var atr: ATR.Stream

      /// A stream that has seen no candle yet.
      public init(_ indicator: NATR) {
        self.indicator = indicator
        self.atr = ATR.Stream(ATR(period: indicator.period))
      }

      /// Adds the next candle; NaN for the first `period` candles.
      public mutating func update(high: Double, low: Double, close: Double) -> Double {
        let atr = self.atr.update(high: high, low: low, close: close)
        return atr.isNaN ? .nan : NATR.value(atr: atr, close: close)
      }
    }
  }

  /// The rolling population variance exactly as TA-Lib 0.8's `TA_VAR` computes it (issue #118,
  /// "cancellation-free variance"): deviations are summed against a `shift` near the data, so the
  /// sums stay at variance scale instead of price² scale:
  /// `S1 = Σ(x − shift)`, `S2 = Σ(x − shift)²` over the window, `mean = S1·(1/n)`,
  /// `variance = S2·(1/n) − mean²`. The shift starts as the first value; it is re-anchored to the
  /// window mean and both sums rebuilt by a fresh pass (then the oldest value removed again) when
  /// the variance falls below 1e-6 of `S2/n`, when the value leaving the window had a squared
  /// deviation above 1e6 times the remaining `S2`, or every `32·n` windows.
  /// The classic `Σx²/n − (Σx/n)²` running-sum formula (TA-Lib 0.4) differs from it by up to ~5e-8
  /// relative on BTC prices.
  struct ShiftedVariance: Sendable {
    let period: Int
    let reciprocal: Double
    var shift = 0.0
    var total1 = 0.0
    var total2 = 0.0
    var windowsUntilReseed: Int
    /// Set by `reseeded`: the variance of the window it re-anchored on.
    var variance = 0.0

    init(period: Int) {
      self.period = period
      self.reciprocal = 1.0 / Double(period)
      self.windowsUntilReseed = 32 * period
    }

    /// Adds a value to the sums (the window's first `n − 1` values, then each newest value).
    @inline(__always)
    mutating func add(_ value: Double) {
      var deviation = value - self.shift
      self.total1 += deviation
      deviation *= deviation
      self.total2 += deviation
    }

    /// The variance of `window[0..<n]` (oldest first) after its newest value was added; removes the
    /// oldest one, re-anchoring when TA-Lib does.
    @inline(__always)
    mutating func variance(window: UnsafePointer<Double>) -> Double {
      let mean = self.total1 * self.reciprocal
      var variance = self.total2 * self.reciprocal - mean * mean
      var deviation = window[0] - self.shift
      self.total1 -= deviation
      deviation *= deviation
      self.total2 -= deviation
      self.windowsUntilReseed -= 1
      if variance < 0.000001 * (self.total2 * self.reciprocal)
        || deviation > 1000000.0 * self.total2
        || self.windowsUntilReseed <= 0
      {
        let fresh = Self.reseeded(window: window, period: self.period)
        self.shift = fresh.shift
        self.total1 = fresh.total1
        self.total2 = fresh.total2
        self.windowsUntilReseed = 32 * self.period
        variance = fresh.variance
      }
      return variance
    }

    /// The state re-anchored on `window` (a fresh two-pass: shift = the window's mean), with the
    /// oldest value removed again so it carries on like the regular path, and the window's variance.
    /// Rare, and kept out of line: a call that took `self` inout would pin the running sums to
    /// memory in the hot loop (2.4× slower).
    @inline(never)
    static func reseeded(window: UnsafePointer<Double>, period: Int) -> ShiftedVariance {
      var state = ShiftedVariance(period: period)
      var sum = 0.0
      for index in 0 ..< period { sum += window[index] }
      state.shift = sum * state.reciprocal
      for index in 0 ..< period { state.add(window[index]) }
      let mean = state.total1 * state.reciprocal
      state.variance = state.total2 * state.reciprocal - mean * mean
      var deviation = window[0] - state.shift
      state.total1 -= deviation
      deviation *= deviation
      state.total2 -= deviation
      return state
    }
  }

  /// Standard deviation (TA-Lib 0.8 `TA_STDDEV`): `sqrt(variance) · nbDev`, with the population
  /// variance of `ShiftedVariance` (TA-Lib's exact arithmetic, which stays accurate at BTC price
  /// levels). A flat window gives 0. Lookback `n − 1`; a finite window, `convergence == lookback`
  /// (the re-anchored sums carry history at the ~1e-10 relative level at most).
  public struct StdDev: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int
    public let deviations: Double

    /// - Parameters: period n ≥ 2; `deviations` (TA-Lib's `nbdev`) multiplies the result.
    public init(period: Int, deviations: Double = 1) {
      Indicators.checkPeriod(period, minimum: 2, "STDDEV period")
      precondition(deviations.isFinite, "STDDEV deviations must be finite")
      self.period = period
      self.deviations = deviations
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(_ values: [Double]) -> [Double] {
      let count = values.count
      let period = self.period
      let lookback = self.lookback
      let deviations = self.deviations
      return Indicators.series(values, lookback: lookback) { x, output in
        var variance = ShiftedVariance(period: period)
        variance.shift = x[0]
        for index in 0 ..< lookback { variance.add(x[index]) }
        for index in lookback ..< count {
          variance.add(x[index])
          // × 1.0 is exact, so one expression serves TA-Lib's nbdev == 1 branch too.
          output[index] = variance.variance(window: x + index - lookback).squareRoot() * deviations
        }
      }
    }

    /// One value at a time, equal to the batch form bit for bit. O(1) per value except when the
    /// variance re-anchors (O(period), at least every 32·period values).
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: StdDev
      private var ring: WindowRing
      private var variance: ShiftedVariance
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: StdDev) {
        self.indicator = indicator
        self.ring = WindowRing(size: indicator.period)
        self.variance = ShiftedVariance(period: indicator.period)
      }

      /// Adds the next value; NaN for the first `period − 1` values.
      public mutating func update(_ x: Double) -> Double {
        if self.seen == 0 { self.variance.shift = x }
        self.ring.append(x)
        self.variance.add(x)
        let bar = self.seen
        self.seen += 1
        guard bar >= self.indicator.lookback else { return .nan }
        var state = self.variance
        let variance = self.ring.withWindow { state.variance(window: $0) }
        self.variance = state
        return variance.squareRoot() * self.indicator.deviations
      }
    }
  }

  /// Bollinger Bands with an SMA middle band (TA-Lib 0.8 `TA_BBANDS`, `matype` SMA).
  ///
  /// `middle = SMA(n)` (TA-Lib's running sum, divided by n), `σ = sqrt(variance)` of
  /// `ShiftedVariance` (population; 0 when the variance is not positive). Equal multipliers:
  /// `upper = middle + σ·up`, `lower = middle − σ·up`; different ones:
  /// `upper = fma(σ, up, middle)`, `lower = middle − σ·down`. Lookback `n − 1`; a finite window,
  /// `convergence == lookback`.
  public struct BBands: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int
    public let deviationsUp: Double
    public let deviationsDown: Double

    /// - Parameters: period n ≥ 2; `deviationsUp`/`deviationsDown` are TA-Lib's `nbdevup`/`nbdevdn`.
    public init(period: Int = 20, deviationsUp: Double = 2, deviationsDown: Double = 2) {
      Indicators.checkPeriod(period, minimum: 2, "BBANDS period")
      precondition(
        deviationsUp.isFinite && deviationsDown.isFinite,
        "BBANDS deviations must be finite"
      )
      self.period = period
      self.deviationsUp = deviationsUp
      self.deviationsDown = deviationsDown
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    /// The batch outputs, each as long as the input.
    public struct Output: Sendable, Equatable {
      public var upper: [Double]
      public var middle: [Double]
      public var lower: [Double]
    }

    /// One candle's outputs (NaN during the warm-up).
    public struct Value: Sendable, Equatable {
      public var upper: Double
      public var middle: Double
      public var lower: Double
    }

    @inline(__always)
    func bands(middle: Double, variance: Double) -> Value {
      let sigma = variance > 0 ? variance.squareRoot() : 0.0
      if self.deviationsUp == self.deviationsDown {
        let width = sigma * self.deviationsUp
        return Value(upper: middle + width, middle: middle, lower: middle - width)
      }
      return Value(
        upper: middle.addingProduct(sigma, self.deviationsUp),
        middle: middle,
        lower: middle - sigma * self.deviationsDown
      )
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(_ values: [Double]) -> Output {
      let count = values.count
      let period = self.period
      let lookback = self.lookback
      let (upperBand, middleBand, lowerBand) = Indicators.series3(values, lookback: lookback) {
        x,
        upper,
        middle,
        lower in
        let divisor = Double(period)
        var variance = ShiftedVariance(period: period)
        variance.shift = x[0]
        var total = 0.0
        for index in 0 ..< lookback {
          total += x[index]
          variance.add(x[index])
        }
        for index in lookback ..< count {
          total += x[index]
          variance.add(x[index])
          let mean = total / divisor
          total -= x[index - lookback]
          let value = self.bands(
            middle: mean,
            variance: variance.variance(window: x + index - lookback)
          )
          upper[index] = value.upper
          middle[index] = value.middle
          lower[index] = value.lower
        }
      }
      return Output(upper: upperBand, middle: middleBand, lower: lowerBand)
    }

    /// One value at a time, equal to the batch form bit for bit (O(1), O(period) when the
    /// variance re-anchors, as `StdDev.Stream`).
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: BBands
      private var ring: WindowRing
      private var variance: ShiftedVariance
      private var total = 0.0
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: BBands) {
        self.indicator = indicator
        self.ring = WindowRing(size: indicator.period)
        self.variance = ShiftedVariance(period: indicator.period)
      }

      /// Adds the next value; NaN bands for the first `period − 1` values.
      public mutating func update(_ x: Double) -> Value {
        if self.seen == 0 { self.variance.shift = x }
        self.ring.append(x)
        self.variance.add(x)
        self.total += x
        let bar = self.seen
        self.seen += 1
        guard bar >= self.indicator.lookback else {
          return Value(upper: .nan, middle: .nan, lower: .nan)
        }
        let mean = self.total / Double(self.indicator.period)
        var state = self.variance
        let result = self.ring.withWindow { window in
          // window[0] is the oldest value, the one the running sum drops next.
          (oldest: window[0], variance: state.variance(window: window))
        }
        self.variance = state
        self.total -= result.oldest
        return self.indicator.bands(middle: mean, variance: result.variance)
      }
    }
  }
}
