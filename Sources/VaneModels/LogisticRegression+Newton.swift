internal import Foundation
internal import VaneMath

extension LogisticRegression.Objective {
  /// The features with a column of ones for the intercepts, `count × (featureCount + 1)`.
  func augmented() -> [Double] {
    let d = self.featureCount
    var x = [Double](repeating: 1, count: self.count * (d + 1))
    for i in 0 ..< self.count {
      for j in 0 ..< d { x[i * (d + 1) + j] = self.features[i * d + j] }
    }
    return x
  }

  /// Where weight (j, c) sits in θ; j == featureCount is the intercept of output c.
  func index(_ j: Int, _ c: Int) -> Int {
    j < self.featureCount ? j * self.outputs + c : self.featureCount * self.outputs + c
  }

  /// The Hessian of the loss at θ, `parameterCount²`: per pair of outputs (c, c'), Σᵢ sᵢ hᵢ x̃ᵢx̃ᵢᵀ
  /// with h = p(1 − p) for one logit (one SYRK) and p_c(δ_cc' − p_c') for a softmax (a GEMM each);
  /// plus l2 on the weights' diagonal. A softmax's intercepts are free along their sum (the loss
  /// does not change), so their diagonal gets a ridge far below the curvature: the gradient has
  /// no component along that direction, and ``project(_:)`` keeps the step off it.
  func hessian(_ theta: [Double]) -> [Double] {
    var scratch: [Double] = []
    return self.hessian(
      logits: self.evaluate(theta).logits,
      augmented: self.outputs > 1 ? self.augmented() : nil,
      scratch: &scratch
    )
  }

  /// ``hessian(_:)`` from θ's logits (the gradient's evaluation made them), with the softmax's
  /// augmented features made once (nil for one logit, which reads the features directly) and
  /// the scaled rows' buffer kept between Newton steps (a fresh one costs its page faults every
  /// step).
  func hessian(
    logits z: [Double],
    augmented: [Double]?,
    scratch scaled: inout [Double]
  ) -> [Double] {
    let d = self.featureCount, o = self.outputs, n = self.count, width = d + 1
    let p = o == 1 ? z.map(Logistic.sigmoid) : Logistic.softmax(z, columns: o)
    let size = self.parameterCount
    var hessian = [Double](repeating: 0, count: size * size)
    if scaled.count != n * width { scaled = [Double](repeating: 0, count: n * width) }
    for c in 0 ..< o {
      for c2 in c ..< o {
        let block: [Double]
        if o == 1 {
          // One logit: the curvature is never negative, so the block is a Gram matrix of rows
          // scaled by its square root (a SYRK, half the work of a GEMM).
          for i in 0 ..< n {
            let v = (self.sampleWeights[i] * p[i] * (1 - p[i])).squareRoot()
            for j in 0 ..< d { scaled[i * width + j] = v * self.features[i * d + j] }
            scaled[i * width + d] = v
          }
          block = BLAS.gram(scaled, m: n, k: width)
        } else {
          let x = augmented ?? self.augmented()
          for i in 0 ..< n {
            let v =
              self.sampleWeights[i] * p[i * o + c] * ((c == c2 ? 1 : 0) - p[i * o + c2])
            for j in 0 ..< width { scaled[i * width + j] = v * x[i * width + j] }
          }
          block = BLAS.matmulTransposedA(scaled, x, m: n, k: width, n: width)
        }
        for a in 0 ..< width {
          for b in 0 ..< width {
            let row = self.index(a, c), column = self.index(b, c2)
            hessian[row * size + column] = block[a * width + b]
            hessian[column * size + row] = block[a * width + b]
          }
        }
      }
    }
    var largest = 0.0
    for k in 0 ..< size { largest = max(largest, hessian[k * size + k]) }
    for j in 0 ..< d { for c in 0 ..< o { hessian[self.index(j, c) * (size + 1)] += self.l2 } }
    for c in 0 ..< o {
      let k = self.index(d, c)
      if !self.fitIntercept {
        // Intercepts held at 0: their rows say so.
        for m in 0 ..< size {
          hessian[k * size + m] = 0
          hessian[m * size + k] = 0
        }
        hessian[k * size + k] = 1
      }
    }
    for j in self.freeAcrossClasses {
      for c in 0 ..< o { hessian[self.index(j, c) * (size + 1)] += 1e-8 * max(largest, 1) }
    }
    return hessian
  }

  /// Rows of θ (features, or `featureCount` for the intercepts) whose values a softmax leaves
  /// free along their sum over classes: adding one constant to every class's changes nothing
  /// unless L2 holds it. Newton steps keep their sum at its start (0), as L-BFGS's do and
  /// scikit-learn's solution has.
  var freeAcrossClasses: [Int] {
    guard self.outputs > 1 else { return [] }
    return (self.l2 == 0 ? Array(0 ..< self.featureCount) : [])
      + (self.fitIntercept ? [self.featureCount] : [])
  }

  /// Removes a step's component along the free directions (see ``freeAcrossClasses``), where
  /// the ridge alone would leave a rounding-sized gradient amplified.
  func project(_ step: inout [Double]) {
    let o = self.outputs
    for j in self.freeAcrossClasses {
      var mean = 0.0
      for c in 0 ..< o { mean += step[self.index(j, c)] }
      mean /= Double(o)
      for c in 0 ..< o { step[self.index(j, c)] -= mean }
    }
  }

  /// Newton's method from θ = 0: each step solves H·Δ = g by Cholesky, with a backtracking line
  /// search (Armijo) on the loss; stops when the gradient's largest component is at most
  /// `gradientTolerance`, or when a step no longer changes θ. Nil when a Hessian is not positive
  /// definite (no L2 on separable data, say): the caller falls back to L-BFGS.
  func newton(maxIterations: Int, gradientTolerance: Double) -> (theta: [Double], iterations: Int)?
  {
    let x = self.outputs > 1 ? self.augmented() : nil
    var scratch: [Double] = []
    var theta = [Double](repeating: 0, count: self.parameterCount)
    var (loss, gradient, logits) = self.evaluate(theta)
    var iterations = 0
    while iterations < maxIterations {
      if gradient.map(abs).max() ?? 0 <= gradientTolerance { break }
      guard
        var step = BLAS.choleskySolve(
          self.hessian(logits: logits, augmented: x, scratch: &scratch),
          n: theta.count,
          gradient
        )
      else { return nil }
      self.project(&step)
      iterations += 1
      let slope = zip(gradient, step).reduce(0) { $0 + $1.0 * $1.1 }
      var t = 1.0
      var accepted = false
      while t > 1e-12 {
        let candidate = zip(theta, step).map { $0 - t * $1 }
        let (candidateLoss, candidateGradient, candidateLogits) = self.evaluate(candidate)
        if candidateLoss <= loss - 1e-4 * t * slope {
          let moved = zip(candidate, theta).contains { $0 != $1 }
          (theta, loss, gradient, logits) = (
            candidate, candidateLoss, candidateGradient, candidateLogits
          )
          accepted = moved
          break
        }
        t /= 2
      }
      // No step lowers the loss any more: the optimum, to rounding.
      if !accepted { break }
    }
    return (theta, iterations)
  }
}
