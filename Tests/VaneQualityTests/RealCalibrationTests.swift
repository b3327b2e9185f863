import Foundation
import Testing

@testable import VaneQuality

/// Real out-of-sample predictions: a gradient-boosting direction model's P(UP) on BTCUSDT 1h
/// bars of 2023–2024 it never trained on, with scikit-learn's calibrated ECE on the later 40 %
/// (`Fixtures/real_btc_oos.json`, made by `scripts/real_calibration_fixture.py`).
@Suite("Calibration on real out-of-sample predictions, beside scikit-learn")
struct RealCalibrationTests {
  struct Fixture: Decodable {
    var calibration_rows: Int
    var oos_auc: Double
    var p_up: [Double]
    var labels: [Int]
    var ece_test_raw: Double
    var ece_test_isotonic_sklearn: Double
    var ece_test_platt_sklearn: Double
    var log_loss_test_platt_sklearn: Double
  }

  static let fixture: Fixture = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "Fixtures/real_btc_oos.json"
    )
    return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
  }()

  static func ece(_ predictions: Predictions) -> Double {
    Metrics.calibrationUniform(
      positiveProbability: (0 ..< predictions.count).map { predictions.probability($0, 1) },
      labels: predictions.labels
    ).expected
  }

  @Test(
    "Fitted on the first 60 %, isotonic and Platt's test ECE are no worse than scikit-learn's same methods (temperature and auto reported)"
  )
  func noWorseThanSklearn() throws {
    let f = Self.fixture
    let all = try Predictions(binary: f.p_up, labels: f.labels)
    let fit = all.subset(Array(0 ..< f.calibration_rows)),
      test = all.subset(Array(f.calibration_rows ..< all.count))
    #expect(abs(Metrics.rocAUC(all) - f.oos_auc) < 1e-12)
    #expect(abs(Self.ece(test) - f.ece_test_raw) < 1e-12)
    var figures: [String] = []
    for (method, reference) in [
      (CalibrationMethod.isotonic, f.ece_test_isotonic_sklearn), (.platt, f.ece_test_platt_sklearn),
    ] {
      let ece = Self.ece(try Calibrator.fit(method, fit).apply(test))
      figures.append(
        "\(method.rawValue) \(String(format: "%.5f", ece)) vs sklearn \(String(format: "%.5f", reference))"
      )
      #expect(ece <= reference + 1e-6, "\(figures.last!)")
    }
    // scikit-learn has neither: reported, and each must at least not make the raw ECE worse.
    for method in [CalibrationMethod.temperature, .auto] {
      let calibration = try Calibrator.fit(method, fit)
      let ece = Self.ece(calibration.apply(test))
      figures.append(
        "\(method.rawValue) (\(calibration.method.rawValue)) \(String(format: "%.5f", ece))"
      )
      #expect(ece < f.ece_test_raw, "\(figures.last!)")
    }
    print(
      "real BTC 1h OOS calibration (test ECE): raw \(String(format: "%.5f", f.ece_test_raw)); "
        + figures.joined(separator: "; ")
    )
  }
}
