internal import Foundation

/// Adam with decoupled weight decay (Loshchilov & Hutter 2019) over one parameter vector.
public struct AdamW: Sendable {
  public var learningRate: Double
  public var weightDecay: Double
  public var beta1 = 0.9
  public var beta2 = 0.999
  public var epsilon = 1e-8
  /// Which parameters decay (weights, not biases or normalisation).
  let decay: [Bool]
  var firstMoment: [Double]
  var secondMoment: [Double]
  var step = 0

  public init(parameterCount: Int, learningRate: Double, weightDecay: Double, decay: [Bool]) {
    precondition(decay.count == parameterCount)
    self.learningRate = learningRate
    self.weightDecay = weightDecay
    self.decay = decay
    self.firstMoment = [Double](repeating: 0, count: parameterCount)
    self.secondMoment = [Double](repeating: 0, count: parameterCount)
  }

  /// One step: θ ← θ − lr·(λθ [decaying parameters] + m̂ / (√v̂ + ε)).
  public mutating func update(_ theta: inout [Double], gradient: [Double]) {
    precondition(theta.count == gradient.count && theta.count == self.firstMoment.count)
    self.step += 1
    let correction1 = 1 - Foundation.pow(self.beta1, Double(self.step)), correction2 = 1 - Foundation.pow(self.beta2, Double(self.step))
    for j in theta.indices {
      self.firstMoment[j] = self.beta1 * self.firstMoment[j] + (1 - self.beta1) * gradient[j]
      self.secondMoment[j] = self.beta2 * self.secondMoment[j] + (1 - self.beta2) * gradient[j] * gradient[j]
      if self.decay[j] { theta[j] -= self.learningRate * self.weightDecay * theta[j] }
      theta[j] -= self.learningRate * (self.firstMoment[j] / correction1) / ((self.secondMoment[j] / correction2).squareRoot() + self.epsilon)
    }
  }

  /// Scales `gradient` down to global norm `maximum` when it is longer (0: no clipping).
  public static func clip(_ gradient: inout [Double], maximumNorm maximum: Double) {
    guard maximum > 0 else { return }
    let norm = gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
    if norm > maximum { for j in gradient.indices { gradient[j] *= maximum / norm } }
  }
}
