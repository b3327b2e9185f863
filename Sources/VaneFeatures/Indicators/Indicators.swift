/// Technical indicators with TA-Lib's exact definitions, lookbacks and arithmetic.
///
/// The reference is TA-Lib C 0.8.1 as bundled in the `ta-lib` 0.8.2 Python wheel (`import talib`);
/// every kernel here reproduces its output bit for bit on finite inputs (the golden tests hold
/// them to 1e-9 relative). TA-Lib 0.8 changed several kernels from the classic 0.4 code (EMA/ATR
/// use fused multiply-adds, RSI multiplies by 1/n, the variance uses shifted sums that are
/// re-anchored, WILLR/STOCH/CCI/MFI use scale-aware zero tests); each indicator's documentation
/// states its exact recurrence.
///
/// Every indicator is a small `Sendable` value built from its parameters, with:
/// - `lookback`: TA-Lib's lookback, the index of the first valid output (the number of leading NaNs
///   in `talib`'s result);
/// - `convergence`: the index from which an output no longer depends on where the history starts
///   (to 1e-10 relative for the recursive kernels);
/// - a batch form (`callAsFunction`) that returns arrays as long as its input, NaN before
///   `lookback`, all NaN when the input has no more than `lookback` values;
/// - a nested `Stream` that takes one candle at a time and returns exactly the batch value for that
///   candle (NaN during the warm-up), in O(1) per candle with fixed-size state: amortised O(1) for
///   the rolling extremes of STOCH/WILLR, O(period) for CCI's mean deviation and for the rare
///   re-anchoring of STDDEV/BBANDS's variance (still O(1) in the number of candles).
///
/// Inputs are expected to be finite; a NaN or infinity propagates as it does in TA-Lib.
public enum Indicators {}

extension Indicators {
  /// Largest period TA-Lib accepts.
  static let maximumPeriod = 100_000

  /// Checks a period parameter the way TA-Lib validates it.
  static func checkPeriod(_ value: Int, minimum: Int, _ name: String) {
    precondition(
      value >= minimum && value <= Self.maximumPeriod,
      "\(name) must be in \(minimum)...\(Self.maximumPeriod), got \(value)"
    )
  }

  /// TA-Lib's `TA_EPSILON`, the half-width of its zero tests.
  static let epsilon = 1e-14

  /// TA-Lib's `TA_IS_ZERO`: strictly inside (−1e-14, 1e-14).
  @inline(__always)
  static func isZero(_ value: Double) -> Bool {
    -Self.epsilon < value && value < Self.epsilon
  }

  /// TA-Lib's `TA_IS_ZERO_SCALED`: `|value| <= 1e-14 · scale`, a relative dead zone for a difference
  /// of two quantities whose magnitudes add up to `scale`.
  @inline(__always)
  static func isZeroScaled(_ value: Double, scale: Double) -> Bool {
    abs(value) <= Self.epsilon * scale
  }

  /// Wilder's true range: the largest of `high − low`, `|previousClose − high|` and
  /// `|previousClose − low|`.
  @inline(__always)
  static func trueRange(high: Double, low: Double, previousClose: Double) -> Double {
    var greatest = high - low
    let toHigh = abs(previousClose - high)
    if toHigh > greatest { greatest = toHigh }
    let toLow = abs(previousClose - low)
    if toLow > greatest { greatest = toLow }
    return greatest
  }

  /// The number of bars after which a seed's influence, multiplied by `factor` (0 ≤ factor < 1)
  /// each bar, falls below `tolerance` relative: the smallest `m` with `factor^m < tolerance`.
  /// `weight` adds a polynomial factor `(1 + m / weight)` for a recursion smoothed again at the same
  /// rate (ADX averages DX values whose own error decays at its rate), 0 for none.
  static func decayBars(factor: Double, tolerance: Double = 1e-10, weight: Double = 0) -> Int {
    precondition(factor >= 0 && factor < 1)
    // A recursion with no memory (period 1) forgets its seed at once.
    guard factor > 0 else { return 0 }
    var bars = 0
    var influence = 1.0
    while influence * (weight > 0 ? 1 + Double(bars) / weight : 1) >= tolerance {
      influence *= factor
      bars += 1
    }
    return bars
  }

  /// Allocates `count` doubles and lets `body` initialise every one of them.
  @inline(__always)
  static func makeArray(_ count: Int, _ body: (UnsafeMutablePointer<Double>) -> Void) -> [Double] {
    Array(unsafeUninitializedCapacity: count) { buffer, initialized in
      if let base = buffer.baseAddress { body(base) }
      initialized = count
    }
  }

  /// One output series over one input: NaN before `lookback`, all NaN when the input has no
  /// bar past it; otherwise `body` gets the input and the output and fills
  /// `output[lookback..<count]`.
  @inline(__always)
  static func series(
    _ values: [Double],
    lookback: Int,
    _ body: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void
  ) -> [Double] {
    let count = values.count
    return values.withUnsafeBufferPointer { input in
      Indicators.makeArray(count) { output in
        guard count > lookback, let x = input.baseAddress else {
          Indicators.fillNaN(output, count)
          return
        }
        Indicators.fillNaN(output, lookback)
        body(x, output)
      }
    }
  }

  /// ``series(_:lookback:_:)`` with three outputs (MACD's lines, the Bollinger bands).
  @inline(__always)
  static func series3(
    _ values: [Double],
    lookback: Int,
    _ body: (
      UnsafePointer<Double>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
      UnsafeMutablePointer<Double>
    ) -> Void
  ) -> ([Double], [Double], [Double]) {
    let count = values.count
    return values.withUnsafeBufferPointer { input in
      var second: [Double] = []
      var third: [Double] = []
      let first = Indicators.makeArray(count) { a in
        second = Indicators.makeArray(count) { b in
          third = Indicators.makeArray(count) { c in
            guard count > lookback, let x = input.baseAddress else {
              for output in [a, b, c] { Indicators.fillNaN(output, count) }
              return
            }
            for output in [a, b, c] { Indicators.fillNaN(output, lookback) }
            body(x, a, b, c)
          }
        }
      }
      return (first, second, third)
    }
  }

  /// ``series(_:lookback:_:)`` over high, low and close (of equal length).
  @inline(__always)
  static func series(
    high: [Double],
    low: [Double],
    close: [Double],
    lookback: Int,
    _ body: (
      UnsafePointer<Double>, UnsafePointer<Double>, UnsafePointer<Double>,
      UnsafeMutablePointer<Double>
    ) -> Void
  ) -> [Double] {
    let count = close.count
    return high.withUnsafeBufferPointer { h in
      low.withUnsafeBufferPointer { l in
        close.withUnsafeBufferPointer { c in
          Indicators.makeArray(count) { output in
            guard count > lookback, let high = h.baseAddress, let low = l.baseAddress,
              let close = c.baseAddress
            else {
              Indicators.fillNaN(output, count)
              return
            }
            Indicators.fillNaN(output, lookback)
            body(high, low, close, output)
          }
        }
      }
    }
  }

  /// Writes NaN to `output[0..<count]`.
  @inline(__always)
  static func fillNaN(_ output: UnsafeMutablePointer<Double>, _ count: Int) {
    if count > 0 { output.initialize(repeating: .nan, count: count) }
  }

  /// Checks that parallel input arrays have one value per candle each.
  static func checkSameCount(_ counts: Int...) {
    precondition(
      counts.allSatisfy { $0 == counts[0] },
      "inputs must have the same length, got \(counts)"
    )
  }
}

// MARK: - Windows

extension Indicators {
  /// The last `size` values of a stream in a ring that is stored twice over (`storage[k]` and
  /// `storage[k + size]` hold the same value), so the window is always one contiguous run,
  /// oldest first, and the batch code can run on it unchanged.
  struct WindowRing: Sendable {
    let size: Int
    private(set) var storage: [Double]
    /// The slot the next value goes to; after `size` appends, also the oldest value's slot.
    private(set) var next = 0

    init(size: Int) {
      self.size = size
      self.storage = [Double](repeating: 0, count: 2 * size)
    }

    mutating func append(_ value: Double) {
      self.storage[self.next] = value
      self.storage[self.next + self.size] = value
      self.next += 1
      if self.next == self.size { self.next = 0 }
    }

    /// The window, oldest first: `size` values ending with the last one appended.
    @inline(__always)
    func withWindow<Result>(_ body: (UnsafePointer<Double>) -> Result) -> Result {
      self.storage.withUnsafeBufferPointer { body($0.baseAddress! + self.next) }
    }

    /// The ring in slot order (slot `k` holds the values appended at positions ≡ k mod size), the
    /// order TA-Lib's circular buffers are summed in.
    @inline(__always)
    func withSlots<Result>(_ body: (UnsafePointer<Double>) -> Result) -> Result {
      self.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
  }

  /// The maximum of the last `period` values pushed, by a monotonic deque kept in a fixed ring:
  /// amortised O(1) per push, `period` slots of memory. Minimums are maximums of negated values
  /// (negation is exact).
  struct RollingMaximum: Sendable {
    let period: Int
    /// Slot k holds a value at 2k and the push count it arrived at at 2k + 1 (exact below 2^53):
    /// one array, so one uniqueness check per push.
    private var slots: [Double]
    /// Ring position of the deque's front (the current maximum) and its length.
    private var front = 0
    private var length = 0
    /// Number of values pushed so far.
    private var time = 0

    init(period: Int) {
      self.period = period
      self.slots = [Double](repeating: 0, count: 2 * period)
    }

    /// Adds a value and returns the maximum of the last `period` values (of all of them before
    /// `period` were pushed).
    mutating func push(_ value: Double) -> Double {
      let now = self.time
      self.time += 1
      let period = self.period
      var front = self.front
      var length = self.length
      let maximum = self.slots.withUnsafeMutableBufferPointer { slots -> Double in
        // The front leaves once it is `period` pushes old.
        if length > 0, slots[2 * front + 1] <= Double(now - period) {
          front = front + 1 == period ? 0 : front + 1
          length -= 1
        }
        // Values not above the new one can never be the maximum again.
        while length > 0 {
          var back = front + length - 1
          if back >= period { back -= period }
          if slots[2 * back] > value { break }
          length -= 1
        }
        var slot = front + length
        if slot >= period { slot -= period }
        slots[2 * slot] = value
        slots[2 * slot + 1] = Double(now)
        length += 1
        return slots[2 * front]
      }
      self.front = front
      self.length = length
      return maximum
    }
  }

  /// Rolling highest high and lowest low over `period` bars, for a whole series at once, by the van
  /// Herk–Gil-Werman block method: the series is cut into blocks of `period` bars; a window starting
  /// inside block B is the suffix of B from its start plus the prefix of the next block up to its end,
  /// so its extreme is the larger of a precomputed suffix extreme and a running prefix extreme. Three
  /// comparisons per bar and value, no data-dependent branches (a deque mispredicts on real prices).
  /// Calls `body(i, highest, lowest)` for every `i` in `period − 1 ..< count`, in order.
  @inline(__always)
  static func rollingExtremes(
    high: UnsafePointer<Double>,
    low: UnsafePointer<Double>,
    count: Int,
    period: Int,
    _ body: (Int, Double, Double) -> Void
  ) {
    guard count >= period else { return }
    if period == 1 {
      for index in 0 ..< count { body(index, high[index], low[index]) }
      return
    }
    let suffixHigh = UnsafeMutablePointer<Double>.allocate(capacity: period)
    let suffixLow = UnsafeMutablePointer<Double>.allocate(capacity: period)
    defer {
      suffixHigh.deallocate()
      suffixLow.deallocate()
    }
    var blockStart = 0
    // A window starts at every bar up to count − period.
    while blockStart <= count - period {
      // Suffix extremes of the block [blockStart, blockStart + period), which lies inside the series.
      var runningHigh = high[blockStart + period - 1]
      var runningLow = low[blockStart + period - 1]
      suffixHigh[period - 1] = runningHigh
      suffixLow[period - 1] = runningLow
      var offset = period - 2
      while offset >= 0 {
        let h = high[blockStart + offset]
        let l = low[blockStart + offset]
        runningHigh = h > runningHigh ? h : runningHigh
        runningLow = l < runningLow ? l : runningLow
        suffixHigh[offset] = runningHigh
        suffixLow[offset] = runningLow
        offset -= 1
      }
      // The window that is exactly this block.
      body(blockStart + period - 1, suffixHigh[0], suffixLow[0])
      // Windows starting later in the block reach into the next one.
      let lastStart = Swift.min(blockStart + period - 1, count - period)
      var prefixHigh = -Double.infinity
      var prefixLow = Double.infinity
      var start = blockStart + 1
      while start <= lastStart {
        let end = start + period - 1
        let h = high[end]
        let l = low[end]
        prefixHigh = h > prefixHigh ? h : prefixHigh
        prefixLow = l < prefixLow ? l : prefixLow
        let k = start - blockStart
        let highest = suffixHigh[k] > prefixHigh ? suffixHigh[k] : prefixHigh
        let lowest = suffixLow[k] < prefixLow ? suffixLow[k] : prefixLow
        body(end, highest, lowest)
        start += 1
      }
      blockStart += period
    }
  }
}
