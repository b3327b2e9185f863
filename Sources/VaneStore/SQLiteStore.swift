public import GRDB
internal import Foundation
internal import VaneCore

/// The one way Vane opens its SQLite files: the directory made, the file opened, the schema
/// migrated, and every failure an UNAVAILABLE `VaneError` naming the store.
///
/// Each store (candles, trainer jobs, gatekeeper reports, the prediction log) keeps its own
/// schema; this owns the connection and the error mapping they share.
public struct SQLiteStore: Sendable {
  /// What the store is, for messages ("candle store").
  public let name: String
  /// The file (":memory:" for a private in-memory database).
  public let path: String
  public let database: DatabaseQueue

  /// Opens (creating if needed) the database at `path` and applies `migrator`.
  /// - Parameter writeAheadLog: journal in WAL mode (readers never wait for the writer, and a
  ///   crash loses at most the transaction being written).
  /// - Throws: UNAVAILABLE naming the store and the path.
  public init(
    name: String,
    path: String,
    migrator: DatabaseMigrator,
    writeAheadLog: Bool = false
  ) throws {
    self.name = name
    self.path = path
    do {
      if path == ":memory:" {
        self.database = try DatabaseQueue()
      } else {
        try FileManager.default.createDirectory(
          at: URL(fileURLWithPath: path).deletingLastPathComponent(),
          withIntermediateDirectories: true
        )
        var configuration = Configuration()
        if writeAheadLog {
          configuration.prepareDatabase { db in
            // NORMAL is durable in WAL mode up to the last checkpointed transaction.
            try db.execute(sql: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
          }
        }
        self.database = try DatabaseQueue(path: path, configuration: configuration)
      }
      try migrator.migrate(self.database)
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(.unavailable, "\(name) \(path): cannot open", cause: error)
    }
  }

  /// Reads in one transaction; a database failure is UNAVAILABLE saying what failed.
  public func read<T>(_ what: String, _ work: (Database) throws -> T) throws -> T {
    do {
      return try self.database.read(work)
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(.unavailable, "\(self.name): \(what) failed", cause: error)
    }
  }

  /// Writes in one transaction: all of `work` is stored or none of it.
  public func write<T>(_ what: String, _ work: (Database) throws -> T) throws -> T {
    do {
      return try self.database.write(work)
    } catch let error as VaneError {
      throw error
    } catch {
      throw VaneError(.unavailable, "\(self.name): \(what) failed", cause: error)
    }
  }
}
