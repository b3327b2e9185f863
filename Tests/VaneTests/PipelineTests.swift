import Foundation
import Testing
import VaneCore
import VaneTestSupport

/// `vane pipeline` end to end over real services: the binary starts the five services, ingests
/// real candles, trains, gates, blesses, deploys, replays live bars, retrains, rolls the new
/// version out and rolls an inverted candidate back.
@Suite("vane pipeline", .serialized)
struct PipelineTests {
  /// The embedded sample, beside the built executable.
  static let sample = VaneBinary.url.deletingLastPathComponent().appendingPathComponent(
    "Vane_vane.resources/market"
  )

  /// The sample's files cut to the open times in [from, to), written under `directory`
  /// (a shorter history keeps the test's feature frames and training small).
  static func cutSample(from: String, to: String, into directory: URL) throws -> [String] {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return try ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"].map { symbol in
      let source = Self.sample.appendingPathComponent("binance_\(symbol)_1h.csv.gz")
      let bytes = try Gzip.decompress([UInt8](try Data(contentsOf: source)), name: source.path)
      let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
      let kept =
        [lines[0]] + lines.dropFirst().filter { $0.prefix(10) >= from && $0.prefix(10) < to }
      let target = directory.appendingPathComponent("binance_\(symbol)_1h.csv")
      try Data((kept.joined(separator: "\n") + "\n").utf8).write(to: target)
      return target.path
    }
  }

  /// One `vane pipeline` run over `files` with its own data directory and ports.
  static func runPipeline(_ files: [String], root: URL, port: Int) async throws -> VaneBinary.Result
  {
    try await VaneBinary.run(
      [
        "pipeline", "--quick", "--cut", "2024-07-01", "--live-bars", "400", "--stop-when-done",
        "--speed", "0", "--max-model-age", "48",
        "--data-dir", root.path, "--base-port", "\(port)",
      ] + files,
      // One numeric thread for the trainer and a lower priority: the rest of the suite runs beside it.
      environment: ["VANE_THREADS": "1"],
      timeout: .seconds(840),
      niceness: 10
    )
  }

  /// What must repeat run to run: every rollout event, analysis and live figure the replay
  /// printed, with the ids that are new in every run (jobs, rollouts, reports, keys, paths)
  /// masked; timings are left out.
  static func transcript(_ output: String) -> [String] {
    let masks = [
      ("pipeline-j[0-9a-f]+", "JOB"), ("ro-[0-9a-f-]+", "ROLLOUT"),
      ("report r[0-9a-f]+", "report REPORT"), ("key [0-9a-f]{16}", "key KEY"),
      ("/[^ ]*/artifacts/[0-9a-f]+", "ARTIFACTS"),
    ]
    return output.split(separator: "\n").map(String.init).filter { line in
      line.range(of: #"^   v\d+ (\[|is promoted|ROLLED_BACK|FAILED)"#, options: .regularExpression)
        != nil
        || line.range(of: #"bar \d+/\d+"#, options: .regularExpression) != nil
        || line.hasPrefix("== retrain") || line.hasPrefix("== inject")
        || line.range(of: #"^   v\d+ +(first|retrained|inverted) "#, options: .regularExpression)
          != nil
    }.map { line in
      masks.reduce(line) {
        $0.replacingOccurrences(of: $1.0, with: $1.1, options: .regularExpression)
      }
    }
  }

  @Test(
    "The whole loop on real candles: v1 promoted, a retrained v2 rolled out against it, a signed inverted candidate rolled back; two runs side by side replay the same",
    .timeLimit(.minutes(15))
  )
  func wholeLoop() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-pipeline-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let files = try Self.cutSample(
      from: "2023-09-01",
      to: "2024-12-31",
      into: root.appendingPathComponent("market")
    )
    // Two runs at once: their timings differ (they share the cores), their replays must not.
    let port = try LoopbackPorts.freeConsecutive(30)
    async let first = Self.runPipeline(files, root: root.appendingPathComponent("data"), port: port)
    async let second = Self.runPipeline(
      files,
      root: root.appendingPathComponent("again"),
      port: port + 15
    )
    let (result, again) = try await (first, second)
    #expect(again.status == 0, "exit \(again.status)\n\(again.stderr.suffix(3000))")
    let transcript = Self.transcript(result.stdout)
    #expect(
      transcript.count > 20 && transcript == Self.transcript(again.stdout),
      """
      the replays differ:
      \(zip(transcript, Self.transcript(again.stdout)).filter { $0 != $1 }.prefix(5).map { "\($0)\n\($1)" }.joined(separator: "\n"))
      \((result.stdout + again.stdout).split(separator: "\n").filter { $0.contains("Predict failed") }.joined(separator: "\n"))
      """
    )
    let output = result.stdout
    #expect(
      result.status == 0,
      "exit \(result.status)\n\(result.stderr.suffix(3000))\n\(output.suffix(6000))"
    )
    // Every stage ran, against real services.
    #expect(output.contains("== ingest: history before 2024-07-01 00:00"))
    #expect(output.contains("passed 'hourly'"))
    #expect(
      output.contains("== gates: under the 'default' policy")
        || output.contains("also passes the 'default' policy")
    )
    #expect(output.contains("v1 is promoted: it serves all traffic"))
    #expect(output.contains("== retrain: v1's training data ended"))
    #expect(output.contains("v2 [SHADOW step 0"))
    // The inverted candidate is caught by the analysis, not by a gate.
    #expect(
      output.contains("== inject: v3 = v2 with its stack inverted")
        || output.contains("== inject: v3 = v1 with its stack inverted")
    )
    let summary = output.components(separatedBy: "== summary:").last ?? ""
    let rows = summary.split(separator: "\n").map {
      $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    }
    let v1 = rows.first { $0.first == "v1" }
    let v3 = rows.first { $0.first == "v3" }
    #expect(v1?.last == "PROMOTED" || v1?.last == "replaced", "\(summary)")
    #expect(v3?.last == "ROLLED_BACK", "\(summary)")
    #expect(summary.contains("v3: step 0 failed"), "\(summary)")
    #expect(summary.contains(" 0 failed"), "\(summary)")

    // The report renders in a real browser: no script error, every plot drew something.
    let report = root.appendingPathComponent("data/report.html")
    #expect(FileManager.default.fileExists(atPath: report.path))
    let page = try String(contentsOf: report, encoding: .utf8)
    for section in [
      "Data coverage", "Walk-forward", "reliability diagrams", "Gates", "Rollouts", "Live metrics",
      "Latency",
    ] {
      #expect(page.contains(section), "\(section)")
    }
    let dom = try await Self.renderedBody(report)
    let attributes = try #require(dom, "headless chromium did not render the report")
    #expect(attributes["data-errors"] == "0", "\(attributes)")
    #expect(attributes["data-empty-plots"] == "0", "\(attributes)")
    #expect(Int(attributes["data-plots"] ?? "") ?? 0 >= 8, "\(attributes)")
  }

  /// The `<body>` attributes of `page` after it loaded in headless Chromium (Debian's package,
  /// which `make test` installs), or nil when it did not render.
  static func renderedBody(_ page: URL) async throws -> [String: String]? {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
      FileManager.default.isExecutableFile(atPath: $0)
    }
    let path = try #require(
      browser,
      "headless Chromium is not installed (make test installs Debian's chromium)"
    )
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = [
      "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.absoluteString,
    ]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let dom = String(
      decoding: await VaneBinary.readOnThread(out.fileHandleForReading.fileDescriptor),
      as: UTF8.self
    )
    await process.exited()
    guard let start = dom.range(of: "<body"), let end = dom[start.upperBound...].firstIndex(of: ">")
    else { return nil }
    var attributes: [String: String] = [:]
    let text = dom[start.upperBound ..< end]
    let pattern = try NSRegularExpression(pattern: "([a-z-]+)=\"([^\"]*)\"")
    for match in pattern.matches(in: String(text), range: NSRange(text.startIndex..., in: text)) {
      let string = String(text) as NSString
      attributes[string.substring(with: match.range(at: 1))] = string.substring(
        with: match.range(at: 2)
      )
    }
    return attributes
  }

  /// Runs `vane arguments…` (its output in files under `root`), sends SIGINT once its output
  /// shows `marker` (event-driven: however long the machine takes to get there), and waits for
  /// it to exit. - Returns: its status, stdout and stderr.
  static func interrupt(
    _ arguments: [String],
    in root: URL,
    at marker: String,
    environment: [String: String] = [:]
  ) async throws -> (status: Int32, stdout: String, stderr: String) {
    let output = root.appendingPathComponent("out.txt")
    let errors = root.appendingPathComponent("err.txt")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    func read(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
    let process = Process()
    process.executableURL = VaneBinary.url
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = try FileHandle(forWritingTo: output)
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
    defer { if process.isRunning { process.terminate() } }
    let deadline = ContinuousClock.now + .seconds(200)
    while !read(output).contains(marker), process.isRunning, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(100))
    }
    try #require(process.isRunning, "vane ended before '\(marker)': \(read(errors))")
    kill(process.processIdentifier, SIGINT)
    while process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
    return (process.terminationStatus, read(output), read(errors))
  }

  @Test(
    "Ctrl-C during training stops every service and exits 130, naming the stage",
    .timeLimit(.minutes(5))
  )
  func interrupted() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-pipeline-int-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let files = try Self.cutSample(
      from: "2023-09-01",
      to: "2024-08-01",
      into: root.appendingPathComponent("market")
    )
    let port = try LoopbackPorts.freeConsecutive(15)
    let (status, _, stderr) = try await Self.interrupt(
      [
        "pipeline", "--cut", "2024-07-01", "--data-dir", root.appendingPathComponent("data").path,
        "--base-port", "\(port)",
      ] + files,
      in: root,
      at: "== train v1"
    )
    #expect(status == 130, "\(stderr)")
    #expect(stderr.contains("interrupted during 'train v1'"), "\(stderr)")
    // Every service stopped: nothing listens on their ports any more.
    for offset in 0 ..< 5 {
      #expect(!LoopbackPorts.isListening(port + offset), "port \(port + offset) still answers")
    }
  }

  @Test(
    "Ctrl-C during the replay on running services (--addresses) rolls back the rollout only the run was advancing",
    .timeLimit(.minutes(5))
  )
  func interruptedOnRunningServices() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-pipeline-addr-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let files = try Self.cutSample(
      from: "2023-09-01",
      to: "2024-08-01",
      into: root.appendingPathComponent("market")
    )
    let stack = try StackProcess()
    try await stack.start()
    defer { kill(stack.process.processIdentifier, SIGINT) }
    try #require(
      stack.output.contains("SERVING; Ctrl-C"),
      "stack output: \(stack.output) log: \(stack.log)"
    )
    let addresses = (0 ..< 5).map { "127.0.0.1:\(stack.basePort + $0)" }.joined(separator: ",")
    // One bar a second: v1's first rollout (promoted after 24 answers) is still in its step.
    let (status, stdout, stderr) = try await Self.interrupt(
      [
        "pipeline", "--quick", "--cut", "2024-07-01", "--speed", "1", "--view", "lines",
        "--addresses", addresses,
        "--data-dir", root.appendingPathComponent("data").path,
      ] + files,
      in: root,
      at: "== replay:",
      environment: ["VANE_THREADS": "1"]
    )
    #expect(status == 130, "\(stderr)")
    let line = stdout.split(separator: "\n").first { $0.contains("rollout ro-") }
    let id = try #require(
      line.flatMap { $0.split(separator: " ").first { $0.hasPrefix("ro-") } }.map {
        String($0.dropLast())
      },
      "\(stdout)"
    )
    #expect(stdout.contains("rolled back rollout \(id)"), "\(stdout)\n\(stderr)")
    // The running deploy service agrees: the rollout is over, not waiting for bars that never come.
    let listed = try await VaneBinary.run(
      ["rollouts", "watch", id, "--address", "127.0.0.1:\(stack.basePort + 4)"],
      timeout: .seconds(30)
    )
    #expect(
      listed.stdout.contains("ROLLED_BACK") && !listed.stdout.contains("PROMOTED"),
      "\(listed.stdout)\n\(listed.stderr)"
    )
    #expect(stack.process.isRunning, "the services keep running: \(stack.log)")
  }

  @Test("Bad arguments and files exit with their documented codes")
  func badInput() async throws {
    let cut = try await VaneBinary.run(["pipeline", "--cut", "2024-13-01"])
    #expect(cut.status == 64)
    #expect(cut.stderr.contains("--cut"))
    let addresses = try await VaneBinary.run(["pipeline", "--addresses", "127.0.0.1:1,127.0.0.1:2"])
    #expect(addresses.status == 64)
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-pipeline-bad-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    let garbage = root.appendingPathComponent("binance_BTCUSDT_1h.csv")
    try Data("ts,open,high,low,close,volume\nnot a row\n".utf8).write(to: garbage)
    let file = try await VaneBinary.run([
      "pipeline", "--data-dir", root.appendingPathComponent("data").path, garbage.path,
    ])
    #expect(file.status == 2, "\(file.stderr)")
    #expect(file.stderr.contains("binance_BTCUSDT_1h.csv"))
  }

  @Test("--print-defaults prints the spec, the hourly policy and the plans the pipeline runs")
  func defaults() async throws {
    let result = try await VaneBinary.run(["pipeline", "--print-defaults"])
    #expect(result.status == 0)
    for text in [
      "gate_policy: hourly", "name: hourly", "metric: auc", "kind: shadow", "min_matured_outcomes:",
    ] {
      #expect(result.stdout.contains(text), "\(text)")
    }
  }
}
