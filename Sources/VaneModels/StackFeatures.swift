internal import Foundation

/// What a stacking meta-learner reads from its base models: one home for the trainer's
/// out-of-fold stack and the predictor's, so both compute the same numbers.
public enum StackFeatures {
  /// Meta features of one row from each base model's probabilities `p` (binary: the log-odds of
  /// class 1; otherwise centred log-probabilities), clipped to ±15, then the volatility value;
  /// nil when any is not finite.
  public static func row(_ probabilities: [[Double]], volatility: Double?) -> [Double]? {
    var out: [Double] = []
    for raw in probabilities {
      let k = raw.count
      let p = raw.map { min(max($0, 1e-12), 1 - 1e-12) }
      guard p.allSatisfy({ $0.isFinite }) else { return nil }
      if k == 2 {
        out.append(min(max(log(p[1] / p[0]), -15), 15))
      } else {
        let logs = p.map { log($0) }, mean = logs.reduce(0, +) / Double(k)
        out += logs.map { min(max($0 - mean, -15), 15) }
      }
    }
    if let volatility {
      guard volatility.isFinite else { return nil }
      out.append(volatility)
    }
    return out
  }

}
