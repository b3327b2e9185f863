import ArgumentParser
import VaneCore
import VaneQuality
internal import Foundation

/// `vane bench quality`: the gatekeeper library's hot paths beside scikit-learn.
struct QualityBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "quality",
    abstract:
      "Gatekeeper benchmark: AUC and ECE on 1M predictions, calibration fits on 25k, vs scikit-learn.",
    discussion: """
      The same arrays go to scripts/bench_quality.py (python3 with numpy, scipy and scikit-learn):
      roc_auc_score, a NumPy ECE with 15 equal-width bins, and on the first 25,000 samples
      LogisticRegression on the logit (Platt), IsotonicRegression, and the NLL-optimal temperature
      by scipy's bounded minimize_scalar. Target: at least 5× faster than scikit-learn for each.
      """
  )

  @Option(help: "Predictions for AUC and ECE.")
  var samples = 1_000_000

  @Option(help: "Predictions the calibrators are fitted on.")
  var fitSamples = 25_000

  @Option(name: .customLong("sklearn-script"), help: "The scikit-learn timing script.")
  var script = "scripts/bench_quality.py"

  @Option(help: "Best of this many runs.")
  var runs = 3

  func best(_ body: () throws -> Void) rethrows -> Double {
    var best = Double.infinity
    for _ in 0 ..< max(self.runs, 1) {
      let start = ContinuousClock.now
      try body()
      let elapsed = ContinuousClock.now - start
      best = min(
        best,
        Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
      )
    }
    return best
  }

  func run() throws {
    // Scores from a noisy logistic model with realistic ties (6 decimals).
    var state: UInt64 = 42
    func uniform() -> Double {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Double(state >> 11) / Double(1 << 53)
    }
    var scores = [Double](), labels = [UInt8]()
    scores.reserveCapacity(self.samples)
    for _ in 0 ..< self.samples {
      let z = (uniform() - 0.5) * 6
      labels.append(uniform() < 1 / (1 + exp(-z)) ? 1 : 0)
      scores.append(((1 / (1 + exp(-(1.8 * z + 0.2 * (uniform() - 0.5))))) * 1e6).rounded() / 1e6)
    }
    let positive = labels.map { $0 == 1 }
    let auc = self.best { _ = Metrics.rocAUC(scores: scores, positive: positive) }
    let labelInts = labels.map(Int.init)
    let ece = self.best {
      _ = Metrics.calibrationUniform(positiveProbability: scores, labels: labelInts)
    }
    let m = min(self.fitSamples, self.samples)
    let fit = try Predictions(binary: Array(scores[0 ..< m]), labels: labels[0 ..< m].map(Int.init))
    var calibrations: [(String, Double)] = []
    for (name, method) in [
      ("platt_25k", CalibrationMethod.platt), ("isotonic_25k", .isotonic),
      ("temperature_25k", .temperature),
    ] {
      calibrations.append((name, try self.best { _ = try Calibrator.fit(method, fit) }))
    }
    let ours: [(String, Double)] = [("auc", auc), ("ece", ece)] + calibrations
    let theirs = try? self.sklearn(scores: scores, labels: labels)
    print(
      "vane bench quality: \(self.samples) predictions (AUC, ECE), \(m) for calibration fits; best of \(self.runs); scikit-learn \(theirs?.sklearn_version ?? "not available (python3 with scikit-learn needed)")"
    )
    print("   task               vane ms   scikit-learn ms   speed-up")
    var short: [String] = []
    for (name, seconds) in ours {
      if let reference = theirs?.seconds[name] {
        let ratio = reference / seconds
        if ratio < 5 { short.append(name) }
        print(
          "   " + name.padding(toLength: 16, withPad: " ", startingAt: 0)
            + String(format: "%10.2f %17.2f %9.1f×", seconds * 1e3, reference * 1e3, ratio)
        )
      } else {
        print(
          "   " + name.padding(toLength: 16, withPad: " ", startingAt: 0)
            + String(format: "%10.2f", seconds * 1e3)
        )
      }
    }
    if theirs != nil {
      print(
        "   at least 5× faster than scikit-learn for each: \(short.isEmpty ? "met" : "NOT met (\(short.joined(separator: ", ")))")"
      )
    }
  }

  struct Figures: Decodable {
    var sklearn_version: String
    var seconds: [String: Double]
  }

  func sklearn(scores: [Double], labels: [UInt8]) throws -> Figures {
    try ReferenceScript.run(
      self.script,
      files: [("scores.f64", scores.withUnsafeBytes { Data($0) }), ("labels.u8", Data(labels))],
      arguments: ["\(scores.count)"],
      as: Figures.self
    )
  }
}
