import ArgumentParser
import VaneCore
import VaneMath
import VaneModels
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
    BLASCoreSelection.apply()
    do {
      var command = try Self.parseAsRoot()
      // Every benchmark's figures depend on the kernels they ran on.
      if BenchCommand.configuration.subcommands.contains(where: { $0 == type(of: command) }) {
        print(BLASCoreSelection.summary)
      }
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
    abstract:
      "Print the version, build commit, the BLAS kernels in use, the XGBoost library, the GPUs visible and the CUDA libraries found."
  )

  @Flag(help: "Print only the name of OpenBLAS's core in use (for OPENBLAS_CORETYPE elsewhere).")
  var blasCore = false

  func run() {
    if blasCore {
      print(BLAS.coreName)
      return
    }
    print("vane \(BuildInfo.version) (\(BuildInfo.commit))")
    print(BLASCoreSelection.summary)
    switch XGBoostModel.library {
    case .success(let info): print("XGBoost: \(info.description)")
    case .failure(let error): print("XGBoost: \(error.message)")
    }
    let gpus = CUDADevices.visible
    print(
      "GPUs: \(gpus.isEmpty ? "none visible (\(CUDADevices.driverDirectory))" : gpus.joined(separator: ", "))"
    )
    for line in CUDALibraries.shared.summary { print(line) }
  }
}
