/// Limited-memory BFGS (Nocedal & Wright, algorithm 7.5) with a backtracking line search on
/// the Armijo condition: minimises a smooth function given its value and gradient.
public enum LBFGS {
  /// Minimises `f` from `start`.
  /// - Parameters:
  ///   - memory: correction pairs kept.
  ///   - gradientTolerance: stop when every gradient component is at most this in magnitude.
  /// - Returns: the minimiser and the iterations used.
  public static func minimize(
    _ start: [Double],
    memory: Int = 10,
    maxIterations: Int,
    gradientTolerance: Double,
    _ f: ([Double]) -> (value: Double, gradient: [Double])
  ) -> (x: [Double], iterations: Int) {
    var x = start
    var (value, gradient) = f(x)
    var s: [[Double]] = [], y: [[Double]] = [], rho: [Double] = []
    var iteration = 0
    while iteration < maxIterations, (gradient.map { abs($0) }.max() ?? 0) > gradientTolerance {
      iteration += 1
      // Two-loop recursion: direction = −H·g.
      var q = gradient
      var alphas = [Double](repeating: 0, count: s.count)
      for i in stride(from: s.count - 1, through: 0, by: -1) {
        alphas[i] = rho[i] * Self.dot(s[i], q)
        for j in q.indices { q[j] -= alphas[i] * y[i][j] }
      }
      if let lastS = s.last, let lastY = y.last {
        let gamma = Self.dot(lastS, lastY) / Self.dot(lastY, lastY)
        for j in q.indices { q[j] *= gamma }
      } else {
        // First step: a unit-length step along −g.
        let norm = Self.dot(gradient, gradient).squareRoot()
        if norm > 0 { for j in q.indices { q[j] /= norm } }
      }
      for i in s.indices {
        let beta = rho[i] * Self.dot(y[i], q)
        for j in q.indices { q[j] += s[i][j] * (alphas[i] - beta) }
      }
      var direction = q.map { -$0 }
      var slope = Self.dot(gradient, direction)
      if slope >= 0 {
        // Not a descent direction (curvature information went stale): restart from −g.
        s.removeAll()
        y.removeAll()
        rho.removeAll()
        direction = gradient.map { -$0 }
        slope = Self.dot(gradient, direction)
      }
      var step = 1.0
      var next = x, nextValue = value, nextGradient = gradient
      var accepted = false
      for _ in 0 ..< 60 {
        next = zip(x, direction).map { $0 + step * $1 }
        (nextValue, nextGradient) = f(next)
        if nextValue.isFinite, nextValue <= value + 1e-4 * step * slope {
          accepted = true
          break
        }
        step *= 0.5
      }
      guard accepted else { break }
      let sk = zip(next, x).map { $0 - $1 }, yk = zip(nextGradient, gradient).map { $0 - $1 }
      let sy = Self.dot(sk, yk)
      if sy > 1e-12 * Self.dot(yk, yk).squareRoot() * Self.dot(sk, sk).squareRoot() {
        s.append(sk)
        y.append(yk)
        rho.append(1 / sy)
        if s.count > memory {
          s.removeFirst()
          y.removeFirst()
          rho.removeFirst()
        }
      }
      let improvement = value - nextValue
      x = next
      value = nextValue
      gradient = nextGradient
      if improvement <= 1e-15 * max(abs(value), 1) { break }
    }
    return (x, iteration)
  }

  static func dot(_ a: [Double], _ b: [Double]) -> Double {
    var total = 0.0
    for i in a.indices { total += a[i] * b[i] }
    return total
  }
}
