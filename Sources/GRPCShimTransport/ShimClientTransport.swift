public import GRPCCore
internal import CGRPCShim
internal import Synchronization
internal import Foundation

/// A `GRPCCore.ClientTransport` over a grpc++ channel (through the C shim).
///
/// grpc++ connects, reconnects and load-balances by itself; this transport opens one
/// bidirectional stream per RPC on that channel.
public final class ShimClientTransport: ClientTransport, Sendable {
  public typealias Bytes = [UInt8]

  /// Where and how to connect.
  public struct Config: Sendable {
    /// A gRPC target: "host:port", "dns:///host:port", "unix:/path".
    public var target: String
    /// nil connects in plaintext.
    public var tls: ShimClientTLS?
    public var messageLimits: ShimMessageLimits
    public var keepalive: ShimKeepalive
    /// Wait for the channel to be ready instead of failing fast, unless a call says otherwise.
    public var waitForReady: Bool
    /// The longest wait between attempts to reconnect to a server that went away; nil keeps
    /// grpc's default (backing off up to 120 s), too slow to notice a restarted neighbour.
    public var maxReconnectBackoff: Duration?

    public init(
      target: String,
      tls: ShimClientTLS? = nil,
      messageLimits: ShimMessageLimits = .defaults,
      keepalive: ShimKeepalive = .defaults,
      waitForReady: Bool = false,
      maxReconnectBackoff: Duration? = nil
    ) {
      self.target = target
      self.tls = tls
      self.messageLimits = messageLimits
      self.keepalive = keepalive
      self.waitForReady = waitForReady
      self.maxReconnectBackoff = maxReconnectBackoff
    }
  }

  /// The channel's connectivity, as grpc++ reports it.
  public enum ConnectivityState: Int, Sendable {
    case idle = 0
    case connecting, ready, transientFailure, shutdown
  }

  private struct State {
    var openStreams = 0
    var shuttingDown = false
    var closedWaiter: CheckedContinuation<Void, Never>?

    mutating func streamClosed() -> CheckedContinuation<Void, Never>? {
      self.openStreams -= 1
      return self.takeWaiterIfClosed()
    }

    mutating func takeWaiterIfClosed() -> CheckedContinuation<Void, Never>? {
      guard self.shuttingDown, self.openStreams == 0 else { return nil }
      defer { self.closedWaiter = nil }
      return self.closedWaiter
    }
  }

  public let config: Config
  let channel: ShimChannel
  private let state = Mutex(State())

  public init(config: Config) throws {
    self.config = config
    self.channel = try ShimChannel(config: config)
  }

  public var retryThrottle: RetryThrottle? { nil }

  /// Starts connecting and waits until the channel is ready, has failed, or `timeout` passed.
  public func waitForConnection(timeout: Duration) async -> ConnectivityState {
    let channel = self.channel
    let milliseconds = GRPCTimeout.nanoseconds(timeout) / 1_000_000
    // grpc++ only offers a blocking wait here: give it a thread of its own rather than one of
    // the cooperative pool's.
    return await ShimThread.run(name: "vane-shim-connect") {
      let state = vane_shim_channel_wait_for_connected(channel.pointer, milliseconds)
      return ConnectivityState(rawValue: Int(state)) ?? .shutdown
    }
  }

  public func connect() async throws {
    // grpc++ owns connection management; this only lasts until shutdown has drained streams.
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let ready = self.state.withLock { state -> Bool in
          state.closedWaiter = continuation
          return state.takeWaiterIfClosed() != nil
        }
        if ready { continuation.resume() }
      }
    } onCancel: {
      self.beginGracefulShutdown()
    }
  }

  public func beginGracefulShutdown() {
    let waiter = self.state.withLock { state in
      state.shuttingDown = true
      return state.takeWaiterIfClosed()
    }
    waiter?.resume()
  }

  public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? { nil }

  public func withStream<T: Sendable>(
    descriptor: MethodDescriptor,
    options: CallOptions,
    _ closure: (RPCStream<Inbound, Outbound>, ClientContext) async throws -> T
  ) async throws -> T {
    let open = self.state.withLock { state -> Bool in
      if state.shuttingDown { return false }
      state.openStreams += 1
      return true
    }
    guard open else {
      throw RPCError(code: .failedPrecondition, message: "The client transport is shutting down.")
    }
    defer { self.state.withLock { $0.streamClosed() }?.resume() }

    let call = ShimClientCall(
      channel: self.channel,
      method: "/" + descriptor.fullyQualifiedMethod,
      waitForReady: options.waitForReady ?? self.config.waitForReady,
      timeout: ShimCallDeadline.timeout,
      readAhead: descriptor.type.map { $0.isResponseStreaming ? 1 : 2 } ?? 1,
      singleRequest: descriptor.type.map { !$0.isRequestStreaming } ?? false
    )
    // Whatever the closure left unfinished is cancelled; a finished call ignores this.
    defer { call.cancel() }
    let stream = RPCStream(
      descriptor: descriptor,
      inbound: RPCAsyncSequence(wrapping: ShimClientInbound(call: call)),
      outbound: RPCWriter.Closable(wrapping: ShimClientOutbound(call: call))
    )
    let context = ClientContext(
      descriptor: descriptor,
      remotePeer: self.config.target,
      localPeer: ""
    )
    return try await closure(stream, context)
  }
}

/// Owns one `vane_shim_channel`.
final class ShimChannel: Sendable {
  // Immutable; the shim is safe to call from any thread.
  nonisolated(unsafe) let pointer: OpaquePointer

  init(config: ShimClientTransport.Config) throws {
    var error = vane_shim_error()
    let tls = config.tls
    let created: OpaquePointer? = withOptionalCStrings(
      tls?.caRootsPEM,
      tls?.certificateChainPEM,
      tls?.privateKeyPEM,
      tls?.serverNameOverride
    ) { roots, chain, key, name in
      var cTLS = vane_shim_channel_tls(
        ca_roots: roots,
        certificate_chain: chain,
        private_key: key,
        server_name_override: name
      )
      return config.target.withCString { target in
        withUnsafePointer(to: &cTLS) { tlsPointer in
          var options = vane_shim_channel_options()
          options.target = target
          options.tls = tls == nil ? nil : tlsPointer
          options.max_receive_message_bytes = ShimMessageLimits.cValue(
            config.messageLimits.maxReceiveBytes
          )
          options.max_send_message_bytes = ShimMessageLimits.cValue(
            config.messageLimits.maxSendBytes
          )
          options.keepalive_time_ms = ShimKeepalive.milliseconds(config.keepalive.time)
          options.keepalive_timeout_ms = ShimKeepalive.milliseconds(config.keepalive.timeout)
          options.keepalive_permit_without_calls = config.keepalive.permitWithoutCalls ? 1 : 0
          options.max_reconnect_backoff_ms = ShimKeepalive.milliseconds(config.maxReconnectBackoff)
          return vane_shim_channel_create(&options, &error)
        }
      }
    }
    guard let created else {
      throw ShimError(operation: "creating a channel to \(config.target)", error).rpcError
    }
    self.pointer = created
  }

  deinit {
    vane_shim_channel_free(self.pointer)
  }
}
