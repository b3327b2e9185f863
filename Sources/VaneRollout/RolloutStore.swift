internal import Foundation
internal import GRDB
internal import VaneCore
internal import VaneStore

/// Deploy's state in SQLite (`deploy.sqlite`): every rollout, stored whole after every
/// transition (one transaction each), so a restart resumes each from where it was.
public final class RolloutStore: Sendable {
  private let store: SQLiteStore

  /// - Throws: UNAVAILABLE when the file cannot be opened.
  public init(path: String) throws {
    self.store = try SQLiteStore(
      name: "deploy store",
      path: path,
      migrator: Self.migrator,
      writeAheadLog: true
    )
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-deploy") { db in
      try db.execute(
        sql: """
          CREATE TABLE rollouts (
            id TEXT PRIMARY KEY, request_id TEXT NOT NULL, model_id TEXT NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL, body BLOB NOT NULL);
          CREATE INDEX rollouts_by_time ON rollouts (created_ms DESC, id DESC);
          CREATE INDEX rollouts_by_request ON rollouts (request_id);
          """
      )
    }
    return migrator
  }

  static var encoder: JSONEncoder {
    let encoder = JSONEncoder()
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    encoder.dateEncodingStrategy = .millisecondsSince1970
    return encoder
  }

  static var decoder: JSONDecoder {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
      positiveInfinity: "inf",
      negativeInfinity: "-inf",
      nan: "nan"
    )
    decoder.dateDecodingStrategy = .millisecondsSince1970
    return decoder
  }

  public func save(_ rollout: Rollout) throws {
    let body = try Self.encoder.encode(rollout)
    try self.store.write("saving rollout \(rollout.id)") { db in
      try db.execute(
        sql:
          "INSERT OR REPLACE INTO rollouts (id, request_id, model_id, state, created_ms, body) VALUES (?, ?, ?, ?, ?, ?)",
        arguments: [
          rollout.id, rollout.requestID, rollout.modelID, rollout.state.rawValue,
          Int64(rollout.createTime.timeIntervalSince1970 * 1000), body,
        ]
      )
    }
  }

  public func rollout(id: String) throws -> Rollout? {
    try self.store.read("reading rollout \(id)") { db in
      try Data.fetchOne(db, sql: "SELECT body FROM rollouts WHERE id = ?", arguments: [id]).map {
        try Self.decoder.decode(Rollout.self, from: $0)
      }
    }
  }

  public func rollout(requestID: String) throws -> Rollout? {
    try self.store.read("reading rollouts") { db in
      try Data.fetchOne(
        db,
        sql: "SELECT body FROM rollouts WHERE request_id = ? ORDER BY created_ms DESC LIMIT 1",
        arguments: [requestID]
      )
      .map { try Self.decoder.decode(Rollout.self, from: $0) }
    }
  }

  /// Newest first; `states` and `modelID` filter (empty: all).
  public func rollouts(states: Set<Rollout.State> = [], modelID: String = "") throws -> [Rollout] {
    try self.store.read("listing rollouts") { db in
      try Data.fetchAll(db, sql: "SELECT body FROM rollouts ORDER BY created_ms DESC, id DESC").map
      { try Self.decoder.decode(Rollout.self, from: $0) }
      .filter {
        (states.isEmpty || states.contains($0.state)) && (modelID.isEmpty || $0.modelID == modelID)
      }
    }
  }

  /// Rollouts not in a terminal state.
  public func active() throws -> [Rollout] {
    try self.rollouts().filter { !$0.state.isTerminal }
  }
}
