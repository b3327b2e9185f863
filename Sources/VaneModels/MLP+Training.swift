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
    self.hidden.flatMap { $0.weights + $0.biases + $0.gamma + $0.beta } + self.outputWeights
      + self.outputBiases
  }

  mutating func setParameters(_ theta: [Double]) {
    var offset = 0
    func take(_ n: Int) -> [Double] {
      defer { offset += n }
      return Array(theta[offset ..< (offset + n)])
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

  /// The training-mode loss of one batch and its gradient over ``parameters``, in Double:
  /// batch statistics in the normalisation, `masks` (per hidden layer, `count × units`, each
  /// entry 0 or 1/(1 − dropout)) as the dropout. The same ``Engine`` code trains in either
  /// precision, so checking this against finite differences checks the training loop's.
  func lossAndGradient(
    _ features: [Double],
    count: Int,
    labels: [Int],
    weights: [Double],
    masks: [[Double]],
    loss: FocalLoss
  ) -> (loss: Double, gradient: [Double]) {
    // The CPU device never throws.
    let engine = try! Engine(self, capacity: max(count, 2), device: CPUTrainingDevice<Double>())
    try! features.withUnsafeBufferPointer { try engine.load($0, rows: Array(0 ..< count)[...]) }
    try! engine.setMasks(masks, count: count)
    let value = try! engine.lossAndGradient(
      count: count,
      labels: labels,
      weights: weights,
      loss: loss
    )
    return (value, try! engine.gradientValues())
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
    features: [Double],
    count: Int,
    featureCount: Int,
    labels: [Int],
    classCount: Int,
    classWeights: [Double]? = nil,
    validation: (features: [Double], count: Int, labels: [Int])? = nil,
    units: [Int],
    activation: Activation = .relu,
    dropout: Double = 0.3,
    training: Training = Training(),
    cancellation: CancellationFlag? = nil,
    epoch: (Int, Double, Double?) -> Bool = { _, _, _ in true }
  ) throws -> MLP {
    guard count > 1, featureCount > 0, features.count == count * featureCount, labels.count == count
    else {
      throw VaneError.invalidArgument(
        field: "features",
        "\(features.count) values and \(labels.count) labels for \(count) rows × \(featureCount) columns"
      )
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
        "is not finite (impute or drop missing values first)"
      )
    }
    guard !units.isEmpty, units.allSatisfy({ $0 > 0 }) else {
      throw VaneError.invalidArgument(field: "hidden_units", "need at least one positive width")
    }
    guard (0 ..< 1).contains(dropout) else {
      throw VaneError.invalidArgument(field: "dropout", "must be in [0, 1)")
    }
    guard training.batchSize > 1 else {
      throw VaneError.invalidArgument(
        field: "batch_size",
        "must be at least 2 (batch normalisation)"
      )
    }
    let classWeight = classWeights ?? [Double](repeating: 1, count: classCount)
    let model = MLP(
      inputCount: featureCount,
      classCount: classCount,
      units: units,
      activation: activation,
      dropout: dropout,
      seed: training.seed
    )
    let capacity = min(training.batchSize + 1, count)
    // Each precision's engine is a concrete type here, so the loop is specialised for it.
    // Generic over the device, called with each concrete one: the loop is specialised for it.
    func run<Device: TrainingDevice>(on device: Device) throws -> MLP {
      try Engine(model, capacity: capacity, device: device).train(
        model,
        features: features,
        count: count,
        labels: labels,
        classWeight: classWeight,
        validation: validation,
        training: training,
        cancellation: cancellation,
        epoch: epoch
      )
    }
    var trained =
      switch (training.device, training.precision) {
      case (.cuda, .float64):
        throw VaneError.invalidArgument(
          field: "precision",
          "the MLP trains on CUDA in float32 only (set PRECISION_FLOAT32 or DEVICE_CPU)"
        )
      case (.cuda, .float32): try run(on: CUDATrainingDevice(CUDADevice()))
      case (.cpu, .float32): try run(on: CPUTrainingDevice<Float>())
      case (.cpu, .float64): try run(on: CPUTrainingDevice<Double>())
      }
    if let validation, validation.count > 0 {
      trained.temperature = Self.fitTemperature(
        logits: trained.logits(validation.features, count: validation.count),
        labels: validation.labels,
        classCount: classCount
      )
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
      for (i, label) in labels.enumerated() {
        total -= Foundation.log(max(p[i * k + label], 1e-300))
      }
      return total / Double(max(labels.count, 1))
    }
    var (a, b) = (-3.0, 3.0)
    let ratio = (5.0.squareRoot() - 1) / 2
    var c = b - ratio * (b - a), d = a + ratio * (b - a)
    var fc = nll(c), fd = nll(d)
    while b - a > 1e-6 {
      if fc < fd {
        b = d
        d = c
        fd = fc
        c = b - ratio * (b - a)
        fc = nll(c)
      } else {
        a = c
        c = d
        fc = fd
        d = a + ratio * (b - a)
        fd = nll(d)
      }
    }
    return Foundation.exp((a + b) / 2)
  }
}
