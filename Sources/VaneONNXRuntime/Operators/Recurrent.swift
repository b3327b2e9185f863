internal import Foundation
internal import VaneMath

/// An activation named in a recurrent op's `activations`, with its alpha and beta.
private struct Activation {
  let apply: (Double) -> Double
  /// The function's name, lower-cased (the LSTM's fast path checks for its defaults).
  let name: String

  init(_ name: String, alpha: Double?, beta: Double?) throws {
    self.name = name.lowercased()
    switch name.lowercased() {
    case "sigmoid": self.apply = { $0 >= 0 ? 1 / (1 + exp(-$0)) : exp($0) / (1 + exp($0)) }
    case "tanh": self.apply = { tanh($0) }
    case "relu": self.apply = { max(0, $0) }
    case "affine":
      let (a, b) = (alpha ?? 1, beta ?? 0)
      self.apply = { a * $0 + b }
    case "leakyrelu":
      let a = alpha ?? 0.01
      self.apply = { $0 >= 0 ? $0 : a * $0 }
    case "thresholdedrelu":
      let a = alpha ?? 1
      self.apply = { $0 > a ? $0 : 0 }
    case "scaledtanh":
      let (a, b) = (alpha ?? 1, beta ?? 1)
      self.apply = { a * tanh(b * $0) }
    case "hardsigmoid":
      let (a, b) = (alpha ?? 0.2, beta ?? 0.5)
      self.apply = { max(0, min(1, a * $0 + b)) }
    case "elu":
      let a = alpha ?? 1
      self.apply = { $0 >= 0 ? $0 : a * (exp($0) - 1) }
    case "softsign": self.apply = { $0 / (1 + abs($0)) }
    case "softplus": self.apply = { log(1 + exp($0)) }
    default: throw ONNXRuntimeError.unsupported("activation \(name)")
    }
  }

  /// The node's activations, `perDirection` each, defaulting to `defaults`.
  static func list(
    _ context: ONNXNodeContext,
    defaults: [String],
    directions: Int
  ) throws -> [[Activation]] {
    let names = context.strings("activations") ?? (0 ..< directions).flatMap { _ in defaults }
    guard names.count == defaults.count * directions else {
      throw ONNXRuntimeError.invalid(
        "activations lists \(names.count) functions; \(defaults.count * directions) expected"
      )
    }
    var alphas = (context.floats("activation_alpha") ?? []).makeIterator(),
      betas = (context.floats("activation_beta") ?? []).makeIterator()
    let takesAlpha: Set<String> = [
      "affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu",
    ]
    let takesBeta: Set<String> = ["affine", "scaledtanh", "hardsigmoid"]
    let made = try names.map { name in
      try Activation(
        name,
        alpha: takesAlpha.contains(name.lowercased()) ? alphas.next() : nil,
        beta: takesBeta.contains(name.lowercased()) ? betas.next() : nil
      )
    }
    return (0 ..< directions).map {
      Array(made[($0 * defaults.count) ..< (($0 + 1) * defaults.count)])
    }
  }
}

/// W, R and B as doubles, converted once at load when they are initializers.
private struct RecurrentWeights: Sendable {
  let w: [Double], r: [Double], b: [Double]?
  /// A float R [directions, G·H, H] as each direction's [H, G·H] laid out by
  /// ``BLAS/rowBlocked(_:rows:columns:into:)`` (``blockedTransposes(_:directions:rows:columns:)``),
  /// for the one-row step (``BLAS/rowCombination(_:rowBlocked:rows:columns:into:descending:)``);
  /// nil for other types or shapes. On cache lines: from an array, where the lines fell moved
  /// from run to run, and the bench LSTM's single row between 53 and 68 µs with them.
  let rTransposed: AlignedFloats?
  /// A float W [directions, G·H, I] with each row's summed biases appended, [directions, G·H,
  /// I + 1]: the right-hand side of the LSTM's X·Wᵀ + b GEMM (``plainLSTM``), made once here
  /// rather than on every run (a copy of W a value at a time); nil without float W and B.
  let wAugmented: [Float]?
  /// The right-hand side of X·Wᵀ (``wAugmented``, or a float W without biases) transposed and
  /// laid out as ``rTransposed`` is, for a one-row run's X·Wᵀ a row at a time; nil as
  /// ``rTransposed`` is.
  let wTransposed: AlignedFloats?

  init?(_ context: ONNXNodeContext) {
    guard let w = context.optionalInput(1)?.doubles, let r = context.optionalInput(2)?.doubles
    else { return nil }
    let hasBias = context.inputs.count > 3 && context.inputs[3] != nil
    self.w = w
    self.r = r
    self.b = context.optionalInput(3)?.doubles
    if hasBias && self.b == nil { return nil }
    if let tensor = context.optionalInput(2), case .float(let values) = tensor.values,
      tensor.rank == 3, tensor.shape[1] > 0, tensor.shape[2] > 0
    {
      self.rTransposed = blockedTransposes(
        values,
        directions: tensor.shape[0],
        rows: tensor.shape[1],
        columns: tensor.shape[2]
      )
    } else {
      self.rTransposed = nil
    }
    if let wTensor = context.optionalInput(1), case .float(let w) = wTensor.values,
      let bTensor = context.optionalInput(3), case .float(let b) = bTensor.values,
      wTensor.rank == 3, wTensor.shape[1] > 0, wTensor.shape[2] > 0,
      b.count == 2 * wTensor.shape[0] * wTensor.shape[1]
    {
      let (directions, gates, inputs) = (wTensor.shape[0], wTensor.shape[1], wTensor.shape[2])
      self.wAugmented = augmentedWeights(w, b, directions: directions, gates: gates, input: inputs)
    } else {
      self.wAugmented = nil
    }
    if self.rTransposed != nil, let wTensor = context.optionalInput(1),
      case .float(let w) = wTensor.values, wTensor.rank == 3, wTensor.shape[1] > 0,
      let right = self.wAugmented ?? (hasBias ? nil : w)
    {
      let (directions, gates) = (wTensor.shape[0], wTensor.shape[1])
      self.wTransposed = blockedTransposes(
        right,
        directions: directions,
        rows: gates,
        columns: right.count / (directions * gates)
      )
    } else {
      self.wTransposed = nil
    }
  }
}

/// Each direction's row-major `[rows, columns]` matrix transposed to `[columns, rows]` and laid
/// out by ``BLAS/rowBlocked(_:rows:columns:into:)``, for one-row products
/// (``BLAS/rowCombination(_:rowBlocked:rows:columns:into:descending:)``): direction d's values
/// start at d · ``blockedStride(_:)``, on a cache line.
/// `count` values written by `fill` from a cache line on: an array of up to 16 values more, the
/// first `shift` of them (and the rest past the end) zeros.
private func alignedRows<T: ONNXFloat>(
  _ count: Int,
  shift: inout Int,
  _ fill: (UnsafeMutablePointer<T>) -> Void
) -> [T] {
  let pad = 64 / MemoryLayout<T>.stride
  var at = 0
  let values = [T](unsafeUninitializedCapacity: count + pad) { out, initialized in
    let address = Int(bitPattern: out.baseAddress!)
    at = (64 - address % 64) % 64 / MemoryLayout<T>.stride
    out.baseAddress!.initialize(repeating: 0, count: at)
    (out.baseAddress! + at + count).initialize(repeating: 0, count: pad - at)
    fill(out.baseAddress! + at)
    initialized = count + pad
  }
  shift = at
  return values
}

/// The values from one direction's blocked matrix of `count` values to the next: a whole
/// number of cache lines.
private func blockedStride(_ count: Int) -> Int { (count + 15) / 16 * 16 }

private func blockedTransposes(
  _ values: [Float],
  directions: Int,
  rows: Int,
  columns: Int
) -> AlignedFloats {
  let stride = blockedStride(rows * columns)
  return AlignedFloats(count: directions * stride) { out in
    out.initialize(repeating: 0)
    var transposed = [Float](repeating: 0, count: rows * columns)
    for d in 0 ..< directions {
      let base = d * rows * columns
      for j in 0 ..< rows {
        for k in 0 ..< columns { transposed[k * rows + j] = values[base + j * columns + k] }
      }
      BLAS.rowBlocked(transposed, rows: columns, columns: rows, into: out.baseAddress! + d * stride)
    }
  }
}

/// Each direction's W [G·H, I] with the row's two biases summed in a last column, [G·H, I + 1].
private func augmentedWeights<T: ONNXFloat>(
  _ w: [T],
  _ b: [T],
  directions: Int,
  gates: Int,
  input I: Int
) -> [T] {
  let k = I + 1
  return [T](unsafeUninitializedCapacity: directions * gates * k) { out, initialized in
    for d in 0 ..< directions {
      for j in 0 ..< gates {
        let row = d * gates * k + j * k
        for c in 0 ..< I { out[row + c] = w[(d * gates + j) * I + c] }
        out[row + I] = b[d * 2 * gates + j] + b[d * 2 * gates + gates + j]
      }
    }
    initialized = directions * gates * k
  }
}

/// RNN, GRU and LSTM: the inputs, attributes and layouts they share, and the loop over time.
private struct RecurrentLayer {
  enum Kind { case rnn, gru, lstm }

  let kind: Kind
  let gates: Int
  let sequenceLength: Int, batch: Int, inputSize: Int, hidden: Int, directions: Int
  let layout: Int
  let elementType: ONNXTensor.ElementType
  /// X as given; ``x()`` is it as [seq, batch, input] doubles, made only on the paths that
  /// read doubles (a float LSTM reads the floats, and converting every run cost it a pass).
  let xTensor: ONNXTensor
  let w: [Double], r: [Double], b: [Double]?, p: [Double]?
  /// See ``RecurrentWeights/rTransposed``.
  let rTransposed: AlignedFloats?
  /// See ``RecurrentWeights/wAugmented``.
  let wAugmented: [Float]?
  /// See ``RecurrentWeights/wTransposed``.
  let wTransposed: AlignedFloats?
  let lengths: [Int]
  let initialH: [Double]?, initialC: [Double]?
  let clip: Double?
  let reverse: Bool, bidirectional: Bool

  init(_ context: ONNXNodeContext, kind: Kind) throws {
    self.kind = kind
    self.gates = kind == .lstm ? 4 : kind == .gru ? 3 : 1
    let xTensor = try context.input(0)
    guard xTensor.elementType.isFloatingPoint, xTensor.rank == 3 else {
      throw ONNXRuntimeError.invalid("X must be a rank-3 float tensor, not \(xTensor.shape)")
    }
    self.elementType = xTensor.elementType
    self.layout = context.int("layout", 0)
    self.xTensor = xTensor
    let dims =
      self.layout == 1 ? [xTensor.shape[1], xTensor.shape[0], xTensor.shape[2]] : xTensor.shape
    (self.sequenceLength, self.batch, self.inputSize) = (dims[0], dims[1], dims[2])
    let direction = context.string("direction", "forward")
    guard ["forward", "reverse", "bidirectional"].contains(direction) else {
      throw ONNXRuntimeError.invalid("direction '\(direction)'")
    }
    self.reverse = direction == "reverse"
    self.bidirectional = direction == "bidirectional"
    self.directions = self.bidirectional ? 2 : 1
    let wTensor = try context.input(1), rTensor = try context.input(2)
    let gates = self.gates, directions = self.directions, batch = dims[1], layout = self.layout
    let hidden = context.int("hidden_size", wTensor.rank == 3 ? wTensor.shape[1] / gates : 0)
    guard hidden > 0, hidden <= 1 << 20 else {
      throw ONNXRuntimeError.invalid("hidden_size \(hidden)")
    }
    self.hidden = hidden
    guard wTensor.shape == [directions, gates * hidden, dims[2]],
      rTensor.shape == [directions, gates * hidden, hidden]
    else {
      throw ONNXRuntimeError.invalid(
        "W \(wTensor.shape) and R \(rTensor.shape) do not fit \(directions) direction(s), hidden size \(hidden), input size \(dims[2])"
      )
    }
    let weights = context.prepared as? RecurrentWeights
    self.w = weights?.w ?? wTensor.doubles!
    self.r = weights?.r ?? rTensor.doubles!
    self.rTransposed = weights?.rTransposed
    self.wAugmented = weights?.wAugmented
    self.wTransposed = weights?.wTransposed
    if let t = context.optionalInput(3) {
      guard t.count == directions * 2 * gates * hidden else {
        throw ONNXRuntimeError.invalid("B has \(t.count) values")
      }
      self.b = weights?.b ?? t.doubles!
    } else {
      self.b = nil
    }
    if let t = context.optionalInput(4) {
      self.lengths = try t.integers("sequence_lens").map { value in
        guard value >= 0, value <= Int64(dims[0]) else {
          throw ONNXRuntimeError.invalid("a sequence length of \(value) for \(dims[0]) steps")
        }
        return Int(value)
      }
    } else {
      self.lengths = [Int](repeating: dims[0], count: batch)
    }
    guard self.lengths.count == batch else {
      throw ONNXRuntimeError.invalid(
        "sequence_lens has \(self.lengths.count) values for a batch of \(batch)"
      )
    }
    func state(_ index: Int) throws -> [Double]? {
      guard let t = context.optionalInput(index) else { return nil }
      guard t.count == directions * batch * hidden else {
        throw ONNXRuntimeError.invalid("an initial state has \(t.count) values")
      }
      let values = t.doubles!
      return layout == 1
        ? try transpose(ONNXTensor(shape: t.shape, doubles: values), [1, 0, 2]).doubles! : values
    }
    self.initialH = try state(5)
    self.initialC = kind == .lstm ? try state(6) : nil
    if kind == .lstm, let t = context.optionalInput(7) {
      guard t.count == directions * 3 * hidden else {
        throw ONNXRuntimeError.invalid("P has \(t.count) values")
      }
      self.p = t.doubles!
    } else {
      self.p = nil
    }
    self.clip = context.has("clip") ? context.float("clip", 0) : nil
  }

  /// X as [seq, batch, input] doubles, whatever the layout.
  func x() throws -> [Double] {
    let x = self.xTensor.doubles!
    guard self.layout == 1 else { return x }
    return try transpose(ONNXTensor(shape: self.xTensor.shape, doubles: x), [1, 0, 2]).doubles!
  }

  /// Y, Y_h (and Y_c for LSTM) in the node's layout.
  func run(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
    let (T, B, H, G) = (self.sequenceLength, self.batch, self.hidden, self.gates)
    let defaults =
      self.kind == .lstm
      ? ["Sigmoid", "Tanh", "Tanh"] : self.kind == .gru ? ["Sigmoid", "Tanh"] : ["Tanh"]
    let activations = try Activation.list(context, defaults: defaults, directions: self.directions)
    let linearBeforeReset = context.int("linear_before_reset", 0) != 0
    let coupled = context.int("input_forget", 0) != 0
    if self.kind == .lstm, self.clip == nil, self.p == nil, !coupled,
      activations.allSatisfy({ $0.map { $0.name } == ["sigmoid", "tanh", "tanh"] })
    {
      return try self.plain(context)
    }
    var y = [Double](repeating: 0, count: T * self.directions * B * H)
    var yh = [Double](repeating: 0, count: self.directions * B * H), yc = yh
    let x = try self.x()
    for d in 0 ..< self.directions {
      let backward = self.reverse || (self.bidirectional && d == 1)
      let wd = Array(self.w[(d * G * H * self.inputSize) ..< ((d + 1) * G * H * self.inputSize)])
      let rd = Array(self.r[(d * G * H * H) ..< ((d + 1) * G * H * H)])
      let wb =
        self.b.map { Array($0[(d * 2 * G * H) ..< (d * 2 * G * H + G * H)]) }
        ?? [Double](repeating: 0, count: G * H)
      let rb =
        self.b.map { Array($0[(d * 2 * G * H + G * H) ..< ((d + 1) * 2 * G * H)]) }
        ?? [Double](repeating: 0, count: G * H)
      let peep = self.p.map { Array($0[(d * 3 * H) ..< ((d + 1) * 3 * H)]) }
      let f = activations[d][0],
        g = activations[d].count > 1 ? activations[d][1] : activations[d][0],
        h = activations[d].count > 2 ? activations[d][2] : g
      // Every step's X·Wᵀ at once: [T·B, G·H].
      let xw =
        T * B > 0 ? BLAS.matmulTransposedB(x, wd, m: T * B, k: self.inputSize, n: G * H) : []
      var hState =
        self.initialH.map { Array($0[(d * B * H) ..< ((d + 1) * B * H)]) }
        ?? [Double](repeating: 0, count: B * H)
      var cState =
        self.initialC.map { Array($0[(d * B * H) ..< ((d + 1) * B * H)]) }
        ?? [Double](repeating: 0, count: B * H)
      func clipped(_ v: Double) -> Double { self.clip.map { min(max(v, -$0), $0) } ?? v }
      // H·Rᵀ of each step, into one buffer (a GEMV for a single sequence).
      var hr = [Double](repeating: 0, count: B * G * H)
      for step in 0 ..< T {
        if B * H > 0 {
          hState.withUnsafeBufferPointer { ph in
            rd.withUnsafeBufferPointer { pr in
              hr.withUnsafeMutableBufferPointer { po in
                if B == 1 {
                  Double.gemv(
                    transpose: false,
                    m: G * H,
                    n: H,
                    alpha: 1,
                    a: pr.baseAddress!,
                    lda: H,
                    x: ph.baseAddress!,
                    beta: 0,
                    y: po.baseAddress!
                  )
                } else {
                  Double.gemm(
                    transposeA: false,
                    transposeB: true,
                    m: B,
                    n: G * H,
                    k: H,
                    alpha: 1,
                    a: ph.baseAddress!,
                    lda: H,
                    b: pr.baseAddress!,
                    ldb: H,
                    beta: 0,
                    c: po.baseAddress!,
                    ldc: G * H
                  )
                }
              }
            }
          }
        }
        for batchIndex in 0 ..< B {
          let length = self.lengths[batchIndex]
          let t = backward ? length - 1 - step : step
          guard t >= 0, t < length else { continue }
          let row = (t * B + batchIndex) * G * H, hrRow = batchIndex * G * H, state = batchIndex * H
          var newH = [Double](repeating: 0, count: H)
          switch self.kind {
          case .rnn:
            for j in 0 ..< H {
              newH[j] = f.apply(clipped(xw[row + j] + hr[hrRow + j] + wb[j] + rb[j]))
            }
          case .lstm:
            // Gate order in W, R, B: input, output, forget, cell.
            var newC = [Double](repeating: 0, count: H)
            for j in 0 ..< H {
              let previousC = cState[state + j]
              func pre(_ gate: Int) -> Double {
                xw[row + gate * H + j] + hr[hrRow + gate * H + j] + wb[gate * H + j]
                  + rb[gate * H + j]
              }
              let i = f.apply(clipped(pre(0) + (peep?[j] ?? 0) * previousC))
              let forget =
                coupled ? 1 - i : f.apply(clipped(pre(2) + (peep?[2 * H + j] ?? 0) * previousC))
              let candidate = g.apply(clipped(pre(3)))
              let c = forget * previousC + i * candidate
              let o = f.apply(clipped(pre(1) + (peep?[H + j] ?? 0) * c))
              newC[j] = c
              newH[j] = o * h.apply(c)
            }
            for j in 0 ..< H { cState[state + j] = newC[j] }
          case .gru:
            // Gate order: update, reset, hidden.
            var z = [Double](repeating: 0, count: H), reset = z
            for j in 0 ..< H {
              z[j] = f.apply(clipped(xw[row + j] + hr[hrRow + j] + wb[j] + rb[j]))
              reset[j] = f.apply(
                clipped(xw[row + H + j] + hr[hrRow + H + j] + wb[H + j] + rb[H + j])
              )
            }
            var candidate = [Double](repeating: 0, count: H)
            if linearBeforeReset {
              for j in 0 ..< H {
                candidate[j] = g.apply(
                  clipped(
                    xw[row + 2 * H + j] + reset[j] * (hr[hrRow + 2 * H + j] + rb[2 * H + j])
                      + wb[2 * H + j]
                  )
                )
              }
            } else {
              // (r ⊙ H)·Rhᵀ: the reset applies before the recurrent product.
              let scaled = (0 ..< H).map { reset[$0] * hState[state + $0] }
              for j in 0 ..< H {
                var sum = 0.0
                for k in 0 ..< H { sum += scaled[k] * rd[(2 * H + j) * H + k] }
                candidate[j] = g.apply(
                  clipped(xw[row + 2 * H + j] + sum + rb[2 * H + j] + wb[2 * H + j])
                )
              }
            }
            for j in 0 ..< H { newH[j] = (1 - z[j]) * candidate[j] + z[j] * hState[state + j] }
          }
          for j in 0 ..< H {
            hState[state + j] = newH[j]
            y[((t * self.directions + d) * B + batchIndex) * H + j] = newH[j]
          }
        }
      }
      for index in 0 ..< (B * H) {
        yh[d * B * H + index] = hState[index]
        yc[d * B * H + index] = cState[index]
      }
    }
    func tensor(_ values: [Double], _ shape: [Int], _ perm: [Int]?) throws -> ONNXTensor {
      let t = ONNXTensor.from(doubles: values, shape: shape, type: self.elementType)
      return try perm.map { try transpose(t, $0) } ?? t
    }
    let layout1 = self.layout == 1
    var outputs = [
      try tensor(y, [T, self.directions, B, H], layout1 ? [2, 0, 1, 3] : nil),
      try tensor(yh, [self.directions, B, H], layout1 ? [1, 0, 2] : nil),
    ]
    if self.kind == .lstm {
      outputs.append(try tensor(yc, [self.directions, B, H], layout1 ? [1, 0, 2] : nil))
    }
    return outputs
  }
}

extension RecurrentLayer {
  /// The common LSTM — default activations, no clip, peepholes or input coupling — in the
  /// model's own precision (float32 models stay float32, as ONNX Runtime computes them).
  func plain(_ context: ONNXNodeContext) throws -> [ONNXTensor] {
    let (T, B, H, D) = (self.sequenceLength, self.batch, self.hidden, self.directions)
    func floats(_ index: Int) -> [Float]? {
      guard let tensor = context.optionalInput(index), case .float(let values) = tensor.values
      else { return nil }
      return values
    }
    var outputs: [ONNXTensor]
    if self.elementType == .float, self.layout == 0, let x = floats(0), let w = floats(1),
      let r = floats(2)
    {
      let b = context.optionalInput(3) == nil ? nil : floats(3)
      guard context.optionalInput(3) == nil || b != nil else {
        throw ONNXRuntimeError.invalid("B must be float like X")
      }
      let (y, yh, yc) = plainLSTM(
        x: x,
        w: w,
        r: r,
        rTransposed: self.rTransposed,
        wAugmented: self.wAugmented,
        wTransposed: self.wTransposed,
        b: b,
        initialH: floats(5),
        initialC: floats(6),
        lengths: self.lengths,
        steps: T,
        batch: B,
        input: self.inputSize,
        hidden: H,
        directions: D,
        reverse: self.reverse
      )
      outputs = [
        ONNXTensor(shape: [T, D, B, H], floats: y), ONNXTensor(shape: [D, B, H], floats: yh),
        ONNXTensor(shape: [D, B, H], floats: yc),
      ]
    } else {
      let (y, yh, yc) = plainLSTM(
        x: try self.x(),
        w: self.w,
        r: self.r,
        rTransposed: nil,
        wAugmented: nil,
        wTransposed: nil,
        b: self.b,
        initialH: self.initialH,
        initialC: self.initialC,
        lengths: self.lengths,
        steps: T,
        batch: B,
        input: self.inputSize,
        hidden: H,
        directions: D,
        reverse: self.reverse
      )
      outputs = [
        ONNXTensor.from(doubles: y, shape: [T, D, B, H], type: self.elementType),
        ONNXTensor.from(doubles: yh, shape: [D, B, H], type: self.elementType),
        ONNXTensor.from(doubles: yc, shape: [D, B, H], type: self.elementType),
      ]
      if self.layout == 1 {
        outputs = [
          try transpose(outputs[0], [2, 0, 1, 3]), try transpose(outputs[1], [1, 0, 2]),
          try transpose(outputs[2], [1, 0, 2]),
        ]
      }
    }
    return outputs
  }
}

/// The default LSTM over [steps, batch, input] (layout 0): both biases folded into X·Wᵀ once,
/// one GEMV (GEMM for a batch) of H·Rᵀ per step, each cell's step fused a group of lanes at a
/// time (``Logistic``'s `lstmCell`: the same arithmetic as the gates activated row by row). Gate order in W, R, B: input,
/// output, forget, cell. Returns Y [steps, directions, batch, hidden], Y_h and Y_c.
private func plainLSTM<T: ONNXFloat>(
  x: [T],
  w: [T],
  r: [T],
  rTransposed: AlignedFloats?,
  wAugmented: [T]?,
  wTransposed: AlignedFloats?,
  b: [T]?,
  initialH: [T]?,
  initialC: [T]?,
  lengths: [Int],
  steps: Int,
  batch B: Int,
  input I: Int,
  hidden H: Int,
  directions: Int,
  reverse: Bool
) -> (y: [T], yh: [T], yc: [T]) {
  let G = 4
  var y = [T](repeating: 0, count: steps * directions * B * H)
  var yh = [T](repeating: 0, count: directions * B * H), yc = yh
  // Every step's X·Wᵀ plus both biases, [steps·B, G·H], from one GEMM per direction: with
  // biases, X gains a column of ones and W a column of the summed biases, so the GEMM writes the
  // sums itself. (Filling a zeroed buffer with the biases first, for the GEMM to add to, was two
  // passes over steps·B·G·H values: a quarter of a batch of 256 sequences.) The augmented W is
  // made at load when the weights are initializers.
  let rows = steps * B, gates = G * H
  let k = I + (b == nil ? 0 : 1)
  let left: [T] =
    b == nil
    ? x
    : [T](unsafeUninitializedCapacity: rows * k) { out, initialized in
      for r in 0 ..< rows {
        for c in 0 ..< I { out[r * k + c] = x[r * I + c] }
        out[r * k + I] = 1
      }
      initialized = rows * k
    }
  let right: [T] =
    b.map { b in
      wAugmented.flatMap { $0.count == directions * gates * k ? $0 : nil }
        ?? augmentedWeights(w, b, directions: directions, gates: gates, input: I)
    } ?? w
  // One float row: H·Rᵀ as Σ_k h[k]·(row k of Rᵀ), Rᵀ transposed once at load: the sums run
  // down contiguous rows of G·H lanes side by side, where OpenBLAS's GEMV over R takes G·H
  // dot products of H values, each ending in a horizontal sum (most of a single-row run).
  let rStride = blockedStride(G * H * H), wStride = blockedStride(gates * k)
  let oneRow = B == 1 && T.self == Float.self && rTransposed?.count == directions * rStride
  // X·Wᵀ the same way, a step at a time: OpenBLAS's GEMM first zeroed the whole product in a
  // pass of its own (`sgemm_beta`, as many instructions as the GEMM's kernel for 48 steps).
  let oneRowW = oneRow ? wTransposed.flatMap { $0.count == directions * wStride ? $0 : nil } : nil
  for d in 0 ..< directions {
    let backward = reverse || d == 1
    var xw: [T]
    // Where X·Wᵀ starts in `xw`: on a cache line, so that the cell's vector loads and stores of
    // its rows never straddle two (each row is a whole number of lines when G·H is a multiple
    // of 16).
    var xwShift = 0
    if rows > 0, gates > 0, k > 0, let wt = oneRowW {
      xw = alignedRows(rows * gates, shift: &xwShift) { out in
        left.withUnsafeBufferPointer { pa in
          wt.withUnsafeBufferPointer { wt in
            let x = UnsafeRawPointer(pa.baseAddress!).assumingMemoryBound(to: Float.self)
            let y = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self)
            for row in 0 ..< rows {
              Float.rowCombination(
                x + row * k,
                rowBlocked: wt.baseAddress! + d * wStride,
                rows: k,
                columns: gates,
                into: y + row * gates
              )
            }
          }
        }
      }
    } else if rows > 0, gates > 0, k > 0 {
      let offset = d * gates * k
      xw = alignedRows(rows * gates, shift: &xwShift) { out in
        left.withUnsafeBufferPointer { pa in
          right.withUnsafeBufferPointer { pb in
            T.gemm(
              transposeA: false,
              transposeB: true,
              m: rows,
              n: gates,
              k: k,
              alpha: 1,
              a: pa.baseAddress!,
              lda: k,
              b: pb.baseAddress! + offset,
              ldb: k,
              beta: 0,
              c: out,
              ldc: gates
            )
          }
        }
      }
    } else {
      xw = [T](repeating: 0, count: rows * gates)
    }
    var hState =
      initialH.map { Array($0[(d * B * H) ..< ((d + 1) * B * H)]) }
      ?? [T](repeating: 0, count: B * H)
    var cState =
      initialC.map { Array($0[(d * B * H) ..< ((d + 1) * B * H)]) }
      ?? [T](repeating: 0, count: B * H)
    // Every sequence as long as X (the common case) and several of them: each step's H·Rᵀ is
    // added by the GEMM straight into that step's rows of X·Wᵀ (beta 1), where a separate
    // product had OpenBLAS zero it first and the cell read it again: two passes over B·G·H
    // values per step. The cell then adds a row of zeros.
    let accumulate = B > 1 && lengths.allSatisfy { $0 == steps }
    var hr = [T](repeating: 0, count: accumulate ? G * H : B * G * H)
    for step in 0 ..< steps where B * H > 0 {
      hState.withUnsafeBufferPointer { ph in
        r.withUnsafeBufferPointer { pr in
          hr.withUnsafeMutableBufferPointer { po in
            let rd = pr.baseAddress! + d * G * H * H
            if oneRow, let rTransposed {
              rTransposed.withUnsafeBufferPointer { rt in
                Float.rowCombination(
                  UnsafeRawPointer(ph.baseAddress!).assumingMemoryBound(to: Float.self),
                  rowBlocked: rt.baseAddress! + d * rStride,
                  rows: H,
                  columns: G * H,
                  into: UnsafeMutableRawPointer(po.baseAddress!).assumingMemoryBound(
                    to: Float.self
                  ),
                  // Rᵀ (64 KB at hidden 64) is larger than L1: every other step runs backwards
                  // and starts on the blocks the step before ended on, still cached.
                  descending: step % 2 == 1
                )
              }
            } else if B == 1 {
              T.gemv(
                transpose: false,
                m: G * H,
                n: H,
                alpha: 1,
                a: rd,
                lda: H,
                x: ph.baseAddress!,
                beta: 0,
                y: po.baseAddress!
              )
            } else {
              let t = backward ? steps - 1 - step : step
              xw.withUnsafeMutableBufferPointer { xw in
                T.gemm(
                  transposeA: false,
                  transposeB: true,
                  m: B,
                  n: G * H,
                  k: H,
                  alpha: 1,
                  a: ph.baseAddress!,
                  lda: H,
                  b: rd,
                  ldb: H,
                  beta: accumulate ? 1 : 0,
                  c: accumulate ? xw.baseAddress! + xwShift + t * B * G * H : po.baseAddress!,
                  ldc: G * H
                )
              }
            }
          }
        }
      }
      xw.withUnsafeMutableBufferPointer { xw in
        hr.withUnsafeBufferPointer { hr in
          hState.withUnsafeMutableBufferPointer { hState in
            cState.withUnsafeMutableBufferPointer { cState in
              y.withUnsafeMutableBufferPointer { y in
                for batchIndex in 0 ..< B {
                  let length = lengths[batchIndex]
                  let t = backward ? length - 1 - step : step
                  guard t >= 0, t < length else { continue }
                  let row = (t * B + batchIndex) * G * H,
                    hrRow = accumulate ? 0 : batchIndex * G * H,
                    state = batchIndex * H
                  let out = ((t * directions + d) * B + batchIndex) * H
                  // This step's row of X·Wᵀ is read once: the gates are summed and activated
                  // in it, fused with the cell (each unit reads only its own previous state, so
                  // the states update in place).
                  let h = hState.baseAddress! + state
                  T.lstmCell(
                    gates: xw.baseAddress! + xwShift + row,
                    addend: hr.baseAddress! + hrRow,
                    hidden: H,
                    cell: cState.baseAddress! + state,
                    output: h
                  )
                  for j in 0 ..< H { y[out + j] = h[j] }
                }
              }
            }
          }
        }
      }
    }
    for index in 0 ..< (B * H) {
      yh[d * B * H + index] = hState[index]
      yc[d * B * H + index] = cState[index]
    }
  }
  return (y, yh, yc)
}

extension ONNXOperators {
  static let recurrentOperators: [(String, ONNXOperator)] = [
    (
      "RNN",
      ONNXOperator(since: 7, prepare: { RecurrentWeights($0) }) {
        try RecurrentLayer($0, kind: .rnn).run($0)
      }
    ),
    (
      "GRU",
      ONNXOperator(since: 7, prepare: { RecurrentWeights($0) }) {
        try RecurrentLayer($0, kind: .gru).run($0)
      }
    ),
    (
      "LSTM",
      ONNXOperator(since: 7, prepare: { RecurrentWeights($0) }) {
        try RecurrentLayer($0, kind: .lstm).run($0)
      }
    ),
  ]
}
