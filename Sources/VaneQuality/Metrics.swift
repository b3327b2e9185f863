internal import Foundation
internal import VaneCore

/// One reliability bin: its bounds [lower, upper), how many samples fell in it, their mean
/// confidence and their accuracy (both 0 when empty).
public struct ReliabilityBin: Sendable, Equatable, Codable {
  public var lower: Double
  public var upper: Double
  public var count: Int
  public var meanConfidence: Double
  public var accuracy: Double

  public init(lower: Double, upper: Double, count: Int, meanConfidence: Double, accuracy: Double) {
    self.lower = lower
    self.upper = upper
    self.count = count
    self.meanConfidence = meanConfidence
    self.accuracy = accuracy
  }
}

/// Calibration error over a binning of confidences.
public struct CalibrationError: Sendable, Equatable, Codable {
  /// Σ (n_bin / N) · |accuracy − mean confidence| over non-empty bins.
  public var expected: Double
  /// max |accuracy − mean confidence| over non-empty bins.
  public var maximum: Double
  public var bins: [ReliabilityBin]
}

/// Metric functions over plain arrays. Each states its definition; the ones scikit-learn
/// also computes are checked against it in the tests (`scripts/quality_fixtures.py`).
public enum Metrics {
  /// Exact ROC AUC with ties handled (the Mann–Whitney U statistic with mid-ranks, equal to
  /// the trapezoidal area scikit-learn computes). NaN when one class is absent.
  public static func rocAUC(scores: [Double], positive: [Bool]) -> Double {
    precondition(scores.count == positive.count)
    let n = scores.count
    // Sort keys with the label as payload: the rank pass then reads memory in order.
    var keys = scores.map(RadixSort.key)
    var labels = positive.map { UInt32($0 ? 1 : 0) }
    let positives = labels.reduce(0) { $0 + Int($1) }
    let negatives = n - positives
    guard positives > 0, negatives > 0 else { return .nan }
    RadixSort.sort(keys: &keys, payload: &labels)
    // Sum of the positives' mid-ranks (1-based), tie group by tie group.
    var rankSum = 0.0
    var start = 0
    while start < n {
      var end = start + 1
      var groupPositives = Int(labels[start])
      while end < n, keys[end] == keys[start] {
        groupPositives += Int(labels[end])
        end += 1
      }
      rankSum += Double(groupPositives) * Double(start + 1 + end) / 2
      start = end
    }
    let p = Double(positives)
    return (rankSum - p * (p + 1) / 2) / (p * Double(negatives))
  }

  /// Binary AUC of P(class 1), or the macro average of one-vs-rest AUCs for more classes.
  public static func rocAUC(_ predictions: Predictions) -> Double {
    let k = predictions.classCount
    if k == 2 {
      return Self.rocAUC(
        scores: (0 ..< predictions.count).map { predictions.probability($0, 1) },
        positive: predictions.labels.map { $0 == 1 }
      )
    }
    var total = 0.0
    for c in 0 ..< k {
      total += Self.rocAUC(
        scores: (0 ..< predictions.count).map { predictions.probability($0, c) },
        positive: predictions.labels.map { $0 == c }
      )
    }
    return total / Double(k)
  }

  /// Mean negative log-likelihood of the true class, probabilities clipped to
  /// [ε, 1 − ε] with ε = 2.22e-16 (float64 machine epsilon, as scikit-learn).
  public static func logLoss(_ predictions: Predictions) -> Double {
    let eps = Double.ulpOfOne
    var total = 0.0
    for i in 0 ..< predictions.count {
      let p = min(max(predictions.probability(i, predictions.labels[i]), eps), 1 - eps)
      total -= Foundation.log(p)
    }
    return total / Double(predictions.count)
  }

  /// Mean over samples of Σ_k (p_k − 1[k = label])²; for binary models the usual
  /// (p − y)² of the positive class (half the two-class sum).
  public static func brier(_ predictions: Predictions) -> Double {
    var total = 0.0
    for i in 0 ..< predictions.count {
      if predictions.isBinary {
        let d = predictions.probability(i, 1) - (predictions.labels[i] == 1 ? 1 : 0)
        total += d * d
      } else {
        for k in 0 ..< predictions.classCount {
          let d = predictions.probability(i, k) - (predictions.labels[i] == k ? 1 : 0)
          total += d * d
        }
      }
    }
    return total / Double(predictions.count)
  }

  /// Confusion matrix: rows are true classes, columns predicted ones.
  public static func confusion(_ predictions: Predictions) -> [[Int]] {
    var matrix = [[Int]](
      repeating: [Int](repeating: 0, count: predictions.classCount),
      count: predictions.classCount
    )
    for i in 0 ..< predictions.count {
      matrix[predictions.labels[i]][predictions.predictedClass(i)] += 1
    }
    return matrix
  }

  /// Share of samples whose predicted class is the true one.
  public static func accuracy(confusion: [[Int]]) -> Double {
    let total = confusion.joined().reduce(0, +)
    let correct = confusion.indices.reduce(0) { $0 + confusion[$1][$1] }
    return total == 0 ? .nan : Double(correct) / Double(total)
  }

  /// Per-class precision and recall (0 where undefined, as scikit-learn's zero_division=0).
  public static func precisionRecall(confusion: [[Int]]) -> (precision: [Double], recall: [Double])
  {
    let k = confusion.count
    let precision = (0 ..< k).map { c -> Double in
      let predicted = (0 ..< k).reduce(0) { $0 + confusion[$1][c] }
      return predicted == 0 ? 0 : Double(confusion[c][c]) / Double(predicted)
    }
    let recall = (0 ..< k).map { c -> Double in
      let actual = confusion[c].reduce(0, +)
      return actual == 0 ? 0 : Double(confusion[c][c]) / Double(actual)
    }
    return (precision, recall)
  }

  /// Calibration error of the predicted class's confidence against being right, with `bins`
  /// equal-width bins over [0, 1] (index min(⌊conf · bins⌋, bins − 1)).
  public static func calibrationUniform(
    confidence: [Double],
    correct: [Bool],
    bins: Int = 15
  ) -> CalibrationError {
    var counts = [Int](repeating: 0, count: bins)
    var confidenceSums = [Double](repeating: 0, count: bins)
    var correctCounts = [Int](repeating: 0, count: bins)
    for (c, right) in zip(confidence, correct) {
      let b = min(max(Int(c * Double(bins)), 0), bins - 1)
      counts[b] += 1
      confidenceSums[b] += c
      if right { correctCounts[b] += 1 }
    }
    return Self.error(
      counts: counts,
      confidenceSums: confidenceSums,
      correctCounts: correctCounts,
      total: confidence.count,
      bounds: Self.uniformBounds(bins)
    )
  }

  static func uniformBounds(_ bins: Int) -> [(Double, Double)] {
    (0 ..< bins).map { (Double($0) / Double(bins), Double($0 + 1) / Double(bins)) }
  }

  /// ``calibrationUniform(confidence:correct:bins:)`` of a binary model straight from P(class 1)
  /// and the labels, in one pass (confidence max(p, 1 − p), predicted class 1 iff p ≥ 0.5).
  public static func calibrationUniform(
    positiveProbability p: [Double],
    labels: [Int],
    bins: Int = 15
  ) -> CalibrationError {
    precondition(p.count == labels.count && bins > 0)
    var counts = [Int](repeating: 0, count: bins)
    var confidenceSums = [Double](repeating: 0, count: bins)
    var correctCounts = [Int](repeating: 0, count: bins)
    let scale = Double(bins)
    p.withUnsafeBufferPointer { p in
      labels.withUnsafeBufferPointer { labels in
        counts.withUnsafeMutableBufferPointer { counts in
          confidenceSums.withUnsafeMutableBufferPointer { sums in
            correctCounts.withUnsafeMutableBufferPointer { correct in
              for i in 0 ..< p.count {
                let up = p[i] >= 0.5
                let c = up ? p[i] : 1 - p[i]
                let b = min(max(Int(c * scale), 0), bins - 1)
                counts[b] += 1
                sums[b] += c
                correct[b] += up == (labels[i] == 1) ? 1 : 0
              }
            }
          }
        }
      }
    }
    return Self.error(
      counts: counts,
      confidenceSums: confidenceSums,
      correctCounts: correctCounts,
      total: p.count,
      bounds: Self.uniformBounds(bins)
    )
  }

  /// Calibration error with `bins` equal-mass bins: samples sorted by confidence (stably) and
  /// split into contiguous chunks whose sizes differ by at most one, the larger ones first
  /// (NumPy's array_split).
  public static func calibrationQuantile(
    confidence: [Double],
    correct: [Bool],
    bins: Int = 15
  ) -> CalibrationError {
    let order = RadixSort.ascendingOrder(confidence)
    let n = confidence.count
    var counts = [Int](), confidenceSums = [Double](), correctCounts = [Int]()
    var bounds: [(Double, Double)] = []
    var start = 0
    for b in 0 ..< bins {
      let size = n / bins + (b < n % bins ? 1 : 0)
      var sum = 0.0
      var right = 0
      for j in start ..< (start + size) {
        let i = Int(order[j])
        sum += confidence[i]
        if correct[i] { right += 1 }
      }
      counts.append(size)
      confidenceSums.append(sum)
      correctCounts.append(right)
      // A chunk spans from its smallest confidence to the next chunk's (the last to 1).
      let lower = size > 0 ? confidence[Int(order[start])] : (bounds.last?.1 ?? 0)
      start += size
      bounds.append((lower, start < n ? confidence[Int(order[start])] : 1))
    }
    return Self.error(
      counts: counts,
      confidenceSums: confidenceSums,
      correctCounts: correctCounts,
      total: n,
      bounds: bounds
    )
  }

  static func error(
    counts: [Int],
    confidenceSums: [Double],
    correctCounts: [Int],
    total: Int,
    bounds: [(Double, Double)]
  ) -> CalibrationError {
    var expected = 0.0
    var maximum = 0.0
    var bins: [ReliabilityBin] = []
    for b in counts.indices {
      guard counts[b] > 0 else {
        bins.append(
          ReliabilityBin(
            lower: bounds[b].0,
            upper: bounds[b].1,
            count: 0,
            meanConfidence: 0,
            accuracy: 0
          )
        )
        continue
      }
      let meanConfidence = confidenceSums[b] / Double(counts[b])
      let accuracy = Double(correctCounts[b]) / Double(counts[b])
      let gap = abs(accuracy - meanConfidence)
      expected += Double(counts[b]) / Double(total) * gap
      maximum = max(maximum, gap)
      bins.append(
        ReliabilityBin(
          lower: bounds[b].0,
          upper: bounds[b].1,
          count: counts[b],
          meanConfidence: meanConfidence,
          accuracy: accuracy
        )
      )
    }
    return CalibrationError(expected: expected, maximum: maximum, bins: bins)
  }

  /// Population stability index of `scores` against `reference`: 10 bins cut at the
  /// reference's deciles (linear-interpolated quantiles), bins (−∞, e1], (e1, e2], …, (e9, ∞);
  /// shares floored at 1e-4; PSI = Σ (a − e) · ln(a / e).
  public static func psi(scores: [Double], reference: [Double]) -> Double {
    guard !scores.isEmpty, let distribution = DecileDistribution(reference) else { return .nan }
    return distribution.psi(scores)
  }

}
