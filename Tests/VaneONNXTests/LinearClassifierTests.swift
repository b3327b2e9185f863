import Foundation
import Testing
import VaneCore

@testable import VaneONNXRuntime

/// ai.onnx.ml LinearClassifier against its definition written out in double: scores X·Wᵀ + b,
/// labels the first largest score (a one-row binary model: score > 0), probabilities the
/// post-transform of the scores. Class counts on both sides of the per-class GEMV's limit (8).
@Suite("LinearClassifier")
struct LinearClassifierTests {
  @Test(
    "Labels and probabilities equal the definition",
    arguments: [
      (1, "LOGISTIC"), (1, "NONE"), (2, "LOGISTIC"), (3, "SOFTMAX"), (3, "NONE"), (8, "LOGISTIC"),
      (10, "LOGISTIC"), (10, "SOFTMAX"), (12, "SOFTMAX_ZERO"),
    ]
  )
  func definition(rowsOfCoefficients: Int, post: String) throws {
    let width = 13, count = 37
    let labels = rowsOfCoefficients == 1 ? 2 : rowsOfCoefficients
    var random = SeededRandom(seed: UInt64(rowsOfCoefficients * 100 + post.count))
    let coefficients = (0 ..< rowsOfCoefficients * width).map { _ in
      Float(Double.random(in: -1 ... 1, using: &random))
    }
    let intercepts = (0 ..< rowsOfCoefficients).map { _ in
      Float(Double.random(in: -0.5 ... 0.5, using: &random))
    }
    let x = (0 ..< count * width).map { _ in Float(Double.random(in: -2 ... 2, using: &random)) }

    var node = ONNXHostileInputTests.node("LinearClassifier", ["x"], ["label", "scores"])
    node.domain = "ai.onnx.ml"
    node.attribute = [
      .with {
        $0.name = "coefficients"
        $0.type = .floats
        $0.floats = coefficients
      },
      .with {
        $0.name = "intercepts"
        $0.type = .floats
        $0.floats = intercepts
      },
      .with {
        $0.name = "classlabels_ints"
        $0.type = .ints
        $0.ints = (0 ..< Int64(labels)).map { $0 * 10 }
      },
      .with {
        $0.name = "post_transform"
        $0.type = .string
        $0.s = Data(post.utf8)
      },
    ]
    var proto = try Onnx_ModelProto(
      serializedBytes: ONNXHostileInputTests.model(
        [node],
        outputs: ["label", "scores"],
        shape: [Int64(count), Int64(width)]
      )
    )
    proto.opsetImport.append(
      .with {
        $0.domain = "ai.onnx.ml"
        $0.version = 1
      }
    )
    let model = try ONNXModel(data: try proto.serializedData())
    let outputs = try model.run(["x": ONNXTensor(shape: [count, width], floats: x)])
    let got = try #require(outputs["scores"]?.doubleValues)
    let picked = try #require(try outputs["label"]?.integers("label"))
    #expect(got.count == count * labels)

    for r in 0 ..< count {
      let scores = (0 ..< rowsOfCoefficients).map { c in
        (0 ..< width).reduce(Double(intercepts[c])) {
          $0 + Double(x[r * width + $1]) * Double(coefficients[c * width + $1])
        }
      }
      var expected: [Double]
      var label: Int
      if rowsOfCoefficients == 1 {
        let p = post == "LOGISTIC" ? 1 / (1 + exp(-scores[0])) : scores[0]
        expected = [1 - p, p]
        label = scores[0] > 0 ? 1 : 0
      } else {
        label = scores.indices.max { scores[$0] < scores[$1] }!
        switch post {
        case "LOGISTIC": expected = scores.map { 1 / (1 + exp(-$0)) }
        case "SOFTMAX", "SOFTMAX_ZERO":
          let top = scores.max()!
          let e = scores.map { exp($0 - top) }
          expected = e.map { $0 / e.reduce(0, +) }
        default: expected = scores
        }
      }
      #expect(picked[r] == Int64(label * 10), "row \(r)")
      for c in 0 ..< labels {
        // The output is float32.
        let value = got[r * labels + c]
        #expect(
          abs(value - expected[c]) <= 1e-6 * max(1, abs(expected[c])),
          "row \(r) class \(c): \(value) vs \(expected[c])"
        )
      }
    }
  }
}
