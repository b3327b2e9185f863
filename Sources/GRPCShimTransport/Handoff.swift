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

  /// The value arrives unless one is already waiting to be taken, which then wins (an ending
  /// call must not erase what arrived before it). Returns the parked continuation, if any.
  mutating func deliverUnlessReady(_ value: Value) -> CheckedContinuation<Value, Never>? {
    if case .ready = self.state { return nil }
    return self.deliver(value)
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
enum ReadResult: Sendable, Equatable {
  case message([UInt8])
  case end
}

/// Reads that run ahead of the consumer: the shim's reads are pull-based (one at a time), and
/// each one the consumer waits for costs a thread hop when it completes. Starting the next read
/// as soon as the previous one completes means the consumer usually finds its message already
/// here. `limit` bounds how many results may be buffered or in flight, so a slow consumer still
/// pushes back on the sender (1 for streams; 2 where the request or response is a single
/// message, so that the message and the end of the stream are both read ahead).
struct ReadAhead: Sendable {
  private var buffered: [ReadResult] = []
  private var inFlight = false
  private var ended = false
  private var waiter: CheckedContinuation<ReadResult, Never>?
  let limit: Int

  init(limit: Int) {
    precondition(limit >= 1)
    self.limit = limit
  }

  /// Whether a read should be started now; if so, it is counted as in flight.
  mutating func startReadIfNeeded() -> Bool {
    guard !self.ended, !self.inFlight, self.buffered.count < self.limit else { return false }
    self.inFlight = true
    return true
  }

  /// Nothing more will be read ahead until the consumer takes something: the stream has ended,
  /// or `limit` results are buffered. For a single request, its message and its end are here.
  var isComplete: Bool { self.ended || self.buffered.count >= self.limit }

  /// A read completed. Returns the waiting consumer to resume with it, if one is parked.
  mutating func completed(_ result: ReadResult) -> CheckedContinuation<ReadResult, Never>? {
    self.inFlight = false
    if case .end = result { self.ended = true }
    if let waiter = self.waiter {
      self.waiter = nil
      return waiter
    }
    self.buffered.append(result)
    return nil
  }

  /// The consumer asks for the next result: returns it when one is buffered; otherwise parks
  /// the continuation.
  mutating func next(_ continuation: CheckedContinuation<ReadResult, Never>) -> ReadResult? {
    if !self.buffered.isEmpty { return self.buffered.removeFirst() }
    if self.ended { return .end }
    precondition(self.waiter == nil, "ReadAhead: a second consumer arrived while one is parked")
    self.waiter = continuation
    return nil
  }

  /// The call is over: ends the stream for a parked consumer and for later reads.
  mutating func close() -> CheckedContinuation<ReadResult, Never>? {
    self.ended = true
    self.inFlight = false
    defer { self.waiter = nil }
    return self.waiter
  }
}
