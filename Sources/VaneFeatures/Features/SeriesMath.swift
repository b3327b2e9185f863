internal import Foundation

/// Array arithmetic the feature columns share: contiguous segments, returns, rolling
/// statistics that restart at every missing value (so a window never spans a gap), and
/// higher-timeframe alignment.
enum SeriesMath {
  /// Ranges of consecutive bars (each open time one interval after the previous).
  static func segments(_ openTimes: [Int64], step: Int64) -> [Range<Int>] {
    var segments: [Range<Int>] = []
    var start = 0
    for i in 1 ..< max(openTimes.count, 1) where openTimes[i] - openTimes[i - 1] != step {
      segments.append(start ..< i)
      start = i
    }
    if start < openTimes.count { segments.append(start ..< openTimes.count) }
    return segments
  }

  /// Applies `kernel` to each segment separately (it sees one gap-free run) and stitches the
  /// results; bars a kernel leaves NaN (its warm-up) stay missing.
  static func perSegment(
    _ segments: [Range<Int>],
    count: Int,
    _ kernel: (Range<Int>) -> [Double]
  ) -> [Double] {
    var out = [Double](repeating: .nan, count: count)
    for segment in segments {
      let values = kernel(segment)
      for (offset, value) in values.enumerated() { out[segment.lowerBound + offset] = value }
    }
    return out
  }

  /// `ln(x[i] / x[i - k])` where both bars are in the same segment, else NaN.
  static func logReturn(_ x: [Double], k: Int, position: [Int]) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    for i in x.indices where position[i] >= k {
      out[i] = Foundation.log(x[i] / x[i - k])
    }
    return out
  }

  /// Rolling mean and standard deviation over the last `w` values; a NaN restarts the window
  /// (the result is NaN until `w` finite values in a row are available again). `ddof` 0 is
  /// the population form, 1 the sample form. Sums are kept relative to the window's first
  /// value, which keeps large-valued series (volumes) from cancelling.
  static func rollingMoments(
    _ x: [Double],
    w: Int,
    ddof: Int = 0
  ) -> (mean: [Double], std: [Double]) {
    precondition(w > ddof)
    var mean = [Double](repeating: .nan, count: x.count)
    var std = [Double](repeating: .nan, count: x.count)
    var run = 0
    var shift = 0.0, sum = 0.0, sumSquares = 0.0
    for i in x.indices {
      let value = x[i]
      guard value.isFinite else {
        run = 0
        continue
      }
      if run == 0 {
        shift = value
        sum = 0
        sumSquares = 0
      }
      let d = value - shift
      sum += d
      sumSquares += d * d
      run += 1
      if run > w {
        let old = x[i - w] - shift
        sum -= old
        sumSquares -= old * old
      }
      if run >= w {
        let m = sum / Double(w)
        mean[i] = m + shift
        let variance = max((sumSquares - Double(w) * m * m) / Double(w - ddof), 0)
        std[i] = variance.squareRoot()
      }
    }
    return (mean, std)
  }

  /// Rolling Pearson correlation of x and y over the last `w` pairs; a NaN in either restarts
  /// the window. NaN where either side is constant over the window.
  static func rollingCorrelation(_ x: [Double], _ y: [Double], w: Int) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    var run = 0
    var sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0
    for i in x.indices {
      guard x[i].isFinite, y[i].isFinite else {
        run = 0
        sx = 0
        sy = 0
        sxx = 0
        syy = 0
        sxy = 0
        continue
      }
      sx += x[i]
      sy += y[i]
      sxx += x[i] * x[i]
      syy += y[i] * y[i]
      sxy += x[i] * y[i]
      run += 1
      if run > w {
        let a = x[i - w], b = y[i - w]
        sx -= a
        sy -= b
        sxx -= a * a
        syy -= b * b
        sxy -= a * b
      }
      if run >= w {
        let n = Double(w)
        let cov = sxy - sx * sy / n
        let vx = sxx - sx * sx / n
        let vy = syy - sy * sy / n
        if vx > 1e-300, vy > 1e-300 { out[i] = min(max(cov / (vx * vy).squareRoot(), -1), 1) }
      }
    }
    return out
  }

  /// For each target bar opened at `openTimes[i]` (length `step`), the index into
  /// `higherOpenTimes` of the latest higher-timeframe bar (length `higherStep`) that had
  /// closed when the target bar closed, or nil when that bar is not in the series.
  static func alignCompleted(
    _ openTimes: [Int64],
    step: Int64,
    higherOpenTimes: [Int64],
    higherStep: Int64
  ) -> [Int?] {
    var out = [Int?](repeating: nil, count: openTimes.count)
    var j = 0
    for (i, t) in openTimes.enumerated() {
      let closes = t + step
      // The higher bar that closed most recently at or before `closes`.
      let wanted = closes.floorDivided(by: higherStep) * higherStep - higherStep
      while j < higherOpenTimes.count, higherOpenTimes[j] < wanted { j += 1 }
      if j < higherOpenTimes.count, higherOpenTimes[j] == wanted { out[i] = j }
    }
    return out
  }
}
