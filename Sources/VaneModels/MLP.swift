internal import Foundation
internal import VaneCore
internal import VaneMath

/// A multi-layer perceptron on OpenBLAS: input → hidden layers (dense → batch normalisation →
/// activation → dropout) → K logits → softmax / T. Trained with AdamW on a focal loss with
/// label smoothing and class weights, early stopping on a validation set, then a temperature T
/// fitted on that set. Inference uses the running batch-normalisation statistics, so a sample's
/// output does not depend on what else is in the batch.
public struct MLP: Sendable, Equatable, Codable {
  public enum Activation: String, Sendable, Codable { case relu, gelu, tanh }

  /// One hidden layer's parameters.
  public struct Hidden: Sendable, Equatable, Codable {
    /// `inputs × units`, row-major, and `units` biases.
    public var weights: [Double]
    public var biases: [Double]
    /// Batch normalisation: scale, shift, running mean and (unbiased) variance.
    public var gamma: [Double]
    public var beta: [Double]
    public var runningMean: [Double]
    public var runningVariance: [Double]
  }

  public var inputCount: Int
  public var classCount: Int
  public var units: [Int]
  public var activation: Activation
  public var dropout: Double
  public var hidden: [Hidden]
  /// `lastUnits × classCount` and `classCount`.
  public var outputWeights: [Double]
  public var outputBiases: [Double]
  /// Learned on the validation set after training (1 without one).
  public var temperature: Double

  /// Batch normalisation's epsilon (as PyTorch's default).
  public static let epsilon = 1e-5
  static let momentum = 0.1

  /// A freshly initialised network (He-uniform weights for ReLU/GELU, Glorot for tanh).
  public init(
    inputCount: Int,
    classCount: Int,
    units: [Int],
    activation: Activation,
    dropout: Double,
    seed: UInt64
  ) {
    self.inputCount = inputCount
    self.classCount = classCount
    self.units = units
    self.activation = activation
    self.dropout = dropout
    self.temperature = 1
    var random = SeededRandom(seed: seed)
    var fanIn = inputCount
    self.hidden = units.map { width in
      let bound =
        activation == .tanh
        ? (6.0 / Double(fanIn + width)).squareRoot() : (6.0 / Double(fanIn)).squareRoot()
      let layer = Hidden(
        weights: (0 ..< (fanIn * width)).map { _ in (random.uniform() * 2 - 1) * bound },
        biases: .init(repeating: 0, count: width),
        gamma: .init(repeating: 1, count: width),
        beta: .init(repeating: 0, count: width),
        runningMean: .init(repeating: 0, count: width),
        runningVariance: .init(repeating: 1, count: width)
      )
      fanIn = width
      return layer
    }
    let bound = (6.0 / Double(fanIn + classCount)).squareRoot()
    self.outputWeights = (0 ..< (fanIn * classCount)).map { _ in (random.uniform() * 2 - 1) * bound
    }
    self.outputBiases = .init(repeating: 0, count: classCount)
  }

  // MARK: Forward

  /// The activation in double (one definition for inference and both training devices).
  static func activate(_ x: Double, _ activation: Activation) -> Double {
    TrainingActivation(activation)(x)
  }

  /// Logits (before the temperature) for `count` rows, with running statistics (inference).
  ///
  /// With running statistics a layer's bias, batch normalisation and scale are one affine map
  /// per unit, z·s + t with s = γ / √(σ² + ε) and t = β + (b − μ)·s: folded once per call, so a
  /// batch's elements take a multiply-add each instead of a square root and a division.
  public func logits(_ features: [Double], count: Int) -> [Double] {
    precondition(features.count == count * self.inputCount)
    var x = features
    var width = self.inputCount
    for layer in self.hidden {
      let units = layer.biases.count
      var scale = [Double](repeating: 0, count: units)
      var shift = [Double](repeating: 0, count: units)
      for j in 0 ..< units {
        let s = layer.gamma[j] / (layer.runningVariance[j] + Self.epsilon).squareRoot()
        scale[j] = s
        shift[j] = layer.beta[j] + (layer.biases[j] - layer.runningMean[j]) * s
      }
      var z = BLAS.matmul(x, layer.weights, m: count, k: width, n: units)
      let activation = self.activation
      z.withUnsafeMutableBufferPointer { z in
        scale.withUnsafeBufferPointer { s in
          shift.withUnsafeBufferPointer { t in
            for i in 0 ..< count {
              let row = z.baseAddress! + i * units
              switch activation {
              case .relu:
                // A loop the compiler vectorises: the common case.
                for j in 0 ..< units { row[j] = max(row[j] * s[j] + t[j], 0) }
              case .gelu, .tanh:
                for j in 0 ..< units { row[j] = Self.activate(row[j] * s[j] + t[j], activation) }
              }
            }
          }
        }
      }
      x = z
      width = units
    }
    var out = BLAS.matmul(x, self.outputWeights, m: count, k: width, n: self.classCount)
    for i in 0 ..< count {
      for k in 0 ..< self.classCount { out[i * self.classCount + k] += self.outputBiases[k] }
    }
    return out
  }

  /// Calibrated class probabilities, `count × classCount`: softmax(logits / T).
  public func probabilities(_ features: [Double], count: Int) -> [Double] {
    Logistic.softmax(
      self.logits(features, count: count).map { $0 / self.temperature },
      columns: self.classCount
    )
  }
}

/// The focal loss with label smoothing and class weights, on softmax probabilities:
/// L = Σᵢ wᵢ Σₖ αₖ · ỹᵢₖ · (1 − pᵢₖ)^γ · (−log pᵢₖ) / Σᵢ wᵢ, where ỹ = (1 − ε)·onehot + ε/K,
/// wᵢ the weight of sample i's class, αₖ = α for the positive class and 1 − α for the other
/// (binary) or α for every class (K > 2).
public struct FocalLoss: Sendable, Equatable, Codable {
  public var gamma: Double
  public var alpha: Double
  public var labelSmoothing: Double

  public init(gamma: Double = 2, alpha: Double = 0.25, labelSmoothing: Double = 0.1) {
    self.gamma = gamma
    self.alpha = alpha
    self.labelSmoothing = labelSmoothing
  }

  func alpha(_ k: Int, classCount: Int) -> Double {
    classCount == 2 ? (k == 1 ? self.alpha : 1 - self.alpha) : self.alpha
  }

  /// The loss over `count` rows of logits, and its gradient with respect to them.
  func valueAndGradient(
    logits z: [Double],
    labels: [Int],
    weights: [Double],
    classCount k: Int
  ) -> (Double, [Double]) {
    let count = labels.count
    let p = Logistic.softmax(z, columns: k)
    let totalWeight = max(weights.reduce(0, +), .leastNormalMagnitude)
    var loss = 0.0
    var gradient = [Double](repeating: 0, count: z.count)
    var dp = [Double](repeating: 0, count: k)
    for i in 0 ..< count {
      let scale = weights[i] / totalWeight
      for c in 0 ..< k {
        let target =
          (c == labels[i] ? 1 - self.labelSmoothing : 0) + self.labelSmoothing / Double(k)
        let pc = max(p[i * k + c], 1e-300)
        let factor = scale * target * self.alpha(c, classCount: k)
        let focal = Foundation.pow(1 - pc, self.gamma)
        loss -= factor * focal * Foundation.log(pc)
        // d/dp [−(1 − p)^γ log p] = γ(1 − p)^(γ−1) log p − (1 − p)^γ / p
        dp[c] =
          factor
          * (self.gamma * Foundation.pow(1 - pc, self.gamma - 1) * Foundation.log(pc) - focal / pc)
      }
      // Through the softmax: ∂L/∂zⱼ = pⱼ (∂L/∂pⱼ − Σₖ pₖ ∂L/∂pₖ).
      var inner = 0.0
      for c in 0 ..< k { inner += p[i * k + c] * dp[c] }
      for j in 0 ..< k { gradient[i * k + j] = p[i * k + j] * (dp[j] - inner) }
    }
    return (loss, gradient)
  }
}
