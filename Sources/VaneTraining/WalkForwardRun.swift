internal import Foundation
public import VaneCore
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
    case lstm(
      sequenceLength: Int,
      hiddenSize: Int,
      layers: Int,
      dropout: Double,
      training: LSTM.Training
    )

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
  /// What rows with a missing feature value get: with ``MissingValues/impute`` every fold's
  /// scaler (an identity scaler when the spec scales nothing) stores and applies the training
  /// rows' column centers; otherwise NaN reaches the models (trees keep it, the others read the
  /// scaled mean, 0).
  public var missingValues: MissingValues

  public struct Stacking: Sendable {
    /// The column the meta-learner also reads: the regime its weighting of the bases may depend on.
    public static let volatilityColumn = "hvol_20"

    /// Folds of OOF predictions before the first meta fit.
    public var minimumFolds: Int
    public var l2: Double
    /// The base models stacked (nil: all).
    public var baseModels: [String]?

    public init(minimumFolds: Int = 2, l2: Double = 1, baseModels: [String]? = nil) {
      self.minimumFolds = minimumFolds
      self.l2 = l2
      self.baseModels = baseModels
    }

    /// Whether `run` is one of the stacked bases.
    func stacks(_ run: ModelRun) -> Bool {
      run.kind != "stack" && (self.baseModels?.contains(run.name) ?? true)
    }
  }

  public init(
    models: [ModelSpec],
    plan: WalkForwardPlan,
    scaler: FeatureScaler.Method? = .standard,
    balancedClassWeights: Bool = false,
    stacking: Stacking? = nil,
    missingValues: MissingValues = .exclude
  ) {
    self.models = models
    self.plan = plan
    self.scaler = scaler
    self.balancedClassWeights = balancedClassWeights
    self.stacking = stacking
    self.missingValues = missingValues
  }
}

/// What happened on one fold.
public struct FoldRun: Sendable, Codable, Equatable {
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
  /// A fold starts (or, `resumed`, was taken from a checkpoint).
  case fold(model: String, horizon: Int, fold: Int, of: Int, resumed: Bool)
  case metric(name: String, value: Double, model: String, horizon: Int, fold: Int)
  /// A model's final fit on the last window starts.
  case finalFit(model: String, horizon: Int)
}

/// What a finished fold produced: enough to skip it when a job resumes.
public struct FoldOutput: Sendable, Codable, Equatable {
  public var model: String
  /// The horizons it covers: one, or every head of an LSTM.
  public var horizons: [Int]
  public var fold: Int
  public var testRows: [Int]
  /// Per horizon, `testRows.count × classCount` probabilities.
  public var probabilities: [[Double]]
  /// Per horizon.
  public var records: [FoldRun]

  public init(
    model: String,
    horizons: [Int],
    fold: Int,
    testRows: [Int],
    probabilities: [[Double]],
    records: [FoldRun]
  ) {
    self.model = model
    self.horizons = horizons
    self.fold = fold
    self.testRows = testRows
    self.probabilities = probabilities
    self.records = records
  }
}

/// Where finished folds are kept, so that an interrupted job resumes after its last finished
/// fold instead of from the start.
public protocol FoldCheckpoints: Sendable {
  /// The stored output of a fold, if it finished before.
  func finished(model: String, horizons: [Int], fold: Int) throws -> FoldOutput?
  /// Stores a finished fold.
  func record(_ output: FoldOutput) throws
}

/// How a run is watched and steered: progress events (return false to cancel), a flag polled
/// inside training loops, and where finished folds are kept.
public struct RunControl: Sendable {
  public var cancellation: CancellationFlag?
  public var checkpoints: (any FoldCheckpoints)?

  public init(cancellation: CancellationFlag? = nil, checkpoints: (any FoldCheckpoints)? = nil) {
    self.cancellation = cancellation
    self.checkpoints = checkpoints
  }

  func check(_ what: @autoclosure () -> String) throws {
    if self.cancellation?.isCancelled == true { throw VaneError(.cancelled, "cancelled \(what())") }
  }

  /// The fold's output from a checkpoint, or computed (and then stored).
  func fold(
    model: String,
    horizons: [Int],
    fold: WalkForwardPlan.Fold,
    of count: Int,
    progress: (RunEvent) -> Bool,
    compute: () throws -> FoldOutput
  ) throws -> FoldOutput {
    let stored = try self.checkpoints?.finished(model: model, horizons: horizons, fold: fold.number)
    guard
      progress(
        .fold(
          model: model,
          horizon: horizons[0],
          fold: fold.number,
          of: count,
          resumed: stored != nil
        )
      )
    else {
      throw VaneError(.cancelled, "cancelled before \(model) fold \(fold.number)")
    }
    if let stored, stored.testRows == fold.testRows { return stored }
    try self.check("before \(model) fold \(fold.number)")
    let output = try compute()
    try self.checkpoints?.record(output)
    return output
  }
}

/// Walk-forward training of every model of a spec at every horizon, then stacking.
public enum WalkForwardRun {
  /// Runs the spec over the data.
  /// - Throws: what fold cutting and the models throw (INVALID_ARGUMENT, FAILED_PRECONDITION),
  ///   CANCELLED when `progress` returns false.
  public static func run(
    _ spec: RunSpec,
    data: TrainingData,
    control: RunControl = RunControl(),
    progress: (RunEvent) -> Bool = { _ in true }
  ) throws -> [ModelRun] {
    guard !spec.models.isEmpty else {
      throw VaneError.invalidArgument(field: "models", "need at least one model")
    }
    var runs: [ModelRun] = []
    for model in spec.models {
      if case .lstm = model.kind {
        guard data.classes.count == 2 else {
          throw VaneError.invalidArgument(
            field: "models[\(model.name)]",
            "the LSTM's heads are binary; use binary labels"
          )
        }
        runs += try Self.lstm(model, spec: spec, data: data, control: control, progress: progress)
      } else {
        for h in data.horizons.indices {
          runs.append(
            try Self.base(
              model,
              horizonIndex: h,
              spec: spec,
              data: data,
              control: control,
              progress: progress
            )
          )
        }
      }
    }
    if let stacking = spec.stacking {
      for (h, horizon) in data.horizons.enumerated() {
        let bases = runs.filter { $0.horizon == horizon && stacking.stacks($0) }
        runs.append(
          try Self.stack(
            bases,
            horizonIndex: h,
            stacking: stacking,
            spec: spec,
            data: data,
            control: control,
            progress: progress
          )
        )
      }
    }
    return runs
  }

  static func folds(
    _ spec: RunSpec,
    data: TrainingData,
    horizonIndex h: Int
  ) throws -> [WalkForwardPlan.Fold] {
    try spec.plan.folds(openTimes: data.openTimes, labelEnds: data.labelEnds[h], barMs: data.barMs)
  }

  /// The scaler fitted on `rows` (nil when the spec neither scales nor imputes).
  static func scaler(_ spec: RunSpec, data: TrainingData, rows: [Int]) -> FeatureScaler? {
    let impute = spec.missingValues == .impute
    return (spec.scaler ?? (impute ? .identity : nil)).map {
      FeatureScaler.fit(
        method: $0,
        columns: data.columns,
        scaled: data.scaled,
        values: data.rows(rows),
        rows: rows.count,
        impute: impute
      )
    }
  }

  /// Scaled features of `rows`; NaN becomes 0 (the scaled mean) where the model needs finite input.
  static func matrix(
    _ data: TrainingData,
    rows: [Int],
    scaler: FeatureScaler?,
    finite: Bool
  ) -> [Double] {
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

  static func measure(
    _ probabilities: [Double],
    rows: [Int],
    labels: [Int],
    classes: [String]
  ) -> [String: Double] {
    let labelled = rows.indices.filter {
      labels[rows[$0]] >= 0 && probabilities[$0 * classes.count].isFinite
    }
    guard !labelled.isEmpty else { return [:] }
    let k = classes.count
    let values = labelled.flatMap { probabilities[($0 * k) ..< ($0 * k + k)] }
    guard
      let predictions = try? Predictions(
        probabilities: values,
        classCount: k,
        labels: labelled.map { labels[rows[$0]] }
      )
    else { return [:] }
    return Measurement(predictions, classes: classes).values
  }

  /// Fits a one-row model (not the LSTM) on `train`, early-stopping on `valid`.
  static func fitTabular(
    _ model: ModelSpec,
    data: TrainingData,
    labels: [Int],
    train: [Int],
    valid: [Int],
    scaler: FeatureScaler?,
    balanced: Bool,
    control: RunControl
  ) throws -> (FittedModel, bestIteration: Int) {
    let k = data.classes.count, width = data.columns.count
    let weights = Self.classWeights(train.map { labels[$0] }, classCount: k, balanced: balanced)
    switch model.kind {
    case .logisticRegression(let parameters):
      let fitted = try LogisticRegression.fit(
        features: Self.matrix(data, rows: train, scaler: scaler, finite: true),
        count: train.count,
        featureCount: width,
        labels: train.map { labels[$0] },
        classCount: k,
        sampleWeights: weights.map { w in train.map { w[labels[$0]] } },
        parameters: parameters
      )
      return (.logisticRegression(fitted), 0)
    case .xgboost(let parameters):
      let fitted = try XGBoostModel.fit(
        features: Self.matrix(data, rows: train, scaler: scaler, finite: false),
        count: train.count,
        featureCount: width,
        labels: train.map { labels[$0] },
        classCount: k,
        weights: weights.map { w in train.map { w[labels[$0]] } },
        validation: valid.isEmpty
          ? nil
          : (
            Self.matrix(data, rows: valid, scaler: scaler, finite: false), valid.count,
            valid.map { labels[$0] }
          ),
        parameters: parameters
      ) { _, _ in control.cancellation?.isCancelled != true }
      return (.xgboost(fitted), fitted.rounds)
    case .mlp(let units, let activation, let dropout, let training):
      let fitted = try MLP.train(
        features: Self.matrix(data, rows: train, scaler: scaler, finite: true),
        count: train.count,
        featureCount: width,
        labels: train.map { labels[$0] },
        classCount: k,
        classWeights: weights,
        validation: valid.isEmpty
          ? nil
          : (
            Self.matrix(data, rows: valid, scaler: scaler, finite: true), valid.count,
            valid.map { labels[$0] }
          ),
        units: units,
        activation: activation,
        dropout: dropout,
        training: training,
        cancellation: control.cancellation
      )
      return (.mlp(fitted), 0)
    case .lstm:
      preconditionFailure("the LSTM is fitted over all horizons at once")
    }
  }

  /// Class probabilities of a one-row model for `rows`, `rows.count × classCount`.
  static func predictTabular(
    _ fitted: FittedModel,
    data: TrainingData,
    rows: [Int],
    scaler: FeatureScaler?
  ) throws -> [Double] {
    switch fitted {
    case .logisticRegression(let model):
      model.probabilities(
        Self.matrix(data, rows: rows, scaler: scaler, finite: true),
        count: rows.count
      )
    case .xgboost(let model):
      try model.probabilities(
        Self.matrix(data, rows: rows, scaler: scaler, finite: false),
        count: rows.count
      )
    case .mlp(let model):
      model.probabilities(
        Self.matrix(data, rows: rows, scaler: scaler, finite: true),
        count: rows.count
      )
    case .lstm: preconditionFailure("the LSTM reads windows")
    }
  }

  static func base(
    _ model: ModelSpec,
    horizonIndex h: Int,
    spec: RunSpec,
    data: TrainingData,
    control: RunControl,
    progress: (RunEvent) -> Bool
  ) throws -> ModelRun {
    let k = data.classes.count
    let labels = data.labels[h], horizon = data.horizons[h]
    let folds = try Self.folds(spec, data: data, horizonIndex: h)
    var outOfFold = [Double](repeating: .nan, count: data.rowCount * k)
    var records: [FoldRun] = []
    for fold in folds {
      let train = fold.trainRows.filter { labels[$0] >= 0 },
        valid = fold.validationRows.filter { labels[$0] >= 0 }
      guard !train.isEmpty else { continue }
      let output = try control.fold(
        model: model.name,
        horizons: [horizon],
        fold: fold,
        of: folds.count,
        progress: progress
      ) {
        let started = Date()
        let scaler = Self.scaler(spec, data: data, rows: train)
        let (fitted, bestIteration) = try Self.fitTabular(
          model,
          data: data,
          labels: labels,
          train: train,
          valid: valid,
          scaler: scaler,
          balanced: spec.balancedClassWeights,
          control: control
        )
        let probabilities = try Self.predictTabular(
          fitted,
          data: data,
          rows: fold.testRows,
          scaler: scaler
        )
        let record = FoldRun(
          number: fold.number,
          trainRange: fold.trainRange,
          testRange: fold.testRange,
          trainRows: train.count,
          testRows: fold.testRows.count,
          metrics: Self.measure(
            probabilities,
            rows: fold.testRows,
            labels: labels,
            classes: data.classes
          ),
          seconds: Date().timeIntervalSince(started),
          bestIteration: bestIteration
        )
        return FoldOutput(
          model: model.name,
          horizons: [horizon],
          fold: fold.number,
          testRows: fold.testRows,
          probabilities: [probabilities],
          records: [record]
        )
      }
      for (i, row) in output.testRows.enumerated() {
        for c in 0 ..< k { outOfFold[row * k + c] = output.probabilities[0][i * k + c] }
      }
      if let auc = output.records[0].metrics["auc"] {
        guard
          progress(
            .metric(name: "auc", value: auc, model: model.name, horizon: horizon, fold: fold.number)
          )
        else {
          throw VaneError(.cancelled, "cancelled after \(model.name) fold \(fold.number)")
        }
      }
      records.append(output.records[0])
    }
    return Self.finish(
      name: model.name,
      kind: model.kind.name,
      horizon: horizon,
      outOfFold: outOfFold,
      folds: records,
      data: data,
      horizonIndex: h
    )
  }

  static func finish(
    name: String,
    kind: String,
    horizon: Int,
    outOfFold: [Double],
    folds: [FoldRun],
    data: TrainingData,
    horizonIndex h: Int
  ) -> ModelRun {
    let k = data.classes.count
    let tested = (0 ..< data.rowCount).filter { outOfFold[$0 * k].isFinite }
    let values = tested.flatMap { outOfFold[($0 * k) ..< ($0 * k + k)] }
    return ModelRun(
      name: name,
      kind: kind,
      horizon: horizon,
      outOfFold: outOfFold,
      folds: folds,
      metrics: Self.measure(values, rows: tested, labels: data.labels[h], classes: data.classes),
      outOfFoldRows: tested.filter { data.labels[h][$0] >= 0 }.count
    )
  }

  /// LSTM inputs: the windows ending at `rows`, gathered from rows scaled once (each row sits
  /// in `length` windows).
  static func sequences(_ rows: [Int], windows: [[Int]?], scaled: [Double], width: Int) -> [Double]
  {
    var out: [Double] = []
    out.reserveCapacity(rows.count * (windows.first { $0 != nil }??.count ?? 0) * width)
    for r in rows { for w in windows[r]! { out += scaled[(w * width) ..< ((w + 1) * width)] } }
    return out
  }

  /// The LSTM fitted on the windows ending at `train` (labels of every head), early-stopping on `valid`.
  static func fitLSTM(
    _ model: ModelSpec,
    data: TrainingData,
    windows: [[Int]?],
    train: [Int],
    valid: [Int],
    scaled: [Double],
    control: RunControl
  ) throws -> LSTM {
    guard case .lstm(let length, let hidden, let layers, let dropout, let training) = model.kind
    else { preconditionFailure("not an LSTM") }
    let heads = data.horizons.count, width = data.columns.count
    func targets(_ rows: [Int]) -> [Int] {
      rows.flatMap { r in (0 ..< heads).map { data.labels[$0][r] } }
    }
    return try LSTM.train(
      sequences: Self.sequences(train, windows: windows, scaled: scaled, width: width),
      count: train.count,
      sequenceLength: length,
      featureCount: width,
      labels: targets(train),
      heads: heads,
      validation: valid.isEmpty
        ? nil
        : (
          Self.sequences(valid, windows: windows, scaled: scaled, width: width), valid.count,
          targets(valid)
        ),
      hiddenSize: hidden,
      layerCount: layers,
      dropout: dropout,
      training: training,
      cancellation: control.cancellation
    )
  }

  static func lstm(
    _ model: ModelSpec,
    spec: RunSpec,
    data: TrainingData,
    control: RunControl,
    progress: (RunEvent) -> Bool
  ) throws -> [ModelRun] {
    guard case .lstm(let length, _, _, _, _) = model.kind else { return [] }
    let windows = data.windows(length: length)
    let heads = data.horizons.count, width = data.columns.count
    // Folds by the longest horizon's label ends: purged for every head.
    let longest = Self.longestHorizon(data)
    let folds = try Self.folds(spec, data: data, horizonIndex: longest)
    var outOfFold = [[Double]](
      repeating: [Double](repeating: .nan, count: data.rowCount * 2),
      count: heads
    )
    var records = [[FoldRun]](repeating: [], count: heads)
    for fold in folds {
      let train = fold.trainRows.filter { windows[$0] != nil },
        valid = fold.validationRows.filter { windows[$0] != nil }
      let test = fold.testRows.filter { windows[$0] != nil }
      guard !train.isEmpty, !test.isEmpty else { continue }
      let output = try control.fold(
        model: model.name,
        horizons: data.horizons,
        fold: fold,
        of: folds.count,
        progress: progress
      ) {
        let started = Date()
        let scaler = Self.scaler(spec, data: data, rows: fold.trainRows)
        let scaled = Self.matrix(
          data,
          rows: Array(0 ..< data.rowCount),
          scaler: scaler,
          finite: true
        )
        let fitted = try Self.fitLSTM(
          model,
          data: data,
          windows: windows,
          train: train,
          valid: valid,
          scaled: scaled,
          control: control
        )
        let p = fitted.probabilities(
          Self.sequences(test, windows: windows, scaled: scaled, width: width),
          count: test.count
        )
        let seconds = Date().timeIntervalSince(started)
        var probabilities: [[Double]] = [], headRecords: [FoldRun] = []
        for head in 0 ..< heads {
          var values = [Double](repeating: 0, count: 2 * test.count)
          for i in 0 ..< test.count {
            let up: Double = p[i * heads + head]
            values[2 * i] = 1 - up
            values[2 * i + 1] = up
          }
          probabilities.append(values)
          headRecords.append(
            FoldRun(
              number: fold.number,
              trainRange: fold.trainRange,
              testRange: fold.testRange,
              trainRows: train.count,
              testRows: test.count,
              metrics: Self.measure(
                values,
                rows: test,
                labels: data.labels[head],
                classes: data.classes
              ),
              seconds: seconds,
              bestIteration: 0
            )
          )
        }
        return FoldOutput(
          model: model.name,
          horizons: data.horizons,
          fold: fold.number,
          testRows: test,
          probabilities: probabilities,
          records: headRecords
        )
      }
      for head in 0 ..< heads {
        for (i, row) in output.testRows.enumerated() {
          outOfFold[head][row * 2] = output.probabilities[head][2 * i]
          outOfFold[head][row * 2 + 1] = output.probabilities[head][2 * i + 1]
        }
        records[head].append(output.records[head])
      }
    }
    return (0 ..< heads).map { head in
      Self.finish(
        name: model.name,
        kind: model.kind.name,
        horizon: data.horizons[head],
        outOfFold: outOfFold[head],
        folds: records[head],
        data: data,
        horizonIndex: head
      )
    }
  }

  static func longestHorizon(_ data: TrainingData) -> Int {
    data.horizons.indices.max { data.horizons[$0] < data.horizons[$1] }!
  }

  /// Meta features of one row (``StackFeatures/row(_:volatility:)``, the serving path's too).
  public static func metaFeatures(_ probabilities: [[Double]], volatility: Double?) -> [Double]? {
    StackFeatures.row(probabilities, volatility: volatility)
  }

  /// Meta features of a row from the bases' OOF probabilities.
  static func metaFeatures(
    _ bases: [ModelRun],
    row: Int,
    data: TrainingData,
    volatility: Int?
  ) -> [Double]? {
    let k = data.classes.count
    return Self.metaFeatures(
      bases.map { Array($0.outOfFold[(row * k) ..< (row * k + k)]) },
      volatility: volatility.map { data.features[row * data.columns.count + $0] }
    )
  }

  /// The stack at one horizon: for each fold, a logistic regression fitted only on OOF rows that
  /// earlier folds tested and whose labels resolved before this fold's test start, scoring this
  /// fold's test rows.
  static func stack(
    _ bases: [ModelRun],
    horizonIndex h: Int,
    stacking: RunSpec.Stacking,
    spec: RunSpec,
    data: TrainingData,
    control: RunControl,
    progress: (RunEvent) -> Bool
  ) throws -> ModelRun {
    let k = data.classes.count, labels = data.labels[h], horizon = data.horizons[h]
    let folds = try Self.folds(spec, data: data, horizonIndex: h)
    let volatility = data.columns.firstIndex(of: RunSpec.Stacking.volatilityColumn)
    var outOfFold = [Double](repeating: .nan, count: data.rowCount * k)
    var records: [FoldRun] = []
    let features = (0 ..< data.rowCount).map {
      Self.metaFeatures(bases, row: $0, data: data, volatility: volatility)
    }
    for (index, fold) in folds.enumerated() where index >= stacking.minimumFolds {
      try control.check("before stack fold \(fold.number)")
      guard
        progress(
          .fold(
            model: "stack",
            horizon: horizon,
            fold: fold.number,
            of: folds.count,
            resumed: false
          )
        )
      else {
        throw VaneError(.cancelled, "cancelled before stack fold \(fold.number)")
      }
      let started = Date()
      let earlier = folds[..<index].flatMap(\.testRows)
      let train = Array(Set(earlier)).sorted().filter {
        labels[$0] >= 0 && features[$0] != nil && data.labelEnds[h][$0] <= fold.testRange.lowerBound
      }
      let test = fold.testRows.filter { features[$0] != nil }
      guard !train.isEmpty, !test.isEmpty else { continue }
      let meta = try Self.fitMeta(
        features: train.map { features[$0]! },
        labels: train.map { labels[$0] },
        classCount: k,
        l2: stacking.l2
      )
      let probabilities = meta.model.probabilities(
        meta.scaler.transform(batch: test.flatMap { features[$0]! }),
        count: test.count
      )
      for (i, row) in test.enumerated() {
        for c in 0 ..< k { outOfFold[row * k + c] = probabilities[i * k + c] }
      }
      records.append(
        FoldRun(
          number: fold.number,
          trainRange: (data.openTimes[train[0]]) ..< fold.testRange.lowerBound,
          testRange: fold.testRange,
          trainRows: train.count,
          testRows: test.count,
          metrics: Self.measure(probabilities, rows: test, labels: labels, classes: data.classes),
          seconds: Date().timeIntervalSince(started),
          bestIteration: 0
        )
      )
    }
    return Self.finish(
      name: "stack",
      kind: "stack",
      horizon: horizon,
      outOfFold: outOfFold,
      folds: records,
      data: data,
      horizonIndex: h
    )
  }

  /// A meta-learner: the meta features standardised on its training rows, then a logistic regression.
  static func fitMeta(
    features: [[Double]],
    labels: [Int],
    classCount: Int,
    l2: Double
  ) throws -> (scaler: FeatureScaler, model: LogisticRegression) {
    let width = features[0].count
    let raw = features.flatMap { $0 }
    let scaler = FeatureScaler.fit(
      method: .standard,
      columns: (0 ..< width).map { "m\($0)" },
      scaled: [Bool](repeating: true, count: width),
      values: raw,
      rows: features.count
    )
    let model = try LogisticRegression.fit(
      features: scaler.transform(batch: raw),
      count: features.count,
      featureCount: width,
      labels: labels,
      classCount: classCount,
      parameters: .init(l2: l2)
    )
    return (scaler, model)
  }
}
