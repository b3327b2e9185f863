internal import Foundation
internal import GRDB
internal import VaneStore
internal import VaneCore
public import VaneBundle
public import VaneQuality

/// Which stored reports to list.
public struct ReportFilter: Sendable, Equatable {
  public var manifestSHA256: String?
  public var policyName: String?
  public var passed: Bool?
  /// Creation time range [from, to) in ms.
  public var createdFrom: Int64?
  public var createdTo: Int64?

  public init(
    manifestSHA256: String? = nil,
    policyName: String? = nil,
    passed: Bool? = nil,
    createdFrom: Int64? = nil,
    createdTo: Int64? = nil
  ) {
    self.manifestSHA256 = manifestSHA256
    self.policyName = policyName
    self.passed = passed
    self.createdFrom = createdFrom
    self.createdTo = createdTo
  }

  var fingerprint: String {
    let parts = [
      self.manifestSHA256 ?? "-", self.policyName ?? "-", self.passed.map { "\($0)" } ?? "-",
      self.createdFrom.map { "\($0)" } ?? "-", self.createdTo.map { "\($0)" } ?? "-",
    ]
    return String(
      SHA256.hash(data: Data(parts.joined(separator: "\u{1}").utf8)).hexString.prefix(12)
    )
  }
}

/// The gatekeeper's state in SQLite: policies, reports and the verdicts it signed. Survives
/// restarts; each write is one transaction.
public final class QualityStore: Sendable {
  private let store: SQLiteStore
  private var database: DatabaseQueue { self.store.database }

  /// Opens (creating if needed) the store at `path` (":memory:" for a private one) and makes
  /// sure a default policy exists (the built-in one, on first start).
  /// - Throws: UNAVAILABLE when the file cannot be opened.
  public init(path: String, now: Int64) throws {
    self.store = try SQLiteStore(name: "gatekeeper store", path: path, migrator: Self.migrator)
    try self.store.write("storing the default policy") { db in
      if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM policies WHERE is_default = 1") == 0 {
        let text = QualityPolicy.defaultYAML
        try db.execute(
          sql:
            "INSERT OR REPLACE INTO policies (name, text, format, sha256, is_default, updated_ms) VALUES (?, ?, 'yaml', ?, 1, ?)",
          arguments: ["default", text, SHA256.hash(data: Data(text.utf8)).hexString, now]
        )
      }
    }
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-gatekeeper") { db in
      try db.execute(
        sql: """
          CREATE TABLE policies (
            name TEXT PRIMARY KEY, text TEXT NOT NULL, format TEXT NOT NULL, sha256 TEXT NOT NULL,
            is_default INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
          CREATE TABLE reports (
            id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, manifest_sha256 TEXT NOT NULL, policy_name TEXT NOT NULL,
            passed INTEGER NOT NULL, body BLOB NOT NULL);
          CREATE INDEX reports_by_time ON reports (created_ms DESC, id DESC);
          CREATE INDEX reports_by_manifest ON reports (manifest_sha256);
          CREATE TABLE verdicts (
            manifest_sha256 TEXT NOT NULL, report_id TEXT NOT NULL, signed_ns INTEGER NOT NULL, body BLOB NOT NULL);
          CREATE INDEX verdicts_by_manifest ON verdicts (manifest_sha256);
          """
      )
    }
    return migrator
  }

  /// JSON for stored bodies; non-finite numbers (an infinite logit range) as strings.
  static var encoder: JSONEncoder {
    let encoder = JSONEncoder()
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    return encoder
  }

  static var decoder: JSONDecoder {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    return decoder
  }

  // MARK: Policies

  static func policy(_ row: Row) throws -> StoredPolicy {
    let name: String = row["name"], text: String = row["text"]
    return StoredPolicy(
      name: name,
      text: text,
      format: StoredPolicy.Format(rawValue: row["format"]) ?? .yaml,
      sha256: row["sha256"],
      isDefault: row["is_default"],
      updatedMs: row["updated_ms"],
      policy: try QualityPolicy.parse(text, source: "policy \(name)", name: name)
    )
  }

  /// The policy called `name`, or the default policy when `name` is empty.
  /// - Throws: NOT_FOUND naming the policy.
  public func policy(named name: String) throws -> StoredPolicy {
    try self.store.read(
      "read",
      { db in
        let row =
          name.isEmpty
          ? try Row.fetchOne(db, sql: "SELECT * FROM policies WHERE is_default = 1")
          : try Row.fetchOne(db, sql: "SELECT * FROM policies WHERE name = ?", arguments: [name])
        guard let row else {
          throw VaneError(
            .notFound,
            name.isEmpty ? "no default policy is set" : "policy '\(name)' does not exist"
          )
        }
        return try Self.policy(row)
      }
    )
  }

  /// Parses and (unless `validateOnly`) stores a policy under `name` (which replaces a `name`
  /// in the text; the text may leave it out).
  /// - Throws: INVALID_ARGUMENT for a bad name or text (naming line:column and key), ABORTED
  ///   when `expectedSHA256` is given and the stored policy's differs.
  public func setPolicy(
    name: String,
    text: String,
    format: StoredPolicy.Format?,
    makeDefault: Bool,
    validateOnly: Bool,
    expectedSHA256: String?,
    at now: Int64
  ) throws -> StoredPolicy {
    guard (1 ... 64).contains(name.count),
      name.allSatisfy({
        ("a" ... "z").contains($0) || ("0" ... "9").contains($0) || "._-".contains($0)
      })
    else {
      throw VaneError.invalidArgument(
        field: "name",
        "'\(name)' must be 1 to 64 characters of a-z, 0-9, '.', '_', '-'"
      )
    }
    let detected = format ?? (text.drop { $0.isWhitespace }.first == "{" ? .json : .yaml)
    if detected == .json {
      // YAML reads JSON, but would also accept YAML sent as JSON: insist on real JSON.
      guard (try? JSONSerialization.jsonObject(with: Data(text.utf8))) is [String: Any] else {
        throw VaneError.invalidArgument(field: "text", "not a JSON object (format JSON)")
      }
    }
    let parsed = try QualityPolicy.parse(text, source: "text", name: name)
    var stored = StoredPolicy(
      name: name,
      text: text,
      format: detected,
      sha256: SHA256.hash(data: Data(text.utf8)).hexString,
      isDefault: makeDefault,
      updatedMs: now,
      policy: parsed
    )
    return try self.store.write(
      "write",
      { db in
        let existing = try Row.fetchOne(
          db,
          sql: "SELECT sha256, is_default FROM policies WHERE name = ?",
          arguments: [name]
        )
        if let expected = expectedSHA256, !expected.isEmpty {
          let current: String? = existing?["sha256"]
          guard current == expected else {
            throw VaneError(
              .aborted,
              "policy '\(name)' has sha256 \(current ?? "(none: it does not exist)"), not the expected \(expected); re-read it and retry"
            )
          }
        }
        if let existing, !makeDefault { stored.isDefault = existing["is_default"] }
        if validateOnly { return stored }
        if makeDefault { try db.execute(sql: "UPDATE policies SET is_default = 0") }
        try db.execute(
          sql:
            "INSERT OR REPLACE INTO policies (name, text, format, sha256, is_default, updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
          arguments: [name, text, detected.rawValue, stored.sha256, stored.isDefault, now]
        )
        return stored
      }
    )
  }

  /// Policies ordered by name, starting after `after`.
  public func policies(after: String?, limit: Int) throws -> (policies: [StoredPolicy], more: Bool)
  {
    try self.store.read(
      "read",
      { db in
        let rows = try Row.fetchAll(
          db,
          sql: "SELECT * FROM policies WHERE name > ? ORDER BY name LIMIT ?",
          arguments: [after ?? "", limit + 1]
        )
        return (try rows.prefix(limit).map(Self.policy), rows.count > limit)
      }
    )
  }

  // MARK: Reports

  /// Stores a report under a fresh id (time-ordered) and returns it with the id set.
  public func store(_ report: QualityReport) throws -> QualityReport {
    var stored = report
    stored.id = String(
      format: "r%011llx%08x",
      UInt64(max(report.createdMs, 0)),
      UInt32.random(in: .min ... .max)
    )
    let body = try Self.encoder.encode(stored)
    try self.store.write(
      "write",
      { db in
        try db.execute(
          sql:
            "INSERT INTO reports (id, created_ms, manifest_sha256, policy_name, passed, body) VALUES (?, ?, ?, ?, ?, ?)",
          arguments: [
            stored.id, stored.createdMs, stored.subject.manifestSHA256, stored.policyName,
            stored.passed, body,
          ]
        )
      }
    )
    return stored
  }

  static func report(_ body: Data, id: String) throws -> QualityReport {
    do {
      return try Self.decoder.decode(QualityReport.self, from: body)
    } catch {
      throw VaneError(.internalError, "stored report \(id) is unreadable", cause: error)
    }
  }

  /// One stored report. Throws NOT_FOUND naming the id.
  public func report(id: String) throws -> QualityReport {
    try self.store.read(
      "read",
      { db in
        guard
          let body = try Data.fetchOne(
            db,
            sql: "SELECT body FROM reports WHERE id = ?",
            arguments: [id]
          )
        else {
          throw VaneError(.notFound, "report '\(id)' does not exist")
        }
        return try Self.report(body, id: id)
      }
    )
  }

  /// Reports matching `filter`, newest first, `limit` at a time. `pageToken` is the token a
  /// previous page returned (nil for the first page); a token from other filters is refused.
  /// - Throws: INVALID_ARGUMENT for a bad token.
  public func reports(
    _ filter: ReportFilter,
    limit: Int,
    pageToken: String?
  ) throws -> (reports: [QualityReport], nextPageToken: String?) {
    var conditions: [String] = []
    var arguments: [any DatabaseValueConvertible] = []
    if let manifest = filter.manifestSHA256 {
      conditions.append("manifest_sha256 = ?")
      arguments.append(manifest)
    }
    if let policy = filter.policyName {
      conditions.append("policy_name = ?")
      arguments.append(policy)
    }
    if let passed = filter.passed {
      conditions.append("passed = ?")
      arguments.append(passed)
    }
    if let from = filter.createdFrom {
      conditions.append("created_ms >= ?")
      arguments.append(from)
    }
    if let to = filter.createdTo {
      conditions.append("created_ms < ?")
      arguments.append(to)
    }
    if let token = pageToken, !token.isEmpty {
      let parts = (Data(base64Encoded: token).flatMap { String(data: $0, encoding: .utf8) } ?? "")
        .split(separator: "|").map(String.init)
      guard parts.count == 3, let created = Int64(parts[0]), parts[2] == filter.fingerprint else {
        throw VaneError.invalidArgument(
          field: "page.page_token",
          "not a token this listing gave (tokens are only valid with the same filters)"
        )
      }
      conditions.append("(created_ms < ? OR (created_ms = ? AND id < ?))")
      arguments += [created, created, parts[1]]
    }
    let clause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
    return try self.store.read(
      "read",
      { db in
        let rows = try Row.fetchAll(
          db,
          sql:
            "SELECT id, created_ms, body FROM reports \(clause) ORDER BY created_ms DESC, id DESC LIMIT ?",
          arguments: StatementArguments(arguments + [limit + 1])
        )
        let page = try rows.prefix(limit).map { try Self.report($0["body"], id: $0["id"]) }
        var next: String?
        if rows.count > limit, let last = page.last {
          next = Data("\(last.createdMs)|\(last.id)|\(filter.fingerprint)".utf8)
            .base64EncodedString()
        }
        return (page, next)
      }
    )
  }

  // MARK: Verdicts

  /// Records a signed verdict.
  public func record(_ verdict: Verdict) throws {
    let body = try Self.encoder.encode(verdict)
    try self.store.write(
      "write",
      { db in
        try db.execute(
          sql:
            "INSERT INTO verdicts (manifest_sha256, report_id, signed_ns, body) VALUES (?, ?, ?, ?)",
          arguments: [verdict.manifestSHA256, verdict.reportID, verdict.signTimeNanos, body]
        )
      }
    )
  }

  /// Verdicts signed for a manifest, oldest first.
  public func verdicts(manifestSHA256: String) throws -> [Verdict] {
    try self.store.read(
      "read",
      { db in
        try Data.fetchAll(
          db,
          sql: "SELECT body FROM verdicts WHERE manifest_sha256 = ? ORDER BY signed_ns",
          arguments: [manifestSHA256]
        )
        .map { try Self.decoder.decode(Verdict.self, from: $0) }
      }
    )
  }
}
