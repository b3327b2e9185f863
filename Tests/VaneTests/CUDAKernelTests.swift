import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneMath

/// The MLP training kernels without a GPU: NVRTC compiles them (when its wheel is installed),
/// and the same source compiled for the host by clang++ is run thread by thread and checked
/// against the CPU code (AdamW), closed forms and finite differences.
// Serialized: a host launch sets the library's blockIdx and threadIdx globals.
@Suite(
  "CUDA kernels: NVRTC compiles them; on the host they compute what the CPU engine does",
  .serialized
)
struct CUDAKernelTests {
  /// The kernel source built as a host shared library, with CUDA's built-ins emulated: a
  /// launch runs every block's threads one after another.
  final class HostKernels: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    let blockIdx: UnsafeMutablePointer<UInt32>
    let blockDim: UnsafeMutablePointer<UInt32>
    let threadIdx: UnsafeMutablePointer<UInt32>
    let gridDim: UnsafeMutablePointer<UInt32>

    static let prelude = """
      #include <math.h>
      #define __global__
      #define __device__
      struct vane_dim3 { unsigned int x, y, z; };
      extern "C" { vane_dim3 blockIdx, blockDim, threadIdx, gridDim; }

      """

    /// Compiled once per process; nil (with the reason) without clang++.
    static let shared: Result<HostKernels, VaneError> = Result { try HostKernels() }
      .mapError { $0 as? VaneError ?? VaneError(.internalError, "\($0)") }

    init() throws {
      let compiler = ["/opt/swift/usr/bin/clang++", "/usr/bin/clang++", "/usr/bin/g++"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
      guard let compiler else {
        throw VaneError(.failedPrecondition, "no clang++ or g++ to build the kernels for the host")
      }
      let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("vane-kernels-\(UUID().uuidString)")
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      defer { try? FileManager.default.removeItem(at: directory) }
      let source = directory.appendingPathComponent("kernels.cpp")
      let library = directory.appendingPathComponent("kernels.so")
      try (Self.prelude + CUDAKernels.source).write(to: source, atomically: true, encoding: .utf8)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: compiler)
      // No contraction into fused multiply-adds, as NVRTC's --fmad=false.
      process.arguments = [
        "-x", "c++", "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC", "-shared", "-o",
        library.path, source.path,
      ]
      let errors = Pipe()
      process.standardError = errors
      try process.run()
      let message = errors.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      guard process.terminationStatus == 0 else {
        throw VaneError(
          .internalError,
          "\(compiler) failed: \(String(decoding: message.prefix(4000), as: UTF8.self))"
        )
      }
      guard let handle = dlopen(library.path, RTLD_NOW | RTLD_LOCAL) else {
        throw VaneError(.internalError, "dlopen: \(String(cString: dlerror()))")
      }
      self.handle = handle
      func dimension(_ name: String) -> UnsafeMutablePointer<UInt32> {
        dlsym(handle, name)!.assumingMemoryBound(to: UInt32.self)
      }
      self.blockIdx = dimension("blockIdx")
      self.blockDim = dimension("blockDim")
      self.threadIdx = dimension("threadIdx")
      self.gridDim = dimension("gridDim")
    }

    func kernel<T>(_ name: String, as type: T.Type) -> T {
      unsafeBitCast(dlsym(self.handle, name)!, to: type)
    }

    /// Runs `body` (a kernel call) for every thread of `grid` blocks of `block` threads.
    func launch(grid: Int, block: Int, _ body: () -> Void) {
      self.gridDim[0] = UInt32(grid)
      self.blockDim[0] = UInt32(block)
      for b in 0 ..< grid {
        self.blockIdx[0] = UInt32(b)
        for t in 0 ..< block {
          self.threadIdx[0] = UInt32(t)
          body()
        }
      }
    }

    /// Enough blocks of 32 threads for `n` threads.
    func launch(threads n: Int, _ body: () -> Void) {
      self.launch(grid: (n + 31) / 32, block: 32, body)
    }
  }

  static func host() throws -> HostKernels {
    try HostKernels.shared.get()
  }

  static func random(
    _ n: Int,
    _ rng: inout SplitMix64,
    in range: ClosedRange<Float> = -1 ... 1
  )
    -> [Float]
  {
    (0 ..< n).map { _ in Float.random(in: range, using: &rng) }
  }

  @Test(
    "NVRTC compiles every kernel to PTX for the GPUs Vane targets",
    .enabled(
      if: (try? CUDALibraries.shared.nvrtc.get()) != nil,
      "no NVRTC (pip nvidia-cuda-nvrtc-cu12)"
    ),
    arguments: ["compute_80", "compute_90"]
  )
  func nvrtcCompiles(architecture: String) throws {
    let nvrtc = try CUDALibraries.shared.nvrtc.get()
    let compiled = try nvrtc.compile(
      CUDAKernels.source,
      name: "vane_kernels.cu",
      options: CUDAKernels.options(architecture: architecture)
    )
    #expect(compiled.ptx.contains(".target sm_\(architecture.dropFirst("compute_".count))"))
    for name in CUDAKernels.names {
      #expect(compiled.ptx.contains(".entry \(name)("), "\(name) missing from the PTX")
    }
    // A mistake is reported with NVRTC's log, naming the line.
    let error = #expect(throws: VaneError.self) {
      try nvrtc.compile(
        "extern \"C\" __global__ void broken(float *x) { x[0] = undefined_name; }",
        name: "broken.cu",
        options: CUDAKernels.options(architecture: architecture)
      )
    }
    #expect(error?.message.contains("broken.cu(1)") == true)
    #expect(error?.message.contains("undefined_name") == true)
  }

  @Test("AdamW: the two kernels give AdamW.step's floats bit for bit, decaying and not")
  func adamw() throws {
    let host = try Self.host()
    typealias Moments =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>, Float,
        Float,
        Int
      ) -> Void
    typealias Update =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafePointer<Float>, Float, Float, Float, Float, Int
      ) -> Void
    let moments = host.kernel("vane_adamw_moments", as: Moments.self)
    let update = host.kernel("vane_adamw_update", as: Update.self)
    var rng = SplitMix64(seed: 7)
    let n = 1000
    var theta = Self.random(n, &rng), first = [Float](repeating: 0, count: n)
    var second = first
    let decay = (0 ..< n).map { Float($0 % 3 == 0 ? 0 : 1) }
    var (cpuTheta, cpuFirst, cpuSecond) = (theta, first, second)
    let optimizer = AdamW(learningRate: 3e-3, weightDecay: 1e-2)
    for step in 1 ... 5 {
      let gradient = Self.random(n, &rng, in: -2 ... 2)
      optimizer.step(
        theta: &cpuTheta,
        gradient: gradient,
        firstMoment: &cpuFirst,
        secondMoment: &cpuSecond,
        decay: decay,
        count: n,
        step: step
      )
      // The scalars as AdamW.step derives them.
      let (correction1, correction2) = optimizer.biasCorrections(step: step)
      host.launch(threads: n) {
        moments(&first, &second, gradient, Float(optimizer.beta1), Float(optimizer.beta2), n)
      }
      host.launch(threads: n) {
        update(
          &theta,
          first,
          second,
          decay,
          Float(optimizer.learningRate / correction1),
          Float(correction2),
          Float(optimizer.learningRate * optimizer.weightDecay),
          Float(optimizer.epsilon),
          n
        )
      }
    }
    #expect(first.map(\.bitPattern) == cpuFirst.map(\.bitPattern))
    #expect(second.map(\.bitPattern) == cpuSecond.map(\.bitPattern))
    #expect(theta.map(\.bitPattern) == cpuTheta.map(\.bitPattern))
  }

  /// One hidden layer's batch normalisation and activation, forward then backward, on the host
  /// kernels; the loss is Σ w·out for fixed weights w.
  struct Layer {
    typealias BiasMean =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int32, Int32
      ) -> Void
    typealias Variance =
      @convention(c) (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>, Int32, Int32, Float
      ) -> Void
    typealias Normalize =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>,
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        Int32, Int32, Int32
      ) -> Void
    typealias ActivationBackward =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>, Int32, Int32, Int32
      ) -> Void
    typealias BatchNormBackward =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafeMutablePointer<Float>, Int32, Int32
      ) -> Void

    var count: Int, units: Int
    var bias: [Float], gamma: [Float], beta: [Float], mask: [Float], weights: [Float]
    var activation: CUDAKernels.Activation
    static let epsilon: Float = 1e-5

    /// Random parameters, and dropout turning off a share `dropped` of the units (the others
    /// scaled by 1/(1 − dropped)).
    static func random(
      count: Int,
      units: Int,
      dropped: Float,
      activation: CUDAKernels.Activation,
      _ rng: inout SplitMix64
    ) -> Layer {
      Layer(
        count: count,
        units: units,
        bias: CUDAKernelTests.random(units, &rng),
        gamma: CUDAKernelTests.random(units, &rng, in: 0.5 ... 1.5),
        beta: CUDAKernelTests.random(units, &rng, in: -0.3 ... 0.3),
        mask: (0 ..< count * units).map { _ in
          Float.random(in: 0 ..< 1, using: &rng) < dropped ? 0 : 1 / (1 - dropped)
        },
        weights: CUDAKernelTests.random(count * units, &rng),
        activation: activation
      )
    }

    /// The loss in double from pre-activations `z` (`count × units`, before the bias), with
    /// the layer's γ and β or the ones given.
    func loss(_ z: [Double], gamma: [Double]? = nil, beta: [Double]? = nil) -> Double {
      let gamma = gamma ?? self.gamma.map(Double.init), beta = beta ?? self.beta.map(Double.init)
      var total = 0.0
      for j in 0 ..< self.units {
        let column = (0 ..< self.count).map { z[$0 * self.units + j] + Double(self.bias[j]) }
        let mean = column.reduce(0, +) / Double(self.count)
        let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(self.count)
        for i in 0 ..< self.count {
          let x = (column[i] - mean) / (variance + Double(Self.epsilon)).squareRoot()
          let y = gamma[j] * x + beta[j]
          let a: Double =
            switch self.activation {
            case .relu: max(y, 0)
            case .gelu: 0.5 * y * (1 + erf(y / 2.squareRoot()))
            case .tanh: Foundation.tanh(y)
            }
          total +=
            Double(self.weights[i * self.units + j]) * a * Double(self.mask[i * self.units + j])
        }
      }
      return total
    }

    /// The same forward and backward on a GPU.
    func device(
      _ gpu: CUDADevice,
      z input: [Float]
    ) throws -> (
      out: [Float], dz: [Float], dGamma: [Float], dBeta: [Float], dBias: [Float]
    ) {
      let (c, u) = (Int32(self.count), Int32(self.units))
      let z = try gpu.upload(input), out = try gpu.allocate(Float.self, count: input.count)
      let bias = try gpu.upload(self.bias), gamma = try gpu.upload(self.gamma)
      let beta = try gpu.upload(self.beta), mask = try gpu.upload(self.mask)
      let mean = try gpu.allocate(Float.self, count: self.units)
      let variance = try gpu.allocate(Float.self, count: self.units)
      let inverse = try gpu.allocate(Float.self, count: self.units)
      let dGamma = try gpu.allocate(Float.self, count: self.units)
      let dBeta = try gpu.allocate(Float.self, count: self.units)
      let dBias = try gpu.allocate(Float.self, count: self.units)
      let delta = try gpu.upload(self.weights)
      try gpu.launch(
        "vane_bias_mean",
        threads: self.units,
        [z.argument, bias.argument, mean.argument, .int32(c), .int32(u)]
      )
      try gpu.launch(
        "vane_variance",
        threads: self.units,
        [
          z.argument, mean.argument, variance.argument, inverse.argument, .int32(c), .int32(u),
          .float(Self.epsilon),
        ]
      )
      try gpu.launch(
        "vane_normalize_activate",
        threads: input.count,
        [
          z.argument, out.argument, mean.argument, inverse.argument, gamma.argument, beta.argument,
          mask.argument, .int32(c), .int32(u), .int32(self.activation.rawValue),
        ]
      )
      try gpu.launch(
        "vane_activation_backward",
        threads: self.units,
        [
          delta.argument, z.argument, gamma.argument, beta.argument, mask.argument,
          dGamma.argument, dBeta.argument, .int32(c), .int32(u), .int32(self.activation.rawValue),
        ]
      )
      try gpu.launch(
        "vane_batchnorm_backward",
        threads: self.units,
        [
          delta.argument, z.argument, gamma.argument, inverse.argument, dGamma.argument,
          dBeta.argument, dBias.argument, .int32(c), .int32(u),
        ]
      )
      return (
        try out.values(), try delta.values(), try dGamma.values(), try dBeta.values(),
        try dBias.values()
      )
    }

    /// Forward and backward on the kernels: (out, ∂L/∂z, ∂γ, ∂β, ∂bias).
    func kernels(
      _ host: HostKernels,
      z input: [Float]
    ) -> (
      out: [Float], dz: [Float], dGamma: [Float], dBeta: [Float], dBias: [Float]
    ) {
      let (c, u) = (Int32(self.count), Int32(self.units))
      var z = input, out = [Float](repeating: 0, count: input.count)
      var mean = [Float](repeating: 0, count: self.units), variance = mean, inverse = mean
      var dGamma = mean, dBeta = mean, dBias = mean
      host.launch(threads: self.units) {
        host.kernel("vane_bias_mean", as: BiasMean.self)(&z, self.bias, &mean, c, u)
      }
      host.launch(threads: self.units) {
        host.kernel("vane_variance", as: Variance.self)(
          z,
          mean,
          &variance,
          &inverse,
          c,
          u,
          Self.epsilon
        )
      }
      host.launch(threads: input.count) {
        host.kernel("vane_normalize_activate", as: Normalize.self)(
          &z,
          &out,
          mean,
          inverse,
          self.gamma,
          self.beta,
          self.mask,
          c,
          u,
          self.activation.rawValue
        )
      }
      var delta = self.weights
      host.launch(threads: self.units) {
        host.kernel("vane_activation_backward", as: ActivationBackward.self)(
          &delta,
          z,
          self.gamma,
          self.beta,
          self.mask,
          &dGamma,
          &dBeta,
          c,
          u,
          self.activation.rawValue
        )
      }
      host.launch(threads: self.units) {
        host.kernel("vane_batchnorm_backward", as: BatchNormBackward.self)(
          &delta,
          z,
          self.gamma,
          inverse,
          dGamma,
          dBeta,
          &dBias,
          c,
          u
        )
      }
      return (out, delta, dGamma, dBeta, dBias)
    }
  }

  @Test(
    "Batch norm and activation: the backward kernels' gradients equal finite differences of the forward",
    arguments: [CUDAKernels.Activation.relu, .gelu, .tanh]
  )
  func layerGradients(activation: CUDAKernels.Activation) throws {
    let host = try Self.host()
    var rng = SplitMix64(seed: UInt64(activation.rawValue) + 11)
    let (count, units) = (16, 5)
    let layer = Layer.random(
      count: count,
      units: units,
      dropped: 0.25,
      activation: activation,
      &rng
    )
    let z = Self.random(count * units, &rng, in: -2 ... 2)
    let (out, dz, dGamma, dBeta, dBias) = layer.kernels(host, z: z)

    // The forward output against the closed form in double.
    let loss = zip(out, layer.weights).map { Double($0) * Double($1) }.reduce(0, +)
    #expect(abs(loss - layer.loss(z.map(Double.init))) < 1e-4)

    // ∂L/∂z by central differences in double.
    let h = 1e-5
    for k in stride(from: 0, to: count * units, by: 3) {
      var plus = z.map(Double.init), minus = plus
      plus[k] += h
      minus[k] -= h
      let numeric = (layer.loss(plus) - layer.loss(minus)) / (2 * h)
      #expect(abs(Double(dz[k]) - numeric) < 2e-3 * max(1, abs(numeric)), "∂L/∂z[\(k)]")
    }
    // ∂γ and ∂β by central differences; the bias cancels in the normalisation: ∂bias = 0.
    let input = z.map(Double.init)
    for j in 0 ..< units {
      for (name, analytic, parameters) in [
        ("γ", dGamma[j], layer.gamma.map(Double.init)),
        ("β", dBeta[j], layer.beta.map(Double.init)),
      ] {
        var up = parameters, down = parameters
        up[j] += h
        down[j] -= h
        let numeric =
          name == "γ"
          ? (layer.loss(input, gamma: up) - layer.loss(input, gamma: down)) / (2 * h)
          : (layer.loss(input, beta: up) - layer.loss(input, beta: down)) / (2 * h)
        #expect(abs(Double(analytic) - numeric) < 2e-3 * max(1, abs(numeric)), "∂\(name)[\(j)]")
      }
      #expect(abs(dBias[j]) < 1e-4, "∂bias[\(j)] = \(dBias[j])")
    }
  }

  @Test(
    "LSTM cell: the forward kernel gives Logistic.lstmCell's values; the backward kernel's gradients equal finite differences"
  )
  func lstmCell() throws {
    let host = try Self.host()
    typealias Cell =
      @convention(c) (
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int32, Int32
      ) -> Void
    typealias Backward =
      @convention(c) (
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
        UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
        UnsafeMutablePointer<Float>, Int32, Int32
      ) -> Void
    var rng = SplitMix64(seed: 31)
    let (count, units) = (3, 5)
    let n = count * units
    let pre = Self.random(count * 4 * units, &rng, in: -2 ... 2)
    let bias = Self.random(4 * units, &rng, in: -0.5 ... 0.5)
    let previous = Self.random(n, &rng, in: -1.5 ... 1.5)
    let ones = [Float](repeating: 1, count: n)
    var gates = pre, cell = [Float](repeating: 0, count: n)
    var cellTanh = cell, hidden = cell, output = cell
    host.launch(threads: n) {
      host.kernel("vane_lstm_cell", as: Cell.self)(
        &gates,
        bias,
        previous,
        &cell,
        &cellTanh,
        &hidden,
        &output,
        ones,
        Int32(count),
        Int32(units)
      )
    }
    // Against the CPU cell (its lane functions, not libm's: within float rounding).
    for i in 0 ..< count {
      var cpuGates = Array(pre[(i * 4 * units) ..< ((i + 1) * 4 * units)])
      var cpuCell = [Float](repeating: 0, count: units), cpuTanh = cpuCell, cpuHidden = cpuCell
      let previousRow = Array(previous[(i * units) ..< ((i + 1) * units)])
      Logistic.lstmCell(
        gates: &cpuGates,
        bias: bias,
        hidden: units,
        previousCell: previousRow,
        cell: &cpuCell,
        cellTanh: &cpuTanh,
        output: &cpuHidden
      )
      for j in 0 ..< units {
        #expect(abs(cpuCell[j] - cell[i * units + j]) < 1e-5)
        #expect(abs(cpuHidden[j] - hidden[i * units + j]) < 1e-5)
        #expect(hidden[i * units + j] == output[i * units + j])
      }
      for g in 0 ..< 4 * units { #expect(abs(cpuGates[g] - gates[i * 4 * units + g]) < 1e-5) }
    }

    // L = Σ wh·h + Σ wc·c, in double from the pre-activations and the previous cell.
    let wh = Self.random(n, &rng), wc = Self.random(n, &rng)
    func loss(_ pre: [Double], _ previous: [Double]) -> Double {
      func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
      var total = 0.0
      for i in 0 ..< count {
        for j in 0 ..< units {
          let row = i * 4 * units
          let ig = sigmoid(pre[row + j] + Double(bias[j]))
          let fg = sigmoid(pre[row + units + j] + Double(bias[units + j]))
          let gg = Foundation.tanh(pre[row + 2 * units + j] + Double(bias[2 * units + j]))
          let og = sigmoid(pre[row + 3 * units + j] + Double(bias[3 * units + j]))
          let c = fg * previous[i * units + j] + ig * gg
          total +=
            Double(wh[i * units + j]) * og * Foundation.tanh(c) + Double(wc[i * units + j]) * c
        }
      }
      return total
    }
    var dGates = [Float](repeating: 0, count: count * 4 * units), dCell = wc
    let zeros = [Float](repeating: 0, count: n)
    host.launch(threads: n) {
      host.kernel("vane_lstm_cell_backward", as: Backward.self)(
        gates,
        cellTanh,
        previous,
        wh,
        ones,
        zeros,
        &dCell,
        &dGates,
        Int32(count),
        Int32(units)
      )
    }
    let h = 1e-6
    let (pre64, previous64) = (pre.map(Double.init), previous.map(Double.init))
    for k in pre.indices {
      var up = pre64, down = pre64
      up[k] += h
      down[k] -= h
      let numeric = (loss(up, previous64) - loss(down, previous64)) / (2 * h)
      #expect(abs(Double(dGates[k]) - numeric) < 1e-4 * max(1, abs(numeric)), "∂L/∂gate[\(k)]")
    }
    for k in previous.indices {
      var up = previous64, down = previous64
      up[k] += h
      down[k] -= h
      let numeric = (loss(pre64, up) - loss(pre64, down)) / (2 * h)
      #expect(abs(Double(dCell[k]) - numeric) < 1e-4 * max(1, abs(numeric)), "∂L/∂c₋₁[\(k)]")
    }
  }

  @Test("Column sums, scaling and the sum of squares: closed forms, the same sum run to run")
  func reductions() throws {
    let host = try Self.host()
    typealias Sums =
      @convention(c) (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int32, Int32) -> Void
    typealias Scale = @convention(c) (UnsafeMutablePointer<Float>, Float, Int) -> Void
    typealias Squares =
      @convention(c) (UnsafePointer<Float>, UnsafeMutablePointer<Double>, Int) -> Void
    var rng = SplitMix64(seed: 3)
    let (rows, columns) = (37, 6)
    let x = Self.random(rows * columns, &rng)
    var sums = [Float](repeating: 0, count: columns)
    host.launch(threads: columns) {
      host.kernel("vane_column_sums", as: Sums.self)(x, &sums, Int32(rows), Int32(columns))
    }
    for j in 0 ..< columns {
      // Rows in order, as the CPU engine adds them.
      var expected: Float = 0
      for i in 0 ..< rows { expected += x[i * columns + j] }
      #expect(sums[j].bitPattern == expected.bitPattern)
    }
    var scaled = x
    host.launch(threads: x.count) {
      host.kernel("vane_scale", as: Scale.self)(&scaled, 0.5, x.count)
    }
    #expect(scaled == x.map { $0 * 0.5 })
    // 3 blocks of 32 threads over 1000 values.
    let values = Self.random(1000, &rng, in: -3 ... 3)
    var partials = [Double](repeating: 0, count: 96)
    host.launch(grid: 3, block: 32) {
      host.kernel("vane_sum_squares", as: Squares.self)(values, &partials, values.count)
    }
    let exact = values.map { Double($0) * Double($0) }.reduce(0, +)
    #expect(abs(partials.reduce(0, +) - exact) < 1e-9 * exact)
    var again = [Double](repeating: 0, count: 96)
    host.launch(grid: 3, block: 32) {
      host.kernel("vane_sum_squares", as: Squares.self)(values, &again, values.count)
    }
    #expect(again == partials)
  }

  /// A GPU to run on, when this machine has one and the libraries.
  static var gpu: CUDADevice? {
    guard case .success(let count)? = try? CUDALibraries.shared.runtime.get().devices, count > 0
    else { return nil }
    return try? CUDADevice()
  }

  @Test(
    "On a GPU: every kernel gives the host build's results (bit for bit where no transcendental is involved), the same run to run, and SGEMM agrees with OpenBLAS",
    .enabled(
      if: Self.gpu != nil,
      "needs an NVIDIA GPU and the CUDA runtime, cuBLAS and NVRTC wheels"
    )
  )
  func onGPU() throws {
    let gpu = try #require(Self.gpu)
    let host = try Self.host()
    var rng = SplitMix64(seed: 21)
    for activation in [CUDAKernels.Activation.relu, .gelu, .tanh] {
      let (count, units) = (300, 70)
      let layer = Layer.random(
        count: count,
        units: units,
        dropped: 0.2,
        activation: activation,
        &rng
      )
      let z = Self.random(count * units, &rng, in: -2 ... 2)
      let expected = layer.kernels(host, z: z)
      let first = try layer.device(gpu, z: z), second = try layer.device(gpu, z: z)
      let pairs = [
        ("out", first.out, expected.out, second.out), ("dz", first.dz, expected.dz, second.dz),
        ("dGamma", first.dGamma, expected.dGamma, second.dGamma),
        ("dBeta", first.dBeta, expected.dBeta, second.dBeta),
        ("dBias", first.dBias, expected.dBias, second.dBias),
      ]
      for (name, got, want, again) in pairs {
        #expect(got.map(\.bitPattern) == again.map(\.bitPattern), "\(name) differs run to run")
        if activation == .relu {
          #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(name), relu")
        } else {
          let worst = zip(got, want).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
          #expect(worst < 1e-5, "\(name), \(activation): \(worst)")
        }
      }
    }
    // SGEMM, each transposition, against OpenBLAS.
    let (m, n, k) = (67, 45, 129)
    for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
      let a = Self.random(m * k, &rng), b = Self.random(k * n, &rng)
      var c = [Float](repeating: 0, count: m * n)
      let (lda, ldb) = (transposeA ? m : k, transposeB ? k : n)
      Float.gemm(
        transposeA: transposeA,
        transposeB: transposeB,
        m: m,
        n: n,
        k: k,
        alpha: 1,
        a: a,
        lda: lda,
        b: b,
        ldb: ldb,
        beta: 0,
        c: &c,
        ldc: n
      )
      let da = try gpu.upload(a), db = try gpu.upload(b)
      let dc = try gpu.allocate(Float.self, count: m * n)
      try gpu.gemm(
        transposeA: transposeA,
        transposeB: transposeB,
        m: m,
        n: n,
        k: k,
        alpha: 1,
        a: da.address,
        lda: lda,
        b: db.address,
        ldb: ldb,
        beta: 0,
        c: dc.address,
        ldc: n
      )
      let worst = zip(try dc.values(), c).map { abs($0 - $1) }.max() ?? 0
      #expect(worst < 1e-4, "SGEMM \(transposeA)/\(transposeB): \(worst)")
    }
  }
}
