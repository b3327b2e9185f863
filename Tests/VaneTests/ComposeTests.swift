import Foundation
import Testing
import VaneCore
import VaneRuntime
import Yams

/// `vane stack` must run exactly what Compose/compose.yaml declares.
@Suite("Compose file and vane stack agree")
struct ComposeTests {
  static let composeURL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Compose/compose.yaml")

  static func services() throws -> [String: [String: Any]] {
    let text = try String(contentsOf: Self.composeURL, encoding: .utf8)
    let document = try #require(try Yams.load(yaml: text) as? [String: Any])
    return try #require(document["services"] as? [String: [String: Any]])
  }

  @Test("compose.yaml declares exactly the five services and the pipeline")
  func fiveServices() throws {
    #expect(
      Set(try Self.services().keys) == Set(ServiceKind.allCases.map(\.rawValue) + ["pipeline"])
    )
  }

  @Test("The pipeline runs once over the five services, after they are healthy")
  func pipelineService() throws {
    let service = try #require(try Self.services()["pipeline"])
    let command = try #require(service["command"] as? [String])
    let addresses = ServiceKind.allCases.map { "\($0.rawValue):\($0.defaultPort)" }.joined(
      separator: ","
    )
    #expect(
      command == [
        "pipeline", "--addresses", addresses, "--data-dir",
        StackPlan.pipelineDirectory(dataRoot: "/var/lib/vane"),
      ]
    )
    #expect(service["restart"] as? String == "no")
    let dependencies = try #require(service["depends_on"] as? [String: Any])
    #expect(Set(dependencies.keys) == Set(ServiceKind.allCases.map(\.rawValue)))
    let volumes = try #require(service["volumes"] as? [String])
    #expect(
      volumes.contains("pipeline-data:\(StackPlan.pipelineDirectory(dataRoot: "/var/lib/vane"))")
    )
  }

  @Test("Each service's command is the one vane stack runs", arguments: ServiceKind.allCases)
  func commandMatches(kind: ServiceKind) throws {
    let service = try #require(try Self.services()[kind.rawValue])
    let command = try #require(service["command"] as? [String])
    #expect(command == StackPlan.arguments(for: kind))
    // The loopback stack passes the same arguments.
    let process = try #require(
      StackPlan.loopback(basePort: 50051, dataRoot: "/tmp/x").first { $0.kind == kind }
    )
    #expect(process.arguments == command)
  }

  @Test(
    "Each service's environment sets the same VANE_* variables",
    arguments: ServiceKind.allCases
  )
  func environmentMatches(kind: ServiceKind) throws {
    let service = try #require(try Self.services()[kind.rawValue])
    let environment = try #require(service["environment"] as? [String: Any]).mapValues { "\($0)" }
    #expect(environment == StackPlan.containerEnvironment(for: kind))
    let process = try #require(
      StackPlan.loopback(basePort: 50051, metricsBasePort: 50061, dataRoot: "/tmp/x").first {
        $0.kind == kind
      }
    )
    #expect(Set(process.environment.keys) == Set(environment.keys))
    #expect(process.environment["VANE_METRICS_ADDRESS"] == "127.0.0.1:\(kind.defaultMetricsPort)")
    #expect(process.address == "127.0.0.1:\(kind.defaultPort)")
  }

  @Test(
    "Each service has a vane health check, its port and a named data volume",
    arguments: ServiceKind.allCases
  )
  func healthAndVolume(kind: ServiceKind) throws {
    let service = try #require(try Self.services()[kind.rawValue])
    let healthcheck = try #require(service["healthcheck"] as? [String: Any])
    let test = try #require(healthcheck["test"] as? [String])
    #expect(
      test == [
        "CMD", "vane", "health", "127.0.0.1:\(kind.defaultPort)", "--service", kind.grpcServiceName,
      ]
    )
    let volumes = try #require(service["volumes"] as? [String])
    #expect(
      volumes == ["\(kind.rawValue)-data:\(StackPlan.containerDataDirectory(for: kind))"]
        + StackPlan.sharedVolumes(for: kind)
    )
    let ports = try #require(service["ports"] as? [String])
    #expect(
      ports == [
        "\(kind.defaultPort):\(kind.defaultPort)",
        "\(kind.defaultMetricsPort):\(kind.defaultMetricsPort)",
      ]
    )
  }
}
