public import Foundation
public import VaneBundle
internal import VaneCore
public import VaneFeatures
internal import VaneModels
internal import VaneONNX
public import VaneQuality

/// What a bundle is written for: its identity, the data it was trained on and what the job asked
/// of the post-processing.
public struct BundleRequest: Sendable {
  /// Bundle id: 1 to 128 ASCII letters, digits, '.', '_' or '-'.
  public var id: String
  public var created: Date
  public var symbols: [String]
  /// The API's interval name, e.g. "1h".
  public var interval: String
  /// "binary" or "three_class".
  public var taskKind: String
  public var featureSetID: String
  public var featureSetSHA256: String
  /// How the served model's OOF predictions are calibrated (`auto` picks by cross-validated NLL).
  public var calibration: CalibrationMethod
  /// ONNX files for the models (ai.onnx + ai.onnx.ml).
  public var exportONNX: Bool
  /// Where the data came from and how the job ran, copied into bundle.json.
  public var provenance: [String: String]
  /// The training spec as the API's JSON, stored as `spec.json` (nil: none).
  public var spec: Data?
  /// What the models do with rows with a missing value (recorded as `missing_values`).
  public var missingValues: MissingValues

  public init(
    id: String,
    created: Date,
    symbols: [String],
    interval: String,
    taskKind: String,
    featureSetID: String,
    featureSetSHA256: String,
    calibration: CalibrationMethod = .auto,
    exportONNX: Bool = false,
    provenance: [String: String] = [:],
    spec: Data? = nil,
    missingValues: MissingValues = .exclude
  ) {
    self.id = id
    self.created = created
    self.symbols = symbols
    self.interval = interval
    self.taskKind = taskKind
    self.featureSetID = featureSetID
    self.featureSetSHA256 = featureSetSHA256
    self.calibration = calibration
    self.exportONNX = exportONNX
    self.provenance = provenance
    self.spec = spec
    self.missingValues = missingValues
  }
}

/// A written bundle and what went into it.
public struct WrittenBundle: Sendable {
  public var path: String
  public var manifest: BundleManifest
  public var manifestSHA256: String
  /// The model the bundle serves at its first horizon ("stack", or the first model).
  public var finalModel: String
  public var calibration: Calibration
  /// Cross-validated log loss of each calibration candidate (`auto` only).
  public var calibrationScores: [CalibrationMethod: Double]
  /// Per horizon: the base models' Pearson correlation matrix of OOF predictions.
  public var correlations: [Int: CorrelationMatrix]
  /// What a user should know about the data or the fit (for the job's warnings).
  public var warnings: [String]
}

/// Pearson correlations between models' OOF predictions on the rows they all predicted
/// (binary: P(class 1); otherwise every class probability).
public struct CorrelationMatrix: Sendable, Equatable, Codable {
  public var models: [String]
  public var values: [[Double]]
  public var rows: Int
}

/// Writes a trained job's bundle (layout v1, documented on ``BundleManifest``):
///
/// - `models/scaler.json`: the feature scaler of the final window (``FeatureScaler`` JSON).
/// - `models/<name>_h<H>.json`: a model in Vane's JSON, `{"format": "vane.model.v1", "kind",
///   "horizons", "classes", "columns", "model": {…}}` where `model` holds the fitted parameters
///   as the Swift types encode them (logistic regression: `weights` featureCount × outputs
///   row-major with one output for binary; MLP: hidden layers with batch-norm running
///   statistics, output layer, temperature; LSTM: `models/<name>.json`, one file for all heads,
///   gates i, f, g, o). XGBoost models are XGBoost's own JSON: `models/<name>_h<H>.xgb.json`.
/// - `models/stack_h<H>.json`: `{"format": "vane.stack.v1", "bases": [{"name", "file"}],
///   "volatility_column", "scaler", "model"}`: the meta-learner reads each base's logit (binary)
///   or centred log-probabilities, clipped to ±15, then the volatility column, standardised by
///   `scaler`.
/// - `models/<name>_h<H>.onnx` (LSTM: `models/<name>.onnx`) when asked: the same models for
///   ONNX Runtime, taking raw features (the scaler is inside the graph), with output
///   `probabilities` (``ONNXExport``); the stack is not exported (it composes the others).
/// - `reports/oof_h<H>.json`: OOF predictions of every model at horizon H on the rows all of
///   them predicted (labels, fold ids, input summary); `out_of_fold` names the first horizon's.
/// - `reports/training.json`: per model and horizon the OOF metrics and per-fold metrics, the
///   base models' correlation matrices and the calibration candidates' scores.
/// - `spec.json`: the training spec.
public enum TrainingBundle {
  /// The model a horizon's bundle serves: the stack when there is one, else the first model.
  static func finalModel(_ runs: [ModelRun]) -> ModelRun {
    runs.first { $0.kind == "stack" } ?? runs[0]
  }

  /// Writes the bundle to `path` (a `.tar.gz`, atomically).
  /// - Throws: FAILED_PRECONDITION when the OOF predictions are too few to calibrate;
  ///   INTERNAL/UNAVAILABLE when encoding or writing fails.
  public static func write(
    _ request: BundleRequest,
    data: TrainingData,
    runs: [ModelRun],
    final: FinalFit,
    to path: String
  ) throws -> WrittenBundle {
    let k = data.classes.count
    var files: [String: Data] = [:]
    var models: [BundleManifest.Model] = []
    let encoder = BundleJSON.encoder()
    if let scaler = final.scaler { files["models/scaler.json"] = try scaler.json() }

    // The models.
    // A model is the single served one where no stack and no other model shares its horizons.
    func isSingle(_ model: FinalModel) -> Bool {
      final.stacks.isEmpty
        && final.models.filter { !Set($0.horizons).isDisjoint(with: model.horizons) }.count == 1
    }
    var modelFiles: [String: String] = [:]
    for model in final.models {
      let file: String
      let kind = model.modelKind
      let suffix = kind == .lstm ? "" : "_h\(model.horizons[0])"
      func envelope<M: Codable & Sendable>(_ fitted: M) throws -> Data {
        try encoder.encode(
          BundleModelFile(
            kind: kind,
            horizons: model.horizons,
            classes: data.classes,
            columns: data.columns,
            model: fitted
          )
        )
      }
      switch model.model {
      case .xgboost(let fitted):
        file = "models/\(model.name)\(suffix).xgb.json"
        files[file] = fitted.json
      case .logisticRegression(let fitted):
        file = "models/\(model.name)\(suffix).json"
        files[file] = try envelope(fitted)
      case .mlp(let fitted):
        file = "models/\(model.name)\(suffix).json"
        files[file] = try envelope(fitted)
      case .lstm(let fitted):
        file = "models/\(model.name)\(suffix).json"
        files[file] = try envelope(fitted)
      }
      for horizon in model.horizons { modelFiles["\(model.name)@\(horizon)"] = file }
      var onnx: String?
      if request.exportONNX {
        onnx = "models/\(model.name)\(suffix).onnx"
        files[onnx!] = try Self.onnx(model, scaler: final.scaler, classes: data.classes)
      }
      models.append(
        BundleManifest.Model(
          name: model.name,
          kind: kind,
          file: file,
          role: isSingle(model) ? .single : .base,
          horizons: model.horizons,
          onnx: onnx
        )
      )
    }
    for stack in final.stacks {
      let file = "models/stack_h\(stack.horizon).json"
      files[file] = try encoder.encode(
        BundleStackFile(
          bases: stack.bases.map {
            BundleStackFile<FeatureScaler, LogisticRegression>.Base(
              name: $0,
              file: modelFiles["\($0)@\(stack.horizon)"] ?? ""
            )
          },
          volatilityColumn: stack.volatilityColumn,
          scaler: stack.scaler,
          model: stack.model
        )
      )
      models.append(
        BundleManifest.Model(
          name: "stack",
          kind: .stack,
          file: file,
          role: .meta,
          horizons: [stack.horizon]
        )
      )
    }

    // Out-of-fold predictions, per horizon, on the rows every model predicted.
    var correlations: [Int: CorrelationMatrix] = [:]
    var primary:
      (
        predictions: Predictions, final: ModelRun, metrics: [String: Double],
        inputs: OutOfFold.Inputs?
      )?
    var served: [(horizon: Int, probabilities: [Double])] = []
    for (h, horizon) in data.horizons.enumerated() {
      let atHorizon = runs.filter { $0.horizon == horizon }
      guard !atHorizon.isEmpty else { continue }
      let finalRun = Self.finalModel(atHorizon)
      let rows = (0 ..< data.rowCount).filter { row in
        data.labels[h][row] >= 0
          && atHorizon.allSatisfy { run in
            (0 ..< k).allSatisfy { run.outOfFold[row * k + $0].isFinite }
          }
      }
      guard !rows.isEmpty else {
        throw VaneError(
          .failedPrecondition,
          "no row has an out-of-fold prediction of every model at \(horizon) bars: the data is too short for the plan"
        )
      }
      var outputs: [String: OutOfFold.Output] = [:]
      for run in atHorizon {
        outputs[run.name] = OutOfFold.Output(
          values: rows.flatMap { run.outOfFold[($0 * k) ..< ($0 * k + k)] },
          valuesAreLogits: false
        )
      }
      let oof = OutOfFold(
        labels: rows.map { data.labels[h][$0] },
        foldIds: Self.foldIDs(rows, data: data, folds: finalRun.folds),
        final: finalRun.name,
        models: outputs,
        inputs: Self.inputSummary(rows, data: data, scaler: final.scaler),
        barTimes: rows.map { data.openTimes[$0] }
      )
      files["reports/oof_h\(horizon).json"] = try oof.encoded()
      served.append((horizon, outputs[finalRun.name]!.values))
      let bases = atHorizon.filter { $0.kind != "stack" }
      correlations[horizon] = Self.correlations(bases, rows: rows, classCount: k)
      if primary == nil {
        let predictions = try Predictions(
          probabilities: outputs[finalRun.name]!.values,
          classCount: k,
          labels: oof.labels
        )
        primary = (predictions, finalRun, finalRun.metrics, oof.inputs)
      }
    }
    guard let primary else {
      throw VaneError(.failedPrecondition, "no model produced out-of-fold predictions")
    }

    // Calibration of the served model, from the gatekeeper's library.
    let calibration: Calibration
    var scores: [CalibrationMethod: Double] = [:]
    do {
      switch request.calibration {
      case .auto:
        let choice = try Calibrator.choose(primary.predictions)
        calibration = choice.chosen
        scores = choice.crossValidatedNLL
      case .none:
        calibration = .none
      default:
        calibration = try Calibrator.fit(request.calibration, primary.predictions)
      }
    } catch let error as VaneError {
      throw VaneError(
        .failedPrecondition,
        "calibrating \(primary.final.name)'s out-of-fold predictions: \(error.message)",
        cause: error
      )
    }

    files["reports/training.json"] = try encoder.encode(
      TrainingReport(
        models: runs.map { run in
          TrainingReport.Model(
            name: run.name,
            kind: run.kind,
            horizon: run.horizon,
            oofMetrics: run.metrics,
            oofRows: run.outOfFoldRows,
            folds: run.folds,
            finalFit: final.models.first {
              $0.name == run.name && $0.horizons.contains(run.horizon)
            }.map {
              TrainingReport.FinalFitSummary(
                trainRows: $0.trainRows,
                validationRows: $0.validationRows,
                seconds: $0.seconds,
                bestIteration: $0.bestIteration
              )
            }
          )
        },
        correlations: correlations.keys.sorted().map {
          TrainingReport.Correlations(horizon: $0, matrix: correlations[$0]!)
        },
        calibration: .init(
          method: calibration.method.rawValue,
          crossValidatedLogLoss: Dictionary(
            uniqueKeysWithValues: scores.map { ($0.key.rawValue, $0.value) }
          )
        ),
        finalWindow: .init(
          start: final.window.trainRange.lowerBound,
          end: final.window.trainRange.upperBound,
          trainRows: final.window.trainRows.count,
          validationRows: final.window.validationRows.count
        )
      )
    )
    if let spec = request.spec { files["spec.json"] = spec }
    // What the served answers are compared with at answer time: the calibrated horizon's
    // scores as the predictor will answer them.
    if let first = served.first?.horizon,
      let index = served.firstIndex(where: { $0.horizon == first })
    {
      served[index].probabilities = try calibration.apply(
        probabilities: served[index].probabilities,
        classCount: k
      )
    }
    files[TrainingReference.file] = try encoder.encode(
      Self.reference(data: data, final: final, served: served)
    )

    let manifest = BundleManifest(
      id: request.id,
      created: Self.timestamp(request.created),
      symbols: request.symbols,
      interval: request.interval,
      task: .init(kind: request.taskKind, classes: data.classes, horizons: data.horizons),
      featureSet: .init(
        id: request.featureSetID,
        sha256: request.featureSetSHA256,
        columns: data.columns
      ),
      models: models,
      calibration: .init(
        method: calibration.method.rawValue,
        parameters: calibration.parametersJSON()
      ),
      outOfFold: .init(file: "reports/oof_h\(primary.final.horizon).json"),
      reference: .init(file: TrainingReference.file),
      missingValues: request.missingValues.rawValue,
      metrics: primary.metrics.filter { $0.value.isFinite },
      provenance: request.provenance.merging(
        [
          "final_model": primary.final.name,
          "final_window":
            "\(final.window.trainRange.lowerBound)..<\(final.window.trainRange.upperBound)",
        ]) { a, _ in a }
    )
    let (written, sha256) = try ModelBundle.write(manifest, files: files, to: path)
    var warnings: [String] = []
    let constant = data.columns.filter { !(primary.inputs?.columns.contains($0) ?? true) }
    if !constant.isEmpty {
      warnings.append(
        "constant over the out-of-fold rows (no information; left out of the input summary): \(constant.joined(separator: ", "))"
      )
    }
    return WrittenBundle(
      path: path,
      manifest: written,
      manifestSHA256: sha256,
      finalModel: primary.final.name,
      calibration: calibration,
      calibrationScores: scores,
      correlations: correlations,
      warnings: warnings
    )
  }

  /// A model as ONNX taking raw features: the bundle's scaler is the graph's input transform,
  /// and non-finite inputs become 0 after scaling where the native model does so (all but
  /// XGBoost, which treats NaN as missing).
  static func onnx(_ model: FinalModel, scaler: FeatureScaler?, classes: [String]) throws -> Data {
    func transform(zero: Bool) -> ONNXInputTransform {
      ONNXInputTransform(
        center: scaler?.center ?? [],
        scale: scaler?.scale ?? [],
        zeroNonFinite: zero,
        impute: scaler?.impute ?? []
      )
    }
    let metadata = [
      "vane.model_name": model.name,
      "vane.horizons": model.horizons.map(String.init).joined(separator: ","),
    ]
    switch model.model {
    case .logisticRegression(let fitted):
      return try ONNXExport.logisticRegression(
        fitted,
        transform: transform(zero: true),
        classNames: classes,
        metadata: metadata
      )
    case .mlp(let fitted):
      return try ONNXExport.mlp(
        fitted,
        transform: transform(zero: true),
        classNames: classes,
        metadata: metadata
      )
    case .xgboost(let fitted):
      return try ONNXExport.xgboost(
        fitted,
        transform: transform(zero: false),
        classNames: classes,
        metadata: metadata
      )
    case .lstm(let fitted):
      return try ONNXExport.lstm(
        fitted,
        transform: transform(zero: true),
        headNames: model.horizons.map { "up_h\($0)" },
        metadata: metadata
      )
    }
  }

  /// For each row, the number of the most recent fold whose test range holds it (0: none).
  static func foldIDs(_ rows: [Int], data: TrainingData, folds: [FoldRun]) -> [Int] {
    rows.map { row in folds.last { $0.testRange.contains(data.openTimes[row]) }?.number ?? 0 }
  }

  /// Mean and standard deviation per column of the scaled inputs of `rows` (finite values).
  /// Columns constant over the rows are left out: they carry nothing (BTCUSDT's correlation
  /// with BTC is always 1) and their zero spread says nothing about scaling.
  static func inputSummary(
    _ rows: [Int],
    data: TrainingData,
    scaler: FeatureScaler?
  ) -> OutOfFold.Inputs {
    let width = data.columns.count
    var values = data.rows(rows)
    if let scaler { values = scaler.transform(batch: values) }
    var mean = [Double](repeating: 0, count: width), std = [Double](repeating: 0, count: width)
    for c in 0 ..< width {
      var count = 0.0, sum = 0.0
      for r in rows.indices where values[r * width + c].isFinite {
        sum += values[r * width + c]
        count += 1
      }
      let m = count > 0 ? sum / count : .nan
      var squares = 0.0
      for r in rows.indices where values[r * width + c].isFinite {
        squares += (values[r * width + c] - m) * (values[r * width + c] - m)
      }
      mean[c] = m
      std[c] = count > 0 ? (squares / count).squareRoot() : .nan
    }
    let kept = (0 ..< width).filter { std[$0] > 0 }
    return OutOfFold.Inputs(
      columns: kept.map { data.columns[$0] },
      mean: kept.map { mean[$0] },
      std: kept.map { std[$0] }
    )
  }

  /// The reference statistics of the final fit's rows (training and validation: everything the
  /// served models learned from).
  static func reference(
    data: TrainingData,
    final: FinalFit,
    served: [(horizon: Int, probabilities: [Double])]
  ) -> TrainingReference {
    let rows = (final.window.trainRows + final.window.validationRows).sorted()
    let raw = data.rows(rows)
    let scaled = final.scaler.map { $0.transform(batch: raw) } ?? raw
    let start = rows.first.map { data.openTimes[$0] } ?? 0
    let end = rows.last.map { data.openTimes[$0] + data.barMs } ?? 0
    return TrainingReference.summarise(
      columns: data.columns,
      raw: raw,
      scaled: scaled,
      rows: rows.count,
      dataStart: start,
      dataEnd: end,
      classCount: data.classes.count,
      scores: served
    )
  }

  static func correlations(_ runs: [ModelRun], rows: [Int], classCount k: Int) -> CorrelationMatrix
  {
    let series: [[Double]] = runs.map { run in
      k == 2
        ? rows.map { run.outOfFold[$0 * k + 1] }
        : rows.flatMap { run.outOfFold[($0 * k) ..< ($0 * k + k)] }
    }
    let values = series.map { a in series.map { b in Self.pearson(a, b) } }
    return CorrelationMatrix(models: runs.map(\.name), values: values, rows: rows.count)
  }

  static func pearson(_ a: [Double], _ b: [Double]) -> Double {
    let n = Double(a.count)
    guard n > 1 else { return .nan }
    let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in a.indices {
      sab += (a[i] - ma) * (b[i] - mb)
      saa += (a[i] - ma) * (a[i] - ma)
      sbb += (b[i] - mb) * (b[i] - mb)
    }
    return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : .nan
  }

  /// RFC 3339 with milliseconds, UTC.
  public static func timestamp(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
  }
}

/// `reports/training.json`.
struct TrainingReport: Encodable, Sendable {
  struct FinalFitSummary: Encodable, Sendable {
    var trainRows: Int
    var validationRows: Int
    var seconds: Double
    var bestIteration: Int

    enum CodingKeys: String, CodingKey {
      case trainRows = "train_rows"
      case validationRows = "validation_rows"
      case seconds
      case bestIteration = "best_iteration"
    }
  }

  struct Model: Encodable, Sendable {
    var name: String
    var kind: String
    var horizon: Int
    var oofMetrics: [String: Double]
    var oofRows: Int
    var folds: [FoldRun]
    var finalFit: FinalFitSummary?

    enum CodingKeys: String, CodingKey {
      case name, kind, horizon
      case oofMetrics = "oof_metrics"
      case oofRows = "oof_rows"
      case folds
      case finalFit = "final_fit"
    }
  }

  struct Correlations: Encodable, Sendable {
    var horizon: Int
    var matrix: CorrelationMatrix
  }

  struct CalibrationSummary: Encodable, Sendable {
    var method: String
    var crossValidatedLogLoss: [String: Double]

    enum CodingKeys: String, CodingKey {
      case method
      case crossValidatedLogLoss = "cross_validated_log_loss"
    }
  }

  struct Window: Encodable, Sendable {
    var start: Int64
    var end: Int64
    var trainRows: Int
    var validationRows: Int

    enum CodingKeys: String, CodingKey {
      case start, end
      case trainRows = "train_rows"
      case validationRows = "validation_rows"
    }
  }

  var models: [Model]
  var correlations: [Correlations]
  var calibration: CalibrationSummary
  var finalWindow: Window

  enum CodingKeys: String, CodingKey {
    case models, correlations, calibration
    case finalWindow = "final_window"
  }
}

extension FinalModel {
  /// The bundle's name for the model's kind.
  var modelKind: ModelKind {
    switch self.model {
    case .logisticRegression: .logisticRegression
    case .xgboost: .xgboost
    case .mlp: .mlp
    case .lstm: .lstm
    }
  }
}
