public import Foundation
internal import VaneCore

/// Per-column affine scaling, x' = (x - center) / scale, fitted on a training window only and
/// stored in the model bundle. Columns a feature set marks unscaled keep center 0, scale 1.
public struct FeatureScaler: Sendable, Equatable, Codable {
  public enum Method: String, Sendable, Codable {
    /// Center = mean, scale = population standard deviation.
    case standard
    /// Center = median, scale = interquartile range (75th − 25th percentile, linear
    /// interpolation between order statistics), robust to the fat tails of returns.
    case robust
    /// Center 0, scale 1: no scaling, a scaler kept for its ``FeatureScaler/impute`` values.
    case identity
  }

  public var method: Method
  public var columns: [String]
  public var center: [Double]
  public var scale: [Double]
  /// Rows the fit used.
  public var fittedRows: Int
  /// Raw values that replace a missing (non-finite) input before scaling, per column: the fit
  /// rows' mean (standard, identity) or median (robust) of its finite values. nil: missing values
  /// stay NaN (the bundle was trained with `missing: exclude` or `native`).
  public var impute: [Double]?

  /// Fits on the rows of a row-major matrix (`values.count == rows × columns.count`), skipping
  /// non-finite values per column. A column with zero spread (or no finite values) gets scale 1
  /// so it never divides by zero; `scaled[c] == false` keeps it as is. With `impute`, each
  /// column's replacement for missing values is its mean (median for robust) over the rows.
  public static func fit(
    method: Method,
    columns: [String],
    scaled: [Bool],
    values: [Double],
    rows: Int,
    impute: Bool = false
  ) -> FeatureScaler {
    precondition(values.count == rows * columns.count && scaled.count == columns.count)
    var center = [Double](repeating: 0, count: columns.count)
    var scale = [Double](repeating: 1, count: columns.count)
    var column = [Double]()
    column.reserveCapacity(rows)
    var fill = [Double](repeating: 0, count: columns.count)
    for c in columns.indices where scaled[c] || impute {
      column.removeAll(keepingCapacity: true)
      for r in 0 ..< rows {
        let value = values[r * columns.count + c]
        if value.isFinite { column.append(value) }
      }
      guard !column.isEmpty else { continue }
      if impute {
        // Unscaled columns and the identity method have no center to reuse.
        if method == .robust {
          column.sort()
          fill[c] = Statistics.quantile(sorted: column, 0.5)
        } else {
          fill[c] = column.reduce(0, +) / Double(column.count)
        }
      }
      guard scaled[c], method != .identity else { continue }
      let spread: Double
      switch method {
      case .identity: continue
      case .standard:
        // Two passes: the mean first, then squared deviations (no cancellation).
        let mean = column.reduce(0, +) / Double(column.count)
        center[c] = mean
        spread = (column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count))
          .squareRoot()
      case .robust:
        column.sort()
        center[c] = Statistics.quantile(sorted: column, 0.5)
        spread =
          Statistics.quantile(sorted: column, 0.75) - Statistics.quantile(sorted: column, 0.25)
      }
      scale[c] = spread > 0 && spread.isFinite ? spread : 1
    }
    return FeatureScaler(
      method: method,
      columns: columns,
      center: center,
      scale: scale,
      fittedRows: rows,
      impute: impute ? fill : nil
    )
  }

  /// One row scaled (missing values imputed first when the scaler imputes).
  public func transform(row: [Double]) -> [Double] {
    precondition(row.count == self.columns.count)
    return self.transform(batch: row)
  }

  /// A row-major batch scaled; equal to scaling each row on its own.
  public func transform(batch values: [Double]) -> [Double] {
    let width = self.columns.count
    precondition(values.count % max(width, 1) == 0)
    let source = self.imputing(batch: values)
    guard !source.isEmpty else { return [] }
    // One pass over raw pointers, a row at a time: a loop the compiler vectorises (a served
    // batch of LSTM windows is half a million values).
    return [Double](unsafeUninitializedCapacity: source.count) { out, initialized in
      source.withUnsafeBufferPointer { x in
        self.center.withUnsafeBufferPointer { center in
          self.scale.withUnsafeBufferPointer { scale in
            let x = x.baseAddress!, y = out.baseAddress!
            let center = center.baseAddress!, scale = scale.baseAddress!
            for start in stride(from: 0, to: source.count, by: width) {
              for c in 0 ..< width { y[start + c] = (x[start + c] - center[c]) / scale[c] }
            }
          }
        }
      }
      initialized = source.count
    }
  }

  /// A row-major batch with each non-finite value replaced by its column's ``impute`` value
  /// (unchanged when the scaler does not impute).
  public func imputing(batch values: [Double]) -> [Double] {
    let width = self.columns.count
    precondition(values.count % max(width, 1) == 0)
    // Usually nothing is missing: then the values themselves, not a copy of them.
    guard let impute = self.impute, values.contains(where: { !$0.isFinite }) else { return values }
    var out = values
    out.withUnsafeMutableBufferPointer { out in
      for start in stride(from: 0, to: out.count, by: width) {
        for c in 0 ..< width where !out[start + c].isFinite { out[start + c] = impute[c] }
      }
    }
    return out
  }

  /// The same scaling for `wanted` columns, in that order; nil when one is not this scaler's.
  public func selecting(_ wanted: [String]) -> FeatureScaler? {
    let index = Dictionary(
      self.columns.enumerated().map { ($1, $0) },
      uniquingKeysWith: { first, _ in first }
    )
    var center: [Double] = [], scale: [Double] = [], impute: [Double] = []
    for column in wanted {
      guard let i = index[column] else { return nil }
      center.append(self.center[i])
      scale.append(self.scale[i])
      if let fill = self.impute { impute.append(fill[i]) }
    }
    return FeatureScaler(
      method: self.method,
      columns: wanted,
      center: center,
      scale: scale,
      fittedRows: self.fittedRows,
      impute: self.impute == nil ? nil : impute
    )
  }

  /// JSON for the bundle (sorted keys, so equal scalers serialise to equal bytes).
  public func json() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    return try encoder.encode(self)
  }

  /// Reads the JSON written by ``json()``, checking its shape.
  public static func decode(_ data: Data) throws -> FeatureScaler {
    let scaler = try JSONDecoder().decode(FeatureScaler.self, from: data)
    guard scaler.center.count == scaler.columns.count, scaler.scale.count == scaler.columns.count,
      scaler.scale.allSatisfy({ $0.isFinite && $0 != 0 }), scaler.center.allSatisfy(\.isFinite),
      scaler.impute.map({ $0.count == scaler.columns.count && $0.allSatisfy(\.isFinite) }) ?? true
    else {
      throw DecodingError.dataCorrupted(
        .init(
          codingPath: [],
          debugDescription:
            "scaler: center, scale (and impute) must have one finite value per column, scale non-zero"
        )
      )
    }
    return scaler
  }
}
