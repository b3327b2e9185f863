import Testing
import VaneCore

@testable import VaneMath

/// `BLAS.largestZ` (four columns a step) against the column-by-column loop the trust checks
/// ran before: the same largest z bit for bit, and the same verdict on the bound, with missing
/// values, infinite values and columns without moments among the columns.
@Suite("BLAS.largestZ")
struct LargestZTests {
  static func columnByColumn(
    _ x: [Double],
    means: [Double],
    deviations: [Double],
    bound: Double
  ) -> (largest: Double, above: Bool) {
    var largest = 0.0, above = false
    for c in x.indices where x[c].isFinite {
      let z = abs(x[c] - means[c]) / deviations[c]
      if z > largest { largest = z }
      if z > bound { above = true }
    }
    return (largest, above)
  }

  @Test("Equal to the column-by-column loop", arguments: [0, 1, 3, 4, 5, 8, 13, 78])
  func equalsColumnByColumn(count: Int) {
    var random = SeededRandom(seed: UInt64(count * 13 + 1))
    for trial in 0 ..< 40 {
      var x = (0 ..< count).map { _ in Double.random(in: -6 ... 6, using: &random) }
      var means = (0 ..< count).map { _ in Double.random(in: -1 ... 1, using: &random) }
      let deviations = (0 ..< count).map { _ in
        Double.random(in: 0 ..< 1, using: &random) < 0.1
          ? .nan : Double.random(in: 0.5 ... 2, using: &random)
      }
      for c in 0 ..< count {
        switch Int.random(in: 0 ..< 12, using: &random) {
        case 0: x[c] = .nan
        case 1: x[c] = .infinity
        case 2: x[c] = -.infinity
        case 3: means[c] = .nan
        case 4: x[c] = means[c]  // z of 0 (a signed zero either way)
        default: break
        }
      }
      // A bound some trials pass and some do not.
      let bound = [2.0, 4.0, 8.0, .infinity][trial % 4]
      let expected = Self.columnByColumn(x, means: means, deviations: deviations, bound: bound)
      let found = BLAS.largestZ(
        x,
        means: means,
        deviations: deviations,
        count: count,
        bound: bound
      )
      #expect(found.largest.bitPattern == expected.largest.bitPattern, "trial \(trial)")
      #expect(found.above == expected.above, "trial \(trial)")
    }
  }
}
