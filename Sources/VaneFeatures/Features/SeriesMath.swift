internal import Foundation

/// Array arithmetic over whole series (labels): contiguous segments, returns, rolling
/// statistics that restart at every missing value (so a window never spans a gap).
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

  /// ``RollingMoments`` over a whole series.
  static func rollingMoments(
    _ x: [Double],
    w: Int,
    ddof: Int = 0
  ) -> (mean: [Double], std: [Double]) {
    var moments = RollingMoments(w: w, ddof: ddof)
    var mean = [Double](repeating: .nan, count: x.count)
    var std = [Double](repeating: .nan, count: x.count)
    for i in x.indices {
      (mean[i], std[i]) = moments.update(x[i])
    }
    return (mean, std)
  }
}
