internal import Synchronization

/// Draws that must look random but need not be secret (a request's traffic-split and shadow
/// draws): SplitMix64's stream over one process-wide counter, started at a key drawn once
/// from the system, so any thread may draw without a lock.
///
/// `SystemRandomNumberGenerator` makes a `getrandom` system call per draw; two draws per
/// served prediction cost about as much as its routing.
public struct ProcessRandom: RandomNumberGenerator, Sendable {
  public init() {}

  public mutating func next() -> UInt64 {
    let n = Self.counter.add(1, ordering: .relaxed).newValue
    return SeededRandom.mix(Self.start &+ n &* SeededRandom.gamma)
  }

  private static let start: UInt64 = {
    var generator = SystemRandomNumberGenerator()
    return generator.next()
  }()

  private static let counter = Atomic<UInt64>(0)
}
