/// One market's feature frame, kept up to date as bars arrive: appended bars run through the
/// feature set's stream from the state after the last row (O(1) per bar), and a bar replaced or
/// filled in earlier sends the frame back to the latest checkpoint before it, so only the rows
/// from there on are computed again. The rows equal a frame computed from scratch, bit for bit:
/// both are the same stream over the same bars.
struct FrameBuilder: Sendable {
  /// Rows between two checkpoints: what a change far back costs to recompute, against a
  /// stream state's copy (tens of kilobytes) per interval.
  static let checkpointInterval = 1024

  let featureSet: FeatureSet
  private(set) var frame: FeatureFrame
  /// The state after the frame's last row.
  private var stream: any FeatureRowStream
  /// States after `rows` rows, at every multiple of the interval; rows 0 is the fresh stream.
  private var checkpoints: [(rows: Int, stream: any FeatureRowStream)]
  /// Position of the last row in its gap-free run (0: the first bar after a gap).
  private var position = -1
  private let higher: [Bool]

  init(featureSet: FeatureSet, symbol: String, interval: CandleInterval) {
    self.featureSet = featureSet
    self.frame = FeatureFrame(
      symbol: symbol,
      interval: interval,
      openTimes: [],
      columns: Array(repeating: [], count: featureSet.columns.count),
      status: []
    )
    self.stream = featureSet.makeStream(symbol, interval)
    self.checkpoints = [(0, self.stream)]
    self.higher = featureSet.columns.map { $0.group.hasPrefix("timeframe_") }
  }

  /// The frame of `inputs`, computed from scratch.
  static func frame(_ featureSet: FeatureSet, _ inputs: FeatureInputs) -> FeatureFrame {
    var builder = FrameBuilder(
      featureSet: featureSet,
      symbol: inputs.symbol,
      interval: inputs.interval
    )
    builder.update(inputs, changedFrom: .min)
    return builder.frame
  }

  /// Brings the frame up to `inputs`. Nothing the frame read before `changedFrom` (its own bars
  /// or a reference's) may have changed since the last update; rows from there on are computed
  /// again, and bars after the last row are appended.
  mutating func update(_ inputs: FeatureInputs, changedFrom: Int64) {
    let candles = inputs.candles
    var keep = Self.firstIndex(in: self.frame.openTimes, notBefore: changedFrom)
    keep = min(keep, candles.count)
    // The kept rows must be the candles' first bars; if not, the caller's change was wider
    // than it said, and only a full computation is right.
    if keep > 0, candles[keep - 1].openTime != self.frame.openTimes[keep - 1] { keep = 0 }
    if keep < self.frame.rowCount {
      let checkpoint = self.checkpoints.last { $0.rows <= keep } ?? self.checkpoints[0]
      self.checkpoints.removeAll { $0.rows > checkpoint.rows }
      self.stream = checkpoint.stream
      self.truncate(to: checkpoint.rows)
    }
    let start = self.frame.rowCount
    guard start < candles.count else { return }
    // Reserved only for a large extension: reserving exactly one more row on every live bar
    // would reallocate each array every time, where appends alone grow geometrically.
    let reserve = candles.count - start > 64
    if reserve {
      self.frame.openTimes.reserveCapacity(candles.count)
      self.frame.status.reserveCapacity(candles.count)
    }
    let references = FeatureReferences(inputs, symbols: self.featureSet.referenceSymbols)
    let step = inputs.interval.milliseconds
    let width = self.frame.columns.count
    let added = candles.count - start
    // New rows are written row by row into one block, then moved into the columns at once.
    var block = [Double](repeating: .nan, count: added * width)
    block.withUnsafeMutableBufferPointer { block in
      for k in 0 ..< added {
        let bar = candles[start + k]
        self.stream.next(bar, references: references)
        let row = UnsafeMutableBufferPointer(rebasing: block[k * width ..< (k + 1) * width])
        self.stream.row(into: row)
        let previous = self.frame.openTimes.last
        self.position = previous.map { bar.openTime - $0 == step } == true ? self.position + 1 : 0
        self.frame.openTimes.append(bar.openTime)
        self.frame.status.append(self.status(UnsafeBufferPointer(row), step: step))
        if self.frame.rowCount % Self.checkpointInterval == 0 {
          self.checkpoints.append((self.frame.rowCount, self.stream))
        }
      }
    }
    block.withUnsafeBufferPointer { block in
      for c in 0 ..< width {
        let values = [Double](unsafeUninitializedCapacity: added) { column, count in
          for k in 0 ..< added { column[k] = block[k * width + c] }
          count = added
        }
        if self.frame.columns[c].isEmpty {
          self.frame.columns[c] = values
        } else {
          if reserve { self.frame.columns[c].reserveCapacity(candles.count) }
          self.frame.columns[c].append(contentsOf: values)
        }
      }
    }
  }

  private mutating func truncate(to rows: Int) {
    self.frame.openTimes.removeSubrange(rows...)
    for c in self.frame.columns.indices { self.frame.columns[c].removeSubrange(rows...) }
    self.frame.status.removeSubrange(rows...)
    let step = self.frame.interval.milliseconds
    var position = rows > 0 ? 0 : -1
    var r = rows - 1
    while r > 0, self.frame.openTimes[r] - self.frame.openTimes[r - 1] == step {
      position += 1
      r -= 1
    }
    self.position = position
  }

  /// Complete, or the first reason the newest row is not: the first missing column decides.
  private func status(_ row: UnsafeBufferPointer<Double>, step: Int64) -> RowStatus {
    let times = self.frame.openTimes
    let r = times.count - 1
    for c in row.indices where !row[c].isFinite {
      let lookback = self.featureSet.columns[c].lookback
      if times[r] - times[0] < Int64(lookback - 1) * step { return .warmup }
      if self.position < lookback - 1
        || (self.higher[c] && self.higherGap(lookback: lookback, step: step))
      {
        return .gap
      }
      return .missingFeature
    }
    return .complete
  }

  /// Whether a higher-timeframe column's window (its lookback in target bars) back from the
  /// newest row holds a gap.
  private func higherGap(lookback: Int, step: Int64) -> Bool {
    let times = self.frame.openTimes
    let r = times.count - 1
    let window = Int64(lookback) * step
    let low = Self.firstIndex(in: times[..<r], notBefore: times[r] - window)
    return Int64(r - low) < window / step - 1 || self.position < r - low
  }

  /// The index of the first time at or after `time` (the count when none is).
  static func firstIndex(in times: ArraySlice<Int64>, notBefore time: Int64) -> Int {
    var low = times.startIndex, high = times.endIndex
    while low < high {
      let mid = (low + high) / 2
      if times[mid] < time { low = mid + 1 } else { high = mid }
    }
    return low
  }

  static func firstIndex(in times: [Int64], notBefore time: Int64) -> Int {
    Self.firstIndex(in: times[...], notBefore: time)
  }
}
