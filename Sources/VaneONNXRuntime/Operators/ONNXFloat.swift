internal import Foundation
internal import VaneMath
internal import VaneMathAVX512

/// Float and Double, with the elementary functions the operators need (Foundation's, per type).
protocol ONNXFloat: BLASScalar {
  /// σ of `count` values from `source` into `target` (which may be `source`), several lanes at
  /// a time (``Logistic``'s row functions).
  static func sigmoid(
    _ source: UnsafePointer<Self>,
    into target: UnsafeMutablePointer<Self>,
    count: Int
  )
  /// tanh of `count` values, as ``sigmoid(_:into:count:)``.
  static func tanh(
    _ source: UnsafePointer<Self>,
    into target: UnsafeMutablePointer<Self>,
    count: Int
  )
  static func exp(_ x: Self) -> Self
  static func log(_ x: Self) -> Self
  static func pow(_ x: Self, _ y: Self) -> Self
  static func tanh(_ x: Self) -> Self
  static func erf(_ x: Self) -> Self
  static func sin(_ x: Self) -> Self
  static func cos(_ x: Self) -> Self
  static func tan(_ x: Self) -> Self
  static func asin(_ x: Self) -> Self
  static func acos(_ x: Self) -> Self
  static func atan(_ x: Self) -> Self
  static func sinh(_ x: Self) -> Self
  static func cosh(_ x: Self) -> Self
  static func asinh(_ x: Self) -> Self
  static func acosh(_ x: Self) -> Self
  static func atanh(_ x: Self) -> Self
  static func fmod(_ x: Self, _ y: Self) -> Self
  /// ``Logistic``'s fused LSTM cell step over a row in ONNX's gate order (input, output,
  /// forget, cell): `addend` added to the gates, which are activated in place.
  static func lstmCell(
    gates: UnsafeMutablePointer<Self>,
    addend: UnsafePointer<Self>,
    hidden: Int,
    cell: UnsafeMutablePointer<Self>,
    output: UnsafeMutablePointer<Self>
  )
  /// Wraps values as a tensor of this type.
  static func tensor(_ values: [Self], shape: [Int]) -> ONNXTensor
  /// The values of a tensor of this type (nil for another type).
  static func values(of tensor: ONNXTensor) -> [Self]?
}

extension Float: ONNXFloat {
  /// Whether this CPU runs the AVX-512 kernels (read once).
  static let wideLanes = CPUFeatures.current.avx512

  static func lstmCell(
    gates: UnsafeMutablePointer<Float>,
    addend: UnsafePointer<Float>,
    hidden: Int,
    cell: UnsafeMutablePointer<Float>,
    output: UnsafeMutablePointer<Float>
  ) {
    let kernel = Self.wideLanes ? LogisticAVX512.lstmCell : Logistic.lstmCell
    // Inference: only c and h are written (nothing reads the activated gates).
    kernel(gates, addend, hidden, cell, cell, output, output, .inputOutputForgetCell, false)
  }
  /// ``BLAS/rowCombination(_:rowBlocked:rows:columns:into:descending:)`` on this CPU's widest
  /// lanes (the same values on either).
  static func rowCombination(
    _ x: UnsafePointer<Float>,
    rowBlocked a: UnsafePointer<Float>,
    rows: Int,
    columns: Int,
    into y: UnsafeMutablePointer<Float>,
    descending: Bool = false
  ) {
    let kernel = Self.wideLanes ? BLASAVX512.rowCombination : BLAS.rowCombination
    kernel(x, a, rows, columns, y, descending)
  }
  static func sigmoid(
    _ source: UnsafePointer<Float>,
    into target: UnsafeMutablePointer<Float>,
    count: Int
  ) {
    Logistic.sigmoid(source, into: target, count: count)
  }
  static func tanh(
    _ source: UnsafePointer<Float>,
    into target: UnsafeMutablePointer<Float>,
    count: Int
  ) {
    Logistic.tanh(source, into: target, count: count)
  }
  static func exp(_ x: Float) -> Float { Foundation.exp(x) }
  static func log(_ x: Float) -> Float { Foundation.log(x) }
  static func pow(_ x: Float, _ y: Float) -> Float { Foundation.pow(x, y) }
  static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
  static func erf(_ x: Float) -> Float { Foundation.erf(x) }
  static func sin(_ x: Float) -> Float { Foundation.sin(x) }
  static func cos(_ x: Float) -> Float { Foundation.cos(x) }
  static func tan(_ x: Float) -> Float { Foundation.tan(x) }
  static func asin(_ x: Float) -> Float { Foundation.asin(x) }
  static func acos(_ x: Float) -> Float { Foundation.acos(x) }
  static func atan(_ x: Float) -> Float { Foundation.atan(x) }
  static func sinh(_ x: Float) -> Float { Foundation.sinh(x) }
  static func cosh(_ x: Float) -> Float { Foundation.cosh(x) }
  static func asinh(_ x: Float) -> Float { Foundation.asinh(x) }
  static func acosh(_ x: Float) -> Float { Foundation.acosh(x) }
  static func atanh(_ x: Float) -> Float { Foundation.atanh(x) }
  static func fmod(_ x: Float, _ y: Float) -> Float { Foundation.fmod(x, y) }
  static func tensor(_ values: [Float], shape: [Int]) -> ONNXTensor {
    ONNXTensor(shape: shape, floats: values)
  }
  static func values(of tensor: ONNXTensor) -> [Float]? {
    if case .float(let v) = tensor.values { v } else { nil }
  }
}

extension Double: ONNXFloat {
  static func lstmCell(
    gates: UnsafeMutablePointer<Double>,
    addend: UnsafePointer<Double>,
    hidden: Int,
    cell: UnsafeMutablePointer<Double>,
    output: UnsafeMutablePointer<Double>
  ) {
    Logistic.lstmCell(
      gates: gates,
      bias: addend,
      hidden: hidden,
      previousCell: cell,
      cell: cell,
      cellTanh: output,
      output: output,
      order: .inputOutputForgetCell,
      keepingActivations: false
    )
  }
  static func sigmoid(
    _ source: UnsafePointer<Double>,
    into target: UnsafeMutablePointer<Double>,
    count: Int
  ) {
    Logistic.sigmoid(source, into: target, count: count)
  }
  static func tanh(
    _ source: UnsafePointer<Double>,
    into target: UnsafeMutablePointer<Double>,
    count: Int
  ) {
    Logistic.tanh(source, into: target, count: count)
  }
  static func exp(_ x: Double) -> Double { Foundation.exp(x) }
  static func log(_ x: Double) -> Double { Foundation.log(x) }
  static func pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
  static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
  static func erf(_ x: Double) -> Double { Foundation.erf(x) }
  static func sin(_ x: Double) -> Double { Foundation.sin(x) }
  static func cos(_ x: Double) -> Double { Foundation.cos(x) }
  static func tan(_ x: Double) -> Double { Foundation.tan(x) }
  static func asin(_ x: Double) -> Double { Foundation.asin(x) }
  static func acos(_ x: Double) -> Double { Foundation.acos(x) }
  static func atan(_ x: Double) -> Double { Foundation.atan(x) }
  static func sinh(_ x: Double) -> Double { Foundation.sinh(x) }
  static func cosh(_ x: Double) -> Double { Foundation.cosh(x) }
  static func asinh(_ x: Double) -> Double { Foundation.asinh(x) }
  static func acosh(_ x: Double) -> Double { Foundation.acosh(x) }
  static func atanh(_ x: Double) -> Double { Foundation.atanh(x) }
  static func fmod(_ x: Double, _ y: Double) -> Double { Foundation.fmod(x, y) }
  static func tensor(_ values: [Double], shape: [Int]) -> ONNXTensor {
    ONNXTensor(shape: shape, doubles: values)
  }
  static func values(of tensor: ONNXTensor) -> [Double]? {
    if case .double(let v) = tensor.values { v } else { nil }
  }
}

/// Runs `body` with the tensor's element type as an ``ONNXFloat`` type.
/// - Throws: unsupported for any other element type, naming `what`.
func withFloat<R>(
  _ tensor: ONNXTensor,
  _ what: String,
  _ body: (any ONNXFloat.Type) throws -> R
) throws -> R {
  switch tensor.elementType {
  case .float: try body(Float.self)
  case .double: try body(Double.self)
  default: throw ONNXRuntimeError.unsupported("\(what) of \(tensor.elementType)")
  }
}
