import Foundation
import Testing

@testable import vane

/// `vane bench predictor --instructions [--cache-misses]` reads callgrind's profiles: each
/// function's own instructions (a call's inclusive cost line is not its caller's own), and with
/// cache simulation every event's total, with trailing zero columns left out of a line.
@Suite("Bench: callgrind profiles")
struct CallgrindProfileTests {
  /// A profile in callgrind's format with cache simulation's events, names compressed.
  static let cacheProfile = """
    version: 1
    creator: callgrind-3.19.0
    positions: line
    events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
    summary: 1130 20 10 13 7 1 0 0 0

    ob=(1) /usr/lib/libc.so.6
    fl=(1) malloc.c
    fn=(1) malloc
    10 100 20 10 3 2 1
    11 20

    ob=(2) /tmp/vane
    fl=(2) ???
    fn=(2) main
    0 10 0 0 1 5
    cob=(1)
    cfi=(1)
    cfn=(1)
    calls=4 0
    0 999 9 9 9 9 9
    0 1000 0 0 9

    totals: 1130 20 10 13 7 1 0 0 0
    """

  static func profile(_ text: String) throws -> CallgrindCounter.Profile {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent(
      "callgrind-\(UUID().uuidString).out"
    )
    try text.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    return try CallgrindCounter.Profile(contentsOf: file)
  }

  @Test("own instructions by function; a call's inclusive line is not counted")
  func ownInstructions() throws {
    let profile = try Self.profile(Self.cacheProfile)
    #expect(profile.byFunction == ["malloc": 120, "main": 1010])
    #expect(profile.objectOf["main"] == "/tmp/vane")
  }

  @Test("every event's total, trailing zeros left out of a line")
  func eventTotals() throws {
    let profile = try Self.profile(Self.cacheProfile)
    #expect(profile.eventTotals["Ir"] == 1130)
    #expect(profile.eventTotals["I1mr"] == 13)
    #expect(profile.eventTotals["Dr"] == 20)
    #expect(profile.eventTotals["D1mr"] == 7)
    #expect(profile.eventTotals["D1mw"] == 1)
    #expect(profile.eventTotals["DLmw"] == 0)
  }

  @Test("the difference of two runs, per call; no cache events without simulation")
  func perCall() throws {
    let many = try Self.profile(Self.cacheProfile)
    let few = try Self.profile(
      Self.cacheProfile.replacingOccurrences(of: "10 100 20 10 3 2 1", with: "10 50 20 10 1 1 1")
    )
    let extra = many.subtracting(few)
    #expect(extra.perCall("Ir", calls: 10) == 5)
    #expect(extra.perCall("I1mr", calls: 2) == 1)
    #expect(extra.perCall("D1mr", calls: 1) == 1)
    #expect(extra.perCall("D1mw", calls: 1) == 0)
    let plain = try Self.profile(
      """
      events: Ir
      fn=(1) f
      1 42
      """
    )
    #expect(plain.eventTotals == ["Ir": 42])
    #expect(plain.perCall("I1mr", calls: 1) == nil)
  }
}
