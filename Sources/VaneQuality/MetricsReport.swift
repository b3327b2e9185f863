internal import Foundation

/// Everything the gates read about one model's predictions.
public struct MetricsReport: Sendable, Equatable, Codable {
  public var samples: Int
  public var classCount: Int
  /// Samples with a NaN probability, and with an infinite one (they are left out of every
  /// other metric).
  public var nanCount: Int
  public var infiniteCount: Int
  public var rocAUC: Double
  public var logLoss: Double
  public var brier: Double
  public var accuracy: Double
  public var precision: [Double]
  public var recall: [Double]
  /// Rows true class, columns predicted class.
  public var confusion: [[Int]]
  /// 15 equal-width bins, and 15 equal-mass bins.
  public var calibration: CalibrationError
  public var calibrationEqualMass: CalibrationError
  /// Share of samples predicted as each class.
  public var predictedClassShare: [Double]
  /// Mean confidence of the predicted class, and the share of predictions above 0.99.
  public var meanConfidence: Double
  public var shareAbove99: Double
  /// Smallest and largest logit, and the largest magnitude, over the samples with finite
  /// probabilities (NaN and infinite outputs are counted above). Binary: z₁ − z₀ (or the one
  /// logit given); K > 2: the logits as given. Without logits, those the probabilities imply:
  /// log(p / (1 − p)) for binary, centred log-probabilities otherwise (a probability of exactly
  /// 0 or 1 implies an infinite logit: saturated outputs fail the range gate).
  public var logitMin: Double?
  public var logitMax: Double?
  public var maxAbsLogit: Double?

  /// The logits whose range the gate checks: centred when implied by K > 2 probabilities
  /// (log-probabilities are defined up to a constant per row).
  static func logits(_ predictions: Predictions) -> [Double] {
    var z = predictions.logitsOrImplied(clip: nil)
    let k = predictions.classCount
    if predictions.logits == nil, k > 2 {
      for row in 0 ..< predictions.count {
        let mean = z[(row * k) ..< (row * k + k)].reduce(0, +) / Double(k)
        for c in 0 ..< k { z[row * k + c] -= mean }
      }
    }
    return z
  }

  /// Computes the report.
  /// - Parameter bins: equal-width (and equal-mass) bins for the calibration errors.
  public init(_ all: Predictions, bins: Int = 15) {
    var nan = 0, infinite = 0
    for i in 0 ..< all.count {
      let row = (0 ..< all.classCount).map { all.probability(i, $0) }
      if row.contains(where: \.isNaN) {
        nan += 1
      } else if row.contains(where: \.isInfinite) {
        infinite += 1
      }
    }
    let predictions = all.finiteOnly
    self.samples = all.count
    self.classCount = all.classCount
    self.nanCount = nan
    self.infiniteCount = infinite
    let logits = Self.logits(predictions)
    if !logits.isEmpty {
      self.logitMin = logits.min()
      self.logitMax = logits.max()
      self.maxAbsLogit = logits.map(abs).max()
      if logits.contains(where: { !$0.isFinite }) { self.maxAbsLogit = .infinity }
    }
    guard predictions.count > 0 else {
      self.rocAUC = .nan
      self.logLoss = .nan
      self.brier = .nan
      self.accuracy = .nan
      self.precision = []
      self.recall = []
      self.confusion = []
      self.calibration = CalibrationError(expected: .nan, maximum: .nan, bins: [])
      self.calibrationEqualMass = self.calibration
      self.predictedClassShare = []
      self.meanConfidence = .nan
      self.shareAbove99 = .nan
      return
    }
    self.rocAUC = Metrics.rocAUC(predictions)
    self.logLoss = Metrics.logLoss(predictions)
    self.brier = Metrics.brier(predictions)
    self.confusion = Metrics.confusion(predictions)
    self.accuracy = Metrics.accuracy(confusion: self.confusion)
    (self.precision, self.recall) = Metrics.precisionRecall(confusion: self.confusion)
    let n = predictions.count
    var confidence = [Double](repeating: 0, count: n)
    var correct = [Bool](repeating: false, count: n)
    var predictedCounts = [Int](repeating: 0, count: predictions.classCount)
    var above = 0
    for i in 0 ..< n {
      let predicted = predictions.predictedClass(i)
      predictedCounts[predicted] += 1
      confidence[i] = predictions.probability(i, predicted)
      correct[i] = predicted == predictions.labels[i]
      if confidence[i] > 0.99 { above += 1 }
    }
    self.calibration = Metrics.calibrationUniform(
      confidence: confidence,
      correct: correct,
      bins: bins
    )
    self.calibrationEqualMass = Metrics.calibrationQuantile(
      confidence: confidence,
      correct: correct,
      bins: bins
    )
    self.predictedClassShare = predictedCounts.map { Double($0) / Double(n) }
    self.meanConfidence = confidence.reduce(0, +) / Double(n)
    self.shareAbove99 = Double(above) / Double(n)
  }

}

/// Per-column mean and standard deviation of the scaled inputs a model saw: the gate that
/// catches unscaled features (|mean| and |std − 1| far from 0).
public struct InputSummary: Sendable, Equatable, Codable {
  public var columns: [String]
  public var mean: [Double]
  public var std: [Double]

  /// A summary computed elsewhere.
  public init(columns: [String], mean: [Double], std: [Double]) {
    precondition(columns.count == mean.count && columns.count == std.count)
    self.columns = columns
    self.mean = mean
    self.std = std
  }

  /// Summarises a row-major `rows × columns.count` matrix (non-finite values skipped).
  public init(columns: [String], values: [Double]) {
    let width = columns.count
    precondition(width > 0 && values.count % width == 0)
    var sums = [Double](repeating: 0, count: width), counts = [Int](repeating: 0, count: width)
    for (index, v) in values.enumerated() where v.isFinite {
      sums[index % width] += v
      counts[index % width] += 1
    }
    let means = (0 ..< width).map { counts[$0] > 0 ? sums[$0] / Double(counts[$0]) : .nan }
    var squares = [Double](repeating: 0, count: width)
    for (index, v) in values.enumerated() where v.isFinite {
      let d = v - means[index % width]
      squares[index % width] += d * d
    }
    self.columns = columns
    self.mean = means
    self.std = (0 ..< width).map {
      counts[$0] > 0 ? (squares[$0] / Double(counts[$0])).squareRoot() : .nan
    }
  }
}
