/// A loaded version's identity as a dictionary key: its model id and version.
///
/// Hashes the two strings as they are; a key made by joining them cost a string build on every
/// request that counts or logs an answer.
public struct VersionKey: Hashable, Sendable {
  public var modelID: String
  public var version: String

  public init(_ modelID: String, _ version: String) {
    self.modelID = modelID
    self.version = version
  }
}
