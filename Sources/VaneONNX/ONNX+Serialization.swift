internal import Foundation

// The ONNX messages as protobuf, with onnx.proto's field numbers. onnx.proto is proto2: a field
// that is set is written even when it holds its default value (AttributeProto's `i = 0`, say).

extension ONNX.Model {
  /// The serialized ModelProto.
  func serialized() -> Data {
    var writer = ProtobufWriter()
    self.encode(into: &writer)
    return writer.data
  }

  /// ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
  /// opset_import 8, metadata_props 14 (StringStringEntryProto: key 1, value 2).
  func encode(into writer: inout ProtobufWriter) {
    writer.writeInt64(field: 1, self.irVersion)
    writer.writeString(field: 2, self.producerName)
    writer.writeString(field: 3, self.producerVersion)
    if !self.docString.isEmpty { writer.writeString(field: 6, self.docString) }
    writer.writeMessage(field: 7) { self.graph.encode(into: &$0) }
    for opset in self.opsets { writer.writeMessage(field: 8) { opset.encode(into: &$0) } }
    for entry in self.metadata {
      writer.writeMessage(field: 14) {
        $0.writeString(field: 1, entry.key)
        $0.writeString(field: 2, entry.value)
      }
    }
  }
}

extension ONNX.OperatorSet {
  /// OperatorSetIdProto: domain 1, version 2.
  func encode(into writer: inout ProtobufWriter) {
    writer.writeString(field: 1, self.domain)
    writer.writeInt64(field: 2, self.version)
  }
}

extension ONNX.Graph {
  /// GraphProto: node 1, name 2, initializer 5, input 11, output 12.
  func encode(into writer: inout ProtobufWriter) {
    for node in self.nodes { writer.writeMessage(field: 1) { node.encode(into: &$0) } }
    writer.writeString(field: 2, self.name)
    for tensor in self.initializers { writer.writeMessage(field: 5) { tensor.encode(into: &$0) } }
    for input in self.inputs { writer.writeMessage(field: 11) { input.encode(into: &$0) } }
    for output in self.outputs { writer.writeMessage(field: 12) { output.encode(into: &$0) } }
  }
}

extension ONNX.Node {
  /// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
  func encode(into writer: inout ProtobufWriter) {
    for input in self.inputs { writer.writeString(field: 1, input) }
    for output in self.outputs { writer.writeString(field: 2, output) }
    writer.writeString(field: 3, self.name)
    writer.writeString(field: 4, self.opType)
    for attribute in self.attributes {
      writer.writeMessage(field: 5) { attribute.encode(into: &$0) }
    }
    if !self.domain.isEmpty { writer.writeString(field: 7, self.domain) }
  }
}

extension ONNX.Attribute {
  /// AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7, STRINGS 8.
  var typeCode: Int32 {
    switch self.value {
    case .float: 1
    case .int: 2
    case .string: 3
    case .tensor: 4
    case .floats: 6
    case .ints: 7
    case .strings: 8
    }
  }

  /// AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, strings 9, type 20.
  func encode(into writer: inout ProtobufWriter) {
    writer.writeString(field: 1, self.name)
    switch self.value {
    case .float(let value): writer.writeFloat(field: 2, value)
    case .int(let value): writer.writeInt64(field: 3, value)
    case .string(let value): writer.writeString(field: 4, value)
    case .tensor(let tensor): writer.writeMessage(field: 5) { tensor.encode(into: &$0) }
    case .floats(let values): writer.writePackedFloats(field: 7, values)
    case .ints(let values): writer.writePackedInt64s(field: 8, values)
    case .strings(let values): for value in values { writer.writeString(field: 9, value) }
    }
    writer.writeInt32(field: 20, self.typeCode)
  }
}

extension ONNX.Tensor {
  /// TensorProto: dims 1, data_type 2, name 8, raw_data 9.
  func encode(into writer: inout ProtobufWriter) {
    writer.writePackedInt64s(field: 1, self.dims)
    writer.writeInt32(field: 2, self.dataType.rawValue)
    if !self.name.isEmpty { writer.writeString(field: 8, self.name) }
    writer.writeBytes(field: 9, self.rawData)
  }
}

extension ONNX.ValueInfo {
  /// ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1. TypeProto.Tensor: elem_type 1,
  /// shape 2. TensorShapeProto: dim 1. Dimension: dim_value 1, dim_param 2.
  func encode(into writer: inout ProtobufWriter) {
    writer.writeString(field: 1, self.name)
    writer.writeMessage(field: 2) { type in
      type.writeMessage(field: 1) { tensor in
        tensor.writeInt32(field: 1, self.elementType.rawValue)
        tensor.writeMessage(field: 2) { shape in
          for dimension in self.shape {
            shape.writeMessage(field: 1) {
              switch dimension {
              case .value(let size): $0.writeInt64(field: 1, Int64(size))
              case .parameter(let name): $0.writeString(field: 2, name)
              }
            }
          }
        }
      }
    }
  }
}
