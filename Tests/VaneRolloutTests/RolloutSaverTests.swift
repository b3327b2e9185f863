import Foundation
import Synchronization
import Testing
import VaneCore

@testable import VaneRollout

/// Saves of rollouts: written in the order they were queued, on a thread of their own.
@Suite("Rollout saves, in order and off the cooperative pool")
struct RolloutSaverTests {
  @Test("The queue: the first save starts a writer, later ones wait behind it, oldest first")
  func queue() {
    var state = RolloutSaver.State<Int>()
    let first = state.enqueue(1)
    #expect(first, "no writer: start one")
    let second = state.enqueue(2)
    #expect(!second, "a writer is running")
    let taken = [state.next(), state.next()]
    #expect(taken == [1, 2])
    let third = state.enqueue(3)
    #expect(!third)
    let rest = [state.next(), state.next()]
    #expect(rest == [3, nil], "empty: the writer ends")
    #expect(!state.writing)
    let fourth = state.enqueue(4)
    #expect(fourth, "the next save starts a new writer")
  }

  /// What the test's store saw.
  final class Written: Sendable {
    let sequences = Mutex<[Int]>([])
    let threads = Mutex<Set<String>>([])
    let gate = DispatchSemaphore(value: 0)
    let results = Mutex<[Int: Bool]>([:])
    let failSequence: Int?
    init(failSequence: Int? = nil) { self.failSequence = failSequence }
  }

  @Test(
    "Saves queued while one is being written are written after it, in the order queued; a failing save fails only its caller"
  )
  func order() async throws {
    let written = Written(failSequence: 3)
    let saver = RolloutSaver { rollout in
      // Not inside a task: the save is not run by the cooperative pool.
      let inTask = withUnsafeCurrentTask { $0 != nil }
      _ = written.threads.withLock { $0.insert(inTask ? "a task" : "a thread of its own") }
      // The first save holds the writer until the others are queued.
      if rollout.lastSequence == 1 { written.gate.wait() }
      if rollout.lastSequence == written.failSequence {
        throw VaneError(.internalError, "disk full")
      }
      written.sequences.withLock { $0.append(rollout.lastSequence) }
    }
    let base = try RolloutMachineTests.machine().rollout
    let rollouts = (1 ... 4).map { sequence in
      var rollout = base
      rollout.lastSequence = sequence
      return rollout
    }
    var tasks: [Task<Void, Never>] = []
    for (index, rollout) in rollouts.enumerated() {
      tasks.append(
        Task {
          let ok = (try? await saver.save(rollout)) != nil
          written.results.withLock { $0[rollout.lastSequence] = ok }
        }
      )
      // Each save is queued before the next is asked for (the first is being written).
      while index == 0 ? written.threads.withLock({ $0.isEmpty }) : saver.queued < index {
        try await Task.sleep(for: .milliseconds(1))
      }
    }
    written.gate.signal()
    for task in tasks { await task.value }
    #expect(written.sequences.withLock { $0 } == [1, 2, 4])
    #expect(written.results.withLock { $0 } == [1: true, 2: true, 3: false, 4: true])
    #expect(written.threads.withLock { $0 } == ["a thread of its own"])
  }
}
