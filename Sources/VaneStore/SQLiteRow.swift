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
  /// The text and blob values, each after a ``Staged`` header, bound in place once all are in
  /// (``SQLiteStore/execute(_:scratch:_:)``). Binding each as SQLite's own copy
  /// (SQLITE_TRANSIENT) freed the previous value and allocated anew in every bind: some 700
  /// instructions a value, 6,000 of the prediction log's 50,000 a row.
  fileprivate var staged: [UInt8]

  /// A staged value's header: its parameter, whether it is text, and its length in bytes.
  fileprivate struct Staged {
    var parameter: Int32
    var text: Int32
    var count: Int
  }

  fileprivate init(handle: OpaquePointer, staged: consuming [UInt8]) {
    self.handle = handle
    self.staged = staged
  }

  private mutating func next(_ bind: (OpaquePointer, Int32) -> Int32) {
    self.index += 1
    let code = bind(self.handle, self.index)
    if code != SQLITE_OK, self.failure == SQLITE_OK { self.failure = code }
  }

  private mutating func stage(_ bytes: UnsafeRawBufferPointer, text: Bool) {
    self.index += 1
    let header = Staged(parameter: self.index, text: text ? 1 : 0, count: bytes.count)
    withUnsafeBytes(of: header) { self.staged.append(contentsOf: $0) }
    self.staged.append(contentsOf: bytes)
  }

  /// Binds TEXT (NULL for nil).
  public mutating func bind(_ value: String?) {
    guard var value else { return self.next { sqlite3_bind_null($0, $1) } }
    value.withUTF8 { self.stage(UnsafeRawBufferPointer($0), text: true) }
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

  /// Binds a BLOB of the values as little-endian IEEE 754 doubles, 8 bytes each (an empty
  /// BLOB for none).
  public mutating func bind(littleEndianDoubles values: [Double]) {
    #if _endian(little)
    // The memory layout is the format.
    values.withUnsafeBytes { self.stage($0, text: false) }
    #else
    values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { self.stage($0, text: false) }
    #endif
  }

  /// Binds the staged values where they lie (SQLITE_STATIC): `staged` must stay put until the
  /// statement is reset and its bindings cleared.
  fileprivate mutating func bindStaged(_ staged: UnsafeRawBufferPointer) {
    let headerSize = MemoryLayout<Staged>.size
    var offset = 0
    while offset < staged.count {
      let header = staged.loadUnaligned(fromByteOffset: offset, as: Staged.self)
      // Never nil: the header lies before the bytes.
      let bytes = staged.baseAddress! + offset + headerSize
      let code =
        header.text == 1
        ? sqlite3_bind_text(self.handle, header.parameter, bytes, Int32(header.count), nil)
        : sqlite3_bind_blob64(
          self.handle,
          header.parameter,
          bytes,
          sqlite3_uint64(header.count),
          nil
        )
      if code != SQLITE_OK, self.failure == SQLITE_OK { self.failure = code }
      offset += headerSize + header.count
    }
  }
}

extension SQLiteStore {
  /// Runs a prepared statement that returns no rows once, with the values `bind` binds in order.
  ///
  /// For statements run thousands of times a second (a `Database.cachedStatement` inside
  /// `write`): no argument array is built, and text and blobs are bound where `scratch` holds
  /// them rather than copied by SQLite (pass the same scratch to every row of a batch and it
  /// allocates once). Every parameter must be bound, in order.
  /// - Throws: UNAVAILABLE with SQLite's message when a value cannot be bound or the statement
  ///   fails (a constraint, a full disk); the enclosing `write` then rolls back.
  public static func execute(
    _ statement: Statement,
    scratch: inout [UInt8],
    _ bind: (inout SQLiteRow) -> Void
  ) throws {
    let handle = statement.sqliteStatement
    sqlite3_reset(handle)
    // Taken, not copied: the row appends to the scratch's own buffer.
    var taken: [UInt8] = []
    swap(&taken, &scratch)
    // Emptied while it is the only reference, so that it keeps its buffer.
    taken.removeAll(keepingCapacity: true)
    var row = SQLiteRow(handle: handle, staged: consume taken)
    bind(&row)
    defer { scratch = row.staged }
    let expected = sqlite3_bind_parameter_count(handle)
    guard row.index == expected else {
      throw VaneError(
        .internalError,
        "\(statement.sql): \(row.index) values bound for \(expected) parameters"
      )
    }
    // Read through a copy of the reference (the row is mutated below); released before the
    // scratch gets the buffer back.
    let staged = row.staged
    try staged.withUnsafeBytes { staged in
      row.bindStaged(staged)
      // The bindings point into `staged`: cleared before it may move or go.
      defer { sqlite3_clear_bindings(handle) }
      guard row.failure == SQLITE_OK else {
        throw Self.failure(handle, code: row.failure, doing: "binding", statement.sql)
      }
      let code = sqlite3_step(handle)
      // The message first: it belongs to the step. Then reset at once: a statement left
      // stepping holds its read of the database open.
      let error =
        code == SQLITE_DONE
        ? nil : Self.failure(handle, code: code, doing: "running", statement.sql)
      sqlite3_reset(handle)
      if let error { throw error }
    }
  }

  /// ``execute(_:scratch:_:)`` with a scratch of its own.
  public static func execute(_ statement: Statement, _ bind: (inout SQLiteRow) -> Void) throws {
    var scratch: [UInt8] = []
    try Self.execute(statement, scratch: &scratch, bind)
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
