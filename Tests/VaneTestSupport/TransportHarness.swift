import Foundation
public import GRPCCore
import GRPCInProcessTransport
public import GRPCShimTransport

/// The transports the same service tests run over.
public enum TransportKind: String, CaseIterable, CustomStringConvertible, Sendable {
  case inProcess
  case shim

  public var description: String { self.rawValue }
}

/// Erases a client transport's type so tests can treat every transport alike.
public struct AnyClientTransport: ClientTransport {
  public typealias Bytes = [UInt8]
  public let base: any ClientTransport<[UInt8]>

  public init(base: any ClientTransport<[UInt8]>) { self.base = base }

  public var retryThrottle: RetryThrottle? { self.base.retryThrottle }
  public func connect() async throws { try await self.base.connect() }
  public func beginGracefulShutdown() { self.base.beginGracefulShutdown() }
  public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? {
    self.base.config(forMethod: descriptor)
  }
  public func withStream<T: Sendable>(
    descriptor: MethodDescriptor,
    options: CallOptions,
    _ closure: (RPCStream<Inbound, Outbound>, ClientContext) async throws -> T
  ) async throws -> T {
    try await self.base.withStream(descriptor: descriptor, options: options, closure)
  }
}

public typealias TestClient = GRPCClient<AnyClientTransport>

/// Runs `body` with a client connected to a server that offers `services`, over `kind`.
/// The server and client are shut down gracefully when `body` returns.
public func withServer<R: Sendable>(
  _ kind: TransportKind,
  services: [any RegistrableRPCService],
  interceptors: [ConditionalInterceptor<any ServerInterceptor>] = [],
  serverConfig: (inout ShimServerTransport.Config) -> Void = { _ in },
  clientConfig: (inout ShimClientTransport.Config) -> Void = { _ in },
  _ body: @Sendable (TestClient, ServerHandle) async throws -> R
) async throws -> R {
  switch kind {
  case .inProcess:
    let transport = InProcessTransport()
    let server = GRPCServer(
      transport: transport.server,
      services: services,
      interceptorPipeline: interceptors
    )
    let client = GRPCClient(transport: AnyClientTransport(base: transport.client))
    return try await run(
      server: server,
      client: client,
      handle: ServerHandle(shutdown: { server.beginGracefulShutdown() }, port: nil),
      body
    )
  case .shim:
    var config = ShimServerTransport.Config(
      address: "127.0.0.1:0",
      shutdownGracePeriod: .seconds(5)
    )
    serverConfig(&config)
    let transport = ShimServerTransport(config: config)
    let server = GRPCServer(
      transport: transport,
      services: services,
      interceptorPipeline: interceptors
    )
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.serve() }
      let port: Int
      do {
        port = try await transport.listeningPort
      } catch {
        group.cancelAll()
        throw error
      }
      var clientSettings = ShimClientTransport.Config(target: "127.0.0.1:\(port)")
      clientConfig(&clientSettings)
      let client = GRPCClient(
        transport: AnyClientTransport(base: try ShimClientTransport(config: clientSettings))
      )
      let handle = ServerHandle(shutdown: { server.beginGracefulShutdown() }, port: port)
      let result = try await withThrowingTaskGroup(of: Void.self) { inner in
        inner.addTask { try await client.runConnections() }
        defer { client.beginGracefulShutdown() }
        return try await body(client, handle)
      }
      server.beginGracefulShutdown()
      try await group.waitForAll()
      return result
    }
  }
}

private func run<R: Sendable, T: ServerTransport>(
  server: GRPCServer<T>,
  client: TestClient,
  handle: ServerHandle,
  _ body: @Sendable (TestClient, ServerHandle) async throws -> R
) async throws -> R {
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask {
      do {
        try await server.serve()
      } catch let error as RuntimeError where error.code == .serverIsStopped {
        // A body that made no call can finish before this task first runs; the shutdown
        // then comes before serve(), which is not a failure of the code under test.
      }
    }
    group.addTask {
      do {
        try await client.runConnections()
      } catch let error as RuntimeError where error.code == .clientIsStopped {
        // As above, for the client.
      }
    }
    let result: R
    do {
      result = try await body(client, handle)
    } catch {
      client.beginGracefulShutdown()
      server.beginGracefulShutdown()
      try? await group.waitForAll()
      throw error
    }
    client.beginGracefulShutdown()
    server.beginGracefulShutdown()
    try await group.waitForAll()
    return result
  }
}

/// What a test may do to the server while its client runs.
public struct ServerHandle: Sendable {
  public let shutdown: @Sendable () -> Void
  /// The bound port (shim only).
  public let port: Int?
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with the
/// openssl command line in a temporary directory.
public struct TestCertificates: Sendable {
  public let caPEM: String
  public let serverCertificatePEM: String
  public let serverKeyPEM: String
  public let clientCertificatePEM: String
  public let clientKeyPEM: String
  /// A second CA's client certificate: valid, but not from the roots the server trusts.
  public let strangerCertificatePEM: String
  public let strangerKeyPEM: String

  public static func make() throws -> TestCertificates {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-tls-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    func openssl(_ arguments: [String]) throws {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
      process.arguments = arguments
      process.currentDirectoryURL = directory
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      process.waitForExit()
      guard process.terminationStatus == 0 else {
        throw CocoaError(
          .fileWriteUnknown,
          userInfo: [
            NSLocalizedDescriptionKey: "openssl \(arguments.joined(separator: " ")) failed"
          ]
        )
      }
    }
    func makeCA(_ name: String) throws {
      try openssl([
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "\(name).key", "-out", "\(name).pem", "-days", "2", "-subj", "/CN=\(name)",
      ])
    }
    func issue(_ name: String, by ca: String, san: String) throws {
      try openssl([
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)",
      ])
      try "subjectAltName=\(san)\n".write(
        to: directory.appendingPathComponent("\(name).ext"),
        atomically: true,
        encoding: .utf8
      )
      try openssl([
        "x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key",
        "-CAcreateserial",
        "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext",
      ])
    }
    try makeCA("test-ca")
    try makeCA("stranger-ca")
    try issue("server", by: "test-ca", san: "DNS:localhost,IP:127.0.0.1")
    try issue("client", by: "test-ca", san: "DNS:client.test")
    try issue("stranger", by: "stranger-ca", san: "DNS:stranger.test")
    func read(_ file: String) throws -> String {
      try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
    }
    return TestCertificates(
      caPEM: try read("test-ca.pem"),
      serverCertificatePEM: try read("server.pem"),
      serverKeyPEM: try read("server.key"),
      clientCertificatePEM: try read("client.pem"),
      clientKeyPEM: try read("client.key"),
      strangerCertificatePEM: try read("stranger.pem"),
      strangerKeyPEM: try read("stranger.key")
    )
  }
}

/// The status an RPC ended with: `.ok` when `call` returns, the error's code when it throws an
/// `RPCError`, `.unknown` for any other error.
public func statusCode(of call: () async throws -> Void) async -> Status.Code {
  do {
    try await call()
    return .ok
  } catch let error as RPCError {
    return Status.Code(error.code)
  } catch {
    return .unknown
  }
}

/// A client of its own for `body`, like `withGRPCClient`, but a body that finishes before the
/// connection task first runs is not an error (the race the harness tolerates above).
public func withShortLivedClient<R: Sendable>(
  _ transport: ShimClientTransport,
  _ body: @Sendable (GRPCClient<ShimClientTransport>) async throws -> R
) async throws -> R {
  let client = GRPCClient(transport: transport)
  return try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask {
      do {
        try await client.runConnections()
      } catch let error as RuntimeError where error.code == .clientIsStopped {
        // The body was done first.
      }
    }
    defer { client.beginGracefulShutdown() }
    let result = try await body(client)
    client.beginGracefulShutdown()
    try await group.waitForAll()
    return result
  }
}
