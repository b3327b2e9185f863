/// A one-slot handoff between a C callback (any thread) and the one Swift task waiting for it.
///
/// The shim completes operations on gRPC's threads; a task waits for at most one operation of a
/// kind at a time (one read, one "writable" signal). The value may arrive before the task starts
/// waiting or after, so the slot records whichever came first. Kept as a plain struct so that
/// its transitions are tested without I/O; callers hold it in a `Mutex` and resume continuations
/// after releasing the lock.
struct Handoff<Value: Sendable>: Sendable {
  private enum State: Sendable {
    case empty
    case waiting(CheckedContinuation<Value, Never>)
    case ready(Value)
  }

  private var state: State = .empty

  init() {}

  /// The waiter arrives. Returns the value when it is already here (the continuation must then be
  /// resumed by the caller with it); otherwise the continuation is parked.
  mutating func wait(_ continuation: CheckedContinuation<Value, Never>) -> Value? {
    switch self.state {
    case .empty:
      self.state = .waiting(continuation)
      return nil
    case .ready(let value):
      self.state = .empty
      return value
    case .waiting:
      preconditionFailure("Handoff: a second waiter arrived while one is parked")
    }
  }

  /// The value arrives. Returns the parked continuation to resume with it, if any.
  mutating func deliver(_ value: Value) -> CheckedContinuation<Value, Never>? {
    switch self.state {
    case .empty, .ready:
      // A newer value replaces an unconsumed one: callers deliver at most one per operation
      // they started, except the terminal value, which must win.
      self.state = .ready(value)
      return nil
    case .waiting(let continuation):
      self.state = .empty
      return continuation
    }
  }

  /// Takes back a parked continuation (when the operation could not be started after all).
  mutating func cancelWait() -> CheckedContinuation<Value, Never>? {
    if case .waiting(let continuation) = self.state {
      self.state = .empty
      return continuation
    }
    return nil
  }

  var isWaiting: Bool {
    if case .waiting = self.state { return true }
    return false
  }
}

/// The result of one pull-based read.
enum ReadResult: Sendable {
  case message([UInt8])
  case end
}
