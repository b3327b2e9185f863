internal import CBLAS

extension BLAS {
  /// Solves A·x = b for a symmetric positive-definite n×n matrix A (either storage order: it is
  /// symmetric) by a Cholesky factorisation (LAPACK dpotrf on OpenBLAS) and two triangular
  /// solves. Returns nil when A is not positive definite (to rounding).
  public static func choleskySolve(_ a: [Double], n: Int, _ b: [Double]) -> [Double]? {
    precondition(a.count == n * n && b.count == n, "choleskySolve: shapes do not match n = \(n)")
    guard n > 0 else { return [] }
    var factor = a
    var size = Int32(n), info: Int32 = 0
    // Column-major lower factor L (A = L·Lᵀ).
    dpotrf_("L", &size, &factor, &size, &info)
    guard info == 0 else { return nil }
    var x = b
    cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, size, factor, size, &x, 1)
    cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, size, factor, size, &x, 1)
    return x.allSatisfy { $0.isFinite } ? x : nil
  }
}

extension BLAS {
  /// AᵀA for a row-major m×k matrix A: the k×k Gram matrix (symmetric, both triangles filled),
  /// through one SYRK (half a GEMM's work).
  public static func gram(_ a: [Double], m: Int, k: Int) -> [Double] {
    precondition(a.count == m * k, "gram: \(a.count) values for \(m)×\(k)")
    var c = [Double](repeating: 0, count: k * k)
    cblas_dsyrk(
      CblasRowMajor,
      CblasUpper,
      CblasTrans,
      Int32(k),
      Int32(m),
      1,
      a,
      Int32(k),
      0,
      &c,
      Int32(k)
    )
    for i in 0 ..< k { for j in 0 ..< i { c[i * k + j] = c[j * k + i] } }
    return c
  }
}
