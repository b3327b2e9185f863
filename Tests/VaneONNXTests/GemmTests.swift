import Foundation
import Testing
import VaneCore

@testable import VaneONNXRuntime

/// Gemm against its definition written out in double: one row (the row-blocked weights
/// prepared at load) and several (GEMM), B transposed or not, with and without C, widths on both
/// sides of the row combination's 64- and 8-column steps.
@Suite("Gemm")
struct GemmTests {
  struct Case: Sendable, CustomStringConvertible {
    var rows: Int, k: Int, n: Int
    var transB: Bool
    var bias: Bool
    var beta: Float = 1
    var description: String {
      "\(rows)×\(k)·\(k)×\(n)\(transB ? " transB" : "")\(bias ? " C, beta \(beta)" : "")"
    }
  }

  @Test(
    "Y equals alpha·A·op(B) + beta·C",
    arguments: [
      Case(rows: 1, k: 78, n: 512, transB: true, bias: true),
      Case(rows: 1, k: 128, n: 3, transB: true, bias: true),
      Case(rows: 1, k: 17, n: 70, transB: false, bias: false),
      Case(rows: 1, k: 64, n: 130, transB: true, bias: true, beta: 0.5),
      Case(rows: 1, k: 5, n: 9, transB: false, bias: true, beta: 0),
      Case(rows: 3, k: 78, n: 512, transB: true, bias: true),
    ]
  )
  func definition(_ c: Case) throws {
    var random = SeededRandom(seed: UInt64(c.k * 1000 + c.n))
    func values(_ count: Int) -> [Float] {
      (0 ..< count).map { _ in Float(Double.random(in: -1 ... 1, using: &random)) }
    }
    let a = values(c.rows * c.k), b = values(c.k * c.n), bias = values(c.n)
    let tensor = ONNXHostileInputTests.initializer
    var node = ONNXHostileInputTests.node("Gemm", c.bias ? ["x", "b", "c"] : ["x", "b"], ["y"])
    node.attribute = [
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
    var proto = try Onnx_ModelProto(
      serializedBytes: ONNXHostileInputTests.model([node], shape: [Int64(c.rows), Int64(c.k)])
    )
    // B as given: [n, k] when transposed, [k, n] otherwise (b[i·n + j] is op(B)'s (i, j)).
    let stored =
      c.transB ? (0 ..< c.n * c.k).map { b[($0 % c.k) * c.n + $0 / c.k] } : b
    proto.graph.initializer = [tensor("b", c.transB ? [c.n, c.k] : [c.k, c.n], stored)]
    if c.bias { proto.graph.initializer.append(tensor("c", [c.n], bias)) }
    let model = try ONNXModel(data: try proto.serializedData())
    let y = try #require(
      try model.run(["x": ONNXTensor(shape: [c.rows, c.k], floats: a)])["y"]?.doubleValues
    )
    #expect(y.count == c.rows * c.n)
    var worst = 0.0
    for r in 0 ..< c.rows {
      for j in 0 ..< c.n {
        var sum = c.bias && c.beta != 0 ? Double(c.beta) * Double(bias[j]) : 0
        for i in 0 ..< c.k { sum += Double(a[r * c.k + i]) * Double(b[i * c.n + j]) }
        worst = max(worst, abs(y[r * c.n + j] - sum))
      }
    }
    #expect(worst < 1e-4, "worst |Δ| \(worst)")
  }
}
