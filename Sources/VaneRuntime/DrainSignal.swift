internal import Synchronization

/// Says when a service starts draining (its graceful shutdown), to the handlers of streams that
/// never end on their own: they end at once, with UNAVAILABLE and a hint to resubscribe,
/// instead of holding the drain for its whole grace period.
///
/// Explicit rather than swift-service-lifecycle's task-local shutdown handler: the transport
/// starts each handler from grpc++'s callback thread, outside the server task whose task-local
/// values it would otherwise inherit.
public final class DrainSignal: Sendable {
  struct State {
    var started = false
    var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextID = 0
  }

  private let state = Mutex(State())

  public init() {}

  /// Whether the drain has started.
  public var started: Bool { self.state.withLock { $0.started } }

  /// Starts the drain: every waiter returns. Idempotent.
  public func start() {
    let waiters = self.state.withLock { state in
      state.started = true
      defer { state.waiters.removeAll() }
      return Array(state.waiters.values)
    }
    for waiter in waiters { waiter.resume() }
  }

  /// Returns once the drain starts, or when the task is cancelled (check which with
  /// ``started``).
  public func wait() async {
    let id = self.state.withLock { state in
      defer { state.nextID += 1 }
      return state.nextID
    }
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let now = self.state.withLock { state -> Bool in
          if state.started || Task.isCancelled { return true }
          state.waiters[id] = continuation
          return false
        }
        if now { continuation.resume() }
      }
    } onCancel: {
      self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
  }
}
