internal import Foundation
internal import VaneCore
public import VaneFeatures
public import VaneModels
internal import VaneQuality

/// One base model of a training spec.
public struct ModelSpec: Sendable {
  public enum Kind: Sendable {
    case logisticRegression(LogisticRegression.Parameters)
    case xgboost(XGBoostModel.Parameters)
    case mlp(units: [Int], activation: MLP.Activation, dropout: Double, training: MLP.Training)
    /// Binary tasks only: one sigmoid head per horizon over windows of `sequenceLength` bars.
    case lstm(sequenceLength: Int, hiddenSize: Int, layers: Int, dropout: Double, training: LSTM.Training)

    public var name: String {
      switch self {
      case .logisticRegression: "logistic_regression"
      case .xgboost: "xgboost"
      case .mlp: "mlp"
      case .lstm: "lstm"
      }
    }
  }

  public var name: String
  public var kind: Kind

  public init(name: String, kind: Kind) {
    self.name = name
    self.kind = kind
  }
}

/// What a walk-forward run trains.
public struct RunSpec: Sendable {
  public var models: [ModelSpec]
  public var plan: WalkForwardPlan
  /// nil: no scaling.
  public var scaler: FeatureScaler.Method?
  /// Weight rows inversely to their class's frequency in each training window.
  public var balancedClassWeights: Bool
  /// Stacking: a logistic-regression meta-learner on the base models' OOF logits (and the
  /// `hvol_20` column when present), fitted walk-forward; nil: none.
  public var stacking: Stacking?

  public struct Stacking: Sendable {
    /// Folds of OOF predictions before the first meta fit.
    public var minimumFolds: Int
    public var l2: Double

    public init(minimumFolds: Int = 2, l2: Double = 1) {
      self.minimumFolds = minimumFolds
      self.l2 = l2
    }
  }

  public init(models: [ModelSpec], plan: WalkForwardPlan, scaler: FeatureScaler.Method? = .standard, balancedClassWeights: Bool = false, stacking: Stacking? = nil) {
    self.models = models
    self.plan = plan
    self.scaler = scaler
    self.balancedClassWeights = balancedClassWeights
    self.stacking = stacking
  }
}

/// What happened on one fold.
public struct FoldRun: Sendable {
  public var number: Int
  public var trainRange: Range<Int64>
  public var testRange: Range<Int64>
  public var trainRows: Int
  public var testRows: Int
  /// Gatekeeper metric names, on the fold's labelled test rows.
  public var metrics: [String: Double]
  public var seconds: Double
  /// Kept boosting rounds (XGBoost), 0 otherwise.
  public var bestIteration: Int
}

/// One model's walk-forward result at one horizon.
public struct ModelRun: Sendable {
  public var name: String
  public var kind: String
  public var horizon: Int
  /// Out-of-fold probabilities, `rowCount × classCount`; NaN for rows no fold tested.
  public var outOfFold: [Double]
  public var folds: [FoldRun]
  /// Metrics over all OOF rows with a label.
  public var metrics: [String: Double]
  public var outOfFoldRows: Int
}

/// Progress of a run, for a job's events; the callback returns false to cancel.
public enum RunEvent: Sendable {
  case fold(model: String, horizon: Int, fold: Int, of: Int)
  case metric(name: String, value: Double, model: String, horizon: Int, fold: Int)
}

/// Walk-forward training of every model of a spec at every horizon, then stacking.
public enum WalkForwardRun {
  /// Runs the spec over the data.
  /// - Throws: what fold cutting and the models throw (INVALID_ARGUMENT, FAILED_PRECONDITION),
  ///   CANCELLED when `progress` returns false.
  public static func run(_ spec: RunSpec, data: TrainingData, progress: (RunEvent) -> Bool = { _ in true }) throws -> [ModelRun] {
    guard !spec.models.isEmpty else { throw VaneError.invalidArgument(field: "models", "need at least one model") }
    var runs: [ModelRun] = []
    for model in spec.models {
      if case .lstm = model.kind {
        guard data.classes.count == 2 else {
          throw VaneError.invalidArgument(field: "models[\(model.name)]", "the LSTM's heads are binary; use binary labels")
        }
        runs += try Self.lstm(model, spec: spec, data: data, progress: progress)
      } else {
        for h in data.horizons.indices {
          runs.append(try Self.base(model, horizonIndex: h, spec: spec, data: data, progress: progress))
        }
      }
    }
    if let stacking = spec.stacking {
      for (h, horizon) in data.horizons.enumerated() {
        let bases = runs.filter { $0.horizon == horizon }
        runs.append(try Self.stack(bases, horizonIndex: h, stacking: stacking, spec: spec, data: data, progress: progress))
      }
    }
    return runs
  }

  static func folds(_ spec: RunSpec, data: TrainingData, horizonIndex h: Int) throws -> [WalkForwardPlan.Fold] {
    try spec.plan.folds(openTimes: data.openTimes, labelEnds: data.labelEnds[h], barMs: data.barMs)
  }

  /// The scaler fitted on `rows` (nil when the spec does not scale).
  static func scaler(_ spec: RunSpec, data: TrainingData, rows: [Int]) -> FeatureScaler? {
    spec.scaler.map { FeatureScaler.fit(method: $0, columns: data.columns, scaled: data.scaled, values: data.rows(rows), rows: rows.count) }
  }

  /// Scaled features of `rows`; NaN becomes 0 (the scaled mean) where the model needs finite input.
  static func matrix(_ data: TrainingData, rows: [Int], scaler: FeatureScaler?, finite: Bool) -> [Double] {
    var values = data.rows(rows)
    if let scaler { values = scaler.transform(batch: values) }
    if finite { for i in values.indices where !values[i].isFinite { values[i] = 0 } }
    return values
  }

  static func classWeights(_ labels: [Int], classCount: Int, balanced: Bool) -> [Double]? {
    guard balanced else { return nil }
    var counts = [Double](repeating: 0, count: classCount)
    for label in labels { counts[label] += 1 }
    return counts.map { $0 > 0 ? Double(labels.count) / (Double(classCount) * $0) : 0 }
  }

  static func measure(_ probabilities: [Double], rows: [Int], labels: [Int], classes: [String]) -> [String: Double] {
    let labelled = rows.indices.filter { labels[rows[$0]] >= 0 && probabilities[$0 * classes.count].isFinite }
    guard !labelled.isEmpty else { return [:] }
    let k = classes.count
    let values = labelled.flatMap { probabilities[($0 * k)..<($0 * k + k)] }
    guard let predictions = try? Predictions(probabilities: values, classCount: k, labels: labelled.map { labels[rows[$0]] }) else { return [:] }
    return Measurement(predictions, classes: classes).values
  }

  static func base(_ model: ModelSpec, horizonIndex h: Int, spec: RunSpec, data: TrainingData, progress: (RunEvent) -> Bool) throws -> ModelRun {
    let k = data.classes.count, width = data.columns.count
    let labels = data.labels[h], horizon = data.horizons[h]
    let folds = try Self.folds(spec, data: data, horizonIndex: h)
    var outOfFold = [Double](repeating: .nan, count: data.rowCount * k)
    var records: [FoldRun] = []
    for fold in folds {
      guard progress(.fold(model: model.name, horizon: horizon, fold: fold.number, of: folds.count)) else {
        throw VaneError(.cancelled, "cancelled before \(model.name) fold \(fold.number)")
      }
      let started = Date()
      let train = fold.trainRows.filter { labels[$0] >= 0 }, valid = fold.validationRows.filter { labels[$0] >= 0 }
      guard !train.isEmpty else { continue }
      let scaler = Self.scaler(spec, data: data, rows: train)
      let weights = Self.classWeights(train.map { labels[$0] }, classCount: k, balanced: spec.balancedClassWeights)
      let test = fold.testRows
      var probabilities: [Double]
      var bestIteration = 0
      switch model.kind {
      case .logisticRegression(let parameters):
        let fitted = try LogisticRegression.fit(
          features: Self.matrix(data, rows: train, scaler: scaler, finite: true), count: train.count, featureCount: width,
          labels: train.map { labels[$0] }, classCount: k, sampleWeights: weights.map { w in train.map { w[labels[$0]] } }, parameters: parameters)
        probabilities = fitted.probabilities(Self.matrix(data, rows: test, scaler: scaler, finite: true), count: test.count)
      case .xgboost(let parameters):
        let fitted = try XGBoostModel.fit(
          features: Self.matrix(data, rows: train, scaler: scaler, finite: false), count: train.count, featureCount: width,
          labels: train.map { labels[$0] }, classCount: k, weights: weights.map { w in train.map { w[labels[$0]] } },
          validation: valid.isEmpty ? nil : (Self.matrix(data, rows: valid, scaler: scaler, finite: false), valid.count, valid.map { labels[$0] }),
          parameters: parameters)
        bestIteration = fitted.rounds
        probabilities = try fitted.probabilities(Self.matrix(data, rows: test, scaler: scaler, finite: false), count: test.count)
      case .mlp(let units, let activation, let dropout, let training):
        let fitted = try MLP.train(
          features: Self.matrix(data, rows: train, scaler: scaler, finite: true), count: train.count, featureCount: width,
          labels: train.map { labels[$0] }, classCount: k, classWeights: weights,
          validation: valid.isEmpty ? nil : (Self.matrix(data, rows: valid, scaler: scaler, finite: true), valid.count, valid.map { labels[$0] }),
          units: units, activation: activation, dropout: dropout, training: training)
        probabilities = fitted.probabilities(Self.matrix(data, rows: test, scaler: scaler, finite: true), count: test.count)
      case .lstm:
        preconditionFailure("LSTM runs over all horizons at once")
      }
      for (i, row) in test.enumerated() { for c in 0..<k { outOfFold[row * k + c] = probabilities[i * k + c] } }
      let metrics = Self.measure(probabilities, rows: test, labels: labels, classes: data.classes)
      if let auc = metrics["auc"] {
        guard progress(.metric(name: "auc", value: auc, model: model.name, horizon: horizon, fold: fold.number)) else {
          throw VaneError(.cancelled, "cancelled after \(model.name) fold \(fold.number)")
        }
      }
      records.append(FoldRun(
        number: fold.number, trainRange: fold.trainRange, testRange: fold.testRange, trainRows: train.count, testRows: test.count,
        metrics: metrics, seconds: Date().timeIntervalSince(started), bestIteration: bestIteration))
    }
    return Self.finish(name: model.name, kind: model.kind.name, horizon: horizon, outOfFold: outOfFold, folds: records, data: data, horizonIndex: h)
  }

  static func finish(name: String, kind: String, horizon: Int, outOfFold: [Double], folds: [FoldRun], data: TrainingData, horizonIndex h: Int) -> ModelRun {
    let k = data.classes.count
    let tested = (0..<data.rowCount).filter { outOfFold[$0 * k].isFinite }
    let values = tested.flatMap { outOfFold[($0 * k)..<($0 * k + k)] }
    return ModelRun(
      name: name, kind: kind, horizon: horizon, outOfFold: outOfFold, folds: folds,
      metrics: Self.measure(values, rows: tested, labels: data.labels[h], classes: data.classes),
      outOfFoldRows: tested.filter { data.labels[h][$0] >= 0 }.count)
  }

  static func lstm(_ model: ModelSpec, spec: RunSpec, data: TrainingData, progress: (RunEvent) -> Bool) throws -> [ModelRun] {
    guard case .lstm(let length, let hidden, let layers, let dropout, let training) = model.kind else { return [] }
    let windows = data.windows(length: length)
    let heads = data.horizons.count, width = data.columns.count
    // Folds by the longest horizon's label ends: purged for every head.
    let longest = data.horizons.indices.max { data.horizons[$0] < data.horizons[$1] }!
    let folds = try Self.folds(spec, data: data, horizonIndex: longest)
    var outOfFold = [[Double]](repeating: [Double](repeating: .nan, count: data.rowCount * 2), count: heads)
    var records = [[FoldRun]](repeating: [], count: heads)
    // Each row sits in `length` windows: scale every row once per fold, then gather.
    func sequences(_ rows: [Int], scaled: [Double]) -> [Double] {
      var out: [Double] = []
      out.reserveCapacity(rows.count * length * width)
      for r in rows { for w in windows[r]! { out += scaled[(w * width)..<((w + 1) * width)] } }
      return out
    }
    func targets(_ rows: [Int]) -> [Int] { rows.flatMap { r in (0..<heads).map { data.labels[$0][r] } } }
    for fold in folds {
      guard progress(.fold(model: model.name, horizon: data.horizons[longest], fold: fold.number, of: folds.count)) else {
        throw VaneError(.cancelled, "cancelled before \(model.name) fold \(fold.number)")
      }
      let started = Date()
      let train = fold.trainRows.filter { windows[$0] != nil }, valid = fold.validationRows.filter { windows[$0] != nil }
      let test = fold.testRows.filter { windows[$0] != nil }
      guard !train.isEmpty, !test.isEmpty else { continue }
      let scaler = Self.scaler(spec, data: data, rows: fold.trainRows)
      let scaled = Self.matrix(data, rows: Array(0..<data.rowCount), scaler: scaler, finite: true)
      let fitted = try LSTM.train(
        sequences: sequences(train, scaled: scaled), count: train.count, sequenceLength: length, featureCount: width, labels: targets(train),
        heads: heads, validation: valid.isEmpty ? nil : (sequences(valid, scaled: scaled), valid.count, targets(valid)), hiddenSize: hidden,
        layerCount: layers, dropout: dropout, training: training)
      let p = fitted.probabilities(sequences(test, scaled: scaled), count: test.count)
      for head in 0..<heads {
        var probabilities = [Double](repeating: 0, count: test.count * 2)
        for (i, row) in test.enumerated() {
          probabilities[2 * i] = 1 - p[i * heads + head]
          probabilities[2 * i + 1] = p[i * heads + head]
          outOfFold[head][row * 2] = probabilities[2 * i]
          outOfFold[head][row * 2 + 1] = probabilities[2 * i + 1]
        }
        records[head].append(FoldRun(
          number: fold.number, trainRange: fold.trainRange, testRange: fold.testRange, trainRows: train.count, testRows: test.count,
          metrics: Self.measure(probabilities, rows: test, labels: data.labels[head], classes: data.classes),
          seconds: Date().timeIntervalSince(started), bestIteration: 0))
      }
    }
    return (0..<heads).map { head in
      Self.finish(name: model.name, kind: model.kind.name, horizon: data.horizons[head], outOfFold: outOfFold[head], folds: records[head], data: data, horizonIndex: head)
    }
  }

  /// Meta features of a row: each base model's logit of its OOF probabilities (binary: log-odds
  /// of class 1; otherwise centred log-probabilities), clipped to ±15, and `hvol_20` when the
  /// data has it; nil when a base has no OOF value for the row.
  static func metaFeatures(_ bases: [ModelRun], row: Int, data: TrainingData, volatility: Int?) -> [Double]? {
    let k = data.classes.count
    var out: [Double] = []
    for base in bases {
      let p = (0..<k).map { min(max(base.outOfFold[row * k + $0], 1e-12), 1 - 1e-12) }
      guard p.allSatisfy(\.isFinite) else { return nil }
      if k == 2 {
        out.append(min(max(log(p[1] / p[0]), -15), 15))
      } else {
        let logs = p.map { log($0) }, mean = logs.reduce(0, +) / Double(k)
        out += logs.map { min(max($0 - mean, -15), 15) }
      }
    }
    if let volatility {
      let value = data.features[row * data.columns.count + volatility]
      guard value.isFinite else { return nil }
      out.append(value)
    }
    return out
  }

  /// The stack at one horizon: for each fold, a logistic regression fitted only on OOF rows that
  /// earlier folds tested and whose labels resolved before this fold's test start, scoring this
  /// fold's test rows.
  static func stack(_ bases: [ModelRun], horizonIndex h: Int, stacking: RunSpec.Stacking, spec: RunSpec, data: TrainingData, progress: (RunEvent) -> Bool) throws -> ModelRun {
    let k = data.classes.count, labels = data.labels[h], horizon = data.horizons[h]
    let folds = try Self.folds(spec, data: data, horizonIndex: h)
    let volatility = data.columns.firstIndex(of: "hvol_20")
    var outOfFold = [Double](repeating: .nan, count: data.rowCount * k)
    var records: [FoldRun] = []
    let features = (0..<data.rowCount).map { Self.metaFeatures(bases, row: $0, data: data, volatility: volatility) }
    let width = bases.count * (k == 2 ? 1 : k) + (volatility == nil ? 0 : 1)
    for (index, fold) in folds.enumerated() where index >= stacking.minimumFolds {
      guard progress(.fold(model: "stack", horizon: horizon, fold: fold.number, of: folds.count)) else {
        throw VaneError(.cancelled, "cancelled before stack fold \(fold.number)")
      }
      let started = Date()
      let earlier = folds[..<index].flatMap(\.testRows)
      let train = Array(Set(earlier)).sorted().filter {
        labels[$0] >= 0 && features[$0] != nil && data.labelEnds[h][$0] <= fold.testRange.lowerBound
      }
      let test = fold.testRows.filter { features[$0] != nil }
      guard !train.isEmpty, !test.isEmpty else { continue }
      // Standardise the meta features on the meta training rows.
      let raw = train.flatMap { features[$0]! }
      let scaler = FeatureScaler.fit(method: .standard, columns: (0..<width).map { "m\($0)" }, scaled: [Bool](repeating: true, count: width), values: raw, rows: train.count)
      let model = try LogisticRegression.fit(
        features: scaler.transform(batch: raw), count: train.count, featureCount: width, labels: train.map { labels[$0] }, classCount: k,
        parameters: .init(l2: stacking.l2))
      let probabilities = model.probabilities(scaler.transform(batch: test.flatMap { features[$0]! }), count: test.count)
      for (i, row) in test.enumerated() { for c in 0..<k { outOfFold[row * k + c] = probabilities[i * k + c] } }
      records.append(FoldRun(
        number: fold.number, trainRange: (data.openTimes[train[0]])..<fold.testRange.lowerBound, testRange: fold.testRange, trainRows: train.count,
        testRows: test.count, metrics: Self.measure(probabilities, rows: test, labels: labels, classes: data.classes),
        seconds: Date().timeIntervalSince(started), bestIteration: 0))
    }
    return Self.finish(name: "stack", kind: "stack", horizon: horizon, outOfFold: outOfFold, folds: records, data: data, horizonIndex: h)
  }
}
