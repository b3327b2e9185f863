/// The operators the engine runs, by domain and op type. Each entry runs from its `since`
/// opset on; a kernel handles the attribute-versus-input changes between later opsets itself.
enum ONNXOperators {
  static let registry: [String: [String: ONNXOperator]] = {
    var standard: [String: ONNXOperator] = [:]
    for (name, op) in elementwise { standard[name] = op }
    for (name, op) in shapeOperators { standard[name] = op }
    for (name, op) in mathOperators { standard[name] = op }
    for (name, op) in reductions { standard[name] = op }
    for (name, op) in neuralOperators { standard[name] = op }
    for (name, op) in recurrentOperators { standard[name] = op }
    return ["": standard, "ai.onnx.ml": Dictionary(uniqueKeysWithValues: machineLearning)]
  }()

  static func lookup(domain: String, opType: String, opset: Int) -> ONNXOperator? {
    guard let op = registry[domain]?[opType], opset >= op.since else { return nil }
    return op
  }

  /// Every (domain, op type) the engine runs.
  static var supported: [(domain: String, opType: String)] {
    registry.flatMap { domain, ops in ops.keys.map { (domain, $0) } }.sorted {
      ($0.domain, $0.opType) < ($1.domain, $1.opType)
    }
  }
}
