import ArgumentParser
import FeatureService
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneFeatures
import VaneCore
import VaneProto
import VaneRollout
import VaneRuntime
internal import Foundation

/// A stage that failed: which service, which call and why; or a gate that said no.
struct PipelineError: Error, CustomStringConvertible {
  enum Kind: Sendable {
    /// A service refused or failed a call, or was unreachable: exit 1.
    case failed
    /// A gate said no: the first model did not pass its policy, so nothing can be served: exit 3.
    case gateSaidNo
  }

  var kind: Kind
  var stage: String
  var message: String

  var description: String { "\(self.stage): \(self.message)" }
}

/// Clients of the five services for one run, each with one long-lived connection.
struct PipelineClients: Sendable {
  let feature: Vane_V1_FeatureService.Client<ShimClientTransport>
  let trainer: Vane_V1_TrainerService.Client<ShimClientTransport>
  let predictor: Vane_V1_PredictorService.Client<ShimClientTransport>
  let gatekeeper: Vane_V1_GatekeeperService.Client<ShimClientTransport>
  let deploy: Vane_V1_DeployService.Client<ShimClientTransport>
  /// Sent with admin calls (the stack's token, when one is configured).
  let metadata: Metadata
  /// Unary calls' options (a deadline).
  let options: CallOptions

  /// Runs `body` with clients of the services at `addresses`, then closes their connections.
  static func with<R: Sendable>(
    addresses: [ServiceKind: String],
    connection: ClientConnectionOptions,
    _ body: @Sendable (PipelineClients) async throws -> R
  ) async throws -> R {
    let grpc = try ServiceKind.allCases.map { kind in
      (
        kind,
        GRPCClient(
          transport: try ShimClientTransport(config: connection.config(target: addresses[kind]!)),
          interceptors: [RequestIDClientInterceptor()]
        )
      )
    }
    let byKind = Dictionary(uniqueKeysWithValues: grpc)
    var options = CallOptions.defaults
    options.timeout = .seconds(60)
    let clients = PipelineClients(
      feature: .init(wrapping: byKind[.feature]!),
      trainer: .init(wrapping: byKind[.trainer]!),
      predictor: .init(wrapping: byKind[.predictor]!),
      gatekeeper: .init(wrapping: byKind[.gatekeeper]!),
      deploy: .init(wrapping: byKind[.deploy]!),
      metadata: try connection.metadata(),
      options: options
    )
    // One request id for the run: every call the pipeline makes, and every call those cause,
    // carries it into the services' logs and the prediction log.
    return try await RequestID.$current.withValue(RequestID.current ?? RequestID.make()) {
      try await withThrowingTaskGroup(of: Void.self) { group in
        for (_, client) in grpc { group.addTask { try await client.runConnections() } }
        defer { for (_, client) in grpc { client.beginGracefulShutdown() } }
        return try await body(clients)
      }
    }
  }
}

/// The stage a call belongs to, for its error: `Pipeline.call("train", .trainer, "StartTraining") { … }`.
func pipelineCall<R: Sendable>(
  _ stage: String,
  _ service: ServiceKind,
  _ method: String,
  _ body: () async throws -> R
) async throws -> R {
  do {
    return try await body()
  } catch let error as RPCError {
    throw PipelineError(
      kind: .failed,
      stage: stage,
      message: "\(service.grpcServiceName)/\(method): \(error.code): \(error.message)"
    )
  }
}

/// Times as the pipeline prints them (bar times in UTC).
enum PipelineTime {
  static func text(_ milliseconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [
      .withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime,
    ]
    formatter.timeZone = TimeZone(identifier: "UTC")
    return String(
      formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000)).prefix(16)
    )
  }

  static func timestamp(_ milliseconds: Int64) -> Google_Protobuf_Timestamp {
    Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
  }

  static func milliseconds(_ timestamp: Google_Protobuf_Timestamp) -> Int64 {
    timestamp.seconds * 1000 + Int64(timestamp.nanos / 1_000_000)
  }

  static func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
  }
}
