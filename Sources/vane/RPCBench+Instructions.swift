import ArgumentParser
import VaneCore
import VaneRuntime
internal import Foundation

/// Instructions per call, counted by valgrind's callgrind: unlike CPU time, the count repeats
/// within a few percent on this noisy machine, and it says where the cost goes.
///
/// A server runs under callgrind while a native client drives it; its counters are zeroed after a
/// warm-up and dumped after the measured calls (`callgrind_control -z` / `-d`). A client runs
/// under callgrind twice, with few and with many calls, against a native server; the difference
/// over the difference in calls leaves start-up and shutdown out.
///
/// Two things keep Debian 12's valgrind (3.19) from running Swift programs, and this works
/// around both in a scratch directory: it cannot read DWARF 5 debug information (the toolchain's
/// and this build's), so it runs copies stripped of it (symbols stay, so functions are still
/// named); and it writes into the mask that `sigsuspend` is given, which libdispatch keeps in
/// read-only memory, so a small library preloaded into the process hands the system call a copy.
struct CallgrindCounter {
  /// Where the stripped copies, the preload library and the profiles live.
  let scratch: URL
  /// Stripped copies of the programs measured, by the original's path.
  private var programs: [String: String] = [:]
  /// A directory of stripped copies of the Swift runtime libraries (first on the library path).
  let runtimeLibraries: URL
  let preload: URL
  /// Whether callgrind also simulates the first-level caches (`--cache-sim=yes`): misses of the
  /// instruction and data caches per call, beside the instructions.
  var cacheSimulation = false

  /// Instructions of one side per call, by where they were spent.
  struct Counts {
    var perCall: Double
    /// Per call, by group of shared objects (``group(of:function:)``), largest first.
    var byGroup: [(group: String, perCall: Double)]
    /// The costliest functions (self cost), per call.
    var topFunctions: [(name: String, perCall: Double)]
    /// The runtime entry points called most often, calls per RPC.
    var runtimeCalls: [(name: String, perCall: Double)]
  }

  static let preloadSource = """
    #define _GNU_SOURCE
    #include <signal.h>
    #include <sys/syscall.h>
    #include <unistd.h>
    /* valgrind 3.19 writes into the mask it is given; libdispatch's is read-only. */
    int sigsuspend(const sigset_t *mask) {
      sigset_t copy = *mask;
      return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
    }
    """

  /// Checks that valgrind, strip and a C compiler are there, and prepares the scratch directory.
  /// - Parameter directory: where to keep everything; a temporary directory when nil.
  static func prepare(programs: [String], in directory: String? = nil) throws -> CallgrindCounter {
    for tool in ["valgrind", "callgrind_control", "strip", "cc"] where Self.which(tool) == nil {
      throw ValidationError(
        "--instructions needs \(tool) on PATH (Debian: apt-get install valgrind binutils gcc)"
      )
    }
    let scratch =
      directory.map { URL(fileURLWithPath: $0) }
      ?? FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-callgrind-\(getpid())"
      )
    let libraries = scratch.appendingPathComponent("lib")
    try FileManager.default.createDirectory(at: libraries, withIntermediateDirectories: true)
    // The Swift runtime this process runs on: the libraries it mapped from the directory that
    // holds libswiftCore.so.
    // procfs files report size 0, so read to the end rather than by size.
    let descriptor = open("/proc/self/maps", O_RDONLY)
    let maps = String(decoding: FileDescriptorReader.readAll(descriptor), as: UTF8.self)
    if descriptor >= 0 { close(descriptor) }
    let mapped = Set(
      maps.split(separator: "\n").compactMap { line -> String? in
        guard let slash = line.firstIndex(of: "/") else { return nil }
        return String(line[slash...])
      }
    )
    guard let core = mapped.first(where: { $0.hasSuffix("/libswiftCore.so") }) else {
      throw ValidationError("could not find libswiftCore.so in /proc/self/maps")
    }
    let runtimeDirectory = (core as NSString).deletingLastPathComponent
    let runtime = try FileManager.default.contentsOfDirectory(atPath: runtimeDirectory).filter {
      $0.hasSuffix(".so")
    }
    for library in runtime {
      try Self.strip(
        "\(runtimeDirectory)/\(library)",
        to: libraries.appendingPathComponent(library).path
      )
    }
    var counter = CallgrindCounter(
      scratch: scratch,
      runtimeLibraries: libraries,
      preload: scratch.appendingPathComponent("sigsuspend-copy.so")
    )
    for program in programs {
      let copy = scratch.appendingPathComponent((program as NSString).lastPathComponent).path
      try Self.strip(program, to: copy)
      counter.programs[program] = copy
    }
    let source = scratch.appendingPathComponent("sigsuspend-copy.c")
    try Self.preloadSource.write(to: source, atomically: true, encoding: .utf8)
    try Self.runTool("cc", ["-shared", "-fPIC", "-O2", "-o", counter.preload.path, source.path])
    return counter
  }

  func removeScratch() {
    try? FileManager.default.removeItem(at: self.scratch)
  }

  /// A process that runs `program` (one given to ``prepare(programs:)``) under callgrind.
  func process(_ program: String, _ arguments: [String], profile: URL) -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.which("valgrind") ?? "/usr/bin/valgrind")
    process.arguments =
      [
        "--tool=callgrind", "--callgrind-out-file=\(profile.path)",
        "--log-file=\(profile.path).log",
      ] + (self.cacheSimulation ? ["--cache-sim=yes"] : []) + [self.programs[program] ?? program]
      + arguments
    var environment = ProcessInfo.processInfo.environment
    environment["LD_LIBRARY_PATH"] =
      [self.runtimeLibraries.path, environment["LD_LIBRARY_PATH"]].compactMap { $0 }
      .joined(separator: ":")
    environment["LD_PRELOAD"] = self.preload.path
    process.environment = environment
    return process
  }

  /// Counts a server: `start` launches it (through ``process(_:_:profile:)``) and returns once
  /// it answers, with its address; `drive` makes that many calls to it from outside. The counters are zeroed
  /// after a warm-up and dumped after `calls` calls.
  func countServer(
    name: String,
    calls: Int,
    warmup: Int,
    start: (URL) async throws -> (process: Process, target: String),
    drive: (_ target: String, _ pid: Int32, _ calls: Int) async throws -> Void
  ) async throws -> Counts {
    let profile = self.scratch.appendingPathComponent("\(name).callgrind")
    let (server, target) = try await start(profile)
    defer {
      if server.isRunning {
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
      }
    }
    try await drive(target, server.processIdentifier, warmup)
    let pid = "\(server.processIdentifier)"
    try Self.runTool("callgrind_control", ["-z", pid])
    try await drive(target, server.processIdentifier, calls)
    try Self.runTool("callgrind_control", ["-d", pid])
    let dump = URL(fileURLWithPath: profile.path + ".1")
    // The dump is written by the profiled process once it next polls for commands.
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(60)
    var lastSize = -1
    while clock.now < deadline {
      let size =
        (try? FileManager.default.attributesOfItem(atPath: dump.path)[.size] as? Int) ?? nil
      if let size, size > 0, size == lastSize { break }
      lastSize = size ?? -1
      try await Task.sleep(for: .milliseconds(500))
    }
    return try Self.counts(profile: dump, calls: calls)
  }

  /// Counts a client process: run with `few` and with `many` calls (`arguments(calls)`), the
  /// difference per extra call.
  func countClient(
    name: String,
    program: String,
    few: Int,
    many: Int,
    arguments: (Int) -> [String]
  ) throws -> Counts {
    try self.profileClient(name: name, program: program, few: few, many: many, arguments: arguments)
      .counts(calls: many - few)
  }

  /// The instructions of `many - few` calls of a client process: its profile with `many` calls
  /// less its profile with `few` (start-up and shutdown cancel out).
  func profileClient(
    name: String,
    program: String,
    few: Int,
    many: Int,
    arguments: (Int) -> [String]
  ) throws -> Profile {
    var parsed: [Profile] = []
    for calls in [few, many] {
      let profile = self.scratch.appendingPathComponent("\(name)-\(calls).callgrind")
      let process = self.process(program, arguments(calls), profile: profile)
      try Self.runToEnd(process, name: "\(name) under callgrind", log: "\(profile.path).log")
      parsed.append(try Profile(contentsOf: profile))
    }
    return parsed[1].subtracting(parsed[0])
  }

  /// Runs a counted client to its end, its output dropped and its stdin held open (the C++
  /// bench exits when stdin closes); throws naming it, and where its log is, when it fails.
  static func runToEnd(_ process: Process, name: String, log: String? = nil) throws {
    process.standardOutput = FileHandle.nullDevice
    process.standardInput = Pipe()
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw ValidationError(
        "\(name) exited with \(process.terminationStatus)" + (log.map { " (log: \($0))" } ?? "")
      )
    }
  }

  /// Code that programs call into rather than own: the Swift runtime, its concurrency library,
  /// libc and the dynamic loader (thread-local storage).
  static func isRuntime(_ object: String) -> Bool {
    let file = (object as NSString).lastPathComponent
    return file.hasPrefix("libswiftCore") || file.hasPrefix("libswift_Concurrency")
      || file.hasPrefix("libc.so") || file.hasPrefix("ld-linux") || file.hasPrefix("libdispatch")
  }

  /// What share of a process's instructions each kind of code takes. Within the program, Swift
  /// code is told apart by the module its (mangled) name belongs to.
  static func group(of object: String, function: String) -> String {
    let file = (object as NSString).lastPathComponent
    if file.hasPrefix("libgrpc") || file.hasPrefix("libgpr") || file.hasPrefix("libabsl")
      || file.hasPrefix("libupb") || file.hasPrefix("libcares") || file.hasPrefix("libssl")
      || file.hasPrefix("libcrypto") || file.hasPrefix("libprotobuf") || file.hasPrefix("libre2")
      || file.hasPrefix("libaddress_sorting")
    {
      return "grpc++ (libgrpc, absl)"
    }
    if file.hasPrefix("libswiftCore") { return "Swift runtime (metadata, ARC)" }
    if file.hasPrefix("libswift_Concurrency") || file.hasPrefix("libdispatch") {
      return "Swift concurrency (tasks)"
    }
    if file.hasPrefix("libswift") || file.hasPrefix("libFoundation") { return "Swift libraries" }
    if file.hasPrefix("libc.so") || file.hasPrefix("ld-linux") || file.hasPrefix("libm.so") {
      return "libc (malloc, locks, TLS)"
    }
    if file.hasPrefix("libstdc++") { return "libstdc++" }
    if file == "vane-bench-cxx" { return "program: C++ bench" }
    if file == "vane" {
      let name = function.hasPrefix("_$s") ? String(function.dropFirst()) : function
      if name.hasPrefix("$s8GRPCCore") { return "program: GRPCCore" }
      if name.hasPrefix("$s13SwiftProtobuf") || name.hasPrefix("$s14VaneWireCoding")
        || name.hasPrefix("$s9VaneProto")
      {
        return "program: protobuf"
      }
      if name.hasPrefix("$s17GRPCShimTransport") || name.hasPrefix("vane_shim")
        || name.hasPrefix("_ZN9vane_shim") || name.hasPrefix("_ZN12_GLOBAL__N_1")
      {
        return "program: shim (Swift and C++)"
      }
      if name.hasPrefix("_Z") { return "program: C++ (grpc++ templates)" }
      return "program: other (Vane, stdlib specialisations)"
    }
    return file.isEmpty ? "unknown" : file
  }

  /// Self cost per function of one callgrind profile (Ir only), and how often code outside
  /// the runtime libraries called into them.
  struct Profile {
    var byFunction: [String: Int] = [:]
    var objectOf: [String: String] = [:]
    /// Calls into the Swift runtime, concurrency library and libc, by callee, from code of the
    /// program or grpc++ (calls among the runtime's own functions are left out).
    var runtimeCalls: [String: Int] = [:]
    /// Every event's own cost summed over the profile, by the event's name (`Ir`, and with
    /// cache simulation `I1mr`, `D1mr`, …).
    var eventTotals: [String: Int] = [:]

    init(contentsOf url: URL) throws {
      guard let text = try? String(contentsOf: url, encoding: .utf8) else {
        throw ValidationError("could not read the callgrind profile \(url.path)")
      }
      var names: [String: [String: String]] = ["ob": [:], "fn": [:]]
      var object = ""
      var function = ""
      var calleeObject: String?
      var callee = ""
      var skipNext = false
      // The cost lines' columns after the position, in the order the `events:` line names them
      // (instructions first).
      var events = ["Ir"]
      var totals = [Int](repeating: 0, count: 1)
      for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        if line.hasPrefix("events:") {
          events = line.dropFirst("events:".count).split(separator: " ").map(String.init)
          totals = [Int](repeating: 0, count: events.count)
          continue
        }
        if let equals = line.firstIndex(of: "="), line.first?.isLetter == true {
          let key = String(line[..<equals])
          var value = String(line[line.index(after: equals)...])
          if key == "calls" {
            // The next cost line is the call's inclusive cost, not this function's own.
            skipNext = true
            let count = value.split(separator: " ").first.flatMap { Int($0) } ?? 0
            if !CallgrindCounter.isRuntime(object),
              CallgrindCounter.isRuntime(calleeObject ?? object)
            {
              self.runtimeCalls[callee, default: 0] += count
            }
            calleeObject = nil
            continue
          }
          let table =
            (key == "ob" || key == "cob") ? "ob" : (key == "fn" || key == "cfn") ? "fn" : nil
          guard let table else { continue }
          // "(id) name" defines a compressed name; "(id)" refers back to it.
          if value.hasPrefix("("), let close = value.firstIndex(of: ")") {
            let id = String(value[value.index(after: value.startIndex) ..< close])
            let rest = value[value.index(after: close)...].trimmingCharacters(in: .whitespaces)
            if rest.isEmpty {
              value = names[table]?[id] ?? id
            } else {
              names[table]?[id] = rest
              value = rest
            }
          }
          switch key {
          case "ob": object = value
          case "fn":
            function = value
            self.objectOf[function] = object
          case "cob": calleeObject = value
          case "cfn": callee = value
          default: break
          }
          continue
        }
        guard let first = line.first,
          first.isNumber || first == "+" || first == "-" || first == "*"
        else { continue }
        let fields = line.split(separator: " ")
        guard fields.count >= 2, let cost = Int(fields[1]) else { continue }
        if skipNext {
          skipNext = false
          continue
        }
        self.byFunction[function, default: 0] += cost
        // Trailing zero costs are left out of a line.
        for (index, field) in fields.dropFirst().prefix(totals.count).enumerated() {
          totals[index] += Int(field) ?? 0
        }
      }
      self.eventTotals = Dictionary(uniqueKeysWithValues: zip(events, totals))
    }

    private init(
      byFunction: [String: Int],
      objectOf: [String: String],
      runtimeCalls: [String: Int],
      eventTotals: [String: Int]
    ) {
      self.byFunction = byFunction
      self.objectOf = objectOf
      self.runtimeCalls = runtimeCalls
      self.eventTotals = eventTotals
    }

    func subtracting(_ other: Profile) -> Profile {
      var difference = self.byFunction
      for (function, cost) in other.byFunction { difference[function, default: 0] -= cost }
      var calls = self.runtimeCalls
      for (function, count) in other.runtimeCalls { calls[function, default: 0] -= count }
      var totals = self.eventTotals
      for (event, cost) in other.eventTotals { totals[event, default: 0] -= cost }
      return Profile(
        byFunction: difference,
        objectOf: self.objectOf.merging(other.objectOf) { a, _ in a },
        runtimeCalls: calls,
        eventTotals: totals
      )
    }

    /// An event's total per call of `calls` (nil where the profile did not count it).
    func perCall(_ event: String, calls: Int) -> Double? {
      self.eventTotals[event].map { Double($0) / Double(max(1, calls)) }
    }

    /// Per call of `calls`, with the `top` costliest functions.
    func counts(calls: Int, top: Int = 8) -> Counts {
      let perCall = 1 / Double(max(1, calls))
      var groups: [String: Int] = [:]
      for (function, cost) in self.byFunction {
        let group = CallgrindCounter.group(of: self.objectOf[function] ?? "", function: function)
        groups[group, default: 0] += cost
      }
      let total = groups.values.reduce(0, +)
      return Counts(
        perCall: Double(total) * perCall,
        byGroup: groups.sorted { $0.value > $1.value }.map { ($0.key, Double($0.value) * perCall) },
        topFunctions: self.byFunction.sorted { $0.value > $1.value }.prefix(top).map {
          ($0.key, Double($0.value) * perCall)
        },
        runtimeCalls: self.runtimeCalls.sorted { $0.value > $1.value }.prefix(10).map {
          ($0.key, Double($0.value) * perCall)
        }
      )
    }
  }

  static func counts(profile: URL, calls: Int) throws -> Counts {
    try Profile(contentsOf: profile).counts(calls: calls)
  }

  static func which(_ tool: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
      let candidate = "\(directory)/\(tool)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  static func strip(_ input: String, to output: String) throws {
    try Self.runTool("strip", ["--strip-debug", "-o", output, input])
  }

  static func runTool(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.which(tool) ?? tool)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw ValidationError(
        "\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)"
      )
    }
  }
}

extension RPCBench {
  /// Counts instructions per call of each side, each against a native C++ peer, and prints
  /// them by library beside grpc++'s.
  func countInstructions(cxx: String, responseSize: Int) async throws {
    let vane = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    print(
      "\ninstructions per call (valgrind callgrind, \(self.concurrency) in flight, \(self.instructionCalls) calls; each side against a native C++ peer):"
    )
    let counter = try CallgrindCounter.prepare(programs: [vane, cxx], in: self.profiles)
    defer { if self.profiles == nil { counter.removeScratch() } }
    let warmup = min(self.warmup, 500)

    // Servers, driven by the native C++ client.
    let swiftServer = try await counter.countServer(
      name: "vane-server",
      calls: self.instructionCalls,
      warmup: warmup,
      start: { profile in
        let port = try freePort()
        let data = counter.scratch.appendingPathComponent("feature-data")
        let process = counter.process(
          vane,
          [
            "serve", "feature", "--address", "127.0.0.1:\(port)", "--data-dir", data.path,
            "--log-level", "error",
          ],
          profile: profile
        )
        try process.run()
        let outcome = await HealthProbe.waitUntilServing(
          config: .init(target: "127.0.0.1:\(port)"),
          service: "",
          timeout: .seconds(180)
        )
        guard outcome == .serving else {
          throw ValidationError("vane serve under callgrind did not become SERVING (\(outcome))")
        }
        return (process, "127.0.0.1:\(port)")
      },
      drive: { target, pid, calls in
        try self.driveCounted(cxx, target: target, pid: pid, calls: calls)
      }
    )
    let cxxServer = try await counter.countServer(
      name: "cxx-server",
      calls: self.instructionCalls,
      warmup: warmup,
      start: { profile in
        let process = counter.process(
          cxx,
          ["server", "--address", "127.0.0.1:0", "--response-bytes", "\(responseSize)"],
          profile: profile
        )
        let port = try Self.runCxxServer(process)
        return (process, "127.0.0.1:\(port)")
      },
      drive: { target, pid, calls in
        try self.driveCounted(cxx, target: target, pid: pid, calls: calls)
      }
    )

    // Clients, against a native C++ server.
    let reference = Self.cxxServer(cxx, responseSize: responseSize)
    let port = try Self.runCxxServer(reference)
    defer {
      reference.terminate()
      reference.waitUntilExit()
    }
    let target = "127.0.0.1:\(port)"
    let few = 200
    let many = few + self.instructionCalls
    let swiftClient = try counter.countClient(
      name: "vane-client",
      program: vane,
      few: few,
      many: many
    ) { calls in
      [
        "bench", "rpc-client", "--target", target, "--calls", "\(calls)", "--concurrency",
        "\(self.concurrency)", "--warmup", "\(warmup)", "--deadline-ms", "\(self.deadlineMs)",
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
        "--request-bytes", "0", "--calls", "\(calls)", "--concurrency", "\(self.concurrency)",
        "--warmup", "\(warmup)", "--timeout-ms", "\(self.deadlineMs)",
      ]
    }
    Self.printCounts(server: (swiftServer, cxxServer), client: (swiftClient, cxxClient))
  }

  /// Native C++ client calls to the server being counted.
  private func driveCounted(_ cxx: String, target: String, pid: Int32, calls: Int) throws {
    guard calls > 0 else { return }
    _ = try self.cxxClient(
      cxx,
      target: target,
      server: pid,
      calls: calls,
      concurrency: self.concurrency,
      warmup: 0
    )
  }

  static func printCounts(
    server: (vane: CallgrindCounter.Counts, cxx: CallgrindCounter.Counts),
    client: (vane: CallgrindCounter.Counts, cxx: CallgrindCounter.Counts)
  ) {
    let number = CallgrindCounter.number, column = CallgrindCounter.column
    print(
      "where".padding(toLength: 46, withPad: " ", startingAt: 0) + column("server vane", 14)
        + column("grpc++", 10) + column("client vane", 14) + column("grpc++", 10)
    )
    var groups: [String] = []
    for counts in [server.vane, server.cxx, client.vane, client.cxx] {
      for entry in counts.byGroup where !groups.contains(entry.group) {
        groups.append(entry.group)
      }
    }
    func value(_ counts: CallgrindCounter.Counts, _ group: String) -> Double {
      counts.byGroup.first { $0.group == group }?.perCall ?? 0
    }
    for group in groups {
      let values = [server.vane, server.cxx, client.vane, client.cxx].map { value($0, group) }
      // Groups under 1 % of every side are noise in this table.
      if values.enumerated().allSatisfy({ index, value in
        value < 0.01 * [server.vane, server.cxx, client.vane, client.cxx][index].perCall
      }) {
        continue
      }
      print(
        group.padding(toLength: 46, withPad: " ", startingAt: 0)
          + column(number(values[0]), 14) + column(number(values[1]), 10)
          + column(number(values[2]), 14) + column(number(values[3]), 10)
      )
    }
    print(
      "total".padding(toLength: 46, withPad: " ", startingAt: 0)
        + column(number(server.vane.perCall), 14) + column(number(server.cxx.perCall), 10)
        + column(number(client.vane.perCall), 14) + column(number(client.cxx.perCall), 10)
    )
    print(
      String(
        format: "instructions per call: server vane / grpc++ = %.2f×; client vane / grpc++ = %.2f×",
        server.vane.perCall / server.cxx.perCall,
        client.vane.perCall / client.cxx.perCall
      )
    )
    for (side, counts, reference) in [
      ("server", server.vane, server.cxx), ("client", client.vane, client.cxx),
    ] {
      print("costliest functions of vane's \(side) (own instructions per call):")
      for entry in counts.topFunctions.prefix(6) {
        print(
          "  " + column(number(entry.perCall), 8) + "  "
            + String(CallgrindCounter.demangle(entry.name).prefix(110))
        )
      }
      print("runtime calls per RPC, vane's \(side) (grpc++'s):")
      for entry in counts.runtimeCalls.prefix(8) {
        let theirs = reference.runtimeCalls.first { $0.name == entry.name }?.perCall ?? 0
        print(
          "  " + column(String(format: "%.0f", entry.perCall), 8)
            + column(String(format: "(%.0f)", theirs), 8) + "  "
            + String(CallgrindCounter.demangle(entry.name).prefix(100))
        )
      }
    }
  }
}

extension CallgrindCounter {
  /// An instruction count for a table: whole, with thousands separated.
  static func number(_ value: Double) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.maximumFractionDigits = 0
    return formatter.string(from: NSNumber(value: value.rounded())) ?? "\(Int(value))"
  }

  /// `text` right-aligned in `width` characters.
  static func column(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
  }

  /// A Swift symbol in readable form (other names are returned as they are).
  static func demangle(_ name: String) -> String {
    guard name.hasPrefix("$s") || name.hasPrefix("_$s") else { return name }
    return name.withCString { pointer in
      guard let demangled = swift_demangle(pointer, strlen(pointer), nil, nil, 0) else {
        return name
      }
      defer { free(demangled) }
      return String(cString: demangled)
    }
  }
}

@_silgen_name("swift_demangle")
private func swift_demangle(
  _ mangledName: UnsafePointer<CChar>?,
  _ mangledNameLength: Int,
  _ outputBuffer: UnsafeMutablePointer<CChar>?,
  _ outputBufferSize: UnsafeMutablePointer<Int>?,
  _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?

/// `vane bench rpc-client`: the Swift client's side of `vane bench rpc` as a process of its own,
/// so that callgrind can count it apart from the server (`--instructions`).
struct RPCBenchClient: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rpc-client",
    abstract: "Unary GetServiceInfo calls from Vane's Swift client (used by bench rpc).",
    shouldDisplay: false
  )

  @Option(help: "host:port of the server.")
  var target: String

  @Option var calls = 1_000
  @Option var concurrency = 64
  @Option var warmup = 100
  @Option var deadlineMs = 10_000

  func run() async throws {
    let figures = try await RPCBench.swiftRun(
      address: self.target,
      server: nil,
      calls: self.calls,
      concurrency: self.concurrency,
      warmup: self.warmup,
      deadlineMs: self.deadlineMs
    )
    print(
      String(
        format: "{\"calls\":%d,\"calls_per_second\":%.1f,\"p50_us\":%.1f,\"errors\":%d}",
        figures.calls,
        figures.calls_per_second,
        figures.p50_us,
        figures.errors
      )
    )
  }
}
