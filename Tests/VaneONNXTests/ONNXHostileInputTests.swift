import Foundation
import Testing
import VaneCore

@testable import VaneONNXRuntime

/// Broken and hostile models: each refused with an error that names the node, op or input,
/// and a seeded mutation loop over real models that must never crash the process.
@Suite("ONNX engine: bad and hostile models")
struct ONNXHostileInputTests {
  static let fixtures = ONNXForeignModelTests.directory

  /// A one-input float model built from `nodes`.
  static func model(
    _ nodes: [Onnx_NodeProto],
    inputs: [String] = ["x"],
    outputs: [String] = ["y"],
    opset: Int64 = 17,
    shape: [Int64] = [2]
  ) -> Data {
    var model = Onnx_ModelProto()
    model.irVersion = 8
    model.opsetImport = [
      .with {
        $0.domain = ""
        $0.version = opset
      }
    ]
    model.graph = .with { graph in
      graph.name = "g"
      graph.node = nodes
      graph.input = inputs.map { name in
        .with {
          $0.name = name
          $0.type = .with {
            $0.tensorType = .with {
              $0.elemType = 1
              $0.shape = .with { $0.dim = shape.map { d in .with { $0.dimValue = d } } }
            }
          }
        }
      }
      graph.output = outputs.map { name in .with { $0.name = name } }
    }
    return try! model.serializedData()
  }

  /// A float initializer `name` of shape `dims`.
  static func initializer(_ name: String, _ dims: [Int], _ floats: [Float]) -> Onnx_TensorProto {
    .with {
      $0.name = name
      $0.dims = dims.map(Int64.init)
      $0.dataType = 1
      $0.floatData = floats
    }
  }

  static func node(
    _ op: String,
    _ inputs: [String],
    _ outputs: [String],
    name: String = ""
  ) -> Onnx_NodeProto {
    .with {
      $0.opType = op
      $0.input = inputs
      $0.output = outputs
      $0.name = name.isEmpty ? "\(op.lowercased())_node" : name
    }
  }

  static func loadError(_ data: Data, limits: ONNXModelLimits = .default) -> VaneError? {
    do {
      _ = try ONNXModel(data: data, limits: limits)
      return nil
    } catch let error as VaneError {
      return error
    } catch {
      return VaneError(.internalError, "\(error)")
    }
  }

  @Test(
    "Refused at load, naming what is wrong: truncated, oversized, a cycle, an undefined input, an unsupported op, a node writing an input"
  )
  func loadErrors() throws {
    let real = try Data(
      contentsOf: Self.fixtures.appendingPathComponent("pytorch_mlp_batchnorm.onnx")
    )
    let truncated = try #require(Self.loadError(real.prefix(real.count / 2)))
    #expect(
      truncated.code == .invalidArgument && truncated.message.contains("not an ONNX ModelProto"),
      "\(truncated)"
    )
    let oversized = try #require(
      Self.loadError(real, limits: ONNXModelLimits(maximumModelBytes: 1000))
    )
    #expect(oversized.message.contains("over the limit of 1000"))
    let nodes = try #require(Self.loadError(real, limits: ONNXModelLimits(maximumNodes: 3)))
    #expect(nodes.message.contains("nodes, over the limit of 3"))

    let cycle = try #require(
      Self.loadError(
        Self.model(
          [
            Self.node("Relu", ["b"], ["a"], name: "first"),
            Self.node("Relu", ["a"], ["b"], name: "second"),
          ],
          outputs: ["a"]
        )
      )
    )
    #expect(
      cycle.message.contains("cycle") && cycle.message.contains("'first'")
        && cycle.message.contains("'second'"),
      "\(cycle)"
    )
    let undefined = try #require(
      Self.loadError(Self.model([Self.node("Add", ["x", "nowhere"], ["y"], name: "adder")]))
    )
    #expect(
      undefined.message.contains("'adder'") && undefined.message.contains("'nowhere'"),
      "\(undefined)"
    )
    let unsupported = try #require(
      Self.loadError(Self.model([Self.node("Einsum", ["x"], ["y"], name: "mystery")]))
    )
    #expect(
      unsupported.isUnsupportedONNX && unsupported.message.contains("Einsum")
        && unsupported.message.contains("'mystery'"),
      "\(unsupported)"
    )
    let tooNew = try #require(
      Self.loadError(Self.model([Self.node("LayerNormalization", ["x", "x"], ["y"])], opset: 13))
    )
    #expect(tooNew.isUnsupportedONNX && tooNew.message.contains("opset 13"), "\(tooNew)")
    let overwrite = try #require(
      Self.loadError(Self.model([Self.node("Relu", ["x"], ["x"], name: "clobber")], outputs: ["x"]))
    )
    #expect(
      overwrite.message.contains("'clobber'") && overwrite.message.contains("already defined"),
      "\(overwrite)"
    )
    let dangling = try #require(
      Self.loadError(Self.model([Self.node("Relu", ["x"], ["y"])], outputs: ["z"]))
    )
    #expect(dangling.message.contains("'z'"), "\(dangling)")
  }

  @Test(
    "Refused at run time, naming the input or node: wrong type, wrong shape, unknown or missing input, shapes that do not fit"
  )
  func runErrors() throws {
    let model = try ONNXModel(data: Self.model([Self.node("Relu", ["x"], ["y"])]))
    func message(_ inputs: [String: ONNXTensor]) -> String {
      do {
        _ = try model.run(inputs)
        return ""
      } catch let error as VaneError { return error.message } catch { return "\(error)" }
    }
    #expect(
      message(["x": ONNXTensor(shape: [2], doubles: [1, 2])]).contains(
        "input 'x': float64, but the model declares float32"
      )
    )
    #expect(
      message(["x": ONNXTensor(shape: [3], floats: [1, 2, 3])]).contains(
        "input 'x': shape [3], but the model declares [2]"
      )
    )
    #expect(message(["x": ONNXTensor(shape: [2], floats: [1])]).contains("1 values for shape [2]"))
    #expect(
      message(["x": ONNXTensor(shape: [Int.max, 4], floats: [1])]).contains("values for shape")
    )
    #expect(message([:]).contains("input 'x' is missing"))
    #expect(
      message([
        "x": ONNXTensor(shape: [2], floats: [1, 2]), "w": ONNXTensor(shape: [1], floats: [1]),
      ]).contains("input 'w': the model has no such input")
    )
    let matmul = try ONNXModel(
      data: Self.model(
        [Self.node("MatMul", ["x", "w"], ["y"], name: "product")],
        inputs: ["x", "w"],
        shape: [2, 3]
      )
    )
    do {
      _ = try matmul.run([
        "x": ONNXTensor(shape: [2, 3], floats: [Float](repeating: 1, count: 6)),
        "w": ONNXTensor(shape: [2, 3], floats: [Float](repeating: 1, count: 6)),
      ])
      Issue.record("a [2, 3]·[2, 3] product ran")
    } catch let error as VaneError {
      #expect(
        error.code == .invalidArgument && error.message.contains("'product' (MatMul)")
          && error.message.contains("do not multiply"),
        "\(error)"
      )
    }
  }

  @Test(
    "A LinearClassifier given rows of no features is INVALID_ARGUMENT naming the node, not a crash"
  )
  func linearClassifierWithoutFeatures() throws {
    var node = Self.node("LinearClassifier", ["x"], ["label", "scores"], name: "linear")
    node.domain = "ai.onnx.ml"
    node.attribute = [
      .with {
        $0.name = "coefficients"
        $0.type = .floats
        $0.floats = [1, 2, 3]
      },
      .with {
        $0.name = "classlabels_ints"
        $0.type = .ints
        $0.ints = [0, 1, 2]
      },
    ]
    var data = Self.model([node], outputs: ["label", "scores"], shape: [2, 0])
    var proto = try Onnx_ModelProto(serializedBytes: data)
    proto.opsetImport.append(
      .with {
        $0.domain = "ai.onnx.ml"
        $0.version = 1
      }
    )
    data = try proto.serializedData()
    let model = try ONNXModel(data: data)
    do {
      _ = try model.run(["x": ONNXTensor(shape: [2, 0], floats: [])])
      Issue.record("rows of no features ran")
    } catch let error as VaneError {
      #expect(
        error.code == .invalidArgument && error.message.contains("'linear' (LinearClassifier)")
          && error.message.contains("coefficients do not fit 0 features"),
        "\(error)"
      )
    }
  }

  /// Mutates the bytes of real models (flips, truncations, insertions, copies of other spans)
  /// and loads and runs each result: every outcome must be a model or a VaneError, never a
  /// crash. `VANE_ONNX_FUZZ_ITERATIONS` and `VANE_ONNX_FUZZ_SEED` run more and other inputs (the
  /// README's fuzz command).
  @Test("A seeded mutation loop over real models never crashes the reader or the engine")
  func mutationFuzz() async throws {
    // Seconds of CPU: on the blocking pool, not the cooperative threads the suite shares.
    try await BlockingPool.shared.run { try Self.fuzz() }
  }

  static func fuzz() throws {
    let iterations =
      Int(ProcessInfo.processInfo.environment["VANE_ONNX_FUZZ_ITERATIONS"] ?? "") ?? 2_000
    let seed = UInt64(ProcessInfo.processInfo.environment["VANE_ONNX_FUZZ_SEED"] ?? "") ?? 20261204
    let limits = ONNXModelLimits(
      maximumModelBytes: 4 << 20,
      maximumNodes: 10_000,
      maximumTensorElements: 1 << 20,
      maximumRank: 8
    )
    var seeds: [(model: Data, inputs: [String: ONNXTensor])] = []
    for name in [
      "skl2onnx_logistic", "skl2onnx_mlp", "onnxmltools_lightgbm_3class", "pytorch_lstm",
      "pytorch_attention", "pytorch_mlp_batchnorm",
    ] {
      let fixture =
        try JSONSerialization.jsonObject(
          with: Data(contentsOf: fixtures.appendingPathComponent("\(name).json"))
        ) as! [String: Any]
      seeds.append(
        (
          try Data(contentsOf: fixtures.appendingPathComponent("\(name).onnx")),
          try ONNXTensorJSON.decode(try JSONSerialization.data(withJSONObject: fixture["inputs"]!))
        )
      )
    }
    var random = SystemRandomNumberGenerator.Seeded(seed: seed)
    var loaded = 0, ran = 0
    for _ in 0 ..< iterations {
      let seed = seeds[Int(random.next() % UInt64(seeds.count))]
      var bytes = [UInt8](seed.model)
      for _ in 0 ... (random.next() % 4) {
        let position = Int(random.next() % UInt64(bytes.count))
        switch random.next() % 4 {
        case 0: bytes[position] ^= UInt8(truncatingIfNeeded: 1 << (random.next() % 8))
        case 1: bytes[position] = UInt8(truncatingIfNeeded: random.next())
        case 2:
          bytes.removeSubrange(
            position ..< min(bytes.count, position + Int(random.next() % 16) + 1)
          )
        default:
          bytes.insert(
            contentsOf: (0 ..< Int(random.next() % 8 + 1)).map { _ in
              UInt8(truncatingIfNeeded: random.next())
            },
            at: position
          )
        }
        if bytes.isEmpty { bytes = [0] }
      }
      guard let model = try? ONNXModel(data: Data(bytes), limits: limits) else { continue }
      loaded += 1
      if (try? model.run(seed.inputs)) != nil { ran += 1 }
    }
    print(
      "ONNX mutation fuzz (seed \(seed)): \(iterations) inputs, \(loaded) loaded, \(ran) ran, no crash"
    )
    #expect(loaded > 0)
  }
}

extension SystemRandomNumberGenerator {
  /// SplitMix64: a seeded generator, so a failing input can be found again.
  struct Seeded: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
      self.state &+= 0x9E37_79B9_7F4A_7C15
      var z = self.state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }
}
