public import GRPCShimTransport
public import VaneCore

/// Everything `vane serve` needs to run one service, resolved from flags, then `VANE_*`
/// environment variables, then defaults.
public struct ServerConfig: Sendable {
  public var kind: ServiceKind
  /// "host:port" to listen on; port 0 picks a free one.
  public var address: String
  /// Where the service keeps its SQLite file and artifacts; created if missing.
  public var dataDirectory: String
  public var tls: ShimServerTLS?
  /// How admin methods are authorised.
  public var adminAuth: AdminAuthInterceptor.Mode
  public var messageLimits: ShimMessageLimits
  /// HTTP/2 keepalive pings to idle clients (grpc++'s defaults when nil fields).
  public var keepalive: ShimKeepalive
  /// How long in-flight calls may run after SIGTERM/SIGINT before they are cancelled.
  public var shutdownGracePeriod: Duration
  /// Whether calls are counted and timed per method (`--metrics-address` given); off, the
  /// interceptor is not installed at all.
  public var recordsMetrics: Bool

  public init(
    kind: ServiceKind,
    address: String,
    dataDirectory: String,
    tls: ShimServerTLS? = nil,
    adminAuth: AdminAuthInterceptor.Mode = .loopbackOnly,
    messageLimits: ShimMessageLimits = ShimMessageLimits(
      maxReceiveBytes: 64 << 20,
      maxSendBytes: 64 << 20
    ),
    keepalive: ShimKeepalive = .defaults,
    shutdownGracePeriod: Duration = .seconds(10),
    recordsMetrics: Bool = false
  ) {
    self.recordsMetrics = recordsMetrics
    self.keepalive = keepalive
    self.kind = kind
    self.address = address
    self.dataDirectory = dataDirectory
    self.tls = tls
    self.adminAuth = adminAuth
    self.messageLimits = messageLimits
    self.shutdownGracePeriod = shutdownGracePeriod
  }
}

/// One setting's value: the flag if given, else the environment variable, else the default.
public func resolveSetting(
  flag: String?,
  environment name: String,
  in environment: [String: String],
  default value: String
) -> String {
  if let flag, !flag.isEmpty { return flag }
  if let fromEnvironment = environment[name], !fromEnvironment.isEmpty { return fromEnvironment }
  return value
}
