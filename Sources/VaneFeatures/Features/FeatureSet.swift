internal import VaneCore
internal import Foundation

/// One column of a feature set: what it is, exactly, and how much history it needs.
public struct FeatureColumn: Sendable, Equatable {
  /// Column name, e.g. `rsi_14`.
  public var name: String
  /// Exact definition in words (formula, kernel, normalisation).
  public var definition: String
  /// Bars of history the column needs, including the current bar (worst case, for columns
  /// read from completed higher-timeframe bars).
  public var lookback: Int
  /// Group: returns, volatility, momentum, trend, volume, candle, calendar, timeframe_4h,
  /// timeframe_1d, cross_asset.
  public var group: String
  /// Whether bundle scalers standardise it (false for bounded cyclic encodings).
  public var scaled: Bool
}

/// A named, versioned list of feature columns, defined in code. Its hash covers every
/// column's definition and the computation's version, so it changes when any definition does.
public struct FeatureSet: Sendable {
  /// Id, e.g. `v1`.
  public let id: String
  /// One-paragraph summary.
  public let summary: String
  /// Columns in value order.
  public let columns: [FeatureColumn]
  /// The intervals the set is defined for.
  public let intervals: [CandleInterval]
  /// Bumped whenever the code computing the columns changes in a way that changes values
  /// without changing the words of a definition; it is part of the hash.
  let computationVersion: Int
  /// Other symbols the cross-asset columns read (empty when the set has none).
  public let referenceSymbols: [String]
  /// A stream for one market, which ``FrameBuilder`` runs over its bars.
  let makeStream: @Sendable (_ symbol: String, _ interval: CandleInterval) -> any FeatureRowStream

  /// The default feature set.
  public static let defaultID = "v1"

  /// Every feature set this build defines, ordered by id.
  public static let all: [FeatureSet] = [.v1]

  /// The feature set with this id (empty = the default), or nil.
  public static func named(_ id: String) -> FeatureSet? {
    let wanted = id.isEmpty ? Self.defaultID : id
    return Self.all.first { $0.id == wanted }
  }

  /// Longest lookback of any column, in bars.
  public var maxLookback: Int { self.columns.map(\.lookback).max() ?? 0 }

  /// Column names in value order.
  public var columnNames: [String] { self.columns.map(\.name) }

  /// Distinct groups in first-appearance order.
  public var groups: [String] {
    var seen: Set<String> = []
    return self.columns.map(\.group).filter { seen.insert($0).inserted }
  }

  /// The canonical definition: one line per column, fields separated by tabs, preceded by
  /// the id, the intervals, the reference symbols and the computation version.
  public var canonicalDefinition: String {
    var lines = [
      "feature_set\t\(self.id)", "computation\t\(self.computationVersion)",
      "intervals\t\(self.intervals.map(\.rawValue).joined(separator: ","))",
      "references\t\(self.referenceSymbols.joined(separator: ","))",
    ]
    for column in self.columns {
      lines.append(
        [
          column.name, column.group, "\(column.lookback)", column.scaled ? "scaled" : "unscaled",
          column.definition,
        ].joined(separator: "\t")
      )
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// SHA-256 (hex) of ``canonicalDefinition``.
  public var sha256: String {
    SHA256.hash(data: Data(self.canonicalDefinition.utf8)).hexString
  }

  /// Features of one market's series (see ``FeatureInputs``), one row per target bar.
  public func frame(_ inputs: FeatureInputs) -> FeatureFrame { FrameBuilder.frame(self, inputs) }
}

/// The candles a feature set reads for one target market: its own series and, for cross-asset
/// columns, the reference symbols' series at the same interval. Ascending, on the grid, gaps
/// allowed; nothing after the last target bar is ever needed.
public struct FeatureInputs: Sendable {
  public var symbol: String
  public var interval: CandleInterval
  public var candles: [Candle]
  /// Reference series by symbol (the target's own may be absent: it is taken from `candles`).
  public var references: [String: [Candle]]

  public init(
    symbol: String,
    interval: CandleInterval,
    candles: [Candle],
    references: [String: [Candle]]
  ) {
    self.symbol = symbol
    self.interval = interval
    self.candles = candles
    self.references = references
  }
}

extension FeatureInputs {
  /// What `featureSet` reads for `symbol`: the symbol's own series and every reference
  /// symbol's other than its own, each from `load`.
  public static func load(
    symbol: String,
    interval: CandleInterval,
    featureSet: FeatureSet,
    candles load: (String) throws -> [Candle]
  ) rethrows -> FeatureInputs {
    var references: [String: [Candle]] = [:]
    for reference in featureSet.referenceSymbols where reference != symbol {
      references[reference] = try load(reference)
    }
    return FeatureInputs(
      symbol: symbol,
      interval: interval,
      candles: try load(symbol),
      references: references
    )
  }
}

/// Why a row of features is not complete.
public enum RowStatus: UInt8, Sendable, Equatable {
  /// Every column has a value.
  case complete
  /// Too early in the series: a column's lookback reaches before the first stored bar.
  case warmup
  /// A missing bar inside some column's lookback window.
  case gap
  /// A value is missing for another reason: a zero division, a reference series without
  /// data for the window.
  case missingFeature
}

/// Feature values of one market's series: columnar, one row per target bar.
public struct FeatureFrame: Sendable {
  public var symbol: String
  public var interval: CandleInterval
  /// Open time of each row's bar (ms), ascending.
  public var openTimes: [Int64]
  /// `columns[c][r]`: the value of column c at row r; NaN when missing.
  public var columns: [[Double]]
  /// Per row: complete, or the first reason it is not.
  public var status: [RowStatus]

  public var rowCount: Int { self.openTimes.count }

  /// Row r's values in column order.
  public func row(_ r: Int) -> [Double] { self.columns.map { $0[r] } }

  /// The row whose bar opened at `openTime`, if any.
  public func rowIndex(openTime: Int64) -> Int? {
    var low = 0, high = self.openTimes.count
    while low < high {
      let mid = (low + high) / 2
      if self.openTimes[mid] < openTime { low = mid + 1 } else { high = mid }
    }
    return low < self.openTimes.count && self.openTimes[low] == openTime ? low : nil
  }
}
