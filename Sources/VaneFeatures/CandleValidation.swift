internal import VaneCore

/// A run of missing bars between two stored ones.
public struct CandleGap: Sendable, Equatable {
  /// Open time of the first missing bar.
  public var start: Int64
  /// Open time of the bar after the last missing one.
  public var end: Int64
  public var missingBars: Int
}

/// What to do with two different candles for the same open time.
public enum ConflictPolicy: String, Sendable, CaseIterable {
  /// The default: the whole batch fails and nothing from it is stored.
  case fail
  /// Keep the copy seen first (stored, or earlier in the batch); count the conflict.
  case keepExisting
  /// The later copy wins (in the batch, and over the stored one).
  case replace
  /// The later copy is an invalid row (reason ``RowProblem/Kind/conflictingDuplicate``).
  case reject
}

/// What validating a batch of rows kept, dropped and why: the report a caller gets back.
public struct CandleValidationReport: Sendable {
  public var interval: CandleInterval
  /// Rows fit to store, ascending by open time, one per open time.
  public var acceptedRows: [CandleRow]
  /// Rows that did not parse or broke a rule, with file, line and reason, in input order.
  public var rejected: [RowProblem]
  /// Rows whose open time is off the interval's grid (reported and dropped, never snapped).
  public var offGrid: [RowProblem]
  /// Repeats of an earlier row dropped (agreeing ones — see ``Candle/agrees(with:)``; their
  /// extras fill in what the first copy lacked — and conflicting ones kept out under
  /// ``ConflictPolicy/keepExisting``).
  public var duplicates: Int
  /// Duplicates whose values differed from the other copy.
  public var conflicts: Int
  /// Earlier copies overwritten by a later one under ``ConflictPolicy/replace``.
  public var replacedInBatch: Int
  /// The last candle, when it had not closed by `asOf` (flagged and left out).
  public var unfinished: RowProblem?
  /// Holes in the accepted series.
  public var gaps: [CandleGap]

  /// Candles fit to store, ascending by open time.
  public var accepted: [Candle] { self.acceptedRows.map(\.candle) }
  public var missingBars: Int { self.gaps.reduce(0) { $0 + $1.missingBars } }
}

/// Checks parsed rows the way every ingest does: prices and volumes, the interval grid,
/// duplicates, and an unfinished last bar.
public enum CandleValidator {
  /// Validates one parsed file; a conflicting duplicate fails it.
  /// - Parameters:
  ///   - interval: the interval the caller expects; nil infers it from the data.
  ///   - asOf: the time the data is current to (ms); a last bar closing after it is unfinished.
  /// - Throws: INVALID_ARGUMENT when the interval cannot be inferred or disagrees with the one
  ///   declared, or when two rows give different candles for the same open time (nothing from
  ///   the batch is then usable).
  public static func validate(
    _ file: ParsedCandleFile,
    interval declared: CandleInterval? = nil,
    asOf: Int64
  ) throws -> CandleValidationReport {
    try Self.validate(
      rows: file.rows,
      problems: file.problems,
      name: file.name,
      interval: declared,
      asOf: asOf,
      onConflict: .fail
    )
  }

  /// Validates rows from any source (files, or an ingest stream).
  /// - Parameters:
  ///   - problems: rows already found unusable upstream (parse errors); reported first.
  ///   - name: what to call the batch in errors about it as a whole.
  ///   - strict: throw INVALID_ARGUMENT on the first invalid row instead of reporting it.
  public static func validate(
    rows: [CandleRow],
    problems: [RowProblem],
    name: String,
    interval declared: CandleInterval?,
    asOf: Int64,
    onConflict: ConflictPolicy,
    strict: Bool = false
  ) throws -> CandleValidationReport {
    let interval = try Self.interval(
      of: rows.map(\.candle.openTime),
      name: name,
      declared: declared
    )
    if strict, let first = problems.first { throw Self.strictError(first) }
    var rejected = problems
    var offGrid: [RowProblem] = []
    var good: [CandleRow] = []
    good.reserveCapacity(rows.count)
    for row in rows {
      if let (kind, reason) = Self.invalidity(of: row.candle) {
        let problem = RowProblem(
          file: row.file,
          line: row.line,
          kind: kind,
          reason: reason,
          openTime: row.candle.openTime,
          index: row.index
        )
        if strict { throw Self.strictError(problem) }
        rejected.append(problem)
      } else if !interval.isOnGrid(row.candle.openTime) {
        offGrid.append(
          RowProblem(
            file: row.file,
            line: row.line,
            kind: .offGrid,
            reason:
              "open time \(CandleTime.format(row.candle.openTime)) is off the \(interval.rawValue) grid",
            openTime: row.candle.openTime,
            index: row.index
          )
        )
      } else {
        good.append(row)
      }
    }
    // Stable: equal open times keep input order, so "first" and "later" mean input order.
    good.sort { $0.candle.openTime < $1.candle.openTime }
    var accepted: [CandleRow] = []
    accepted.reserveCapacity(good.count)
    var duplicates = 0, conflicts = 0, replaced = 0
    for row in good {
      guard let previous = accepted.last, previous.candle.openTime == row.candle.openTime else {
        accepted.append(row)
        continue
      }
      if previous.candle.agrees(with: row.candle) {
        accepted[accepted.count - 1].candle = previous.candle.filled(from: row.candle)
        duplicates += 1
        continue
      }
      conflicts += 1
      switch onConflict {
      case .fail:
        throw VaneError.invalidArgument(
          field: "\(row.file):\(row.line)",
          "conflicts with line \(previous.line): two different candles open at \(CandleTime.format(row.candle.openTime)); nothing from this batch was stored"
        )
      case .keepExisting:
        duplicates += 1
      case .replace:
        accepted[accepted.count - 1] = row
        replaced += 1
      case .reject:
        let problem = RowProblem(
          file: row.file,
          line: row.line,
          kind: .conflictingDuplicate,
          reason:
            "a different candle for \(CandleTime.format(row.candle.openTime)) came first (line \(previous.line))",
          openTime: row.candle.openTime,
          index: row.index
        )
        if strict { throw Self.strictError(problem) }
        rejected.append(problem)
      }
    }
    var unfinished: RowProblem?
    if let last = accepted.last {
      let closes = last.candle.openTime + interval.milliseconds
      // A file's own close time short of the bar's end also marks a bar still forming.
      let truncated = last.closeTime.map { $0 < closes - 1000 } ?? false
      if closes > asOf || truncated {
        unfinished = RowProblem(
          file: last.file,
          line: last.line,
          kind: .unfinished,
          reason:
            "the last candle (\(CandleTime.format(last.candle.openTime))) had not closed by the end of the data; left out",
          openTime: last.candle.openTime,
          index: last.index
        )
        accepted.removeLast()
      }
    }
    return CandleValidationReport(
      interval: interval,
      acceptedRows: accepted,
      rejected: rejected,
      offGrid: offGrid,
      duplicates: duplicates,
      conflicts: conflicts,
      replacedInBatch: replaced,
      unfinished: unfinished,
      gaps: CandleGap.gaps(in: accepted.map(\.candle.openTime), interval: interval)
    )
  }

  /// The interval of a file's rows (the most common step between open times), checked
  /// against `declared` when given.
  /// - Throws: INVALID_ARGUMENT when it cannot be inferred or disagrees with `declared`.
  public static func interval(
    of file: ParsedCandleFile,
    declared: CandleInterval? = nil
  ) throws -> CandleInterval {
    try Self.interval(of: file.rows.map(\.candle.openTime), name: file.name, declared: declared)
  }

  static func strictError(_ problem: RowProblem) -> VaneError {
    VaneError.invalidArgument(
      field: "\(problem.file):\(problem.line)",
      "\(problem.reason) (strict ingest: nothing was stored)"
    )
  }

  /// Why a candle cannot be stored, or nil.
  static func invalidity(of candle: Candle) -> (RowProblem.Kind, String)? {
    let fields: [(String, Double?)] = [
      ("open", candle.open), ("high", candle.high), ("low", candle.low), ("close", candle.close),
      ("volume", candle.volume),
      ("quote_asset_volume", candle.quoteVolume),
      ("taker_buy_base_asset_volume", candle.takerBuyBaseVolume),
      ("taker_buy_quote_asset_volume", candle.takerBuyQuoteVolume),
    ]
    for case (let name, let value?) in fields {
      if !value.isFinite { return (.nonFinite, "\(name) is not finite (\(value))") }
      if value < 0 { return (.negative, "\(name) is negative (\(value))") }
    }
    // A traded price is never zero (a zero row is a placeholder or a broken export); volumes may be.
    for (name, value) in [
      ("open", candle.open), ("high", candle.high), ("low", candle.low), ("close", candle.close),
    ] where value == 0 {
      return (.negative, "\(name) is zero (prices must be positive)")
    }
    if candle.high < max(candle.open, candle.close) {
      return (
        .ohlcInconsistent,
        "high \(candle.high) is below max(open, close) = \(max(candle.open, candle.close))"
      )
    }
    if candle.low > min(candle.open, candle.close) {
      return (
        .ohlcInconsistent,
        "low \(candle.low) is above min(open, close) = \(min(candle.open, candle.close))"
      )
    }
    return nil
  }

  /// The interval: the most common step between consecutive open times among the supported
  /// intervals (off-grid rows make odd steps, which do not count), agreeing with the declared one.
  static func interval(
    of openTimes: [Int64],
    name: String,
    declared: CandleInterval?
  ) throws -> CandleInterval {
    var counts: [CandleInterval: Int] = [:]
    var odd: Int64?
    let times = openTimes.sorted()
    for (a, b) in zip(times, times.dropFirst()) where b > a {
      if let interval = CandleInterval(milliseconds: b - a) {
        counts[interval, default: 0] += 1
      } else if odd == nil {
        odd = b - a
      }
    }
    guard
      let (inferred, _) = counts.max(by: {
        $0.value < $1.value || ($0.value == $1.value && $0.key.milliseconds > $1.key.milliseconds)
      })
    else {
      if let declared { return declared }
      if let odd {
        throw VaneError.invalidArgument(
          field: name,
          "the rows are \(odd / 1000) s apart, which is not a supported interval (15m, 1h, 4h, 1d)"
        )
      }
      throw VaneError.invalidArgument(
        field: name,
        "too few rows to infer the interval; give it explicitly"
      )
    }
    if let declared, declared != inferred {
      throw VaneError.invalidArgument(
        field: "interval",
        "declared \(declared.rawValue) but \(name) holds \(inferred.rawValue) candles"
      )
    }
    return inferred
  }
}

extension CandleGap {
  /// The runs of missing bars between ascending, on-grid open times.
  static func gaps(in openTimes: [Int64], interval: CandleInterval) -> [CandleGap] {
    var gaps: [CandleGap] = []
    for (previous, next) in zip(openTimes, openTimes.dropFirst())
    where next - previous > interval.milliseconds {
      gaps.append(
        CandleGap(
          start: previous + interval.milliseconds,
          end: next,
          missingBars: Int((next - previous) / interval.milliseconds) - 1
        )
      )
    }
    return gaps
  }
}
