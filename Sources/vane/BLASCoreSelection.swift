import VaneMath
internal import Foundation

/// Puts OpenBLAS on the best kernels this CPU runs before any command starts.
///
/// OpenBLAS picks its kernels once, when the library loads (before `main`), from
/// `OPENBLAS_CORETYPE` or its own cpuid table. Debian's 0.3.21 does not know current Xeons and
/// falls back to its generic `Prescott` kernels there: every product runs 2–4× slower, silently.
/// When that happens on a CPU with AVX-512 or AVX2, and nobody set `OPENBLAS_CORETYPE`, `vane`
/// sets it to the matching core and executes itself again, so the library loads anew and reads
/// it. An explicit `OPENBLAS_CORETYPE` always wins.
enum BLASCoreSelection {
  /// OpenBLAS's own variable: read when the library loads.
  static let coreTypeVariable = "OPENBLAS_CORETYPE"
  /// The core OpenBLAS detected before Vane replaced it; inherited by the processes `vane`
  /// starts, so each can say where its core came from.
  static let detectedVariable = "VANE_BLAS_DETECTED"
  /// Set only for the re-executed process, which prints the choice once and clears it.
  static let noticeVariable = "VANE_BLAS_NOTICE"
  /// Tests only: the core name to treat as OpenBLAS's detection, so the re-execution can be
  /// exercised on a CPU that OpenBLAS does recognise.
  static let testDetectedVariable = "VANE_BLAS_TEST_DETECTED"

  /// Runs first in `main`. Does not return when it re-executes the process.
  static func apply() {
    let environment = ProcessInfo.processInfo.environment
    if environment[noticeVariable] != nil {
      unsetenv(noticeVariable)
      let detected = environment[detectedVariable] ?? "?"
      let line =
        "vane: OpenBLAS core \(BLAS.coreName) selected for this CPU "
        + "(\(CPUFeatures.current.vectorISA)); OpenBLAS detected \(detected). "
        + "Set \(coreTypeVariable) to choose another.\n"
      FileHandle.standardError.write(Data(line.utf8))
      return
    }
    let detected = environment[testDetectedVariable] ?? BLAS.coreName
    let choice = BLAS.chooseCore(
      detected: detected,
      cpu: .current,
      requested: environment[coreTypeVariable]
    )
    guard case .select(let core) = choice else { return }
    setenv(coreTypeVariable, core, 1)
    setenv(detectedVariable, detected, 1)
    setenv(noticeVariable, "1", 1)
    unsetenv(testDetectedVariable)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // Only reached when the exec failed: run on the detected kernels and say so.
    let reason = String(cString: strerror(errno))
    unsetenv(coreTypeVariable)
    unsetenv(detectedVariable)
    unsetenv(noticeVariable)
    let line =
      "vane: could not restart with \(coreTypeVariable)=\(core) (\(reason)); "
      + "running on OpenBLAS's \(detected) kernels, which are slower on this CPU.\n"
    FileHandle.standardError.write(Data(line.utf8))
  }

  /// Where the core in use came from.
  static var origin: BLAS.CoreOrigin {
    let environment = ProcessInfo.processInfo.environment
    guard let requested = environment[coreTypeVariable] else { return .detected }
    if let detected = environment[detectedVariable],
      requested.lowercased() == BLAS.coreName.lowercased()
    {
      return .selected(detected: detected)
    }
    return .requested
  }

  /// One line for `vane version` and the benchmarks' headers.
  static var summary: String {
    let core = BLAS.coreName
    let cpu = CPUFeatures.current
    switch origin {
    case .detected:
      return "BLAS core: \(core) (OpenBLAS's detection; CPU \(cpu))"
    case .requested:
      return "BLAS core: \(core) (\(coreTypeVariable); CPU \(cpu))"
    case .selected(let detected):
      return "BLAS core: \(core) (selected by vane; OpenBLAS detected \(detected); CPU \(cpu))"
    }
  }
}
