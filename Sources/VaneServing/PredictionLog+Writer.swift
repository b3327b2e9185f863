public import ServiceLifecycle
internal import Foundation
public import VaneCore

extension PredictionLog {
  /// Writes the queued answers every `interval`, in one transaction each, and prunes answers
  /// past the retention hourly; on graceful shutdown it writes what is left, then ends.
  public struct Writer: Service {
    public let log: PredictionLog
    public let interval: Duration
    let pool: BlockingPool

    public init(
      log: PredictionLog,
      interval: Duration = .milliseconds(100),
      pool: BlockingPool = .shared
    ) {
      self.log = log
      self.interval = interval
      self.pool = pool
    }

    public func run() async {
      // Cancellation ends the sleep; the last flush below still runs.
      await cancelWhenGracefulShutdown {
        var lastPrune = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
          try? await Task.sleep(for: self.interval)
          _ = try? await self.pool.run { try self.log.flush() }
          if ContinuousClock.now - lastPrune >= .seconds(3600) {
            lastPrune = ContinuousClock.now
            _ = try? await self.pool.run {
              try self.log.prune(now: Int64(Date().timeIntervalSince1970 * 1000))
            }
          }
        }
      }
      _ = try? await self.pool.run { try self.log.flush() }
    }
  }
}
