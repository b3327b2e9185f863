public import Foundation
internal import VaneCore

/// A fitted probability calibration: fitted on one set, applied anywhere, stored as JSON in
/// the model bundle. Logit-based methods read the model's logits (or the log-odds / log
/// probabilities recovered from its probabilities when it exposes none).
public enum Calibration: Sendable, Equatable, Codable {
  /// softmax(z / T) (binary: sigmoid(z / T)), T > 0.
  case temperature(Double)
  /// Binary: sigmoid(a · z + b) of the model's logit z (Platt scaling).
  case platt(a: Double, b: Double)
  /// Binary: a non-decreasing step function of P(class 1) from pool-adjacent-violators,
  /// linearly interpolated between its points and clipped outside them.
  case isotonic(x: [Double], y: [Double])
  /// Multi-class: softmax(w ⊙ z + b), one scale and one bias per class.
  case vector(w: [Double], b: [Double])

  /// The method's name as the API spells it.
  public var method: CalibrationMethod {
    switch self {
    case .temperature: .temperature
    case .platt: .platt
    case .isotonic: .isotonic
    case .vector: .vector
    }
  }

  /// Calibrated predictions (labels kept; logits are the calibrated logits where the method
  /// has them).
  public func apply(_ predictions: Predictions) -> Predictions {
    let n = predictions.count
    let k = predictions.classCount
    var probabilities = [Double](repeating: 0, count: n * k)
    switch self {
    case .temperature(let t):
      let z = CalibrationInputs.logits(predictions)
      if k == 2 {
        for i in 0..<n { Self.setBinary(&probabilities, i, Self.sigmoid(z[i] / t)) }
      } else {
        for i in 0..<n { Self.softmax(z, row: i, k: k, scale: { _ in 1 / t }, bias: { _ in 0 }, into: &probabilities) }
      }
    case .platt(let a, let b):
      let z = CalibrationInputs.logits(predictions)
      for i in 0..<n { Self.setBinary(&probabilities, i, Self.sigmoid(a * z[i] + b)) }
    case .isotonic(let x, let y):
      for i in 0..<n { Self.setBinary(&probabilities, i, Isotonic.interpolate(x: x, y: y, at: predictions.probability(i, 1))) }
    case .vector(let w, let b):
      let z = CalibrationInputs.logits(predictions)
      for i in 0..<n { Self.softmax(z, row: i, k: k, scale: { w[$0] }, bias: { b[$0] }, into: &probabilities) }
    }
    return try! Predictions(probabilities: probabilities, classCount: k, labels: predictions.labels)
  }

  static func setBinary(_ rows: inout [Double], _ i: Int, _ p: Double) {
    rows[2 * i] = 1 - p
    rows[2 * i + 1] = p
  }

  static func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
  }

  static func softmax(
    _ z: [Double], row i: Int, k: Int, scale: (Int) -> Double, bias: (Int) -> Double, into out: inout [Double]
  ) {
    var top = -Double.infinity
    for c in 0..<k { top = max(top, scale(c) * z[i * k + c] + bias(c)) }
    var total = 0.0
    for c in 0..<k {
      let e = Foundation.exp(scale(c) * z[i * k + c] + bias(c) - top)
      out[i * k + c] = e
      total += e
    }
    for c in 0..<k { out[i * k + c] /= total }
  }

  /// JSON for the bundle (sorted keys).
  public func json() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return try encoder.encode(self)
  }

  /// Reads ``json()``'s output, checking every parameter.
  /// - Throws: INVALID_ARGUMENT naming what is wrong.
  public static func decode(_ data: Data) throws -> Calibration {
    let calibration: Calibration
    do {
      calibration = try JSONDecoder().decode(Calibration.self, from: data)
    } catch {
      throw VaneError(.invalidArgument, "calibration: not a calibration JSON document", cause: error)
    }
    switch calibration {
    case .temperature(let t):
      guard t.isFinite, t > 0 else { throw VaneError.invalidArgument(field: "calibration.temperature", "must be positive and finite") }
    case .platt(let a, let b):
      guard a.isFinite, b.isFinite else { throw VaneError.invalidArgument(field: "calibration.platt", "a and b must be finite") }
    case .isotonic(let x, let y):
      guard !x.isEmpty, x.count == y.count, x.allSatisfy(\.isFinite), y.allSatisfy({ $0.isFinite && (0...1).contains($0) }),
            zip(x, x.dropFirst()).allSatisfy({ $0 <= $1 }), zip(y, y.dropFirst()).allSatisfy({ $0 <= $1 })
      else { throw VaneError.invalidArgument(field: "calibration.isotonic", "x and y must be equally long, finite and non-decreasing, y in [0, 1]") }
    case .vector(let w, let b):
      guard w.count >= 2, w.count == b.count, (w + b).allSatisfy(\.isFinite) else {
        throw VaneError.invalidArgument(field: "calibration.vector", "w and b need one finite value per class")
      }
    }
    return calibration
  }
}

/// Calibration methods, and `auto` (choose by cross-validated NLL).
public enum CalibrationMethod: String, Sendable, CaseIterable, Codable {
  case temperature, platt, isotonic, vector, auto
}

/// The model outputs calibrators fit on.
enum CalibrationInputs {
  /// Logits per sample: the model's own when given (one per sample for binary), else the
  /// log-odds of P(1) (binary) or log-probabilities (clipped at 1e-15).
  static func logits(_ predictions: Predictions) -> [Double] {
    let n = predictions.count, k = predictions.classCount
    if let logits = predictions.logits {
      if k == 2, logits.count == 2 * n { return (0..<n).map { logits[2 * $0 + 1] - logits[2 * $0] } }
      return logits
    }
    if k == 2 {
      return (0..<n).map { i in
        let p = min(max(predictions.probability(i, 1), 1e-15), 1 - 1e-15)
        return Foundation.log(p / (1 - p))
      }
    }
    return predictions.probabilities.map { Foundation.log(max($0, 1e-15)) }
  }
}
