/// Builds an ``ONNX/Graph`` node by node: unique value names, initializers, nodes in topological
/// order (each node is added after the nodes whose outputs it reads).
struct ONNXGraphBuilder {
  private(set) var nodes: [ONNX.Node] = []
  private(set) var initializers: [ONNX.Tensor] = []
  private var names: Set<String> = []

  init(reserving reserved: [String] = []) {
    self.names = Set(reserved)
  }

  /// `hint` itself when unused, else `hint_1`, `hint_2`, …
  mutating func uniqueName(_ hint: String) -> String {
    if self.names.insert(hint).inserted { return hint }
    var suffix = 1
    while !self.names.insert("\(hint)_\(suffix)").inserted { suffix += 1 }
    return "\(hint)_\(suffix)"
  }

  // MARK: Initializers

  /// A double initializer; returns its name.
  mutating func doubles(_ hint: String, _ values: [Double], dims: [Int]) -> String {
    let name = self.uniqueName(hint)
    self.initializers.append(.doubles(name, values, dims: dims))
    return name
  }

  /// A float initializer; returns its name.
  mutating func floats(_ hint: String, _ values: [Float], dims: [Int]) -> String {
    let name = self.uniqueName(hint)
    self.initializers.append(.floats(name, values, dims: dims))
    return name
  }

  /// An int64 initializer; returns its name.
  mutating func int64s(_ hint: String, _ values: [Int64], dims: [Int]) -> String {
    let name = self.uniqueName(hint)
    self.initializers.append(.int64s(name, values, dims: dims))
    return name
  }

  // MARK: Nodes

  /// Adds a node with `outputCount` fresh outputs (named after `hint`, or `outputs` when given:
  /// names the caller reserved, such as the graph's output); returns the output names.
  @discardableResult
  mutating func add(
    _ opType: String,
    _ inputs: [String],
    _ attributes: [ONNX.Attribute] = [],
    domain: String = "",
    hint: String? = nil,
    outputCount: Int = 1,
    outputs: [String]? = nil
  ) -> [String] {
    let base = hint ?? opType.lowercased()
    let outputNames =
      outputs
      ?? (0 ..< outputCount).map { self.uniqueName(outputCount == 1 ? base : "\(base)_out\($0)") }
    let name = self.uniqueName("\(base)_node")
    self.nodes.append(
      ONNX.Node(
        inputs: inputs,
        outputs: outputNames,
        name: name,
        opType: opType,
        domain: domain,
        attributes: attributes
      )
    )
    return outputNames
  }

  /// Adds a one-output node; returns its output's name.
  mutating func apply(
    _ opType: String,
    _ inputs: [String],
    _ attributes: [ONNX.Attribute] = [],
    domain: String = "",
    hint: String? = nil,
    output: String? = nil
  ) -> String {
    self.add(opType, inputs, attributes, domain: domain, hint: hint, outputs: output.map { [$0] })[
      0
    ]
  }

  /// The finished graph.
  func graph(name: String, inputs: [ONNX.ValueInfo], outputs: [ONNX.ValueInfo]) -> ONNX.Graph {
    ONNX.Graph(
      name: name,
      nodes: self.nodes,
      initializers: self.initializers,
      inputs: inputs,
      outputs: outputs
    )
  }
}
