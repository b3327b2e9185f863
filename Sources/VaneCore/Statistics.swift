internal import Foundation

/// Small statistics the domain libraries share.
public enum Statistics {
  /// The q-quantile of ascending values with linear interpolation between order statistics
  /// (NumPy's default method): position q·(n − 1), interpolated between its neighbours.
  public static func quantile(sorted: [Double], _ q: Double) -> Double {
    precondition(!sorted.isEmpty && (0 ... 1).contains(q))
    let position = q * Double(sorted.count - 1)
    let low = Int(position.rounded(.down))
    let high = min(low + 1, sorted.count - 1)
    return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
  }

  /// A distribution-free confidence interval for the median of the population that ascending
  /// values were drawn from: the order statistics x₍ₖ₎ and x₍ₙ₋ₖ₊₁₎ (1-based) for the largest
  /// k whose exact coverage, 1 − 2·P(Binomial(n, ½) < k), is at least `confidence`; nil when
  /// even the smallest and largest value cover less (too few values). Independent draws are
  /// all it assumes, which suits a benchmark's per-process figures on a noisy machine.
  public static func medianInterval(
    sorted: [Double],
    confidence: Double
  ) -> (lower: Double, upper: Double, coverage: Double)? {
    precondition((0 ..< 1).contains(confidence))
    let n = sorted.count
    guard n > 0 else { return nil }
    // P(Binomial(n, ½) = i), built up from P(0) = 2⁻ⁿ in log space (no overflow for large n).
    var best: (Int, Double)?
    var tail = 0.0
    var logProbability = -Double(n) * log(2.0)
    for k in 1 ... (n + 1) / 2 {
      tail += exp(logProbability)  // P(Binomial < k)
      let coverage = 1 - 2 * tail
      guard coverage >= confidence else { break }
      best = (k, coverage)
      // P(i + 1) = P(i)·(n − i)/(i + 1), with i = k − 1.
      logProbability += log(Double(n - k + 1)) - log(Double(k))
    }
    guard let (k, coverage) = best else { return nil }
    return (sorted[k - 1], sorted[n - k], coverage)
  }
}

extension Sequence where Element == UInt8 {
  /// Lower-case hexadecimal, two digits per byte (how digests are written everywhere in Vane).
  public var hexString: String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in self {
      text.append(digits[Int(byte >> 4)])
      text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
  }
}
