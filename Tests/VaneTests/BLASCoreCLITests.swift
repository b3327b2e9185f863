import Foundation
import Testing
import VaneMath

/// `vane` puts OpenBLAS on this CPU's vector kernels when OpenBLAS's detection falls back to a
/// generic core. The fallback itself cannot be produced on a CPU OpenBLAS knows, so these tests
/// name the detection through `VANE_BLAS_TEST_DETECTED`; the restart and OpenBLAS reading the
/// chosen core when it loads again are real.
@Suite("BLAS core selection")
struct BLASCoreCLITests {
  static let variables = ["OPENBLAS_CORETYPE", "VANE_BLAS_DETECTED", "VANE_BLAS_NOTICE"]

  @Test func genericDetectionIsReplacedOnce() async throws {
    let result = try await VaneBinary.run(
      ["version"],
      environment: ["VANE_BLAS_TEST_DETECTED": "Prescott"],
      unsetting: Self.variables
    )
    #expect(result.status == 0)
    let choice = BLAS.chooseCore(detected: "Prescott", cpu: .current, requested: nil)
    guard case .select(let core) = choice else {
      // No AVX2 here: there is nothing better than the detection to run on.
      #expect(result.stdout.contains("OpenBLAS's detection"))
      return
    }
    #expect(
      result.stdout.contains("BLAS core: \(core) (selected by vane; OpenBLAS detected Prescott")
    )
    let notices = result.stderr.split(separator: "\n").filter {
      $0.contains("selected for this CPU")
    }
    #expect(notices.count == 1, "stderr: \(result.stderr)")
    #expect(notices.first?.contains("OpenBLAS core \(core)") == true)
  }

  @Test func explicitCoreTypeWins() async throws {
    let result = try await VaneBinary.run(
      ["version"],
      environment: ["VANE_BLAS_TEST_DETECTED": "Prescott", "OPENBLAS_CORETYPE": "Prescott"],
      unsetting: ["VANE_BLAS_DETECTED", "VANE_BLAS_NOTICE"]
    )
    #expect(result.status == 0)
    #expect(result.stdout.contains("BLAS core: Prescott (OPENBLAS_CORETYPE"))
    #expect(!result.stderr.contains("selected for this CPU"))
  }

  /// A process started by a `vane` that chose the core (a service of `vane stack`) inherits the
  /// choice and says where it came from, without announcing it again.
  @Test func inheritedChoiceIsNamed() async throws {
    let core = try await VaneBinary.run(["version", "--blas-core"], unsetting: Self.variables)
    let name = core.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(!name.isEmpty)
    let result = try await VaneBinary.run(
      ["version"],
      environment: ["OPENBLAS_CORETYPE": name, "VANE_BLAS_DETECTED": "Prescott"],
      unsetting: ["VANE_BLAS_NOTICE"]
    )
    #expect(
      result.stdout.contains("BLAS core: \(name) (selected by vane; OpenBLAS detected Prescott")
    )
    #expect(!result.stderr.contains("selected for this CPU"))
  }
}
