internal import Dispatch
internal import Foundation
internal import Synchronization

/// Runs Swift jobs on threads of its own, in the order they arrive: a place for isolated code
/// that blocks (SQLite writes that must stay in their actor's order) or computes for seconds,
/// so that it never holds one of the cooperative pool's threads (one per core: two here).
///
/// With one thread it is a serial executor, for an actor's `unownedExecutor`; with more it is
/// only a task executor (`withTaskExecutorPreference`). Its threads live as long as the
/// process: make one per purpose (a `static let`), never one per object.
public final class ThreadExecutor: SerialExecutor, TaskExecutor, Sendable {
  /// The FIFO queue of jobs and the threads' ids, behind one lock.
  struct State {
    private var jobs: [UnownedJob] = []
    private var head = 0
    var threadIDs: Set<UInt> = []

    mutating func append(_ job: UnownedJob) { self.jobs.append(job) }

    /// The oldest job not yet taken.
    mutating func take() -> UnownedJob? {
      guard self.head < self.jobs.count else { return nil }
      let job = self.jobs[self.head]
      self.head += 1
      if self.head == self.jobs.count {
        self.jobs.removeAll(keepingCapacity: true)
        self.head = 0
      }
      return job
    }
  }

  private let state = Mutex(State())
  /// One signal per queued job.
  private let wakeups = DispatchSemaphore(value: 0)
  private let threads: Int

  /// Starts `threads` threads named `name` (a serial executor needs exactly one).
  public init(name: String, threads: Int = 1) {
    precondition(threads > 0)
    self.threads = threads
    for index in 0 ..< threads {
      let label = threads == 1 ? name : "\(name)-\(index)"
      Thread { [self] in
        // Named from inside: on Linux a name set before start() does not reach the thread.
        Thread.current.name = label
        self.state.withLock { _ = $0.threadIDs.insert(UInt(pthread_self())) }
        while true {
          self.wakeups.wait()
          guard let job = self.state.withLock({ $0.take() }) else { continue }
          if self.threads == 1 {
            job.runSynchronously(
              isolatedTo: self.asUnownedSerialExecutor(),
              taskExecutor: self.asUnownedTaskExecutor()
            )
          } else {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
          }
        }
      }.start()
    }
  }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    self.state.withLock { $0.append(job) }
    self.wakeups.signal()
  }

  public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
    precondition(self.threads == 1, "a ThreadExecutor with several threads is not serial")
    return UnownedSerialExecutor(ordinary: self)
  }

  /// Whether the calling thread is one of this executor's.
  public var isCurrent: Bool {
    let id = UInt(pthread_self())
    return self.state.withLock { $0.threadIDs.contains(id) }
  }

  public func checkIsolated() {
    precondition(self.isCurrent, "not on \(self)'s thread")
  }

  /// Runs `body` on these threads and returns what it does.
  public func run<T: Sendable>(_ body: @Sendable () throws -> T) async throws -> T {
    try await withTaskExecutorPreference(self) { try body() }
  }
}
