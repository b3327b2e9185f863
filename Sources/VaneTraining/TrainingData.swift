internal import VaneCore
public import VaneFeatures

/// The rows a training job learns from, in time order: one feature vector per (symbol, bar),
/// its labels for each horizon (−1 where unresolved) and when each label resolves.
public struct TrainingData: Sendable {
  public var columns: [String]
  /// Whether each column is scaled (calendar sin/cos columns are not).
  public var scaled: [Bool]
  /// `rowCount × columns.count`, row-major.
  public var features: [Double]
  /// Non-decreasing (pooled symbols share bars).
  public var openTimes: [Int64]
  /// Index into `symbols` per row.
  public var symbolIndex: [Int]
  public var symbols: [String]
  public var horizons: [Int]
  /// Per horizon, per row: class index, or −1 when the label is unavailable.
  public var labels: [[Int]]
  /// Per horizon, per row: when the label resolves (ms).
  public var labelEnds: [[Int64]]
  public var classes: [String]
  public var barMs: Int64

  public var rowCount: Int { self.openTimes.count }

  /// - Throws: INVALID_ARGUMENT naming the field when shapes disagree or times go backwards.
  public init(
    columns: [String],
    scaled: [Bool]? = nil,
    features: [Double],
    openTimes: [Int64],
    symbolIndex: [Int]? = nil,
    symbols: [String],
    horizons: [Int],
    labels: [[Int]],
    labelEnds: [[Int64]],
    classes: [String],
    barMs: Int64
  ) throws {
    let n = openTimes.count
    guard !columns.isEmpty, features.count == n * columns.count else {
      throw VaneError.invalidArgument(
        field: "features",
        "\(features.count) values for \(n) rows × \(columns.count) columns"
      )
    }
    guard !horizons.isEmpty, labels.count == horizons.count, labelEnds.count == horizons.count,
      labels.allSatisfy({ $0.count == n }), labelEnds.allSatisfy({ $0.count == n })
    else {
      throw VaneError.invalidArgument(
        field: "labels",
        "need one label and label end per row for each of \(horizons.count) horizons"
      )
    }
    guard classes.count >= 2 else {
      throw VaneError.invalidArgument(field: "classes", "need at least two")
    }
    if let bad = labels.joined().first(where: { $0 < -1 || $0 >= classes.count }) {
      throw VaneError.invalidArgument(field: "labels", "\(bad) is not a class index or −1")
    }
    if let i = openTimes.indices.dropFirst().first(where: { openTimes[$0] < openTimes[$0 - 1] }) {
      throw VaneError.invalidArgument(field: "open_times[\(i)]", "rows must be in time order")
    }
    self.columns = columns
    self.scaled = scaled ?? [Bool](repeating: true, count: columns.count)
    self.features = features
    self.openTimes = openTimes
    self.symbolIndex = symbolIndex ?? [Int](repeating: 0, count: n)
    self.symbols = symbols
    self.horizons = horizons
    self.labels = labels
    self.labelEnds = labelEnds
    self.classes = classes
    self.barMs = barMs
  }

  /// The rows' features, row-major.
  func rows(_ indices: [Int]) -> [Double] {
    let width = self.columns.count
    var out: [Double] = []
    out.reserveCapacity(indices.count * width)
    for r in indices { out += self.features[(r * width) ..< ((r + 1) * width)] }
    return out
  }

  /// For each row, the rows of the window of `length` bars ending at it (oldest first) when
  /// they are consecutive bars of the same symbol, else nil: LSTM windows never cross a gap.
  func windows(length: Int) -> [[Int]?] {
    var lastRow: [Int: Int] = [:]
    var run = [Int](repeating: 0, count: self.rowCount)
    var previous = [Int](repeating: -1, count: self.rowCount)
    for r in 0 ..< self.rowCount {
      let symbol = self.symbolIndex[r]
      if let p = lastRow[symbol], self.openTimes[r] - self.openTimes[p] == self.barMs {
        run[r] = run[p] + 1
        previous[r] = p
      } else {
        run[r] = 1
      }
      lastRow[symbol] = r
    }
    return (0 ..< self.rowCount).map { r in
      guard run[r] >= length else { return nil }
      var window = [r]
      while window.count < length { window.append(previous[window[window.count - 1]]) }
      return window.reversed()
    }
  }
}

extension TrainingData {
  /// The rows of a feature-service dataset.
  public init(dataset: Dataset) throws {
    let block = dataset.block(0 ..< dataset.rowCount)
    let set = dataset.spec.featureSet
    try self.init(
      columns: set.columnNames,
      scaled: set.columns.map(\.scaled),
      features: block.features,
      openTimes: block.openTimes,
      symbolIndex: block.symbolIndex.map(Int.init),
      symbols: dataset.spec.symbols,
      horizons: dataset.spec.labels.horizons,
      labels: block.labels.map { $0.map(Int.init) },
      labelEnds: block.labelEnds,
      classes: dataset.spec.labels.classes,
      barMs: dataset.spec.interval.milliseconds
    )
  }
}
