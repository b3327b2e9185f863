internal import Foundation
internal import VaneCore
internal import VaneMath

extension LSTM {
  /// The training-time state of a network in one precision: parameters, their gradient, AdamW's
  /// moments and one mini-batch's activations through every step, all in a single allocation
  /// made once (the MLP's ``MLP/Engine`` treatment).
  ///
  /// A batch allocates nothing: the inputs are stored step-major (`L × B × width`), each step's
  /// gate pre-activations are two GEMMs into one buffer (the input product, then the recurrent
  /// one added with β = 1), and the backward pass accumulates every step's weight gradient
  /// straight into ``gradient`` (β = 1). Parameters are laid out in ``LSTM/parameters`` order.
  /// It runs on a ``TrainingDevice`` (the CPU in either precision, or a GPU) and reaches the
  /// host only through its upload and download, as ``MLP/Engine`` does.
  final class Engine<Device: TrainingDevice> {
    typealias Scalar = Device.Scalar
    struct Layer {
      let inputs: Int
      /// Offsets into the parameters (and the gradient): input weights `inputs × 4H`, recurrent
      /// weights `H × 4H`, biases `4H`.
      let weights: Int, recurrent: Int, biases: Int
      /// Per step, `capacity` rows each: gate activations (`4H`), cell state, its tanh, hidden
      /// state and the output after dropout (`H`), and the dropout mask (`H`).
      let gates: UnsafeMutablePointer<Scalar>
      let cells: UnsafeMutablePointer<Scalar>
      let cellTanh: UnsafeMutablePointer<Scalar>
      let hiddens: UnsafeMutablePointer<Scalar>
      let outputs: UnsafeMutablePointer<Scalar>
      let masks: UnsafeMutablePointer<Scalar>
    }

    let device: Device
    let inputCount: Int
    let hiddenSize: Int
    let sequenceLength: Int
    let heads: Int
    /// The most windows a batch may have.
    let capacity: Int
    let layers: [Layer]
    let headWeights: Int
    let headBiases: Int
    let parameterCount: Int
    let theta: UnsafeMutablePointer<Scalar>
    let gradient: UnsafeMutablePointer<Scalar>
    let firstMoment: UnsafeMutablePointer<Scalar>
    let secondMoment: UnsafeMutablePointer<Scalar>
    /// 1 where weight decay applies (weights), 0 for biases.
    let decay: UnsafeMutablePointer<Scalar>
    /// The batch's windows, step-major: `L × capacity × inputCount`.
    let input: UnsafeMutablePointer<Scalar>
    /// The head's input (`capacity × H`: the top layer's last output times `headMask`), the
    /// mask, the logits and their gradient (`capacity × heads`).
    let last: UnsafeMutablePointer<Scalar>
    let headMask: UnsafeMutablePointer<Scalar>
    let logits: UnsafeMutablePointer<Scalar>
    let dLogits: UnsafeMutablePointer<Scalar>
    /// Backward scratch: the gates' gradient at every step (`L × capacity × 4H`), the hidden and
    /// cell gradients
    /// carried to the previous step (`capacity × H`), and two `L × capacity × max(width)`
    /// buffers of gradients at a layer's outputs, alternating between layers.
    let dGates: UnsafeMutablePointer<Scalar>
    let dHidden: UnsafeMutablePointer<Scalar>
    let dHiddenNext: UnsafeMutablePointer<Scalar>
    let dCellNext: UnsafeMutablePointer<Scalar>
    let dOutputs: (UnsafeMutablePointer<Scalar>, UnsafeMutablePointer<Scalar>)
    /// Zeros, `capacity × H`: the state before the first step.
    let zeros: UnsafeMutablePointer<Scalar>
    private let storage: UnsafeMutablePointer<Scalar>
    /// Host memory: a batch's windows and masks on their way in, the logits on their way out.
    private let host: UnsafeMutablePointer<Scalar>
    private(set) var steps = 0

    /// Takes `model`'s parameters onto `device`; batches of up to `capacity` windows.
    /// - Throws: what the device throws (out of memory, a failed copy).
    init(_ model: LSTM, capacity: Int, device: Device) throws {
      precondition(capacity > 0)
      self.device = device
      let L = model.sequenceLength, H = model.hiddenSize, K = model.heads, B = capacity
      self.inputCount = model.inputCount
      self.hiddenSize = H
      self.sequenceLength = L
      self.heads = K
      self.capacity = capacity
      let widths = model.layers.indices.map { $0 == 0 ? model.inputCount : H }
      let parameterCount = widths.reduce(0) { $0 + ($1 + H) * 4 * H + 4 * H } + H * K + K
      let widest = max(model.inputCount, H)
      let total =
        5 * parameterCount + L * B * model.inputCount + 3 * B * H + 2 * B * K
        + L * B * 4 * H + 4 * B * H + 2 * L * B * widest + widths.count * L * B * 9 * H
      self.storage = try device.allocate(total)
      // The host buffer holds the parameters, a batch's windows, a step's mask, or the
      // logits, the head's biases and the logits' gradient.
      let hostCount = max(parameterCount, L * B * model.inputCount, B * H, 2 * B * K + K)
      let host = UnsafeMutablePointer<Scalar>.allocate(capacity: hostCount)
      host.initialize(repeating: 0, count: hostCount)
      self.host = host
      var next = self.storage
      func take(_ n: Int) -> UnsafeMutablePointer<Scalar> {
        defer { next += n }
        return next
      }
      self.parameterCount = parameterCount
      self.theta = take(parameterCount)
      self.gradient = take(parameterCount)
      self.firstMoment = take(parameterCount)
      self.secondMoment = take(parameterCount)
      self.decay = take(parameterCount)
      self.input = take(L * B * model.inputCount)
      self.last = take(B * H)
      self.headMask = take(B * H)
      self.zeros = take(B * H)
      self.logits = take(B * K)
      self.dLogits = take(B * K)
      self.dGates = take(L * B * 4 * H)
      self.dHidden = take(B * H)
      self.dHiddenNext = take(B * H)
      self.dCellNext = take(B * H)
      self.dOutputs = (take(L * B * widest), take(L * B * widest))
      var offset = 0
      var layers: [Layer] = []
      for width in widths {
        let layer = Layer(
          inputs: width,
          weights: offset,
          recurrent: offset + width * 4 * H,
          biases: offset + (width + H) * 4 * H,
          gates: take(L * B * 4 * H),
          cells: take(L * B * H),
          cellTanh: take(L * B * H),
          hiddens: take(L * B * H),
          outputs: take(L * B * H),
          masks: take(L * B * H)
        )
        (host + offset).update(repeating: 1, count: (width + H) * 4 * H)
        try device.fill(layer.masks, with: 1, count: L * B * H)
        offset += (width + H) * 4 * H + 4 * H
        layers.append(layer)
      }
      self.layers = layers
      self.headWeights = offset
      self.headBiases = offset + H * K
      precondition(self.headBiases + K == parameterCount)
      // The decay flags were built in the host buffer (zero-initialised) above.
      (self.host + self.headWeights).update(repeating: 1, count: H * K)
      try device.upload(self.host, to: self.decay, count: parameterCount)
      try device.fill(self.headMask, with: 1, count: B * H)
      for (j, value) in model.parameters.enumerated() { self.host[j] = Scalar(value) }
      try device.upload(self.host, to: self.theta, count: parameterCount)
    }

    deinit {
      self.device.free(self.storage)
      self.host.deallocate()
    }

    /// The parameters, read back from the device.
    func parameters() throws -> [Double] {
      try self.device.download(self.theta, to: self.host, count: self.parameterCount)
      return (0 ..< self.parameterCount).map { Double(self.host[$0]) }
    }

    /// The gradient of the last ``lossAndGradient(count:labels:bpttSteps:)``.
    func gradientValues() throws -> [Double] {
      try self.device.download(self.gradient, to: self.host, count: self.parameterCount)
      return (0 ..< self.parameterCount).map { Double(self.host[$0]) }
    }

    /// `model` with this state's parameters.
    func model(_ model: LSTM) throws -> LSTM {
      var model = model
      model.setParameters(try self.parameters())
      return model
    }

    /// Copies the windows `rows` of `sequences` (`count × L × inputCount`, window-major) into
    /// the step-major batch input.
    func load(_ sequences: UnsafeBufferPointer<Double>, rows: ArraySlice<Int>) throws {
      precondition(rows.count <= self.capacity)
      let L = self.sequenceLength, d = self.inputCount, B = self.capacity
      for (i, row) in rows.enumerated() {
        let window = sequences.baseAddress! + row * L * d
        for t in 0 ..< L {
          let source = window + t * d, target = self.host + (t * B + i) * d
          for j in 0 ..< d { target[j] = Scalar(source[j]) }
        }
      }
      // Rows past the batch hold earlier batches' windows: computed, never read.
      try self.device.upload(self.host, to: self.input, count: L * B * d)
    }

    /// Draws the dropout masks for `count` windows: between layers at every step (not after
    /// the top layer, whose last output the head mask covers), each unit kept with probability
    /// `keep` and scaled by 1/keep; two draws per 64-bit random number.
    func drawMasks(count: Int, keep: Double, random: inout SeededRandom) throws {
      guard keep < 1 else { return }
      let threshold = UInt64(keep * 4_294_967_296), scale = Scalar(1 / keep)
      let H = self.hiddenSize, B = self.capacity
      func draw(_ mask: UnsafeMutablePointer<Scalar>, _ n: Int) throws {
        let staged = self.host
        var k = 0
        while k < n {
          let r = random.next()
          staged[k] = r & 0xFFFF_FFFF < threshold ? scale : 0
          if k + 1 < n { staged[k + 1] = r >> 32 < threshold ? scale : 0 }
          k += 2
        }
        try self.device.upload(staged, to: mask, count: n)
      }
      for layer in self.layers.dropLast() {
        for t in 0 ..< self.sequenceLength { try draw(layer.masks + t * B * H, count * H) }
      }
      try draw(self.headMask, count * H)
    }

    /// Sets the masks: `masks[l][t]` (`count × H`) and the head's (`count × H`).
    func setMasks(_ masks: [[[Double]]], headMask: [Double], count: Int) throws {
      let H = self.hiddenSize, B = self.capacity
      for (layer, steps) in zip(self.layers, masks) {
        for (t, mask) in steps.enumerated() {
          precondition(mask.count == count * H)
          for k in mask.indices { self.host[k] = Scalar(mask[k]) }
          try self.device.upload(self.host, to: layer.masks + t * B * H, count: mask.count)
        }
      }
      for k in headMask.indices { self.host[k] = Scalar(headMask[k]) }
      try self.device.upload(self.host, to: self.headMask, count: headMask.count)
    }

    /// The training-mode forward pass over the first `count` windows (dropout as set), then the
    /// heads' mean binary cross-entropy over the available labels (`count × heads`, −1 missing)
    /// and its gradient over the parameters into ``gradient``, back-propagating through the
    /// last `bpttSteps` steps.
    func lossAndGradient(count: Int, labels: [Int], bpttSteps: Int) throws -> Double {
      precondition(count > 0 && count <= self.capacity && labels.count == count * self.heads)
      let L = self.sequenceLength, H = self.hiddenSize, K = self.heads, B = self.capacity
      let G = 4 * H
      let device = self.device, theta = self.theta, gradient = self.gradient
      try device.fill(gradient, with: 0, count: self.parameterCount)

      // Forward, layer by layer over all steps.
      var x = UnsafePointer(self.input)
      for layer in self.layers {
        let bias = theta + layer.biases
        // The input projection of every step at once (rows past `count` hold earlier batches'
        // values: computed, never read).
        try device.gemm(
          transposeA: false,
          transposeB: false,
          m: L * B,
          n: G,
          k: layer.inputs,
          alpha: 1,
          a: x,
          lda: layer.inputs,
          b: theta + layer.weights,
          ldb: G,
          beta: 0,
          c: layer.gates,
          ldc: G
        )
        for t in 0 ..< L {
          let a = layer.gates + t * B * G
          if t > 0 {
            try device.gemm(
              transposeA: false,
              transposeB: false,
              m: count,
              n: G,
              k: H,
              alpha: 1,
              a: layer.hiddens + (t - 1) * B * H,
              lda: H,
              b: theta + layer.recurrent,
              ldb: G,
              beta: 1,
              c: a,
              ldc: G
            )
          }
          let previous =
            t > 0 ? UnsafePointer(layer.cells + (t - 1) * B * H) : UnsafePointer(self.zeros)
          let c = layer.cells + t * B * H, h = layer.hiddens + t * B * H
          let tanhC = layer.cellTanh + t * B * H
          try device.lstmCell(
            gates: a,
            bias: bias,
            previousCell: previous,
            cell: c,
            cellTanh: tanhC,
            hidden: h,
            output: layer.outputs + t * B * H,
            mask: layer.masks + t * B * H,
            count: count,
            units: H
          )
        }
        x = UnsafePointer(layer.outputs)
      }

      // The heads on the top layer's last output.
      let top = self.layers[self.layers.count - 1]
      let lastOutput = top.outputs + (L - 1) * B * H
      try device.multiply(self.last, lastOutput, self.headMask, count: count * H)
      try device.gemm(
        transposeA: false,
        transposeB: false,
        m: count,
        n: K,
        k: H,
        alpha: 1,
        a: self.last,
        lda: H,
        b: theta + self.headWeights,
        ldb: K,
        beta: 0,
        c: self.logits,
        ldc: K
      )
      // The loss on the host, in Double: the logits and the head's biases come back.
      let logits = self.host, biases = self.host + count * K, dLogits = biases + K
      try device.download(self.logits, to: logits, count: count * K)
      try device.download(theta + self.headBiases, to: biases, count: K)
      let available = Double(max(labels.lazy.filter { $0 >= 0 }.count, 1))
      var loss = 0.0
      for i in 0 ..< count {
        for k in 0 ..< K {
          let index = i * K + k
          let v = Double(logits[index] + biases[k])
          guard labels[index] >= 0 else {
            dLogits[index] = 0
            continue
          }
          let y = Double(labels[index])
          loss += Logistic.softplus(v) - y * v
          dLogits[index] = Scalar((Logistic.sigmoid(v) - y) / available)
        }
      }
      try device.upload(dLogits, to: self.dLogits, count: count * K)
      try device.gemm(
        transposeA: true,
        transposeB: false,
        m: H,
        n: K,
        k: count,
        alpha: 1,
        a: self.last,
        lda: H,
        b: self.dLogits,
        ldb: K,
        beta: 0,
        c: gradient + self.headWeights,
        ldc: K
      )
      try device.columnSums(
        self.dLogits,
        into: gradient + self.headBiases,
        count: count,
        columns: K
      )
      // Gradient at the top layer's outputs: the last step only.
      var dOut = self.dOutputs.0, dIn = self.dOutputs.1
      try device.fill(dOut, with: 0, count: L * B * H)
      let dLast = dOut + (L - 1) * B * H
      try device.gemm(
        transposeA: false,
        transposeB: true,
        m: count,
        n: H,
        k: K,
        alpha: 1,
        a: self.dLogits,
        lda: K,
        b: theta + self.headWeights,
        ldb: K,
        beta: 0,
        c: dLast,
        ldc: H
      )
      try device.multiply(dLast, dLast, self.headMask, count: count * H)

      // Backward through time, layer by layer from the top: the recursion runs step by step
      // (each step's hidden gradient needs the next step's gates), the weight and input
      // gradients are then one GEMM each over every step's gate gradients.
      let first = max(0, L - bpttSteps)
      for l in self.layers.indices.reversed() {
        let layer = self.layers[l]
        let width = layer.inputs
        let below = l > 0 ? UnsafePointer(self.layers[l - 1].outputs) : UnsafePointer(self.input)
        // Rows past `count` and steps before `first` stay zero: they add nothing below. Every
        // other row is written whole by the step loop, so a full batch zeroes nothing (the
        // buffer is L·B·4H values, megabytes a batch).
        if first > 0 { try device.fill(self.dGates, with: 0, count: first * B * G) }
        if count < B {
          for t in first ..< L {
            try device.fill(self.dGates + (t * B + count) * G, with: 0, count: (B - count) * G)
          }
        }
        try device.fill(self.dHiddenNext, with: 0, count: count * H)
        try device.fill(self.dCellNext, with: 0, count: count * H)
        for t in stride(from: L - 1, through: first, by: -1) {
          let gates = layer.gates + t * B * G, tanhC = layer.cellTanh + t * B * H
          let previous =
            t > 0 ? UnsafePointer(layer.cells + (t - 1) * B * H) : UnsafePointer(self.zeros)
          let dGatesT = self.dGates + t * B * G
          try device.lstmCellBackward(
            gates: gates,
            cellTanh: tanhC,
            previousCell: previous,
            dOutput: dOut + t * B * H,
            mask: layer.masks + t * B * H,
            dHiddenNext: self.dHiddenNext,
            dCellNext: self.dCellNext,
            dGates: dGatesT,
            count: count,
            units: H
          )
          if t > first {
            try device.gemm(
              transposeA: false,
              transposeB: true,
              m: count,
              n: H,
              k: G,
              alpha: 1,
              a: dGatesT,
              lda: G,
              b: theta + layer.recurrent,
              ldb: G,
              beta: 0,
              c: self.dHiddenNext,
              ldc: H
            )
          }
        }
        // Input weights: every step's inputs against its gate gradients.
        try device.gemm(
          transposeA: true,
          transposeB: false,
          m: width,
          n: G,
          k: L * B,
          alpha: 1,
          a: below,
          lda: width,
          b: self.dGates,
          ldb: G,
          beta: 1,
          c: gradient + layer.weights,
          ldc: G
        )
        // Recurrent weights: step t's gate gradients against step t − 1's hidden state.
        if L > 1 {
          try device.gemm(
            transposeA: true,
            transposeB: false,
            m: H,
            n: G,
            k: (L - 1) * B,
            alpha: 1,
            a: layer.hiddens,
            lda: H,
            b: self.dGates + B * G,
            ldb: G,
            beta: 1,
            c: gradient + layer.recurrent,
            ldc: G
          )
        }
        // Every step's gate gradients, rows in order (those past the batch are zero).
        try device.columnSums(
          self.dGates + first * B * G,
          into: gradient + layer.biases,
          count: (L - first) * B,
          columns: G
        )
        if l > 0 {
          try device.gemm(
            transposeA: false,
            transposeB: true,
            m: L * B,
            n: width,
            k: G,
            alpha: 1,
            a: self.dGates,
            lda: G,
            b: theta + layer.weights,
            ldb: G,
            beta: 0,
            c: dIn,
            ldc: width
          )
        }
        swap(&dOut, &dIn)
      }
      return loss / available
    }

    /// Clips the gradient to `clipNorm` and takes one optimiser step.
    func step(_ optimizer: AdamW, clipNorm: Double) throws {
      self.steps += 1
      try self.device.optimize(
        optimizer,
        theta: self.theta,
        gradient: self.gradient,
        firstMoment: self.firstMoment,
        secondMoment: self.secondMoment,
        decay: self.decay,
        count: self.parameterCount,
        step: self.steps,
        clipNorm: clipNorm
      )
    }

  }
}

/// A precision the LSTM trains and answers in: GEMMs, and the cell step in that precision
/// (``Logistic``'s eight- and four-lane functions, not libm's scalar ones).
protocol RecurrentScalar: BLASScalar {
  /// One sample's step of an LSTM cell, for training and serving alike: adds the biases to the
  /// gates' pre-activations (input, forget, cell, output, `hidden` each), activates them in
  /// place, then c = f·c₋₁ + i·g, tanh(c) and h = o·tanh(c). `previousCell` may be `cell` and
  /// `cellTanh` may be `output` (each element is read before it is written). Fused a group of
  /// lanes at a time (``Logistic``'s `lstmCell` in this precision).
  static func cellStep(
    gates: UnsafeMutablePointer<Self>,
    bias: UnsafePointer<Self>,
    hidden: Int,
    previousCell: UnsafePointer<Self>,
    cell: UnsafeMutablePointer<Self>,
    cellTanh: UnsafeMutablePointer<Self>,
    output: UnsafeMutablePointer<Self>
  )
}

extension Float: RecurrentScalar {
  @inline(__always)
  static func cellStep(
    gates: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>,
    hidden: Int,
    previousCell: UnsafePointer<Float>,
    cell: UnsafeMutablePointer<Float>,
    cellTanh: UnsafeMutablePointer<Float>,
    output: UnsafeMutablePointer<Float>
  ) {
    Logistic.lstmCell(
      gates: gates,
      bias: bias,
      hidden: hidden,
      previousCell: previousCell,
      cell: cell,
      cellTanh: cellTanh,
      output: output
    )
  }
}

extension Double: RecurrentScalar {
  @inline(__always)
  static func cellStep(
    gates: UnsafeMutablePointer<Double>,
    bias: UnsafePointer<Double>,
    hidden: Int,
    previousCell: UnsafePointer<Double>,
    cell: UnsafeMutablePointer<Double>,
    cellTanh: UnsafeMutablePointer<Double>,
    output: UnsafeMutablePointer<Double>
  ) {
    Logistic.lstmCell(
      gates: gates,
      bias: bias,
      hidden: hidden,
      previousCell: previousCell,
      cell: cell,
      cellTanh: cellTanh,
      output: output
    )
  }
}
