import Foundation
import Testing
import VaneCore

@testable import VaneONNXRuntime

/// Load-time fusion: a Gemm with the BatchNormalization and the activation after it runs as one
/// step and still equals the definition, and nothing is fused that a caller could see or
/// change.
@Suite("ONNX fusion")
struct FusionTests {
  struct Case: Sendable, CustomStringConvertible {
    var rows: Int
    var transB: Bool
    /// C: none, a bias row, or a scalar.
    var bias: Bias
    var beta: Float = 1
    var activation: String = "Relu"
    enum Bias: String, Sendable { case none, row, scalar }
    var description: String {
      "\(rows) rows\(transB ? ", transB" : ""), C \(bias.rawValue), beta \(beta), \(activation)"
    }
  }

  static let k = 13, n = 11

  /// x → Gemm → BatchNormalization → activation → y, every weight an initializer.
  static func model(
    _ c: Case,
    exposing middle: Bool = false,
    overridableMean: Bool = false
  )
    throws -> (ONNXModel, reference: ([Float], [Float]) -> [Double], mean: [Float])
  {
    var random = SeededRandom(seed: UInt64(c.rows * 7 + (c.transB ? 1 : 0)))
    func values(_ count: Int, _ range: ClosedRange<Double> = -1 ... 1) -> [Float] {
      (0 ..< count).map { _ in Float(Double.random(in: range, using: &random)) }
    }
    let b = values(k * n), cValues = values(c.bias == .scalar ? 1 : n)
    let scale = values(n), shift = values(n), mean = values(n), variance = values(n, 0.1 ... 2)
    let epsilon: Float = 1e-3
    let tensor = ONNXHostileInputTests.initializer
    var gemm = ONNXHostileInputTests.node(
      "Gemm",
      c.bias == .none ? ["x", "b"] : ["x", "b", "c"],
      ["g"],
      name: "gemm"
    )
    gemm.attribute = [
      .with {
        $0.name = "transB"
        $0.type = .int
        $0.i = c.transB ? 1 : 0
      },
      .with {
        $0.name = "beta"
        $0.type = .float
        $0.f = c.beta
      },
    ]
    var norm = ONNXHostileInputTests.node(
      "BatchNormalization",
      ["g", "scale", "shift", "mean", "var"],
      ["n"],
      name: "norm"
    )
    norm.attribute = [
      .with {
        $0.name = "epsilon"
        $0.type = .float
        $0.f = epsilon
      }
    ]
    var activation = ONNXHostileInputTests.node(c.activation, ["n"], ["y"], name: "act")
    if c.activation == "LeakyRelu" {
      activation.attribute = [
        .with {
          $0.name = "alpha"
          $0.type = .float
          $0.f = 0.2
        }
      ]
    }
    var proto = try Onnx_ModelProto(
      serializedBytes: ONNXHostileInputTests.model(
        [gemm, norm, activation],
        outputs: middle ? ["y", "g"] : ["y"],
        shape: [Int64(c.rows), Int64(k)]
      )
    )
    // Symbolic dims, so that a wrong width reaches the step (the declared shape is checked first).
    proto.graph.input[0].type.tensorType.shape.dim = [
      .with { $0.dimParam = "rows" }, .with { $0.dimParam = "k" },
    ]
    let stored = c.transB ? (0 ..< n * k).map { b[($0 % k) * n + $0 / k] } : b
    proto.graph.initializer = [
      tensor("b", c.transB ? [n, k] : [k, n], stored), tensor("scale", [n], scale),
      tensor("shift", [n], shift), tensor("mean", [n], mean), tensor("var", [n], variance),
    ]
    if c.bias != .none {
      proto.graph.initializer.append(tensor("c", c.bias == .scalar ? [] : [n], cValues))
    }
    if overridableMean {
      // An initializer that is also a graph input: a caller may replace it.
      proto.graph.input.append(
        .with {
          $0.name = "mean"
          $0.type = .with {
            $0.tensorType = .with {
              $0.elemType = 1
              $0.shape = .with { $0.dim = [.with { $0.dimValue = Int64(n) }] }
            }
          }
        }
      )
    }
    let model = try ONNXModel(data: try proto.serializedData())
    let reference = { (x: [Float], mean: [Float]) -> [Double] in
      var out: [Double] = []
      for r in 0 ..< c.rows {
        for j in 0 ..< n {
          var sum =
            c.bias == .none ? 0 : Double(c.beta) * Double(cValues[c.bias == .scalar ? 0 : j])
          for i in 0 ..< k { sum += Double(x[r * k + i]) * Double(b[i * n + j]) }
          let normed =
            (sum - Double(mean[j])) / (Double(variance[j]) + Double(epsilon)).squareRoot()
            * Double(scale[j]) + Double(shift[j])
          switch c.activation {
          case "Relu": out.append(max(normed, 0))
          case "LeakyRelu": out.append(normed >= 0 ? normed : 0.2 * normed)
          case "Sigmoid": out.append(1 / (1 + Foundation.exp(-normed)))
          default: out.append(Foundation.tanh(normed))
          }
        }
      }
      return out
    }
    return (model, reference, mean)
  }

  static func input(_ c: Case) -> [Float] {
    var random = SeededRandom(seed: 99)
    return (0 ..< c.rows * k).map { _ in Float(Double.random(in: -2 ... 2, using: &random)) }
  }

  static func worst(_ y: [Double], _ reference: [Double]) -> Double {
    zip(y, reference).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
  }

  @Test(
    "Gemm, batch norm and activation run as one step equal to the definition",
    arguments: [
      Case(rows: 1, transB: true, bias: .row),
      Case(rows: 5, transB: true, bias: .row),
      Case(rows: 1, transB: false, bias: .none),
      Case(rows: 4, transB: false, bias: .scalar, beta: 0.5, activation: "Sigmoid"),
      Case(rows: 3, transB: true, bias: .row, beta: 0, activation: "Tanh"),
      Case(rows: 2, transB: false, bias: .row, beta: 2, activation: "LeakyRelu"),
    ]
  )
  func fused(_ c: Case) throws {
    let (model, reference, mean) = try Self.model(c)
    #expect(model.plannedSteps == ["gemm+norm+act"])
    let x = Self.input(c)
    let y = try #require(
      try model.run(["x": ONNXTensor(shape: [c.rows, Self.k], floats: x)])["y"]?.doubleValues
    )
    #expect(y.count == c.rows * Self.n)
    let worst = Self.worst(y, reference(x, mean))
    #expect(worst < 1e-5, "worst relative |Δ| \(worst)")
  }

  @Test("A Gemm result that is also a graph output is not fused away")
  func exposedIntermediate() throws {
    let c = Case(rows: 3, transB: true, bias: .row)
    let (model, reference, mean) = try Self.model(c, exposing: true)
    #expect(model.plannedSteps == ["gemm", "norm", "act"])
    let x = Self.input(c)
    let outputs = try model.run(["x": ONNXTensor(shape: [c.rows, Self.k], floats: x)])
    let y = try #require(outputs["y"]?.doubleValues)
    #expect(Self.worst(y, reference(x, mean)) < 1e-5)
    #expect(outputs["g"]?.shape == [c.rows, Self.n])
  }

  @Test("Batch-norm terms a caller may override are not folded; the activation still fuses")
  func overridableTerms() throws {
    let c = Case(rows: 2, transB: false, bias: .row)
    let (model, reference, _) = try Self.model(c, overridableMean: true)
    #expect(model.plannedSteps == ["gemm", "norm", "act"])
    let x = Self.input(c)
    let mean = (0 ..< Self.n).map { Float($0) * 0.25 - 1 }
    let y = try #require(
      try model.run([
        "x": ONNXTensor(shape: [c.rows, Self.k], floats: x),
        "mean": ONNXTensor(shape: [Self.n], floats: mean),
      ])["y"]?.doubleValues
    )
    #expect(Self.worst(y, reference(x, mean)) < 1e-5)
  }

  @Test("Identity steps are dropped: their readers and outputs read what they copied")
  func identities() throws {
    let nodes = [
      ONNXHostileInputTests.node("Identity", ["x"], ["a"], name: "first"),
      ONNXHostileInputTests.node("Relu", ["a"], ["b"], name: "relu"),
      ONNXHostileInputTests.node("Identity", ["b"], ["y"], name: "last"),
      ONNXHostileInputTests.node("Identity", ["a"], ["z"], name: "copy"),
    ]
    let model = try ONNXModel(
      data: ONNXHostileInputTests.model(nodes, outputs: ["y", "z"], shape: [4])
    )
    #expect(model.plannedSteps == ["relu"])
    let x: [Float] = [-1.5, 0, 2, -0.0]
    let outputs = try model.run(["x": ONNXTensor(shape: [4], floats: x)])
    #expect(outputs["y"]?.doubleValues == [0, 0, 2, 0])
    #expect(outputs["z"]?.doubleValues == x.map(Double.init))
    #expect(outputs.keys.sorted() == ["y", "z"])
  }

  @Test("A run-time error in a fused step names the nodes it merged")
  func errorNamesMergedNodes() throws {
    let c = Case(rows: 2, transB: true, bias: .row)
    let (model, _, _) = try Self.model(c)
    let wide = ONNXTensor(
      shape: [2, Self.k + 1],
      floats: .init(repeating: 0, count: 2 * Self.k + 2)
    )
    #expect {
      _ = try model.run(["x": wide])
    } throws: { error in
      "\(error)".contains("gemm+norm+act")
    }
  }
}
