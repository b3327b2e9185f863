public import Foundation

/// The real candle files of `../shared/data/market` (see its SOURCES.md).
public enum MarketData {
  /// `$VANE_MARKET_DATA`, else `shared/data/market` beside the checkout.
  public static let directory: URL = {
    if let path = ProcessInfo.processInfo.environment["VANE_MARKET_DATA"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    return URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("shared/data/market")
  }()

  public static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

  /// 2025-01-01 00:00 UTC: everything in the directory stops before it.
  public static let end: Int64 = 1_735_689_600_000

  public static var available: Bool { FileManager.default.fileExists(atPath: directory.path) }
}
