public import VaneFeatures
public import VaneProto
internal import VaneCore

// The missing-values choice between the wire and the domain: one home for every service and the
// CLI.

extension Vane_V1_MissingValues {
  /// The domain choice; nil for UNSPECIFIED (the caller's default applies); INVALID_ARGUMENT
  /// naming `field` for an unknown value.
  public func decoded(field: String) throws -> MissingValues? {
    switch self {
    case .unspecified: nil
    case .exclude: .exclude
    case .native: .native
    case .impute: .impute
    case .UNRECOGNIZED(let value):
      throw VaneError.invalidArgument(field: field, "unknown choice \(value)")
    }
  }

  /// The wire value.
  public init(_ choice: MissingValues) {
    switch choice {
    case .exclude: self = .exclude
    case .native: self = .native
    case .impute: self = .impute
    }
  }
}
