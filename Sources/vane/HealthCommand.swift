import ArgumentParser
import VaneRuntime
import GRPCShimTransport
internal import Foundation

/// `vane health ADDRESS [--service NAME]`, with grpc_health_probe's exit codes.
struct HealthCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "health",
    abstract: "Check a server's grpc.health.v1 status.",
    discussion: """
      Exit codes (as grpc_health_probe): 0 serving, 1 bad arguments, 2 connection failure,
      3 RPC failure (e.g. NOT_FOUND for an unknown service), 4 not serving.
      """
  )

  enum ExitStatus: Int32 {
    case serving = 0
    case badArguments = 1
    case connectionFailure = 2
    case rpcFailure = 3
    case notServing = 4
  }

  @Argument(help: "host:port of the server.")
  var address: String

  @Option(help: "Service name to check; empty checks the server as a whole.")
  var service: String = ""

  @Option(name: .customLong("connect-timeout"), help: "Seconds to wait for a connection.")
  var connectTimeout: Double = 1

  @Option(name: .customLong("rpc-timeout"), help: "Seconds to wait for the answer.")
  var rpcTimeout: Double = 1

  @OptionGroup var connection: ClientConnectionOptions

  func validate() throws {
    guard !self.address.isEmpty, self.address.contains(":") else {
      throw ValidationError("ADDRESS: '\(self.address)' is not host:port")
    }
    guard self.connectTimeout > 0 else {
      throw ValidationError("--connect-timeout: must be positive")
    }
    guard self.rpcTimeout > 0 else { throw ValidationError("--rpc-timeout: must be positive") }
  }

  func run() async throws {
    let config: ShimClientTransport.Config
    do {
      config = try self.connection.config(target: self.address)
    } catch {
      FileHandle.standardError.write(Data("\(error)\n".utf8))
      throw ExitCode(ExitStatus.badArguments.rawValue)
    }
    let outcome = await HealthProbe.check(
      config: config,
      service: self.service,
      connectTimeout: .milliseconds(Int64(self.connectTimeout * 1000)),
      rpcTimeout: .milliseconds(Int64(self.rpcTimeout * 1000))
    )
    let name = self.service.isEmpty ? "(server)" : self.service
    switch outcome {
    case .serving:
      print("status: SERVING")
    case .notServing(let status):
      FileHandle.standardError.write(
        Data("service \(name) unhealthy (responded with \(status))\n".utf8)
      )
      throw ExitCode(ExitStatus.notServing.rawValue)
    case .connectionFailure(let reason):
      FileHandle.standardError.write(
        Data("error: failed to connect service at \(self.address): \(reason)\n".utf8)
      )
      throw ExitCode(ExitStatus.connectionFailure.rawValue)
    case .rpcFailure(let reason):
      FileHandle.standardError.write(Data("error: health rpc failed: \(reason)\n".utf8))
      throw ExitCode(ExitStatus.rpcFailure.rawValue)
    }
  }
}
