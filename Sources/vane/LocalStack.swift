import ArgumentParser
import GRPCShimTransport
import Synchronization
import VaneCore
import VaneRuntime
internal import Foundation

/// The five services as local processes on loopback, started with the commands
/// Compose/compose.yaml declares: what `vane stack` runs, and what `vane pipeline` starts when
/// it is not given running services.
final class LocalStack: Sendable {
  /// A service process ended (by itself, or because the stack stopped it).
  struct Exit: Sendable {
    var kind: ServiceKind
    var status: Int32
  }

  let plan: [StackPlan.Process]
  /// Every exit, in the order they happen.
  let exits: AsyncStream<Exit>
  private let running: Mutex<[Int32]>
  private let processes: Mutex<[Process]>

  /// Starts every process of `plan` (the executable is this one).
  /// - Parameters:
  ///   - environment: variables added to the inherited environment and the plan's.
  ///   - logDirectory: where each service's output goes (`<kind>.log`); nil: this terminal.
  init(
    plan: [StackPlan.Process],
    gracePeriod: Double,
    environment: [String: String] = [:],
    logDirectory: String? = nil
  ) throws {
    self.plan = plan
    let (exits, sink) = AsyncStream<Exit>.makeStream()
    self.exits = exits
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var started: [Process] = []
    do {
      if let logDirectory {
        try FileManager.default.createDirectory(
          atPath: logDirectory,
          withIntermediateDirectories: true
        )
      }
      for entry in plan {
        let process = Process()
        process.executableURL = executable
        process.arguments = entry.arguments
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in entry.environment { variables[key] = value }
        for (key, value) in environment { variables[key] = value }
        variables["VANE_GRACE_PERIOD"] = String(gracePeriod)
        // A child whose parent dies (kill -9 of this process) stops itself.
        variables["VANE_STACK_PARENT_PID"] = String(ProcessInfo.processInfo.processIdentifier)
        process.environment = variables
        if let logDirectory {
          let path = logDirectory + "/\(entry.kind.rawValue).log"
          _ = FileManager.default.createFile(atPath: path, contents: nil)
          let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
          process.standardOutput = log
          process.standardError = log
        }
        let kind = entry.kind
        process.terminationHandler = { sink.yield(Exit(kind: kind, status: $0.terminationStatus)) }
        try process.run()
        started.append(process)
      }
    } catch {
      Self.stop(started, grace: 0)
      throw ValidationError("cannot start the services: \(error)")
    }
    self.running = Mutex(started.map(\.processIdentifier))
    self.processes = Mutex(started)
  }

  /// The address of `kind`'s server.
  func address(_ kind: ServiceKind) -> String {
    self.plan.first { $0.kind == kind }!.address
  }

  /// Process ids, in plan order.
  var processIdentifiers: [Int32] { self.running.withLock { $0 } }

  /// Waits until every service reports SERVING on its health service.
  /// - Throws: a ValidationError naming the first service that did not within `timeout`.
  func waitUntilServing(timeout: Duration) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
      for entry in self.plan {
        group.addTask {
          let outcome = await HealthProbe.waitUntilServing(
            config: .init(target: entry.address),
            service: entry.kind.grpcServiceName,
            timeout: timeout
          )
          guard outcome == .serving else {
            throw ValidationError(
              "\(entry.kind.rawValue) did not report SERVING on \(entry.address) within \(timeout) (last probe: \(outcome))"
            )
          }
        }
      }
      try await group.waitForAll()
    }
  }

  /// SIGTERM to every process still running, then SIGKILL to any left after `grace` + 5 s.
  /// Idempotent; it waits on a thread of its own, never on the cooperative pool.
  func stop(grace: Double) async {
    let processes = self.processes.withLock { processes in
      defer { processes.removeAll() }
      return processes
    }
    guard !processes.isEmpty else { return }
    let box = ProcessBox(processes)
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let thread = Thread {
        Self.stop(box.processes, grace: grace)
        continuation.resume()
      }
      thread.start()
    }
  }

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

/// Hands processes to the thread that stops them (Foundation's `Process` is not `Sendable`;
/// only that thread touches them once the stack has let go of them).
private final class ProcessBox: @unchecked Sendable {
  let processes: [Process]
  init(_ processes: [Process]) { self.processes = processes }
}
