internal import VaneCore

/// A GPU as a ``TrainingDevice`` (float32): memory from `cudaMalloc`, GEMMs on cuBLAS and the
/// rest on ``CUDAKernels``, all on the default stream, so each step runs in the order it is
/// issued and a download waits for what came before.
public final class CUDATrainingDevice: TrainingDevice {
  public typealias Scalar = Float
  public let device: CUDADevice
  /// Threads of the sum-of-squares launch: its partial sums, added on the host in order.
  static let reductionBlocks = 32, reductionThreads = 256
  private let partials: CUDABuffer<Double>

  /// Why networks cannot train on a GPU here (empty: they can): each CUDA library missing,
  /// or the runtime's reason for no device.
  public static func problems(_ libraries: CUDALibraries.Loaded = CUDALibraries.shared) -> [String]
  {
    var reasons: [String] = []
    switch libraries.runtime {
    case .failure(let error): return ["CUDA runtime: \(error.message)"]
    case .success(let runtime):
      switch runtime.devices {
      case .success(let count) where count == 0: reasons.append("the CUDA runtime sees no GPU")
      case .success: break
      case .failure(let error): reasons.append(error.message)
      }
    }
    if case .failure(let error) = libraries.blas { reasons.append("cuBLAS: \(error.message)") }
    if case .failure(let error) = libraries.nvrtc { reasons.append("NVRTC: \(error.message)") }
    return reasons
  }

  public init(_ device: CUDADevice) throws {
    self.device = device
    self.partials = try device.allocate(
      Double.self,
      count: Self.reductionBlocks * Self.reductionThreads
    )
  }

  private static func address(_ pointer: UnsafePointer<Float>) -> CUDADevice.Argument {
    .pointer(UnsafeMutableRawPointer(mutating: pointer))
  }

  public func allocate(_ count: Int) throws -> UnsafeMutablePointer<Float> {
    try self.device.allocate(bytes: count * MemoryLayout<Float>.stride)
      .assumingMemoryBound(to: Float.self)
  }

  public func free(_ buffer: UnsafeMutablePointer<Float>) {
    self.device.free(UnsafeMutableRawPointer(buffer))
  }

  public func upload(
    _ source: UnsafePointer<Float>,
    to target: UnsafeMutablePointer<Float>,
    count: Int
  )
    throws
  {
    try self.device.copy(target, source, bytes: count * 4, toDevice: true)
  }

  public func download(
    _ source: UnsafePointer<Float>,
    to target: UnsafeMutablePointer<Float>,
    count: Int
  ) throws {
    try self.device.copy(target, source, bytes: count * 4, toDevice: false)
  }

  public func fill(_ target: UnsafeMutablePointer<Float>, with value: Float, count: Int) throws {
    let values = [Float](repeating: value, count: count)
    try values.withUnsafeBufferPointer {
      try self.upload($0.baseAddress!, to: target, count: count)
    }
  }

  public func gemm(
    transposeA: Bool,
    transposeB: Bool,
    m: Int,
    n: Int,
    k: Int,
    alpha: Float,
    a: UnsafePointer<Float>,
    lda: Int,
    b: UnsafePointer<Float>,
    ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>,
    ldc: Int
  ) throws {
    try self.device.gemm(
      transposeA: transposeA,
      transposeB: transposeB,
      m: m,
      n: n,
      k: k,
      alpha: alpha,
      a: UnsafeMutableRawPointer(mutating: a),
      lda: lda,
      b: UnsafeMutableRawPointer(mutating: b),
      ldb: ldb,
      beta: beta,
      c: UnsafeMutableRawPointer(c),
      ldc: ldc
    )
  }

  public func biasMean(
    z: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>,
    mean: UnsafeMutablePointer<Float>,
    count: Int,
    units: Int
  ) throws {
    try self.device.launch(
      "vane_bias_mean",
      threads: units,
      [.pointer(z), Self.address(bias), .pointer(mean), .int32(Int32(count)), .int32(Int32(units))]
    )
  }

  public func variance(
    z: UnsafePointer<Float>,
    mean: UnsafePointer<Float>,
    variance: UnsafeMutablePointer<Float>,
    inverseStd: UnsafeMutablePointer<Float>,
    count: Int,
    units: Int,
    epsilon: Float
  ) throws {
    try self.device.launch(
      "vane_variance",
      threads: units,
      [
        Self.address(z), Self.address(mean), .pointer(variance), .pointer(inverseStd),
        .int32(Int32(count)), .int32(Int32(units)), .float(epsilon),
      ]
    )
  }

  public func normalizeActivate(
    z: UnsafeMutablePointer<Float>,
    out: UnsafeMutablePointer<Float>,
    mean: UnsafePointer<Float>,
    inverseStd: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>,
    beta: UnsafePointer<Float>,
    mask: UnsafePointer<Float>,
    count: Int,
    units: Int,
    activation: TrainingActivation
  ) throws {
    try self.device.launch(
      "vane_normalize_activate",
      threads: count * units,
      [
        .pointer(z), .pointer(out), Self.address(mean), Self.address(inverseStd),
        Self.address(gamma), Self.address(beta), Self.address(mask), .int32(Int32(count)),
        .int32(Int32(units)), .int32(activation.rawValue),
      ]
    )
  }

  public func activationBackward(
    delta: UnsafeMutablePointer<Float>,
    normal: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>,
    beta: UnsafePointer<Float>,
    mask: UnsafePointer<Float>,
    dGamma: UnsafeMutablePointer<Float>,
    dBeta: UnsafeMutablePointer<Float>,
    count: Int,
    units: Int,
    activation: TrainingActivation
  ) throws {
    try self.device.launch(
      "vane_activation_backward",
      threads: units,
      [
        .pointer(delta), Self.address(normal), Self.address(gamma), Self.address(beta),
        Self.address(mask), .pointer(dGamma), .pointer(dBeta), .int32(Int32(count)),
        .int32(Int32(units)), .int32(activation.rawValue),
      ]
    )
  }

  public func batchNormBackward(
    delta: UnsafeMutablePointer<Float>,
    normal: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>,
    inverseStd: UnsafePointer<Float>,
    dGamma: UnsafePointer<Float>,
    dBeta: UnsafePointer<Float>,
    dBias: UnsafeMutablePointer<Float>,
    count: Int,
    units: Int
  ) throws {
    try self.device.launch(
      "vane_batchnorm_backward",
      threads: units,
      [
        .pointer(delta), Self.address(normal), Self.address(gamma), Self.address(inverseStd),
        Self.address(dGamma), Self.address(dBeta), .pointer(dBias), .int32(Int32(count)),
        .int32(Int32(units)),
      ]
    )
  }

  public func columnSums(
    _ x: UnsafePointer<Float>,
    into sums: UnsafeMutablePointer<Float>,
    count: Int,
    columns: Int
  ) throws {
    try self.device.launch(
      "vane_column_sums",
      threads: columns,
      [Self.address(x), .pointer(sums), .int32(Int32(count)), .int32(Int32(columns))]
    )
  }

  public func multiply(
    _ out: UnsafeMutablePointer<Float>,
    _ a: UnsafePointer<Float>,
    _ b: UnsafePointer<Float>,
    count: Int
  ) throws {
    try self.device.launch(
      "vane_multiply",
      threads: count,
      [.pointer(out), Self.address(a), Self.address(b), .int64(count)]
    )
  }

  public func lstmCell(
    gates: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>,
    previousCell: UnsafePointer<Float>,
    cell: UnsafeMutablePointer<Float>,
    cellTanh: UnsafeMutablePointer<Float>,
    hidden: UnsafeMutablePointer<Float>,
    output: UnsafeMutablePointer<Float>,
    mask: UnsafePointer<Float>,
    count: Int,
    units: Int
  ) throws {
    try self.device.launch(
      "vane_lstm_cell",
      threads: count * units,
      [
        .pointer(gates), Self.address(bias), Self.address(previousCell), .pointer(cell),
        .pointer(cellTanh), .pointer(hidden), .pointer(output), Self.address(mask),
        .int32(Int32(count)), .int32(Int32(units)),
      ]
    )
  }

  public func lstmCellBackward(
    gates: UnsafePointer<Float>,
    cellTanh: UnsafePointer<Float>,
    previousCell: UnsafePointer<Float>,
    dOutput: UnsafePointer<Float>,
    mask: UnsafePointer<Float>,
    dHiddenNext: UnsafePointer<Float>,
    dCellNext: UnsafeMutablePointer<Float>,
    dGates: UnsafeMutablePointer<Float>,
    count: Int,
    units: Int
  ) throws {
    try self.device.launch(
      "vane_lstm_cell_backward",
      threads: count * units,
      [
        Self.address(gates), Self.address(cellTanh), Self.address(previousCell),
        Self.address(dOutput), Self.address(mask), Self.address(dHiddenNext), .pointer(dCellNext),
        .pointer(dGates), .int32(Int32(count)), .int32(Int32(units)),
      ]
    )
  }

  public func optimize(
    _ optimizer: AdamW,
    theta: UnsafeMutablePointer<Float>,
    gradient: UnsafeMutablePointer<Float>,
    firstMoment: UnsafeMutablePointer<Float>,
    secondMoment: UnsafeMutablePointer<Float>,
    decay: UnsafePointer<Float>,
    count: Int,
    step: Int,
    clipNorm: Double
  ) throws {
    if clipNorm > 0 {
      // The norm in double: fixed partial sums on the device, added in order here.
      try self.device.launch(
        "vane_sum_squares",
        grid: Self.reductionBlocks,
        block: Self.reductionThreads,
        [.pointer(gradient), self.partials.argument, .int64(count)]
      )
      let norm = try self.partials.values().reduce(0, +).squareRoot()
      if norm > clipNorm {
        try self.device.launch(
          "vane_scale",
          threads: count,
          [.pointer(gradient), .float(Float(clipNorm / norm)), .int64(count)]
        )
      }
    }
    // The scalars as AdamW.step derives them.
    let (correction1, correction2) = optimizer.biasCorrections(step: step)
    try self.device.launch(
      "vane_adamw_moments",
      threads: count,
      [
        .pointer(firstMoment), .pointer(secondMoment), Self.address(gradient),
        .float(Float(optimizer.beta1)), .float(Float(optimizer.beta2)), .int64(count),
      ]
    )
    try self.device.launch(
      "vane_adamw_update",
      threads: count,
      [
        .pointer(theta), Self.address(firstMoment), Self.address(secondMoment),
        Self.address(decay), .float(Float(optimizer.learningRate / correction1)),
        .float(Float(correction2)), .float(Float(optimizer.learningRate * optimizer.weightDecay)),
        .float(Float(optimizer.epsilon)), .int64(count),
      ]
    )
  }
}
