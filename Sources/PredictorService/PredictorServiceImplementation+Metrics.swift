internal import VaneMetrics
internal import VaneServing

extension PredictorServiceImplementation {
  /// The predictor's figures, read at each scrape from the registry's own counters and the
  /// prediction log (the answer path pays nothing for them):
  /// - `vane_predictor_predictions_total{model_id,version,role}` answers (role `primary` or
  ///   `shadow`), `vane_predictor_prediction_errors_total{…}` failed ones;
  /// - `vane_predictor_shadow_dropped_total`: shadow requests dropped on a full queue;
  /// - `vane_predictor_log_dropped_total{model_id,version}`: answers the log could not keep;
  /// - `vane_predictor_traffic_percent{model_id,version}` and `vane_predictor_version_ready`;
  /// - `vane_predictor_logged_answers` and `vane_predictor_matured_outcomes{model_id,version}`:
  ///   what the log holds, and how many of those answers have their outcome joined;
  /// - `vane_predictor_live_auc{model_id,version,horizon}` and `vane_predictor_live_log_loss`:
  ///   over the same trailing window GetModelStats uses by default.
  public func metricsRefresh() -> @Sendable () -> Void {
    let predictions = CounterMirror("vane_predictor_predictions_total")
    let errors = CounterMirror("vane_predictor_prediction_errors_total")
    let shadowDrops = CounterMirror("vane_predictor_shadow_dropped_total")
    let logDrops = CounterMirror("vane_predictor_log_dropped_total")
    let traffic = GaugeFamily("vane_predictor_traffic_percent")
    let ready = GaugeFamily("vane_predictor_version_ready")
    let logged = GaugeFamily("vane_predictor_logged_answers")
    let matured = GaugeFamily("vane_predictor_matured_outcomes")
    let auc = GaugeFamily("vane_predictor_live_auc")
    let logLoss = GaugeFamily("vane_predictor_live_log_loss")
    let registry = self.registry
    let window = Self.defaultStatsWindow
    return {
      let listings = registry.list()
      for listing in listings {
        let version = [("model_id", listing.info.modelID), ("version", listing.info.version)]
        predictions.observe(Int64(listing.counters.requests), version + [("role", "primary")])
        predictions.observe(Int64(listing.counters.shadowRequests), version + [("role", "shadow")])
        errors.observe(Int64(listing.counters.errors), version + [("role", "primary")])
        errors.observe(Int64(listing.counters.shadowErrors), version + [("role", "shadow")])
        logDrops.observe(Int64(listing.counters.logDropped), version)
      }
      shadowDrops.observe(Int64(registry.droppedShadows), [])
      traffic.set(
        listings.map {
          (
            dimensions: [("model_id", $0.info.modelID), ("version", $0.info.version)],
            value: $0.info.trafficPercent
          )
        }
      )
      ready.set(
        listings.map {
          (
            dimensions: [("model_id", $0.info.modelID), ("version", $0.info.version)],
            value: $0.info.status == .ready ? 1 : 0
          )
        }
      )

      guard let log = registry.log else { return }
      if let counts = try? log.counts() {
        var loggedValues: [(dimensions: [(String, String)], value: Double)] = []
        var maturedValues: [(dimensions: [(String, String)], value: Double)] = []
        for listing in listings {
          guard let count = counts[VersionKey(listing.info.modelID, listing.info.version)]
          else { continue }
          let version = [("model_id", listing.info.modelID), ("version", listing.info.version)]
          loggedValues.append((version, Double(count.logged)))
          maturedValues.append((version, Double(count.matured)))
        }
        logged.set(loggedValues)
        matured.set(maturedValues)
      }
      var aucValues: [(dimensions: [(String, String)], value: Double)] = []
      var lossValues: [(dimensions: [(String, String)], value: Double)] = []
      for listing in listings
      where log.version(modelID: listing.info.modelID, version: listing.info.version) != nil {
        guard
          let stats = try? log.statistics(
            modelID: listing.info.modelID,
            version: listing.info.version,
            window: window,
            since: nil
          )
        else { continue }
        for horizon in stats.horizons {
          let series = [
            ("model_id", listing.info.modelID), ("version", listing.info.version),
            ("horizon", "\(horizon.horizon)"),
          ]
          if let value = horizon.auc { aucValues.append((series, value)) }
          if let value = horizon.logLoss { lossValues.append((series, value)) }
        }
      }
      auc.set(aucValues)
      logLoss.set(lossValues)
    }
  }
}
