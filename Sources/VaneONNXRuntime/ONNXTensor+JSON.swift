public import Foundation
internal import VaneCore

/// Tensors as JSON, the layout `vane model run` reads and writes: an object mapping each name to
/// `{"dtype": "float32", "shape": [2, 3], "data": [...]}`, data row-major and flattened.
public enum ONNXTensorJSON {
  /// The largest JSON document read.
  public static let maximumBytes = 512 << 20

  /// Decodes `{name: tensor}`. - Throws: INVALID_ARGUMENT naming the tensor and the field.
  public static func decode(_ data: Data, limits: ONNXModelLimits = .default) throws -> [String: ONNXTensor] {
    guard data.count <= Self.maximumBytes else { throw VaneError(.invalidArgument, "the JSON is \(data.count) bytes, over the limit of \(Self.maximumBytes)") }
    let object: Any
    do { object = try JSONSerialization.jsonObject(with: data) } catch {
      throw VaneError(.invalidArgument, "not JSON: \(error.localizedDescription)")
    }
    guard let entries = object as? [String: Any] else { throw VaneError(.invalidArgument, "the JSON must be an object of name → {dtype, shape, data}") }
    var tensors: [String: ONNXTensor] = [:]
    for (name, entry) in entries { tensors[name] = try Self.tensor(entry, name: name, limits: limits) }
    return tensors
  }

  static func tensor(_ entry: Any, name: String, limits: ONNXModelLimits) throws -> ONNXTensor {
    func fail(_ message: String) -> VaneError { VaneError(.invalidArgument, "'\(name)': \(message)") }
    guard let fields = entry as? [String: Any] else { throw fail("must be an object with dtype, shape and data") }
    guard let dtypeName = fields["dtype"] as? String else { throw fail("dtype is missing") }
    guard let type = ONNXTensor.ElementType(name: dtypeName) else {
      throw fail("dtype '\(dtypeName)' is not one of \(ONNXTensor.ElementType.allCases.map(\.description).joined(separator: ", "))")
    }
    guard let rawShape = fields["shape"] as? [Any] else { throw fail("shape must be an array of non-negative integers") }
    guard rawShape.count <= limits.maximumRank else { throw fail("rank \(rawShape.count) is over the limit of \(limits.maximumRank)") }
    let shape = try rawShape.map { value -> Int in
      guard let number = value as? NSNumber, let dim = Int(exactly: number.doubleValue), dim >= 0 else { throw fail("shape must be an array of non-negative integers") }
      return dim
    }
    var count = 1
    for dim in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: dim)
      guard !overflow, product <= limits.maximumTensorElements else { throw fail("shape \(shape) holds more than \(limits.maximumTensorElements) elements") }
      count = product
    }
    guard let data = fields["data"] as? [Any] else { throw fail("data must be an array") }
    guard data.count == count else { throw fail("data holds \(data.count) values; shape \(shape) needs \(count)") }
    func number(_ index: Int) throws -> Double {
      if let value = data[index] as? NSNumber { return value.doubleValue }
      if let text = data[index] as? String {
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
      }
      throw fail("data[\(index)] is not a number (NaN and infinities are written \"NaN\", \"Infinity\", \"-Infinity\")")
    }
    switch type {
    case .string:
      return ONNXTensor(shape: shape, strings: try data.indices.map { index in
        guard let text = data[index] as? String else { throw fail("data[\(index)] is not a string") }
        return text
      })
    case .bool:
      return ONNXTensor(shape: shape, bools: try data.indices.map { index in
        if let flag = data[index] as? Bool { return flag }
        return try number(index) != 0
      })
    case .float: return ONNXTensor(shape: shape, floats: try data.indices.map { Float(try number($0)) })
    case .double: return ONNXTensor(shape: shape, doubles: try data.indices.map { try number($0) })
    default:
      return ONNXTensor(shape: shape, integers: try data.indices.map { index in
        // Integers above 2^53 come through NSNumber's integer value, not a double.
        if let value = data[index] as? NSNumber, Double(value.int64Value) == value.doubleValue { return value.int64Value }
        let value = try number(index)
        guard let integer = Int64(exactly: value) else { throw fail("data[\(index)] = \(value) is not an integer") }
        return integer
      }, type: type)
    }
  }

  /// Encodes `{name: tensor}` (keys sorted; NaN and infinities as strings).
  public static func encode(_ tensors: [String: ONNXTensor]) throws -> Data {
    var object: [String: Any] = [:]
    for (name, tensor) in tensors {
      let data: [Any]
      func finite(_ value: Double) -> Any {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        return value
      }
      switch tensor.values {
      case .float(let v): data = v.map { finite(Double($0)) }
      case .double(let v): data = v.map(finite)
      case .integer(let v): data = v.map { NSNumber(value: $0) }
      case .bool(let v): data = v
      case .string(let v): data = v
      }
      let entry: [String: Any] = ["dtype": tensor.elementType.description, "shape": tensor.shape, "data": data]
      object[name] = entry
    }
    return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
  }
}
