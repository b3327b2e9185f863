internal import Foundation
internal import VaneCore

/// Class probabilities of a model over a set of samples, with the true labels: what every
/// metric, calibrator and gate reads. Binary models have two classes (index 1 is the positive
/// class, "UP"); three-class models DOWN/HOLD/UP.
public struct Predictions: Sendable, Equatable {
  /// Classes per sample (2 for binary).
  public let classCount: Int
  /// `count × classCount`, row-major.
  public let probabilities: [Double]
  /// True class per sample, in 0..<classCount.
  public let labels: [Int]
  /// Raw model outputs, when the model exposes them: one per sample for binary models (the
  /// logit of class 1), `classCount` per sample otherwise. Used for the logit-range gate and by
  /// calibrators that work on logits.
  public let logits: [Double]?

  public var count: Int { self.labels.count }
  public var isBinary: Bool { self.classCount == 2 }

  /// Binary predictions from P(class 1).
  /// - Throws: INVALID_ARGUMENT naming the field for mismatched lengths or a label not 0 or 1.
  public init(binary positive: [Double], labels: [Int], logits: [Double]? = nil) throws {
    guard positive.count == labels.count else {
      throw VaneError.invalidArgument(
        field: "probabilities",
        "\(positive.count) values for \(labels.count) labels"
      )
    }
    var rows = [Double](repeating: 0, count: positive.count * 2)
    for (i, p) in positive.enumerated() {
      rows[2 * i] = 1 - p
      rows[2 * i + 1] = p
    }
    try self.init(probabilities: rows, classCount: 2, labels: labels, logits: logits)
  }

  /// Predictions from full probability rows.
  /// - Throws: INVALID_ARGUMENT naming the field for a bad shape or a label out of range.
  public init(
    probabilities: [Double],
    classCount: Int,
    labels: [Int],
    logits: [Double]? = nil
  ) throws {
    guard classCount >= 2, classCount <= 1000 else {
      throw VaneError.invalidArgument(
        field: "class_count",
        "must be between 2 and 1000 (got \(classCount))"
      )
    }
    guard probabilities.count == labels.count * classCount else {
      throw VaneError.invalidArgument(
        field: "probabilities",
        "\(probabilities.count) values for \(labels.count) samples of \(classCount) classes"
      )
    }
    if let index = labels.firstIndex(where: { $0 < 0 || $0 >= classCount }) {
      throw VaneError.invalidArgument(
        field: "labels[\(index)]",
        "\(labels[index]) is not a class index in 0..<\(classCount)"
      )
    }
    if let logits {
      let width = classCount == 2 ? 1 : classCount
      guard
        logits.count == labels.count * width
          || (classCount == 2 && logits.count == labels.count * 2)
      else {
        throw VaneError.invalidArgument(
          field: "logits",
          "\(logits.count) values for \(labels.count) samples"
        )
      }
    }
    self.classCount = classCount
    self.probabilities = probabilities
    self.labels = labels
    self.logits = logits
  }

  /// P(class k) of sample i.
  @inline(__always)
  public func probability(_ i: Int, _ k: Int) -> Double {
    self.probabilities[i * self.classCount + k]
  }

  /// Whether every probability of sample i is finite.
  public func isFinite(_ i: Int) -> Bool {
    (0 ..< self.classCount).allSatisfy { self.probability(i, $0).isFinite }
  }

  /// The predicted class of sample i: binary models predict 1 iff P(1) >= 0.5; others the
  /// first class of highest probability.
  public func predictedClass(_ i: Int) -> Int {
    if self.isBinary { return self.probability(i, 1) >= 0.5 ? 1 : 0 }
    var best = 0
    for k in 1 ..< self.classCount where self.probability(i, k) > self.probability(i, best) {
      best = k
    }
    return best
  }

  /// The probability of the predicted class.
  public func confidence(_ i: Int) -> Double { self.probability(i, self.predictedClass(i)) }

  /// The samples at `rows`, in that order (with their logits, when present).
  public func subset(_ rows: [Int]) -> Predictions {
    let k = self.classCount
    var probabilities: [Double] = []
    probabilities.reserveCapacity(rows.count * k)
    for i in rows { for c in 0 ..< k { probabilities.append(self.probability(i, c)) } }
    var logits: [Double]?
    if let all = self.logits {
      let width = all.count / max(self.count, 1)
      logits = rows.flatMap { all[($0 * width) ..< ($0 * width + width)] }
    }
    // Valid by construction: a subset of valid predictions.
    return try! Predictions(
      probabilities: probabilities,
      classCount: k,
      labels: rows.map { self.labels[$0] },
      logits: logits
    )
  }

  /// The samples whose probabilities are all finite (self when all are).
  public var finiteOnly: Predictions {
    let rows = (0 ..< self.count).filter(self.isFinite)
    return rows.count == self.count ? self : self.subset(rows)
  }

  /// Logits per sample: the model's own when given (binary: z₁ − z₀, or the one logit given;
  /// K > 2: as given); otherwise those the probabilities imply: the log-odds of P(1) (binary)
  /// or the log-probabilities (K > 2). With `clip`, probabilities are first clipped to
  /// [clip, 1 − clip], so every logit is finite; without, 0 and 1 imply infinite logits.
  public func logitsOrImplied(clip: Double?) -> [Double] {
    let n = self.count, k = self.classCount
    if let logits = self.logits {
      if k == 2, logits.count == 2 * n {
        return (0 ..< n).map { logits[2 * $0 + 1] - logits[2 * $0] }
      }
      return logits
    }
    return Self.impliedLogits(self.probabilities, classCount: k, clip: clip)
  }

  /// The logits probability rows imply: log-odds of class 1 (one a row) for binary, log
  /// probabilities otherwise; each probability clipped to [clip, 1 − clip] first.
  public static func impliedLogits(
    _ probabilities: [Double],
    classCount k: Int,
    clip: Double?
  ) -> [Double] {
    // Clipping bounds are hoisted: this runs in every calibration fit (one log per value).
    let (low, high) = clip.map { ($0, 1 - $0) } ?? (0, 1)
    if k == 2 {
      return (0 ..< probabilities.count / 2).map { i in
        Self.impliedLogit(probabilities[2 * i + 1], low: low, high: high)
      }
    }
    return probabilities.map { Foundation.log(min(max($0, low), high)) }
  }

  /// The logit log(p / (1 − p)) of a binary row's positive probability, `p` clipped to
  /// [low, high] first.
  @inline(__always)
  static func impliedLogit(_ p: Double, low: Double, high: Double) -> Double {
    let p = min(max(p, low), high)
    return Foundation.log(p / (1 - p))
  }
}
