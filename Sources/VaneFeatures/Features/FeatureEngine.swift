internal import Synchronization

/// Feature frames over the candle store, computed once per store version and shared by online
/// lookups, streams and datasets, so every consumer reads the same values (no training/serving
/// skew). Features are point-in-time (a row uses candles up to its own bar only), so the row of
/// an older bar in the latest frame is exactly what would have been computed then.
public final class FeatureEngine: Sendable {
  /// What changed in the store: the markets that an ingest wrote to.
  public struct Change: Sendable, Equatable {
    public var symbol: String
    public var interval: CandleInterval
  }

  struct Key: Hashable {
    var symbol: String
    var interval: CandleInterval
    var featureSet: String
  }

  /// Cache and subscribers; transitions are plain struct methods (tested without I/O).
  struct State {
    var version = 0
    var frames: [Key: (version: Int, frame: FeatureFrame)] = [:]
    var subscribers: [Int: AsyncStream<Change>.Continuation] = [:]
    var nextSubscriber = 0

    /// A cached frame, if still current.
    func cached(_ key: Key) -> FeatureFrame? {
      guard let entry = self.frames[key], entry.version == self.version else { return nil }
      return entry.frame
    }

    /// Records a frame computed at `version` (a newer store version makes it stale at once).
    mutating func store(_ frame: FeatureFrame, for key: Key, computedAt version: Int) {
      guard version == self.version else { return }
      self.frames[key] = (version, frame)
    }

    /// The store changed: every frame is stale (cross-asset columns read other symbols).
    /// Returns the subscribers to tell.
    mutating func changed() -> [AsyncStream<Change>.Continuation] {
      self.version += 1
      self.frames.removeAll(keepingCapacity: true)
      return Array(self.subscribers.values)
    }

    mutating func subscribe(_ continuation: AsyncStream<Change>.Continuation) -> Int {
      defer { self.nextSubscriber += 1 }
      self.subscribers[self.nextSubscriber] = continuation
      return self.nextSubscriber
    }

    mutating func unsubscribe(_ id: Int) {
      self.subscribers[id] = nil
    }
  }

  public let store: CandleStore
  private let state = Mutex(State())

  public init(store: CandleStore) {
    self.store = store
  }

  /// The frame of a market under a feature set, over everything stored.
  public func frame(symbol: String, interval: CandleInterval, featureSet: FeatureSet) throws -> FeatureFrame {
    let key = Key(symbol: symbol, interval: interval, featureSet: featureSet.id)
    let (cached, version) = self.state.withLock { ($0.cached(key), $0.version) }
    if let cached { return cached }
    let frame = featureSet.frame(try FeatureInputs.load(symbol: symbol, interval: interval, featureSet: featureSet) {
      try self.store.candles(symbol: $0, interval: interval)
    })
    self.state.withLock { $0.store(frame, for: key, computedAt: version) }
    return frame
  }

  /// Tells the engine an ingest wrote to a market: caches go stale, streams wake up.
  public func didIngest(symbol: String, interval: CandleInterval) {
    let subscribers = self.state.withLock { $0.changed() }
    for subscriber in subscribers { subscriber.yield(Change(symbol: symbol, interval: interval)) }
  }

  /// Changes from now on, until the stream is dropped.
  public func changes() -> AsyncStream<Change> {
    let (stream, continuation) = AsyncStream<Change>.makeStream(bufferingPolicy: .bufferingNewest(1024))
    let id = self.state.withLock { $0.subscribe(continuation) }
    continuation.onTermination = { [weak self] _ in
      self?.state.withLock { $0.unsubscribe(id) }
    }
    return stream
  }
}
