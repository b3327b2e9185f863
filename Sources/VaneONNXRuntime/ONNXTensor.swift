/// A tensor as the ONNX engine holds it: a shape and row-major values.
///
/// Integer tensors of every width are held as `Int64` with their ONNX type kept beside them
/// (values are in range for it), so an operator is written once for integers; floating point
/// stays `Float` or `Double`, as the model asks.
public struct ONNXTensor: Sendable, Equatable {
  /// TensorProto.DataType, for the types the engine runs.
  public enum ElementType: Int32, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    case float = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case double = 11
    case uint32 = 12
    case uint64 = 13

    public var description: String {
      switch self {
      case .float: "float32"
      case .double: "float64"
      case .uint8: "uint8"
      case .int8: "int8"
      case .uint16: "uint16"
      case .int16: "int16"
      case .int32: "int32"
      case .int64: "int64"
      case .uint32: "uint32"
      case .uint64: "uint64"
      case .string: "string"
      case .bool: "bool"
      }
    }

    /// The JSON name `vane model run` reads and writes ("float32", "int64", …).
    public init?(name: String) {
      guard
        let type = Self.allCases.first(where: {
          $0.description == name || (name == "float" && $0 == .float)
            || (name == "double" && $0 == .double)
        })
      else { return nil }
      self = type
    }

    public var isInteger: Bool {
      self != .float && self != .double && self != .string && self != .bool
    }
    public var isFloatingPoint: Bool { self == .float || self == .double }

    /// Wraps an integer into this type's range (two's complement), as a C cast would.
    func wrap(_ value: Int64) -> Int64 {
      switch self {
      case .uint8: Int64(UInt8(truncatingIfNeeded: value))
      case .int8: Int64(Int8(truncatingIfNeeded: value))
      case .uint16: Int64(UInt16(truncatingIfNeeded: value))
      case .int16: Int64(Int16(truncatingIfNeeded: value))
      case .int32: Int64(Int32(truncatingIfNeeded: value))
      case .uint32: Int64(UInt32(truncatingIfNeeded: value))
      default: value
      }
    }
  }

  public enum Values: Sendable, Equatable {
    case float([Float])
    case double([Double])
    /// Any integer type; the tensor's ``ONNXTensor/elementType`` says which.
    case integer([Int64])
    case bool([Bool])
    case string([String])
  }

  public var shape: [Int]
  public var elementType: ElementType
  public var values: Values

  public var count: Int { self.shape.reduce(1, *) }
  public var rank: Int { self.shape.count }

  public init(shape: [Int], floats: [Float]) { self.init(unchecked: shape, .float, .float(floats)) }
  public init(shape: [Int], doubles: [Double]) {
    self.init(unchecked: shape, .double, .double(doubles))
  }
  public init(shape: [Int], integers: [Int64], type: ElementType = .int64) {
    self.init(unchecked: shape, type, .integer(integers.map(type.wrap)))
  }
  public init(shape: [Int], bools: [Bool]) { self.init(unchecked: shape, .bool, .bool(bools)) }
  public init(shape: [Int], strings: [String]) {
    self.init(unchecked: shape, .string, .string(strings))
  }

  init(unchecked shape: [Int], _ type: ElementType, _ values: Values) {
    self.shape = shape
    self.elementType = type
    self.values = values
  }

  /// A tensor of `type` from doubles (integers rounded toward zero and wrapped, bools nonzero).
  static func from(doubles: [Double], shape: [Int], type: ElementType) -> ONNXTensor {
    switch type {
    case .float: ONNXTensor(shape: shape, floats: narrowed(doubles))
    case .double: ONNXTensor(shape: shape, doubles: doubles)
    case .bool: ONNXTensor(shape: shape, bools: doubles.map { $0 != 0 })
    case .string: ONNXTensor(shape: shape, strings: doubles.map { "\($0)" })
    default:
      ONNXTensor(
        shape: shape,
        integers: doubles.map {
          $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? ($0 < 0 ? .min : .max) : 0
        },
        type: type
      )
    }
  }

  /// Floating-point values as doubles (nil for any other type).
  public var doubleValues: [Double]? {
    switch self.values {
    case .float(let v): widened(v)
    case .double(let v): v
    default: nil
    }
  }

  /// The values as doubles (nil for strings).
  var doubles: [Double]? {
    switch self.values {
    case .float(let v): widened(v)
    case .double(let v): v
    case .integer(let v): v.map(Double.init)
    case .bool(let v): v.map { $0 ? 1 : 0 }
    case .string: nil
    }
  }

  /// The values as integers, for shapes, axes and indices (floating values must be whole).
  func integers(_ what: @autoclosure () -> String) throws -> [Int64] {
    switch self.values {
    case .integer(let v): return v
    case .bool(let v): return v.map { $0 ? 1 : 0 }
    default:
      throw ONNXRuntimeError.invalid("\(what()) must be an integer tensor, not \(self.elementType)")
    }
  }

  /// The same values with another shape of the same element count.
  func reshaped(_ shape: [Int]) -> ONNXTensor {
    ONNXTensor(unchecked: shape, self.elementType, self.values)
  }

  /// An empty tensor of `type`'s kind.
  static func empty(_ type: ElementType, shape: [Int]) -> ONNXTensor {
    switch type {
    case .float: ONNXTensor(shape: shape, floats: [])
    case .double: ONNXTensor(shape: shape, doubles: [])
    case .bool: ONNXTensor(shape: shape, bools: [])
    case .string: ONNXTensor(shape: shape, strings: [])
    default: ONNXTensor(shape: shape, integers: [], type: type)
    }
  }
}

/// Floats as doubles, in a loop over raw pointers the compiler vectorises (`map(Double.init)`
/// converted one value per call: a fifth of a small classifier's batch).
func widened(_ values: [Float]) -> [Double] {
  [Double](unsafeUninitializedCapacity: values.count) { out, initialized in
    values.withUnsafeBufferPointer { v in
      guard let source = v.baseAddress, let target = out.baseAddress else { return }
      for i in 0 ..< v.count { target[i] = Double(source[i]) }
    }
    initialized = values.count
  }
}

/// Doubles rounded to floats, as ``widened(_:)`` converts the other way.
func narrowed(_ values: [Double]) -> [Float] {
  [Float](unsafeUninitializedCapacity: values.count) { out, initialized in
    values.withUnsafeBufferPointer { v in
      guard let source = v.baseAddress, let target = out.baseAddress else { return }
      for i in 0 ..< v.count { target[i] = Float(source[i]) }
    }
    initialized = values.count
  }
}

/// Row-major strides of `shape`.
func strides(of shape: [Int]) -> [Int] {
  var strides = [Int](repeating: 1, count: shape.count)
  var step = 1
  for axis in stride(from: shape.count - 1, through: 0, by: -1) {
    strides[axis] = step
    step *= shape[axis]
  }
  return strides
}
