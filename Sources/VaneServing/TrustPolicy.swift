/// What a loaded version does when an answer cannot be fully trusted: its model is older than
/// allowed, or its input is unlike what it was trained on. Set per version at load.
public struct TrustPolicy: Sendable, Equatable {
  /// What to do about a failed check.
  public enum Action: Sendable, Equatable {
    /// Answer, with the flag set.
    case flag
    /// Refuse the request with FAILED_PRECONDITION, saying why.
    case refuse
  }

  /// Longest time since the training data ended; nil: no expiry.
  public var maxModelAge: Duration?
  public var onExpired: Action
  public var onOutOfDistribution: Action
  /// A column is out of distribution when its scaled value is more than this many training
  /// standard deviations from the training mean; nil: no z check.
  public var zBound: Double?
  /// An input is out of distribution when its dissimilarity index (distance to the nearest
  /// training sample row over the mean pairwise distance of the sample, as FreqAI's
  /// `DI_threshold` defines it) exceeds this; nil: no dissimilarity check.
  public var dissimilarityThreshold: Double?

  /// Flags z beyond 6 and dissimilarity beyond 2; no expiry.
  public static let `default` = TrustPolicy()

  public static let defaultZBound = 6.0
  public static let defaultDissimilarityThreshold = 2.0

  public init(
    maxModelAge: Duration? = nil,
    onExpired: Action = .flag,
    onOutOfDistribution: Action = .flag,
    zBound: Double? = Self.defaultZBound,
    dissimilarityThreshold: Double? = Self.defaultDissimilarityThreshold
  ) {
    self.maxModelAge = maxModelAge
    self.onExpired = onExpired
    self.onOutOfDistribution = onOutOfDistribution
    self.zBound = zBound
    self.dissimilarityThreshold = dissimilarityThreshold
  }
}

/// The trust checks' findings for one answered row.
public struct TrustReport: Sendable, Equatable {
  /// The training data ended longer than `maxModelAge` ago.
  public var expired: Bool = false
  /// Columns whose |z| exceeds the bound, in column order.
  public var outOfBoundColumns: [String] = []
  /// The largest |z| over the row's finite scaled values (nil: the bundle has no reference).
  public var maximumZ: Double?
  /// Distance to the nearest training sample row over their mean pairwise distance.
  public var dissimilarity: Double?
  /// Whether the dissimilarity exceeds the threshold.
  public var dissimilar: Bool = false

  public init() {}

  /// Any out-of-distribution finding.
  public var outOfDistribution: Bool { !self.outOfBoundColumns.isEmpty || self.dissimilar }

  /// The flags raised as the prediction log keeps them: `expired`, `out_of_distribution`, both
  /// comma-separated in that order, or empty. One of four constant strings (joining an array of
  /// names cost the log's writer thousands of instructions a row).
  public var flagList: String {
    switch (self.expired, self.outOfDistribution) {
    case (false, false): ""
    case (true, false): "expired"
    case (false, true): "out_of_distribution"
    case (true, true): "expired,out_of_distribution"
    }
  }
}
