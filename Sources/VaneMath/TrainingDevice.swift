internal import Foundation

/// A hidden layer's activation, as the training devices compute it (codes as the CUDA kernels
/// take them).
public enum TrainingActivation: Int32, Sendable {
  case relu = 0
  case gelu = 1
  case tanh = 2

  /// The activation in double (GELU's exact erf form).
  public func callAsFunction(_ x: Double) -> Double {
    switch self {
    case .relu: max(x, 0)
    case .gelu: 0.5 * x * (1 + erf(x / 2.squareRoot()))
    case .tanh: Foundation.tanh(x)
    }
  }

  /// Its derivative in double.
  public func derivative(_ x: Double) -> Double {
    switch self {
    case .relu: x > 0 ? 1 : 0
    case .gelu:
      0.5 * (1 + erf(x / 2.squareRoot())) + x * exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
    case .tanh: 1 - Foundation.tanh(x) * Foundation.tanh(x)
    }
  }
}

/// Where a network trains: its memory and the arithmetic of a training step, so that one
/// engine and one training loop (batches, early stopping, cancellation) run on the CPU
/// (``CPUTrainingDevice``) or a GPU (``CUDATrainingDevice``).
///
/// Buffers are the device's (`allocate`): the caller reads and writes them only through
/// ``upload(_:to:count:)`` and ``download(_:to:count:)``. Matrices are row-major. Each
/// per-column operation adds its rows in order, so the CPU and the GPU sum alike.
public protocol TrainingDevice<Scalar>: AnyObject {
  associatedtype Scalar: BLASScalar

  /// `count` zeroed values of device memory, until ``free(_:)``.
  func allocate(_ count: Int) throws -> UnsafeMutablePointer<Scalar>
  func free(_ buffer: UnsafeMutablePointer<Scalar>)
  func upload(
    _ source: UnsafePointer<Scalar>,
    to target: UnsafeMutablePointer<Scalar>,
    count: Int
  )
    throws
  func download(
    _ source: UnsafePointer<Scalar>,
    to target: UnsafeMutablePointer<Scalar>,
    count: Int
  ) throws
  func fill(_ target: UnsafeMutablePointer<Scalar>, with value: Scalar, count: Int) throws

  /// C ← α·op(A)·op(B) + β·C (as ``BLASScalar/gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``).
  func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Scalar,
    a: UnsafePointer<Scalar>,
    lda: Int,
    b: UnsafePointer<Scalar>,
    ldb: Int,
    beta: Scalar,
    c: UnsafeMutablePointer<Scalar>,
    ldc: Int
  ) throws

  /// z ← z + bias (each row); mean ← the columns' means.
  func biasMean(
    z: UnsafeMutablePointer<Scalar>,
    bias: UnsafePointer<Scalar>,
    mean: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int
  ) throws

  /// variance ← the columns' biased variances about `mean`; inverseStd ← 1/√(variance + ε).
  func variance(
    z: UnsafePointer<Scalar>,
    mean: UnsafePointer<Scalar>,
    variance: UnsafeMutablePointer<Scalar>,
    inverseStd: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int,
    epsilon: Scalar
  ) throws

  /// z ← (z − mean)·inverseStd (x̂); out ← act(γ x̂ + β) · mask.
  func normalizeActivate(
    z: UnsafeMutablePointer<Scalar>,
    out: UnsafeMutablePointer<Scalar>,
    mean: UnsafePointer<Scalar>,
    inverseStd: UnsafePointer<Scalar>,
    gamma: UnsafePointer<Scalar>,
    beta: UnsafePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    count: Int,
    units: Int,
    activation: TrainingActivation
  ) throws

  /// δ ← δ · mask · act′(γ x̂ + β); ∂γ ← Σ δ x̂, ∂β ← Σ δ over the rows.
  func activationBackward(
    delta: UnsafeMutablePointer<Scalar>,
    normal: UnsafePointer<Scalar>,
    gamma: UnsafePointer<Scalar>,
    beta: UnsafePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    dGamma: UnsafeMutablePointer<Scalar>,
    dBeta: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int,
    activation: TrainingActivation
  ) throws

  /// Through the batch normalisation, with Σᵢ ∂L/∂x̂ = γ·∂L/∂β and Σᵢ ∂L/∂x̂·x̂ = γ·∂L/∂γ:
  /// δ ← γ/σ · (δ − ∂β/b − x̂ ∂γ/b); ∂bias ← Σ δ.
  func batchNormBackward(
    delta: UnsafeMutablePointer<Scalar>,
    normal: UnsafePointer<Scalar>,
    gamma: UnsafePointer<Scalar>,
    inverseStd: UnsafePointer<Scalar>,
    dGamma: UnsafePointer<Scalar>,
    dBeta: UnsafePointer<Scalar>,
    dBias: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int
  ) throws

  /// sums ← the columns' sums.
  func columnSums(
    _ x: UnsafePointer<Scalar>,
    into sums: UnsafeMutablePointer<Scalar>,
    count: Int,
    columns: Int
  ) throws

  /// out ← a · b, element by element (`out` may be `a`).
  func multiply(
    _ out: UnsafeMutablePointer<Scalar>,
    _ a: UnsafePointer<Scalar>,
    _ b: UnsafePointer<Scalar>,
    count: Int
  ) throws

  /// One LSTM step for `count` rows of `units` (``Logistic/lstmCell(gates:bias:hidden:previousCell:cell:cellTanh:output:order:keepingActivations:)``
  /// per row: the gates, `4·units` a row, activated in place), then output ← hidden · mask.
  func lstmCell(
    gates: UnsafeMutablePointer<Scalar>,
    bias: UnsafePointer<Scalar>,
    previousCell: UnsafePointer<Scalar>,
    cell: UnsafeMutablePointer<Scalar>,
    cellTanh: UnsafeMutablePointer<Scalar>,
    hidden: UnsafeMutablePointer<Scalar>,
    output: UnsafeMutablePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    count: Int,
    units: Int
  ) throws

  /// One step back through the cell: from the output's gradient (times its mask), the next
  /// step's hidden gradient and the carried cell gradient, the gates' pre-activation gradients
  /// (`4·units` a row); the carried cell gradient becomes the previous cell's.
  func lstmCellBackward(
    gates: UnsafePointer<Scalar>,
    cellTanh: UnsafePointer<Scalar>,
    previousCell: UnsafePointer<Scalar>,
    dOutput: UnsafePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    dHiddenNext: UnsafePointer<Scalar>,
    dCellNext: UnsafeMutablePointer<Scalar>,
    dGates: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int
  ) throws

  /// Clips the gradient to global norm `clipNorm` (0: none), then one AdamW step
  /// (``AdamW/step(theta:gradient:firstMoment:secondMoment:decay:count:step:)``).
  func optimize(
    _ optimizer: AdamW,
    theta: UnsafeMutablePointer<Scalar>,
    gradient: UnsafeMutablePointer<Scalar>,
    firstMoment: UnsafeMutablePointer<Scalar>,
    secondMoment: UnsafeMutablePointer<Scalar>,
    decay: UnsafePointer<Scalar>,
    count: Int,
    step: Int,
    clipNorm: Double
  ) throws
}

/// The CPU: host memory, OpenBLAS's GEMM and loops the compiler vectorises (each touches few
/// buffers, so that its overlap checks stay few enough: see ``AdamW/step(theta:gradient:firstMoment:secondMoment:decay:count:step:)``).
public final class CPUTrainingDevice<Scalar: BLASScalar>: TrainingDevice {
  /// Three per-unit vectors for the batch-norm backward pass, grown as needed.
  @usableFromInline var scratch: UnsafeMutablePointer<Scalar>
  @usableFromInline var scratchUnits = 0

  public init() {
    self.scratch = .allocate(capacity: 0)
  }

  deinit { self.scratch.deallocate() }

  @inlinable
  public func allocate(_ count: Int) -> UnsafeMutablePointer<Scalar> {
    let buffer = UnsafeMutablePointer<Scalar>.allocate(capacity: count)
    buffer.initialize(repeating: 0, count: count)
    return buffer
  }

  @inlinable
  public func free(_ buffer: UnsafeMutablePointer<Scalar>) { buffer.deallocate() }

  // The copies and the fill are never inlined: inlined at the end of a throwing function
  // (the engines' `load` and `drawMasks` end with an upload), the copy becomes a tail call to
  // memmove or memset that skips restoring the error register, and the caller sees an error
  // that was never thrown (the toolchain's LLVM misses the guard it keeps for other tail calls
  // out of throwing functions: swiftlang/swift#90477). An ordinary call keeps the guard.
  // scripts/check_error_register.py finds the pattern in a release build.
  @inline(never)
  public func upload(
    _ source: UnsafePointer<Scalar>,
    to target: UnsafeMutablePointer<Scalar>,
    count: Int
  ) {
    target.update(from: source, count: count)
  }

  @inline(never)
  public func download(
    _ source: UnsafePointer<Scalar>,
    to target: UnsafeMutablePointer<Scalar>,
    count: Int
  ) {
    target.update(from: source, count: count)
  }

  @inline(never)
  public func fill(_ target: UnsafeMutablePointer<Scalar>, with value: Scalar, count: Int) {
    target.update(repeating: value, count: count)
  }

  @inlinable
  public func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Scalar,
    a: UnsafePointer<Scalar>,
    lda: Int,
    b: UnsafePointer<Scalar>,
    ldb: Int,
    beta: Scalar,
    c: UnsafeMutablePointer<Scalar>,
    ldc: Int
  ) {
    Scalar.gemm(
      transposeA: transposeA,
      transposeB: transposeB,
      m: m,
      n: n,
      k: k,
      alpha: alpha,
      a: a,
      lda: lda,
      b: b,
      ldb: ldb,
      beta: beta,
      c: c,
      ldc: ldc
    )
  }

  @inlinable
  public func biasMean(
    z: UnsafeMutablePointer<Scalar>,
    bias: UnsafePointer<Scalar>,
    mean: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int
  ) {
    mean.update(repeating: 0, count: units)
    for i in 0 ..< count {
      let row = z + i * units
      for j in 0 ..< units {
        row[j] += bias[j]
        mean[j] += row[j]
      }
    }
    let b = Scalar(count)
    for j in 0 ..< units { mean[j] /= b }
  }

  @inlinable
  public func variance(
    z: UnsafePointer<Scalar>,
    mean: UnsafePointer<Scalar>,
    variance: UnsafeMutablePointer<Scalar>,
    inverseStd: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int,
    epsilon: Scalar
  ) {
    variance.update(repeating: 0, count: units)
    for i in 0 ..< count {
      let row = z + i * units
      for j in 0 ..< units {
        let d = row[j] - mean[j]
        variance[j] += d * d
      }
    }
    let b = Scalar(count)
    for j in 0 ..< units {
      variance[j] /= b
      inverseStd[j] = 1 / (variance[j] + epsilon).squareRoot()
    }
  }

  @inlinable
  public func normalizeActivate(
    z: UnsafeMutablePointer<Scalar>,
    out: UnsafeMutablePointer<Scalar>,
    mean: UnsafePointer<Scalar>,
    inverseStd: UnsafePointer<Scalar>,
    gamma: UnsafePointer<Scalar>,
    beta: UnsafePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    count: Int,
    units: Int,
    activation: TrainingActivation
  ) {
    for i in 0 ..< count {
      let row = z + i * units, out = out + i * units, mask = mask + i * units
      for j in 0 ..< units { row[j] = (row[j] - mean[j]) * inverseStd[j] }
      switch activation {
      case .relu:
        for j in 0 ..< units {
          let y = gamma[j] * row[j] + beta[j]
          out[j] = y * (y > 0 ? 1 : 0) * mask[j]
        }
      case .gelu, .tanh:
        for j in 0 ..< units {
          out[j] = Scalar(activation(Double(gamma[j] * row[j] + beta[j]))) * mask[j]
        }
      }
    }
  }

  @inlinable
  public func activationBackward(
    delta: UnsafeMutablePointer<Scalar>,
    normal: UnsafePointer<Scalar>,
    gamma: UnsafePointer<Scalar>,
    beta: UnsafePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    dGamma: UnsafeMutablePointer<Scalar>,
    dBeta: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int,
    activation: TrainingActivation
  ) {
    dGamma.update(repeating: 0, count: units)
    dBeta.update(repeating: 0, count: units)
    for i in 0 ..< count {
      let d = delta + i * units, normal = normal + i * units, mask = mask + i * units
      switch activation {
      case .relu:
        // A product with a chosen constant, not a chosen store: that vectorises.
        for j in 0 ..< units { d[j] *= mask[j] * (gamma[j] * normal[j] + beta[j] > 0 ? 1 : 0) }
      case .gelu, .tanh:
        for j in 0 ..< units {
          d[j] *= mask[j] * Scalar(activation.derivative(Double(gamma[j] * normal[j] + beta[j])))
        }
      }
      for j in 0 ..< units {
        dGamma[j] += d[j] * normal[j]
        dBeta[j] += d[j]
      }
    }
  }

  @inlinable
  public func batchNormBackward(
    delta: UnsafeMutablePointer<Scalar>,
    normal: UnsafePointer<Scalar>,
    gamma: UnsafePointer<Scalar>,
    inverseStd: UnsafePointer<Scalar>,
    dGamma: UnsafePointer<Scalar>,
    dBeta: UnsafePointer<Scalar>,
    dBias: UnsafeMutablePointer<Scalar>,
    count: Int,
    units: Int
  ) {
    if self.scratchUnits < units {
      self.scratch.deallocate()
      self.scratch = .allocate(capacity: 3 * units)
      self.scratchUnits = units
    }
    // The per-unit factors once: γ/σ, ∂β/b and ∂γ/b.
    let scale = self.scratch, shift = self.scratch + units, slope = self.scratch + 2 * units
    let b = Scalar(count)
    for j in 0 ..< units {
      scale[j] = gamma[j] * inverseStd[j]
      shift[j] = dBeta[j] / b
      slope[j] = dGamma[j] / b
    }
    dBias.update(repeating: 0, count: units)
    for i in 0 ..< count {
      let d = delta + i * units, normal = normal + i * units
      for j in 0 ..< units { d[j] = scale[j] * (d[j] - shift[j] - normal[j] * slope[j]) }
      for j in 0 ..< units { dBias[j] += d[j] }
    }
  }

  @inlinable
  public func columnSums(
    _ x: UnsafePointer<Scalar>,
    into sums: UnsafeMutablePointer<Scalar>,
    count: Int,
    columns: Int
  ) {
    sums.update(repeating: 0, count: columns)
    for i in 0 ..< count { for c in 0 ..< columns { sums[c] += x[i * columns + c] } }
  }

  @inlinable
  public func multiply(
    _ out: UnsafeMutablePointer<Scalar>,
    _ a: UnsafePointer<Scalar>,
    _ b: UnsafePointer<Scalar>,
    count: Int
  ) {
    for k in 0 ..< count { out[k] = a[k] * b[k] }
  }

  @inlinable
  public func lstmCell(
    gates: UnsafeMutablePointer<Scalar>,
    bias: UnsafePointer<Scalar>,
    previousCell: UnsafePointer<Scalar>,
    cell: UnsafeMutablePointer<Scalar>,
    cellTanh: UnsafeMutablePointer<Scalar>,
    hidden: UnsafeMutablePointer<Scalar>,
    output: UnsafeMutablePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    count: Int,
    units H: Int
  ) {
    for i in 0 ..< count {
      let hi = hidden + i * H
      Self.cell(
        gates: gates + i * 4 * H,
        bias: bias,
        hidden: H,
        previousCell: previousCell + i * H,
        cell: cell + i * H,
        cellTanh: cellTanh + i * H,
        output: hi
      )
      let oi = output + i * H, mi = mask + i * H
      for j in 0 ..< H { oi[j] = hi[j] * mi[j] }
    }
  }

  /// ``Logistic``'s lane cell in this precision (the branch folds away once specialised).
  @inlinable
  static func cell(
    gates: UnsafeMutablePointer<Scalar>,
    bias: UnsafePointer<Scalar>,
    hidden: Int,
    previousCell: UnsafePointer<Scalar>,
    cell: UnsafeMutablePointer<Scalar>,
    cellTanh: UnsafeMutablePointer<Scalar>,
    output: UnsafeMutablePointer<Scalar>
  ) {
    func cast<T>(_ p: UnsafeMutablePointer<Scalar>, _: T.Type) -> UnsafeMutablePointer<T> {
      UnsafeMutableRawPointer(p).assumingMemoryBound(to: T.self)
    }
    func cast<T>(_ p: UnsafePointer<Scalar>, _: T.Type) -> UnsafePointer<T> {
      UnsafeRawPointer(p).assumingMemoryBound(to: T.self)
    }
    if Scalar.self == Float.self {
      Logistic.lstmCell(
        gates: cast(gates, Float.self),
        bias: cast(bias, Float.self),
        hidden: hidden,
        previousCell: cast(previousCell, Float.self),
        cell: cast(cell, Float.self),
        cellTanh: cast(cellTanh, Float.self),
        output: cast(output, Float.self)
      )
    } else {
      precondition(Scalar.self == Double.self, "an LSTM trains in Float or Double")
      Logistic.lstmCell(
        gates: cast(gates, Double.self),
        bias: cast(bias, Double.self),
        hidden: hidden,
        previousCell: cast(previousCell, Double.self),
        cell: cast(cell, Double.self),
        cellTanh: cast(cellTanh, Double.self),
        output: cast(output, Double.self)
      )
    }
  }

  @inlinable
  public func lstmCellBackward(
    gates: UnsafePointer<Scalar>,
    cellTanh: UnsafePointer<Scalar>,
    previousCell: UnsafePointer<Scalar>,
    dOutput: UnsafePointer<Scalar>,
    mask: UnsafePointer<Scalar>,
    dHiddenNext: UnsafePointer<Scalar>,
    dCellNext: UnsafeMutablePointer<Scalar>,
    dGates: UnsafeMutablePointer<Scalar>,
    count: Int,
    units H: Int
  ) {
    let G = 4 * H
    for i in 0 ..< count {
      let row = gates + i * G, dRow = dGates + i * G
      let ti = cellTanh + i * H, pi = previousCell + i * H
      let dh = dOutput + i * H, mi = mask + i * H
      let dhNext = dHiddenNext + i * H, dcNext = dCellNext + i * H
      for j in 0 ..< H {
        let (ig, fg, gg, og) = (row[j], row[H + j], row[2 * H + j], row[3 * H + j])
        let tc = ti[j]
        let dhTotal = dh[j] * mi[j] + dhNext[j]
        let dc = dhTotal * og * (1 - tc * tc) + dcNext[j]
        dRow[j] = dc * gg * ig * (1 - ig)
        dRow[H + j] = dc * pi[j] * fg * (1 - fg)
        dRow[2 * H + j] = dc * ig * (1 - gg * gg)
        dRow[3 * H + j] = dhTotal * tc * og * (1 - og)
        dcNext[j] = dc * fg
      }
    }
  }

  @inlinable
  public func optimize(
    _ optimizer: AdamW,
    theta: UnsafeMutablePointer<Scalar>,
    gradient: UnsafeMutablePointer<Scalar>,
    firstMoment: UnsafeMutablePointer<Scalar>,
    secondMoment: UnsafeMutablePointer<Scalar>,
    decay: UnsafePointer<Scalar>,
    count: Int,
    step: Int,
    clipNorm: Double
  ) {
    AdamW.clip(gradient, count: count, maximumNorm: clipNorm)
    optimizer.step(
      theta: theta,
      gradient: gradient,
      firstMoment: firstMoment,
      secondMoment: secondMoment,
      decay: decay,
      count: count,
      step: step
    )
  }
}
