internal import Foundation
internal import Synchronization

/// Saves rollouts in the order their transitions happened, off the Swift cooperative pool.
///
/// ``RolloutController`` is an actor: a save it awaited on the blocking pool would let another
/// of its methods run meanwhile, and that method's save could reach SQLite first, storing an
/// older rollout over a newer one. Here a save is queued synchronously, in the controller's
/// own order, and one thread writes the queue front to back; the controller then waits for its
/// own save to be done. A thread is started when saves arrive and ends when the queue is empty:
/// transitions are rare (a few per rollout step), and no thread outlives its work.
final class RolloutSaver: Sendable {
  /// One queued save and who waits for it.
  struct Item: Sendable {
    var rollout: Rollout
    var done: CheckedContinuation<Void, any Error>
  }

  /// The queue and whether a thread is writing it, as transitions that return what to do
  /// once the lock is released (tested without threads).
  struct State<Element> {
    private(set) var queue: [Element] = []
    private(set) var writing = false

    /// Queues a save. Returns true when no thread is writing: the caller starts one.
    mutating func enqueue(_ item: Element) -> Bool {
      self.queue.append(item)
      if self.writing { return false }
      self.writing = true
      return true
    }

    /// The next save to write, oldest first; nil (and the writer ends) when none is left.
    mutating func next() -> Element? {
      if self.queue.isEmpty {
        self.writing = false
        return nil
      }
      return self.queue.removeFirst()
    }
  }

  private let state = Mutex(State<Item>())
  private let write: @Sendable (Rollout) throws -> Void

  /// - Parameter write: the blocking save (the store's).
  init(_ write: @escaping @Sendable (Rollout) throws -> Void) {
    self.write = write
  }

  /// Queues `rollout` behind every save queued before it, then waits until it is written.
  ///
  /// The queueing happens before this suspends, so saves are written in the order of the
  /// calls. Not cancellable: a transition that happened is stored even if its caller is gone.
  func save(_ rollout: Rollout) async throws {
    try await withCheckedThrowingContinuation { continuation in
      let start = self.state.withLock { $0.enqueue(Item(rollout: rollout, done: continuation)) }
      if start {
        let thread = Thread { [self] in
          Thread.current.name = "vane-rollout-saver"
          self.drain()
        }
        thread.start()
      }
    }
  }

  /// Saves queued and not yet taken by the writer (for tests).
  var queued: Int { self.state.withLock { $0.queue.count } }

  private func drain() {
    while let item = self.state.withLock({ $0.next() }) {
      do {
        try self.write(item.rollout)
        item.done.resume()
      } catch {
        item.done.resume(throwing: error)
      }
    }
  }
}
