/// A candle series' bar length. Bars sit on the UTC epoch grid.
public enum CandleInterval: String, CaseIterable, Sendable, Codable {
  case m15 = "15m"
  case h1 = "1h"
  case h4 = "4h"
  case d1 = "1d"

  /// The bar length in milliseconds.
  public var milliseconds: Int64 {
    switch self {
    case .m15: 900_000
    case .h1: 3_600_000
    case .h4: 14_400_000
    case .d1: 86_400_000
    }
  }

  public init?(milliseconds: Int64) {
    guard let interval = Self.allCases.first(where: { $0.milliseconds == milliseconds }) else {
      return nil
    }
    self = interval
  }

  /// Whether `openTime` (ms since the epoch) is a bar boundary of this interval.
  public func isOnGrid(_ openTime: Int64) -> Bool {
    openTime % self.milliseconds == 0
  }
}

/// One OHLCV bar, named by its open time.
public struct Candle: Sendable, Equatable {
  /// Milliseconds since the Unix epoch (UTC) at which the bar opened.
  public var openTime: Int64
  public var open: Double
  public var high: Double
  public var low: Double
  public var close: Double
  /// In the base asset.
  public var volume: Double
  /// Only in the Binance kline layouts.
  public var quoteVolume: Double?
  public var tradeCount: Int64?
  public var takerBuyBaseVolume: Double?
  public var takerBuyQuoteVolume: Double?

  public init(
    openTime: Int64,
    open: Double,
    high: Double,
    low: Double,
    close: Double,
    volume: Double,
    quoteVolume: Double? = nil,
    tradeCount: Int64? = nil,
    takerBuyBaseVolume: Double? = nil,
    takerBuyQuoteVolume: Double? = nil
  ) {
    self.openTime = openTime
    self.open = open
    self.high = high
    self.low = low
    self.close = close
    self.volume = volume
    self.quoteVolume = quoteVolume
    self.tradeCount = tradeCount
    self.takerBuyBaseVolume = takerBuyBaseVolume
    self.takerBuyQuoteVolume = takerBuyQuoteVolume
  }
}

extension Candle {
  /// Whether two copies of a bar tell the same story: equal open time and OHLCV, and equal
  /// exchange extras wherever both carry them. A file with the extras and one without agree.
  public func agrees(with other: Candle) -> Bool {
    func compatible<T: Equatable>(_ a: T?, _ b: T?) -> Bool { a == nil || b == nil || a == b }
    return self.openTime == other.openTime && self.open == other.open && self.high == other.high
      && self.low == other.low && self.close == other.close && self.volume == other.volume
      && compatible(self.quoteVolume, other.quoteVolume)
      && compatible(self.tradeCount, other.tradeCount)
      && compatible(self.takerBuyBaseVolume, other.takerBuyBaseVolume)
      && compatible(self.takerBuyQuoteVolume, other.takerBuyQuoteVolume)
  }

  /// This candle with the extras it lacks taken from `other` (an agreeing copy).
  public func filled(from other: Candle) -> Candle {
    var filled = self
    filled.quoteVolume = self.quoteVolume ?? other.quoteVolume
    filled.tradeCount = self.tradeCount ?? other.tradeCount
    filled.takerBuyBaseVolume = self.takerBuyBaseVolume ?? other.takerBuyBaseVolume
    filled.takerBuyQuoteVolume = self.takerBuyQuoteVolume ?? other.takerBuyQuoteVolume
    return filled
  }
}
