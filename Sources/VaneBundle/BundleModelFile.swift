public import Foundation
internal import VaneCore

/// The kinds of model a bundle can hold (`bundle.json`'s `models[].kind`).
public enum ModelKind: String, Sendable, Codable, CaseIterable {
  case logisticRegression = "logistic_regression"
  case xgboost
  case mlp
  case lstm
  /// A stacking meta-learner over other models' outputs.
  case stack
  /// An imported ONNX graph: `file` is its ``BundleONNXImport`` envelope, which names the
  /// `.onnx` file and maps its inputs to the feature columns.
  case onnx
  /// An imported LightGBM text model (`file` is the text as LightGBM saved it).
  case lightgbm
}

/// How an imported ONNX model reads the bundle's features (`vane.onnx-import.v1`): each graph
/// input as feature columns by name, the output that holds the class probabilities and what
/// turns it into probabilities.
public struct BundleONNXImport: Codable, Sendable, Equatable {
  public static var format: String { "vane.onnx-import.v1" }

  /// One graph input: `[rows, columns.count]`, or `[rows, bars, columns.count]` for a sequence
  /// model (each row a window of consecutive bars, oldest first).
  public struct Input: Codable, Sendable, Equatable {
    public var name: String
    public var columns: [String]
    /// "float32" or "float64".
    public var dtype: String
    public var bars: Int

    public init(name: String, columns: [String], dtype: String, bars: Int) {
      self.name = name
      self.columns = columns
      self.dtype = dtype
      self.bars = bars
    }
  }

  /// What makes the output probabilities.
  public enum Transform: String, Codable, Sendable, CaseIterable {
    /// The output is probabilities already: `[rows, classes]`, or for two classes the
    /// positive class's `[rows]` / `[rows, 1]`.
    case none
    /// Logits: their softmax (`[rows, classes]`).
    case softmax
    /// One logit per row for two classes: its logistic is the positive class's probability.
    case sigmoid
  }

  public var format: String
  /// The `.onnx` file in the bundle.
  public var model: String
  public var inputs: [Input]
  public var output: String
  public var transform: Transform
  /// For a graph with one head per horizon (two classes): the horizon of each output column,
  /// which holds the positive class's probability (or, with `sigmoid`, its logit). Nil: the
  /// output is the class scores of the bundle's one horizon.
  public var heads: [Int]?

  public init(
    model: String,
    inputs: [Input],
    output: String,
    transform: Transform,
    heads: [Int]? = nil
  ) {
    self.format = Self.format
    self.model = model
    self.inputs = inputs
    self.output = output
    self.transform = transform
    self.heads = heads
  }
}

/// What a model does in its bundle (`models[].role`).
public enum ModelRole: String, Sendable, Codable, CaseIterable {
  /// The only model: it is what the bundle serves.
  case single
  /// One input of the stack.
  case base
  /// The stack over the bases: what the bundle serves.
  case meta
}

/// A model in Vane's JSON format (`vane.model.v1`): the envelope the trainer writes and the
/// predictor reads, around the fitted parameters as the model type encodes them.
///
/// `{"format": "vane.model.v1", "kind", "horizons", "classes", "columns", "scaler", "model": {…}}`
public struct BundleModelFile<Model: Codable & Sendable>: Codable, Sendable {
  public static var format: String { "vane.model.v1" }

  public var format: String
  public var kind: ModelKind
  /// The horizons it predicts: one, or every head of an LSTM.
  public var horizons: [Int]
  public var classes: [String]
  /// The feature columns it reads, in order.
  public var columns: [String]
  /// The bundle file of the feature scaler applied before it.
  public var scaler: String
  public var model: Model

  public init(
    kind: ModelKind,
    horizons: [Int],
    classes: [String],
    columns: [String],
    scaler: String = "models/scaler.json",
    model: Model
  ) {
    self.format = Self.format
    self.kind = kind
    self.horizons = horizons
    self.classes = classes
    self.columns = columns
    self.scaler = scaler
    self.model = model
  }
}

/// A stacking meta-learner (`vane.stack.v1`): it reads each base's logit (binary) or centred
/// log-probabilities, clipped to ±15, then the volatility column's raw value, standardised by
/// `scaler`, into `model`.
public struct BundleStackFile<Scaler: Codable & Sendable, Model: Codable & Sendable>: Codable,
  Sendable
{
  public static var format: String { "vane.stack.v1" }

  public struct Base: Codable, Sendable, Equatable {
    public var name: String
    public var file: String

    public init(name: String, file: String) {
      self.name = name
      self.file = file
    }
  }

  public var format: String
  public var bases: [Base]
  public var volatilityColumn: String?
  public var scaler: Scaler
  public var model: Model

  public init(bases: [Base], volatilityColumn: String?, scaler: Scaler, model: Model) {
    self.format = Self.format
    self.bases = bases
    self.volatilityColumn = volatilityColumn
    self.scaler = scaler
    self.model = model
  }

  enum CodingKeys: String, CodingKey {
    case format, bases
    case volatilityColumn = "volatility_column"
    case scaler, model
  }
}

/// Reading and writing the bundle's JSON files, one way for every file.
public enum BundleJSON {
  /// The encoder every bundle file is written with: sorted keys, non-finite numbers as strings.
  public static func encoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    return encoder
  }

  /// Decodes `T` from the bundle file `file`.
  /// - Throws: FAILED_PRECONDITION naming the file and the path in it that is wrong.
  public static func decode<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws -> T
  {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    do {
      return try decoder.decode(T.self, from: data)
    } catch {
      throw VaneError(
        .failedPrecondition,
        "\(file): \(BundleManifest.describe(error))",
        cause: error
      )
    }
  }

  /// Decodes a model file and checks its envelope: the format, and that kind, classes and
  /// columns are what the manifest says.
  public static func model<Model>(
    _ type: Model.Type,
    from data: Data,
    file: String,
    kind: ModelKind,
    classes: [String],
    columns: [String]
  ) throws -> BundleModelFile<Model> {
    let decoded = try Self.decode(BundleModelFile<Model>.self, from: data, file: file)
    guard decoded.format == BundleModelFile<Model>.format else {
      throw VaneError(
        .failedPrecondition,
        "\(file): format '\(decoded.format)' is not \(BundleModelFile<Model>.format)"
      )
    }
    guard decoded.kind == kind else {
      throw VaneError(
        .failedPrecondition,
        "\(file): kind \(decoded.kind.rawValue), bundle.json says \(kind.rawValue)"
      )
    }
    guard decoded.classes == classes else {
      throw VaneError(
        .failedPrecondition,
        "\(file): classes \(decoded.classes) are not the bundle's \(classes)"
      )
    }
    guard decoded.columns == columns else {
      throw VaneError(
        .failedPrecondition,
        "\(file): its \(decoded.columns.count) columns are not the feature set's \(columns.count) columns in order"
      )
    }
    return decoded
  }
}
