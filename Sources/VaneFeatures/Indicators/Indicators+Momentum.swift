extension Indicators {
  /// Relative strength index, Wilder's (TA-Lib 0.8 `TA_RSI`, default compatibility).
  ///
  /// For each change `d = x[i] − x[i−1]`: `gain = d` if `d > 0` else 0, `loss = gain − d`.
  /// Seed: `G = (gain[1] + … + gain[n]) · (1/n)`, `L` likewise. Then
  /// `G = (G·(n−1) + gain) · (1/n)`, `L = (loss + L·(n−1)) · (1/n)` (TA-Lib 0.8 multiplies by the
  /// reciprocal; 0.4 divided). `RSI = (G / (L + G)) · 100`, and **0 when `L + G` is not positive**
  /// (a flat window), TA-Lib's value. Lookback `n`.
  ///
  /// `convergence`: the seed decays by `(n−1)/n` per bar: `lookback + m` with
  /// `((n−1)/n)^m < 1e-10` (325 for n = 14).
  public struct RSI: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 2.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 2, "RSI period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int {
      self.lookback + Indicators.decayBars(factor: Double(self.period - 1) / Double(self.period))
    }

    @inline(__always)
    static func value(gain: Double, loss: Double) -> Double {
      let total = loss + gain
      return total > 0 ? (gain / total) * 100.0 : 0.0
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(_ values: [Double]) -> [Double] {
      let count = values.count
      let period = self.period
      return Indicators.series(values, lookback: period) { x, output in
        let reciprocal = 1.0 / Double(period)
        let nMinus1 = Double(period - 1)
        var gain = 0.0
        var loss = 0.0
        var previous = x[0]
        for index in 1 ... period {
          let change = x[index] - previous
          previous = x[index]
          let up = 0.0 < change ? change : 0.0
          gain += up
          loss += up - change
        }
        gain *= reciprocal
        loss *= reciprocal
        output[period] = Self.value(gain: gain, loss: loss)
        for index in (period + 1) ..< count {
          let change = x[index] - previous
          previous = x[index]
          let up = 0.0 < change ? change : 0.0
          gain = (gain * nMinus1 + up) * reciprocal
          loss = ((up - change) + loss * nMinus1) * reciprocal
          output[index] = Self.value(gain: gain, loss: loss)
        }
      }
    }

    /// One value at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: RSI
      private let reciprocal: Double
      private let nMinus1: Double
      private var seen = 0
      private var previous = 0.0
      private var gain = 0.0
      private var loss = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: RSI) {
        self.indicator = indicator
        self.reciprocal = 1.0 / Double(indicator.period)
        self.nMinus1 = Double(indicator.period - 1)
      }

      /// Adds the next close; NaN for the first `period` closes.
      public mutating func update(_ x: Double) -> Double {
        let bar = self.seen
        self.seen += 1
        let change = x - self.previous
        self.previous = x
        guard bar > 0 else { return .nan }
        let up = 0.0 < change ? change : 0.0
        let period = self.indicator.period
        if bar < period {
          self.gain += up
          self.loss += up - change
          return .nan
        }
        if bar == period {
          self.gain += up
          self.loss += up - change
          self.gain *= self.reciprocal
          self.loss *= self.reciprocal
        } else {
          self.gain = (self.gain * self.nMinus1 + up) * self.reciprocal
          self.loss = ((up - change) + self.loss * self.nMinus1) * self.reciprocal
        }
        return RSI.value(gain: self.gain, loss: self.loss)
      }
    }
  }

  /// Slow stochastic oscillator (TA-Lib 0.8 `TA_STOCH` with SMA smoothing for both lines).
  ///
  /// `fastK[i] = ((close[i] − LL) / (HH − LL)) · 100` over the last `fastK` bars' highest high `HH`
  /// and lowest low `LL`, and 0 when `|HH − LL| <= 1e-14·(|HH| + |LL|)` (a flat window: TA-Lib's
  /// value); `slowK = SMA(fastK, slowK)`, `slowD = SMA(slowK, slowD)`, both with TA-Lib's running
  /// sum (see `SMA`). Both outputs start at `lookback = (fastK−1) + (slowK−1) + (slowD−1)`
  /// (17 for 14/3/3). A finite window: `convergence == lookback`.
  public struct Stoch: Sendable, Hashable {
    public let fastKPeriod: Int
    public let slowKPeriod: Int
    public let slowDPeriod: Int

    /// - Parameters: every period ≥ 1. TA-Lib's defaults are 5/3/3; Vane uses 14/3/3.
    public init(fastK: Int = 14, slowK: Int = 3, slowD: Int = 3) {
      Indicators.checkPeriod(fastK, minimum: 1, "STOCH fast-K period")
      Indicators.checkPeriod(slowK, minimum: 1, "STOCH slow-K period")
      Indicators.checkPeriod(slowD, minimum: 1, "STOCH slow-D period")
      self.fastKPeriod = fastK
      self.slowKPeriod = slowK
      self.slowDPeriod = slowD
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.fastKPeriod - 1 + self.slowKPeriod - 1 + self.slowDPeriod - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    /// The batch outputs, each as long as the input.
    public struct Output: Sendable, Equatable {
      public var slowK: [Double]
      public var slowD: [Double]
    }

    /// One candle's outputs (NaN during the warm-up).
    public struct Value: Sendable, Equatable {
      public var slowK: Double
      public var slowD: Double
    }

    @inline(__always)
    static func fastK(close: Double, highest: Double, lowest: Double) -> Double {
      let range = highest - lowest
      if Indicators.isZeroScaled(range, scale: abs(highest) + abs(lowest)) { return 0 }
      return ((close - lowest) / range) * 100.0
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(high: [Double], low: [Double], close: [Double]) -> Output {
      Indicators.checkSameCount(high.count, low.count, close.count)
      let count = close.count
      let lookback = self.lookback
      let fastPeriod = self.fastKPeriod
      let slowKPeriod = self.slowKPeriod
      let slowDPeriod = self.slowDPeriod
      return high.withUnsafeBufferPointer { h in
        low.withUnsafeBufferPointer { l in
          close.withUnsafeBufferPointer { c in
            var slowD: [Double] = []
            let slowK = Indicators.makeArray(count) { kOut in
              slowD = Indicators.makeArray(count) { dOut in
                guard count > lookback, let high = h.baseAddress, let low = l.baseAddress,
                  let close = c.baseAddress
                else {
                  Indicators.fillNaN(kOut, count)
                  Indicators.fillNaN(dOut, count)
                  return
                }
                // Fast %K goes into the %D array as scratch, %K is its SMA, %D the SMA of %K (which
                // overwrites the fast %K once it is no longer needed).
                let fastStart = fastPeriod - 1
                Indicators.rollingExtremes(high: high, low: low, count: count, period: fastPeriod) {
                  index,
                  highest,
                  lowest in
                  dOut[index] = Self.fastK(close: close[index], highest: highest, lowest: lowest)
                }
                SMA.run(
                  dOut + fastStart,
                  count: count - fastStart,
                  period: slowKPeriod,
                  into: kOut + fastStart
                )
                let slowStart = fastStart + slowKPeriod - 1
                SMA.run(
                  kOut + slowStart,
                  count: count - slowStart,
                  period: slowDPeriod,
                  into: dOut + slowStart
                )
                Indicators.fillNaN(kOut, lookback)
                Indicators.fillNaN(dOut, lookback)
              }
            }
            return Output(slowK: slowK, slowD: slowD)
          }
        }
      }
    }

    /// One candle at a time (rolling extremes by monotonic deques, amortised O(1)), equal to the
    /// batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: Stoch
      private var highest: RollingMaximum
      private var lowest: RollingMaximum
      private var smoothK: SMA.Stream
      private var smoothD: SMA.Stream
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: Stoch) {
        self.indicator = indicator
        self.highest = RollingMaximum(period: indicator.fastKPeriod)
        self.lowest = RollingMaximum(period: indicator.fastKPeriod)
        self.smoothK = SMA.Stream(SMA(period: indicator.slowKPeriod))
        self.smoothD = SMA.Stream(SMA(period: indicator.slowDPeriod))
      }

      /// Adds the next candle; NaN in both lines for the first `lookback` candles.
      public mutating func update(high: Double, low: Double, close: Double) -> Value {
        let bar = self.seen
        self.seen += 1
        let highest = self.highest.push(high)
        let lowest = -self.lowest.push(-low)
        guard bar >= self.indicator.fastKPeriod - 1 else { return Value(slowK: .nan, slowD: .nan) }
        let slowK = self.smoothK.update(Stoch.fastK(close: close, highest: highest, lowest: lowest))
        // %D smooths defined %K values only.
        guard bar >= self.indicator.fastKPeriod - 1 + self.indicator.slowKPeriod - 1 else {
          return Value(slowK: .nan, slowD: .nan)
        }
        let slowD = self.smoothD.update(slowK)
        guard bar >= self.indicator.lookback else { return Value(slowK: .nan, slowD: .nan) }
        return Value(slowK: slowK, slowD: slowD)
      }
    }
  }

  /// Williams' %R (TA-Lib 0.8 `TA_WILLR`).
  ///
  /// Over the last `n` bars' highest high `HH` and lowest low `LL`:
  /// `%R = ((HH − close) / (HH − LL)) · −100`, clamped to [−100, 0]; 0 when
  /// `|HH − LL| <= 1e-14·(|HH| + |LL|)` (a flat window: TA-Lib's value). Lookback `n − 1`; a finite
  /// window, `convergence == lookback`.
  public struct WillR: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 2.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 2, "WILLR period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    @inline(__always)
    static func value(close: Double, highest: Double, lowest: Double) -> Double {
      let range = highest - lowest
      if Indicators.isZeroScaled(range, scale: abs(highest) + abs(lowest)) { return 0 }
      let value = ((highest - close) / range) * -100.0
      // Rounding can leave the ratio a hair outside its range; TA-Lib clamps it back.
      if value > 0 { return 0 }
      return value < -100.0 ? -100.0 : value
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(high: [Double], low: [Double], close: [Double]) -> [Double] {
      Indicators.checkSameCount(high.count, low.count, close.count)
      let count = close.count
      let period = self.period
      let lookback = self.lookback
      return Indicators.series(high: high, low: low, close: close, lookback: lookback) {
        high,
        low,
        close,
        output in
        Indicators.rollingExtremes(high: high, low: low, count: count, period: period) {
          index,
          highest,
          lowest in
          output[index] = Self.value(close: close[index], highest: highest, lowest: lowest)
        }
      }
    }

    /// One candle at a time (rolling extremes by monotonic deques, amortised O(1)), equal to the
    /// batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: WillR
      private var highest: RollingMaximum
      private var lowest: RollingMaximum
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: WillR) {
        self.indicator = indicator
        self.highest = RollingMaximum(period: indicator.period)
        self.lowest = RollingMaximum(period: indicator.period)
      }

      /// Adds the next candle; NaN for the first `period − 1` candles.
      public mutating func update(high: Double, low: Double, close: Double) -> Double {
        let bar = self.seen
        self.seen += 1
        let highest = self.highest.push(high)
        let lowest = -self.lowest.push(-low)
        guard bar >= self.indicator.lookback else { return .nan }
        return WillR.value(close: close, highest: highest, lowest: lowest)
      }
    }
  }

  /// Commodity channel index (TA-Lib 0.8 `TA_CCI`).
  ///
  /// Typical price `tp = (high + low + close) / 3`, kept in a circular buffer of `n` slots (bar `i`
  /// in slot `i mod n`, counting from the first bar). Per bar: `mean = (Σ slots in slot order) / n`,
  /// `meanDeviation = (Σ |slot − mean| in slot order) / n`,
  /// `CCI = (tp − mean) / (meanDeviation · 0.015)`; 0 when `|tp − mean|` or `meanDeviation` is at
  /// most `1e-14·|mean|` (a flat window: TA-Lib's value). Summing in slot order, not time order, is
  /// TA-Lib's arithmetic; a history with a different start rotates the slots (~1e-16 relative).
  /// O(n) per bar, as in TA-Lib. Lookback `n − 1`; a finite window, `convergence == lookback`.
  public struct CCI: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 2.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 2, "CCI period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    /// The CCI of the window in `slots` whose newest typical price is `last`.
    @inline(__always)
    static func value(slots: UnsafePointer<Double>, period: Int, last: Double) -> Double {
      let n = Double(period)
      var total = 0.0
      for slot in 0 ..< period { total += slots[slot] }
      let mean = total / n
      var deviation = 0.0
      for slot in 0 ..< period { deviation += abs(slots[slot] - mean) }
      return Self.value(last: last, mean: mean, deviation: deviation, n: n)
    }

    /// TA-Lib's final step from the window's mean and summed absolute deviation.
    @inline(__always)
    static func value(last: Double, mean: Double, deviation: Double, n: Double) -> Double {
      let distance = last - mean
      let scale = abs(mean) * Indicators.epsilon
      if abs(distance) <= scale { return 0 }
      let meanDeviation = deviation / n
      if abs(meanDeviation) <= scale { return 0 }
      let denominator = meanDeviation * 0.015
      if denominator == 0 { return 0 }
      return distance / denominator
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(high: [Double], low: [Double], close: [Double]) -> [Double] {
      Indicators.checkSameCount(high.count, low.count, close.count)
      let count = close.count
      let period = self.period
      let lookback = self.lookback
      return Indicators.series(high: high, low: low, close: close, lookback: lookback) {
        high,
        low,
        close,
        output in
        let slots = UnsafeMutablePointer<Double>.allocate(capacity: period)
        defer { slots.deallocate() }
        func typical(_ index: Int) -> Double { (high[index] + low[index] + close[index]) / 3.0 }
        var slot = 0
        for index in 0 ..< lookback {
          slots[slot] = typical(index)
          slot += 1
        }
        var index = lookback
        // Two bars per step: each keeps its own sums in slot order (TA-Lib's arithmetic), and
        // the two independent add chains run side by side instead of one after the other.
        while index + 1 < count {
          let first = typical(index)
          let second = typical(index + 1)
          slots[slot] = first
          let nextSlot = slot + 1 == period ? 0 : slot + 1
          let pair = Self.values(
            slots: slots,
            period: period,
            first: first,
            second: second,
            secondSlot: nextSlot
          )
          output[index] = pair.first
          output[index + 1] = pair.second
          slots[nextSlot] = second
          slot = nextSlot + 1 == period ? 0 : nextSlot + 1
          index += 2
        }
        if index < count {
          let last = typical(index)
          slots[slot] = last
          output[index] = Self.value(slots: slots, period: period, last: last)
        }
      }
    }

    /// The CCIs of two consecutive bars: `slots` holds the first bar's window; the second bar's
    /// window is the same with `secondSlot` holding `second`.
    @inline(__always)
    static func values(
      slots: UnsafePointer<Double>,
      period: Int,
      first: Double,
      second: Double,
      secondSlot: Int
    ) -> (first: Double, second: Double) {
      let n = Double(period)
      var totalA = 0.0
      var totalB = 0.0
      for slot in 0 ..< secondSlot {
        totalA += slots[slot]
        totalB += slots[slot]
      }
      totalA += slots[secondSlot]
      totalB += second
      for slot in (secondSlot + 1) ..< period {
        totalA += slots[slot]
        totalB += slots[slot]
      }
      let meanA = totalA / n
      let meanB = totalB / n
      var deviationA = 0.0
      var deviationB = 0.0
      for slot in 0 ..< secondSlot {
        deviationA += abs(slots[slot] - meanA)
        deviationB += abs(slots[slot] - meanB)
      }
      deviationA += abs(slots[secondSlot] - meanA)
      deviationB += abs(second - meanB)
      for slot in (secondSlot + 1) ..< period {
        deviationA += abs(slots[slot] - meanA)
        deviationB += abs(slots[slot] - meanB)
      }
      return (
        Self.value(last: first, mean: meanA, deviation: deviationA, n: n),
        Self.value(last: second, mean: meanB, deviation: deviationB, n: n)
      )
    }

    /// One candle at a time, equal to the batch form bit for bit. Each update is O(period) (the
    /// mean deviation has no running form) — O(1) in the number of candles.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: CCI
      private var ring: WindowRing
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: CCI) {
        self.indicator = indicator
        self.ring = WindowRing(size: indicator.period)
      }

      /// Adds the next candle; NaN for the first `period − 1` candles.
      public mutating func update(high: Double, low: Double, close: Double) -> Double {
        let typical = (high + low + close) / 3.0
        self.ring.append(typical)
        let bar = self.seen
        self.seen += 1
        guard bar >= self.indicator.lookback else { return .nan }
        let period = self.indicator.period
        return self.ring.withSlots { CCI.value(slots: $0, period: period, last: typical) }
      }
    }
  }

  /// Rate of change (TA-Lib `TA_ROC`): `((x[i] / x[i−n]) − 1) · 100`, 0 when `x[i−n] == 0`.
  /// Lookback `n`; a finite window, `convergence == lookback`.
  public struct ROC: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 1.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 1, "ROC period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    @inline(__always)
    static func value(_ current: Double, _ past: Double) -> Double {
      past != 0 ? (current / past - 1.0) * 100.0 : 0.0
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(_ values: [Double]) -> [Double] {
      let count = values.count
      let period = self.period
      return Indicators.series(values, lookback: period) { x, output in
        // Four values at a time: the same three IEEE operations per value as `value`, so bit
        // for bit the scalar form, with the divisions in one vector instruction.
        var index = period
        let input = UnsafeRawPointer(x), out = UnsafeMutableRawPointer(output)
        let zero = SIMD4<Double>(repeating: 0), one = SIMD4<Double>(repeating: 1),
          hundred = SIMD4<Double>(repeating: 100)
        while index + 4 <= count {
          let current = input.loadUnaligned(fromByteOffset: index * 8, as: SIMD4<Double>.self)
          let past = input.loadUnaligned(
            fromByteOffset: (index - period) * 8,
            as: SIMD4<Double>.self
          )
          let change = (current / past - one) * hundred
          out.storeBytes(
            of: change.replacing(with: zero, where: past .== zero),
            toByteOffset: index * 8,
            as: SIMD4<Double>.self
          )
          index += 4
        }
        while index < count {
          output[index] = Self.value(x[index], x[index - period])
          index += 1
        }
      }
    }

    /// One value at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: ROC
      private var ring: [Double]
      private var slot = 0
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: ROC) {
        self.indicator = indicator
        self.ring = [Double](repeating: 0, count: indicator.period)
      }

      /// Adds the next value; NaN for the first `period` values.
      public mutating func update(_ x: Double) -> Double {
        // The slot about to be overwritten holds the value `period` updates ago.
        let past = self.ring[self.slot]
        self.ring[self.slot] = x
        self.slot += 1
        if self.slot == self.ring.count { self.slot = 0 }
        let bar = self.seen
        self.seen += 1
        return bar >= self.indicator.period ? ROC.value(x, past) : .nan
      }
    }
  }
}
