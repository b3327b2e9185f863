extension Indicators {
  /// Simple moving average (TA-Lib `TA_SMA`).
  ///
  /// `SMA[i] = (x[i−n+1] + … + x[i]) / n`, kept as TA-Lib keeps it: a running sum (started at 0 and
  /// fed `x[0] … x[n−2]` in order) that adds `x[i]`, is divided by `n` for the output, then drops
  /// `x[i−n+1]`. The running sum's rounding residue is part of the definition: results equal
  /// TA-Lib's bit for bit. Lookback `n − 1`; `convergence == lookback` (a finite window, up to the
  /// sum's rounding residue, ~1e-16 relative).
  public struct SMA: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 1.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 1, "SMA period")
      self.period = period
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
      return Indicators.series(values, lookback: lookback) { x, output in
        Self.run(x, count: count, period: period, into: output)
      }
    }

    /// The running-sum loop, writing `output[period − 1 ..< count]` (shared with STOCH's smoothing).
    @inline(__always)
    static func run(
      _ x: UnsafePointer<Double>,
      count: Int,
      period: Int,
      into output: UnsafeMutablePointer<Double>
    ) {
      let divisor = Double(period)
      var total = 0.0
      for index in 0 ..< (period - 1) { total += x[index] }
      var trailing = 0
      for index in (period - 1) ..< count {
        total += x[index]
        output[index] = total / divisor
        total -= x[trailing]
        trailing += 1
      }
    }

    /// One value at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: SMA
      private let divisor: Double
      private var ring: [Double]
      private var slot = 0
      private var warmup: Int
      private var total = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: SMA) {
        self.indicator = indicator
        self.divisor = Double(indicator.period)
        self.ring = [Double](repeating: 0, count: indicator.period)
        self.warmup = indicator.period - 1
      }

      /// Adds the next value; NaN until `period` values were seen.
      public mutating func update(_ value: Double) -> Double {
        self.ring[self.slot] = value
        self.total += value
        self.slot += 1
        if self.slot == self.ring.count { self.slot = 0 }
        if self.warmup > 0 {
          self.warmup -= 1
          return .nan
        }
        let average = self.total / self.divisor
        // The slot after the newest holds the window's oldest value (the newest itself when n = 1).
        self.total -= self.ring[self.slot]
        return average
      }
    }
  }

  /// Exponential moving average (TA-Lib `TA_EMA`, default compatibility).
  ///
  /// `k = 2 / (n + 1)`. Seed: `EMA[n−1] = (x[0] + … + x[n−1]) / n` (summed from 0 in order); then
  /// `EMA[i] = fma(x[i] − EMA[i−1], k, EMA[i−1])`, one fused multiply-add as in TA-Lib 0.8. Period 1
  /// copies the input. Lookback `n − 1`.
  ///
  /// `convergence`: the seed's influence on `EMA[lookback + m]` is `(1 − k)^m`; convergence is
  /// `lookback + m` for the smallest `m` with `(1 − k)^m < 1e-10` (250 for n = 20).
  public struct EMA: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 1.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 1, "EMA period")
      self.period = period
    }

    /// The smoothing factor `2 / (n + 1)`.
    public var k: Double { 2.0 / Double(self.period + 1) }
    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period - 1 }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback + Indicators.decayBars(factor: 1 - self.k) }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(_ values: [Double]) -> [Double] {
      let count = values.count
      let period = self.period
      let lookback = self.lookback
      let k = self.k
      return Indicators.series(values, lookback: lookback) { x, output in
        // Period 1 (lookback 0): the input itself.
        if period == 1 {
          output.initialize(from: x, count: count)
          return
        }
        var total = 0.0
        for index in 0 ..< period { total += x[index] }
        var previous = total / Double(period)
        output[lookback] = previous
        for index in period ..< count {
          previous = previous.addingProduct(x[index] - previous, k)
          output[index] = previous
        }
      }
    }

    /// One value at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: EMA
      private let k: Double
      private var seen = 0
      private var value = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: EMA) {
        self.indicator = indicator
        self.k = indicator.k
      }

      /// Adds the next value; NaN until `period` values were seen.
      public mutating func update(_ x: Double) -> Double {
        let period = self.indicator.period
        if self.seen >= period {
          self.value = period == 1 ? x : self.value.addingProduct(x - self.value, self.k)
          return self.value
        }
        // Seeding: `value` holds the running sum until the n-th value.
        self.value += x
        self.seen += 1
        if self.seen < period { return .nan }
        self.value = self.value / Double(period)
        return self.value
      }
    }
  }
}
