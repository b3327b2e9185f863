import ArgumentParser
import VaneCore
import VaneFeatures
import VaneModels
import VaneTraining
internal import Foundation

/// `vane bench train`: the walk-forward job on real candles (files read directly; the trainer
/// service reads the feature service instead): wall time and pooled OOF AUC per model and horizon.
struct TrainBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract:
      "Walk-forward training on real 1h candles (v1 features with cross-asset columns): wall time and pooled out-of-fold AUC per model and horizon."
  )

  @Option(help: "Directory of the candle files (binance_<SYMBOL>_1h.csv.gz).")
  var market = "../shared/data/market"

  @Option(help: "Symbol to train on.")
  var symbol = "BTCUSDT"

  @Option(help: "First bar (UTC date).")
  var from = "2022-01-01"

  @Option(help: "End of the data (UTC date, exclusive).")
  var to = "2025-01-01"

  @Option(help: "Label horizons in bars, comma-separated.")
  var horizons = "5,12,24"

  @Option(help: "Models, comma-separated: logreg, xgb, mlp, lstm.")
  var models = "logreg,xgb,mlp,lstm"

  @Option(help: "MLP and LSTM epochs (the API default is 100, with early stopping).")
  var epochs = 10

  @Option(
    help:
      "cpu, or cuda: XGBoost (device=cuda), the MLP and the LSTM (float32) train on the GPU; logistic regression stays on the CPU."
  )
  var device = "cpu"

  @Option(help: "Threads for XGBoost.")
  var threads = 2

  func run() async throws {
    guard let from = CandleTime.parse(self.from), let to = CandleTime.parse(self.to) else {
      throw ValidationError("--from/--to: not dates")
    }
    let horizons = self.horizons.split(separator: ",").compactMap { Int($0) }
    let names = self.models.split(separator: ",").map(String.init)
    try BenchDevice.check(
      self.device,
      xgboost: names.contains("xgb"),
      networks: names.contains("mlp") || names.contains("lstm"),
      unsupported: nil
    )
    let started = ContinuousClock.now
    var series: [String: [Candle]] = [:]
    for symbol in Set(FeatureSet.v1References + [self.symbol]) {
      let file = try CandleFileParser.read(path: "\(self.market)/binance_\(symbol)_1h.csv.gz")
      series[symbol] = try CandleValidator.validate(
        file,
        interval: .h1,
        asOf: Int64(Date().timeIntervalSince1970 * 1000)
      ).accepted
    }
    let spec = DatasetSpec(
      symbols: [self.symbol],
      interval: .h1,
      featureSet: .v1,
      labels: LabelSpec(kind: .binary, horizons: horizons),
      from: from,
      to: to,
      restrictLabelsToRange: true
    )
    let dataset = try Dataset.build(spec) { series[$0] ?? [] }
    let data = try TrainingData(dataset: dataset)
    let loaded = ContinuousClock.now - started
    print(
      "vane bench train: \(self.symbol) 1h \(self.from) – \(self.to), v1 (\(data.columns.count) columns), horizons \(horizons), \(data.rowCount) rows (\(dataset.excludedCount) excluded); data \(String(format: "%.1f", Self.seconds(loaded))) s"
    )
    var xgb = XGBoostModel.Parameters()
    xgb.rounds = 300
    xgb.threads = self.threads
    xgb.device = self.device
    var mlp = MLP.Training()
    mlp.maxEpochs = self.epochs
    mlp.patience = 3
    mlp.device = self.device == "cuda" ? .cuda : .cpu
    if self.device == "cuda" {
      print("   device: cuda for XGBoost and the MLP (float32); logistic regression on the CPU")
    }
    var lstm = LSTM.Training()
    lstm.maxEpochs = self.epochs
    lstm.patience = 3
    var specs: [ModelSpec] = []
    for name in names {
      switch name {
      case "logreg": specs.append(ModelSpec(name: "logreg", kind: .logisticRegression(.init())))
      case "xgb": specs.append(ModelSpec(name: "xgb", kind: .xgboost(xgb)))
      case "mlp":
        specs.append(
          ModelSpec(
            name: "mlp",
            kind: .mlp(units: [512, 256, 128], activation: .relu, dropout: 0.3, training: mlp)
          )
        )
      case "lstm":
        specs.append(
          ModelSpec(
            name: "lstm",
            kind: .lstm(sequenceLength: 24, hiddenSize: 32, layers: 1, dropout: 0.1, training: lstm)
          )
        )
      default: throw ValidationError("--models: unknown model '\(name)'")
      }
    }
    // One year of training before the first fold, monthly retraining, purge = longest horizon,
    // a month's validation tail for early stopping.
    let plan = try WalkForwardPlan(
      window: .expanding,
      trainBars: 365 * 24,
      testBars: 30 * 24,
      purgeBars: horizons.max() ?? 1,
      validationBars: 30 * 24
    )
    let run = RunSpec(models: specs, plan: plan, stacking: .init(minimumFolds: 2))
    var timings: [String: Duration] = [:]
    var current = (name: "", since: ContinuousClock.now)
    let runs = try WalkForwardRun.run(run, data: data) { event in
      if case .fold(let model, let horizon, _, _, _) = event {
        let key = "\(model) h\(horizon)"
        if key != current.name {
          if !current.name.isEmpty {
            timings[current.name, default: .zero] += ContinuousClock.now - current.since
          }
          current = (key, ContinuousClock.now)
        }
      }
      return true
    }
    if !current.name.isEmpty {
      timings[current.name, default: .zero] += ContinuousClock.now - current.since
    }
    print("   model      horizon   OOF rows   folds   OOF AUC   log loss   wall s")
    for result in runs {
      let key = "\(result.name) h\(result.horizon)"
      // The LSTM trains every horizon's head at once: its time is on the first horizon.
      let wall = timings[key].map { String(format: "%8.1f", Self.seconds($0)) } ?? "  (above)"
      print(
        String(
          format: "   %-10@%8d %10d %7d %9.4f %10.4f %@",
          result.name as NSString,
          result.horizon,
          result.outOfFoldRows,
          result.folds.count,
          result.metrics["auc"] ?? .nan,
          result.metrics["log_loss"] ?? .nan,
          wall as NSString
        )
      )
    }
    print(String(format: "   total %.1f s", Self.seconds(ContinuousClock.now - started)))
  }

  static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
  }
}
