public import Foundation
public import VaneCore

/// What a bundle's models were trained on, for the predictor's trust checks at answer time:
/// `reports/reference.json` (named by the manifest's `reference` key).
///
/// - `data_start`, `data_end`: the first training bar's open time and the last one's close time
///   (Unix ms) — how old the model's knowledge is.
/// - `columns`: per feature column, the mean and standard deviation of its scaled training
///   values (for a z bound) and the decile distribution of its raw values (for PSI).
/// - `sample`: a fixed-size, seeded sample of scaled training rows (a missing value is 0, the
///   scaled mean, as the models read it) and their mean pairwise Euclidean distance, for the
///   dissimilarity index (distance to the nearest sample row over that mean).
/// - `scores`: per horizon and class, the decile distribution of the served model's out-of-fold
///   answer (calibrated where the bundle is calibrated), for PSI of live scores.
public struct TrainingReference: Sendable, Equatable, Codable {
  public struct Column: Sendable, Equatable, Codable {
    public var name: String
    /// Of the scaled finite training values; nil when the column never had one.
    public var mean: Double?
    public var std: Double?
    /// Of the raw finite training values.
    public var distribution: DecileDistribution?

    public init(name: String, mean: Double?, std: Double?, distribution: DecileDistribution?) {
      self.name = name
      self.mean = mean
      self.std = std
      self.distribution = distribution
    }
  }

  public struct Scores: Sendable, Equatable, Codable {
    public var horizon: Int
    /// One per class, in the bundle's class order.
    public var classes: [DecileDistribution?]

    public init(horizon: Int, classes: [DecileDistribution?]) {
      self.horizon = horizon
      self.classes = classes
    }
  }

  public static let format = "vane.reference.v1"
  /// Where the trainer writes it inside a bundle.
  public static let file = "reports/reference.json"
  /// Rows the trainer keeps in `sample`.
  public static let sampleSize = 256

  public var format: String
  public var dataStart: Int64
  public var dataEnd: Int64
  /// Training rows summarised.
  public var rows: Int
  public var columns: [Column]
  /// `sampleRows × columns.count`, row-major, scaled.
  public var sample: [Double]
  public var sampleRows: Int
  public var meanPairwiseDistance: Double
  public var scores: [Scores]

  enum CodingKeys: String, CodingKey {
    case format
    case dataStart = "data_start"
    case dataEnd = "data_end"
    case rows, columns, sample
    case sampleRows = "sample_rows"
    case
      meanPairwiseDistance = "mean_pairwise_distance"
    case scores
  }

  public init(
    dataStart: Int64,
    dataEnd: Int64,
    rows: Int,
    columns: [Column],
    sample: [Double],
    sampleRows: Int,
    meanPairwiseDistance: Double,
    scores: [Scores]
  ) {
    self.format = Self.format
    self.dataStart = dataStart
    self.dataEnd = dataEnd
    self.rows = rows
    self.columns = columns
    self.sample = sample
    self.sampleRows = sampleRows
    self.meanPairwiseDistance = meanPairwiseDistance
    self.scores = scores
  }

  /// Summarises training rows.
  /// - Parameters:
  ///   - raw: `rows × columns.count` raw feature values, row-major.
  ///   - scaled: the same rows as the models read them (scaled; NaN where missing).
  ///   - scores: per horizon, the served model's out-of-fold answers (`n × classCount`).
  public static func summarise(
    columns: [String],
    raw: [Double],
    scaled: [Double],
    rows: Int,
    dataStart: Int64,
    dataEnd: Int64,
    classCount: Int,
    scores: [(horizon: Int, probabilities: [Double])],
    seed: UInt64 = 0x7261_6e64
  ) -> TrainingReference {
    let width = columns.count
    precondition(raw.count == rows * width && scaled.count == rows * width)
    let summaries = (0 ..< width).map { c -> Column in
      let values = (0 ..< rows).map { scaled[$0 * width + c] }.filter(\.isFinite)
      let mean = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
      let std = mean.map { m in
        (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count)).squareRoot()
      }
      return Column(
        name: columns[c],
        mean: mean,
        std: std,
        distribution: DecileDistribution((0 ..< rows).map { raw[$0 * width + c] })
      )
    }
    // A seeded partial shuffle picks the sample: the same rows give the same bundle.
    var indices = Array(0 ..< rows)
    var generator = SeededRandom(seed: seed)
    let kept = min(Self.sampleSize, rows)
    for i in 0 ..< kept {
      let j = i + Int(generator.next() % UInt64(rows - i))
      indices.swapAt(i, j)
    }
    let chosen = indices.prefix(kept).sorted()
    var sample: [Double] = []
    sample.reserveCapacity(kept * width)
    for r in chosen {
      sample += scaled[(r * width) ..< ((r + 1) * width)].map { $0.isFinite ? $0 : 0 }
    }
    var total = 0.0, pairs = 0
    sample.withUnsafeBufferPointer { sample in
      for a in 0 ..< kept {
        for b in (a + 1) ..< max(a + 1, kept) {
          total += Self.distance(
            sample.baseAddress! + a * width,
            sample.baseAddress! + b * width,
            count: width
          )
          pairs += 1
        }
      }
    }
    let score = scores.map { entry in
      Scores(
        horizon: entry.horizon,
        classes: (0 ..< classCount).map { k in
          DecileDistribution(
            stride(from: k, to: entry.probabilities.count, by: classCount).map {
              entry.probabilities[$0]
            }
          )
        }
      )
    }
    return TrainingReference(
      dataStart: dataStart,
      dataEnd: dataEnd,
      rows: rows,
      columns: summaries,
      sample: sample,
      sampleRows: kept,
      meanPairwiseDistance: pairs > 0 ? total / Double(pairs) : 0,
      scores: score
    )
  }

  /// Reads and checks a reference against the bundle's columns and classes.
  /// - Throws: FAILED_PRECONDITION naming the key that is wrong.
  public static func decode(
    _ data: Data,
    columns: [String],
    classCount: Int,
    name: String
  ) throws -> TrainingReference {
    let reference = try BundleJSON.decode(
      TrainingReference.self,
      from: data,
      file: "\(name): \(Self.file)"
    )
    func fail(_ key: String, _ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(name): \(Self.file): \(key): \(reason)")
    }
    guard reference.format == Self.format else {
      throw fail("format", "'\(reference.format)' is not \(Self.format)")
    }
    guard reference.columns.map(\.name) == columns else {
      throw fail("columns", "are not the feature set's \(columns.count) columns in order")
    }
    guard reference.dataStart <= reference.dataEnd else {
      throw fail("data_end", "is before data_start")
    }
    guard reference.sampleRows >= 0, reference.sample.count == reference.sampleRows * columns.count,
      reference.sample.allSatisfy(\.isFinite)
    else {
      throw fail("sample", "needs sample_rows × \(columns.count) finite values")
    }
    guard reference.meanPairwiseDistance.isFinite, reference.meanPairwiseDistance >= 0 else {
      throw fail("mean_pairwise_distance", "must be finite and ≥ 0")
    }
    for (i, column) in reference.columns.enumerated() {
      if let std = column.std, !(std.isFinite && std >= 0) {
        throw fail("columns[\(i)].std", "must be finite and ≥ 0")
      }
      if let mean = column.mean, !mean.isFinite {
        throw fail("columns[\(i)].mean", "must be finite")
      }
      if let reason = column.distribution?.invalidity {
        throw fail("columns[\(i)].distribution", reason)
      }
    }
    for (i, entry) in reference.scores.enumerated() {
      guard entry.classes.count == classCount else {
        throw fail("scores[\(i)].classes", "needs one entry per class (\(classCount))")
      }
      for (k, distribution) in entry.classes.enumerated() {
        if let reason = distribution?.invalidity {
          throw fail("scores[\(i)].classes[\(k)]", reason)
        }
      }
    }
    return reference
  }

  /// The Euclidean distance between two rows of `count` values: the one definition the
  /// trainer's mean pairwise distance and the predictor's nearest-sample distance share.
  ///
  /// Eight partial sums (two four-lane registers) rather than one running sum, so the
  /// additions do not wait on each other: a served request measures 256 of these.
  @inline(__always)
  public static func distance(
    _ x: UnsafePointer<Double>,
    _ y: UnsafePointer<Double>,
    count: Int
  ) -> Double {
    Self.squaredDistance(x, y, count: count).squareRoot()
  }

  /// The square of ``distance(_:_:count:)``, whose root it takes.
  @inline(__always)
  static func squaredDistance(
    _ x: UnsafePointer<Double>,
    _ y: UnsafePointer<Double>,
    count: Int
  ) -> Double {
    Self.squaredDistance(x, y, count: count, below: .infinity) ?? .infinity
  }

  /// ``squaredDistance(_:_:count:)`` when it is less than `bound`; nil once a partial sum
  /// reaches `bound` (every 16 values), so that a row far from the query is given up early.
  ///
  /// Exact: every term is ≥ 0 and rounding is monotonic, so the lanes only grow, and the
  /// partial sums reduced in the final order (then the tail added) can only grow too. A row
  /// given up is never less than `bound`; a row kept has exactly the unbounded value.
  @inline(__always)
  static func squaredDistance(
    _ x: UnsafePointer<Double>,
    _ y: UnsafePointer<Double>,
    count: Int,
    below bound: Double
  ) -> Double? {
    var low = SIMD4<Double>(), high = SIMD4<Double>()
    var c = 0
    while c + 8 <= count {
      let a =
        UnsafeRawPointer(x + c).loadUnaligned(as: SIMD4<Double>.self)
        - UnsafeRawPointer(y + c).loadUnaligned(as: SIMD4<Double>.self)
      let b =
        UnsafeRawPointer(x + c + 4).loadUnaligned(as: SIMD4<Double>.self)
        - UnsafeRawPointer(y + c + 4).loadUnaligned(as: SIMD4<Double>.self)
      low += a * a
      high += b * b
      c += 8
      if c & 15 == 0 {
        let lanes = low + high
        if (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) >= bound { return nil }
      }
    }
    let lanes = low + high
    var sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    while c < count {
      let d = x[c] - y[c]
      sum += d * d
      c += 1
    }
    return sum
  }

  /// The distance from a scaled row (`width` values, none missing) to the nearest row of
  /// ``sample``; infinity without a sample.
  public func nearestSampleDistance(_ row: UnsafePointer<Double>) -> Double {
    let width = self.columns.count
    // The nearest by squared distance, one root at the end: the root is monotonic and
    // correctly rounded, so this is the least of the rows' distances exactly. A row is given
    // up as soon as its partial sum reaches the nearest so far: most rows are, after a fraction
    // of their columns (a served request measures 256 rows).
    var nearest = Double.infinity
    self.sample.withUnsafeBufferPointer { sample in
      guard let base = sample.baseAddress else { return }
      for s in 0 ..< self.sampleRows {
        if let squared = Self.squaredDistance(
          row,
          base + s * width,
          count: width,
          below: nearest
        ) {
          nearest = min(nearest, squared)
        }
      }
    }
    return nearest.squareRoot()
  }
}
