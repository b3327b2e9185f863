public import VaneFeatures

/// Real 1h series of the four symbols, loaded once.
public enum RealSeries {
  /// The four 1h files as parsed, before validation (parsing them takes seconds in a debug
  /// build: read them from ``ComputeExecutor`` in a test that also awaits).
  public static let hourlyFiles: [String: ParsedCandleFile] = {
    var files: [String: ParsedCandleFile] = [:]
    guard MarketData.available else { return files }
    for symbol in FeatureSet.v1References {
      files[symbol] = try! CandleFileParser.read(
        path: MarketData.path("binance_\(symbol)_1h.csv.gz")
      )
    }
    return files
  }()

  public static let hourly: [String: [Candle]] = hourlyFiles.mapValues {
    try! CandleValidator.validate($0, asOf: MarketData.end).accepted
  }

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
