internal import Foundation
public import VaneBundle
internal import VaneCore
public import VaneFeatures
internal import VaneQuality
internal import Yams

extension ModelImport {
  /// The mapping document of `vane import --features` and ImportModel: what the model predicts
  /// and how its inputs read a feature set's columns. YAML (or JSON):
  ///
  ///     symbols: [BTCUSDT]          # the markets it is for
  ///     interval: 1h
  ///     classes: [DOWN, UP]         # in the order of the model's outputs
  ///     horizon: 1                  # label horizon in bars; or horizons: [1, 4, 12] for an
  ///                                 # ONNX graph with one up-probability (or logit) per horizon
  ///     feature_set: v1             # default v1
  ///     name: lgbm-btc              # the model's name in the bundle (default: from the file)
  ///     id: lgbm-btc-2026-12        # the bundle id (default: name, date and hash)
  ///     # One input (a tree model, or an ONNX graph with one input): its columns in order.
  ///     # Leave out for a LightGBM file whose feature names are feature-set columns.
  ///     columns: [rsi_14, natr_14, macd_hist_norm]
  ///     # Or per ONNX input (e.g. one [N, 1] input per column from skl2onnx):
  ///     inputs:
  ///       float_input: [rsi_14, natr_14, macd_hist_norm]
  ///     output: probabilities       # ONNX: which output (default: the one float output of
  ///                                 # shape [N, classes], "probabilities" preferred)
  ///     output_transform: none      # none (probabilities), softmax or sigmoid (logits)
  ///     missing: native             # inputs with missing values: exclude (refused), native (NaN
  ///                                 # to the model) or impute (the scaler's centers; needs
  ///                                 # --scaler). Default: native for a LightGBM model, whose
  ///                                 # trees route NaN, exclude for an ONNX graph.
  public struct Mapping: Sendable, Equatable {
    public var symbols: [String]
    public var interval: String
    public var classes: [String]
    /// One label horizon in bars, or (a multi-head ONNX graph, two classes) one per output column.
    public var horizons: [Int]
    public var featureSet: String
    public var name: String?
    public var id: String?
    /// Columns of the model's single input.
    public var columns: [String]?
    /// Columns per named ONNX input, in the document's order.
    public var inputs: [(name: String, columns: [String])]?
    public var output: String?
    public var transform: BundleONNXImport.Transform
    /// What the imported version does with inputs with missing values (nil: by format).
    public var missing: MissingValues?

    public static func == (a: Mapping, b: Mapping) -> Bool {
      a.symbols == b.symbols && a.interval == b.interval && a.classes == b.classes
        && a.horizons == b.horizons && a.featureSet == b.featureSet
        && a.name == b.name && a.id == b.id && a.columns == b.columns && a.output == b.output
        && a.transform == b.transform && a.missing == b.missing
        && a.inputs?.map(\.name) == b.inputs?.map(\.name)
        && a.inputs?.map(\.columns) == b.inputs?.map(\.columns)
    }

    /// Most columns a mapping may name (its size and nesting are bounded by ``YAMLReader``).
    public static let maximumColumns = 10_000

    static let keys = [
      "symbols", "interval", "classes", "horizon", "horizons", "feature_set", "name", "id",
      "columns", "inputs", "output", "output_transform", "missing",
    ]

    /// Parses a mapping document.
    /// - Throws: INVALID_ARGUMENT naming the source, line:column and key.
    public static func parse(_ text: String, source: String) throws -> Mapping {
      let reader = YAMLReader(source: source)
      guard let root = try reader.compose(text) else {
        throw VaneError(.invalidArgument, "\(source): the mapping is empty")
      }
      let fields = try reader.fields(root, at: "", known: Self.keys)
      func required(_ key: String) throws -> Node {
        guard let node = fields[key] else {
          throw VaneError(
            .invalidArgument,
            "\(source): \(key) is required (\(Self.keys.prefix(4).joined(separator: ", ")) are)"
          )
        }
        return node
      }
      func strings(_ node: Node, key: String, limit: Int = Self.maximumColumns) throws -> [String] {
        guard let items = node.sequence, !items.isEmpty else {
          throw reader.error(node, key, "must be a non-empty list")
        }
        guard items.count <= limit else {
          throw reader.error(node, key, "has \(items.count) entries; at most \(limit)")
        }
        return try items.enumerated().map { try reader.string($1, key: "\(key)[\($0)]") }
      }
      let symbols = try strings(try required("symbols"), key: "symbols", limit: 64)
      let interval = try reader.string(try required("interval"), key: "interval")
      let classesNode = try required("classes")
      let classes = try strings(classesNode, key: "classes", limit: 16)
      guard classes.count >= 2, Set(classes).count == classes.count else {
        throw reader.error(classesNode, "classes", "need two or more distinct classes")
      }
      func horizon(_ node: Node, key: String) throws -> Int {
        let value = try reader.number(node, key: key)
        guard value >= 1, value <= 10_000, value.rounded() == value else {
          throw reader.error(node, key, "must be a whole number of bars, 1 or more")
        }
        return Int(value)
      }
      let horizons: [Int]
      switch (fields["horizon"], fields["horizons"]) {
      case (let node?, nil):
        horizons = [try horizon(node, key: "horizon")]
      case (nil, let node?):
        guard let items = node.sequence, !items.isEmpty, items.count <= 64 else {
          throw reader.error(node, "horizons", "must be a list of 1 to 64 horizons")
        }
        horizons = try items.enumerated().map { try horizon($1, key: "horizons[\($0)]") }
        guard Set(horizons).count == horizons.count else {
          throw reader.error(node, "horizons", "lists a horizon twice")
        }
      case (let node?, _?):
        throw reader.error(node, "horizon", "give horizon or horizons, not both")
      case (nil, nil):
        throw VaneError(
          .invalidArgument,
          "\(source): horizon is required (or horizons, one per output column)"
        )
      }
      var mapping = Mapping(
        symbols: symbols,
        interval: interval,
        classes: classes,
        horizons: horizons,
        featureSet: try fields["feature_set"].map { try reader.string($0, key: "feature_set") }
          ?? "v1",
        name: try fields["name"].map { try reader.string($0, key: "name") },
        id: try fields["id"].map { try reader.string($0, key: "id") },
        columns: try fields["columns"].map { try strings($0, key: "columns") },
        inputs: nil,
        output: try fields["output"].map { try reader.string($0, key: "output") },
        transform: .none,
        missing: nil
      )
      if let node = fields["inputs"] {
        guard mapping.columns == nil else {
          throw reader.error(node, "inputs", "give columns or inputs, not both")
        }
        guard let entries = node.mapping, !entries.isEmpty else {
          throw reader.error(node, "inputs", "must map each model input to its list of columns")
        }
        mapping.inputs = try entries.map { key, value in
          let name = try reader.key(key)
          // A single column may be written bare (`rsi_14: rsi_14` for a [N, 1] input).
          if let scalar = value.scalar {
            return (name, [try reader.string(Node.scalar(scalar), key: "inputs.\(name)")])
          }
          return (name, try strings(value, key: "inputs.\(name)"))
        }
        guard mapping.inputs!.reduce(0, { $0 + $1.columns.count }) <= Self.maximumColumns else {
          throw reader.error(node, "inputs", "names more than \(Self.maximumColumns) columns")
        }
      }
      if let node = fields["output_transform"] {
        let text = try reader.string(node, key: "output_transform")
        guard let transform = BundleONNXImport.Transform(rawValue: text) else {
          throw reader.error(
            node,
            "output_transform",
            "'\(text)' is not one of \(BundleONNXImport.Transform.allCases.map(\.rawValue).joined(separator: ", "))"
          )
        }
        mapping.transform = transform
      }
      if let node = fields["missing"] {
        let text = try reader.string(node, key: "missing")
        guard let choice = MissingValues(rawValue: text) else {
          throw reader.error(
            node,
            "missing",
            "'\(text.prefix(32))' is not one of \(MissingValues.allCases.map(\.rawValue).joined(separator: ", "))"
          )
        }
        mapping.missing = choice
      }
      return mapping
    }
  }
}
