internal import Foundation
internal import GRPCCore
internal import SwiftProtobuf
internal import VaneCore
internal import VaneFeatures
internal import VaneProto
internal import VaneRuntime

extension FeatureSet {
  /// The feature set a request names (empty = the default).
  /// - Throws: NOT_FOUND naming the id and the sets that exist.
  static func requested(_ id: String, field: String) throws -> FeatureSet {
    guard let set = FeatureSet.named(id) else {
      throw VaneError(
        .notFound,
        "\(field): no feature set '\(id)'; this build defines \(FeatureSet.all.map(\.id).joined(separator: ", "))"
      )
    }
    return set
  }

  /// Checks that the set is defined for an interval.
  func check(_ interval: CandleInterval, field: String) throws {
    guard self.intervals.contains(interval) else {
      throw VaneError.invalidArgument(
        field: field,
        "feature set \(self.id) is defined for \(self.intervals.map(\.rawValue).joined(separator: ", ")), not \(interval.rawValue)"
      )
    }
  }
}

extension Vane_V1_FeatureSet {
  init(_ set: FeatureSet, includeColumns: Bool) {
    self.init()
    self.id = set.id
    self.sha256 = set.sha256
    self.summary = set.summary
    if includeColumns {
      self.columns = set.columns.enumerated().map { index, column in
        .with {
          $0.name = column.name
          $0.index = UInt32(index)
          $0.definition = column.definition
          $0.lookbackBars = UInt32(column.lookback)
          $0.group = column.group
          $0.scaled = column.scaled
        }
      }
    }
    self.columnCount = UInt32(set.columns.count)
    self.maxLookbackBars = UInt32(set.maxLookback)
    self.intervals = set.intervals.map(\.proto)
    self.groups = set.groups
    self.isDefault = set.id == FeatureSet.defaultID
  }
}

extension LabelSpec {
  /// The domain label spec of a request's.
  /// - Throws: INVALID_ARGUMENT naming the field.
  init(_ proto: Vane_V1_LabelSpec, field: String) throws {
    let horizons = proto.horizons.map { Int($0.bars) }
    guard !horizons.isEmpty else {
      throw VaneError.invalidArgument(field: "\(field).horizons", "give at least one horizon")
    }
    for (index, h) in horizons.enumerated() where h < 1 || h > 10_000 {
      throw VaneError.invalidArgument(
        field: "\(field).horizons[\(index)].bars",
        "must be between 1 and 10000 (got \(h))"
      )
    }
    guard Set(horizons).count == horizons.count else {
      throw VaneError.invalidArgument(field: "\(field).horizons", "horizons must be distinct")
    }
    switch proto.kind {
    case .binaryDirection:
      guard proto.holdBand == nil else {
        throw VaneError.invalidArgument(
          field: "\(field).hold_band",
          "only THREE_CLASS labels have a HOLD band"
        )
      }
      self.init(kind: .binary, horizons: horizons)
    case .threeClass:
      let band: HoldBand
      switch proto.holdBand {
      case .holdReturnThreshold(let threshold)?:
        guard threshold > 0, threshold.isFinite else {
          throw VaneError.invalidArgument(
            field: "\(field).hold_return_threshold",
            "must be a positive fraction (got \(threshold))"
          )
        }
        band = .returnThreshold(threshold)
      case .holdAtrBand(let atr)?:
        guard atr.multiple > 0, atr.multiple.isFinite else {
          throw VaneError.invalidArgument(
            field: "\(field).hold_atr_band.multiple",
            "must be positive (got \(atr.multiple))"
          )
        }
        guard atr.period <= 1000 else {
          throw VaneError.invalidArgument(field: "\(field).hold_atr_band.period", "at most 1000")
        }
        band = .atr(multiple: atr.multiple, period: atr.period == 0 ? 14 : Int(atr.period))
      case .holdVolatilityBand(let volatility)?:
        guard volatility.multiple > 0, volatility.multiple.isFinite else {
          throw VaneError.invalidArgument(
            field: "\(field).hold_volatility_band.multiple",
            "must be positive (got \(volatility.multiple))"
          )
        }
        guard volatility.window != 1, volatility.window <= 10_000 else {
          throw VaneError.invalidArgument(
            field: "\(field).hold_volatility_band.window",
            "must be between 2 and 10000"
          )
        }
        band = .volatility(
          multiple: volatility.multiple,
          window: volatility.window == 0 ? 24 : Int(volatility.window)
        )
      case nil:
        throw VaneError.invalidArgument(
          field: "\(field).hold_band",
          "THREE_CLASS labels need a HOLD band (return threshold, ATR band or volatility band)"
        )
      }
      self.init(kind: .threeClass, horizons: horizons, holdBand: band)
    case .unspecified, .UNRECOGNIZED:
      throw VaneError.invalidArgument(
        field: "\(field).kind",
        "is required: LABEL_KIND_BINARY_DIRECTION or LABEL_KIND_THREE_CLASS"
      )
    }
  }
}

extension Vane_V1_ExclusionReason {
  init(_ reason: ExclusionReason) {
    switch reason {
    case .warmup: self = .warmup
    case .gap: self = .gap
    case .missingFeature: self = .missingFeature
    case .labelUnavailable: self = .labelUnavailable
    }
  }
}

/// Requests of the feature-vector RPCs, checked the same way everywhere.
enum FeatureRequests {
  static func market(_ market: Vane_V1_Market, field: String) throws -> (String, CandleInterval) {
    try CandleStore.check(symbol: market.symbol, field: "\(field).symbol")
    return (market.symbol, try CandleInterval(market.interval, field: "\(field).interval"))
  }

  /// The wire vector of one frame row.
  static func vector(
    _ frame: FeatureFrame,
    row: Int,
    set: FeatureSet,
    includeColumns: Bool
  ) -> Vane_V1_FeatureVector {
    var vector = Vane_V1_FeatureVector()
    vector.featureSetID = set.id
    vector.featureSetHash = set.sha256
    vector.symbol = frame.symbol
    vector.interval = frame.interval.proto
    vector.asOf = .init(unixMilliseconds: frame.openTimes[row])
    if includeColumns { vector.columns = set.columnNames }
    vector.values = frame.row(row)
    vector.missingIndices = vector.values.indices.filter { !vector.values[$0].isFinite }.map {
      UInt32($0)
    }
    return vector
  }

  /// Why a row is incomplete, in words a caller can act on.
  static func incomplete(_ frame: FeatureFrame, row: Int, set: FeatureSet) -> String {
    let missing = set.columns.indices.filter { !frame.columns[$0][row].isFinite }.map {
      set.columns[$0].name
    }
    let time = CandleTime.format(frame.openTimes[row])
    let columns =
      missing.prefix(5).joined(separator: ", ")
      + (missing.count > 5 ? ", … (\(missing.count) in all)" : "")
    switch frame.status[row] {
    case .warmup:
      let stored = row + 1
      return
        "history too short at \(time): feature set \(set.id) needs \(set.maxLookback) bars of \(frame.interval.rawValue) history up to the bar, \(stored) are stored; missing: \(columns)"
    case .gap:
      return
        "a gap in the candles lies inside the lookback of \(columns) at \(time); feature set \(set.id) needs \(set.maxLookback) contiguous bars"
    case .missingFeature, .complete:
      return
        "missing values at \(time): \(columns) (a reference symbol without candles for the window, or a zero division); missing_values NATIVE or IMPUTE answers such a bar with NaN"
    }
  }
}

extension FeatureServiceImplementation {
  func featureVector(
    _ request: Vane_V1_GetFeaturesRequest,
    now: Date
  ) throws -> Vane_V1_FeatureVector {
    guard request.hasMarket else { throw VaneError.invalidArgument(field: "market", "is required") }
    let (symbol, interval) = try FeatureRequests.market(request.market, field: "market")
    let set = try FeatureSet.requested(request.featureSetID, field: "feature_set_id")
    try set.check(interval, field: "market.interval")
    let frame = try self.engine.frame(symbol: symbol, interval: interval, featureSet: set)
    guard frame.rowCount > 0 else {
      throw VaneError(.notFound, "market: no \(interval.rawValue) candles stored for \(symbol)")
    }
    let step = interval.milliseconds
    let nowMs = Int64(now.timeIntervalSince1970 * 1000)
    let row: Int
    switch request.bar.at {
    case .asOf(let asOf)?:
      let t = try asOf.unixMilliseconds(field: "bar.as_of")
      guard interval.isOnGrid(t) else {
        throw VaneError.invalidArgument(
          field: "bar.as_of",
          "\(CandleTime.format(t)) is not on the \(interval.rawValue) grid"
        )
      }
      guard let found = frame.rowIndex(openTime: t) else {
        throw VaneError(
          .notFound,
          "bar.as_of: no \(symbol) \(interval.rawValue) candle stored at \(CandleTime.format(t))"
        )
      }
      row = found
    case .knownAt(let knownAt)?:
      let t = try knownAt.unixMilliseconds(field: "bar.known_at")
      guard let found = frame.openTimes.lastIndex(where: { $0 + step <= t }) else {
        throw VaneError(
          .notFound,
          "bar.known_at: no \(symbol) \(interval.rawValue) bar had closed by \(CandleTime.format(t))"
        )
      }
      row = found
    case nil:
      guard let found = frame.openTimes.lastIndex(where: { $0 + step <= nowMs }) else {
        throw VaneError(.notFound, "market: no closed \(symbol) \(interval.rawValue) bar is stored")
      }
      row = found
    }
    if request.hasMaxStaleness {
      let limit =
        request.maxStaleness.seconds * 1000 + Int64(request.maxStaleness.nanos / 1_000_000)
      // A negative allowance would refuse every bar with a message about staleness.
      guard request.maxStaleness.seconds >= 0, request.maxStaleness.nanos >= 0,
        request.maxStaleness.nanos < 1_000_000_000
      else {
        throw VaneError.invalidArgument(
          field: "max_staleness",
          "must be a non-negative duration (got \(request.maxStaleness.seconds) s \(request.maxStaleness.nanos) ns)"
        )
      }
      let closed = frame.openTimes[row] + step
      guard nowMs - closed <= limit else {
        throw VaneError(
          .failedPrecondition,
          "max_staleness: the bar closed at \(CandleTime.format(closed)), \((nowMs - closed) / 1000) s ago, over the \(limit / 1000) s allowed"
        )
      }
    }
    let keepsMissing =
      try request.missingValues.decoded(field: "missing_values")?.keepsRows ?? false
    if frame.status[row] != .complete, !request.allowMissing,
      !(keepsMissing && frame.status[row] == .missingFeature)
    {
      throw VaneError(.failedPrecondition, FeatureRequests.incomplete(frame, row: row, set: set))
    }
    return FeatureRequests.vector(frame, row: row, set: set, includeColumns: request.includeColumns)
  }

  func dataset(_ request: Vane_V1_BuildDatasetRequest) throws -> Dataset {
    guard !request.symbols.isEmpty else {
      throw VaneError.invalidArgument(field: "symbols", "give at least one symbol")
    }
    for (index, symbol) in request.symbols.enumerated() {
      try CandleStore.check(symbol: symbol, field: "symbols[\(index)]")
    }
    guard Set(request.symbols).count == request.symbols.count else {
      throw VaneError.invalidArgument(field: "symbols", "symbols must be distinct")
    }
    let interval = try CandleInterval(request.interval, field: "interval")
    let set = try FeatureSet.requested(request.featureSetID, field: "feature_set_id")
    try set.check(interval, field: "interval")
    guard request.hasLabels else { throw VaneError.invalidArgument(field: "labels", "is required") }
    let labels = try LabelSpec(request.labels, field: "labels")
    let range =
      request.hasRange
      ? try request.range.milliseconds(field: "range") : (start: Int64.min, end: Int64.max)
    let stored = Set(
      try self.store.coverage(symbols: request.symbols, intervals: [interval], maxGaps: 0).map(
        \.symbol
      )
    )
    if let absent = request.symbols.first(where: { !stored.contains($0) }) {
      throw VaneError(.notFound, "symbols: no \(interval.rawValue) candles stored for \(absent)")
    }
    let spec = DatasetSpec(
      symbols: request.symbols,
      interval: interval,
      featureSet: set,
      labels: labels,
      from: range.start,
      to: range.end,
      restrictLabelsToRange: request.restrictLabelsToRange,
      keepIncompleteRows: request.keepIncompleteRows,
      missingValues: try request.missingValues.decoded(field: "missing_values") ?? .exclude
    )
    // The engine's series and frames: the same values GetFeatures serves, computed once per
    // store version.
    return try Dataset.build(
      spec,
      candles: { symbol in try self.engine.candles(symbol: symbol, interval: interval) },
      frames: { symbol in try self.engine.frame(symbol: symbol, interval: interval, featureSet: set)
      }
    )
  }
}

extension Vane_V1_DatasetRows {
  init(_ block: DatasetBlock, columns: Int, horizons: [Int], forwardReturns: Bool) {
    self.init()
    self.firstRowIndex = Int64(block.firstRowIndex)
    self.rowCount = UInt32(block.rowCount)
    self.columnCount = UInt32(columns)
    self.openTimeUnixMs = block.openTimes
    self.symbolIndex = block.symbolIndex
    self.features = block.features
    self.labels = horizons.enumerated().map { h, bars in
      .with {
        $0.horizonBars = UInt32(bars)
        $0.label = block.labels[h]
        $0.labelEndUnixMs = block.labelEnds[h]
        if forwardReturns { $0.forwardReturn = block.forwardReturns[h] }
      }
    }
  }
}
