import ArgumentParser
import Foundation

/// System calls per call of a process, counted by strace's summary (`strace -f -c`).
///
/// Instructions say what a call costs on the CPU; they miss what a sequential call waits for.
/// Each hand-off of a call between threads is a futex wake on one side and a futex wait on the
/// other, with a context switch between, and on this kind of machine those, not instructions,
/// are most of a sequential call's latency. Counted beside grpc++'s own, they show how many
/// hand-offs each side adds.
struct SyscallCounter {
  /// System calls by name, over some number of RPCs.
  struct Counts: Equatable {
    var calls: [String: Int]
    var rpcs: Int

    /// Each system call's count per RPC.
    func perRPC(_ name: String) -> Double {
      Double(self.calls[name] ?? 0) / Double(max(self.rpcs, 1))
    }

    var total: Double { Double(self.calls.values.reduce(0, +)) / Double(max(self.rpcs, 1)) }

    /// The calls of `self` beyond `other`'s, over the RPCs beyond `other`'s.
    func subtracting(_ other: Counts) -> Counts {
      var calls = self.calls
      for (name, count) in other.calls { calls[name, default: 0] -= count }
      return Counts(calls: calls.mapValues { max($0, 0) }, rpcs: self.rpcs - other.rpcs)
    }
  }

  /// The most of a summary that is read: strace's table has one short line per system call.
  static let maximumSummaryBytes = 1 << 20

  /// Parses the table `strace -c` writes (`% time  seconds  usecs/call  calls  errors  syscall`):
  /// each row's calls by its name; the header, rules and the total row are skipped.
  /// - Throws: when there is no row, or a row's calls are not a count.
  static func parse(summary text: String) throws -> [String: Int] {
    guard text.utf8.count <= Self.maximumSummaryBytes else {
      throw ValidationError("strace summary: over \(Self.maximumSummaryBytes) bytes")
    }
    var calls: [String: Int] = [:]
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
    {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      // A row: percent, seconds, usecs/call, calls, [errors,] name. The total row names "total".
      guard fields.count >= 5, let first = fields.first, Double(first) != nil else { continue }
      let name = String(fields[fields.count - 1])
      if name == "total" { continue }
      guard let count = Int(fields[3]), count >= 0 else {
        throw ValidationError(
          "strace summary line \(index + 1): calls '\(fields[3])' is not a count"
        )
      }
      calls[name, default: 0] += count
    }
    guard !calls.isEmpty else { throw ValidationError("strace summary: no system call rows") }
    return calls
  }

  let strace: String
  let scratch: URL

  /// A counter using `strace` from the PATH, writing its summaries under a scratch directory.
  static func prepare() throws -> SyscallCounter {
    guard let strace = CallgrindCounter.which("strace") else {
      throw ValidationError("--syscalls needs strace (apt-get install strace)")
    }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-syscalls-\(getpid())"
    )
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    return SyscallCounter(strace: strace, scratch: scratch)
  }

  func removeScratch() {
    try? FileManager.default.removeItem(at: self.scratch)
  }

  /// Counts a running server's system calls, every thread, while `drive` makes `rpcs` calls;
  /// then kills the server (SIGKILL: nothing of a shutdown is counted), which ends strace and
  /// has it write its summary. (strace is not stopped by a signal of its own: it inherits
  /// vane's blocked SIGINT and SIGTERM.)
  func countServer(
    name: String,
    pid: Int32,
    rpcs: Int,
    drive: () async throws -> Void
  ) async throws -> Counts {
    let summary = self.scratch.appendingPathComponent("\(name).strace")
    let tracer = Process()
    tracer.executableURL = URL(fileURLWithPath: self.strace)
    tracer.arguments = ["-f", "-c", "-o", summary.path, "-p", "\(pid)"]
    tracer.standardError = FileHandle.nullDevice
    try tracer.run()
    // Calls count only once strace holds every thread: each says so in its TracerPid.
    let deadline = ContinuousClock.now + .seconds(30)
    while !Self.traced(pid: pid, by: tracer.processIdentifier) {
      guard tracer.isRunning, ContinuousClock.now < deadline else {
        tracer.terminate()
        throw ValidationError("strace could not attach to \(name) (pid \(pid))")
      }
      try await Task.sleep(for: .milliseconds(50))
    }
    try await drive()
    kill(pid, SIGKILL)
    tracer.waitUntilExit()
    let text = try String(contentsOf: summary, encoding: .utf8)
    return Counts(calls: try Self.parse(summary: text), rpcs: rpcs)
  }

  /// Whether every thread of `pid` is traced by `tracer` (`TracerPid` in each task's status).
  static func traced(pid: Int32, by tracer: Int32) -> Bool {
    let tasks = "/proc/\(pid)/task"
    guard let threads = try? FileManager.default.contentsOfDirectory(atPath: tasks),
      !threads.isEmpty
    else { return false }
    return threads.allSatisfy { thread in
      guard let status = try? String(contentsOfFile: "\(tasks)/\(thread)/status", encoding: .utf8)
      else { return false }
      return status.split(separator: "\n").contains { $0 == "TracerPid:\t\(tracer)" }
    }
  }

  /// Counts a client process: run with `few` and with `many` calls, the difference per extra
  /// call (start-up and warm-up cancel out).
  func countClient(
    name: String,
    program: String,
    few: Int,
    many: Int,
    arguments: (Int) -> [String]
  ) throws -> Counts {
    var runs: [Counts] = []
    for rpcs in [few, many] {
      let summary = self.scratch.appendingPathComponent("\(name)-\(rpcs).strace")
      let process = Process()
      process.executableURL = URL(fileURLWithPath: self.strace)
      process.arguments = ["-f", "-c", "-o", summary.path, program] + arguments(rpcs)
      process.standardError = FileHandle.nullDevice
      try CallgrindCounter.runToEnd(process, name: "\(name) under strace")
      let text = try String(contentsOf: summary, encoding: .utf8)
      runs.append(Counts(calls: try Self.parse(summary: text), rpcs: rpcs))
    }
    return runs[1].subtracting(runs[0])
  }
}

extension RPCBench {
  /// System calls per sequential call of each side, against a native C++ peer (`--syscalls`).
  func countSyscalls(cxx: String, responseSize: Int) async throws {
    let vane = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    let rpcs = self.syscallCalls
    print(
      "\nsystem calls per call (strace -f -c, \(rpcs) sequential calls; each side against a native C++ peer):"
    )
    let counter = try SyscallCounter.prepare()
    defer { counter.removeScratch() }
    let warmup = min(self.warmup, 500)

    func drive(_ target: String, _ pid: Int32, calls: Int) throws {
      _ = try self.cxxClient(
        cxx,
        target: target,
        server: pid,
        calls: calls,
        concurrency: 1,
        warmup: 0
      )
    }

    // Servers, driven by the native C++ client, counted after a warm-up.
    let feature = try await BenchServer.start()
    defer { feature.stop() }
    let swiftPID = feature.process.processIdentifier
    try drive(feature.address, swiftPID, calls: warmup)
    let swiftServer = try await counter.countServer(name: "vane-server", pid: swiftPID, rpcs: rpcs)
    {
      try drive(feature.address, swiftPID, calls: rpcs)
    }
    feature.stop()

    let reference = Self.cxxServer(cxx, responseSize: responseSize)
    defer {
      if reference.isRunning { reference.terminate() }
      reference.waitUntilExit()
    }
    let port = try Self.runCxxServer(reference)
    let target = "127.0.0.1:\(port)"
    let cxxPID = reference.processIdentifier

    // Clients, against the native C++ server (counted before it is, as that ends it).
    let few = 200
    let many = few + rpcs
    let swiftClient = try counter.countClient(
      name: "vane-client",
      program: vane,
      few: few,
      many: many
    ) { calls in
      [
        "bench", "rpc-client", "--target", target, "--calls", "\(calls)", "--concurrency", "1",
        "--warmup", "\(warmup)", "--deadline-ms", "\(self.deadlineMs)",
      ]
    }
    let cxxClient = try counter.countClient(
      name: "cxx-client",
      program: cxx,
      few: few,
      many: many
    ) { calls in
      [
        "client", "--target", target, "--method", "/vane.v1.FeatureService/GetServiceInfo",
        "--request-bytes", "0", "--calls", "\(calls)", "--concurrency", "1",
        "--warmup", "\(warmup)", "--timeout-ms", "\(self.deadlineMs)",
      ]
    }
    try drive(target, cxxPID, calls: warmup)
    let cxxServer = try await counter.countServer(name: "cxx-server", pid: cxxPID, rpcs: rpcs) {
      try drive(target, cxxPID, calls: rpcs)
    }
    Self.printSyscalls(server: (swiftServer, cxxServer), client: (swiftClient, cxxClient))
  }

  static func printSyscalls(
    server: (vane: SyscallCounter.Counts, cxx: SyscallCounter.Counts),
    client: (vane: SyscallCounter.Counts, cxx: SyscallCounter.Counts)
  ) {
    let sides = [server.vane, server.cxx, client.vane, client.cxx]
    // The ones that make up at least a tenth of a call on some side, most first.
    let names = Set(sides.flatMap { $0.calls.keys }).filter { name in
      sides.contains { $0.perRPC(name) >= 0.1 }
    }.sorted { a, b in
      let (x, y) = (sides.map { $0.perRPC(a) }.max()!, sides.map { $0.perRPC(b) }.max()!)
      return x != y ? x > y : a < b
    }
    func row(_ label: String, _ values: [Double]) -> String {
      label.padding(toLength: 20, withPad: " ", startingAt: 0)
        + values.map { String(format: "%12.2f", $0) }.joined()
    }
    print(
      "syscall".padding(toLength: 20, withPad: " ", startingAt: 0)
        + ["server vane", "grpc++", "client vane", "grpc++"].map {
          String(repeating: " ", count: 12 - $0.count) + $0
        }.joined()
    )
    for name in names { print(row(name, sides.map { $0.perRPC(name) })) }
    print(row("total", sides.map(\.total)))
    let futex = sides.map { $0.perRPC("futex") }
    print(
      String(
        format:
          "futex calls per call (a thread hand-off is a wake and a wait): server vane %.1f / grpc++ %.1f; client vane %.1f / grpc++ %.1f",
        futex[0],
        futex[1],
        futex[2],
        futex[3]
      )
    )
  }
}
