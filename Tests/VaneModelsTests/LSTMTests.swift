import Foundation
import Testing
import VaneCore
import VaneMath
import VaneTestSupport

@testable import VaneModels

@Suite("LSTM", .computeBound)
struct LSTMTests {
  @Test(
    "Every parameter's gradient (two layers, dropout masks, two heads, a missing label) equals central differences"
  )
  func gradients() throws {
    let (b, L, d, H, K) = (3, 4, 2, 3, 2)
    var rng = SplitMix64(seed: 21)
    let model = LSTM(
      inputCount: d,
      hiddenSize: H,
      layerCount: 2,
      sequenceLength: L,
      heads: K,
      dropout: 0.3,
      seed: 5
    )
    let x = (0 ..< (b * L * d)).map { _ in rng.normal() }
    let y = [1, 0, -1, 1, 0, 0]
    func mask() -> [Double] { (0 ..< (b * H)).map { _ in rng.uniform() < 0.7 ? 1 / 0.7 : 0 } }
    let masks = (0 ..< 2).map { _ in (0 ..< L).map { _ in mask() } }
    let headMask = mask()
    let (_, gradient) = model.lossAndGradient(
      x,
      count: b,
      labels: y,
      masks: masks,
      headMask: headMask,
      bpttSteps: L
    )
    let theta = model.parameters
    #expect(gradient.count == theta.count)
    let worst = GradientCheck.worst(theta, gradient: gradient) {
      var probe = model
      probe.setParameters($0)
      return probe.lossAndGradient(
        x,
        count: b,
        labels: y,
        masks: masks,
        headMask: headMask,
        bpttSteps: L
      ).loss
    }.error
    #expect(worst < 1e-5, "worst relative error \(worst)")
    // Truncated BPTT drops the early steps' contributions: the input weights' gradient changes,
    // the head's does not.
    let truncated = model.lossAndGradient(
      x,
      count: b,
      labels: y,
      masks: masks,
      headMask: headMask,
      bpttSteps: 1
    ).gradient
    #expect(truncated.suffix(H * K + K) == gradient.suffix(H * K + K))
    #expect(truncated.prefix(d * 4 * H) != gradient.prefix(d * 4 * H))
  }

  /// A two-layer model without dropout, as the engine tests use.
  static func twoLayers(
    inputs d: Int,
    hidden H: Int,
    steps L: Int,
    heads K: Int,
    seed: UInt64
  )
    -> LSTM
  {
    LSTM(
      inputCount: d,
      hiddenSize: H,
      layerCount: 2,
      sequenceLength: L,
      heads: K,
      dropout: 0,
      seed: seed
    )
  }

  @Test(
    "A short batch (or truncated BPTT) after a full one gives the loss and gradient of a fresh engine, bit for bit",
    arguments: [(5, 6), (8, 2), (3, 1)]
  )
  func reusedBuffers(count: Int, bpttSteps: Int) throws {
    let (capacity, L, d, H, K) = (8, 6, 3, 8, 2)
    var rng = SplitMix64(seed: 11)
    let model = Self.twoLayers(inputs: d, hidden: H, steps: L, heads: K, seed: 12)
    let full = (0 ..< (capacity * L * d)).map { _ in rng.normal() }
    let short = (0 ..< (count * L * d)).map { _ in rng.normal() }
    let labels = (0 ..< (capacity * K)).map { _ in rng.uniform() < 0.5 ? 1 : 0 }
    typealias Engine = LSTM.Engine<CPUTrainingDevice<Float>>
    func gradient(_ engine: Engine) throws -> (Double, [Double]) {
      try short.withUnsafeBufferPointer { try engine.load($0, rows: Array(0 ..< count)[...]) }
      let loss = try engine.lossAndGradient(
        count: count,
        labels: Array(labels.prefix(count * K)),
        bpttSteps: bpttSteps
      )
      return (loss, try engine.gradientValues())
    }
    let used = try Engine(model, capacity: capacity, device: CPUTrainingDevice())
    try full.withUnsafeBufferPointer { try used.load($0, rows: Array(0 ..< capacity)[...]) }
    _ = try used.lossAndGradient(count: capacity, labels: labels, bpttSteps: L)
    let (reusedLoss, reused) = try gradient(used)
    let (freshLoss, fresh) = try gradient(
      Engine(model, capacity: capacity, device: CPUTrainingDevice())
    )
    #expect(reusedLoss == freshLoss)
    #expect(reused == fresh)
  }

  @Test(
    "The float32 engine's loss and gradient agree with float64's to single precision (two layers, a missing label)"
  )
  func precisions() throws {
    let (b, L, d, H, K) = (16, 6, 3, 8, 2)
    var rng = SplitMix64(seed: 8)
    let model = Self.twoLayers(inputs: d, hidden: H, steps: L, heads: K, seed: 9)
    let x = (0 ..< (b * L * d)).map { _ in rng.normal() }
    var y = (0 ..< (b * K)).map { _ in rng.uniform() < 0.5 ? 1 : 0 }
    y[3] = -1
    func run<Scalar: BLASScalar>(_: Scalar.Type) throws -> (Double, [Double]) {
      let engine = try LSTM.Engine(model, capacity: b, device: CPUTrainingDevice<Scalar>())
      try x.withUnsafeBufferPointer { try engine.load($0, rows: Array(0 ..< b)[...]) }
      let loss = try engine.lossAndGradient(count: b, labels: y, bpttSteps: L)
      return (loss, try engine.gradientValues())
    }
    let (loss64, gradient64) = try run(Double.self)
    let (loss32, gradient32) = try run(Float.self)
    #expect(abs(loss32 - loss64) <= 1e-5 * max(1, abs(loss64)), "\(loss32) vs \(loss64)")
    let scale = gradient64.map(abs).max()!
    let worst = zip(gradient32, gradient64).map { abs($0 - $1) }.max()! / scale
    #expect(worst < 1e-4, "largest gradient difference \(worst) of the largest component")
    // The Double wrapper the gradient check uses is this same engine.
    #expect(
      model.lossAndGradient(x, count: b, labels: y, masks: nil, headMask: nil, bpttSteps: L)
        .gradient == gradient64
    )
  }

  /// Windows of one noisy feature; head 0: is the window's sum positive; head 1: is its last
  /// value above its first (some labels missing).
  static func windows(_ n: Int, length L: Int, seed: UInt64) -> (x: [Double], y: [Int]) {
    var rng = SplitMix64(seed: seed)
    var x: [Double] = [], y: [Int] = []
    for i in 0 ..< n {
      let w = (0 ..< L).map { _ in rng.normal() }
      x += w
      y.append(w.reduce(0, +) > 0 ? 1 : 0)
      y.append(i % 10 == 0 ? -1 : (w[L - 1] > w[0] ? 1 : 0))
    }
    return (x, y)
  }

  /// Whether a GPU and the CUDA libraries are here.
  static var gpu: Bool { CUDATrainingDevice.problems().isEmpty }

  func trainTwoHeads(
    _ x: [Double],
    _ y: [Int],
    device: NeuralTraining.Device,
    precision: NeuralTraining.Precision = .float32,
    epochs: Int = 3,
    cancellation: CancellationFlag? = nil,
    epoch: (Int, Double, Double?) -> Bool = { _, _, _ in true }
  ) throws -> LSTM {
    var training = LSTM.Training()
    training.maxEpochs = epochs
    training.batchSize = 64
    training.patience = 0
    training.device = device
    training.precision = precision
    return try LSTM.train(
      sequences: x,
      count: y.count / 2,
      sequenceLength: 8,
      featureCount: 1,
      labels: y,
      heads: 2,
      hiddenSize: 16,
      training: training,
      cancellation: cancellation,
      epoch: epoch
    )
  }

  @Test(
    "On a GPU: the LSTM trains as on the CPU in float32 (loss per epoch and logits), the same run to run, and stops within a batch when cancelled",
    .enabled(if: Self.gpu, "needs an NVIDIA GPU and the CUDA runtime, cuBLAS and NVRTC wheels")
  )
  func onGPU() throws {
    let (x, y) = Self.windows(1_000, length: 8, seed: 4)
    var cpuLosses: [Double] = [], gpuLosses: [Double] = [], againLosses: [Double] = []
    let cpu = try self.trainTwoHeads(x, y, device: .cpu) { _, loss, _ in
      cpuLosses.append(loss)
      return true
    }
    let gpu = try self.trainTwoHeads(x, y, device: .cuda) { _, loss, _ in
      gpuLosses.append(loss)
      return true
    }
    let again = try self.trainTwoHeads(x, y, device: .cuda) { _, loss, _ in
      againLosses.append(loss)
      return true
    }
    #expect(gpu.parameters == again.parameters && gpuLosses == againLosses)
    for (c, g) in zip(cpuLosses, gpuLosses) { #expect(abs(c - g) < 1e-3 * max(1, abs(c))) }
    let worst =
      zip(cpu.logits(x, count: 1_000), gpu.logits(x, count: 1_000))
      .map { abs($0 - $1) }.max() ?? 0
    #expect(worst < 1e-2, "largest logit difference \(worst)")
    let flag = CancellationFlag()
    var epochs = 0
    let error = #expect(throws: VaneError.self) {
      _ = try self.trainTwoHeads(x, y, device: .cuda, cancellation: flag) { _, _, _ in
        epochs += 1
        flag.cancel()
        return true
      }
    }
    #expect(error?.code == .cancelled && epochs == 1)
  }

  @Test(
    "Without a GPU, CUDA training fails naming what is missing; float64 on CUDA is refused",
    .enabled(if: !Self.gpu, "a GPU is here")
  )
  func cudaRefused() throws {
    let (x, y) = Self.windows(50, length: 8, seed: 6)
    let missing = #expect(throws: VaneError.self) {
      _ = try self.trainTwoHeads(x, y, device: .cuda, epochs: 1)
    }
    #expect(missing?.code == .failedPrecondition)
    let precision = #expect(throws: VaneError.self) {
      _ = try self.trainTwoHeads(x, y, device: .cuda, precision: .float64, epochs: 1)
    }
    #expect(precision?.code == .invalidArgument)
    #expect(precision?.message.contains("float32 only") == true)
  }

  @Test("Training learns both heads (AUC per head), is deterministic, and round-trips through JSON")
  func training() throws {
    let L = 8
    let (x, y) = Self.windows(2_000, length: L, seed: 1)
    let (vx, vy) = Self.windows(500, length: L, seed: 2)
    var settings = LSTM.Training()
    settings.maxEpochs = 25
    settings.batchSize = 64
    settings.learningRate = 1e-2
    settings.patience = 5
    settings.seed = 3
    let model = try LSTM.train(
      sequences: x,
      count: 2_000,
      sequenceLength: L,
      featureCount: 1,
      labels: y,
      heads: 2,
      validation: (vx, 500, vy),
      hiddenSize: 16,
      layerCount: 1,
      dropout: 0.0,
      training: settings
    )
    let p = model.probabilities(vx, count: 500)
    for head in 0 ..< 2 {
      let rows = (0 ..< 500).filter { vy[$0 * 2 + head] >= 0 }
      let auc = LeakageTests.auc(rows.map { p[$0 * 2 + head] }, rows.map { vy[$0 * 2 + head] == 1 })
      #expect(auc > 0.85, "head \(head): AUC \(auc)")
    }
    let again = try LSTM.train(
      sequences: x,
      count: 2_000,
      sequenceLength: L,
      featureCount: 1,
      labels: y,
      heads: 2,
      validation: (vx, 500, vy),
      hiddenSize: 16,
      layerCount: 1,
      dropout: 0.0,
      training: settings
    )
    #expect(again == model)
    #expect(try JSONDecoder().decode(LSTM.self, from: JSONEncoder().encode(model)) == model)
  }

  @Test(
    "A model answers in the arithmetic it trained in: the precision is kept, saved and read back; files without it read as float64"
  )
  func precision() throws {
    let L = 6
    let (x, y) = Self.windows(300, length: L, seed: 4)
    var settings = LSTM.Training()
    settings.maxEpochs = 2
    settings.batchSize = 64
    settings.seed = 5
    for precision in NeuralTraining.Precision.allCases {
      settings.precision = precision
      let model = try LSTM.train(
        sequences: x,
        count: 300,
        sequenceLength: L,
        featureCount: 1,
        labels: y,
        heads: 2,
        hiddenSize: 12,
        layerCount: 2,
        dropout: 0.0,
        training: settings
      )
      #expect(model.precision == precision)
      let decoded = try JSONDecoder().decode(LSTM.self, from: JSONEncoder().encode(model))
      #expect(decoded == model)
      // Prepared once (as the predictor does) or per call (as the trainer does): one answer.
      #expect(
        LSTM.Inference(model).probabilities(x, count: 300) == model.probabilities(x, count: 300)
      )
    }

    // The same weights in either arithmetic agree to single precision.
    var model = try LSTM.train(
      sequences: x,
      count: 300,
      sequenceLength: L,
      featureCount: 1,
      labels: y,
      heads: 2,
      hiddenSize: 12,
      layerCount: 2,
      dropout: 0.0,
      training: settings
    )
    model.precision = .float64
    let wide = model.probabilities(x, count: 300)
    model.precision = .float32
    let narrow = model.probabilities(x, count: 300)
    #expect(wide != narrow)
    let worst = zip(wide, narrow).map { abs($0 - $1) }.max() ?? .infinity
    #expect(worst < 1e-5, "float32 vs float64: \(worst)")

    // A file from before the precision was recorded: float64, as it was served.
    var object =
      try JSONSerialization.jsonObject(with: JSONEncoder().encode(model)) as! [String: Any]
    #expect(object.removeValue(forKey: "precision") != nil)
    let old = try JSONDecoder().decode(
      LSTM.self,
      from: JSONSerialization.data(withJSONObject: object)
    )
    #expect(old.precision == .float64)
    #expect(old.probabilities(x, count: 300) == wide)
  }

  @Test(
    "Standardising while converting equals scaling, zeroing and converting in turn, bit for bit",
    arguments: NeuralTraining.Precision.allCases,
    [false, true]
  )
  func standardization(precision: NeuralTraining.Precision, imputes: Bool) {
    let (width, L, count) = (5, 4, 7)
    var model = LSTM(
      inputCount: width,
      hiddenSize: 9,
      layerCount: 2,
      sequenceLength: L,
      heads: 2,
      dropout: 0,
      seed: 3
    )
    model.precision = precision
    var random = SeededRandom(seed: 11)
    var raw = (0 ..< (count * L * width)).map { _ in random.uniform() * 40 - 10 }
    // Missing values, and a column whose scale overflows a value to infinity.
    for i in stride(from: 3, to: raw.count, by: 17) { raw[i] = .nan }
    raw[8] = .infinity
    raw[9] = 1e308
    let center = [1.5, -2, 0, 10, 0.25]
    let scale = [2, 0.5, 1, 4, 1e-10]
    let impute: [Double]? = imputes ? [0.5, -1, 3, 12, 0] : nil
    // The two steps the predictor took before: the scaler's transform, then 0 for what is
    // still not finite.
    let scaled = raw.enumerated().map { i, x -> Double in
      let c = i % width
      let v = x.isFinite ? x : (impute?[c] ?? x)
      let y = (v - center[c]) / scale[c]
      return y.isFinite ? y : 0
    }
    let missing = raw.filter { !$0.isFinite }.count
    #expect(scaled.contains(0) && missing > 0)
    let inference = LSTM.Inference(model)
    let fused = inference.logits(
      raw,
      count: count,
      standardization: .init(center: center, scale: scale, impute: impute)
    )
    #expect(fused == inference.logits(scaled, count: count))
    #expect(fused.filter { !$0.isFinite }.isEmpty)
    // Without a standardisation a missing value reads as 0 too.
    var unscaled = scaled
    unscaled[0] = .nan
    var zeroed = scaled
    zeroed[0] = 0
    #expect(inference.logits(unscaled, count: count) == inference.logits(zeroed, count: count))
  }
}
