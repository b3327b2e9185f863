import ArgumentParser
import VaneCore
internal import Foundation

/// `vane`: the one executable of the suite — services, the local stack, and client commands.
@main
struct Vane: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vane",
    abstract: "Candles in, calibrated and gated direction models out: the Vane service suite.",
    subcommands: [
      PipelineCommand.self, ServeCommand.self, StackCommand.self, HealthCommand.self,
      CallCommand.self, IngestCommand.self, FeaturesCommand.self, DatasetCommand.self,
      GateCommand.self, TrainCommand.self, JobsCommand.self, ModelsCommand.self,
      PredictCommand.self, DeployCommand.self, RolloutsCommand.self, ModelFileCommand.self,
      ImportCommand.self, BenchCommand.self,
      VersionCommand.self,
    ]
  )

  /// `vane health` keeps grpc_health_probe's exit codes, where bad arguments exit 1 (not the
  /// argument parser's usual 64).
  static func main() async {
    do {
      var command = try Self.parseAsRoot()
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      let arguments = CommandLine.arguments.dropFirst()
      if arguments.first == "health", !(error is ExitCode), Self.exitCode(for: error) != .success {
        let help = arguments.contains("--help") || arguments.contains("-h")
        if !help {
          FileHandle.standardError.write(Data((Self.fullMessage(for: error) + "\n").utf8))
          Foundation.exit(HealthCommand.ExitStatus.badArguments.rawValue)
        }
      }
      Self.exit(withError: error)
    }
  }
}

struct VersionCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "version",
    abstract: "Print the version and build commit."
  )

  func run() {
    print("vane \(BuildInfo.version) (\(BuildInfo.commit))")
  }
}
