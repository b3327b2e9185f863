internal import Foundation
internal import SwiftProtobuf

/// One node as an operator sees it while it runs: its inputs, its attributes and the opset
/// version the model imports for its domain.
struct ONNXNodeContext {
  let name: String
  let opType: String
  let opset: Int
  let attributes: [String: Onnx_AttributeProto]
  var inputs: [ONNXTensor?]
  /// How many outputs the node names (trailing optional ones may be absent).
  let outputCount: Int
  let limits: ONNXModelLimits
  /// What the operator's `prepare` made from the attributes at load time (nil: none).
  var prepared: (any Sendable)? = nil

  /// Input `index`, which the node must give.
  func input(_ index: Int) throws -> ONNXTensor {
    guard index < self.inputs.count, let tensor = self.inputs[index] else {
      throw ONNXRuntimeError.invalid("input \(index) is required")
    }
    return tensor
  }

  /// Input `index`, or nil when the node leaves it out (or names it "").
  func optionalInput(_ index: Int) -> ONNXTensor? {
    index < self.inputs.count ? self.inputs[index] : nil
  }

  func has(_ name: String) -> Bool { self.attributes[name] != nil }

  func int(_ name: String, _ fallback: Int) -> Int {
    self.attributes[name].map { Int(truncatingIfNeeded: $0.i) } ?? fallback
  }
  func float(_ name: String, _ fallback: Double) -> Double {
    self.attributes[name].map { Double($0.f) } ?? fallback
  }
  func string(_ name: String, _ fallback: String) -> String {
    self.attributes[name].map { String(decoding: $0.s, as: UTF8.self) } ?? fallback
  }
  func ints(_ name: String) -> [Int]? {
    self.attributes[name].map { $0.ints.map { Int(truncatingIfNeeded: $0) } }
  }
  func floats(_ name: String) -> [Double]? {
    self.attributes[name].map { $0.floats.map(Double.init) }
  }
  func strings(_ name: String) -> [String]? {
    self.attributes[name].map { $0.strings.map { String(decoding: $0, as: UTF8.self) } }
  }
  func tensor(_ name: String) throws -> ONNXTensor? {
    guard let attribute = self.attributes[name], attribute.hasT else { return nil }
    return try ONNXTensor(proto: attribute.t, limits: self.limits, directory: nil)
  }

  /// A result tensor, checked against the element limit.
  func checkedCount(_ shape: [Int]) throws -> Int {
    var count = 1
    for dim in shape {
      guard dim >= 0 else {
        throw ONNXRuntimeError.invalid("a computed shape \(shape) has a negative dimension")
      }
      let (product, overflow) = count.multipliedReportingOverflow(by: dim)
      guard !overflow, product <= self.limits.maximumTensorElements else {
        throw ONNXRuntimeError.invalid(
          "a computed shape \(shape) holds more than \(self.limits.maximumTensorElements) elements"
        )
      }
      count = product
    }
    return count
  }
}

/// An operator's implementation: the node's outputs from its context.
typealias ONNXKernel = @Sendable (ONNXNodeContext) throws -> [ONNXTensor]

/// An operator the engine runs from opset `since` on, in a domain ("" is ai.onnx).
struct ONNXOperator: Sendable {
  var since: Int
  var kernel: ONNXKernel
  /// Whether it may be evaluated at load time when all its inputs are constants.
  var foldable = true
  /// Work done once per node at load time from its attributes and the inputs known then
  /// (initializers; the others are nil): a tree ensemble's nodes, batch norm's folded scale and
  /// shift. Handed to every run as ``ONNXNodeContext/prepared``.
  var prepare: (@Sendable (ONNXNodeContext) throws -> (any Sendable)?)? = nil
  /// For an elementwise float function (Relu, Sigmoid, …): which one a node computes, so that
  /// loading can fuse it into the Gemm whose only reader it is.
  var unary: (@Sendable (ONNXNodeContext) -> GenericUnary.Kind)? = nil

  init(
    since: Int,
    foldable: Bool = true,
    prepare: (@Sendable (ONNXNodeContext) throws -> (any Sendable)?)? = nil,
    unary: (@Sendable (ONNXNodeContext) -> GenericUnary.Kind)? = nil,
    kernel: @escaping ONNXKernel
  ) {
    self.since = since
    self.kernel = kernel
    self.foldable = foldable
    self.prepare = prepare
    self.unary = unary
  }
}
