/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator, so random tests repeat
/// exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { self.state = seed }

  public mutating func next() -> UInt64 {
    self.state &+= 0x9E37_79B9_7F4A_7C15
    var z = self.state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1), 53 random bits.
  public mutating func uniform() -> Double { Double(self.next() >> 11) * 0x1p-53 }

  /// Approximately standard normal (sum of 12 uniforms − 6).
  public mutating func normal() -> Double { (0..<12).reduce(0.0) { sum, _ in sum + self.uniform() } - 6 }
}
