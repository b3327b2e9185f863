import Foundation
import Testing
import VaneCore

@testable import VaneONNXRuntime

/// The LSTM operator with its default activations over one sequence against its definition
/// written out in double: hidden sizes that take the block-interleaved one-sequence path
/// (multiples of 16) and one that does not, every direction, with and without biases, initial
/// states and a sequence length shorter than X.
@Suite("LSTM, one sequence")
struct LSTMTests {
  struct Case: Sendable, CustomStringConvertible {
    var hidden: Int
    var direction: String
    var bias: Bool
    var states: Bool
    var length: Int
    var description: String {
      "hidden \(hidden) \(direction)\(bias ? " bias" : "")\(states ? " states" : "") length \(length)"
    }
  }

  static let steps = 7, input = 5

  @Test(
    "Y, Y_h and Y_c equal the definition",
    arguments: [
      Case(hidden: 16, direction: "forward", bias: true, states: false, length: 7),
      Case(hidden: 32, direction: "forward", bias: false, states: true, length: 7),
      Case(hidden: 64, direction: "reverse", bias: true, states: true, length: 5),
      Case(hidden: 48, direction: "bidirectional", bias: true, states: true, length: 6),
      Case(hidden: 16, direction: "bidirectional", bias: false, states: false, length: 0),
      Case(hidden: 24, direction: "forward", bias: true, states: true, length: 7),
    ]
  )
  func definition(_ c: Case) throws {
    let (T, I, H) = (Self.steps, Self.input, c.hidden)
    let D = c.direction == "bidirectional" ? 2 : 1
    var random = SeededRandom(seed: UInt64(H * 31 + D * 7 + c.length))
    func values(_ count: Int, _ range: ClosedRange<Double>) -> [Float] {
      (0 ..< count).map { _ in Float(Double.random(in: range, using: &random)) }
    }
    let x = values(T * I, -1 ... 1)
    let w = values(D * 4 * H * I, -0.5 ... 0.5), r = values(D * 4 * H * H, -0.3 ... 0.3)
    let b = c.bias ? values(D * 8 * H, -0.5 ... 0.5) : nil
    let h0 = c.states ? values(D * H, -1 ... 1) : nil
    let c0 = c.states ? values(D * H, -1 ... 1) : nil

    let tensor = ONNXHostileInputTests.initializer
    var initializers = [tensor("w", [D, 4 * H, I], w), tensor("r", [D, 4 * H, H], r)]
    if let b { initializers.append(tensor("b", [D, 8 * H], b)) }
    initializers.append(
      .with {
        $0.name = "lengths"
        $0.dims = [1]
        $0.dataType = 6
        $0.int32Data = [Int32(c.length)]
      }
    )
    if let h0, let c0 {
      initializers += [tensor("h0", [D, 1, H], h0), tensor("c0", [D, 1, H], c0)]
    }
    var node = ONNXHostileInputTests.node(
      "LSTM",
      [
        "x", "w", "r", b == nil ? "" : "b", "lengths", h0 == nil ? "" : "h0",
        c0 == nil ? "" : "c0",
      ],
      ["y", "yh", "yc"]
    )
    node.attribute = [
      .with {
        $0.name = "hidden_size"
        $0.type = .int
        $0.i = Int64(H)
      },
      .with {
        $0.name = "direction"
        $0.type = .string
        $0.s = Data(c.direction.utf8)
      },
    ]
    var proto = try Onnx_ModelProto(
      serializedBytes: ONNXHostileInputTests.model(
        [node],
        outputs: ["y", "yh", "yc"],
        shape: [Int64(T), 1, Int64(I)]
      )
    )
    proto.graph.initializer = initializers
    let model = try ONNXModel(data: try proto.serializedData())
    let outputs = try model.run(["x": ONNXTensor(shape: [T, 1, I], floats: x)])
    let y = try #require(outputs["y"]?.doubleValues)
    let yh = try #require(outputs["yh"]?.doubleValues)
    let yc = try #require(outputs["yc"]?.doubleValues)
    #expect(outputs["y"]?.shape == [T, D, 1, H])

    // The definition, in double. Gate order in W, R, B: input, output, forget, cell.
    func sigmoid(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
    var expectedY = [Double](repeating: 0, count: T * D * H)
    var expectedH = [Double](repeating: 0, count: D * H), expectedC = expectedH
    for d in 0 ..< D {
      var h = (0 ..< H).map { Double(h0?[d * H + $0] ?? 0) }
      var cell = (0 ..< H).map { Double(c0?[d * H + $0] ?? 0) }
      let backward = c.direction == "reverse" || d == 1
      for step in 0 ..< c.length {
        let t = backward ? c.length - 1 - step : step
        func gate(_ g: Int, _ j: Int) -> Double {
          let row = d * 4 * H + g * H + j
          var sum = 0.0
          for k in 0 ..< I { sum += Double(x[t * I + k]) * Double(w[row * I + k]) }
          for k in 0 ..< H { sum += h[k] * Double(r[row * H + k]) }
          if let b {
            sum += Double(b[d * 8 * H + g * H + j]) + Double(b[d * 8 * H + 4 * H + g * H + j])
          }
          return sum
        }
        var next = h
        for j in 0 ..< H {
          let i = sigmoid(gate(0, j)), o = sigmoid(gate(1, j)), f = sigmoid(gate(2, j))
          cell[j] = f * cell[j] + i * Foundation.tanh(gate(3, j))
          next[j] = o * Foundation.tanh(cell[j])
          expectedY[(t * D + d) * H + j] = next[j]
        }
        h = next
      }
      for j in 0 ..< H {
        expectedH[d * H + j] = h[j]
        expectedC[d * H + j] = cell[j]
      }
    }
    func worst(_ a: [Double], _ b: [Double]) -> Double {
      zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
    #expect(worst(y, expectedY) < 2e-5, "Y")
    #expect(worst(yh, expectedH) < 2e-5, "Y_h")
    #expect(worst(yc, expectedC) < 2e-5, "Y_c")
  }

  @Test(
    "One sequence alone equals the same sequence in a batch of two (the batch path)",
    arguments: [false, true]
  )
  func singleEqualsBatch(ragged: Bool) throws {
    let (T, I, H) = (Self.steps, Self.input, 32)
    var random = SeededRandom(seed: 5)
    func values(_ count: Int) -> [Float] {
      (0 ..< count).map { _ in Float(Double.random(in: -0.5 ... 0.5, using: &random)) }
    }
    let w = values(4 * H * I), r = values(4 * H * H), b = values(8 * H)
    let x = values(T * I)
    func run(batch: Int) throws -> [Double] {
      // Ragged: the second slot stops three steps early (sequence_lens), so the steps cannot
      // add H·Rᵀ into X·Wᵀ's rows in place and take the separate product.
      let lengths = ragged && batch > 1 ? ["lengths"] : []
      var node = ONNXHostileInputTests.node("LSTM", ["x", "w", "r", "b"] + lengths, ["y"])
      node.attribute = [
        .with {
          $0.name = "hidden_size"
          $0.type = .int
          $0.i = Int64(H)
        }
      ]
      var proto = try Onnx_ModelProto(
        serializedBytes: ONNXHostileInputTests.model(
          [node],
          shape: [Int64(T), Int64(batch), Int64(I)]
        )
      )
      proto.graph.initializer = [
        ONNXHostileInputTests.initializer("w", [1, 4 * H, I], w),
        ONNXHostileInputTests.initializer("r", [1, 4 * H, H], r),
        ONNXHostileInputTests.initializer("b", [1, 8 * H], b),
      ]
      if !lengths.isEmpty {
        proto.graph.initializer.append(
          .with {
            $0.name = "lengths"
            $0.dims = [Int64(batch)]
            $0.dataType = 6
            $0.int32Data = [Int32(T), Int32(T - 3)]
          }
        )
      }
      let model = try ONNXModel(data: try proto.serializedData())
      // X [T, batch, I]: the same sequence in every slot.
      let batched = (0 ..< T).flatMap { t in
        (0 ..< batch).flatMap { _ in x[(t * I) ..< ((t + 1) * I)] }
      }
      let y = try #require(
        try model.run(["x": ONNXTensor(shape: [T, batch, I], floats: batched)])["y"]?.doubleValues
      )
      // Y [T, 1, batch, H]: the first slot's rows.
      return (0 ..< T).flatMap { t in y[(t * batch * H) ..< (t * batch * H + H)] }
    }
    let single = try run(batch: 1), batch = try run(batch: 2)
    #expect(zip(single, batch).allSatisfy { abs($0 - $1) <= 1e-6 })
  }
}
