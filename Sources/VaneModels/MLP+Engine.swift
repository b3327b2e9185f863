internal import Foundation
internal import VaneMath
internal import VaneCore

extension MLP {
  /// The training-time state of a network on one ``TrainingDevice`` (the CPU in either
  /// precision, or a GPU): parameters, their gradient, AdamW's moments and one mini-batch's
  /// activations, all in a single allocation of the device's made once.
  ///
  /// Why flat buffers: a mini-batch of 256 rows through 512-256-128 units is a few hundred
  /// microseconds of GEMM, so per-batch array allocation, copying parameters in and out of
  /// ``MLP``'s per-layer arrays and bounds-checked element loops cost as much as the GEMMs did.
  /// Here a batch allocates nothing, GEMMs write straight into the gradient, and the batch
  /// normalisation, activation and dropout run over contiguous rows. Parameters are laid out
  /// in ``MLP/parameters`` order. What the host reads or writes (the batch's rows and masks,
  /// the logits for the loss, the batch statistics, the parameters at the end of an epoch)
  /// goes through the device's upload and download, so the same code drives a GPU.
  final class Engine<Device: TrainingDevice> {
    typealias Scalar = Device.Scalar

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

    let device: Device
    let inputCount: Int
    let classCount: Int
    let activation: TrainingActivation
    /// The most rows a batch may have.
    let capacity: Int
    let layers: [Layer]
    let outputWeights: Int
    let outputBiases: Int
    let parameterCount: Int
    /// In the device's memory, as everything below but the host buffers.
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
    private let storage: UnsafeMutablePointer<Scalar>
    /// Host memory: a batch's rows (or a mask) on their way in, the logits on their way out.
    private let hostRows: UnsafeMutablePointer<Scalar>
    private let hostLogits: UnsafeMutablePointer<Scalar>
    private let hostStatistics: UnsafeMutablePointer<Scalar>
    /// Inference statistics, kept in Double as ``MLP`` stores them.
    var runningMean: [[Double]]
    var runningVariance: [[Double]]
    private(set) var steps = 0

    /// Takes `model`'s parameters and running statistics onto `device`; batches of up to
    /// `capacity` rows.
    /// - Throws: what the device throws (out of memory, a failed copy).
    init(_ model: MLP, capacity: Int, device: Device) throws {
      precondition(capacity > 1)
      self.device = device
      self.inputCount = model.inputCount
      self.classCount = model.classCount
      self.activation = TrainingActivation(model.activation)
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
        5 * parameterCount + capacity * (model.inputCount + model.classCount + 2 * widest)
        + units.reduce(0) { $0 + 3 * capacity * $1 + 3 * $1 }
      self.storage = try device.allocate(total)
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
      self.hostRows = .allocate(capacity: capacity * max(model.inputCount, widest))
      self.hostLogits = .allocate(capacity: capacity * model.classCount)
      self.hostStatistics = .allocate(capacity: max(parameterCount, 2 * widest))
      // The parameters and the decay flags, through the host.
      for (j, value) in model.parameters.enumerated() { self.hostStatistics[j] = Scalar(value) }
      try device.upload(self.hostStatistics, to: self.theta, count: parameterCount)
      self.hostStatistics.update(repeating: 0, count: parameterCount)
      for layer in layers {
        (self.hostStatistics + layer.weights).update(
          repeating: 1,
          count: layer.inputs * layer.units
        )
      }
      (self.hostStatistics + self.outputWeights).update(
        repeating: 1,
        count: self.outputBiases - self.outputWeights
      )
      try device.upload(self.hostStatistics, to: self.decay, count: parameterCount)
      for layer in layers { try device.fill(layer.mask, with: 1, count: capacity * layer.units) }
    }

    deinit {
      self.device.free(self.storage)
      self.hostRows.deallocate()
      self.hostLogits.deallocate()
      self.hostStatistics.deallocate()
    }

    /// The parameters, read back from the device.
    func parameters() throws -> [Double] {
      try self.device.download(self.theta, to: self.hostStatistics, count: self.parameterCount)
      return (0 ..< self.parameterCount).map { Double(self.hostStatistics[$0]) }
    }

    /// The gradient of the last ``lossAndGradient(count:labels:weights:loss:)``.
    func gradientValues() throws -> [Double] {
      try self.device.download(self.gradient, to: self.hostStatistics, count: self.parameterCount)
      return (0 ..< self.parameterCount).map { Double(self.hostStatistics[$0]) }
    }

    /// `model` with this state's parameters and running statistics.
    func model(_ model: MLP) throws -> MLP {
      var model = model
      model.setParameters(try self.parameters())
      for l in model.hidden.indices {
        model.hidden[l].runningMean = self.runningMean[l]
        model.hidden[l].runningVariance = self.runningVariance[l]
      }
      return model
    }

    /// Copies the rows `rows` of the row-major `features` into the batch input.
    func load(_ features: UnsafeBufferPointer<Double>, rows: ArraySlice<Int>) throws {
      precondition(rows.count <= self.capacity)
      let width = self.inputCount
      var target = self.hostRows
      for row in rows {
        let source = features.baseAddress! + row * width
        for c in 0 ..< width { target[c] = Scalar(source[c]) }
        target += width
      }
      try self.device.upload(self.hostRows, to: self.input, count: rows.count * width)
    }

    /// Draws each hidden layer's dropout mask for `count` rows: every unit kept with
    /// probability `keep` (and scaled by 1/keep), two draws per 64-bit random number.
    func drawMasks(count: Int, keep: Double, random: inout SeededRandom) throws {
      guard keep < 1 else { return }
      let threshold = UInt64(keep * 4_294_967_296), scale = Scalar(1 / keep)
      for layer in self.layers {
        let mask = self.hostRows, n = count * layer.units
        var k = 0
        while k < n {
          let r = random.next()
          mask[k] = r & 0xFFFF_FFFF < threshold ? scale : 0
          if k + 1 < n { mask[k + 1] = r >> 32 < threshold ? scale : 0 }
          k += 2
        }
        try self.device.upload(mask, to: layer.mask, count: n)
      }
    }

    /// Sets the dropout masks (per hidden layer, `count × units`).
    func setMasks(_ masks: [[Double]], count: Int) throws {
      for (layer, mask) in zip(self.layers, masks) {
        precondition(mask.count == count * layer.units)
        for k in mask.indices { self.hostRows[k] = Scalar(mask[k]) }
        try self.device.upload(self.hostRows, to: layer.mask, count: mask.count)
      }
    }

    /// The training-mode forward pass over the first `count` input rows (batch statistics,
    /// dropout), then the loss and its gradient over the parameters into ``gradient``.
    func lossAndGradient(
      count: Int,
      labels: [Int],
      weights: [Double],
      loss: FocalLoss
    ) throws -> Double {
      precondition(
        count > 1 && count <= self.capacity && labels.count == count && weights.count == count
      )
      let device = self.device, theta = self.theta, gradient = self.gradient
      var x = UnsafePointer(self.input)
      for layer in self.layers {
        let units = layer.units, z = layer.normal
        try device.gemm(
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
        try device.biasMean(
          z: z,
          bias: theta + layer.biases,
          mean: layer.mean,
          count: count,
          units: units
        )
        try device.variance(
          z: z,
          mean: layer.mean,
          variance: layer.variance,
          inverseStd: layer.inverseStd,
          count: count,
          units: units,
          epsilon: Scalar(MLP.epsilon)
        )
        try device.normalizeActivate(
          z: z,
          out: layer.output,
          mean: layer.mean,
          inverseStd: layer.inverseStd,
          gamma: theta + layer.gamma,
          beta: theta + layer.beta,
          mask: layer.mask,
          count: count,
          units: units,
          activation: self.activation
        )
        x = UnsafePointer(layer.output)
      }
      let k = self.classCount, last = self.layers.last?.units ?? self.inputCount
      try device.gemm(
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
      // The loss on the host, in Double: the logits and the output biases come back.
      try device.download(self.logits, to: self.hostLogits, count: count * k)
      try device.download(theta + self.outputBiases, to: self.hostStatistics, count: k)
      var z = [Double](repeating: 0, count: count * k)
      for i in 0 ..< count {
        for c in 0 ..< k {
          z[i * k + c] = Double(self.hostLogits[i * k + c] + self.hostStatistics[c])
        }
      }
      let (value, dLogits) = loss.valueAndGradient(
        logits: z,
        labels: labels,
        weights: weights,
        classCount: k
      )

      // Backward, from the output layer down.
      for index in dLogits.indices { self.hostLogits[index] = Scalar(dLogits[index]) }
      let dz = self.logits
      try device.upload(self.hostLogits, to: dz, count: count * k)
      try device.gemm(
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
      try device.columnSums(dz, into: gradient + self.outputBiases, count: count, columns: k)
      var (delta, spare) = self.deltas
      try device.gemm(
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
        // Through dropout and the activation, then the batch normalisation.
        try device.activationBackward(
          delta: delta,
          normal: layer.normal,
          gamma: theta + layer.gamma,
          beta: theta + layer.beta,
          mask: layer.mask,
          dGamma: gradient + layer.gamma,
          dBeta: gradient + layer.beta,
          count: count,
          units: units,
          activation: self.activation
        )
        try device.batchNormBackward(
          delta: delta,
          normal: layer.normal,
          gamma: theta + layer.gamma,
          inverseStd: layer.inverseStd,
          dGamma: gradient + layer.gamma,
          dBeta: gradient + layer.beta,
          dBias: gradient + layer.biases,
          count: count,
          units: units
        )
        let input = l == 0 ? UnsafePointer(self.input) : UnsafePointer(self.layers[l - 1].output)
        try device.gemm(
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
        try device.gemm(
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
    func updateRunningStatistics(count: Int) throws {
      let unbias = Double(count) / Double(count - 1)
      let mean = self.hostStatistics
      for (l, layer) in self.layers.enumerated() {
        let variance = mean + layer.units
        try self.device.download(layer.mean, to: mean, count: layer.units)
        try self.device.download(layer.variance, to: variance, count: layer.units)
        for j in 0 ..< layer.units {
          self.runningMean[l][j] =
            (1 - MLP.momentum) * self.runningMean[l][j] + MLP.momentum * Double(mean[j])
          self.runningVariance[l][j] =
            (1 - MLP.momentum) * self.runningVariance[l][j] + MLP.momentum
            * Double(variance[j]) * unbias
        }
      }
    }

    /// Clips the gradient to `clipNorm` and takes one optimiser step.
    func step(_ optimizer: AdamW, clipNorm: Double) throws {
      self.steps += 1
      try self.device.optimize(
        optimizer,
        theta: self.theta,
        gradient: self.gradient,
        firstMoment: self.firstMoment,
        secondMoment: self.secondMoment,
        decay: self.decay,
        count: self.parameterCount,
        step: self.steps,
        clipNorm: clipNorm
      )
    }
  }
}

extension TrainingActivation {
  init(_ activation: MLP.Activation) {
    switch activation {
    case .relu: self = .relu
    case .gelu: self = .gelu
    case .tanh: self = .tanh
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
        try features.withUnsafeBufferPointer { try self.load($0, rows: rows) }
        let y = rows.map { labels[$0] }
        try self.drawMasks(count: b, keep: keep, random: &random)
        let loss = try self.lossAndGradient(
          count: b,
          labels: y,
          weights: y.map { classWeight[$0] },
          loss: training.loss
        )
        epochLoss += loss * Double(b)
        try self.step(optimizer, clipNorm: training.clipNorm)
        try self.updateRunningStatistics(count: b)
      }
      current = try self.model(current)
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
