internal import Dispatch
internal import Foundation
internal import Synchronization

/// Threads of its own for blocking numeric work (metrics over a million predictions, fits,
/// training), so that it never occupies the Swift cooperative pool that serves RPCs.
public final class BlockingPool: Sendable {
  /// The process's pool: one thread per core.
  public static let shared = BlockingPool(
    threads: max(1, ProcessInfo.processInfo.activeProcessorCount)
  )

  private let jobs = Mutex<[@Sendable () -> Void]>([])
  /// Counts queued jobs: a worker waits on it, then takes the oldest job.
  private let queued = DispatchSemaphore(value: 0)

  /// Starts `threads` worker threads; they live as long as the process.
  public init(threads: Int) {
    precondition(threads > 0)
    for index in 0 ..< threads {
      let thread = Thread { [self] in
        // Named from inside: on Linux a name set before start() does not reach the thread.
        Thread.current.name = "vane-blocking-\(index)"
        while true {
          self.queued.wait()
          let job = self.jobs.withLock { $0.removeFirst() }
          job()
        }
      }
      thread.start()
    }
  }

  /// Runs `body` on one of the pool's threads and returns (or throws) what it does.
  public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      self.jobs.withLock { $0.append { continuation.resume(with: Result { try body() }) } }
      self.queued.signal()
    }
  }
}
