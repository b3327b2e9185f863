internal import VaneCore
internal import Foundation

/// Why a dataset row was left out (or, when incomplete rows are kept, why it is incomplete).
public enum ExclusionReason: String, Sendable, CaseIterable {
  case warmup, gap, missingFeature, labelUnavailable
}

/// Rows left out for one reason and symbol.
public struct ExclusionCount: Sendable, Equatable {
  public var reason: ExclusionReason
  public var symbol: String
  public var rows: Int
  public var firstOpenTime: Int64
  public var lastOpenTime: Int64
}

/// A block of dataset rows, columnar (row-major features), ready to send or write.
public struct DatasetBlock: Sendable {
  public var firstRowIndex: Int
  public var openTimes: [Int64] = []
  public var symbolIndex: [UInt32] = []
  /// rows × columns, row-major; NaN = missing.
  public var features: [Double] = []
  /// Per horizon (spec order), per row.
  public var labels: [[Int32]]
  public var labelEnds: [[Int64]]
  public var forwardReturns: [[Double]]

  public var rowCount: Int { self.openTimes.count }
}

/// What a dataset is: symbols, interval, feature set, labels and range.
public struct DatasetSpec: Sendable {
  public var symbols: [String]
  public var interval: CandleInterval
  public var featureSet: FeatureSet
  public var labels: LabelSpec
  /// Bars whose open time is in [from, to).
  public var from: Int64
  public var to: Int64
  /// Drop rows whose label resolves after `to`.
  public var restrictLabelsToRange: Bool
  /// Keep incomplete rows (NaN features, -1 labels); they are still counted per reason.
  public var keepIncompleteRows: Bool
  /// Rows whose only defect is a missing feature value (label resolved): left out
  /// (``MissingValues/exclude``) or kept with NaN.
  public var missingValues: MissingValues

  public init(
    symbols: [String],
    interval: CandleInterval,
    featureSet: FeatureSet,
    labels: LabelSpec,
    from: Int64 = .min,
    to: Int64 = .max,
    restrictLabelsToRange: Bool = false,
    keepIncompleteRows: Bool = false,
    missingValues: MissingValues = .exclude
  ) {
    self.symbols = symbols
    self.interval = interval
    self.featureSet = featureSet
    self.labels = labels
    self.from = from
    self.to = to
    self.restrictLabelsToRange = restrictLabelsToRange
    self.keepIncompleteRows = keepIncompleteRows
    self.missingValues = missingValues
  }

  /// Canonical text of the spec (part of the dataset id).
  var canonical: String {
    let band: String
    switch self.labels.holdBand {
    case .returnThreshold(let threshold)?: band = "return:\(threshold)"
    case .atr(let multiple, let period)?: band = "atr:\(multiple):\(period)"
    case .volatility(let multiple, let window)?: band = "vol:\(multiple):\(window)"
    case nil: band = "-"
    }
    return [
      "symbols=\(self.symbols.joined(separator: ","))", "interval=\(self.interval.rawValue)",
      "feature_set=\(self.featureSet.id):\(self.featureSet.sha256)",
      "labels=\(self.labels.kind.rawValue)",
      "horizons=\(self.labels.horizons.map(String.init).joined(separator: ","))", "band=\(band)",
      "from=\(self.from)", "to=\(self.to)", "restrict=\(self.restrictLabelsToRange)",
      "keep=\(self.keepIncompleteRows)",
    ].joined(separator: "\n")
      // Only a choice other than the default enters the id, so earlier datasets keep theirs.
      + (self.missingValues == .exclude ? "" : "\nmissing=\(self.missingValues.rawValue)")
  }
}

/// A dataset computed over stored candles: per-symbol feature frames and labels, and the rows
/// chosen from them in (open time, symbol) order. Rows are read out in blocks.
public struct Dataset: Sendable {
  public let spec: DatasetSpec
  public let frames: [FeatureFrame]
  public let labels: [[HorizonLabels]]
  /// Chosen rows: (symbol index, row in that symbol's frame), in (open time, symbol) order.
  public let rows: [(symbol: Int, row: Int)]
  public let exclusions: [ExclusionCount]
  /// Deterministic id: SHA-256 of the spec and a fingerprint of every candle read.
  public let id: String
  /// Upper bound on rows before exclusions.
  public let candidateRows: Int
  /// Rows with every feature and their labels: what every ``MissingValues`` choice keeps.
  public let completeRows: Int
  /// Rows whose only defect is a missing feature value (labels resolved): kept by
  /// ``MissingValues/native`` and ``MissingValues/impute``, left out by ``MissingValues/exclude``.
  public let rowsWithMissingValues: Int

  /// Computes features and labels for every symbol and picks the rows.
  /// - Parameters:
  ///   - candles: loads a symbol's stored series at the spec's interval (ascending).
  ///   - cached: a symbol's frame under `spec.featureSet` from a cache over the same candles (a
  ///     ``FeatureEngine``); nil computes it here.
  public static func build(
    _ spec: DatasetSpec,
    candles: (String) throws -> [Candle],
    frames cached: ((String) throws -> FeatureFrame)? = nil
  ) throws -> Dataset {
    var loaded: [String: [Candle]] = [:]
    func series(_ symbol: String) throws -> [Candle] {
      if let cached = loaded[symbol] { return cached }
      let value = try candles(symbol)
      loaded[symbol] = value
      return value
    }
    var frames: [FeatureFrame] = []
    var labels: [[HorizonLabels]] = []
    for symbol in spec.symbols {
      let inputs = try FeatureInputs.load(
        symbol: symbol,
        interval: spec.interval,
        featureSet: spec.featureSet,
        candles: series
      )
      frames.append(try cached?(symbol) ?? spec.featureSet.frame(inputs))
      labels.append(spec.labels.labels(inputs.candles, interval: spec.interval))
    }

    var chosen: [(symbol: Int, row: Int, time: Int64)] = []
    var exclusions: [String: ExclusionCount] = [:]
    var candidates = 0, complete = 0, withMissing = 0
    for (s, frame) in frames.enumerated() {
      for r in 0 ..< frame.rowCount {
        let t = frame.openTimes[r]
        guard t >= spec.from, t < spec.to else { continue }
        let horizons = labels[s]
        if spec.restrictLabelsToRange, horizons.contains(where: { $0.labelEnd[r] > spec.to }) {
          Self.count(&exclusions, .labelUnavailable, frame.symbol, t)
          continue
        }
        candidates += 1
        var reason: ExclusionReason?
        let unresolved = horizons.first(where: { $0.label[r] < 0 })
        switch frame.status[r] {
        case .complete:
          if let unresolved {
            reason = unresolved.blockedByGap[r] ? .gap : .labelUnavailable
          } else {
            complete += 1
          }
        case .warmup: reason = .warmup
        case .gap: reason = .gap
        case .missingFeature:
          if unresolved == nil {
            withMissing += 1
            // Kept with its NaNs: not an exclusion.
            if spec.missingValues.keepsRows {
              chosen.append((s, r, t))
              continue
            }
          }
          reason = .missingFeature
        }
        if let reason {
          Self.count(&exclusions, reason, frame.symbol, t)
          if !spec.keepIncompleteRows { continue }
        }
        chosen.append((s, r, t))
      }
    }
    chosen.sort { ($0.time, $0.symbol) < ($1.time, $1.symbol) }

    var hasher = SHA256()
    hasher.update(data: Data(spec.canonical.utf8))
    for symbol in loaded.keys.sorted() {
      hasher.update(data: Data(symbol.utf8))
      for candle in loaded[symbol]! {
        var words = [
          UInt64(bitPattern: candle.openTime), candle.open.bitPattern, candle.high.bitPattern,
          candle.low.bitPattern, candle.close.bitPattern, candle.volume.bitPattern,
        ]
        words.withUnsafeMutableBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
      }
    }
    let order: [ExclusionReason] = ExclusionReason.allCases
    return Dataset(
      spec: spec,
      frames: frames,
      labels: labels,
      rows: chosen.map { ($0.symbol, $0.row) },
      exclusions: exclusions.values.sorted {
        ($0.symbol, order.firstIndex(of: $0.reason)!) < (
          $1.symbol, order.firstIndex(of: $1.reason)!
        )
      },
      id: hasher.finalize().hexString,
      candidateRows: candidates,
      completeRows: complete,
      rowsWithMissingValues: withMissing
    )
  }

  private static func count(
    _ counts: inout [String: ExclusionCount],
    _ reason: ExclusionReason,
    _ symbol: String,
    _ t: Int64
  ) {
    let key = "\(symbol)|\(reason.rawValue)"
    if var existing = counts[key] {
      existing.rows += 1
      existing.firstOpenTime = min(existing.firstOpenTime, t)
      existing.lastOpenTime = max(existing.lastOpenTime, t)
      counts[key] = existing
    } else {
      counts[key] = ExclusionCount(
        reason: reason,
        symbol: symbol,
        rows: 1,
        firstOpenTime: t,
        lastOpenTime: t
      )
    }
  }

  /// Rows emitted, and rows left out.
  public var rowCount: Int { self.rows.count }
  public var excludedCount: Int {
    self.spec.keepIncompleteRows ? 0 : self.exclusions.reduce(0) { $0 + $1.rows }
  }

  /// Rows [range) as a block.
  public func block(_ range: Range<Int>) -> DatasetBlock {
    let horizons = self.spec.labels.horizons.count
    let width = self.spec.featureSet.columns.count
    var block = DatasetBlock(
      firstRowIndex: range.lowerBound,
      labels: Array(repeating: [], count: horizons),
      labelEnds: Array(repeating: [], count: horizons),
      forwardReturns: Array(repeating: [], count: horizons)
    )
    block.openTimes.reserveCapacity(range.count)
    block.features.reserveCapacity(range.count * width)
    for (s, r) in self.rows[range] {
      let frame = self.frames[s]
      block.openTimes.append(frame.openTimes[r])
      block.symbolIndex.append(UInt32(s))
      for c in 0 ..< width { block.features.append(frame.columns[c][r]) }
      for (h, labels) in self.labels[s].enumerated() {
        block.labels[h].append(labels.label[r])
        block.labelEnds[h].append(labels.labelEnd[r])
        block.forwardReturns[h].append(labels.forwardReturn[r])
      }
    }
    return block
  }

  /// Class counts of the emitted rows, per horizon (unresolved labels not counted).
  public var classBalance: [[Int]] {
    let classes = self.spec.labels.classes.count
    return self.spec.labels.horizons.indices.map { h in
      var counts = [Int](repeating: 0, count: classes)
      for (s, r) in self.rows {
        let label = Int(self.labels[s][h].label[r])
        if label >= 0 { counts[label] += 1 }
      }
      return counts
    }
  }
}

/// SHA-256 over emitted blocks (times, symbols, features, labels, label ends), in order.
public struct DatasetDigest: Sendable {
  private var hasher = SHA256()

  public init() {}

  public mutating func update(_ block: DatasetBlock) {
    func feed<T>(_ values: [T]) { values.withUnsafeBytes { self.hasher.update(bufferPointer: $0) } }
    feed(block.openTimes)
    feed(block.symbolIndex)
    feed(block.features.map(\.bitPattern))
    for labels in block.labels { feed(labels) }
    for ends in block.labelEnds { feed(ends) }
  }

  public func finalize() -> String {
    self.hasher.finalize().hexString
  }
}
