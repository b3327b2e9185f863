internal import VaneCore

/// What an exported graph does to its input before the model: the fitted feature scaler's
/// per-column x' = (x − center) / scale, then (optionally) NaN and ±∞ replaced by 0, as the
/// native training and serving paths prepare inputs for logistic regression, the MLP and the
/// LSTM. With it the ONNX model takes raw feature values.
///
/// The arithmetic is the scaler's, in double: a subtraction then a division per value, so the
/// graph's scaled inputs equal `FeatureScaler.transform` bit for bit.
public struct ONNXInputTransform: Sendable, Equatable, Codable {
  /// Per input column (empty, with `scale` empty: no scaling).
  public var center: [Double]
  /// Per input column, finite and non-zero (empty, with `center` empty: no scaling).
  public var scale: [Double]
  /// Replace NaN and ±∞ by 0 after scaling. Leave it off for XGBoost, whose trees route NaN
  /// (missing) down each split's default branch.
  public var zeroNonFinite: Bool
  /// Per input column, the value that replaces NaN and ±∞ before scaling (the scaler's
  /// `impute`, for a model trained with `missing: impute`); empty: none.
  public var impute: [Double]

  public init(
    center: [Double] = [],
    scale: [Double] = [],
    zeroNonFinite: Bool = false,
    impute: [Double] = []
  ) {
    self.center = center
    self.scale = scale
    self.zeroNonFinite = zeroNonFinite
    self.impute = impute
  }

  // `impute` is newer than the other fields: absent in earlier JSON.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.center = try container.decode([Double].self, forKey: .center)
    self.scale = try container.decode([Double].self, forKey: .scale)
    self.zeroNonFinite = try container.decode(Bool.self, forKey: .zeroNonFinite)
    self.impute = try container.decodeIfPresent([Double].self, forKey: .impute) ?? []
  }

  /// Whether the transform scales (it may only replace non-finite values).
  var scales: Bool { !self.center.isEmpty || !self.scale.isEmpty }

  /// A short description for the model's metadata.
  var summary: String {
    let steps =
      (self.impute.isEmpty ? [] : ["impute"]) + (self.scales ? ["scale"] : [])
      + (self.zeroNonFinite ? ["zero_non_finite"] : [])
    return steps.isEmpty ? "none" : steps.joined(separator: ",")
  }

  /// Throws INVALID_ARGUMENT unless the transform fits `columns` input columns.
  func validate(columns: Int) throws {
    if !self.impute.isEmpty {
      guard self.impute.count == columns else {
        throw VaneError.invalidArgument(
          field: "transform.impute",
          "has \(self.impute.count) values for \(columns) input columns"
        )
      }
      if let bad = self.impute.firstIndex(where: { !$0.isFinite }) {
        throw VaneError.invalidArgument(
          field: "transform.impute[\(bad)]",
          "\(self.impute[bad]) is not finite"
        )
      }
    }
    guard self.scales else { return }
    guard self.center.count == columns else {
      throw VaneError.invalidArgument(
        field: "transform.center",
        "has \(self.center.count) values for \(columns) input columns"
      )
    }
    guard self.scale.count == columns else {
      throw VaneError.invalidArgument(
        field: "transform.scale",
        "has \(self.scale.count) values for \(columns) input columns"
      )
    }
    if let bad = self.center.firstIndex(where: { !$0.isFinite }) {
      throw VaneError.invalidArgument(
        field: "transform.center[\(bad)]",
        "\(self.center[bad]) is not finite"
      )
    }
    if let bad = self.scale.firstIndex(where: { !$0.isFinite || $0 == 0 }) {
      throw VaneError.invalidArgument(
        field: "transform.scale[\(bad)]",
        "\(self.scale[bad]) is not a finite non-zero number"
      )
    }
  }

  /// Adds the transform's nodes after `input` (a double tensor whose last axis has `columns`
  /// values); returns the transformed tensor's name (`input` itself when there is nothing to do).
  func apply(to input: String, columns: Int, in builder: inout ONNXGraphBuilder) -> String {
    var x = input
    func nonFinite(_ x: String) -> String {
      let isNaN = builder.apply("IsNaN", [x], hint: "is_nan")
      let isInfinite = builder.apply("IsInf", [x], hint: "is_inf")
      return builder.apply("Or", [isNaN, isInfinite], hint: "non_finite")
    }
    if !self.impute.isEmpty {
      let fill = builder.doubles("impute", self.impute, dims: [columns])
      x = builder.apply("Where", [nonFinite(x), fill, x], hint: "imputed")
    }
    if self.scales {
      let center = builder.doubles("scaler_center", self.center, dims: [columns])
      let scale = builder.doubles("scaler_scale", self.scale, dims: [columns])
      x = builder.apply("Sub", [x, center], hint: "centered")
      x = builder.apply("Div", [x, scale], hint: "scaled")
    }
    if self.zeroNonFinite {
      let zero = builder.doubles("zero", [0], dims: [])
      x = builder.apply("Where", [nonFinite(x), zero, x], hint: "finite")
    }
    return x
  }
}
