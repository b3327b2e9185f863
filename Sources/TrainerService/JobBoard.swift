internal import Foundation
internal import Synchronization
internal import VaneCore
internal import VaneProto

/// The live side of the trainer's jobs: ``JobBook``'s transitions applied under a lock and saved
/// to the ``JobStore``, events handed to WatchJob streams, the cancellation flag of the running
/// job, and a signal that wakes the worker when a job is queued.
///
/// A transition, the save of the job as it leaves it and the publication of its event are one
/// ordered step (``ordered(_:)``): a cancel racing a finish can neither store an older state
/// over a newer one nor publish events out of sequence.
final class JobBoard: Sendable {
  private struct Watchers {
    var next = 0
    /// Per job, per watcher: its stream and the last sequence its opening covered.
    var streams:
      [String: [Int: (continuation: AsyncStream<Vane_V1_JobEvent>.Continuation, since: UInt64)]] =
        [:]
  }

  private let book = Mutex(JobBook())
  /// Held across a transition and its save and publication (see ``ordered(_:)``); the book's own
  /// lock stays short, so readers never wait for the store.
  private let order = Mutex(())
  private let watchers = Mutex(Watchers())
  private let flags = Mutex<[String: CancellationFlag]>([:])
  let store: JobStore
  /// Yields once per queued job; the worker waits on it.
  let wakeups: AsyncStream<Void>
  private let wake: AsyncStream<Void>.Continuation

  init(store: JobStore, now: Int64) throws {
    self.store = store
    (self.wakeups, self.wake) = AsyncStream.makeStream(
      of: Void.self,
      bufferingPolicy: .bufferingNewest(1)
    )
    // Jobs of an earlier run: queued ones wait again, running ones were interrupted.
    for (job, sequence) in try store.jobs() {
      try self.ordered { book in book.load(job, sequence: sequence, now: now).map { [$0] } ?? [] }
    }
    self.wake.yield()
  }

  static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

  func job(_ id: String) throws -> Vane_V1_Job {
    guard let job = self.book.withLock({ $0.jobs[id] }) else {
      throw VaneError(.notFound, "job \(id) does not exist")
    }
    return job
  }

  /// Every job, newest first.
  func allJobs() -> [Vane_V1_Job] {
    self.book.withLock { book in
      book.jobs.values.sorted { a, b in
        (a.createTime.seconds, a.createTime.nanos, a.id) > (
          b.createTime.seconds, b.createTime.nanos, b.id
        )
      }
    }
  }

  /// The job queued earlier under `requestID`, if any.
  func job(requestID: String) -> Vane_V1_Job? {
    guard !requestID.isEmpty else { return nil }
    return self.book.withLock { $0.jobs.values.first { $0.requestID == requestID } }
  }

  func enqueue(_ job: Vane_V1_Job) throws -> Vane_V1_Job {
    try self.ordered { [$0.enqueue(job, now: Self.now())] }
    self.wake.yield()
    return try self.job(job.id)
  }

  /// The next queued job, now RUNNING, with a fresh cancellation flag.
  func startNext() throws -> (job: Vane_V1_Job, flag: CancellationFlag)? {
    let flag = CancellationFlag()
    let started = try self.ordered { book -> [Vane_V1_JobEvent] in
      guard let id = book.next() else { return [] }
      let event = try book.start(id, now: Self.now())
      // Set before the event is out, so a cancel that follows it finds the flag.
      self.flags.withLock { $0[id] = flag }
      return [event]
    }
    guard let id = started.first?.jobID else { return nil }
    return (try self.job(id), flag)
  }

  func progress(
    _ id: String,
    _ progress: Vane_V1_JobProgress,
    detail: Vane_V1_JobEvent.OneOf_Detail? = nil,
    save: Bool = false
  ) {
    _ = try? self.ordered(save: save) { book in
      book.progress(id, progress, detail: detail, now: Self.now()).map { [$0] } ?? []
    }
  }

  func update(_ id: String, _ change: (inout Vane_V1_Job) -> Void) {
    self.book.withLock { $0.update(id, change) }
  }

  func cancel(_ id: String, reason: String) throws -> Vane_V1_Job {
    var running = false
    try self.ordered { book in
      let (_, events, isRunning) = try book.requestCancel(id, reason: reason, now: Self.now())
      running = isRunning
      return events
    }
    if running { self.flags.withLock { $0[id] }?.cancel() }
    return try self.job(id)
  }

  func resume(_ id: String) throws -> Vane_V1_Job {
    try self.ordered { [try $0.resume(id, now: Self.now())] }
    self.wake.yield()
    return try self.job(id)
  }

  func finish(_ id: String, state: Vane_V1_JobState, _ change: (inout Vane_V1_Job) -> Void) throws {
    try self.ordered { [$0.finish(id, state: state, now: Self.now(), change)] }
    self.flags.withLock { $0[id] = nil }
  }

  /// Stops the running job (the trainer is shutting down): it ends INTERRUPTED.
  func interruptRunning() {
    for flag in self.flags.withLock({ Array($0.values) }) { flag.cancel() }
  }

  /// Applies `transition` to the book and, in the same ordered step, saves each job as its event
  /// leaves it (unless `save` is false) and hands the events to their watchers: the next
  /// transition waits until these are out.
  /// - Returns: the events.
  @discardableResult
  private func ordered(
    save: Bool = true,
    _ transition: (inout JobBook) throws -> [Vane_V1_JobEvent]
  ) throws -> [Vane_V1_JobEvent] {
    try self.order.withLock { _ in
      let (events, jobs) = try self.book.withLock { book in
        let events = try transition(&book)
        return (events, events.map { book.jobs[$0.jobID] })
      }
      for (event, job) in zip(events, jobs) {
        if save, let job { try self.store.save(job, sequence: event.sequence) }
        self.publish(event)
      }
      return events
    }
  }

  private func publish(_ event: Vane_V1_JobEvent) {
    let streams = self.watchers.withLock { Array(($0.streams[event.jobID] ?? [:]).values) }
    for stream in streams where event.sequence > stream.since {
      stream.continuation.yield(event)
      if case .finalJob? = event.detail { stream.continuation.finish() }
    }
  }

  /// WatchJob: the opening events (replay or snapshot), then live events until the final one.
  /// - Throws: NOT_FOUND.
  func watch(_ id: String, after: UInt64) throws -> AsyncStream<Vane_V1_JobEvent> {
    let (stream, continuation) = AsyncStream.makeStream(
      of: Vane_V1_JobEvent.self,
      bufferingPolicy: .bufferingNewest(4096)
    )
    // Registered under the book's lock, so no event falls between the opening and the live ones.
    try self.book.withLock { book in
      let opening = try book.opening(id, after: after, now: Self.now())
      for event in opening { continuation.yield(event) }
      if let last = opening.last, case .finalJob? = last.detail {
        continuation.finish()
        return
      }
      let token = self.watchers.withLock { watchers in
        watchers.next += 1
        watchers.streams[id, default: [:]][watchers.next] = (continuation, book.sequence(id))
        return watchers.next
      }
      continuation.onTermination = { [weak self] _ in
        _ = self?.watchers.withLock { $0.streams[id]?.removeValue(forKey: token) }
      }
    }
    return stream
  }

  /// Ends every watch stream (the server drains).
  func closeWatchers() {
    let streams = self.watchers.withLock { watchers in
      defer { watchers.streams = [:] }
      return watchers.streams.values.flatMap(\.values)
    }
    for stream in streams { stream.continuation.finish() }
    self.wake.finish()
  }
}
