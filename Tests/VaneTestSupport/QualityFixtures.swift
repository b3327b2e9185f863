public import VaneQuality
internal import Foundation
internal import VaneMath

/// Seeded predictions and input summaries for the gatekeeper's tests (library and store).
public enum QualityFixtures {
  /// n binary samples: outcomes drawn from σ(z), the model's logit `logit(z, u)`.
  public static func model(
    _ n: Int,
    seed: UInt64,
    logit: (Double, Double) -> Double = { z, _ in z }
  ) throws -> Predictions {
    var rng = SplitMix64(seed: seed)
    var logits: [Double] = [], labels: [Int] = []
    for _ in 0 ..< n {
      let z = Double.random(in: -2 ... 2, using: &rng)
      labels.append(Double.random(in: 0 ..< 1, using: &rng) < Logistic.sigmoid(z) ? 1 : 0)
      logits.append(logit(z, Double.random(in: 0 ..< 1, using: &rng)))
    }
    return try Predictions(binary: logits.map(Logistic.sigmoid), labels: labels, logits: logits)
  }

  /// Three columns of 5,000 normal draws with `mean` and `std`.
  public static func scaledInputs(mean: Double = 0, std: Double = 1) -> InputSummary {
    var rng = SplitMix64(seed: 77)
    var values: [Double] = []
    for _ in 0 ..< 5000 {
      for _ in 0 ..< 3 {
        // Box–Muller: standard normal draws.
        let u = Double.random(in: Double.ulpOfOne ..< 1, using: &rng),
          v = Double.random(in: 0 ..< 1, using: &rng)
        values.append(mean + std * (-2 * log(u)).squareRoot() * cos(2 * .pi * v))
      }
    }
    return InputSummary(columns: ["a", "b", "c"], values: values)
  }
}
