public import Foundation
internal import VaneCore

/// Tensors as JSON, the layout `vane model run` reads and writes: an object mapping each name to
/// `{"dtype": "float32", "shape": [2, 3], "data": [...]}`, data row-major and flattened.
public enum ONNXTensorJSON {
  /// The largest JSON document read.
  public static let maximumBytes = 512 << 20

  /// Decodes `{name: tensor}`. - Throws: INVALID_ARGUMENT naming the tensor and the field.
  public static func decode(
    _ data: Data,
    limits: ONNXModelLimits = .default
  ) throws -> [String: ONNXTensor] {
    guard data.count <= Self.maximumBytes else {
      throw VaneError(
        .invalidArgument,
        "the JSON is \(data.count) bytes, over the limit of \(Self.maximumBytes)"
      )
    }
    let entries: [String: JSONValue]
    do { entries = try JSONDecoder().decode([String: JSONValue].self, from: data) } catch let error
      as DecodingError
    {
      if case .typeMismatch = error {
        throw VaneError(
          .invalidArgument,
          "the JSON must be an object of name → {dtype, shape, data}"
        )
      }
      throw VaneError(.invalidArgument, "not JSON: \(error)")
    } catch {
      throw VaneError(.invalidArgument, "not JSON: \(error.localizedDescription)")
    }
    var tensors: [String: ONNXTensor] = [:]
    for (name, entry) in entries {
      tensors[name] = try Self.tensor(entry, name: name, limits: limits)
    }
    return tensors
  }

  /// A JSON value as the tensor layout needs it. Numbers are parsed by JSONDecoder, which
  /// rounds correctly (JSONSerialization's NSNumber can be a few ulps off on Linux, which moves
  /// a value sitting on a tree threshold to the other branch); arrays of numbers are read in
  /// one pass as integers or doubles.
  indirect enum JSONValue: Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case integers([Int64])
    case numbers([Double])
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      if container.decodeNil() {
        self = .null
      } else if let value = try? container.decode(Bool.self) {
        self = .bool(value)
      } else if let value = try? container.decode(Int64.self) {
        self = .integer(value)
      } else if let value = try? container.decode(Double.self) {
        self = .number(value)
      } else if let value = try? container.decode(String.self) {
        self = .string(value)
      } else if let values = try? container.decode([Int64].self) {
        self = .integers(values)
      } else if let values = try? container.decode([Double].self) {
        self = .numbers(values)
      } else if let values = try? container.decode([JSONValue].self) {
        self = .array(values)
      } else {
        self = .object(try container.decode([String: JSONValue].self))
      }
    }

    /// The elements of an array (nil for anything else).
    var elements: [JSONValue]? {
      switch self {
      case .integers(let values): values.map { .integer($0) }
      case .numbers(let values): values.map { .number($0) }
      case .array(let values): values
      default: nil
      }
    }

    var count: Int? {
      switch self {
      case .integers(let values): values.count
      case .numbers(let values): values.count
      case .array(let values): values.count
      default: nil
      }
    }
  }

  static func tensor(_ entry: JSONValue, name: String, limits: ONNXModelLimits) throws -> ONNXTensor
  {
    func fail(_ message: String) -> VaneError {
      VaneError(.invalidArgument, "'\(name)': \(message)")
    }
    guard case .object(let fields) = entry else {
      throw fail("must be an object with dtype, shape and data")
    }
    guard case .string(let dtypeName) = fields["dtype"] else { throw fail("dtype is missing") }
    guard let type = ONNXTensor.ElementType(name: dtypeName) else {
      throw fail(
        "dtype '\(dtypeName)' is not one of \(ONNXTensor.ElementType.allCases.map(\.description).joined(separator: ", "))"
      )
    }
    guard let rawShape = fields["shape"]?.elements else {
      throw fail("shape must be an array of non-negative integers")
    }
    guard rawShape.count <= limits.maximumRank else {
      throw fail("rank \(rawShape.count) is over the limit of \(limits.maximumRank)")
    }
    let shape = try rawShape.map { value -> Int in
      guard case .integer(let dim) = value, dim >= 0, let size = Int(exactly: dim) else {
        throw fail("shape must be an array of non-negative integers")
      }
      return size
    }
    var count = 1
    for dim in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: dim)
      guard !overflow, product <= limits.maximumTensorElements else {
        throw fail("shape \(shape) holds more than \(limits.maximumTensorElements) elements")
      }
      count = product
    }
    guard let dataField = fields["data"], let dataCount = dataField.count else {
      throw fail("data must be an array")
    }
    guard dataCount == count else {
      throw fail("data holds \(dataCount) values; shape \(shape) needs \(count)")
    }
    // The common cases without a per-element enum.
    switch (type, dataField) {
    case (.double, .numbers(let values)): return ONNXTensor(shape: shape, doubles: values)
    case (.float, .numbers(let values)):
      return ONNXTensor(shape: shape, floats: values.map(Float.init))
    case (.double, .integers(let values)):
      return ONNXTensor(shape: shape, doubles: values.map(Double.init))
    case (.float, .integers(let values)):
      return ONNXTensor(shape: shape, floats: values.map(Float.init))
    default: break
    }
    let data = dataField.elements ?? []
    func number(_ index: Int) throws -> Double {
      switch data[index] {
      case .number(let value): return value
      case .integer(let value): return Double(value)
      case .string(let text):
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
      default: break
      }
      throw fail(
        "data[\(index)] is not a number (NaN and infinities are written \"NaN\", \"Infinity\", \"-Infinity\")"
      )
    }
    switch type {
    case .string:
      return ONNXTensor(
        shape: shape,
        strings: try data.indices.map { index in
          guard case .string(let text) = data[index] else {
            throw fail("data[\(index)] is not a string")
          }
          return text
        }
      )
    case .bool:
      return ONNXTensor(
        shape: shape,
        bools: try data.indices.map { index in
          if case .bool(let flag) = data[index] { return flag }
          return try number(index) != 0
        }
      )
    case .float:
      return ONNXTensor(shape: shape, floats: try data.indices.map { Float(try number($0)) })
    case .double: return ONNXTensor(shape: shape, doubles: try data.indices.map { try number($0) })
    default:
      return ONNXTensor(
        shape: shape,
        integers: try data.indices.map { index in
          // Integers above 2^53 come through exactly, not as a double.
          if case .integer(let value) = data[index] { return value }
          let value = try number(index)
          guard let integer = Int64(exactly: value) else {
            throw fail("data[\(index)] = \(value) is not an integer")
          }
          return integer
        },
        type: type
      )
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
      let entry: [String: Any] = [
        "dtype": tensor.elementType.description, "shape": tensor.shape, "data": data,
      ]
      object[name] = entry
    }
    return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
  }
}
