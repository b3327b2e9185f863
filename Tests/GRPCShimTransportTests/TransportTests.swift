import Foundation
import GRPCCore
import GRPCShimTransport
import VaneTestSupport
import Testing

/// The same service tests over the in-process transport and over the shim: both must agree.
@Suite("Transport behaviour, in-process and over the shim", .timeLimit(.minutes(2)))
struct TransportTests {
  @Test("All four RPC kinds", arguments: TransportKind.allCases)
  func fourKinds(kind: TransportKind) async throws {
    let observations = Observations()
    let results = try await withServer(kind, services: [EchoService(observations: observations)]) {
      client,
      _ in
      let unary = try await client.unary(
        request: ClientRequest(message: "hello"),
        descriptor: EchoService.get,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { try $0.message }
      let collected = try await client.clientStreaming(
        request: StreamingClientRequest { writer in
          try await writer.write(contentsOf: ["a", "b", "c"])
        },
        descriptor: EchoService.collect,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { try $0.message }
      let expanded = try await client.serverStreaming(
        request: ClientRequest(message: "one two three"),
        descriptor: EchoService.expand,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { response in try await response.messages.reduce(into: [String]()) { $0.append($1) } }
      let updated = try await client.bidirectionalStreaming(
        request: StreamingClientRequest { writer in
          for word in ["x", "y"] { try await writer.write(word) }
        },
        descriptor: EchoService.update,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { response in try await response.messages.reduce(into: [String]()) { $0.append($1) } }
      return [unary, collected, expanded.joined(separator: ","), updated.joined(separator: ",")]
    }
    #expect(results == ["hello", "a b c", "one,two,three", "echo:x,echo:y"])
  }

  @Test("Metadata travels both ways, text and binary", arguments: TransportKind.allCases)
  func metadataBothWays(kind: TransportKind) async throws {
    let (initial, trailing) = try await withServer(
      kind,
      services: [EchoService(observations: Observations())]
    ) { client, _ in
      var metadata: Metadata = ["x-echo": "quant-42"]
      metadata.addBinary([0, 7, 255, 128], forKey: "x-echo-bin")
      return try await client.unary(
        request: ClientRequest(message: "m", metadata: metadata),
        descriptor: EchoService.get,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { response in (response.metadata, response.trailingMetadata) }
    }
    #expect(Array(initial[stringValues: "x-echo"]) == ["quant-42"])
    #expect(Array(initial[binaryValues: "x-echo-bin"]) == [[0, 7, 255, 128]])
    #expect(Array(trailing[stringValues: "x-echo"]) == ["quant-42"])
    #expect(Array(trailing[binaryValues: "x-echo-bin"]) == [[0, 7, 255, 128]])
  }

  @Test(
    "A deadline that passes ends the call with DEADLINE_EXCEEDED",
    arguments: TransportKind.allCases
  )
  func deadline(kind: TransportKind) async throws {
    let observations = Observations()
    let code = try await withServer(kind, services: [EchoService(observations: observations)]) {
      client,
      _ in
      var options = CallOptions.defaults
      options.timeout = .seconds(2)
      return await statusCode {
        _ = try await client.unary(
          request: ClientRequest(message: ""),
          descriptor: EchoService.waitForCancel,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: options
        ) { try $0.message }
      }
    }
    #expect(code == .deadlineExceeded)
    // The server has drained: a handler that started saw the deadline as a cancellation
    // rather than running on. (On a loaded machine the deadline can pass before the handler
    // starts at all; that call is not run, which is right too.)
    let counts = observations.counts
    #expect(counts.started <= 1)
    #expect(counts.cancelled == counts.started)
  }

  @Test(
    "ShimCallDeadline: grpc++ keeps the deadline; a late call ends with DEADLINE_EXCEEDED, the handler cancelled; a timeout in the options wins"
  )
  func taskDeadline() async throws {
    let observations = Observations()
    let (late, patient, quick) = try await withServer(
      .shim,
      services: [EchoService(observations: observations)]
    ) { client, _ in
      let clock = ContinuousClock()
      // One unary call to `method`: its answer, its status and how long it took.
      @Sendable func call(
        _ method: MethodDescriptor,
        _ message: String = "",
        options: CallOptions = .defaults
      ) async -> (answer: String?, code: Status.Code, took: Duration) {
        let start = clock.now
        var answer: String?
        let code = await statusCode {
          answer = try await client.unary(
            request: ClientRequest(message: message),
            descriptor: method,
            serializer: UTF8Serializer(),
            deserializer: UTF8Deserializer(),
            options: options
          ) { try $0.message }
        }
        return (answer, code, start.duration(to: clock.now))
      }
      let late = await ShimCallDeadline.withTimeout(.milliseconds(300)) {
        await call(EchoService.waitForCancel)
      }
      // A timeout in the call's options is the call's own: it outlasts the task's.
      var options = CallOptions.defaults
      options.timeout = .seconds(2)
      let patient = await ShimCallDeadline.withTimeout(.milliseconds(100)) {
        await call(EchoService.waitForCancel, options: options)
      }
      // A call inside the deadline answers normally, and child tasks inherit the deadline.
      let quick = await ShimCallDeadline.withTimeout(.seconds(30)) {
        await withTaskGroup(of: String?.self) { group in
          group.addTask { await call(EchoService.get, "fast").answer }
          return await group.next()!
        }
      }
      return (late, patient, quick)
    }
    #expect(late.code == .deadlineExceeded)
    #expect(late.took >= .milliseconds(290) && late.took < .seconds(30), "\(late.took)")
    #expect(patient.code == .deadlineExceeded)
    #expect(patient.took >= .milliseconds(1_900), "\(patient.took)")
    #expect(quick == "fast")
    let counts = observations.counts
    #expect(counts.cancelled == counts.started)
  }

  @Test(
    "A server error's status, message and trailing metadata reach the client",
    arguments: TransportKind.allCases
  )
  func serverError(kind: TransportKind) async throws {
    let error = try await withServer(kind, services: [EchoService(observations: Observations())]) {
      client,
      _ in
      do {
        _ = try await client.unary(
          request: ClientRequest(message: ""),
          descriptor: EchoService.fail,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: .defaults
        ) { try $0.message }
        return RPCError?.none
      } catch let error as RPCError {
        return error
      }
    }
    let failure = try #require(error)
    #expect(failure.code == .failedPrecondition)
    #expect(failure.message == "gate 'min_auc' failed: 0.51 < 0.55")
    #expect(Array(failure.metadata[stringValues: "x-reason"]) == ["asked-to-fail"])
    #expect(Array(failure.metadata[binaryValues: "x-detail-bin"]) == [[0, 1, 2, 255]])
  }

  @Test("An unknown method is UNIMPLEMENTED", arguments: TransportKind.allCases)
  func unknownMethod(kind: TransportKind) async throws {
    let code = try await withServer(kind, services: [EchoService(observations: Observations())]) {
      client,
      _ in
      await statusCode {
        _ = try await client.unary(
          request: ClientRequest(message: ""),
          descriptor: MethodDescriptor(fullyQualifiedService: "vane.test.Echo", method: "Nope"),
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: .defaults
        ) { try $0.message }
      }
    }
    #expect(code == .unimplemented)
  }

  @Test("1,000 concurrent calls all succeed", arguments: TransportKind.allCases)
  func thousandConcurrent(kind: TransportKind) async throws {
    let answers = try await withServer(kind, services: [EchoService(observations: Observations())])
    { client, _ in
      try await withThrowingTaskGroup(of: Bool.self) { group in
        for index in 0 ..< 1_000 {
          group.addTask {
            let answer = try await client.unary(
              request: ClientRequest(message: "call-\(index)"),
              descriptor: EchoService.get,
              serializer: UTF8Serializer(),
              deserializer: UTF8Deserializer(),
              options: .defaults
            ) { try $0.message }
            return answer == "call-\(index)"
          }
        }
        return try await group.reduce(into: [Bool]()) { $0.append($1) }
      }
    }
    #expect(answers.count == 1_000)
    #expect(answers.allSatisfy { $0 })
  }
}

/// What only a network transport has: size limits, graceful shutdown over a socket, TLS.
@Suite("Shim transport: limits, shutdown, TLS", .timeLimit(.minutes(2)))
struct ShimTransportTests {
  static let sixteenMiB = 16 << 20

  // Over the shim only: the in-process transport signals cancellation to server handlers only
  // when the server shuts down, never when a client gives up.
  @Test("A client's cancellation reaches the server handler")
  func clientCancel() async throws {
    let kind = TransportKind.shim
    let observations = Observations()
    try await withServer(kind, services: [EchoService(observations: observations)]) { client, _ in
      let call = Task {
        try await client.unary(
          request: ClientRequest(message: ""),
          descriptor: EchoService.waitForCancel,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: .defaults
        ) { try $0.message }
      }
      await observations.wait { started, _ in started >= 1 }
      call.cancel()
      await observations.wait { _, cancelled in cancelled >= 1 }
      let result = await call.result
      #expect(throws: (any Error).self) { try result.get() }
    }
    #expect(observations.counts.cancelled == 1)
  }

  @Test("A 16 MiB message passes with raised limits")
  func largeMessageWithLimits() async throws {
    let limits = ShimMessageLimits(maxReceiveBytes: 32 << 20, maxSendBytes: 32 << 20)
    let (echoedSize, receivedSize) = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())],
      serverConfig: { $0.messageLimits = limits },
      clientConfig: { $0.messageLimits = limits }
    ) { client, _ in
      let size = try await client.unary(
        request: ClientRequest(message: [UInt8](repeating: 0xA5, count: Self.sixteenMiB)),
        descriptor: EchoService.size,
        serializer: BytesSerializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { try $0.message }
      let received = try await client.unary(
        request: ClientRequest(message: "\(Self.sixteenMiB)"),
        descriptor: EchoService.large,
        serializer: UTF8Serializer(),
        deserializer: BytesDeserializer(),
        options: .defaults
      ) { try $0.message.count }
      return (size, received)
    }
    #expect(echoedSize == "\(Self.sixteenMiB)")
    #expect(receivedSize == Self.sixteenMiB)
  }

  @Test("A 16 MiB message without raised limits is RESOURCE_EXHAUSTED, both directions")
  func largeMessageWithoutLimits() async throws {
    let (sending, receiving) = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())]
    ) { client, _ in
      let sending = await statusCode {
        _ = try await client.unary(
          request: ClientRequest(message: [UInt8](repeating: 1, count: Self.sixteenMiB)),
          descriptor: EchoService.size,
          serializer: BytesSerializer(),
          deserializer: UTF8Deserializer(),
          options: .defaults
        ) { try $0.message }
      }
      let receiving = await statusCode {
        _ = try await client.unary(
          request: ClientRequest(message: "\(Self.sixteenMiB)"),
          descriptor: EchoService.large,
          serializer: UTF8Serializer(),
          deserializer: BytesDeserializer(),
          options: .defaults
        ) { try $0.message }
      }
      return (sending, receiving)
    }
    #expect(sending == .resourceExhausted)
    #expect(receiving == .resourceExhausted)
  }

  @Test(
    "Graceful shutdown: health turns NOT_SERVING, new calls are refused, in-flight calls finish"
  )
  func gracefulShutdown() async throws {
    let observations = Observations()
    // A grace long enough for a loaded machine: were it to pass, the drain would end the held
    // call for the client and the test would fail (not hang: the holds are released on exit).
    let (inFlight, refused, health) = try await withServer(
      .shim,
      services: [EchoService(observations: observations)],
      serverConfig: { $0.shutdownGracePeriod = .seconds(60) }
    ) { client, server in
      // Whatever happens below, the held handler must end, or the server's task never does.
      defer { observations.releaseHolds() }
      let held = Task {
        try await client.unary(
          request: ClientRequest(message: ""),
          descriptor: EchoService.hold,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: .defaults
        ) { try $0.message }
      }
      await observations.wait { started, _ in started >= 1 }
      server.shutdown()
      // Let the drain begin before the new call is made.
      try await Task.sleep(for: .milliseconds(100))
      let port = try #require(server.port)
      let lateClient = try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
      let refused = await statusCode {
        _ = try await withGRPCClient(transport: lateClient) { late in
          try await late.unary(
            request: ClientRequest(message: "late"),
            descriptor: EchoService.get,
            serializer: UTF8Serializer(),
            deserializer: UTF8Deserializer(),
            options: .defaults
          ) { try $0.message }
        }
      }
      // grpc.health.v1.Health/Check for the whole server ("" is the empty request); the answer
      // is field 1, the serving status (2 = NOT_SERVING).
      let health = try await client.unary(
        request: ClientRequest(message: [UInt8]()),
        descriptor: MethodDescriptor(
          fullyQualifiedService: "grpc.health.v1.Health",
          method: "Check",
          type: .unary
        ),
        serializer: BytesSerializer(),
        deserializer: BytesDeserializer(),
        options: .defaults
      ) { try $0.message }
      observations.releaseHolds()
      return (try await held.value, refused, health)
    }
    #expect(inFlight == "released")
    #expect(refused == .unavailable)
    #expect(health == [0x08, 0x02], "health while draining: \(health)")
  }

  @Test("TLS: a client that trusts the CA gets through")
  func tls() async throws {
    let certificates = try TestCertificates.make()
    let answer = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())],
      serverConfig: {
        $0.tls = ShimServerTLS(
          certificateChainPEM: certificates.serverCertificatePEM,
          privateKeyPEM: certificates.serverKeyPEM
        )
      },
      clientConfig: {
        $0.tls = ShimClientTLS(caRootsPEM: certificates.caPEM, serverNameOverride: "localhost")
      }
    ) { client, _ in
      try await client.unary(
        request: ClientRequest(message: "secret"),
        descriptor: EchoService.get,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: .defaults
      ) { try $0.message }
    }
    #expect(answer == "secret")
  }

  @Test("TLS: a plaintext client is refused")
  func tlsRefusesPlaintext() async throws {
    let certificates = try TestCertificates.make()
    let code = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())],
      serverConfig: {
        $0.tls = ShimServerTLS(
          certificateChainPEM: certificates.serverCertificatePEM,
          privateKeyPEM: certificates.serverKeyPEM
        )
      }
    ) { client, _ in await Self.codeOfGet(client) }
    #expect(code == .unavailable)
  }

  @Test(
    "Mutual TLS: only a client certificate from the trusted CA gets through",
    arguments: ["trusted", "none", "stranger"]
  )
  func mutualTLS(clientIdentity: String) async throws {
    let certificates = try TestCertificates.make()
    let code = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())],
      serverConfig: {
        $0.tls = ShimServerTLS(
          certificateChainPEM: certificates.serverCertificatePEM,
          privateKeyPEM: certificates.serverKeyPEM,
          clientCARootsPEM: certificates.caPEM
        )
      },
      clientConfig: {
        switch clientIdentity {
        case "trusted":
          $0.tls = ShimClientTLS(
            caRootsPEM: certificates.caPEM,
            certificateChainPEM: certificates.clientCertificatePEM,
            privateKeyPEM: certificates.clientKeyPEM,
            serverNameOverride: "localhost"
          )
        case "stranger":
          $0.tls = ShimClientTLS(
            caRootsPEM: certificates.caPEM,
            certificateChainPEM: certificates.strangerCertificatePEM,
            privateKeyPEM: certificates.strangerKeyPEM,
            serverNameOverride: "localhost"
          )
        default:
          $0.tls = ShimClientTLS(caRootsPEM: certificates.caPEM, serverNameOverride: "localhost")
        }
      }
    ) { client, _ in await Self.codeOfGet(client) }
    #expect(code == (clientIdentity == "trusted" ? .ok : .unavailable))
  }

  static func codeOfGet(_ client: TestClient) async -> Status.Code {
    var options = CallOptions.defaults
    // Generous: on 2 cores the first call's handshake competes with the rest of the suite.
    options.timeout = .seconds(60)
    return await statusCode {
      _ = try await client.unary(
        request: ClientRequest(message: "x"),
        descriptor: EchoService.get,
        serializer: UTF8Serializer(),
        deserializer: UTF8Deserializer(),
        options: options
      ) { try $0.message }
    }
  }

  @Test("Clients dropped right after their call (one channel per call, as probes do) are safe")
  func shortLivedClients() async throws {
    try await withServer(.shim, services: [EchoService(observations: Observations())]) {
      _,
      server in
      let port = try #require(server.port)
      for round in 0 ..< 150 {
        let transport = try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
        let answer = try await withShortLivedClient(transport) { client in
          try await client.unary(
            request: ClientRequest(message: "probe-\(round)"),
            descriptor: EchoService.get,
            serializer: UTF8Serializer(),
            deserializer: UTF8Deserializer(),
            options: .defaults
          ) { try $0.message }
        }
        #expect(answer == "probe-\(round)")
      }
    }
  }

  @Test("A status whose trailers cannot be sent still ends the call (INTERNAL), never hangs")
  func badTrailers() async throws {
    let code = try await withServer(.shim, services: [EchoService(observations: Observations())]) {
      client,
      _ in
      var options = CallOptions.defaults
      // A bound that tells a hang from an answer, generous for a loaded 2-core machine.
      options.timeout = .seconds(60)
      return await statusCode {
        _ = try await client.unary(
          request: ClientRequest(message: ""),
          descriptor: EchoService.badTrailers,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: options
        ) { try $0.message }
      }
    }
    #expect(code == .internalError)
  }

  @Test("Binding an address that is taken fails with a clear error")
  func bindFailure() async throws {
    try await withServer(.shim, services: [EchoService(observations: Observations())]) {
      _,
      server in
      let port = try #require(server.port)
      let second = ShimServerTransport(config: .init(address: "127.0.0.1:\(port)"))
      let grpcServer = GRPCServer(
        transport: second,
        services: [EchoService(observations: Observations())]
      )
      await #expect(throws: (any Error).self) { try await grpcServer.serve() }
    }
  }
}

@Suite("Shim transport: wait for ready", .timeLimit(.minutes(3)))
struct WaitForReadyTests {
  @Test("With wait-for-ready a call waits for a server that starts late; without, it fails fast")
  func waitForReady() async throws {
    // A port that is free now and handed to no other test; the server binds it a moment after
    // the calls start. (A port from bind(0) is the next one handed to a concurrent test's
    // server: the fail-fast call then met that server and hit its deadline on a busy machine.)
    let port = try LoopbackPorts.free()

    let client = GRPCClient(
      transport: try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await client.runConnections() }
      defer { client.beginGracefulShutdown() }

      var failFast = CallOptions.defaults
      failFast.waitForReady = false
      // A fail-fast call ends UNAVAILABLE once grpc reports the channel's first attempt
      // refused: a few milliseconds after the call on an idle machine (GRPC_TRACE=pick_first
      // shows TRANSIENT_FAILURE 3 ms after CONNECTING), but in the full suite on two busy cores
      // the 5 s bound this test had went by first, twice (once in a fresh-clone CI run). The
      // bound only tells a failed call from one left waiting (which would end
      // DEADLINE_EXCEEDED): it must outlast a starved machine, not time it.
      failFast.timeout = .seconds(60)
      await #expect {
        _ = try await client.unary(
          request: ClientRequest(message: "early"),
          descriptor: EchoService.get,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: failFast
        ) { try $0.message }
      } throws: { ($0 as? RPCError)?.code == .unavailable }

      var patient = CallOptions.defaults
      patient.waitForReady = true
      patient.timeout = .seconds(20)
      let waiting = Task {
        try await client.unary(
          request: ClientRequest(message: "patient"),
          descriptor: EchoService.get,
          serializer: UTF8Serializer(),
          deserializer: UTF8Deserializer(),
          options: patient
        ) { try $0.message }
      }
      try await Task.sleep(for: .milliseconds(300))
      let late = ShimServerTransport(config: .init(address: "127.0.0.1:\(port)"))
      let lateServer = GRPCServer(
        transport: late,
        services: [EchoService(observations: Observations())]
      )
      group.addTask { try await lateServer.serve() }
      #expect(try await waiting.value == "patient")
      lateServer.beginGracefulShutdown()
    }
  }
}
