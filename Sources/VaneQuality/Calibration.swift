public import Foundation
internal import VaneCore
internal import VaneMath

/// A fitted probability calibration: fitted on one set, applied anywhere, stored in the model
/// bundle. Logit-based methods read the model's logits (or the log-odds / log probabilities
/// recovered from its probabilities when it exposes none).
///
/// Its parameters serialise to the API's layout (`Calibration.parameters_json`):
/// `{}`, `{"temperature": T}`, `{"a": a, "b": b}`, `{"scale": [..], "bias": [..]}`,
/// `{"classes": [{"x": [..], "y": [..]}, ...]}`.
public enum Calibration: Sendable, Equatable {
  /// Identity: probabilities as the model emits them.
  case none
  /// softmax(z / T) (binary: sigmoid(z / T)), T > 0.
  case temperature(Double)
  /// Binary: sigmoid(a · z + b) of the model's logit z (Platt scaling).
  case platt(a: Double, b: Double)
  /// One non-decreasing piecewise-linear map per class from pool-adjacent-violators (clipped
  /// outside its points), applied to P(class) one-vs-rest and renormalised. For binary models
  /// class 0's map is the mirror of class 1's, so P(UP) goes through one map as in scikit-learn.
  case isotonic([IsotonicMap])
  /// Multi-class: softmax(scale ⊙ z + bias), one scale and one bias per class.
  case vector(scale: [Double], bias: [Double])

  /// A piecewise-linear map: x ascending, y non-decreasing.
  public struct IsotonicMap: Sendable, Equatable, Codable {
    public var x: [Double]
    public var y: [Double]

    public init(x: [Double], y: [Double]) {
      self.x = x
      self.y = y
    }

    /// The map of 1 − p when this is the map of p.
    var mirrored: IsotonicMap {
      IsotonicMap(x: self.x.reversed().map { 1 - $0 }, y: self.y.reversed().map { 1 - $0 })
    }
  }

  /// The method's name as the API spells it.
  public var method: CalibrationMethod {
    switch self {
    case .none: .none
    case .temperature: .temperature
    case .platt: .platt
    case .isotonic: .isotonic
    case .vector: .vector
    }
  }

  /// Calibrated predictions (labels kept; logits are the calibrated logits where the method
  /// has them).
  public func apply(_ predictions: Predictions) -> Predictions {
    if case .none = self { return predictions }
    let probabilities = self.calibrated(
      predictions.probabilities,
      classCount: predictions.classCount
    ) { predictions.logitsOrImplied(clip: Self.clip) }
    return try! Predictions(
      probabilities: probabilities,
      classCount: predictions.classCount,
      labels: predictions.labels
    )
  }

  /// Calibrated probability rows (`rows × classCount`, row-major) of unlabelled predictions, as
  /// ``apply(_:)`` computes them: the serving path (no labels, no `Predictions` built).
  /// - Throws: INVALID_ARGUMENT for a class count outside 2...1000 or values that are not whole
  ///   rows.
  public func apply(probabilities: [Double], classCount: Int) throws -> [Double] {
    guard classCount >= 2, classCount <= 1000 else {
      throw VaneError.invalidArgument(
        field: "class_count",
        "must be between 2 and 1000 (got \(classCount))"
      )
    }
    guard probabilities.count % classCount == 0 else {
      throw VaneError.invalidArgument(
        field: "probabilities",
        "\(probabilities.count) values are not whole rows of \(classCount) classes"
      )
    }
    if case .none = self { return probabilities }
    // The serving path's usual case, a binary model's rows: each row's logit is taken and mapped
    // in one pass, with no array of logits on the way (the same values, bit for bit).
    if classCount == 2 {
      switch self {
      case .temperature(let t): return Self.binary(probabilities) { Logistic.sigmoid($0 / t) }
      case .platt(let a, let b): return Self.binary(probabilities) { Logistic.sigmoid(a * $0 + b) }
      case .none, .isotonic, .vector: break
      }
    }
    return self.calibrated(probabilities, classCount: classCount) {
      Predictions.impliedLogits(probabilities, classCount: classCount, clip: Self.clip)
    }
  }

  /// The calibrated rows of `probabilities` (`rows × k`); `logits` gives the model's logits
  /// (one a row for binary, `k` otherwise), read only by the methods that work on logits.
  private func calibrated(
    _ rows: [Double],
    classCount k: Int,
    logits: () -> [Double]
  ) -> [Double] {
    let n = rows.count / k
    var probabilities = [Double](repeating: 0, count: n * k)
    switch self {
    case .none:
      return rows
    case .temperature(let t):
      let z = logits()
      if k == 2 {
        for i in 0 ..< n { Self.setBinary(&probabilities, i, Logistic.sigmoid(z[i] / t)) }
      } else {
        probabilities = Logistic.softmax(z.map { $0 / t }, columns: k)
      }
    case .platt(let a, let b):
      let z = logits()
      for i in 0 ..< n { Self.setBinary(&probabilities, i, Logistic.sigmoid(a * z[i] + b)) }
    case .isotonic(let maps):
      if k == 2 {
        let map = maps[1]
        for i in 0 ..< n {
          Self.setBinary(
            &probabilities,
            i,
            Isotonic.interpolate(x: map.x, y: map.y, at: rows[i * 2 + 1])
          )
        }
      } else {
        for i in 0 ..< n {
          var total = 0.0
          for c in 0 ..< k {
            let p = Isotonic.interpolate(x: maps[c].x, y: maps[c].y, at: rows[i * k + c])
            probabilities[i * k + c] = p
            total += p
          }
          // Every map at 0 for this row: no class is favoured.
          for c in 0 ..< k {
            probabilities[i * k + c] = total > 0 ? probabilities[i * k + c] / total : 1 / Double(k)
          }
        }
      }
    case .vector(let w, let b):
      let z = logits()
      probabilities = Logistic.softmax(z.indices.map { w[$0 % k] * z[$0] + b[$0 % k] }, columns: k)
    }
    return probabilities
  }

  /// Probabilities are clipped to [1e-15, 1 − 1e-15] before their logits are taken, so that a
  /// calibrator always sees finite inputs.
  static let clip = 1e-15

  /// Binary rows `[1 − p, p]` mapped through their clipped implied logits.
  private static func binary(_ rows: [Double], _ map: (Double) -> Double) -> [Double] {
    [Double](unsafeUninitializedCapacity: rows.count) { out, initialized in
      for i in 0 ..< rows.count / 2 {
        let p = map(Predictions.impliedLogit(rows[2 * i + 1], low: Self.clip, high: 1 - Self.clip))
        out[2 * i] = 1 - p
        out[2 * i + 1] = p
      }
      initialized = rows.count
    }
  }

  static func setBinary(_ rows: inout [Double], _ i: Int, _ p: Double) {
    rows[2 * i] = 1 - p
    rows[2 * i + 1] = p
  }

  /// The parameters as the API's JSON object (sorted keys).
  public func parametersJSON() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data: Data
    switch self {
    case .none: data = Data("{}".utf8)
    case .temperature(let t): data = try! encoder.encode(["temperature": t])
    case .platt(let a, let b): data = try! encoder.encode(["a": a, "b": b])
    case .isotonic(let maps): data = try! encoder.encode(["classes": maps])
    case .vector(let scale, let bias): data = try! encoder.encode(["scale": scale, "bias": bias])
    }
    return String(decoding: data, as: UTF8.self)
  }

  /// Reads a method and its parameters in the API's layout, checking every parameter.
  /// - Parameter classCount: the classes the map must apply to (nil: whatever the parameters
  ///   say).
  /// - Throws: INVALID_ARGUMENT naming the parameter and what is wrong.
  public init(method: CalibrationMethod, parametersJSON text: String, classCount: Int?) throws {
    func object<T: Decodable>(_ type: T.Type) throws -> T {
      do {
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
      } catch {
        throw VaneError(
          .invalidArgument,
          "calibration.parameters_json: not the \(method.rawValue) layout",
          cause: error
        )
      }
    }
    struct Temperature: Decodable { var temperature: Double }
    struct Platt: Decodable {
      var a: Double
      var b: Double
    }
    struct Vector: Decodable {
      var scale: [Double]
      var bias: [Double]
    }
    struct Isotonic: Decodable { var classes: [IsotonicMap] }
    switch method {
    case .auto:
      throw VaneError.invalidArgument(
        field: "calibration.method",
        "a fitted calibration is never AUTO"
      )
    case .none:
      self = .none
    case .temperature:
      let t = try object(Temperature.self).temperature
      guard t.isFinite, t > 0 else {
        throw VaneError.invalidArgument(
          field: "calibration.temperature",
          "must be positive and finite (got \(t))"
        )
      }
      self = .temperature(t)
    case .platt:
      let p = try object(Platt.self)
      guard classCount ?? 2 == 2 else {
        throw VaneError.invalidArgument(
          field: "calibration.method",
          "Platt scaling is for binary models (\(classCount ?? 0) classes)"
        )
      }
      guard p.a.isFinite, p.b.isFinite else {
        throw VaneError.invalidArgument(field: "calibration.platt", "a and b must be finite")
      }
      self = .platt(a: p.a, b: p.b)
    case .vector:
      let v = try object(Vector.self)
      let k = classCount ?? v.scale.count
      guard k >= 2, v.scale.count == k, v.bias.count == k, (v.scale + v.bias).allSatisfy(\.isFinite)
      else {
        throw VaneError.invalidArgument(
          field: "calibration.vector",
          "scale and bias need one finite value per class (\(k))"
        )
      }
      self = .vector(scale: v.scale, bias: v.bias)
    case .isotonic:
      let maps = try object(Isotonic.self).classes
      guard maps.count >= 2, maps.count == classCount ?? maps.count else {
        throw VaneError.invalidArgument(
          field: "calibration.isotonic.classes",
          "needs one map per class (\(classCount ?? 2) or more, got \(maps.count))"
        )
      }
      for (c, map) in maps.enumerated() {
        guard !map.x.isEmpty, map.x.count == map.y.count, map.x.allSatisfy(\.isFinite),
          map.y.allSatisfy({ $0.isFinite && (0 ... 1).contains($0) }),
          zip(map.x, map.x.dropFirst()).allSatisfy({ $0 <= $1 }),
          zip(map.y, map.y.dropFirst()).allSatisfy({ $0 <= $1 })
        else {
          throw VaneError.invalidArgument(
            field: "calibration.isotonic.classes[\(c)]",
            "x and y must be equally long, finite and non-decreasing, y in [0, 1]"
          )
        }
      }
      self = .isotonic(maps)
    }
  }
}

extension Calibration: Codable {
  enum CodingKeys: String, CodingKey { case method, parameters }

  /// `{"method": …, "parameters": "<parameters JSON>"}`: how a bundle stores it.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.method.rawValue, forKey: .method)
    try container.encode(self.parametersJSON(), forKey: .parameters)
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    let name = try container.decode(String.self, forKey: .method)
    guard let method = CalibrationMethod(rawValue: name) else {
      throw DecodingError.dataCorruptedError(
        forKey: .method,
        in: container,
        debugDescription: "unknown method \(name)"
      )
    }
    self = try Calibration(
      method: method,
      parametersJSON: try container.decode(String.self, forKey: .parameters),
      classCount: nil
    )
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
    do {
      return try JSONDecoder().decode(Calibration.self, from: data)
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(
        .invalidArgument,
        "calibration: not a calibration JSON document",
        cause: error
      )
    }
  }
}

/// Calibration methods, and `auto` (choose by cross-validated NLL).
public enum CalibrationMethod: String, Sendable, CaseIterable, Codable {
  case none, temperature, platt, isotonic, vector, auto
}
