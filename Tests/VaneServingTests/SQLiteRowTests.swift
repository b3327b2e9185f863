import Foundation
import GRDB
import Testing
import VaneCore
import VaneStore

/// Values bound straight through SQLite's C API read back through GRDB as written; a missing
/// value or a failing statement throws and the enclosing write stores nothing.
@Suite("SQLite rows bound without GRDB's arguments")
struct SQLiteRowTests {
  static func store() throws -> SQLiteStore {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1") { db in
      try db.execute(
        sql: "CREATE TABLE t (k TEXT PRIMARY KEY, s TEXT, i INTEGER, b INTEGER NOT NULL, d BLOB)"
      )
    }
    return try SQLiteStore(name: "test store", path: ":memory:", migrator: migrator)
  }

  static let insert = "INSERT INTO t (k, s, i, b, d) VALUES (?, ?, ?, ?, ?)"

  struct Case: Sendable, CustomTestStringConvertible {
    var text: String?
    var integer: Int64?
    var flag: Bool
    var doubles: [Double]
    var testDescription: String {
      "\(self.text.map { $0.debugDescription } ?? "nil"), \(self.doubles.count) doubles"
    }
  }

  @Test(
    "Write then read is the identity",
    arguments: [
      Case(text: "BTCUSDT", integer: 1_700_000_000_000, flag: true, doubles: [0.25, -1.5, 3]),
      Case(text: nil, integer: nil, flag: false, doubles: []),
      Case(text: "", integer: Int64.min, flag: true, doubles: [.infinity, -.infinity, -0.0]),
      // Multi-byte UTF-8 and an embedded NUL: the length is passed, not found by strlen.
      Case(
        text: "é→\u{0}✓",
        integer: Int64.max,
        flag: false,
        doubles: [.nan, .leastNonzeroMagnitude]
      ),
    ]
  )
  func roundTrip(_ value: Case) throws {
    let store = try Self.store()
    try store.write("inserting") { db in
      let statement = try db.cachedStatement(sql: Self.insert)
      try SQLiteStore.execute(statement) { row in
        row.bind("key")
        row.bind(value.text)
        row.bind(value.integer)
        row.bind(value.flag)
        row.bind(littleEndianDoubles: value.doubles)
      }
    }
    let row = try #require(
      try store.read("reading") {
        try Row.fetchOne(
          $0,
          sql: "SELECT t.*, CASE WHEN s IS NULL THEN NULL ELSE hex(s) END AS x FROM t"
        )
      }
    )
    // Compared as bytes: a String read back would stop at an embedded NUL.
    #expect(
      row["x"] as String? == value.text.map { $0.utf8.map { String(format: "%02X", $0) }.joined() }
    )
    #expect(row["i"] as Int64? == value.integer)
    #expect(row["b"] as Int64 == (value.flag ? 1 : 0))
    let blob = try #require(row["d"] as Data?, "an empty BLOB, not NULL")
    #expect(blob.count == value.doubles.count * 8)
    #expect(Self.doubles(blob).map(\.bitPattern) == value.doubles.map(\.bitPattern))
  }

  /// A BLOB's little-endian doubles, read byte by byte.
  static func doubles(_ blob: Data) -> [Double] {
    stride(from: 0, to: blob.count, by: 8).map { offset in
      Double(
        bitPattern: (0 ..< 8).reduce(UInt64(0)) { bits, i in
          bits | UInt64(blob[blob.startIndex + offset + i]) << (8 * i)
        }
      )
    }
  }

  @Test(
    "Rows of a batch share one scratch: each reads back as written, a value larger than the scratch too; GRDB's arguments reuse the statement afterwards"
  )
  func sharedScratch() throws {
    let store = try Self.store()
    var random = SeededRandom(seed: 7)
    let rows = (0 ..< 200).map { i in
      Case(
        text: i % 7 == 0 ? nil : String(repeating: "é", count: Int(random.next() % 40)),
        integer: Int64(bitPattern: random.next()),
        flag: i % 2 == 0,
        // Every 50th row far larger than the scratch's first capacity: it grows mid-row.
        doubles: (0 ..< (i % 50 == 0 ? 2_000 : Int(random.next() % 9))).map { _ in
          Double(bitPattern: random.next())
        }
      )
    }
    try store.write("inserting") { db in
      let statement = try db.cachedStatement(sql: Self.insert)
      var scratch: [UInt8] = []
      for (i, value) in rows.enumerated() {
        try SQLiteStore.execute(statement, scratch: &scratch) { row in
          row.bind("k\(i)")
          row.bind(value.text)
          row.bind(value.integer)
          row.bind(value.flag)
          row.bind(littleEndianDoubles: value.doubles)
        }
      }
      // The same cached statement through GRDB: nothing of the last row's values is left bound.
      try statement.execute(arguments: ["grdb", nil, 5, true, nil])
    }
    let read = try store.read("reading") {
      try Row.fetchAll($0, sql: "SELECT k, s, i, b, d FROM t ORDER BY rowid")
    }
    #expect(read.count == rows.count + 1)
    for (i, value) in rows.enumerated() {
      let row = read[i]
      #expect(row["k"] as String == "k\(i)")
      #expect(row["s"] as String? == value.text)
      #expect(row["i"] as Int64? == value.integer)
      #expect(row["b"] as Int64 == (value.flag ? 1 : 0))
      let blob = try #require(row["d"] as Data?, "row \(i): an empty BLOB, not NULL")
      #expect(Self.doubles(blob).map(\.bitPattern) == value.doubles.map(\.bitPattern))
    }
    let last = read[rows.count]
    #expect(
      last["k"] as String == "grdb" && last["s"] as String? == nil && last["d"] as Data? == nil
    )
  }

  @Test("A parameter left unbound throws naming the counts; the write stores nothing")
  func missingValue() throws {
    let store = try Self.store()
    let error = #expect(throws: VaneError.self) {
      try store.write("inserting") { db in
        let statement = try db.cachedStatement(sql: Self.insert)
        try SQLiteStore.execute(statement) { row in
          row.bind("a")
          row.bind("s")
          row.bind(Int64(1))
          row.bind(true)
          row.bind(littleEndianDoubles: [1])
        }
        try SQLiteStore.execute(statement) { row in
          row.bind("b")
          row.bind("s")
        }
      }
    }
    #expect(error?.code == .internalError)
    #expect(error?.message.contains("2 values bound for 5 parameters") == true)
    #expect(try store.read("counting") { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM t") } == 0)
  }

  @Test("A failing statement throws SQLite's reason; the statement runs again afterwards")
  func constraint() throws {
    let store = try Self.store()
    func insert(_ key: String) throws {
      try store.write("inserting") { db in
        let statement = try db.cachedStatement(sql: Self.insert)
        try SQLiteStore.execute(statement) { row in
          row.bind(key)
          row.bind(nil as String?)
          row.bind(nil as Int64?)
          row.bind(false)
          row.bind(littleEndianDoubles: [])
        }
      }
    }
    try insert("a")
    let error = #expect(throws: VaneError.self) { try insert("a") }
    #expect(error?.code == .unavailable)
    #expect(error?.message.contains("UNIQUE constraint failed: t.k") == true)
    try insert("b")
    #expect(try store.read("counting") { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM t") } == 2)
  }
}
