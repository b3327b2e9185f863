internal import CBLAS

extension BLAS {
  /// The kernel set ("core") OpenBLAS runs: its own detection, or `OPENBLAS_CORETYPE` when that
  /// was set before the library loaded.
  public static var coreName: String {
    guard let name = openblas_get_corename() else { return "unknown" }
    return String(cString: name)
  }

  /// Where the core in use came from, for `vane version` and the benchmarks' headers.
  public enum CoreOrigin: Sendable, Equatable {
    /// OpenBLAS's own detection.
    case detected
    /// `OPENBLAS_CORETYPE`, set by whoever started the process.
    case requested
    /// Chosen by Vane for this CPU because OpenBLAS's detection fell back to a generic core.
    case selected(detected: String)
  }

  /// What to do about OpenBLAS's kernel choice before it initialises.
  public enum CoreChoice: Sendable, Equatable {
    /// Leave it: an explicit request, or a detection that already uses this CPU's vectors.
    case keep
    /// Restart with `OPENBLAS_CORETYPE` set to this core.
    case select(String)
  }

  /// The cores of Debian's OpenBLAS (0.3.21) that use 256-bit FMA kernels or wider. Any other
  /// name on a CPU with AVX2 means OpenBLAS did not recognise the CPU and fell back (to
  /// `Prescott` for an unknown Intel model).
  static let vectorCores: Set<String> = [
    "haswell", "zen", "skylakex", "cooperlake", "sapphirerapids",
  ]

  /// Chooses the core for a CPU whose OpenBLAS detection reported `detected`: an explicit
  /// `OPENBLAS_CORETYPE` always wins (OpenBLAS reads even an empty one); a detection that is already a vector core is kept; a
  /// generic one on a CPU with AVX-512 or AVX2 is replaced by the matching core.
  public static func chooseCore(
    detected: String,
    cpu: CPUFeatures,
    requested: String?
  ) -> CoreChoice {
    if requested != nil { return .keep }
    if vectorCores.contains(detected.lowercased()) { return .keep }
    if cpu.avx512 { return .select(cpu.avx512BF16 ? "Cooperlake" : "SkylakeX") }
    if cpu.avx2 { return .select(cpu.vendor == "AuthenticAMD" ? "Zen" : "Haswell") }
    return .keep
  }
}

extension BLAS {
  /// The columns of one block of the single-precision
  /// ``rowCombination(_:rowBlocked:rows:columns:into:descending:)``: eight accumulators of eight
  /// lanes.
  public static let rowBlockColumns = 64

  /// Lays out a row-major `[rows, columns]` matrix for
  /// ``rowCombination(_:rowBlocked:rows:columns:into:descending:)``: each block of
  /// ``rowBlockColumns`` columns with its rows one after another, then the remaining columns
  /// the same way; as many values as `a`.
  public static func rowBlocked<Element>(
    _ a: UnsafePointer<Element>,
    rows: Int,
    columns: Int,
    into out: UnsafeMutablePointer<Element>
  ) {
    let width = Self.rowBlockColumns, blocks = columns / width
    let rest = columns - blocks * width
    for k in 0 ..< rows {
      for j in 0 ..< columns {
        let block = j / width
        out[
          block < blocks
            ? block * rows * width + k * width + j % width
            : blocks * rows * width + k * rest + (j - blocks * width)
        ] = a[k * columns + j]
      }
    }
  }

  /// y = Σ_k x[k] · (row k of A), A being `[rows, columns]` laid out by
  /// ``rowBlocked(_:rows:columns:into:)``: the product xᵀ·A for one short vector and a wide
  /// matrix, as an LSTM's step multiplies its hidden state by the transposed recurrent weights.
  ///
  /// Sixty-four columns at a time in eight eight-lane accumulators, each row's slice a fused
  /// multiply-add into them: no horizontal sums, and the matrix is read once
  /// (``BLASAVX512/rowCombination(_:rowBlocked:rows:columns:into:descending:)`` takes 128 on
  /// sixteen lanes, with the same values). OpenBLAS's GEMV
  /// for this shape (256 × 64) ran at a third of what the cache delivers. A block's rows are
  /// contiguous: in the matrix's own layout they were 1 KB apart, so a block fell into a
  /// quarter of the L1 cache's sets and evicted itself.
  ///
  /// - Parameter descending: take the blocks last to first. A matrix larger than the L1 cache
  ///   streams through it; a caller that alternates directions from one product to the next
  ///   (an LSTM's steps) starts on the blocks it read last, still cached (together with the
  ///   blocked layout, 25–30 % off a 64 × 256 product). The values are the same either way.
  public static func rowCombination(
    _ x: UnsafePointer<Float>,
    rowBlocked a: UnsafePointer<Float>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Float>,
    descending: Bool = false
  ) {
    Self.rowCombinationOnLanes(
      x,
      rowBlocked: a,
      rows: rows,
      columns: columns,
      into: y,
      descending: descending
    )
  }

  /// y = Σ_k x[k] · (row k of `a`) in double precision, `a` row-major `[rows, columns]`,
  /// thirty-two columns at a time (eight four-lane accumulators fill half the sixteen AVX2
  /// registers, leaving room for the broadcast): every row's dot product with a short vector
  /// when `a` holds the rows as columns, as the nearest-sample screen of a served request
  /// takes them.
  public static func rowCombination(
    _ x: UnsafePointer<Double>,
    _ a: UnsafePointer<Double>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Double>
  ) {
    Self.rowCombination(x, a, rows: rows, columns: columns, into: y, lanes: SIMD4<Double>.self)
  }

  /// The row-major kernel: eight `Lanes` accumulators per block of columns, then one, then
  /// single columns.
  @inline(__always)
  static func rowCombination<Lanes: SIMD>(
    _ x: UnsafePointer<Lanes.Scalar>,
    _ a: UnsafePointer<Lanes.Scalar>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Lanes.Scalar>,
    lanes: Lanes.Type
  ) where Lanes.Scalar: BinaryFloatingPoint {
    let width = Lanes.scalarCount, stride = MemoryLayout<Lanes>.stride
    let blockWidth = 8 * width, blocks = columns / blockWidth
    let rowStride = columns
    for b in 0 ..< blocks {
      let base = a + b * blockWidth
      var s0 = Lanes(), s1 = Lanes(), s2 = Lanes(), s3 = Lanes()
      var s4 = Lanes(), s5 = Lanes(), s6 = Lanes(), s7 = Lanes()
      for k in 0 ..< rows {
        let v = Lanes(repeating: x[k])
        let row = UnsafeRawPointer(base + k * rowStride)
        s0 = s0.addingProduct(v, row.loadUnaligned(fromByteOffset: 0, as: Lanes.self))
        s1 = s1.addingProduct(v, row.loadUnaligned(fromByteOffset: stride, as: Lanes.self))
        s2 = s2.addingProduct(v, row.loadUnaligned(fromByteOffset: 2 * stride, as: Lanes.self))
        s3 = s3.addingProduct(v, row.loadUnaligned(fromByteOffset: 3 * stride, as: Lanes.self))
        s4 = s4.addingProduct(v, row.loadUnaligned(fromByteOffset: 4 * stride, as: Lanes.self))
        s5 = s5.addingProduct(v, row.loadUnaligned(fromByteOffset: 5 * stride, as: Lanes.self))
        s6 = s6.addingProduct(v, row.loadUnaligned(fromByteOffset: 6 * stride, as: Lanes.self))
        s7 = s7.addingProduct(v, row.loadUnaligned(fromByteOffset: 7 * stride, as: Lanes.self))
      }
      let out = UnsafeMutableRawPointer(y + b * blockWidth)
      out.storeBytes(of: s0, toByteOffset: 0, as: Lanes.self)
      out.storeBytes(of: s1, toByteOffset: stride, as: Lanes.self)
      out.storeBytes(of: s2, toByteOffset: 2 * stride, as: Lanes.self)
      out.storeBytes(of: s3, toByteOffset: 3 * stride, as: Lanes.self)
      out.storeBytes(of: s4, toByteOffset: 4 * stride, as: Lanes.self)
      out.storeBytes(of: s5, toByteOffset: 5 * stride, as: Lanes.self)
      out.storeBytes(of: s6, toByteOffset: 6 * stride, as: Lanes.self)
      out.storeBytes(of: s7, toByteOffset: 7 * stride, as: Lanes.self)
    }
    // The remaining columns.
    var j = blocks * blockWidth
    let tail = a + j, tailStride = columns
    var t = 0
    while j + width <= columns {
      var s = Lanes()
      for k in 0 ..< rows {
        s = s.addingProduct(
          Lanes(repeating: x[k]),
          UnsafeRawPointer(tail + k * tailStride + t).loadUnaligned(as: Lanes.self)
        )
      }
      UnsafeMutableRawPointer(y + j).storeBytes(of: s, as: Lanes.self)
      j += width
      t += width
    }
    while j < columns {
      var s: Lanes.Scalar = 0
      for k in 0 ..< rows { s = s.addingProduct(x[k], tail[k * tailStride + t]) }
      y[j] = s
      j += 1
      t += 1
    }
  }
}
