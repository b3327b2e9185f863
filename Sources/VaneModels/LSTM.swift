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

  /// Runs the layers over `count` sequences (`count × L × inputCount`, row-major by sample,
  /// then step) for inference (no dropout); returns the top layer's last hidden state.
  ///
  /// The sequences are already a `(count·L) × inputCount` matrix, so each layer's input
  /// projection is one GEMM over every step; only the recurrent product runs per step, into
  /// the same buffer, and the gates are activated a row at a time (``Logistic``'s lanes).
  func forward(_ sequences: [Double], count: Int) -> [Double] {
    let L = self.sequenceLength, d = self.inputCount, H = self.hiddenSize, G = 4 * H
    precondition(sequences.count == count * L * d)
    // Rows are (sample, step): row i·L + t.
    var input = sequences
    var width = d
    var gates = [Double](repeating: 0, count: count * L * G)
    var hiddens = [Double](repeating: 0, count: count * L * H)
    var c = [Double](repeating: 0, count: count * H)
    for layer in self.layers {
      input.withUnsafeBufferPointer { x in
        layer.inputWeights.withUnsafeBufferPointer { w in
          gates.withUnsafeMutableBufferPointer { a in
            Double.gemm(
              transposeA: false,
              transposeB: false,
              m: count * L,
              n: G,
              k: width,
              alpha: 1,
              a: x.baseAddress!,
              lda: width,
              b: w.baseAddress!,
              ldb: G,
              beta: 0,
              c: a.baseAddress!,
              ldc: G
            )
          }
        }
      }
      for k in 0 ..< c.count { c[k] = 0 }
      gates.withUnsafeMutableBufferPointer { aBuffer in
        hiddens.withUnsafeMutableBufferPointer { hBuffer in
          c.withUnsafeMutableBufferPointer { cBuffer in
            layer.recurrentWeights.withUnsafeBufferPointer { u in
              layer.biases.withUnsafeBufferPointer { bias in
                let a = aBuffer.baseAddress!, h = hBuffer.baseAddress!, cell = cBuffer.baseAddress!
                for t in 0 ..< L {
                  if t > 0 && count == 1 {
                    // One window (a served request): a row times U, without GEMM packing.
                    Double.gemv(
                      transpose: true,
                      m: H,
                      n: G,
                      alpha: 1,
                      a: u.baseAddress!,
                      lda: G,
                      x: h + (t - 1) * H,
                      beta: 1,
                      y: a + t * G
                    )
                  } else if t > 0 {
                    // Row i·L + t of the gates gets h(i, t − 1)·U: strided rows, L apart.
                    Double.gemm(
                      transposeA: false,
                      transposeB: false,
                      m: count,
                      n: G,
                      k: H,
                      alpha: 1,
                      a: h + (t - 1) * H,
                      lda: L * H,
                      b: u.baseAddress!,
                      ldb: G,
                      beta: 1,
                      c: a + t * G,
                      ldc: L * G
                    )
                  }
                  for i in 0 ..< count {
                    let hi = h + (i * L + t) * H
                    Double.cellStep(
                      gates: a + (i * L + t) * G,
                      bias: bias.baseAddress!,
                      hidden: H,
                      previousCell: cell + i * H,
                      cell: cell + i * H,
                      cellTanh: hi,
                      output: hi
                    )
                  }
                }
              }
            }
          }
        }
      }
      input = hiddens
      width = H
    }
    var last = [Double](repeating: 0, count: count * H)
    for i in 0 ..< count {
      for j in 0 ..< H { last[i * H + j] = input[(i * L + L - 1) * H + j] }
    }
    return last
  }

  /// Head logits, `count × heads` (inference: no dropout).
  public func logits(_ sequences: [Double], count: Int) -> [Double] {
    let last = self.forward(sequences, count: count)
    var z = BLAS.matmul(last, self.headWeights, m: count, k: self.hiddenSize, n: self.heads)
    for i in 0 ..< count {
      for k in 0 ..< self.heads { z[i * self.heads + k] += self.headBiases[k] }
    }
    return z
  }

  /// P(up) per head, `count × heads`.
  public func probabilities(_ sequences: [Double], count: Int) -> [Double] {
    self.logits(sequences, count: count).map(Logistic.sigmoid)
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
    let engine = Engine<Double>(self, capacity: count)
    sequences.withUnsafeBufferPointer { engine.load($0, rows: Array(0 ..< count)[...]) }
    let ones = [Double](repeating: 1, count: count * self.hiddenSize)
    engine.setMasks(
      masks ?? self.layers.map { _ in (0 ..< self.sequenceLength).map { _ in ones } },
      headMask: headMask ?? ones,
      count: count
    )
    let loss = engine.lossAndGradient(count: count, labels: labels, bpttSteps: bpttSteps)
    return (loss, Array(UnsafeBufferPointer(start: engine.gradient, count: engine.parameterCount)))
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
