internal import Foundation
internal import VaneCore
internal import VaneMath

/// L2-regularised logistic regression, binary (one logit) or multinomial (softmax over K
/// classes): the baseline model and the stacking meta-learner.
///
/// Objective, as scikit-learn's `LogisticRegression(C = 1 / l2)`:
/// Σᵢ wᵢ · CE(yᵢ, softmax(xᵢ·W + b)) + (l2 / 2) · ‖W‖², the intercept b unpenalised;
/// minimised by Newton's method with a Cholesky solve, as scikit-learn's `newton-cholesky`
/// (Hessians and gradients through OpenBLAS); L-BFGS when a Hessian is not positive definite.
public struct LogisticRegression: Sendable, Equatable, Codable {
  /// Hyperparameters.
  public struct Parameters: Sendable, Equatable, Codable {
    public var l2: Double
    public var maxIterations: Int
    /// Stop when the gradient's largest component is below this (relative to the sample count).
    public var tolerance: Double
    public var fitIntercept: Bool

    public init(
      l2: Double = 1,
      maxIterations: Int = 1000,
      tolerance: Double = 1e-6,
      fitIntercept: Bool = true
    ) {
      self.l2 = l2
      self.maxIterations = maxIterations
      self.tolerance = tolerance
      self.fitIntercept = fitIntercept
    }
  }

  /// Inputs per sample.
  public var featureCount: Int
  /// Classes (2 for binary).
  public var classCount: Int
  /// Weights, `featureCount × outputs` row-major, where outputs is 1 for binary (the logit of
  /// class 1) and `classCount` otherwise; and one intercept per output.
  public var weights: [Double]
  public var intercepts: [Double]
  /// Solver iterations used (Newton steps, or L-BFGS iterations where it fell back).
  public var iterations: Int

  var outputs: Int { self.classCount == 2 ? 1 : self.classCount }

  /// Raw outputs (logits), `count × outputs`, for row-major `features` (`count × featureCount`).
  public func logits(_ features: [Double], count: Int) -> [Double] {
    precondition(features.count == count * self.featureCount)
    // One row (a served request): the sums in place. OpenBLAS's GEMM for a 1 × k by k × n
    // product spent most of a served logistic regression's instructions on its setup.
    if count == 1, features.count >= self.featureCount {
      return (0 ..< self.outputs).map { o in
        var sum = 0.0
        for c in 0 ..< self.featureCount { sum += features[c] * self.weights[c * self.outputs + o] }
        return sum + self.intercepts[o]
      }
    }
    var z = BLAS.matmul(features, self.weights, m: count, k: self.featureCount, n: self.outputs)
    for i in 0 ..< count {
      for o in 0 ..< self.outputs { z[i * self.outputs + o] += self.intercepts[o] }
    }
    return z
  }

  /// Class probabilities, `count × classCount`.
  public func probabilities(_ features: [Double], count: Int) -> [Double] {
    Self.probabilities(
      logits: self.logits(features, count: count),
      count: count,
      classCount: self.classCount
    )
  }

  static func probabilities(logits z: [Double], count: Int, classCount k: Int) -> [Double] {
    guard k == 2 else { return Logistic.softmax(z, columns: k) }
    // Binary models have one logit per row: the probability of class 1. Written in place (a
    // row array each, and the sigmoid twice, cost a served request more than its dot product).
    var rows = [Double](repeating: 0, count: 2 * z.count)
    for (i, logit) in z.enumerated() {
      let p = Logistic.sigmoid(logit)
      rows[2 * i] = 1 - p
      rows[2 * i + 1] = p
    }
    return rows
  }

  /// Fits the model.
  /// - Parameters:
  ///   - features: `count × featureCount`, row-major, finite.
  ///   - labels: class indices in `0..<classCount`.
  ///   - sampleWeights: one per sample (nil: all 1).
  /// - Throws: INVALID_ARGUMENT naming the field for shapes, labels or non-finite inputs.
  public static func fit(
    features: [Double],
    count: Int,
    featureCount: Int,
    labels: [Int],
    classCount: Int,
    sampleWeights: [Double]? = nil,
    parameters: Parameters = Parameters()
  ) throws -> LogisticRegression {
    guard count > 0, featureCount > 0, features.count == count * featureCount else {
      throw VaneError.invalidArgument(
        field: "features",
        "\(features.count) values for \(count) rows × \(featureCount) columns"
      )
    }
    guard classCount >= 2, labels.count == count else {
      throw VaneError.invalidArgument(field: "labels", "need \(count) labels of at least 2 classes")
    }
    if let bad = labels.firstIndex(where: { !(0 ..< classCount).contains($0) }) {
      throw VaneError.invalidArgument(
        field: "labels[\(bad)]",
        "\(labels[bad]) is not in 0..<\(classCount)"
      )
    }
    if let bad = features.firstIndex(where: { !$0.isFinite }) {
      throw VaneError.invalidArgument(
        field: "features[\(bad / featureCount)][\(bad % featureCount)]",
        "is not finite"
      )
    }
    let weights = sampleWeights ?? [Double](repeating: 1, count: count)
    guard weights.count == count, weights.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
      throw VaneError.invalidArgument(
        field: "sample_weights",
        "need \(count) finite non-negative weights"
      )
    }
    guard parameters.l2 >= 0, parameters.l2.isFinite else {
      throw VaneError.invalidArgument(field: "l2", "must be ≥ 0")
    }
    var model = LogisticRegression(
      featureCount: featureCount,
      classCount: classCount,
      weights: [],
      intercepts: [],
      iterations: 0
    )
    let objective = Objective(
      features: features,
      count: count,
      featureCount: featureCount,
      outputs: model.outputs,
      classCount: classCount,
      labels: labels,
      sampleWeights: weights,
      l2: parameters.l2,
      fitIntercept: parameters.fitIntercept
    )
    let scale = max(weights.reduce(0, +), 1)
    let tolerance = parameters.tolerance * scale
    let (theta, iterations) =
      objective.newton(maxIterations: parameters.maxIterations, gradientTolerance: tolerance)
      ?? LBFGS.minimize(
        [Double](repeating: 0, count: objective.parameterCount),
        maxIterations: parameters.maxIterations,
        gradientTolerance: tolerance
      ) {
        objective.valueAndGradient($0)
      }
    model.weights = Array(theta[0 ..< (featureCount * model.outputs)])
    model.intercepts = Array(theta[(featureCount * model.outputs)...])
    model.iterations = iterations
    return model
  }

  /// The loss and its gradient over θ = (W row-major, b).
  struct Objective {
    let features: [Double]
    let count: Int
    let featureCount: Int
    let outputs: Int
    let classCount: Int
    let labels: [Int]
    let sampleWeights: [Double]
    let l2: Double
    let fitIntercept: Bool

    var parameterCount: Int { self.featureCount * self.outputs + self.outputs }

    func valueAndGradient(_ theta: [Double]) -> (Double, [Double]) {
      let (loss, gradient, _) = self.evaluate(theta)
      return (loss, gradient)
    }

    /// The loss, its gradient and the logits (`count × outputs`) at θ.
    func evaluate(_ theta: [Double]) -> (loss: Double, gradient: [Double], logits: [Double]) {
      let d = self.featureCount, o = self.outputs, n = self.count
      let w = Array(theta[0 ..< (d * o)])
      var z = BLAS.matmul(self.features, w, m: n, k: d, n: o)
      for i in 0 ..< n { for j in 0 ..< o { z[i * o + j] += theta[d * o + j] } }
      // residual r = weight · (p − onehot), per output.
      var residual = [Double](repeating: 0, count: n * o)
      var loss = 0.0
      if o == 1 {
        for i in 0 ..< n {
          let zi = z[i], y = Double(self.labels[i])
          // log(1 + e^z) − y·z, stably.
          loss += self.sampleWeights[i] * (Logistic.softplus(zi) - y * zi)
          residual[i] = self.sampleWeights[i] * (Logistic.sigmoid(zi) - y)
        }
      } else {
        for i in 0 ..< n {
          var top = -Double.infinity
          for c in 0 ..< o { top = max(top, z[i * o + c]) }
          var total = 0.0
          for c in 0 ..< o { total += exp(z[i * o + c] - top) }
          let logTotal = log(total) + top
          loss += self.sampleWeights[i] * (logTotal - z[i * o + self.labels[i]])
          for c in 0 ..< o {
            residual[i * o + c] =
              self.sampleWeights[i] * (exp(z[i * o + c] - logTotal) - (c == self.labels[i] ? 1 : 0))
          }
        }
      }
      // ∂/∂W = Xᵀ r + l2 W; ∂/∂b = Σ r.
      var gradient = BLAS.matmulTransposedA(self.features, residual, m: n, k: d, n: o)
      for j in 0 ..< (d * o) {
        gradient[j] += self.l2 * w[j]
        loss += 0.5 * self.l2 * w[j] * w[j]
      }
      for j in 0 ..< o {
        var sum = 0.0
        if self.fitIntercept { for i in 0 ..< n { sum += residual[i * o + j] } }
        gradient.append(sum)
      }
      return (loss, gradient, z)
    }
  }
}
