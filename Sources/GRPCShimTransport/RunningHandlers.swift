internal import Synchronization

/// The stream handlers a listening server runs, each in its own task, so that `listen` can end
/// once the drain has finished every call, without waiting for handlers that ignore
/// cancellation: they answer no one by then.
///
/// The set is a pure state machine behind one `Mutex`. Every call goes through it twice, from
/// many threads at once, so the lock is held for the bookkeeping only: an id is reserved under
/// it, the task is created (and scheduled, which may wake a thread) outside it, then recorded.
/// A handler that ends before it is recorded is remembered as finished, so it is never kept.
final class RunningHandlers: Sendable {
  struct State {
    private(set) var tasks: [Int: Task<Void, Never>] = [:]
    /// Reserved ids whose task ended before it was recorded.
    private(set) var finishedEarly: Set<Int> = []
    private var nextID = 0
    /// Set by ``RunningHandlers/cancelAll(waitingAtMost:)``: no handler starts after it.
    private(set) var closed = false

    /// A new handler's id, or nil once closed.
    mutating func reserve() -> Int? {
      if self.closed { return nil }
      defer { self.nextID += 1 }
      return self.nextID
    }

    mutating func close() { self.closed = true }

    /// Records a reserved id's task. Returns true when the task must be cancelled: the set
    /// closed after the id was reserved, so ``RunningHandlers/cancelAll(waitingAtMost:)``
    /// did not see it.
    mutating func add(_ id: Int, _ task: Task<Void, Never>) -> Bool {
      if self.finishedEarly.remove(id) == nil { self.tasks[id] = task }
      return self.closed
    }

    mutating func finished(_ id: Int) {
      if self.tasks.removeValue(forKey: id) == nil { self.finishedEarly.insert(id) }
    }

    /// The tasks to cancel once the drain is over.
    var all: [Task<Void, Never>] { Array(self.tasks.values) }
  }

  private let state = Mutex(State())

  /// Handlers still running.
  var count: Int { self.state.withLock { $0.tasks.count } }

  /// Runs `body` in a task of its own, kept until it returns.
  ///
  /// Called from the shim's callback threads: the task goes straight to the global executor,
  /// one thread hop for the call.
  /// - Returns: false, without running `body`, once ``cancelAll(waitingAtMost:)`` has begun.
  @discardableResult
  func start(_ body: @escaping @Sendable () async -> Void) -> Bool {
    guard let id = self.state.withLock({ $0.reserve() }) else { return false }
    let task = Task {
      await body()
      self.state.withLock { $0.finished(id) }
    }
    if self.state.withLock({ $0.add(id, task) }) { task.cancel() }
    return true
  }

  /// Stops new handlers from starting, cancels every running one, then waits until they have
  /// all returned or `limit` has passed.
  /// - Returns: how many were still running at the end.
  func cancelAll(waitingAtMost limit: Duration) async -> Int {
    let running = self.state.withLock { state in
      state.close()
      return state.all
    }
    for task in running { task.cancel() }
    let deadline = ContinuousClock.now + limit
    while self.count > 0, ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(5))
    }
    return self.count
  }
}
