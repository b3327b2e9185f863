public import Logging
public import ServiceLifecycle
internal import VaneCore

/// The HTTP endpoint Prometheus scrapes: `GET /metrics` answers the text exposition of
/// ``VaneMetrics``, after `refresh` has brought the figures read at scrape time up to date.
/// It listens from `init` (so a bad or busy address fails before the service starts) until
/// the service group shuts down.
public final class MetricsEndpoint: Service, Sendable {
  /// host:port it was asked for.
  public let address: String
  /// The port it listens on (the one picked for port 0).
  public var port: Int { self.daemon.port }
  private let daemon: HTTPDaemon
  private let logger: Logger

  /// - Parameters:
  ///   - address: "host:port" (a numeric IPv4 address, `[IPv6]`, or `localhost`; port 0 picks one).
  ///   - refresh: run before each scrape, on the endpoint's thread.
  /// - Throws: ``VaneError`` (`.invalidArgument`) naming the address and the reason.
  public init(address: String, logger: Logger, refresh: @escaping @Sendable () -> Void = {}) throws
  {
    let (host, port) = try Self.parse(address)
    VaneMetrics.bootstrap()
    self.address = address
    self.logger = logger
    do {
      self.daemon = try Self.listen(host: host, port: port, refresh: refresh)
    } catch let error as VaneError {
      throw VaneError(.invalidArgument, "--metrics-address: \(error.message)", cause: error)
    }
  }

  private static func listen(
    host: String,
    port: Int,
    refresh: @escaping @Sendable () -> Void
  ) throws -> HTTPDaemon {
    try HTTPDaemon(host: host, port: port) { path in
      let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
      guard route == "/metrics" else {
        return .init(
          status: 404,
          body: Array("not found: metrics are at /metrics\n".utf8),
          contentType: PrometheusText.plainText
        )
      }
      refresh()
      return .init(
        status: 200,
        body: VaneMetrics.exposition(),
        contentType: PrometheusText.contentType
      )
    }
  }

  public func run() async throws {
    self.logger.info(
      "metrics",
      metadata: [
        "metrics-address": "\(Self.host(of: self.address)):\(self.port)", "path": "/metrics",
      ]
    )
    // Scrapes keep working while the server drains; the socket closes when the group is done.
    try? await gracefulShutdown()
    self.daemon.stop()
  }

  /// Stops listening now (also done when the service group shuts down).
  public func stop() { self.daemon.stop() }

  /// Splits "host:port"; the host must be numeric (or `localhost`), the port 0–65535.
  static func parse(_ address: String) throws -> (host: String, port: Int) {
    guard let colon = address.lastIndex(of: ":") else {
      throw VaneError(.invalidArgument, "--metrics-address: '\(address)' is not host:port")
    }
    var host = String(address[..<colon])
    let portText = address[address.index(after: colon)...]
    guard let port = Int(portText), (0 ... 65_535).contains(port) else {
      throw VaneError(
        .invalidArgument,
        "--metrics-address: '\(portText)' in '\(address)' is not a port (0-65535)"
      )
    }
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    if host == "localhost" || host.isEmpty { host = host.isEmpty ? "0.0.0.0" : "127.0.0.1" }
    return (host, port)
  }

  private static func host(of address: String) -> String {
    address.lastIndex(of: ":").map { String(address[..<$0]) } ?? address
  }
}
