import Foundation
import GRDB
import Synchronization
import Testing
import VaneBundle
import VaneCore
import VaneQuality
import VaneTestSupport

@testable import VaneServing

/// The prediction log without a server: what is written reads back, survives reopening, and
/// is joined with outcomes only once each horizon's bar has closed.
@Suite("Prediction log and outcome joiner")
struct PredictionLogTests {
  static let hour: Int64 = 3_600_000
  static let start: Int64 = 1_700_000_000_000 / 3_600_000 * 3_600_000

  static func version(
    _ label: String = "v1",
    reference: TrainingReference? = nil
  ) -> PredictionLog.VersionRecord {
    PredictionLog.VersionRecord(
      modelID: "btc",
      version: label,
      manifestSHA256: String(repeating: "a", count: 64),
      featureSetID: "core_v1",
      interval: "1h",
      barMs: Self.hour,
      taskKind: "binary",
      classes: ["DOWN", "UP"],
      columns: ["a", "b"],
      labels: nil,
      reference: reference
    )
  }

  static func record(
    _ i: Int,
    version: String = "v1",
    p: Double = 0.6,
    symbol: String? = "BTCUSDT"
  ) -> PredictionLog.Record {
    PredictionLog.Record(
      id: "p\(i)-\(version)",
      requestID: "r\(i)",
      modelID: "btc",
      version: version,
      shadow: false,
      symbol: symbol,
      barTime: Self.start + Int64(i) * Self.hour,
      featureSetHash: "h",
      features: [Double(i), -Double(i)],
      outputs: [1, 3].map {
        ServableModel.HorizonOutput(horizon: $0, raw: [1 - p, p], calibrated: [1 - p, p])
      },
      trust: TrustReport(),
      latency: .microseconds(250),
      answeredAt: Self.start + Int64(i) * Self.hour + 1
    )
  }

  static func temporary() -> String {
    TestScratch.directory("log").appendingPathComponent("predictions.sqlite").path
  }

  /// A source that knows every bar's label: the test decides what has "closed" by the clock.
  final class Oracle: OutcomeSource {
    let label: @Sendable (Int64) -> Int
    let calls = Mutex<[(Int64, Int64)]>([])
    init(label: @escaping @Sendable (Int64) -> Int) { self.label = label }
    func outcomes(
      version: PredictionLog.VersionRecord,
      symbol: String,
      horizon: Int,
      from: Int64,
      to: Int64
    ) async throws -> [Int64: Int] {
      self.calls.withLock { $0.append((from, to)) }
      return Dictionary(
        uniqueKeysWithValues: stride(from: from, through: to, by: Int(PredictionLogTests.hour)).map
        { ($0, self.label($0)) }
      )
    }
  }

  @Test("Written answers read back as submitted, and survive closing and reopening the file")
  func roundTrip() throws {
    let path = Self.temporary()
    do {
      let log = try PredictionLog(path: path)
      try log.register(Self.version())
      for i in 0 ..< 5 { #expect(log.submit(Self.record(i))) }
      #expect(try log.flush() == 5)
      #expect(try log.flush() == 0)
    }
    let reopened = try PredictionLog(path: path)
    #expect(reopened.version(modelID: "btc", version: "v1") == Self.version())
    let answers = try reopened.answers(modelID: "btc", version: "v1", bars: nil, since: nil)
    #expect(answers.count == 10)
    #expect(
      answers[0].features == [0, -0] && answers[0].calibrated == [0.4, 0.6]
        && answers[0].horizon == 1 && answers[1].horizon == 3
    )
    #expect(answers.allSatisfy { $0.outcome == nil })
    #expect(try reopened.counts()[VersionKey("btc", "v1")]?.logged == 5)
  }

  @Test(
    "An answer's trust flags are written and read back as raised",
    arguments: [
      (false, false, [String]()), (true, false, ["expired"]),
      (false, true, ["out_of_distribution"]), (true, true, ["expired", "out_of_distribution"]),
    ]
  )
  func flags(expired: Bool, dissimilar: Bool, expected: [String]) throws {
    let log = try PredictionLog(path: ":memory:")
    try log.register(Self.version())
    var record = Self.record(0)
    record.trust.expired = expired
    record.trust.dissimilar = dissimilar
    #expect(log.submit(record))
    try log.flush()
    let answers = try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil)
    #expect(answers.count == 2 && answers.allSatisfy { $0.flags == Set(expected) })
  }

  @Test("A full queue drops and counts; the answer path never waits")
  func bounded() throws {
    let log = try PredictionLog(path: ":memory:", capacity: 3)
    try log.register(Self.version())
    let accepted = (0 ..< 5).map { log.submit(Self.record($0)) }
    #expect(accepted == [true, true, true, false, false])
    #expect(log.droppedCount == 2)
    #expect(try log.flush() == 3)
    #expect(log.submit(Self.record(9)))
  }

  @Test(
    "An answer is joined only once bar as_of + horizon has closed by the clock, then never again"
  )
  func joinNeverEarly() async throws {
    let log = try PredictionLog(path: ":memory:")
    try log.register(Self.version())
    for i in 0 ..< 4 { log.submit(Self.record(i)) }
    try log.flush()
    let now = Mutex<Int64>(Self.start)
    let oracle = Oracle { ($0 / Self.hour) % 2 == 0 ? 1 : 0 }
    let joiner = OutcomeJoiner(log: log, source: oracle, clock: { now.withLock { $0 } })
    // Bar 0's 1-bar horizon resolves at start + 2 h (bar 1 closes); nothing before.
    now.withLock { $0 = Self.start + 2 * Self.hour - 1 }
    #expect(try await joiner.joinOnce() == 0)
    #expect(oracle.calls.withLock { $0.isEmpty })
    now.withLock { $0 = Self.start + 2 * Self.hour }
    #expect(try await joiner.joinOnce() == 1)
    // Later: bars 0…3 at horizon 1 (bar 3 resolves at +5 h), bars 0…1 at horizon 3 (bar 1 at +5 h).
    now.withLock { $0 = Self.start + 5 * Self.hour }
    #expect(try await joiner.joinOnce() == 3 + 2)
    #expect(try await joiner.joinOnce() == 0)
    let answers = try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil)
    for answer in answers {
      let resolve = answer.barTime! + Int64(answer.horizon + 1) * Self.hour
      if resolve <= Self.start + 5 * Self.hour {
        #expect(answer.outcome == ((answer.barTime! / Self.hour) % 2 == 0 ? 1 : 0))
      } else {
        #expect(answer.outcome == nil)
      }
    }
  }

  @Test("A restart resumes joining: what was pending in the file is joined by a new log and joiner")
  func resumeAfterRestart() async throws {
    let path = Self.temporary()
    do {
      let log = try PredictionLog(path: path)
      try log.register(Self.version())
      for i in 0 ..< 3 { log.submit(Self.record(i)) }
      try log.flush()
    }
    let log = try PredictionLog(path: path)
    let joiner = OutcomeJoiner(
      log: log,
      source: Oracle { _ in 1 },
      clock: { Self.start + 100 * Self.hour }
    )
    #expect(try await joiner.joinOnce() == 6)
  }

  @Test(
    "A version's statistics are a shadow's only when every answer in the window was a shadow answer"
  )
  func shadowFlag() throws {
    let log = try PredictionLog(path: ":memory:")
    try log.register(Self.version())
    func shadow(_ i: Int) -> PredictionLog.Record {
      var record = Self.record(i)
      record.shadow = true
      return record
    }
    for i in 0 ..< 3 { log.submit(shadow(i)) }
    try log.flush()
    #expect(
      try log.statistics(modelID: "btc", version: "v1", window: .seconds(86_400), since: nil).shadow
    )
    // Promoted: its later answers are primary ones.
    for i in 3 ..< 5 { log.submit(Self.record(i)) }
    try log.flush()
    #expect(
      try !log.statistics(modelID: "btc", version: "v1", window: .seconds(86_400), since: nil)
        .shadow
    )
  }

  @Test("Answers without a symbol or bar are never joined and count as unjoinable")
  func unjoinable() async throws {
    let log = try PredictionLog(path: ":memory:")
    try log.register(Self.version())
    log.submit(Self.record(0, symbol: nil))
    try log.flush()
    let joiner = OutcomeJoiner(
      log: log,
      source: Oracle { _ in 1 },
      clock: { Self.start + 100 * Self.hour }
    )
    #expect(try await joiner.joinOnce() == 0)
    let stats = try log.statistics(
      modelID: "btc",
      version: "v1",
      window: .seconds(86_400),
      since: nil
    )
    #expect(stats.horizons.map(\.unjoinable) == [1, 1])
    #expect(stats.horizons.map(\.pending) == [0, 0])
  }

  @Test(
    "Live statistics equal the gatekeeper's metrics on the matured answers; PSI against the bundle's deciles"
  )
  func statistics() async throws {
    var random = SeededRandom(seed: 9)
    let labels = (0 ..< 200).map { _ in Int.random(in: 0 ... 1, using: &random) }
    let scores = labels.map {
      min(
        0.95,
        max(0.05, 0.5 + (Double($0) - 0.5) * 0.3 + Double.random(in: -0.3 ... 0.3, using: &random))
      )
    }
    let reference = TrainingReference.summarise(
      columns: ["a", "b"],
      raw: (0 ..< 400).map { Double($0 % 50) },
      scaled: (0 ..< 400).map { Double($0 % 50) / 50 },
      rows: 200,
      dataStart: 0,
      dataEnd: Self.start,
      classCount: 2,
      scores: [(1, scores.flatMap { [1 - $0, $0] }), (3, scores.flatMap { [1 - $0, $0] })]
    )
    let log = try PredictionLog(path: ":memory:")
    try log.register(Self.version(reference: reference))
    for (i, p) in scores.enumerated() { log.submit(Self.record(i, p: p)) }
    try log.flush()
    let joiner = OutcomeJoiner(
      log: log,
      source: Oracle { labels[Int(($0 - Self.start) / Self.hour)] },
      clock: { Self.start + 1_000 * Self.hour }
    )
    #expect(try await joiner.joinOnce() == 400)
    let stats = try log.statistics(
      modelID: "btc",
      version: "v1",
      window: .seconds(365 * 86_400),
      since: nil
    )
    let h1 = try #require(stats.horizons.first)
    #expect(h1.horizon == 1 && h1.predictions == 200 && h1.matured == 200 && h1.pending == 0)
    let predictions = try Predictions(binary: scores, labels: labels)
    #expect(abs(try #require(h1.auc) - Metrics.rocAUC(predictions)) < 1e-12)
    #expect(abs(try #require(h1.logLoss) - Metrics.logLoss(predictions)) < 1e-12)
    #expect(abs(try #require(h1.brier) - Metrics.brier(predictions)) < 1e-12)
    #expect(abs(h1.realizedShares[1] - Double(labels.reduce(0, +)) / 200) < 1e-12)
    // The live scores are the OOF ones: no drift.
    #expect(try #require(h1.scorePSI) < 1e-9)
    // Inputs 0…199 and −199…0 against training values within 0…49: both drifted, b (all below
    // the lowest decile) the most.
    #expect(stats.inputDrift.map(\.column) == ["b", "a"])
    #expect(stats.inputDrift.allSatisfy { $0.psi > 1 })
    // `since` after every answer leaves nothing.
    #expect(
      try log.statistics(
        modelID: "btc",
        version: "v1",
        window: .seconds(365 * 86_400),
        since: Self.start + 10_000 * Self.hour
      ).horizons.isEmpty
    )
    #expect(throws: VaneError.self) {
      try log.statistics(modelID: "btc", version: "nope", window: .seconds(1), since: nil)
    }
  }

  @Test(
    "A flush across groups of rows and a remainder reads back every answer as written",
    arguments: [1, 15, 16, 17, 37]
  )
  func groupedInserts(count: Int) throws {
    let log = try PredictionLog(path: ":memory:")
    try log.register(Self.version())
    // Two horizons each: the answers' groups split differently from the predictions'.
    let records = (0 ..< count).map { Self.record($0, p: 0.5 + Double($0) / 100) }
    for record in records { log.submit(record) }
    #expect(try log.flush() == count)
    let answers = try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil)
    let expected = records.flatMap { record in
      record.outputs.map { (record.id, $0.horizon, $0.calibrated, record.features, record.barTime) }
    }
    #expect(answers.count == expected.count)
    for (answer, (id, horizon, calibrated, features, bar)) in zip(answers, expected) {
      #expect(answer.predictionID == id && answer.horizon == horizon && answer.barTime == bar)
      #expect(answer.calibrated == calibrated && answer.features == features)
    }
  }

  @Test("Pruning deletes answers older than the retention, and their horizons, in write order")
  func prune() throws {
    let log = try PredictionLog(path: ":memory:", retention: .seconds(3_600))
    try log.register(Self.version())
    #expect(try log.prune(now: Self.start + 10 * Self.hour) == 0)
    for i in 0 ..< 3 { log.submit(Self.record(i)) }
    try log.flush()
    // Cut-off one hour before `now`: only the first answer (at start + 1 ms) is older.
    #expect(try log.prune(now: Self.start + Self.hour + 2) == 1)
    #expect(try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil).count == 4)
    // Written after the kept ones though made earlier (finished on another thread): it waits
    // for a prune after theirs.
    var late = Self.record(3)
    late.answeredAt = Self.start
    log.submit(late)
    try log.flush()
    #expect(try log.prune(now: Self.start + 2 * Self.hour + 2) == 1)
    #expect(try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil).count == 4)
    // All older than the retention: all go, horizons too.
    #expect(try log.prune(now: Self.start + 10 * Self.hour) == 2)
    #expect(try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil).isEmpty)
  }

  @Test("A log written by the first schema opens with its answers intact and no answer-time index")
  func upgradesFirstSchema() throws {
    let path = Self.temporary()
    // The first schema as it shipped, and GRDB's record of having applied it.
    let queue = try DatabaseQueue(path: path)
    try queue.write { db in
      try db.execute(
        sql: """
          CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
          INSERT INTO grdb_migrations VALUES ('v1-predictions');
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
          INSERT INTO predictions VALUES ('p0', 'r0', 'btc', 'v1', 0, 'BTCUSDT', \(Self.start), 'h', x'', '', 250, \(Self.start + 1));
          INSERT INTO answers VALUES ('p0', 1, x'', x'', NULL, NULL, NULL);
          """
      )
    }
    try queue.close()
    let log = try PredictionLog(path: path)
    try log.register(Self.version())
    #expect(try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil).count == 1)
    let indexes = try DatabaseQueue(path: path).read { db in
      try String.fetchAll(
        db,
        sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name"
      )
    }
    #expect(indexes == ["answers_pending", "predictions_by_version"])
  }
}
