internal import GRPCCore
public import GRPCShimTransport
public import ServiceLifecycle
public import Logging
internal import VaneCore
internal import VaneProto
internal import VaneMath
internal import Foundation

/// One Vane service as a long-running `Service`: a `GRPCServer` over the shim transport with
/// health, reflection and admin authorisation, SERVING once it listens and NOT_SERVING from the
/// moment it starts draining.
public final class VaneServer: Service, Sendable {
  public let config: ServerConfig
  public let info: RuntimeInfo
  public let transport: ShimServerTransport
  private let server: GRPCServer<ShimServerTransport>
  private let logger: Logger

  /// - Parameter services: builds the service implementations from the runtime's description
  ///   of itself (GetServiceInfo reads it).
  public init(
    config: ServerConfig,
    logger: Logger,
    services: (RuntimeInfo) throws -> [RoutedService]
  ) throws {
    self.config = config
    self.logger = logger
    self.info = RuntimeInfo(
      kind: config.kind,
      configuredAddress: config.address,
      dataDirectory: config.dataDirectory,
      tls: config.tls != nil,
      adminAuth: config.adminAuth,
      messageLimits: config.messageLimits
    )
    let transport = ShimServerTransport(
      config: .init(
        address: config.address,
        tls: config.tls,
        messageLimits: config.messageLimits,
        keepalive: config.keepalive,
        health: true,
        reflectionFiles: try VaneDescriptors.serializedVaneFiles(),
        shutdownGracePeriod: config.shutdownGracePeriod
      )
    )
    self.transport = transport
    self.server = GRPCServer(
      transport: transport,
      routed: try services(self.info),
      // The request id first, so that an admin refusal is logged with it too.
      interceptorPipeline: [.apply(RequestIDServerInterceptor(), to: .all)]
        // Before admin authorisation, so that refused calls are counted with their status.
        + (config.recordsMetrics ? [.apply(ServerMetricsInterceptor(), to: .all)] : [])
        + AdminAuthInterceptor.pipeline(mode: config.adminAuth)
    )
  }

  /// Runs until the server has drained after a graceful shutdown (SIGTERM/SIGINT under a
  /// `ServiceGroup`), or throws if it cannot start.
  public func run() async throws {
    try FileManager.default.createDirectory(
      atPath: self.config.dataDirectory,
      withIntermediateDirectories: true
    )
    switch self.config.adminAuth {
    case .token:
      self.logger.info("admin methods require a bearer token")
    case .loopbackOnly:
      self.logger.warning(
        "no admin token (--admin-token-file): admin methods are open to loopback callers only",
        metadata: [
          "admin-methods": "\(AdminMethods.names(of: self.config.kind).joined(separator: ","))"
        ]
      )
    }

    // Health is set before the server starts, so it is SERVING from the moment grpc++ listens
    // and a drain that starts early can never be overwritten by it.
    try self.transport.setServing(true, service: "")
    try self.transport.setServing(true, service: self.config.kind.grpcServiceName)
    try await withGracefulShutdownHandler {
      try await withThrowingDiscardingTaskGroup { group in
        group.addTask { try await self.server.serve() }
        let port = try await self.transport.listeningPort
        self.info.setListening(port: port)
        self.logger.info(
          "serving",
          metadata: [
            "service": "\(self.config.kind.grpcServiceName)",
            "address": "\(self.info.listenAddress)",
            "data-dir": "\(self.config.dataDirectory)",
            "tls": "\(self.config.tls != nil)",
            "blas": "\(BLAS.coreName)",
          ]
        )
      }
    } onGracefulShutdown: {
      // The transport turns health NOT_SERVING and refuses new calls while in-flight ones finish.
      self.logger.info("draining", metadata: ["grace": "\(self.config.shutdownGracePeriod)"])
      // Streams that never end on their own end now (see DrainSignal).
      self.info.drain.start()
      self.server.beginGracefulShutdown()
      // Also straight to the transport: a signal that lands before the server started serving
      // must still end the wait for the listening port.
      self.transport.beginGracefulShutdown()
    }
    self.logger.info("stopped")
  }
}
