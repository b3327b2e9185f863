import Testing
import VaneMath

@Suite("OpenBLAS core choice")
struct BLASCoreChoiceTests {
  static let xeonSPR = CPUFeatures(
    vendor: "GenuineIntel",
    family: 6,
    model: 207,
    avx2: true,
    avx512: true,
    avx512BF16: true,
    amx: true
  )
  static let skylakeSP = CPUFeatures(
    vendor: "GenuineIntel",
    family: 6,
    model: 85,
    avx2: true,
    avx512: true
  )
  static let haswellDesktop = CPUFeatures(vendor: "GenuineIntel", family: 6, model: 60, avx2: true)
  static let epycMilan = CPUFeatures(vendor: "AuthenticAMD", family: 25, model: 1, avx2: true)
  static let oldXeon = CPUFeatures(vendor: "GenuineIntel", family: 6, model: 44)

  struct Case: Sendable, CustomTestStringConvertible {
    var detected: String
    var cpu: CPUFeatures
    var requested: String?
    var expected: BLAS.CoreChoice
    var testDescription: String { "\(detected) on \(cpu), requested \(requested ?? "nothing")" }
  }

  static let cases: [Case] = [
    // The fallback on CPUs Debian's OpenBLAS does not know: the matching core replaces it.
    Case(detected: "Prescott", cpu: xeonSPR, requested: nil, expected: .select("Cooperlake")),
    Case(detected: "Prescott", cpu: skylakeSP, requested: nil, expected: .select("SkylakeX")),
    Case(detected: "Prescott", cpu: haswellDesktop, requested: nil, expected: .select("Haswell")),
    Case(detected: "Nehalem", cpu: haswellDesktop, requested: nil, expected: .select("Haswell")),
    Case(detected: "Prescott", cpu: epycMilan, requested: nil, expected: .select("Zen")),
    // A detection that already runs vector kernels is left alone, whatever its name's case.
    Case(detected: "SkylakeX", cpu: skylakeSP, requested: nil, expected: .keep),
    Case(detected: "Haswell", cpu: xeonSPR, requested: nil, expected: .keep),
    Case(detected: "ZEN", cpu: epycMilan, requested: nil, expected: .keep),
    // An explicit request wins, even one that is slower or empty (OpenBLAS reads it either way).
    Case(detected: "Prescott", cpu: xeonSPR, requested: "Prescott", expected: .keep),
    Case(detected: "Prescott", cpu: xeonSPR, requested: "", expected: .keep),
    // Nothing better to choose on a CPU without AVX2.
    Case(detected: "Prescott", cpu: oldXeon, requested: nil, expected: .keep),
    Case(detected: "Prescott", cpu: CPUFeatures(vendor: ""), requested: nil, expected: .keep),
  ]

  @Test(arguments: cases)
  func choice(_ item: Case) {
    #expect(
      BLAS.chooseCore(detected: item.detected, cpu: item.cpu, requested: item.requested)
        == item.expected
    )
  }

  /// The cpuid reading agrees with the kernel OpenBLAS runs: an AVX-512 or AVX2 core is never
  /// reported on a CPU whose vectors cpuid does not show.
  @Test func cpuidAgreesWithOpenBLAS() {
    let cpu = CPUFeatures.current
    let core = BLAS.coreName.lowercased()
    if ["skylakex", "cooperlake", "sapphirerapids"].contains(core) { #expect(cpu.avx512) }
    if ["haswell", "zen"].contains(core) { #expect(cpu.avx2) }
    #expect(cpu.avx512 ? cpu.avx2 : true)
  }
}
