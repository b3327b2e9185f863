import ArgumentParser
import DeployService
import GRPCCore
import GRPCShimTransport
import PredictorService
import Synchronization
import VaneBundle
import VaneCore
import VaneProto
import VaneQuality
import VaneRuntime
import VaneServing
import SwiftProtobuf
internal import Foundation

/// `vane bench deploy`: one rollout of the default plan's shape, compressed in time, under
/// load: failed requests, p99 per step beside the steady p99, and Deploy → PROMOTED beside
/// the plan's total step time.
struct DeployBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "deploy",
    abstract:
      "One compressed default-plan rollout under load: failed requests, p99 per step, time to PROMOTED vs the plan's step time.",
    discussion: """
      An in-process predictor (shim transport on 127.0.0.1, prediction log on) serves v0, a \
      trainer-written bundle (a logistic regression over --width synthetic columns); deploy (in \
      process, its controller polling every 50 ms) rolls out v1, blessed by a scratch key, \
      through shadow, canary 10 %, canary 50 % and full, --step-seconds each, analysis every \
      0.25 s with the default plan's checks (error rate and p99 against the baseline, shadow \
      disagreement). --concurrency Predict calls stay in flight throughout; the steady p99 is \
      measured before Deploy. Ratio = time to PROMOTED / the plan's total step time (target ≤ 1.1).
      """
  )

  @Option(help: "Feature columns of the bundles.")
  var width = 78

  @Option(help: "Seconds of each of the four steps.")
  var stepSeconds = 3.0

  @Option(help: "Seconds of steady load before Deploy.")
  var steadySeconds = 3.0

  @Option(help: "Calls in flight.")
  var concurrency = 64

  final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
  }

  final class Samples: Sendable {
    let value = Mutex<[(start: Duration, latency: Duration, failed: Bool)]>([])
  }

  func run() async throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-deploy-\(getpid())"
    )
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let paths = [
      try PredictorBench.bundle(scratch, seed: 1, width: self.width),
      try PredictorBench.bundle(scratch, seed: 2, width: self.width),
    ]
    let key = try BlessingKey.loadOrCreate(in: scratch.appendingPathComponent("gatekeeper").path)
    let candidate = try ModelBundle.open(path: paths[1])
    let verdict = try key.sign(
      manifestSHA256: candidate.manifestSHA256,
      bundleID: candidate.manifest.id,
      reportID: "bench",
      policyName: "bench",
      policySHA256: String(repeating: "0", count: 64),
      signTimeNanos: Int64(Date().timeIntervalSince1970 * 1e9)
    )

    let log = try PredictionLog(path: scratch.appendingPathComponent("predictions.sqlite").path)
    let predictor = PredictorServiceImplementation(
      runtime: RuntimeInfo(
        kind: .predictor,
        configuredAddress: "127.0.0.1:0",
        dataDirectory: scratch.path,
        tls: false,
        adminAuth: .loopbackOnly
      ),
      registry: ModelRegistry(log: log)
    )
    let transport = ShimServerTransport(config: .init(address: "127.0.0.1:0"))
    // Health as `vane serve predictor` reports it: deploy follows it.
    try transport.setServing(true, service: ServiceKind.predictor.grpcServiceName)
    let server = GRPCServer(transport: transport, routed: [RoutedService(predictor)])
    print(
      "vane bench deploy: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(self.concurrency) Predict calls in flight, 4 steps of \(self.stepSeconds) s"
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.serve() }
      group.addTask { await predictor.registry.runShadows() }
      group.addTask { await PredictionLog.Writer(log: log).run() }
      defer {
        predictor.registry.finishShadows()
        server.beginGracefulShutdown()
        group.cancelAll()
      }
      let port = try await transport.listeningPort
      let deploy = try DeployServiceImplementation(
        runtime: RuntimeInfo(
          kind: .deploy,
          configuredAddress: "127.0.0.1:0",
          dataDirectory: scratch.appendingPathComponent("deploy").path,
          tls: false,
          adminAuth: .loopbackOnly
        ),
        config: DeployConfig(
          predictorAddress: "127.0.0.1:\(port)",
          featureAddress: nil,
          trustedKeysDirectory: scratch.appendingPathComponent("gatekeeper").path,
          tick: .milliseconds(50)
        )
      )
      for service in deploy.background { group.addTask { try await service.run() } }
      let deployServer = ShimServerTransport(config: .init(address: "127.0.0.1:0"))
      group.addTask {
        try await GRPCServer(transport: deployServer, routed: [RoutedService(deploy)]).serve()
      }
      let deployPort = try await deployServer.listeningPort
      try await withGRPCClient(
        transport: try ShimClientTransport(config: .init(target: "127.0.0.1:\(port)"))
      ) { grpc in
        try await withGRPCClient(
          transport: try ShimClientTransport(config: .init(target: "127.0.0.1:\(deployPort)"))
        ) { deployGRPC in
          try await self.measure(
            predictor: Vane_V1_PredictorService.Client(wrapping: grpc),
            deploy: Vane_V1_DeployService.Client(wrapping: deployGRPC),
            paths: paths,
            verdict: Vane_V1_Verdict(verdict)
          )
        }
      }
    }
  }

  func measure(
    predictor: Vane_V1_PredictorService.Client<ShimClientTransport>,
    deploy: Vane_V1_DeployService.Client<ShimClientTransport>,
    paths: [String],
    verdict: Vane_V1_Verdict
  ) async throws {
    _ = try await predictor.loadModel(
      .with {
        $0.bundlePath = paths[0]
        $0.modelID = "bench"
        $0.version = "v0"
        $0.wait = true
      }
    )
    var random = SeededRandom(seed: 5)
    let requests = (0 ..< 64).map { _ in
      Vane_V1_PredictRequest.with {
        $0.model.modelID = "bench"
        $0.features = .with {
          $0.featureSetHash = String(repeating: "be", count: 32)
          $0.values = (0 ..< self.width).map { _ in Double.random(in: -1 ... 1, using: &random) }
        }
      }
    }
    let clock = ContinuousClock()
    let origin = clock.now
    let samples = Samples()
    let stop = StopFlag()
    let step = Duration.milliseconds(Int64(self.stepSeconds * 1000))
    let plan = Vane_V1_RolloutPlan.with {
      func stepOf(_ kind: Vane_V1_StepKind, _ percent: Double) -> Vane_V1_RolloutStep {
        .with {
          $0.kind = kind
          $0.trafficPercent = percent
          $0.duration = Google_Protobuf_Duration(
            seconds: step.components.seconds,
            nanos: Int32(step.components.attoseconds / 1_000_000_000)
          )
          $0.minRequests = 100
          $0.thresholds =
            [
              .with {
                $0.metric = "error_rate"
                $0.comparison = .lessOrEqual
                $0.threshold = 0.01
                $0.reference = .baselineDelta
                $0.failureLimit = 2
              },
              .with {
                $0.metric = "latency_p99_ms"
                $0.comparison = .lessOrEqual
                $0.threshold = 3
                $0.reference = .baselineRatio
                $0.failureLimit = 3
              },
            ]
            + (kind == .shadow
              ? [
                .with {
                  $0.metric = "disagreement_rate"
                  $0.comparison = .lessOrEqual
                  $0.threshold = 0.5
                  $0.failureLimit = 2
                }
              ] : [])
        }
      }
      $0.steps = [
        stepOf(.shadow, 100), stepOf(.canary, 10), stepOf(.canary, 50), stepOf(.full, 100),
      ]
      $0.analysisInterval = .init(seconds: 0, nanos: 250_000_000)
    }
    let (deployed, promotedAt, events) = try await withThrowingTaskGroup(of: Void.self) {
      group -> (Duration, Duration, [Vane_V1_RolloutEvent]) in
      for worker in 0 ..< self.concurrency {
        group.addTask {
          var i = worker
          while !stop.value.load(ordering: .relaxed) {
            let start = clock.now
            var failed = false
            do { _ = try await predictor.predict(requests[i % requests.count]) } catch {
              failed = true
            }
            let sample = (origin.duration(to: start), start.duration(to: clock.now), failed)
            samples.value.withLock { $0.append(sample) }
            i += 1
          }
        }
      }
      try await Task.sleep(for: .milliseconds(Int64(self.steadySeconds * 1000)))
      let deployed = origin.duration(to: clock.now)
      let rollout = try await deploy.deploy(
        .with {
          $0.bundlePath = paths[1]
          $0.blessing = verdict
          $0.modelID = "bench"
          $0.version = "v1"
          $0.plan = plan
        }
      )
      let events = try await deploy.watchRollout(.with { $0.rolloutID = rollout.id }) { response in
        var events: [Vane_V1_RolloutEvent] = []
        for try await event in response.messages { events.append(event) }
        return events
      }
      let finished = origin.duration(to: clock.now)
      // A little load after the end, then stop.
      try await Task.sleep(for: .milliseconds(500))
      stop.value.store(true, ordering: .relaxed)
      try await group.waitForAll()
      return (deployed, finished, events)
    }
    let final = try await deploy.getRollout(.with { $0.rolloutID = events.first?.rolloutID ?? "" })
    let all = samples.value.withLock { $0 }
    func p99(_ window: Range<Duration>) -> (Double, Int) {
      let micros = all.filter { window.contains($0.start) }.map { LoadRun.micros($0.latency) }
        .sorted()
      return (
        micros.isEmpty ? 0 : micros[min(micros.count - 1, micros.count * 99 / 100)], micros.count
      )
    }
    func time(_ event: Vane_V1_RolloutEvent) -> Duration {
      let seconds = Double(event.time.seconds) + Double(event.time.nanos) / 1e9
      let now = Date().timeIntervalSince1970
      return origin.duration(to: clock.now) - .milliseconds(Int64((now - seconds) * 1000))
    }
    let steady = p99(Duration.zero ..< deployed)
    print(
      String(
        format: "requests %d, failed %d (target 0) %@",
        all.count,
        all.filter(\.failed).count,
        all.contains { $0.failed } ? "NOT met" : "met"
      )
    )
    print(String(format: "steady p99 %.1f µs (%d calls before Deploy)", steady.0, steady.1))
    if let loaded = events.first(where: { $0.kind == .loaded }) {
      print(
        String(
          format: "verified, staged and loaded %.2f s after Deploy",
          LoadRun.micros(time(loaded) - deployed) / 1e6
        )
      )
    }
    let starts = events.filter { $0.kind == .stepStarted }
    let ends = events.filter { [.stepPassed, .stepFailed, .rollbackStarted].contains($0.kind) }
    for (i, start) in starts.enumerated() {
      let from = time(start), to = i < ends.count ? time(ends[i]) : promotedAt
      let (value, count) = p99(from ..< to)
      print(
        String(
          format: "step %d (%@): %.2f s, p99 %.1f µs over %d calls, %.2f× steady",
          start.stepIndex,
          start.reason,
          LoadRun.micros(to - from) / 1e6,
          value,
          count,
          steady.0 > 0 ? value / steady.0 : 0
        )
      )
    }
    let total = LoadRun.micros(promotedAt - deployed) / 1e6, planned = 4 * self.stepSeconds
    print(
      String(
        format: "Deploy → %@ in %.2f s; the plan's steps take %.2f s: %.2f× (target ≤ 1.1×) %@",
        RolloutText.state(final.state),
        total,
        planned,
        total / planned,
        total / planned <= 1.1 && final.state == .promoted ? "met" : "NOT met"
      )
    )
  }
}
