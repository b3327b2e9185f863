/// Input quoted in error messages: at most `limit` characters, so a hostile 50 MB field is
/// never echoed whole (to a terminal, a log or an RPC status).
public enum MessageText {
  public static let limit = 40

  /// `'value'`, or `'first 40 characters…' (N bytes)` for a longer one.
  public static func quote<S: StringProtocol>(_ text: S, limit: Int = Self.limit) -> String {
    guard text.count > limit else { return "'\(text)'" }
    return "'\(text.prefix(limit))…' (\(text.utf8.count) bytes)"
  }

  /// The same for raw bytes (decoded as UTF-8, invalid sequences replaced).
  public static func quote(bytes: ArraySlice<UInt8>, limit: Int = Self.limit) -> String {
    guard bytes.count > limit * 4 else {
      return Self.quote(String(decoding: bytes, as: UTF8.self), limit: limit)
    }
    return
      "'\(String(decoding: bytes.prefix(limit * 4), as: UTF8.self).prefix(limit))…' (\(bytes.count) bytes)"
  }
}
