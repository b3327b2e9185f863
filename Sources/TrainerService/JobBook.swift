internal import Foundation
internal import SwiftProtobuf
internal import VaneCore
public import VaneProto
internal import VaneRuntime

/// The trainer's jobs as a state machine: every job's record, its event log (the last
/// ``retainedEvents``) and the transitions between states. Pure: no I/O, no clock (times are
/// passed in), so each transition is tested on its own; ``JobBoard`` applies them under a lock.
struct JobBook: Sendable {
  /// Events kept per job for WatchJob's replay.
  static let retainedEvents = 1000

  private(set) var jobs: [String: Vane_V1_Job] = [:]
  private(set) var events: [String: [Vane_V1_JobEvent]] = [:]
  private var sequences: [String: UInt64] = [:]
  /// Job ids in the order they were queued (resumed jobs go to the back).
  private var queue: [String] = []

  static func terminal(_ state: Vane_V1_JobState) -> Bool {
    [.succeeded, .failed, .cancelled, .interrupted].contains(state)
  }

  /// Loads a stored job. A job stored as QUEUED waits again; one stored as RUNNING was cut off
  /// by the process stopping: it becomes INTERRUPTED (resumable), and the returned event says so.
  mutating func load(_ job: Vane_V1_Job, sequence: UInt64, now: Int64) -> Vane_V1_JobEvent? {
    self.jobs[job.id] = job
    self.sequences[job.id] = sequence
    switch job.state {
    case .queued:
      self.queue.append(job.id)
      return nil
    case .running:
      return self.finish(job.id, state: .interrupted, now: now) {
        $0.error = .with {
          $0.code = "UNAVAILABLE"
          $0.message =
            "the trainer stopped while the job was running; ResumeJob continues it after its last finished fold"
          $0.stage = job.progress.stage
        }
      }
    default:
      return nil
    }
  }

  /// Adds a new job in state QUEUED.
  mutating func enqueue(_ job: Vane_V1_Job, now: Int64) -> Vane_V1_JobEvent {
    var job = job
    job.state = .queued
    job.progress = .with { $0.stage = .queued }
    self.jobs[job.id] = job
    self.queue.append(job.id)
    return self.record(job.id, now: now, detail: nil)
  }

  /// The oldest queued job, taken off the queue.
  mutating func next() -> String? {
    while !self.queue.isEmpty {
      let id = self.queue.removeFirst()
      if self.jobs[id]?.state == .queued { return id }
    }
    return nil
  }

  /// QUEUED → RUNNING.
  mutating func start(_ id: String, now: Int64) throws -> Vane_V1_JobEvent {
    guard var job = self.jobs[id] else { throw VaneError(.notFound, "job \(id) does not exist") }
    guard job.state == .queued else {
      throw VaneError(.failedPrecondition, "job \(id) is \(job.state), not QUEUED")
    }
    job.state = .running
    job.startTime = Google_Protobuf_Timestamp(unixMilliseconds: now)
    job.progress = .with { $0.stage = .loadingData }
    job.clearError()
    self.jobs[id] = job
    return self.record(id, now: now, detail: nil)
  }

  /// A RUNNING job's progress (and, when measured, a metric or a log line).
  mutating func progress(
    _ id: String,
    _ progress: Vane_V1_JobProgress,
    detail: Vane_V1_JobEvent.OneOf_Detail? = nil,
    now: Int64
  ) -> Vane_V1_JobEvent? {
    guard var job = self.jobs[id], job.state == .running else { return nil }
    job.progress = progress
    self.jobs[id] = job
    return self.record(id, now: now, detail: detail)
  }

  /// Edits a job's record without an event (results gathered while it runs).
  mutating func update(_ id: String, _ change: (inout Vane_V1_Job) -> Void) {
    guard var job = self.jobs[id] else { return }
    change(&job)
    self.jobs[id] = job
  }

  /// CancelJob: a QUEUED job is CANCELLED at once; a RUNNING one is marked and stops at its next
  /// checkpoint (`true` returned: the caller sets its flag); a CANCELLED one is returned as is.
  /// - Throws: NOT_FOUND; FAILED_PRECONDITION for a job that SUCCEEDED, FAILED or was INTERRUPTED.
  mutating func requestCancel(
    _ id: String,
    reason: String,
    now: Int64
  ) throws -> (job: Vane_V1_Job, events: [Vane_V1_JobEvent], running: Bool) {
    guard var job = self.jobs[id] else { throw VaneError(.notFound, "job \(id) does not exist") }
    switch job.state {
    case .cancelled:
      return (job, [], false)
    case .queued:
      job.cancelReason = reason
      self.jobs[id] = job
      let event = self.finish(id, state: .cancelled, now: now) { _ in }
      return (self.jobs[id]!, [event], false)
    case .running:
      guard !job.cancelRequested else { return (job, [], true) }
      job.cancelRequested = true
      job.cancelReason = reason
      self.jobs[id] = job
      let event = self.record(
        id,
        now: now,
        detail: .log(
          .with {
            $0.level = .warning
            $0.message = "cancellation requested" + (reason.isEmpty ? "" : ": \(reason)")
          }
        )
      )
      return (self.jobs[id]!, [event], true)
    default:
      throw VaneError(
        .failedPrecondition,
        "job \(id) is \(job.state.name): only a QUEUED or RUNNING job can be cancelled"
      )
    }
  }

  /// INTERRUPTED → QUEUED (same id; finished folds are kept by the caller's checkpoints).
  /// - Throws: NOT_FOUND; FAILED_PRECONDITION when the job is not INTERRUPTED.
  mutating func resume(_ id: String, now: Int64) throws -> Vane_V1_JobEvent {
    guard var job = self.jobs[id] else { throw VaneError(.notFound, "job \(id) does not exist") }
    guard job.state == .interrupted else {
      throw VaneError(
        .failedPrecondition,
        "job \(id) is \(job.state.name): only an INTERRUPTED job can be resumed"
      )
    }
    job.state = .queued
    job.progress = .with { $0.stage = .queued }
    job.clearError()
    job.clearFinishTime()
    job.cancelRequested = false
    job.cancelReason = ""
    self.jobs[id] = job
    self.queue.append(id)
    return self.record(
      id,
      now: now,
      detail: .log(
        .with {
          $0.level = .info
          $0.message = "resumed: finished folds are kept"
        }
      )
    )
  }

  /// Ends a job in a final state; the event carries the final job.
  mutating func finish(
    _ id: String,
    state: Vane_V1_JobState,
    now: Int64,
    _ change: (inout Vane_V1_Job) -> Void
  ) -> Vane_V1_JobEvent {
    var job = self.jobs[id]!
    job.state = state
    job.finishTime = Google_Protobuf_Timestamp(unixMilliseconds: now)
    job.cancelRequested = false
    if state == .succeeded {
      job.progress.stage = .done
      job.progress.fraction = 1
    }
    job.progress.clearEstimatedRemaining()
    change(&job)
    self.jobs[id] = job
    return self.record(id, now: now, detail: .finalJob(job))
  }

  /// Appends an event with the job's state and progress now.
  private mutating func record(
    _ id: String,
    now: Int64,
    detail: Vane_V1_JobEvent.OneOf_Detail?
  ) -> Vane_V1_JobEvent {
    let sequence = (self.sequences[id] ?? 0) + 1
    self.sequences[id] = sequence
    let event = Self.event(self.jobs[id]!, sequence: sequence, now: now, detail: detail)
    var log = self.events[id] ?? []
    log.append(event)
    if log.count > Self.retainedEvents { log.removeFirst(log.count - Self.retainedEvents) }
    self.events[id] = log
    return event
  }

  /// The latest sequence number of a job (0: none yet).
  func sequence(_ id: String) -> UInt64 { self.sequences[id] ?? 0 }

  /// An event of `job` as it is now.
  static func event(
    _ job: Vane_V1_Job,
    sequence: UInt64,
    now: Int64,
    detail: Vane_V1_JobEvent.OneOf_Detail?
  ) -> Vane_V1_JobEvent {
    .with {
      $0.jobID = job.id
      $0.sequence = sequence
      $0.time = Google_Protobuf_Timestamp(unixMilliseconds: now)
      $0.state = job.state
      $0.progress = job.progress
      $0.detail = detail
    }
  }

  /// WatchJob's start: retained events after `after` (a snapshot when `after` is 0), or only
  /// the final event for a finished job.
  func opening(_ id: String, after: UInt64, now: Int64) throws -> [Vane_V1_JobEvent] {
    guard let job = self.jobs[id] else { throw VaneError(.notFound, "job \(id) does not exist") }
    let sequence = self.sequences[id] ?? 0
    if Self.terminal(job.state) {
      return [Self.event(job, sequence: sequence, now: now, detail: .finalJob(job))]
    }
    if after > 0 { return (self.events[id] ?? []).filter { $0.sequence > after } }
    return [Self.event(job, sequence: sequence, now: now, detail: nil)]
  }
}

extension Vane_V1_JobState {
  /// The API's name of the state, e.g. "RUNNING".
  public var name: String {
    switch self {
    case .queued: "QUEUED"
    case .running: "RUNNING"
    case .succeeded: "SUCCEEDED"
    case .failed: "FAILED"
    case .cancelled: "CANCELLED"
    case .interrupted: "INTERRUPTED"
    default: "UNSPECIFIED"
    }
  }
}
