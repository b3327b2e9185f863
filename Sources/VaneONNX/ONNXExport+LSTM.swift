public import Foundation
public import VaneModels
internal import VaneCore

extension ONNXExport {
  /// An LSTM as ONNX: `sequences` [N, L, F] double (row-major by sample, then step, as
  /// `LSTM.probabilities` takes them) → (transform) → one ONNX LSTM node per stacked layer → the
  /// last step's top hidden state → per head σ(h · w + b) → `probabilities` [N, heads] double.
  ///
  /// ONNX Runtime's LSTM kernel runs in float only (and only sequence-major, layout 0), so the
  /// graph casts the (transformed) input to float, transposes it to [L, N, F], runs the layers in
  /// float, and casts the last hidden state back to double for the heads: the output matches the
  /// native one to float precision. The weights are reordered from Vane's gate order (input,
  /// forget, cell, output; `inputs × 4H`) to ONNX's (input, output, forget, cell; [1, 4H, inputs]),
  /// the biases go in ONNX's input-bias half with a zero recurrent-bias half.
  ///
  /// - Parameters:
  ///   - transform: the input transform the graph applies first, per feature column (nil: none).
  ///   - headNames: `heads` names for the metadata, e.g. the horizons (empty: none).
  ///   - metadata: further metadata_props (keys the exporter writes are refused).
  /// - Returns: the serialized ModelProto.
  /// - Throws: INVALID_ARGUMENT naming the field when the model's shapes, the transform, the names
  ///   or the metadata do not fit.
  public static func lstm(
    _ model: LSTM,
    transform: ONNXInputTransform? = nil,
    headNames: [String] = [],
    metadata: [String: String] = [:]
  ) throws -> Data {
    let d = model.inputCount, H = model.hiddenSize, L = model.sequenceLength, heads = model.heads
    guard d > 0, H > 0, L > 0, heads > 0, !model.layers.isEmpty else {
      throw VaneError.invalidArgument(
        field: "model",
        "\(d) inputs, hidden size \(H), \(L) steps, \(heads) heads, \(model.layers.count) layers (need at least 1 each)"
      )
    }
    for (l, layer) in model.layers.enumerated() {
      try Self.expect(
        layer.inputWeights,
        count: (l == 0 ? d : H) * 4 * H,
        field: "model.layers[\(l)].input_weights"
      )
      try Self.expect(
        layer.recurrentWeights,
        count: H * 4 * H,
        field: "model.layers[\(l)].recurrent_weights"
      )
      try Self.expect(layer.biases, count: 4 * H, field: "model.layers[\(l)].biases")
    }
    try Self.expect(model.headWeights, count: H * heads, field: "model.head_weights")
    try Self.expect(model.headBiases, count: heads, field: "model.head_biases")
    try transform?.validate(columns: d)
    try Self.validate(names: headNames, count: heads, field: "head_names")

    var builder = ONNXGraphBuilder(reserving: [Self.sequencesInput, Self.probabilitiesOutput])
    var x = Self.sequencesInput
    if let transform { x = transform.apply(to: x, columns: d, in: &builder) }
    let stepMajor = builder.apply("Transpose", [x], [.ints("perm", [1, 0, 2])], hint: "step_major")
    x = builder.apply(
      "Cast",
      [stepMajor],
      [.int("to", Int(ONNX.DataType.float.rawValue))],
      hint: "step_major_f32"
    )
    var last = ""
    for (l, layer) in model.layers.enumerated() {
      let inputs = l == 0 ? d : H
      let (w, r, b) = Self.onnxLSTMWeights(layer, inputs: inputs, hidden: H)
      let hint = "lstm\(l)"
      let wName = builder.floats("\(hint)_W", w, dims: [1, 4 * H, inputs])
      let rName = builder.floats("\(hint)_R", r, dims: [1, 4 * H, H])
      let bName = builder.floats("\(hint)_B", b, dims: [1, 8 * H])
      let attributes: [ONNX.Attribute] = [.int("hidden_size", H), .string("direction", "forward")]
      if l == model.layers.count - 1 {
        // Only Y_h [1, N, H]: the last step's hidden state.
        let hidden = builder.uniqueName("\(hint)_Y_h")
        builder.add(
          "LSTM",
          [x, wName, rName, bName],
          attributes,
          hint: hint,
          outputs: ["", hidden]
        )
        let directionAxis = builder.int64s("axis_0", [0], dims: [1])
        last = builder.apply("Squeeze", [hidden, directionAxis], hint: "\(hint)_last_hidden")
      } else {
        // Y [L, 1, N, H] → [L, N, H], the next layer's input.
        let sequence = builder.apply(
          "LSTM",
          [x, wName, rName, bName],
          attributes,
          hint: "\(hint)_Y"
        )
        let directionAxis = builder.int64s("axis_1", [1], dims: [1])
        x = builder.apply("Squeeze", [sequence, directionAxis], hint: "\(hint)_outputs")
      }
    }
    let h = builder.apply(
      "Cast",
      [last],
      [.int("to", Int(ONNX.DataType.double.rawValue))],
      hint: "last_hidden"
    )
    let z = Self.dense(
      h,
      weights: model.headWeights,
      biases: model.headBiases,
      rows: H,
      columns: heads,
      hint: "head",
      in: &builder
    )
    _ = builder.apply("Sigmoid", [z], output: Self.probabilitiesOutput)
    let input = ONNX.ValueInfo(
      name: Self.sequencesInput,
      elementType: .double,
      shape: [.parameter(Self.batchDimension), .value(L), .value(d)]
    )
    let graph = builder.graph(
      name: "vane_lstm",
      inputs: [input],
      outputs: [Self.matrix(Self.probabilitiesOutput, width: heads)]
    )
    return try Self.model(
      kind: "lstm",
      graph: graph,
      transform: transform,
      labels: ("vane.head_names", headNames),
      details: [
        ("vane.feature_count", "\(d)"), ("vane.sequence_length", "\(L)"),
        ("vane.hidden_size", "\(H)"),
        ("vane.layer_count", "\(model.layers.count)"), ("vane.heads", "\(heads)"),
      ],
      metadata: metadata
    )
  }

  /// One layer's weights in ONNX's layout, as floats: W [1, 4H, inputs], R [1, 4H, H] and
  /// B [1, 8H] (input biases, then zero recurrent biases), gates in ONNX's order i, o, f, c.
  static func onnxLSTMWeights(
    _ layer: LSTM.Layer,
    inputs: Int,
    hidden H: Int
  ) -> (w: [Float], r: [Float], b: [Float]) {
    // Vane's column block for each ONNX gate: i → 0, o → 3, f → 1, c → 2.
    let vaneGate = [0, 3, 1, 2]
    var w = [Float](repeating: 0, count: 4 * H * inputs)
    var r = [Float](repeating: 0, count: 4 * H * H)
    var b = [Float](repeating: 0, count: 8 * H)
    for gate in 0 ..< 4 {
      for j in 0 ..< H {
        let row = gate * H + j, column = vaneGate[gate] * H + j
        for k in 0 ..< inputs {
          w[row * inputs + k] = Float(layer.inputWeights[k * 4 * H + column])
        }
        for k in 0 ..< H { r[row * H + k] = Float(layer.recurrentWeights[k * 4 * H + column]) }
        b[row] = Float(layer.biases[column])
      }
    }
    return (w, r, b)
  }
}
