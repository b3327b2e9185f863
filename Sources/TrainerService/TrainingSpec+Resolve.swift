internal import Foundation
internal import VaneCore
internal import VaneModels
public import VaneProto
internal import VaneQuality
public import VaneTraining
internal import VaneFeatures
internal import VaneMath
internal import VaneRuntime

/// A training spec checked field by field, its defaults filled in, and what the libraries run.
struct ResolvedSpec: Sendable {
  /// The spec as run: every default written out (what Job.spec reports).
  var spec: Vane_V1_TrainingSpec
  var run: RunSpec
  /// "15m", "1h", "4h", "1d".
  var interval: String
  var horizons: [Int]
  var calibration: CalibrationMethod
  /// Numeric threads (BLAS and XGBoost).
  var threads: Int
}

extension Vane_V1_TrainingSpec {
  /// What the libraries run for this spec (models, walk-forward plan, stacking), as the trainer
  /// would run it: for benchmarks that time the same work without the service.
  /// - Throws: what ``resolved(defaultThreads:)`` throws.
  public func runSpec(defaultThreads: Int) throws -> RunSpec {
    try self.resolved(defaultThreads: defaultThreads).run
  }

  /// Why a spec asking for DEVICE_CUDA cannot train here (nil: it can): each model that has no
  /// CUDA backend in this build (XGBoost, the MLP and the LSTM have one; the networks in
  /// float32 only), and for the kinds asked for, what their backend lacks: a libxgboost built
  /// without CUDA or none, no visible GPU (`library`, `gpus`); a CUDA runtime, cuBLAS or NVRTC
  /// missing, no device (`cuda`: ``CUDATrainingDevice/problems(_:)``). Every reason is named,
  /// so one answer says all that is missing.
  static func cudaRefusal(
    models: [(name: String, kind: Vane_V1_ModelKind, float64: Bool)],
    library: Result<XGBoostLibraryInfo, VaneError>,
    gpus: [String],
    cuda: [String]
  ) -> String? {
    var reasons: [String] = []
    for (index, model) in models.enumerated() {
      switch model.kind {
      case .xgboost: continue
      case .mlp where !model.float64, .lstm where !model.float64: continue
      case .mlp, .lstm:
        reasons.append(
          "models[\(index)] \(MessageText.quote(model.name)) (\(model.kind)) trains on CUDA in float32 only (training.precision)"
        )
      default:
        reasons.append(
          "models[\(index)] \(MessageText.quote(model.name)) (\(model.kind)) has no CUDA backend in this build (XGBoost, the MLP and the LSTM train on CUDA)"
        )
      }
    }
    if models.contains(where: { $0.kind == .xgboost }) {
      reasons += XGBoostModel.cudaProblems(library: library, gpus: gpus)
    }
    if models.contains(where: { $0.kind == .mlp || $0.kind == .lstm }) {
      reasons += cuda.filter { !reasons.contains($0) }
    }
    guard !reasons.isEmpty else { return nil }
    return
      "spec.device: DEVICE_CUDA cannot train here: \(reasons.joined(separator: "; ")). Use DEVICE_CPU"
  }

  /// Checks the spec and resolves its defaults.
  /// - Throws: INVALID_ARGUMENT naming the field path (`spec.models[1].xgboost.max_depth`) and
  ///   the reason; FAILED_PRECONDITION for device CUDA where it cannot run, naming every reason
  ///   (``cudaRefusal(models:library:gpus:cuda:)``).
  func resolved(defaultThreads: Int) throws -> ResolvedSpec {
    var spec = self
    func bad(_ field: String, _ reason: String) -> VaneError {
      VaneError.invalidArgument(field: "spec.\(field)", reason)
    }
    if case .UNRECOGNIZED(let value) = spec.device {
      throw bad("device", "unknown device \(value)")
    }
    let cuda = spec.device == .cuda
    if cuda,
      let refusal = Self.cudaRefusal(
        models: spec.models.map {
          (
            $0.name, $0.kind,
            ($0.kind == .lstm ? $0.lstm.training.precision : $0.mlp.training.precision) == .float64
          )
        },
        library: XGBoostModel.library,
        gpus: CUDADevices.visible,
        cuda: CUDATrainingDevice.problems()
      )
    {
      throw VaneError(.failedPrecondition, refusal)
    }
    if !cuda { spec.device = .cpu }
    guard spec.name.count <= 64,
      spec.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
    else {
      throw bad(
        "name",
        "\(MessageText.quote(spec.name)) must be at most 64 ASCII letters, digits, '.', '_' or '-'"
      )
    }
    guard !spec.symbols.isEmpty else { throw bad("symbols", "name at least one symbol") }
    for (i, symbol) in spec.symbols.enumerated() {
      guard (2 ... 20).contains(symbol.count),
        symbol.allSatisfy({ ("A" ... "Z").contains($0) || ("0" ... "9").contains($0) })
      else {
        throw bad(
          "symbols[\(i)]",
          "\(MessageText.quote(symbol)) is not an exchange symbol (2 to 20 upper-case letters and digits, e.g. BTCUSDT)"
        )
      }
    }
    guard Set(spec.symbols).count == spec.symbols.count else {
      throw bad("symbols", "a symbol is listed twice")
    }
    guard let interval = Self.intervalName(spec.interval) else {
      throw bad("interval", "set INTERVAL_15M, INTERVAL_1H, INTERVAL_4H or INTERVAL_1D")
    }
    guard spec.hasLabels, spec.labels.kind == .binaryDirection || spec.labels.kind == .threeClass
    else {
      throw bad("labels.kind", "set LABEL_KIND_BINARY_DIRECTION or LABEL_KIND_THREE_CLASS")
    }
    let horizons = spec.labels.horizons.map { Int($0.bars) }
    guard !horizons.isEmpty else { throw bad("labels.horizons", "name at least one horizon") }
    if let i = horizons.firstIndex(where: { !(1 ... 10_000).contains($0) }) {
      throw bad("labels.horizons[\(i)].bars", "must be 1 to 10000")
    }
    guard Set(horizons).count == horizons.count else {
      throw bad("labels.horizons", "a horizon is listed twice")
    }
    let binary = spec.labels.kind == .binaryDirection
    if spec.hasDataRange {
      if spec.dataRange.hasStart {
        _ = try spec.dataRange.start.unixMilliseconds(field: "spec.data_range.start")
      }
      if spec.dataRange.hasEnd {
        _ = try spec.dataRange.end.unixMilliseconds(field: "spec.data_range.end")
      }
      if spec.dataRange.hasStart, spec.dataRange.hasEnd,
        try spec.dataRange.end.unixMilliseconds(field: "spec.data_range.end")
          <= spec.dataRange.start.unixMilliseconds(field: "spec.data_range.start")
      {
        throw bad("data_range", "end must be after start")
      }
    }
    let threads = spec.threads > 0 ? Int(min(spec.threads, 256)) : defaultThreads

    // Models.
    guard !spec.models.isEmpty else { throw bad("models", "name at least one model") }
    var names: Set<String> = []
    var models: [ModelSpec] = []
    for index in spec.models.indices {
      let path = "models[\(index)]"
      var model = spec.models[index]
      guard (1 ... 32).contains(model.name.count), model.name != "stack",
        model.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-".contains($0)) })
      else {
        throw bad(
          "\(path).name",
          "\(MessageText.quote(model.name)) must be 1 to 32 ASCII letters, digits, '_' or '-' (and not 'stack')"
        )
      }
      guard names.insert(model.name).inserted else {
        throw bad("\(path).name", "\(MessageText.quote(model.name)) is used twice")
      }
      let resolved = try Self.resolveModel(
        &model,
        path: path,
        seed: spec.seed,
        threads: threads,
        binary: binary,
        bad: bad
      )
      spec.models[index] = model
      var kind = resolved
      // XGBoost, the MLP and the LSTM train on CUDA (cudaRefusal refused every other kind).
      if cuda, case .mlp(let units, let activation, let dropout, var training) = kind {
        training.device = .cuda
        kind = .mlp(units: units, activation: activation, dropout: dropout, training: training)
      }
      if cuda,
        case .lstm(let sequenceLength, let hiddenSize, let layers, let dropout, var training) = kind
      {
        training.device = .cuda
        kind = .lstm(
          sequenceLength: sequenceLength,
          hiddenSize: hiddenSize,
          layers: layers,
          dropout: dropout,
          training: training
        )
      }
      if cuda, case .xgboost(var parameters) = kind {
        parameters.device = "cuda"
        kind = .xgboost(parameters)
      }
      models.append(ModelSpec(name: model.name, kind: kind))
    }

    // Walk-forward plan.
    guard spec.hasWalkForward else {
      throw bad("walk_forward", "is required (train_bars and test_bars at least)")
    }
    var plan = spec.walkForward
    if plan.window == .unspecified { plan.window = .expanding }
    if case .UNRECOGNIZED = plan.window { throw bad("walk_forward.window", "unknown window kind") }
    if plan.retrainEveryBars == 0 { plan.retrainEveryBars = plan.testBars }
    if !plan.hasPurgeBars { plan.purgeBars = UInt32(horizons.max()!) }
    guard plan.purgeBars >= horizons.max()! else {
      throw bad(
        "walk_forward.purge_bars",
        "\(plan.purgeBars) is shorter than the longest horizon (\(horizons.max()!)): training labels would reach into the test fold"
      )
    }
    spec.walkForward = plan
    let walkForward: WalkForwardPlan
    do {
      walkForward = try WalkForwardPlan(
        window: plan.window == .rolling ? .rolling : .expanding,
        trainBars: Int(plan.trainBars),
        testBars: Int(plan.testBars),
        retrainEveryBars: Int(plan.retrainEveryBars),
        purgeBars: Int(plan.purgeBars),
        embargoBars: Int(plan.embargoBars),
        validationBars: Int(plan.validationBars),
        maxFolds: Int(plan.maxFolds)
      )
    } catch let error as VaneError {
      throw VaneError(
        error.code,
        error.message.hasPrefix("walk_forward") ? "spec.\(error.message)" : error.message,
        cause: error
      )
    }

    // Stacking.
    var stacking: RunSpec.Stacking?
    if spec.stacking.enabled {
      var options = spec.stacking
      if options.hasMetaModel {
        guard
          options.metaModel.kind == .logisticRegression || options.metaModel.kind == .unspecified
        else {
          throw bad(
            "stacking.meta_model.kind",
            "only MODEL_KIND_LOGISTIC_REGRESSION is built as a meta-learner"
          )
        }
      }
      var meta = options.metaModel
      meta.kind = .logisticRegression
      if meta.name.isEmpty { meta.name = "stack" }
      let metaKind = try Self.resolveModel(
        &meta,
        path: "stacking.meta_model",
        seed: spec.seed,
        threads: threads,
        binary: binary,
        bad: bad
      )
      options.metaModel = meta
      for (i, name) in options.baseModels.enumerated() where !names.contains(name) {
        throw bad(
          "stacking.base_models[\(i)]",
          "\(MessageText.quote(name)) is not a model of the spec"
        )
      }
      guard !options.passthroughFeatures else {
        throw bad(
          "stacking.passthrough_features",
          "is not built: the meta-learner reads the base models' logits and hvol_20"
        )
      }
      if options.minOofFolds == 0 { options.minOofFolds = 2 }
      if options.baseModels.isEmpty { options.baseModels = spec.models.map(\.name) }
      guard case .logisticRegression(let parameters) = metaKind else { preconditionFailure() }
      stacking = RunSpec.Stacking(
        minimumFolds: Int(options.minOofFolds),
        l2: parameters.l2,
        baseModels: options.baseModels
      )
      spec.stacking = options
    }

    // Pre- and post-processing.
    let scaler: FeatureScaler.Method?
    switch spec.scaler {
    case .unspecified, .standard:
      scaler = .standard
      spec.scaler = .standard
    case .robust: scaler = .robust
    case .none: scaler = nil
    case .UNRECOGNIZED(let value): throw bad("scaler", "unknown scaler \(value)")
    }
    switch spec.classWeighting {
    case .unspecified: spec.classWeighting = .none
    case .none, .balanced: break
    case .UNRECOGNIZED(let value): throw bad("class_weighting", "unknown class weighting \(value)")
    }
    let calibration: CalibrationMethod
    switch spec.calibration {
    case .unspecified, .auto:
      calibration = .auto
      spec.calibration = .auto
    case .none: calibration = .none
    case .temperature: calibration = .temperature
    case .platt:
      guard binary else {
        throw bad("calibration", "Platt scaling is for binary labels; use VECTOR or TEMPERATURE")
      }
      calibration = .platt
    case .isotonic: calibration = .isotonic
    case .vector:
      guard !binary else {
        throw bad(
          "calibration",
          "vector scaling is for three-class labels; use PLATT or TEMPERATURE"
        )
      }
      calibration = .vector
    case .UNRECOGNIZED(let value): throw bad("calibration", "unknown method \(value)")
    }
    if spec.bless, spec.skipEvaluation {
      throw bad("bless", "needs evaluation: unset skip_evaluation")
    }
    for (key, value) in spec.tags where key.isEmpty || key.count > 64 || value.count > 256 {
      throw bad("tags", "keys must be 1 to 64 characters and values at most 256")
    }
    let missing = try spec.missing.decoded(field: "spec.missing") ?? .exclude
    spec.missing = .init(missing)
    if missing == .native,
      !models.contains(where: { if case .xgboost = $0.kind { true } else { false } })
    {
      throw bad(
        "missing",
        "NATIVE leaves missing values to models that handle them (xgboost), and the spec has none: use MISSING_VALUES_IMPUTE"
      )
    }
    let run = RunSpec(
      models: models,
      plan: walkForward,
      scaler: scaler,
      balancedClassWeights: spec.classWeighting == .balanced,
      stacking: stacking,
      missingValues: missing
    )
    return ResolvedSpec(
      spec: spec,
      run: run,
      interval: interval,
      horizons: horizons,
      calibration: calibration,
      threads: threads
    )
  }

  /// "15m", "1h", "4h", "1d"; nil when unset or unknown (through the one interval table).
  static func intervalName(_ interval: Vane_V1_Interval) -> String? {
    (try? CandleInterval(interval, field: "interval"))?.rawValue
  }

  /// XGBoost parameters the typed params do not cover, passed through by their native names.
  static let xgboostExtras: Set<String> = [
    "max_delta_step", "colsample_bylevel", "colsample_bynode", "scale_pos_weight", "grow_policy",
    "max_leaves", "sampling_method",
    "num_parallel_tree", "monotone_constraints", "interaction_constraints", "max_cat_to_onehot",
    "refresh_leaf",
  ]

  /// Fills in one model's defaults and builds its library kind.
  static func resolveModel(
    _ model: inout Vane_V1_ModelSpec,
    path: String,
    seed: UInt64,
    threads: Int,
    binary: Bool,
    bad: (String, String) -> VaneError
  ) throws -> ModelSpec.Kind {
    func check(_ ok: Bool, _ field: String, _ reason: String) throws {
      if !ok { throw bad("\(path).\(field)", reason) }
    }
    switch (model.kind, model.params) {
    case (.unspecified, _): throw bad("\(path).kind", "set the model kind")
    case (.xgboost, nil), (.xgboost, .xgboost?): break
    case (.mlp, nil), (.mlp, .mlp?): break
    case (.lstm, nil), (.lstm, .lstm?): break
    case (.logisticRegression, nil), (.logisticRegression, .logisticRegression?): break
    case (.UNRECOGNIZED(let value), _): throw bad("\(path).kind", "unknown model kind \(value)")
    default: throw bad("\(path).params", "the params set do not match kind \(model.kind)")
    }
    if model.kind != .xgboost, let key = model.hyperparameters.keys.sorted().first {
      throw bad(
        "\(path).hyperparameters",
        "\(MessageText.quote(key)): only XGBoost takes extra native hyperparameters"
      )
    }
    switch model.kind {
    case .xgboost:
      var p = model.xgboost
      if !p.hasNumBoostRounds { p.numBoostRounds = 500 }
      if !p.hasMaxDepth { p.maxDepth = 6 }
      if !p.hasLearningRate { p.learningRate = 0.05 }
      if !p.hasSubsample { p.subsample = 0.8 }
      if !p.hasColsampleBytree { p.colsampleBytree = 0.8 }
      if !p.hasMinChildWeight { p.minChildWeight = 1 }
      if !p.hasRegLambda { p.regLambda = 1 }
      if !p.hasRegAlpha { p.regAlpha = 0 }
      if !p.hasGamma { p.gamma = 0 }
      if !p.hasMaxBin { p.maxBin = 256 }
      if !p.hasEarlyStoppingRounds { p.earlyStoppingRounds = 50 }
      if !p.hasTreeMethod { p.treeMethod = "hist" }
      try check(
        (1 ... 100_000).contains(p.numBoostRounds),
        "xgboost.num_boost_rounds",
        "must be 1 to 100000"
      )
      try check((1 ... 32).contains(p.maxDepth), "xgboost.max_depth", "must be 1 to 32")
      try check(
        p.learningRate > 0 && p.learningRate <= 1,
        "xgboost.learning_rate",
        "must be in (0, 1]"
      )
      try check(p.subsample > 0 && p.subsample <= 1, "xgboost.subsample", "must be in (0, 1]")
      try check(
        p.colsampleBytree > 0 && p.colsampleBytree <= 1,
        "xgboost.colsample_bytree",
        "must be in (0, 1]"
      )
      try check(
        p.minChildWeight >= 0 && p.minChildWeight.isFinite,
        "xgboost.min_child_weight",
        "must be at least 0"
      )
      try check(
        p.regLambda >= 0 && p.regLambda.isFinite,
        "xgboost.reg_lambda",
        "must be at least 0"
      )
      try check(p.regAlpha >= 0 && p.regAlpha.isFinite, "xgboost.reg_alpha", "must be at least 0")
      try check(p.gamma >= 0 && p.gamma.isFinite, "xgboost.gamma", "must be at least 0")
      try check((2 ... 65_536).contains(p.maxBin), "xgboost.max_bin", "must be 2 to 65536")
      try check(
        ["hist", "approx", "exact"].contains(p.treeMethod),
        "xgboost.tree_method",
        "\(MessageText.quote(p.treeMethod)) is not hist, approx or exact (gpu_hist needs a CUDA build)"
      )
      for key in model.hyperparameters.keys.sorted() where !Self.xgboostExtras.contains(key) {
        throw bad(
          "\(path).hyperparameters",
          "\(MessageText.quote(key)) is not a native XGBoost parameter this trainer passes through (typed params set the others): \(Self.xgboostExtras.sorted().joined(separator: ", "))"
        )
      }
      model.params = .xgboost(p)
      var parameters = XGBoostModel.Parameters()
      parameters.rounds = Int(p.numBoostRounds)
      parameters.maxDepth = Int(p.maxDepth)
      parameters.learningRate = p.learningRate
      parameters.subsample = p.subsample
      parameters.columnSampleByTree = p.colsampleBytree
      parameters.minChildWeight = p.minChildWeight
      parameters.lambda = p.regLambda
      parameters.alpha = p.regAlpha
      parameters.gamma = p.gamma
      parameters.maxBin = Int(p.maxBin)
      parameters.earlyStoppingRounds = Int(p.earlyStoppingRounds)
      parameters.treeMethod = p.treeMethod
      parameters.threads = threads
      parameters.seed = seed
      parameters.extra = model.hyperparameters
      return .xgboost(parameters)
    case .mlp:
      var p = model.mlp
      if p.hiddenUnits.isEmpty { p.hiddenUnits = [64, 32] }
      if p.activation == .unspecified { p.activation = .relu }
      if !p.hasDropout { p.dropout = 0.1 }
      try check(
        p.hiddenUnits.count <= 8 && p.hiddenUnits.allSatisfy { (1 ... 4096).contains($0) },
        "mlp.hidden_units",
        "1 to 8 layers of 1 to 4096 units"
      )
      try check((0 ..< 1).contains(p.dropout), "mlp.dropout", "must be in [0, 1)")
      let activation: MLP.Activation
      switch p.activation {
      case .gelu: activation = .gelu
      case .tanh: activation = .tanh
      case .relu, .unspecified: activation = .relu
      case .UNRECOGNIZED(let value):
        throw bad("\(path).mlp.activation", "unknown activation \(value)")
      }
      let training = try Self.resolveTraining(
        &p.training,
        path: "\(path).mlp.training",
        seed: seed,
        precisions: [.float32, .float64],
        bad: bad
      )
      model.params = .mlp(p)
      return .mlp(
        units: p.hiddenUnits.map(Int.init),
        activation: activation,
        dropout: p.dropout,
        training: training
      )
    case .lstm:
      guard binary else {
        throw bad(
          "\(path).kind",
          "the LSTM's heads are binary (one sigmoid per horizon): use LABEL_KIND_BINARY_DIRECTION"
        )
      }
      var p = model.lstm
      if !p.hasSequenceLength { p.sequenceLength = 32 }
      if !p.hasHiddenSize { p.hiddenSize = 64 }
      if !p.hasNumLayers { p.numLayers = 1 }
      if !p.hasDropout { p.dropout = 0.1 }
      try check((1 ... 512).contains(p.sequenceLength), "lstm.sequence_length", "must be 1 to 512")
      try check((1 ... 1024).contains(p.hiddenSize), "lstm.hidden_size", "must be 1 to 1024")
      try check((1 ... 4).contains(p.numLayers), "lstm.num_layers", "must be 1 to 4")
      try check((0 ..< 1).contains(p.dropout), "lstm.dropout", "must be in [0, 1)")
      let training = try Self.resolveTraining(
        &p.training,
        path: "\(path).lstm.training",
        seed: seed,
        precisions: [.float32, .float64],
        bad: bad
      )
      model.params = .lstm(p)
      return .lstm(
        sequenceLength: Int(p.sequenceLength),
        hiddenSize: Int(p.hiddenSize),
        layers: Int(p.numLayers),
        dropout: p.dropout,
        training: training
      )
    default:
      var p = model.logisticRegression
      if !p.hasL2 { p.l2 = 1 }
      if !p.hasL1 { p.l1 = 0 }
      if !p.hasMaxIterations { p.maxIterations = 1000 }
      if !p.hasTolerance { p.tolerance = 1e-6 }
      if !p.hasFitIntercept { p.fitIntercept = true }
      try check(p.l2 > 0 && p.l2.isFinite, "logistic_regression.l2", "must be positive")
      try check(
        p.l1 == 0,
        "logistic_regression.l1",
        "L1 is not built (L-BFGS needs a smooth objective); set 0"
      )
      try check(
        (1 ... 100_000).contains(p.maxIterations),
        "logistic_regression.max_iterations",
        "must be 1 to 100000"
      )
      try check(
        p.tolerance > 0 && p.tolerance.isFinite,
        "logistic_regression.tolerance",
        "must be positive"
      )
      model.params = .logisticRegression(p)
      return .logisticRegression(
        .init(
          l2: p.l2,
          maxIterations: Int(p.maxIterations),
          tolerance: p.tolerance,
          fitIntercept: p.fitIntercept
        )
      )
    }
  }

  /// The neural training loop's defaults and checks.
  /// - Parameter precisions: those the model trains in, the first the default.
  static func resolveTraining(
    _ t: inout Vane_V1_NeuralTraining,
    path: String,
    seed: UInt64,
    precisions: [NeuralTraining.Precision],
    bad: (String, String) -> VaneError
  ) throws -> NeuralTraining {
    switch t.optimizer {
    case .unspecified: t.optimizer = .adamw
    case .adamw: break
    case .adam:
      // Adam is AdamW without decoupled weight decay.
      if !t.hasWeightDecay { t.weightDecay = 0 }
    case .sgd: throw bad("\(path).optimizer", "SGD is not built; use ADAMW or ADAM")
    case .UNRECOGNIZED(let value): throw bad("\(path).optimizer", "unknown optimizer \(value)")
    }
    if !t.hasLearningRate { t.learningRate = 1e-3 }
    if !t.hasWeightDecay { t.weightDecay = 1e-4 }
    if !t.hasBatchSize { t.batchSize = 256 }
    if !t.hasMaxEpochs { t.maxEpochs = 100 }
    if !t.hasEarlyStoppingPatience { t.earlyStoppingPatience = 10 }
    if !t.hasGradientClipNorm { t.gradientClipNorm = 1 }
    guard t.learningRate > 0, t.learningRate.isFinite else {
      throw bad("\(path).learning_rate", "must be positive")
    }
    if t.optimizer == .adam, t.weightDecay != 0 {
      throw bad("\(path).weight_decay", "ADAM has none; use ADAMW for weight decay")
    }
    guard t.weightDecay >= 0, t.weightDecay.isFinite else {
      throw bad("\(path).weight_decay", "must be at least 0")
    }
    guard (2 ... 65_536).contains(t.batchSize) else {
      throw bad("\(path).batch_size", "must be 2 to 65536")
    }
    guard (1 ... 10_000).contains(t.maxEpochs) else {
      throw bad("\(path).max_epochs", "must be 1 to 10000")
    }
    guard t.gradientClipNorm >= 0, t.gradientClipNorm.isFinite else {
      throw bad("\(path).gradient_clip_norm", "must be at least 0")
    }
    let precision: NeuralTraining.Precision
    switch t.precision {
    case .unspecified: precision = precisions[0]
    case .float32: precision = .float32
    case .float64: precision = .float64
    case .UNRECOGNIZED(let value): throw bad("\(path).precision", "unknown precision \(value)")
    }
    guard precisions.contains(precision) else {
      throw bad(
        "\(path).precision",
        "this model trains in \(precisions.map { "PRECISION_\($0.rawValue.uppercased())" }.joined(separator: " or ")) only"
      )
    }
    t.precision = precision == .float32 ? .float32 : .float64
    var training = NeuralTraining()
    training.precision = precision
    training.learningRate = t.learningRate
    training.weightDecay = t.weightDecay
    training.batchSize = Int(t.batchSize)
    training.maxEpochs = Int(t.maxEpochs)
    training.patience = Int(t.earlyStoppingPatience)
    training.clipNorm = t.gradientClipNorm
    training.seed = seed
    return training
  }
}
