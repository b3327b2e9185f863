import ArgumentParser
import GRPCCore
import GRPCShimTransport
import VaneCore
import VaneRuntime
internal import Foundation

/// How client commands reach a server: plaintext by default, TLS with `--tls-ca` (and mutual
/// TLS with `--tls-cert`/`--tls-key`), and the admin token for state-changing methods.
struct ClientConnectionOptions: ParsableArguments {
  @Flag(name: .customLong("tls"), help: "Use TLS with the system's roots.")
  var tls = false

  @Option(
    name: .customLong("tls-ca"),
    help: "PEM roots that sign the server's certificate (implies --tls)."
  )
  var tlsCA: String?

  @Option(name: .customLong("tls-cert"), help: "PEM client certificate chain, for mutual TLS.")
  var tlsCertificate: String?

  @Option(name: .customLong("tls-key"), help: "PEM client private key, for mutual TLS.")
  var tlsKey: String?

  @Option(
    name: .customLong("tls-server-name"),
    help: "Name to check the server's certificate against."
  )
  var serverName: String?

  @Option(
    name: .customLong("admin-token-file"),
    help: "File holding the bearer token for admin methods (or VANE_ADMIN_TOKEN_FILE)."
  )
  var adminTokenFile: String?

  @Option(name: .customLong("max-message-mib"), help: "Largest message received or sent, in MiB.")
  var maxMessageMiB: Int = 64

  func config(target: String) throws -> ShimClientTransport.Config {
    var tls: ShimClientTLS?
    if self.tls || self.tlsCA != nil || self.tlsCertificate != nil || self.tlsKey != nil {
      if (self.tlsCertificate == nil) != (self.tlsKey == nil) {
        throw ValidationError("--tls-cert and --tls-key: give both or neither")
      }
      tls = ShimClientTLS(
        caRootsPEM: try self.tlsCA.map { try readFile($0, option: "--tls-ca") },
        certificateChainPEM: try self.tlsCertificate.map { try readFile($0, option: "--tls-cert") },
        privateKeyPEM: try self.tlsKey.map { try readFile($0, option: "--tls-key") },
        serverNameOverride: self.serverName
      )
    }
    guard self.maxMessageMiB > 0, self.maxMessageMiB <= 2047 else {
      throw ValidationError("--max-message-mib: \(self.maxMessageMiB) is not between 1 and 2047")
    }
    return ShimClientTransport.Config(
      target: target,
      tls: tls,
      messageLimits: ShimMessageLimits(
        maxReceiveBytes: self.maxMessageMiB << 20,
        maxSendBytes: self.maxMessageMiB << 20
      )
    )
  }

  /// Metadata to send: the admin token as a bearer credential, when one is configured.
  func metadata() throws -> Metadata {
    let path = self.adminTokenFile ?? ProcessInfo.processInfo.environment["VANE_ADMIN_TOKEN_FILE"]
    guard let path, !path.isEmpty else { return [:] }
    let token = try readFile(path, option: "--admin-token-file").trimmingCharacters(
      in: .whitespacesAndNewlines
    )
    return ["authorization": "Bearer \(token)"]
  }
}

extension ClientConnectionOptions {
  /// Runs `body` with a client of `address` whose calls carry `timeout`; an RPC error is
  /// printed as `ERROR: <code>: <message>` and exits 1.
  func withClient<R: Sendable>(
    address: String,
    timeout: Double,
    _ body: @Sendable (GRPCClient<ShimClientTransport>, CallOptions) async throws -> R
  ) async throws -> R {
    let transport = try ShimClientTransport(config: self.config(target: address))
    var options = CallOptions.defaults
    options.timeout = .milliseconds(Int64(timeout * 1000))
    do {
      // One request id for what the command asks (and every call that causes, service to service).
      return try await RequestID.$current.withValue(RequestID.current ?? RequestID.make()) {
        try await withGRPCClient(transport: transport, interceptors: [RequestIDClientInterceptor()])
        { grpc in try await body(grpc, options) }
      }
    } catch let error as RPCError {
      FileHandle.standardError.write(Data("ERROR: \(error.code): \(error.message)\n".utf8))
      throw ExitCode(1)
    }
  }
}
