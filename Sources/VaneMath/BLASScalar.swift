internal import CBLAS

/// A floating-point type OpenBLAS has kernels for: `Float` (the s-routines) and `Double` (the
/// d-routines). Code generic over it is specialised per type, so one training loop serves both
/// precisions.
public protocol BLASScalar: BinaryFloatingPoint, Sendable {
  /// C ← α·op(A)·op(B) + β·C on row-major matrices, op(A) m×k and op(B) k×n, where op
  /// transposes when asked; `lda`, `ldb` and `ldc` are the row strides as stored.
  static func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Self,
    a: UnsafePointer<Self>,
    lda: Int,
    b: UnsafePointer<Self>,
    ldb: Int,
    beta: Self,
    c: UnsafeMutablePointer<Self>,
    ldc: Int
  )

  /// y ← α·op(A)·x + β·y on a row-major m×n matrix A (row stride `lda`), op transposing when
  /// asked: one row times a matrix without the packing a GEMM call pays.
  static func gemv(
    transpose: Bool,
    m: Int,
    n: Int,
    alpha: Self,
    a: UnsafePointer<Self>,
    lda: Int,
    x: UnsafePointer<Self>,
    beta: Self,
    y: UnsafeMutablePointer<Self>
  )
}

extension Float: BLASScalar {
  public static func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Float,
    a: UnsafePointer<Float>,
    lda: Int,
    b: UnsafePointer<Float>,
    ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>,
    ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor,
      transposeA ? CblasTrans : CblasNoTrans,
      transposeB ? CblasTrans : CblasNoTrans,
      Int32(m),
      Int32(n),
      Int32(k),
      alpha,
      a,
      Int32(lda),
      b,
      Int32(ldb),
      beta,
      c,
      Int32(ldc)
    )
  }
}

extension Float {
  public static func gemv(
    transpose: Bool,
    m: Int,
    n: Int,
    alpha: Float,
    a: UnsafePointer<Float>,
    lda: Int,
    x: UnsafePointer<Float>,
    beta: Float,
    y: UnsafeMutablePointer<Float>
  ) {
    cblas_sgemv(
      CblasRowMajor,
      transpose ? CblasTrans : CblasNoTrans,
      Int32(m),
      Int32(n),
      alpha,
      a,
      Int32(lda),
      x,
      1,
      beta,
      y,
      1
    )
  }
}

extension Double {
  public static func gemv(
    transpose: Bool,
    m: Int,
    n: Int,
    alpha: Double,
    a: UnsafePointer<Double>,
    lda: Int,
    x: UnsafePointer<Double>,
    beta: Double,
    y: UnsafeMutablePointer<Double>
  ) {
    cblas_dgemv(
      CblasRowMajor,
      transpose ? CblasTrans : CblasNoTrans,
      Int32(m),
      Int32(n),
      alpha,
      a,
      Int32(lda),
      x,
      1,
      beta,
      y,
      1
    )
  }
}

extension Double: BLASScalar {
  public static func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Double,
    a: UnsafePointer<Double>,
    lda: Int,
    b: UnsafePointer<Double>,
    ldb: Int,
    beta: Double,
    c: UnsafeMutablePointer<Double>,
    ldc: Int
  ) {
    cblas_dgemm(
      CblasRowMajor,
      transposeA ? CblasTrans : CblasNoTrans,
      transposeB ? CblasTrans : CblasNoTrans,
      Int32(m),
      Int32(n),
      Int32(k),
      alpha,
      a,
      Int32(lda),
      b,
      Int32(ldb),
      beta,
      c,
      Int32(ldc)
    )
  }
}
