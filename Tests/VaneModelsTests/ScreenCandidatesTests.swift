import Testing
import VaneCore

@testable import VaneMath

/// `BLAS.screenCandidates` (four rows a step) against the row-by-row screen it replaced: the
/// same lows bit for bit, the same candidates, and no answer when a value is not finite.
@Suite("BLAS.screenCandidates")
struct ScreenCandidatesTests {
  /// One screen's inputs.
  struct Screen {
    var queryNorm: Double
    var squaredNorms: [Double]
    var dots: [Float]
    var relativeBound: Double
    var absoluteBound: Double

    /// The screen one row at a time, as the nearest-sample search wrote it before the kernel.
    func rowByRow() -> (lows: [Double], candidates: [Int32])? {
      var ceiling = Double.infinity, check = 0.0
      var lows: [Double] = []
      for r in self.squaredNorms.indices {
        let norms = self.queryNorm + self.squaredNorms[r]
        let screened = norms - 2 * Double(self.dots[r])
        let bound = self.relativeBound * norms + self.absoluteBound * (1 + norms)
        let high = screened + bound, low = screened - bound
        ceiling = min(ceiling, high)
        lows.append(low)
        check += (high - high) + (low - low)
      }
      guard check == 0 else { return nil }
      return (lows, lows.indices.filter { lows[$0] <= ceiling }.map(Int32.init))
    }

    /// The kernel.
    func kernel() -> (lows: [Double], candidates: [Int32])? {
      let rows = self.squaredNorms.count
      var lows = [Double](repeating: .nan, count: rows)
      var candidates = [Int32](repeating: -1, count: rows)
      let count = BLAS.screenCandidates(
        queryNorm: self.queryNorm,
        squaredNorms: self.squaredNorms,
        dots: self.dots,
        rows: rows,
        relativeBound: self.relativeBound,
        absoluteBound: self.absoluteBound,
        lows: &lows,
        candidates: &candidates
      )
      return count.map { (lows, Array(candidates[0 ..< $0])) }
    }
  }

  enum Case: String, CaseIterable {
    /// Spread-out rows: one or a few candidates.
    case spread
    /// Rows whose screened values are within each other's bounds: many candidates.
    case ties
    /// No bound and equal values: every row's low is the ceiling itself, a candidate.
    case exactTies
    /// A value past the range: no answer.
    case overflow
    /// A NaN dot product (a NaN query): no answer.
    case nan
  }

  @Test(
    "Equal to the row-by-row screen",
    arguments: [1, 3, 4, 5, 8, 17, 64, 255, 256],
    Case.allCases
  )
  func equalsRowByRow(rows: Int, kind: Case) {
    var random = SeededRandom(seed: UInt64(rows * 7 + kind.rawValue.count))
    for trial in 0 ..< 8 {
      let queryNorm = Double.random(in: 0 ... 60, using: &random)
      var squaredNorms = (0 ..< rows).map { _ in Double.random(in: 0 ... 60, using: &random) }
      var dots = (0 ..< rows).map { _ in Float(Double.random(in: -20 ... 20, using: &random)) }
      var relativeBound = 1e-5, absoluteBound = 0x1p-120
      switch kind {
      case .spread: break
      case .ties:
        // Every row a hair from the same screened value, inside the bound.
        relativeBound = 1e-3
        for r in 0 ..< rows {
          squaredNorms[r] = 40 + Double(r % 3) * 1e-4
          dots[r] = 10
        }
      case .exactTies:
        (relativeBound, absoluteBound) = (0, 0)
        squaredNorms = [Double](repeating: 40, count: rows)
        dots = [Float](repeating: 10, count: rows)
      case .overflow:
        squaredNorms[Int.random(in: 0 ..< rows, using: &random)] = .greatestFiniteMagnitude
      case .nan:
        dots[Int.random(in: 0 ..< rows, using: &random)] = .nan
      }
      let screen = Screen(
        queryNorm: queryNorm,
        squaredNorms: squaredNorms,
        dots: dots,
        relativeBound: relativeBound,
        absoluteBound: absoluteBound
      )
      let (expected, found) = (screen.rowByRow(), screen.kernel())
      switch kind {
      case .overflow, .nan: #expect(found == nil && expected == nil, "trial \(trial)")
      case .spread, .ties, .exactTies:
        guard let found, let expected else {
          Issue.record("trial \(trial): no answer")
          continue
        }
        #expect(found.lows.map(\.bitPattern) == expected.lows.map(\.bitPattern))
        #expect(found.candidates == expected.candidates, "trial \(trial)")
        #expect(!found.candidates.isEmpty)
        if kind != .spread { #expect(found.candidates.count == rows, "trial \(trial)") }
      }
    }
  }
}
