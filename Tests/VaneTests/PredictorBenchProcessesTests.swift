import Testing

@testable import vane

/// `vane bench predictor --processes` reads each child's `sequential-p50` line and reports the
/// median ratio.
@Suite("Bench: the predictor's comparison in fresh processes")
struct PredictorBenchProcessesTests {
  @Test("the child's line is read among other output; a missing or malformed one is an error")
  func parse() throws {
    let pair = try PredictorBenchSequential.parse(
      "loading\nsequential-p50 182.5 231.25\ndone\n"
    )
    #expect(pair.info == 182.5)
    #expect(pair.predict == 231.25)
    for bad in [
      "", "sequential-p50 182.5", "sequential-p50 x 231", "sequential-p50 0 231",
      "sequential-p50 1 2 3", "p50 182.5 231.25",
    ] {
      #expect(throws: (any Error).self) { try PredictorBenchSequential.parse(bad) }
    }
  }

  @Test(
    "the median: the middle value, the upper middle one for an even count, nil when empty",
    arguments: [
      ([1.26, 1.15, 1.22, 1.17, 1.16], 1.17 as Double?),
      ([3.0, 1.0], 3.0),
      ([2.0], 2.0),
      ([], nil),
    ] as [([Double], Double?)]
  )
  func median(values: [Double], expected: Double?) {
    #expect(values.median == expected)
  }
}
