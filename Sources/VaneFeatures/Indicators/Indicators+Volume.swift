extension Indicators {
  /// On-balance volume (TA-Lib `TA_OBV`).
  ///
  /// `OBV[0] = volume[0]`; then `OBV[i] = OBV[i−1] + volume[i]` if `close[i] > close[i−1]`,
  /// `− volume[i]` if lower, unchanged if equal. Lookback 0.
  ///
  /// `convergence`: never converges — the level is a cumulative sum that depends on where the
  /// history starts; only differences `OBV[j] − OBV[i]` are start-independent. It is `Int.max`.
  public struct OBV: Sendable, Hashable {
    public init() {}

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { 0 }
    /// `Int.max`: see the type's documentation.
    public var convergence: Int { Int.max }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(close: [Double], volume: [Double]) -> [Double] {
      Indicators.checkSameCount(close.count, volume.count)
      let count = close.count
      return close.withUnsafeBufferPointer { c in
        volume.withUnsafeBufferPointer { v in
          Indicators.makeArray(count) { output in
            guard count > 0, let close = c.baseAddress, let volume = v.baseAddress else { return }
            var total = volume[0]
            var previous = close[0]
            output[0] = total
            for index in 1 ..< count {
              let value = close[index]
              // Branch-free (up or down is a coin flip on real prices): ±1 or 0 times the volume is
              // exactly ±v or 0, adding −v is subtracting v and adding 0 keeps the total's value,
              // so this is TA-Lib's arithmetic for finite volumes.
              let direction = Double((value > previous ? 1 : 0) - (value < previous ? 1 : 0))
              total += direction * volume[index]
              output[index] = total
              previous = value
            }
          }
        }
      }
    }

    /// One candle at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: OBV
      private var started = false
      private var previous = 0.0
      private var total = 0.0

      /// A stream that has seen no candle yet.
      public init(_ indicator: OBV = OBV()) {
        self.indicator = indicator
      }

      /// Adds the next candle and returns its value.
      public mutating func update(close: Double, volume: Double) -> Double {
        if !self.started {
          self.started = true
          self.total = volume
        } else if close > self.previous {
          self.total += volume
        } else if close < self.previous {
          self.total -= volume
        }
        self.previous = close
        return self.total
      }
    }
  }

  /// Money flow index (TA-Lib 0.8 `TA_MFI`).
  ///
  /// Typical price `tp = (high + low + close) / 3`, money flow `tp · volume`. A bar's flow counts as
  /// none when `|tp − tp₋₁| <= 1e-14·(|tp| + |tp₋₁|)`; otherwise it goes to the negative side if
  /// `tp < tp₋₁`, else to the positive side. The last `n` bars' flows are kept in two rings with
  /// running sums (the oldest subtracted before the newest is added); after `n` consecutive bars
  /// without flow the sums are reset to exactly 0. `MFI = 100 · (P / (P + N))` with `P` clamped into
  /// `[0, P + N]`, and 0 when `P + N <= 0` (no flow in the window: TA-Lib's value). Lookback `n`;
  /// a finite window, `convergence == lookback` (up to the sums' rounding residue).
  public struct MFI: Sendable, Hashable {
    /// The window length `n`.
    public let period: Int

    /// - Parameter period: n ≥ 2.
    public init(period: Int) {
      Indicators.checkPeriod(period, minimum: 2, "MFI period")
      self.period = period
    }

    /// TA-Lib's lookback: the index of the first defined value.
    public var lookback: Int { self.period }
    /// The index from which values no longer depend on where the history starts (see above).
    public var convergence: Int { self.lookback }

    /// The running state: sums of the window's flows (kept in rings of `period` slots that the
    /// caller owns) and the run of empty bars.
    struct State: Sendable {
      let period: Int
      var slot = 0
      var positiveSum = 0.0
      var negativeSum = 0.0
      var previousTypical = 0.0
      var emptyRun = 0

      init(period: Int) { self.period = period }

      /// Adds a bar's flow to the window. `full`: the window already holds `n` bars, so the slot's
      /// old flows leave first.
      @inline(__always)
      mutating func add(
        high: Double,
        low: Double,
        close: Double,
        volume: Double,
        full: Bool,
        positive: UnsafeMutablePointer<Double>,
        negative: UnsafeMutablePointer<Double>
      ) {
        if full {
          self.positiveSum -= positive[self.slot]
          self.negativeSum -= negative[self.slot]
        }
        let typical = (high + low + close) / 3.0
        let change = typical - self.previousTypical
        let scale = abs(typical) + abs(self.previousTypical)
        self.previousTypical = typical
        let flow = Indicators.isZeroScaled(change, scale: scale) ? 0.0 : typical * volume
        // The flow goes to one side by a mask of the change's sign bit, not a comparison: the
        // sign of a price change is a coin toss that a branch predictor loses half the time, and
        // the optimiser turns a comparison back into a jump. The sign bit is `change < 0` except
        // for −0 (then the flow is 0 and both sides get +0 either way) and NaN (a NaN input
        // makes every later value NaN either way).
        let mask = UInt64(bitPattern: Int64(bitPattern: change.bitPattern) >> 63)
        let up = Double(bitPattern: flow.bitPattern & ~mask)
        let down = Double(bitPattern: flow.bitPattern & mask)
        positive[self.slot] = up
        negative[self.slot] = down
        self.positiveSum += up
        self.negativeSum += down
        // A window of empty bars holds exact zeros; drop the sums' add-then-subtract residue.
        self.emptyRun = flow == 0.0 ? self.emptyRun + 1 : 0
        if self.emptyRun >= self.period {
          self.emptyRun = self.period
          self.positiveSum = 0
          self.negativeSum = 0
        }
        self.slot = self.slot + 1 == self.period ? 0 : self.slot + 1
      }

      @inline(__always)
      var value: Double {
        let total = self.positiveSum + self.negativeSum
        let positive =
          self.positiveSum < 0.0 ? 0.0 : (self.positiveSum > total ? total : self.positiveSum)
        return total <= 0.0 ? 0.0 : 100.0 * (positive / total)
      }
    }

    /// The indicator over a whole series: as long as the input, NaN before `lookback`.
    public func callAsFunction(
      high: [Double],
      low: [Double],
      close: [Double],
      volume: [Double]
    ) -> [Double] {
      Indicators.checkSameCount(high.count, low.count, close.count, volume.count)
      let count = close.count
      let period = self.period
      return high.withUnsafeBufferPointer { h in
        low.withUnsafeBufferPointer { l in
          close.withUnsafeBufferPointer { c in
            volume.withUnsafeBufferPointer { v in
              Indicators.makeArray(count) { output in
                guard count > period, let high = h.baseAddress, let low = l.baseAddress,
                  let close = c.baseAddress, let volume = v.baseAddress
                else {
                  Indicators.fillNaN(output, count)
                  return
                }
                Indicators.fillNaN(output, period)
                let rings = UnsafeMutablePointer<Double>.allocate(capacity: 2 * period)
                defer { rings.deallocate() }
                let positive = rings
                let negative = rings + period
                var state = State(period: period)
                state.previousTypical = (high[0] + low[0] + close[0]) / 3.0
                for index in 1 ... period {
                  state.add(
                    high: high[index],
                    low: low[index],
                    close: close[index],
                    volume: volume[index],
                    full: false,
                    positive: positive,
                    negative: negative
                  )
                }
                output[period] = state.value
                for index in (period + 1) ..< count {
                  state.add(
                    high: high[index],
                    low: low[index],
                    close: close[index],
                    volume: volume[index],
                    full: true,
                    positive: positive,
                    negative: negative
                  )
                  output[index] = state.value
                }
              }
            }
          }
        }
      }
    }

    /// One candle at a time, equal to the batch form bit for bit.
    public struct Stream: Sendable {
      /// The parameters this stream computes with.
      public let indicator: MFI
      private var rings: [Double]
      private var state: State
      private var seen = 0

      /// A stream that has seen no candle yet.
      public init(_ indicator: MFI) {
        self.indicator = indicator
        self.rings = [Double](repeating: 0, count: 2 * indicator.period)
        self.state = State(period: indicator.period)
      }

      /// Adds the next candle; NaN for the first `period` candles.
      public mutating func update(
        high: Double,
        low: Double,
        close: Double,
        volume: Double
      ) -> Double {
        let bar = self.seen
        self.seen += 1
        guard bar > 0 else {
          self.state.previousTypical = (high + low + close) / 3.0
          return .nan
        }
        let period = self.indicator.period
        // The batch `State` runs over this stream's rings, so both share one arithmetic.
        var state = self.state
        self.rings.withUnsafeMutableBufferPointer { rings in
          state.add(
            high: high,
            low: low,
            close: close,
            volume: volume,
            full: bar > period,
            positive: rings.baseAddress!,
            negative: rings.baseAddress! + period
          )
        }
        self.state = state
        return bar >= period ? state.value : .nan
      }
    }
  }
}
