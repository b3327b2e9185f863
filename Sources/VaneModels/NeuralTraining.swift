/// The training loop's settings shared by the MLP and the LSTM (the trainer API's
/// `NeuralTraining`; defaults as it documents them).
public struct NeuralTraining: Sendable, Equatable {
  /// The arithmetic a network trains in. Its saved parameters are Double either way.
  public enum Precision: String, Sendable, Equatable, CaseIterable, Codable {
    /// Single precision, as PyTorch trains by default: twice the GEMM throughput.
    case float32
    case float64
  }

  /// Where a network trains.
  public enum Device: String, Sendable, Equatable, CaseIterable, Codable {
    case cpu
    /// The first NVIDIA GPU, in float32 (the MLP; the LSTM has no CUDA backend yet).
    case cuda
  }

  public var maxEpochs = 100
  public var batchSize = 256
  public var learningRate = 1e-3
  public var weightDecay = 1e-4
  /// Epochs without validation improvement before stopping (0: off).
  public var patience = 10
  /// Global gradient-norm clip (0: off).
  public var clipNorm = 1.0
  public var seed: UInt64 = 0
  /// MLP: the loss.
  public var loss = FocalLoss()
  /// LSTM: steps back-propagated through (0: the whole window).
  public var bpttSteps = 0
  /// The training arithmetic.
  public var precision = Precision.float32
  /// Where it runs.
  public var device = Device.cpu

  public init() {}
}

/// Early stopping on a validation loss: keeps the best model seen and says when `patience`
/// epochs have passed without improvement. Without a validation loss (or patience 0) the last
/// model is kept and training runs to the end.
struct EarlyStopping<Model> {
  let patience: Int
  private(set) var best: Model
  private var bestLoss = Double.infinity
  private var sinceBest = 0

  init(patience: Int, initial: Model) {
    self.patience = patience
    self.best = initial
  }

  /// Records an epoch's model and validation loss; true when training should stop.
  mutating func observe(_ model: Model, validationLoss: Double?) -> Bool {
    guard let loss = validationLoss, self.patience > 0 else {
      self.best = model
      return false
    }
    if loss < self.bestLoss {
      self.bestLoss = loss
      self.best = model
      self.sinceBest = 0
      return false
    }
    self.sinceBest += 1
    return self.sinceBest >= self.patience
  }
}
