extension ONNXModel {
  /// Load-time rewrites of the planned steps, after folding and each step's `prepare`:
  ///
  /// - **Identity**: its readers (and a graph output it names) read its input instead; the
  ///   step goes (onnxmltools' converters put two after every tree ensemble).
  /// - **Gemm + BatchNormalization**: an inference batch norm over a Gemm's result is a scale
  ///   and shift per column, so it is folded into B's columns and C (as PyTorch's Linear +
  ///   BatchNorm1d exports it).
  /// - **Gemm + an elementwise function** (Relu, Sigmoid, Tanh, …) that is the result's only
  ///   reader: applied to the Gemm's result in place.
  ///
  /// Each saves a pass over the intermediate, its buffer and a step's dispatch: on an MLP's
  /// single row, most of the steps. A node is merged only when nothing else can see what it
  /// merges away: the intermediate must have that one reader and not be a graph output, and
  /// the weights must be constants a caller cannot override. Errors name the merged nodes
  /// ("Gemm_0+BatchNormalization_1").
  struct Fusion {
    private(set) var steps: [Step]
    private(set) var constants: [Int: ONNXTensor]
    private(set) var slotCount: Int
    /// The slot each graph output is read from (an Identity's input, once it is dropped).
    private(set) var outputSlots: [Int]
    /// Inputs a caller may give.
    let overridable: Set<Int>
    let limits: ONNXModelLimits

    /// Slots nothing may merge away or rewrite: graph outputs and inputs a caller may give.
    var protected: Set<Int> { self.overridable.union(self.outputSlots) }

    init(
      steps: [Step],
      constants: [Int: ONNXTensor],
      slotCount: Int,
      overridable: Set<Int>,
      outputSlots: [Int],
      limits: ONNXModelLimits
    ) {
      self.steps = steps
      self.constants = constants
      self.slotCount = slotCount
      self.overridable = overridable
      self.outputSlots = outputSlots
      self.limits = limits
    }

    mutating func run() throws {
      self.dropIdentities()
      var index = 0
      while index < self.steps.count {
        // After a merge the same Gemm is tried again: batch norm, then the activation after it.
        guard self.steps[index].opType == "Gemm" && self.steps[index].domain == "" else {
          index += 1
          continue
        }
        if try self.foldBatchNormalization(into: index) { continue }
        if self.fuseActivation(into: index) { continue }
        index += 1
      }
    }

    /// Every Identity step goes: what read its output reads its input. An output that is also
    /// an input a caller may give keeps its step (a caller's tensor must not replace it).
    private mutating func dropIdentities() {
      var index = 0
      while index < self.steps.count {
        let step = self.steps[index]
        guard step.opType == "Identity", step.domain == "", step.inputs.count == 1,
          step.outputs.count == 1, let source = step.inputs[0], let target = step.outputs[0],
          !self.overridable.contains(target)
        else {
          index += 1
          continue
        }
        for reader in self.steps.indices {
          self.steps[reader].inputs = self.steps[reader].inputs.map { $0 == target ? source : $0 }
        }
        self.outputSlots = self.outputSlots.map { $0 == target ? source : $0 }
        self.steps.remove(at: index)
      }
    }

    /// The one step that reads `slot`, once, when no other step and no graph output does.
    private func soleReader(of slot: Int) -> Int? {
      guard !self.protected.contains(slot) else { return nil }
      var found: Int? = nil
      for (index, step) in self.steps.enumerated() {
        for input in step.inputs where input == slot {
          if found != nil { return nil }
          found = index
        }
      }
      return found
    }

    /// The step after Gemm `index` that reads its only output as its first input, and nothing
    /// else of it.
    private func follower(of index: Int) -> Int? {
      let gemm = self.steps[index]
      guard gemm.outputs.count == 1, let output = gemm.outputs[0],
        let reader = self.soleReader(of: output), self.steps[reader].inputs.first == output
      else { return nil }
      return reader
    }

    /// A constant a caller cannot override.
    private func constant(_ slot: Int?) -> ONNXTensor? {
      guard let slot, !self.protected.contains(slot) else { return nil }
      return self.constants[slot]
    }

    private mutating func addConstant(_ tensor: ONNXTensor) -> Int {
      self.constants[self.slotCount] = tensor
      self.slotCount += 1
      return self.slotCount - 1
    }

    /// Drops constants no step reads any more (a folded Gemm's original B and C).
    private mutating func dropUnread(_ slots: [Int?]) {
      for case let slot? in slots
      where !self.protected.contains(slot)
        && !self.steps.contains(where: { $0.inputs.contains(slot) })
      {
        self.constants[slot] = nil
      }
    }

    private mutating func foldBatchNormalization(into index: Int) throws -> Bool {
      let gemm = self.steps[index]
      guard let reader = self.follower(of: index),
        self.steps[reader].opType == "BatchNormalization", self.steps[reader].domain == "",
        self.steps[reader].outputs.dropFirst().allSatisfy({ $0 == nil }),
        let attributes = gemm.prepared as? GemmAttributes, attributes.activation == nil,
        gemm.inputs.count >= 2, let b = self.constant(gemm.inputs[1]), b.rank == 2
      else { return false }
      let norm = self.steps[reader]
      let context = ONNXModel.loadContext(
        norm,
        constants: self.constants,
        overridable: self.protected,
        self.limits
      )
      // Training mode, or terms that are not constants or do not fit: left to the node itself,
      // which reports what is wrong when it runs.
      guard norm.opset < 14 || context.int("training_mode", 0) == 0,
        let terms = try? BatchNormalizationTerms(context)
      else { return false }
      let n = attributes.transB ? b.shape[0] : b.shape[1]
      let cSlot = gemm.inputs.count > 2 ? gemm.inputs[2] : nil
      let c = attributes.beta == 0 ? nil : cSlot.flatMap { self.constant($0) }
      guard terms.a.count == n, cSlot == nil || attributes.beta == 0 || c != nil else {
        return false
      }
      // C as a bias row or a scalar; a whole [m, n] C depends on m, unknown until run time.
      if let c, !(c.count == 1 || (c.count == n && c.shape.last == n)) { return false }

      func folded<T: ONNXFloat>(_: T.Type) -> (b: ONNXTensor, c: ONNXTensor)? {
        guard let weights = T.values(of: b) else { return nil }
        let bias: [T]? = c.flatMap { T.values(of: $0) }
        if c != nil && bias == nil { return nil }
        // Each product in double, rounded once to the model's type.
        var scaled = weights
        let rows = b.shape[0], columns = b.shape[1]
        for row in 0 ..< rows {
          for column in 0 ..< columns {
            let channel = attributes.transB ? row : column
            let i = row * columns + column
            scaled[i] = T(Double(weights[i]) * terms.a[channel])
          }
        }
        let shift = (0 ..< n).map { j in
          let added = bias.map { attributes.beta * Double($0[$0.count == 1 ? 0 : j]) } ?? 0
          return T(added * terms.a[j] + terms.b[j])
        }
        return (T.tensor(scaled, shape: b.shape), T.tensor(shift, shape: [n]))
      }
      guard let (newB, newC) = folded(Float.self) ?? folded(Double.self) else { return false }

      var attributeTable = gemm.attributes
      var one = Onnx_AttributeProto()
      one.name = "beta"
      one.type = .float
      one.f = 1
      attributeTable["beta"] = one
      var fused = gemm
      fused.name = "\(gemm.name)+\(norm.name)"
      fused.attributes = attributeTable
      fused.inputs = [gemm.inputs[0], self.addConstant(newB), self.addConstant(newC)]
      fused.outputs = norm.outputs
      try ONNXModel.prepare(
        &fused,
        constants: self.constants,
        overridable: self.protected,
        self.limits
      )
      self.steps[index] = fused
      self.steps.remove(at: reader)
      self.dropUnread(Array(gemm.inputs.dropFirst()) + norm.inputs.dropFirst())
      return true
    }

    private mutating func fuseActivation(into index: Int) -> Bool {
      guard let reader = self.follower(of: index), let unary = self.steps[reader].unary,
        self.steps[reader].inputs.count == 1, self.steps[reader].outputs.count == 1,
        var attributes = self.steps[index].prepared as? GemmAttributes,
        attributes.activation == nil
      else { return false }
      let activation = self.steps[reader]
      let context = ONNXModel.loadContext(
        activation,
        constants: self.constants,
        overridable: self.protected,
        self.limits
      )
      attributes.activation = GenericUnary(kind: unary(context))
      self.steps[index].prepared = attributes
      self.steps[index].name += "+\(activation.name)"
      self.steps[index].outputs = activation.outputs
      self.steps.remove(at: reader)
      return true
    }
  }
}
