import ArgumentParser
import Logging
import ServiceLifecycle
import UnixSignals
import VaneCore
import VaneRuntime
import GRPCShimTransport
internal import Foundation

/// `vane stack`: the whole suite as five local processes on loopback, started with the same
/// commands Compose/compose.yaml declares.
struct StackCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stack",
    abstract: "Run all five services locally on loopback until Ctrl-C or until one of them dies."
  )

  @Option(name: .customLong("base-port"), help: "Port of the feature service; the others follow (default 50051-50055).")
  var basePort: Int = 50051

  @Option(name: .customLong("data-dir"), help: "Root of the services' data directories (one folder each).")
  var dataDirectory: String = "vane-data"

  @Option(name: .customLong("startup-timeout"), help: "Seconds to wait for every service to report SERVING.")
  var startupTimeout: Double = 60

  @Option(name: .customLong("grace-period"), help: "Seconds each service may drain on shutdown.")
  var gracePeriod: Double = 10

  func validate() throws {
    guard (1...65530).contains(self.basePort) else { throw ValidationError("--base-port: \(self.basePort) is not a port from 1 to 65530") }
    guard self.startupTimeout > 0 else { throw ValidationError("--startup-timeout: must be positive") }
    guard self.gracePeriod >= 0 else { throw ValidationError("--grace-period: must not be negative") }
  }

  func run() async throws {
    VaneLogging.bootstrap(level: .info)
    let logger = Logger(label: "vane.stack")
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    let dataRoot = URL(fileURLWithPath: self.dataDirectory).standardizedFileURL.path
    let plan = StackPlan.loopback(basePort: self.basePort, dataRoot: dataRoot)

    // Every event the stack reacts to arrives on one stream, consumed by one loop.
    enum Event: Sendable {
      case ready
      case startupFailed(String)
      case exited(ServiceKind, Int32)
      case signal
    }
    let (events, sink) = AsyncStream<Event>.makeStream()

    // Signals are trapped before any child starts, so Ctrl-C always reaches this process's
    // shutdown path and never leaves children behind.
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    let signalTask = Task {
      for await _ in signals { sink.yield(.signal) }
    }
    defer { signalTask.cancel() }

    var running: [Process] = []
    defer { Self.stop(running, grace: self.gracePeriod) }
    for entry in plan {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: executable)
      process.arguments = entry.arguments
      var environment = ProcessInfo.processInfo.environment
      for (key, value) in entry.environment { environment[key] = value }
      environment["VANE_GRACE_PERIOD"] = String(self.gracePeriod)
      environment["VANE_STACK_PARENT_PID"] = String(ProcessInfo.processInfo.processIdentifier)
      process.environment = environment
      let kind = entry.kind
      process.terminationHandler = { sink.yield(.exited(kind, $0.terminationStatus)) }
      try process.run()
      running.append(process)
    }

    let timeout = Duration.milliseconds(Int64(self.startupTimeout * 1000))
    let startup = Task {
      do {
        for entry in plan {
          let up = await HealthProbe.waitUntilServing(
            config: .init(target: entry.address), service: entry.kind.grpcServiceName, timeout: timeout)
          guard up else {
            throw ValidationError("\(entry.kind.rawValue) did not report SERVING on \(entry.address) within \(timeout)")
          }
        }
        sink.yield(.ready)
      } catch {
        sink.yield(.startupFailed("\(error)"))
      }
    }
    defer { startup.cancel() }

    for await event in events {
      switch event {
      case .ready:
        for (entry, process) in zip(plan, running) {
          Output.line("\(entry.kind.rawValue)\t\(entry.kind.grpcServiceName)\t\(entry.address)\tpid \(process.processIdentifier)")
        }
        Output.line("vane stack: all \(plan.count) services are SERVING; Ctrl-C stops them")
      case .startupFailed(let reason):
        logger.error("the stack did not start", metadata: ["reason": "\(reason)"])
        throw ExitCode.failure
      case .exited(let kind, let status):
        logger.error("a service exited; stopping the stack", metadata: ["service": "\(kind.rawValue)", "status": "\(status)"])
        throw ExitCode.failure
      case .signal:
        logger.info("stopping the stack")
        Self.stop(running, grace: self.gracePeriod)
        running.removeAll()
        Output.line("vane stack: stopped")
        return
      }
    }
  }

  /// SIGTERM to every child still running, then SIGKILL to any left after the grace period.
  private static func stop(_ processes: [Process], grace: Double) {
    for process in processes where process.isRunning { process.terminate() }
    let deadline = Date().addingTimeInterval(grace + 5)
    while processes.contains(where: \.isRunning), Date() < deadline {
      usleep(20_000)
    }
    for process in processes where process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
  }
}
