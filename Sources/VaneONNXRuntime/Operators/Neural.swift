/// Softmax or log-softmax: from opset 13 along `axis` alone; before, over all axes from `axis`
/// on (the input seen as a matrix).
private func softmax(_ context: ONNXNodeContext, log: Bool) throws -> ONNXTensor {
  let x = try context.input(0)
  guard x.rank > 0 else { throw ONNXRuntimeError.invalid("softmax of a scalar") }
  let axis = try normalizedAxis(context.int("axis", context.opset >= 13 ? -1 : 1), rank: x.rank)
  let outer: Int, length: Int, inner: Int
  if context.opset >= 13 {
    (outer, length, inner) = (
      x.shape[..<axis].reduce(1, *), x.shape[axis], x.shape[(axis + 1)...].reduce(1, *)
    )
  } else {
    (outer, length, inner) = (x.shape[..<axis].reduce(1, *), x.shape[axis...].reduce(1, *), 1)
  }
  func run<T: ONNXFloat>(_ v: [T]) -> [T] {
    var out = v
    for o in 0 ..< outer {
      for i in 0 ..< inner {
        let base = o * length * inner + i
        var top = -T.infinity
        for j in 0 ..< length { top = max(top, v[base + j * inner]) }
        var sum: T = 0
        for j in 0 ..< length { sum += T.exp(v[base + j * inner] - top) }
        for j in 0 ..< length {
          let shifted = v[base + j * inner] - top
          out[base + j * inner] = log ? shifted - T.log(sum) : T.exp(shifted) / sum
        }
      }
    }
    return out
  }
  switch x.values {
  case .float(let v): return ONNXTensor(shape: x.shape, floats: run(v))
  case .double(let v): return ONNXTensor(shape: x.shape, doubles: run(v))
  default: throw ONNXRuntimeError.unsupported("softmax of \(x.elementType)")
  }
}

/// Inference batch normalization over axis 1: (x − mean) / √(var + ε) · scale + bias, folded
/// into x · a + b per channel.
struct BatchNormalizationTerms: Sendable {
  var a: [Double]
  var b: [Double]
  /// `a` and `b` rounded to float once here: converting them on every run of a float model was
  /// as much work as a single row's normalization itself.
  var aFloat: [Float]
  var bFloat: [Float]

  /// `a` and `b` in the model's precision.
  func terms<T: ONNXFloat>(_: T.Type) -> (a: [T], b: [T]) {
    if let a = self.aFloat as? [T], let b = self.bFloat as? [T] { return (a, b) }
    return (self.a.map { T($0) }, self.b.map { T($0) })
  }

  /// From the node's scale, B, mean and var (nil when one of them is not known).
  init?(_ context: ONNXNodeContext) throws {
    guard let scale = context.optionalInput(1)?.doubles,
      let bias = context.optionalInput(2)?.doubles,
      let mean = context.optionalInput(3)?.doubles, let variance = context.optionalInput(4)?.doubles
    else { return nil }
    let channels = scale.count
    guard [bias, mean, variance].allSatisfy({ $0.count == channels }) else {
      throw ONNXRuntimeError.invalid("scale, B, mean and var differ in length")
    }
    let epsilon = context.float("epsilon", 1e-5)
    let a = (0 ..< channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
    self.a = a
    self.b = (0 ..< channels).map { bias[$0] - mean[$0] * a[$0] }
    self.aFloat = self.a.map { Float($0) }
    self.bFloat = self.b.map { Float($0) }
  }
}

private func batchNormalization(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
  let x = try context.input(0)
  guard context.opset < 14 || context.int("training_mode", 0) == 0 else {
    throw ONNXRuntimeError.unsupported("BatchNormalization in training mode")
  }
  guard x.rank >= 2 else {
    throw ONNXRuntimeError.invalid("X must have a channel axis, not shape \(x.shape)")
  }
  let channels = x.shape[1], inner = x.shape[2...].reduce(1, *)
  guard
    let terms = try context.prepared as? BatchNormalizationTerms
      ?? BatchNormalizationTerms(context), terms.a.count == channels
  else {
    throw ONNXRuntimeError.invalid("scale, B, mean and var must have \(channels) values each")
  }
  // Written into a fresh buffer over raw pointers, a block of one channel at a time: copying X
  // and then indexing it element by element (bounds-checked, a channel computed per element)
  // was a tenth of an MLP's batch.
  func run<T: ONNXFloat>(_ v: [T]) -> [T] {
    let (a, b) = terms.terms(T.self)
    return [T](unsafeUninitializedCapacity: v.count) { out, initialized in
      v.withUnsafeBufferPointer { v in
        a.withUnsafeBufferPointer { a in
          b.withUnsafeBufferPointer { b in
            guard let x = v.baseAddress, let y = out.baseAddress, channels > 0 else { return }
            if inner == 1 {
              for row in 0 ..< (v.count / channels) {
                let base = row * channels
                for c in 0 ..< channels { y[base + c] = x[base + c] * a[c] + b[c] }
              }
            } else {
              for block in 0 ..< (v.count / max(1, inner)) {
                let (scale, shift) = (a[block % channels], b[block % channels])
                let base = block * inner
                for i in 0 ..< inner { y[base + i] = x[base + i] * scale + shift }
              }
            }
          }
        }
      }
      initialized = v.count
    }
  }
  switch x.values {
  case .float(let v): return [ONNXTensor(shape: x.shape, floats: run(v))]
  case .double(let v): return [ONNXTensor(shape: x.shape, doubles: run(v))]
  default: throw ONNXRuntimeError.unsupported("BatchNormalization of \(x.elementType)")
  }
}

/// LayerNormalization over the axes from `axis` on; also the mean and inverse standard
/// deviation when asked for.
private func layerNormalization(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
  let x = try context.input(0)
  let axis = try normalizedAxis(context.int("axis", -1), rank: x.rank)
  let epsilon = context.float("epsilon", 1e-5)
  let outer = x.shape[..<axis].reduce(1, *), length = x.shape[axis...].reduce(1, *)
  let statsShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
  let scaleTensor = try context.input(1)
  let biasTensor = context.optionalInput(2)
  func run<T: ONNXFloat>(_ v: [T]) throws -> [ONNXTensor] {
    let normShape = Array(x.shape[axis...])
    func expanded(_ t: ONNXTensor) throws -> [T] {
      guard let values = T.values(of: t) else {
        throw ONNXRuntimeError.invalid("Scale and B must be \(x.elementType)")
      }
      guard let indices = Broadcast.indices(of: t.shape, in: normShape) else { return values }
      guard try Broadcast.shape([t.shape, normShape]) == normShape else {
        throw ONNXRuntimeError.invalid("Scale \(t.shape) does not broadcast to \(normShape)")
      }
      return indices.map { values[$0] }
    }
    let scale = try expanded(scaleTensor), bias = try biasTensor.map(expanded)
    var out = v, means = [T](repeating: 0, count: outer), inverse = [T](repeating: 0, count: outer)
    for o in 0 ..< outer {
      let row = v[(o * length) ..< ((o + 1) * length)]
      let mean = row.reduce(0, +) / T(length)
      let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / T(length)
      let inv = 1 / (variance + T(epsilon)).squareRoot()
      means[o] = mean
      inverse[o] = inv
      for j in 0 ..< length {
        out[o * length + j] = (v[o * length + j] - mean) * inv * scale[j] + (bias?[j] ?? 0)
      }
    }
    return [
      T.tensor(out, shape: x.shape), T.tensor(means, shape: statsShape),
      T.tensor(inverse, shape: statsShape),
    ]
  }
  let results: [ONNXTensor]
  switch x.values {
  case .float(let v): results = try run(v)
  case .double(let v): results = try run(v)
  default: throw ONNXRuntimeError.unsupported("LayerNormalization of \(x.elementType)")
  }
  return Array(results.prefix(max(1, context.outputCount)))
}

extension ONNXOperators {
  static let neuralOperators: [(String, ONNXOperator)] = [
    ("Softmax", ONNXOperator(since: 1) { [try softmax($0, log: false)] }),
    ("LogSoftmax", ONNXOperator(since: 1) { [try softmax($0, log: true)] }),
    (
      "BatchNormalization",
      ONNXOperator(since: 6, prepare: { try BatchNormalizationTerms($0) }) {
        try batchNormalization($0)
      }
    ),
    ("LayerNormalization", ONNXOperator(since: 17) { try layerNormalization($0) }),
  ]
}
