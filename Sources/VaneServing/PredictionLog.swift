internal import Foundation
public import VaneBundle
internal import VaneCore
internal import GRDB
internal import Synchronization
internal import VaneStore

/// Every answer the predictor gives (primary and shadow), kept in SQLite
/// (`predictions.sqlite`, WAL) and joined with its realized outcome once its horizon's bar has
/// closed: the ground truth of a version's live quality.
///
/// Answers are queued without waiting (``submit(_:)``; when the queue is full an answer is
/// dropped and counted, never waited for) and written in batches, one transaction each, by
/// ``Writer`` off the request path. What has been written survives a crash; a restart resumes
/// joining where it stopped (unjoined answers stay pending in the file). Answers older than
/// the retention are deleted.
public final class PredictionLog: Sendable {
  /// One answered request, as logged.
  public struct Record: Sendable, Equatable {
    public var id: String
    public var requestID: String
    public var modelID: String
    public var version: String
    public var shadow: Bool
    /// The market and bar the input described (nil when a vector named none): only those
    /// answers can be joined with an outcome.
    public var symbol: String?
    public var barTime: Int64?
    public var featureSetHash: String
    /// The raw input row.
    public var features: [Double]
    public var outputs: [ServableModel.HorizonOutput]
    public var trust: TrustReport
    public var latency: Duration
    /// When it was answered (Unix ms).
    public var answeredAt: Int64

    public init(
      id: String,
      requestID: String,
      modelID: String,
      version: String,
      shadow: Bool,
      symbol: String?,
      barTime: Int64?,
      featureSetHash: String,
      features: [Double],
      outputs: [ServableModel.HorizonOutput],
      trust: TrustReport,
      latency: Duration,
      answeredAt: Int64
    ) {
      self.id = id
      self.requestID = requestID
      self.modelID = modelID
      self.version = version
      self.shadow = shadow
      self.symbol = symbol
      self.barTime = barTime
      self.featureSetHash = featureSetHash
      self.features = features
      self.outputs = outputs
      self.trust = trust
      self.latency = latency
      self.answeredAt = answeredAt
    }
  }

  /// What the log keeps of a version, written when it loads: what its outcomes and statistics
  /// need after it is unloaded or the predictor restarts.
  public struct VersionRecord: Sendable, Equatable, Codable {
    public var modelID: String
    public var version: String
    public var manifestSHA256: String
    public var featureSetID: String
    public var interval: String
    public var barMs: Int64
    public var taskKind: String
    public var classes: [String]
    public var columns: [String]
    /// The label definition as the API's `LabelSpec` JSON (nil: binary direction).
    public var labels: String?
    public var reference: TrainingReference?

    public init(
      modelID: String,
      version: String,
      manifestSHA256: String,
      featureSetID: String,
      interval: String,
      barMs: Int64,
      taskKind: String,
      classes: [String],
      columns: [String],
      labels: String?,
      reference: TrainingReference?
    ) {
      self.modelID = modelID
      self.version = version
      self.manifestSHA256 = manifestSHA256
      self.featureSetID = featureSetID
      self.interval = interval
      self.barMs = barMs
      self.taskKind = taskKind
      self.classes = classes
      self.columns = columns
      self.labels = labels
      self.reference = reference
    }
  }

  /// Answers waiting for their outcome: one series of one version at one horizon, over a range
  /// of bars whose horizon bar has closed.
  public struct PendingGroup: Sendable, Equatable {
    public var version: VersionRecord
    public var symbol: String
    public var horizon: Int
    /// Open times of the earliest and latest pending bar.
    public var firstBar: Int64
    public var lastBar: Int64
  }

  /// Most answers waiting to be written; beyond it an answer is dropped and counted.
  public let capacity: Int
  /// How long answers are kept.
  public let retention: Duration
  public var path: String { self.store.path }

  private let store: SQLiteStore
  private let queue = Mutex<[Record]>([])
  /// The registered versions (`model\0version`), read once at open and kept with the file.
  private let registered: Mutex<[VersionKey: VersionRecord]>
  /// Per version: answers written and matured.
  private let tallies: Mutex<[VersionKey: (logged: Int, matured: Int)]>
  private let dropped = Atomic<Int>(0)
  private let written = Atomic<Int>(0)

  /// Opens (creating) the log at `path` (":memory:" for a private one).
  /// - Throws: UNAVAILABLE when it cannot be opened.
  public init(
    path: String,
    capacity: Int = 65_536,
    retention: Duration = .seconds(30 * 86_400)
  ) throws {
    let store = try SQLiteStore(
      name: "prediction log",
      path: path,
      migrator: Self.migrator,
      writeAheadLog: true
    )
    self.store = store
    self.registered = Mutex(try store.read("reading versions") { try Self.versions($0) })
    self.tallies = Mutex(try Self.countAll(store))
    self.capacity = capacity
    self.retention = retention
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-predictions") { db in
      try db.execute(
        sql: """
          CREATE TABLE versions (
            model_id TEXT NOT NULL, version TEXT NOT NULL, manifest_sha256 TEXT NOT NULL, body BLOB NOT NULL,
            PRIMARY KEY (model_id, version));
          CREATE TABLE predictions (
            id TEXT PRIMARY KEY, request_id TEXT NOT NULL, model_id TEXT NOT NULL, version TEXT NOT NULL, shadow INTEGER NOT NULL,
            symbol TEXT, bar_time INTEGER, feature_set_hash TEXT NOT NULL, features BLOB NOT NULL, flags TEXT NOT NULL,
            latency_us INTEGER NOT NULL, answered_ms INTEGER NOT NULL);
          CREATE INDEX predictions_by_version ON predictions (model_id, version, bar_time);
          CREATE INDEX predictions_by_time ON predictions (answered_ms);
          CREATE TABLE answers (
            prediction_id TEXT NOT NULL, horizon INTEGER NOT NULL, calibrated BLOB NOT NULL, raw BLOB NOT NULL,
            resolve_ms INTEGER, outcome INTEGER, matured_ms INTEGER,
            PRIMARY KEY (prediction_id, horizon)) WITHOUT ROWID;
          CREATE INDEX answers_pending ON answers (resolve_ms) WHERE outcome IS NULL AND resolve_ms IS NOT NULL;
          """
      )
    }
    // Pruning walks the rows in the order they were written (``prune(now:)``), so the index on
    // the answer time only cost every logged answer one more B-tree insert.
    migrator.registerMigration("v2-prune-in-write-order") { db in
      try db.execute(sql: "DROP INDEX predictions_by_time")
    }
    return migrator
  }

  // MARK: Writing

  /// Remembers what a loaded version's answers need (classes, label definition, reference
  /// statistics); loading the same version again replaces it.
  public func register(_ version: VersionRecord) throws {
    let body = try BundleJSON.encoder().encode(version)
    try self.store.write("registering \(version.modelID)/\(version.version)") { db in
      try db.execute(
        sql:
          "INSERT OR REPLACE INTO versions (model_id, version, manifest_sha256, body) VALUES (?, ?, ?, ?)",
        arguments: [version.modelID, version.version, version.manifestSHA256, body]
      )
    }
    self.registered.withLock { $0[VersionKey(version.modelID, version.version)] = version }
  }

  /// Queues an answer for the writer; false (and counted) when the queue is full.
  @discardableResult
  public func submit(_ record: consuming Record) -> Bool {
    // Moved into the queue, not copied (a copy retained and released each of its fields).
    var pending = Optional(record)
    let queued = self.queue.withLock { queue -> Bool in
      guard queue.count < self.capacity else { return false }
      queue.append(pending.take()!)
      return true
    }
    if !queued { self.dropped.add(1, ordering: .relaxed) }
    return queued
  }

  /// Answers dropped because the queue was full, and answers written, since start.
  public var droppedCount: Int { self.dropped.load(ordering: .relaxed) }
  public var writtenCount: Int { self.written.load(ordering: .relaxed) }

  /// Writes every queued answer in one transaction. - Returns: how many.
  @discardableResult
  public func flush() throws -> Int {
    let batch = self.queue.withLock { queue -> [Record] in
      defer { queue.removeAll(keepingCapacity: true) }
      return queue
    }
    guard !batch.isEmpty else { return 0 }
    do {
      try self.store.write("writing \(batch.count) answers") { db in
        // Prepared once per connection and reused by every flush: at low traffic a flush
        // writes a record or two, and preparing the statements cost more than writing. Full
        // groups of rows go in one statement each; the rest one by one.
        let predictions = try Self.Insert.predictions.statements(db)
        let answers = try Self.Insert.answers.statements(db)
        // One buffer for every row's text and blobs, bound where they lie.
        var scratch: [UInt8] = []
        scratch.reserveCapacity(16_384)
        let bars = self.registered.withLock {
          $0.compactMapValues { $0.barMs > 0 ? $0.barMs : nil }
        }
        try Self.Insert.rows(batch, predictions, scratch: &scratch) { row, record in
          row.bind(record.id)
          row.bind(record.requestID)
          row.bind(record.modelID)
          row.bind(record.version)
          row.bind(record.shadow)
          row.bind(record.symbol)
          row.bind(record.barTime)
          row.bind(record.featureSetHash)
          row.bind(littleEndianDoubles: record.features)
          row.bind(record.trust.flagList)
          row.bind(
            record.latency.components.seconds * 1_000_000 + record.latency.components.attoseconds
              / 1_000_000_000_000
          )
          row.bind(record.answeredAt)
        }
        // One array for the batch's answers (no array per record on the way).
        var outputs: [(id: String, output: ServableModel.HorizonOutput, resolve: Int64?)] = []
        outputs.reserveCapacity(batch.count * 2)
        for record in batch {
          let bar = bars[VersionKey(record.modelID, record.version)]
          for output in record.outputs {
            // The outcome is known when bar as_of + horizon closes.
            let resolve = record.barTime.flatMap { time in
              bar.map { time + Int64(output.horizon + 1) * $0 }
            }
            outputs.append((record.id, output, resolve))
          }
        }
        try Self.Insert.rows(outputs, answers, scratch: &scratch) { row, answer in
          row.bind(answer.id)
          row.bind(answer.output.horizon)
          row.bind(littleEndianDoubles: answer.output.calibrated)
          row.bind(littleEndianDoubles: answer.output.raw)
          row.bind(answer.resolve)
        }
      }
    } catch {
      // Not lost: back to the front of the queue for the next attempt, within capacity.
      self.queue.withLock { queue in
        let room = max(0, self.capacity - queue.count)
        queue.insert(contentsOf: batch.prefix(room), at: 0)
        if batch.count > room { self.dropped.add(batch.count - room, ordering: .relaxed) }
      }
      throw error
    }
    self.written.add(batch.count, ordering: .relaxed)
    self.tallies.withLock { tallies in
      for record in batch {
        tallies[VersionKey(record.modelID, record.version), default: (0, 0)].logged += 1
      }
    }
    return batch.count
  }

  /// Deletes answers made before `now − retention`: every answer written before the first one
  /// made since. - Returns: how many predictions went.
  ///
  /// The writer appends answers in the order they were queued, which is the order they were
  /// made up to the few that finish at the same moment on other threads; one made a moment
  /// earlier than an answer just kept waits for the next prune. Walking the rows in write order
  /// stops at the first one kept, so a prune reads what it deletes and one row more, with no
  /// index on the answer time to update on every write.
  @discardableResult
  public func prune(now: Int64) throws -> Int {
    let cutoff = now - Int64(self.retention.components.seconds) * 1000
    let pruned = try self.store.write("pruning") { db in
      let kept = try Int64.fetchOne(
        db,
        sql: "SELECT rowid FROM predictions WHERE answered_ms >= ? ORDER BY rowid LIMIT 1",
        arguments: [cutoff]
      )
      let boundary = kept ?? Int64.max
      try db.execute(
        sql:
          "DELETE FROM answers WHERE prediction_id IN (SELECT id FROM predictions WHERE rowid < ?)",
        arguments: [boundary]
      )
      try db.execute(sql: "DELETE FROM predictions WHERE rowid < ?", arguments: [boundary])
      return db.changesCount
    }
    if pruned > 0 {
      let counts = try Self.countAll(self.store)
      self.tallies.withLock { $0 = counts }
    }
    return pruned
  }

  /// The log's two INSERTs, for one row and for a group of ``groupRows`` rows.
  ///
  /// A statement's fixed cost (opening a cursor on every B-tree it writes, resetting, freeing
  /// its record buffers) is shared by a group's rows: SQLite's instructions per logged answer
  /// went from 27.8k to 20.1k (`vane bench predictor --instructions`).
  struct Insert {
    static let groupRows = 16

    static let predictions = Insert(
      table: "predictions",
      columns: [
        "id", "request_id", "model_id", "version", "shadow", "symbol", "bar_time",
        "feature_set_hash", "features", "flags", "latency_us", "answered_ms",
      ]
    )
    static let answers = Insert(
      table: "answers",
      columns: ["prediction_id", "horizon", "calibrated", "raw", "resolve_ms"]
    )

    let table: String
    let columns: [String]

    func sql(rows: Int) -> String {
      let group =
        "(" + Array(repeating: "?", count: self.columns.count).joined(separator: ", ") + ")"
      return "INSERT OR IGNORE INTO \(self.table) (\(self.columns.joined(separator: ", "))) VALUES "
        + Array(repeating: group, count: rows).joined(separator: ", ")
    }

    /// This INSERT for one row and for a group, prepared once per connection.
    func statements(_ db: Database) throws -> (one: Statement, group: Statement) {
      (
        try db.cachedStatement(sql: self.sql(rows: 1)),
        try db.cachedStatement(sql: self.sql(rows: Self.groupRows))
      )
    }

    /// Inserts `items`, `bind` binding one item's row: full groups first, the rest one by one.
    static func rows<Item>(
      _ items: [Item],
      _ statements: (one: Statement, group: Statement),
      scratch: inout [UInt8],
      _ bind: (inout SQLiteRow, Item) -> Void
    ) throws {
      var start = 0
      while start < items.count {
        let count = items.count - start >= Self.groupRows ? Self.groupRows : 1
        try SQLiteStore.execute(
          count == 1 ? statements.one : statements.group,
          scratch: &scratch
        ) { row in
          for item in items[start ..< start + count] { bind(&row, item) }
        }
        start += count
      }
    }
  }

  // MARK: Outcomes

  /// Groups of answers whose horizon bar has closed by `now` (Unix ms) and that have no
  /// outcome yet.
  public func pendingGroups(now: Int64) throws -> [PendingGroup] {
    let versions = self.registered.withLock { $0 }
    return try self.store.read("reading pending answers") { db in
      return try Row.fetchAll(
        db,
        sql: """
          SELECT p.model_id, p.version, p.symbol, a.horizon, MIN(p.bar_time) AS first, MAX(p.bar_time) AS last
          FROM answers a JOIN predictions p ON p.id = a.prediction_id
          WHERE a.outcome IS NULL AND a.resolve_ms IS NOT NULL AND a.resolve_ms <= ? AND p.symbol IS NOT NULL
          GROUP BY p.model_id, p.version, p.symbol, a.horizon
          ORDER BY p.model_id, p.version, p.symbol, a.horizon
          """,
        arguments: [now]
      ).compactMap { row -> PendingGroup? in
        guard let version = versions[VersionKey(row["model_id"], row["version"])] else {
          return nil
        }
        return PendingGroup(
          version: version,
          symbol: row["symbol"],
          horizon: row["horizon"],
          firstBar: row["first"],
          lastBar: row["last"]
        )
      }
    }
  }

  /// Stores realized outcomes (class indices by bar open time) for a pending group's answers
  /// whose horizon bar closed by `now`; answers not yet closed are left alone whatever
  /// `outcomes` says. - Returns: how many answers matured.
  @discardableResult
  public func recordOutcomes(
    _ group: PendingGroup,
    outcomes: [Int64: Int],
    now: Int64
  ) throws -> Int {
    guard !outcomes.isEmpty else { return 0 }
    let k = group.version.classes.count
    let count = try self.store.write("recording outcomes") { db in
      let pending = try Row.fetchAll(
        db,
        sql: """
          SELECT a.prediction_id, p.bar_time FROM answers a JOIN predictions p ON p.id = a.prediction_id
          WHERE a.outcome IS NULL AND a.horizon = ? AND a.resolve_ms <= ? AND p.model_id = ? AND p.version = ? AND p.symbol = ?
          """,
        arguments: [group.horizon, now, group.version.modelID, group.version.version, group.symbol]
      )
      let update = try db.makeStatement(
        sql:
          "UPDATE answers SET outcome = ?, matured_ms = ? WHERE prediction_id = ? AND horizon = ?"
      )
      var matured = 0
      for row in pending {
        let bar: Int64 = row["bar_time"]
        guard let outcome = outcomes[bar], (0 ..< k).contains(outcome) else { continue }
        try update.execute(arguments: [outcome, now, row["prediction_id"] as String, group.horizon])
        matured += 1
      }
      return matured
    }
    self.tallies.withLock {
      $0[VersionKey(group.version.modelID, group.version.version), default: (0, 0)].matured += count
    }
    return count
  }

  // MARK: Reading

  /// A version as registered.
  public func version(modelID: String, version: String) -> VersionRecord? {
    self.registered.withLock { $0[VersionKey(modelID, version)] }
  }

  /// Every registered version of a model, by version label.
  public func versions(modelID: String) -> [VersionRecord] {
    self.registered.withLock {
      $0.values.filter { $0.modelID == modelID }.sorted { $0.version < $1.version }
    }
  }

  /// Answers logged and matured per version: counted once when the log is
  /// opened, then kept up to date by every write (ListModels reads them on each call).
  public func counts() throws -> [VersionKey: (logged: Int, matured: Int)] {
    self.tallies.withLock { $0 }
  }

  static func countAll(_ store: SQLiteStore) throws -> [VersionKey: (logged: Int, matured: Int)] {
    try store.read("counting answers") { db in
      var counts: [VersionKey: (logged: Int, matured: Int)] = [:]
      for row in try Row.fetchAll(
        db,
        sql: """
          SELECT p.model_id, p.version, COUNT(DISTINCT p.id) AS logged, COUNT(a.outcome) AS matured
          FROM predictions p LEFT JOIN answers a ON a.prediction_id = p.id GROUP BY p.model_id, p.version
          """
      ) {
        counts[VersionKey(row["model_id"], row["version"])] = (row["logged"], row["matured"])
      }
      return counts
    }
  }

  /// One logged answer at one horizon, for statistics.
  public struct Answer: Sendable, Equatable {
    public var predictionID: String
    public var shadow: Bool
    public var symbol: String?
    public var barTime: Int64?
    public var horizon: Int
    public var calibrated: [Double]
    public var features: [Double]
    public var flags: Set<String>
    public var outcome: Int?
    public var answeredAt: Int64
  }

  /// A version's answers with bar time in `bars` (answers without one are included when
  /// `bars` is nil) answered at or after `since`, ascending by bar.
  public func answers(
    modelID: String,
    version: String,
    bars: ClosedRange<Int64>?,
    since: Int64?
  ) throws -> [Answer] {
    try self.store.read("reading answers") { db in
      var sql = """
        SELECT p.id, p.shadow, p.symbol, p.bar_time, p.features, p.flags, p.answered_ms, a.horizon, a.calibrated, a.outcome
        FROM predictions p JOIN answers a ON a.prediction_id = p.id WHERE p.model_id = ? AND p.version = ?
        """
      var arguments: StatementArguments = [modelID, version]
      if let bars {
        sql += " AND (p.bar_time IS NULL OR (p.bar_time >= ? AND p.bar_time <= ?))"
        arguments += [bars.lowerBound, bars.upperBound]
      }
      if let since {
        sql += " AND p.answered_ms >= ?"
        arguments += [since]
      }
      sql += " ORDER BY p.bar_time, p.answered_ms, a.horizon"
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
        let flags: String = row["flags"]
        return Answer(
          predictionID: row["id"],
          shadow: row["shadow"],
          symbol: row["symbol"],
          barTime: row["bar_time"],
          horizon: row["horizon"],
          calibrated: Self.values(row["calibrated"]),
          features: Self.values(row["features"]),
          flags: Set(flags.split(separator: ",").map(String.init)),
          outcome: row["outcome"],
          answeredAt: row["answered_ms"]
        )
      }
    }
  }

  /// Calibrated answers of `version`'s shadow answers and `baseline`'s primary answers to the
  /// same requests, at the lowest horizon, answered at or after `since`.
  func pairedAnswers(
    modelID: String,
    version: String,
    baseline: String,
    since: Int64?,
    sinceBar: Int64?
  ) throws -> [([Double], [Double])] {
    // A shadow answer's id is the primary's, then "-shadow-<version>".
    let suffix = "-shadow-" + version
    return try self.store.read("pairing answers") { db in
      var sql = """
        SELECT sa.calibrated AS s, pa.calibrated AS p
        FROM predictions s
        JOIN predictions p ON p.id = substr(s.id, 1, length(s.id) - ?)
        JOIN answers sa ON sa.prediction_id = s.id
        JOIN answers pa ON pa.prediction_id = p.id AND pa.horizon = sa.horizon
        WHERE s.model_id = ? AND s.version = ? AND s.shadow = 1 AND p.version = ? AND p.shadow = 0
          AND sa.horizon = (SELECT MIN(horizon) FROM answers WHERE prediction_id = s.id)
        """
      var arguments: StatementArguments = [suffix.utf8.count, modelID, version, baseline]
      if let since {
        sql += " AND s.answered_ms >= ?"
        arguments += [since]
      }
      if let sinceBar {
        sql += " AND s.bar_time >= ?"
        arguments += [sinceBar]
      }
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map {
        (Self.values($0["s"]), Self.values($0["p"]))
      }
      .filter { $0.0.count == $0.1.count && !$0.0.isEmpty }
    }
  }

  /// The newest bar a version logged an answer for.
  public func latestBar(modelID: String, version: String) throws -> Int64? {
    try self.store.read("reading answers") { db in
      try Int64.fetchOne(
        db,
        sql: "SELECT MAX(bar_time) FROM predictions WHERE model_id = ? AND version = ?",
        arguments: [modelID, version]
      )
    }
  }

  // MARK: Encoding

  private static func versions(_ db: Database) throws -> [VersionKey: VersionRecord] {
    var versions: [VersionKey: VersionRecord] = [:]
    for row in try Row.fetchAll(db, sql: "SELECT body FROM versions") {
      if let record = try? BundleJSON.decode(
        VersionRecord.self,
        from: row["body"] as Data,
        file: "versions"
      ) {
        versions[VersionKey(record.modelID, record.version)] = record
      }
    }
    return versions
  }

  /// The doubles a BLOB holds (little-endian IEEE 754, as `SQLiteRow` binds them).
  static func values(_ data: Data) -> [Double] {
    stride(from: 0, to: data.count - data.count % 8, by: 8).map { offset in
      var bits: UInt64 = 0
      for i in 0 ..< 8 { bits |= UInt64(data[data.startIndex + offset + i]) << (8 * i) }
      return Double(bitPattern: bits)
    }
  }
}
