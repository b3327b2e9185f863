internal import Foundation

/// A reference distribution cut into ten bins at its deciles, for the population stability
/// index (PSI) of later values against it.
///
/// Bins are (−∞, e1], (e1, e2], …, (e9, ∞) for the nine decile edges (linear-interpolated
/// quantiles of the reference's finite values); `shares` is the reference's own share of each
/// bin (ties can make them differ from 0.1).
public struct DecileDistribution: Sendable, Equatable, Codable {
  /// The nine inner edges, ascending.
  public var edges: [Double]
  /// The reference's share of each of the ten bins (sums to 1).
  public var shares: [Double]

  /// Shares below this are raised to it, so an empty bin does not make the PSI infinite.
  public static let shareFloor = 1e-4

  /// The distribution of the finite `values`; nil when there are none.
  public init?(_ values: [Double]) {
    let sorted = values.filter(\.isFinite).sorted()
    guard !sorted.isEmpty else { return nil }
    self.edges = (1 ... 9).map { Statistics.quantile(sorted: sorted, Double($0) / 10) }
    self.shares = []
    self.shares = Self.shares(self.counts(sorted))
  }

  /// Checks a decoded distribution's shape. - Returns: the reason it is not one, or nil.
  public var invalidity: String? {
    guard self.edges.count == 9, self.shares.count == 10 else {
      return "needs 9 edges and 10 shares"
    }
    guard self.edges.allSatisfy(\.isFinite),
      zip(self.edges, self.edges.dropFirst()).allSatisfy({ $0 <= $1 })
    else {
      return "edges must be finite and ascending"
    }
    guard self.shares.allSatisfy({ $0.isFinite && $0 >= 0 }),
      abs(self.shares.reduce(0, +) - 1) < 1e-6
    else { return "shares must be non-negative and sum to 1" }
    return nil
  }

  /// The bin of `value`: the first edge at or above it (NaN: nil).
  public func bin(_ value: Double) -> Int? {
    guard !value.isNaN else { return nil }
    var bin = 0
    while bin < 9, value > self.edges[bin] { bin += 1 }
    return bin
  }

  /// How many of the values fall in each bin (NaN ignored).
  public func counts<S: Sequence<Double>>(_ values: S) -> [Int] {
    var counts = [Int](repeating: 0, count: 10)
    for value in values { if let bin = self.bin(value) { counts[bin] += 1 } }
    return counts
  }

  /// PSI = Σ (a − e) · ln(a / e) of bin counts against the reference's shares, both floored at
  /// ``shareFloor``; NaN when the counts are all zero.
  public func psi(counts: [Int]) -> Double {
    let actual = Self.shares(counts)
    guard !actual.isEmpty else { return .nan }
    return zip(actual, self.shares).reduce(0) { total, pair in
      let a = max(pair.0, Self.shareFloor), e = max(pair.1, Self.shareFloor)
      return total + (a - e) * log(a / e)
    }
  }

  /// PSI of `values` against the reference.
  public func psi<S: Sequence<Double>>(_ values: S) -> Double {
    self.psi(counts: self.counts(values))
  }

  private static func shares(_ counts: [Int]) -> [Double] {
    let total = counts.reduce(0, +)
    return total == 0 ? [] : counts.map { Double($0) / Double(total) }
  }
}
