/// Gradients against central differences: the relative error |numeric − analytic| /
/// max(1e-4, |numeric| + |analytic|) of every parameter.
enum GradientCheck {
  /// The worst relative error, leaving out (and counting) the parameters whose error is above
  /// `kinkAbove` (a difference straddling a ReLU kink is no derivative); nil keeps every one.
  static func worst(
    _ theta: [Double],
    gradient: [Double],
    kinkAbove: Double? = nil,
    step: Double = 1e-6,
    loss: ([Double]) -> Double
  ) -> (error: Double, kinks: Int) {
    precondition(theta.count == gradient.count)
    var worst = 0.0, kinks = 0
    for j in theta.indices {
      var plus = theta, minus = theta
      plus[j] += step
      minus[j] -= step
      let numeric = (loss(plus) - loss(minus)) / (2 * step)
      let error = abs(numeric - gradient[j]) / max(1e-4, abs(numeric) + abs(gradient[j]))
      if let kinkAbove, error > kinkAbove {
        kinks += 1
      } else {
        worst = max(worst, error)
      }
    }
    return (worst, kinks)
  }
}
