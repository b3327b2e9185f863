public import VaneCore

/// The tests' seeded generator: VaneCore's (SplitMix64, Steele, Lea & Flood 2014), so random
/// tests repeat exactly.
public typealias SplitMix64 = SeededRandom
