public import Foundation
public import VaneModels
internal import VaneCore

extension ONNXExport {
  /// The MLP's batch-normalisation epsilon (`MLP.epsilon`).
  static let mlpEpsilon = MLP.epsilon

  /// An MLP as ONNX: `features` [N, F] double → (transform) → per hidden layer x·W + b, batch
  /// normalisation with the running statistics, activation → output layer → logits / T →
  /// softmax → `probabilities` [N, K] double.
  ///
  /// Batch normalisation is written as the native code computes it, (z − mean) / √(var + ε) · γ + β
  /// (Sub, Div, Mul, Add), so it is exact in double. ReLU and tanh are ONNX's Relu and Tanh;
  /// GELU is 0.5 · x · (1 + erf(x / √2)) from Mul/Div/Add and Erf (Gelu itself is opset 20), the
  /// erf in float because ONNX Runtime's CPU Erf has no double kernel (the output stays within
  /// float precision of the native one).
  ///
  /// - Parameters:
  ///   - transform: the input transform the graph applies first (nil: none).
  ///   - classNames: `classCount` names for the metadata (empty: none).
  ///   - metadata: further metadata_props (keys the exporter writes are refused).
  /// - Returns: the serialized ModelProto.
  /// - Throws: INVALID_ARGUMENT naming the field when the model's shapes or temperature, the
  ///   transform, the names or the metadata do not fit.
  public static func mlp(
    _ model: MLP,
    transform: ONNXInputTransform? = nil,
    classNames: [String] = [],
    metadata: [String: String] = [:]
  ) throws -> Data {
    let d = model.inputCount, k = model.classCount
    guard d > 0, k >= 2 else {
      throw VaneError.invalidArgument(
        field: "model",
        "\(d) inputs and \(k) classes (need at least 1 and 2)"
      )
    }
    guard model.temperature.isFinite, model.temperature > 0 else {
      throw VaneError.invalidArgument(
        field: "model.temperature",
        "\(model.temperature) is not a positive finite number"
      )
    }
    var width = d
    for (l, layer) in model.hidden.enumerated() {
      let units = layer.biases.count
      guard units > 0 else {
        throw VaneError.invalidArgument(field: "model.hidden[\(l)].biases", "is empty")
      }
      try Self.expect(layer.weights, count: width * units, field: "model.hidden[\(l)].weights")
      try Self.expect(layer.gamma, count: units, field: "model.hidden[\(l)].gamma")
      try Self.expect(layer.beta, count: units, field: "model.hidden[\(l)].beta")
      try Self.expect(layer.runningMean, count: units, field: "model.hidden[\(l)].running_mean")
      try Self.expect(
        layer.runningVariance,
        count: units,
        field: "model.hidden[\(l)].running_variance"
      )
      if let bad = layer.runningVariance.firstIndex(where: { !($0 + Self.mlpEpsilon > 0) }) {
        throw VaneError.invalidArgument(
          field: "model.hidden[\(l)].running_variance[\(bad)]",
          "\(layer.runningVariance[bad]) + ε is not positive"
        )
      }
      width = units
    }
    try Self.expect(model.outputWeights, count: width * k, field: "model.output_weights")
    try Self.expect(model.outputBiases, count: k, field: "model.output_biases")
    try transform?.validate(columns: d)
    try Self.validate(names: classNames, count: k, field: "class_names")

    var builder = ONNXGraphBuilder(reserving: [Self.featuresInput, Self.probabilitiesOutput])
    var x = Self.featuresInput
    if let transform { x = transform.apply(to: x, columns: d, in: &builder) }
    width = d
    for (l, layer) in model.hidden.enumerated() {
      let units = layer.biases.count
      let hint = "hidden\(l)"
      let z = Self.dense(
        x,
        weights: layer.weights,
        biases: layer.biases,
        rows: width,
        columns: units,
        hint: hint,
        in: &builder
      )
      let mean = builder.doubles("\(hint)_running_mean", layer.runningMean, dims: [units])
      let deviation = builder.doubles(
        "\(hint)_running_sd",
        layer.runningVariance.map { ($0 + Self.mlpEpsilon).squareRoot() },
        dims: [units]
      )
      let gamma = builder.doubles("\(hint)_gamma", layer.gamma, dims: [units])
      let beta = builder.doubles("\(hint)_beta", layer.beta, dims: [units])
      let centered = builder.apply("Sub", [z, mean], hint: "\(hint)_centered")
      let normal = builder.apply("Div", [centered, deviation], hint: "\(hint)_normal")
      let scaled = builder.apply("Mul", [normal, gamma], hint: "\(hint)_scaled")
      let shifted = builder.apply("Add", [scaled, beta], hint: "\(hint)_batch_norm")
      x = Self.activation(model.activation, shifted, hint: hint, in: &builder)
      width = units
    }
    let logits = Self.dense(
      x,
      weights: model.outputWeights,
      biases: model.outputBiases,
      rows: width,
      columns: k,
      hint: "output",
      in: &builder
    )
    let temperature = builder.doubles("temperature", [model.temperature], dims: [])
    let tempered = builder.apply("Div", [logits, temperature], hint: "tempered_logits")
    _ = builder.apply("Softmax", [tempered], [.int("axis", -1)], output: Self.probabilitiesOutput)
    let graph = builder.graph(
      name: "vane_mlp",
      inputs: [Self.matrix(Self.featuresInput, width: d)],
      outputs: [Self.matrix(Self.probabilitiesOutput, width: k)]
    )
    return try Self.model(
      kind: "mlp",
      graph: graph,
      transform: transform,
      labels: ("vane.class_names", classNames),
      details: [
        ("vane.feature_count", "\(d)"), ("vane.class_count", "\(k)"),
        ("vane.activation", model.activation.rawValue),
        ("vane.temperature", "\(model.temperature)"),
      ],
      metadata: metadata
    )
  }

  /// The activation's nodes after `x` (double).
  static func activation(
    _ activation: MLP.Activation,
    _ x: String,
    hint: String,
    in builder: inout ONNXGraphBuilder
  ) -> String {
    switch activation {
    case .relu:
      return builder.apply("Relu", [x], hint: "\(hint)_relu")
    case .tanh:
      return builder.apply("Tanh", [x], hint: "\(hint)_tanh")
    case .gelu:
      // 0.5 · x · (1 + erf(x / √2)), in the native code's order.
      let half = builder.doubles("half", [0.5], dims: [])
      let one = builder.doubles("one", [1], dims: [])
      let root2 = builder.doubles("sqrt2", [Double(2).squareRoot()], dims: [])
      let halfX = builder.apply("Mul", [half, x], hint: "\(hint)_half_x")
      let u = builder.apply("Div", [x, root2], hint: "\(hint)_erf_argument")
      let u32 = builder.apply(
        "Cast",
        [u],
        [.int("to", Int(ONNX.DataType.float.rawValue))],
        hint: "\(hint)_erf_argument_f32"
      )
      let erf32 = builder.apply("Erf", [u32], hint: "\(hint)_erf_f32")
      let erf = builder.apply(
        "Cast",
        [erf32],
        [.int("to", Int(ONNX.DataType.double.rawValue))],
        hint: "\(hint)_erf"
      )
      let onePlus = builder.apply("Add", [one, erf], hint: "\(hint)_one_plus_erf")
      return builder.apply("Mul", [halfX, onePlus], hint: "\(hint)_gelu")
    }
  }
}
