internal import VaneCore

/// A run of missing bars between two stored ones.
public struct CandleGap: Sendable, Equatable {
  /// Open time of the first missing bar.
  public var start: Int64
  /// Open time of the bar after the last missing one.
  public var end: Int64
  public var missingBars: Int
}

/// What validating a batch of rows kept, dropped and why: the report a caller gets back.
public struct CandleValidationReport: Sendable {
  public var interval: CandleInterval
  /// Candles fit to store, ascending by open time, without duplicates.
  public var accepted: [Candle]
  /// Rows that did not parse or broke a rule, with file, line and reason.
  public var rejected: [RowProblem]
  /// Rows whose open time is off the interval's grid (reported and dropped, never snapped).
  public var offGrid: [RowProblem]
  /// Exact repeats of an earlier row, dropped.
  public var duplicates: Int
  /// The last candle, when it had not closed by `asOf` (flagged and left out).
  public var unfinished: RowProblem?
  /// Holes in the accepted series.
  public var gaps: [CandleGap]

  public var missingBars: Int { self.gaps.reduce(0) { $0 + $1.missingBars } }
}

/// Checks parsed rows the way every ingest does: prices and volumes, the interval grid,
/// duplicates, and an unfinished last bar.
public enum CandleValidator {
  /// - Parameters:
  ///   - interval: the interval the caller expects; nil infers it from the data.
  ///   - asOf: the time the data is current to (ms); a last bar closing after it is unfinished.
  /// - Throws: INVALID_ARGUMENT when the interval cannot be inferred or disagrees with the one
  ///   declared, or when two rows give different candles for the same open time (nothing from
  ///   the batch is then usable).
  public static func validate(_ file: ParsedCandleFile, interval declared: CandleInterval? = nil, asOf: Int64) throws -> CandleValidationReport {
    let interval = try Self.interval(of: file, declared: declared)
    var rejected = file.problems
    var offGrid: [RowProblem] = []
    var good: [CandleRow] = []
    good.reserveCapacity(file.rows.count)
    for row in file.rows {
      if let reason = Self.invalidity(of: row.candle) {
        rejected.append(RowProblem(file: file.name, line: row.line, reason: reason))
      } else if !interval.isOnGrid(row.candle.openTime) {
        offGrid.append(RowProblem(
          file: file.name, line: row.line,
          reason: "open time \(CandleTime.format(row.candle.openTime)) is off the \(interval.rawValue) grid"))
      } else {
        good.append(row)
      }
    }
    // Stable: equal open times keep file order, so the first occurrence wins.
    good.sort { $0.candle.openTime < $1.candle.openTime }
    var accepted: [CandleRow] = []
    accepted.reserveCapacity(good.count)
    var duplicates = 0
    for row in good {
      if let previous = accepted.last, previous.candle.openTime == row.candle.openTime {
        guard previous.candle == row.candle else {
          throw VaneError.invalidArgument(
            field: "\(file.name):\(row.line)",
            "conflicts with line \(previous.line): two different candles open at \(CandleTime.format(row.candle.openTime)); nothing from this batch was stored")
        }
        duplicates += 1
        continue
      }
      accepted.append(row)
    }
    var unfinished: RowProblem?
    if let last = accepted.last {
      let closes = last.candle.openTime + interval.milliseconds
      // A file's own close time short of the bar's end also marks a bar still forming.
      let truncated = last.closeTime.map { $0 < closes - 1000 } ?? false
      if closes > asOf || truncated {
        unfinished = RowProblem(
          file: file.name, line: last.line,
          reason: "the last candle (\(CandleTime.format(last.candle.openTime))) had not closed by the end of the data; left out")
        accepted.removeLast()
      }
    }
    var gaps: [CandleGap] = []
    for (previous, next) in zip(accepted, accepted.dropFirst()) {
      let step = next.candle.openTime - previous.candle.openTime
      if step > interval.milliseconds {
        gaps.append(CandleGap(
          start: previous.candle.openTime + interval.milliseconds, end: next.candle.openTime,
          missingBars: Int(step / interval.milliseconds) - 1))
      }
    }
    return CandleValidationReport(
      interval: interval, accepted: accepted.map(\.candle), rejected: rejected, offGrid: offGrid,
      duplicates: duplicates, unfinished: unfinished, gaps: gaps)
  }

  /// Why a candle cannot be stored, or nil.
  static func invalidity(of candle: Candle) -> String? {
    let fields = [("open", candle.open), ("high", candle.high), ("low", candle.low), ("close", candle.close), ("volume", candle.volume)]
    for (name, value) in fields {
      if !value.isFinite { return "\(name) is not finite (\(value))" }
      if value < 0 { return "\(name) is negative (\(value))" }
    }
    for (name, value) in [("quote_asset_volume", candle.quoteVolume), ("taker_buy_base_asset_volume", candle.takerBuyBaseVolume), ("taker_buy_quote_asset_volume", candle.takerBuyQuoteVolume)] {
      if let value, !value.isFinite || value < 0 { return "\(name) is \(value)" }
    }
    if candle.high < max(candle.open, candle.close) {
      return "high \(candle.high) is below max(open, close) = \(max(candle.open, candle.close))"
    }
    if candle.low > min(candle.open, candle.close) {
      return "low \(candle.low) is above min(open, close) = \(min(candle.open, candle.close))"
    }
    return nil
  }

  /// The interval: the most common step between consecutive open times among the supported
  /// intervals (off-grid rows make odd steps, which do not count), agreeing with the declared one.
  static func interval(of file: ParsedCandleFile, declared: CandleInterval?) throws -> CandleInterval {
    var counts: [CandleInterval: Int] = [:]
    var odd: Int64?
    let times = file.rows.map(\.candle.openTime).sorted()
    for (a, b) in zip(times, times.dropFirst()) where b > a {
      if let interval = CandleInterval(milliseconds: b - a) {
        counts[interval, default: 0] += 1
      } else if odd == nil {
        odd = b - a
      }
    }
    guard let (inferred, _) = counts.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key.milliseconds > $1.key.milliseconds) }) else {
      if let declared { return declared }
      if let odd {
        throw VaneError.invalidArgument(field: file.name, "the rows are \(odd / 1000) s apart, which is not a supported interval (15m, 1h, 4h, 1d)")
      }
      throw VaneError.invalidArgument(field: file.name, "too few rows to infer the interval; give it explicitly")
    }
    if let declared, declared != inferred {
      throw VaneError.invalidArgument(field: "interval", "declared \(declared.rawValue) but \(file.name) holds \(inferred.rawValue) candles")
    }
    return inferred
  }
}
