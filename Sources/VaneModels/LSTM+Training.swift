internal import Foundation
public import VaneCore
internal import VaneMath

extension LSTM {
  /// The training loop's settings.
  public typealias Training = NeuralTraining

  /// Trains a network on `count` windows (`count × sequenceLength × featureCount`) with
  /// `heads` labels each (`count × heads`, 0/1, −1 missing).
  /// - Parameters:
  ///   - cancellation: polled before every mini-batch: training stops within one batch.
  ///   - epoch: called after each epoch with the epoch, training loss and validation loss;
  ///     return false to stop (cancellation).
  /// - Throws: INVALID_ARGUMENT for shapes, labels or non-finite inputs; CANCELLED when `epoch`
  ///   stopped it.
  public static func train(
    sequences: [Double],
    count: Int,
    sequenceLength: Int,
    featureCount: Int,
    labels: [Int],
    heads: Int,
    validation: (sequences: [Double], count: Int, labels: [Int])? = nil,
    hiddenSize: Int = 64,
    layerCount: Int = 1,
    dropout: Double = 0.1,
    training: Training = Training(),
    cancellation: CancellationFlag? = nil,
    epoch: (Int, Double, Double?) -> Bool = { _, _, _ in true }
  ) throws -> LSTM {
    guard count > 0, sequenceLength > 0, featureCount > 0,
      sequences.count == count * sequenceLength * featureCount
    else {
      throw VaneError.invalidArgument(
        field: "sequences",
        "\(sequences.count) values for \(count) windows × \(sequenceLength) steps × \(featureCount) features"
      )
    }
    guard heads > 0, labels.count == count * heads else {
      throw VaneError.invalidArgument(field: "labels", "need \(count) × \(heads) labels")
    }
    if let bad = labels.firstIndex(where: { $0 < -1 || $0 > 1 }) {
      throw VaneError.invalidArgument(
        field: "labels[\(bad / heads)][\(bad % heads)]",
        "\(labels[bad]) is not 0, 1 or −1 (missing)"
      )
    }
    if let bad = sequences.firstIndex(where: { !$0.isFinite }) {
      throw VaneError.invalidArgument(
        field: "sequences[\(bad / (sequenceLength * featureCount))]",
        "holds a value that is not finite"
      )
    }
    guard hiddenSize > 0, (1 ... 4).contains(layerCount) else {
      throw VaneError.invalidArgument(
        field: "num_layers",
        "must be 1 to 4, with a positive hidden size"
      )
    }
    guard (0 ..< 1).contains(dropout) else {
      throw VaneError.invalidArgument(field: "dropout", "must be in [0, 1)")
    }
    var model = LSTM(
      inputCount: featureCount,
      hiddenSize: hiddenSize,
      layerCount: layerCount,
      sequenceLength: sequenceLength,
      heads: heads,
      dropout: dropout,
      seed: training.seed
    )
    // It answers in the arithmetic it learns in.
    model.precision = training.precision
    let capacity = max(1, min(training.batchSize, count))
    // Generic over the device, called with each concrete one: the loop is specialised for it.
    func run<Device: TrainingDevice>(on device: Device) throws -> LSTM {
      try sequences.withUnsafeBufferPointer { sequences in
        try Engine(model, capacity: capacity, device: device).train(
          model,
          sequences: sequences,
          count: count,
          labels: labels,
          validation: validation,
          training: training,
          cancellation: cancellation,
          epoch: epoch
        )
      }
    }
    switch (training.device, training.precision) {
    case (.cuda, .float64):
      throw VaneError.invalidArgument(
        field: "precision",
        "the LSTM trains on CUDA in float32 only (set PRECISION_FLOAT32 or DEVICE_CPU)"
      )
    case (.cuda, .float32): return try run(on: CUDATrainingDevice(CUDADevice()))
    case (.cpu, .float32): return try run(on: CPUTrainingDevice<Float>())
    case (.cpu, .float64): return try run(on: CPUTrainingDevice<Double>())
    }
  }
}

extension LSTM.Engine {
  /// The epoch loop of ``LSTM/train(sequences:count:sequenceLength:featureCount:labels:heads:validation:hiddenSize:layerCount:dropout:training:cancellation:epoch:)``
  /// from `model`'s initial parameters; returns the early-stopping choice.
  func train(
    _ model: LSTM,
    sequences: UnsafeBufferPointer<Double>,
    count: Int,
    labels: [Int],
    validation: (sequences: [Double], count: Int, labels: [Int])?,
    training: LSTM.Training,
    cancellation: CancellationFlag?,
    epoch: (Int, Double, Double?) -> Bool
  ) throws -> LSTM {
    var random = SeededRandom(seed: training.seed ^ 0x15F3)
    let optimizer = AdamW(learningRate: training.learningRate, weightDecay: training.weightDecay)
    var stopping = EarlyStopping(patience: training.patience, initial: model)
    var current = model
    let keep = 1 - model.dropout
    let heads = self.heads
    let bptt = training.bpttSteps > 0 ? training.bpttSteps : self.sequenceLength
    var order = Array(0 ..< count)
    for epochIndex in 0 ..< training.maxEpochs {
      order.shuffle(using: &random)
      var epochLoss = 0.0
      for start in stride(from: 0, to: count, by: self.capacity) {
        if cancellation?.isCancelled == true {
          throw VaneError(.cancelled, "LSTM training cancelled in epoch \(epochIndex)")
        }
        let rows = order[start ..< min(start + self.capacity, count)]
        let b = rows.count
        try self.load(sequences, rows: rows)
        let y = rows.flatMap { labels[($0 * heads) ..< (($0 + 1) * heads)] }
        try self.drawMasks(count: b, keep: keep, random: &random)
        let loss = try self.lossAndGradient(count: b, labels: y, bpttSteps: bptt)
        epochLoss += loss * Double(b)
        try self.step(optimizer, clipNorm: training.clipNorm)
      }
      current = try self.model(current)
      let validationLoss = validation.map {
        current.loss($0.sequences, count: $0.count, labels: $0.labels)
      }
      guard epoch(epochIndex, epochLoss / Double(count), validationLoss) else {
        throw VaneError(.cancelled, "LSTM training stopped after epoch \(epochIndex)")
      }
      if stopping.observe(current, validationLoss: validationLoss) { break }
    }
    return stopping.best
  }
}
