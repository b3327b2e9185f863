internal import Foundation

/// A float function chosen once per node, applied to every element.
private func unaryFloat(
  _ name: String,
  since: Int = 1,
  _ make: @escaping @Sendable (ONNXNodeContext) -> FloatFunction
) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: since) { context in
      let x = try context.input(0)
      let function = make(context)
      return [try withFloat(x, name) { type in try type.applying(function, to: x) }]
    }
  )
}

/// An elementwise function over both float types, applied to a whole tensor's values at once.
struct FloatFunction: Sendable {
  let floats: @Sendable ([Float]) -> [Float]
  let doubles: @Sendable ([Double]) -> [Double]

  /// One generic definition for both types.
  static func generic(_ body: GenericUnary) -> FloatFunction {
    FloatFunction(floats: { body.apply(all: $0) }, doubles: { body.apply(all: $0) })
  }
}

/// A function written once for any ``ONNXFloat``.
struct GenericUnary: Sendable {
  let kind: Kind
  enum Kind: Sendable {
    case exp, log, sqrt, reciprocal, floor, ceil, round, tanh, sigmoid, relu, erf, sin, cos, tan,
      asin, acos, atan, sinh, cosh
    case asinh, acosh, atanh, softplus, softsign, sign, neg, abs
    case leakyRelu(Double)
    case elu(Double)
    case selu(Double, Double)
    case celu(Double)
    case thresholdedRelu(Double)
    case hardSigmoid(Double, Double)
    case hardSwish
    case gelu(tanh: Bool)
  }

  /// The function over every value: the kind chosen once, not per element, so that the
  /// common cheap ones (ReLU, negation, absolute value) are loops the compiler vectorises.
  func apply<T: ONNXFloat>(all values: [T]) -> [T] {
    switch self.kind {
    // max(x, 0) is x > 0 ? x : (NaN stays NaN, else +0), as one compare and select.
    case .relu: return Self.map(values) { Swift.max($0, 0) }
    case .neg: return Self.map(values) { -$0 }
    case .abs: return Self.map(values) { abs($0) }
    case .reciprocal: return Self.map(values) { 1 / $0 }
    case .sqrt: return Self.map(values) { $0.squareRoot() }
    default: return Self.map(values) { self.apply($0) }
    }
  }

  /// The function over every value in place: a fused Gemm's activation, applied to its result
  /// while it is still in cache. Each value is computed exactly as ``apply(all:)`` computes it.
  func apply<T: ONNXFloat>(inPlace values: UnsafeMutableBufferPointer<T>) {
    switch self.kind {
    case .relu: for i in values.indices { values[i] = Swift.max(values[i], 0) }
    case .neg: for i in values.indices { values[i] = -values[i] }
    case .abs: for i in values.indices { values[i] = abs(values[i]) }
    case .reciprocal: for i in values.indices { values[i] = 1 / values[i] }
    case .sqrt: for i in values.indices { values[i] = values[i].squareRoot() }
    default: for i in values.indices { values[i] = self.apply(values[i]) }
    }
  }

  /// `f` over `values` into a fresh buffer, a plain indexed loop.
  @inline(__always)
  private static func map<T>(_ values: [T], _ f: (T) -> T) -> [T] {
    [T](unsafeUninitializedCapacity: values.count) { out, initialized in
      values.withUnsafeBufferPointer { v in
        for i in 0 ..< v.count { out[i] = f(v[i]) }
      }
      initialized = values.count
    }
  }

  func apply<T: ONNXFloat>(_ x: T) -> T {
    switch self.kind {
    case .exp: return T.exp(x)
    case .log: return T.log(x)
    case .sqrt: return x.squareRoot()
    case .reciprocal: return 1 / x
    case .floor: return x.rounded(.down)
    case .ceil: return x.rounded(.up)
    case .round: return x.rounded(.toNearestOrEven)
    case .tanh: return T.tanh(x)
    case .sigmoid: return x >= 0 ? 1 / (1 + T.exp(-x)) : T.exp(x) / (1 + T.exp(x))
    case .relu: return x > 0 ? x : (x.isNaN ? x : 0)
    case .erf: return T.erf(x)
    case .sin: return T.sin(x)
    case .cos: return T.cos(x)
    case .tan: return T.tan(x)
    case .asin: return T.asin(x)
    case .acos: return T.acos(x)
    case .atan: return T.atan(x)
    case .sinh: return T.sinh(x)
    case .cosh: return T.cosh(x)
    case .asinh: return T.asinh(x)
    case .acosh: return T.acosh(x)
    case .atanh: return T.atanh(x)
    case .softplus: return x > 20 ? x : T.log(1 + T.exp(x))
    case .softsign: return x / (1 + abs(x))
    case .sign: return x > 0 ? 1 : x < 0 ? -1 : x
    case .neg: return -x
    case .abs: return abs(x)
    case .leakyRelu(let alpha): return x >= 0 ? x : T(alpha) * x
    case .elu(let alpha): return x >= 0 ? x : T(alpha) * (T.exp(x) - 1)
    case .selu(let alpha, let gamma):
      return x > 0 ? T(gamma) * x : T(gamma) * (T(alpha) * T.exp(x) - T(alpha))
    case .celu(let alpha): return max(0, x) + min(0, T(alpha) * (T.exp(x / T(alpha)) - 1))
    case .thresholdedRelu(let alpha): return x > T(alpha) ? x : 0
    case .hardSigmoid(let alpha, let beta): return max(0, min(1, T(alpha) * x + T(beta)))
    case .hardSwish: return x * max(0, min(1, x / 6 + 0.5))
    case .gelu(let tanh):
      if tanh {
        let inner = T(0.7978845608028654) * (x + T(0.044715) * x * x * x)
        return T(0.5) * x * (1 + T.tanh(inner))
      }
      return T(0.5) * x * (1 + T.erf(x / T(2).squareRoot()))
    }
  }
}

extension ONNXFloat {
  static func applying(_ function: FloatFunction, to tensor: ONNXTensor) throws -> ONNXTensor {
    switch tensor.values {
    case .float(let v): ONNXTensor(shape: tensor.shape, floats: function.floats(v))
    case .double(let v): ONNXTensor(shape: tensor.shape, doubles: function.doubles(v))
    default: throw ONNXRuntimeError.unsupported("\(tensor.elementType)")
    }
  }
}

private func generic(
  _ name: String,
  since: Int = 1,
  _ kind: @escaping @Sendable (ONNXNodeContext) -> GenericUnary.Kind
) -> (String, ONNXOperator) {
  var (name, op) = unaryFloat(name, since: since) {
    FloatFunction.generic(GenericUnary(kind: kind($0)))
  }
  op.unary = kind
  return (name, op)
}

/// Neg, Abs and Sign also take integers.
private func signed(
  _ name: String,
  _ kind: GenericUnary.Kind,
  _ integer: @escaping @Sendable (Int64) -> Int64
) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: 1) { context in
      let x = try context.input(0)
      if case .integer(let v) = x.values {
        return [ONNXTensor(shape: x.shape, integers: v.map(integer), type: x.elementType)]
      }
      return [
        try withFloat(x, name) { type in
          try type.applying(.generic(GenericUnary(kind: kind)), to: x)
        }
      ]
    }
  )
}

// MARK: Binary

enum Arithmetic: Sendable {
  case add, sub, mul, div, pow, max, min
  case mod(fmod: Bool)

  func float<T: ONNXFloat>(_ a: T, _ b: T) -> T {
    switch self {
    case .add: a + b
    case .sub: a - b
    case .mul: a * b
    case .div: a / b
    case .pow: T.pow(a, b)
    case .max: a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
    case .min: a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
    case .mod: T.fmod(a, b)
    }
  }

  func integer(_ a: Int64, _ b: Int64) throws -> Int64 {
    switch self {
    case .add: return a &+ b
    case .sub: return a &- b
    case .mul: return a &* b
    case .div:
      guard b != 0 else { throw ONNXRuntimeError.invalid("integer division by zero") }
      return a == .min && b == -1 ? .min : a / b
    case .pow:
      guard b >= 0 else { return a == 1 ? 1 : (a == -1 ? (b % 2 == 0 ? 1 : -1) : 0) }
      var result: Int64 = 1, base = a, exponent = b
      while exponent > 0 {
        if exponent & 1 == 1 { result = result &* base }
        base = base &* base
        exponent >>= 1
      }
      return result
    case .max: return Swift.max(a, b)
    case .min: return Swift.min(a, b)
    case .mod(let fmod):
      guard b != 0 else { throw ONNXRuntimeError.invalid("integer modulo by zero") }
      if a == .min && b == -1 { return 0 }
      let remainder = a % b
      // Without fmod, the sign follows the divisor (Python's %).
      return !fmod && remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder
    }
  }

  /// `a op b`, broadcast; both of one element type (Pow also takes a differently typed exponent).
  func apply(_ a: ONNXTensor, _ b: ONNXTensor) throws -> ONNXTensor {
    switch (a.values, b.values) {
    case (.float(let x), .float(let y)):
      let (v, shape) = try Broadcast.map(x, a.shape, y, b.shape) { self.float($0, $1) }
      return ONNXTensor(shape: shape, floats: v)
    case (.double(let x), .double(let y)):
      let (v, shape) = try Broadcast.map(x, a.shape, y, b.shape) { self.float($0, $1) }
      return ONNXTensor(shape: shape, doubles: v)
    case (.integer(let x), .integer(let y)) where a.elementType == b.elementType || self.isPow:
      let (v, shape) = try Broadcast.map(x, a.shape, y, b.shape) { try self.integer($0, $1) }
      return ONNXTensor(shape: shape, integers: v, type: a.elementType)
    default:
      if self.isPow, a.elementType.isFloatingPoint, let exponent = b.doubles {
        let converted = ONNXTensor.from(doubles: exponent, shape: b.shape, type: a.elementType)
        return try self.apply(a, converted)
      }
      if self.isPow, a.elementType.isInteger, let base = a.doubles, let exponent = b.doubles {
        let (v, shape) = try Broadcast.map(base, a.shape, exponent, b.shape) {
          Foundation.pow($0, $1)
        }
        return ONNXTensor.from(doubles: v, shape: shape, type: a.elementType)
      }
      throw ONNXRuntimeError.invalid("operands are \(a.elementType) and \(b.elementType)")
    }
  }

  var isPow: Bool { if case .pow = self { true } else { false } }
}

private func arithmetic(
  _ name: String,
  _ op: @escaping @Sendable (ONNXNodeContext) -> Arithmetic
) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: 1) { context in
      // Before opset 7 broadcasting needed broadcast=1; the models that used it broadcast the same way.
      [try op(context).apply(try context.input(0), try context.input(1))]
    }
  )
}

/// Sum, Mean, Max, Min over any number of inputs.
private func variadic(
  _ name: String,
  _ op: Arithmetic,
  mean: Bool = false
) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: 1) { context in
      let inputs = context.inputs.compactMap { $0 }
      guard var result = inputs.first else {
        throw ONNXRuntimeError.invalid("needs at least one input")
      }
      for next in inputs.dropFirst() { result = try op.apply(result, next) }
      if mean, inputs.count > 1 {
        let divisor = ONNXTensor.from(
          doubles: [Double(inputs.count)],
          shape: [],
          type: result.elementType
        )
        result = try Arithmetic.div.apply(result, divisor)
      }
      return [result]
    }
  )
}

enum Comparison: Sendable {
  case equal, less, greater, lessOrEqual, greaterOrEqual

  func compare<T: Comparable>(_ a: T, _ b: T) -> Bool {
    switch self {
    case .equal: a == b
    case .less: a < b
    case .greater: a > b
    case .lessOrEqual: a <= b
    case .greaterOrEqual: a >= b
    }
  }

  func apply(_ a: ONNXTensor, _ b: ONNXTensor) throws -> ONNXTensor {
    let result: ([Bool], [Int])
    switch (a.values, b.values) {
    case (.float(let x), .float(let y)):
      result = try Broadcast.map(x, a.shape, y, b.shape) { self.compare($0, $1) }
    case (.double(let x), .double(let y)):
      result = try Broadcast.map(x, a.shape, y, b.shape) { self.compare($0, $1) }
    case (.integer(let x), .integer(let y)):
      result = try Broadcast.map(x, a.shape, y, b.shape) { self.compare($0, $1) }
    case (.bool(let x), .bool(let y)):
      result = try Broadcast.map(x, a.shape, y, b.shape) { self.compare($0 ? 1 : 0, $1 ? 1 : 0) }
    case (.string(let x), .string(let y)):
      result = try Broadcast.map(x, a.shape, y, b.shape) { self.compare($0, $1) }
    default: throw ONNXRuntimeError.invalid("operands are \(a.elementType) and \(b.elementType)")
    }
    return ONNXTensor(shape: result.1, bools: result.0)
  }
}

private func logical(
  _ name: String,
  _ f: @escaping @Sendable (Bool, Bool) -> Bool
) -> (String, ONNXOperator) {
  (
    name,
    ONNXOperator(since: 1) { context in
      let a = try context.input(0), b = try context.input(1)
      guard case .bool(let x) = a.values, case .bool(let y) = b.values else {
        throw ONNXRuntimeError.invalid("\(name) takes bool tensors")
      }
      let (v, shape) = try Broadcast.map(x, a.shape, y, b.shape, f)
      return [ONNXTensor(shape: shape, bools: v)]
    }
  )
}

/// Picks `x` where the condition holds, else `y`, all three broadcast.
func select(_ condition: ONNXTensor, _ x: ONNXTensor, _ y: ONNXTensor) throws -> ONNXTensor {
  guard case .bool(let c) = condition.values else {
    throw ONNXRuntimeError.invalid("the condition must be bool")
  }
  guard x.elementType == y.elementType else {
    throw ONNXRuntimeError.invalid("x is \(x.elementType) and y \(y.elementType)")
  }
  let shape = try Broadcast.shape([condition.shape, x.shape, y.shape])
  let count = shape.reduce(1, *)
  let ic = Broadcast.indices(of: condition.shape, in: shape),
    ix = Broadcast.indices(of: x.shape, in: shape), iy = Broadcast.indices(of: y.shape, in: shape)
  func pick<T>(_ a: [T], _ b: [T]) -> [T] {
    (0 ..< count).map { c[ic?[$0] ?? $0] ? a[ix?[$0] ?? $0] : b[iy?[$0] ?? $0] }
  }
  switch (x.values, y.values) {
  case (.float(let a), .float(let b)): return ONNXTensor(shape: shape, floats: pick(a, b))
  case (.double(let a), .double(let b)): return ONNXTensor(shape: shape, doubles: pick(a, b))
  case (.integer(let a), .integer(let b)):
    return ONNXTensor(shape: shape, integers: pick(a, b), type: x.elementType)
  case (.bool(let a), .bool(let b)): return ONNXTensor(shape: shape, bools: pick(a, b))
  case (.string(let a), .string(let b)): return ONNXTensor(shape: shape, strings: pick(a, b))
  default: throw ONNXRuntimeError.invalid("x and y differ in type")
  }
}

/// Converts to `type` as ONNX's Cast does (float to integer rounds toward zero; to bool, nonzero).
func cast(_ x: ONNXTensor, to type: ONNXTensor.ElementType) throws -> ONNXTensor {
  if x.elementType == type { return x }
  switch (x.values, type) {
  case (.float(let v), .double): return ONNXTensor(shape: x.shape, doubles: widened(v))
  case (.double(let v), .float): return ONNXTensor(shape: x.shape, floats: narrowed(v))
  case (.integer(let v), .float):
    return ONNXTensor(
      shape: x.shape,
      floats: v.map { x.elementType == .uint64 ? Float(UInt64(bitPattern: $0)) : Float($0) }
    )
  case (.integer(let v), .double):
    return ONNXTensor(
      shape: x.shape,
      doubles: v.map { x.elementType == .uint64 ? Double(UInt64(bitPattern: $0)) : Double($0) }
    )
  case (.integer(let v), _) where type.isInteger:
    return ONNXTensor(shape: x.shape, integers: v, type: type)
  case (.string(let v), _):
    let numbers = try v.map { text -> Double in
      guard let value = Double(text.trimmingCharacters(in: .whitespaces)) ?? Self_parseSpecial(text)
      else {
        throw ONNXRuntimeError.invalid("'\(text)' is not a number")
      }
      return value
    }
    return type == .bool
      ? ONNXTensor(shape: x.shape, bools: numbers.map { $0 != 0 })
      : ONNXTensor.from(doubles: numbers, shape: x.shape, type: type)
  case (_, .string):
    switch x.values {
    case .float(let v): return ONNXTensor(shape: x.shape, strings: v.map { "\($0)" })
    case .double(let v): return ONNXTensor(shape: x.shape, strings: v.map { "\($0)" })
    case .integer(let v): return ONNXTensor(shape: x.shape, strings: v.map { "\($0)" })
    case .bool(let v): return ONNXTensor(shape: x.shape, strings: v.map { $0 ? "1" : "0" })
    case .string(let v): return ONNXTensor(shape: x.shape, strings: v)
    }
  default:
    guard let doubles = x.doubles else {
      throw ONNXRuntimeError.unsupported("cast from \(x.elementType) to \(type)")
    }
    if type.isInteger, case .float(let v) = x.values {
      // Through Float's own conversion: no detour that could round first.
      return ONNXTensor(
        shape: x.shape,
        integers: v.map { $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? 0 : 0 },
        type: type
      )
    }
    return ONNXTensor.from(doubles: doubles, shape: x.shape, type: type)
  }
}

private func Self_parseSpecial(_ text: String) -> Double? {
  switch text.lowercased() {
  case "nan": .nan
  case "inf", "+inf", "infinity": .infinity
  case "-inf", "-infinity": -.infinity
  default: nil
  }
}

extension ONNXOperators {
  static let elementwise: [(String, ONNXOperator)] = [
    generic("Exp") { _ in .exp }, generic("Log") { _ in .log }, generic("Sqrt") { _ in .sqrt },
    generic("Reciprocal") { _ in .reciprocal },
    generic("Floor") { _ in .floor }, generic("Ceil") { _ in .ceil },
    generic("Round", since: 11) { _ in .round },
    generic("Tanh") { _ in .tanh }, generic("Sigmoid") { _ in .sigmoid },
    generic("Relu") { _ in .relu }, generic("Erf", since: 9) { _ in .erf },
    generic("Sin", since: 7) { _ in .sin }, generic("Cos", since: 7) { _ in .cos },
    generic("Tan", since: 7) { _ in .tan },
    generic("Asin", since: 7) { _ in .asin }, generic("Acos", since: 7) { _ in .acos },
    generic("Atan", since: 7) { _ in .atan },
    generic("Sinh", since: 9) { _ in .sinh }, generic("Cosh", since: 9) { _ in .cosh },
    generic("Asinh", since: 9) { _ in .asinh },
    generic("Acosh", since: 9) { _ in .acosh }, generic("Atanh", since: 9) { _ in .atanh },
    generic("Softplus") { _ in .softplus }, generic("Softsign") { _ in .softsign },
    generic("LeakyRelu") { .leakyRelu($0.float("alpha", 0.01)) },
    generic("Elu") { .elu($0.float("alpha", 1)) },
    generic("Selu") {
      .selu(
        $0.float("alpha", 1.67326319217681884765625),
        $0.float("gamma", 1.05070102214813232421875)
      )
    },
    generic("Celu", since: 12) { .celu($0.float("alpha", 1)) },
    generic("ThresholdedRelu", since: 10) { .thresholdedRelu($0.float("alpha", 1)) },
    generic("HardSigmoid") { .hardSigmoid($0.float("alpha", 0.2), $0.float("beta", 0.5)) },
    generic("HardSwish", since: 14) { _ in .hardSwish },
    generic("Gelu", since: 20) { .gelu(tanh: $0.string("approximate", "none") == "tanh") },
    signed("Neg", .neg) { 0 &- $0 }, signed("Abs", .abs) { $0 == .min ? .min : Swift.abs($0) },
    signed("Sign", .sign) { $0.signum() },

    arithmetic("Add") { _ in .add }, arithmetic("Sub") { _ in .sub },
    arithmetic("Mul") { _ in .mul }, arithmetic("Div") { _ in .div },
    arithmetic("Pow") { _ in .pow }, arithmetic("Mod") { .mod(fmod: $0.int("fmod", 0) == 1) },
    variadic("Sum", .add), variadic("Mean", .add, mean: true), variadic("Max", .max),
    variadic("Min", .min),
    (
      "Equal",
      ONNXOperator(since: 1) { [try Comparison.equal.apply(try $0.input(0), try $0.input(1))] }
    ),
    (
      "Less",
      ONNXOperator(since: 1) { [try Comparison.less.apply(try $0.input(0), try $0.input(1))] }
    ),
    (
      "Greater",
      ONNXOperator(since: 1) { [try Comparison.greater.apply(try $0.input(0), try $0.input(1))] }
    ),
    (
      "LessOrEqual",
      ONNXOperator(since: 12) {
        [try Comparison.lessOrEqual.apply(try $0.input(0), try $0.input(1))]
      }
    ),
    (
      "GreaterOrEqual",
      ONNXOperator(since: 12) {
        [try Comparison.greaterOrEqual.apply(try $0.input(0), try $0.input(1))]
      }
    ),
    logical("And") { $0 && $1 }, logical("Or") { $0 || $1 }, logical("Xor") { $0 != $1 },
    (
      "Not",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0)
        guard case .bool(let v) = x.values else {
          throw ONNXRuntimeError.invalid("Not takes a bool tensor")
        }
        return [ONNXTensor(shape: x.shape, bools: v.map { !$0 })]
      }
    ),
    (
      "IsNaN",
      ONNXOperator(since: 9) { context in
        let x = try context.input(0)
        guard let v = x.doubles, x.elementType.isFloatingPoint else {
          throw ONNXRuntimeError.invalid("IsNaN takes a float tensor")
        }
        return [ONNXTensor(shape: x.shape, bools: v.map { $0.isNaN })]
      }
    ),
    (
      "IsInf",
      ONNXOperator(since: 10) { context in
        let x = try context.input(0)
        guard let v = x.doubles, x.elementType.isFloatingPoint else {
          throw ONNXRuntimeError.invalid("IsInf takes a float tensor")
        }
        let positive = context.int("detect_positive", 1) == 1,
          negative = context.int("detect_negative", 1) == 1
        return [
          ONNXTensor(
            shape: x.shape,
            bools: v.map { $0.isInfinite && (($0 > 0 && positive) || ($0 < 0 && negative)) }
          )
        ]
      }
    ),
    (
      "Where",
      ONNXOperator(since: 9) { [try select(try $0.input(0), try $0.input(1), try $0.input(2))] }
    ),
    (
      "Cast",
      ONNXOperator(since: 1) { context in
        guard let type = ONNXTensor.ElementType(rawValue: Int32(context.int("to", 0))) else {
          throw ONNXRuntimeError.unsupported(
            "Cast to element type \(ONNXTensor.typeName(Int32(context.int("to", 0))))"
          )
        }
        return [try cast(try context.input(0), to: type)]
      }
    ),
    (
      "CastLike",
      ONNXOperator(since: 15) { context in
        [try cast(try context.input(0), to: try context.input(1).elementType)]
      }
    ),
    (
      "PRelu",
      ONNXOperator(since: 1) { context in
        let x = try context.input(0), slope = try context.input(1)
        let negative = try Arithmetic.mul.apply(x, slope)
        let zero = ONNXTensor.from(doubles: [0], shape: [], type: x.elementType)
        return [
          try select(try Comparison.less.apply(x, zero), negative, x).broadcastKeeping(x.shape)
        ]
      }
    ),
    (
      "Clip",
      ONNXOperator(since: 1) { context in
        var x = try context.input(0)
        let low: ONNXTensor?, high: ONNXTensor?
        if context.opset < 11 {
          low =
            context.has("min")
            ? ONNXTensor.from(doubles: [context.float("min", 0)], shape: [], type: x.elementType)
            : nil
          high =
            context.has("max")
            ? ONNXTensor.from(doubles: [context.float("max", 0)], shape: [], type: x.elementType)
            : nil
        } else {
          low = context.optionalInput(1)
          high = context.optionalInput(2)
        }
        if let low { x = try Arithmetic.max.apply(x, low) }
        if let high { x = try Arithmetic.min.apply(x, high) }
        return [x]
      }
    ),
  ]
}

extension ONNXTensor {
  /// This tensor when its shape is already `shape` (PRelu's output keeps X's shape).
  func broadcastKeeping(_ shape: [Int]) throws -> ONNXTensor {
    guard self.shape == shape else {
      throw ONNXRuntimeError.invalid("the slope does not broadcast to X's shape \(shape)")
    }
    return self
  }
}
