import Foundation
import GRPCCore
import VaneWireCoding
import GRPCShimTransport
import Testing
import VaneProto

/// `vane call` on streaming methods, against a test double that answers two Vane methods the
/// way their real implementations will (streams in, streams out).
@Suite("vane call with streams", .timeLimit(.minutes(2)))
struct CallStreamingTests {
  struct StreamingDouble: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
      // Server streaming: one vector per requested value.
      router.registerHandler(
        forMethod: Vane_V1_FeatureService.Method.StreamFeatures.descriptor,
        deserializer: ProtobufDeserializer<Vane_V1_StreamFeaturesRequest>(),
        serializer: ProtobufSerializer<Vane_V1_FeatureVector>()
      ) { _, _ in
        StreamingServerResponse { writer in
          for index in 0 ..< 3 {
            var vector = Vane_V1_FeatureVector()
            vector.symbol = "BTCUSDT"
            vector.values = [Double(index)]
            try await writer.write(vector)
          }
          return [:]
        }
      }
      // Client streaming: counts the candles of every batch after the header.
      router.registerHandler(
        forMethod: Vane_V1_FeatureService.Method.IngestCandles.descriptor,
        deserializer: ProtobufDeserializer<Vane_V1_IngestCandlesRequest>(),
        serializer: ProtobufSerializer<Vane_V1_IngestCandlesResponse>()
      ) { request, _ in
        var response = Vane_V1_IngestCandlesResponse()
        for try await part in request.messages {
          if case .header(let header)? = part.payload { response.source = header.source }
          if case .batch(let batch)? = part.payload {
            response.received += Int64(batch.candles.count)
          }
        }
        let answer = response
        return StreamingServerResponse { writer in
          try await writer.write(answer)
          return [:]
        }
      }
    }
  }

  func withDouble(_ body: (String) async throws -> Void) async throws {
    let transport = ShimServerTransport(config: .init(address: "127.0.0.1:0"))
    let server = GRPCServer(transport: transport, services: [StreamingDouble()])
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.serve() }
      defer { server.beginGracefulShutdown() }
      try await body("127.0.0.1:\(try await transport.listeningPort)")
    }
  }

  @Test("A server stream prints one JSON object per line")
  func serverStream() async throws {
    try await self.withDouble { address in
      let result = try await VaneBinary.run([
        "call", address, "FeatureService/StreamFeatures", "{}",
      ])
      #expect(result.status == 0, "\(result.stderr)")
      let lines = result.stdout.split(separator: "\n").map(String.init)
      #expect(lines.count == 3)
      let vectors = try lines.map { try Vane_V1_FeatureVector(jsonString: $0) }
      #expect(vectors.map(\.values) == [[0], [1], [2]])
    }
  }

  @Test("A client stream takes a JSON array, or JSON lines on standard input")
  func clientStream() async throws {
    try await self.withDouble { address in
      let requests = """
        [{"header": {"source": "test.csv"}},
         {"batch": {"candles": [{"open": 1}, {"open": 2}]}},
         {"batch": {"candles": [{"open": 3}]}}]
        """
      let result = try await VaneBinary.run([
        "call", address, "FeatureService/IngestCandles", requests,
      ])
      #expect(result.status == 0, "\(result.stderr)")
      let response = try Vane_V1_IngestCandlesResponse(
        jsonString: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      )
      #expect(response.received == 3)
      #expect(response.source == "test.csv")

      let lines = """
        {"header": {"source": "stdin.csv"}}
        {"batch": {"candles": [{"open": 1}, {"open": 2}, {"open": 3}, {"open": 4}]}}
        """
      let piped = try await VaneBinary.run(
        ["call", address, "FeatureService/IngestCandles", "-"],
        input: lines
      )
      #expect(piped.status == 0, "\(piped.stderr)")
      let fromStdin = try Vane_V1_IngestCandlesResponse(
        jsonString: piped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
      )
      #expect(fromStdin.received == 4)
      #expect(fromStdin.source == "stdin.csv")
    }
  }
}
