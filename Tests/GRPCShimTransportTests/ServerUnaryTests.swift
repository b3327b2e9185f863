import GRPCCore
import GRPCShimTransport
import Testing
import VaneTestSupport

/// A unary method's calls on the shim's server go through grpc++'s unary handler: the request
/// arrives with the call and the response's metadata, message and status leave together. What
/// a handler can do that a unary call cannot carry has one answer each.
@Suite("Shim server: unary methods", .timeLimit(.minutes(1)))
struct ServerUnaryTests {
  func call(
    _ client: TestClient,
    _ method: MethodDescriptor,
    _ message: String,
    metadata: Metadata = [:]
  ) async throws -> (message: String, initial: Metadata, trailing: Metadata) {
    try await client.unary(
      request: ClientRequest(message: message, metadata: metadata),
      descriptor: method,
      serializer: UTF8Serializer(),
      deserializer: UTF8Deserializer(),
      options: .defaults
    ) { response in
      (try response.message, response.metadata, response.trailingMetadata)
    }
  }

  func code(_ body: () async throws -> Void) async -> (RPCError.Code?, String) {
    do {
      try await body()
      return (nil, "")
    } catch let error as RPCError {
      return (error.code, error.message)
    } catch {
      return (nil, "\(error)")
    }
  }

  @Test("Typed unary and untyped (streamed) registrations answer alike, metadata both ways")
  func typedAndUntyped() async throws {
    let observations = Observations()
    let (typed, untyped) = try await withServer(
      .shim,
      services: [EchoService(observations: observations)]
    ) { client, _ in
      (
        try await self.call(client, EchoService.get, "unary", metadata: ["x-echo": "v1"]),
        try await self.call(client, EchoService.untypedGet, "streamed")
      )
    }
    #expect(typed.message == "unary")
    #expect(typed.initial[stringValues: "x-echo"].map { $0 } == ["v1"])
    #expect(typed.trailing[stringValues: "x-echo"].map { $0 } == ["v1"])
    #expect(untyped.message == "streamed")
    #expect(untyped.initial[stringValues: "x-shape"].map { $0 } == ["streamed"])
    #expect(untyped.trailing[stringValues: "x-end"].map { $0 } == ["streamed"])
  }

  @Test("OK without a response message ends the call with INTERNAL, saying so")
  func okWithoutMessage() async throws {
    let (code, message) = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())]
    ) { client, _ in
      await self.code { _ = try await self.call(client, EchoService.silent, "x") }
    }
    #expect(code == .internalError)
    #expect(message.contains("without its response message"), "\(message)")
  }

  @Test(
    "A second response message is refused to the handler; the client gets an error, not two answers"
  )
  func secondMessage() async throws {
    let observations = Observations()
    let (code, _) = try await withServer(
      .shim,
      services: [EchoService(observations: observations)]
    ) { client, _ in
      await self.code { _ = try await self.call(client, EchoService.twice, "x") }
    }
    #expect(code != nil)
    let refusals = observations.refusals.withLock { $0 }
    #expect(refusals.count == 1)
    #expect(refusals.first?.contains("one response message") == true, "\(refusals)")
  }

  @Test("Requests of every size up to the limit arrive whole, many calls at once")
  func sizesAndConcurrency() async throws {
    let sizes = [0, 1, 1000, 100_000, 1_000_000]
    let answers = try await withServer(
      .shim,
      services: [EchoService(observations: Observations())]
    ) { client, _ in
      try await withThrowingTaskGroup(of: (Int, Int).self) { group in
        for i in 0 ..< 200 {
          let size = sizes[i % sizes.count]
          group.addTask {
            let answer = try await self.call(
              client,
              EchoService.get,
              String(repeating: "a", count: size)
            )
            return (size, answer.message.utf8.count)
          }
        }
        return try await group.reduce(into: [(Int, Int)]()) { $0.append($1) }
      }
    }
    #expect(answers.count == 200)
    #expect(answers.allSatisfy { $0.0 == $0.1 }, "\(answers.filter { $0.0 != $0.1 })")
  }
}
