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
  /// `Waiter`: what a ``RunningHandlers/cancelAll(waitingAtMost:)`` waits on (a continuation;
  /// any value in the tests).
  struct State<Waiter> {
    private(set) var tasks: [Int: Task<Void, Never>] = [:]
    /// Reserved ids whose task ended before it was recorded.
    private(set) var finishedEarly: Set<Int> = []
    private var nextID = 0
    /// Set by ``RunningHandlers/cancelAll(waitingAtMost:)``: no handler starts after it.
    private(set) var closed = false
    /// The ``RunningHandlers/cancelAll(waitingAtMost:)`` waiting for the last handler to
    /// return, and its number (its time limit resumes that one only).
    private var waiter: (number: Int, continuation: Waiter)?
    private var waits = 0

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

    /// Forgets a handler that returned. Returns the waiter to resume when it was the last.
    mutating func finished(_ id: Int) -> Waiter? {
      guard self.tasks.removeValue(forKey: id) != nil else {
        self.finishedEarly.insert(id)
        return nil
      }
      guard self.tasks.isEmpty, let waiter = self.waiter else { return nil }
      self.waiter = nil
      return waiter.continuation
    }

    /// Waits for the last handler to return. Returns the wait's number, or nil when none is
    /// running (resume at once).
    mutating func wait(_ continuation: Waiter) -> Int? {
      guard !self.tasks.isEmpty else { return nil }
      self.waits += 1
      self.waiter = (self.waits, continuation)
      return self.waits
    }

    /// Wait `number`'s time is up. Returns its waiter to resume, if it still waits.
    mutating func expire(_ number: Int) -> Waiter? {
      guard let waiter = self.waiter, waiter.number == number else { return nil }
      self.waiter = nil
      return waiter.continuation
    }

    /// The tasks to cancel once the drain is over.
    var all: [Task<Void, Never>] { Array(self.tasks.values) }
  }

  private let state = Mutex(State<CheckedContinuation<Void, Never>>())

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
      self.state.withLock { $0.finished(id) }?.resume()
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
    // Resumed by the last handler to return or by the time limit, whichever is first. Not by
    // this task's cancellation: `listen` runs this when it is cancelled itself, and a wait that
    // polled with Task.sleep spun there (a cancelled sleep returns at once), taking a core
    // from the very handlers it waited for for up to `limit`.
    var timer: Task<Void, Never>?
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      guard let number = self.state.withLock({ $0.wait(continuation) }) else {
        return continuation.resume()
      }
      timer = Task {
        try? await Task.sleep(for: limit)
        self.state.withLock { $0.expire(number) }?.resume()
      }
    }
    timer?.cancel()
    return self.count
  }
}
