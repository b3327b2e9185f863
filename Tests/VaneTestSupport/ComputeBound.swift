public import Testing
internal import Dispatch
internal import Foundation
internal import Synchronization

/// Threads of its own for tests that compute for seconds without awaiting.
///
/// Swift Testing runs every test, synchronous ones included, on the cooperative pool, which has
/// one thread per core: two here. Two tests training models there for half a minute leave no
/// thread for the tests that await servers, and those then miss their deadlines (a `vane serve`
/// probed for 90 s whose answers are never read). A test marked ``ComputeBound`` runs its body
/// on these threads instead; the kernel shares the cores between them and the pool.
public final class ComputeExecutor: TaskExecutor, Sendable {
  /// As many threads as cores, so compute-bound tests cannot take more than their share.
  public static let shared = ComputeExecutor(
    threads: max(1, ProcessInfo.processInfo.activeProcessorCount)
  )

  private struct State {
    var jobs: [UnownedJob] = []
    var next = 0
    var threadIDs: Set<UInt> = []

    mutating func take() -> UnownedJob? {
      guard self.next < self.jobs.count else { return nil }
      let job = self.jobs[self.next]
      self.next += 1
      if self.next == self.jobs.count {
        self.jobs.removeAll(keepingCapacity: true)
        self.next = 0
      }
      return job
    }
  }

  private let state = Mutex(State())
  /// One signal per queued job.
  private let wakeups = DispatchSemaphore(value: 0)

  init(threads: Int) {
    for _ in 0 ..< threads {
      Thread { [self] in
        self.state.withLock { _ = $0.threadIDs.insert(UInt(pthread_self())) }
        while true {
          self.wakeups.wait()
          guard let job = self.state.withLock({ $0.take() }) else { continue }
          job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
      }.start()
    }
  }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    self.state.withLock { $0.jobs.append(job) }
    self.wakeups.signal()
  }

  /// Whether the calling thread is one of this executor's.
  public var isCurrent: Bool {
    let id = UInt(pthread_self())
    return self.state.withLock { $0.threadIDs.contains(id) }
  }

  /// Runs `body` on these threads and returns what it does: for a compute-bound step inside a
  /// test that otherwise awaits (parsing years of candles before serving them).
  public func run<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
    try await withTaskExecutorPreference(self) { try body() }
  }
}

/// Runs each test of a suite (or one test) on ``ComputeExecutor/shared``: for tests that train
/// models or read years of candles without awaiting.
public struct ComputeBound: TestTrait, SuiteTrait, TestScoping {
  public var isRecursive: Bool { true }

  public func provideScope(
    for test: Test,
    testCase: Test.Case?,
    performing function: @Sendable () async throws -> Void
  ) async throws {
    try await withTaskExecutorPreference(ComputeExecutor.shared) { try await function() }
  }
}

extension Trait where Self == ComputeBound {
  /// Runs the test's body on threads of its own, off the cooperative pool (see ``ComputeBound``).
  public static var computeBound: Self { Self() }
}
