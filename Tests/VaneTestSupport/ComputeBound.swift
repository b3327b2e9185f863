public import Testing
public import VaneCore
internal import Foundation

/// Threads of their own for tests that compute for seconds without awaiting.
///
/// Swift Testing runs every test, synchronous ones included, on the cooperative pool, which has
/// one thread per core: two here. Two tests training models there for half a minute leave no
/// thread for the tests that await servers, and those then miss their deadlines (a `vane serve`
/// probed for 90 s whose answers are never read). A test marked ``ComputeBound`` runs its body
/// on these threads instead (as many as cores, so such tests cannot take more than their share);
/// the kernel shares the cores between them and the pool.
public enum ComputeExecutor {
  public static let shared = ThreadExecutor(
    name: "vane-compute",
    threads: max(1, ProcessInfo.processInfo.activeProcessorCount)
  )
}

/// Runs each test of a suite (or one test) on ``ComputeExecutor/shared``: for tests that train
/// models or read years of candles without awaiting.
public struct ComputeBound: TestTrait, SuiteTrait, TestScoping {
  public var isRecursive: Bool { true }

  public func provideScope(
    for test: Test,
    testCase: Test.Case?,
    performing function: @Sendable () async throws -> Void
  ) async throws {
    try await withTaskExecutorPreference(ComputeExecutor.shared) { try await function() }
  }
}

extension Trait where Self == ComputeBound {
  /// Runs the test's body on threads of its own, off the cooperative pool (see ``ComputeBound``).
  public static var computeBound: Self { Self() }
}
