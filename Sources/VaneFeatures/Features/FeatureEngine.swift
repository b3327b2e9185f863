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
    /// Other symbols the feature set reads.
    var references: [String]

    /// Whether the frame reads this series.
    func reads(_ series: Series) -> Bool {
      series.interval == self.interval
        && (series.symbol == self.symbol || self.references.contains(series.symbol))
    }
  }

  struct Series: Hashable {
    var symbol: String
    var interval: CandleInterval
  }

  /// Cache and subscribers; transitions are plain struct methods (tested without I/O).
  struct State {
    var version = 0
    /// Frames kept up to date incrementally, and for each the earliest open time an ingest
    /// changed in anything it reads since it was last brought up to date (nil: current).
    var frames: [Key: (builder: FrameBuilder, changedFrom: Int64?)] = [:]
    /// Frames taken out to be brought up to date, with what changed since they were taken.
    var updating: [Key: Int64?] = [:]
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

    /// What a frame read needs: the current frame, or a builder to bring up to date from an
    /// open time (taken out of the cache, so that appending to it copies nothing), or nothing
    /// (compute from scratch).
    enum FrameLookup {
      case current(FeatureFrame)
      case update(FrameBuilder, from: Int64)
      case compute
    }

    /// The frame, if it is current.
    func current(_ key: Key) -> FeatureFrame? {
      guard let entry = self.frames[key], entry.changedFrom == nil else { return nil }
      return entry.builder.frame
    }

    mutating func lookup(_ key: Key) -> FrameLookup {
      guard let entry = self.frames[key] else {
        if self.updating[key] == nil { self.updating[key] = .some(nil) }
        return .compute
      }
      guard let changedFrom = entry.changedFrom else { return .current(entry.builder.frame) }
      self.frames[key] = nil
      self.updating[key] = .some(nil)
      return .update(entry.builder, from: changedFrom)
    }

    /// Puts back a frame that could not be brought up to date (the store failed to read).
    mutating func changedBack(_ key: Key, builder: FrameBuilder, from: Int64) {
      let since = self.updating.removeValue(forKey: key) ?? nil
      self.frames[key] = (builder, min(from, since ?? .max))
    }

    /// Puts back a frame brought up to date; changes recorded while it was out keep it stale
    /// from there.
    mutating func store(_ builder: FrameBuilder, for key: Key) {
      let changedFrom = self.updating.removeValue(forKey: key) ?? nil
      self.frames[key] = (builder, changedFrom)
    }

    /// The store changed: frames that read the series go stale from `from`, and so does the
    /// series itself. Returns the subscribers to tell.
    mutating func changed(_ key: Series, from: Int64) -> [AsyncStream<Change>.Continuation] {
      self.version += 1
      for (frame, entry) in self.frames where frame.reads(key) {
        self.frames[frame]?.changedFrom = min(entry.changedFrom ?? .max, from)
      }
      for (frame, changedFrom) in self.updating where frame.reads(key) {
        self.updating[frame] = .some(min(changedFrom ?? .max, from))
      }
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
  /// Held while a frame is brought up to date (never while `state` is).
  private let updates = Mutex(())

  public init(store: CandleStore) {
    self.store = store
  }

  /// The frame of a market under a feature set, over everything stored. After an ingest only
  /// the rows from the earliest changed bar on are computed (an appended bar costs one row).
  public func frame(
    symbol: String,
    interval: CandleInterval,
    featureSet: FeatureSet
  ) throws -> FeatureFrame {
    let key = Key(
      symbol: symbol,
      interval: interval,
      featureSet: featureSet.id,
      references: featureSet.referenceSymbols
    )
    if let frame = self.state.withLock({ $0.current(key) }) { return frame }
    // One frame is brought up to date at a time: a second reader of the same market waits for
    // the first's few rows instead of computing the whole history beside it.
    return try self.updates.withLock { _ in
      var builder: FrameBuilder
      var from = Int64.min
      switch self.state.withLock({ $0.lookup(key) }) {
      case .current(let frame):
        return frame
      case .update(let kept, let changedFrom):
        builder = kept
        from = changedFrom
      case .compute:
        builder = FrameBuilder(featureSet: featureSet, symbol: symbol, interval: interval)
      }
      do {
        let inputs = try FeatureInputs.load(
          symbol: symbol,
          interval: interval,
          featureSet: featureSet
        ) { try self.candles(symbol: $0, interval: interval) }
        builder.update(inputs, changedFrom: from)
      } catch {
        // Nothing was computed: the frame goes back as it was, still stale from where it was.
        self.state.withLock { $0.changedBack(key, builder: builder, from: from) }
        throw error
      }
      let frame = builder.frame
      self.state.withLock { $0.store(builder, for: key) }
      return frame
    }
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
