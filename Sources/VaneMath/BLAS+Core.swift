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
