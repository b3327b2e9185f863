internal import Foundation

/// What `vane pipeline` runs when it is told nothing else: the training spec, the quality policy
/// honest hourly models can pass, and the rollout plans. Each is text in the format a user writes
/// (`vane train`, `vane gate`, `vane deploy --plan`), so `--print-defaults` shows exactly what runs.
enum PipelineDefaults {
  /// The model the pipeline trains, serves and rolls out.
  static let symbol = "BTCUSDT"

  /// The four series the v1 feature set reads (cross-asset columns).
  static let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]

  /// Walk-forward XGBoost + logistic regression + MLP under a logistic stack, horizons 1 and 4
  /// bars. Sized for about a minute on 2 cores over 21 months of 1h bars: rolling half-year
  /// windows, each tested on the next month. `data_range` is set per run.
  static func trainingSpecYAML(quick: Bool) -> String {
    let models =
      quick
      ? """
      models:
        - {name: xgb, kind: MODEL_KIND_XGBOOST, xgboost: {num_boost_rounds: 60, max_depth: 3, learning_rate: 0.1, subsample: 0.8, colsample_bytree: 0.8, early_stopping_rounds: 10}}
        - {name: logreg, kind: MODEL_KIND_LOGISTIC_REGRESSION, logistic_regression: {l2: 1.0}}
      walk_forward: {window: WINDOW_KIND_ROLLING, train_bars: 2160, test_bars: 720, validation_bars: 240}
      """
      : """
      models:
        - {name: xgb, kind: MODEL_KIND_XGBOOST, xgboost: {num_boost_rounds: 200, max_depth: 4, learning_rate: 0.05, subsample: 0.8, colsample_bytree: 0.8, early_stopping_rounds: 20}}
        - {name: logreg, kind: MODEL_KIND_LOGISTIC_REGRESSION, logistic_regression: {l2: 1.0}}
        - {name: mlp, kind: MODEL_KIND_MLP, mlp: {hidden_units: [64, 32], dropout: 0.2, training: {max_epochs: 15, batch_size: 256, early_stopping_patience: 3}}}
      walk_forward: {window: WINDOW_KIND_ROLLING, train_bars: 4320, test_bars: 720, validation_bars: 480}
      """
    return """
      name: pipeline
      symbols: [\(Self.symbol)]
      interval: INTERVAL_1H
      labels: {kind: LABEL_KIND_BINARY_DIRECTION, horizons: [{bars: 1}, {bars: 4}]}
      \(models)
      stacking: {enabled: true}
      seed: 7
      gate_policy: \(Self.policyName)
      bless: true

      """
  }

  /// The policy the pipeline gates and blesses under.
  static let policyName = "hourly"

  /// Gates an honest hourly direction model can pass: better than chance out of fold, and
  /// well-behaved probabilities. The `default` policy's AUC floors (0.55 per base model, 0.58
  /// stacked) are above what hourly crypto direction models reach, so under it nothing ships.
  static let hourlyPolicyYAML = """
    # Hourly direction models: an edge of a point or two of AUC is what honest ones have.
    name: hourly
    gates:
      - name: stacked_auc
        metric: auc
        op: ">="
        threshold: 0.505
        note: the served (stacked) model ranks ups over downs better than a coin out of fold
      - name: base_auc
        metric: base_auc_min
        op: ">="
        threshold: 0.49
        note: no base model is worse than a coin by more than a point
      - name: oof_samples
        metric: n
        op: ">="
        threshold: 2000
        note: out-of-fold samples behind every figure here
      - name: calibration
        metric: ece
        op: "<="
        threshold: 0.05
        note: expected calibration error of the calibrated probabilities
      - name: overconfidence
        metric: share_above_0_99
        op: "<"
        threshold: 0.01
        note: an hourly model is almost never 99 % sure
      - name: class_share_min
        metric: pred_share_min
        op: ">="
        threshold: 0.10
        note: each direction is predicted at least 10 % of the time
      - name: logit_range
        metric: max_abs_logit
        op: "<"
        threshold: 10
        note: largest |logit|
      - name: finite
        metric: non_finite
        op: "<="
        threshold: 0
        note: NaN or infinite predictions

    """

  /// A first version (no incumbent) goes to FULL at once; it is promoted once it has answered
  /// `minRequests` live bars without errors. Like every plan of the pipeline it runs on the
  /// data clock: the replay advances it after each bar, so its durations count bar time and
  /// the same candles give the same rollout.
  static func firstPlanYAML(minRequests: Int) -> String {
    """
    steps:
      - kind: full
        min_requests: \(minRequests)
        thresholds:
          - {metric: error_rate, op: "<=", threshold: 0.0}
    analysis_interval: 1h
    patience: 12h
    clock: data

    """
  }

  /// A new version against the incumbent: a shadow step checks it agrees with what is serving,
  /// a canary step takes a quarter of the traffic until enough of its answers have matured and
  /// its live AUC and log loss are not grossly worse than the incumbent's, then FULL. Durations
  /// count bar time (the data clock), analysed every 4 bars; the outcome counts pace it too. The live bounds are
  /// loose on purpose: on tens of matured hourly outcomes an AUC has a standard error near 0.1,
  /// so a tight bound would roll honest versions back on noise.
  static func rolloutPlanYAML(minRequests: Int, minMatured: Int) -> String {
    """
    steps:
      - kind: shadow
        traffic_percent: 100
        duration: 24h
        min_requests: \(minRequests)
        thresholds:
          - {metric: error_rate, op: "<=", threshold: 0.0}
          - {metric: disagreement_rate, op: "<=", threshold: 0.35, failure_limit: 2}
      - kind: canary
        traffic_percent: 25
        duration: 24h
        min_requests: \(max(minRequests / 4, 1))
        min_matured_outcomes: \(minMatured)
        thresholds:
          - {metric: error_rate, op: "<=", threshold: 0.0}
          - {metric: live_auc, op: ">=", threshold: -0.15, reference: baseline_delta, failure_limit: 3}
          - {metric: live_log_loss, op: "<=", threshold: 0.02, reference: baseline_delta, failure_limit: 3}
      - kind: full
        min_requests: \(max(minRequests / 4, 1))
        thresholds:
          - {metric: error_rate, op: "<=", threshold: 0.0}
    analysis_interval: 4h
    patience: 12h
    clock: data

    """
  }
}
