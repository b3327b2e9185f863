import Foundation
import Synchronization
import GRPCCore
import GRPCShimTransport
import Testing
import VaneCore
import VaneProto
import VaneRuntime
import VaneTestSupport

/// The `vane` executable, built next to this test bundle.
enum VaneBinary {
  static let url: URL = {
    let directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
      .deletingLastPathComponent()
    return directory.appendingPathComponent("vane")
  }()

  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static func readOnThread(_ descriptor: Int32) async -> [UInt8] {
    await withCheckedContinuation { continuation in
      Thread { continuation.resume(returning: FileDescriptorReader.readAll(descriptor)) }.start()
    }
  }

  /// Runs `vane arguments…` to completion.
  /// - Parameter niceness: run it (and what it starts) at this lower CPU priority, so that a
  ///   heavy run leaves the rest of the suite its share of the two cores.
  static func run(
    _ arguments: [String],
    environment: [String: String] = [:],
    unsetting: [String] = [],
    input: String? = nil,
    timeout: Duration = .seconds(60),
    niceness: Int? = nil
  ) async throws -> Result {
    let process = Process()
    if let niceness {
      process.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
      process.arguments = ["-n", "\(niceness)", Self.url.path] + arguments
    } else {
      process.executableURL = Self.url
      process.arguments = arguments
    }
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    for key in unsetting { env[key] = nil }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
      stdin.fileHandleForWriting.write(Data(input.utf8))
      try stdin.fileHandleForWriting.close()
    }
    // Drain both pipes while the process runs, so a chatty child never blocks on a full pipe;
    // the blocking reads get threads of their own, not the cooperative pool's.
    async let stdout = Self.readOnThread(out.fileHandleForReading.fileDescriptor)
    async let stderr = Self.readOnThread(err.fileHandleForReading.fileDescriptor)
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
      if ContinuousClock.now > deadline {
        process.terminate()
        Issue.record("vane \(arguments.joined(separator: " ")) ran past \(timeout)")
        break
      }
      try await Task.sleep(for: .milliseconds(10))
    }
    await process.exited()
    return Result(
      status: process.terminationStatus,
      stdout: String(decoding: await stdout, as: UTF8.self),
      stderr: String(decoding: await stderr, as: UTF8.self)
    )
  }
}

/// A `vane serve` process on a free port, stopped with SIGTERM.
final class ServeProcess: Sendable {
  let process: Process
  let address: String
  let dataDirectory: URL
  /// Where the service's log (standard error) goes.
  let logURL: URL

  var log: String { (try? String(contentsOf: self.logURL, encoding: .utf8)) ?? "" }

  /// - Parameter dataDirectory: where the service keeps its state (default: a new temporary one).
  init(
    _ kind: ServiceKind,
    extraArguments: [String] = [],
    probeTLS: ShimClientTLS? = nil,
    dataDirectory: URL? = nil,
    port: Int? = nil
  ) async throws {
    self.dataDirectory =
      dataDirectory
      ?? FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-cli-\(UUID().uuidString)"
      )
    let port = try port ?? LoopbackPorts.free()
    self.address = "127.0.0.1:\(port)"
    let process = Process()
    process.executableURL = VaneBinary.url
    process.arguments =
      [
        "serve", kind.rawValue, "--address", self.address, "--data-dir", self.dataDirectory.path,
        "--log-level", "warning",
      ] + extraArguments
    process.standardOutput = FileHandle.nullDevice
    self.logURL = self.dataDirectory.appendingPathExtension("log")
    _ = FileManager.default.createFile(atPath: self.logURL.path, contents: nil)
    process.standardError = try FileHandle(forWritingTo: self.logURL)
    try process.run()
    self.process = process
    // Generous: on 2 cores the rest of the suite (model training) runs alongside.
    let outcome = await HealthProbe.waitUntilServing(
      config: .init(target: self.address, tls: probeTLS),
      service: "",
      timeout: .seconds(90)
    )
    if outcome == .serving {
      // SERVING from another process on the same port is not this server.
      guard process.isRunning else {
        throw VaneError(
          .unavailable,
          "vane serve \(kind.rawValue) exited (\(process.terminationStatus)) while something else answered on \(self.address)"
        )
      }
      return
    }
    // Say why: whether the process is still there, the last probe, and its log's tail.
    let state =
      process.isRunning ? "still running" : "exited with \(process.terminationStatus)"
    let logTail = self.log.split(separator: "\n").suffix(20).joined(separator: "\n")
    self.stop()
    throw VaneError(
      .unavailable,
      "vane serve \(kind.rawValue) did not become SERVING on \(self.address) (\(state); last probe: \(outcome)); its log ends:\n\(logTail)"
    )
  }

  /// SIGKILL: no graceful shutdown, no last flush; the data directory stays.
  func kill() {
    if self.process.isRunning { Foundation.kill(self.process.processIdentifier, SIGKILL) }
    self.process.waitForExit()
  }

  func stop() {
    if self.process.isRunning { self.process.terminate() }
    self.process.waitForExit()
    try? FileManager.default.removeItem(at: self.dataDirectory)
    try? FileManager.default.removeItem(at: self.logURL)
  }
}

@Suite("vane health, vane call, vane serve", .serialized, .timeLimit(.minutes(3)))
struct CLITests {
  @Test("vane health: 0 serving, 3 unknown service, 2 nothing listening, 1 bad arguments")
  func healthExitCodes() async throws {
    let server = try await ServeProcess(.gatekeeper)
    defer { server.stop() }
    let serving = try await VaneBinary.run([
      "health", server.address, "--service", "vane.v1.GatekeeperService",
    ])
    #expect(serving.status == 0, "\(serving.stderr)")
    #expect(serving.stdout.contains("SERVING"))
    #expect(try await VaneBinary.run(["health", server.address]).status == 0)
    let unknown = try await VaneBinary.run([
      "health", server.address, "--service", "vane.v1.NoSuchService",
    ])
    #expect(unknown.status == 3, "\(unknown.stderr)")
    let nothing = try await VaneBinary.run(["health", "127.0.0.1:\(try LoopbackPorts.free())"])
    #expect(nothing.status == 2, "\(nothing.stderr)")
    #expect(try await VaneBinary.run(["health", "not-an-address"]).status == 1)
    #expect(try await VaneBinary.run(["health", server.address, "--no-such-flag"]).status == 1)
  }

  @Test("vane health: 4 when the service is NOT_SERVING")
  func healthNotServing() async throws {
    let transport = ShimServerTransport(config: .init(address: "127.0.0.1:0"))
    try transport.setServing(false, service: "vane.v1.DeployService")
    let server = GRPCServer(transport: transport, services: [])
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.serve() }
      let port = try await transport.listeningPort
      let result = try await VaneBinary.run([
        "health", "127.0.0.1:\(port)", "--service", "vane.v1.DeployService",
      ])
      #expect(result.status == 4, "\(result.stderr)")
      server.beginGracefulShutdown()
    }
  }

  @Test("vane call: a JSON round trip through GetServiceInfo")
  func callRoundTrip() async throws {
    let server = try await ServeProcess(.predictor)
    defer { server.stop() }
    let result = try await VaneBinary.run([
      "call", server.address, "PredictorService/GetServiceInfo", "{}",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let info = try Vane_V1_ServiceInfo(
      jsonString: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    )
    #expect(info.service == "vane.v1.PredictorService")
    #expect(info.listenAddress == server.address)
    #expect(info.methods.contains { $0.name == "Predict" && $0.implemented })
  }

  @Test(
    "vane train: a YAML spec is read through the API's JSON names; --validate-only prints it resolved; a bad file exits 2, a bad spec 1 naming the field"
  )
  func trainSpecs() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-spec-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let good = """
      symbols: [BTCUSDT]
      interval: INTERVAL_1H
      labels: {kind: LABEL_KIND_BINARY_DIRECTION, horizons: [{bars: 5}, {bars: 12}]}
      data_range: {start: 2023-01-01T00:00:00Z, end: "2024-01-01T00:00:00Z"}
      models: [{name: xgb, kind: MODEL_KIND_XGBOOST, xgboost: {num_boost_rounds: 50}}]
      walk_forward: {train_bars: 2000, test_bars: 500}
      """
    let files = [
      "good": good, "typo": good + "\nsymbolz: [ETHUSDT]\n",
      "noplan": good.replacingOccurrences(
        of: "walk_forward: {train_bars: 2000, test_bars: 500}",
        with: ""
      ),
    ]
    for (name, text) in files {
      try text.write(
        to: directory.appendingPathComponent("\(name).yaml"),
        atomically: true,
        encoding: .utf8
      )
    }
    let typo = try await VaneBinary.run([
      "train", directory.appendingPathComponent("typo.yaml").path, "--address", "127.0.0.1:1",
    ])
    #expect(typo.status == 2 && typo.stderr.contains("symbolz"), "\(typo.stderr)")
    let server = try await ServeProcess(.trainer)
    defer { server.stop() }
    let validated = try await VaneBinary.run([
      "train", directory.appendingPathComponent("good.yaml").path, "--validate-only", "--address",
      server.address,
    ])
    #expect(validated.status == 0, "\(validated.stderr)")
    let spec = try Vane_V1_TrainingSpec(
      jsonString: validated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    )
    #expect(
      spec.walkForward.purgeBars == 12 && spec.models[0].xgboost.numBoostRounds == 50
        && spec.models[0].xgboost.maxDepth == 6
    )
    #expect(try spec.dataRange.start.unixMilliseconds(field: "t") == 1_672_531_200_000)
    let noPlan = try await VaneBinary.run([
      "train", directory.appendingPathComponent("noplan.yaml").path, "--address", server.address,
    ])
    #expect(noPlan.status == 1 && noPlan.stderr.contains("spec.walk_forward"), "\(noPlan.stderr)")
  }

  @Test(
    "vane call: a refused call prints the code and exits 1; bad JSON exits 2; an unknown method is named"
  )
  func callErrors() async throws {
    let server = try await ServeProcess(.deploy)
    defer { server.stop() }
    let listed = try await VaneBinary.run([
      "call", server.address, "DeployService/ListRollouts", "{}",
    ])
    #expect(listed.status == 0, "\(listed.stderr)")
    let refused = try await VaneBinary.run([
      "call", server.address, "DeployService/GetRollout", #"{"rolloutId":"ro-nope"}"#,
    ])
    #expect(refused.status == 1)
    #expect(
      refused.stderr.contains("notFound") && refused.stderr.contains("ro-nope"),
      "\(refused.stderr)"
    )
    let badJSON = try await VaneBinary.run([
      "call", server.address, "DeployService/GetServiceInfo", "{not json",
    ])
    #expect(badJSON.status == 2)
    let unknown = try await VaneBinary.run(["call", server.address, "DeployService/Nope", "{}"])
    #expect(unknown.status != 0)
    #expect(unknown.stderr.contains("DeployService/Nope"))
  }

  @Test("vane serve with an admin token: admin calls need it, over the wire")
  func adminTokenOverTheWire() async throws {
    let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-token-\(UUID().uuidString)"
    )
    try "0123456789abcdef-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: tokenFile) }
    let server = try await ServeProcess(
      .predictor,
      extraArguments: ["--admin-token-file", tokenFile.path]
    )
    defer { server.stop() }
    let without = try await VaneBinary.run(
      ["call", server.address, "PredictorService/LoadModel", "{}"],
      environment: ["VANE_ADMIN_TOKEN_FILE": ""]
    )
    #expect(without.status == 1)
    #expect(without.stderr.contains("unauthenticated"), "\(without.stderr)")
    let with = try await VaneBinary.run([
      "call", server.address, "PredictorService/LoadModel", "{}", "--admin-token-file",
      tokenFile.path,
    ])
    // Past authorisation the method answers for itself: an empty request names its field.
    #expect(with.stderr.contains("source"), "\(with.stderr)")
    let info = try await VaneBinary.run(["call", server.address, "PredictorService/GetServiceInfo"])
    #expect(info.stdout.contains("ADMIN_AUTH_TOKEN"))
  }

  @Test("vane serve with TLS flags; vane health and vane call with --tls-ca")
  func tlsFlags() async throws {
    let certificates = try TestCertificates.make()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-cli-tls-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    func write(_ text: String, _ name: String) throws -> String {
      let url = directory.appendingPathComponent(name)
      try text.write(to: url, atomically: true, encoding: .utf8)
      return url.path
    }
    let cert = try write(certificates.serverCertificatePEM, "server.pem")
    let key = try write(certificates.serverKeyPEM, "server.key")
    let ca = try write(certificates.caPEM, "ca.pem")
    let server = try await ServeProcess(
      .gatekeeper,
      extraArguments: ["--tls-cert", cert, "--tls-key", key],
      probeTLS: ShimClientTLS(caRootsPEM: certificates.caPEM)
    )
    defer { server.stop() }
    let health = try await VaneBinary.run(["health", server.address, "--tls-ca", ca])
    #expect(health.status == 0, "\(health.stderr)")
    let plaintext = try await VaneBinary.run(["health", server.address])
    #expect(plaintext.status == 2, "a plaintext probe cannot connect to a TLS server")
    let info = try await VaneBinary.run([
      "call", server.address, "GatekeeperService/GetServiceInfo", "--tls-ca", ca,
    ])
    #expect(info.status == 0, "\(info.stderr)")
    #expect(info.stdout.contains("\"tls\":true"))
  }

  @Test("vane serve without an admin token says in its log that admin methods are loopback-only")
  func adminWarningLogged() async throws {
    let server = try await ServeProcess(.deploy)
    defer { server.stop() }
    #expect(
      server.log.contains("admin methods are open to loopback callers only"),
      "log: \(server.log)"
    )
    #expect(server.log.contains("Deploy,Promote,Pause,Resume,Rollback"))
  }

  @Test(
    "vane serve: bad settings fail at once, naming the setting",
    arguments: [
      (["serve", "nope"], "unknown service 'nope'"),
      (["serve", "feature", "--keepalive-time", "soon"], "--keepalive-time"),
      (["serve", "feature", "--max-message-mib", "0"], "--max-message-mib"),
      (["serve", "feature", "--tls-cert", "/nonexistent/cert.pem"], "--tls-cert and --tls-key"),
      (
        [
          "serve", "feature", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem",
        ], "--tls-cert: cannot read"
      ),
      (["serve", "feature", "--log-level", "loud"], "--log-level"),
    ]
  )
  func badSettings(arguments: [String], mention: String) async throws {
    let result = try await VaneBinary.run(
      arguments + ["--address", "127.0.0.1:0"],
      timeout: .seconds(30)
    )
    #expect(result.status != 0)
    #expect(result.stderr.contains(mention), "stderr: \(result.stderr)")
  }

  @Test("vane serve reads VANE_* variables when flags are absent; flags win over them")
  func environmentFallback() async throws {
    let port = try LoopbackPorts.free()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-env-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let process = Process()
    process.executableURL = VaneBinary.url
    process.arguments = ["serve", "trainer", "--data-dir", directory.path]
    var environment = ProcessInfo.processInfo.environment
    environment["VANE_ADDRESS"] = "127.0.0.1:\(port)"
    environment["VANE_DATA_DIR"] = "/nonexistent/should-not-be-used"
    environment["VANE_LOG_LEVEL"] = "error"
    process.environment = environment
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer {
      process.terminate()
      process.waitForExit()
    }
    let served = await HealthProbe.waitUntilServing(
      config: .init(target: "127.0.0.1:\(port)"),
      service: "",
      timeout: .seconds(90)
    )
    try #require(served == .serving, "vane serve did not listen on VANE_ADDRESS: \(served)")
    let info = try await VaneBinary.run([
      "call", "127.0.0.1:\(port)", "TrainerService/GetServiceInfo",
    ])
    #expect(
      info.stdout.contains(directory.path),
      "the --data-dir flag wins over VANE_DATA_DIR: \(info.stdout)"
    )
  }

  @Test("vane serve: SIGTERM drains and exits 0")
  func serveDrains() async throws {
    let server = try await ServeProcess(.deploy)
    server.process.terminate()
    await server.process.exited()
    #expect(server.process.terminationStatus == 0)
    server.stop()
  }
}

/// A `vane stack` process on five free ports, started and read until it says all are SERVING.
final class StackProcess {
  let process = Process()
  let basePort: Int
  let dataRoot: URL
  let logURL: URL
  /// The service pids the stack printed.
  private(set) var pids: [Int32] = []
  private(set) var output = ""

  init() throws {
    self.dataRoot = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-stack-\(UUID().uuidString)"
    )
    self.logURL = self.dataRoot.appendingPathExtension("log")
    // The five services, and their metrics endpoints at +10.
    self.basePort = try LoopbackPorts.freeConsecutive(15)
  }

  deinit {
    if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    try? FileManager.default.removeItem(at: self.dataRoot)
    try? FileManager.default.removeItem(at: self.logURL)
  }

  /// What the stack logged, for failure messages.
  var log: String { (try? String(contentsOf: self.logURL, encoding: .utf8)) ?? "" }

  /// Starts the stack and waits (up to 90 s) until it reports every service SERVING.
  func start() async throws {
    self.process.executableURL = VaneBinary.url
    self.process.arguments = [
      "stack", "--base-port", "\(self.basePort)", "--data-dir", self.dataRoot.path,
      "--grace-period", "2",
    ]
    let out = Pipe()
    self.process.standardOutput = out
    _ = FileManager.default.createFile(atPath: self.logURL.path, contents: nil)
    self.process.standardError = try FileHandle(forWritingTo: self.logURL)
    try self.process.run()
    let deadline = ContinuousClock.now + .seconds(90)
    while !self.output.contains("SERVING; Ctrl-C"), ContinuousClock.now < deadline,
      self.process.isRunning
    {
      let chunk = FileDescriptorReader.readSome(out.fileHandleForReading.fileDescriptor)
      if chunk.isEmpty {
        try await Task.sleep(for: .milliseconds(20))
      } else {
        self.output += String(decoding: chunk, as: UTF8.self)
      }
    }
    self.pids = self.output.split(separator: "\n").compactMap { line -> Int32? in
      guard let range = line.range(of: "pid ") else { return nil }
      return Int32(line[range.upperBound...].prefix { $0.isNumber })
    }
  }

  /// Whether every service process the stack started is gone.
  var servicesGone: Bool {
    self.pids.allSatisfy { kill($0, 0) == -1 && errno == ESRCH }
  }
}

@Suite("vane stack", .serialized, .timeLimit(.minutes(3)))
struct StackTests {
  @Test("vane stack starts five healthy services and Ctrl-C leaves no process behind")
  func stackLifecycle() async throws {
    let stack = try StackProcess()
    try await stack.start()
    try #require(
      stack.output.contains("SERVING; Ctrl-C"),
      "stack output: \(stack.output) log: \(stack.log)"
    )
    try #require(stack.pids.count == 5, "stack output: \(stack.output)")
    for (index, kind) in ServiceKind.allCases.enumerated() {
      let outcome = await HealthProbe.check(
        config: .init(target: "127.0.0.1:\(stack.basePort + index)"),
        service: kind.grpcServiceName,
        connectTimeout: .seconds(30),
        rpcTimeout: .seconds(30)
      )
      #expect(outcome == .serving, "\(kind)")
      let metrics = HTTPProbe.get("/metrics", port: stack.basePort + 10 + index)
      #expect(
        metrics.flatMap { sample("vane_build_info", ["service": kind.rawValue], in: $0.body) } == 1,
        "\(kind): \(String(describing: metrics))"
      )
    }
    #expect(stack.output.contains("metrics http://127.0.0.1:\(stack.basePort + 10)/metrics"))
    kill(stack.process.processIdentifier, SIGINT)
    await stack.process.exited()
    #expect(stack.process.terminationStatus == 0)
    #expect(stack.servicesGone, "service processes left behind: \(stack.pids)")
  }

  @Test("A stack killed outright (SIGKILL) still leaves no service behind")
  func stackKilled() async throws {
    let stack = try StackProcess()
    try await stack.start()
    try #require(stack.pids.count == 5, "stack output: \(stack.output) log: \(stack.log)")
    kill(stack.process.processIdentifier, SIGKILL)
    await stack.process.exited()
    // Each service notices its parent is gone and drains by itself.
    let deadline = ContinuousClock.now + .seconds(20)
    while !stack.servicesGone, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(50))
    }
    #expect(stack.servicesGone, "service processes left behind: \(stack.pids)")
  }

  @Test("vane stack stops everything when one service dies")
  func stackStopsWhenOneDies() async throws {
    let stack = try StackProcess()
    try await stack.start()
    try #require(stack.pids.count == 5, "stack output: \(stack.output) log: \(stack.log)")
    kill(stack.pids[2], SIGKILL)
    await stack.process.exited()
    #expect(stack.process.terminationStatus != 0)
    #expect(stack.servicesGone, "service processes left behind: \(stack.pids)")
  }
}
