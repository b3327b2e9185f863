internal import Synchronization

/// Feature frames over the candle store, computed once per store version and shared by online
/// lookups, streams and datasets, so every consumer reads the same values (no training/serving
/// skew). Features are point-in-time (a row uses candles up to its own bar only), so the row of
/// an older bar in the latest frame is exactly what would have been computed then.
///
/// The stored series are kept in memory too: an ingest marks the bars from its earliest open
/// time stale, and the next read fetches only those from the store (a live feed's one new bar
/// costs one row, not the whole history).
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

  struct Series: Hashable {
    var symbol: String
    var interval: CandleInterval
  }

  /// Cache and subscribers; transitions are plain struct methods (tested without I/O).
  struct State {
    var version = 0
    var frames: [Key: (version: Int, frame: FeatureFrame)] = [:]
    var subscribers: [Int: AsyncStream<Change>.Continuation] = [:]
    var nextSubscriber = 0
    /// Stored series read so far, and for each the earliest open time written since it was read.
    var series: [Series: [Candle]] = [:]
    var staleFrom: [Series: Int64] = [:]

    /// A cached series: its candles and where they went stale (nil: current).
    func cached(_ key: Series) -> (candles: [Candle], staleFrom: Int64?)? {
      self.series[key].map { ($0, self.staleFrom[key]) }
    }

    /// Records a series read at `version` (an ingest since then keeps it stale).
    mutating func store(_ candles: [Candle], for key: Series, readAt version: Int) {
      guard version == self.version else { return }
      self.series[key] = candles
      self.staleFrom[key] = nil
    }

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

    /// The store changed: every frame is stale (cross-asset columns read other symbols), and
    /// the series from `from` on. Returns the subscribers to tell.
    mutating func changed(_ key: Series, from: Int64) -> [AsyncStream<Change>.Continuation] {
      self.version += 1
      self.frames.removeAll(keepingCapacity: true)
      if self.series[key] != nil { self.staleFrom[key] = min(self.staleFrom[key] ?? .max, from) }
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
  public func frame(
    symbol: String,
    interval: CandleInterval,
    featureSet: FeatureSet
  ) throws -> FeatureFrame {
    let key = Key(symbol: symbol, interval: interval, featureSet: featureSet.id)
    let (cached, version) = self.state.withLock { ($0.cached(key), $0.version) }
    if let cached { return cached }
    let frame = featureSet.frame(
      try FeatureInputs.load(symbol: symbol, interval: interval, featureSet: featureSet) {
        try self.candles(symbol: $0, interval: interval)
      }
    )
    self.state.withLock { $0.store(frame, for: key, computedAt: version) }
    return frame
  }

  /// Every stored candle of a market, in open-time order: from memory, with what an ingest
  /// changed since read again from the store.
  public func candles(symbol: String, interval: CandleInterval) throws -> [Candle] {
    let key = Series(symbol: symbol, interval: interval)
    let (cached, version) = self.state.withLock { ($0.cached(key), $0.version) }
    switch cached {
    case let (candles, nil)?:
      return candles
    case let (kept, staleFrom?)?:
      let tail = try self.store.candles(symbol: symbol, interval: interval, from: staleFrom)
      let candles = Array(kept.prefix { $0.openTime < staleFrom }) + tail
      // An ingest during the read may have changed bars before `staleFrom` too: then only a
      // whole read is one consistent snapshot.
      let current = self.state.withLock { state in
        guard state.version == version else { return false }
        state.store(candles, for: key, readAt: version)
        return true
      }
      if current { return candles }
    case nil:
      break
    }
    let candles = try self.store.candles(symbol: symbol, interval: interval)
    self.state.withLock { $0.store(candles, for: key, readAt: version) }
    return candles
  }

  /// Tells the engine an ingest wrote to a market, at open times from `from` on (nil: anywhere):
  /// caches go stale, streams wake up.
  public func didIngest(symbol: String, interval: CandleInterval, from: Int64? = nil) {
    let subscribers = self.state.withLock {
      $0.changed(Series(symbol: symbol, interval: interval), from: from ?? .min)
    }
    for subscriber in subscribers { subscriber.yield(Change(symbol: symbol, interval: interval)) }
  }

  /// Changes from now on, until the stream is dropped.
  public func changes() -> AsyncStream<Change> {
    let (stream, continuation) = AsyncStream<Change>.makeStream(
      bufferingPolicy: .bufferingNewest(1024)
    )
    let id = self.state.withLock { $0.subscribe(continuation) }
    continuation.onTermination = { [weak self] _ in
      self?.state.withLock { $0.unsubscribe(id) }
    }
    return stream
  }
}
