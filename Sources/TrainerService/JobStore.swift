internal import Foundation
internal import GRDB
internal import VaneStore
internal import SwiftProtobuf
internal import VaneCore
internal import VaneProto
internal import VaneTraining

/// The trainer's state in SQLite (`trainer.sqlite`): every job's record (the API's `Job`,
/// serialised), the content hash of the dataset it trained on, and the output of each finished
/// fold, so an interrupted job resumes after its last finished fold. Each write is one
/// transaction.
final class JobStore: Sendable {
  private let store: SQLiteStore

  /// Opens (creating if needed) the store at `path` (":memory:" for a private one).
  /// - Throws: UNAVAILABLE when it cannot be opened.
  init(path: String) throws {
    self.store = try SQLiteStore(name: "trainer store", path: path, migrator: Self.migrator)
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-trainer") { db in
      try db.execute(
        sql: """
          CREATE TABLE jobs (
            id TEXT PRIMARY KEY, request_id TEXT NOT NULL, created_ms INTEGER NOT NULL, sequence INTEGER NOT NULL,
            dataset_sha256 TEXT NOT NULL DEFAULT '', body BLOB NOT NULL);
          CREATE INDEX jobs_by_request ON jobs (request_id);
          CREATE TABLE folds (
            job_id TEXT NOT NULL, model TEXT NOT NULL, horizons TEXT NOT NULL, fold INTEGER NOT NULL, body BLOB NOT NULL,
            PRIMARY KEY (job_id, model, horizons, fold));
          """
      )
    }
    return migrator
  }

  private func run<T>(
    _ what: String,
    write: Bool = true,
    _ work: (Database) throws -> T
  ) throws -> T {
    write ? try self.store.write(what, work) : try self.store.read(what, work)
  }

  /// Stores (inserts or replaces) a job's record; a record of an earlier event than the one
  /// stored is ignored (the store never goes back).
  func save(_ job: Vane_V1_Job, sequence: UInt64) throws {
    let body = try job.serializedData()
    let created =
      job.hasCreateTime
      ? job.createTime.seconds * 1000 + Int64(job.createTime.nanos / 1_000_000) : 0
    try self.run("saving job \(job.id)") { db in
      try db.execute(
        sql: """
          INSERT INTO jobs (id, request_id, created_ms, sequence, body) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT(id) DO UPDATE SET sequence = excluded.sequence, body = excluded.body
          WHERE excluded.sequence >= jobs.sequence
          """,
        arguments: [job.id, job.requestID, created, Int64(sequence), body]
      )
    }
  }

  /// Every stored job with its last event sequence, oldest first.
  func jobs() throws -> [(job: Vane_V1_Job, sequence: UInt64)] {
    try self.run("reading jobs", write: false) { db in
      try Row.fetchAll(db, sql: "SELECT body, sequence FROM jobs ORDER BY created_ms, id").map {
        row in
        let body: Data = row["body"]
        let sequence: Int64 = row["sequence"]
        return (try Vane_V1_Job(serializedBytes: body), UInt64(max(sequence, 0)))
      }
    }
  }

  /// The content hash of the dataset a job trained on ("" before it loaded one).
  func datasetSHA256(job: String) throws -> String {
    try self.run("reading job \(job)", write: false) { db in
      try String.fetchOne(db, sql: "SELECT dataset_sha256 FROM jobs WHERE id = ?", arguments: [job])
        ?? ""
    }
  }

  func setDatasetSHA256(_ hash: String, job: String) throws {
    try self.run("saving job \(job)") { db in
      try db.execute(
        sql: "UPDATE jobs SET dataset_sha256 = ? WHERE id = ?",
        arguments: [hash, job]
      )
    }
  }

  /// A job's finished folds, to skip when it resumes.
  func checkpoints(job: String) -> any FoldCheckpoints { StoredCheckpoints(store: self, job: job) }

  /// Drops a job's finished folds (once its bundle is written they are in it).
  func removeCheckpoints(job: String) throws {
    try self.run("removing checkpoints of \(job)") { db in
      try db.execute(sql: "DELETE FROM folds WHERE job_id = ?", arguments: [job])
    }
  }

  fileprivate func fold(
    job: String,
    model: String,
    horizons: [Int],
    fold: Int
  ) throws -> FoldOutput? {
    let body = try self.run("reading a checkpoint of \(job)", write: false) { db in
      try Data.fetchOne(
        db,
        sql: "SELECT body FROM folds WHERE job_id = ? AND model = ? AND horizons = ? AND fold = ?",
        arguments: [job, model, Self.key(horizons), fold]
      )
    }
    guard let body else { return nil }
    do {
      return try Self.decoder.decode(FoldOutput.self, from: body)
    } catch {
      // A checkpoint that cannot be read is trained again, not trusted.
      return nil
    }
  }

  fileprivate func record(job: String, _ output: FoldOutput) throws {
    let body = try Self.encoder.encode(output)
    try self.run("saving a checkpoint of \(job)") { db in
      try db.execute(
        sql:
          "INSERT OR REPLACE INTO folds (job_id, model, horizons, fold, body) VALUES (?, ?, ?, ?, ?)",
        arguments: [job, output.model, Self.key(output.horizons), output.fold, body]
      )
    }
  }

  static func key(_ horizons: [Int]) -> String { horizons.map(String.init).joined(separator: ",") }

  // Probabilities may be NaN (a model's non-finite output must survive a resume as it was).
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
}

/// One job's view of the stored folds.
struct StoredCheckpoints: FoldCheckpoints {
  let store: JobStore
  let job: String

  func finished(model: String, horizons: [Int], fold: Int) throws -> FoldOutput? {
    try self.store.fold(job: self.job, model: model, horizons: horizons, fold: fold)
  }

  func record(_ output: FoldOutput) throws { try self.store.record(job: self.job, output) }
}
