import ArgumentParser
import Logging
import UnixSignals
import VaneCore
import VaneRuntime
internal import Foundation

/// `vane pipeline`: the main job. The whole loop on real candles, over the five services:
/// ingest, train, gate and bless, deploy, replay live bars and predict each, retrain on age or
/// drift, roll the new version out against the incumbent, roll a bad one back, report.
struct PipelineCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pipeline",
    abstract:
      "The main job: train, gate, bless, deploy, serve live bars, retrain and roll out, on real candles.",
    discussion: """
      By default it replays the embedded sample (BTCUSDT, ETHUSDT, SOLUSDT and BNBUSDT 1h candles, \
      2023-01-01 to 2024-12-31, cut from real Binance data by scripts/cut_market_sample.py): the bars \
      before --cut are history, the bars after it arrive one at a time through IngestCandles as a live \
      feed would. It starts the five services as `vane stack` does (under --data-dir, whose previous \
      run it removes first: a rerun starts over), or uses running ones with --addresses.

      Exit codes: 0 the loop ran to its end; 3 a gate said no (the first model did not pass its \
      policy, so nothing could be served); 1 a stage failed (the message names the service, the call \
      and why); 2 a candle file that cannot be read; 130 interrupted (Ctrl-C: everything stops; a \
      rerun starts over); 64 bad arguments.
      """
  )

  @Argument(help: "Candle files (1h, the four symbols) instead of the embedded sample.")
  var files: [String] = []

  @Option(
    help:
      "A directory of candle files (binance_<SYMBOL>_1h.csv[.gz]) instead of the embedded sample."
  )
  var market: String?

  @Option(help: "Where history ends and the live replay begins (UTC; YYYY-MM-DD or RFC 3339).")
  var cut: String = "2024-12-01"

  @Option(
    name: .customLong("live-bars"),
    help: "Most live bars to replay (default: every bar after the cut)."
  )
  var liveBars: Int?

  @Option(help: "Replayed bars per second (0: as fast as the services answer).")
  var speed: Double = 20

  @Option(
    name: .customLong("max-model-age"),
    help: "Retrain when the serving model's data is older than this many hours."
  )
  var maxModelAge: Int = 336

  @Option(name: .customLong("max-retrains"), help: "Most retrainings in one run.")
  var maxRetrains: Int = 1

  @Flag(
    inversion: .prefixedNo,
    help:
      "Deploy a properly signed but inverted candidate, which the rollout analysis must roll back."
  )
  var injectBadModel = true

  @Flag(
    help:
      "A smaller model (XGBoost and logistic regression under the stack, no MLP): the loop in a fraction of the time."
  )
  var quick = false

  @Flag(
    name: .customLong("stop-when-done"),
    help: "End the replay once every stage has run instead of replaying every live bar."
  )
  var stopWhenDone = false

  @Option(
    help:
      "auto: a live panel redrawn in place when standard output is a terminal, plain lines otherwise; live; lines."
  )
  var view: PipelineView.Mode = .auto

  @Option(
    name: .customLong("data-dir"),
    help: "Root of the run's data: the services' directories and the run's own files."
  )
  var dataDirectory: String = "vane-data/pipeline"

  @Option(
    name: .customLong("base-port"),
    help: "Port of the feature service of the stack the pipeline starts; the others follow."
  )
  var basePort: Int = 50051

  @Option(
    name: .customLong("metrics-base-port"),
    help:
      "Port of the feature service's Prometheus endpoint in the stack the pipeline starts; the others follow. Default: --base-port + 10; 0: no metrics."
  )
  var metricsBasePort: Int?

  @Option(
    help:
      "Use running services instead: five host:port, comma-separated, in the order feature,trainer,predictor,gatekeeper,deploy."
  )
  var addresses: String?

  @Flag(
    name: .customLong("print-defaults"),
    help:
      "Print the training spec, the 'hourly' policy and the rollout plans the pipeline uses, and exit."
  )
  var printDefaults = false

  @OptionGroup var connection: ClientConnectionOptions

  func validate() throws {
    guard self.speed >= 0, self.speed.isFinite else {
      throw ValidationError("--speed: must be 0 or more bars per second")
    }
    if let liveBars = self.liveBars, liveBars < 1 {
      throw ValidationError("--live-bars: must be at least 1")
    }
    guard self.maxModelAge >= 1 else {
      throw ValidationError("--max-model-age: must be at least 1 hour")
    }
    guard self.maxRetrains >= 0 else {
      throw ValidationError("--max-retrains: must not be negative")
    }
    guard (1 ... 65520).contains(self.basePort) else {
      throw ValidationError("--base-port: \(self.basePort) is not a port from 1 to 65520")
    }
    try validateMetricsBasePort(self.metricsBasePort)
    _ = try self.cutTime()
    _ = try self.serviceAddresses()
  }

  func cutTime() throws -> Int64 {
    let formatter = ISO8601DateFormatter()
    let text = self.cut.count == 10 ? self.cut + "T00:00:00Z" : self.cut
    guard let date = formatter.date(from: text) else {
      throw ValidationError("--cut: '\(self.cut)' is not a date (YYYY-MM-DD) or an RFC 3339 time")
    }
    let ms = Int64(date.timeIntervalSince1970 * 1000)
    guard ms % 3_600_000 == 0 else {
      throw ValidationError("--cut: \(self.cut) is not on the hour")
    }
    return ms
  }

  func serviceAddresses() throws -> [ServiceKind: String]? {
    guard let addresses = self.addresses else { return nil }
    let parts = addresses.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard parts.count == ServiceKind.allCases.count, parts.allSatisfy({ !$0.isEmpty }) else {
      throw ValidationError(
        "--addresses: give five host:port, in the order \(ServiceKind.allCases.map(\.rawValue).joined(separator: ","))"
      )
    }
    return Dictionary(uniqueKeysWithValues: zip(ServiceKind.allCases, parts))
  }

  func run() async throws {
    if self.printDefaults {
      Output.line(
        "# training spec (data_range is set per run)\n"
          + PipelineDefaults.trainingSpecYAML(quick: self.quick)
      )
      Output.line(PipelineDefaults.hourlyPolicyYAML)
      Output.line(
        "# rollout plan of a first version\n" + PipelineDefaults.firstPlanYAML(minRequests: 24)
      )
      Output.line(
        "# rollout plan of a new version against the incumbent\n"
          + PipelineDefaults.rolloutPlanYAML(
            minRequests: PipelineSettings.defaultRolloutMinRequests,
            minMatured: PipelineSettings.defaultRolloutMinMatured
          )
      )
      return
    }
    VaneLogging.bootstrap(level: .warning)
    let (summary, seconds, root) = try await self.runPipeline()
    PipelineReport.printSummary(summary, seconds: seconds)
    do {
      let path = try PipelineReport.write(summary, seconds: seconds, to: root + "/report.html")
      Output.line("\nreport: \(path) (open it in a browser; one file, no network)")
    } catch {
      FileHandle.standardError.write(Data("ERROR: writing the report: \(error)\n".utf8))
      throw ExitCode(1)
    }
  }

  /// Runs the loop (starting the services unless `--addresses` names running ones) and stops
  /// what it started. - Returns: the summary, the run's seconds and its data root.
  /// - Throws: the documented exit code, after printing why.
  func runPipeline() async throws -> (PipelineSummary, Double, String) {
    let started = ContinuousClock.now
    let cut = try self.cutTime()
    let paths = try PipelineMarket.files(arguments: self.files, directory: self.market)
    let market = try PipelineMarket.load(paths: paths, cut: cut, liveBars: self.liveBars)
    let root = URL(fileURLWithPath: self.dataDirectory).standardizedFileURL.path
    let runDirectory = StackPlan.pipelineDirectory(dataRoot: root)

    // Signals are trapped first, so Ctrl-C always reaches the stopping path below.
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    let stage = PipelineStage()

    var stack: LocalStack?
    var addresses = try self.serviceAddresses() ?? [:]
    if addresses.isEmpty {
      if FileManager.default.fileExists(atPath: root) {
        Output.line("vane pipeline: starting over; removing the previous run's data in \(root)")
        try FileManager.default.removeItem(atPath: root)
      }
      try FileManager.default.createDirectory(
        atPath: runDirectory,
        withIntermediateDirectories: true
      )
      let plan = StackPlan.loopback(
        basePort: self.basePort,
        metricsBasePort: metricsBase(self.metricsBasePort, basePort: self.basePort),
        dataRoot: root
      )
      for entry in plan { addresses[entry.kind] = entry.address }
      // The replay settles the predictor after every bar (which joins the outcomes due): the
      // predictor's own join pass is only a backstop.
      let environment = ["VANE_JOIN_INTERVAL": "30"]
      Output.line("vane pipeline: starting the five services (logs in \(root)/logs)")
      let local = try LocalStack(
        plan: plan,
        gracePeriod: 5,
        environment: environment,
        logDirectory: root + "/logs"
      )
      stack = local
      do {
        try await local.waitUntilServing(timeout: .seconds(120))
      } catch {
        await local.stop(grace: 5)
        FileHandle.standardError.write(Data("ERROR: starting the services: \(error)\n".utf8))
        throw ExitCode(1)
      }
      for entry in plan {
        let metrics =
          entry.environment["VANE_METRICS_ADDRESS"].map { "   metrics http://\($0)/metrics" } ?? ""
        Output.line(
          "   \(entry.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(entry.address)\(metrics)"
        )
      }
    } else {
      try FileManager.default.createDirectory(
        atPath: runDirectory,
        withIntermediateDirectories: true
      )
    }

    var settings = PipelineSettings(bundleDirectory: runDirectory + "/bundles")
    settings.quick = self.quick
    settings.speed = self.speed
    settings.maxModelAgeBars = self.maxModelAge
    settings.maxRetrains = self.maxRetrains
    settings.injectBadModel = self.injectBadModel
    settings.stopWhenDone = self.stopWhenDone
    settings.view = self.view
    settings.runLabels = stack != nil
    let configured = settings
    let connection = self.connection
    let trainerAddress = addresses[.trainer]!
    let resolved = addresses

    enum Ending: Sendable {
      case finished(PipelineSummary)
      case failed(PipelineError)
      case interrupted
      case serviceExited(ServiceKind, Int32)
    }
    let (endings, sink) = AsyncStream<Ending>.makeStream()
    let work = Task {
      do {
        let summary = try await PipelineClients.with(addresses: resolved, connection: connection) {
          clients in
          try await PipelineRun(
            clients: clients,
            market: market,
            settings: configured,
            connection: connection,
            trainerAddress: trainerAddress,
            stage: stage
          ).run()
        }
        sink.yield(.finished(summary))
      } catch let error as PipelineError {
        sink.yield(.failed(error))
      } catch is CancellationError {
        sink.yield(.interrupted)
      } catch {
        sink.yield(.failed(PipelineError(kind: .failed, stage: stage.current, message: "\(error)")))
      }
    }
    let signalTask = Task {
      for await _ in signals {
        sink.yield(.interrupted)
        return
      }
    }
    let exitTask = Task {
      guard let stack else { return }
      for await exit in stack.exits {
        sink.yield(.serviceExited(exit.kind, exit.status))
        return
      }
    }
    var ending: Ending = .interrupted
    for await next in endings {
      ending = next
      break
    }
    signalTask.cancel()
    exitTask.cancel()
    work.cancel()
    if case .finished = ending {} else { _ = await work.result }
    // Services that outlive the run (--addresses) must not keep a rollout that only this run's
    // replay would have advanced: it is rolled back over a connection of its own (the run's
    // were cancelled with it).
    if stack == nil, let id = stage.activeRollout {
      let reason = "the pipeline stopped during '\(stage.current)' before the rollout finished"
      do {
        _ = try await PipelineClients.with(addresses: resolved, connection: connection) { clients in
          try await clients.deploy.rollback(
            .with {
              $0.rolloutID = id
              $0.reason = reason
            },
            metadata: clients.metadata,
            options: clients.options
          )
        }
        Output.line("vane pipeline: rolled back rollout \(id): \(reason)")
      } catch {
        FileHandle.standardError.write(
          Data(
            "vane pipeline: rollout \(id) is left active (rolling it back failed: \(error)); roll it back with `vane rollouts rollback \(id)`\n"
              .utf8
          )
        )
      }
    }
    if let stack {
      Output.line("vane pipeline: stopping the services")
      await stack.stop(grace: 5)
    }
    switch ending {
    case .finished(let summary):
      return (summary, PipelineTime.seconds(since: started), root)
    case .failed(let error):
      FileHandle.standardError.write(Data("ERROR: \(error.stage): \(error.message)\n".utf8))
      throw ExitCode(error.kind == .gateSaidNo ? 3 : 1)
    case .interrupted:
      FileHandle.standardError.write(
        Data(
          "vane pipeline: interrupted during '\(stage.current)'; the services were stopped. Run it again to start over.\n"
            .utf8
        )
      )
      throw ExitCode(130)
    case .serviceExited(let kind, let status):
      FileHandle.standardError.write(
        Data(
          "ERROR: \(stage.current): the \(kind.rawValue) service exited (status \(status)); see \(root)/logs/\(kind.rawValue).log\n"
            .utf8
        )
      )
      throw ExitCode(1)
    }
  }
}

extension PipelineView.Mode: ExpressibleByArgument {}
