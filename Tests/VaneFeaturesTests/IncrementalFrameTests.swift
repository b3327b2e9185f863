import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneFeatures

/// Frames kept up to date bar by bar equal frames computed from scratch, bit for bit, on real
/// candles: appended bars, a replaced bar, a gap and its back-fill, a reference's change.
@Suite("Incremental feature frames", .enabled(if: MarketData.available), .computeBound)
struct IncrementalFrameTests {
  static let hour: Int64 = 3_600_000
  /// 2024-01-01 00:00 UTC: about 8,800 bars to the end of the data, kept short for debug builds.
  static let start: Int64 = 1_704_067_200_000

  /// Each symbol's series from `start`.
  static let series: [String: [Candle]] = RealSeries.hourly.mapValues { candles in
    candles.filter { $0.openTime >= Self.start }
  }

  /// The inputs of `symbol` with every series cut after `cut` (the target's own from `own` when
  /// given).
  static func inputs(
    _ symbol: String,
    upTo cut: Int64,
    own: [Candle]? = nil,
    references: [String: [Candle]]? = nil
  ) -> FeatureInputs {
    FeatureInputs.load(symbol: symbol, interval: .h1, featureSet: .v1) { name in
      let candles =
        name == symbol ? (own ?? Self.series[name]!) : (references ?? Self.series)[name]!
      return candles.filter { $0.openTime <= cut }
    }
  }

  static func expectSame(_ a: FeatureFrame, _ b: FeatureFrame, _ label: String) {
    #expect(a.rowCount == b.rowCount, "\(label): rows")
    guard a.rowCount == b.rowCount else { return }
    let time = a.openTimes.indices.first { a.openTimes[$0] != b.openTimes[$0] }
    #expect(time == nil, "\(label): open time at row \(time ?? -1)")
    let status = a.status.indices.first { a.status[$0] != b.status[$0] }
    #expect(status == nil, "\(label): status at row \(status ?? -1)")
    for (c, column) in FeatureSet.v1.columns.enumerated() {
      let (x, y) = (a.columns[c], b.columns[c])
      let mismatch = x.indices.first { r in
        x[r].bitPattern != y[r].bitPattern && !(x[r].isNaN && y[r].isNaN)
      }
      #expect(mismatch == nil, "\(label): \(column.name) at row \(mismatch ?? -1)")
      if mismatch != nil { return }
    }
  }

  @Test("Bars appended one at a time, references first, equal a frame from scratch")
  func appended() throws {
    let eth = try #require(Self.series["ETHUSDT"])
    let first = eth[eth.count - 120].openTime
    var builder = FrameBuilder(featureSet: .v1, symbol: "ETHUSDT", interval: .h1)
    builder.update(Self.inputs("ETHUSDT", upTo: first - Self.hour), changedFrom: .min)
    for bar in eth.suffix(120) {
      // The references' bar lands first (the target's frame reads it), then the target's own.
      var references = Self.series
      references["ETHUSDT"] = eth.filter { $0.openTime < bar.openTime }
      builder.update(
        Self.inputs("ETHUSDT", upTo: bar.openTime, own: references["ETHUSDT"]),
        changedFrom: bar.openTime
      )
      builder.update(Self.inputs("ETHUSDT", upTo: bar.openTime), changedFrom: bar.openTime)
    }
    let scratch = FeatureSet.v1.frame(Self.inputs("ETHUSDT", upTo: .max))
    #expect(builder.frame.rowCount == scratch.rowCount)
    Self.expectSame(builder.frame, scratch, "appended")
  }

  @Test(
    "A replaced bar recomputes from the checkpoint before it",
    arguments: [1, 700, 3_000]
  )
  func replaced(barsBack: Int) throws {
    var own = try #require(Self.series["ETHUSDT"])
    var builder = FrameBuilder(featureSet: .v1, symbol: "ETHUSDT", interval: .h1)
    builder.update(Self.inputs("ETHUSDT", upTo: .max), changedFrom: .min)
    let index = own.count - barsBack
    own[index].close *= 1.01
    own[index].high = max(own[index].high, own[index].close)
    builder.update(Self.inputs("ETHUSDT", upTo: .max, own: own), changedFrom: own[index].openTime)
    Self.expectSame(
      builder.frame,
      FeatureSet.v1.frame(Self.inputs("ETHUSDT", upTo: .max, own: own)),
      "replaced \(barsBack) back"
    )
  }

  @Test("A gap, bars after it, then its back-fill")
  func gapThenBackfill() throws {
    let full = try #require(Self.series["SOLUSDT"])
    let holeStart = full.count - 60
    var holed = full
    holed.removeSubrange(holeStart ..< holeStart + 3)
    var builder = FrameBuilder(featureSet: .v1, symbol: "SOLUSDT", interval: .h1)
    let before = full[holeStart - 200].openTime
    builder.update(Self.inputs("SOLUSDT", upTo: before, own: holed), changedFrom: .min)
    builder.update(Self.inputs("SOLUSDT", upTo: .max, own: holed), changedFrom: before + 1)
    let withGap = FeatureSet.v1.frame(Self.inputs("SOLUSDT", upTo: .max, own: holed))
    Self.expectSame(builder.frame, withGap, "with the gap")
    let afterGap = try #require(withGap.rowIndex(openTime: full[holeStart + 3].openTime))
    #expect(withGap.status[afterGap] == .gap)
    builder.update(
      Self.inputs("SOLUSDT", upTo: .max, own: full),
      changedFrom: full[holeStart].openTime
    )
    Self.expectSame(
      builder.frame,
      FeatureSet.v1.frame(Self.inputs("SOLUSDT", upTo: .max)),
      "back-filled"
    )
  }

  @Test("A reference's replaced bar changes the target's rows from it on")
  func referenceReplaced() throws {
    var builder = FrameBuilder(featureSet: .v1, symbol: "BNBUSDT", interval: .h1)
    builder.update(Self.inputs("BNBUSDT", upTo: .max), changedFrom: .min)
    var references = Self.series
    let btc = try #require(references["BTCUSDT"])
    let index = btc.count - 500
    references["BTCUSDT"]![index].close *= 0.98
    builder.update(
      Self.inputs("BNBUSDT", upTo: .max, references: references),
      changedFrom: btc[index].openTime
    )
    let scratch = FeatureSet.v1.frame(Self.inputs("BNBUSDT", upTo: .max, references: references))
    Self.expectSame(builder.frame, scratch, "reference replaced")
    let before = FeatureSet.v1.frame(Self.inputs("BNBUSDT", upTo: .max))
    let btcReturn = try #require(FeatureSet.v1.columnNames.firstIndex(of: "btc_logret_1"))
    let row = try #require(scratch.rowIndex(openTime: btc[index].openTime))
    #expect(scratch.columns[btcReturn][row] != before.columns[btcReturn][row])
  }

  @Test("The engine over a store: one-bar ingests, a replaced bar, frames equal from scratch")
  func engine() throws {
    let store = try CandleStore(path: ":memory:")
    let engine = FeatureEngine(store: store)
    let last = try #require(Self.series["ETHUSDT"]?.last?.openTime)
    let cut = last - 24 * Self.hour
    for (symbol, candles) in Self.series {
      try store.ingest(
        symbol: symbol,
        interval: .h1,
        candles: candles.filter { $0.openTime <= cut }
      )
    }
    func scratch(_ symbol: String) throws -> FeatureFrame {
      FeatureSet.v1.frame(
        try FeatureInputs.load(symbol: symbol, interval: .h1, featureSet: .v1) {
          try store.candles(symbol: $0, interval: .h1)
        }
      )
    }
    _ = try engine.frame(symbol: "ETHUSDT", interval: .h1, featureSet: .v1)
    for step in Int64(1) ... 6 {
      let time = cut + step * Self.hour
      for symbol in FeatureSet.v1References {
        let bar = try #require(Self.series[symbol]?.first { $0.openTime == time })
        try store.ingest(symbol: symbol, interval: .h1, candles: [bar])
        engine.didIngest(symbol: symbol, interval: .h1, from: time)
      }
      let frame = try engine.frame(symbol: "ETHUSDT", interval: .h1, featureSet: .v1)
      #expect(frame.openTimes.last == time)
    }
    Self.expectSame(
      try engine.frame(symbol: "ETHUSDT", interval: .h1, featureSet: .v1),
      try scratch("ETHUSDT"),
      "after ingests"
    )
    // A corrected bar replaces the newest one.
    var corrected = try #require(
      Self.series["ETHUSDT"]?.first { $0.openTime == cut + 6 * Self.hour }
    )
    corrected.close *= 1.002
    corrected.high = max(corrected.high, corrected.close)
    try store.ingest(
      symbol: "ETHUSDT",
      interval: .h1,
      rows: [CandleRow(file: "", line: 0, candle: corrected)],
      source: "",
      onConflict: .replace,
      at: nil
    )
    engine.didIngest(symbol: "ETHUSDT", interval: .h1, from: corrected.openTime)
    Self.expectSame(
      try engine.frame(symbol: "ETHUSDT", interval: .h1, featureSet: .v1),
      try scratch("ETHUSDT"),
      "after a replaced bar"
    )
  }
}

/// The engine's cache transitions, without a store.
@Suite("Feature engine cache state")
struct FeatureEngineStateTests {
  static let eth = FeatureEngine.Key(
    symbol: "ETHUSDT",
    interval: .h1,
    featureSet: "v1",
    references: FeatureSet.v1References
  )

  static func isCompute(_ lookup: FeatureEngine.State.FrameLookup) -> Bool {
    if case .compute = lookup { return true } else { return false }
  }

  static func updateFrom(_ lookup: FeatureEngine.State.FrameLookup) -> Int64? {
    if case .update(_, let from) = lookup { return from } else { return nil }
  }

  @Test func transitions() {
    var state = FeatureEngine.State()
    let builder = FrameBuilder(featureSet: .v1, symbol: "ETHUSDT", interval: .h1)
    #expect(Self.isCompute(state.lookup(Self.eth)))
    state.store(builder, for: Self.eth)
    if case .current = state.lookup(Self.eth) {} else { Issue.record("stored frame is current") }
    // A reference's ingest and then the target's: stale from the earliest.
    _ = state.changed(.init(symbol: "BTCUSDT", interval: .h1), from: 500)
    _ = state.changed(.init(symbol: "ETHUSDT", interval: .h1), from: 700)
    // Another interval or an unrelated symbol changes nothing.
    _ = state.changed(.init(symbol: "ETHUSDT", interval: .h4), from: 100)
    _ = state.changed(.init(symbol: "XRPUSDT", interval: .h1), from: 100)
    #expect(Self.updateFrom(state.lookup(Self.eth)) == 500)
    // Taken out to update: a second reader computes on its own; a change meanwhile is kept.
    #expect(Self.isCompute(state.lookup(Self.eth)))
    _ = state.changed(.init(symbol: "SOLUSDT", interval: .h1), from: 900)
    state.store(builder, for: Self.eth)
    #expect(Self.updateFrom(state.lookup(Self.eth)) == 900)
    state.store(builder, for: Self.eth)
    if case .current = state.lookup(Self.eth) {} else { Issue.record("current after update") }
  }
}
