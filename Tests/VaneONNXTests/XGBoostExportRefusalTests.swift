import Foundation
import Testing
import VaneCore
@testable import VaneModels

@testable import VaneONNX

@Suite("XGBoost export of a broken model")
struct XGBoostExportRefusalTests {
  @Test("The public exporter refuses a broken XGBoost model as the tree reader does")
  func exporterRefuses() throws {
    let model = XGBoostModel(
      json: Data("{\"learner\": {}}".utf8),
      classCount: 2,
      featureCount: 3,
      rounds: 1
    )
    let error = try #require(throws: VaneError.self) { try ONNXExport.xgboost(model) }
    #expect(error.code == .invalidArgument)
    #expect(
      error.message.contains("learner.learner_model_param is missing"),
      "message: \(error.message)"
    )
  }
}
