internal import Foundation

/// The id of the request a piece of work belongs to: it travels in `x-request-id` metadata from
/// `vane` through every service call that request causes, into each log line (see
/// ``VaneLogging``) and the prediction log.
public enum RequestID {
  /// The metadata key that carries it.
  public static let metadataKey = "x-request-id"
  /// Longest id accepted from a caller; a longer or non-printable one is replaced.
  public static let maximumLength = 128

  /// The current task's request id, if it serves one.
  @TaskLocal public static var current: String?

  /// A new id.
  public static func make() -> String { UUID().uuidString.lowercased() }

  /// `text` when it is a usable id (1–128 printable ASCII characters), else nil.
  public static func validated(_ text: String?) -> String? {
    guard let text, !text.isEmpty, text.utf8.count <= Self.maximumLength,
      text.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E })
    else { return nil }
    return text
  }
}
