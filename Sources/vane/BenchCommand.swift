import ArgumentParser
import GRPCCore
import SwiftProtobuf
import GRPCShimTransport
import VaneCore
import VaneProto
import VaneRuntime
internal import Foundation

/// `vane bench …`: benchmarks that print figures (never assertions).
struct BenchCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Benchmarks that print figures.",
    subcommands: [
      PipelineBench.self, RPCBench.self, RPCBenchClient.self, FeatureBench.self, QualityBench.self,
      TrainBench.self,
      ModelBench.self, PredictorBench.self, PredictorBenchCalls.self, PredictorBenchSequential.self,
      DeployBench.self,
      ONNXBench.self,
    ]
  )
}

/// Unary round trips between two processes over loopback through the full stack, beside the
/// same workload between a plain grpc++ client and server (the transport's ceiling).
struct RPCBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rpc",
    abstract: "Unary RPC latency and throughput: Vane's full stack vs plain C++ grpc++.",
    discussion: """
      Workload: FeatureService/GetServiceInfo (an empty request, a ~300-byte response) against a
      `vane serve feature` process; the C++ reference answers the same method with a response of
      the same size. Sequential calls give p50/p99 latency; 64 calls in flight give calls/s.
      Needs the vane-bench-cxx executable next to vane (`make bench` builds both, release).
      """
  )

  @Option(help: "Sequential calls to time.")
  var sequential = 20_000

  @Option(help: "Calls to time with --concurrency in flight.")
  var calls = 100_000

  @Option(help: "Calls in flight for the throughput run.")
  var concurrency = 64

  @Option(help: "Untimed calls before each run.")
  var warmup = 2_000

  @Option(help: "Deadline of every call in milliseconds, for both clients (0: none).")
  var deadlineMs = 10_000

  @Flag(
    help:
      "Also count instructions per call of each side under valgrind's callgrind, by library (a few minutes)."
  )
  var instructions = false

  @Option(help: "Calls counted on each side with --instructions.")
  var instructionCalls = 2_000

  @Option(
    help:
      "With --instructions, keep the callgrind profiles in this directory (for callgrind_annotate)."
  )
  var profiles: String?

  @Flag(
    help:
      "Also count system calls per sequential call of each side with strace (futex calls are thread hand-offs)."
  )
  var syscalls = false

  @Option(help: "Sequential calls counted on each side with --syscalls.")
  var syscallCalls = 2_000

  struct Figures: Decodable {
    var calls: Int
    var concurrency: Int
    var seconds: Double
    var calls_per_second: Double
    var p50_us: Double
    var p90_us: Double
    var p99_us: Double
    var errors: Int
    /// CPU time per call of the client's process (every thread), over the timed calls.
    var client_cpu_us: Double?
    /// The same for the server's process, measured from outside (/proc).
    var server_cpu_us: Double?
  }

  func run() async throws {
    let directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
      .deletingLastPathComponent()
    let cxx = directory.appendingPathComponent("vane-bench-cxx").path
    guard FileManager.default.isExecutableFile(atPath: cxx) else {
      throw ValidationError(
        "vane-bench-cxx is not next to vane (\(cxx)); build it: swift build -c release --product vane-bench-cxx"
      )
    }
    // The Vane server: a real `vane serve feature` process.
    let feature = try await BenchServer.start()
    defer { feature.stop() }
    let address = feature.address

    // The response the Vane server sends, so the C++ reference answers with the same size.
    let probe = try ShimClientTransport(config: .init(target: address))
    let responseSize = try await withGRPCClient(transport: probe) { client -> Int in
      let info = try await Vane_V1_FeatureService.Client(wrapping: client).getServiceInfo(
        Vane_V1_GetServiceInfoRequest()
      )
      let bytes: [UInt8] = try info.serializedBytes()
      return bytes.count
    }

    print(
      "vane bench rpc: unary FeatureService/GetServiceInfo, empty request, \(responseSize)-byte response, loopback, \(ProcessInfo.processInfo.activeProcessorCount) cores"
    )
    let swiftServer = feature.process.processIdentifier
    let swiftSequential = try await self.swiftRun(
      address: address,
      server: swiftServer,
      calls: self.sequential,
      concurrency: 1
    )
    let swiftConcurrent = try await self.swiftRun(
      address: address,
      server: swiftServer,
      calls: self.calls,
      concurrency: self.concurrency
    )
    let cxxClientToSwift = try self.cxxClient(
      cxx,
      target: address,
      server: swiftServer,
      calls: self.calls,
      concurrency: self.concurrency
    )
    let cxxClientToSwiftSequential = try self.cxxClient(
      cxx,
      target: address,
      server: swiftServer,
      calls: self.sequential,
      concurrency: 1
    )
    feature.stop()

    let reference = Self.cxxServer(cxx, responseSize: responseSize)
    defer {
      reference.terminate()
      reference.waitUntilExit()
    }
    let referencePort = try Self.runCxxServer(reference)
    let referenceAddress = "127.0.0.1:\(referencePort)"
    let cxxServer = reference.processIdentifier
    let cxxSequential = try self.cxxClient(
      cxx,
      target: referenceAddress,
      server: cxxServer,
      calls: self.sequential,
      concurrency: 1
    )
    let cxxConcurrent = try self.cxxClient(
      cxx,
      target: referenceAddress,
      server: cxxServer,
      calls: self.calls,
      concurrency: self.concurrency
    )
    let swiftClientToCxx = try await self.swiftRun(
      address: referenceAddress,
      server: cxxServer,
      calls: self.calls,
      concurrency: self.concurrency
    )
    let swiftClientToCxxSequential = try await self.swiftRun(
      address: referenceAddress,
      server: cxxServer,
      calls: self.sequential,
      concurrency: 1
    )

    func row(_ name: String, _ f: Figures) -> String {
      name.padding(toLength: 44, withPad: " ", startingAt: 0)
        + String(
          format: "%9d %5d %12.0f %9.1f %9.1f %9.1f %6d %9.1f %9.1f",
          f.calls,
          f.concurrency,
          f.calls_per_second,
          f.p50_us,
          f.p90_us,
          f.p99_us,
          f.errors,
          f.client_cpu_us ?? .nan,
          f.server_cpu_us ?? .nan
        )
    }
    print(
      "run".padding(toLength: 44, withPad: " ", startingAt: 0)
        + "    calls  in-flight  calls/s   p50 µs    p90 µs    p99 µs errors  client µs server µs"
    )
    print(
      "".padding(toLength: 44, withPad: " ", startingAt: 0)
        + "                                                             (CPU time per call)"
    )
    print(row("vane (Swift client -> Swift server)", swiftSequential))
    print(row("plain grpc++ (C++ client -> C++ server)", cxxSequential))
    print(row("vane (Swift client -> Swift server)", swiftConcurrent))
    print(row("plain grpc++ (C++ client -> C++ server)", cxxConcurrent))
    print(row("mixed (C++ client -> Swift server)", cxxClientToSwift))
    print(row("mixed (C++ client -> Swift server)", cxxClientToSwiftSequential))
    print(row("mixed (Swift client -> C++ server)", swiftClientToCxx))
    print(row("mixed (Swift client -> C++ server)", swiftClientToCxxSequential))
    let throughputRatio = swiftConcurrent.calls_per_second / cxxConcurrent.calls_per_second
    let latencyRatio = swiftSequential.p50_us / cxxSequential.p50_us
    print(
      String(
        format: "throughput, %d in flight: vane / grpc++ = %.2f× (target ≥ 0.80×) %@",
        self.concurrency,
        throughputRatio,
        throughputRatio >= 0.8 ? "met" : "NOT met"
      )
    )
    print(
      String(
        format: "sequential p50: vane / grpc++ = %.2f× (target ≤ 1.25×) %@",
        latencyRatio,
        latencyRatio <= 1.25 ? "met" : "NOT met"
      )
    )
    // Where the gap goes: CPU per call of each side against grpc++'s, each measured against
    // the other side's C++ peer so that the two are apart.
    if let swiftServer = cxxClientToSwift.server_cpu_us,
      let cxxServer = cxxConcurrent.server_cpu_us,
      let swiftClient = swiftClientToCxx.client_cpu_us, let cxxClient = cxxConcurrent.client_cpu_us
    {
      print(
        String(
          format:
            "CPU per call, %d in flight: server vane %.1f µs / grpc++ %.1f µs = %.2f×; client vane %.1f µs / grpc++ %.1f µs = %.2f×",
          self.concurrency,
          swiftServer,
          cxxServer,
          swiftServer / cxxServer,
          swiftClient,
          cxxClient,
          swiftClient / cxxClient
        )
      )
    }
    if self.instructions {
      try await self.countInstructions(cxx: cxx, responseSize: responseSize)
    }
    if self.syscalls {
      try await self.countSyscalls(cxx: cxx, responseSize: responseSize)
    }
  }

  private func swiftRun(
    address: String,
    server: Int32?,
    calls: Int,
    concurrency: Int
  ) async throws -> Figures {
    try await Self.swiftRun(
      address: address,
      server: server,
      calls: calls,
      concurrency: concurrency,
      warmup: self.warmup,
      deadlineMs: self.deadlineMs
    )
  }

  /// The plain grpc++ server (not started): it answers every call with `responseSize` bytes.
  static func cxxServer(_ cxx: String, responseSize: Int) -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: cxx)
    process.arguments = [
      "server", "--address", "127.0.0.1:0", "--response-bytes", "\(responseSize)",
    ]
    return process
  }

  /// Starts a `vane-bench-cxx server` process (stdin kept open: it exits when stdin closes) and
  /// returns the port it says it listens on.
  static func runCxxServer(_ process: Process) throws -> Int {
    let output = Pipe()
    process.standardOutput = output
    process.standardInput = Pipe()
    try process.run()
    let line = FileDescriptorReader.readLine(output.fileHandleForReading.fileDescriptor) ?? ""
    guard line.hasPrefix("LISTENING "),
      let port = Int(line.dropFirst(10).trimmingCharacters(in: .whitespaces))
    else {
      throw ValidationError("vane-bench-cxx server said '\(line)'")
    }
    return port
  }

  /// Calls made by Vane's Swift client through the shim, timed.
  static func swiftRun(
    address: String,
    server: Int32?,
    calls: Int,
    concurrency: Int,
    warmup: Int,
    deadlineMs: Int
  ) async throws -> Figures {
    let transport = try ShimClientTransport(config: .init(target: address))
    return try await withGRPCClient(transport: transport) { grpcClient in
      let client = Vane_V1_FeatureService.Client(wrapping: grpcClient)
      let request = Vane_V1_GetServiceInfoRequest()
      // The same calls as the C++ client makes: with a deadline, which grpc++ keeps on both
      // sides (as Vane's own clients set it: ShimCallDeadline).
      let deadline: Duration? = deadlineMs > 0 ? .milliseconds(deadlineMs) : nil
      return try await ShimCallDeadline.$timeout.withValue(deadline) {
        for _ in 0 ..< warmup { _ = try await client.getServiceInfo(request) }
        let before = (
          client: CPUTime.ofThisProcess(), server: server.flatMap { CPUTime.of(process: $0) }
        )
        let load = try await LoadRun.measure(
          calls: calls,
          concurrency: concurrency,
          warmup: 0
        ) {
          _ = try await client.getServiceInfo(request)
        }
        var figures = load.figures
        let count = Double(load.calls.count)
        figures.client_cpu_us = (CPUTime.ofThisProcess() - before.client) * 1e6 / count
        if let server, let now = CPUTime.of(process: server), let then = before.server {
          figures.server_cpu_us = (now - then) * 1e6 / count
        }
        return figures
      }
    }
  }

  func cxxClient(
    _ path: String,
    target: String,
    server: Int32,
    calls: Int,
    concurrency: Int,
    warmup: Int? = nil
  ) throws -> Figures {
    let warmup = warmup ?? self.warmup
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = [
      "client", "--target", target, "--method", "/vane.v1.FeatureService/GetServiceInfo",
      "--request-bytes", "0", "--calls", "\(calls)", "--concurrency", "\(concurrency)", "--warmup",
      "\(warmup)", "--timeout-ms", "\(self.deadlineMs)",
    ]
    let output = Pipe()
    process.standardOutput = output
    // The server's CPU over the whole client run, warm-up included, is counted per timed call;
    // the warm-up is a fixed small share, so the server's figure is a slight overestimate.
    let serverBefore = CPUTime.of(process: server)
    try process.run()
    let data = Data(FileDescriptorReader.readAll(output.fileHandleForReading.fileDescriptor))
    process.waitUntilExit()
    let serverAfter = CPUTime.of(process: server)
    guard process.terminationStatus == 0 else {
      throw ValidationError("vane-bench-cxx client exited with \(process.terminationStatus)")
    }
    let lastLine =
      String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    var figures = try JSONDecoder().decode(Figures.self, from: Data(lastLine.utf8))
    if let serverBefore, let serverAfter, figures.calls > 0 {
      figures.server_cpu_us =
        (serverAfter - serverBefore) * 1e6 / Double(figures.calls + warmup)
    }
    return figures
  }
}

/// CPU time (user and system, every thread) of a process, in seconds.
enum CPUTime {
  static func ofThisProcess() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
      + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
  }

  /// Another process's, from /proc/PID/stat (clock-tick resolution); nil when it cannot be read.
  static func of(process pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    // After "pid (comm)": field 3 is the state; utime and stime are fields 14 and 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
      return nil
    }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
  }
}

/// Calls made by `concurrency` workers, each timed: what every RPC benchmark measures.
struct LoadRun: Sendable {
  /// Start (since the run began) and latency of each call, and whether it failed.
  var calls: [(start: Duration, latency: Duration, failed: Bool)]
  var concurrency: Int
  var elapsed: Duration

  /// Runs `warmup` untimed calls, then `calls` calls split over `concurrency` workers.
  static func measure(
    calls: Int,
    concurrency: Int,
    warmup: Int,
    _ call: @escaping @Sendable () async throws -> Void
  ) async throws -> LoadRun {
    for _ in 0 ..< warmup { try await call() }
    let clock = ContinuousClock()
    let perWorker = max(1, calls / concurrency)
    let started = clock.now
    let timed = await withTaskGroup(of: [(start: Duration, latency: Duration, failed: Bool)].self) {
      group in
      for _ in 0 ..< concurrency {
        group.addTask {
          var part: [(start: Duration, latency: Duration, failed: Bool)] = []
          part.reserveCapacity(perWorker)
          for _ in 0 ..< perWorker {
            let start = clock.now
            var failed = false
            do { try await call() } catch { failed = true }
            part.append((started.duration(to: start), start.duration(to: clock.now), failed))
          }
          return part
        }
      }
      var all: [(start: Duration, latency: Duration, failed: Bool)] = []
      for await part in group { all += part }
      return all
    }
    return LoadRun(calls: timed, concurrency: concurrency, elapsed: started.duration(to: clock.now))
  }

  /// Two kinds of call measured side by side: `rounds` rounds of `calls / rounds` calls of
  /// each, the one that goes first alternating, so that a noisy neighbour that slows part of
  /// the run slows both alike (run one after the other, their p50s moved ±8 % apart between
  /// runs on a quiet-looking machine).
  /// `prepare(true)` runs before each block of `a`, `prepare(false)` before each of `b` (to
  /// switch the server between the two settings being compared).
  static func interleaved(
    calls: Int,
    concurrency: Int,
    rounds: Int,
    warmup: Int,
    prepare: (Bool) async throws -> Void = { _ in },
    _ a: @escaping @Sendable () async throws -> Void,
    _ b: @escaping @Sendable () async throws -> Void
  ) async throws -> (LoadRun, LoadRun) {
    var first = LoadRun(calls: [], concurrency: concurrency, elapsed: .zero)
    var second = first
    let perRound = max(concurrency, calls / max(1, rounds))
    for round in 0 ..< max(1, rounds) {
      for isA in round % 2 == 0 ? [true, false] : [false, true] {
        try await prepare(isA)
        if round == 0 {
          for _ in 0 ..< warmup { try await (isA ? a : b)() }
        }
        let run = try await Self.measure(
          calls: perRound,
          concurrency: concurrency,
          warmup: 0,
          isA ? a : b
        )
        if isA { first.append(run) } else { second.append(run) }
      }
    }
    return (first, second)
  }

  /// `other`'s calls after this run's, as if it had run on from where this one ended.
  mutating func append(_ other: LoadRun) {
    let offset = self.elapsed
    self.calls += other.calls.map { ($0.start + offset, $0.latency, $0.failed) }
    self.elapsed += other.elapsed
  }

  static func micros(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
  }

  /// Latency percentiles (µs) of the calls that started in `window` (all when nil).
  func percentiles(
    in window: Range<Duration>? = nil
  ) -> (p50: Double, p90: Double, p99: Double, count: Int) {
    let micros = self.calls.filter { window?.contains($0.start) ?? true }.map {
      Self.micros($0.latency)
    }.sorted()
    func percentile(_ p: Double) -> Double {
      micros.isEmpty ? 0 : micros[min(micros.count - 1, Int(Double(micros.count) * p))]
    }
    return (percentile(0.5), percentile(0.9), percentile(0.99), micros.count)
  }

  var failures: Int { self.calls.filter(\.failed).count }

  var figures: RPCBench.Figures {
    let seconds = Self.micros(self.elapsed) / 1e6
    let p = self.percentiles()
    return RPCBench.Figures(
      calls: self.calls.count,
      concurrency: self.concurrency,
      seconds: seconds,
      calls_per_second: Double(self.calls.count) / seconds,
      p50_us: p.p50,
      p90_us: p.p90,
      p99_us: p.p99,
      errors: self.failures
    )
  }
}

/// A `vane serve feature` process over a scratch data directory, for benchmarks.
struct BenchServer {
  let process: Process
  let address: String
  let dataDirectory: URL

  /// Starts the server next to this executable and waits until it is SERVING.
  static func start() async throws -> BenchServer {
    let directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
      .deletingLastPathComponent()
    let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-\(getpid())-\(UUID().uuidString)"
    )
    let port = try freePort()
    let process = Process()
    process.executableURL = directory.appendingPathComponent("vane")
    process.arguments = [
      "serve", "feature", "--address", "127.0.0.1:\(port)", "--data-dir", dataDirectory.path,
      "--log-level", "error",
    ]
    try process.run()
    let server = BenchServer(
      process: process,
      address: "127.0.0.1:\(port)",
      dataDirectory: dataDirectory
    )
    let outcome = await HealthProbe.waitUntilServing(
      config: .init(target: server.address),
      service: "",
      timeout: .seconds(30)
    )
    guard outcome == .serving else {
      server.stop()
      throw ValidationError(
        "the vane server on \(server.address) did not become SERVING (last probe: \(outcome))"
      )
    }
    return server
  }

  /// Stops the server (if still running) and removes its data.
  func stop() {
    if self.process.isRunning {
      self.process.terminate()
      self.process.waitUntilExit()
    }
    try? FileManager.default.removeItem(at: self.dataDirectory)
  }
}

/// A port that was free a moment ago (bind to port 0, read it, close).
func freePort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { throw ValidationError("socket() failed") }
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
      guard bind(fd, pointer, length) == 0 else { return -1 }
      return getsockname(fd, pointer, &length)
    }
  }
  guard bound == 0 else { throw ValidationError("could not find a free port") }
  return Int(UInt16(bigEndian: address.sin_port))
}

extension [Double] {
  /// The middle value, the upper of the two middle ones for an even count; nil when empty.
  var median: Double? { self.isEmpty ? nil : self.sorted()[self.count / 2] }
}
