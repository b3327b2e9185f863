internal import VaneFeatures
internal import VaneMetrics

extension FeatureServiceImplementation {
  /// The feature service's figures, read at each scrape: candles stored per series, and the open
  /// time of each series' newest bar (its freshness: alert when it stops moving).
  public func metricsRefresh() -> @Sendable () -> Void {
    let stored = GaugeFamily("vane_feature_candles_stored")
    let newest = GaugeFamily("vane_feature_newest_bar_open_seconds")
    let store = self.store
    return {
      guard let coverage = try? store.coverage(symbols: [], intervals: [], maxGaps: 0) else {
        return
      }
      let series = coverage.map { [("symbol", $0.symbol), ("interval", $0.interval.rawValue)] }
      stored.set(zip(series, coverage).map { (dimensions: $0, value: Double($1.count)) })
      newest.set(zip(series, coverage).map { (dimensions: $0, value: Double($1.last) / 1000) })
    }
  }
}
