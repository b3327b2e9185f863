public import Foundation
public import VaneBundle
internal import VaneCore
internal import VaneFeatures
internal import VaneModels
internal import VaneONNXRuntime
internal import VaneQuality

/// Wraps a model trained elsewhere — an ONNX graph, a LightGBM text model or an XGBoost JSON
/// model — into a Vane bundle: the model file, its inputs mapped to a feature set's columns by
/// name, an optional scaler and calibration, and out-of-fold predictions when the user has
/// them (the gatekeeper judges and blesses a bundle on those; without them it can be served
/// but not blessed). Everything is checked before anything is written, and the bundle written
/// is opened and answers once as the predictor would load it.
///
/// `vane import` runs it locally; the trainer's ImportModel RPC runs it on the server.
public enum ModelImport {
  /// A model file's format, recognised from its content.
  public enum Format: String, Sendable {
    case onnx
    case lightgbm
    case xgboost

    /// An XGBoost JSON model (an object with a "learner"), LightGBM's text format (its first
    /// line is `tree`), or else ONNX (protobuf has no signature to test).
    public static func detect(_ head: Data) -> Format {
      let text = String(decoding: head.prefix(4096), as: UTF8.self)
      let trimmed = text.drop { $0.isWhitespace }
      if trimmed.hasPrefix("{") && text.contains("\"learner\"") { return .xgboost }
      if trimmed.hasPrefix("tree\n") || trimmed.hasPrefix("tree\r\n") { return .lightgbm }
      return .onnx
    }
  }

  /// What the user brings besides the mapping.
  public struct Extras: Sendable {
    /// A FeatureScaler JSON applied to the features before the model.
    public var scaler: Data?
    /// `{"method": "temperature", "parameters": {...}}`, as the gatekeeper's Calibrate gives.
    public var calibration: Data?
    /// Out-of-fold predictions as a predictions CSV (`label,<class>…[,fold]`).
    public var outOfFold: Data?

    public init(scaler: Data? = nil, calibration: Data? = nil, outOfFold: Data? = nil) {
      self.scaler = scaler
      self.calibration = calibration
      self.outOfFold = outOfFold
    }
  }

  /// A bundle ready to write.
  public struct Prepared: Sendable {
    public var manifest: BundleManifest
    public var files: [String: Data]
    public var format: Format
    /// The bundle's feature columns, in the order the model reads them.
    public var columns: [String] { self.manifest.featureSet.columns }
    /// Whether the gatekeeper can judge it (it has out-of-fold predictions).
    public var blessable: Bool { self.manifest.outOfFold != nil }
    public var notes: [String]
  }

  /// Largest model file imported.
  public static let maximumModelBytes = 1 << 30

  static func invalid(_ field: String, _ reason: String) -> VaneError {
    VaneError(.invalidArgument, "\(field): \(reason)")
  }

  /// Checks the model against the mapping and builds the bundle's files.
  /// - Throws: INVALID_ARGUMENT naming the field (`model`, `mapping`, `scaler`, `calibration`,
  ///   `out_of_fold`) and the reason; NOT_FOUND for a feature set this build lacks.
  public static func prepare(
    model data: Data,
    fileName: String,
    mapping: Mapping,
    extras: Extras = Extras(),
    now: Date = Date()
  ) throws -> Prepared {
    guard data.count <= Self.maximumModelBytes else {
      throw invalid("model", "\(data.count) bytes; at most \(Self.maximumModelBytes)")
    }
    guard !data.isEmpty else { throw invalid("model", "the file is empty") }
    guard let featureSet = FeatureSet.named(mapping.featureSet) else {
      throw VaneError(
        .notFound,
        "mapping: feature_set '\(mapping.featureSet)' is not one of this build's (\(FeatureSet.all.map(\.id).joined(separator: ", ")))"
      )
    }
    guard let interval = CandleInterval(rawValue: mapping.interval),
      featureSet.intervals.contains(interval)
    else {
      throw invalid(
        "mapping",
        "interval '\(mapping.interval)' is not one feature set \(featureSet.id) is defined for (\(featureSet.intervals.map(\.rawValue).joined(separator: ", ")))"
      )
    }
    for symbol in mapping.symbols
    where !(1 ... 32).contains(symbol.count)
      || !symbol.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) })
    {
      throw invalid(
        "mapping",
        "symbols: '\(symbol.prefix(40))' is not a market symbol (upper-case letters and digits, e.g. BTCUSDT)"
      )
    }
    let format = Format.detect(data)
    let name = Self.safeName(
      mapping.name ?? URL(fileURLWithPath: fileName).deletingPathExtension().lastPathComponent,
      fallback: format.rawValue
    )
    let known = Set(featureSet.columnNames)
    var notes: [String] = []
    var files: [String: Data] = [:]
    let columns: [String]
    let kind: ModelKind
    let modelFile: String
    var provenance = [
      "importer": "vane import", "source_format": format.rawValue,
      "source_file": URL(fileURLWithPath: fileName).lastPathComponent,
    ]

    /// Every mapped column must be one of the feature set's.
    func checkKnown(_ wanted: [String]) throws {
      let unknown = wanted.filter { !known.contains($0) }
      guard unknown.isEmpty else {
        let hints = unknown.compactMap { column -> String? in
          let squashed = column.lowercased().filter { $0.isLetter || $0.isNumber }
          return featureSet.columnNames.first {
            $0.lowercased().filter { $0.isLetter || $0.isNumber } == squashed
          }.map { "\(column) → \($0)?" }
        }
        throw invalid(
          "mapping",
          "\(unknown.count) column(s) are not columns of feature set \(featureSet.id): \(unknown.prefix(20).joined(separator: ", "))"
            + (hints.isEmpty ? "" : " (did you mean \(hints.joined(separator: ", ")))")
            + "; `vane features --describe` lists them"
        )
      }
    }

    guard mapping.horizons.count == 1 || (format == .onnx && mapping.classes.count == 2) else {
      throw invalid(
        "mapping",
        "horizons: several horizons need an ONNX graph with one head (column) per horizon and two classes"
      )
    }
    switch format {
    case .lightgbm, .xgboost:
      let trees: TreeEnsemble
      var fileNames: [String]
      do {
        if format == .lightgbm {
          trees = try TreeEnsemble.lightgbm(text: data)
          fileNames = trees.featureNames
        } else {
          trees = try TreeEnsemble.xgboost(file: data)
          fileNames =
            (try? JSONDecoder().decode(XGBoostNames.self, from: data))?.learner.featureNames ?? []
        }
      } catch let error as VaneError {
        throw invalid("model", error.message)
      }
      guard trees.classCount > 0 else {
        throw invalid(
          "model",
          "objective '\(trees.objectiveName)' gives no class probabilities: import a classifier (binary, multiclass)"
        )
      }
      guard trees.classCount == mapping.classes.count else {
        throw invalid(
          "mapping",
          "classes: \(mapping.classes.count) classes, the model gives \(trees.classCount)"
        )
      }
      if let inputs = mapping.inputs, inputs.count != 1 {
        throw invalid(
          "mapping",
          "inputs: a tree model has one input; give its columns under columns"
        )
      }
      if fileNames.count != trees.featureCount { fileNames = [] }
      let mapped = mapping.columns ?? mapping.inputs?.first?.columns
      if let mapped {
        columns = mapped
        if !fileNames.isEmpty, fileNames != mapped, fileNames.allSatisfy(known.contains) {
          notes.append(
            "the file names its features \(fileNames.prefix(5).joined(separator: ", "))…; the mapping's columns are used"
          )
        }
      } else {
        guard !fileNames.isEmpty, fileNames.allSatisfy(known.contains) else {
          throw invalid(
            "mapping",
            "columns is required: the model reads \(trees.featureCount) features"
              + (fileNames.isEmpty
                ? " and its file does not name them"
                : " named \(fileNames.prefix(5).joined(separator: ", "))…, which are not feature-set columns")
          )
        }
        columns = fileNames
      }
      guard columns.count == trees.featureCount else {
        throw invalid(
          "mapping",
          "columns: \(columns.count) columns mapped; the model reads \(trees.featureCount) features"
        )
      }
      guard Set(columns).count == columns.count else {
        throw invalid("mapping", "columns: a column is listed twice")
      }
      try checkKnown(columns)
      kind = format == .lightgbm ? .lightgbm : .xgboost
      modelFile = "models/\(name)" + (format == .lightgbm ? ".txt" : ".json")
      files[modelFile] = data
      provenance["source_objective"] = trees.objectiveName
      provenance["source_trees"] = "\(trees.trees.count)"

    case .onnx:
      let graph: ONNXModel
      do {
        graph = try ONNXModel(data: data)
      } catch let error as VaneError {
        throw invalid("model", error.message)
      }
      let inputs = try Self.mapInputs(graph, mapping: mapping, known: known)
      try checkKnown(inputs.flatMap(\.columns))
      var union: [String] = []
      var seen: Set<String> = []
      for column in inputs.flatMap(\.columns) where seen.insert(column).inserted {
        union.append(column)
      }
      columns = union
      let output = try Self.chooseOutput(graph, mapping: mapping)
      modelFile = "models/\(name).import.json"
      guard mapping.horizons.count == 1 || mapping.transform != .softmax else {
        throw invalid(
          "mapping",
          "output_transform: softmax does not apply to one column per horizon (none or sigmoid)"
        )
      }
      let envelope = BundleONNXImport(
        model: "models/\(name).onnx",
        inputs: inputs,
        output: output,
        transform: mapping.transform,
        heads: mapping.horizons.count > 1 ? mapping.horizons : nil
      )
      files[envelope.model] = data
      files[modelFile] = try BundleJSON.encoder().encode(envelope)
      kind = .onnx
      if !graph.producer.isEmpty { provenance["source_producer"] = graph.producer }
    }

    // The scaler, restricted to the model's columns in its order.
    if let scalerData = extras.scaler {
      let scaler: FeatureScaler
      do { scaler = try FeatureScaler.decode(scalerData) } catch {
        throw invalid(
          "scaler",
          "not a scaler JSON ({method, columns, center, scale, fittedRows}): \(error)"
        )
      }
      guard let selected = scaler.selecting(columns) else {
        throw invalid(
          "scaler",
          "it has no entry for \(columns.filter { !scaler.columns.contains($0) }.prefix(20).joined(separator: ", "))"
        )
      }
      files["models/scaler.json"] = try selected.json()
    }

    var calibration: BundleManifest.CalibrationReference?
    if let calibrationData = extras.calibration {
      calibration = try Self.calibration(calibrationData, classCount: mapping.classes.count)
    }

    var outOfFold: BundleManifest.FileReference?
    if let oofData = extras.outOfFold {
      files["reports/oof.json"] = try Self.outOfFold(oofData, classes: mapping.classes, model: name)
      outOfFold = .init(file: "reports/oof.json")
      notes.append(
        "the out-of-fold file has no input statistics: gates on the scaled inputs (the default policy's input_mean, input_std) cannot be measured and fail; judge it with a policy without them"
      )
    } else {
      notes.append(
        "no out-of-fold predictions: the bundle can be served, but the gatekeeper cannot judge or bless it (give --oof)"
      )
    }

    let sha = SHA256.hash(data: data).hexString
    provenance["source_sha256"] = sha
    let stamp = ISO8601DateFormatter()
    stamp.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let day = String(stamp.string(from: now).prefix(10)).replacingOccurrences(of: "-", with: "")
    let id = mapping.id ?? "\(name)-\(day)-\(sha.prefix(8))"
    let manifest = BundleManifest(
      id: id,
      created: stamp.string(from: now),
      symbols: mapping.symbols,
      interval: mapping.interval,
      task: .init(
        kind: mapping.classes.count == 2
          ? "binary" : mapping.classes.count == 3 ? "three_class" : "multiclass",
        classes: mapping.classes,
        horizons: mapping.horizons
      ),
      featureSet: .init(id: featureSet.id, sha256: featureSet.sha256, columns: columns),
      models: [
        .init(name: name, kind: kind, file: modelFile, role: .single, horizons: mapping.horizons)
      ],
      calibration: calibration,
      outOfFold: outOfFold,
      // LightGBM's trees route NaN down each split's default branch, as lightgbm itself does.
      missingValues: (mapping.missing ?? (kind == .lightgbm ? .native : .exclude)).rawValue,
      provenance: provenance
    )
    do {
      try ServableModel.check(
        missingValues: mapping.missing ?? .exclude,
        manifest: manifest,
        field: "missing"
      )
    } catch let error as VaneError {
      throw invalid("mapping", "missing: \(error.message)")
    }
    return Prepared(manifest: manifest, files: files, format: format, notes: notes)
  }

  /// Writes the bundle (atomically) and proves it: opened from disk, loaded as the predictor
  /// loads it, and answering for a row of the scaler's centres (zeros without one).
  /// - Throws: INVALID_ARGUMENT when the model does not answer as the mapping says (its
  ///   output is not probabilities: a transform is missing); UNAVAILABLE when it cannot write.
  @discardableResult
  public static func write(
    _ prepared: Prepared,
    to path: String
  ) throws -> (manifest: BundleManifest, sha256: String) {
    let written = try ModelBundle.write(prepared.manifest, files: prepared.files, to: path)
    do {
      try Self.check(ModelBundle.open(path: path), mapping: prepared)
    } catch {
      try? FileManager.default.removeItem(atPath: path)
      throw error
    }
    return written
  }

  /// Loads the bundle and runs it once.
  static func check(_ bundle: ModelBundle, mapping prepared: Prepared) throws {
    let servable: ServableModel
    do { servable = try ServableModel(bundle: bundle) } catch let error as VaneError {
      throw invalid("model", error.message)
    }
    let (row, count) = servable.warmUpRows
    let answers: [[ServableModel.HorizonOutput]]
    do { answers = try servable.predict(row, count: count) } catch let error as VaneError {
      throw invalid("model", "it does not answer for a row of feature centres: \(error.message)")
    }
    for answer in answers.flatMap({ $0 }) {
      let total = answer.raw.reduce(0, +)
      guard answer.raw.allSatisfy({ $0 >= -1e-6 && $0 <= 1 + 1e-6 }), abs(total - 1) <= 1e-3 else {
        throw invalid(
          "mapping",
          "output_transform: the model's output for a row of feature centres is \(answer.raw), not probabilities"
            + " (logits? set output_transform: softmax, or sigmoid for one logit)"
        )
      }
    }
  }

  // MARK: Parts

  /// A name safe for bundle paths and ids.
  static func safeName(_ text: String, fallback: String) -> String {
    let cleaned = String(
      text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "-" }
        .prefix(64)
    )
    return cleaned.trimmingCharacters(in: CharacterSet(charactersIn: ".-")).isEmpty
      ? fallback : cleaned
  }

  /// The graph's inputs as feature columns: by the mapping's `inputs`, its `columns` for a
  /// one-input graph, or the inputs' own names for `[N, 1]` inputs named after columns.
  static func mapInputs(
    _ graph: ONNXModel,
    mapping: Mapping,
    known: Set<String>
  ) throws -> [BundleONNXImport.Input] {
    func shape(_ info: ONNXModel.ValueInfo) -> String {
      info.shape.map { "[" + $0.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]" }
        ?? "(any shape)"
    }
    let described = graph.inputs.map { "\($0.name) \(shape($0))" }.joined(separator: ", ")
    var wanted: [(name: String, columns: [String])]
    if let inputs = mapping.inputs {
      wanted = inputs
    } else if let columns = mapping.columns {
      guard graph.inputs.count == 1 else {
        throw invalid(
          "mapping",
          "the model has \(graph.inputs.count) inputs (\(described)): map each under inputs, not columns"
        )
      }
      wanted = [(graph.inputs[0].name, columns)]
    } else if graph.inputs.allSatisfy({ known.contains($0.name) && ($0.shape?.last ?? 1) == 1 }) {
      wanted = graph.inputs.map { ($0.name, [$0.name]) }
    } else {
      throw invalid(
        "mapping",
        "columns or inputs is required to map the model's inputs (\(described)) to feature columns"
      )
    }
    let names = Set(graph.inputs.map(\.name))
    let unmapped = graph.inputs.map(\.name).filter { name in !wanted.contains { $0.name == name } }
    let surplus = wanted.map(\.name).filter { !names.contains($0) }
    guard unmapped.isEmpty, surplus.isEmpty else {
      var problems: [String] = []
      if !unmapped.isEmpty {
        problems.append("the model's input(s) \(unmapped.joined(separator: ", ")) are not mapped")
      }
      if !surplus.isEmpty {
        problems.append("\(surplus.joined(separator: ", ")) are not inputs of the model")
      }
      throw invalid(
        "mapping",
        "inputs: \(problems.joined(separator: "; ")) (its inputs: \(described))"
      )
    }
    var bars: Int?
    return try wanted.map { name, columns in
      let info = graph.inputs.first { $0.name == name }!
      let field = "inputs.\(name)"
      guard let type = info.elementType, type == .float || type == .double else {
        throw invalid(
          "mapping",
          "\(field): the input is \(info.elementType?.description ?? "not a tensor"); only float32 and float64 inputs are fed from features"
        )
      }
      var inputBars = 1
      if let dims = info.shape {
        switch dims.count {
        case 2: break
        case 3:
          guard let steps = dims[1], steps >= 1 else {
            throw invalid(
              "mapping",
              "\(field): a sequence input \(shape(info)) needs a fixed number of bars in its second axis"
            )
          }
          inputBars = steps
        default:
          throw invalid(
            "mapping",
            "\(field): shape \(shape(info)) is neither [rows, columns] nor [rows, bars, columns]"
          )
        }
        if let width = dims.last!, width != columns.count {
          throw invalid(
            "mapping",
            "\(field): \(columns.count) column(s) mapped, the model's input \(name) is \(shape(info))"
          )
        }
      }
      guard bars == nil || bars == inputBars else {
        throw invalid("mapping", "\(field): its inputs read different numbers of bars")
      }
      bars = inputBars
      return BundleONNXImport.Input(
        name: name,
        columns: columns,
        dtype: type == .float ? "float32" : "float64",
        bars: inputBars
      )
    }
  }

  /// The output holding the class scores: the mapping's, or the one float output (a name like
  /// "probabilities" preferred when there are several).
  static func chooseOutput(_ graph: ONNXModel, mapping: Mapping) throws -> String {
    let names = graph.outputs.map(\.name)
    if let output = mapping.output {
      guard names.contains(output) else {
        throw invalid(
          "mapping",
          "output: '\(output)' is not an output of the model (\(names.joined(separator: ", ")))"
        )
      }
      return output
    }
    let floats = graph.outputs.filter {
      $0.elementType == .float || $0.elementType == .double || $0.elementType == nil
    }.map(\.name)
    for preferred in ["probabilities", "output_probability", "probability", "probs"]
    where floats.contains(preferred) { return preferred }
    guard floats.count == 1 else {
      throw invalid(
        "mapping",
        "output is required: the model has \(floats.isEmpty ? "no float output" : "several float outputs") (\(names.joined(separator: ", ")))"
      )
    }
    return floats[0]
  }

  /// `{"method": …, "parameters": {…}}` checked by fitting it to the classes.
  static func calibration(
    _ data: Data,
    classCount: Int
  ) throws -> BundleManifest.CalibrationReference {
    guard data.count <= 16 << 20,
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let method = object["method"] as? String
    else {
      throw invalid("calibration", "must be a JSON object {\"method\": …, \"parameters\": {…}}")
    }
    guard let known = CalibrationMethod(rawValue: method), known != .auto else {
      throw invalid(
        "calibration",
        "method '\(method)' is not one of none, temperature, platt, isotonic, vector"
      )
    }
    let parameters: String
    switch object["parameters"] {
    case let text as String: parameters = text
    case let value? where JSONSerialization.isValidJSONObject(value):
      parameters = String(
        decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]),
        as: UTF8.self
      )
    case nil: parameters = "{}"
    default: throw invalid("calibration", "parameters must be a JSON object")
    }
    do {
      _ = try Calibration(method: known, parametersJSON: parameters, classCount: classCount)
    } catch let error as VaneError {
      throw invalid("calibration", error.message)
    }
    return .init(method: method, parameters: parameters)
  }

  /// A predictions CSV as the bundle's out-of-fold file, its classes the mapping's.
  static func outOfFold(_ data: Data, classes: [String], model: String) throws -> Data {
    guard data.count <= 1 << 30 else {
      throw invalid("out_of_fold", "\(data.count) bytes; at most 1 GiB")
    }
    let csv: PredictionsCSV
    do {
      csv = try PredictionsCSV.parse(String(decoding: data, as: UTF8.self), name: "out_of_fold")
      try csv.checkProbabilities(name: "out_of_fold")
    } catch let error as VaneError {
      throw VaneError(.invalidArgument, error.message)
    }
    guard csv.classes == classes else {
      throw invalid(
        "out_of_fold",
        "its class columns \(csv.classes) are not the mapping's classes \(classes) in order"
      )
    }
    guard !csv.labels.isEmpty else { throw invalid("out_of_fold", "no rows") }
    let oof = OutOfFold(
      labels: csv.labels,
      foldIds: csv.foldIDs.isEmpty ? [Int](repeating: 0, count: csv.labels.count) : csv.foldIDs,
      final: model,
      models: [model: .init(values: csv.values, valuesAreLogits: false)]
    )
    return try BundleJSON.encoder().encode(oof)
  }

  /// The feature names an XGBoost JSON file may carry.
  struct XGBoostNames: Decodable {
    struct Learner: Decodable {
      var featureNames: [String]?
      enum CodingKeys: String, CodingKey { case featureNames = "feature_names" }
    }
    var learner: Learner
  }
}
