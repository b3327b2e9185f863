import Testing
import Synchronization

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

/// The sequential comparison takes turns in short blocks, so that both methods meet the same
/// moments of a machine whose speed drifts.
@Suite("Bench: the predictor's sequential comparison takes turns")
struct PredictorBenchSequentialTests {
  @Test("each method makes its calls in blocks of 50, the two alternating, after its warm-up")
  func blocks() async throws {
    let order = Mutex<[Character]>([])
    let calls = 6 * PredictorBench.sequentialBlock
    let (info, predict) = try await PredictorBench.sequential(
      calls: calls,
      info: { order.withLock { $0.append("i") } },
      predict: { order.withLock { $0.append("p") } }
    )
    #expect(info.calls.count == calls)
    #expect(predict.calls.count == calls)
    var sequence = order.withLock { $0 }
    // Round one warms each method up with 500 calls before its first timed block.
    #expect(sequence.prefix(500 + 50).allSatisfy { $0 == "i" })
    sequence.removeFirst(500 + 50)
    #expect(sequence.prefix(500 + 50).allSatisfy { $0 == "p" })
    sequence.removeFirst(500 + 50)
    // Then turns: a block of one, two of the other (rounds go AB, BA, AB, ...), never more.
    var runs: [Int] = []
    for (index, call) in sequence.enumerated() {
      if index > 0, call == sequence[index - 1] {
        runs[runs.count - 1] += 1
      } else {
        runs.append(1)
      }
    }
    #expect(sequence.filter { $0 == "i" }.count == calls - 50)
    #expect(sequence.filter { $0 == "p" }.count == calls - 50)
    #expect(runs.allSatisfy { $0 == 50 || $0 == 100 })
    #expect(runs.count >= 5)
  }
}
