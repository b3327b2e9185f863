extension BLAS {
  /// ``rowCombination(_:rowBlocked:rows:columns:into:descending:)`` for a matrix stored in half
  /// precision (laid out by ``rowBlocked(_:rows:columns:into:)`` as well): each value widened
  /// to single precision exactly, then the same fused multiply-adds in the same order, so the
  /// sums equal the single-precision kernel's on the widened matrix, bit for bit.
  ///
  /// Half the bytes of the single-precision matrix: the nearest-sample screen of a served
  /// request reads its whole sample (256 × 78 values) from caches that the round trip between
  /// two requests has mostly evicted, and that read, not its arithmetic, was its time.
  public static func rowCombination(
    _ x: UnsafePointer<Float>,
    rowBlockedHalves a: UnsafePointer<Float16>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Float>
  ) {
    typealias V = SIMD8<Float>
    typealias H = SIMD8<Float16>
    let block = Self.rowBlockColumns, blocks = columns / block
    let blockValues = rows * block, stride = MemoryLayout<H>.stride
    @inline(__always) func load(_ p: UnsafePointer<Float16>, _ offset: Int = 0) -> V {
      V(UnsafeRawPointer(p).loadUnaligned(fromByteOffset: offset, as: H.self))
    }
    for b in 0 ..< blocks {
      let base = a + b * blockValues
      var s0 = V(), s1 = V(), s2 = V(), s3 = V(), s4 = V(), s5 = V(), s6 = V(), s7 = V()
      for k in 0 ..< rows {
        let v = V(repeating: x[k])
        let row = base + k * block
        s0 = s0.addingProduct(v, load(row))
        s1 = s1.addingProduct(v, load(row, stride))
        s2 = s2.addingProduct(v, load(row, 2 * stride))
        s3 = s3.addingProduct(v, load(row, 3 * stride))
        s4 = s4.addingProduct(v, load(row, 4 * stride))
        s5 = s5.addingProduct(v, load(row, 5 * stride))
        s6 = s6.addingProduct(v, load(row, 6 * stride))
        s7 = s7.addingProduct(v, load(row, 7 * stride))
      }
      let out = UnsafeMutableRawPointer(y + b * block)
      out.storeBytes(of: s0, toByteOffset: 0, as: V.self)
      out.storeBytes(of: s1, toByteOffset: 32, as: V.self)
      out.storeBytes(of: s2, toByteOffset: 64, as: V.self)
      out.storeBytes(of: s3, toByteOffset: 96, as: V.self)
      out.storeBytes(of: s4, toByteOffset: 128, as: V.self)
      out.storeBytes(of: s5, toByteOffset: 160, as: V.self)
      out.storeBytes(of: s6, toByteOffset: 192, as: V.self)
      out.storeBytes(of: s7, toByteOffset: 224, as: V.self)
    }
    // The columns past the last block: their own `[rows, columns − j]` block.
    var j = blocks * block
    let tail = a + blocks * blockValues, tailStride = columns - j
    var t = 0
    while j + 8 <= columns {
      var s = V()
      for k in 0 ..< rows {
        s = s.addingProduct(V(repeating: x[k]), load(tail + k * tailStride + t))
      }
      UnsafeMutableRawPointer(y + j).storeBytes(of: s, as: V.self)
      j += 8
      t += 8
    }
    while j < columns {
      var s: Float = 0
      for k in 0 ..< rows { s = s.addingProduct(x[k], Float(tail[k * tailStride + t])) }
      y[j] = s
      j += 1
      t += 1
    }
  }
}
