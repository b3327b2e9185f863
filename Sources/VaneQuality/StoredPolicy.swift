/// A policy as stored: its text exactly as given, and what it parses to.
public struct StoredPolicy: Sendable, Equatable {
  public enum Format: String, Sendable { case yaml, json }
  public var name: String
  public var text: String
  public var format: Format
  /// SHA-256 (hex) of the text.
  public var sha256: String
  public var isDefault: Bool
  public var updatedMs: Int64
  public var policy: QualityPolicy

  public init(
    name: String,
    text: String,
    format: Format,
    sha256: String,
    isDefault: Bool,
    updatedMs: Int64,
    policy: QualityPolicy
  ) {
    self.name = name
    self.text = text
    self.format = format
    self.sha256 = sha256
    self.isDefault = isDefault
    self.updatedMs = updatedMs
    self.policy = policy
  }
}
