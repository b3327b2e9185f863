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
///
/// The dot products are taken in single precision (eight lanes a row, and half the memory of
/// doubles): their bound is wider, about 10⁻⁵ of |x|² + |y|² at 78 columns, and still leaves one
/// or two rows to measure for a request among real ones. A value past the float range makes the
/// screen prove nothing, and every row is measured.
struct NearestSampleSearch: Sendable {
  let reference: TrainingReference
  /// Σ y² of each sample row, in double.
  let squaredNorms: [Double]
  /// The sample with its rows as columns (`width × rows`), in single precision, laid out for
  /// ``BLAS/rowCombination(_:rowBlocked:rows:columns:into:descending:)``: every row's dot product
  /// with the request's is one row combination, lanes across rows and no horizontal sums.
  let transposed: AlignedFloats

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
    let columns = (0 ..< width * rows).map { i in
      Float(reference.sample[(i % rows) * width + i / rows])
    }
    self.transposed = AlignedFloats(count: width * rows) { out in
      BLAS.rowBlocked(columns, rows: width, columns: rows, into: out.baseAddress!)
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
    // The computed |x|² + |y|² − 2x·y against the exact squared distance, for one row: the
    // conversions to float and the float dot product (n products, n fused additions) are off by
    // at most about (n + 2)·u·Σ|xᵢyᵢ| ≤ (n + 2)·u·(|x|² + |y|²)/2 with u = 2⁻²⁴, twice that
    // after the doubling; the norms' double rounding adds (2n + 9)·2⁻⁵³ of the same. Twice the
    // sum keeps a margin. Values and products below float's normal range round absolutely (up
    // to 2⁻¹⁴⁹ each, in proportion to |xᵢ| + |yᵢ| ≤ 2 + xᵢ² + yᵢ²).
    let relativeBound =
      2 * (Double(width + 2) * 0x1p-24 * 1.01 + Double(2 * width + 9) * 0x1p-53)
    let absoluteBound = Double(4 * width + 16) * 0x1p-126
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: width + rows) { scratch in
      let query = scratch.baseAddress!, dots = scratch.baseAddress! + width
      for c in 0 ..< width { query[c] = Float(row[c]) }
      self.transposed.withUnsafeBufferPointer { transposed in
        BLAS.rowCombination(
          query,
          rowBlocked: transposed.baseAddress!,
          rows: width,
          columns: rows,
          into: dots
        )
      }
      return withUnsafeTemporaryAllocation(of: Double.self, capacity: rows) { lows in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: rows) { candidates in
          let count = self.squaredNorms.withUnsafeBufferPointer { squaredNorms in
            BLAS.screenCandidates(
              queryNorm: queryNorm,
              squaredNorms: squaredNorms.baseAddress!,
              dots: dots,
              rows: rows,
              relativeBound: relativeBound,
              absoluteBound: absoluteBound,
              lows: lows.baseAddress!,
              candidates: candidates.baseAddress!
            )
          }
          // Overflow or a non-finite input: a row the screen cannot bound might be the
          // nearest, so it proves nothing; measure every row.
          guard let count else { return self.reference.nearestSampleDistance(row) }
          return self.reference.sample.withUnsafeBufferPointer { sample in
            var nearest = Double.infinity
            for i in 0 ..< count {
              let r = Int(candidates[i])
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
  }
}
