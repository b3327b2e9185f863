internal import CBLAS

/// OpenBLAS, configured for this machine's services.
public enum BLAS {
  /// Sets how many threads OpenBLAS uses. gRPC's threads compete for the same cores, so each
  /// service sets this explicitly rather than letting OpenBLAS take every core.
  public static func setThreadCount(_ count: Int) {
    openblas_set_num_threads(Int32(max(1, count)))
  }

  /// The number of threads OpenBLAS will use.
  public static var threadCount: Int {
    Int(openblas_get_num_threads())
  }

  /// y ← αx + y, for equal-length vectors.
  public static func axpy(_ alpha: Double, _ x: [Double], _ y: inout [Double]) {
    precondition(x.count == y.count, "axpy: x has \(x.count) elements, y has \(y.count)")
    cblas_daxpy(Int32(x.count), alpha, x, 1, &y, 1)
  }

  /// The dot product of equal-length vectors.
  public static func dot(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count, "dot: x has \(x.count) elements, y has \(y.count)")
    return cblas_ddot(Int32(x.count), x, 1, y, 1)
  }

  /// C ← A·B for row-major matrices: A is m×k, B is k×n; returns C (m×n).
  public static func matmul(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
    precondition(a.count == m * k && b.count == k * n, "matmul: shapes do not match the data")
    var c = [Double](repeating: 0, count: m * n)
    // One column: a matrix-vector product (GEMM's packing costs more than it saves there).
    if n == 1 {
      cblas_dgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), 1, a, Int32(k), b, 1, 0, &c, 1)
      return c
    }
    cblas_dgemm(
      CblasRowMajor,
      CblasNoTrans,
      CblasNoTrans,
      Int32(m),
      Int32(n),
      Int32(k),
      1,
      a,
      Int32(k),
      b,
      Int32(n),
      0,
      &c,
      Int32(n)
    )
    return c
  }

  /// C ← Aᵀ·B for row-major matrices: A is m×k, B is m×n; returns C (k×n).
  public static func matmulTransposedA(
    _ a: [Double],
    _ b: [Double],
    m: Int,
    k: Int,
    n: Int
  ) -> [Double] {
    precondition(
      a.count == m * k && b.count == m * n,
      "matmulTransposedA: shapes do not match the data"
    )
    var c = [Double](repeating: 0, count: k * n)
    if n == 1 {
      cblas_dgemv(CblasRowMajor, CblasTrans, Int32(m), Int32(k), 1, a, Int32(k), b, 1, 0, &c, 1)
      return c
    }
    cblas_dgemm(
      CblasRowMajor,
      CblasTrans,
      CblasNoTrans,
      Int32(k),
      Int32(n),
      Int32(m),
      1,
      a,
      Int32(k),
      b,
      Int32(n),
      0,
      &c,
      Int32(n)
    )
    return c
  }

  /// C ← A·Bᵀ for row-major matrices: A is m×k, B is n×k; returns C (m×n).
  public static func matmulTransposedB(
    _ a: [Double],
    _ b: [Double],
    m: Int,
    k: Int,
    n: Int
  ) -> [Double] {
    precondition(
      a.count == m * k && b.count == n * k,
      "matmulTransposedB: shapes do not match the data"
    )
    var c = [Double](repeating: 0, count: m * n)
    cblas_dgemm(
      CblasRowMajor,
      CblasNoTrans,
      CblasTrans,
      Int32(m),
      Int32(n),
      Int32(k),
      1,
      a,
      Int32(k),
      b,
      Int32(k),
      0,
      &c,
      Int32(n)
    )
    return c
  }
}
