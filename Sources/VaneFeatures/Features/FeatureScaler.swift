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
  }

  public var method: Method
  public var columns: [String]
  public var center: [Double]
  public var scale: [Double]
  /// Rows the fit used.
  public var fittedRows: Int

  /// Fits on the rows of a row-major matrix (`values.count == rows × columns.count`), skipping
  /// non-finite values per column. A column with zero spread (or no finite values) gets scale 1
  /// so it never divides by zero; `scaled[c] == false` keeps it as is.
  public static func fit(
    method: Method,
    columns: [String],
    scaled: [Bool],
    values: [Double],
    rows: Int
  ) -> FeatureScaler {
    precondition(values.count == rows * columns.count && scaled.count == columns.count)
    var center = [Double](repeating: 0, count: columns.count)
    var scale = [Double](repeating: 1, count: columns.count)
    var column = [Double]()
    column.reserveCapacity(rows)
    for c in columns.indices where scaled[c] {
      column.removeAll(keepingCapacity: true)
      for r in 0 ..< rows {
        let value = values[r * columns.count + c]
        if value.isFinite { column.append(value) }
      }
      guard !column.isEmpty else { continue }
      let spread: Double
      switch method {
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
      fittedRows: rows
    )
  }

  /// One row scaled.
  public func transform(row: [Double]) -> [Double] {
    precondition(row.count == self.columns.count)
    return row.indices.map { (row[$0] - self.center[$0]) / self.scale[$0] }
  }

  /// A row-major batch scaled; equal to scaling each row on its own.
  public func transform(batch values: [Double]) -> [Double] {
    let width = self.columns.count
    precondition(values.count % max(width, 1) == 0)
    var out = values
    out.withUnsafeMutableBufferPointer { out in
      for start in stride(from: 0, to: out.count, by: width) {
        for c in 0 ..< width { out[start + c] = (out[start + c] - self.center[c]) / self.scale[c] }
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
    var center: [Double] = [], scale: [Double] = []
    for column in wanted {
      guard let i = index[column] else { return nil }
      center.append(self.center[i])
      scale.append(self.scale[i])
    }
    return FeatureScaler(
      method: self.method,
      columns: wanted,
      center: center,
      scale: scale,
      fittedRows: self.fittedRows
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
      scaler.scale.allSatisfy({ $0.isFinite && $0 != 0 }), scaler.center.allSatisfy(\.isFinite)
    else {
      throw DecodingError.dataCorrupted(
        .init(
          codingPath: [],
          debugDescription:
            "scaler: center and scale must have one finite value per column, scale non-zero"
        )
      )
    }
    return scaler
  }
}
