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

  @Option(
    name: .customLong("base-port"),
    help: "Port of the feature service; the others follow (default 50051-50055)."
  )
  var basePort: Int = 50051

  @Option(
    name: .customLong("metrics-base-port"),
    help:
      "Port of the feature service's Prometheus endpoint (GET /metrics); the others follow. Default: --base-port + 10; 0: no metrics."
  )
  var metricsBasePort: Int?

  @Option(
    name: .customLong("data-dir"),
    help: "Root of the services' data directories (one folder each)."
  )
  var dataDirectory: String = "vane-data"

  @Option(
    name: .customLong("startup-timeout"),
    help: "Seconds to wait for every service to report SERVING."
  )
  var startupTimeout: Double = 60

  @Option(name: .customLong("grace-period"), help: "Seconds each service may drain on shutdown.")
  var gracePeriod: Double = 10

  func validate() throws {
    guard (1 ... 65520).contains(self.basePort) else {
      throw ValidationError("--base-port: \(self.basePort) is not a port from 1 to 65520")
    }
    try validateMetricsBasePort(self.metricsBasePort)
    guard self.startupTimeout > 0 else {
      throw ValidationError("--startup-timeout: must be positive")
    }
    guard self.gracePeriod >= 0 else {
      throw ValidationError("--grace-period: must not be negative")
    }
  }

  func run() async throws {
    VaneLogging.bootstrap(level: .info)
    let logger = Logger(label: "vane.stack")
    let dataRoot = URL(fileURLWithPath: self.dataDirectory).standardizedFileURL.path
    let plan = StackPlan.loopback(
      basePort: self.basePort,
      metricsBasePort: metricsBase(self.metricsBasePort, basePort: self.basePort),
      dataRoot: dataRoot
    )

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

    let stack = try LocalStack(plan: plan, gracePeriod: self.gracePeriod)
    let exitTask = Task {
      for await exit in stack.exits { sink.yield(.exited(exit.kind, exit.status)) }
    }
    defer { exitTask.cancel() }

    let timeout = Duration.milliseconds(Int64(self.startupTimeout * 1000))
    let startup = Task {
      do {
        try await stack.waitUntilServing(timeout: timeout)
        sink.yield(.ready)
      } catch {
        sink.yield(.startupFailed("\(error)"))
      }
    }
    defer { startup.cancel() }

    var failure: ExitCode?
    loop: for await event in events {
      switch event {
      case .ready:
        for (entry, pid) in zip(plan, stack.processIdentifiers) {
          let metrics =
            entry.environment["VANE_METRICS_ADDRESS"].map { "\tmetrics http://\($0)/metrics" } ?? ""
          Output.line(
            "\(entry.kind.rawValue)\t\(entry.kind.grpcServiceName)\t\(entry.address)\tpid \(pid)\(metrics)"
          )
        }
        Output.line("vane stack: all \(plan.count) services are SERVING; Ctrl-C stops them")
      case .startupFailed(let reason):
        logger.error("the stack did not start", metadata: ["reason": "\(reason)"])
        failure = .failure
        break loop
      case .exited(let kind, let status):
        logger.error(
          "a service exited; stopping the stack",
          metadata: ["service": "\(kind.rawValue)", "status": "\(status)"]
        )
        failure = .failure
        break loop
      case .signal:
        logger.info("stopping the stack")
        break loop
      }
    }
    exitTask.cancel()
    await stack.stop(grace: self.gracePeriod)
    if let failure { throw failure }
    Output.line("vane stack: stopped")
  }
}

/// `--metrics-base-port` of `vane stack` and `vane pipeline`: nil is the base port + 10, 0 none.
func metricsBase(_ option: Int?, basePort: Int) -> Int? {
  switch option {
  case nil: basePort + 10
  case 0: nil
  case let port?: port
  }
}

func validateMetricsBasePort(_ option: Int?) throws {
  if let port = option, !(0 ... 65530).contains(port) {
    throw ValidationError(
      "--metrics-base-port: \(port) is not 0 (no metrics) or a port up to 65530"
    )
  }
}
