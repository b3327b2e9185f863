extension Indicators {
  /// Moving average convergence/divergence (TA-Lib `TA_MACD`, default compatibility).
  ///
  /// Periods are swapped if `slow < fast`. With `kf = 2/(fast+1)`, `ks = 2/(slow+1)`,
  /// `kg = 2/(signal+1)`:
  /// - the slow EMA is seeded with the mean of `x[0] … x[slow−1]`, the fast EMA with the mean of
  ///   the last `fast` of those bars, `x[slow−fast] … x[slow−1]` (TA-Lib aligns the fast seed to end
  ///   on the slow seed's bar, not at `fast − 1`); both advance as `e = fma(x − e, k, e)`;
  /// - `macd = fastEMA − slowEMA`, first defined at bar `slow − 1`;
  /// - the signal is seeded with the mean of the first `signal` MACD values (bars `slow−1 …
  ///   slow+signal−2`, summed from 0 in order), then `s = fma(macd − s, kg, s)` (signal 1: `s = macd`);
  /// - `histogram = macd − signal`.
  ///
  /// All three outputs start at `lookback = (slow − 1) + (signal − 1)` (33 for 12/26/9).
  /// `convergence`: `lookback + m` with `m` the bars for the slower of the slow and signal decay
  /// factors, `(1 − k)^m < 1e-10` (333 for 12/26/9).
  public struct MACD: Sendable, Hashable {
    public let fastPeriod: Int
    public let slowPeriod: Int
    public let signalPeriod: Int

    /// - Parameters: fast ≥ 2, slow ≥ 2 (swapped if slow < fast), signal ≥ 1.
    public init(fast: Int = 12, slow: Int = 26, signal: Int = 9) {
      Indicators.checkPeriod(fast, minimum: 2, "MACD fast period")
      Indicators.checkPeriod(slow, minimum: 2, "MACD slow period")
      Indicators.checkPeriod(signal, minimum: 1, "MACD signal period")
      self.fastPeriod = Swift.min(fast, slow)
      self.slowPeriod = Swift.max(fast, slow)
      self.signalPeriod = signal
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.slowPeriod - 1 + self.signalPeriod - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int {
      let slowDecay = 1 - 2.0 / Double(self.slowPeriod + 1)
      let signalDecay = 1 - 2.0 / Double(self.signalPeriod + 1)
      return self.lookback + Indicators.decayBars(factor: Swift.max(slowDecay, signalDecay))
    }

    /// The batch outputs, each as long as the input.
    public struct Output: Sendable, Equatable {
      public var macd: [Double]
      public var signal: [Double]
      public var histogram: [Double]
    }

    /// One candle's outputs (NaN during the warm-up).
    public struct Value: Sendable, Equatable {
      public var macd: Double
      public var signal: Double
      public var histogram: Double
      static let nan = Value(macd: .nan, signal: .nan, histogram: .nan)
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(_ values: [Double]) -> Output {
      let count = values.count
      let lookback = self.lookback
      let fast = self.fastPeriod
      let slow = self.slowPeriod
      let signal = self.signalPeriod
      let fastK = 2.0 / Double(fast + 1)
      let slowK = 2.0 / Double(slow + 1)
      let signalK = 2.0 / Double(signal + 1)
      let (macdLine, signalLine, histogram) = Indicators.series3(values, lookback: lookback) {
        x,
        macdOut,
        signalOut,
        histogramOut in
        // Seeds: the fast window is the tail of the slow one.
        var slowTotal = 0.0
        for index in 0 ..< (slow - fast) { slowTotal += x[index] }
        var fastTotal = 0.0
        for index in (slow - fast) ..< slow {
          fastTotal += x[index]
          slowTotal += x[index]
        }
        var slowEMA = slowTotal / Double(slow)
        var fastEMA = fastTotal / Double(fast)
        var macd = fastEMA - slowEMA
        // The signal's seed: the mean of the first `signal` MACD values.
        var signalEMA = 0.0 + macd
        var index = slow
        while index <= lookback {
          let value = x[index]
          fastEMA = fastEMA.addingProduct(value - fastEMA, fastK)
          slowEMA = slowEMA.addingProduct(value - slowEMA, slowK)
          macd = fastEMA - slowEMA
          signalEMA += macd
          index += 1
        }
        signalEMA = signalEMA / Double(signal)
        macdOut[lookback] = macd
        signalOut[lookback] = signalEMA
        histogramOut[lookback] = macd - signalEMA
        Self.advance(
          x,
          from: index,
          count: count,
          fast: (fastEMA, fastK),
          slow: (slowEMA, slowK),
          signal: (signalEMA, signal == 1 ? nil : signalK),
          macd: macdOut,
          signalLine: signalOut,
          histogram: histogramOut
        )
      }
      return Output(macd: macdLine, signal: signalLine, histogram: histogram)
    }

    /// The stable zone of the batch form: the three recursions in lockstep. Out of line, with only
    /// its own state live: inlined into the closures above, the optimiser routed the EMAs through
    /// stack slots between `fma` calls (1.6× slower).
    @inline(never)
    static func advance(
      _ x: UnsafePointer<Double>,
      from start: Int,
      count: Int,
      fast: (value: Double, k: Double),
      slow: (value: Double, k: Double),
      signal: (value: Double, k: Double?),
      macd macdOut: UnsafeMutablePointer<Double>,
      signalLine signalOut: UnsafeMutablePointer<Double>,
      histogram histogramOut: UnsafeMutablePointer<Double>
    ) {
      var fastEMA = fast.value
      var slowEMA = slow.value
      var signalEMA = signal.value
      for index in start ..< count {
        let value = x[index]
        fastEMA = fastEMA.addingProduct(value - fastEMA, fast.k)
        slowEMA = slowEMA.addingProduct(value - slowEMA, slow.k)
        let macd = fastEMA - slowEMA
        // Signal period 1 copies the MACD line (TA-Lib's explicit arm).
        if let k = signal.k {
          signalEMA = signalEMA.addingProduct(macd - signalEMA, k)
        } else {
          signalEMA = macd
        }
        macdOut[index] = macd
        signalOut[index] = signalEMA
        histogramOut[index] = macd - signalEMA
      }
    }

    /// One value at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: MACD
      private let fastK: Double
      private let slowK: Double
      private let signalK: Double
      private var seen = 0
      private var fastEMA = 0.0
      private var slowEMA = 0.0
      private var signalEMA = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: MACD) {
        self.indicator = indicator
        self.fastK = 2.0 / Double(indicator.fastPeriod + 1)
        self.slowK = 2.0 / Double(indicator.slowPeriod + 1)
        self.signalK = 2.0 / Double(indicator.signalPeriod + 1)
      }

      /// Adds the next close; NaN in all three until `lookback + 1` closes were seen.
      public mutating func update(_ x: Double) -> Value {
        let fast = self.indicator.fastPeriod
        let slow = self.indicator.slowPeriod
        let signal = self.indicator.signalPeriod
        let bar = self.seen
        self.seen += 1
        if bar < slow {
          // Seeding the price EMAs: both hold running sums, the fast one over the slow window's tail.
          if bar >= slow - fast { self.fastEMA += x }
          self.slowEMA += x
          guard bar == slow - 1 else { return .nan }
          self.slowEMA = self.slowEMA / Double(slow)
          self.fastEMA = self.fastEMA / Double(fast)
          self.signalEMA = 0.0 + (self.fastEMA - self.slowEMA)
        } else {
          self.fastEMA = self.fastEMA.addingProduct(x - self.fastEMA, self.fastK)
          self.slowEMA = self.slowEMA.addingProduct(x - self.slowEMA, self.slowK)
        }
        let macd = self.fastEMA - self.slowEMA
        let lookback = self.indicator.lookback
        if bar < lookback {
          // Seeding the signal: a running sum of the MACD values (the first was added above).
          if bar >= slow { self.signalEMA += macd }
          return .nan
        }
        if bar == lookback {
          if bar >= slow { self.signalEMA += macd }
          self.signalEMA = self.signalEMA / Double(signal)
        } else {
          self.signalEMA =
            signal == 1 ? macd : self.signalEMA.addingProduct(macd - self.signalEMA, self.signalK)
        }
        return Value(macd: macd, signal: self.signalEMA, histogram: macd - self.signalEMA)
      }
    }
  }

  /// Average directional movement index (TA-Lib `TA_ADX`), with the +DI/−DI it is built from
  /// (equal to TA-Lib's `TA_PLUS_DI` / `TA_MINUS_DI`).
  ///
  /// For bar `i ≥ 1`: `up = high[i] − high[i−1]`, `down = low[i−1] − low[i]`; `+DM1 = up` if
  /// `up > 0` and `up > down`, `−DM1 = down` if `down > 0` and `up < down`, else 0; `TR1` is the true
  /// range. Bars 1…n−1 are summed into `+DM`, `−DM`, `TR`; from bar `n` on each is smoothed as
  /// `S = S − S/n + value` (in that order). `+DI = 100·(+DM/TR)`, `−DI = 100·(−DM/TR)` (0 when
  /// `|TR| < 1e-14`), `DX = 100·(|−DI − +DI| / (−DI + +DI))`. `ADX[2n−1] = (DX[n] + … + DX[2n−1]) / n`
  /// (a DX with zero TR or zero DI sum counts as 0), then `ADX = (ADX·(n−1) + DX) / n`, left unchanged
  /// on a bar whose TR or DI sum is zero. Lookback `2n − 1` (DI: `n`).
  ///
  /// `convergence`: the DM/TR sums and the ADX both decay by `(n−1)/n` per bar; the ADX re-smooths DX
  /// errors decaying at that same rate, which adds a factor `(1 + m/n)`, so convergence is
  /// `lookback + m` with `(1 + m/n)·((n−1)/n)^m < 1e-10` (382 for n = 14).
  public struct ADX: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 2.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 2, "ADX period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { 2 * self.period - 1 }
    /// Index of the first +DI/−DI value.
    public var directionalLookback: Int { self.period }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int {
      let n = Double(self.period)
      return self.lookback + Indicators.decayBars(factor: (n - 1) / n, weight: n)
    }

    /// The batch outputs, each as long as the input.
    public struct Output: Sendable, Equatable {
      public var adx: [Double]
      /// NaN before `directionalLookback`.
      public var plusDI: [Double]
      public var minusDI: [Double]
    }

    /// One candle's outputs (NaN during the warm-up).
    public struct Value: Sendable, Equatable {
      public var adx: Double
      public var plusDI: Double
      public var minusDI: Double
    }

    /// The ADX line.
    public func callAsFunction(high: [Double], low: [Double], close: [Double]) -> [Double] {
      Indicators.checkSameCount(high.count, low.count, close.count)
      return high.withUnsafeBufferPointer { h in
        low.withUnsafeBufferPointer { l in
          close.withUnsafeBufferPointer { c in
            Indicators.makeArray(c.count) { adx in
              self.run(h, l, c, adx: adx, plusDI: nil, minusDI: nil)
            }
          }
        }
      }
    }

    /// ADX with +DI and −DI.
    public func components(high: [Double], low: [Double], close: [Double]) -> Output {
      Indicators.checkSameCount(high.count, low.count, close.count)
      return high.withUnsafeBufferPointer { h in
        low.withUnsafeBufferPointer { l in
          close.withUnsafeBufferPointer { c in
            var plus: [Double] = []
            var minus: [Double] = []
            let adx = Indicators.makeArray(c.count) { adx in
              plus = Indicators.makeArray(c.count) { plusDI in
                minus = Indicators.makeArray(c.count) { minusDI in
                  self.run(h, l, c, adx: adx, plusDI: plusDI, minusDI: minusDI)
                }
              }
            }
            return Output(adx: adx, plusDI: plus, minusDI: minus)
          }
        }
      }
    }

    /// The smoothed directional movement state, advanced one bar at a time (batch and stream).
    struct State: Sendable {
      let n: Double
      var previousHigh = 0.0
      var previousLow = 0.0
      var previousClose = 0.0
      var plusDM = 0.0
      var minusDM = 0.0
      var trueRange = 0.0

      init(period: Int) { self.n = Double(period) }

      /// Takes bar `high/low/close`; `smooth` is false while the first n − 1 bars are summed.
      @inline(__always)
      mutating func advance(high: Double, low: Double, close: Double, smooth: Bool) {
        let up = high - self.previousHigh
        self.previousHigh = high
        let down = self.previousLow - low
        self.previousLow = low
        if smooth {
          self.minusDM -= self.minusDM / self.n
          self.plusDM -= self.plusDM / self.n
        }
        if down > 0 && up < down {
          self.minusDM += down
        } else if up > 0 && up > down {
          self.plusDM += up
        }
        let range = Indicators.trueRange(high: high, low: low, previousClose: self.previousClose)
        self.trueRange =
          smooth ? self.trueRange - self.trueRange / self.n + range : self.trueRange + range
        self.previousClose = close
      }

      /// +DI, −DI and DX of the current state; DX is nil where TA-Lib skips the bar (zero TR or
      /// zero DI sum), and the DIs are 0 when TR is zero (as `TA_PLUS_DI` reports them).
      @inline(__always)
      func directional() -> (plus: Double, minus: Double, dx: Double?) {
        guard !Indicators.isZero(self.trueRange) else { return (0, 0, nil) }
        let minus = 100.0 * (self.minusDM / self.trueRange)
        let plus = 100.0 * (self.plusDM / self.trueRange)
        let sum = minus + plus
        guard !Indicators.isZero(sum) else { return (plus, minus, nil) }
        return (plus, minus, 100.0 * (abs(minus - plus) / sum))
      }
    }

    /// Writes the ADX (NaN before `lookback`) and, when given, the DIs (NaN before `period`).
    @inline(__always)
    private func run(
      _ h: UnsafeBufferPointer<Double>,
      _ l: UnsafeBufferPointer<Double>,
      _ c: UnsafeBufferPointer<Double>,
      adx: UnsafeMutablePointer<Double>,
      plusDI: UnsafeMutablePointer<Double>?,
      minusDI: UnsafeMutablePointer<Double>?
    ) {
      let count = c.count
      let period = self.period
      let lookback = self.lookback
      Indicators.fillNaN(adx, Swift.min(lookback, count))
      if let plusDI, let minusDI {
        Indicators.fillNaN(plusDI, Swift.min(period, count))
        Indicators.fillNaN(minusDI, Swift.min(period, count))
      }
      // The DIs can have values while the ADX has none yet.
      guard count > period, let high = h.baseAddress, let low = l.baseAddress,
        let close = c.baseAddress
      else { return }
      let n = Double(period)
      let nMinus1 = Double(period - 1)
      var state = State(period: period)
      state.previousHigh = high[0]
      state.previousLow = low[0]
      state.previousClose = close[0]
      for index in 1 ..< period {
        state.advance(high: high[index], low: low[index], close: close[index], smooth: false)
      }
      @inline(__always)
      func step(_ index: Int) -> Double? {
        state.advance(high: high[index], low: low[index], close: close[index], smooth: true)
        let di = state.directional()
        if let plusDI, let minusDI {
          plusDI[index] = di.plus
          minusDI[index] = di.minus
        }
        return di.dx
      }
      // The first ADX is the mean of n DX values (skipped bars count as 0).
      var sumDX = 0.0
      for index in period ..< Swift.min(lookback + 1, count) {
        if let dx = step(index) { sumDX += dx }
      }
      guard count > lookback else { return }
      var value = sumDX / n
      adx[lookback] = value
      for index in (lookback + 1) ..< count {
        if let dx = step(index) { value = (value * nMinus1 + dx) / n }
        adx[index] = value
      }
    }

    /// One candle at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: ADX
      private var state: State
      private var seen = 0
      private var adx = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: ADX) {
        self.indicator = indicator
        self.state = State(period: indicator.period)
      }

      /// Adds the next candle; the DIs are NaN for the first `period` candles, the ADX for the
      /// first `2·period − 1`.
      public mutating func update(high: Double, low: Double, close: Double) -> Value {
        let period = self.indicator.period
        let bar = self.seen
        self.seen += 1
        if bar == 0 {
          self.state.previousHigh = high
          self.state.previousLow = low
          self.state.previousClose = close
          return Value(adx: .nan, plusDI: .nan, minusDI: .nan)
        }
        self.state.advance(high: high, low: low, close: close, smooth: bar >= period)
        guard bar >= period else { return Value(adx: .nan, plusDI: .nan, minusDI: .nan) }
        let di = self.state.directional()
        let lookback = self.indicator.lookback
        if bar < lookback {
          // `adx` holds the DX sum until the first ADX.
          if let dx = di.dx { self.adx += dx }
          return Value(adx: .nan, plusDI: di.plus, minusDI: di.minus)
        }
        if bar == lookback {
          if let dx = di.dx { self.adx += dx }
          self.adx = self.adx / Double(period)
        } else if let dx = di.dx {
          self.adx = (self.adx * Double(period - 1) + dx) / Double(period)
        }
        return Value(adx: self.adx, plusDI: di.plus, minusDI: di.minus)
      }
    }
  }
}
