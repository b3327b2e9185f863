/// What a model does with a row whose feature values are not all present: a cross-asset
/// reference that stopped, a zero division. A training spec chooses it, the bundle records it,
/// and a predictor may override it when it loads a version.
public enum MissingValues: String, Sendable, Codable, CaseIterable {
  /// Rows with a missing value are left out of datasets and refused by a predictor.
  case exclude
  /// Rows are kept with NaN, and each model handles it its own way: tree ensembles route it down
  /// each split's learned default branch; logistic regression, the MLP and the LSTM read the
  /// training center (the scaled 0).
  case native
  /// Rows are kept; each missing value becomes, for every model, the training rows' center of
  /// its column, which the bundle's scaler stores.
  case impute

  /// Whether rows with a missing feature value are kept (with NaN) in a dataset.
  public var keepsRows: Bool { self != .exclude }
}
