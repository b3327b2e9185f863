public import VaneFeatures
public import VaneProto
internal import VaneCore

// The interval between the wire and the domain: one home for every service and the CLI.

extension CandleInterval {
  /// The domain interval of a wire interval.
  /// - Throws: INVALID_ARGUMENT naming `field` for INTERVAL_UNSPECIFIED or an unknown value.
  public init(_ proto: Vane_V1_Interval, field: String) throws {
    switch proto {
    case .interval15M: self = .m15
    case .interval1H: self = .h1
    case .interval4H: self = .h4
    case .interval1D: self = .d1
    case .unspecified:
      throw VaneError.invalidArgument(
        field: field,
        "is required: one of INTERVAL_15M, INTERVAL_1H, INTERVAL_4H, INTERVAL_1D"
      )
    case .UNRECOGNIZED(let value):
      throw VaneError.invalidArgument(
        field: field,
        "\(value) is not an interval: one of INTERVAL_15M, INTERVAL_1H, INTERVAL_4H, INTERVAL_1D"
      )
    }
  }

  /// The wire value.
  public var proto: Vane_V1_Interval {
    switch self {
    case .m15: .interval15M
    case .h1: .interval1H
    case .h4: .interval4H
    case .d1: .interval1D
    }
  }
}
