import ArgumentParser
import GRPCCore
import GRPCShimTransport
import TrainerService
import VaneCore
import VaneFeatures
import VaneProto
import VaneRuntime
import VaneTraining
internal import Foundation

/// `vane bench pipeline`: the main job's stages beside their floors, measured in one run: the
/// first training beside the same walk-forward run in-process (no services, the same rows), and
/// the replay's bars per second (ingest, predict, outcome joins and rollout analysis running)
/// beside the same bars ingested alone into a fresh feature service.
struct PipelineBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pipeline",
    abstract: "The pipeline's stage times beside their floors (training in-process, ingest alone)."
  )

  @Option(name: .customLong("live-bars"), help: "Live bars to replay.")
  var liveBars: Int = 240

  @Option(help: "Where history ends (UTC date).")
  var cut: String = "2024-12-01"

  @Flag(help: "The pipeline's smaller model.")
  var quick = false

  @Option(name: .customLong("base-port"), help: "First of the ports the benchmark's services use.")
  var basePort: Int = 50151

  @Option(name: .customLong("data-dir"), help: "Scratch directory (removed first).")
  var dataDirectory: String = "/tmp/vane-bench-pipeline"

  func run() async throws {
    VaneLogging.bootstrap(level: .warning)
    // 1. The pipeline, without retraining or the injected fault: one training, one replay.
    var arguments = [
      "--data-dir", self.dataDirectory + "/pipeline", "--base-port", "\(self.basePort)", "--cut",
      self.cut, "--live-bars", "\(self.liveBars)",
      "--speed", "0", "--max-retrains", "0", "--no-inject-bad-model",
    ]
    if self.quick { arguments.append("--quick") }
    let command = try PipelineCommand.parse(arguments)
    let (summary, total, _) = try await command.runPipeline()
    func stage(_ name: String) -> Double {
      summary.stages.first { $0.name == name }?.seconds ?? .nan
    }

    // 2. The same walk-forward in-process, on the rows the trainer was sent.
    let market = try PipelineMarket.load(
      paths: PipelineMarket.files(arguments: [], directory: nil),
      cut: try command.cutTime(),
      liveBars: self.liveBars
    )
    let history = Dictionary(
      uniqueKeysWithValues: market.series.map { ($0.symbol, $0.history.map(\.candle)) }
    )
    let spec = try TrainCommand.parse(
      Data(PipelineDefaults.trainingSpecYAML(quick: self.quick).utf8),
      source: "pipeline spec"
    )
    let start = history[PipelineDefaults.symbol]!.first!.openTime
    let trainStarted = ContinuousClock.now
    let dataset = try Dataset.build(
      DatasetSpec(
        symbols: [PipelineDefaults.symbol],
        interval: .h1,
        featureSet: .v1,
        labels: LabelSpec(kind: .binary, horizons: [1, 4]),
        from: start,
        to: market.cut,
        restrictLabelsToRange: true
      )
    ) { history[$0] ?? [] }
    let data = try TrainingData(dataset: dataset)
    let run = try spec.runSpec(defaultThreads: 2)
    let floor = try await BlockingPool.shared.run {
      let runs = try WalkForwardRun.run(run, data: data)
      _ = try WalkForwardRun.fitFinal(run, data: data, runs: runs)
      return PipelineTime.seconds(since: trainStarted)
    }

    // 3. The same live bars ingested alone into a fresh feature service.
    let root = self.dataDirectory + "/ingest-only"
    try? FileManager.default.removeItem(atPath: root)
    let plan = StackPlan.loopback(basePort: self.basePort + 10, dataRoot: root).filter {
      $0.kind == .feature
    }
    let feature = try LocalStack(plan: plan, gracePeriod: 2, logDirectory: root + "/logs")
    let ingestRate: Double
    do {
      try await feature.waitUntilServing(timeout: .seconds(60))
      ingestRate = try await withGRPCClient(
        transport: try ShimClientTransport(config: .init(target: feature.address(.feature)))
      ) { grpc in
        let client = Vane_V1_FeatureService.Client(wrapping: grpc)
        for (_, messages) in market.historyStreams() {
          _ = try await client.ingestCandles { try await $0.write(contentsOf: messages) }
        }
        let started = ContinuousClock.now
        for time in market.liveTimes {
          for (_, messages) in market.barStreams(time) {
            _ = try await client.ingestCandles { try await $0.write(contentsOf: messages) }
          }
        }
        return Double(market.liveTimes.count) / PipelineTime.seconds(since: started)
      }
    } catch {
      await feature.stop(grace: 2)
      throw error
    }
    await feature.stop(grace: 2)

    let replayRate = Double(summary.bars) / stage("replay")
    print(
      "vane bench pipeline: \(summary.bars) live bars after \(self.cut), \(self.quick ? "quick" : "default") spec; the run took \(String(format: "%.1f", total)) s"
    )
    func name(_ text: String) -> String { text.padding(toLength: 26, withPad: " ", startingAt: 0) }
    print("   stage                     pipeline        floor           ratio")
    print(
      name("   train v1")
        + String(
          format:
            "%8.1f s      %8.1f s      %5.2f×   (floor: the same walk-forward and final fit in-process, no services)",
          stage("train v1"),
          floor,
          stage("train v1") / floor
        )
    )
    print(
      name("   replay")
        + String(
          format:
            "%8.1f bars/s %8.1f bars/s %5.2f×   (floor: the same bars ingested alone: no predictions, joins or analysis)",
          replayRate,
          ingestRate,
          replayRate / ingestRate
        )
    )
    for (stageName, seconds) in summary.stages
    where stageName != "train v1" && stageName != "replay" {
      print(name("   " + stageName) + String(format: "%8.1f s", seconds))
    }
  }
}
