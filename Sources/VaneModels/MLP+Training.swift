internal import Foundation
public import VaneCore
internal import VaneMath

extension MLP {
  /// The training loop's settings.
  public typealias Training = NeuralTraining

  // MARK: Parameters as one vector (the optimiser's view)

  /// Every parameter, in order: per hidden layer weights, biases, gamma, beta; then the output
  /// weights and biases.
  var parameters: [Double] {
    self.hidden.flatMap { $0.weights + $0.biases + $0.gamma + $0.beta } + self.outputWeights + self.outputBiases
  }

  mutating func setParameters(_ theta: [Double]) {
    var offset = 0
    func take(_ n: Int) -> [Double] {
      defer { offset += n }
      return Array(theta[offset..<(offset + n)])
    }
    for l in self.hidden.indices {
      self.hidden[l].weights = take(self.hidden[l].weights.count)
      self.hidden[l].biases = take(self.hidden[l].biases.count)
      self.hidden[l].gamma = take(self.hidden[l].gamma.count)
      self.hidden[l].beta = take(self.hidden[l].beta.count)
    }
    self.outputWeights = take(self.outputWeights.count)
    self.outputBiases = take(self.outputBiases.count)
  }

  /// Which parameters weight decay applies to (weights, not biases or normalisation).
  var decayMask: [Bool] {
    self.hidden.flatMap {
      [Bool](repeating: true, count: $0.weights.count) + [Bool](repeating: false, count: $0.biases.count + $0.gamma.count + $0.beta.count)
    } + [Bool](repeating: true, count: self.outputWeights.count) + [Bool](repeating: false, count: self.outputBiases.count)
  }

  /// Batch statistics of one training forward pass, per hidden layer.
  struct BatchStatistics {
    var mean: [[Double]]
    var variance: [[Double]]
  }

  /// The training-mode loss of one batch and its gradient over ``parameters``: batch
  /// statistics in the normalisation, `masks` (per hidden layer, `count × units`, each entry 0
  /// or 1/(1 − dropout)) as the dropout.
  func lossAndGradient(
    _ features: [Double], count: Int, labels: [Int], weights: [Double], masks: [[Double]], loss: FocalLoss
  ) -> (loss: Double, gradient: [Double], statistics: BatchStatistics) {
    struct Cache { var input: [Double]; var normal: [Double]; var preActivation: [Double]; var inverseStd: [Double] }
    var caches: [Cache] = []
    var statistics = BatchStatistics(mean: [], variance: [])
    var x = features
    var width = self.inputCount
    let b = Double(count)
    for (l, layer) in self.hidden.enumerated() {
      let units = layer.biases.count
      var z = BLAS.matmul(x, layer.weights, m: count, k: width, n: units)
      var mean = [Double](repeating: 0, count: units), variance = [Double](repeating: 0, count: units)
      for i in 0..<count { for j in 0..<units { z[i * units + j] += layer.biases[j]; mean[j] += z[i * units + j] } }
      for j in 0..<units { mean[j] /= b }
      for i in 0..<count { for j in 0..<units { let d = z[i * units + j] - mean[j]; variance[j] += d * d } }
      for j in 0..<units { variance[j] /= b }
      let inverseStd = variance.map { 1 / ($0 + Self.epsilon).squareRoot() }
      var normal = z, pre = z, out = z
      for i in 0..<count {
        for j in 0..<units {
          let index = i * units + j
          normal[index] = (z[index] - mean[j]) * inverseStd[j]
          pre[index] = layer.gamma[j] * normal[index] + layer.beta[j]
          out[index] = Self.activate(pre[index], self.activation) * masks[l][index]
        }
      }
      caches.append(Cache(input: x, normal: normal, preActivation: pre, inverseStd: inverseStd))
      statistics.mean.append(mean)
      statistics.variance.append(variance)
      x = out
      width = units
    }
    var logits = BLAS.matmul(x, self.outputWeights, m: count, k: width, n: self.classCount)
    for i in 0..<count { for k in 0..<self.classCount { logits[i * self.classCount + k] += self.outputBiases[k] } }
    let (value, dLogits) = loss.valueAndGradient(logits: logits, labels: labels, weights: weights, classCount: self.classCount)

    // Backward, collecting gradients from the output layer down.
    let gradientOutputWeights = BLAS.matmulTransposedA(x, dLogits, m: count, k: width, n: self.classCount)
    var gradientOutputBiases = [Double](repeating: 0, count: self.classCount)
    for i in 0..<count { for k in 0..<self.classCount { gradientOutputBiases[k] += dLogits[i * self.classCount + k] } }
    var dx = BLAS.matmulTransposedB(dLogits, self.outputWeights, m: count, k: self.classCount, n: width)
    var layerGradients: [[Double]] = []
    for l in self.hidden.indices.reversed() {
      let layer = self.hidden[l], cache = caches[l]
      let units = layer.biases.count
      let inputWidth = l == 0 ? self.inputCount : self.hidden[l - 1].biases.count
      var dGamma = [Double](repeating: 0, count: units), dBeta = [Double](repeating: 0, count: units)
      var dNormal = [Double](repeating: 0, count: count * units)
      for i in 0..<count {
        for j in 0..<units {
          let index = i * units + j
          let da = dx[index] * masks[l][index] * Self.derivative(cache.preActivation[index], self.activation)
          dGamma[j] += da * cache.normal[index]
          dBeta[j] += da
          dNormal[index] = da * layer.gamma[j]
        }
      }
      var sumDNormal = [Double](repeating: 0, count: units), sumDNormalTimesNormal = [Double](repeating: 0, count: units)
      for i in 0..<count {
        for j in 0..<units {
          sumDNormal[j] += dNormal[i * units + j]
          sumDNormalTimesNormal[j] += dNormal[i * units + j] * cache.normal[i * units + j]
        }
      }
      var dz = [Double](repeating: 0, count: count * units)
      var dBias = [Double](repeating: 0, count: units)
      for i in 0..<count {
        for j in 0..<units {
          let index = i * units + j
          dz[index] = cache.inverseStd[j] / b * (b * dNormal[index] - sumDNormal[j] - cache.normal[index] * sumDNormalTimesNormal[j])
          dBias[j] += dz[index]
        }
      }
      let dWeights = BLAS.matmulTransposedA(cache.input, dz, m: count, k: inputWidth, n: units)
      dx = BLAS.matmulTransposedB(dz, layer.weights, m: count, k: units, n: inputWidth)
      layerGradients.insert(dWeights + dBias + dGamma + dBeta, at: 0)
    }
    // No decay term here: AdamW applies weight decay outside the gradient.
    return (value, layerGradients.flatMap { $0 } + gradientOutputWeights + gradientOutputBiases, statistics)
  }

  /// Trains a network.
  /// - Parameters:
  ///   - classWeights: per class (nil: 1 each), applied to each sample by its label.
  ///   - validation: rows for early stopping and the temperature (nil: neither).
  ///   - cancellation: polled before every mini-batch: training stops within one batch.
  ///   - epoch: called after each epoch with the epoch, training loss and validation loss;
  ///     return false to stop (cancellation).
  /// - Throws: INVALID_ARGUMENT for shapes, labels or non-finite inputs; CANCELLED when `epoch`
  ///   stopped it.
  public static func train(
    features: [Double], count: Int, featureCount: Int, labels: [Int], classCount: Int, classWeights: [Double]? = nil,
    validation: (features: [Double], count: Int, labels: [Int])? = nil, units: [Int], activation: Activation = .relu,
    dropout: Double = 0.3, training: Training = Training(), cancellation: CancellationFlag? = nil,
    epoch: (Int, Double, Double?) -> Bool = { _, _, _ in true }
  ) throws -> MLP {
    guard count > 1, featureCount > 0, features.count == count * featureCount, labels.count == count else {
      throw VaneError.invalidArgument(field: "features", "\(features.count) values and \(labels.count) labels for \(count) rows × \(featureCount) columns")
    }
    if let bad = labels.firstIndex(where: { !(0..<classCount).contains($0) }) {
      throw VaneError.invalidArgument(field: "labels[\(bad)]", "\(labels[bad]) is not in 0..<\(classCount)")
    }
    if let bad = features.firstIndex(where: { !$0.isFinite }) {
      throw VaneError.invalidArgument(field: "features[\(bad / featureCount)][\(bad % featureCount)]", "is not finite (impute or drop missing values first)")
    }
    guard !units.isEmpty, units.allSatisfy({ $0 > 0 }) else { throw VaneError.invalidArgument(field: "hidden_units", "need at least one positive width") }
    guard (0..<1).contains(dropout) else { throw VaneError.invalidArgument(field: "dropout", "must be in [0, 1)") }
    guard training.batchSize > 1 else { throw VaneError.invalidArgument(field: "batch_size", "must be at least 2 (batch normalisation)") }
    let classWeight = classWeights ?? [Double](repeating: 1, count: classCount)
    var model = MLP(inputCount: featureCount, classCount: classCount, units: units, activation: activation, dropout: dropout, seed: training.seed)
    var random = SeededRandom(seed: training.seed ^ 0x5EED)
    var theta = model.parameters
    var optimizer = AdamW(parameterCount: theta.count, learningRate: training.learningRate, weightDecay: training.weightDecay, decay: model.decayMask)
    var stopping = EarlyStopping(patience: training.patience, initial: model)
    let keep = 1 - dropout
    for epochIndex in 0..<training.maxEpochs {
      var order = Array(0..<count)
      order.shuffle(using: &random)
      var epochLoss = 0.0
      var start = 0
      while start < count {
        if cancellation?.isCancelled == true { throw VaneError(.cancelled, "MLP training cancelled in epoch \(epochIndex)") }
        var end = min(start + training.batchSize, count)
        // A last batch of one sample has no batch variance: fold it into the previous one.
        if count - end == 1 { end = count }
        let rows = Array(order[start..<end])
        start = end
        let b = rows.count
        guard b > 1 else { continue }
        let x = rows.flatMap { features[($0 * featureCount)..<(($0 + 1) * featureCount)] }
        let y = rows.map { labels[$0] }
        let w = y.map { classWeight[$0] }
        let masks = units.map { width in (0..<(b * width)).map { _ in dropout == 0 || random.uniform() < keep ? 1 / keep : 0 } }
        model.setParameters(theta)
        var (loss, gradient, statistics) = model.lossAndGradient(x, count: b, labels: y, weights: w, masks: masks, loss: training.loss)
        epochLoss += loss * Double(b)
        AdamW.clip(&gradient, maximumNorm: training.clipNorm)
        optimizer.update(&theta, gradient: gradient)
        // Running statistics for inference (unbiased variance, as PyTorch).
        for l in model.hidden.indices {
          for j in model.hidden[l].runningMean.indices {
            model.hidden[l].runningMean[j] = (1 - Self.momentum) * model.hidden[l].runningMean[j] + Self.momentum * statistics.mean[l][j]
            model.hidden[l].runningVariance[j] = (1 - Self.momentum) * model.hidden[l].runningVariance[j]
              + Self.momentum * statistics.variance[l][j] * Double(b) / Double(b - 1)
          }
        }
      }
      model.setParameters(theta)
      var validationLoss: Double?
      if let validation {
        let z = model.logits(validation.features, count: validation.count)
        validationLoss = training.loss.valueAndGradient(
          logits: z, labels: validation.labels, weights: validation.labels.map { classWeight[$0] }, classCount: classCount).0
      }
      guard epoch(epochIndex, epochLoss / Double(count), validationLoss) else {
        throw VaneError(.cancelled, "MLP training stopped after epoch \(epochIndex)")
      }
      if stopping.observe(model, validationLoss: validationLoss) { break }
    }
    var trained = stopping.best
    if let validation, validation.count > 0 {
      trained.temperature = Self.fitTemperature(logits: trained.logits(validation.features, count: validation.count), labels: validation.labels, classCount: classCount)
    }
    return trained
  }

  /// The temperature T minimising the log loss of softmax(z / T) (golden-section search on
  /// log T in [−3, 3]).
  static func fitTemperature(logits: [Double], labels: [Int], classCount k: Int) -> Double {
    func nll(_ logT: Double) -> Double {
      let t = Foundation.exp(logT)
      let p = Logistic.softmax(logits.map { $0 / t }, columns: k)
      var total = 0.0
      for (i, label) in labels.enumerated() { total -= Foundation.log(max(p[i * k + label], 1e-300)) }
      return total / Double(max(labels.count, 1))
    }
    var (a, b) = (-3.0, 3.0)
    let ratio = (5.0.squareRoot() - 1) / 2
    var c = b - ratio * (b - a), d = a + ratio * (b - a)
    var fc = nll(c), fd = nll(d)
    while b - a > 1e-6 {
      if fc < fd {
        b = d; d = c; fd = fc
        c = b - ratio * (b - a); fc = nll(c)
      } else {
        a = c; c = d; fc = fd
        d = a + ratio * (b - a); fd = nll(d)
      }
    }
    return Foundation.exp((a + b) / 2)
  }
}
