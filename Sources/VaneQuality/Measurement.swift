internal import Foundation

/// A reliability diagram of one target: "top_label" (the predicted class's confidence against
/// being right) or a class name (P(class) against how often the class occurs).
public struct ReliabilityDiagram: Sendable, Equatable, Codable {
  /// Equal-width or equal-mass bins.
  public enum Binning: String, Sendable, Codable { case uniform, quantile }

  public var target: String
  public var binning: Binning
  public var bins: [ReliabilityBin]
  public var ece: Double
  public var mce: Double

  public init(target: String, binning: Binning, bins: [ReliabilityBin], ece: Double, mce: Double) {
    self.target = target
    self.binning = binning
    self.bins = bins
    self.ece = ece
    self.mce = mce
  }

  public init(target: String, binning: Binning, _ error: CalibrationError) {
    self.target = target
    self.binning = binning
    self.bins = error.bins
    self.ece = error.expected
    self.mce = error.maximum
  }
}

/// The metrics of one set of predictions under the API's names (see `gatekeeper.proto`), the
/// reliability diagrams, and, for summary metrics that point at one class, column or model,
/// which one (`details`, shown in gate reasons).
///
/// Names: `n`, `log_loss`, `log_loss_skill`, `brier`, `ece`, `mce`, `ece_equal_mass`,
/// `accuracy`, `balanced_accuracy`, `mcc`, `f1_macro`, `auc`, per class `base_rate/C`,
/// `pred_rate/C`, `bias/C`, `precision/C`, `recall/C`, `pred_share/C` (share of samples whose
/// predicted class is C), and for the gates `pred_share_min`, `pred_share_max`,
/// `mean_confidence`, `share_above_0_99`, `logit_min`, `logit_max`, `max_abs_logit`,
/// `nan_count`, `inf_count`, `non_finite`. A metric that is undefined (AUC with one class
/// present, logits not given) is absent, never NaN.
public struct Measurement: Sendable, Equatable, Codable {
  public var values: [String: Double]
  public var details: [String: String]
  /// "top_label" first, then one per class; uniform bins.
  public var reliability: [ReliabilityDiagram]

  /// Measures `predictions`, whose columns are `classes`.
  /// - Parameter bins: equal-width bins for ECE, MCE and the diagrams.
  public init(_ predictions: Predictions, classes: [String], bins: Int = 15) {
    precondition(classes.count == predictions.classCount && bins > 0)
    let report = MetricsReport(predictions, bins: bins)
    var values: [String: Double] = [:]
    var details: [String: String] = [:]
    values["n"] = Double(report.samples)
    values["nan_count"] = Double(report.nanCount)
    values["inf_count"] = Double(report.infiniteCount)
    values["non_finite"] = Double(report.nanCount + report.infiniteCount)
    if report.nanCount + report.infiniteCount > 0 {
      details["non_finite"] = "\(report.nanCount) NaN and \(report.infiniteCount) infinite"
    }
    if let low = report.logitMin, let high = report.logitMax, let top = report.maxAbsLogit {
      values["logit_min"] = low
      values["logit_max"] = high
      values["max_abs_logit"] = top
    }
    var reliability: [ReliabilityDiagram] = []
    let finite = predictions.finiteOnly
    if finite.count > 0 {
      let k = predictions.classCount
      let n = Double(finite.count)
      values["log_loss"] = report.logLoss
      values["brier"] = report.brier
      values["accuracy"] = report.accuracy
      values["ece"] = report.calibration.expected
      values["mce"] = report.calibration.maximum
      values["ece_equal_mass"] = report.calibrationEqualMass.expected
      values["mean_confidence"] = report.meanConfidence
      values["share_above_0_99"] = report.shareAbove99
      if report.rocAUC.isFinite { values["auc"] = report.rocAUC }
      var counts = [Int](repeating: 0, count: k)
      for label in finite.labels { counts[label] += 1 }
      let baseRates = counts.map { Double($0) / n }
      // Skill against always answering the base rates (the same ε clipping as log_loss).
      var baseLoss = 0.0
      for label in finite.labels {
        baseLoss -= Foundation.log(min(max(baseRates[label], .ulpOfOne), 1 - .ulpOfOne))
      }
      baseLoss /= n
      if baseLoss > 0 { values["log_loss_skill"] = 1 - report.logLoss / baseLoss }
      values["balanced_accuracy"] =
        zip(report.recall, counts).filter { $0.1 > 0 }.map(\.0).reduce(0, +)
        / Double(counts.filter { $0 > 0 }.count)
      values["mcc"] = Self.mcc(report.confusion)
      values["f1_macro"] =
        zip(report.precision, report.recall).map { p, r in p + r > 0 ? 2 * p * r / (p + r) : 0 }
        .reduce(0, +) / Double(k)
      reliability.append(
        ReliabilityDiagram(target: "top_label", binning: .uniform, report.calibration)
      )
      for (c, name) in classes.enumerated() {
        let p = (0 ..< finite.count).map { finite.probability($0, c) }
        let predicted = p.reduce(0, +) / n
        values["base_rate/\(name)"] = baseRates[c]
        values["pred_rate/\(name)"] = predicted
        values["bias/\(name)"] = predicted - baseRates[c]
        values["precision/\(name)"] = report.precision[c]
        values["recall/\(name)"] = report.recall[c]
        values["pred_share/\(name)"] = report.predictedClassShare[c]
        reliability.append(
          ReliabilityDiagram(
            target: name,
            binning: .uniform,
            Metrics.calibrationUniform(
              confidence: p,
              correct: finite.labels.map { $0 == c },
              bins: bins
            )
          )
        )
      }
      let shares = report.predictedClassShare
      let low = shares.indices.min { shares[$0] < shares[$1] }!,
        high = shares.indices.max { shares[$0] < shares[$1] }!
      values["pred_share_min"] = shares[low]
      values["pred_share_max"] = shares[high]
      details["pred_share_min"] = "class \(classes[low])"
      details["pred_share_max"] = "class \(classes[high])"
    }
    self.values = values
    self.details = details
    self.reliability = reliability
  }

  /// Matthews correlation coefficient of a K-class confusion matrix (Gorodkin's R_K, as
  /// scikit-learn); 0 when undefined.
  static func mcc(_ confusion: [[Int]]) -> Double {
    let k = confusion.count
    let s = Double(confusion.joined().reduce(0, +))
    let correct = Double((0 ..< k).reduce(0) { $0 + confusion[$1][$1] })
    let truth = (0 ..< k).map { Double(confusion[$0].reduce(0, +)) }
    let predicted = (0 ..< k).map { c in Double((0 ..< k).reduce(0) { $0 + confusion[$1][c] }) }
    let covariance = correct * s - zip(truth, predicted).reduce(0) { $0 + $1.0 * $1.1 }
    let a = s * s - predicted.reduce(0) { $0 + $1 * $1 },
      b = s * s - truth.reduce(0) { $0 + $1 * $1 }
    return a * b > 0 ? covariance / (a * b).squareRoot() : 0
  }
}
