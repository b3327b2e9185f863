internal import Synchronization

/// A flag long-running numeric work polls between steps (mini-batches, boosting rounds, folds)
/// so that a cancellation requested from another thread takes effect within one step. The work
/// runs on blocking threads, outside any task, so task cancellation cannot reach it.
public final class CancellationFlag: Sendable {
  private let state = Atomic<Bool>(false)

  public init() {}

  /// Asks the work to stop; idempotent.
  public func cancel() { self.state.store(true, ordering: .releasing) }

  /// Whether ``cancel()`` was called.
  public var isCancelled: Bool { self.state.load(ordering: .acquiring) }
}
