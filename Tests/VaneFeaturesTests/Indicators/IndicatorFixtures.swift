import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneFeatures

/// Parallel OHLCV arrays, the shape the indicator kernels take.
struct Candles: Sendable {
  var open: [Double] = []
  var high: [Double] = []
  var low: [Double] = []
  var close: [Double] = []
  var volume: [Double] = []

  var count: Int { self.close.count }

  subscript(range: Range<Int>) -> Candles {
    Candles(
      open: Array(self.open[range]),
      high: Array(self.high[range]),
      low: Array(self.low[range]),
      close: Array(self.close[range]),
      volume: Array(self.volume[range])
    )
  }

  mutating func append(open: Double, high: Double, low: Double, close: Double, volume: Double) {
    self.open.append(open)
    self.high.append(high)
    self.low.append(low)
    self.close.append(close)
    self.volume.append(volume)
  }

  /// `count` identical candles (open = high = low = close = `price`).
  static func flat(_ price: Double, volume: Double, count: Int) -> Candles {
    let prices = [Double](repeating: price, count: count)
    return Candles(
      open: prices,
      high: prices,
      low: prices,
      close: prices,
      volume: [Double](repeating: volume, count: count)
    )
  }
}

/// The real BTC 1h candles and TA-Lib's values on them (scripts/talib_golden.py).
enum IndicatorData {
  static let marketFile = "binance_BTCUSDT_1h.csv.gz"
  /// Rows the golden fixture covers.
  static let goldenRows = 4000

  static var marketAvailable: Bool {
    FileManager.default.fileExists(atPath: MarketData.path(Self.marketFile))
  }

  static let fixture = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/talib_btc_1h_golden.csv.gz").path

  /// Lines of a gzip-compressed text file.
  static func lines(gzip path: String) throws -> [Substring] {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    let text = String(decoding: try Gzip.decompress(bytes, name: path), as: UTF8.self)
    return text.split(separator: "\n", omittingEmptySubsequences: true)
  }

  /// The first `rows` data rows of binance_BTCUSDT_1h.csv.gz (ts,open,high,low,close,volume).
  static func btc(rows: Int = Self.goldenRows) throws -> Candles {
    let lines = try Self.lines(gzip: MarketData.path(Self.marketFile))
    guard lines.first == "ts,open,high,low,close,volume" else {
      throw FixtureError("\(Self.marketFile): unexpected header \(lines.first ?? "")")
    }
    var candles = Candles()
    for line in lines.dropFirst().prefix(rows) {
      let fields = line.split(separator: ",", omittingEmptySubsequences: false)
      guard fields.count == 6, let o = Double(fields[1]), let h = Double(fields[2]),
        let l = Double(fields[3]),
        let c = Double(fields[4]), let v = Double(fields[5])
      else { throw FixtureError("\(Self.marketFile): bad row \(line)") }
      candles.append(open: o, high: h, low: l, close: c, volume: v)
    }
    guard candles.count == rows else {
      throw FixtureError("\(Self.marketFile): only \(candles.count) rows")
    }
    return candles
  }

  /// TA-Lib's columns by name (`nan` → NaN).
  static func golden() throws -> [String: [Double]] {
    let lines = try Self.lines(gzip: Self.fixture)
    guard let header = lines.first else { throw FixtureError("empty fixture") }
    let names = header.split(separator: ",").map(String.init)
    var columns = [[Double]](repeating: [], count: names.count)
    for line in lines.dropFirst() {
      let fields = line.split(separator: ",", omittingEmptySubsequences: false)
      guard fields.count == names.count else { throw FixtureError("fixture: bad row \(line)") }
      for (column, field) in fields.enumerated() {
        guard let value = field == "nan" ? Double.nan : Double(field) else {
          throw FixtureError("fixture: bad value \(field)")
        }
        columns[column].append(value)
      }
    }
    return Dictionary(uniqueKeysWithValues: zip(names, columns))
  }
}

struct FixtureError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

extension Candles {
  /// A random walk around 30,000 with the awkward cases mixed in: flat stretches (every price
  /// equal, which trips the zero tests), bars with high == low, repeated closes, zero volume,
  /// sub-cent noise (which forces the variance to re-anchor) and large jumps.
  static func random(count: Int, seed: UInt64) -> Candles {
    var random = SplitMix64(seed: seed)
    var candles = Candles()
    var price = 30_000.0
    var index = 0
    while index < count {
      let regime = random.uniform()
      let length = Swift.min(count - index, 10 + Int(random.uniform() * 60))
      for _ in 0 ..< length {
        let open = price
        var high: Double
        var low: Double
        var volume = 50 * random.uniform()
        switch regime {
        case ..<0.08:  // flat: nothing moves
          high = price
          low = price
          volume = random.uniform() < 0.5 ? 0 : volume
        case ..<0.14:  // sub-cent noise around a level
          price = (price * 100).rounded() / 100 + 1e-7 * random.normal()
          high = Swift.max(open, price)
          low = Swift.min(open, price)
        case ..<0.18:  // jumps
          price *= 1 + 0.2 * random.normal()
          high = Swift.max(open, price) * (1 + 0.01 * random.uniform())
          low = Swift.min(open, price) * (1 - 0.01 * random.uniform())
        default:
          price *= 1 + 0.01 * random.normal()
          price = (price * 100).rounded() / 100
          high = Swift.max(open, price) * (1 + 0.003 * random.uniform())
          low = Swift.min(open, price) * (1 - 0.003 * random.uniform())
          if random.uniform() < 0.05 {
            high = price
            low = price
          }
          if random.uniform() < 0.05 { price = open }
        }
        candles.append(open: open, high: high, low: low, close: price, volume: volume)
        index += 1
      }
    }
    return candles
  }
}

/// The parameters of the golden fixture (scripts/talib_golden.py).
enum Golden {
  static let sma = Indicators.SMA(period: 20)
  static let ema = Indicators.EMA(period: 20)
  static let macd = Indicators.MACD(fast: 12, slow: 26, signal: 9)
  static let rsi = Indicators.RSI(period: 14)
  static let atr = Indicators.ATR(period: 14)
  static let natr = Indicators.NATR(period: 14)
  static let bbands = Indicators.BBands(period: 20, deviationsUp: 2, deviationsDown: 2)
  static let stddev = Indicators.StdDev(period: 20, deviations: 1)
  static let adx = Indicators.ADX(period: 14)
  static let obv = Indicators.OBV()
  static let mfi = Indicators.MFI(period: 14)
  static let stoch = Indicators.Stoch(fastK: 14, slowK: 3, slowD: 3)
  static let willr = Indicators.WillR(period: 14)
  static let cci = Indicators.CCI(period: 20)
  static let roc = Indicators.ROC(period: 10)
}

/// Every indicator with the parameters of the golden fixture, as named output columns.
enum IndicatorCase: String, CaseIterable, Sendable, CustomTestStringConvertible {
  case sma = "SMA"
  case ema = "EMA"
  case macd = "MACD"
  case rsi = "RSI"
  case atr = "ATR"
  case natr = "NATR"
  case bbands = "BBANDS"
  case stddev = "STDDEV"
  case adx = "ADX"
  case obv = "OBV"
  case mfi = "MFI"
  case stoch = "STOCH"
  case willr = "WILLR"
  case cci = "CCI"
  case roc = "ROC"

  var testDescription: String { self.rawValue }

  var lookback: Int {
    switch self {
    case .sma: Golden.sma.lookback
    case .ema: Golden.ema.lookback
    case .macd: Golden.macd.lookback
    case .rsi: Golden.rsi.lookback
    case .atr: Golden.atr.lookback
    case .natr: Golden.natr.lookback
    case .bbands: Golden.bbands.lookback
    case .stddev: Golden.stddev.lookback
    case .adx: Golden.adx.lookback
    case .obv: Golden.obv.lookback
    case .mfi: Golden.mfi.lookback
    case .stoch: Golden.stoch.lookback
    case .willr: Golden.willr.lookback
    case .cci: Golden.cci.lookback
    case .roc: Golden.roc.lookback
    }
  }

  var convergence: Int {
    switch self {
    case .sma: Golden.sma.convergence
    case .ema: Golden.ema.convergence
    case .macd: Golden.macd.convergence
    case .rsi: Golden.rsi.convergence
    case .atr: Golden.atr.convergence
    case .natr: Golden.natr.convergence
    case .bbands: Golden.bbands.convergence
    case .stddev: Golden.stddev.convergence
    case .adx: Golden.adx.convergence
    case .obv: Golden.obv.convergence
    case .mfi: Golden.mfi.convergence
    case .stoch: Golden.stoch.convergence
    case .willr: Golden.willr.convergence
    case .cci: Golden.cci.convergence
    case .roc: Golden.roc.convergence
    }
  }

  /// The index of an output column's first value: ADX's +DI/−DI start before the ADX.
  func lookback(of column: String) -> Int {
    column.hasPrefix("PLUS_DI") || column.hasPrefix("MINUS_DI")
      ? Golden.adx.directionalLookback : self.lookback
  }

  /// The batch outputs, named as the fixture's columns.
  func batch(_ c: Candles) -> [(name: String, values: [Double])] {
    switch self {
    case .sma: return [("SMA_20", Golden.sma(c.close))]
    case .ema: return [("EMA_20", Golden.ema(c.close))]
    case .macd:
      let out = Golden.macd(c.close)
      return [
        ("MACD_12_26_9", out.macd), ("MACD_SIGNAL_12_26_9", out.signal),
        ("MACD_HIST_12_26_9", out.histogram),
      ]
    case .rsi: return [("RSI_14", Golden.rsi(c.close))]
    case .atr: return [("ATR_14", Golden.atr(high: c.high, low: c.low, close: c.close))]
    case .natr: return [("NATR_14", Golden.natr(high: c.high, low: c.low, close: c.close))]
    case .bbands:
      let out = Golden.bbands(c.close)
      return [
        ("BBANDS_UPPER_20_2_2", out.upper), ("BBANDS_MIDDLE_20_2_2", out.middle),
        ("BBANDS_LOWER_20_2_2", out.lower),
      ]
    case .stddev: return [("STDDEV_20_1", Golden.stddev(c.close))]
    case .adx:
      let out = Golden.adx.components(high: c.high, low: c.low, close: c.close)
      return [("ADX_14", out.adx), ("PLUS_DI_14", out.plusDI), ("MINUS_DI_14", out.minusDI)]
    case .obv: return [("OBV", Golden.obv(close: c.close, volume: c.volume))]
    case .mfi:
      return [("MFI_14", Golden.mfi(high: c.high, low: c.low, close: c.close, volume: c.volume))]
    case .stoch:
      let out = Golden.stoch(high: c.high, low: c.low, close: c.close)
      return [("STOCH_SLOWK_14_3_3", out.slowK), ("STOCH_SLOWD_14_3_3", out.slowD)]
    case .willr: return [("WILLR_14", Golden.willr(high: c.high, low: c.low, close: c.close))]
    case .cci: return [("CCI_20", Golden.cci(high: c.high, low: c.low, close: c.close))]
    case .roc: return [("ROC_10", Golden.roc(c.close))]
    }
  }

  /// The same outputs from the streaming form, one candle at a time.
  func stream(_ c: Candles) -> [(name: String, values: [Double])] {
    let bars = 0 ..< c.count
    switch self {
    case .sma:
      var s = Indicators.SMA.Stream(Golden.sma)
      return [("SMA_20", bars.map { s.update(c.close[$0]) })]
    case .ema:
      var s = Indicators.EMA.Stream(Golden.ema)
      return [("EMA_20", bars.map { s.update(c.close[$0]) })]
    case .macd:
      var s = Indicators.MACD.Stream(Golden.macd)
      let values = bars.map { s.update(c.close[$0]) }
      return [
        ("MACD_12_26_9", values.map(\.macd)), ("MACD_SIGNAL_12_26_9", values.map(\.signal)),
        ("MACD_HIST_12_26_9", values.map(\.histogram)),
      ]
    case .rsi:
      var s = Indicators.RSI.Stream(Golden.rsi)
      return [("RSI_14", bars.map { s.update(c.close[$0]) })]
    case .atr:
      var s = Indicators.ATR.Stream(Golden.atr)
      return [
        ("ATR_14", bars.map { s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) })
      ]
    case .natr:
      var s = Indicators.NATR.Stream(Golden.natr)
      return [
        ("NATR_14", bars.map { s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) })
      ]
    case .bbands:
      var s = Indicators.BBands.Stream(Golden.bbands)
      let values = bars.map { s.update(c.close[$0]) }
      return [
        ("BBANDS_UPPER_20_2_2", values.map(\.upper)),
        ("BBANDS_MIDDLE_20_2_2", values.map(\.middle)),
        ("BBANDS_LOWER_20_2_2", values.map(\.lower)),
      ]
    case .stddev:
      var s = Indicators.StdDev.Stream(Golden.stddev)
      return [("STDDEV_20_1", bars.map { s.update(c.close[$0]) })]
    case .adx:
      var s = Indicators.ADX.Stream(Golden.adx)
      let values = bars.map { s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) }
      return [
        ("ADX_14", values.map(\.adx)), ("PLUS_DI_14", values.map(\.plusDI)),
        ("MINUS_DI_14", values.map(\.minusDI)),
      ]
    case .obv:
      var s = Indicators.OBV.Stream(Golden.obv)
      return [("OBV", bars.map { s.update(close: c.close[$0], volume: c.volume[$0]) })]
    case .mfi:
      var s = Indicators.MFI.Stream(Golden.mfi)
      return [
        (
          "MFI_14",
          bars.map {
            s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0], volume: c.volume[$0])
          }
        )
      ]
    case .stoch:
      var s = Indicators.Stoch.Stream(Golden.stoch)
      let values = bars.map { s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) }
      return [
        ("STOCH_SLOWK_14_3_3", values.map(\.slowK)), ("STOCH_SLOWD_14_3_3", values.map(\.slowD)),
      ]
    case .willr:
      var s = Indicators.WillR.Stream(Golden.willr)
      return [
        ("WILLR_14", bars.map { s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) })
      ]
    case .cci:
      var s = Indicators.CCI.Stream(Golden.cci)
      return [
        ("CCI_20", bars.map { s.update(high: c.high[$0], low: c.low[$0], close: c.close[$0]) })
      ]
    case .roc:
      var s = Indicators.ROC.Stream(Golden.roc)
      return [("ROC_10", bars.map { s.update(c.close[$0]) })]
    }
  }
}

/// Comparisons of indicator outputs.
enum Agreement {
  /// Within `relative` of the larger magnitude, with an absolute floor of `relative · floor`: near
  /// zero (a MACD histogram or ROC crossing zero) a difference that small against the series' own
  /// scale is rounding, not a different value. NaN agrees with NaN only.
  static func close(_ a: Double, _ b: Double, relative: Double = 1e-9, floor: Double) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    return abs(a - b) <= relative * Swift.max(abs(a), abs(b), floor)
  }

  /// Equal values, NaN matching NaN.
  static func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

  /// The largest finite magnitude in a series (1 if none), the scale of its near-zero floor.
  static func magnitude(_ values: [Double]) -> Double {
    let largest = values.lazy.filter(\.isFinite).map(abs).max() ?? 0
    return largest > 0 ? largest : 1
  }

  /// The first index where two series disagree, with both values, for failure messages.
  static func firstMismatch(
    _ a: [Double],
    _ b: [Double],
    from start: Int = 0,
    _ agree: (Double, Double) -> Bool
  ) -> (index: Int, a: Double, b: Double)? {
    guard a.count == b.count else { return (-1, Double(a.count), Double(b.count)) }
    for index in start ..< a.count where !agree(a[index], b[index]) {
      return (index, a[index], b[index])
    }
    return nil
  }
}
