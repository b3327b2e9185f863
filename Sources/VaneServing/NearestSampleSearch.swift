internal import VaneBundle
internal import VaneMath

/// The training reference's sample prepared for the dissimilarity index of served requests.
///
/// Every request measures its distance to each of the sample's rows (256 × 78 values); row by
/// row that was half of a served Predict's instructions. Here the rows' squared norms are kept,
/// so the dot products with the request's row give every row's |x|² + |y|² − 2x·y. That formula
/// rounds differently from the definition, so it only screens: the rows whose screened value is
/// within its rounding bound of the least are then measured exactly by
/// ``TrainingReference/distance(_:_:count:)``, the trainer's definition. The answer is the least
/// of the exact distances, bit for bit ``TrainingReference/nearestSampleDistance(_:)``'s.
struct NearestSampleSearch: Sendable {
  let reference: TrainingReference
  /// Σ y² of each sample row.
  let squaredNorms: [Double]
  /// The sample with its rows as columns (`width × rows`): every row's dot product with the
  /// request's is one ``BLAS/rowCombination(_:_:rows:columns:into:)``, lanes across rows and no
  /// horizontal sums (OpenBLAS's GEMV over the rows was 60 % of the screen's instructions).
  let transposed: [Double]

  /// Below this many rows the screen saves nothing: every row is measured exactly.
  static let screenedRows = 16

  init(_ reference: TrainingReference) {
    self.reference = reference
    let width = reference.columns.count, rows = reference.sampleRows
    self.squaredNorms = reference.sample.withUnsafeBufferPointer { sample in
      (0 ..< rows).map { r in
        var sum = 0.0
        for c in 0 ..< width { sum += sample[r * width + c] * sample[r * width + c] }
        return sum
      }
    }
    self.transposed = (0 ..< width * rows).map { i in
      reference.sample[(i % rows) * width + i / rows]
    }
  }

  /// The distance from a scaled row (`width` values) to the nearest sample row; infinity
  /// without a sample.
  func nearestDistance(_ row: UnsafePointer<Double>) -> Double {
    let width = self.reference.columns.count, rows = self.reference.sampleRows
    guard rows >= Self.screenedRows, width > 0 else {
      return self.reference.nearestSampleDistance(row)
    }
    var queryNorm = 0.0
    for c in 0 ..< width { queryNorm += row[c] * row[c] }
    // |computed − exact| for one row is at most about (2·width + 9)·u·(|x|² + |y|²) (the dot
    // product's and the norms' rounding, then three additions), in whatever order the products
    // are summed, fused or not; twice that, with u = 2⁻⁵³, keeps a margin.
    let relativeBound = Double(4 * width + 20) * Double.ulpOfOne / 2
    // Products below the normal range round absolutely (up to half the least subnormal each).
    let absoluteBound = Double(4 * width + 20) * Double.leastNonzeroMagnitude
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: rows) { dots in
      self.reference.sample.withUnsafeBufferPointer { sample in
        self.transposed.withUnsafeBufferPointer { transposed in
          BLAS.rowCombination(
            row,
            transposed.baseAddress!,
            rows: width,
            columns: rows,
            into: dots.baseAddress!
          )
        }
        // Each row's screened value less its bound (kept in place of its dot product), and the
        // least any row's exact squared distance can be above: the smallest screened value
        // plus its bound. x − x is 0 for a finite x and NaN otherwise, so `check` stays 0
        // exactly when every value is finite (no branch per row).
        var ceiling = Double.infinity, check = 0.0
        self.squaredNorms.withUnsafeBufferPointer { squaredNorms in
          for r in 0 ..< rows {
            let norms = queryNorm + squaredNorms[r]
            let screened = norms - 2 * dots[r]
            let bound = relativeBound * norms + absoluteBound
            let high = screened + bound, low = screened - bound
            ceiling = min(ceiling, high)
            dots[r] = low
            check += (high - high) + (low - low)
          }
        }
        // Overflow or a non-finite input: a row the screen cannot bound might be the nearest,
        // so it proves nothing; measure every row.
        guard check == 0 else { return self.reference.nearestSampleDistance(row) }
        var nearest = Double.infinity
        // A row whose exact squared distance may be at most the ceiling could be the nearest.
        for r in 0 ..< rows where dots[r] <= ceiling {
          nearest = min(
            nearest,
            TrainingReference.distance(row, sample.baseAddress! + r * width, count: width)
          )
        }
        return nearest
      }
    }
  }
}
