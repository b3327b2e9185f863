/// The subset of ONNX's protobuf schema (onnx.proto, IR version 8) the exporters write, as plain
/// Swift values; ``ONNX/Model/serialized()`` turns one into the bytes of a ModelProto. Field
/// numbers live next to the encoders in ONNX+Serialization.swift.
enum ONNX {
  /// The IR version written: 8 (ONNX 1.10+), which opset 17 and ai.onnx.ml 3 need at most.
  static let irVersion: Int64 = 8
  /// The default ("ai.onnx") operator set version.
  static let opsetVersion: Int64 = 17
  /// The traditional-ML domain and the version whose TreeEnsemble* operators are used.
  static let mlDomain = "ai.onnx.ml"
  static let mlOpsetVersion: Int64 = 3

  /// TensorProto.DataType (the element types used here).
  enum DataType: Int32, Sendable {
    case float = 1
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case double = 11
  }

  /// A TensorProto with its values as little-endian `raw_data`.
  struct Tensor: Sendable, Equatable {
    var name: String
    var dims: [Int64]
    var dataType: DataType
    var rawData: [UInt8]

    init(name: String, dims: [Int], dataType: DataType, rawData: [UInt8]) {
      self.name = name
      self.dims = dims.map(Int64.init)
      self.dataType = dataType
      self.rawData = rawData
    }

    /// A double tensor of shape `dims` (row-major `values`).
    static func doubles(_ name: String, _ values: [Double], dims: [Int]) -> Tensor {
      precondition(values.count == dims.reduce(1, *))
      var raw: [UInt8] = []
      raw.reserveCapacity(values.count * 8)
      for value in values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { raw.append(contentsOf: $0) }
      }
      return Tensor(name: name, dims: dims, dataType: .double, rawData: raw)
    }

    /// A float tensor of shape `dims` (row-major `values`).
    static func floats(_ name: String, _ values: [Float], dims: [Int]) -> Tensor {
      precondition(values.count == dims.reduce(1, *))
      var raw: [UInt8] = []
      raw.reserveCapacity(values.count * 4)
      for value in values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { raw.append(contentsOf: $0) }
      }
      return Tensor(name: name, dims: dims, dataType: .float, rawData: raw)
    }

    /// An int64 tensor of shape `dims` (row-major `values`).
    static func int64s(_ name: String, _ values: [Int64], dims: [Int]) -> Tensor {
      precondition(values.count == dims.reduce(1, *))
      var raw: [UInt8] = []
      raw.reserveCapacity(values.count * 8)
      for value in values { withUnsafeBytes(of: value.littleEndian) { raw.append(contentsOf: $0) } }
      return Tensor(name: name, dims: dims, dataType: .int64, rawData: raw)
    }
  }

  /// An AttributeProto: a name and one typed value.
  struct Attribute: Sendable, Equatable {
    enum Value: Sendable, Equatable {
      case float(Float)
      case int(Int64)
      case string(String)
      case tensor(Tensor)
      case floats([Float])
      case ints([Int64])
      case strings([String])
    }

    var name: String
    var value: Value

    init(_ name: String, _ value: Value) {
      self.name = name
      self.value = value
    }

    static func float(_ name: String, _ value: Float) -> Attribute {
      Attribute(name, .float(value))
    }
    static func int(_ name: String, _ value: Int) -> Attribute {
      Attribute(name, .int(Int64(value)))
    }
    static func string(_ name: String, _ value: String) -> Attribute {
      Attribute(name, .string(value))
    }
    static func tensor(_ name: String, _ value: Tensor) -> Attribute {
      Attribute(name, .tensor(value))
    }
    static func floats(_ name: String, _ values: [Float]) -> Attribute {
      Attribute(name, .floats(values))
    }
    static func ints(_ name: String, _ values: [Int]) -> Attribute {
      Attribute(name, .ints(values.map(Int64.init)))
    }
    static func strings(_ name: String, _ values: [String]) -> Attribute {
      Attribute(name, .strings(values))
    }
  }

  /// A NodeProto: one operator application.
  struct Node: Sendable, Equatable {
    var inputs: [String]
    var outputs: [String]
    var name: String
    var opType: String
    /// "" for the default domain.
    var domain: String = ""
    var attributes: [Attribute] = []
  }

  /// A tensor dimension: a fixed size or a symbolic one (e.g. "N" for the batch).
  enum Dimension: Sendable, Equatable {
    case value(Int)
    case parameter(String)
  }

  /// A ValueInfoProto for a tensor: name, element type and shape.
  struct ValueInfo: Sendable, Equatable {
    var name: String
    var elementType: DataType
    var shape: [Dimension]
  }

  /// A GraphProto.
  struct Graph: Sendable, Equatable {
    var name: String
    var nodes: [Node]
    var initializers: [Tensor]
    var inputs: [ValueInfo]
    var outputs: [ValueInfo]
  }

  /// An OperatorSetIdProto ("" is the default domain).
  struct OperatorSet: Sendable, Equatable {
    var domain: String
    var version: Int64
  }

  /// A ModelProto.
  struct Model: Sendable {
    var irVersion: Int64 = ONNX.irVersion
    var opsets: [OperatorSet]
    var producerName: String
    var producerVersion: String
    var docString: String = ""
    var graph: Graph
    /// metadata_props, in order.
    var metadata: [(key: String, value: String)]
  }
}
