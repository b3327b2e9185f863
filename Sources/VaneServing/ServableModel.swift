public import Foundation
public import VaneBundle
internal import VaneCore
public import VaneFeatures
internal import VaneModels
internal import VaneONNXRuntime
internal import VaneQuality

/// A bundle made ready to answer: raw feature rows in, per horizon raw and calibrated class
/// probabilities out, computed as the trainer computed the bundle's final predictions —
/// scaler → base models → stack meta-learner → calibration.
///
/// Built once per loaded version (on the blocking pool) and immutable afterwards, so any number
/// of requests may use it at once.
public struct ServableModel: Sendable {
  /// One horizon's answer for one row.
  public struct HorizonOutput: Sendable, Equatable {
    public var horizon: Int
    /// The served model's probabilities before calibration.
    public var raw: [Double]
    /// What clients should use: `raw` through the bundle's calibration.
    public var calibrated: [Double]
  }

  /// What never changes once the version is loaded, held by reference: every request reads
  /// the model through a copy, and a copy then retains this one object instead of the some
  /// forty arrays and strings it holds (about 2,000 instructions a request, measured).
  private final class Parts: Sendable {
    let manifest: BundleManifest
    let reference: TrainingReference?
    let nearestSamples: NearestSampleSearch?
    let columnMeans: [Double], columnDeviations: [Double]
    let calibration: Calibration
    let served: [Int: Served]

    init(
      manifest: BundleManifest,
      reference: TrainingReference?,
      calibration: Calibration,
      served: [Int: Served]
    ) {
      self.manifest = manifest
      self.reference = reference
      self.nearestSamples = reference.map(NearestSampleSearch.init)
      self.columnMeans = reference?.columns.map { $0.mean ?? .nan } ?? []
      self.columnDeviations =
        reference?.columns.map { $0.std.flatMap { $0 > 0 ? $0 : nil } ?? .nan } ?? []
      self.calibration = calibration
      self.served = served
    }
  }

  private let parts: Parts

  /// The bundle's identity and what it serves.
  public var manifest: BundleManifest { self.parts.manifest }
  public let manifestSHA256: String
  public var classes: [String] { self.manifest.task.classes }
  public var horizons: [Int] { self.manifest.task.horizons }
  public var columns: [String] { self.manifest.featureSet.columns }
  /// The horizon the bundle's calibration was fitted at (the first one).
  public let calibratedHorizon: Int?
  /// Kinds of the models it runs.
  public var modelKinds: [ModelKind] { self.manifest.models.map(\.kind) }

  /// When the bundle was made (its manifest's `created`; nil when unreadable).
  public let createdAt: Date?
  /// The training reference statistics (nil: a bundle written before the trainer wrote them).
  public var reference: TrainingReference? { self.parts.reference }
  /// ``reference``'s sample prepared for the per-request nearest-sample distance.
  var nearestSamples: NearestSampleSearch? { self.parts.nearestSamples }
  /// ``reference``'s per-column scaled mean and standard deviation for the z bound, NaN where
  /// a column has none (read per request: the columns themselves carry names and deciles).
  var columnMeans: [Double] { self.parts.columnMeans }
  var columnDeviations: [Double] { self.parts.columnDeviations }
  /// What this loaded version does about expiry and out-of-distribution inputs.
  public var policy: TrustPolicy = .default

  private var scaler: FeatureScaler?
  /// What this version does with an input whose features are not all present: the bundle's
  /// training choice (``MissingValues/exclude`` when it records none) unless
  /// ``choose(missingValues:)`` overrode it.
  public private(set) var missingValues: MissingValues
  private var calibration: Calibration { self.parts.calibration }
  /// Per horizon, in `horizons` order: the model that answers for it.
  private var served: [Int: Served] { self.parts.served }

  private enum Served: Sendable {
    case single(Base)
    case stack(bases: [Base], volatility: Int?, scaler: FeatureScaler, model: LogisticRegression)
  }

  private enum Base: Sendable {
    case logisticRegression(LogisticRegression)
    case mlp(MLP)
    case trees(TreeEnsemble)
    /// An LSTM answering `horizon` with head `head`.
    case lstm(LSTM.Inference, head: Int, file: String)
    /// The model's ONNX export on Vane's ONNX engine: raw features in (the export scales them
    /// itself), class probabilities out, or for a sequence model each head's up-probability.
    case onnx(ONNXModel, input: String, head: Int?, file: String)
    /// An imported ONNX graph: scaled features in, as its envelope maps them; `head` is the
    /// output column of a graph with one per horizon.
    case imported(ImportedGraph, head: Int?, file: String)
  }

  /// What answers for the bundle's models.
  public enum Runtime: String, Sendable, Equatable {
    /// Vane's own model code.
    case native
    /// Each model's ONNX export (written when the trainer was asked to export ONNX), on Vane's
    /// ONNX engine; the stack meta-learner and the calibration stay native.
    case onnx
  }

  /// The runtime this instance answers with.
  public let runtime: Runtime

  /// Bars each input row is: 1, or the sequence length of the bundle's LSTM (a window of
  /// consecutive bars, oldest first, the bar to answer for last).
  public let inputBars: Int

  // MARK: Loading

  /// Reads every model a bundle names and checks it against the manifest.
  /// - Throws: FAILED_PRECONDITION naming the file and the reason: a malformed or mismatching
  ///   file, a horizon without a served model, a calibration that does not fit the classes,
  ///   LSTMs of different sequence lengths in one bundle.
  public init(bundle: ModelBundle, runtime: Runtime = .native) throws {
    let manifest = bundle.manifest
    self.runtime = runtime
    self.manifestSHA256 = bundle.manifestSHA256
    self.createdAt = Self.creationDate(manifest.created)
    self.missingValues = manifest.missingValues.flatMap(MissingValues.init(rawValue:)) ?? .exclude
    let classes = manifest.task.classes, columns = manifest.featureSet.columns
    let name = "bundle \(manifest.id)"
    func fail(_ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(name): \(reason)")
    }
    guard !manifest.task.horizons.isEmpty else { throw fail("task.horizons is empty") }
    guard !columns.isEmpty else { throw fail("feature_set.columns is empty") }

    // The scaler every base model reads through (written by the trainer as models/scaler.json).
    let scalerFile = Self.scalerFile
    if manifest.files.contains(where: { $0.path == scalerFile }) {
      let scaler: FeatureScaler
      do {
        scaler = try FeatureScaler.decode(try bundle.data(scalerFile))
      } catch {
        throw fail("\(scalerFile): \(error)")
      }
      guard scaler.columns == columns, scaler.center.count == columns.count,
        scaler.scale.count == columns.count
      else {
        throw fail(
          "\(scalerFile): its columns are not the feature set's \(columns.count) columns in order"
        )
      }
      self.scaler = scaler
    } else {
      self.scaler = nil
    }

    // Base models by file (a stack names its bases by file) and by name and horizon.
    var bases: [String: Base] = [:]
    // Without a stack a horizon is answered by its single model, else (as the trainer's final
    // model) by the first model listed for it.
    var single: [Int: Base] = [:]
    var first: [Int: Base] = [:]
    var inputBars = 1
    for model in manifest.models where model.kind != .stack {
      let data = try bundle.data(model.file)
      var base: Base
      var lstm: LSTM.Inference?
      var imported: ImportedGraph?
      switch model.kind {
      case .logisticRegression:
        let file = try BundleJSON.model(
          LogisticRegression.self,
          from: data,
          file: model.file,
          kind: .logisticRegression,
          classes: classes,
          columns: columns
        )
        guard file.model.featureCount == columns.count, file.model.classCount == classes.count
        else {
          throw fail(
            "\(model.file): a logistic regression over \(file.model.featureCount) features and \(file.model.classCount) classes"
          )
        }
        base = .logisticRegression(file.model)
      case .mlp:
        let file = try BundleJSON.model(
          MLP.self,
          from: data,
          file: model.file,
          kind: .mlp,
          classes: classes,
          columns: columns
        )
        guard file.model.inputCount == columns.count, file.model.classCount == classes.count else {
          throw fail(
            "\(model.file): an MLP over \(file.model.inputCount) features and \(file.model.classCount) classes"
          )
        }
        base = .mlp(file.model)
      case .xgboost:
        do {
          base = .trees(
            try TreeEnsemble.xgboost(
              data,
              classCount: classes.count,
              featureCount: columns.count,
              rounds: 0
            )
          )
        } catch let error as VaneError {
          throw fail("\(model.file): \(error.message)")
        }
      case .lightgbm:
        let trees: TreeEnsemble
        do { trees = try TreeEnsemble.lightgbm(text: data) } catch let error as VaneError {
          throw fail("\(model.file): \(error.message)")
        }
        guard trees.featureCount == columns.count, trees.classCount == classes.count else {
          throw fail(
            "\(model.file): a model over \(trees.featureCount) features and \(trees.classCount) classes; the bundle has \(columns.count) and \(classes.count)"
          )
        }
        base = .trees(trees)
      case .onnx:
        let graph: ImportedGraph
        do {
          graph = try ImportedGraph(
            envelope: data,
            file: model.file,
            bundle: bundle,
            columns: columns,
            classes: classes.count
          )
        } catch let error as VaneError {
          throw fail(error.message)
        }
        guard inputBars == 1 || inputBars == graph.bars || graph.bars == 1 else {
          throw fail("\(model.file): models of \(inputBars) and \(graph.bars) bars in one bundle")
        }
        inputBars = max(inputBars, graph.bars)
        if let heads = graph.headHorizons, heads != (model.horizons ?? manifest.task.horizons) {
          throw fail(
            "\(model.file): its heads answer horizons \(heads), the model \(model.horizons ?? manifest.task.horizons)"
          )
        }
        imported = graph
        base = .imported(graph, head: nil, file: model.file)
      case .lstm:
        let file = try BundleJSON.model(
          LSTM.self,
          from: data,
          file: model.file,
          kind: .lstm,
          classes: classes,
          columns: columns
        )
        let heads = model.horizons ?? manifest.task.horizons
        guard classes.count == 2 else {
          throw fail(
            "\(model.file): an LSTM's heads are binary; the bundle has \(classes.count) classes"
          )
        }
        guard file.model.inputCount == columns.count, file.model.heads == heads.count,
          file.model.sequenceLength >= 1
        else {
          throw fail(
            "\(model.file): an LSTM over \(file.model.inputCount) features with \(file.model.heads) heads for \(heads.count) horizons"
          )
        }
        guard inputBars == 1 || inputBars == file.model.sequenceLength else {
          throw fail(
            "\(model.file): LSTMs of \(inputBars) and \(file.model.sequenceLength) bars in one bundle"
          )
        }
        inputBars = file.model.sequenceLength
        let inference = LSTM.Inference(file.model)
        lstm = inference
        base = .lstm(inference, head: 0, file: model.file)
      case .stack:
        continue
      }
      var engine: ONNXModel?
      if runtime == .onnx && model.kind != .onnx {
        guard let file = model.onnx else {
          throw fail(
            "model \(model.name) has no ONNX export (train with export_onnx to serve it on INFERENCE_RUNTIME_ONNX)"
          )
        }
        do {
          engine = try ONNXModel(data: try bundle.data(file))
        } catch let error as VaneError {
          throw fail("\(file): \(error.message)")
        }
        guard engine?.inputs.count == 1,
          engine?.outputs.contains(where: { $0.name == "probabilities" }) == true
        else {
          throw fail("\(file): not one of Vane's exports (one input, a 'probabilities' output)")
        }
      }
      for (head, horizon) in (model.horizons ?? manifest.task.horizons).enumerated() {
        if let lstm { base = .lstm(lstm, head: head, file: model.file) }
        if let imported, imported.heads != nil {
          base = .imported(imported, head: head, file: model.file)
        }
        if let engine, let file = model.onnx {
          base = .onnx(
            engine,
            input: engine.inputs[0].name,
            head: lstm == nil ? nil : head,
            file: file
          )
        }
        // A stack names its bases by file; an LSTM file serves every head, resolved per horizon below.
        bases[model.file + "@\(horizon)"] = base
        if model.role == .single { single[horizon] = base }
        if first[horizon] == nil { first[horizon] = base }
      }
    }
    self.inputBars = inputBars

    var served: [Int: Served] = [:]
    for model in manifest.models where model.kind == .stack {
      let file = try BundleJSON.decode(
        BundleStackFile<FeatureScaler, LogisticRegression>.self,
        from: try bundle.data(model.file),
        file: model.file
      )
      guard file.format == BundleStackFile<FeatureScaler, LogisticRegression>.format else {
        throw fail(
          "\(model.file): format '\(file.format)' is not \(BundleStackFile<FeatureScaler, LogisticRegression>.format)"
        )
      }
      guard let horizon = model.horizons?.first, model.horizons?.count == 1,
        manifest.task.horizons.contains(horizon)
      else {
        throw fail("\(model.file): a stack serves exactly one of the bundle's horizons")
      }
      let stackBases = try file.bases.map { reference -> Base in
        guard let base = bases[reference.file + "@\(horizon)"] else {
          throw fail(
            "\(model.file): base \(reference.name) (\(reference.file)) is not a model of the bundle"
          )
        }
        return base
      }
      let volatility = try file.volatilityColumn.map { column -> Int in
        guard let index = columns.firstIndex(of: column) else {
          throw fail("\(model.file): volatility column \(column) is not a feature")
        }
        return index
      }
      let width =
        stackBases.count * (classes.count == 2 ? 1 : classes.count) + (volatility == nil ? 0 : 1)
      guard file.scaler.center.count == width, file.model.featureCount == width,
        file.model.classCount == classes.count
      else {
        throw fail(
          "\(model.file): the meta-learner reads \(file.model.featureCount) values, its bases give \(width)"
        )
      }
      served[horizon] = .stack(
        bases: stackBases,
        volatility: volatility,
        scaler: file.scaler,
        model: file.model
      )
    }
    for horizon in manifest.task.horizons where served[horizon] == nil {
      guard let base = single[horizon] ?? first[horizon] else {
        throw fail("no model serves horizon \(horizon)")
      }
      served[horizon] = .single(base)
    }

    let reference: TrainingReference?
    if let file = manifest.reference?.file {
      reference = try TrainingReference.decode(
        try bundle.data(file),
        columns: columns,
        classCount: classes.count,
        name: name
      )
    } else {
      reference = nil
    }

    let calibration: Calibration
    if let reference = manifest.calibration {
      guard let method = CalibrationMethod(rawValue: reference.method) else {
        throw fail("calibration.method '\(reference.method)' is not known")
      }
      do {
        calibration = try Calibration(
          method: method,
          parametersJSON: reference.parameters,
          classCount: classes.count
        )
      } catch let error as VaneError {
        throw fail("calibration: \(error.message)")
      }
      self.calibratedHorizon = manifest.task.horizons.first
    } else {
      calibration = .none
      self.calibratedHorizon = nil
    }
    self.parts = Parts(
      manifest: manifest,
      reference: reference,
      calibration: calibration,
      served: served
    )
  }

  /// Rows to warm a new instance with before it takes traffic: the training centre of every
  /// column (the scaler's), a row every model and stack can answer.
  public var warmUpRows: (values: [Double], count: Int) {
    let row = self.scaler?.center ?? [Double](repeating: 0, count: self.columns.count)
    return ((0 ..< self.inputBars).flatMap { _ in row }, 1)
  }

  /// Rows as the models read them: through the bundle's scaler (NaN stays NaN).
  func scale(_ features: [Double]) -> [Double] {
    self.scaler.map { $0.transform(batch: features) } ?? features
  }

  /// The last bar of each of `count` windows of `bars` bars.
  static func lastBars(_ values: [Double], count: Int, bars: Int, width: Int) -> [Double] {
    var out: [Double] = []
    out.reserveCapacity(count * width)
    for r in 0 ..< count {
      let start = (r * bars + bars - 1) * width
      out += values[start ..< (start + width)]
    }
    return out
  }

  /// The bar each input is answered for: the last of its window (`count × columns.count`).
  public func answeredBars(_ features: [Double], count: Int) -> [Double] {
    self.inputBars == 1
      ? features
      : Self.lastBars(features, count: count, bars: self.inputBars, width: self.columns.count)
  }

  /// Overrides what this version does with inputs with missing values.
  /// - Throws: INVALID_ARGUMENT naming `field`: NATIVE for a bundle without a model that handles
  ///   missing values itself (a tree ensemble or an imported graph), IMPUTE for a bundle without
  ///   a scaler. A bundle trained without imputation imputes its scaler's centers (the
  ///   value its scaled inputs read as 0).
  public mutating func choose(missingValues choice: MissingValues, field: String) throws {
    try Self.check(missingValues: choice, manifest: self.manifest, field: field)
    if choice == .impute, var scaler = self.scaler, scaler.impute == nil {
      scaler.impute = scaler.center
      self.scaler = scaler
    }
    self.missingValues = choice
  }

  /// Whether a bundle can be served with `choice`, from its manifest alone.
  /// - Throws: what ``choose(missingValues:field:)`` throws.
  public static func check(
    missingValues choice: MissingValues,
    manifest: BundleManifest,
    field: String
  ) throws {
    switch choice {
    case .exclude: break
    case .native:
      guard manifest.models.contains(where: { [.xgboost, .lightgbm, .onnx].contains($0.kind) })
      else {
        throw VaneError.invalidArgument(
          field: field,
          "NATIVE leaves missing values to models that handle them (tree ensembles), and bundle \(manifest.id) has none (\(manifest.models.map(\.kind.rawValue).joined(separator: ", "))); use IMPUTE"
        )
      }
    case .impute:
      guard manifest.files.contains(where: { $0.path == Self.scalerFile }) else {
        throw VaneError.invalidArgument(
          field: field,
          "IMPUTE fills missing values from the bundle's scaler, and bundle \(manifest.id) has none (trained with scaler NONE and without missing IMPUTE)"
        )
      }
    }
  }

  /// Where the trainer writes the scaler every base model reads through.
  static let scalerFile = "models/scaler.json"

  /// Throws FAILED_PRECONDITION naming the first input with a missing value and its columns when
  /// this version excludes such inputs.
  func checkMissing(_ features: [Double], count: Int) throws {
    guard self.missingValues == .exclude,
      let first = features.firstIndex(where: { !$0.isFinite })
    else { return }
    let width = self.columns.count, size = self.inputBars * width
    let input = first / size
    let missing = (input * size ..< (input + 1) * size).filter { !features[$0].isFinite }
    let names = Set(missing.map { self.columns[$0 % width] }).sorted()
    let shown = names.prefix(8).joined(separator: ", ") + (names.count > 8 ? ", …" : "")
    throw VaneError(
      .failedPrecondition,
      "input \(input): \(names.count) column(s) missing (\(shown)); version \(self.manifest.id) excludes inputs with missing values (missing: exclude). Load it with missing IMPUTE, or NATIVE for tree models"
    )
  }

  // MARK: Answering

  /// Class probabilities from a model's output: as they are, or for head `head` of a sequence
  /// model (its up-probability per row) as [down, up].
  private static func headProbabilities(_ output: [Double], head: Int?, count: Int) -> [Double] {
    guard let head else { return output }
    let heads = output.count / max(1, count)
    return (0 ..< count).flatMap { r in [1 - output[r * heads + head], output[r * heads + head]] }
  }

  /// One request's inputs as the trust checks and every model read them, made once: each
  /// input's window imputed where this version imputes, the bar it is answered for, and that
  /// bar through the bundle's scaler.
  public struct Inputs: Sendable {
    /// How many inputs.
    public let count: Int
    /// Each input's window of raw values (`count × inputBars × columns.count`), imputed where
    /// the version imputes.
    let features: [Double]
    /// The bar each input is answered for, the last of its window (`count × columns.count`).
    let last: [Double]
    /// ``last`` through the bundle's scaler (NaN stays NaN unless the scaler imputes).
    let scaled: [Double]
  }

  /// `count` raw inputs (`count × inputBars × columns.count`, row-major: each input its window
  /// of ``inputBars`` consecutive bars, oldest first; NaN is a missing value) made ready for
  /// ``assess(_:now:)`` and ``predict(_:horizons:)``.
  /// - Throws: INVALID_ARGUMENT for a wrong shape; FAILED_PRECONDITION when an input has a
  ///   missing value and the version excludes such inputs (``missingValues``).
  public func inputs(_ input: [Double], count: Int) throws -> Inputs {
    let width = self.columns.count, bars = self.inputBars
    guard count > 0, input.count == count * bars * width else {
      throw VaneError.invalidArgument(
        field: "features",
        "\(input.count) values are not \(count) inputs of \(bars) bar(s) of the model's \(width) columns"
      )
    }
    try self.checkMissing(input, count: count)
    return self.uncheckedInputs(input, count: count)
  }

  /// ``inputs(_:count:)`` without its checks, for a shape known to be right.
  func uncheckedInputs(_ input: [Double], count: Int) -> Inputs {
    // Imputed in raw units first, so every path (exports, stack volatility) reads the same row.
    let features =
      self.missingValues == .impute ? self.scaler.map { $0.imputing(batch: input) } ?? input : input
    let last = self.answeredBars(features, count: count)
    return Inputs(count: count, features: features, last: last, scaled: self.scale(last))
  }

  /// Answers for `count` inputs of raw features (the shape ``inputs(_:count:)`` reads), at
  /// `horizons` (empty: every horizon), each input's answers in ascending horizon order.
  /// One-bar models read the last bar of each window.
  /// - Throws: what ``inputs(_:count:)`` and ``predict(_:horizons:)`` throw.
  public func predict(
    _ input: [Double],
    count: Int,
    horizons wanted: [Int] = []
  ) throws -> [[HorizonOutput]] {
    try self.predict(self.inputs(input, count: count), horizons: wanted)
  }

  /// Answers for prepared inputs at `horizons` (empty: every horizon), each input's answers in
  /// ascending horizon order.
  /// - Throws: INVALID_ARGUMENT for a horizon the model does not serve or inputs made by a
  ///   model of another shape; FAILED_PRECONDITION when a stack's inputs are not finite for a
  ///   row (its volatility column is missing).
  public func predict(_ inputs: Inputs, horizons wanted: [Int] = []) throws -> [[HorizonOutput]] {
    let width = self.columns.count, k = self.classes.count, bars = self.inputBars
    let count = inputs.count, features = inputs.features, last = inputs.last
    let scaled = inputs.scaled
    // Inputs made by another version (another width or window) are not read past their end.
    guard features.count == count * bars * width, scaled.count == count * width else {
      throw VaneError.invalidArgument(
        field: "features",
        "inputs of \(features.count) values were made for another model than this one (\(count) inputs of \(bars) bar(s) of \(width) columns)"
      )
    }
    // A served request asks for one horizon or all of them, often of a one-horizon model.
    let requested = wanted.isEmpty ? self.horizons : wanted
    let horizons = requested.count < 2 ? requested : requested.sorted()
    for horizon in horizons where self.served[horizon] == nil {
      throw VaneError.invalidArgument(
        field: "horizon_bars",
        "\(horizon) is not a horizon of this model (\(self.horizons.map(String.init).joined(separator: ", ")))"
      )
    }
    // The trainer's inputs: scaled; NaN (missing) kept for trees, 0 (the scaled mean) otherwise.
    // Whole windows are scaled only for an imported sequence graph (an LSTM scales its windows
    // itself, in the pass that converts them).
    lazy var windows = bars == 1 ? scaled : self.scale(features)
    // Usually every value is finite: then the scaled row itself, not a copy.
    lazy var finite = scaled.allSatisfy(\.isFinite) ? scaled : scaled.map { $0.isFinite ? $0 : 0 }
    var sequenceOutputs: [String: [Double]] = [:]
    func probabilities(_ base: Base) throws -> [Double] {
      switch base {
      case .onnx(let engine, let input, let head, let file):
        if let cached = sequenceOutputs[file] {
          return Self.headProbabilities(cached, head: head, count: count)
        }
        let values = head == nil ? last : features
        let shape = head == nil ? [count, width] : [count, bars, width]
        let tensor =
          engine.inputs[0].elementType == .float
          ? ONNXTensor(shape: shape, floats: values.map(Float.init))
          : ONNXTensor(shape: shape, doubles: values)
        guard let output = try engine.run([input: tensor])["probabilities"],
          let probabilities = output.doubleValues
        else {
          throw VaneError(.internalError, "\(file): no probabilities output")
        }
        sequenceOutputs[file] = probabilities
        return Self.headProbabilities(probabilities, head: head, count: count)
      case .imported(let graph, let head, let file):
        // One run gives every head; a one-bar graph reads each window's last bar.
        let output =
          try sequenceOutputs[file]
          ?? graph.output(graph.bars == 1 ? scaled : windows, count: count, width: width)
        sequenceOutputs[file] = output
        return try graph.probabilities(output, head: head, count: count)
      case .logisticRegression(let model): return model.probabilities(finite, count: count)
      case .mlp(let model): return model.probabilities(finite, count: count)
      case .trees(let ensemble):
        if count == 1 { return scaled.withUnsafeBufferPointer(ensemble.probabilities) }
        return ensemble.probabilities(batch: scaled, rows: count)
      case .lstm(let model, let head, let file):
        // One forward pass gives every head; computed once per call.
        let up =
          sequenceOutputs[file]
          ?? model.probabilities(
            features,
            count: count,
            standardization: self.scaler.map {
              LSTM.Inference.Standardization(center: $0.center, scale: $0.scale, impute: $0.impute)
            }
          )
        sequenceOutputs[file] = up
        return (0 ..< count).flatMap { r in
          [1 - up[r * model.heads + head], up[r * model.heads + head]]
        }
      }
    }
    // A served request's one row gathers its answers here: no array of arrays until the end.
    var single: [HorizonOutput] = []
    var out = count == 1 ? [] : [[HorizonOutput]](repeating: [], count: count)
    for horizon in horizons {
      let raw: [Double]
      switch self.served[horizon]! {
      case .single(let base):
        raw = try probabilities(base)
      case .stack(let bases, let volatility, let scaler, let model):
        let outputs = try bases.map(probabilities)
        var meta: [Double] = []
        for r in 0 ..< count {
          let row = StackFeatures.row(
            outputs.map { Array($0[(r * k) ..< ((r + 1) * k)]) },
            volatility: volatility.map { last[r * width + $0] }
          )
          guard let row else {
            let column = volatility.map { self.columns[$0] } ?? "?"
            throw VaneError(
              .failedPrecondition,
              "row \(r): the stack needs a finite \(column) and finite base outputs"
            )
          }
          meta += row
        }
        raw = model.probabilities(scaler.transform(batch: meta), count: count)
      }
      let calibrated =
        horizon == self.calibratedHorizon
        ? try self.calibration.apply(probabilities: raw, classCount: k) : raw
      if count == 1 {
        // A served request's one row: the arrays themselves, not copies of them.
        single.append(HorizonOutput(horizon: horizon, raw: raw, calibrated: calibrated))
        continue
      }
      for r in 0 ..< count {
        out[r].append(
          HorizonOutput(
            horizon: horizon,
            raw: Array(raw[(r * k) ..< ((r + 1) * k)]),
            calibrated: Array(calibrated[(r * k) ..< ((r + 1) * k)])
          )
        )
      }
    }
    return count == 1 ? [single] : out
  }
}
