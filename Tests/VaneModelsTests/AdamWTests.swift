import Foundation
import Testing
import VaneMath
import VaneCore

@Suite("AdamW")
struct AdamWTests {
  /// PyTorch's AdamW by hand: θ ← θ(1 − lr·λ) − lr · m̂ / (√v̂ + ε), with m̂ = m/(1 − β₁ᵗ) and
  /// v̂ = v/(1 − β₂ᵗ); weight decay only where the mask says so.
  static func reference(
    theta: [Double],
    gradients: [[Double]],
    decay: [Bool],
    lr: Double,
    wd: Double
  ) -> [Double] {
    var theta = theta, m = [Double](repeating: 0, count: theta.count), v = m
    for (t, g) in gradients.enumerated() {
      for j in theta.indices {
        m[j] = 0.9 * m[j] + 0.1 * g[j]
        v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j]
        if decay[j] { theta[j] *= 1 - lr * wd }
        let mHat = m[j] / (1 - pow(0.9, Double(t + 1))),
          vHat = v[j] / (1 - pow(0.999, Double(t + 1)))
        theta[j] -= lr * mHat / (vHat.squareRoot() + 1e-8)
      }
    }
    return theta
  }

  @Test(
    "Steps equal the closed form, the decay mask is honoured, and the float kernel agrees to single precision",
    arguments: [1, 3, 19]
  )
  func steps(count: Int) {
    var random = SeededRandom(seed: UInt64(count))
    let theta = (0 ..< count).map { _ in random.normal() }
    let decay = (0 ..< count).map { $0 % 2 == 0 }
    let gradients = (0 ..< 5).map { _ in (0 ..< count).map { _ in random.normal() } }
    let expected = Self.reference(
      theta: theta,
      gradients: gradients,
      decay: decay,
      lr: 0.01,
      wd: 0.1
    )

    var optimizer = AdamW(parameterCount: count, learningRate: 0.01, weightDecay: 0.1, decay: decay)
    var updated = theta
    for g in gradients { optimizer.update(&updated, gradient: g) }
    #expect(
      zip(updated, expected).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) },
      "\(updated) vs \(expected)"
    )

    // The raw-buffer kernel in Float, as the MLP engine drives it.
    let settings = AdamW(learningRate: 0.01, weightDecay: 0.1)
    var single = theta.map(Float.init), first = [Float](repeating: 0, count: count), second = first
    let factors = decay.map { Float($0 ? 1 : 0) }
    for (t, g) in gradients.enumerated() {
      let gradient = g.map(Float.init)
      single.withUnsafeMutableBufferPointer { theta in
        first.withUnsafeMutableBufferPointer { first in
          second.withUnsafeMutableBufferPointer { second in
            settings.step(
              theta: theta.baseAddress!,
              gradient: gradient,
              firstMoment: first.baseAddress!,
              secondMoment: second.baseAddress!,
              decay: factors,
              count: count,
              step: t + 1
            )
          }
        }
      }
    }
    #expect(
      zip(single, expected).allSatisfy { abs(Double($0) - $1) <= 1e-5 * max(1, abs($1)) },
      "\(single) vs \(expected)"
    )
  }

  @Test(
    "Clipping scales a long gradient to the maximum norm and leaves a short one alone",
    arguments: [(3.0, 4.0, 1.0, 5.0), (0.3, 0.4, 1.0, 0.5), (3.0, 4.0, 0.0, 5.0)]
  )
  func clip(x: Double, y: Double, maximum: Double, norm: Double) {
    var gradient = [x, y]
    AdamW.clip(&gradient, maximumNorm: maximum)
    let scale = maximum > 0 && norm > maximum ? maximum / norm : 1
    #expect(abs(gradient[0] - x * scale) < 1e-15 && abs(gradient[1] - y * scale) < 1e-15)
    var single: [Float] = [Float(x), Float(y)]
    let before = single.withUnsafeMutableBufferPointer {
      AdamW.clip($0.baseAddress!, count: 2, maximumNorm: maximum)
    }
    #expect(abs(before - norm) < 1e-6 && abs(Double(single[0]) - x * scale) < 1e-6)
  }
}
