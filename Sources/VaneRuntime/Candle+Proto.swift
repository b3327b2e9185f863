public import VaneFeatures
public import VaneProto
internal import VaneCore

// Conversions between the wire types and the domain types of VaneFeatures. They live with the
// adapter (and the CLI, a client, reuses them) so the domain library knows nothing of protobuf.

extension Vane_V1_Candle {
  /// The wire form of a candle.
  public init(_ candle: Candle) {
    self.init()
    self.openTime = .init(unixMilliseconds: candle.openTime)
    self.open = candle.open
    self.high = candle.high
    self.low = candle.low
    self.close = candle.close
    self.volume = candle.volume
    if let value = candle.quoteVolume { self.quoteVolume = value }
    if let value = candle.tradeCount { self.tradeCount = value }
    if let value = candle.takerBuyBaseVolume { self.takerBuyBaseVolume = value }
    if let value = candle.takerBuyQuoteVolume { self.takerBuyQuoteVolume = value }
  }
}

extension Candle {
  /// The domain candle of a wire candle (values are validated later, with the batch).
  /// - Throws: INVALID_ARGUMENT naming `field` when the open time is missing or invalid.
  public init(_ proto: Vane_V1_Candle, field: String) throws {
    guard proto.hasOpenTime else {
      throw VaneError.invalidArgument(field: "\(field).open_time", "is required")
    }
    self.init(
      openTime: try proto.openTime.unixMilliseconds(field: "\(field).open_time"),
      open: proto.open,
      high: proto.high,
      low: proto.low,
      close: proto.close,
      volume: proto.volume,
      quoteVolume: proto.hasQuoteVolume ? proto.quoteVolume : nil,
      tradeCount: proto.hasTradeCount ? proto.tradeCount : nil,
      takerBuyBaseVolume: proto.hasTakerBuyBaseVolume ? proto.takerBuyBaseVolume : nil,
      takerBuyQuoteVolume: proto.hasTakerBuyQuoteVolume ? proto.takerBuyQuoteVolume : nil
    )
  }
}

extension Vane_V1_InvalidRow {
  /// The wire form of a row problem.
  public init(_ problem: RowProblem) {
    self.init()
    self.file = problem.file
    self.line = UInt64(max(problem.line, 0))
    self.index = UInt64(max(problem.index ?? 0, 0))
    if let openTime = problem.openTime { self.openTime = .init(unixMilliseconds: openTime) }
    self.reason = .init(problem.kind)
    self.message = problem.reason
  }
}

extension Vane_V1_InvalidRowReason {
  public init(_ kind: RowProblem.Kind) {
    switch kind {
    case .parse: self = .parseError
    case .nonFinite: self = .nonFinite
    case .negative: self = .negative
    case .ohlcInconsistent: self = .ohlcInconsistent
    case .conflictingDuplicate: self = .conflictingDuplicate
    case .offGrid: self = .offGrid
    case .unfinished: self = .unspecified
    }
  }
}

extension RowProblem.Kind {
  /// The domain kind of a row a client forwarded as unparsable.
  public init(_ reason: Vane_V1_InvalidRowReason) {
    switch reason {
    case .nonFinite: self = .nonFinite
    case .negative: self = .negative
    case .ohlcInconsistent: self = .ohlcInconsistent
    case .conflictingDuplicate: self = .conflictingDuplicate
    case .offGrid: self = .offGrid
    case .parseError, .missingTime, .unspecified, .UNRECOGNIZED: self = .parse
    }
  }
}

extension ConflictPolicy {
  public init(_ proto: Vane_V1_DuplicatePolicy) throws {
    switch proto {
    case .unspecified, .failOnConflict: self = .fail
    case .keepExisting: self = .keepExisting
    case .replace: self = .replace
    case .rejectConflicts: self = .reject
    case .UNRECOGNIZED(let value):
      throw VaneError.invalidArgument(
        field: "header.options.on_duplicate",
        "unknown policy \(value)"
      )
    }
  }
}
