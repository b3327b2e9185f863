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
/// The screen reads the sample in half precision and sums in single precision (eight lanes a
/// row). Reading the sample was the screen's time, not its arithmetic: a request finds little
/// of it still cached, and half precision is a quarter of the doubles' bytes (40 KB). Its bound
/// is wider, about 10⁻³ of |x|² + |y|², and still leaves a row or a few to measure for a request
/// among real ones. A sample value past half precision's range (65504, some 6·10⁴ training
/// deviations) leaves the screen out: every row is measured. So does a request value past the
/// single-precision range, for that request.
struct NearestSampleSearch: Sendable {
  let reference: TrainingReference
  /// Σ y² of each sample row, in double.
  let squaredNorms: [Double]
  /// The sample with its rows as columns (`width × rows`), in half precision, laid out for
  /// ``BLAS/rowCombination(_:rowBlockedHalves:rows:columns:into:)``: every row's dot product
  /// with the request's is one row combination, lanes across rows and no horizontal sums. Nil
  /// when a value is past the half-precision range (or not finite): no screen.
  let transposed: [Float16]?

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
    guard
      reference.sample.allSatisfy({ abs($0) <= Double(Float16.greatestFiniteMagnitude) })
    else {
      self.transposed = nil
      return
    }
    let columns = (0 ..< width * rows).map { i in
      Float16(reference.sample[(i % rows) * width + i / rows])
    }
    self.transposed = [Float16](unsafeUninitializedCapacity: width * rows) { out, count in
      columns.withUnsafeBufferPointer { columns in
        BLAS.rowBlocked(columns.baseAddress!, rows: width, columns: rows, into: out.baseAddress!)
      }
      count = width * rows
    }
  }

  /// The distance from a scaled row (`width` values) to the nearest sample row; infinity
  /// without a sample.
  func nearestDistance(_ row: UnsafePointer<Double>) -> Double {
    let width = self.reference.columns.count, rows = self.reference.sampleRows
    guard rows >= Self.screenedRows, width > 0, let transposed = self.transposed else {
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
    //
    // The sample's half-precision values are off by |hᵢ − yᵢ| ≤ 2⁻¹¹·|yᵢ| + 2⁻²⁵ (relative in
    // half's normal range, absolute below it): the dot product by at most
    // 2⁻¹¹·Σ|xᵢyᵢ| + 2⁻²⁵·Σ|xᵢ| ≤ 2⁻¹¹·(|x|² + |y|²)/2 + 2⁻²⁵·(n + |x|²)/2, twice that after the
    // doubling; twice again for the margin, the second term within 2⁻²⁴·n·(1 + |x|² + |y|²).
    let relativeBound =
      2 * (Double(width + 2) * 0x1p-24 * 1.01 + Double(2 * width + 9) * 0x1p-53) + 0x1p-10
    let absoluteBound = Double(4 * width + 16) * 0x1p-126 + Double(width) * 0x1p-24
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: width + rows) { scratch in
      let query = scratch.baseAddress!, dots = scratch.baseAddress! + width
      for c in 0 ..< width { query[c] = Float(row[c]) }
      transposed.withUnsafeBufferPointer { transposed in
        BLAS.rowCombination(
          query,
          rowBlockedHalves: transposed.baseAddress!,
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
