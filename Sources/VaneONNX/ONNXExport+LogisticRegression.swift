public import Foundation
public import VaneModels
internal import VaneCore

extension ONNXExport {
  /// Logistic regression as ONNX: `features` [N, F] double → (transform) → x·W + b →
  /// `probabilities` [N, K] double: softmax for K > 2; [1 − σ(z), σ(z)] for a binary model (one
  /// logit, the class-1 log-odds).
  ///
  /// - Parameters:
  ///   - transform: the input transform the graph applies first (nil: none).
  ///   - classNames: `classCount` names for the metadata (empty: none).
  ///   - metadata: further metadata_props (keys the exporter writes are refused).
  /// - Returns: the serialized ModelProto.
  /// - Throws: INVALID_ARGUMENT naming the field when the model's shapes, the transform, the names
  ///   or the metadata do not fit.
  public static func logisticRegression(
    _ model: LogisticRegression,
    transform: ONNXInputTransform? = nil,
    classNames: [String] = [],
    metadata: [String: String] = [:]
  ) throws -> Data {
    let d = model.featureCount, k = model.classCount
    guard d > 0, k >= 2 else {
      throw VaneError.invalidArgument(
        field: "model",
        "\(d) features and \(k) classes (need at least 1 and 2)"
      )
    }
    let outputs = k == 2 ? 1 : k
    try Self.expect(model.weights, count: d * outputs, field: "model.weights")
    try Self.expect(model.intercepts, count: outputs, field: "model.intercepts")
    try transform?.validate(columns: d)
    try Self.validate(names: classNames, count: k, field: "class_names")

    var builder = ONNXGraphBuilder(reserving: [Self.featuresInput, Self.probabilitiesOutput])
    var x = Self.featuresInput
    if let transform { x = transform.apply(to: x, columns: d, in: &builder) }
    let z = Self.dense(
      x,
      weights: model.weights,
      biases: model.intercepts,
      rows: d,
      columns: outputs,
      hint: "logit",
      in: &builder
    )
    if k == 2 {
      let p = builder.apply("Sigmoid", [z], hint: "p_class1")
      _ = Self.twoColumns(p, output: Self.probabilitiesOutput, in: &builder)
    } else {
      _ = builder.apply("Softmax", [z], [.int("axis", -1)], output: Self.probabilitiesOutput)
    }
    let graph = builder.graph(
      name: "vane_logistic_regression",
      inputs: [Self.matrix(Self.featuresInput, width: d)],
      outputs: [Self.matrix(Self.probabilitiesOutput, width: k)]
    )
    return try Self.model(
      kind: "logistic_regression",
      graph: graph,
      transform: transform,
      labels: ("vane.class_names", classNames),
      details: [("vane.feature_count", "\(d)"), ("vane.class_count", "\(k)")],
      metadata: metadata
    )
  }
}
