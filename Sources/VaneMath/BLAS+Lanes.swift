// This file is compiled twice, as `Logistic+Lanes.swift` is: by VaneMath on eight float lanes
// (AVX2) and, through a symbolic link, by VaneMathAVX512 on sixteen (AVX-512). It is written on
// the module's concrete `Logistic.Lanes`, whose loads and stores are its own (see
// `ActivationLanes`), so that no standard-library generic is instantiated here.

#if VANE_WIDE_LANES
import VaneMath
#endif

extension BLAS {
  /// y = Σ_k x[k] · (row k of A) for a single-precision A laid out by
  /// ``BLAS/rowBlocked(_:rows:columns:into:)``, on this module's lanes.
  ///
  /// Eight accumulators of `Lanes` make one pass over `8 × Lanes.scalarCount` columns: one
  /// 64-column block on eight lanes, two side by side on sixteen. Each column's sum runs over
  /// the rows in order, one fused multiply-add per row, whatever the lane width or the pass
  /// order, so both builds give the same values bit for bit.
  @inline(__always)
  static func rowCombinationOnLanes(
    _ x: UnsafePointer<Float>,
    rowBlocked a: UnsafePointer<Float>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Float>,
    descending: Bool
  ) {
    typealias V = Logistic.Lanes
    let lanes = V.laneCount, block = Self.rowBlockColumns
    let blockValues = rows * block, perBlock = block / lanes
    let blocks = columns / block, blocksPerPass = 8 / perBlock
    let passes = blocks / blocksPerPass
    // Accumulator i reads block i / perBlock of the pass, lanes (i % perBlock) · lanes on.
    @inline(__always) func offset(_ i: Int) -> Int {
      (i / perBlock) * blockValues + (i % perBlock) * lanes
    }
    let o1 = offset(1), o2 = offset(2), o3 = offset(3)
    let o4 = offset(4), o5 = offset(5), o6 = offset(6), o7 = offset(7)
    for pass in 0 ..< passes {
      let p = descending ? passes - 1 - pass : pass
      let base = a + p * blocksPerPass * blockValues
      var s0 = V(), s1 = V(), s2 = V(), s3 = V(), s4 = V(), s5 = V(), s6 = V(), s7 = V()
      for k in 0 ..< rows {
        let v = V(repeating: x[k])
        let row = base + k * block
        s0 = s0.addingProduct(v, V.load(row))
        s1 = s1.addingProduct(v, V.load(row + o1))
        s2 = s2.addingProduct(v, V.load(row + o2))
        s3 = s3.addingProduct(v, V.load(row + o3))
        s4 = s4.addingProduct(v, V.load(row + o4))
        s5 = s5.addingProduct(v, V.load(row + o5))
        s6 = s6.addingProduct(v, V.load(row + o6))
        s7 = s7.addingProduct(v, V.load(row + o7))
      }
      let out = y + p * 8 * lanes
      s0.store(out)
      s1.store(out + lanes)
      s2.store(out + 2 * lanes)
      s3.store(out + 3 * lanes)
      s4.store(out + 4 * lanes)
      s5.store(out + 5 * lanes)
      s6.store(out + 6 * lanes)
      s7.store(out + 7 * lanes)
    }
    // Whole blocks no pass took (an odd count on sixteen lanes), a group of lanes at a time.
    for b in (passes * blocksPerPass) ..< blocks {
      for group in 0 ..< perBlock {
        let start = a + b * blockValues + group * lanes
        var s = V()
        for k in 0 ..< rows { s = s.addingProduct(V(repeating: x[k]), V.load(start + k * block)) }
        s.store(y + b * block + group * lanes)
      }
    }
    // The columns past the last block: their own `[rows, columns − j]` block.
    var j = blocks * block
    let tail = a + blocks * blockValues, tailStride = columns - j
    var t = 0
    while j + lanes <= columns {
      var s = V()
      for k in 0 ..< rows {
        s = s.addingProduct(V(repeating: x[k]), V.load(tail + k * tailStride + t))
      }
      s.store(y + j)
      j += lanes
      t += lanes
    }
    while j < columns {
      var s: Float = 0
      for k in 0 ..< rows { s = s.addingProduct(x[k], tail[k * tailStride + t]) }
      y[j] = s
      j += 1
      t += 1
    }
  }
}
