import Foundation
import Testing
import VaneCore
import VaneONNXRuntime

/// Models Vane did not make — skl2onnx, onnxmltools (LightGBM) and PyTorch exports on real BTC
/// features — answer on the engine as they do on ONNX Runtime (scripts/onnx_foreign_fixtures.py
/// made them and recorded ONNX Runtime's outputs), and so do opset-5 TreeEnsemble graphs, which
/// no exporter writes yet (scripts/onnx_tree_ensemble_fixtures.py builds them: a LightGBM model
/// with categorical splits as BRANCH_MEMBER, and random trees using every mode and aggregation).
@Suite("ONNX engine: models from skl2onnx, onnxmltools and PyTorch against ONNX Runtime")
struct ONNXForeignModelTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/foreign")

  static let names = [
    "skl2onnx_logistic", "skl2onnx_scaler_logistic", "skl2onnx_mlp", "skl2onnx_forest",
    "skl2onnx_linear_regression",
    "onnxmltools_lightgbm_binary", "onnxmltools_lightgbm_3class", "pytorch_mlp_batchnorm",
    "pytorch_lstm", "pytorch_attention",
    "tree_ensemble_lightgbm_categorical", "tree_ensemble_modes",
  ]

  @Test(
    "Each model's outputs equal ONNX Runtime's: floats within 1e-5, labels exactly",
    arguments: names
  )
  func parity(name: String) throws {
    let model = try ONNXModel(contentsOf: Self.directory.appendingPathComponent("\(name).onnx"))
    let fixture =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: Self.directory.appendingPathComponent("\(name).json"))
      ) as! [String: Any]
    let inputs = try ONNXTensorJSON.decode(
      try JSONSerialization.data(withJSONObject: fixture["inputs"]!)
    )
    let expected = try ONNXTensorJSON.decode(
      try JSONSerialization.data(withJSONObject: fixture["outputs"]!)
    )
    let outputs = try model.run(inputs)
    for (output, want) in expected {
      let got = try #require(
        outputs[output],
        "\(name): no output \(output); has \(outputs.keys.sorted())"
      )
      #expect(
        got.shape == want.shape,
        "\(name) \(output): shape \(got.shape), ONNX Runtime \(want.shape)"
      )
      switch (got.values, want.values) {
      case (.float(let a), .float(let b)):
        let worst =
          zip(a, b).map { abs(Double($0) - Double($1)) / max(1, abs(Double($1))) }.max() ?? 0
        #expect(worst <= 1e-5, "\(name) \(output): max difference \(worst)")
      default:
        #expect(
          got.values == want.values,
          "\(name) \(output): \(got.elementType) values differ from ONNX Runtime's"
        )
      }
    }
  }

  @Test("A model's operator counts and declared inputs are read as stored")
  func inspect() throws {
    let model = try ONNXModel(
      contentsOf: Self.directory.appendingPathComponent("onnxmltools_lightgbm_binary.onnx")
    )
    #expect(
      model.inputs.map(\.name) == ["input"] && model.inputs[0].elementType == .float
        && model.inputs[0].shape == [nil, 13]
    )
    #expect(model.operatorCounts["TreeEnsembleClassifier"] == 1)
    #expect(model.opsets["ai.onnx.ml"] != nil)
  }
}
