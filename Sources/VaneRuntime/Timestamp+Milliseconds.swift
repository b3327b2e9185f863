public import SwiftProtobuf
public import VaneProto
internal import VaneCore

extension Google_Protobuf_Timestamp {
  /// The protobuf range of valid timestamps (0001-01-01 to 9999-12-31 UTC), in seconds.
  static let validSeconds: ClosedRange<Int64> = -62_135_596_800 ... 253_402_300_799

  /// A timestamp from milliseconds since the Unix epoch.
  public init(unixMilliseconds ms: Int64) {
    let seconds = ms.quotientAndRemainder(dividingBy: 1000)
    // Floor division keeps nanos non-negative for times before 1970.
    let adjust: Int64 = seconds.remainder < 0 ? 1 : 0
    self.init(
      seconds: seconds.quotient - adjust,
      nanos: Int32((seconds.remainder + adjust * 1000) * 1_000_000)
    )
  }

  /// Milliseconds since the Unix epoch (sub-millisecond nanos are truncated toward the past).
  /// - Throws: INVALID_ARGUMENT naming `field` when the timestamp is outside protobuf's valid
  ///   range or its nanos are out of [0, 1e9): a hostile value never overflows.
  public func unixMilliseconds(field: String) throws -> Int64 {
    guard Self.validSeconds.contains(self.seconds), (0 ..< 1_000_000_000).contains(self.nanos)
    else {
      throw VaneError.invalidArgument(
        field: field,
        "is not a valid timestamp (seconds \(self.seconds), nanos \(self.nanos))"
      )
    }
    return self.seconds * 1000 + Int64(self.nanos / 1_000_000)
  }
}

extension Google_Protobuf_Duration {
  /// A duration from a count of seconds.
  public init(secondsDouble: Double) {
    let whole = secondsDouble.rounded(.towardZero)
    self.init(seconds: Int64(whole), nanos: Int32(((secondsDouble - whole) * 1e9).rounded()))
  }
}

extension Vane_V1_TimeRange {
  /// [start, end) in ms, with open ends as Int64.min / Int64.max.
  /// - Throws: INVALID_ARGUMENT naming `field` for an invalid timestamp or start >= end.
  public func milliseconds(field: String) throws -> (start: Int64, end: Int64) {
    let start = self.hasStart ? try self.start.unixMilliseconds(field: "\(field).start") : .min
    let end = self.hasEnd ? try self.end.unixMilliseconds(field: "\(field).end") : .max
    guard start < end else {
      throw VaneError.invalidArgument(field: field, "start must be before end")
    }
    return (start, end)
  }

  /// [start, end) from ms.
  public init(start: Int64, end: Int64) {
    self.init()
    self.start = .init(unixMilliseconds: start)
    self.end = .init(unixMilliseconds: end)
  }
}
