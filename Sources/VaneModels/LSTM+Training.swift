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
    var random = SeededRandom(seed: training.seed ^ 0x15F3)
    var theta = model.parameters
    var optimizer = AdamW(
      parameterCount: theta.count,
      learningRate: training.learningRate,
      weightDecay: training.weightDecay,
      decay: model.decayMask
    )
    let keep = 1 - dropout
    let window = sequenceLength * featureCount
    var stopping = EarlyStopping(patience: training.patience, initial: model)
    for epochIndex in 0 ..< training.maxEpochs {
      var order = Array(0 ..< count)
      order.shuffle(using: &random)
      var epochLoss = 0.0
      for start in stride(from: 0, to: count, by: max(training.batchSize, 1)) {
        if cancellation?.isCancelled == true {
          throw VaneError(.cancelled, "LSTM training cancelled in epoch \(epochIndex)")
        }
        let rows = Array(order[start ..< min(start + training.batchSize, count)])
        let b = rows.count
        let x = rows.flatMap { sequences[($0 * window) ..< (($0 + 1) * window)] }
        let y = rows.flatMap { labels[($0 * heads) ..< (($0 + 1) * heads)] }
        func mask() -> [Double] {
          (0 ..< (b * hiddenSize)).map { _ in random.uniform() < keep ? 1 / keep : 0 }
        }
        // Dropout between layers (not after the top one: the head mask covers it).
        let masks: [[[Double]]]? =
          dropout > 0
          ? (0 ..< layerCount).map { l in
            (0 ..< sequenceLength).map { _ in
              l < layerCount - 1 ? mask() : [Double](repeating: 1, count: b * hiddenSize)
            }
          }
          : nil
        let headMask = dropout > 0 ? mask() : nil
        model.setParameters(theta)
        var (loss, gradient) = model.lossAndGradient(
          x,
          count: b,
          labels: y,
          masks: masks,
          headMask: headMask,
          bpttSteps: training.bpttSteps > 0 ? training.bpttSteps : sequenceLength
        )
        epochLoss += loss * Double(b)
        AdamW.clip(&gradient, maximumNorm: training.clipNorm)
        optimizer.update(&theta, gradient: gradient)
      }
      model.setParameters(theta)
      var validationLoss: Double?
      if let validation {
        validationLoss =
          model.lossAndGradient(
            validation.sequences,
            count: validation.count,
            labels: validation.labels,
            masks: nil,
            headMask: nil,
            bpttSteps: 1
          ).loss
      }
      guard epoch(epochIndex, epochLoss / Double(count), validationLoss) else {
        throw VaneError(.cancelled, "LSTM training stopped after epoch \(epochIndex)")
      }
      if stopping.observe(model, validationLoss: validationLoss) { break }
    }
    return stopping.best
  }
}
