public import GRDB
internal import GRDBSQLite
internal import VaneCore

/// The values of one execution of a prepared statement, bound in order straight through
/// SQLite's C API.
///
/// GRDB's `StatementArguments` box each value in a `DatabaseValue` array and check it against
/// the statement at every execution: some 5,000 instructions a row, more than SQLite's own
/// insert into a small table. A log that writes a row per answered request binds through this
/// instead (`SQLiteStore.execute(_:_:)`); everything else keeps GRDB's arguments.
public struct SQLiteRow: ~Copyable {
  fileprivate let handle: OpaquePointer
  fileprivate var index: Int32 = 0
  /// The first failing bind's result code (SQLITE_OK while none failed).
  fileprivate var failure: Int32 = SQLITE_OK

  fileprivate init(handle: OpaquePointer) {
    self.handle = handle
  }

  private mutating func next(_ bind: (OpaquePointer, Int32) -> Int32) {
    self.index += 1
    let code = bind(self.handle, self.index)
    if code != SQLITE_OK, self.failure == SQLITE_OK { self.failure = code }
  }

  /// Binds TEXT (NULL for nil).
  public mutating func bind(_ value: String?) {
    guard var value else { return self.next { sqlite3_bind_null($0, $1) } }
    value.withUTF8 { text in
      self.next { handle, index in
        // SQLite copies the bytes (SQLITE_TRANSIENT): they need not outlive this call.
        sqlite3_bind_text(handle, index, text.baseAddress, Int32(text.count), Self.transient)
      }
    }
  }

  /// Binds INTEGER (NULL for nil).
  public mutating func bind(_ value: Int64?) {
    guard let value else { return self.next { sqlite3_bind_null($0, $1) } }
    self.next { sqlite3_bind_int64($0, $1, value) }
  }

  /// Binds INTEGER (NULL for nil).
  public mutating func bind(_ value: Int?) {
    self.bind(value.map { Int64($0) })
  }

  /// Binds INTEGER 1 or 0.
  public mutating func bind(_ value: Bool) {
    self.bind(Int64(value ? 1 : 0))
  }

  /// Binds a BLOB of the values as little-endian IEEE 754 doubles, 8 bytes each.
  public mutating func bind(littleEndianDoubles values: [Double]) {
    #if _endian(little)
    // The memory layout is the format.
    values.withUnsafeBytes { self.bind(bytes: $0) }
    #else
    values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { self.bind(bytes: $0) }
    #endif
  }

  private mutating func bind(bytes: UnsafeRawBufferPointer) {
    self.next { handle, index in
      sqlite3_bind_blob64(
        handle,
        index,
        bytes.baseAddress,
        sqlite3_uint64(bytes.count),
        Self.transient
      )
    }
  }

  /// SQLite's "copy the value now" destructor, -1 in its C header.
  private static var transient: sqlite3_destructor_type {
    unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)
  }
}

extension SQLiteStore {
  /// Runs a prepared statement that returns no rows once, with the values `bind` binds in order.
  ///
  /// For statements run thousands of times a second (a `Database.cachedStatement` inside
  /// `write`): no argument array is built. Every parameter must be bound, in order.
  /// - Throws: UNAVAILABLE with SQLite's message when a value cannot be bound or the statement
  ///   fails (a constraint, a full disk); the enclosing `write` then rolls back.
  public static func execute(
    _ statement: Statement,
    _ bind: (inout SQLiteRow) -> Void
  ) throws {
    let handle = statement.sqliteStatement
    sqlite3_reset(handle)
    var row = SQLiteRow(handle: handle)
    bind(&row)
    let expected = sqlite3_bind_parameter_count(handle)
    guard row.index == expected else {
      throw VaneError(
        .internalError,
        "\(statement.sql): \(row.index) values bound for \(expected) parameters"
      )
    }
    guard row.failure == SQLITE_OK else {
      throw Self.failure(handle, code: row.failure, doing: "binding", statement.sql)
    }
    let code = sqlite3_step(handle)
    // The message first: it belongs to the step. Then reset at once: a statement left
    // stepping holds its read of the database open.
    let error =
      code == SQLITE_DONE ? nil : Self.failure(handle, code: code, doing: "running", statement.sql)
    sqlite3_reset(handle)
    if let error { throw error }
  }

  private static func failure(
    _ handle: OpaquePointer,
    code: Int32,
    doing what: String,
    _ sql: String
  ) -> VaneError {
    let message = sqlite3_errmsg(sqlite3_db_handle(handle)).map { String(cString: $0) } ?? ""
    return VaneError(
      .unavailable,
      "\(what) \(sql): SQLite error \(code): \(message.isEmpty ? String(cString: sqlite3_errstr(code)) : message)"
    )
  }
}
