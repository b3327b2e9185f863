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
    return x.allSatisfy(\.isFinite) ? x : nil
  }
}
