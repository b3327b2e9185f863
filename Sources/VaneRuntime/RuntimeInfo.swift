public import VaneCore
public import GRPCShimTransport
public import Foundation
internal import VaneProto
internal import Synchronization

/// What a running service knows about itself, for GetServiceInfo: fixed at start, except the
/// listening address, which is known once the port is bound.
public final class RuntimeInfo: Sendable {
  public let kind: ServiceKind
  public let startTime: Date
  public let dataDirectory: String
  public let tls: Bool
  public let adminAuth: AdminAuthInterceptor.Mode
  public let messageLimits: ShimMessageLimits
  private let address: Mutex<String>
  /// Started when the service begins its graceful shutdown (see ``VaneServer``).
  public let drain = DrainSignal()
  /// GetServiceInfo's method list, built on first use.
  let capabilities = Mutex<(implemented: Set<String>, methods: [Vane_V1_MethodCapability])?>(nil)

  public init(
    kind: ServiceKind,
    configuredAddress: String,
    dataDirectory: String,
    tls: Bool,
    adminAuth: AdminAuthInterceptor.Mode,
    messageLimits: ShimMessageLimits = .defaults,
    startTime: Date = Date()
  ) {
    self.kind = kind
    self.messageLimits = messageLimits
    self.startTime = startTime
    // Absolute, as GetServiceInfo reports it.
    self.dataDirectory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
    self.tls = tls
    self.adminAuth = adminAuth
    self.address = Mutex(configuredAddress)
  }

  /// The address clients reach the service on (with the bound port once known).
  public var listenAddress: String { self.address.withLock { $0 } }

  func setListening(port: Int) {
    self.address.withLock { address in
      let host = address.split(separator: ":", omittingEmptySubsequences: false).dropLast().joined(
        separator: ":"
      )
      address = "\(host):\(port)"
    }
  }
}
