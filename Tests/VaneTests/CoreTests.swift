import Foundation
import GRPCCore
import Synchronization
import Testing
import VaneMath
import VaneRuntime
import VaneTestSupport

@testable import VaneCore

@Suite("Core: errors at the service edge, BLAS")
struct CoreTests {
  @Test(
    "Domain errors become the gRPC status their code names, keeping message and cause",
    arguments: [
      (VaneError.Code.invalidArgument, RPCError.Code.invalidArgument), (.notFound, .notFound),
      (.failedPrecondition, .failedPrecondition), (.unavailable, .unavailable),
      (.unimplemented, .unimplemented),
      (.permissionDenied, .permissionDenied), (.unauthenticated, .unauthenticated),
      (.internalError, .internalError),
    ]
  )
  func errorMapping(code: VaneError.Code, expected: RPCError.Code) async {
    struct Underlying: Error {}
    let error = VaneError(code, "something about it", cause: Underlying())
    await #expect {
      try await serviceEdge { () async throws -> Int in throw error }
    } throws: { thrown in
      guard let rpc = thrown as? RPCError else { return false }
      return rpc.code == expected && rpc.message == "something about it" && rpc.cause is Underlying
    }
  }

  @Test("Bad input names the field and the reason")
  func invalidArgumentWording() {
    let error = VaneError.invalidArgument(field: "spec.walk_forward.test_bars", "must be > 0")
    #expect(error.code == .invalidArgument)
    #expect(error.message == "spec.walk_forward.test_bars: must be > 0")
  }

  @Test("Errors that are not domain errors pass the edge unchanged")
  func otherErrorsPass() async {
    await #expect {
      try await serviceEdge { () async throws -> Int in throw RPCError(code: .aborted, message: "x")
      }
    } throws: { ($0 as? RPCError)?.code == .aborted }
  }

  @Test("BLAS: dot, axpy and matmul against closed forms")
  func blas() {
    BLAS.setThreadCount(1)
    #expect(BLAS.threadCount == 1)
    #expect(BLAS.dot([1, 2, 3], [4, 5, 6]) == 32)
    var y: [Double] = [1, 1, 1]
    BLAS.axpy(2, [1, 2, 3], &y)
    #expect(y == [3, 5, 7])
    // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
    #expect(BLAS.matmul([1, 2, 3, 4], [5, 6, 7, 8], m: 2, k: 2, n: 2) == [19, 22, 43, 50])
    // A 2×3 by 3×1 product exercises non-square leading dimensions.
    #expect(BLAS.matmul([1, 0, 2, 0, 1, 1], [3, 4, 5], m: 2, k: 3, n: 1) == [13, 9])
  }
}

@Suite("Blocking pool")
struct BlockingPoolTests {
  @Test("Work runs on the pool's own threads, results and errors come back, many jobs at once")
  func runs() async throws {
    let pool = BlockingPool(threads: 2)
    // Off the cooperative pool: the job runs outside any task. (Not checked by thread name:
    // corelibs Foundation sometimes reports a libdispatch worker's name for a Thread it started.)
    let inTask = try await pool.run { withUnsafeCurrentTask { $0 != nil } }
    #expect(!inTask)
    await #expect(throws: VaneError.self) {
      _ = try await pool.run { throw VaneError(.internalError, "boom") }
    }
    let sums = try await withThrowingTaskGroup(of: Int.self) { group in
      for i in 0 ..< 64 { group.addTask { try await pool.run { (0 ... i).reduce(0, +) } } }
      return try await group.reduce(into: [Int]()) { $0.append($1) }
    }
    #expect(Set(sums) == Set((0 ..< 64).map { $0 * ($0 + 1) / 2 }))
  }

  /// A job that blocks the pool's one thread until released. Waits for it to start without
  /// blocking a cooperative thread (tests run in parallel on few of them).
  static func hold(_ pool: BlockingPool) async throws -> DispatchSemaphore {
    let started = Mutex(false), release = DispatchSemaphore(value: 0)
    Task {
      _ = try? await pool.run {
        started.withLock { $0 = true }
        release.wait()
      }
    }
    while !started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
    return release
  }

  @Test("A queued job whose task is cancelled is dropped at once; the running one finishes")
  func cancelQueued() async throws {
    let pool = BlockingPool(threads: 1)
    defer { pool.shutdown() }
    let release = try await Self.hold(pool)
    let ran = Mutex(false)
    let waiting = Task { try await pool.run { ran.withLock { $0 = true } } }
    try await Task.sleep(for: .milliseconds(50))
    waiting.cancel()
    await #expect(throws: CancellationError.self) { try await waiting.value }
    release.signal()
    // The pool still works, and the dropped job never ran.
    #expect(try await pool.run { 7 } == 7)
    #expect(ran.withLock { $0 } == false)
  }

  @Test("A task cancelled before its job is queued never runs it")
  func cancelledBefore() async throws {
    let pool = BlockingPool(threads: 1)
    defer { pool.shutdown() }
    let ran = Mutex(false)
    let task = Task {
      withUnsafeCurrentTask { $0?.cancel() }
      return try await pool.run { ran.withLock { $0 = true } }
    }
    await #expect(throws: CancellationError.self) { try await task.value }
    #expect(try await pool.run { 1 } == 1)
    #expect(ran.withLock { $0 } == false)
  }

  @Test("Shutdown fails the queued jobs and later calls; the running job completes")
  func shutdown() async throws {
    let pool = BlockingPool(threads: 1)
    let release = try await Self.hold(pool)
    let queued = Task { try await pool.run { 1 } }
    try await Task.sleep(for: .milliseconds(50))
    pool.shutdown()
    await #expect(throws: VaneError.self) { try await queued.value }
    await #expect(throws: VaneError.self) { try await pool.run { 2 } }
    release.signal()
  }

  @Test("Pool state: queue, cancel (queued, early, running), shutdown")
  func state() {
    var state = BlockingPool.State(threads: 2)
    func job(_ id: Int) -> BlockingPool.Job { .init(id: id, run: {}, fail: { _ in }) }
    let a = state.reserve(), b = state.reserve(), c = state.reserve()
    #expect(state.enqueue(job(a)) == .queued)
    #expect(state.enqueue(job(b)) == .queued)
    // Cancelled while queued: handed back to fail, and off the queue.
    #expect(state.cancel(b)?.id == b)
    #expect(state.queue.map(\.id) == [a])
    // Cancelled before its enqueue: the enqueue is refused.
    #expect(state.cancel(c) == nil)
    #expect(state.enqueue(job(c)) == .cancelled)
    // Running: nothing to cancel.
    guard case .run(let running) = state.next() else {
      Issue.record("the queued job runs")
      return
    }
    #expect(running.id == a)
    #expect(state.cancel(a) == nil)
    if case .wait = state.next() {} else { Issue.record("an empty queue waits") }
    let d = state.reserve()
    #expect(state.enqueue(job(d)) == .queued)
    let (dropped, threads) = state.shutdown()
    #expect(dropped.map(\.id) == [d] && threads == 2 && state.queue.isEmpty)
    #expect(state.shutdown().threads == 0)
    if case .exit = state.next() {} else { Issue.record("threads exit after shutdown") }
    #expect(state.enqueue(job(state.reserve())) == .shutDown)
  }
}

@Suite("Compute-bound tests run off the cooperative pool", .computeBound)
struct ComputeBoundTests {
  @Test("A synchronous test in a suite marked computeBound runs on the compute threads")
  func synchronous() {
    #expect(ComputeExecutor.shared.isCurrent)
  }

  @Test("An asynchronous one comes back to them after each suspension")
  func asynchronous() async throws {
    try await Task.sleep(for: .milliseconds(1))
    #expect(ComputeExecutor.shared.isCurrent)
    let child = await Task { ComputeExecutor.shared.isCurrent }.value
    #expect(!child, "an unstructured task does not inherit the preference")
  }
}

@Test(
  "A test not marked computeBound runs on the cooperative pool; run { } still reaches the compute threads"
)
func notComputeBound() async throws {
  #expect(!ComputeExecutor.shared.isCurrent)
  #expect(try await ComputeExecutor.shared.run { ComputeExecutor.shared.isCurrent })
}

@Suite("Statistics: the median's distribution-free interval")
struct MedianIntervalTests {
  /// Ranks (1-based) and coverage from 1 − 2·Σᵢ₍ᵢ₌₀…ₖ₋₁₎ C(n, i)/2ⁿ, worked out by hand (exact
  /// fractions); nil where even the extremes cover less than asked.
  @Test(
    "ranks and exact coverage by count and confidence",
    arguments: [
      (5, 0.95, nil),
      (5, 0.90, (1, 5, 1 - 2.0 / 32)),
      (11, 0.95, (2, 10, 1 - 24.0 / 2048)),
      (11, 0.90, (3, 9, 1 - 134.0 / 2048)),
      (20, 0.95, (6, 15, 1 - 2 * 21_700.0 / 1_048_576)),
      (1, 0.5, nil),
    ] as [(Int, Double, (Int, Int, Double)?)]
  )
  func ranks(count: Int, confidence: Double, expected: (Int, Int, Double)?) {
    // Values 10, 20, …: the k-th is 10·k.
    let sorted = (1 ... count).map { Double($0 * 10) }
    let interval = Statistics.medianInterval(sorted: sorted, confidence: confidence)
    guard let expected else {
      #expect(interval == nil)
      return
    }
    #expect(interval?.lower == Double(expected.0 * 10))
    #expect(interval?.upper == Double(expected.1 * 10))
    #expect(abs((interval?.coverage ?? 0) - expected.2) < 1e-12)
  }

  @Test("it covers the population median at least as often as it says (simulated draws)")
  func coverage() {
    // Exponential draws (skewed: median ln 2, not the mean), 11 at a time.
    var random = SeededRandom(seed: 7)
    var covered = 0
    let trials = 4000
    for _ in 0 ..< trials {
      let draws = (0 ..< 11).map { _ in -log(1 - Double.random(in: 0 ..< 1, using: &random)) }
      let interval = Statistics.medianInterval(sorted: draws.sorted(), confidence: 0.9)!
      if interval.lower <= log(2.0), log(2.0) <= interval.upper { covered += 1 }
    }
    // Exact coverage 0.9346; four standard errors below it is 0.919.
    #expect(Double(covered) / Double(trials) > 0.919)
  }
}
