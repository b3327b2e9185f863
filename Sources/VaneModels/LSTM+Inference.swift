internal import VaneCore
internal import VaneMath

extension LSTM {
  /// A network ready to answer: its weights converted once to the precision it trained in, so
  /// that a served request runs the float32 GEMMs and eight-lane activations a float32 model
  /// was trained with, and pays no conversion per call. ``LSTM/probabilities(_:count:)`` runs
  /// through one too, so the trainer's outputs and the predictor's are the same arithmetic.
  public struct Inference: Sendable {
    public let inputCount: Int
    public let hiddenSize: Int
    public let sequenceLength: Int
    public let heads: Int
    public let precision: NeuralTraining.Precision
    private let weights: Storage

    private enum Storage: Sendable {
      case float(Weights<Float>)
      case double(Weights<Double>)
    }

    /// One precision's parameters, laid out as ``LSTM`` keeps them.
    private struct Weights<Scalar: RecurrentScalar>: Sendable {
      struct Layer: Sendable {
        var input: [Scalar]
        var recurrent: [Scalar]
        var biases: [Scalar]
      }
      var layers: [Layer]
      var head: [Scalar]
      var headBiases: [Scalar]

      init(_ model: LSTM) {
        func convert(_ values: [Double]) -> [Scalar] { values.map { Scalar($0) } }
        self.layers = model.layers.map {
          Layer(
            input: convert($0.inputWeights),
            recurrent: convert($0.recurrentWeights),
            biases: convert($0.biases)
          )
        }
        self.head = convert(model.headWeights)
        self.headBiases = convert(model.headBiases)
      }
    }

    public init(_ model: LSTM) {
      self.inputCount = model.inputCount
      self.hiddenSize = model.hiddenSize
      self.sequenceLength = model.sequenceLength
      self.heads = model.heads
      self.precision = model.precision
      switch model.precision {
      case .float32: self.weights = .float(Weights(model))
      case .float64: self.weights = .double(Weights(model))
      }
    }

    /// The per-column standardisation of raw inputs that the trainer applied before the
    /// network: a missing (non-finite) value becomes its column's `impute` value when there is
    /// one, then (x − center) / scale; what is still not finite reads as 0, the scaled mean.
    public struct Standardization: Sendable {
      public var center: [Double]
      public var scale: [Double]
      public var impute: [Double]?

      public init(center: [Double], scale: [Double], impute: [Double]? = nil) {
        precondition(center.count == scale.count && impute.map { $0.count == center.count } ?? true)
        self.center = center
        self.scale = scale
        self.impute = impute
      }
    }

    /// Head logits, `count × heads`, for `count` sequences (`count × L × inputCount`,
    /// row-major by sample, then step), standardised on the way in when `standardization` is
    /// given (in the same pass that converts them to the network's precision; a served batch
    /// of windows is half a million values, and separate passes to scale, zero and convert
    /// were a third of its time). A non-finite value reads as 0 either way.
    public func logits(
      _ sequences: [Double],
      count: Int,
      standardization: Standardization? = nil
    ) -> [Double] {
      precondition(sequences.count == count * self.sequenceLength * self.inputCount)
      precondition(standardization.map { $0.center.count == self.inputCount } ?? true)
      switch self.weights {
      case .float(let weights):
        return self.logits(weights, sequences, count: count, standardization)
      case .double(let weights):
        return self.logits(weights, sequences, count: count, standardization)
      }
    }

    /// P(up) per head, `count × heads` (inputs as ``logits(_:count:standardization:)`` takes
    /// them).
    public func probabilities(
      _ sequences: [Double],
      count: Int,
      standardization: Standardization? = nil
    ) -> [Double] {
      self.logits(sequences, count: count, standardization: standardization).map(
        Logistic.sigmoid
      )
    }

    private func logits<Scalar: RecurrentScalar>(
      _ weights: Weights<Scalar>,
      _ sequences: [Double],
      count: Int,
      _ standardization: Standardization?
    ) -> [Double] {
      let H = self.hiddenSize, K = self.heads
      let input: [Scalar] = Self.converted(
        sequences,
        width: self.inputCount,
        standardization
      )
      let last = self.forward(weights, input, count: count)
      var z = [Scalar](repeating: 0, count: count * K)
      last.withUnsafeBufferPointer { x in
        weights.head.withUnsafeBufferPointer { w in
          z.withUnsafeMutableBufferPointer { z in
            Scalar.gemm(
              transposeA: false,
              transposeB: false,
              m: count,
              n: K,
              k: H,
              alpha: 1,
              a: x.baseAddress!,
              lda: H,
              b: w.baseAddress!,
              ldb: K,
              beta: 0,
              c: z.baseAddress!,
              ldc: K
            )
          }
        }
      }
      return (0 ..< (count * K)).map { Double(z[$0] + weights.headBiases[$0 % K]) }
    }

    /// `values` (rows of `width`) standardised and in `Scalar`, in one pass into a fresh
    /// buffer; each row's loop has no branches, so it vectorises.
    private static func converted<Scalar: RecurrentScalar>(
      _ values: [Double],
      width: Int,
      _ standardization: Standardization?
    ) -> [Scalar] {
      @inline(__always) func finite(_ x: Double, else fill: Double) -> Double {
        x.isFinite ? x : fill
      }
      guard !values.isEmpty else { return [] }
      return [Scalar](unsafeUninitializedCapacity: values.count) { buffer, initialized in
        values.withUnsafeBufferPointer { source in
          let x = source.baseAddress!, y = buffer.baseAddress!
          guard let standardization else {
            for i in 0 ..< source.count { y[i] = Scalar(finite(x[i], else: 0)) }
            return
          }
          standardization.center.withUnsafeBufferPointer { center in
            standardization.scale.withUnsafeBufferPointer { scale in
              let center = center.baseAddress!, scale = scale.baseAddress!
              if let impute = standardization.impute {
                impute.withUnsafeBufferPointer { impute in
                  let impute = impute.baseAddress!
                  for start in stride(from: 0, to: source.count, by: width) {
                    for c in 0 ..< width {
                      let v = finite(x[start + c], else: impute[c])
                      y[start + c] = Scalar(finite((v - center[c]) / scale[c], else: 0))
                    }
                  }
                }
              } else {
                for start in stride(from: 0, to: source.count, by: width) {
                  for c in 0 ..< width {
                    y[start + c] = Scalar(finite((x[start + c] - center[c]) / scale[c], else: 0))
                  }
                }
              }
            }
          }
        }
        initialized = values.count
      }
    }

    /// The top layer's last hidden state of each sequence, `count × H`.
    ///
    /// The sequences are already a `(count·L) × inputCount` matrix, so each layer's input
    /// projection is one GEMM over every step; only the recurrent product runs per step, into
    /// the same buffer, and the gates are activated a row at a time (``Logistic``'s lanes).
    private func forward<Scalar: RecurrentScalar>(
      _ weights: Weights<Scalar>,
      _ sequences: [Scalar],
      count: Int
    ) -> [Scalar] {
      let L = self.sequenceLength, H = self.hiddenSize, G = 4 * H
      // Rows are (sample, step): row i·L + t.
      var input = sequences
      var width = self.inputCount
      // Every element is written before it is read (the input GEMM has β = 0; each step
      // writes its hidden rows), so neither buffer is cleared first.
      var gates = [Scalar](unsafeUninitializedCapacity: count * L * G) { $1 = $0.count }
      var hiddens = [Scalar](unsafeUninitializedCapacity: count * L * H) { $1 = $0.count }
      var c = [Scalar](repeating: 0, count: count * H)
      for layer in weights.layers {
        input.withUnsafeBufferPointer { x in
          layer.input.withUnsafeBufferPointer { w in
            gates.withUnsafeMutableBufferPointer { a in
              Scalar.gemm(
                transposeA: false,
                transposeB: false,
                m: count * L,
                n: G,
                k: width,
                alpha: 1,
                a: x.baseAddress!,
                lda: width,
                b: w.baseAddress!,
                ldb: G,
                beta: 0,
                c: a.baseAddress!,
                ldc: G
              )
            }
          }
        }
        for k in 0 ..< c.count { c[k] = 0 }
        gates.withUnsafeMutableBufferPointer { aBuffer in
          hiddens.withUnsafeMutableBufferPointer { hBuffer in
            c.withUnsafeMutableBufferPointer { cBuffer in
              layer.recurrent.withUnsafeBufferPointer { u in
                layer.biases.withUnsafeBufferPointer { bias in
                  let a = aBuffer.baseAddress!, h = hBuffer.baseAddress!
                  let cell = cBuffer.baseAddress!
                  for t in 0 ..< L {
                    if t > 0 && count == 1 {
                      // One window (a served request): a row times U, without GEMM packing.
                      Scalar.gemv(
                        transpose: true,
                        m: H,
                        n: G,
                        alpha: 1,
                        a: u.baseAddress!,
                        lda: G,
                        x: h + (t - 1) * H,
                        beta: 1,
                        y: a + t * G
                      )
                    } else if t > 0 {
                      // Row i·L + t of the gates gets h(i, t − 1)·U: strided rows, L apart.
                      Scalar.gemm(
                        transposeA: false,
                        transposeB: false,
                        m: count,
                        n: G,
                        k: H,
                        alpha: 1,
                        a: h + (t - 1) * H,
                        lda: L * H,
                        b: u.baseAddress!,
                        ldb: G,
                        beta: 1,
                        c: a + t * G,
                        ldc: L * G
                      )
                    }
                    for i in 0 ..< count {
                      let hi = h + (i * L + t) * H
                      Scalar.cellStep(
                        gates: a + (i * L + t) * G,
                        bias: bias.baseAddress!,
                        hidden: H,
                        previousCell: cell + i * H,
                        cell: cell + i * H,
                        cellTanh: hi,
                        output: hi
                      )
                    }
                  }
                }
              }
            }
          }
        }
        input = hiddens
        width = H
      }
      var last = [Scalar](repeating: 0, count: count * H)
      for i in 0 ..< count {
        for j in 0 ..< H { last[i * H + j] = input[(i * L + L - 1) * H + j] }
      }
      return last
    }
  }
}
