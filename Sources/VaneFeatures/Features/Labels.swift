internal import Foundation

/// How a bar's target is defined. For the bar opened at t, entry is close[t] and exit is
/// close[t + h]; r = ln(close[t + h] / close[t]). A label never spans a gap: every bar from t
/// to t + h must be stored.
public struct LabelSpec: Sendable, Equatable, Hashable {
  public enum Kind: String, Sendable, Hashable {
    /// Classes DOWN (0), UP (1); UP iff r > 0.
    case binary
    /// Classes DOWN (0), HOLD (1), UP (2); HOLD inside the band.
    case threeClass
  }

  /// The HOLD band of three-class labels.
  public enum HoldBand: Sendable, Equatable, Hashable {
    /// |r| <= threshold.
    case returnThreshold(Double)
    /// |close[t + h] - close[t]| <= multiple × ATR(period)[t] (TA-Lib ATR, Wilder).
    case atr(multiple: Double, period: Int)
    /// |r| <= multiple × σ[t] × sqrt(h), σ the population std-dev of the last `window`
    /// one-bar log returns at t (known at t).
    case volatility(multiple: Double, window: Int)
  }

  public var kind: Kind
  /// Horizons in bars, distinct, each >= 1.
  public var horizons: [Int]
  /// Three-class only.
  public var holdBand: HoldBand?

  public init(kind: Kind, horizons: [Int], holdBand: HoldBand? = nil) {
    self.kind = kind
    self.horizons = horizons
    self.holdBand = holdBand
  }

  /// Class names in index order.
  public var classes: [String] { self.kind == .binary ? ["DOWN", "UP"] : ["DOWN", "HOLD", "UP"] }
}

/// Labels of one horizon for every bar of a series.
public struct HorizonLabels: Sendable, Equatable {
  public var horizon: Int
  /// Class index, or -1 when unresolved (the exit bar is not stored, or a gap lies between).
  public var label: [Int32]
  /// The instant the label resolves: close time of bar t + h (ms), for purging.
  public var labelEnd: [Int64]
  /// ln(close[t + h] / close[t]); NaN when unresolved.
  public var forwardReturn: [Double]
  /// Whether an unresolved label is unresolved because of a gap (else: no data yet).
  public var blockedByGap: [Bool]
}

extension LabelSpec {
  /// Labels for ascending candles of one series at `interval` (gaps allowed).
  public func labels(_ candles: [Candle], interval: CandleInterval) -> [HorizonLabels] {
    let step = interval.milliseconds
    let times = candles.map(\.openTime)
    let close = candles.map(\.close)
    // Bars left in each bar's gap-free run, itself included.
    var runLeft = [Int](repeating: 0, count: candles.count)
    for i in candles.indices.reversed() {
      runLeft[i] = i + 1 < candles.count && times[i + 1] - times[i] == step ? runLeft[i + 1] + 1 : 1
    }
    var band = [Double](repeating: .nan, count: candles.count)
    switch self.holdBand {
    case .atr(_, let period)?:
      let segments = SeriesMath.segments(times, step: step)
      band = SeriesMath.perSegment(segments, count: candles.count) { segment in
        Indicators.ATR(period: period)(
          high: candles[segment].map(\.high),
          low: candles[segment].map(\.low),
          close: candles[segment].map(\.close)
        )
      }
    case .volatility(_, let window)?:
      var position = [Int](repeating: 0, count: candles.count)
      for i in candles.indices.dropFirst() where times[i] - times[i - 1] == step {
        position[i] = position[i - 1] + 1
      }
      band =
        SeriesMath.rollingMoments(SeriesMath.logReturn(close, k: 1, position: position), w: window)
        .std
    case .returnThreshold?, nil:
      break
    }
    let last = times.last ?? 0
    return self.horizons.map { h in
      var result = HorizonLabels(
        horizon: h,
        label: [Int32](repeating: -1, count: candles.count),
        labelEnd: times.map { $0 + Int64(h + 1) * step },
        forwardReturn: [Double](repeating: .nan, count: candles.count),
        blockedByGap: [Bool](repeating: false, count: candles.count)
      )
      for i in candles.indices {
        guard runLeft[i] > h else {
          // Unresolved: a gap if the exit bar's time is already covered by stored data.
          result.blockedByGap[i] = times[i] + Int64(h) * step <= last
          continue
        }
        let r = Foundation.log(close[i + h] / close[i])
        result.forwardReturn[i] = r
        result.label[i] = self.classify(
          r: r,
          move: close[i + h] - close[i],
          band: band[i],
          horizon: h
        )
      }
      return result
    }
  }

  func classify(r: Double, move: Double, band: Double, horizon: Int) -> Int32 {
    guard r.isFinite else { return -1 }
    switch self.kind {
    case .binary:
      return r > 0 ? 1 : 0
    case .threeClass:
      let hold: Bool
      switch self.holdBand {
      case .returnThreshold(let threshold)?: hold = abs(r) <= threshold
      case .atr(let multiple, _)?:
        guard band.isFinite else { return -1 }
        hold = abs(move) <= multiple * band
      case .volatility(let multiple, _)?:
        guard band.isFinite else { return -1 }
        hold = abs(r) <= multiple * band * Double(horizon).squareRoot()
      case nil: hold = false
      }
      return hold ? 1 : (r > 0 ? 2 : 0)
    }
  }
}
