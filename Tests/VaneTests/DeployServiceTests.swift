import Foundation
import GRPCCore
import GRPCShimTransport
import Synchronization
import Testing
import VaneBundle
import VaneCore
import VaneMetrics
import VaneProto
import VaneQuality
import VaneRuntime
import VaneServing
import VaneTestSupport
import PredictorService

@testable import DeployService

/// Deploy over real services: a predictor serving the incumbent under a steady request load,
/// deploy verifying blessed trainer-written bundles and rolling them out in steps of seconds.
@Suite("Deploy service: intake and rollouts", .timeLimit(.minutes(2)))
struct DeployServiceTests {
  typealias Deploy = Vane_V1_DeployService.Client<AnyClientTransport>
  typealias Predictor = Vane_V1_PredictorService.Client<AnyClientTransport>

  /// A gatekeeper key in a scratch directory (what `--trusted-keys` points at), and another.
  static let keys: (directory: String, key: BlessingKey, stranger: BlessingKey) = {
    let root = TestScratch.directory("deploy-keys")
    let key = try! BlessingKey.loadOrCreate(in: root.appendingPathComponent("gatekeeper").path)
    let stranger = try! BlessingKey.loadOrCreate(in: root.appendingPathComponent("stranger").path)
    return (root.appendingPathComponent("gatekeeper").path, key, stranger)
  }()

  static func bless(_ path: String, with key: BlessingKey = Self.keys.key) throws -> Vane_V1_Verdict
  {
    let bundle = try ModelBundle.open(path: path)
    return Vane_V1_Verdict(
      try key.sign(
        manifestSHA256: bundle.manifestSHA256,
        bundleID: bundle.manifest.id,
        reportID: "report-\(bundle.manifest.id)",
        policyName: "default",
        policySHA256: String(repeating: "0", count: 64),
        signTimeNanos: 1_800_000_000_000_000_000
      )
    )
  }

  /// A fast plan: shadow, canary 50 %, full; seconds each, analysis every 0.2 s.
  static func plan(disagreement: Double = 0.9) -> Vane_V1_RolloutPlan {
    func step(
      _ kind: Vane_V1_StepKind,
      _ percent: Double,
      _ seconds: Int64,
      _ thresholds: [Vane_V1_AnalysisThreshold]
    ) -> Vane_V1_RolloutStep {
      .with {
        $0.kind = kind
        $0.trafficPercent = percent
        $0.duration = .init(seconds: seconds)
        $0.thresholds = thresholds
        $0.minRequests = 20
      }
    }
    let errors = Vane_V1_AnalysisThreshold.with {
      $0.metric = "error_rate"
      $0.comparison = .lessOrEqual
      $0.threshold = 0.01
      $0.reference = .baselineDelta
    }
    let agreement = Vane_V1_AnalysisThreshold.with {
      $0.metric = "disagreement_rate"
      $0.comparison = .lessOrEqual
      $0.threshold = disagreement
      $0.failureLimit = 2
    }
    return .with {
      $0.steps = [
        step(.shadow, 100, 1, [errors, agreement]), step(.canary, 50, 1, [errors]),
        step(.full, 100, 0, [errors]),
      ]
      $0.analysisInterval = .init(seconds: 0, nanos: 200_000_000)
    }
  }

  /// A predictor (shim, with a prediction log) serving v1, deploy in process, and a steady
  /// stream of Predict requests counting failures while `body` runs.
  static func withStack<R: Sendable>(
    _ body: @Sendable (Deploy, Predictor, DeployServiceImplementation, Tally) async throws -> R
  ) async throws -> R {
    let bundles = try await BlockingPool.shared.run {
      PredictorServiceTests.bundles + [PredictorServiceTests.flippedBundle]
    }
    _ = bundles
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-deploy-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: scratch) }
    let log = try PredictionLog(path: scratch.appendingPathComponent("predictions.sqlite").path)
    let predictorInfo = RuntimeInfo(
      kind: .predictor,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: scratch.path,
      tls: false,
      adminAuth: .loopbackOnly
    )
    let predictor = PredictorServiceImplementation(
      runtime: predictorInfo,
      registry: ModelRegistry(log: log)
    )
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { await predictor.registry.runShadows() }
      group.addTask { await PredictionLog.Writer(log: log, interval: .milliseconds(20)).run() }
      defer {
        predictor.registry.finishShadows()
        group.cancelAll()
      }
      return try await withServer(.shim, services: [predictor]) { predictorClient, handle in
        let predictorAPI = Predictor(wrapping: predictorClient)
        _ = try await predictorAPI.loadModel(
          .with {
            $0.bundlePath = PredictorServiceTests.bundles[0]
            $0.modelID = "btc"
            $0.version = "v1"
            $0.wait = true
          }
        )
        let deployInfo = RuntimeInfo(
          kind: .deploy,
          configuredAddress: "127.0.0.1:0",
          dataDirectory: scratch.appendingPathComponent("deploy").path,
          tls: false,
          adminAuth: .loopbackOnly
        )
        let deploy = try DeployServiceImplementation(
          runtime: deployInfo,
          config: DeployConfig(
            predictorAddress: "127.0.0.1:\(handle.port!)",
            featureAddress: nil,
            trustedKeysDirectory: Self.keys.directory,
            tick: .milliseconds(50)
          )
        )
        let counts = Tally()
        return try await withThrowingTaskGroup(of: Void.self) { inner in
          for service in deploy.background { inner.addTask { try await service.run() } }
          // The steady load: requests with an input row each, like a client's.
          inner.addTask {
            var i = 0
            while !Task.isCancelled {
              i += 1
              do {
                _ = try await predictorAPI.predict(
                  PredictorServiceTests.request([Double(i % 7) / 3 - 1, 0.1, 0.5])
                )
                counts.value.withLock { $0.ok += 1 }
              } catch {
                if Task.isCancelled { break }
                counts.value.withLock { $0.failed += 1 }
              }
              try? await Task.sleep(for: .milliseconds(2))
            }
          }
          defer { inner.cancelAll() }
          return try await withServer(
            .inProcess,
            services: [deploy],
            interceptors: [.apply(RequestIDServerInterceptor(), to: .all)]
          ) { deployClient, _ in
            try await body(Deploy(wrapping: deployClient), predictorAPI, deploy, counts)
          }
        }
      }
    }
  }

  /// Watches a rollout to its end. - Returns: its events, and the final rollout.
  static func watch(
    _ deploy: Deploy,
    _ id: String
  ) async throws -> ([Vane_V1_RolloutEvent], Vane_V1_Rollout) {
    let events = try await deploy.watchRollout(.with { $0.rolloutID = id }) { response in
      var events: [Vane_V1_RolloutEvent] = []
      for try await event in response.messages { events.append(event) }
      return events
    }
    return (events, try await deploy.getRollout(.with { $0.rolloutID = id }))
  }

  @Test(
    "A blessed bundle rolls out shadow → canary → full → PROMOTED under load with zero failed requests; the baseline is unloaded"
  )
  func promoted() async throws {
    try await Self.withStack { deploy, predictor, implementation, counts in
      VaneMetrics.bootstrap()
      let refresh = implementation.metricsRefresh()
      let path = PredictorServiceTests.bundles[1]
      let started = try await deploy.deploy(
        .with {
          $0.bundlePath = path
          $0.blessing = try Self.bless(path)
          $0.modelID = "btc"
          $0.version = "v2"
          $0.plan = Self.plan()
        },
        metadata: ["x-request-id": "trace-deploy-v2"]
      )
      #expect(started.state == .verifying && started.baseline.version == "v1")
      // The rollout keeps the x-request-id of the Deploy call; its steps run under it.
      #expect(
        try implementation.controller.store.rollout(id: started.id)?.originRequestID
          == "trace-deploy-v2"
      )
      let (events, rollout) = try await Self.watch(deploy, started.id)
      #expect(events.first?.kind == .snapshot)
      #expect(
        rollout.state == .promoted,
        "\(rollout.failureReason) \(rollout.history.map(\.reason))"
      )
      let kinds = rollout.history.map(\.kind)
      for kind in [
        Vane_V1_RolloutEventKind.staged, .loaded, .stepStarted, .trafficChanged, .stepPassed,
        .promoted,
      ] { #expect(kinds.contains(kind), "\(kind)") }
      #expect(rollout.steps.map(\.state) == [.passed, .passed, .passed])
      #expect(
        rollout.bundle.path.hasSuffix(rollout.bundle.manifestSha256),
        "staged in the artifact store: \(rollout.bundle.path)"
      )
      // The baseline goes after promotion.
      var versions: [String] = []
      for _ in 0 ..< 100 {
        versions = try await predictor.listModels(.with { $0.modelID = "btc" }).versions.map(
          \.ref.version
        )
        if versions == ["v2"] { break }
        try await Task.sleep(for: .milliseconds(50))
      }
      #expect(versions == ["v2"])
      let tally = counts.value.withLock { $0 }
      #expect(tally.failed == 0 && tally.ok > 100, "\(tally)")
      // Stored: listed, newest first.
      let listed = try await deploy.listRollouts(.init())
      #expect(listed.rollouts.map(\.id) == [started.id] && listed.rollouts[0].history.isEmpty)
      // Its figures at scrape time: one rollout, promoted; no step left for a finished one.
      refresh()
      let text = String(decoding: VaneMetrics.exposition(), as: UTF8.self)
      #expect(sample("vane_deploy_rollouts", ["state": "promoted"], in: text) == 1, "\(text)")
      #expect(sample("vane_deploy_rollouts", ["state": "canary"], in: text) == 0)
      #expect(sample("vane_deploy_rollout_step", ["version": "v2"], in: text) == nil)
    }
  }

  @Test(
    "A version answering the opposite class fails the shadow step on disagreement and rolls back on its own"
  )
  func rolledBack() async throws {
    try await Self.withStack { deploy, predictor, _, counts in
      let path = PredictorServiceTests.flippedBundle
      let started = try await deploy.deploy(
        .with {
          $0.bundlePath = path
          $0.blessing = try Self.bless(path)
          $0.modelID = "btc"
          $0.version = "v9"
          $0.plan = Self.plan(disagreement: 0.3)
        }
      )
      let (_, rollout) = try await Self.watch(deploy, started.id)
      #expect(rollout.state == .rolledBack, "\(rollout.history.map(\.reason))")
      #expect(rollout.failureReason.contains("disagreement_rate"), "\(rollout.failureReason)")
      #expect(rollout.steps[0].state == .failed)
      let listed = try await predictor.listModels(.with { $0.modelID = "btc" }).versions
      #expect(listed.map(\.ref.version) == ["v1"] && listed[0].trafficPercent == 100)
      #expect(counts.value.withLock { $0.failed } == 0)
    }
  }

  @Test(
    "A step short of its minimum requests is INCONCLUSIVE and holds: it never passes on missing data"
  )
  func inconclusiveHolds() async throws {
    try await Self.withStack { deploy, _, _, _ in
      let path = PredictorServiceTests.bundles[1]
      var plan = Self.plan()
      plan.steps[0].duration = .init(seconds: 0)
      plan.steps[0].minRequests = 1_000_000
      let started = try await deploy.deploy(
        .with {
          $0.bundlePath = path
          $0.blessing = try Self.bless(path)
          $0.modelID = "btc"
          $0.version = "v2"
          $0.plan = plan
        }
      )
      var rollout = started
      for _ in 0 ..< 100 {
        rollout = try await deploy.getRollout(.with { $0.rolloutID = started.id })
        if rollout.state == .shadow, !rollout.analysis.isEmpty { break }
        try await Task.sleep(for: .milliseconds(50))
      }
      // Two seconds of analyses every 0.2 s, with requests flowing: still in the shadow step.
      try await Task.sleep(for: .seconds(2))
      rollout = try await deploy.getRollout(.with { $0.rolloutID = started.id })
      #expect(
        rollout.state == .shadow && rollout.currentStep == 0,
        "\(rollout.history.map(\.reason))"
      )
      #expect(
        !rollout.analysis.isEmpty && rollout.analysis.allSatisfy { $0.inconclusive && !$0.passed },
        "\(rollout.analysis)"
      )
      #expect(
        rollout.analysis.first?.reason.contains("1000000 requests") == true,
        "\(rollout.analysis.first?.reason ?? "")"
      )
      _ = try await deploy.rollback(.with { $0.rolloutID = started.id })
    }
  }

  @Test(
    "Intake refuses unsigned, unknown-key, tampered and other-bundle blessings, a gzip bomb, relative paths and a second active rollout, each naming why"
  )
  func intake() async throws {
    try await Self.withStack { deploy, _, _, _ in
      let path = PredictorServiceTests.bundles[1]
      func refusal(_ request: Vane_V1_DeployRequest) async -> RPCError? {
        await #expect(throws: RPCError.self) { try await deploy.deploy(request) }
      }
      var request = Vane_V1_DeployRequest.with {
        $0.bundlePath = path
        $0.modelID = "btc"
        $0.version = "v2"
        $0.plan = Self.plan()
      }
      let unsigned = await refusal(request)
      #expect(
        unsigned?.code == .failedPrecondition && unsigned?.message.contains("not blessed") == true,
        "\(String(describing: unsigned))"
      )
      request.blessing = try Self.bless(path, with: Self.keys.stranger)
      let stranger = await refusal(request)
      #expect(
        stranger?.code == .failedPrecondition && stranger?.message.contains("unknown key") == true,
        "\(String(describing: stranger))"
      )
      request.blessing = try Self.bless(PredictorServiceTests.bundles[0])
      let other = await refusal(request)
      #expect(
        other?.code == .failedPrecondition && other?.message.contains("another bundle") == true,
        "\(String(describing: other))"
      )
      // Tampered: the bundle unpacked, one model file changed.
      let tampered = FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-tampered-\(UUID().uuidString)"
      ).path
      defer { try? FileManager.default.removeItem(atPath: tampered) }
      let bundle = try ModelBundle.open(path: path)
      try bundle.unpack(to: tampered)
      let file = try #require(bundle.manifest.models.first).file
      var bytes = try Data(contentsOf: URL(fileURLWithPath: tampered + "/" + file))
      bytes[bytes.count / 2] ^= 0x01
      try bytes.write(to: URL(fileURLWithPath: tampered + "/" + file))
      var changed = request
      changed.bundlePath = tampered
      changed.blessing = try Self.bless(path)
      let tamperedError = await refusal(changed)
      #expect(
        tamperedError?.code == .failedPrecondition
          && tamperedError?.message.contains("checksum") == true,
        "\(String(describing: tamperedError))"
      )
      // A gzip bomb: 2 GiB of zeros in about 9 MB. Read as it inflates, it is an archive that
      // ends at its first (zero) block, so the rest is never inflated: no bundle.json.
      let bomb = FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-bomb-\(UUID().uuidString).tar.gz"
      ).path
      defer { try? FileManager.default.removeItem(atPath: bomb) }
      let made = try ONNXRuntimeHarness.python([
        "-c",
        """
        import gzip
        zeros = bytes(16 << 20)
        with gzip.GzipFile('\(bomb)', 'wb', compresslevel=1) as f:
            for _ in range(128): f.write(zeros)
        """,
      ])
      try #require(made.status == 0, "\(made.stderr)")
      var bombRequest = request
      bombRequest.bundlePath = bomb
      bombRequest.blessing = try Self.bless(path)
      let exploded = await refusal(bombRequest)
      #expect(
        exploded?.code == .failedPrecondition
          && exploded?.message.contains("no bundle.json") == true,
        "\(String(describing: exploded))"
      )
      // Archives that try to leave the artifact directory: a '..' member and a symbolic link.
      for (member, reason) in [("traversal", "unsafe path"), ("link", "is a link")] {
        let hostile = FileManager.default.temporaryDirectory.appendingPathComponent(
          "vane-hostile-\(member)-\(UUID().uuidString).tar.gz"
        ).path
        defer { try? FileManager.default.removeItem(atPath: hostile) }
        let made = try ONNXRuntimeHarness.python([
          "-c",
          """
          import io, tarfile
          with tarfile.open('\(hostile)', 'w:gz') as t:
              if '\(member)' == 'traversal':
                  data = b'owned'
                  info = tarfile.TarInfo('models/../../x')
                  info.size = len(data)
                  t.addfile(info, io.BytesIO(data))
              else:
                  info = tarfile.TarInfo('models/a.json')
                  info.type = tarfile.SYMTYPE
                  info.linkname = '/etc/passwd'
                  t.addfile(info)
          """,
        ])
        try #require(made.status == 0, "\(made.stderr)")
        var hostileRequest = request
        hostileRequest.bundlePath = hostile
        hostileRequest.blessing = try Self.bless(path)
        let refused = await refusal(hostileRequest)
        #expect(
          refused?.code == .failedPrecondition && refused?.message.contains(reason) == true,
          "\(member): \(String(describing: refused))"
        )
      }
      var relative = request
      relative.bundlePath = "bundles/b.tar.gz"
      #expect(await refusal(relative)?.code == .invalidArgument)
      // The verdict file beside the bundle is read when the request has none.
      let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-beside-\(UUID().uuidString).tar.gz"
      ).path
      defer {
        try? FileManager.default.removeItem(atPath: copy)
        try? FileManager.default.removeItem(atPath: ModelBundle.verdictPath(for: copy))
      }
      try FileManager.default.copyItem(atPath: path, toPath: copy)
      try Data(try Self.bless(path).jsonUTF8Data()).write(
        to: URL(fileURLWithPath: ModelBundle.verdictPath(for: copy))
      )
      var beside = request
      beside.bundlePath = copy
      beside.clearBlessing()
      beside.dryRun = true
      let dry = try await deploy.deploy(beside)
      #expect(
        dry.id.isEmpty && dry.state == .pending && dry.blessing.publicKeyID == Self.keys.key.keyID
      )
      // One active rollout per model.
      request.blessing = try Self.bless(path)
      var slow = Self.plan()
      slow.steps[0].duration = .init(seconds: 600)
      request.plan = slow
      request.requestID = "req-1"
      let first = try await deploy.deploy(request)
      // The same request again is the same rollout; the key with another version is refused.
      #expect(try await deploy.deploy(request).id == first.id)
      var reused = request
      reused.version = "v4"
      #expect(await refusal(reused)?.code == .alreadyExists)
      var second = request
      second.requestID = ""
      second.version = "v3"
      let busy = await refusal(second)
      #expect(
        busy?.code == .failedPrecondition && busy?.message.contains(first.id) == true,
        "\(String(describing: busy))"
      )
      let rolledBack = try await deploy.rollback(.with { $0.rolloutID = first.id })
      #expect([.rollingBack, .rolledBack, .aborted].contains(rolledBack.state))
      let bad = await #expect(throws: RPCError.self) {
        try await deploy.deploy(
          .with {
            $0.bundlePath = path
            $0.plan = .with {
              $0.steps = [
                .with {
                  $0.kind = .canary
                  $0.trafficPercent = 10
                }
              ]
            }
          }
        )
      }
      #expect(bad?.code == .invalidArgument && bad?.message.contains("plan.steps") == true)
    }
  }

  @Test(
    "UploadBundle keeps a verified bundle under its manifest hash (twice: the same path); refuses a non-bundle, an oversize header and a chunk before the header"
  )
  func upload() async throws {
    try await Self.withStack { deploy, _, _, _ in
      let data = try Data(contentsOf: URL(fileURLWithPath: PredictorServiceTests.bundles[1]))
      func send(
        _ messages: [Vane_V1_UploadBundleRequest]
      ) async throws -> Vane_V1_UploadBundleResponse {
        try await deploy.uploadBundle { writer in
          for message in messages { try await writer.write(message) }
        }
      }
      func chunks(_ bytes: Data) -> [Vane_V1_UploadBundleRequest] {
        [
          .with {
            $0.header = .with {
              $0.fileName = "b.tar.gz"
              $0.size = UInt64(bytes.count)
            }
          }
        ]
          + stride(from: 0, to: bytes.count, by: 100_000).map { start in
            .with { $0.chunk = bytes[start ..< min(bytes.count, start + 100_000)] }
          }
      }
      let first = try await send(chunks(data))
      let second = try await send(chunks(data))
      let bundle = try ModelBundle.open(path: PredictorServiceTests.bundles[1])
      #expect(
        first.bundlePath == second.bundlePath && first.manifestSha256 == bundle.manifestSHA256
          && first.size == UInt64(data.count)
      )
      #expect(try ModelBundle.open(path: first.bundlePath).manifestSHA256 == bundle.manifestSHA256)
      // The uploaded path deploys like any other (dry run).
      let dry = try await deploy.deploy(
        .with {
          $0.bundlePath = first.bundlePath
          $0.blessing = try Self.bless(PredictorServiceTests.bundles[1])
          $0.modelID = "btc"
          $0.version = "v2"
          $0.dryRun = true
        }
      )
      #expect(dry.state == .pending)
      let junk = await #expect(throws: RPCError.self) {
        try await send(chunks(Data("not a bundle at all".utf8)))
      }
      #expect(junk?.code == .failedPrecondition, "\(String(describing: junk))")
      let huge = await #expect(throws: RPCError.self) {
        try await send([.with { $0.header = .with { $0.size = 1 << 40 } }])
      }
      #expect(huge?.code == .resourceExhausted)
      let headless = await #expect(throws: RPCError.self) {
        try await send([.with { $0.chunk = Data([1, 2, 3]) }])
      }
      #expect(headless?.code == .invalidArgument && headless?.message.contains("header") == true)
      let short = await #expect(throws: RPCError.self) {
        try await send(Array(chunks(data).dropLast()))
      }
      #expect(short?.code == .invalidArgument && short?.message.contains("ended after") == true)
    }
  }

  @Test(
    "Pause holds the rollout at its traffic; Resume continues; Promote skip_to_full goes to FULL"
  )
  func commands() async throws {
    try await Self.withStack { deploy, predictor, _, _ in
      let path = PredictorServiceTests.bundles[1]
      var plan = Self.plan()
      plan.steps[1].duration = .init(seconds: 600)
      let started = try await deploy.deploy(
        .with {
          $0.bundlePath = path
          $0.blessing = try Self.bless(path)
          $0.modelID = "btc"
          $0.version = "v2"
          $0.plan = plan
        }
      )
      // Wait for the canary.
      var rollout = started
      for _ in 0 ..< 200 {
        rollout = try await deploy.getRollout(.with { $0.rolloutID = started.id })
        if rollout.state == .canary { break }
        try await Task.sleep(for: .milliseconds(50))
      }
      #expect(rollout.state == .canary && rollout.trafficPercent == 50)
      let paused = try await deploy.pause(
        .with {
          $0.rolloutID = started.id
          $0.reason = "looking"
        }
      )
      #expect(paused.state == .paused)
      let again = try await deploy.pause(.with { $0.rolloutID = started.id })
      #expect(again.state == .paused && again.history.count == paused.history.count)
      // The rollout records a step's traffic, then applies it to the predictor: on a loaded
      // machine the canary can be seen before its SetTrafficSplit has landed.
      var split: Set<String> = []
      for _ in 0 ..< 200 {
        split = Set(
          try await predictor.listModels(.with { $0.modelID = "btc" }).versions.map {
            "\($0.ref.version)=\($0.trafficPercent)"
          }
        )
        if split == ["v1=50.0", "v2=50.0"] { break }
        try await Task.sleep(for: .milliseconds(50))
      }
      #expect(split == ["v1=50.0", "v2=50.0"])
      let resumed = try await deploy.resume(.with { $0.rolloutID = started.id })
      #expect(resumed.state == .canary)
      let promoted = try await deploy.promote(
        .with {
          $0.rolloutID = started.id
          $0.skipToFull = true
        }
      )
      #expect(promoted.state == .full || promoted.state == .promoted)
      let (_, final) = try await Self.watch(deploy, started.id)
      #expect(final.state == .promoted)
      let terminal = await #expect(throws: RPCError.self) {
        try await deploy.pause(.with { $0.rolloutID = started.id })
      }
      #expect(terminal?.code == .failedPrecondition)
      let unknown = await #expect(throws: RPCError.self) {
        try await deploy.getRollout(.with { $0.rolloutID = "ro-none" })
      }
      #expect(unknown?.code == .notFound)
    }
  }
}

/// Requests answered and failed under the steady load.
final class Tally: Sendable {
  let value = Mutex<(ok: Int, failed: Int)>((0, 0))
}

/// `vane deploy` and `vane rollouts` against `vane serve predictor` and `vane serve deploy`.
@Suite("vane deploy, vane rollouts", .timeLimit(.minutes(3)))
struct DeployCLITests {
  @Test(
    "vane deploy sends the verdict file beside the bundle, follows the rollout to PROMOTED and exits 0; an unsigned bundle exits 1; a bad plan 2"
  )
  func deploy() async throws {
    let source = try await BlockingPool.shared.run { PredictorServiceTests.bundles[0] }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-deploy-cli-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let path = scratch.appendingPathComponent("bundle.tar.gz").path
    try FileManager.default.copyItem(atPath: source, toPath: path)
    try Data(try DeployServiceTests.bless(path).jsonUTF8Data()).write(
      to: URL(fileURLWithPath: ModelBundle.verdictPath(for: path))
    )
    let predictor = try await ServeProcess(.predictor)
    defer { predictor.stop() }
    let deploy = try await ServeProcess(
      .deploy,
      extraArguments: [
        "--predictor-address", predictor.address, "--trusted-keys",
        DeployServiceTests.keys.directory, "--feature-address", "none",
      ]
    )
    defer { deploy.stop() }
    let plan = scratch.appendingPathComponent("plan.yaml")
    try Data("steps:\n  - kind: full\n    min_requests: 3\nanalysis_interval: 200ms\n".utf8).write(
      to: plan
    )
    let detached = try await VaneBinary.run([
      "deploy", path, "--model", "btc", "--version", "v1", "--plan", plan.path, "--detach",
      "--address", deploy.address,
    ])
    #expect(detached.status == 0, "\(detached.stdout) \(detached.stderr)")
    let id = String(detached.stdout.split(separator: " ").first ?? "")
    #expect(id.hasPrefix("ro-"), "\(detached.stdout)")
    // The FULL step waits for 3 requests: send them once the version serves.
    let vector = scratch.appendingPathComponent("v.json")
    try PredictorServiceTests.vector([0.3, 0.1, 0.5]).jsonUTF8Data().write(to: vector)
    var answered = 0
    for _ in 0 ..< 200 where answered < 5 {
      if try await VaneBinary.run([
        "predict", "--vector", vector.path, "--model", "btc", "--address", predictor.address,
      ]).status == 0 {
        answered += 1
      } else {
        try await Task.sleep(for: .milliseconds(100))
      }
    }
    let run = try await VaneBinary.run(["rollouts", "watch", id, "--address", deploy.address])
    #expect(run.status == 0, "\(run.stdout) \(run.stderr) \(deploy.log)")
    #expect(run.stdout.contains("PROMOTED") && run.stdout.contains("step started"), "\(run.stdout)")
    let listed = try await VaneBinary.run(["rollouts", "list", "--address", deploy.address])
    #expect(
      listed.status == 0 && listed.stdout.contains("btc/v1") && listed.stdout.contains("PROMOTED"),
      "\(listed.stdout)"
    )
    let models = try await VaneBinary.run(["models", "list", "--address", predictor.address])
    #expect(models.stdout.contains("btc/v1  READY  100%"), "\(models.stdout)")
    // No verdict beside this copy: refused.
    let unsigned = scratch.appendingPathComponent("unsigned.tar.gz").path
    try FileManager.default.copyItem(atPath: PredictorServiceTests.bundles[1], toPath: unsigned)
    let refused = try await VaneBinary.run([
      "deploy", unsigned, "--model", "btc", "--version", "v2", "--address", deploy.address,
    ])
    #expect(refused.status == 1 && refused.stderr.contains("not blessed"), "\(refused.stderr)")
    try Data("steps: [\n".utf8).write(to: plan)
    let badPlan = try await VaneBinary.run([
      "deploy", path, "--plan", plan.path, "--address", deploy.address,
    ])
    #expect(badPlan.status == 2 && badPlan.stderr.contains("plan.yaml"), "\(badPlan.stderr)")
  }
}

/// kill -9 of deploy and of the predictor in the middle of a canary.
@Suite("Deploy: kill -9 mid-canary", .timeLimit(.minutes(3)))
struct DeployCrashTests {
  /// Polls `check` every 100 ms for up to `seconds`.
  static func eventually(_ seconds: Double, _ check: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
      if try await check() { return true }
      try await Task.sleep(for: .milliseconds(100))
    }
    return try await check()
  }

  static func split(_ predictor: String) async throws -> Set<String> {
    let listed = try await VaneBinary.run([
      "models", "list", "--model", "btc", "--address", predictor,
    ])
    return Set(
      listed.stdout.split(separator: "\n").compactMap { line -> String? in
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count >= 3, parts[1] == "READY" else { return nil }
        return "\(parts[0])=\(parts[2])"
      }
    )
  }

  /// A blessed copy of the second test bundle and a plan file in a scratch directory, and a
  /// predictor (on a port it can be restarted on) serving the first bundle as btc/v1.
  struct Canary {
    let scratch: URL
    let candidate: String
    let plan: URL
    let predictorPort: Int
    let predictorData: URL
    let bundles: [String]
  }

  static func canary(_ name: String, plan yaml: String) async throws -> (Canary, ServeProcess) {
    let bundles = try await BlockingPool.shared.run { PredictorServiceTests.bundles }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-\(name)-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    let candidate = scratch.appendingPathComponent("v2.tar.gz").path
    try FileManager.default.copyItem(atPath: bundles[1], toPath: candidate)
    try Data(try DeployServiceTests.bless(candidate).jsonUTF8Data()).write(
      to: URL(fileURLWithPath: ModelBundle.verdictPath(for: candidate))
    )
    let plan = scratch.appendingPathComponent("plan.yaml")
    try Data(yaml.utf8).write(to: plan)
    let setup = Canary(
      scratch: scratch,
      candidate: candidate,
      plan: plan,
      predictorPort: try LoopbackPorts.free(),
      predictorData: scratch.appendingPathComponent("predictor"),
      bundles: bundles
    )
    let predictor = try await ServeProcess(
      .predictor,
      dataDirectory: setup.predictorData,
      port: setup.predictorPort
    )
    let load = try await VaneBinary.run([
      "models", "load", bundles[0], "--model", "btc", "--version", "v1", "--address",
      predictor.address,
    ])
    #expect(load.status == 0, "\(load.stderr)")
    return (setup, predictor)
  }

  @Test(
    "A predictor killed mid-canary is noticed through its health stream: both versions and the split are back long before the plan's next analysis"
  )
  func predictorRestartByHealth() async throws {
    // The analysis loop looks again only after ten minutes: only health can bring the versions back in time.
    let (setup, firstPredictor) = try await Self.canary(
      "health-deploy",
      plan:
        "steps:\n  - {kind: canary, traffic_percent: 50, duration: 1h, min_requests: 1}\n  - {kind: full, min_requests: 1}\nanalysis_interval: 10m\n"
    )
    var predictor = firstPredictor
    let (scratch, candidate, plan, predictorPort, predictorData) = (
      setup.scratch, setup.candidate, setup.plan, setup.predictorPort, setup.predictorData
    )
    defer { try? FileManager.default.removeItem(at: scratch) }
    let deploy = try await ServeProcess(
      .deploy,
      extraArguments: [
        "--predictor-address", predictor.address, "--trusted-keys",
        DeployServiceTests.keys.directory, "--feature-address", "none",
      ],
      dataDirectory: scratch.appendingPathComponent("deploy")
    )
    defer { deploy.stop() }
    let started = try await VaneBinary.run([
      "deploy", candidate, "--model", "btc", "--version", "v2", "--plan", plan.path, "--detach",
      "--address", deploy.address,
    ])
    #expect(started.status == 0, "\(started.stderr)")
    let id = String(started.stdout.split(separator: " ").first ?? "")
    #expect(
      try await Self.eventually(30) {
        try await Self.split(predictor.address) == ["btc/v1=50%", "btc/v2=50%"]
      }
    )

    predictor.kill()
    predictor = try await ServeProcess(
      .predictor,
      dataDirectory: predictorData,
      port: predictorPort
    )
    defer { predictor.stop() }
    #expect(
      try await Self.eventually(30) {
        try await Self.split(predictor.address) == ["btc/v1=50%", "btc/v2=50%"]
      },
      "both versions reloaded, split re-applied"
    )
    let got = try await VaneBinary.run(["rollouts", "list", "--address", deploy.address])
    #expect(got.stdout.contains(id) && got.stdout.contains("CANARY"), "\(got.stdout)")
    // The deploy log (at warning level) says what it saw.
    let log = deploy.log
    #expect(
      log.contains("predictor health changed") && log.contains("to=unreachable"),
      "\(log.suffix(2000))"
    )
  }

  @Test(
    "Deploy killed mid-canary resumes it and re-asserts the split with no failed request on the client; the predictor killed mid-canary gets both versions and the split back; then it promotes"
  )
  func killed() async throws {
    let (setup, firstPredictor) = try await Self.canary(
      "crash-deploy",
      plan:
        "steps:\n  - {kind: canary, traffic_percent: 50, duration: 10m, min_requests: 1}\n  - {kind: full, min_requests: 1}\nanalysis_interval: 200ms\n"
    )
    var predictor = firstPredictor
    let (scratch, candidate, plan, predictorPort, predictorData) = (
      setup.scratch, setup.candidate, setup.plan, setup.predictorPort, setup.predictorData
    )
    defer { try? FileManager.default.removeItem(at: scratch) }
    let deployData = scratch.appendingPathComponent("deploy")
    let deployArguments = [
      "--predictor-address", predictor.address, "--trusted-keys", DeployServiceTests.keys.directory,
      "--feature-address", "none",
    ]
    let deploy = try await ServeProcess(
      .deploy,
      extraArguments: deployArguments,
      dataDirectory: deployData
    )
    let started = try await VaneBinary.run([
      "deploy", candidate, "--model", "btc", "--version", "v2", "--plan", plan.path, "--detach",
      "--address", deploy.address,
    ])
    #expect(started.status == 0, "\(started.stderr)")
    let id = String(started.stdout.split(separator: " ").first ?? "")
    #expect(
      try await Self.eventually(30) {
        try await Self.split(predictor.address) == ["btc/v1=50%", "btc/v2=50%"]
      }
    )

    // A client keeps predicting through deploy's death and restart: not one request may fail.
    let tally = Tally()
    let address = predictor.address
    let traffic = Task {
      try await withGRPCClient(transport: try ShimClientTransport(config: .init(target: address))) {
        grpc in
        let client = Vane_V1_PredictorService.Client(wrapping: grpc)
        var i = 0
        while !Task.isCancelled {
          i += 1
          do {
            _ = try await client.predict(
              PredictorServiceTests.request([Double(i % 5) / 2 - 1, 0.1, 0.5])
            )
            tally.value.withLock { $0.ok += 1 }
          } catch {
            if Task.isCancelled { break }
            tally.value.withLock { $0.failed += 1 }
          }
          try? await Task.sleep(for: .milliseconds(5))
        }
      }
    }

    // Requests are flowing before deploy dies.
    #expect(try await Self.eventually(60) { tally.value.withLock { $0.ok } >= 3 })

    // Deploy dies; meanwhile someone moves all traffic back to v1.
    deploy.kill()
    let moved = try await VaneBinary.run([
      "models", "split", "btc", "v1=100", "--address", predictor.address,
    ])
    #expect(moved.status == 0, "\(moved.stderr)")
    let restarted = try await ServeProcess(
      .deploy,
      extraArguments: deployArguments,
      dataDirectory: deployData
    )
    defer { restarted.stop() }
    #expect(
      try await Self.eventually(30) {
        try await Self.split(predictor.address) == ["btc/v1=50%", "btc/v2=50%"]
      },
      "the split is re-asserted"
    )
    let listed = try await VaneBinary.run(["rollouts", "list", "--address", restarted.address])
    #expect(listed.stdout.contains(id) && listed.stdout.contains("CANARY"), "\(listed.stdout)")

    // And after the restart.
    let before = tally.value.withLock { $0.ok }
    #expect(try await Self.eventually(60) { tally.value.withLock { $0.ok } >= before + 3 })
    traffic.cancel()
    _ = await traffic.result
    let counted = tally.value.withLock { $0 }
    #expect(counted.failed == 0, "\(counted)")

    // The predictor dies and comes back empty on the same address.
    predictor.kill()
    predictor = try await ServeProcess(
      .predictor,
      dataDirectory: predictorData,
      port: predictorPort
    )
    defer { predictor.stop() }
    #expect(
      try await Self.eventually(60) {
        try await Self.split(predictor.address) == ["btc/v1=50%", "btc/v2=50%"]
      },
      "both versions reloaded, split re-applied"
    )

    let promoted = try await VaneBinary.run([
      "rollouts", "promote", id, "--skip-to-full", "--address", restarted.address,
    ])
    #expect(promoted.status == 0, "\(promoted.stderr)")
    // FULL needs a request on v2 before it passes.
    let vector = scratch.appendingPathComponent("v.json")
    try PredictorServiceTests.vector([0.3, 0.1, 0.5]).jsonUTF8Data().write(to: vector)
    for _ in 0 ..< 3 {
      _ = try await VaneBinary.run([
        "predict", "--vector", vector.path, "--model", "btc", "--address", predictor.address,
      ])
    }
    let watched = try await VaneBinary.run([
      "rollouts", "watch", id, "--address", restarted.address,
    ])
    #expect(
      watched.status == 0 && watched.stdout.contains("PROMOTED"),
      "\(watched.stdout) \(watched.stderr)"
    )
    #expect(
      try await Self.eventually(10) { try await Self.split(predictor.address) == ["btc/v2=100%"] }
    )
  }
}
