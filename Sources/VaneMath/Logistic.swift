internal import Foundation

/// The logistic functions every model and calibrator shares, written so they never overflow.
public enum Logistic {
  /// σ(x) = 1 / (1 + e⁻ˣ).
  @inline(__always)
  public static func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
  }

  /// log(1 + eˣ).
  @inline(__always)
  public static func softplus(_ x: Double) -> Double {
    x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x))
  }

  /// The softmax of each row of a row-major matrix with `columns` columns (the largest value
  /// subtracted first).
  public static func softmax(_ z: [Double], columns k: Int) -> [Double] {
    precondition(k > 0 && z.count % k == 0)
    var p = z
    for row in 0 ..< (z.count / k) {
      let base = row * k
      var top = -Double.infinity
      for c in 0 ..< k { top = max(top, z[base + c]) }
      var total = 0.0
      for c in 0 ..< k {
        p[base + c] = Foundation.exp(z[base + c] - top)
        total += p[base + c]
      }
      for c in 0 ..< k { p[base + c] /= total }
    }
    return p
  }
}
