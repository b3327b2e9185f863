public import GRPCCore
public import GRPCShimTransport
public import ServiceLifecycle
public import VaneCore

/// One long-lived client of another Vane service over the shim transport, shared by every call
/// a service makes to it: its connection is made once and kept, and it runs as a `Service` in
/// the caller's service group (``run()``), ending with it.
///
/// ``call(deadline:_:)`` gives each call a deadline and turns what the upstream answered into a
/// `VaneError` that names the upstream, so the caller's own edge maps it like any other error.
public final class UpstreamClient: Service, Sendable {
  /// "host:port" of the upstream.
  public let address: String
  /// What it is, for messages ("feature service").
  public let name: String
  /// The wrapped client, for generated service clients.
  public let client: GRPCClient<ShimClientTransport>

  /// - Throws: INVALID_ARGUMENT when `address` is not a target the transport accepts.
  public init(address: String, name: String, maxReceiveBytes: Int = 64 << 20) throws {
    self.address = address
    self.name = name
    let transport: ShimClientTransport
    do {
      // Neighbours restart (a deploy, a crash): reconnect within seconds, not grpc's two minutes.
      transport = try ShimClientTransport(
        config: .init(
          target: address,
          messageLimits: .init(maxReceiveBytes: maxReceiveBytes, maxSendBytes: 16 << 20),
          maxReconnectBackoff: .seconds(2)
        )
      )
    } catch {
      throw VaneError(.invalidArgument, "\(name) address '\(address)': \(error)", cause: error)
    }
    self.client = GRPCClient(transport: transport, interceptors: [RequestIDClientInterceptor()])
  }

  /// Keeps the connection until the service group shuts down.
  public func run() async throws {
    try await withGracefulShutdownHandler {
      try await self.client.runConnections()
    } onGracefulShutdown: {
      self.client.beginGracefulShutdown()
    }
  }

  /// Runs the calls `body` makes, each with `deadline` from its start (kept by grpc++, see
  /// ``ShimCallDeadline``); an `RPCError` from the upstream becomes a `VaneError` naming it (an
  /// unreachable or late upstream is UNAVAILABLE).
  public func call<R: Sendable>(
    deadline: Duration,
    _ body: (GRPCClient<ShimClientTransport>) async throws -> R
  ) async throws -> R {
    do {
      return try await ShimCallDeadline.withTimeout(deadline) { try await body(self.client) }
    } catch let error as RPCError {
      throw VaneError(upstream: error, "\(self.name) at \(self.address)")
    }
  }
}

extension VaneError {
  /// What an upstream service answered, as the caller's error: its code (a deadline or an
  /// unreachable upstream is UNAVAILABLE to the caller's own client) and message, prefixed
  /// with `upstream`.
  public init(upstream error: RPCError, _ upstream: String) {
    self.init(Self.code(upstream: error.code), "\(upstream): \(error.message)", cause: error)
  }

  /// The caller-side code of an upstream's status code.
  public static func code(upstream code: RPCError.Code) -> VaneError.Code {
    switch code {
    case .invalidArgument: .invalidArgument
    case .notFound: .notFound
    case .alreadyExists: .alreadyExists
    case .failedPrecondition, .outOfRange: .failedPrecondition
    case .unavailable, .deadlineExceeded: .unavailable
    case .unimplemented: .unimplemented
    case .permissionDenied: .permissionDenied
    case .unauthenticated: .unauthenticated
    case .resourceExhausted: .resourceExhausted
    case .aborted: .aborted
    case .cancelled: .cancelled
    default: .internalError
    }
  }
}
