internal import Dispatch
internal import Foundation
internal import Synchronization

/// Threads of its own for blocking numeric work (metrics over a million predictions, fits,
/// training), so that it never occupies the Swift cooperative pool that serves RPCs.
///
/// A job whose task is cancelled while it waits in the queue is dropped and its caller gets
/// `CancellationError` at once; a job already running runs to its end (blocking code cannot be
/// interrupted), and its caller gets what it returns. ``shutdown()`` fails the queued jobs and
/// ends the threads once their current job is done.
public final class BlockingPool: Sendable {
  /// The process's pool: one thread per core.
  public static let shared = BlockingPool(
    threads: max(1, ProcessInfo.processInfo.activeProcessorCount)
  )

  private let state: Mutex<State>
  /// Counts wake-ups: one per queued job, and one per thread at shutdown.
  private let wakeups = DispatchSemaphore(value: 0)

  /// Starts `threads` worker threads; they live until ``shutdown()``.
  public init(threads: Int) {
    precondition(threads > 0)
    self.state = Mutex(State(threads: threads))
    for index in 0 ..< threads {
      let thread = Thread { [self] in
        // Named from inside: on Linux a name set before start() does not reach the thread.
        Thread.current.name = "vane-blocking-\(index)"
        while true {
          self.wakeups.wait()
          switch self.state.withLock({ $0.next() }) {
          case .run(let job): job.run()
          case .wait: continue
          case .exit: return
          }
        }
      }
      thread.start()
    }
  }

  /// Runs `body` on one of the pool's threads and returns (or throws) what it does.
  /// - Throws: `CancellationError` when the task is cancelled before the job starts;
  ///   UNAVAILABLE once the pool is shut down.
  public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let id = self.state.withLock { $0.reserve() }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { continuation in
        let job = Job(
          id: id,
          run: { continuation.resume(with: Result { try body() }) },
          fail: { continuation.resume(throwing: $0) }
        )
        switch self.state.withLock({ $0.enqueue(job) }) {
        case .queued: self.wakeups.signal()
        case .cancelled: job.fail(CancellationError())
        case .shutDown: job.fail(Self.shutDownError)
        }
      }
    } onCancel: {
      self.state.withLock { $0.cancel(id) }?.fail(CancellationError())
    }
  }

  /// Fails every queued job (UNAVAILABLE) and ends the threads after their current job. Later
  /// calls to ``run(_:)`` fail at once.
  public func shutdown() {
    let (dropped, threads) = self.state.withLock { $0.shutdown() }
    for job in dropped { job.fail(Self.shutDownError) }
    for _ in 0 ..< threads { self.wakeups.signal() }
  }

  static let shutDownError = VaneError(.unavailable, "the blocking pool is shut down")

  /// A queued piece of work: it either runs (and resumes its caller) or fails, exactly once.
  struct Job: Sendable {
    var id: Int
    var run: @Sendable () -> Void
    var fail: @Sendable (any Error) -> Void
  }

  /// The queue and its life, as transitions that return what to do once the lock is released
  /// (tested without threads).
  struct State {
    enum Enqueued: Equatable { case queued, cancelled, shutDown }
    enum Next {
      case run(Job)
      /// A wake-up whose job was cancelled meanwhile.
      case wait
      case exit
    }

    let threads: Int
    private(set) var queue: [Job] = []
    private var nextID = 0
    /// Jobs reserved but not queued yet, and those of them cancelled meanwhile (their
    /// cancellation handler ran before the enqueue).
    private var reserved: Set<Int> = []
    private var cancelledEarly: Set<Int> = []
    private(set) var isShutDown = false

    init(threads: Int) { self.threads = threads }

    mutating func reserve() -> Int {
      defer { self.nextID += 1 }
      self.reserved.insert(self.nextID)
      return self.nextID
    }

    mutating func enqueue(_ job: Job) -> Enqueued {
      self.reserved.remove(job.id)
      if self.cancelledEarly.remove(job.id) != nil { return .cancelled }
      if self.isShutDown { return .shutDown }
      self.queue.append(job)
      return .queued
    }

    /// The job to fail, if it was still waiting; nil when it already runs (or ran).
    mutating func cancel(_ id: Int) -> Job? {
      if let index = self.queue.firstIndex(where: { $0.id == id }) {
        return self.queue.remove(at: index)
      }
      // Not queued yet: the enqueue that follows is refused. Running or done: nothing to do.
      if self.reserved.contains(id) { self.cancelledEarly.insert(id) }
      return nil
    }

    mutating func next() -> Next {
      if self.isShutDown { return .exit }
      guard !self.queue.isEmpty else { return .wait }
      return .run(self.queue.removeFirst())
    }

    /// The queued jobs to fail and the threads to wake.
    mutating func shutdown() -> (dropped: [Job], threads: Int) {
      guard !self.isShutDown else { return ([], 0) }
      self.isShutDown = true
      defer { self.queue.removeAll() }
      return (self.queue, self.threads)
    }
  }
}
