import Testing
import VaneCore
import VaneTestSupport

@testable import VaneBundle

/// The nearest-sample search gives up rows early; it must still find exactly the least of the
/// rows' distances, as the plain definition measures them.
@Suite("Training reference: nearest-sample distance")
struct TrainingReferenceDistanceTests {
  static func reference(width: Int, rows: Int, sample: [Double]) -> TrainingReference {
    .sampleOnly(width: width, rows: rows, sample: sample)
  }

  /// The least of ``TrainingReference/distance(_:_:count:)`` over the rows, one by one.
  static func bruteForce(_ reference: TrainingReference, _ query: [Double]) -> Double {
    let width = reference.columns.count
    var nearest = Double.infinity
    reference.sample.withUnsafeBufferPointer { sample in
      query.withUnsafeBufferPointer { query in
        for s in 0 ..< reference.sampleRows {
          nearest = min(
            nearest,
            TrainingReference.distance(
              query.baseAddress!,
              sample.baseAddress! + s * width,
              count: width
            )
          )
        }
      }
    }
    return nearest
  }

  @Test(
    "Equal to the least distance, bit for bit, for widths around the 8- and 16-value steps",
    arguments: [1, 7, 8, 15, 16, 17, 24, 31, 32, 78, 100]
  )
  func equalsBruteForce(width: Int) {
    var random = SeededRandom(seed: UInt64(width))
    for trial in 0 ..< 40 {
      let rows = [1, 2, 5, 256][trial % 4]
      // Mixed scales so that some rows are given up early and some late.
      var sample = (0 ..< rows * width).map { _ in Double.random(in: -3 ... 3, using: &random) }
      var query = (0 ..< width).map { _ in Double.random(in: -3 ... 3, using: &random) }
      switch trial % 5 {
      case 1:
        // The query is one of the rows: the distance is 0.
        let row = Int.random(in: 0 ..< rows, using: &random)
        query = Array(sample[(row * width) ..< ((row + 1) * width)])
      case 2:
        // Ties: every row the same.
        let first = Array(sample[0 ..< width])
        for r in 0 ..< rows {
          sample.replaceSubrange((r * width) ..< ((r + 1) * width), with: first)
        }
      case 3:
        // Huge values: partial sums overflow to infinity.
        sample = sample.map { $0 * 1e160 }
      default:
        break
      }
      let reference = Self.reference(width: width, rows: rows, sample: sample)
      let found = query.withUnsafeBufferPointer { reference.nearestSampleDistance($0.baseAddress!) }
      let expected = Self.bruteForce(reference, query)
      #expect(found.bitPattern == expected.bitPattern, "trial \(trial): \(found) vs \(expected)")
    }
  }

  @Test("Without a sample the distance is infinite")
  func emptySample() {
    let reference = Self.reference(width: 4, rows: 0, sample: [])
    let query = [1.0, 2, 3, 4]
    #expect(
      query.withUnsafeBufferPointer { reference.nearestSampleDistance($0.baseAddress!) }
        == .infinity
    )
  }

  @Test("A row given up early is never nearer than the bound")
  func boundedGivesUpOnlyAtOrAboveTheBound() {
    var random = SeededRandom(seed: 11)
    for _ in 0 ..< 500 {
      let width = Int.random(in: 1 ... 80, using: &random)
      let x = (0 ..< width).map { _ in Double.random(in: -2 ... 2, using: &random) }
      let y = (0 ..< width).map { _ in Double.random(in: -2 ... 2, using: &random) }
      let full = TrainingReference.squaredDistance(x, y, count: width)
      let bound = full * Double.random(in: 0 ... 2, using: &random)
      let bounded = TrainingReference.squaredDistance(x, y, count: width, below: bound)
      if let bounded {
        #expect(bounded.bitPattern == full.bitPattern)
      } else {
        #expect(full >= bound)
      }
    }
  }
}
