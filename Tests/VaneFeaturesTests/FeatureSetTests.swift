import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneFeatures

@Suite("Feature set v1: definitions, hash, gaps, no look-ahead", .computeBound)
struct FeatureSetTests {
  @Test(
    "v1 has about 80 distinct, documented columns and a stable hash that moves with any definition"
  )
  func definition() throws {
    let set = FeatureSet.v1
    #expect((70 ... 90).contains(set.columns.count))
    #expect(Set(set.columnNames).count == set.columns.count)
    #expect(set.columns.allSatisfy { !$0.definition.isEmpty && $0.lookback >= 1 })
    #expect(set.sha256.count == 64 && set.sha256 == FeatureSet.v1.sha256)
    #expect(set.columns.contains { $0.name == "hvol_20" })
    #expect(
      set.groups == [
        "returns", "volatility", "momentum", "trend", "volume", "candle", "calendar",
        "timeframe_4h", "timeframe_1d", "cross_asset",
      ]
    )
    var columns = set.columns
    columns[16].definition += " "
    let changed = FeatureSet(
      id: set.id,
      summary: set.summary,
      columns: columns,
      intervals: set.intervals,
      computationVersion: 1,
      referenceSymbols: set.referenceSymbols,
      makeStream: set.makeStream
    )
    #expect(changed.sha256 != set.sha256)
    let recomputed = FeatureSet(
      id: set.id,
      summary: set.summary,
      columns: set.columns,
      intervals: set.intervals,
      computationVersion: 2,
      referenceSymbols: set.referenceSymbols,
      makeStream: set.makeStream
    )
    #expect(recomputed.sha256 != set.sha256)
    // No raw price reaches a model: every scaled column is a ratio, a return or bounded.
    #expect(
      !set.columnNames.contains {
        ["open", "high", "low", "close", "sma_20", "ema_50"].contains($0)
      }
    )
  }

  @Test(
    "Look-ahead: features at t computed on data truncated at t equal those on the full history",
    .enabled(if: MarketData.available)
  )
  func noLookAhead() throws {
    // From 2023 on (the computation restarts where the data starts, the same for both sides).
    let start = RealSeries.recent
    let full = FeatureSet.v1.frame(RealSeries.inputs("ETHUSDT", from: start))
    // Bars spread over the period, including hours just before and at 4h and 1d closes.
    let times: [Int64] = [
      1_688_169_600_000, 1_688_169_600_000 + 2 * 3_600_000, 1_688_169_600_000 + 3 * 3_600_000,
      1_704_067_200_000 + 23 * 3_600_000, 1_719_792_000_000 + 7 * 3_600_000, 1_735_686_000_000,
    ]
    for t in times {
      let truncated = FeatureSet.v1.frame(RealSeries.inputs("ETHUSDT", from: start, upTo: t))
      let r = try #require(full.rowIndex(openTime: t))
      let rt = try #require(truncated.rowIndex(openTime: t))
      #expect(rt == truncated.rowCount - 1)
      #expect(full.status[r] == truncated.status[rt])
      for (c, column) in FeatureSet.v1.columns.enumerated() {
        let a = full.columns[c][r], b = truncated.columns[c][rt]
        #expect(
          a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN),
          "\(column.name) at \(CandleTime.format(t)): \(a) vs \(b)"
        )
      }
    }
  }

  @Test(
    "Complete rows have every value; rows after a gap are missing for the lookback, then complete again",
    .enabled(if: MarketData.available)
  )
  func gapsAreMissing() throws {
    let frame = FeatureSet.v1.frame(RealSeries.inputs("BTCUSDT"))
    let set = FeatureSet.v1
    for r in 0 ..< frame.rowCount where frame.status[r] == .complete {
      #expect(frame.columns.allSatisfy { $0[r].isFinite })
    }
    // The first outage after all four symbols trade (SOL lists 2020-08-11): the bar after it is
    // a gap row, and so is every bar within the longest lookback after it.
    let after = try #require(
      (1 ..< frame.rowCount).first {
        frame.openTimes[$0] > 1_598_918_400_000
          && frame.openTimes[$0] - frame.openTimes[$0 - 1] > 3_600_000
      }
    )
    #expect(frame.status[after] == .gap)
    #expect(frame.columns[0][after].isNaN)  // logret_1 crosses the gap
    #expect(frame.status[after + set.maxLookback - 25] == .gap)
    let recovered = (after ..< frame.rowCount).first { frame.status[$0] == .complete }
    #expect(recovered != nil && recovered! - after <= set.maxLookback)
    // The first rows of the series are warm-up.
    #expect(frame.status[0] == .warmup && frame.status[400] == .warmup)
  }

  @Test("Gaps never invent values: a synthetic series with one missing hour")
  func syntheticGap() {
    var candles: [Candle] = []
    var price = 100.0
    var seed: UInt64 = 7
    for hour in 0 ..< 1200 where hour != 800 {
      seed = seed &* 6364136223846793005 &+ 1442695040888963407
      let move = Double(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 100_000
      let open = price
      price *= 1 + move
      candles.append(
        Candle(
          openTime: Int64(hour) * 3_600_000,
          open: open,
          high: max(open, price) * 1.001,
          low: min(open, price) * 0.999,
          close: price,
          volume: 10 + Double(hour % 7)
        )
      )
    }
    let frame = FeatureSet.v1.frame(
      FeatureInputs(symbol: "BTCUSDT", interval: .h1, candles: candles, references: [:])
    )
    let logret1 = FeatureSet.v1.columnNames.firstIndex(of: "logret_1")!
    let rsi = FeatureSet.v1.columnNames.firstIndex(of: "rsi_14")!
    let bar801 = frame.rowIndex(openTime: 801 * 3_600_000)!
    #expect(frame.columns[logret1][bar801].isNaN)
    #expect(frame.columns[logret1][bar801 + 1].isFinite)
    #expect(frame.columns[rsi][bar801 + 13].isNaN)
    #expect(frame.columns[rsi][bar801 + 14].isFinite)
    #expect(frame.status[bar801] == .gap)
    // Cross-asset references are absent here: those rows are missing, not invented.
    #expect(frame.status[700] == .missingFeature)
  }
}

@Suite("Labels")
struct LabelTests {
  static func series(_ closes: [Double], skip: Set<Int> = []) -> [Candle] {
    closes.enumerated().filter { !skip.contains($0.offset) }.map { i, close in
      Candle(
        openTime: Int64(i) * 3_600_000,
        open: close,
        high: close * 1.01,
        low: close * 0.99,
        close: close,
        volume: 1
      )
    }
  }

  @Test(
    "Binary direction: UP iff close[t+h] > close[t]; end time is the close of bar t+h; never across a gap"
  )
  func binary() {
    let candles = Self.series([1, 2, 1.5, 1.5, 3, 2, 4], skip: [5])
    let labels = LabelSpec(kind: .binary, horizons: [1, 2]).labels(candles, interval: .h1)
    #expect(labels[0].label == [1, 0, 0, 1, -1, -1])
    #expect(labels[0].labelEnd[0] == 2 * 3_600_000)
    #expect(labels[1].label == [1, 0, 1, -1, -1, -1])
    #expect(labels[1].labelEnd[1] == 4 * 3_600_000)
    #expect(labels[0].blockedByGap[4] && !labels[0].blockedByGap[5])
    #expect(abs(labels[0].forwardReturn[0] - log(2)) < 1e-15)
  }

  @Test(
    "Three classes: HOLD inside the band",
    arguments: [
      (LabelSpec.HoldBand.returnThreshold(0.05), [Int32](arrayLiteral: 2, 1, 0, -1)),
      (.returnThreshold(0.001), [2, 2, 0, -1]),
    ]
  )
  func threeClass(band: LabelSpec.HoldBand, expected: [Int32]) {
    let candles = Self.series([100, 110, 112, 100])
    let labels = LabelSpec(kind: .threeClass, horizons: [1], holdBand: band).labels(
      candles,
      interval: .h1
    )
    #expect(labels[0].label == expected)
  }

  @Test(
    "Three classes with a volatility-scaled band: HOLD inside k × rolling σ (or k × ATR); unresolved while the band warms up",
    arguments: [
      LabelSpec.HoldBand.volatility(multiple: 1.5, window: 2), .atr(multiple: 1, period: 2),
    ]
  )
  func volatilityBands(band: LabelSpec.HoldBand) {
    // Small moves of ±1 %, then a 10 % jump: HOLD, HOLD, UP once the band exists.
    let candles = Self.series([100, 101, 100, 101, 100, 110])
    let labels = LabelSpec(kind: .threeClass, horizons: [1], holdBand: band).labels(
      candles,
      interval: .h1
    )
    #expect(labels[0].label == [-1, -1, 1, 1, 2, -1])
  }
}

@Suite("Scalers")
struct ScalerTests {
  static let values: [Double] = [1, 10, 0.5, 2, 20, 0.5, 3, 30, 0.5, 4, 1000, 0.5, .nan, 40, 0.5]

  @Test(
    "Standard and robust scalers: closed-form centres and scales; single row equals batch; JSON round trip",
    arguments: [FeatureScaler.Method.standard, .robust]
  )
  func scaler(method: FeatureScaler.Method) throws {
    let scaler = FeatureScaler.fit(
      method: method,
      columns: ["a", "b", "c"],
      scaled: [true, true, true],
      values: Self.values,
      rows: 5
    )
    switch method {
    case .standard:
      #expect(scaler.center[0] == 2.5)
      #expect(abs(scaler.scale[0] - (1.25).squareRoot()) < 1e-15)
    case .robust:
      #expect(scaler.center[1] == 30)
      #expect(scaler.scale[1] == 40 - 20)
    case .identity:
      Issue.record("not an argument")
    }
    #expect(scaler.impute == nil)
    #expect(scaler.transform(row: [.nan, 1, 1])[0].isNaN)  // no imputation asked: NaN stays
    #expect(scaler.scale[2] == 1)  // constant column: scale 1, never a division by zero
    let batch = scaler.transform(batch: Self.values)
    for r in 0 ..< 5 {
      let row = scaler.transform(row: Array(Self.values[r * 3 ..< r * 3 + 3]))
      #expect(zip(row, batch[r * 3 ..< r * 3 + 3]).allSatisfy { $0.bitPattern == $1.bitPattern })
    }
    #expect(try FeatureScaler.decode(try scaler.json()) == scaler)
    #expect(throws: (any Error).self) {
      _ = try FeatureScaler.decode(
        Data(#"{"method":"standard","columns":["a"],"center":[0],"scale":[0],"fittedRows":1}"#.utf8)
      )
    }
  }

  @Test(
    "Imputing scalers replace a missing value by the fit rows' mean (median for robust) before scaling, unscaled columns too; JSON round trip",
    arguments: [
      (FeatureScaler.Method.standard, [2.5, 220, 0.5]), (.robust, [2.5, 30, 0.5]),
      (.identity, [2.5, 220, 0.5]),
    ]
  )
  func impute(method: FeatureScaler.Method, fill: [Double]) throws {
    // Column a's finite values are 1…4 (one NaN), b's 10, 20, 30, 1000, 40, c is constant.
    let scaler = FeatureScaler.fit(
      method: method,
      columns: ["a", "b", "c"],
      scaled: [true, true, false],
      values: Self.values,
      rows: 5,
      impute: true
    )
    #expect(scaler.impute == fill)
    if method == .identity { #expect(scaler.center == [0, 0, 0] && scaler.scale == [1, 1, 1]) }
    let row = scaler.transform(row: [.nan, .infinity, -.infinity])
    let expected = (0 ..< 3).map { (fill[$0] - scaler.center[$0]) / scaler.scale[$0] }
    #expect(zip(row, expected).allSatisfy { $0.bitPattern == $1.bitPattern })
    #expect(scaler.transform(row: [7, 8, 9]) == scaler.transform(batch: [7, 8, 9]))
    #expect(scaler.imputing(batch: [.nan, 1, .nan]) == [fill[0], 1, fill[2]])
    #expect(scaler.selecting(["c", "a"])?.impute == [fill[2], fill[0]])
    #expect(try FeatureScaler.decode(try scaler.json()) == scaler)
    #expect(throws: (any Error).self) {
      _ = try FeatureScaler.decode(
        Data(
          #"{"method":"standard","columns":["a"],"center":[0],"scale":[1],"fittedRows":1,"impute":[1,2]}"#
            .utf8
        )
      )
    }
  }

  @Test("Unscaled columns pass through")
  func unscaled() {
    let scaler = FeatureScaler.fit(
      method: .standard,
      columns: ["a", "b", "c"],
      scaled: [true, false, true],
      values: Self.values,
      rows: 5
    )
    #expect(scaler.center[1] == 0 && scaler.scale[1] == 1)
  }
}

@Suite("Datasets", .enabled(if: MarketData.available), .computeBound)
struct DatasetTests {
  @Test(
    "A pooled dataset: complete rows in (time, symbol) order, exclusions counted, same bytes twice"
  )
  func pooled() throws {
    let spec = DatasetSpec(
      symbols: ["BTCUSDT", "SOLUSDT"],
      interval: .h1,
      featureSet: .v1,
      labels: LabelSpec(kind: .binary, horizons: [5, 12, 24]),
      from: 1_640_995_200_000,
      to: 1_672_531_200_000
    )
    let dataset = try Dataset.build(spec) { RealSeries.hourly[$0]! }
    #expect(dataset.rowCount > 17_000)
    let block = dataset.block(0 ..< dataset.rowCount)
    #expect(block.features.allSatisfy { $0.isFinite })
    #expect(zip(block.openTimes, block.openTimes.dropFirst()).allSatisfy { $0 <= $1 })
    #expect(block.labels.allSatisfy { $0.allSatisfy { $0 == 0 || $0 == 1 } })
    for (h, horizon) in [5, 12, 24].enumerated() {
      #expect(
        zip(block.openTimes, block.labelEnds[h]).allSatisfy {
          $1 == $0 + Int64(horizon + 1) * 3_600_000
        }
      )
    }
    #expect(dataset.rowCount + dataset.excludedCount == dataset.candidateRows)
    let again = try Dataset.build(spec) { RealSeries.hourly[$0]! }
    var a = DatasetDigest(), b = DatasetDigest()
    a.update(block)
    b.update(again.block(0 ..< again.rowCount))
    #expect(a.finalize() == b.finalize() && dataset.id == again.id)
  }

  @Test(
    "A reference that stops: EXCLUDE drops the rows after it, NATIVE and IMPUTE keep them with NaN in that reference's columns only, and every choice counts both",
    arguments: [MissingValues.native, .impute]
  )
  func referenceStops(keeping choice: MissingValues) throws {
    let stop: Int64 = 1_656_633_600_000  // BNB's candles end 2022-07-01
    let candles = { (symbol: String) -> [Candle] in
      let series = RealSeries.hourly[symbol]!
      return symbol == "BNBUSDT" ? series.filter { $0.openTime < stop } : series
    }
    func spec(_ missing: MissingValues) -> DatasetSpec {
      DatasetSpec(
        symbols: ["BTCUSDT"],
        interval: .h1,
        featureSet: .v1,
        labels: LabelSpec(kind: .binary, horizons: [5]),
        from: 1_640_995_200_000,
        to: 1_672_531_200_000,
        missingValues: missing
      )
    }
    let excluded = try Dataset.build(spec(.exclude), candles: candles)
    let kept = try Dataset.build(spec(choice), candles: candles)
    // Half a year of BTC rows lost only to BNB: what the issue saw erase datasets.
    #expect(excluded.rowsWithMissingValues > 4_000)
    #expect(excluded.rowCount == excluded.completeRows)
    #expect(excluded.exclusions.contains { $0.reason == .missingFeature && $0.rows >= 4_000 })
    #expect(kept.completeRows == excluded.completeRows)
    #expect(kept.rowsWithMissingValues == excluded.rowsWithMissingValues)
    #expect(kept.rowCount == kept.completeRows + kept.rowsWithMissingValues)
    #expect(!kept.exclusions.contains { $0.reason == .missingFeature })
    #expect(kept.id != excluded.id)

    let names = FeatureSet.v1.columnNames, width = names.count
    let all = kept.block(0 ..< kept.rowCount), complete = excluded.block(0 ..< excluded.rowCount)
    var rest = 0
    for r in 0 ..< kept.rowCount {
      let row = all.features[(r * width) ..< ((r + 1) * width)]
      let missing = names.indices.filter { !row[row.startIndex + $0].isFinite }
      if missing.isEmpty {
        // A complete row is the excluding dataset's row, bit for bit.
        let e = rest
        rest += 1
        #expect(complete.openTimes[e] == all.openTimes[r])
        let same = complete.features[(e * width) ..< ((e + 1) * width)]
        #expect(zip(row, same).allSatisfy { $0.bitPattern == $1.bitPattern })
      } else {
        #expect(all.openTimes[r] >= stop)
        #expect(missing.allSatisfy { names[$0].hasPrefix("bnb_") })
        #expect(all.labels[0][r] >= 0)
      }
    }
    #expect(rest == excluded.rowCount)
  }
}
