import Foundation
import Testing
import VaneCore
import VaneTestSupport

import VaneBundle
import VaneQuality

@testable import GatekeeperService

@Suite("Gatekeeper store: policies, reports, verdicts in SQLite", .computeBound)
struct QualityStoreTests {
  static func temporaryPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-gate-\(UUID().uuidString)/gatekeeper.sqlite"
    ).path
  }

  static func report(
    _ store: QualityStore,
    passed: Bool,
    manifest: String,
    at ms: Int64
  ) throws -> QualityReport {
    let predictions = try QualityFixtures.model(passed ? 25_000 : 500, seed: UInt64(ms))
    let report = try QualityReport.judge(
      Judgement(
        predictions: predictions,
        classes: ["DOWN", "UP"],
        subject: .init(kind: .inline, manifestSHA256: manifest, interval: "1h"),
        inputs: QualityFixtures.scaledInputs()
      ),
      policy: .default,
      policySHA256: "x",
      at: ms
    )
    #expect(report.passed == passed, "\(report.failedGates)")
    return try store.store(report)
  }

  @Test(
    "A fresh store has the built-in default policy; SetPolicy replaces, validates, guards by hash, and survives reopening"
  )
  func policies() throws {
    let path = Self.temporaryPath()
    defer {
      try? FileManager.default.removeItem(
        atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path
      )
    }
    let store = try QualityStore(path: path, now: 1)
    let initial = try store.policy(named: "")
    #expect(
      initial.name == "default" && initial.isDefault
        && initial.policy.gates == QualityPolicy.default.gates
    )
    let text = "name: ignored\ngates:\n  - {name: cal, metric: ece, op: '<=', threshold: 0.05}\n"
    let strict = try store.setPolicy(
      name: "strict-1h",
      text: text,
      format: nil,
      makeDefault: false,
      validateOnly: false,
      expectedSHA256: nil,
      at: 2
    )
    #expect(
      strict.policy.name == "strict-1h" && strict.format == .yaml && !strict.isDefault
        && strict.sha256 == SHA256.hash(data: Data(text.utf8)).hexString
    )
    // validate_only stores nothing.
    _ = try store.setPolicy(
      name: "dry",
      text: text,
      format: nil,
      makeDefault: false,
      validateOnly: true,
      expectedSHA256: nil,
      at: 3
    )
    #expect(throws: VaneError.self) { _ = try store.policy(named: "dry") }
    // A stale hash is refused (ABORTED) and changes nothing.
    #expect {
      _ = try store.setPolicy(
        name: "strict-1h",
        text: QualityPolicy.defaultYAML,
        format: nil,
        makeDefault: true,
        validateOnly: false,
        expectedSHA256: "00",
        at: 4
      )
    } throws: {
      ($0 as? VaneError)?.code == .aborted
    }
    #expect(try store.policy(named: "strict-1h").sha256 == strict.sha256)
    // A bad text is refused and the stored policy is kept.
    #expect {
      _ = try store.setPolicy(
        name: "strict-1h",
        text: "name: x\ngates: []\n",
        format: nil,
        makeDefault: false,
        validateOnly: false,
        expectedSHA256: nil,
        at: 5
      )
    } throws: {
      ($0 as? VaneError)?.code == .invalidArgument
    }
    #expect {
      _ = try store.setPolicy(
        name: "Bad Name",
        text: text,
        format: nil,
        makeDefault: false,
        validateOnly: false,
        expectedSHA256: nil,
        at: 5
      )
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("name:") == true
    }
    #expect {
      _ = try store.setPolicy(
        name: "j",
        text: text,
        format: .json,
        makeDefault: false,
        validateOnly: false,
        expectedSHA256: nil,
        at: 5
      )
    } throws: {
      ($0 as? VaneError)?.message.contains("not a JSON object") == true
    }
    let json =
      #"{"name": "j", "gates": [{"name": "auc", "metric": "auc", "op": ">=", "threshold": 0.6}]}"#
    let j = try store.setPolicy(
      name: "j",
      text: json,
      format: nil,
      makeDefault: true,
      validateOnly: false,
      expectedSHA256: nil,
      at: 6
    )
    #expect(j.format == .json && j.isDefault)
    let reopened = try QualityStore(path: path, now: 7)
    #expect(try reopened.policy(named: "").name == "j")
    #expect(try reopened.policy(named: "default").isDefault == false)
    let (page, more) = try reopened.policies(after: nil, limit: 2)
    #expect(page.map(\.name) == ["default", "j"] && more)
    #expect(try reopened.policies(after: "j", limit: 2).policies.map(\.name) == ["strict-1h"])
    #expect { _ = try reopened.policy(named: "nope") } throws: {
      ($0 as? VaneError)?.code == .notFound
    }
  }

  @Test("Reports: stored, read back equal, listed newest first with filters and pages")
  func reports() throws {
    let store = try QualityStore(path: ":memory:", now: 0)
    var stored: [QualityReport] = []
    for i in 0 ..< 5 {
      stored.append(
        try Self.report(
          store,
          passed: i % 2 == 0,
          manifest: i < 3 ? "aa" : "bb",
          at: 1_000 + Int64(i)
        )
      )
    }
    #expect(try store.report(id: stored[2].id) == stored[2])
    #expect { _ = try store.report(id: "nope") } throws: { ($0 as? VaneError)?.code == .notFound }
    let first = try store.reports(ReportFilter(), limit: 2, pageToken: nil)
    #expect(first.reports.map(\.id) == [stored[4].id, stored[3].id])
    let second = try store.reports(ReportFilter(), limit: 2, pageToken: first.nextPageToken)
    #expect(second.reports.map(\.id) == [stored[2].id, stored[1].id])
    let last = try store.reports(ReportFilter(), limit: 2, pageToken: second.nextPageToken)
    #expect(last.reports.map(\.id) == [stored[0].id] && last.nextPageToken == nil)
    #expect(
      try store.reports(ReportFilter(manifestSHA256: "aa", passed: true), limit: 10, pageToken: nil)
        .reports.map(\.id) == [stored[2].id, stored[0].id]
    )
    #expect(
      try store.reports(
        ReportFilter(createdFrom: 1_001, createdTo: 1_003),
        limit: 10,
        pageToken: nil
      ).reports.count == 2
    )
    // A token is only good with the filters that made it.
    #expect {
      _ = try store.reports(ReportFilter(passed: false), limit: 2, pageToken: first.nextPageToken)
    } throws: {
      ($0 as? VaneError)?.message.hasPrefix("page.page_token") == true
    }
    #expect { _ = try store.reports(ReportFilter(), limit: 2, pageToken: "garbage") } throws: {
      ($0 as? VaneError)?.code == .invalidArgument
    }
  }

  @Test("Verdicts are recorded per manifest")
  func verdicts() throws {
    let store = try QualityStore(path: ":memory:", now: 0)
    let key = try BlessingKey.ephemeral()
    let verdict = try key.sign(
      manifestSHA256: "aa",
      bundleID: "b",
      reportID: "r",
      policyName: "default",
      policySHA256: "s",
      signTimeNanos: 5
    )
    try store.record(verdict)
    #expect(try store.verdicts(manifestSHA256: "aa") == [verdict])
    #expect(try store.verdicts(manifestSHA256: "bb").isEmpty)
  }
}
