internal import Foundation
internal import VaneMath
internal import VaneCore

extension MLP {
  /// The training-time state of a network in one precision: parameters, their gradient,
  /// AdamW's moments and one mini-batch's activations, all in a single allocation made once.
  ///
  /// Why flat buffers: a mini-batch of 256 rows through 512-256-128 units is a few hundred
  /// microseconds of GEMM, so per-batch array allocation, copying parameters in and out of
  /// ``MLP``'s per-layer arrays and bounds-checked element loops cost as much as the GEMMs did.
  /// Here a batch allocates nothing, GEMMs write straight into the gradient, and the batch
  /// normalisation, activation and dropout loops run over contiguous rows. Parameters are laid
  /// out in ``MLP/parameters`` order.
  final class Engine<Scalar: BLASScalar> {
    struct Layer {
      let inputs: Int
      let units: Int
      /// Offsets into the parameters (and the gradient).
      let weights: Int, biases: Int, gamma: Int, beta: Int
      /// The batch's normalised pre-activations x̂, the layer's output after dropout and the
      /// dropout mask (0 or 1/(1 − p)), `capacity × units` each.
      let normal: UnsafeMutablePointer<Scalar>
      let output: UnsafeMutablePointer<Scalar>
      let mask: UnsafeMutablePointer<Scalar>
      /// The batch's mean, biased variance and 1/√(variance + ε), `units` each.
      let mean: UnsafeMutablePointer<Scalar>
      let variance: UnsafeMutablePointer<Scalar>
      let inverseStd: UnsafeMutablePointer<Scalar>
    }

    let inputCount: Int
    let classCount: Int
    let activation: Activation
    /// The most rows a batch may have.
    let capacity: Int
    let layers: [Layer]
    let outputWeights: Int
    let outputBiases: Int
    let parameterCount: Int
    let theta: UnsafeMutablePointer<Scalar>
    let gradient: UnsafeMutablePointer<Scalar>
    let firstMoment: UnsafeMutablePointer<Scalar>
    let secondMoment: UnsafeMutablePointer<Scalar>
    /// 1 where weight decay applies (weights), 0 elsewhere.
    let decay: UnsafeMutablePointer<Scalar>
    /// The batch's input rows, `capacity × inputCount`.
    let input: UnsafeMutablePointer<Scalar>
    let logits: UnsafeMutablePointer<Scalar>
    /// Two `capacity × widest layer` buffers the backward pass alternates between.
    let deltas: (UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>)
    /// Three per-unit scratch vectors (widest layer) for the backward pass.
    let columns:
      (UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>)
    private let storage: UnsafeMutablePointer<Scalar>
    /// Inference statistics, kept in Double as ``MLP`` stores them.
    var runningMean: [[Double]]
    var runningVariance: [[Double]]
    private(set) var steps = 0

    /// Takes `model`'s parameters and running statistics; batches of up to `capacity` rows.
    init(_ model: MLP, capacity: Int) {
      precondition(capacity > 1)
      self.inputCount = model.inputCount
      self.classCount = model.classCount
      self.activation = model.activation
      self.capacity = capacity
      self.runningMean = model.hidden.map(\.runningMean)
      self.runningVariance = model.hidden.map(\.runningVariance)
      let units = model.hidden.map(\.biases.count)
      var widths = [model.inputCount] + units
      let parameterCount =
        zip(widths, units).reduce(0) { $0 + $1.0 * $1.1 + 3 * $1.1 }
        + (units.last ?? model.inputCount) * model.classCount
        + model.classCount
      widths.removeLast()
      let widest = max(units.max() ?? 0, model.classCount)
      let total =
        5 * parameterCount + capacity * (model.inputCount + model.classCount + 2 * widest) + 3
        * widest
        + units.reduce(0) { $0 + 3 * capacity * $1 + 3 * $1 }
      self.storage = .allocate(capacity: total)
      self.storage.initialize(repeating: 0, count: total)
      var next = self.storage
      func take(_ n: Int) -> UnsafeMutablePointer<Scalar> {
        defer { next += n }
        return next
      }
      self.parameterCount = parameterCount
      self.theta = take(parameterCount)
      self.gradient = take(parameterCount)
      self.firstMoment = take(parameterCount)
      self.secondMoment = take(parameterCount)
      self.decay = take(parameterCount)
      self.input = take(capacity * model.inputCount)
      self.logits = take(capacity * model.classCount)
      self.deltas = (take(capacity * widest), take(capacity * widest))
      self.columns = (take(widest), take(widest), take(widest))
      var offset = 0
      var layers: [Layer] = []
      for (inputs, width) in zip(widths, units) {
        let weights = offset
        offset += inputs * width
        layers.append(
          Layer(
            inputs: inputs,
            units: width,
            weights: weights,
            biases: offset,
            gamma: offset + width,
            beta: offset + 2 * width,
            normal: take(capacity * width),
            output: take(capacity * width),
            mask: take(capacity * width),
            mean: take(width),
            variance: take(width),
            inverseStd: take(width)
          )
        )
        offset += 3 * width
      }
      self.layers = layers
      self.outputWeights = offset
      self.outputBiases = offset + (units.last ?? model.inputCount) * model.classCount
      precondition(self.outputBiases + model.classCount == parameterCount)
      for (j, value) in model.parameters.enumerated() { self.theta[j] = Scalar(value) }
      for layer in layers {
        (self.decay + layer.weights).update(repeating: 1, count: layer.inputs * layer.units)
      }
      (self.decay + self.outputWeights).update(
        repeating: 1,
        count: self.outputBiases - self.outputWeights
      )
      for layer in layers { layer.mask.update(repeating: 1, count: capacity * layer.units) }
    }

    deinit { self.storage.deallocate() }

    /// `model` with this state's parameters and running statistics.
    func model(_ model: MLP) -> MLP {
      var model = model
      model.setParameters((0 ..< self.parameterCount).map { Double(self.theta[$0]) })
      for l in model.hidden.indices {
        model.hidden[l].runningMean = self.runningMean[l]
        model.hidden[l].runningVariance = self.runningVariance[l]
      }
      return model
    }

    /// Copies the rows `rows` of the row-major `features` into the batch input.
    func load(_ features: UnsafeBufferPointer<Double>, rows: ArraySlice<Int>) {
      precondition(rows.count <= self.capacity)
      let width = self.inputCount
      var target = self.input
      for row in rows {
        let source = features.baseAddress! + row * width
        for c in 0 ..< width { target[c] = Scalar(source[c]) }
        target += width
      }
    }

    /// Draws each hidden layer's dropout mask for `count` rows: every unit kept with
    /// probability `keep` (and scaled by 1/keep), two draws per 64-bit random number.
    func drawMasks(count: Int, keep: Double, random: inout SeededRandom) {
      guard keep < 1 else { return }
      let threshold = UInt64(keep * 4_294_967_296), scale = Scalar(1 / keep)
      for layer in self.layers {
        let mask = layer.mask, n = count * layer.units
        var k = 0
        while k < n {
          let r = random.next()
          mask[k] = r & 0xFFFF_FFFF < threshold ? scale : 0
          if k + 1 < n { mask[k + 1] = r >> 32 < threshold ? scale : 0 }
          k += 2
        }
      }
    }

    /// Sets the dropout masks (per hidden layer, `count × units`).
    func setMasks(_ masks: [[Double]], count: Int) {
      for (layer, mask) in zip(self.layers, masks) {
        precondition(mask.count == count * layer.units)
        for k in mask.indices { layer.mask[k] = Scalar(mask[k]) }
      }
    }

    /// The training-mode forward pass over the first `count` input rows (batch statistics,
    /// dropout), then the loss and its gradient over the parameters into ``gradient``.
    func lossAndGradient(count: Int, labels: [Int], weights: [Double], loss: FocalLoss) -> Double {
      precondition(
        count > 1 && count <= self.capacity && labels.count == count && weights.count == count
      )
      let theta = self.theta, gradient = self.gradient
      let b = Scalar(count), epsilon = Scalar(MLP.epsilon)
      var x = UnsafePointer(self.input)
      for layer in self.layers {
        let units = layer.units, z = layer.normal, mean = layer.mean, variance = layer.variance,
          inverseStd = layer.inverseStd
        Scalar.gemm(
          transposeA: false,
          transposeB: false,
          m: count,
          n: units,
          k: layer.inputs,
          alpha: 1,
          a: x,
          lda: layer.inputs,
          b: theta + layer.weights,
          ldb: units,
          beta: 0,
          c: z,
          ldc: units
        )
        let bias = theta + layer.biases, gamma = theta + layer.gamma, beta = theta + layer.beta
        mean.update(repeating: 0, count: units)
        variance.update(repeating: 0, count: units)
        // Each loop touches few buffers so that the compiler's overlap checks stay few enough
        // for it to vectorise (see AdamW.step).
        for i in 0 ..< count {
          let row = z + i * units
          for j in 0 ..< units {
            row[j] += bias[j]
            mean[j] += row[j]
          }
        }
        for j in 0 ..< units { mean[j] /= b }
        for i in 0 ..< count {
          let row = z + i * units
          for j in 0 ..< units {
            let d = row[j] - mean[j]
            variance[j] += d * d
          }
        }
        for j in 0 ..< units {
          variance[j] /= b
          inverseStd[j] = 1 / (variance[j] + epsilon).squareRoot()
        }
        for i in 0 ..< count {
          let row = z + i * units, out = layer.output + i * units, mask = layer.mask + i * units
          for j in 0 ..< units { row[j] = (row[j] - mean[j]) * inverseStd[j] }
          switch self.activation {
          case .relu:
            for j in 0 ..< units {
              let y = gamma[j] * row[j] + beta[j]
              out[j] = y * (y > 0 ? 1 : 0) * mask[j]
            }
          case .gelu, .tanh:
            for j in 0 ..< units {
              out[j] =
                Scalar(MLP.activate(Double(gamma[j] * row[j] + beta[j]), self.activation)) * mask[j]
            }
          }
        }
        x = UnsafePointer(layer.output)
      }
      let k = self.classCount, last = self.layers.last?.units ?? self.inputCount
      Scalar.gemm(
        transposeA: false,
        transposeB: false,
        m: count,
        n: k,
        k: last,
        alpha: 1,
        a: x,
        lda: last,
        b: theta + self.outputWeights,
        ldb: k,
        beta: 0,
        c: self.logits,
        ldc: k
      )
      var z = [Double](repeating: 0, count: count * k)
      for i in 0 ..< count {
        for c in 0 ..< k {
          z[i * k + c] = Double(self.logits[i * k + c] + theta[self.outputBiases + c])
        }
      }
      let (value, dLogits) = loss.valueAndGradient(
        logits: z,
        labels: labels,
        weights: weights,
        classCount: k
      )

      // Backward, from the output layer down.
      let dz = self.logits
      for index in dLogits.indices { dz[index] = Scalar(dLogits[index]) }
      Scalar.gemm(
        transposeA: true,
        transposeB: false,
        m: last,
        n: k,
        k: count,
        alpha: 1,
        a: x,
        lda: last,
        b: dz,
        ldb: k,
        beta: 0,
        c: gradient + self.outputWeights,
        ldc: k
      )
      let dOutputBias = gradient + self.outputBiases
      dOutputBias.update(repeating: 0, count: k)
      for i in 0 ..< count { for c in 0 ..< k { dOutputBias[c] += dz[i * k + c] } }
      var (delta, spare) = self.deltas
      Scalar.gemm(
        transposeA: false,
        transposeB: true,
        m: count,
        n: last,
        k: k,
        alpha: 1,
        a: dz,
        lda: k,
        b: theta + self.outputWeights,
        ldb: k,
        beta: 0,
        c: delta,
        ldc: last
      )
      for l in self.layers.indices.reversed() {
        let layer = self.layers[l], units = layer.units
        let gamma = theta + layer.gamma, beta = theta + layer.beta, inverseStd = layer.inverseStd
        let dBias = gradient + layer.biases, dGamma = gradient + layer.gamma,
          dBeta = gradient + layer.beta
        dGamma.update(repeating: 0, count: units)
        dBeta.update(repeating: 0, count: units)
        dBias.update(repeating: 0, count: units)
        // Through dropout and the activation: da = δ · mask · act′(γ x̂ + β), kept in δ.
        for i in 0 ..< count {
          let d = delta + i * units, normal = layer.normal + i * units,
            mask = layer.mask + i * units
          switch self.activation {
          case .relu:
            // A product with a chosen constant, not a chosen store: that vectorises.
            for j in 0 ..< units { d[j] *= mask[j] * (gamma[j] * normal[j] + beta[j] > 0 ? 1 : 0) }
          case .gelu, .tanh:
            for j in 0 ..< units {
              d[j] *=
                mask[j]
                * Scalar(MLP.derivative(Double(gamma[j] * normal[j] + beta[j]), self.activation))
            }
          }
          for j in 0 ..< units {
            dGamma[j] += d[j] * normal[j]
            dBeta[j] += d[j]
          }
        }
        // Through the batch normalisation, with Σᵢ ∂L/∂x̂ = γ·∂L/∂β and Σᵢ ∂L/∂x̂·x̂ = γ·∂L/∂γ:
        // ∂L/∂z = γ/σ · (da − ∂L/∂β / b − x̂ · ∂L/∂γ / b), its per-unit factors computed once.
        let scale = self.columns.0, shift = self.columns.1, slope = self.columns.2
        for j in 0 ..< units {
          scale[j] = gamma[j] * inverseStd[j]
          shift[j] = dBeta[j] / b
          slope[j] = dGamma[j] / b
        }
        for i in 0 ..< count {
          let d = delta + i * units, normal = layer.normal + i * units
          for j in 0 ..< units { d[j] = scale[j] * (d[j] - shift[j] - normal[j] * slope[j]) }
          for j in 0 ..< units { dBias[j] += d[j] }
        }
        let input = l == 0 ? UnsafePointer(self.input) : UnsafePointer(self.layers[l - 1].output)
        Scalar.gemm(
          transposeA: true,
          transposeB: false,
          m: layer.inputs,
          n: units,
          k: count,
          alpha: 1,
          a: input,
          lda: layer.inputs,
          b: delta,
          ldb: units,
          beta: 0,
          c: gradient + layer.weights,
          ldc: units
        )
        // The input's gradient is needed below the first layer only.
        guard l > 0 else { break }
        Scalar.gemm(
          transposeA: false,
          transposeB: true,
          m: count,
          n: layer.inputs,
          k: units,
          alpha: 1,
          a: delta,
          lda: units,
          b: theta + layer.weights,
          ldb: units,
          beta: 0,
          c: spare,
          ldc: layer.inputs
        )
        swap(&delta, &spare)
      }
      return value
    }

    /// Folds the last batch's statistics into the running ones (unbiased variance, as PyTorch).
    func updateRunningStatistics(count: Int) {
      let unbias = Double(count) / Double(count - 1)
      for (l, layer) in self.layers.enumerated() {
        for j in 0 ..< layer.units {
          self.runningMean[l][j] =
            (1 - MLP.momentum) * self.runningMean[l][j] + MLP.momentum * Double(layer.mean[j])
          self.runningVariance[l][j] =
            (1 - MLP.momentum) * self.runningVariance[l][j] + MLP.momentum
            * Double(layer.variance[j]) * unbias
        }
      }
    }

    /// Clips the gradient to `clipNorm` and takes one optimiser step.
    func step(_ optimizer: AdamW, clipNorm: Double) {
      AdamW.clip(self.gradient, count: self.parameterCount, maximumNorm: clipNorm)
      self.steps += 1
      optimizer.step(
        theta: self.theta,
        gradient: self.gradient,
        firstMoment: self.firstMoment,
        secondMoment: self.secondMoment,
        decay: self.decay,
        count: self.parameterCount,
        step: self.steps
      )
    }

  }
}

extension MLP.Engine {
  /// The epoch loop of ``MLP/train(features:count:featureCount:labels:classCount:classWeights:validation:units:activation:dropout:training:cancellation:epoch:)``
  /// from `model`'s initial parameters; returns the early-stopping choice (its temperature
  /// still 1).
  func train(
    _ model: MLP,
    features: [Double],
    count: Int,
    labels: [Int],
    classWeight: [Double],
    validation: (features: [Double], count: Int, labels: [Int])?,
    training: MLP.Training,
    cancellation: CancellationFlag?,
    epoch: (Int, Double, Double?) -> Bool
  ) throws -> MLP {
    var random = SeededRandom(seed: training.seed ^ 0x5EED)
    let optimizer = AdamW(learningRate: training.learningRate, weightDecay: training.weightDecay)
    var stopping = EarlyStopping(patience: training.patience, initial: model)
    var current = model
    let keep = 1 - model.dropout
    var order = Array(0 ..< count)
    for epochIndex in 0 ..< training.maxEpochs {
      order.shuffle(using: &random)
      var epochLoss = 0.0
      var start = 0
      while start < count {
        if cancellation?.isCancelled == true {
          throw VaneError(.cancelled, "MLP training cancelled in epoch \(epochIndex)")
        }
        var end = min(start + training.batchSize, count)
        // A last batch of one sample has no batch variance: fold it into the previous one.
        if count - end == 1 { end = count }
        let rows = order[start ..< end]
        start = end
        let b = rows.count
        features.withUnsafeBufferPointer { self.load($0, rows: rows) }
        let y = rows.map { labels[$0] }
        self.drawMasks(count: b, keep: keep, random: &random)
        let loss = self.lossAndGradient(
          count: b,
          labels: y,
          weights: y.map { classWeight[$0] },
          loss: training.loss
        )
        epochLoss += loss * Double(b)
        self.step(optimizer, clipNorm: training.clipNorm)
        self.updateRunningStatistics(count: b)
      }
      current = self.model(current)
      var validationLoss: Double?
      if let validation {
        let z = current.logits(validation.features, count: validation.count)
        validationLoss =
          training.loss.valueAndGradient(
            logits: z,
            labels: validation.labels,
            weights: validation.labels.map { classWeight[$0] },
            classCount: model.classCount
          ).0
      }
      guard epoch(epochIndex, epochLoss / Double(count), validationLoss) else {
        throw VaneError(.cancelled, "MLP training stopped after epoch \(epochIndex)")
      }
      if stopping.observe(current, validationLoss: validationLoss) { break }
    }
    return stopping.best
  }
}
