/// Limits that apply to every message on a connection.
public struct ShimMessageLimits: Sendable, Hashable {
  /// Largest message accepted; nil keeps gRPC's default (4 MiB).
  public var maxReceiveBytes: Int?
  /// Largest message sent; nil keeps gRPC's default (unlimited).
  public var maxSendBytes: Int?

  public init(maxReceiveBytes: Int? = nil, maxSendBytes: Int? = nil) {
    self.maxReceiveBytes = maxReceiveBytes
    self.maxSendBytes = maxSendBytes
  }

  /// gRPC's defaults.
  public static let defaults = ShimMessageLimits()

  static func cValue(_ value: Int?) -> Int32 {
    guard let value else { return 0 }
    return value >= Int(Int32.max) ? -1 : Int32(max(value, 1))
  }
}

/// HTTP/2 keepalive pings.
public struct ShimKeepalive: Sendable, Hashable {
  /// Interval between pings on an idle connection.
  public var time: Duration?
  /// How long to wait for a ping's acknowledgement before closing the connection.
  public var timeout: Duration?
  /// Whether pings are sent (client) or allowed (server) while no call is open.
  public var permitWithoutCalls: Bool
  /// Server only: the shortest interval between client pings that is tolerated.
  public var minimumPingInterval: Duration?

  public init(
    time: Duration? = nil,
    timeout: Duration? = nil,
    permitWithoutCalls: Bool = false,
    minimumPingInterval: Duration? = nil
  ) {
    self.time = time
    self.timeout = timeout
    self.permitWithoutCalls = permitWithoutCalls
    self.minimumPingInterval = minimumPingInterval
  }

  public static let defaults = ShimKeepalive()

  static func milliseconds(_ duration: Duration?) -> Int32 {
    guard let duration else { return 0 }
    let ms = GRPCTimeout.nanoseconds(duration) / 1_000_000
    return Int32(clamping: max(ms, 1))
  }
}

/// A server's TLS identity, in PEM.
public struct ShimServerTLS: Sendable, Hashable {
  public var certificateChainPEM: String
  public var privateKeyPEM: String
  /// When set, clients must present a certificate signed by one of these roots (mutual TLS).
  public var clientCARootsPEM: String?

  public init(certificateChainPEM: String, privateKeyPEM: String, clientCARootsPEM: String? = nil) {
    self.certificateChainPEM = certificateChainPEM
    self.privateKeyPEM = privateKeyPEM
    self.clientCARootsPEM = clientCARootsPEM
  }
}

/// A client's TLS settings, in PEM.
public struct ShimClientTLS: Sendable, Hashable {
  /// Roots that sign the server's certificate; nil uses the system's roots.
  public var caRootsPEM: String?
  /// A client certificate chain and key, for mutual TLS.
  public var certificateChainPEM: String?
  public var privateKeyPEM: String?
  /// Checks the server's certificate against this name instead of the target's host.
  public var serverNameOverride: String?

  public init(
    caRootsPEM: String? = nil,
    certificateChainPEM: String? = nil,
    privateKeyPEM: String? = nil,
    serverNameOverride: String? = nil
  ) {
    self.caRootsPEM = caRootsPEM
    self.certificateChainPEM = certificateChainPEM
    self.privateKeyPEM = privateKeyPEM
    self.serverNameOverride = serverNameOverride
  }
}

/// Calls `body` with C strings for up to four optional Swift strings.
func withOptionalCStrings<R>(
  _ a: String?,
  _ b: String?,
  _ c: String?,
  _ d: String?,
  _ body: (
    UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?
  ) throws -> R
) rethrows -> R {
  func with(_ s: String?, _ f: (UnsafePointer<CChar>?) throws -> R) rethrows -> R {
    guard let s else { return try f(nil) }
    return try s.withCString { try f($0) }
  }
  return try with(a) { pa in
    try with(b) { pb in try with(c) { pc in try with(d) { pd in try body(pa, pb, pc, pd) } } }
  }
}
