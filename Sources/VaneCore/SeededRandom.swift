/// A small, fast, seeded generator (SplitMix64, Steele, Lea & Flood 2014): the same seed gives
/// the same stream on every machine, which is what makes training deterministic.
public struct SeededRandom: RandomNumberGenerator, Sendable {
  @usableFromInline var state: UInt64

  public init(seed: UInt64) { self.state = seed }

  /// SplitMix64's increment: the golden ratio in 64 bits.
  public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

  @inlinable
  public mutating func next() -> UInt64 {
    self.state &+= Self.gamma
    return Self.mix(self.state)
  }

  /// SplitMix64's finaliser: a bijection of 64-bit words that spreads every input bit.
  @inlinable
  public static func mix(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1).
  public mutating func uniform() -> Double { Double(self.next() >> 11) * 0x1p-53 }

  /// Standard normal (Box–Muller).
  public mutating func normal() -> Double {
    let u = max(self.uniform(), 0x1p-53), v = self.uniform()
    return (-2 * _log(u)).squareRoot() * _cos(2 * .pi * v)
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always) private func _log(_ x: Double) -> Double { log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { cos(x) }
