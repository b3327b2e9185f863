extension BLAS {
  /// The rows a nearest-neighbour screen cannot rule out, from every row's dot product with the
  /// query.
  ///
  /// For each row r, with n = `queryNorm` + `squaredNorms[r]`, the screened squared distance
  /// s = n − 2·`dots[r]` lies within b = `relativeBound`·n + `absoluteBound`·(1 + n) of the
  /// exact one. No row's exact value can be below the least s + b (the ceiling), so the rows
  /// with s − b at most the ceiling are the candidates; their indices go to `candidates` in
  /// ascending order.
  ///
  /// Four rows a step, each with the same operations in the same order as one row alone (no
  /// fused multiply-adds), so the candidates are those of a row-by-row loop.
  ///
  /// - Returns: how many candidates were written, or nil when some row's values are not finite
  ///   (an overflow or a non-finite query): the screen then bounds nothing.
  public static func screenCandidates(
    queryNorm: Double,
    squaredNorms: UnsafePointer<Double>,
    dots: UnsafePointer<Float>,
    rows: Int,
    relativeBound: Double,
    absoluteBound: Double,
    lows: UnsafeMutablePointer<Double>,
    candidates: UnsafeMutablePointer<Int32>
  ) -> Int? {
    typealias V = SIMD4<Double>
    let q = V(repeating: queryNorm), relative = V(repeating: relativeBound)
    let absolute = V(repeating: absoluteBound), one = V(repeating: 1), two = V(repeating: 2)
    // x − x is 0 for a finite x and NaN otherwise: `check` stays 0 exactly when every value is
    // finite, with no branch per row.
    var ceiling4 = V(repeating: .infinity), check4 = V()
    var r = 0
    while r + 4 <= rows {
      let norms = q + UnsafeRawPointer(squaredNorms + r).loadUnaligned(as: V.self)
      let dot = V(UnsafeRawPointer(dots + r).loadUnaligned(as: SIMD4<Float>.self))
      let screened = norms - two * dot
      let bound = relative * norms + absolute * (one + norms)
      let high = screened + bound, low = screened - bound
      ceiling4 = ceiling4.replacing(with: high, where: high .< ceiling4)
      UnsafeMutableRawPointer(lows + r).storeBytes(of: low, as: V.self)
      check4 += (high - high) + (low - low)
      r += 4
    }
    var ceiling = ceiling4.min(), check = check4.sum()
    while r < rows {
      let norms = queryNorm + squaredNorms[r]
      let screened = norms - 2 * Double(dots[r])
      let bound = relativeBound * norms + absoluteBound * (1 + norms)
      let high = screened + bound, low = screened - bound
      if high < ceiling { ceiling = high }
      lows[r] = low
      check += (high - high) + (low - low)
      r += 1
    }
    guard check == 0 else { return nil }
    var count = 0
    r = 0
    let ceilings = V(repeating: ceiling)
    while r + 4 <= rows {
      let low = UnsafeRawPointer(lows + r).loadUnaligned(as: V.self)
      if any(low .<= ceilings) {
        for i in 0 ..< 4 where low[i] <= ceiling {
          candidates[count] = Int32(r + i)
          count += 1
        }
      }
      r += 4
    }
    while r < rows {
      if lows[r] <= ceiling {
        candidates[count] = Int32(r)
        count += 1
      }
      r += 1
    }
    return count
  }
}

extension BLAS {
  /// The z scores |x − mean| / std of a row's finite values, four columns a step: the largest
  /// (0 when there is none) and whether any is above `bound`. A column whose mean or standard
  /// deviation is NaN has a NaN z, which is neither.
  ///
  /// Each z is the one a column-by-column loop computes (the same subtraction and division),
  /// and the largest of them does not depend on the order they are compared in.
  public static func largestZ(
    _ x: UnsafePointer<Double>,
    means: UnsafePointer<Double>,
    deviations: UnsafePointer<Double>,
    count: Int,
    bound: Double
  ) -> (largest: Double, above: Bool) {
    typealias V = SIMD4<Double>
    let bounds = V(repeating: bound), zero = V()
    var largest4 = V(), above4 = SIMDMask<SIMD4<Int64>>()
    var c = 0
    while c + 4 <= count {
      let value = UnsafeRawPointer(x + c).loadUnaligned(as: V.self)
      let mean = UnsafeRawPointer(means + c).loadUnaligned(as: V.self)
      let deviation = UnsafeRawPointer(deviations + c).loadUnaligned(as: V.self)
      let difference = value - mean
      // |d|: a zero keeps its sign, which no comparison below can see.
      let z = difference.replacing(with: -difference, where: difference .< zero) / deviation
      // x − x is 0 exactly for a finite x.
      let finite = (value - value) .== zero
      largest4 = largest4.replacing(with: z, where: finite .& (z .> largest4))
      above4 = above4 .| (finite .& (z .> bounds))
      c += 4
    }
    var largest = largest4.max(), above = any(above4)
    while c < count {
      if x[c].isFinite {
        let z = abs(x[c] - means[c]) / deviations[c]
        if z > largest { largest = z }
        if z > bound { above = true }
      }
      c += 1
    }
    return (largest, above)
  }
}
