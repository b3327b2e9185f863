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

  /// The 1h inputs of `symbol` (and the other three as references) with bars opened in
  /// [from, end]. Tests start late in the history to keep debug builds quick.
  public static func inputs(
    _ symbol: String,
    from start: Int64 = .min,
    upTo end: Int64 = .max
  ) -> FeatureInputs {
    FeatureInputs.load(symbol: symbol, interval: .h1, featureSet: .v1) { name in
      (Self.hourly[name] ?? []).filter { $0.openTime >= start && $0.openTime <= end }
    }
  }

  /// 2023-01-01 00:00 UTC: where the tests that go through a service start their data.
  public static let recent: Int64 = 1_672_531_200_000
}
