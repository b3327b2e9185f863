import Foundation
import Testing
import VaneCore
import VaneMath
import VaneTestSupport

@testable import VaneModels

@Suite("MLP", .computeBound)
struct MLPTests {
  static func data(
    _ n: Int,
    features d: Int,
    classes k: Int,
    seed: UInt64
  ) -> (x: [Double], y: [Int]) {
    var rng = SplitMix64(seed: seed)
    var x: [Double] = [], y: [Int] = []
    for _ in 0 ..< n {
      let row = (0 ..< d).map { _ in rng.normal() }
      x += row
      // A nonlinear rule with noise.
      let score = row[0] * row[1] + sin(2 * row[2 % d]) + 0.3 * rng.normal()
      y.append(k == 2 ? (score > 0 ? 1 : 0) : (score < -0.5 ? 0 : score < 0.5 ? 1 : 2))
    }
    return (x, y)
  }

  @Test(
    "Inference folds bias and batch norm into one affine map: equal to the layer-by-layer formula",
    arguments: [MLP.Activation.relu, .gelu, .tanh]
  )
  func foldedInference(activation: MLP.Activation) {
    let d = 7, n = 33
    var model = MLP(
      inputCount: d,
      classCount: 3,
      units: [16, 9],
      activation: activation,
      dropout: 0,
      seed: 11
    )
    var rng = SplitMix64(seed: 12)
    for l in model.hidden.indices {
      let units = model.hidden[l].biases.count
      model.hidden[l].biases = (0 ..< units).map { _ in rng.normal() }
      model.hidden[l].gamma = (0 ..< units).map { _ in 1 + 0.5 * rng.normal() }
      model.hidden[l].beta = (0 ..< units).map { _ in rng.normal() }
      model.hidden[l].runningMean = (0 ..< units).map { _ in rng.normal() }
      model.hidden[l].runningVariance = (0 ..< units).map { _ in 0.1 + abs(rng.normal()) }
    }
    let (x, _) = Self.data(n, features: d, classes: 3, seed: 13)
    // The textbook forward pass, one row and one unit at a time.
    var expected: [Double] = []
    for r in 0 ..< n {
      var input = Array(x[(r * d) ..< ((r + 1) * d)])
      for layer in model.hidden {
        let units = layer.biases.count
        input = (0 ..< units).map { j in
          var z = layer.biases[j]
          for i in input.indices { z += input[i] * layer.weights[i * units + j] }
          let normal =
            (z - layer.runningMean[j]) / (layer.runningVariance[j] + MLP.epsilon).squareRoot()
          return MLP.activate(layer.gamma[j] * normal + layer.beta[j], activation)
        }
      }
      expected += (0 ..< 3).map { k in
        var z = model.outputBiases[k]
        for i in input.indices { z += input[i] * model.outputWeights[i * 3 + k] }
        return z
      }
    }
    let logits = model.logits(x, count: n)
    for (got, want) in zip(logits, expected) {
      #expect(abs(got - want) <= 1e-12 * max(1, abs(want)), "\(got) vs \(want)")
    }
  }

  @Test(
    "Every parameter's gradient (dense, batch norm, activation, dropout, output, focal loss) equals central differences",
    arguments: [(MLP.Activation.relu, 2), (.gelu, 3), (.tanh, 2)]
  )
  func gradients(activation: MLP.Activation, classes: Int) throws {
    let n = 12, d = 4
    let (x, y) = Self.data(n, features: d, classes: classes, seed: 3)
    var rng = SplitMix64(seed: 9)
    let model = MLP(
      inputCount: d,
      classCount: classes,
      units: [5, 3],
      activation: activation,
      dropout: 0.3,
      seed: 4
    )
    let masks = [5, 3].map { width in
      (0 ..< (n * width)).map { _ in rng.uniform() < 0.7 ? 1 / 0.7 : 0 }
    }
    let weights = y.map { $0 == 0 ? 1.5 : 1.0 }
    let loss = FocalLoss()
    let (_, gradient) = model.lossAndGradient(
      x,
      count: n,
      labels: y,
      weights: weights,
      masks: masks,
      loss: loss
    )
    let theta = model.parameters
    #expect(gradient.count == theta.count)
    // ReLU kinks: a central difference straddling 0 is not a derivative; those are left out.
    let (worst, kinks) = GradientCheck.worst(
      theta,
      gradient: gradient,
      kinkAbove: activation == .relu ? 1e-3 : nil
    ) {
      var probe = model
      probe.setParameters($0)
      return probe.lossAndGradient(
        x,
        count: n,
        labels: y,
        weights: weights,
        masks: masks,
        loss: loss
      ).loss
    }
    #expect(worst < 1e-5, "worst relative error \(worst)")
    #expect(kinks <= theta.count / 20, "\(kinks) of \(theta.count) parameters straddle a ReLU kink")
  }

  @Test(
    "The focal loss gradient with respect to the logits equals central differences; γ = 0, ε = 0, α = ½ is half the cross-entropy"
  )
  func focalLoss() throws {
    var rng = SplitMix64(seed: 5)
    let n = 7, k = 3
    let z = (0 ..< (n * k)).map { _ in rng.normal() * 2 }
    let y = (0 ..< n).map { $0 % k }
    let w = (0 ..< n).map { _ in 0.5 + rng.uniform() }
    let loss = FocalLoss()
    let (_, gradient) = loss.valueAndGradient(logits: z, labels: y, weights: w, classCount: k)
    for j in z.indices {
      var zp = z, zm = z
      zp[j] += 1e-6
      zm[j] -= 1e-6
      let numeric =
        (loss.valueAndGradient(logits: zp, labels: y, weights: w, classCount: k).0
          - loss.valueAndGradient(logits: zm, labels: y, weights: w, classCount: k).0) / 2e-6
      #expect(abs(numeric - gradient[j]) < 1e-7, "z[\(j)]")
    }
    let plain = FocalLoss(gamma: 0, alpha: 0.5, labelSmoothing: 0)
    let p = Logistic.softmax(z, columns: k)
    let crossEntropy =
      (0 ..< n).reduce(0.0) { $0 - w[$1] * log(p[$1 * k + y[$1]]) } / w.reduce(0, +)
    #expect(
      abs(
        plain.valueAndGradient(logits: z, labels: y, weights: w, classCount: k).0 - 0.5
          * crossEntropy
      ) < 1e-12
    )
  }

  @Test("The float32 engine's loss and gradient equal the float64 engine's to single precision")
  func precisions() throws {
    let n = 64, d = 6
    let (x, y) = Self.data(n, features: d, classes: 2, seed: 21)
    let model = MLP(
      inputCount: d,
      classCount: 2,
      units: [16, 8],
      activation: .relu,
      dropout: 0.3,
      seed: 22
    )
    var rng = SplitMix64(seed: 23)
    let masks = [16, 8].map { width in
      (0 ..< (n * width)).map { _ in rng.uniform() < 0.7 ? 1 / 0.7 : 0 }
    }
    let weights = y.map { $0 == 0 ? 1.2 : 1.0 }
    func run<Scalar: BLASScalar>(_: Scalar.Type) throws -> (Double, [Double]) {
      let engine = try MLP.Engine(model, capacity: n, device: CPUTrainingDevice<Scalar>())
      try x.withUnsafeBufferPointer { try engine.load($0, rows: Array(0 ..< n)[...]) }
      try engine.setMasks(masks, count: n)
      let loss = try engine.lossAndGradient(
        count: n,
        labels: y,
        weights: weights,
        loss: FocalLoss()
      )
      return (loss, try engine.gradientValues())
    }
    let (single, singleGradient) = try run(Float.self)
    let (double, doubleGradient) = try run(Double.self)
    #expect(abs(single - double) < 1e-5 * abs(double))
    let scale = doubleGradient.map(abs).max() ?? 1
    let worst = zip(singleGradient, doubleGradient).map { abs($0 - $1) }.max() ?? 0
    #expect(worst < 1e-4 * scale, "worst difference \(worst) of a largest gradient \(scale)")
    #expect(
      doubleGradient
        == model.lossAndGradient(
          x,
          count: n,
          labels: y,
          weights: weights,
          masks: masks,
          loss: FocalLoss()
        ).gradient
    )
  }

  /// Whether a GPU and the CUDA libraries are here.
  static var gpu: Bool { CUDATrainingDevice.problems().isEmpty }

  @Test(
    "On a GPU: the MLP trains as on the CPU in float32 (loss per epoch and predictions), the same run to run, and stops within a batch when cancelled",
    .enabled(if: Self.gpu, "needs an NVIDIA GPU and the CUDA runtime, cuBLAS and NVRTC wheels"),
    arguments: [MLP.Activation.relu, .gelu]
  )
  func onGPU(activation: MLP.Activation) throws {
    let (x, y) = Self.data(2_000, features: 6, classes: 2, seed: 5)
    var settings = MLP.Training()
    settings.maxEpochs = 3
    settings.batchSize = 128
    settings.patience = 0
    func train(_ device: NeuralTraining.Device) throws -> (MLP, [Double]) {
      var training = settings
      training.device = device
      var losses: [Double] = []
      let model = try MLP.train(
        features: x,
        count: 2_000,
        featureCount: 6,
        labels: y,
        classCount: 2,
        units: [64, 32],
        activation: activation,
        dropout: 0.2,
        training: training
      ) { _, loss, _ in
        losses.append(loss)
        return true
      }
      return (model, losses)
    }
    let (cpu, cpuLosses) = try train(.cpu)
    let (gpu, gpuLosses) = try train(.cuda)
    let (again, againLosses) = try train(.cuda)
    #expect(gpu.parameters == again.parameters && gpuLosses == againLosses)
    for (c, g) in zip(cpuLosses, gpuLosses) { #expect(abs(c - g) < 1e-4 * max(1, abs(c))) }
    let worst =
      zip(cpu.logits(x, count: 2_000), gpu.logits(x, count: 2_000))
      .map { abs($0 - $1) }.max() ?? 0
    #expect(worst < 1e-2, "largest logit difference \(worst)")

    let flag = CancellationFlag()
    var training = settings
    training.device = .cuda
    var epochs = 0
    let error = #expect(throws: VaneError.self) {
      _ = try MLP.train(
        features: x,
        count: 2_000,
        featureCount: 6,
        labels: y,
        classCount: 2,
        units: [64, 32],
        training: training,
        cancellation: flag
      ) { _, _, _ in
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
    let (x, y) = Self.data(50, features: 3, classes: 2, seed: 6)
    var training = MLP.Training()
    training.maxEpochs = 1
    training.device = .cuda
    func train() throws {
      _ = try MLP.train(
        features: x,
        count: 50,
        featureCount: 3,
        labels: y,
        classCount: 2,
        units: [4],
        training: training
      )
    }
    let missing = #expect(throws: VaneError.self) { try train() }
    #expect(missing?.code == .failedPrecondition)
    training.precision = .float64
    let precision = #expect(throws: VaneError.self) { try train() }
    #expect(precision?.code == .invalidArgument)
    #expect(precision?.message.contains("float32 only") == true)
  }

  @Test(
    "Training learns a nonlinear rule (validation AUC), stops early, fits a temperature; deterministic; one sample equals its row in a batch",
    arguments: NeuralTraining.Precision.allCases
  )
  func training(precision: NeuralTraining.Precision) throws {
    let (x, y) = Self.data(3_000, features: 4, classes: 2, seed: 1)
    let (vx, vy) = Self.data(800, features: 4, classes: 2, seed: 2)
    var settings = MLP.Training()
    settings.maxEpochs = 40
    settings.batchSize = 128
    settings.learningRate = 3e-3
    settings.patience = 5
    settings.seed = 11
    settings.precision = precision
    var epochs = 0
    let model = try MLP.train(
      features: x,
      count: 3_000,
      featureCount: 4,
      labels: y,
      classCount: 2,
      validation: (vx, 800, vy),
      units: [32, 16],
      dropout: 0.1,
      training: settings
    ) { _, _, _ in
      epochs += 1
      return true
    }
    let p = model.probabilities(vx, count: 800)
    let auc = LeakageTests.auc((0 ..< 800).map { p[2 * $0 + 1] }, vy.map { $0 == 1 })
    #expect(auc > 0.8, "validation AUC \(auc)")
    #expect(model.temperature > 0.2 && model.temperature < 5)
    #expect(epochs <= 40)
    let again = try MLP.train(
      features: x,
      count: 3_000,
      featureCount: 4,
      labels: y,
      classCount: 2,
      validation: (vx, 800, vy),
      units: [32, 16],
      dropout: 0.1,
      training: settings
    )
    #expect(again == model)
    let single = model.probabilities(Array(vx[(5 * 4) ..< (6 * 4)]), count: 1)
    #expect(abs(single[1] - p[11]) < 1e-12 && abs(single[0] - p[10]) < 1e-12)
    let decoded = try JSONDecoder().decode(MLP.self, from: JSONEncoder().encode(model))
    #expect(decoded == model)
  }
}

@Suite("Early stopping")
struct EarlyStoppingTests {
  @Test(
    "Keeps the best model, stops after `patience` epochs without improvement; without a validation loss keeps the last",
    arguments: [
      ([0.5, 0.4, 0.45, 0.41, 0.42], 2, 1, 3),
      ([0.5, 0.4, 0.3, 0.2, 0.1], 2, 4, nil),
      ([0.5, 0.6, 0.7], 0, 2, nil),
    ] as [([Double], Int, Int, Int?)]
  )
  func transitions(losses: [Double], patience: Int, best: Int, stopsAt: Int?) {
    var stopping = EarlyStopping(patience: patience, initial: -1)
    var stoppedAt: Int?
    for (epoch, loss) in losses.enumerated() where stoppedAt == nil {
      if stopping.observe(epoch, validationLoss: loss) { stoppedAt = epoch }
    }
    #expect(stopping.best == best && stoppedAt == stopsAt)
    var unvalidated = EarlyStopping(patience: 3, initial: -1)
    for epoch in 0 ..< 3 {
      let stop = unvalidated.observe(epoch, validationLoss: nil)
      #expect(!stop)
    }
    #expect(unvalidated.best == 2)
  }
}
