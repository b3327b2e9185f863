public import GRPCShimTransport
internal import GRPCCore
internal import VaneWireCoding
internal import SwiftProtobuf

/// A grpc.health.v1 Check, judged the way grpc_health_probe judges it.
///
/// The two health messages are wire-identical to well-known wrappers (a request holding string
/// field 1, a response holding enum field 1), so they are encoded as `StringValue` and decoded as
/// `Int32Value` rather than generated from a copy of health.proto.
public enum HealthProbe {
  public enum Outcome: Sendable, Equatable {
    case serving
    /// The server answered with a status other than SERVING (NOT_SERVING, UNKNOWN, ...).
    case notServing(String)
    /// No connection could be made within the connect timeout.
    case connectionFailure(String)
    /// The connection worked but the RPC failed (NOT_FOUND for an unknown service, ...).
    case rpcFailure(String)
  }

  static let check = MethodDescriptor(
    fullyQualifiedService: "grpc.health.v1.Health",
    method: "Check"
  )

  public static func check(
    config: ShimClientTransport.Config,
    service: String,
    connectTimeout: Duration,
    rpcTimeout: Duration
  ) async -> Outcome {
    let transport: ShimClientTransport
    do {
      transport = try ShimClientTransport(config: config)
    } catch {
      return .connectionFailure("\(error)")
    }
    let state = await transport.waitForConnection(timeout: connectTimeout)
    guard state == .ready else {
      return .connectionFailure(
        "could not connect to \(config.target) within \(connectTimeout) (channel \(state))"
      )
    }
    do {
      return try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = rpcTimeout
        let status = try await client.unary(
          request: ClientRequest(message: Google_Protobuf_StringValue(service)),
          descriptor: Self.check,
          serializer: ProtobufSerializer<Google_Protobuf_StringValue>(),
          deserializer: ProtobufDeserializer<Google_Protobuf_Int32Value>(),
          options: options
        ) { try $0.message.value }
        return Self.outcome(status)
      }
    } catch let error as RPCError {
      return .rpcFailure("\(error.code): \(error.message)")
    } catch {
      return .rpcFailure("\(error)")
    }
  }

  static let watch = MethodDescriptor(
    fullyQualifiedService: "grpc.health.v1.Health",
    method: "Watch"
  )

  /// Follows `service`'s health on `upstream`'s connection with grpc.health.v1 Watch until the
  /// stream ends:
  /// `onStatus` gets `.serving` or `.notServing` for every status the server sends (the first
  /// at once). The call waits for the channel, so a server that is down is waited for, not
  /// polled.
  /// - Throws: the RPC's error when the stream fails (the server went away, shutdown).
  public static func watch(
    upstream: UpstreamClient,
    service: String,
    onStatus: @escaping @Sendable (Outcome) async -> Void
  ) async throws {
    var options = CallOptions.defaults
    options.waitForReady = true
    try await upstream.client.serverStreaming(
      request: ClientRequest(message: Google_Protobuf_StringValue(service)),
      descriptor: Self.watch,
      serializer: ProtobufSerializer<Google_Protobuf_StringValue>(),
      deserializer: ProtobufDeserializer<Google_Protobuf_Int32Value>(),
      options: options
    ) { response in
      for try await status in response.messages {
        await onStatus(Self.outcome(status.value))
      }
    }
  }

  static func outcome(_ status: Int32) -> Outcome {
    switch status {
    case 1: .serving
    case 2: .notServing("NOT_SERVING")
    case 3: .notServing("SERVICE_UNKNOWN")
    default: .notServing("UNKNOWN")
    }
  }

  /// Probes until `service` reports SERVING.
  /// - Returns: `.serving`, or the last probe's outcome when it has not within `timeout` (so
  ///   that a caller can say why: nothing listening, NOT_SERVING, an RPC failure).
  public static func waitUntilServing(
    config: ShimClientTransport.Config,
    service: String,
    timeout: Duration
  ) async -> Outcome {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var last = Outcome.connectionFailure("not probed within \(timeout)")
    while clock.now < deadline {
      last = await Self.check(
        config: config,
        service: service,
        connectTimeout: .milliseconds(250),
        rpcTimeout: .seconds(1)
      )
      if case .serving = last { return last }
      guard (try? await Task.sleep(for: .milliseconds(25))) != nil else { return last }
    }
    return last
  }
}
