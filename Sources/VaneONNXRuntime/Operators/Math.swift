internal import VaneMath

/// numpy's matmul: 1-D operands are promoted (and the added axis dropped after), leading
/// axes broadcast, each matrix product on OpenBLAS for floats.
func matmul(_ a: ONNXTensor, _ b: ONNXTensor, context: ONNXNodeContext) throws -> ONNXTensor {
  guard a.rank >= 1, b.rank >= 1 else { throw ONNXRuntimeError.invalid("MatMul of a scalar") }
  let shapeA = a.rank == 1 ? [1, a.shape[0]] : a.shape,
    shapeB = b.rank == 1 ? [b.shape[0], 1] : b.shape
  let m = shapeA[shapeA.count - 2], k = shapeA[shapeA.count - 1], n = shapeB[shapeB.count - 1]
  guard shapeB[shapeB.count - 2] == k else {
    throw ONNXRuntimeError.invalid("shapes \(a.shape) and \(b.shape) do not multiply")
  }
  let batchA = Array(shapeA.dropLast(2)), batchB = Array(shapeB.dropLast(2))
  let batch = try Broadcast.shape([batchA, batchB])
  var shape = batch + [m, n]
  let batches = batch.reduce(1, *)
  _ = try context.checkedCount(shape)
  // Which matrix of A and of B each output matrix uses.
  let ia = Broadcast.indices(of: batchA, in: batch) ?? Array(0 ..< batches)
  let ib = Broadcast.indices(of: batchB, in: batch) ?? Array(0 ..< batches)
  if a.rank == 1 { shape.remove(at: shape.count - 2) }
  if b.rank == 1 { shape.removeLast() }

  func product<T: ONNXFloat>(_ x: [T], _ y: [T]) -> [T] {
    var out = [T](repeating: 0, count: batches * m * n)
    guard m > 0, n > 0 else { return out }
    x.withUnsafeBufferPointer { px in
      y.withUnsafeBufferPointer { py in
        out.withUnsafeMutableBufferPointer { po in
          for i in 0 ..< batches {
            if k == 0 { continue }
            if m == 1 {
              // One row: y = Bᵀ·x with B k×n, i.e. a transposed GEMV over B.
              T.gemv(
                transpose: true,
                m: k,
                n: n,
                alpha: 1,
                a: py.baseAddress! + ib[i] * k * n,
                lda: n,
                x: px.baseAddress! + ia[i] * m * k,
                beta: 0,
                y: po.baseAddress! + i * m * n
              )
              continue
            }
            T.gemm(
              transposeA: false,
              transposeB: false,
              m: m,
              n: n,
              k: k,
              alpha: 1,
              a: px.baseAddress! + ia[i] * m * k,
              lda: k,
              b: py.baseAddress! + ib[i] * k * n,
              ldb: n,
              beta: 0,
              c: po.baseAddress! + i * m * n,
              ldc: n
            )
          }
        }
      }
    }
    return out
  }
  switch (a.values, b.values) {
  case (.float(let x), .float(let y)): return ONNXTensor(shape: shape, floats: product(x, y))
  case (.double(let x), .double(let y)): return ONNXTensor(shape: shape, doubles: product(x, y))
  case (.integer(let x), .integer(let y)) where a.elementType == b.elementType:
    var out = [Int64](repeating: 0, count: batches * m * n)
    for i in 0 ..< batches {
      for r in 0 ..< m {
        for c in 0 ..< n {
          var sum: Int64 = 0
          for j in 0 ..< k {
            sum = sum &+ x[ia[i] * m * k + r * k + j] &* y[ib[i] * k * n + j * n + c]
          }
          out[i * m * n + r * n + c] = sum
        }
      }
    }
    return ONNXTensor(shape: shape, integers: out, type: a.elementType)
  default: throw ONNXRuntimeError.invalid("operands are \(a.elementType) and \(b.elementType)")
  }
}

/// Gemm's attributes, read once at load: by name on every run they were four dictionary
/// lookups of a single row's few microseconds.
struct GemmAttributes: Sendable {
  let transA: Bool, transB: Bool
  let alpha: Double, beta: Double
  /// An elementwise function loading fused into this node (the Relu or Sigmoid that was its
  /// result's only reader), applied to the result in place.
  var activation: GenericUnary? = nil

  init(_ context: ONNXNodeContext) {
    self.transA = context.int("transA", 0) != 0
    self.transB = context.int("transB", 0) != 0
    self.alpha = context.float("alpha", 1)
    self.beta = context.float("beta", 1)
  }
}

/// Gemm: alpha·op(A)·op(B) + beta·C, C broadcast to the result.
func gemm(_ context: ONNXNodeContext) throws -> ONNXTensor {
  let a = try context.input(0), b = try context.input(1)
  guard a.rank == 2, b.rank == 2 else {
    throw ONNXRuntimeError.invalid("A and B must be matrices, not \(a.shape) and \(b.shape)")
  }
  let attributes = context.prepared as? GemmAttributes ?? GemmAttributes(context)
  let (transA, transB) = (attributes.transA, attributes.transB)
  let (alpha, beta) = (attributes.alpha, attributes.beta)
  let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
  let n = transB ? b.shape[0] : b.shape[1]
  guard (transB ? b.shape[1] : b.shape[0]) == k else {
    throw ONNXRuntimeError.invalid("shapes \(a.shape) and \(b.shape) do not multiply")
  }
  _ = try context.checkedCount([m, n])
  func run<T: ONNXFloat>(_ x: [T], _ y: [T]) throws -> ONNXTensor {
    // Zeros only where no C is added: a bias row overwrites every element anyway.
    let c = beta != 0 ? context.optionalInput(2) : nil
    var out =
      c == nil || m == 0
      ? [T](repeating: 0, count: m * n)
      : [T](unsafeUninitializedCapacity: m * n) { _, initialized in initialized = m * n }
    if let c {
      guard let values = T.values(of: c) else {
        throw ONNXRuntimeError.invalid("C is \(c.elementType), A is \(a.elementType)")
      }
      // A bias row ([n] or [1, n]) or a whole [m, n] broadcasts as it is; anything else is checked.
      let plain = c.shape == [n] || c.shape == [1, n] || c.shape == [m, n]
      guard try plain || Broadcast.shape([c.shape, [m, n]]) == [m, n] else {
        throw ONNXRuntimeError.invalid("C of shape \(c.shape) does not broadcast to [\(m), \(n)]")
      }
      if n > 0 && values.count == n && c.shape.last == n {
        // A bias row ([n] or [1, n]), the common case: copied into each row, where an index
        // per element would cost more than the copy.
        out.withUnsafeMutableBufferPointer { out in
          values.withUnsafeBufferPointer { row in
            for i in 0 ..< m {
              (out.baseAddress! + i * n).update(from: row.baseAddress!, count: n)
            }
          }
        }
      } else if values.count == m * n {
        out = values
      } else {
        let indices = Broadcast.indices(of: c.shape, in: [m, n]) ?? Array(0 ..< (m * n))
        for i in 0 ..< (m * n) { out[i] = values[indices[i]] }
      }
    }
    if k == 0, c != nil, beta != 1 {
      // No product for BLAS to scale C by beta.
      for i in out.indices { out[i] *= T(beta) }
    }
    if m > 0, n > 0, k > 0 {
      x.withUnsafeBufferPointer { px in
        y.withUnsafeBufferPointer { py in
          out.withUnsafeMutableBufferPointer { po in
            let betaValue: T = c == nil ? 0 : T(beta)
            if m == 1 && !transA {
              // One row: op(B)ᵀ·a as a GEMV (B is n×k when transposed, k×n otherwise).
              T.gemv(
                transpose: !transB,
                m: transB ? n : k,
                n: transB ? k : n,
                alpha: T(alpha),
                a: py.baseAddress!,
                lda: b.shape[1],
                x: px.baseAddress!,
                beta: betaValue,
                y: po.baseAddress!
              )
            } else {
              T.gemm(
                transposeA: transA,
                transposeB: transB,
                m: m,
                n: n,
                k: k,
                alpha: T(alpha),
                a: px.baseAddress!,
                lda: a.shape[1],
                b: py.baseAddress!,
                ldb: b.shape[1],
                beta: betaValue,
                c: po.baseAddress!,
                ldc: n
              )
            }
          }
        }
      }
    }
    if let activation = attributes.activation {
      out.withUnsafeMutableBufferPointer { activation.apply(inPlace: $0) }
    }
    return T.tensor(out, shape: [m, n])
  }
  switch (a.values, b.values) {
  case (.float(let x), .float(let y)): return try run(x, y)
  case (.double(let x), .double(let y)): return try run(x, y)
  default: throw ONNXRuntimeError.unsupported("Gemm of \(a.elementType) and \(b.elementType)")
  }
}

extension ONNXOperators {
  static let mathOperators: [(String, ONNXOperator)] = [
    (
      "MatMul",
      ONNXOperator(since: 1) { context in
        [try matmul(try context.input(0), try context.input(1), context: context)]
      }
    ),
    ("Gemm", ONNXOperator(since: 1, prepare: { GemmAttributes($0) }) { [try gemm($0)] }),
  ]
}
