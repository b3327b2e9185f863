import Testing
import VaneBundle
import VaneCore
import VaneTestSupport

@testable import VaneServing

/// The screened nearest-sample search (one GEMV, then exact distances for the rows the
/// screen cannot rule out) against the trainer's row-by-row definition: the same distance,
/// bit for bit.
@Suite("Nearest-sample search: screened equals row by row")
struct NearestSampleSearchTests {
  static func reference(width: Int, rows: Int, sample: [Double]) -> TrainingReference {
    .sampleOnly(width: width, rows: rows, sample: sample)
  }

  enum Case: String, CaseIterable {
    case random, queryIsARow, allRowsTied, nearTies, clustered, huge, nearOverflow, tiny
    case halfRangeEdge, halfSubnormal, farQuery
  }

  @Test(
    "Bit for bit the plain definition",
    arguments: [1, 7, 8, 16, 78, 100],
    Case.allCases
  )
  func equalsDefinition(width: Int, kind: Case) {
    var random = SeededRandom(seed: UInt64(width * 31 + kind.rawValue.count))
    for trial in 0 ..< 12 {
      let rows = [16, 17, 64, 256][trial % 4]
      var sample = (0 ..< rows * width).map { _ in Double.random(in: -3 ... 3, using: &random) }
      var query = (0 ..< width).map { _ in Double.random(in: -3 ... 3, using: &random) }
      switch kind {
      case .random: break
      case .queryIsARow:
        let row = Int.random(in: 0 ..< rows, using: &random)
        query = Array(sample[(row * width) ..< ((row + 1) * width)])
      case .allRowsTied:
        let first = Array(sample[0 ..< width])
        for r in 0 ..< rows {
          sample.replaceSubrange((r * width) ..< ((r + 1) * width), with: first)
        }
      case .nearTies:
        // Rows a few ulps apart around the query: the screen cannot tell them apart.
        for r in 0 ..< rows {
          for c in 0 ..< width {
            sample[r * width + c] =
              query[c] + Double(Int.random(in: -3 ... 3, using: &random)) * query[c].ulp
          }
        }
      case .clustered:
        // Large shared offset, small differences: the norms dwarf the distances.
        sample = sample.map { 1e6 + $0 * 1e-3 }
        query = query.map { 1e6 + $0 * 1e-3 }
      case .huge:
        // Norms overflow: the search measures every row.
        sample = sample.map { $0 * 1e160 }
        query = query.map { $0 * 1e160 }
      case .nearOverflow:
        // Squared norms at the edge of the range (some overflow), the query one of the rows.
        let scale = 1.3e154 / Double(width).squareRoot()
        sample = sample.map { $0 * scale }
        let row = Int.random(in: 0 ..< rows, using: &random)
        query = Array(sample[(row * width) ..< ((row + 1) * width)])
      case .tiny:
        sample = sample.map { $0 * 1e-160 }
        query = query.map { $0 * 1e-160 }
      case .halfRangeEdge:
        // The sample up to half precision's largest values, still screened in it.
        sample = sample.map { $0 * 21_800 }
        query = query.map { $0 * 21_800 }
      case .halfSubnormal:
        // The sample below half precision's normal range: it rounds by absolute steps.
        sample = sample.map { $0 * 1e-5 }
        query = query.map { $0 * 1e-5 }
      case .farQuery:
        // A request far outside the sample: large norms, the rows' distances nearly equal.
        query = query.map { $0 * 1e12 }
      }
      let reference = Self.reference(width: width, rows: rows, sample: sample)
      let search = NearestSampleSearch(reference)
      // Half precision holds every sample but those past its range.
      #expect((search.transposed == nil) == [.clustered, .huge, .nearOverflow].contains(kind))
      let (found, expected) = query.withUnsafeBufferPointer {
        (search.nearestDistance($0.baseAddress!), reference.nearestSampleDistance($0.baseAddress!))
      }
      #expect(found.bitPattern == expected.bitPattern, "trial \(trial): \(found) vs \(expected)")
    }
  }

  @Test("Few rows, or none, are measured row by row")
  func smallSamples() {
    for rows in [0, 1, 15] {
      let sample = (0 ..< rows * 3).map { Double($0) / 7 }
      let reference = Self.reference(width: 3, rows: rows, sample: sample)
      let query = [0.5, -1, 2]
      let (found, expected) = query.withUnsafeBufferPointer {
        (
          NearestSampleSearch(reference).nearestDistance($0.baseAddress!),
          reference.nearestSampleDistance($0.baseAddress!)
        )
      }
      #expect(found.bitPattern == expected.bitPattern)
    }
  }
}
