internal import Foundation
internal import VaneCore

/// A newest candle that traded far less than the bars before it: what a bar exported before it
/// closed looks like when neither a close-time column nor the reference time can tell (a file
/// written at 12:05 holds five minutes of the 12:00 bar). The candle is stored; the ingest
/// report says it is suspect and why, so the client can send it again once the bar has closed.
///
/// Only the low side is flagged: a volume many times the usual is what news does to a market,
/// a bar a small fraction of the usual is what an unfinished bar does.
public struct SuspectVolume: Sendable, Equatable {
  public var openTime: Int64
  public var volume: Double
  /// Median volume of the bars looked at.
  public var median: Double
  /// Robust z-score of the log volume (−∞ for zero volume).
  public var score: Double
  /// Bars looked at.
  public var bars: Int

  /// Bars before the candle looked at, at most, and the fewest that make a judgement.
  public static let window = 48
  public static let minimumBars = 12
  /// The modified z-score beyond which a value is an outlier (Iglewicz and Hoaglin's 3.5).
  public static let threshold = 3.5

  /// Judges `candles[index]` against up to ``window`` candles before it: suspect when its
  /// volume is zero while theirs is not, or when the modified z-score of its log volume
  /// (0.6745 · (x − median) / MAD, over the logs of their positive volumes) is below −3.5.
  public static func check(_ candles: [Candle], at index: Int) -> SuspectVolume? {
    guard candles.indices.contains(index) else { return nil }
    let before = candles[max(0, index - Self.window) ..< index].map(\.volume).filter {
      $0 > 0 && $0.isFinite
    }
    guard before.count >= Self.minimumBars else { return nil }
    let logs = before.map { Foundation.log($0) }.sorted()
    let center = Statistics.quantile(sorted: logs, 0.5)
    let mad = Statistics.quantile(sorted: logs.map { abs($0 - center) }.sorted(), 0.5)
    let volume = candles[index].volume
    guard volume.isFinite, volume >= 0 else { return nil }
    let score: Double
    if volume == 0 {
      score = -.infinity
    } else {
      // Bars of equal volume (MAD 0): any lower one is an outlier.
      guard mad > 0 || Foundation.log(volume) < center else { return nil }
      score = mad > 0 ? 0.6745 * (Foundation.log(volume) - center) / mad : -.infinity
    }
    guard score < -Self.threshold else { return nil }
    return SuspectVolume(
      openTime: candles[index].openTime,
      volume: volume,
      median: Foundation.exp(center),
      score: score,
      bars: before.count
    )
  }

  /// Why, for the ingest report.
  public var reason: String {
    let share = self.median > 0 ? self.volume / self.median : 0
    let z =
      self.score.isFinite ? String(format: "; robust z-score of log volume %.1f", self.score) : ""
    return String(
      format:
        "volume %g is %.1f %% of the median %g of the %d bars before it%@: a bar exported before it closed looks like this",
      self.volume,
      share * 100,
      self.median,
      self.bars,
      z
    )
  }
}
