import ArgumentParser
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneCore
import VaneProto
import VaneQuality
import VaneRuntime
import Yams
internal import Foundation

/// Options every trainer client command shares.
struct TrainerClientOptions: ParsableArguments {
  @Option(help: "Trainer address.")
  var address: String = "127.0.0.1:\(ServiceKind.trainer.defaultPort)"

  @Option(help: "Deadline in seconds of each call (WatchJob streams have none).")
  var timeout: Double = 60

  @OptionGroup var connection: ClientConnectionOptions

  func withClient<R: Sendable>(
    _ body:
      @Sendable (Vane_V1_TrainerService.Client<ShimClientTransport>, CallOptions) async throws -> R
  ) async throws -> R {
    try await self.connection.withClient(address: self.address, timeout: self.timeout) {
      grpc,
      options in
      try await body(Vane_V1_TrainerService.Client(wrapping: grpc), options)
    }
  }
}

/// `vane train SPEC.yaml`: starts a training job and follows it with a live progress bar.
struct TrainCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract:
      "Start a training job from a spec (YAML or JSON: the API's TrainingSpec) and follow it to its end.",
    discussion: """
      The spec uses the API's field names (snake_case or lowerCamel) and enum names, e.g.
        symbols: [BTCUSDT]
        interval: INTERVAL_1H
        labels: {kind: LABEL_KIND_BINARY_DIRECTION, horizons: [{bars: 5}, {bars: 12}]}
        data_range: {start: "2022-01-01T00:00:00Z", end: "2025-01-01T00:00:00Z"}
        models:
          - {name: xgb, kind: MODEL_KIND_XGBOOST, xgboost: {num_boost_rounds: 300}}
          - {name: mlp, kind: MODEL_KIND_MLP, mlp: {hidden_units: [512, 256, 128], dropout: 0.3}}
        walk_forward: {train_bars: 8760, test_bars: 720, validation_bars: 720}
        stacking: {enabled: true}

      Exit code: 0 when the job succeeded (and its bundle passed the gates, when evaluated), 3 when a gate failed, \
      1 when the job failed or was cancelled or on an RPC error, 2 on a bad spec.
      """
  )

  @Argument(help: "The training spec file (.yaml, .yml or .json).")
  var spec: String

  @Option(
    name: .customLong("request-id"),
    help: "Idempotency key: the same key and spec return the job already started."
  )
  var requestID: String = ""

  @Flag(
    name: .customLong("validate-only"),
    help: "Check the spec and print it with its defaults resolved; start nothing."
  )
  var validateOnly = false

  @Flag(help: "Print the job id and return at once.")
  var detach = false

  @Flag(help: "Print the final job as JSON instead of a summary.")
  var json = false

  @OptionGroup var client: TrainerClientOptions

  func run() async throws {
    let spec = try Self.load(self.spec)
    let request = Vane_V1_StartTrainingRequest.with {
      $0.spec = spec
      $0.requestID = self.requestID
      $0.validateOnly = self.validateOnly
    }
    let job = try await self.client.withClient { client, options in
      try await client.startTraining(request, options: options)
    }
    if self.validateOnly {
      Output.line(try job.spec.jsonString(options: Self.jsonOptions))
      return
    }
    if self.detach {
      Output.line(job.id)
      return
    }
    FileHandle.standardError.write(Data("job \(job.id) queued\n".utf8))
    let final = try await JobWatch.follow(job.id, client: self.client)
    try JobWatch.finish(final, json: self.json)
  }

  static let jsonOptions: JSONEncodingOptions = {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    return options
  }()

  /// Reads a spec file: YAML (JSON is YAML) through the API's JSON mapping, so field names and
  /// enum names are the proto's and an unknown field is an error naming it.
  /// - Throws: ExitCode(2) after printing `ERROR: <file>: <reason>` for a file that is not a spec.
  static func load(_ path: String) throws -> Vane_V1_TrainingSpec {
    func fail(_ reason: String) -> ExitCode { Output.fileError(path, reason) }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw fail("cannot be read")
    }
    return try Self.parse(data, source: path)
  }

  /// Reads a spec document (YAML or JSON) named `source` in errors.
  /// - Throws: ExitCode(2) after printing `ERROR: <source>: <reason>`.
  static func parse(_ data: Data, source path: String) throws -> Vane_V1_TrainingSpec {
    func fail(_ reason: String) -> ExitCode { Output.fileError(path, reason) }
    let text = String(decoding: data, as: UTF8.self)
    let object: Any?
    do {
      // Bounded first (size, and nodes with aliases expanded) by the one YAML reader, then
      // loaded as plain values for the JSON mapping of TrainingSpec.
      _ = try YAMLReader(source: path).compose(text)
      object = try Yams.load(yaml: text)
    } catch let error as VaneError {
      throw fail(error.message)
    } catch {
      throw fail("not YAML or JSON (\(String(describing: error).prefix(300)))")
    }
    guard let object = object.map(Self.plain), JSONSerialization.isValidJSONObject(object),
      object is [String: Any]
    else {
      throw fail("the spec must be a mapping of TrainingSpec fields")
    }
    do {
      return try Vane_V1_TrainingSpec(
        jsonUTF8Data: try JSONSerialization.data(withJSONObject: object)
      )
    } catch {
      throw fail("not a TrainingSpec (\(error))")
    }
  }

  /// YAML values as JSON values: dates back to RFC 3339 text, other scalars as they are.
  static func plain(_ value: Any) -> Any {
    switch value {
    case let map as [String: Any]: return map.mapValues(Self.plain)
    case let map as [AnyHashable: Any]:
      return Dictionary(uniqueKeysWithValues: map.map { ("\($0.key)", Self.plain($0.value)) })
    case let list as [Any]: return list.map(Self.plain)
    case let date as Date:
      let formatter = ISO8601DateFormatter()
      return formatter.string(from: date)
    default: return value
    }
  }
}

/// `vane jobs …`: list, follow, cancel and resume training jobs.
struct JobsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "jobs",
    abstract: "List, follow, cancel and resume training jobs.",
    subcommands: [List.self, Watch.self, Cancel.self, Resume.self],
    defaultSubcommand: List.self
  )

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Jobs, newest first.")

    @Option(help: "Most jobs to list.")
    var limit: Int32 = 20

    @OptionGroup var client: TrainerClientOptions

    func run() async throws {
      let response = try await self.client.withClient { client, options in
        try await client.listJobs(.with { $0.page.pageSize = self.limit }, options: options)
      }
      for job in response.jobs {
        let auc =
          job.modelMetrics.first { $0.role == .meta }?.oofMetrics["auc"]
          ?? job.modelMetrics.first?.oofMetrics["auc"]
        Output.line(
          [
            job.id, job.state.name, job.spec.symbols.joined(separator: ","), job.bundle.bundleID,
            auc.map { String(format: "auc %.4f", $0) } ?? "",
            job.hasVerdict ? (job.verdict.passed ? "gates passed" : "gates FAILED") : "",
          ].filter { !$0.isEmpty }.joined(separator: "  ")
        )
      }
    }
  }

  struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Follow a job to its end with a progress bar."
    )

    @Argument(help: "Job id.")
    var job: String

    @Flag(help: "Print the final job as JSON.")
    var json = false

    @OptionGroup var client: TrainerClientOptions

    func run() async throws {
      try JobWatch.finish(try await JobWatch.follow(self.job, client: self.client), json: self.json)
    }
  }

  struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Cancel a queued or running job (what finished is kept)."
    )

    @Argument(help: "Job id.")
    var job: String

    @Option(help: "Reason, recorded on the job.")
    var reason = ""

    @OptionGroup var client: TrainerClientOptions

    func run() async throws {
      let job = try await self.client.withClient { client, options in
        try await client.cancelJob(
          .with {
            $0.jobID = self.job
            $0.reason = self.reason
          },
          options: options
        )
      }
      Output.line(
        "\(job.id) \(job.state.name)\(job.cancelRequested ? " (cancellation requested)" : "")"
      )
    }
  }

  struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Resume an interrupted job after its last finished fold, and follow it."
    )

    @Argument(help: "Job id.")
    var job: String

    @Flag(help: "Return at once.")
    var detach = false

    @OptionGroup var client: TrainerClientOptions

    func run() async throws {
      let job = try await self.client.withClient { client, options in
        try await client.resumeJob(.with { $0.jobID = self.job }, options: options)
      }
      if self.detach {
        Output.line("\(job.id) \(job.state.name)")
        return
      }
      try JobWatch.finish(try await JobWatch.follow(job.id, client: self.client), json: false)
    }
  }
}

/// Following a job: WatchJob drawn as a progress bar on standard error (a line per step when it
/// is not a terminal), then the final job.
enum JobWatch {
  static func follow(_ id: String, client options: TrainerClientOptions) async throws -> Vane_V1_Job
  {
    try await Self.follow(id, address: options.address, connection: options.connection)
  }

  /// Follows job `id` on the trainer at `address`, drawing its progress on standard error.
  /// - Parameter prefix: text before each progress line (a pipeline's stage).
  static func follow(
    _ id: String,
    address: String,
    connection: ClientConnectionOptions,
    prefix: String = ""
  ) async throws -> Vane_V1_Job {
    let terminal = isatty(STDERR_FILENO) == 1
    let transport = try ShimClientTransport(config: connection.config(target: address))
    do {
      return try await withGRPCClient(transport: transport) { grpc in
        let client = Vane_V1_TrainerService.Client(wrapping: grpc)
        var last: UInt64 = 0
        // The stream may end early (the trainer restarted): watch again from the last event.
        for _ in 0 ..< 100 {
          let after = last
          let (final, seen): (Vane_V1_Job?, UInt64) = try await client.watchJob(
            .with {
              $0.jobID = id
              $0.afterSequence = after
              $0.includeLogs = true
            }
          ) { response in
            var lastLine = ""
            var seen = after
            for try await event in response.messages {
              seen = max(seen, event.sequence)
              if case .finalJob(let job)? = event.detail {
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                return (job, seen)
              }
              if case .log(let line)? = event.detail {
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                FileHandle.standardError.write(Data("\(line.message)\n".utf8))
              }
              let text = prefix + Self.describe(event)
              if terminal {
                FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
              } else if text != lastLine {
                FileHandle.standardError.write(Data("\(text)\n".utf8))
              }
              lastLine = text
            }
            return (nil, seen)
          }
          if let final { return final }
          last = seen
          try await Task.sleep(for: .seconds(1))
        }
        throw ValidationError("job \(id): the watch kept ending before the job did")
      }
    } catch let error as RPCError {
      FileHandle.standardError.write(Data("ERROR: \(error.code): \(error.message)\n".utf8))
      throw ExitCode(1)
    }
  }

  /// One line: a bar, the stage, fold, model, elapsed and remaining time, the last metric.
  static func describe(_ event: Vane_V1_JobEvent) -> String {
    let p = event.progress
    let width = 24
    let filled = Int((p.fraction * Double(width)).rounded(.down))
    var parts = [
      "[" + String(repeating: "#", count: min(filled, width))
        + String(repeating: ".", count: max(width - filled, 0)) + "]",
      String(format: "%3.0f%%", p.fraction * 100), Self.stageName(p.stage),
    ]
    if p.foldCount > 0 { parts.append("fold \(p.fold)/\(p.foldCount)") }
    if !p.model.isEmpty { parts.append("\(p.model) h\(p.horizonBars)") }
    parts.append("elapsed \(Self.clock(p.elapsed.seconds))")
    if p.hasEstimatedRemaining { parts.append("left ~\(Self.clock(p.estimatedRemaining.seconds))") }
    if case .metric(let metric)? = event.detail {
      parts.append(String(format: "%@ %.4f", metric.name, metric.value))
    }
    return parts.joined(separator: "  ")
  }

  static func clock(_ seconds: Int64) -> String {
    String(format: "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
  }

  static func stageName(_ stage: Vane_V1_JobStage) -> String {
    switch stage {
    case .queued: "queued"
    case .loadingData: "loading data"
    case .training: "training"
    case .stacking: "stacking"
    case .finalFit: "final fit"
    case .calibrating: "calibrating"
    case .exporting: "exporting"
    case .bundling: "bundling"
    case .evaluating: "evaluating"
    case .done: "done"
    default: "?"
    }
  }

  /// Prints the outcome and exits with the documented code.
  static func finish(_ job: Vane_V1_Job, json: Bool) throws {
    if json {
      Output.line(try job.jsonString(options: TrainCommand.jsonOptions))
    } else {
      Output.line(
        "\(job.id) \(job.state.name)\(job.bundle.path.isEmpty ? "" : "  bundle \(job.bundle.path)")"
      )
      if job.hasError {
        Output.line(
          "  error: \(job.error.code) in \(Self.stageName(job.error.stage)): \(job.error.message)"
        )
      }
      for metrics in job.modelMetrics {
        let values = ["auc", "log_loss", "ece"].compactMap { name in
          metrics.oofMetrics[name].map { String(format: "%@ %.4f", name, $0) }
        }
        Output.line(
          "  \(metrics.model.padding(toLength: 10, withPad: " ", startingAt: 0)) h\(metrics.horizonBars)  OOF rows \(metrics.oofRows)  \(values.joined(separator: "  "))"
        )
      }
      if job.hasVerdict {
        let verdict = job.verdict
        Output.line(
          "  gates \(verdict.passed ? "passed" : "FAILED: " + verdict.failedGates.joined(separator: ", ")) (policy \(verdict.policyName), report \(verdict.reportID))\(verdict.blessed ? ", blessed" : "")"
        )
      }
      for warning in job.warnings { Output.line("  warning: \(warning)") }
    }
    switch job.state {
    case .succeeded: if job.hasVerdict && !job.verdict.passed { throw ExitCode(3) }
    default: throw ExitCode(1)
    }
  }
}
