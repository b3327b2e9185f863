internal import CCPUID

/// The instruction sets this CPU offers and the OS enables, read with cpuid and xgetbv.
public struct CPUFeatures: Sendable, Equatable, CustomStringConvertible {
  /// "GenuineIntel", "AuthenticAMD", or empty off x86.
  public var vendor: String
  public var family: Int
  public var model: Int
  /// AVX2 with FMA, the OS saving ymm registers.
  public var avx2: Bool
  /// AVX-512 F, CD, BW, DQ and VL (Skylake-SP's set), the OS saving zmm registers.
  public var avx512: Bool
  /// AVX-512 BF16 (Cooper Lake, Sapphire Rapids and later).
  public var avx512BF16: Bool
  /// AMX tiles (Sapphire Rapids and later).
  public var amx: Bool

  public init(
    vendor: String,
    family: Int = 0,
    model: Int = 0,
    avx2: Bool = false,
    avx512: Bool = false,
    avx512BF16: Bool = false,
    amx: Bool = false
  ) {
    self.vendor = vendor
    self.family = family
    self.model = model
    self.avx2 = avx2
    self.avx512 = avx512
    self.avx512BF16 = avx512BF16
    self.amx = amx
  }

  /// This machine's CPU.
  public static let current: CPUFeatures = {
    var info = vane_cpuid_info()
    vane_cpuid_read(&info)
    let vendor = withUnsafeBytes(of: info.vendor) { raw in
      String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
    return CPUFeatures(
      vendor: vendor,
      family: Int(info.family),
      model: Int(info.model),
      avx2: info.avx2 != 0,
      avx512: info.avx512 != 0,
      avx512BF16: info.avx512_bf16 != 0,
      amx: info.amx != 0
    )
  }()

  /// The widest vector instruction set, as a short label: "AVX-512", "AVX2" or "SSE".
  public var vectorISA: String {
    avx512 ? "AVX-512" : avx2 ? "AVX2" : "SSE"
  }

  public var description: String {
    var sets = [vectorISA]
    if avx512BF16 { sets.append("BF16") }
    if amx { sets.append("AMX") }
    return "\(vendor.isEmpty ? "unknown" : vendor) family \(family) model \(model), "
      + sets.joined(separator: "+")
  }
}
