internal import Foundation

/// A feature set's computation, one bar at a time: the state after some bars of one market,
/// which takes the next bar and writes that bar's row. It is a value, so a copy is a checkpoint
/// from which the frame can be extended again (``FrameBuilder``). Every value a row gets equals
/// what the same code gives when the whole series is run through it at once: a frame extended
/// bar by bar is the frame computed from scratch, bit for bit.
protocol FeatureRowStream: Sendable {
  /// Takes the market's next bar (ascending open times, gaps allowed).
  mutating func next(_ bar: Candle, references: FeatureReferences)

  /// Writes the latest bar's row: one value per column of the feature set, NaN where missing.
  /// (Separate from ``next(_:references:)`` so that the columns read the state borrowed, never
  /// copied.)
  func row(into row: UnsafeMutableBufferPointer<Double>)
}

/// The reference series a row reads (the cross-asset columns), found by open time.
struct FeatureReferences: Sendable {
  /// Per reference symbol, in the feature set's order: its candles, ascending (empty for the
  /// target itself, whose own bars the stream keeps).
  let series: [[Candle]]

  init(_ inputs: FeatureInputs, symbols: [String]) {
    self.series = symbols.map { $0 == inputs.symbol ? [] : (inputs.references[$0] ?? []) }
  }

  /// The close of reference `index`'s bar opened at `openTime`, if stored.
  func close(_ index: Int, at openTime: Int64) -> Double? {
    let candles = self.series[index]
    var low = 0, high = candles.count
    while low < high {
      let mid = (low + high) / 2
      if candles[mid].openTime < openTime { low = mid + 1 } else { high = mid }
    }
    return low < candles.count && candles[low].openTime == openTime ? candles[low].close : nil
  }
}

/// The last `capacity` values of a run, newest last: `back(0)` is the newest.
struct RecentValues: Sendable {
  private var ring: [Double]
  private var next = 0
  /// Values pushed since the last reset (capped at the capacity).
  private(set) var count = 0

  init(capacity: Int) {
    self.ring = [Double](repeating: .nan, count: max(capacity, 1))
  }

  mutating func reset() { self.count = 0 }

  mutating func push(_ value: Double) {
    self.ring[self.next] = value
    self.next = self.next + 1 == self.ring.count ? 0 : self.next + 1
    self.count = min(self.count + 1, self.ring.count)
  }

  /// The value pushed `k` pushes before the newest (k < count).
  func back(_ k: Int) -> Double {
    var index = self.next - 1 - k
    if index < 0 { index += self.ring.count }
    return self.ring[index]
  }
}

/// Rolling mean and standard deviation over the last `w` values, one value at a time; a
/// non-finite value restarts the window (NaN until `w` finite values in a row are there again).
/// `ddof` 0 is the population form, 1 the sample form. Sums are kept relative to the run's first
/// value, which keeps large-valued series (volumes) from cancelling.
struct RollingMoments: Sendable {
  let w: Int
  let ddof: Int
  private var window: RecentValues
  private var run = 0
  private var shift = 0.0, sum = 0.0, sumSquares = 0.0

  init(w: Int, ddof: Int = 0) {
    precondition(w > ddof)
    self.w = w
    self.ddof = ddof
    self.window = RecentValues(capacity: w)
  }

  /// Starts over, as after a missing value.
  mutating func reset() { self.run = 0 }

  mutating func update(_ value: Double) -> (mean: Double, std: Double) {
    guard value.isFinite else {
      self.run = 0
      return (.nan, .nan)
    }
    if self.run == 0 {
      self.shift = value
      self.sum = 0
      self.sumSquares = 0
    }
    let d = value - self.shift
    self.sum += d
    self.sumSquares += d * d
    self.run += 1
    if self.run > self.w {
      let old = self.window.back(self.w - 1) - self.shift
      self.sum -= old
      self.sumSquares -= old * old
    }
    self.window.push(value)
    guard self.run >= self.w else { return (.nan, .nan) }
    let m = self.sum / Double(self.w)
    let variance = max((self.sumSquares - Double(self.w) * m * m) / Double(self.w - self.ddof), 0)
    return (m + self.shift, variance.squareRoot())
  }
}

/// Rolling Pearson correlation of pairs over the last `w`, one pair at a time; a non-finite
/// value on either side restarts the window. NaN where either side is constant over the window.
struct RollingCorrelation: Sendable {
  let w: Int
  private var xs: RecentValues
  private var ys: RecentValues
  private var run = 0
  private var sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0

  init(w: Int) {
    self.w = w
    self.xs = RecentValues(capacity: w)
    self.ys = RecentValues(capacity: w)
  }

  mutating func update(_ x: Double, _ y: Double) -> Double {
    guard x.isFinite, y.isFinite else {
      self.run = 0
      self.sx = 0
      self.sy = 0
      self.sxx = 0
      self.syy = 0
      self.sxy = 0
      return .nan
    }
    self.sx += x
    self.sy += y
    self.sxx += x * x
    self.syy += y * y
    self.sxy += x * y
    self.run += 1
    if self.run > self.w {
      let a = self.xs.back(self.w - 1), b = self.ys.back(self.w - 1)
      self.sx -= a
      self.sy -= b
      self.sxx -= a * a
      self.syy -= b * b
      self.sxy -= a * b
    }
    self.xs.push(x)
    self.ys.push(y)
    guard self.run >= self.w else { return .nan }
    let n = Double(self.w)
    let cov = self.sxy - self.sx * self.sy / n
    let vx = self.sxx - self.sx * self.sx / n
    let vy = self.syy - self.sy * self.sy / n
    guard vx > 1e-300, vy > 1e-300 else { return .nan }
    return min(max(cov / (vx * vy).squareRoot(), -1), 1)
  }
}
