public import Foundation
internal import SwiftProtobuf
internal import VaneCore

extension ONNXTensor {
  /// A TensorProto's values, with every count checked against its dims and `limits`.
  /// External data is read only from a file inside `directory`, by a relative path.
  init(proto: Onnx_TensorProto, limits: ONNXModelLimits, directory: String?) throws {
    guard proto.dims.count <= limits.maximumRank else {
      throw ONNXRuntimeError.invalid(
        "tensor '\(proto.name)': rank \(proto.dims.count) is over the limit of \(limits.maximumRank)"
      )
    }
    var count = 1
    for dim in proto.dims {
      guard dim >= 0 else {
        throw ONNXRuntimeError.invalid("tensor '\(proto.name)': dimension \(dim) is negative")
      }
      let (product, overflow) = count.multipliedReportingOverflow(by: Int(dim))
      guard !overflow, product <= limits.maximumTensorElements else {
        throw ONNXRuntimeError.invalid(
          "tensor '\(proto.name)': dims \(proto.dims) hold more than \(limits.maximumTensorElements) elements"
        )
      }
      count = product
    }
    let shape = proto.dims.map(Int.init)
    guard let type = ElementType(rawValue: proto.dataType) else {
      throw ONNXRuntimeError.unsupported(
        "tensor '\(proto.name)': element type \(Self.typeName(proto.dataType))"
      )
    }
    var raw: Data? = proto.hasRawData ? proto.rawData : nil
    if proto.dataLocation == .external {
      raw = try Self.externalData(proto, directory: directory, limits: limits)
    }
    func checked<T>(_ values: [T], _ field: String) throws -> [T] {
      guard values.count == count else {
        throw ONNXRuntimeError.invalid(
          "tensor '\(proto.name)': \(field) holds \(values.count) values for dims \(proto.dims) (\(count))"
        )
      }
      return values
    }
    if let raw, type != .string {
      let width = type.byteWidth
      guard raw.count == count * width else {
        throw ONNXRuntimeError.invalid(
          "tensor '\(proto.name)': raw_data is \(raw.count) bytes; dims \(proto.dims) of \(type) need \(count * width)"
        )
      }
      self = Self.decode(raw: raw, type: type, shape: shape, count: count)
      return
    }
    switch type {
    case .float: self.init(shape: shape, floats: try checked(proto.floatData, "float_data"))
    case .double: self.init(shape: shape, doubles: try checked(proto.doubleData, "double_data"))
    case .int64: self.init(shape: shape, integers: try checked(proto.int64Data, "int64_data"))
    case .uint32, .uint64:
      self.init(
        shape: shape,
        integers: try checked(proto.uint64Data, "uint64_data").map {
          Int64(truncatingIfNeeded: $0)
        },
        type: type
      )
    case .bool:
      self.init(shape: shape, bools: try checked(proto.int32Data, "int32_data").map { $0 != 0 })
    case .string:
      self.init(
        shape: shape,
        strings: try checked(proto.stringData, "string_data").map {
          String(decoding: $0, as: UTF8.self)
        }
      )
    case .int32, .int16, .int8, .uint16, .uint8:
      self.init(
        shape: shape,
        integers: try checked(proto.int32Data, "int32_data").map(Int64.init),
        type: type
      )
    }
  }

  private static func decode(raw: Data, type: ElementType, shape: [Int], count: Int) -> ONNXTensor {
    raw.withUnsafeBytes { bytes -> ONNXTensor in
      func load<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
        (0 ..< count).map {
          Int64(
            T(
              littleEndian: bytes.loadUnaligned(
                fromByteOffset: $0 * MemoryLayout<T>.size,
                as: T.self
              )
            )
          )
        }
      }
      switch type {
      case .float:
        return ONNXTensor(
          shape: shape,
          floats: (0 ..< count).map {
            Float(
              bitPattern: UInt32(
                littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)
              )
            )
          }
        )
      case .double:
        return ONNXTensor(
          shape: shape,
          doubles: (0 ..< count).map {
            Double(
              bitPattern: UInt64(
                littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)
              )
            )
          }
        )
      case .bool: return ONNXTensor(shape: shape, bools: (0 ..< count).map { bytes[$0] != 0 })
      case .int8: return ONNXTensor(shape: shape, integers: load(Int8.self), type: type)
      case .uint8: return ONNXTensor(shape: shape, integers: load(UInt8.self), type: type)
      case .int16: return ONNXTensor(shape: shape, integers: load(Int16.self), type: type)
      case .uint16: return ONNXTensor(shape: shape, integers: load(UInt16.self), type: type)
      case .int32: return ONNXTensor(shape: shape, integers: load(Int32.self), type: type)
      case .uint32: return ONNXTensor(shape: shape, integers: load(UInt32.self), type: type)
      case .int64: return ONNXTensor(shape: shape, integers: load(Int64.self), type: type)
      case .uint64:
        return ONNXTensor(shape: shape, integers: load(UInt64.self).map { $0 }, type: type)
      case .string: return ONNXTensor(shape: shape, strings: [])
      }
    }
  }

  /// Reads `location` (relative, inside `directory`), `offset` and `length` of an external tensor.
  private static func externalData(
    _ proto: Onnx_TensorProto,
    directory: String?,
    limits: ONNXModelLimits
  ) throws -> Data {
    let entries = Dictionary(
      proto.externalData.map { ($0.key, $0.value) },
      uniquingKeysWith: { a, _ in a }
    )
    guard let directory else {
      throw ONNXRuntimeError.invalid(
        "tensor '\(proto.name)': its data is in an external file, and external data is read only for a model loaded from a file"
      )
    }
    guard let location = entries["location"], !location.isEmpty, !location.hasPrefix("/"),
      !location.split(separator: "/").contains("..")
    else {
      throw ONNXRuntimeError.invalid(
        "tensor '\(proto.name)': external data location '\(entries["location"] ?? "")' is not a relative path inside the model's directory"
      )
    }
    let offset = Int(entries["offset"] ?? "0") ?? -1
    let length = entries["length"].map { Int($0) ?? -1 }
    guard offset >= 0, length.map({ $0 >= 0 }) ?? true else {
      throw ONNXRuntimeError.invalid(
        "tensor '\(proto.name)': external data offset or length is not a non-negative number"
      )
    }
    let path = URL(fileURLWithPath: directory).appendingPathComponent(location).standardizedFileURL
      .path
    guard path.hasPrefix(URL(fileURLWithPath: directory).standardizedFileURL.path + "/"),
      let handle = FileHandle(forReadingAtPath: path)
    else {
      throw ONNXRuntimeError.invalid(
        "tensor '\(proto.name)': external data file '\(location)' cannot be read"
      )
    }
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    let wanted = length ?? limits.maximumModelBytes
    guard wanted <= limits.maximumModelBytes else {
      throw ONNXRuntimeError.invalid(
        "tensor '\(proto.name)': external data of \(wanted) bytes is over the limit"
      )
    }
    return try handle.read(upToCount: wanted) ?? Data()
  }

  static func typeName(_ raw: Int32) -> String {
    switch raw {
    case 10: "float16"
    case 14: "complex64"
    case 15: "complex128"
    case 16: "bfloat16"
    case 17 ... 20: "float8"
    case 21, 22: "int4"
    default: ElementType(rawValue: raw)?.description ?? "\(raw)"
    }
  }
}

extension ONNXTensor.ElementType {
  /// Bytes per element in raw_data.
  var byteWidth: Int {
    switch self {
    case .bool, .int8, .uint8: 1
    case .int16, .uint16: 2
    case .float, .int32, .uint32: 4
    case .double, .int64, .uint64: 8
    case .string: 0
    }
  }
}

extension ONNXTensor {
  /// A tensor from a serialized TensorProto (the `.pb` files of ONNX's test data).
  /// - Returns: the tensor and the name it was stored under.
  /// - Throws: ``VaneError`` (`.invalidArgument`) for bytes that are not a tensor within `limits`.
  public static func decode(
    serializedTensorProto data: Data,
    limits: ONNXModelLimits = .default
  ) throws -> (name: String, tensor: ONNXTensor) {
    guard data.count <= limits.maximumModelBytes else {
      throw VaneError(.invalidArgument, "a tensor of \(data.count) bytes is over the limit")
    }
    let proto: Onnx_TensorProto
    do { proto = try Onnx_TensorProto(serializedBytes: data) } catch {
      throw VaneError(.invalidArgument, "not a TensorProto: \(error)")
    }
    do {
      return (proto.name, try ONNXTensor(proto: proto, limits: limits, directory: nil))
    } catch let error as ONNXRuntimeError {
      throw VaneError(
        .invalidArgument,
        (error.isUnsupported ? VaneError.onnxUnsupportedPrefix : "") + error.message
      )
    }
  }
}

extension ONNXRuntimeError {
  var isUnsupported: Bool { if case .unsupported = self { true } else { false } }
}
