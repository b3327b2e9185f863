public import VaneMath

// VaneMath's `Logistic+Lanes.swift` (linked here) on sixteen lanes, under this module's
// AVX-512 target: every lane computes exactly what the eight-lane AVX2 build computes, so the
// results are equal bit for bit.
extension Logistic {
  typealias Lanes = SIMD16<Float>
  typealias LaneBits = SIMD16<UInt32>
  typealias LaneIntegers = SIMD16<Int32>
}

/// VaneMath's vector kernels compiled for AVX-512 (sixteen float lanes, 32 registers). Call
/// them only where ``CPUFeatures/avx512`` is true: on any other CPU they stop the process with
/// an illegal instruction. Swift has no per-function target attribute, so the wide build is a
/// module of its own; only these non-generic entry points leave it, never inlined into a caller
/// (which would compile them again under the caller's target).
public enum LogisticAVX512 {
  /// ``Logistic/lstmCell(gates:bias:hidden:previousCell:cell:cellTanh:output:order:)`` on
  /// sixteen lanes.
  @inline(never)
  public static func lstmCell(
    gates: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>,
    hidden: Int,
    previousCell: UnsafePointer<Float>,
    cell: UnsafeMutablePointer<Float>,
    cellTanh: UnsafeMutablePointer<Float>,
    output: UnsafeMutablePointer<Float>,
    order: Logistic.LSTMGateOrder,
    keepingActivations: Bool = true
  ) {
    Logistic.lstmCell(
      gates: gates,
      bias: bias,
      hidden: hidden,
      previousCell: previousCell,
      cell: cell,
      cellTanh: cellTanh,
      output: output,
      order: order,
      keepingActivations: keepingActivations,
      lanes: SIMD16<Float>.self
    )
  }
}

/// VaneMath's single-precision BLAS kernels on sixteen lanes, with the same call rules as
/// ``LogisticAVX512``: only where ``CPUFeatures/avx512`` is true.
public enum BLASAVX512 {
  /// ``BLAS/rowCombination(_:rowBlocked:rows:columns:into:descending:)`` on sixteen lanes: two
  /// 64-column blocks in each pass, equal to the eight-lane build bit for bit.
  @inline(never)
  public static func rowCombination(
    _ x: UnsafePointer<Float>,
    rowBlocked a: UnsafePointer<Float>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Float>,
    descending: Bool = false
  ) {
    BLAS.rowCombinationOnLanes(
      x,
      rowBlocked: a,
      rows: rows,
      columns: columns,
      into: y,
      descending: descending
    )
  }
}
