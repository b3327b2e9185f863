public import Foundation
internal import VaneCore

/// `bundle.json`: what a model bundle holds and where it comes from. The SHA-256 of its exact
/// bytes names the bundle in reports and blessings, so it lists every other file with its hash.
///
/// Keys are snake_case:
/// ```json
/// {"schema_version": 1, "id": "btcusdt-1h-…", "created": "2026-11-22T…Z",
///  "symbols": ["BTCUSDT"], "interval": "1h",
///  "task": {"kind": "binary", "classes": ["DOWN", "UP"], "horizons": [1]},
///  "feature_set": {"id": "v1", "sha256": "…", "columns": ["ret_1h", …]},
///  "files": [{"path": "models/xgb.json", "sha256": "…", "size": 12345}, …],
///  "models": [{"name": "xgb", "kind": "xgboost", "file": "models/xgb.json", "role": "base"}, …],
///  "calibration": {"method": "temperature", "parameters": "{\"temperature\":1.3}"},
///  "out_of_fold": {"file": "reports/oof.json"},
///  "metrics": {"auc": 0.57}, "provenance": {"trainer_version": "…"}}
/// ```
public struct BundleManifest: Sendable, Equatable, Codable {
  public struct Task: Sendable, Equatable, Codable {
    /// "binary" or "three_class".
    public var kind: String
    public var classes: [String]
    /// Label horizons in bars.
    public var horizons: [Int]

    public init(kind: String, classes: [String], horizons: [Int]) {
      self.kind = kind
      self.classes = classes
      self.horizons = horizons
    }
  }

  public struct FeatureSetReference: Sendable, Equatable, Codable {
    public var id: String
    public var sha256: String
    public var columns: [String]

    public init(id: String, sha256: String, columns: [String]) {
      self.id = id
      self.sha256 = sha256
      self.columns = columns
    }
  }

  /// A file of the bundle with its SHA-256 (hex) and size.
  public struct File: Sendable, Equatable, Codable {
    public var path: String
    public var sha256: String
    public var size: Int

    public init(path: String, sha256: String, size: Int) {
      self.path = path
      self.sha256 = sha256
      self.size = size
    }
  }

  public struct Model: Sendable, Equatable, Codable {
    public var name: String
    public var kind: ModelKind
    public var file: String
    public var role: ModelRole
    /// The label horizons it predicts (one, or each head of an LSTM); nil in bundles that do
    /// not say.
    public var horizons: [Int]?
    /// The same model as ONNX, when exported.
    public var onnx: String?

    public init(
      name: String,
      kind: ModelKind,
      file: String,
      role: ModelRole,
      horizons: [Int]? = nil,
      onnx: String? = nil
    ) {
      self.name = name
      self.kind = kind
      self.file = file
      self.role = role
      self.horizons = horizons
      self.onnx = onnx
    }
  }

  /// A fitted calibration: method name and its parameters JSON (the API's layout).
  public struct CalibrationReference: Sendable, Equatable, Codable {
    public var method: String
    public var parameters: String

    public init(method: String, parameters: String) {
      self.method = method
      self.parameters = parameters
    }
  }

  /// A file of the bundle another key points to.
  public struct FileReference: Sendable, Equatable, Codable {
    public var file: String

    public init(file: String) { self.file = file }
  }

  public var schemaVersion: Int
  public var id: String
  public var created: String
  public var symbols: [String]
  public var interval: String
  public var task: Task
  public var featureSet: FeatureSetReference
  public var files: [File]
  public var models: [Model]
  public var calibration: CalibrationReference?
  public var outOfFold: FileReference?
  /// The training reference statistics (``TrainingReference``); nil in bundles written before
  /// the trainer wrote them.
  public var reference: FileReference?
  /// What the models do with a row whose features are not all present: "exclude", "native" or
  /// "impute" (the training spec's `missing`); nil in bundles written before it was recorded,
  /// read as "exclude".
  public var missingValues: String?
  public var metrics: [String: Double]
  public var provenance: [String: String]

  public init(
    id: String,
    created: String,
    symbols: [String],
    interval: String,
    task: Task,
    featureSet: FeatureSetReference,
    files: [File] = [],
    models: [Model] = [],
    calibration: CalibrationReference? = nil,
    outOfFold: FileReference? = nil,
    reference: FileReference? = nil,
    missingValues: String? = nil,
    metrics: [String: Double] = [:],
    provenance: [String: String] = [:]
  ) {
    self.schemaVersion = Self.schemaVersion
    self.id = id
    self.created = created
    self.symbols = symbols
    self.interval = interval
    self.task = task
    self.featureSet = featureSet
    self.files = files
    self.models = models
    self.calibration = calibration
    self.outOfFold = outOfFold
    self.reference = reference
    self.missingValues = missingValues
    self.metrics = metrics
    self.provenance = provenance
  }

  // Explicit keys: a key strategy would also rewrite dictionary keys (metric names).
  enum CodingKeys: String, CodingKey {
    case schemaVersion = "schema_version"
    case id, created, symbols, interval, task
    case featureSet = "feature_set"
    case files, models,
      calibration
    case outOfFold = "out_of_fold"
    case reference, metrics, provenance
    case missingValues = "missing_values"
  }

  /// The values `missing_values` may take (VaneFeatures' `MissingValues`).
  public static let missingValuesChoices = ["exclude", "native", "impute"]

  /// The schema this build reads and writes.
  public static let schemaVersion = 1

  /// Reads and checks a manifest.
  /// - Throws: FAILED_PRECONDITION naming the key: not JSON, another schema version, a bad id,
  ///   fewer than two classes, an unsafe or duplicate file path, a model or OOF file that is not
  ///   listed.
  public static func decode(_ data: Data, name: String) throws -> BundleManifest {
    let decoder = JSONDecoder()
    let manifest: BundleManifest
    do {
      manifest = try decoder.decode(BundleManifest.self, from: data)
    } catch {
      throw VaneError(
        .failedPrecondition,
        "\(name): bundle.json is not a bundle manifest (\(Self.describe(error)))",
        cause: error
      )
    }
    func fail(_ key: String, _ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(name): bundle.json: \(key): \(reason)")
    }
    guard manifest.schemaVersion == Self.schemaVersion else {
      throw fail(
        "schema_version",
        "\(manifest.schemaVersion) is not supported (this build reads \(Self.schemaVersion))"
      )
    }
    guard (1 ... 128).contains(manifest.id.count),
      manifest.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
    else {
      throw fail("id", "'\(manifest.id)' must be 1 to 128 ASCII letters, digits, '.', '_' or '-'")
    }
    guard manifest.task.classes.count >= 2,
      Set(manifest.task.classes).count == manifest.task.classes.count
    else {
      throw fail("task.classes", "need at least two distinct classes")
    }
    var paths: Set<String> = []
    for (i, file) in manifest.files.enumerated() {
      let clean = try? Tar.safePath(file.path, name: name)
      guard clean == file.path, file.path != "bundle.json" else {
        throw fail("files[\(i)].path", "'\(file.path)' is not a safe relative path")
      }
      guard paths.insert(file.path).inserted else {
        throw fail("files[\(i)].path", "'\(file.path)' is listed twice")
      }
      guard file.sha256.count == 64, file.sha256.allSatisfy(\.isHexDigit), file.size >= 0 else {
        throw fail("files[\(i)]", "needs a 64-hex-digit sha256 and a size")
      }
    }
    for (i, model) in manifest.models.enumerated() {
      guard paths.contains(model.file) else {
        throw fail("models[\(i)].file", "'\(model.file)' is not among files")
      }
      if let onnx = model.onnx, !paths.contains(onnx) {
        throw fail("models[\(i)].onnx", "'\(onnx)' is not among files")
      }
    }
    if let oof = manifest.outOfFold, !paths.contains(oof.file) {
      throw fail("out_of_fold.file", "'\(oof.file)' is not among files")
    }
    if let missing = manifest.missingValues, !Self.missingValuesChoices.contains(missing) {
      throw fail(
        "missing_values",
        "'\(missing.prefix(32))' is not one of \(Self.missingValuesChoices.joined(separator: ", "))"
      )
    }
    if let reference = manifest.reference, !paths.contains(reference.file) {
      throw fail("reference.file", "'\(reference.file)' is not among files")
    }
    return manifest
  }

  /// The manifest as canonical JSON (sorted keys, snake_case).
  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    return try encoder.encode(self)
  }

  static func describe(_ error: any Error) -> String {
    switch error as? DecodingError {
    case .keyNotFound(let key, let context)?:
      "missing \((context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: "."))"
    case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
      "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
    case .dataCorrupted(let context)? where !context.codingPath.isEmpty:
      // An enum value this build does not know (a model kind or role), or a bad number.
      "\(context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")): \(context.debugDescription)"
    case .dataCorrupted(let context)?: "not JSON: \(context.debugDescription)"
    default: "\(error)"
    }
  }
}

/// A bundle's out-of-fold predictions: for every row a model was tested on (never trained on),
/// its true label, fold and each model's output, so a gatekeeper can judge the models without
/// running them. Stored as JSON: `{"labels": [...], "fold_ids": [...], "final": "stack",
/// "models": {"stack": {"values": [N×K], "values_are_logits": false}, ...},
/// "inputs": {"columns": [...], "mean": [...], "std": [...]}}`.
public struct OutOfFold: Sendable, Equatable, Codable {
  public struct Output: Sendable, Equatable, Codable {
    /// N × K, row-major, K = the manifest's classes.
    public var values: [Double]
    public var valuesAreLogits: Bool

    enum CodingKeys: String, CodingKey {
      case values
      case valuesAreLogits = "values_are_logits"
    }

    public init(values: [Double], valuesAreLogits: Bool) {
      self.values = values
      self.valuesAreLogits = valuesAreLogits
    }
  }

  /// Per-column mean and standard deviation of the scaled inputs the models saw.
  public struct Inputs: Sendable, Equatable, Codable {
    public var columns: [String]
    public var mean: [Double]
    public var std: [Double]

    public init(columns: [String], mean: [Double], std: [Double]) {
      self.columns = columns
      self.mean = mean
      self.std = std
    }
  }

  public var labels: [Int]
  public var foldIds: [Int]
  /// The model whose predictions the bundle serves (the meta-learner of a stack).
  public var final: String
  public var models: [String: Output]
  public var inputs: Inputs?
  /// Each row's bar (open time, Unix ms), so live and out-of-fold behaviour can be compared
  /// over time; nil in bundles written before the trainer recorded them.
  public var barTimes: [Int64]?

  public init(
    labels: [Int],
    foldIds: [Int],
    final: String,
    models: [String: Output],
    inputs: Inputs? = nil,
    barTimes: [Int64]? = nil
  ) {
    self.labels = labels
    self.foldIds = foldIds
    self.final = final
    self.models = models
    self.inputs = inputs
    self.barTimes = barTimes
  }

  enum CodingKeys: String, CodingKey {
    case labels
    case foldIds = "fold_ids"
    case final, models, inputs
    case barTimes = "bar_times"
  }

  /// The fold ids under the name the rest of Vane uses.
  public var foldIDs: [Int] { self.foldIds }

  /// Reads and checks the shape against `classCount`.
  /// - Throws: FAILED_PRECONDITION naming the key.
  public static func decode(_ data: Data, classCount: Int, name: String) throws -> OutOfFold {
    let decoder = JSONDecoder()
    // NaN and infinite outputs are what the non_finite gate is for: they must survive.
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    let oof: OutOfFold
    do {
      oof = try decoder.decode(OutOfFold.self, from: data)
    } catch {
      throw VaneError(
        .failedPrecondition,
        "\(name): not out-of-fold predictions (\(BundleManifest.describe(error)))",
        cause: error
      )
    }
    func fail(_ key: String, _ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(name): \(key): \(reason)")
    }
    let n = oof.labels.count
    guard n > 0 else { throw fail("labels", "no rows") }
    guard oof.foldIds.isEmpty || oof.foldIds.count == n else {
      throw fail("fold_ids", "\(oof.foldIds.count) for \(n) labels")
    }
    guard oof.models[oof.final] != nil else {
      throw fail("final", "'\(oof.final)' is not among models")
    }
    if let times = oof.barTimes, times.count != n {
      throw fail("bar_times", "\(times.count) for \(n) labels")
    }
    for (model, output) in oof.models where output.values.count != n * classCount {
      throw fail(
        "models.\(model).values",
        "\(output.values.count) values for \(n) rows × \(classCount) classes"
      )
    }
    if let inputs = oof.inputs,
      inputs.mean.count != inputs.columns.count || inputs.std.count != inputs.columns.count
    {
      throw fail("inputs", "columns, mean and std differ in length")
    }
    return oof
  }

  /// JSON for the bundle.
  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    encoder.outputFormatting = [.sortedKeys]
    return try encoder.encode(self)
  }
}
