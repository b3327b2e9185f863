public import VaneProto
public import VaneQuality
internal import VaneCore

// The calibration method between the wire and the domain: one home for every service and the CLI.

extension Vane_V1_CalibrationMethod {
  /// The domain method; INVALID_ARGUMENT naming `field` for an unknown value.
  public func decoded(field: String) throws -> CalibrationMethod {
    switch self {
    case .unspecified, .auto: .auto
    case .none: CalibrationMethod.none
    case .temperature: .temperature
    case .platt: .platt
    case .isotonic: .isotonic
    case .vector: .vector
    case .UNRECOGNIZED(let value):
      throw VaneError.invalidArgument(field: field, "unknown method \(value)")
    }
  }

  /// The wire value.
  public init(_ method: CalibrationMethod) {
    switch method {
    case .auto: self = .auto
    case .none: self = .none
    case .temperature: self = .temperature
    case .platt: self = .platt
    case .isotonic: self = .isotonic
    case .vector: self = .vector
    }
  }
}
