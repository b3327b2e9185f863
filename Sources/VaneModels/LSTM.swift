internal import Foundation
internal import VaneCore
internal import VaneMath

/// An LSTM on OpenBLAS over windows of the last L feature vectors: one or more stacked layers,
/// then one sigmoid head per horizon (P(up) at 5h, 12h, 24h, …) on the last hidden state.
/// Trained with AdamW on the heads' mean binary cross-entropy (labels −1 are missing and
/// skipped), truncated back-propagation through time and gradient-norm clipping.
public struct LSTM: Sendable, Equatable, Codable {
  /// One layer: input weights `inputs × 4H`, recurrent weights `H × 4H`, biases `4H`; gate
  /// order input, forget, cell, output.
  public struct Layer: Sendable, Equatable, Codable {
    public var inputWeights: [Double]
    public var recurrentWeights: [Double]
    public var biases: [Double]
  }

  public var inputCount: Int
  public var hiddenSize: Int
  public var sequenceLength: Int
  public var heads: Int
  public var dropout: Double
  public var layers: [Layer]
  /// `H × heads` and `heads`.
  public var headWeights: [Double]
  public var headBiases: [Double]
  /// The arithmetic the network was trained in, which it also answers in: a float32 model's
  /// outputs are what its float32 arithmetic gives (as PyTorch's and ONNX Runtime's are), and
  /// the trainer's own out-of-fold and final outputs come from the same arithmetic. Files
  /// written before it was recorded read as float64, the arithmetic they were served in.
  public var precision: NeuralTraining.Precision = .float64

  /// A freshly initialised network (uniform ±1/√H, forget-gate bias 1).
  public init(
    inputCount: Int,
    hiddenSize: Int,
    layerCount: Int,
    sequenceLength: Int,
    heads: Int,
    dropout: Double,
    seed: UInt64
  ) {
    self.inputCount = inputCount
    self.hiddenSize = hiddenSize
    self.sequenceLength = sequenceLength
    self.heads = heads
    self.dropout = dropout
    var random = SeededRandom(seed: seed)
    let bound = 1 / Double(hiddenSize).squareRoot()
    func uniform(_ n: Int) -> [Double] { (0 ..< n).map { _ in (random.uniform() * 2 - 1) * bound } }
    self.layers = (0 ..< layerCount).map { l in
      var biases = [Double](repeating: 0, count: 4 * hiddenSize)
      for j in hiddenSize ..< (2 * hiddenSize) { biases[j] = 1 }
      return Layer(
        inputWeights: uniform((l == 0 ? inputCount : hiddenSize) * 4 * hiddenSize),
        recurrentWeights: uniform(hiddenSize * 4 * hiddenSize),
        biases: biases
      )
    }
    self.headWeights = uniform(hiddenSize * heads)
    self.headBiases = [Double](repeating: 0, count: heads)
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.inputCount = try container.decode(Int.self, forKey: .inputCount)
    self.hiddenSize = try container.decode(Int.self, forKey: .hiddenSize)
    self.sequenceLength = try container.decode(Int.self, forKey: .sequenceLength)
    self.heads = try container.decode(Int.self, forKey: .heads)
    self.dropout = try container.decode(Double.self, forKey: .dropout)
    self.layers = try container.decode([Layer].self, forKey: .layers)
    self.headWeights = try container.decode([Double].self, forKey: .headWeights)
    self.headBiases = try container.decode([Double].self, forKey: .headBiases)
    self.precision =
      try container.decodeIfPresent(NeuralTraining.Precision.self, forKey: .precision)
      ?? .float64
  }

  /// Head logits, `count × heads` (inference: no dropout), in the model's ``precision``.
  public func logits(_ sequences: [Double], count: Int) -> [Double] {
    Inference(self).logits(sequences, count: count)
  }

  /// P(up) per head, `count × heads`, in the model's ``precision``.
  public func probabilities(_ sequences: [Double], count: Int) -> [Double] {
    Inference(self).probabilities(sequences, count: count)
  }

  /// Every parameter: per layer input weights, recurrent weights, biases; then the head.
  var parameters: [Double] {
    self.layers.flatMap { $0.inputWeights + $0.recurrentWeights + $0.biases } + self.headWeights
      + self.headBiases
  }

  mutating func setParameters(_ theta: [Double]) {
    var offset = 0
    func take(_ n: Int) -> [Double] {
      defer { offset += n }
      return Array(theta[offset ..< (offset + n)])
    }
    for l in self.layers.indices {
      self.layers[l].inputWeights = take(self.layers[l].inputWeights.count)
      self.layers[l].recurrentWeights = take(self.layers[l].recurrentWeights.count)
      self.layers[l].biases = take(self.layers[l].biases.count)
    }
    self.headWeights = take(self.headWeights.count)
    self.headBiases = take(self.headBiases.count)
  }

  var decayMask: [Bool] {
    self.layers.flatMap {
      [Bool](repeating: true, count: $0.inputWeights.count + $0.recurrentWeights.count)
        + [Bool](repeating: false, count: $0.biases.count)
    } + [Bool](repeating: true, count: self.headWeights.count)
      + [Bool](repeating: false, count: self.headBiases.count)
  }

  /// The mean binary cross-entropy over the available labels (`count × heads`, −1 missing) and
  /// its gradient over ``parameters``, back-propagating through the last `bpttSteps` steps;
  /// `masks[l][t]` (B × H) multiplies layer l's output at step t and `headMask` the head's
  /// input (dropout; nil: none). Computed in Double by the same ``Engine`` code that trains in
  /// either precision, so checking this against finite differences checks the training loop's.
  func lossAndGradient(
    _ sequences: [Double],
    count: Int,
    labels: [Int],
    masks: [[[Double]]]?,
    headMask: [Double]?,
    bpttSteps: Int
  ) -> (loss: Double, gradient: [Double]) {
    // The CPU device never throws.
    let engine = try! Engine(self, capacity: count, device: CPUTrainingDevice<Double>())
    try! sequences.withUnsafeBufferPointer { try engine.load($0, rows: Array(0 ..< count)[...]) }
    let ones = [Double](repeating: 1, count: count * self.hiddenSize)
    try! engine.setMasks(
      masks ?? self.layers.map { _ in (0 ..< self.sequenceLength).map { _ in ones } },
      headMask: headMask ?? ones,
      count: count
    )
    let loss = try! engine.lossAndGradient(count: count, labels: labels, bpttSteps: bpttSteps)
    return (loss, try! engine.gradientValues())
  }

  /// The heads' mean binary cross-entropy over the available labels (`count × heads`, −1
  /// missing), at inference (no dropout).
  func loss(_ sequences: [Double], count: Int, labels: [Int]) -> Double {
    let z = self.logits(sequences, count: count)
    var loss = 0.0, available = 0
    for index in z.indices where labels[index] >= 0 {
      loss += Logistic.softplus(z[index]) - Double(labels[index]) * z[index]
      available += 1
    }
    return loss / Double(max(available, 1))
  }
}
