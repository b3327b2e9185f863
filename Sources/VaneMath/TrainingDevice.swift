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

  @inlinable
  public func upload(
    _ source: UnsafePointer<Scalar>,
    to target: UnsafeMutablePointer<Scalar>,
    count: Int
  ) {
    target.update(from: source, count: count)
  }

  @inlinable
  public func download(
    _ source: UnsafePointer<Scalar>,
    to target: UnsafeMutablePointer<Scalar>,
    count: Int
  ) {
    target.update(from: source, count: count)
  }

  @inlinable
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
