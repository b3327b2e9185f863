internal import Foundation
internal import VaneCore

/// ONNX export of Vane's fitted models: each entry point returns the bytes of an ONNX ModelProto
/// (IR version 8, opset 17, ai.onnx.ml 3, producer "vane") that ONNX Runtime runs to the native
/// model's probabilities.
///
/// Every graph has one input and one output, batch dimension "N":
///
/// | model | input | output |
/// |---|---|---|
/// | logistic regression, MLP, XGBoost | `features` [N, F] double | `probabilities` [N, K] double |
/// | LSTM | `sequences` [N, L, F] double | `probabilities` [N, heads] double, P(up) per head |
///
/// Binary classifiers output both columns, [P(class 0), P(class 1)]. With an
/// ``ONNXInputTransform`` the graph scales raw features itself. The model's metadata_props name
/// the kind (`vane.model_kind`), the Vane version, the input transform, and the class or head
/// names when given.
///
/// Where ONNX Runtime's CPU kernels have no double version, the graph computes in float inside
/// (XGBoost's trees, as XGBoost does; the LSTM layers; GELU's erf), so those outputs match the
/// native ones to float precision rather than bit for bit.
public enum ONNXExport {
  /// The input of the tabular models: [N, F] double.
  public static let featuresInput = "features"
  /// The LSTM's input: [N, L, F] double.
  public static let sequencesInput = "sequences"
  /// Every model's output: [N, K] (or [N, heads]) double.
  public static let probabilitiesOutput = "probabilities"
  /// The symbolic batch dimension.
  public static let batchDimension = "N"

  /// The metadata key of the model kind ("logistic_regression", "mlp", "lstm", "xgboost").
  public static let kindKey = "vane.model_kind"

  /// Serializes a finished graph with the common metadata.
  static func model(
    kind: String,
    graph: ONNX.Graph,
    transform: ONNXInputTransform?,
    labels: (key: String, names: [String]),
    details: [(key: String, value: String)],
    metadata: [String: String],
    usesML: Bool = false
  ) throws -> Data {
    var entries: [(key: String, value: String)] = [
      (Self.kindKey, kind), ("vane.version", BuildInfo.version),
      ("vane.input_transform", (transform ?? ONNXInputTransform()).summary),
    ]
    if !labels.names.isEmpty {
      let json = try JSONSerialization.data(
        withJSONObject: labels.names,
        options: [.withoutEscapingSlashes]
      )
      entries.append((labels.key, String(decoding: json, as: UTF8.self)))
    }
    entries += details
    let fixed = Set(entries.map(\.key))
    if let clash = metadata.keys.sorted().first(where: { fixed.contains($0) }) {
      throw VaneError.invalidArgument(field: "metadata[\(clash)]", "is written by the exporter")
    }
    entries += metadata.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
    var opsets = [ONNX.OperatorSet(domain: "", version: ONNX.opsetVersion)]
    if usesML {
      opsets.append(ONNX.OperatorSet(domain: ONNX.mlDomain, version: ONNX.mlOpsetVersion))
    }
    let model = ONNX.Model(
      opsets: opsets,
      producerName: "vane",
      producerVersion: BuildInfo.version,
      docString: "Vane \(kind) model",
      graph: graph,
      metadata: entries
    )
    return model.serialized()
  }

  /// Throws INVALID_ARGUMENT unless `names` is empty or has `count` entries.
  static func validate(names: [String], count: Int, field: String) throws {
    guard names.isEmpty || names.count == count else {
      throw VaneError.invalidArgument(field: field, "has \(names.count) names for \(count) outputs")
    }
  }

  /// Throws INVALID_ARGUMENT naming `field` unless `values` has `count` entries.
  static func expect(_ values: [Double], count: Int, field: String) throws {
    guard values.count == count else {
      throw VaneError.invalidArgument(field: field, "has \(values.count) values, expected \(count)")
    }
  }

  /// A [N, width] double tensor's value info.
  static func matrix(_ name: String, width: Int) -> ONNX.ValueInfo {
    ONNX.ValueInfo(
      name: name,
      elementType: .double,
      shape: [.parameter(Self.batchDimension), .value(width)]
    )
  }

  /// `x · W + b` in double, `W` `rows × columns` row-major.
  static func dense(
    _ x: String,
    weights: [Double],
    biases: [Double],
    rows: Int,
    columns: Int,
    hint: String,
    in builder: inout ONNXGraphBuilder
  ) -> String {
    let w = builder.doubles("\(hint)_weights", weights, dims: [rows, columns])
    let b = builder.doubles("\(hint)_biases", biases, dims: [columns])
    let product = builder.apply("MatMul", [x, w], hint: "\(hint)_matmul")
    return builder.apply("Add", [product, b], hint: "\(hint)_linear")
  }

  /// [1 − p, p] per row from a [N, 1] double tensor `p`, into `output`.
  static func twoColumns(_ p: String, output: String, in builder: inout ONNXGraphBuilder) -> String
  {
    let one = builder.doubles("one", [1], dims: [])
    let complement = builder.apply("Sub", [one, p], hint: "complement")
    return builder.apply("Concat", [complement, p], [.int("axis", 1)], output: output)
  }
}
