import Foundation
import Testing
import VaneCore

@testable import VaneQuality

/// The one YAML reader bounds what it reads: bytes, and nodes with aliases expanded.
@Suite("YAML documents are bounded")
struct YAMLReaderTests {
  /// Nine levels of ten aliases each: a few hundred bytes that stand for 10⁹ leaves.
  static let laughs: String = {
    var lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in 1 ... 9 {
      let previous = "*a\(level - 1)"
      lines.append(
        "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]"
      )
    }
    return lines.joined(separator: "\n") + "\n"
  }()

  @Test("A billion laughs is refused at once, naming the bound; so is a document over 1 MiB")
  func bombs() throws {
    let started = ContinuousClock.now
    do {
      _ = try YAMLReader(source: "laughs.yaml").compose(Self.laughs)
      Issue.record("the alias bomb was read")
    } catch let error as VaneError {
      #expect(
        error.code == .invalidArgument
          && error.message.contains("laughs.yaml: more than 200000 nodes"),
        "\(error)"
      )
    }
    // Refused after walking 200,000 nodes, not 10⁹ (generous for a debug build on a busy machine).
    #expect(ContinuousClock.now - started < .seconds(30))
    let big = "name: x\nnote: \"" + String(repeating: "x", count: 1 << 20) + "\"\n"
    #expect(throws: VaneError.self) { try YAMLReader(source: "big.yaml").compose(big) }
    // Every reader goes through it: policies (and plans, mappings, specs) refuse the bomb too.
    #expect(throws: VaneError.self) { try QualityPolicy.parse(Self.laughs, source: "laughs.yaml") }
  }

  @Test("Anchors and aliases within the bound read as usual")
  func aliases() throws {
    let policy = try QualityPolicy.parse(
      """
      name: anchored
      gates:
        - &auc {name: stacked_auc, metric: auc, op: ">=", threshold: 0.55}
        - {name: finite, metric: non_finite, op: "<=", threshold: 0}
      """,
      source: "p.yaml"
    )
    #expect(policy.gates.map(\.name) == ["stacked_auc", "finite"])
  }
}
