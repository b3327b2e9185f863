import ArgumentParser
import GRPCShimTransport
import VaneCore
import VaneProto
internal import Foundation

extension PredictorBench {
  /// Makes the sequential Predict/GetServiceInfo comparison again in `processes` fresh
  /// processes (`vane bench predictor-sequential`) and prints each one's p50s and ratio, then
  /// their median beside the target.
  ///
  /// Taking turns in blocks of ``PredictorBench/sequentialBlock`` calls, one process's ratio
  /// still moves by a few hundredths from the next one's (each lays out its heap, threads and
  /// physical pages differently, and so its cache conflicts): one process's ratio is one draw,
  /// the median of several is the figure.
  func sequentialInProcesses() throws {
    let vane = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    print(
      "\nsequential p50 in \(self.processes) fresh processes (\(self.sequential) calls of each method per process, taking turns in blocks of \(Self.sequentialBlock)):"
    )
    print("process  GetServiceInfo µs  Predict µs  ratio")
    var ratios: [Double] = []
    for index in 1 ... self.processes {
      let pair = try Self.runSequential(
        vane,
        width: self.width,
        calls: self.sequential,
        withoutLog: self.withoutLog
      )
      let ratio = pair.predict / pair.info
      ratios.append(ratio)
      print(
        String(format: "%7d %18.1f %11.1f %6.2f×", index, pair.info, pair.predict, ratio)
      )
    }
    let median = ratios.median ?? 0
    print(
      String(
        format:
          "Predict p50 / GetServiceInfo p50, median of %d processes = %.2f× (%.2f–%.2f×) (target ≤ 1.15×) %@",
        ratios.count,
        median,
        ratios.min() ?? 0,
        ratios.max() ?? 0,
        median <= 1.15 ? "met" : "NOT met"
      )
    )
    // How far the median of this many draws can be trusted: an interval for the median over
    // all processes, from order statistics alone (no assumption about the ratios' spread).
    if let interval = Statistics.medianInterval(sorted: ratios.sorted(), confidence: 0.9) {
      print(
        String(
          format:
            "  %.0f%% interval for the median over processes: %.3f–%.3f× (%@)",
          interval.coverage * 100,
          interval.lower,
          interval.upper,
          interval.upper <= 1.15
            ? "within the target"
            : interval.lower > 1.15 ? "past the target" : "straddles the target"
        )
      )
    }
  }

  /// Runs `vane bench predictor-sequential` and reads the p50s it prints.
  static func runSequential(
    _ vane: String,
    width: Int,
    calls: Int,
    withoutLog: Bool
  ) throws -> (info: Double, predict: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: vane)
    process.arguments =
      [
        "bench", "predictor-sequential", "--width", "\(width)", "--sequential", "\(calls)",
      ] + (withoutLog ? ["--without-log"] : [])
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
      throw ValidationError(
        "bench predictor-sequential exited with \(process.terminationStatus): \(text)"
      )
    }
    return try PredictorBenchSequential.parse(text)
  }
}

extension PredictorBench {
  /// For the bench's child processes: serves the bench's predictor in a scratch directory of
  /// its own (named after `name` and the process), loads version v0 and runs `body` with a
  /// client and the requests to cycle through.
  static func withLoadedPredictor(
    _ name: String,
    _ serving: PredictorBenchServing,
    body: (
      _ client: Vane_V1_PredictorService.Client<ShimClientTransport>,
      _ requests: [Vane_V1_PredictRequest]
    ) async throws -> Void
  ) async throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-predictor-\(name)-\(getpid())"
    )
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let width = serving.width
    try await Self.withPredictor(scratch, width: width, withoutLog: serving.withoutLog) {
      client,
      paths,
      _,
      _ in
      try await Self.load(client, "v0", path: paths[0])
      try await body(client, Self.requests(width: width))
    }
  }
}

/// What the bench's child processes serve: the width of the bundles and whether to log.
struct PredictorBenchServing: ParsableArguments {
  @Option(help: "Feature columns.")
  var width = 78

  @Flag(help: "Serve without the prediction log.")
  var withoutLog = false
}

/// `vane bench predictor-sequential`: one sequential Predict/GetServiceInfo comparison against
/// an in-process predictor, in a process of its own (`vane bench predictor --processes`).
struct PredictorBenchSequential: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predictor-sequential",
    abstract:
      "One sequential Predict/GetServiceInfo comparison in a fresh process (used by bench predictor).",
    shouldDisplay: false
  )

  @OptionGroup var serving: PredictorBenchServing

  @Option(help: "Sequential calls of each method.")
  var sequential = 5_000

  /// The line this command prints: `sequential-p50 <GetServiceInfo µs> <Predict µs>`.
  static let prefix = "sequential-p50"

  static func parse(_ output: String) throws -> (info: Double, predict: Double) {
    for line in output.split(separator: "\n") {
      let fields = line.split(separator: " ")
      if fields.count == 3, fields[0] == Self.prefix, let info = Double(fields[1]),
        let predict = Double(fields[2]), info > 0, predict > 0
      {
        return (info, predict)
      }
    }
    throw ValidationError("bench predictor-sequential printed no '\(Self.prefix)' line")
  }

  func run() async throws {
    try await PredictorBench.withLoadedPredictor("sequential", self.serving) { client, requests in
      let counter = Counter()
      let (info, predict) = try await PredictorBench.sequential(
        calls: self.sequential,
        info: { _ = try await client.getServiceInfo(.init()) },
        predict: { _ = try await client.predict(requests[counter.next() % requests.count]) }
      )
      print(
        "\(Self.prefix) \(info.figures.p50_us) \(predict.figures.p50_us)"
      )
    }
  }
}
