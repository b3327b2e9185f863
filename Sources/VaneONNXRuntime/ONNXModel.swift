public import Foundation
internal import SwiftProtobuf
internal import VaneCore

/// An ONNX model read, checked and planned once, then run any number of times: Vane's own ONNX
/// engine (Debian packages no ONNX Runtime library).
///
/// Loading decodes the ModelProto within ``ONNXModelLimits``, checks that every node's op is
/// one the engine runs at the model's opset, that every input a node names is produced before
/// it (a cycle or an undefined name is refused naming the node), orders the nodes, and folds
/// nodes whose inputs are all constants. Every error is a ``VaneError``: INVALID_ARGUMENT for
/// a broken model or input, with "unsupported: " in the message when the model is valid but uses
/// what the engine does not run.
public final class ONNXModel: Sendable {
  /// A graph input or output as declared: name, element type and shape (nil dims are symbolic).
  public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var elementType: ONNXTensor.ElementType?
    public var shape: [Int?]?
  }

  public let irVersion: Int
  public let producer: String
  /// Domain ("" for ai.onnx) → version.
  public let opsets: [String: Int]
  /// The inputs a caller must or may give (not those with an initializer that a caller may
  /// override but need not).
  public let inputs: [ValueInfo]
  public let outputs: [ValueInfo]
  /// Op type → how many nodes use it, as stored (before folding).
  public let operatorCounts: [String: Int]
  public let limits: ONNXModelLimits

  struct Step: Sendable {
    var name: String
    var opType: String
    var domain: String
    var opset: Int
    var attributes: [String: Onnx_AttributeProto]
    var inputs: [Int?]
    var outputs: [Int?]
    var kernel: ONNXKernel
    var foldable: Bool
    var prepared: (any Sendable)?
    var prepare: (@Sendable (ONNXNodeContext) throws -> (any Sendable)?)?
    var unary: (@Sendable (ONNXNodeContext) -> GenericUnary.Kind)?
  }

  /// The steps a run executes, by name, after folding and fusion (a fused step is named after
  /// the nodes it merges, "Gemm_0+Relu_1").
  var plannedSteps: [String] { self.steps.map { $0.name } }

  /// Value slots: constants filled at load, inputs and intermediates per run. Every slot as a
  /// run starts: the constants in place, the rest nil (copied per run, where
  /// walking a dictionary of constants cost a small model's run more than some of its nodes).
  private let initialValues: [ONNXTensor?]
  private let inputSlots: [String: Int]
  private let outputSlots: [Int]
  private let steps: [Step]
  /// For each step, the slots whose last reader it is (freed after it runs).
  private let releases: [[Int]]

  /// Reads the model in `url` (external tensor data beside it is read too).
  public convenience init(contentsOf url: URL, limits: ONNXModelLimits = .default) throws {
    let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
    if let size = attributes?[.size] as? Int, size > limits.maximumModelBytes {
      throw VaneError(
        .invalidArgument,
        "\(url.lastPathComponent): \(size) bytes is over the model size limit of \(limits.maximumModelBytes)"
      )
    }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw VaneError(
        .invalidArgument,
        "\(url.lastPathComponent): cannot be read: \(error.localizedDescription)"
      )
    }
    try self.init(data: data, directory: url.deletingLastPathComponent().path, limits: limits)
  }

  /// Reads a serialized ModelProto. `directory`: where external tensor data may be read from
  /// (nil: none may be).
  public init(data: Data, directory: String? = nil, limits: ONNXModelLimits = .default) throws {
    guard data.count <= limits.maximumModelBytes else {
      throw VaneError(
        .invalidArgument,
        "the model is \(data.count) bytes, over the limit of \(limits.maximumModelBytes)"
      )
    }
    let model: Onnx_ModelProto
    do {
      var options = BinaryDecodingOptions()
      options.messageDepthLimit = 64
      model = try Onnx_ModelProto(serializedBytes: data, options: options)
    } catch {
      throw VaneError(
        .invalidArgument,
        "the file is not an ONNX ModelProto (\(error)); truncated or another format?"
      )
    }
    guard model.hasGraph else { throw VaneError(.invalidArgument, "the model has no graph") }
    let graph = model.graph
    guard graph.node.count <= limits.maximumNodes else {
      throw VaneError(
        .invalidArgument,
        "the graph has \(graph.node.count) nodes, over the limit of \(limits.maximumNodes)"
      )
    }
    self.limits = limits
    self.irVersion = Int(model.irVersion)
    self.producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(
      separator: " "
    )
    var opsets: [String: Int] = [:]
    for entry in model.opsetImport {
      opsets[entry.domain == "ai.onnx" ? "" : entry.domain] = Int(entry.version)
    }
    if opsets.isEmpty { opsets[""] = 1 }
    self.opsets = opsets
    self.operatorCounts = graph.node.reduce(into: [:]) { $0[$1.opType, default: 0] += 1 }

    // Slots: every name gets one.
    var slots: [String: Int] = [:]
    func slot(_ name: String) -> Int {
      if let index = slots[name] { return index }
      slots[name] = slots.count
      return slots.count - 1
    }
    var constants: [Int: ONNXTensor] = [:]
    for initializer in graph.initializer {
      do {
        constants[slot(initializer.name)] = try ONNXTensor(
          proto: initializer,
          limits: limits,
          directory: directory
        )
      } catch let error as ONNXRuntimeError {
        throw Self.loadError(error, where: "initializer '\(initializer.name)'")
      }
    }
    guard graph.sparseInitializer.isEmpty else {
      throw VaneError(.invalidArgument, "\(VaneError.onnxUnsupportedPrefix)sparse initializers")
    }
    var inputSlots: [String: Int] = [:]
    var declaredInputs: [ValueInfo] = []
    for input in graph.input {
      guard !input.name.isEmpty else {
        throw VaneError(.invalidArgument, "a graph input has no name")
      }
      inputSlots[input.name] = slot(input.name)
      if constants[slots[input.name]!] == nil { declaredInputs.append(try Self.valueInfo(input)) }
    }
    self.inputs = declaredInputs
    // Outputs may be sequences of maps (ZipMap's): they come back as the tensor ZipMap was given.
    self.outputs = try graph.output.map { try Self.valueInfo($0, allowNonTensor: true) }
    self.inputSlots = inputSlots

    // Order the nodes: a node runs once every input it names is produced (Kahn's algorithm).
    var producer: [String: Int] = [:]
    for (index, node) in graph.node.enumerated() {
      for output in node.output where !output.isEmpty {
        if producer[output] != nil || inputSlots[output] != nil
          || constants[slots[output] ?? -1] != nil
        {
          throw VaneError(
            .invalidArgument,
            "node '\(Self.nodeName(node, index))' (\(node.opType)) writes '\(output)', which is already defined"
          )
        }
        producer[output] = index
      }
    }
    var waiting = [Int](repeating: 0, count: graph.node.count)
    var readers: [Int: [Int]] = [:]
    for (index, node) in graph.node.enumerated() {
      for input in node.input where !input.isEmpty {
        if let from = producer[input] {
          waiting[index] += 1
          readers[from, default: []].append(index)
        } else if inputSlots[input] == nil && constants[slots[input] ?? -1] == nil {
          throw VaneError(
            .invalidArgument,
            "node '\(Self.nodeName(node, index))' (\(node.opType)) reads '\(input)', which no node, input or initializer defines"
          )
        }
      }
    }
    var ready = (0 ..< graph.node.count).filter { waiting[$0] == 0 }
    var order: [Int] = []
    while let next = ready.first {
      ready.removeFirst()
      order.append(next)
      for reader in readers[next] ?? [] {
        waiting[reader] -= 1
        if waiting[reader] == 0 { ready.append(reader) }
      }
    }
    guard order.count == graph.node.count else {
      let stuck = (0 ..< graph.node.count).filter { waiting[$0] > 0 }.prefix(5).map {
        "'\(Self.nodeName(graph.node[$0], $0))' (\(graph.node[$0].opType))"
      }
      throw VaneError(
        .invalidArgument,
        "the graph has a cycle: nodes \(stuck.joined(separator: ", ")) wait on each other"
      )
    }

    // Each node's operator, at the model's opset for its domain.
    var steps: [Step] = []
    for index in order {
      let node = graph.node[index]
      let domain = node.domain == "ai.onnx" ? "" : node.domain
      let name = Self.nodeName(node, index)
      guard let version = opsets[domain] else {
        throw VaneError(
          .invalidArgument,
          "node '\(name)' (\(node.opType)) is in domain '\(domain)', which the model does not import"
        )
      }
      guard let op = ONNXOperators.lookup(domain: domain, opType: node.opType, opset: version)
      else {
        let what = domain.isEmpty ? node.opType : "\(domain).\(node.opType)"
        throw VaneError(
          .invalidArgument,
          "\(VaneError.onnxUnsupportedPrefix)op \(what) (opset \(version)) of node '\(name)'"
        )
      }
      var attributes: [String: Onnx_AttributeProto] = [:]
      for attribute in node.attribute {
        guard attribute.refAttrName.isEmpty else {
          throw VaneError(
            .invalidArgument,
            "\(VaneError.onnxUnsupportedPrefix)attribute references (node '\(name)')"
          )
        }
        if attribute.hasG || !attribute.graphs.isEmpty {
          throw VaneError(
            .invalidArgument,
            "\(VaneError.onnxUnsupportedPrefix)subgraph attribute '\(attribute.name)' of node '\(name)' (\(node.opType))"
          )
        }
        attributes[attribute.name] = attribute
      }
      steps.append(
        Step(
          name: name,
          opType: node.opType,
          domain: domain,
          opset: version,
          attributes: attributes,
          inputs: node.input.map { $0.isEmpty ? nil : slot($0) },
          outputs: node.output.map { $0.isEmpty ? nil : slot($0) },
          kernel: op.kernel,
          foldable: op.foldable,
          prepared: nil,
          prepare: op.prepare,
          unary: op.unary
        )
      )
    }
    for output in graph.output {
      guard
        producer[output.name] != nil || inputSlots[output.name] != nil
          || constants[slots[output.name] ?? -1] != nil
      else {
        throw VaneError(
          .invalidArgument,
          "graph output '\(output.name)' is not produced by any node"
        )
      }
    }
    let outputSlots = graph.output.map { slot($0.name) }

    // Constant folding: a step whose inputs are all constants (and not overridable graph inputs)
    // runs now, once.
    var remaining: [Step] = []
    for step in steps {
      let foldable =
        step.foldable
        && step.inputs.allSatisfy {
          $0.map { constants[$0] != nil && !inputSlots.values.contains($0) } ?? true
        }
      if foldable {
        let results = try Self.execute(
          step,
          inputs: step.inputs.map { $0.flatMap { constants[$0] } },
          limits: limits
        )
        for (slotIndex, tensor) in zip(step.outputs, results) {
          if let slotIndex { constants[slotIndex] = tensor }
        }
      } else {
        remaining.append(step)
      }
    }
    // Each remaining step's load-time work.
    let overridable = Set(inputSlots.values)
    for index in remaining.indices {
      try Self.prepare(&remaining[index], constants: constants, overridable: overridable, limits)
    }
    // Identity nodes dropped, and nodes merged into the Gemm before them (batch norm into its
    // weights, an activation into its result), as ONNX Runtime's graph optimizer does.
    var fusion = Fusion(
      steps: remaining,
      constants: constants,
      slotCount: slots.count,
      overridable: overridable,
      outputSlots: outputSlots,
      limits: limits
    )
    try fusion.run()
    remaining = fusion.steps
    constants = fusion.constants
    self.steps = remaining
    var initialValues = [ONNXTensor?](repeating: nil, count: fusion.slotCount)
    for (slotIndex, tensor) in constants { initialValues[slotIndex] = tensor }
    self.initialValues = initialValues
    self.outputSlots = fusion.outputSlots

    // Last readers, so intermediates are released as soon as nothing needs them.
    var lastReader: [Int: Int] = [:]
    for (index, step) in remaining.enumerated() {
      for input in step.inputs.compactMap({ $0 }) { lastReader[input] = index }
    }
    var releases = [[Int]](repeating: [], count: remaining.count)
    let kept = Set(self.outputSlots)
    for (slotIndex, index) in lastReader
    where !kept.contains(slotIndex) && constants[slotIndex] == nil {
      releases[index].append(slotIndex)
    }
    self.releases = releases
  }

  /// Runs the model on `inputs` (by name); returns every graph output by name.
  /// - Throws: INVALID_ARGUMENT naming the input (unknown, missing, wrong type or shape) or the
  ///   node whose operator refused its inputs.
  public func run(_ inputs: [String: ONNXTensor]) throws -> [String: ONNXTensor] {
    var values = self.initialValues
    for (name, tensor) in inputs {
      guard let slotIndex = self.inputSlots[name] else {
        throw VaneError(
          .invalidArgument,
          "input '\(name)': the model has no such input (it has \(self.inputs.map(\.name).joined(separator: ", ")))"
        )
      }
      try Self.check(
        tensor,
        against: self.inputs.first { $0.name == name }
          ?? ValueInfo(name: name, elementType: nil, shape: nil)
      )
      values[slotIndex] = tensor
    }
    for input in self.inputs where inputs[input.name] == nil {
      throw VaneError(.invalidArgument, "input '\(input.name)' is missing")
    }
    for (index, step) in self.steps.enumerated() {
      let results = try Self.execute(
        step,
        inputs: step.inputs.map { $0.flatMap { values[$0] } },
        limits: self.limits
      )
      for (slotIndex, tensor) in zip(step.outputs, results) {
        if let slotIndex { values[slotIndex] = tensor }
      }
      for slotIndex in self.releases[index] { values[slotIndex] = nil }
    }
    var outputs: [String: ONNXTensor] = [:]
    for (info, slotIndex) in zip(self.outputs, self.outputSlots) {
      guard let tensor = values[slotIndex] else {
        throw VaneError(.internalError, "output '\(info.name)' was not computed")
      }
      outputs[info.name] = tensor
    }
    return outputs
  }

  /// A step's load-time work (its operator's `prepare`) from the inputs known now: initializers
  /// and what folding computed (a caller cannot override them); the others are nil.
  static func prepare(
    _ step: inout Step,
    constants: [Int: ONNXTensor],
    overridable: Set<Int>,
    _ limits: ONNXModelLimits
  ) throws {
    guard let prepare = step.prepare else { return }
    let context = Self.loadContext(step, constants: constants, overridable: overridable, limits)
    do {
      step.prepared = try prepare(context)
    } catch let error as ONNXRuntimeError {
      throw Self.loadError(error, where: "node '\(step.name)' (\(step.opType))")
    }
  }

  /// A step's context at load time: the constant inputs known, the others nil.
  static func loadContext(
    _ step: Step,
    constants: [Int: ONNXTensor],
    overridable: Set<Int>,
    _ limits: ONNXModelLimits
  ) -> ONNXNodeContext {
    ONNXNodeContext(
      name: step.name,
      opType: step.opType,
      opset: step.opset,
      attributes: step.attributes,
      inputs: step.inputs.map { slot in
        slot.flatMap { overridable.contains($0) ? nil : constants[$0] }
      },
      outputCount: step.outputs.count,
      limits: limits
    )
  }

  private static func execute(
    _ step: Step,
    inputs: [ONNXTensor?],
    limits: ONNXModelLimits
  ) throws -> [ONNXTensor] {
    let context = ONNXNodeContext(
      name: step.name,
      opType: step.opType,
      opset: step.opset,
      attributes: step.attributes,
      inputs: inputs,
      outputCount: step.outputs.count,
      limits: limits,
      prepared: step.prepared
    )
    do {
      let results = try step.kernel(context)
      for tensor in results where tensor.count > limits.maximumTensorElements {
        throw ONNXRuntimeError.invalid(
          "an output of \(tensor.count) elements is over the limit of \(limits.maximumTensorElements)"
        )
      }
      return results
    } catch let error as ONNXRuntimeError {
      throw Self.loadError(error, where: "node '\(step.name)' (\(step.opType))")
    }
  }

  static func loadError(_ error: ONNXRuntimeError, where place: String) -> VaneError {
    switch error {
    case .invalid(let message): VaneError(.invalidArgument, "\(place): \(message)")
    case .unsupported(let message):
      VaneError(.invalidArgument, "\(place): \(VaneError.onnxUnsupportedPrefix)\(message)")
    }
  }

  private static func check(_ tensor: ONNXTensor, against info: ValueInfo) throws {
    if let type = info.elementType, type != tensor.elementType {
      throw VaneError(
        .invalidArgument,
        "input '\(info.name)': \(tensor.elementType), but the model declares \(type)"
      )
    }
    guard (try? checkedProduct(tensor.shape)) == Self.valueCount(tensor) else {
      throw VaneError(
        .invalidArgument,
        "input '\(info.name)': \(Self.valueCount(tensor)) values for shape \(tensor.shape)"
      )
    }
    if let shape = info.shape {
      let matches =
        shape.count == tensor.shape.count
        && zip(shape, tensor.shape).allSatisfy { $0 == nil || $0 == $1 }
      guard matches else {
        throw VaneError(
          .invalidArgument,
          "input '\(info.name)': shape \(tensor.shape), but the model declares [\(shape.map { $0.map(String.init) ?? "?" }.joined(separator: ", "))]"
        )
      }
    }
  }

  static func valueCount(_ tensor: ONNXTensor) -> Int {
    switch tensor.values {
    case .float(let v): v.count
    case .double(let v): v.count
    case .integer(let v): v.count
    case .bool(let v): v.count
    case .string(let v): v.count
    }
  }

  private static func valueInfo(_ proto: Onnx_ValueInfoProto) throws -> ValueInfo {
    try Self.valueInfo(proto, allowNonTensor: false)
  }

  private static func valueInfo(
    _ proto: Onnx_ValueInfoProto,
    allowNonTensor: Bool
  ) throws -> ValueInfo {
    guard case .tensorType(let tensor)? = proto.type.value else {
      if proto.hasType, proto.type.value != nil, !allowNonTensor {
        throw VaneError(
          .invalidArgument,
          "\(VaneError.onnxUnsupportedPrefix)'\(proto.name)' is not a tensor (sequences, maps and optionals are not run)"
        )
      }
      return ValueInfo(name: proto.name, elementType: nil, shape: nil)
    }
    let type = ONNXTensor.ElementType(rawValue: tensor.elemType)
    if type == nil && tensor.elemType != 0 {
      throw VaneError(
        .invalidArgument,
        "\(VaneError.onnxUnsupportedPrefix)'\(proto.name)' has element type \(ONNXTensor.typeName(tensor.elemType))"
      )
    }
    let shape: [Int?]? =
      tensor.hasShape
      ? tensor.shape.dim.map { dim in
        if case .dimValue(let value)? = dim.value, value >= 0 { return Int(value) }
        return nil
      } : nil
    return ValueInfo(name: proto.name, elementType: type, shape: shape)
  }

  private static func nodeName(_ node: Onnx_NodeProto, _ index: Int) -> String {
    node.name.isEmpty ? "#\(index) \(node.opType)" : node.name
  }
}

extension ONNXModel {
  /// Every op the engine runs, as "OpType" (ai.onnx) or "domain.OpType".
  public static var supportedOperators: [String] {
    ONNXOperators.supported.map { $0.domain.isEmpty ? $0.opType : "\($0.domain).\($0.opType)" }
  }
}
