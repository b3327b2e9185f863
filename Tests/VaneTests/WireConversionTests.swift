import Testing
import VaneCore
import VaneFeatures
import VaneProto
import VaneRuntime

/// The shared wire ↔ domain conversions: one table per type, errors naming the field.
@Suite("Wire conversions")
struct WireConversionTests {
  @Test(
    "Intervals: every known one round-trips; unset is required, an unknown number is named",
    arguments: CandleInterval.allCases
  )
  func intervalRoundTrip(interval: CandleInterval) throws {
    #expect(try CandleInterval(interval.proto, field: "market.interval") == interval)
  }

  @Test("An unset or unknown interval is INVALID_ARGUMENT naming the field, and says which")
  func intervalErrors() throws {
    let unset = try #require(throws: VaneError.self) {
      try CandleInterval(.unspecified, field: "market.interval")
    }
    #expect(unset.message.contains("market.interval") && unset.message.contains("is required"))
    let unknown = try #require(throws: VaneError.self) {
      try CandleInterval(Vane_V1_Interval(rawValue: 99)!, field: "market.interval")
    }
    #expect(unknown.code == .invalidArgument)
    #expect(
      unknown.message.contains("99 is not an interval") && !unknown.message.contains("is required"),
      "\(unknown.message)"
    )
  }
}
