internal import Foundation
internal import VaneCore
public import VaneFeatures
public import VaneModels

/// A fitted model of one of Vane's kinds.
public enum FittedModel: Sendable {
  case logisticRegression(LogisticRegression)
  case xgboost(XGBoostModel)
  case mlp(MLP)
  case lstm(LSTM)
}

/// A base model refitted on the final window: the model a bundle serves.
public struct FinalModel: Sendable {
  public var name: String
  /// ModelSpec.Kind.name: "logistic_regression", "xgboost", "mlp", "lstm".
  public var kind: String
  /// The horizons it predicts: one, or every head of an LSTM.
  public var horizons: [Int]
  public var model: FittedModel
  public var trainRows: Int
  public var validationRows: Int
  public var seconds: Double
  /// Kept boosting rounds (XGBoost), 0 otherwise.
  public var bestIteration: Int
}

/// The stacking meta-learner of one horizon, fitted on every OOF row: standardised meta
/// features (the bases' logits in `bases` order, then `volatilityColumn`'s raw value) into a
/// logistic regression.
public struct FinalStack: Sendable {
  public var horizon: Int
  public var bases: [String]
  public var volatilityColumn: String?
  public var scaler: FeatureScaler
  public var model: LogisticRegression
  public var trainRows: Int
}

/// What the final fit produced: the feature scaler of the final window, the base models and
/// the stacks.
public struct FinalFit: Sendable {
  public var scaler: FeatureScaler?
  public var window: WalkForwardPlan.Fold
  public var models: [FinalModel]
  public var stacks: [FinalStack]
}

extension WalkForwardRun {
  /// Refits every model of the spec on the final window (``WalkForwardPlan/finalWindow(openTimes:labelEnds:barMs:)``,
  /// purged by the longest horizon), one scaler for all, and each stack's meta-learner on all
  /// of its horizon's OOF rows.
  /// - Parameter runs: the walk-forward results (the stacks learn from their OOF predictions).
  /// - Throws: what the models throw; CANCELLED when the control's flag is set.
  public static func fitFinal(
    _ spec: RunSpec,
    data: TrainingData,
    runs: [ModelRun],
    control: RunControl = RunControl(),
    progress: (RunEvent) -> Bool = { _ in true }
  ) throws -> FinalFit {
    let longest = Self.longestHorizon(data)
    let window = try spec.plan.finalWindow(
      openTimes: data.openTimes,
      labelEnds: data.labelEnds[longest],
      barMs: data.barMs
    )
    let scaler = Self.scaler(spec, data: data, rows: window.trainRows)
    var models: [FinalModel] = []
    func announce(_ model: String, _ horizon: Int) throws {
      try control.check("before the final fit of \(model)")
      guard progress(.finalFit(model: model, horizon: horizon)) else {
        throw VaneError(.cancelled, "cancelled before the final fit of \(model)")
      }
    }
    for model in spec.models {
      if case .lstm(let length, _, _, _, _) = model.kind {
        try announce(model.name, data.horizons[longest])
        let started = Date()
        let windows = data.windows(length: length)
        let train = window.trainRows.filter { windows[$0] != nil },
          valid = window.validationRows.filter { windows[$0] != nil }
        guard !train.isEmpty else {
          throw VaneError(
            .failedPrecondition,
            "\(model.name): no complete \(length)-bar window in the final training window"
          )
        }
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
        models.append(
          FinalModel(
            name: model.name,
            kind: model.kind.name,
            horizons: data.horizons,
            model: .lstm(fitted),
            trainRows: train.count,
            validationRows: valid.count,
            seconds: Date().timeIntervalSince(started),
            bestIteration: 0
          )
        )
        continue
      }
      for (h, horizon) in data.horizons.enumerated() {
        try announce(model.name, horizon)
        let started = Date()
        let labels = data.labels[h]
        let train = window.trainRows.filter { labels[$0] >= 0 },
          valid = window.validationRows.filter { labels[$0] >= 0 }
        guard !train.isEmpty else {
          throw VaneError(
            .failedPrecondition,
            "\(model.name) at \(horizon) bars: no labelled rows in the final training window"
          )
        }
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
        models.append(
          FinalModel(
            name: model.name,
            kind: model.kind.name,
            horizons: [horizon],
            model: fitted,
            trainRows: train.count,
            validationRows: valid.count,
            seconds: Date().timeIntervalSince(started),
            bestIteration: bestIteration
          )
        )
      }
    }
    var stacks: [FinalStack] = []
    if let stacking = spec.stacking {
      let volatility = data.columns.firstIndex(of: RunSpec.Stacking.volatilityColumn)
      for (h, horizon) in data.horizons.enumerated() {
        try announce("stack", horizon)
        let bases = runs.filter { $0.horizon == horizon && stacking.stacks($0) }
        let labels = data.labels[h]
        let rows = (0 ..< data.rowCount).compactMap { row in
          labels[row] >= 0
            ? Self.metaFeatures(bases, row: row, data: data, volatility: volatility).map {
              (row, $0)
            } : nil
        }
        guard !rows.isEmpty else {
          throw VaneError(
            .failedPrecondition,
            "stack at \(horizon) bars: no row has every base model's OOF prediction"
          )
        }
        let meta = try Self.fitMeta(
          features: rows.map(\.1),
          labels: rows.map { labels[$0.0] },
          classCount: data.classes.count,
          l2: stacking.l2
        )
        stacks.append(
          FinalStack(
            horizon: horizon,
            bases: bases.map(\.name),
            volatilityColumn: volatility.map { data.columns[$0] },
            scaler: meta.scaler,
            model: meta.model,
            trainRows: rows.count
          )
        )
      }
    }
    return FinalFit(scaler: scaler, window: window, models: models, stacks: stacks)
  }
}
