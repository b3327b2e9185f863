/// Binary formats that arrive where a text file (CSV, YAML) is expected, recognised by their
/// magic bytes so that the reader refuses them by name instead of pasting their header into a
/// message. Apache Arrow files are how many users keep candles; Vane reads CSV.
public enum BinaryFileKind: String, Sendable, CaseIterable {
  case parquet = "an Apache Parquet file"
  case arrow = "an Apache Arrow IPC (Feather v2) file"
  case feather = "a Feather v1 file"
  case arrowStream = "an Apache Arrow IPC stream"
  case zip = "a ZIP archive (an .xlsx workbook is one)"
  case binary = "a binary file (it holds NUL bytes)"

  /// The kind of a file whose first bytes are `head` (up to a few KiB); nil for text.
  public static func detect(_ head: some Collection<UInt8>) -> BinaryFileKind? {
    let start = Array(head.prefix(8))
    func starts(_ magic: String) -> Bool { start.starts(with: Array(magic.utf8)) }
    if starts("PAR1") { return .parquet }
    if starts("ARROW1") { return .arrow }
    if starts("FEA1") { return .feather }
    if start.count >= 4, start[0 ..< 4].allSatisfy({ $0 == 0xFF }) { return .arrowStream }
    if start.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .zip }
    if head.prefix(4096).contains(0) { return .binary }
    return nil
  }

  /// Throws INVALID_ARGUMENT naming `name` and the format when `head` is not text: what is
  /// expected, and how to convert.
  public static func check(_ head: some Collection<UInt8>, name: String, expected: String) throws {
    guard let kind = Self.detect(head) else { return }
    let conversion =
      switch kind {
      case .parquet: " (pandas: pd.read_parquet(path).to_csv(out, index=False))"
      case .arrow, .feather: " (pandas: pd.read_feather(path).to_csv(out, index=False))"
      case .arrowStream, .zip, .binary: ""
      }
    throw VaneError(
      .invalidArgument,
      "\(name): is \(kind.rawValue), not supported: Vane reads \(expected); convert it first\(conversion)"
    )
  }
}
