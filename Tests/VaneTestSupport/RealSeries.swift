public import VaneFeatures

/// Real 1h series of the four symbols, loaded once.
public enum RealSeries {
  public static let hourly: [String: [Candle]] = {
    var series: [String: [Candle]] = [:]
    guard MarketData.available else { return series }
    for symbol in FeatureSet.v1References {
      let file = try! CandleFileParser.read(path: MarketData.path("binance_\(symbol)_1h.csv.gz"))
      series[symbol] = try! CandleValidator.validate(file, asOf: MarketData.end).accepted
    }
    return series
  }()

  public static func inputs(_ symbol: String, upTo end: Int64 = .max) -> FeatureInputs {
    var references: [String: [Candle]] = [:]
    for (name, candles) in Self.hourly where name != symbol { references[name] = candles.filter { $0.openTime <= end } }
    return FeatureInputs(symbol: symbol, interval: .h1, candles: Self.hourly[symbol]!.filter { $0.openTime <= end }, references: references)
  }
}

