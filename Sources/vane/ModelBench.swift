import ArgumentParser
import VaneCore
import VaneFeatures
import VaneMath
import VaneModels
import VaneTraining
internal import Foundation

/// `vane bench models`: one XGBoost fit and one MLP epoch on real v1 rows, beside the Python
/// xgboost and lightgbm packages and PyTorch (CPU, float32 and float64) on the same rows with the
/// same settings and thread count (scripts/bench_models.py).
struct ModelBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "models",
    abstract:
      "One XGBoost fit, one MLP epoch and one logistic regression fit on real 1h v1 rows: Vane vs xgboost, lightgbm, PyTorch (CPU) and scikit-learn.",
    discussion: """
      Data: the v1 feature rows of --symbol (1h, every year in the files, binary labels at \
      --horizon), the last --rows rows with a label, the first --width columns (v1 has fewer: all \
      of them). Rows with missing values are kept (complete v1 rows start only in 2020-08, when \
      SOL was listed) unless --no-incomplete-rows. The trees get the raw features (NaN missing); the MLP gets them standard-scaled \
      (FeatureScaler, fitted on these rows) with NaN replaced by 0. Both matrices and the labels \
      go to scripts/bench_models.py in one file (a JSON header, then little-endian float64), so \
      both sides train on identical data.

      XGBoost: Vane's XGBoostModel.fit (libxgboost through its C API; DMatrix, training and the \
      JSON save) vs xgboost.train (DMatrix, training, save_raw) with the same parameters, and \
      LightGBM (num_leaves 63, max_depth as XGBoost's, 300 rounds, min_data_in_leaf default).

      MLP: one epoch of MLP.train in float32 (the trainer's default) and in float64, on OpenBLAS \
      with BLAS.setThreadCount(--threads), each vs the same network in PyTorch in the same \
      precision: input → 512 → 256 → 128 → 2, batch norm, \
      ReLU, dropout 0.3, Vane's focal loss (γ 2, α 0.25, smoothing 0.1), clipping at norm 1, \
      AdamW lr 1e-3 wd 1e-4 on the weights, batch 256.

      LSTM: one epoch of LSTM.train in float32 (the default) and float64 over the last \
      --lstm-windows windows of 32 consecutive scaled rows (hidden 64, one layer, one sigmoid \
      head, dropout 0.1 on its input, full back-propagation through time, clipping at norm 1, \
      AdamW lr 1e-3 wd 1e-4 on the weights, batch 256), each vs torch.nn.LSTM and a linear head \
      with BCE-with-logits in the same precision.

      Logistic regression: LogisticRegression.fit (binary, L2 --l2, gradient tolerance 1e-8) on \
      the MLP's scaled features vs scikit-learn's LogisticRegression(solver="newton-cholesky", \
      C = 1 / l2, tol 1e-8), with the largest coefficient difference printed (target ≤ 1e-6).

      Each figure is the best of --repeats runs; ratio = reference / vane (> 1: Vane is faster). \
      Run nothing else on the machine meanwhile.
      """
  )

  @Option(help: "Directory of the candle files (binance_<SYMBOL>_1h.csv.gz).")
  var market = "../shared/data/market"

  @Option(help: "Symbol whose rows to train on.")
  var symbol = "BTCUSDT"

  @Option(help: "Label horizon in bars (binary labels).")
  var horizon = 1

  @Option(help: "Rows: the last this many labelled rows (all when fewer).")
  var rows = 43_737

  @Flag(
    inversion: .prefixedNo,
    help: "Keep rows with missing feature values (NaN for the trees, 0 for the MLP)."
  )
  var incompleteRows = true

  @Option(help: "Feature columns: the first this many v1 columns (all when v1 has fewer).")
  var width = 80

  @Option(help: "XGBoost and LightGBM rounds.")
  var rounds = 300

  @Option(help: "Tree depth (XGBoost max_depth, LightGBM max_depth).")
  var depth = 6

  @Option(help: "Learning rate (XGBoost eta, LightGBM learning_rate).")
  var eta = 0.05

  @Option(help: "LightGBM num_leaves.")
  var leaves = 63

  @Option(help: "Threads on both sides (XGBoost, LightGBM, OpenBLAS, PyTorch).")
  var threads = 2

  @Option(help: "Runs per tree timing (the best is reported).")
  var repeats = 3

  @Option(
    name: .customLong("mlp-repeats"),
    help: "Runs per MLP epoch timing (the best is reported)."
  )
  var mlpRepeats = 3

  @Option(help: "What to time: xgboost, lightgbm, mlp, lstm, logreg (comma-separated).")
  var only = "xgboost,lightgbm,mlp,lstm,logreg"

  @Option(
    help:
      "cpu, or cuda: XGBoost (device=cuda, a CUDA build of libxgboost), the MLP and the LSTM (float32) on the GPU on both sides; --only may name xgboost, mlp and lstm alone."
  )
  var device = "cpu"

  @Option(
    name: .customLong("lstm-windows"),
    help: "Windows of 32 rows for the LSTM epoch (the last ones)."
  )
  var lstmWindows = 8_192

  @Option(help: "L2 penalty of the logistic regression (scikit-learn's C = 1 / l2).")
  var l2 = 1.0

  @Option(
    help:
      "The Python interpreter for the references (default: /tmp/benchenv/bin/python if it exists, else python3)."
  )
  var python: String?

  @Option(help: "The reference timing script.")
  var script = "scripts/bench_models.py"

  /// The rows both sides train on.
  struct Rows {
    var columns: [String]
    var count: Int
    var width: Int
    /// `count × width`, NaN missing (the trees).
    var raw: [Double]
    /// `count × width`, standard-scaled, NaN → 0 (the MLP).
    var scaled: [Double]
    var labels: [Int]
    var firstOpenTime: Int64
    var lastOpenTime: Int64
    /// Labelled rows the dataset had (before taking the last `count`).
    var available: Int
    var v1Width: Int
    var missing: Int
    /// Chosen rows with at least one missing value.
    var incomplete: Int
  }

  /// The JSON header of the data file (snake_case keys): the settings the script must use.
  struct Header: Encodable {
    struct Trees: Encodable {
      var rounds: Int
      var maxDepth: Int
      var eta: Double
      var subsample: Double
      var colsampleBytree: Double
      var minChildWeight: Double
      var lambda: Double
      var alpha: Double
      var gamma: Double
      var maxBin: Int
      var seed: UInt64
      var treeMethod: String
      var device: String
    }
    struct Leaves: Encodable {
      var rounds: Int
      var numLeaves: Int
      var maxDepth: Int
      var learningRate: Double
      var maxBin: Int
      var seed: Int
    }
    struct Network: Encodable {
      var units: [Int]
      var classes: Int
      var dropout: Double
      var batchSize: Int
      var learningRate: Double
      var weightDecay: Double
      var clipNorm: Double
      var focalGamma: Double
      var focalAlpha: Double
      var labelSmoothing: Double
      var bnEps: Double
      var bnMomentum: Double
      var seed: UInt64
      var device: String
    }
    var rows: Int
    var columns: Int
    var threads: Int
    var repeatsTrees: Int
    var repeatsMlp: Int
    var parts: [String]
    var xgboost: Trees
    var lightgbm: Leaves
    var mlp: Network
    var lstm: Recurrent
    var logreg: Regression
    struct Recurrent: Encodable {
      var windows: Int
      var sequenceLength: Int
      var hiddenSize: Int
      var dropout: Double
      var batchSize: Int
      var learningRate: Double
      var weightDecay: Double
      var clipNorm: Double
      var seed: UInt64
      var device: String
    }
    struct Regression: Encodable {
      var l2: Double
      var tolerance: Double
      var maxIterations: Int
    }
  }

  /// One reference's figures, or why there are none.
  struct Reference: Decodable {
    var version: String?
    var seconds: [Double]?
    var best: Double?
    var trees: Int?
    var epoch_loss: Double?
    var predict_seconds: [Double]?
    var predict_best: Double?
    var coef: [Double]?
    var intercept: Double?
    var iterations: Int?
    var error: String?
  }

  struct ReferenceFigures: Decodable {
    var python: String
    var numpy: String
    var threads: Int
    var rows: Int
    var xgboost: Reference?
    var lightgbm: Reference?
    var torch_float32: Reference?
    var torch_float64: Reference?
    var torch_lstm_float32: Reference?
    var torch_lstm_float64: Reference?
    var sklearn_logreg: Reference?
  }

  func run() async throws {
    let parts = Set(self.only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    if let bad = parts.first(where: {
      !["xgboost", "lightgbm", "mlp", "lstm", "logreg"].contains($0)
    }) {
      throw ValidationError("--only: unknown part '\(bad)'")
    }
    // XGBoost, the MLP and the LSTM (float32) train on CUDA in this build.
    try BenchDevice.check(
      self.device,
      xgboost: parts.contains("xgboost"),
      networks: parts.contains("mlp") || parts.contains("lstm"),
      unsupported: parts.isSubset(of: ["xgboost", "mlp", "lstm"])
        ? nil
        : "only XGBoost, the MLP and the LSTM train on CUDA in this build; use --only xgboost,mlp,lstm"
    )
    guard self.repeats > 0, self.mlpRepeats > 0, self.threads > 0, self.rows > 1, self.width > 0
    else {
      throw ValidationError(
        "--repeats, --mlp-repeats, --threads, --rows and --width must be positive"
      )
    }
    let started = ContinuousClock.now
    let data = try self.load()
    print(
      "vane bench models: \(self.symbol) 1h, v1 has \(data.v1Width) columns; using \(data.width) (asked \(self.width))\(data.width < self.width ? " — NOT \(self.width): v1 has fewer" : "")"
    )
    print(
      "   rows: the last \(data.count) of \(data.available) labelled rows (asked \(self.rows))\(data.count < self.rows ? " — fewer than asked: all of them" : ""), \(CandleTime.format(data.firstOpenTime)) – \(CandleTime.format(data.lastOpenTime))"
    )
    let up = data.labels.reduce(0, +)
    print(
      String(
        format:
          "   labels: binary, horizon %d, %.1f%% UP; %d rows with missing values, %d values in all (NaN for the trees, 0 after scaling for the MLP); data %.1f s",
        self.horizon,
        100 * Double(up) / Double(data.count),
        data.incomplete,
        data.missing,
        TrainBench.seconds(ContinuousClock.now - started)
      )
    )
    print(
      "   machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; \(self.threads) threads on every side"
    )

    var xgb = XGBoostModel.Parameters()
    xgb.rounds = self.rounds
    xgb.maxDepth = self.depth
    xgb.learningRate = self.eta
    xgb.subsample = 1
    xgb.columnSampleByTree = 1
    xgb.maxBin = 256
    xgb.earlyStoppingRounds = 0
    xgb.treeMethod = "hist"
    xgb.threads = self.threads
    xgb.seed = 0
    xgb.device = self.device
    var training = MLP.Training()
    training.maxEpochs = 1
    training.batchSize = 256
    training.patience = 0
    training.learningRate = 1e-3
    training.weightDecay = 1e-4
    let units = [512, 256, 128]
    let dropout = 0.3
    let lightgbm = Header.Leaves(
      rounds: self.rounds,
      numLeaves: self.leaves,
      maxDepth: self.depth,
      learningRate: self.eta,
      maxBin: 255,
      seed: 0
    )

    // Vane first, then the references: never two timings at once.
    var vaneXGBoost: [Double] = []
    if parts.contains("xgboost") {
      print(
        String(
          format:
            "   XGBoost: %d rounds, max_depth %d, eta %g, subsample 1, colsample_bytree 1, max_bin 256, hist, nthread %d, device %@, no validation; libxgboost %@",
          xgb.rounds,
          xgb.maxDepth,
          xgb.learningRate,
          xgb.threads,
          self.device as NSString,
          (XGBoostModel.libraryVersion ?? "not available") as NSString
        )
      )
      for _ in 0 ..< self.repeats {
        let start = ContinuousClock.now
        let model = try XGBoostModel.fit(
          features: data.raw,
          count: data.count,
          featureCount: data.width,
          labels: data.labels,
          classCount: 2,
          parameters: xgb
        )
        vaneXGBoost.append(TrainBench.seconds(ContinuousClock.now - start))
        precondition(model.rounds == xgb.rounds)
      }
    }
    if parts.contains("lightgbm") {
      print(
        String(
          format:
            "   LightGBM: %d rounds, num_leaves %d, max_depth %d, learning_rate %g, max_bin %d (its default), min_data_in_leaf default, no bagging, num_threads %d, verbose -1",
          lightgbm.rounds,
          lightgbm.numLeaves,
          lightgbm.maxDepth,
          lightgbm.learningRate,
          lightgbm.maxBin,
          self.threads
        )
      )
    }
    // Each precision against PyTorch in the same one.
    // On CUDA the MLP trains in float32 only, as PyTorch is timed beside it.
    let precisions: [NeuralTraining.Precision] =
      self.device == "cuda" ? [.float32] : [.float32, .float64]
    var vaneMLP: [NeuralTraining.Precision: [Double]] = [:]
    var vaneLoss: [NeuralTraining.Precision: Double] = [:]
    if parts.contains("mlp") {
      BLAS.setThreadCount(self.threads)
      print(
        "   MLP: \(data.width) → \(units.map(String.init).joined(separator: " → ")) → 2, batch norm, ReLU, dropout \(dropout), focal loss (γ \(training.loss.gamma), α \(training.loss.alpha), smoothing \(training.loss.labelSmoothing)), clip norm \(training.clipNorm), AdamW lr \(training.learningRate) wd \(training.weightDecay), batch \(training.batchSize), 1 epoch; \(self.device == "cuda" ? "Vane and PyTorch in float32 on the GPU" : "Vane in float32 and float64 on OpenBLAS with BLAS.setThreadCount(\(self.threads)) (now \(BLAS.threadCount))")"
      )
      training.device = self.device == "cuda" ? .cuda : .cpu
      for precision in precisions {
        training.precision = precision
        for _ in 0 ..< self.mlpRepeats {
          let start = ContinuousClock.now
          _ = try MLP.train(
            features: data.scaled,
            count: data.count,
            featureCount: data.width,
            labels: data.labels,
            classCount: 2,
            units: units,
            activation: .relu,
            dropout: dropout,
            training: training
          ) { _, loss, _ in
            vaneLoss[precision] = loss
            return true
          }
          vaneMLP[precision, default: []].append(TrainBench.seconds(ContinuousClock.now - start))
        }
      }
    }

    // The LSTM: windows of consecutive scaled rows, labelled by their last row.
    var recurrent = LSTM.Training()
    recurrent.maxEpochs = 1
    recurrent.batchSize = 256
    recurrent.patience = 0
    let sequenceLength = 32, hiddenSize = 64, recurrentDropout = 0.1
    let windows = max(1, min(self.lstmWindows, data.count - sequenceLength + 1))
    var vaneLSTM: [NeuralTraining.Precision: [Double]] = [:]
    var vaneLSTMLoss: [NeuralTraining.Precision: Double] = [:]
    if parts.contains("lstm") {
      BLAS.setThreadCount(self.threads)
      let first = data.count - windows - sequenceLength + 1
      var sequences: [Double] = []
      sequences.reserveCapacity(windows * sequenceLength * data.width)
      for k in 0 ..< windows {
        sequences +=
          data.scaled[
            ((first + k) * data.width) ..< ((first + k + sequenceLength) * data.width)
          ]
      }
      let labels = (0 ..< windows).map { data.labels[first + $0 + sequenceLength - 1] }
      print(
        "   LSTM: \(windows) windows of \(sequenceLength) rows × \(data.width), hidden \(hiddenSize), 1 layer, 1 sigmoid head, dropout \(recurrentDropout) on its input, full BPTT, clip norm \(recurrent.clipNorm), AdamW lr \(recurrent.learningRate) wd \(recurrent.weightDecay), batch \(recurrent.batchSize), 1 epoch; \(self.device == "cuda" ? "Vane and PyTorch in float32 on the GPU" : "Vane in float32 and float64")"
      )
      recurrent.device = self.device == "cuda" ? .cuda : .cpu
      for precision in precisions {
        recurrent.precision = precision
        for _ in 0 ..< self.mlpRepeats {
          let start = ContinuousClock.now
          _ = try LSTM.train(
            sequences: sequences,
            count: windows,
            sequenceLength: sequenceLength,
            featureCount: data.width,
            labels: labels,
            heads: 1,
            hiddenSize: hiddenSize,
            layerCount: 1,
            dropout: recurrentDropout,
            training: recurrent
          ) { _, loss, _ in
            vaneLSTMLoss[precision] = loss
            return true
          }
          vaneLSTM[precision, default: []].append(TrainBench.seconds(ContinuousClock.now - start))
        }
      }
    }

    // Logistic regression, binary, on the MLP's scaled features.
    let regression = LogisticRegression.Parameters(l2: self.l2, maxIterations: 100, tolerance: 1e-8)
    var vaneLogreg: [Double] = []
    var logregModel: LogisticRegression?
    if parts.contains("logreg") {
      BLAS.setThreadCount(self.threads)
      print(
        "   logistic regression: binary, L2 \(regression.l2) (C = \(1 / regression.l2)), on the scaled features; Vane's Newton–Cholesky vs scikit-learn's newton-cholesky, gradient tolerance \(regression.tolerance)"
      )
      for _ in 0 ..< self.repeats {
        let start = ContinuousClock.now
        logregModel = try LogisticRegression.fit(
          features: data.scaled,
          count: data.count,
          featureCount: data.width,
          labels: data.labels,
          classCount: 2,
          parameters: regression
        )
        vaneLogreg.append(TrainBench.seconds(ContinuousClock.now - start))
      }
    }

    let header = Header(
      rows: data.count,
      columns: data.width,
      threads: self.threads,
      repeatsTrees: self.repeats,
      repeatsMlp: self.mlpRepeats,
      parts: (parts.contains("xgboost") ? ["xgboost"] : [])
        + (parts.contains("lightgbm") ? ["lightgbm"] : [])
        + (parts.contains("mlp")
          ? (self.device == "cuda" ? ["torch_float32"] : ["torch_float32", "torch_float64"]) : [])
        + (parts.contains("lstm")
          ? (self.device == "cuda"
            ? ["torch_lstm_float32"] : ["torch_lstm_float32", "torch_lstm_float64"]) : [])
        + (parts.contains("logreg") ? ["sklearn_logreg"] : []),
      xgboost: .init(
        rounds: xgb.rounds,
        maxDepth: xgb.maxDepth,
        eta: xgb.learningRate,
        subsample: xgb.subsample,
        colsampleBytree: xgb.columnSampleByTree,
        minChildWeight: xgb.minChildWeight,
        lambda: xgb.lambda,
        alpha: xgb.alpha,
        gamma: xgb.gamma,
        maxBin: xgb.maxBin,
        seed: xgb.seed,
        treeMethod: xgb.treeMethod,
        device: xgb.device
      ),
      lightgbm: lightgbm,
      mlp: .init(
        units: units,
        classes: 2,
        dropout: dropout,
        batchSize: training.batchSize,
        learningRate: training.learningRate,
        weightDecay: training.weightDecay,
        clipNorm: training.clipNorm,
        focalGamma: training.loss.gamma,
        focalAlpha: training.loss.alpha,
        labelSmoothing: training.loss.labelSmoothing,
        bnEps: MLP.epsilon,
        bnMomentum: 0.1,
        seed: training.seed,
        device: self.device
      ),
      lstm: .init(
        windows: windows,
        sequenceLength: sequenceLength,
        hiddenSize: hiddenSize,
        dropout: recurrentDropout,
        batchSize: recurrent.batchSize,
        learningRate: recurrent.learningRate,
        weightDecay: recurrent.weightDecay,
        clipNorm: recurrent.clipNorm,
        seed: recurrent.seed,
        device: self.device
      ),
      logreg: .init(
        l2: regression.l2,
        tolerance: regression.tolerance,
        maxIterations: regression.maxIterations
      )
    )
    let reference: ReferenceFigures?
    var lightgbmModel: (model: Data, raw: [Double])?
    do {
      (reference, lightgbmModel) = try self.reference(header: header, data: data)
    } catch {
      print("   the references could not be run: \(error)")
      reference = nil
    }
    if let reference {
      print(
        "   references: Python \(reference.python), numpy \(reference.numpy), \(reference.threads) threads, \(reference.rows) rows (\(self.pythonPath))"
      )
    }

    print("")
    print(
      "   what".padding(toLength: 46, withPad: " ", startingAt: 0)
        + "  vane s   reference s   ratio (ref / vane)"
    )
    func best(_ runs: [Double]) -> Double { runs.min() ?? .nan }
    func row(_ what: String, vane: [Double], reference: Reference?, missing: String) {
      let name = "   " + what
      guard let reference, reference.error == nil, let seconds = reference.best else {
        print(
          name.padding(toLength: 46, withPad: " ", startingAt: 0)
            + String(format: "%8.3f", best(vane))
            + "   reference not run: \(reference?.error ?? missing)"
        )
        return
      }
      print(
        name.padding(toLength: 46, withPad: " ", startingAt: 0)
          + String(
            format: "%8.3f %13.3f %12.2f×  %@",
            best(vane),
            seconds,
            seconds / best(vane),
            (seconds >= best(vane) ? "(vane faster or equal)" : "(vane slower)") as NSString
          )
      )
    }
    func version(_ figure: Reference?) -> String { figure?.version.map { " " + $0 } ?? "" }
    let missing = reference == nil ? "the script did not run" : "no figure"
    if parts.contains("xgboost") {
      row(
        "XGBoost fit vs xgboost\(version(reference?.xgboost))",
        vane: vaneXGBoost,
        reference: reference?.xgboost,
        missing: missing
      )
    }
    if parts.contains("lightgbm") && !vaneXGBoost.isEmpty {
      row(
        "XGBoost fit vs lightgbm\(version(reference?.lightgbm))",
        vane: vaneXGBoost.isEmpty ? [.nan] : vaneXGBoost,
        reference: reference?.lightgbm,
        missing: missing
      )
    }
    if parts.contains("lightgbm"), let lightgbmModel {
      // lightgbm's model, read by Vane's LightGBM text reader and evaluated natively on the same
      // rows (one thread, as lightgbm's predict here).
      let trees = try TreeEnsemble.lightgbm(text: lightgbmModel.model)
      var seconds: [Double] = []
      var margins: [Double] = []
      let clock = ContinuousClock()
      for _ in 0 ..< self.repeats {
        let start = clock.now
        margins = trees.margins(batch: data.raw, rows: data.count)
        let elapsed = (clock.now - start).components
        seconds.append(Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
      }
      var lightgbmPredict = reference?.lightgbm
      let predictBest = lightgbmPredict?.predict_best
      lightgbmPredict?.best = predictBest
      row(
        "LightGBM predict \(trees.trees.count) trees × \(data.count) rows",
        vane: seconds,
        reference: lightgbmPredict,
        missing: missing
      )
      let worst = zip(margins, lightgbmModel.raw).map { abs($0 - $1) }.max() ?? .infinity
      print(
        String(
          format:
            "   (native LightGBM evaluator: max |raw score − lightgbm's| = %.1e over %d rows)",
          worst,
          margins.count == lightgbmModel.raw.count ? data.count : -1
        )
      )
    }
    if parts.contains("mlp") {
      row(
        "MLP epoch float32 vs torch\(version(reference?.torch_float32)) float32",
        vane: vaneMLP[.float32] ?? [],
        reference: reference?.torch_float32,
        missing: missing
      )
      if precisions.contains(.float64) {
        row(
          "MLP epoch float64 vs torch\(version(reference?.torch_float64)) float64",
          vane: vaneMLP[.float64] ?? [],
          reference: reference?.torch_float64,
          missing: missing
        )
      }
    }
    if parts.contains("lstm") {
      row(
        "LSTM epoch float32 vs torch\(version(reference?.torch_lstm_float32)) float32",
        vane: vaneLSTM[.float32] ?? [],
        reference: reference?.torch_lstm_float32,
        missing: missing
      )
      if precisions.contains(.float64) {
        row(
          "LSTM epoch float64 vs torch\(version(reference?.torch_lstm_float64)) float64",
          vane: vaneLSTM[.float64] ?? [],
          reference: reference?.torch_lstm_float64,
          missing: missing
        )
      }
    }
    if parts.contains("logreg") {
      row(
        "LogReg fit vs sklearn\(version(reference?.sklearn_logreg)) newton-cholesky",
        vane: vaneLogreg,
        reference: reference?.sklearn_logreg,
        missing: missing
      )
    }
    print("")
    func runs(_ values: [Double]?) -> String {
      values.map { $0.map { String(format: "%.3f", $0) }.joined(separator: ", ") } ?? "-"
    }
    if parts.contains("xgboost") {
      print(
        "   runs (s): vane xgboost [\(runs(vaneXGBoost))]; xgboost [\(runs(reference?.xgboost?.seconds))]"
      )
    }
    if parts.contains("lightgbm") {
      print("   runs (s): lightgbm [\(runs(reference?.lightgbm?.seconds))]")
    }
    if parts.contains("mlp") {
      print(
        "   runs (s): vane float32 [\(runs(vaneMLP[.float32]))]; torch float32 [\(runs(reference?.torch_float32?.seconds))]"
      )
      print(
        "   runs (s): vane float64 [\(runs(vaneMLP[.float64]))]; torch float64 [\(runs(reference?.torch_float64?.seconds))]"
      )
      func loss(_ value: Double?) -> String { value.map { String(format: "%.5f", $0) } ?? "-" }
      print(
        "   epoch focal loss (same data and initialisation scheme; different random draws and shuffles): vane float32 \(loss(vaneLoss[.float32])), float64 \(loss(vaneLoss[.float64])); torch float32 \(loss(reference?.torch_float32?.epoch_loss)), float64 \(loss(reference?.torch_float64?.epoch_loss))"
      )
      for (precision, figure) in [
        (NeuralTraining.Precision.float32, reference?.torch_float32),
        (.float64, reference?.torch_float64),
      ] {
        guard let seconds = figure?.best, let vane = vaneMLP[precision]?.min() else { continue }
        print(
          String(
            format: "   MLP epoch at least as fast as PyTorch in %@: %@ (%.3f s vs %.3f s)",
            precision.rawValue as NSString,
            (vane <= seconds ? "met" : "NOT met") as NSString,
            vane,
            seconds
          )
        )
      }
    }
    if parts.contains("lstm") {
      func loss(_ value: Double?) -> String { value.map { String(format: "%.5f", $0) } ?? "-" }
      for (precision, figure) in [
        (NeuralTraining.Precision.float32, reference?.torch_lstm_float32),
        (.float64, reference?.torch_lstm_float64),
      ] {
        print(
          "   runs (s): vane LSTM \(precision.rawValue) [\(runs(vaneLSTM[precision]))]; torch [\(runs(figure?.seconds))]; epoch BCE vane \(loss(vaneLSTMLoss[precision])), torch \(loss(figure?.epoch_loss))"
        )
        guard let seconds = figure?.best, let vane = vaneLSTM[precision]?.min() else { continue }
        print(
          String(
            format: "   LSTM epoch at least as fast as PyTorch in %@: %@ (%.3f s vs %.3f s)",
            precision.rawValue as NSString,
            (vane <= seconds ? "met" : "NOT met") as NSString,
            vane,
            seconds
          )
        )
      }
    }
    if parts.contains("logreg"), let model = logregModel {
      print(
        "   runs (s): vane logreg [\(runs(vaneLogreg))]; sklearn [\(runs(reference?.sklearn_logreg?.seconds))]; Newton steps: vane \(model.iterations), sklearn \(reference?.sklearn_logreg?.iterations.map(String.init) ?? "-")"
      )
      if let coef = reference?.sklearn_logreg?.coef,
        let intercept = reference?.sklearn_logreg?.intercept,
        coef.count == model.weights.count, let seconds = reference?.sklearn_logreg?.best,
        let vane = vaneLogreg.min()
      {
        let worst = max(
          zip(coef, model.weights).map { abs($0 - $1) }.max() ?? 0,
          abs(intercept - model.intercepts[0])
        )
        print(
          String(
            format:
              "   logistic regression: max |coefficient − scikit-learn's| = %.1e (target ≤ 1e-6: %@); at least as fast as scikit-learn: %@ (%.3f s vs %.3f s)",
            worst,
            (worst <= 1e-6 ? "met" : "NOT met") as NSString,
            (vane <= seconds ? "met" : "NOT met") as NSString,
            vane,
            seconds
          )
        )
      }
    }
  }

  /// The v1 rows of the symbol: the last `rows` labelled rows, the first `width` columns.
  func load() throws -> Rows {
    var series: [String: [Candle]] = [:]
    for symbol in Set(FeatureSet.v1References + [self.symbol]) {
      let file = try CandleFileParser.read(path: "\(self.market)/binance_\(symbol)_1h.csv.gz")
      series[symbol] = try CandleValidator.validate(
        file,
        interval: .h1,
        asOf: Int64(Date().timeIntervalSince1970 * 1000)
      ).accepted
    }
    // Incomplete rows too (NaN where an indicator warms up or a reference symbol, SOL, was not
    // yet listed): complete rows start only in 2020-08, fewer than the rows the benchmark asks.
    let spec = DatasetSpec(
      symbols: [self.symbol],
      interval: .h1,
      featureSet: .v1,
      labels: LabelSpec(kind: .binary, horizons: [self.horizon]),
      keepIncompleteRows: self.incompleteRows
    )
    let dataset = try Dataset.build(spec) { series[$0] ?? [] }
    let all = try TrainingData(dataset: dataset)
    let labelled = (0 ..< all.rowCount).filter { all.labels[0][$0] >= 0 }
    guard labelled.count > 1 else {
      throw ValidationError("\(self.symbol): fewer than two labelled rows")
    }
    let chosen = Array(labelled.suffix(self.rows))
    let v1Width = all.columns.count
    let width = min(self.width, v1Width)
    var raw: [Double] = []
    raw.reserveCapacity(chosen.count * width)
    for r in chosen { raw += all.features[(r * v1Width) ..< (r * v1Width + width)] }
    let columns = Array(all.columns.prefix(width))
    let scaler = FeatureScaler.fit(
      method: .standard,
      columns: columns,
      scaled: Array(all.scaled.prefix(width)),
      values: raw,
      rows: chosen.count
    )
    let scaled = scaler.transform(batch: raw).map { $0.isFinite ? $0 : 0 }
    return Rows(
      columns: columns,
      count: chosen.count,
      width: width,
      raw: raw,
      scaled: scaled,
      labels: chosen.map { all.labels[0][$0] },
      firstOpenTime: all.openTimes[chosen[0]],
      lastOpenTime: all.openTimes[chosen[chosen.count - 1]],
      available: labelled.count,
      v1Width: v1Width,
      missing: raw.reduce(0) { $0 + ($1.isNaN ? 1 : 0) },
      incomplete: (0 ..< chosen.count).reduce(0) { count, r in
        count + (raw[(r * width) ..< ((r + 1) * width)].contains { $0.isNaN } ? 1 : 0)
      }
    )
  }

  /// The interpreter: --python, else /tmp/benchenv/bin/python when it exists, else python3.
  var pythonPath: String {
    if let python = self.python { return python }
    return FileManager.default.isExecutableFile(atPath: "/tmp/benchenv/bin/python")
      ? "/tmp/benchenv/bin/python" : "python3"
  }

  /// Writes the data file, runs the script on it and decodes its JSON.
  /// - Throws: when the interpreter or the script fails (the table then shows Vane alone).
  func reference(
    header: Header,
    data: Rows
  ) throws -> (figures: ReferenceFigures, lightgbm: (model: Data, raw: [Double])?) {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys]
    var json = try encoder.encode(header)
    while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
    var bytes = Data()
    var length = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
    bytes.append(json)
    // Little-endian on every supported host.
    data.raw.withUnsafeBytes { bytes.append(contentsOf: $0) }
    data.scaled.withUnsafeBytes { bytes.append(contentsOf: $0) }
    data.labels.map(Double.init).withUnsafeBytes { bytes.append(contentsOf: $0) }
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-models-\(getpid())-\(UUID().uuidString).bin"
    )
    try bytes.write(to: file)
    let modelFile = file.path + ".lightgbm.txt", rawFile = file.path + ".lightgbm.raw.bin"
    defer {
      for path in [file.path, modelFile, rawFile] {
        try? FileManager.default.removeItem(atPath: path)
      }
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [self.pythonPath, self.script, file.path]
    var environment = ProcessInfo.processInfo.environment
    environment["OMP_NUM_THREADS"] = "\(self.threads)"
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let stdout = FileDescriptorReader.readAll(output.fileHandleForReading.fileDescriptor)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw ValidationError(
        "\(self.pythonPath) \(self.script) exited with \(process.terminationStatus)"
      )
    }
    let line =
      String(decoding: stdout, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    let figures = try JSONDecoder().decode(ReferenceFigures.self, from: Data(line.utf8))
    guard let model = FileManager.default.contents(atPath: modelFile),
      let raw = FileManager.default.contents(atPath: rawFile)
    else {
      return (figures, nil)
    }
    let scores = raw.withUnsafeBytes { bytes in
      (0 ..< (raw.count / 8)).map {
        Double(
          bitPattern: UInt64(
            littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)
          )
        )
      }
    }
    return (figures, (model, scores))
  }
}
