import Foundation
import GRPCCore
import VaneWireCoding
import GRPCShimTransport
import Synchronization
import Testing
import VaneProto
import VaneRuntime

/// A server whose services are registered at their own types (`RoutedService`, what every
/// `vane serve` runs) answers as one registered through `any RegistrableRPCService`, with the
/// interceptor pipeline in its order.
@Suite("Routed services", .timeLimit(.minutes(2)))
struct RoutedServiceTests {
  /// Answers GetServiceInfo with the kind it was made with, and streams StreamFeatures.
  struct Double: RegistrableRPCService {
    let kind: String

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
      let kind = self.kind
      router.registerHandler(
        forMethod: Vane_V1_FeatureService.Method.GetServiceInfo.descriptor,
        deserializer: ProtobufDeserializer<Vane_V1_GetServiceInfoRequest>(),
        serializer: ProtobufSerializer<Vane_V1_ServiceInfo>()
      ) { _, _ in
        StreamingServerResponse(single: ServerResponse(message: .with { $0.version = kind }))
      }
      router.registerHandler(
        forMethod: Vane_V1_FeatureService.Method.StreamFeatures.descriptor,
        deserializer: ProtobufDeserializer<Vane_V1_StreamFeaturesRequest>(),
        serializer: ProtobufSerializer<Vane_V1_FeatureVector>()
      ) { request, _ in
        let symbol = try await request.messages.first { _ in true }?.markets.first?.symbol ?? ""
        return StreamingServerResponse { writer in
          for index in 0 ..< 3 {
            try await writer.write(
              .with {
                $0.symbol = symbol
                $0.values = [Swift.Double(index)]
              }
            )
          }
          return [:]
        }
      }
      // Refused by an interceptor before it runs.
      router.registerHandler(
        forMethod: Vane_V1_FeatureService.Method.GetCoverage.descriptor,
        deserializer: ProtobufDeserializer<Vane_V1_GetCoverageRequest>(),
        serializer: ProtobufSerializer<Vane_V1_Coverage>()
      ) { _, _ in
        StreamingServerResponse(single: ServerResponse(message: Vane_V1_Coverage()))
      }
    }
  }

  final class Log: Sendable {
    let entries = Mutex<[String]>([])
  }

  /// Records the methods it sees under its name; refuses `refusing` with PERMISSION_DENIED.
  struct Recorder: ServerInterceptor {
    let name: String
    let log: Log
    var refusing: String? = nil

    func intercept<Input: Sendable, Output: Sendable>(
      request: StreamingServerRequest<Input>,
      context: ServerContext,
      next: (StreamingServerRequest<Input>, ServerContext) async throws ->
        StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
      self.log.entries.withLock { $0.append("\(self.name) \(context.descriptor.method)") }
      if context.descriptor.method == self.refusing {
        throw RPCError(code: .permissionDenied, message: "\(self.name) refuses")
      }
      return try await next(request, context)
    }
  }

  /// What a client sees from a server made by `makeServer`: GetServiceInfo's version, the
  /// streamed values, the status of a refused and of an unknown method, and the interceptors'
  /// log.
  func observe(
    _ makeServer: (ShimServerTransport, [ConditionalInterceptor<any ServerInterceptor>]) ->
      GRPCServer<ShimServerTransport>
  ) async throws -> [String] {
    let log = Log()
    let pipeline: [ConditionalInterceptor<any ServerInterceptor>] = [
      .apply(Recorder(name: "first", log: log), to: .all),
      .apply(
        Recorder(name: "second", log: log, refusing: "GetCoverage"),
        to: .services([Vane_V1_FeatureService.descriptor])
      ),
    ]
    let transport = ShimServerTransport(config: .init(address: "127.0.0.1:0"))
    let server = makeServer(transport, pipeline)
    var seen: [String] = []
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.serve() }
      defer { server.beginGracefulShutdown() }
      let port = try await transport.listeningPort
      try await withGRPCClient(
        transport: try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
      ) { grpc in
        let client = Vane_V1_FeatureService.Client(wrapping: grpc)
        seen.append(try await client.getServiceInfo(.init()).version)
        let values = try await client.streamFeatures(
          .with { $0.markets = [.with { $0.symbol = "ETHUSDT" }] }
        ) { response in
          var values: [String] = []
          for try await vector in response.messages {
            values.append("\(vector.symbol) \(vector.values)")
          }
          return values
        }
        seen += values
        for call in ["GetCoverage", "GetFeatures"] {
          do {
            if call == "GetCoverage" {
              _ = try await client.getCoverage(.init())
            } else {
              _ = try await client.getFeatures(.init())
            }
            seen.append("\(call) answered")
          } catch let error as RPCError {
            seen.append("\(call) \(error.code)")
          }
        }
      }
    }
    return seen + log.entries.withLock { $0 }
  }

  @Test("A routed server answers, streams, refuses and intercepts as a server given the services")
  func routedEqualsExistential() async throws {
    let routed = try await self.observe { transport, pipeline in
      GRPCServer(
        transport: transport,
        routed: [RoutedService(Double(kind: "double"))],
        interceptorPipeline: pipeline
      )
    }
    let existential = try await self.observe { transport, pipeline in
      GRPCServer(
        transport: transport,
        services: [Double(kind: "double")],
        interceptorPipeline: pipeline
      )
    }
    #expect(routed == existential)
    #expect(
      routed == [
        "double",
        "ETHUSDT [0.0]", "ETHUSDT [1.0]", "ETHUSDT [2.0]",
        "GetCoverage permissionDenied",
        "GetFeatures unimplemented",
        "first GetServiceInfo", "second GetServiceInfo",
        "first StreamFeatures", "second StreamFeatures",
        "first GetCoverage", "second GetCoverage",
      ]
    )
  }
}
