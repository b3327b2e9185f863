internal import Foundation

/// AdamW (decoupled weight decay, Loshchilov & Hutter), as PyTorch's `torch.optim.AdamW`.
public struct AdamW: Sendable {
  public var learningRate: Double
  public var weightDecay: Double
  public var beta1 = 0.9
  public var beta2 = 0.999
  public var epsilon = 1e-8
  /// 1 for the parameters that decay (weights, not biases or normalisation), 0 for the others:
  /// the form ``step(theta:gradient:firstMoment:secondMoment:decay:count:step:)`` reads.
  let decay: [Double]
  var firstMoment: [Double]
  var secondMoment: [Double]
  var step = 0

  public init(parameterCount: Int, learningRate: Double, weightDecay: Double, decay: [Bool]) {
    precondition(decay.count == parameterCount)
    self.learningRate = learningRate
    self.weightDecay = weightDecay
    self.decay = decay.map { $0 ? 1 : 0 }
    self.firstMoment = [Double](repeating: 0, count: parameterCount)
    self.secondMoment = [Double](repeating: 0, count: parameterCount)
  }

  /// The settings alone, for ``step(theta:gradient:firstMoment:secondMoment:decay:count:step:)``
  /// on a caller's buffers (``update(_:gradient:)`` needs the other initialiser).
  public init(learningRate: Double, weightDecay: Double) {
    self.init(parameterCount: 0, learningRate: learningRate, weightDecay: weightDecay, decay: [])
  }

  /// One step: θ ← θ − lr·(λθ [decaying parameters] + m̂ / (√v̂ + ε)).
  public mutating func update(_ theta: inout [Double], gradient: [Double]) {
    precondition(theta.count == gradient.count && theta.count == self.firstMoment.count)
    self.step += 1
    guard !theta.isEmpty else { return }
    let count = theta.count, step = self.step, decay = self.decay
    // The settings without the moment arrays: a copy of `self` would share them, and the
    // mutable access below would then copy both on every step.
    var settings = AdamW(learningRate: self.learningRate, weightDecay: self.weightDecay)
    (settings.beta1, settings.beta2, settings.epsilon) = (self.beta1, self.beta2, self.epsilon)
    theta.withUnsafeMutableBufferPointer { theta in
      gradient.withUnsafeBufferPointer { gradient in
        self.firstMoment.withUnsafeMutableBufferPointer { first in
          self.secondMoment.withUnsafeMutableBufferPointer { second in
            decay.withUnsafeBufferPointer { factors in
              settings.step(
                theta: theta.baseAddress!,
                gradient: gradient.baseAddress!,
                firstMoment: first.baseAddress!,
                secondMoment: second.baseAddress!,
                decay: factors.baseAddress!,
                count: count,
                step: step
              )
            }
          }
        }
      }
    }
  }

  /// One step on raw buffers of `count` values in any precision: the kernel behind
  /// ``update(_:gradient:)``, for training loops that keep their state in flat buffers.
  /// `decay` holds 1 for a decaying parameter and 0 for the others; `step` counts from 1.
  @inlinable
  public func step<Scalar: BLASScalar>(
    theta: UnsafeMutablePointer<Scalar>,
    gradient: UnsafePointer<Scalar>,
    firstMoment: UnsafeMutablePointer<Scalar>,
    secondMoment: UnsafeMutablePointer<Scalar>,
    decay: UnsafePointer<Scalar>,
    count: Int,
    step: Int
  ) {
    let beta1 = Scalar(self.beta1), beta2 = Scalar(self.beta2), epsilon = Scalar(self.epsilon)
    let (correction1, correction2Inverse) = self.biasCorrections(step: step)
    let rate = Scalar(self.learningRate / correction1), correction2 = Scalar(correction2Inverse)
    let shrink = Scalar(self.learningRate * self.weightDecay)
    // Two passes, each touching few buffers: the compiler vectorises a loop only when it can
    // check at run time that its buffers do not overlap, and gives up beyond a few such checks.
    for j in 0 ..< count {
      let g = gradient[j]
      firstMoment[j] = beta1 * firstMoment[j] + (1 - beta1) * g
      secondMoment[j] = beta2 * secondMoment[j] + (1 - beta2) * g * g
    }
    for j in 0 ..< count {
      let t = theta[j] - shrink * decay[j] * theta[j]
      theta[j] =
        t - rate * firstMoment[j] / ((secondMoment[j] * correction2).squareRoot() + epsilon)
    }
  }

  /// 1 − β₁ᵗ and 1/(1 − β₂ᵗ).
  @usableFromInline
  func biasCorrections(step: Int) -> (Double, Double) {
    (
      1 - Foundation.pow(self.beta1, Double(step)),
      1 / (1 - Foundation.pow(self.beta2, Double(step)))
    )
  }

  /// Scales `gradient` down to global norm `maximum` when it is longer (0: no clipping).
  public static func clip(_ gradient: inout [Double], maximumNorm maximum: Double) {
    let count = gradient.count
    guard count > 0 else { return }
    gradient.withUnsafeMutableBufferPointer {
      _ = Self.clip($0.baseAddress!, count: count, maximumNorm: maximum)
    }
  }

  /// ``clip(_:maximumNorm:)`` on a raw buffer of `count` values in any precision; returns the
  /// norm before clipping.
  @inlinable @discardableResult
  public static func clip<Scalar: BLASScalar>(
    _ gradient: UnsafeMutablePointer<Scalar>,
    count: Int,
    maximumNorm maximum: Double
  ) -> Double {
    var sum = 0.0
    for j in 0 ..< count { sum += Double(gradient[j]) * Double(gradient[j]) }
    let norm = sum.squareRoot()
    guard maximum > 0, norm > maximum else { return norm }
    let scale = Scalar(maximum / norm)
    for j in 0 ..< count { gradient[j] *= scale }
    return norm
  }
}
