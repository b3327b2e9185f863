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

  /// What one layer's forward pass keeps for the backward pass.
  struct LayerTrace {
    /// Per step (B × width): the input, the gate activations (B × 4H), the cell and hidden state.
    var inputs: [[Double]] = []
    var gates: [[Double]] = []
    var cells: [[Double]] = []
    var hiddens: [[Double]] = []
  }

  /// Runs the layers over `count` sequences (`count × L × inputCount`, row-major by sample,
  /// then step); `masks[l][t]` (B × H) multiplies layer l's output at step t (dropout; nil:
  /// none). Returns the traces and the head's input (the last step's top hidden state, masked
  /// by `headMask`).
  func forward(
    _ sequences: [Double],
    count: Int,
    masks: [[[Double]]]?,
    headMask: [Double]?
  ) -> (traces: [LayerTrace], last: [Double]) {
    let L = self.sequenceLength, d = self.inputCount, H = self.hiddenSize
    precondition(sequences.count == count * L * d)
    var stepInputs: [[Double]] = (0 ..< L).map { t in
      var x = [Double](repeating: 0, count: count * d)
      for i in 0 ..< count { for j in 0 ..< d { x[i * d + j] = sequences[(i * L + t) * d + j] } }
      return x
    }
    var width = d
    var traces: [LayerTrace] = []
    for (l, layer) in self.layers.enumerated() {
      var trace = LayerTrace()
      var h = [Double](repeating: 0, count: count * H), c = [Double](repeating: 0, count: count * H)
      var outputs: [[Double]] = []
      for t in 0 ..< L {
        let x = stepInputs[t]
        var a = BLAS.matmul(x, layer.inputWeights, m: count, k: width, n: 4 * H)
        let recurrent = BLAS.matmul(h, layer.recurrentWeights, m: count, k: H, n: 4 * H)
        for i in 0 ..< count {
          for j in 0 ..< (4 * H) {
            let index = i * 4 * H + j
            let value = a[index] + recurrent[index] + layer.biases[j]
            a[index] = j >= 2 * H && j < 3 * H ? Foundation.tanh(value) : Logistic.sigmoid(value)
          }
          for j in 0 ..< H {
            let gate = i * 4 * H
            c[i * H + j] = a[gate + H + j] * c[i * H + j] + a[gate + j] * a[gate + 2 * H + j]
            h[i * H + j] = a[gate + 3 * H + j] * Foundation.tanh(c[i * H + j])
          }
        }
        trace.inputs.append(x)
        trace.gates.append(a)
        trace.cells.append(c)
        trace.hiddens.append(h)
        var out = h
        if let mask = masks?[l][t] { for k in out.indices { out[k] *= mask[k] } }
        outputs.append(out)
      }
      traces.append(trace)
      stepInputs = outputs
      width = H
    }
    var last = stepInputs[L - 1]
    if let headMask { for k in last.indices { last[k] *= headMask[k] } }
    return (traces, last)
  }

  /// Head logits, `count × heads` (inference: no dropout).
  public func logits(_ sequences: [Double], count: Int) -> [Double] {
    let last = self.forward(sequences, count: count, masks: nil, headMask: nil).last
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
  /// its gradient over ``parameters``, back-propagating through the last `bpttSteps` steps.
  func lossAndGradient(
    _ sequences: [Double],
    count: Int,
    labels: [Int],
    masks: [[[Double]]]?,
    headMask: [Double]?,
    bpttSteps: Int
  ) -> (loss: Double, gradient: [Double]) {
    let L = self.sequenceLength, H = self.hiddenSize, K = self.heads
    let (traces, last) = self.forward(sequences, count: count, masks: masks, headMask: headMask)
    var z = BLAS.matmul(last, self.headWeights, m: count, k: H, n: K)
    for i in 0 ..< count { for k in 0 ..< K { z[i * K + k] += self.headBiases[k] } }
    let available = max(labels.filter { $0 >= 0 }.count, 1)
    var loss = 0.0
    var dz = [Double](repeating: 0, count: count * K)
    for index in 0 ..< (count * K) where labels[index] >= 0 {
      let y = Double(labels[index]), v = z[index]
      loss += Logistic.softplus(v) - y * v
      dz[index] = (Logistic.sigmoid(v) - y) / Double(available)
    }
    loss /= Double(available)
    let dHeadWeights = BLAS.matmulTransposedA(last, dz, m: count, k: H, n: K)
    var dHeadBiases = [Double](repeating: 0, count: K)
    for i in 0 ..< count { for k in 0 ..< K { dHeadBiases[k] += dz[i * K + k] } }
    var dLast = BLAS.matmulTransposedB(dz, self.headWeights, m: count, k: K, n: H)
    if let headMask { for k in dLast.indices { dLast[k] *= headMask[k] } }
    // Gradient arriving at each step's output of the current layer (top layer: last step only).
    var dOutputs = [[Double]](repeating: [Double](repeating: 0, count: count * H), count: L)
    dOutputs[L - 1] = dLast
    let first = max(0, L - bpttSteps)
    var layerGradients: [[Double]] = []
    for l in self.layers.indices.reversed() {
      let layer = self.layers[l], trace = traces[l]
      let width = l == 0 ? self.inputCount : H
      var dW = [Double](repeating: 0, count: layer.inputWeights.count),
        dU = [Double](repeating: 0, count: layer.recurrentWeights.count)
      var dB = [Double](repeating: 0, count: layer.biases.count)
      var dInputs = [[Double]](repeating: [Double](repeating: 0, count: count * width), count: L)
      var dhNext = [Double](repeating: 0, count: count * H),
        dcNext = [Double](repeating: 0, count: count * H)
      for t in stride(from: L - 1, through: first, by: -1) {
        var dh = dOutputs[t]
        if let mask = masks?[l][t] { for k in dh.indices { dh[k] *= mask[k] } }
        var dA = [Double](repeating: 0, count: count * 4 * H)
        let gates = trace.gates[t], c = trace.cells[t]
        let previousCell = t > 0 ? trace.cells[t - 1] : [Double](repeating: 0, count: count * H)
        for i in 0 ..< count {
          for j in 0 ..< H {
            let index = i * H + j, gate = i * 4 * H
            let (ig, fg, gg, og) = (
              gates[gate + j], gates[gate + H + j], gates[gate + 2 * H + j], gates[gate + 3 * H + j]
            )
            let tc = Foundation.tanh(c[index])
            let dhTotal = dh[index] + dhNext[index]
            let dc = dhTotal * og * (1 - tc * tc) + dcNext[index]
            dA[gate + j] = dc * gg * ig * (1 - ig)
            dA[gate + H + j] = dc * previousCell[index] * fg * (1 - fg)
            dA[gate + 2 * H + j] = dc * ig * (1 - gg * gg)
            dA[gate + 3 * H + j] = dhTotal * tc * og * (1 - og)
            dcNext[index] = dc * fg
          }
        }
        let previousHidden = t > 0 ? trace.hiddens[t - 1] : [Double](repeating: 0, count: count * H)
        let stepW = BLAS.matmulTransposedA(trace.inputs[t], dA, m: count, k: width, n: 4 * H)
        let stepU = BLAS.matmulTransposedA(previousHidden, dA, m: count, k: H, n: 4 * H)
        for k in dW.indices { dW[k] += stepW[k] }
        for k in dU.indices { dU[k] += stepU[k] }
        for i in 0 ..< count { for j in 0 ..< (4 * H) { dB[j] += dA[i * 4 * H + j] } }
        dInputs[t] = BLAS.matmulTransposedB(dA, layer.inputWeights, m: count, k: 4 * H, n: width)
        dhNext = BLAS.matmulTransposedB(dA, layer.recurrentWeights, m: count, k: 4 * H, n: H)
      }
      layerGradients.insert(dW + dU + dB, at: 0)
      dOutputs = dInputs
    }
    return (loss, layerGradients.flatMap { $0 } + dHeadWeights + dHeadBiases)
  }
}
