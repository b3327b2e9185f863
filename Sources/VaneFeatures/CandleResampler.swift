/// Builds longer bars from shorter ones (1h → 4h → 1d), keeping only complete buckets: a 4h bar
/// is made only when all four of its hours are there, so a gap never invents a bar.
public enum CandleResampler {
  /// - Parameters:
  ///   - candles: ascending, on the `from` grid, without duplicates (a validated series).
  ///   - from: the interval of `candles`.
  ///   - to: a longer interval that `from` divides.
  public static func resample(
    _ candles: [Candle],
    from: CandleInterval,
    to: CandleInterval
  ) -> [Candle] {
    precondition(
      to.milliseconds > from.milliseconds && to.milliseconds % from.milliseconds == 0,
      "resample: \(to.rawValue) is not a multiple of \(from.rawValue)"
    )
    let perBucket = Int(to.milliseconds / from.milliseconds)
    var result: [Candle] = []
    result.reserveCapacity(candles.count / perBucket + 1)
    var index = 0
    while index < candles.count {
      let bucket = candles[index].openTime.floorDivided(by: to.milliseconds) * to.milliseconds
      var end = index
      while end < candles.count, candles[end].openTime < bucket + to.milliseconds { end += 1 }
      // Complete: every slot of the bucket is present (the series has no duplicates).
      if end - index == perBucket, candles[index].openTime == bucket {
        result.append(Self.merge(candles[index ..< end], openTime: bucket))
      }
      index = end
    }
    return result
  }

  static func merge(_ bars: ArraySlice<Candle>, openTime: Int64) -> Candle {
    var merged = Candle(
      openTime: openTime,
      open: bars.first!.open,
      high: bars.first!.high,
      low: bars.first!.low,
      close: bars.last!.close,
      volume: 0
    )
    func sum(_ value: (Candle) -> Double?) -> Double? {
      var total = 0.0
      for bar in bars {
        guard let part = value(bar) else { return nil }
        total += part
      }
      return total
    }
    for bar in bars {
      merged.high = max(merged.high, bar.high)
      merged.low = min(merged.low, bar.low)
      merged.volume += bar.volume
    }
    merged.quoteVolume = sum(\.quoteVolume)
    merged.takerBuyBaseVolume = sum(\.takerBuyBaseVolume)
    merged.takerBuyQuoteVolume = sum(\.takerBuyQuoteVolume)
    if bars.allSatisfy({ $0.tradeCount != nil }) {
      merged.tradeCount = bars.reduce(0) { $0 + $1.tradeCount! }
    }
    return merged
  }
}
