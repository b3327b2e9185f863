import Foundation
import GRDB
import GRPCCore
import ServiceLifecycle
import Testing
import VaneBundle
import VaneCore
import VaneFeatures
import VaneModels
import VaneProto
import VaneRuntime
import VaneServing
import VaneTestSupport
import VaneTraining
import FeatureService

@testable import PredictorService

/// The predictor's trust checks, prediction log and live statistics over the wire, and market
/// inputs and outcomes from a real feature service on the real 1h files.
@Suite("Predictor: trust, prediction log and live outcomes", .timeLimit(.minutes(5)))
struct PredictorLiveTests {
  typealias Client = Vane_V1_PredictorService.Client<AnyClientTransport>

  static func predictor(
    log: PredictionLog?,
    features: UpstreamClient? = nil,
    config: PredictorConfig = PredictorConfig()
  ) -> PredictorServiceImplementation {
    let info = RuntimeInfo(
      kind: .predictor,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: "/tmp",
      tls: false,
      adminAuth: .loopbackOnly
    )
    return PredictorServiceImplementation(
      runtime: info,
      registry: ModelRegistry(log: log),
      config: config,
      features: features
    )
  }

  static func serve<R: Sendable>(
    _ predictor: PredictorServiceImplementation,
    _ body: @Sendable (Client) async throws -> R
  ) async throws -> R {
    _ = try await BlockingPool.shared.run { PredictorServiceTests.bundles }
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { await predictor.registry.runShadows() }
      defer { predictor.registry.finishShadows() }
      return try await withServer(.inProcess, services: [predictor]) { client, _ in
        try await body(Client(wrapping: client))
      }
    }
  }

  static func load(
    _ client: Client,
    _ path: String,
    trust: Vane_V1_TrustPolicy? = nil
  ) async throws -> Vane_V1_ModelVersion {
    try await client.loadModel(
      .with {
        $0.bundlePath = path
        $0.modelID = "btc"
        $0.version = "v1"
        $0.wait = true
        if let trust { $0.trust = trust }
      }
    )
  }

  @Test(
    "Expiry: flagged by default policy FLAG, refused under REFUSE, with the data end in the answer"
  )
  func expiry() async throws {
    try await Self.serve(Self.predictor(log: nil)) { client in
      let path = PredictorServiceTests.bundles[0]
      let loaded = try await Self.load(
        client,
        path,
        trust: .with { $0.maxModelAge = .init(seconds: 3600) }
      )
      #expect(
        loaded.trust.maxModelAge.seconds == 3600 && loaded.hasModelDataEnd
          && loaded.hasModelCreateTime
      )
      let flagged = try await client.predict(PredictorServiceTests.request([0.8, -0.2, 0.52]))
      #expect(flagged.trust.expired && flagged.hasModelDataEnd)
      _ = try await client.loadModel(
        .with {
          $0.bundlePath = path
          $0.modelID = "btc"
          $0.version = "v1"
          $0.wait = true
          $0.replace = true
          $0.trust = .with {
            $0.maxModelAge = .init(seconds: 3600)
            $0.onExpired = .refuse
          }
        }
      )
      let error = await #expect(throws: RPCError.self) {
        try await client.predict(PredictorServiceTests.request([0.8, -0.2, 0.52]))
      }
      #expect(error?.code == .failedPrecondition && error?.message.contains("has expired") == true)
    }
  }

  @Test(
    "Out of distribution: a column 50 deviations out is named; REFUSE refuses; bad policies are INVALID_ARGUMENT"
  )
  func outOfDistribution() async throws {
    try await Self.serve(Self.predictor(log: nil)) { client in
      let path = PredictorServiceTests.bundles[0]
      _ = try await Self.load(client, path)
      let clean = try await client.predict(PredictorServiceTests.request([0.8, -0.2, 0.52]))
      #expect(
        !clean.trust.outOfDistribution && clean.trust.hasDissimilarity && clean.trust.hasMaxAbsZ
      )
      let far = try await client.predict(PredictorServiceTests.request([400, -0.2, 0.52]))
      #expect(far.trust.outOfDistribution && far.trust.outOfBoundColumns == ["signal"])
      _ = try await client.loadModel(
        .with {
          $0.bundlePath = path
          $0.modelID = "btc"
          $0.version = "v1"
          $0.wait = true
          $0.replace = true
          $0.trust = .with { $0.onOutOfDistribution = .refuse }
        }
      )
      let error = await #expect(throws: RPCError.self) {
        try await client.predict(PredictorServiceTests.request([400, -0.2, 0.52]))
      }
      #expect(error?.code == .failedPrecondition && error?.message.contains("signal") == true)
      for (trust, field) in [
        (Vane_V1_TrustPolicy.with { $0.zBound = -1 }, "trust.z_bound"),
        (.with { $0.maxModelAge = .init(seconds: -5) }, "trust.max_model_age"),
        (.with { $0.onExpired = .UNRECOGNIZED(9) }, "trust.on_expired"),
      ] {
        let bad = await #expect(throws: RPCError.self) {
          try await client.loadModel(
            .with {
              $0.bundlePath = path
              $0.modelID = "btc"
              $0.version = "v2"
              $0.trust = trust
            }
          )
        }
        #expect(
          bad?.code == .invalidArgument && bad?.message.contains(field) == true,
          "\(String(describing: bad))"
        )
      }
    }
  }

  @Test(
    "Every answer is logged with an id; GetModelStats counts it pending; without a log GetModelStats is FAILED_PRECONDITION"
  )
  func logged() async throws {
    let path = TestScratch.directory("logged").appendingPathComponent("predictions.sqlite").path
    let log = try PredictionLog(path: path)
    try await Self.serve(Self.predictor(log: log)) { client in
      _ = try await Self.load(client, PredictorServiceTests.bundles[0])
      var ids: [String] = []
      for i in 0 ..< 5 {
        var request = PredictorServiceTests.request([0.1 * Double(i), 0, 0.5])
        request.features.symbol = "BTCUSDT"
        request.features.asOf = .init(
          unixMilliseconds: 1_800_000_000_000 / 3_600_000 * 3_600_000 + Int64(i) * 3_600_000
        )
        if i == 0 { request.requestID = "caller-7" }
        ids.append(try await client.predict(request).predictionID)
      }
      #expect(Set(ids).count == 5 && !ids.contains(""))
      try log.flush()
      // The request's own id is logged; a request without one (and no x-request-id, as this
      // client sends none) is named by its prediction's id.
      let requestIDs = try await DatabaseQueue(path: path).read { db in
        try [String: String](
          uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, request_id FROM predictions").map
          {
            ($0["id"], $0["request_id"])
          }
        )
      }
      #expect(
        requestIDs
          == Dictionary(
            uniqueKeysWithValues: ids.enumerated().map { i, id in
              (id, i == 0 ? "caller-7" : id)
            }
          )
      )
      let stats = try await client.getModelStats(.with { $0.model.modelID = "btc" })
      let version = try #require(stats.versions.first)
      #expect(version.ref.version == "v1" && version.horizons.map(\.horizonBars) == [1, 3])
      #expect(
        version.horizons.allSatisfy {
          $0.predictions == 5 && $0.pending == 5 && $0.matured == 0 && !$0.hasAuc
        }
      )
      let listed = try await client.listModels(.init())
      #expect(listed.versions.first?.counters.logged == 5)
      let unknown = await #expect(throws: RPCError.self) {
        try await client.getModelStats(.with { $0.model.modelID = "eth" })
      }
      #expect(unknown?.code == .notFound)
      let noID = await #expect(throws: RPCError.self) { try await client.getModelStats(.init()) }
      #expect(noID?.code == .invalidArgument && noID?.message.contains("model.model_id") == true)
    }
    try await Self.serve(Self.predictor(log: nil)) { client in
      let error = await #expect(throws: RPCError.self) {
        try await client.getModelStats(.with { $0.model.modelID = "btc" })
      }
      #expect(error?.code == .failedPrecondition)
      let market = await #expect(throws: RPCError.self) {
        try await client.predict(
          .with {
            $0.model.modelID = "btc"
            $0.market.market = .with {
              $0.symbol = "BTCUSDT"
              $0.interval = .interval1H
            }
          }
        )
      }
      #expect(market?.code == .unavailable && market?.message.contains("--feature-address") == true)
    }
  }

  /// A feature service's runtime on loopback with its data in `directory`.
  static func featureRuntime(_ directory: URL) -> RuntimeInfo {
    RuntimeInfo(
      kind: .feature,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: directory.path,
      tls: false,
      adminAuth: .loopbackOnly
    )
  }

  /// Removes the scratch directory ``realFeatureBundle()`` wrote `path` into.
  static func removeBundle(_ path: String) {
    try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
  }

  /// A bundle over the real feature set (synthetic rows of its width, one logistic regression),
  /// in a scratch directory of its own (``removeBundle(_:)``).
  static func realFeatureBundle() throws -> String {
    let set = FeatureSet.v1
    let width = set.columnNames.count
    var random = SeededRandom(seed: 4)
    let n = 1_200, hour: Int64 = 3_600_000
    let features = (0 ..< (n * width)).map { _ in Double.random(in: -1 ... 1, using: &random) }
    let labels = [(0 ..< n).map { features[$0 * width] > 0 ? 1 : 0 }]
    let data = try TrainingData(
      columns: set.columnNames,
      features: features,
      openTimes: (0 ..< n).map { Int64($0) * hour },
      symbols: ["BTCUSDT"],
      horizons: [1],
      labels: labels,
      labelEnds: [(0 ..< n).map { Int64($0 + 2) * hour }],
      classes: ["DOWN", "UP"],
      barMs: hour
    )
    let spec = RunSpec(
      models: [ModelSpec(name: "logreg", kind: .logisticRegression(.init()))],
      plan: try WalkForwardPlan(
        trainBars: 300,
        testBars: 200,
        purgeBars: 2,
        embargoBars: 1,
        validationBars: 30
      )
    )
    let runs = try WalkForwardRun.run(spec, data: data)
    let final = try WalkForwardRun.fitFinal(spec, data: data, runs: runs)
    let directory = TestScratch.directory("live")
    let path = directory.appendingPathComponent("real.tar.gz").path
    _ = try TrainingBundle.write(
      BundleRequest(
        id: "btc-real",
        created: Date(),
        symbols: ["BTCUSDT"],
        interval: "1h",
        taskKind: "binary",
        featureSetID: set.id,
        featureSetSHA256: set.sha256,
        calibration: .none
      ),
      data: data,
      runs: runs,
      final: final,
      to: path
    )
    return path
  }

  @Test(
    "Market inputs: the predictor fetches the online vector; outcomes join from the feature service's candles as their bars close",
    .enabled(if: MarketData.available)
  )
  func marketAndOutcomes() async throws {
    let path = try await BlockingPool.shared.run { try Self.realFeatureBundle() }
    defer { Self.removeBundle(path) }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-live-feature-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let info = PredictorLiveTests.featureRuntime(directory)
    let hour: Int64 = 3_600_000
    // Bars to predict: well inside the ingested history.
    let bars = (0 ..< 6).map { MarketData.end - Int64(200 - $0) * hour }
    try await withServer(.shim, services: [try FeatureServiceImplementation(runtime: info)]) {
      featureClient,
      handle in
      try await FeatureVectorTests.ingest(
        Vane_V1_FeatureService.Client(wrapping: featureClient),
        FeatureSet.v1References,
        from: MarketData.end - 2_000 * hour
      )
      let upstream = try UpstreamClient(
        address: "127.0.0.1:\(handle.port!)",
        name: "feature service"
      )
      let log = try PredictionLog(path: ":memory:")
      let predictor = Self.predictor(
        log: log,
        features: upstream,
        config: PredictorConfig(featureDeadline: .seconds(60), maximumStaleBars: 2)
      )
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await upstream.run() }
        defer { upstream.client.beginGracefulShutdown() }
        try await Self.serve(predictor) { client in
          _ = try await Self.load(client, path)
          for bar in bars {
            let answer = try await client.predict(
              .with {
                $0.model.modelID = "btc"
                $0.market.market = .with {
                  $0.symbol = "BTCUSDT"
                  $0.interval = .interval1H
                }
                $0.market.bar.asOf = .init(unixMilliseconds: bar)
              }
            )
            #expect(
              try answer.asOf.unixMilliseconds(field: "as_of") == bar
                && answer.featureSetHash == FeatureSet.v1.sha256
            )
            #expect(answer.latency.features.seconds > 0 || answer.latency.features.nanos > 0)
          }
          // The latest bar closed long ago: stale.
          let stale = await #expect(throws: RPCError.self) {
            try await client.predict(
              .with {
                $0.model.modelID = "btc"
                $0.market.market = .with {
                  $0.symbol = "BTCUSDT"
                  $0.interval = .interval1H
                }
              }
            )
          }
          #expect(
            stale?.code == .failedPrecondition && stale?.message.contains("max_staleness") == true
          )
          let wrong = await #expect(throws: RPCError.self) {
            try await client.predict(
              .with {
                $0.model.modelID = "btc"
                $0.market.market = .with { $0.symbol = "BTCUSDT" }
              }
            )
          }
          #expect(
            wrong?.code == .invalidArgument
              && wrong?.message.contains("market.market.interval") == true
          )
          try log.flush()
          // Joined against the real candles: UP iff close[t + 1] > close[t].
          let joiner = OutcomeJoiner(
            log: log,
            source: FeatureServiceOutcomes(client: upstream, deadline: .seconds(60)),
            clock: { MarketData.end }
          )
          #expect(try await joiner.joinOnce() == bars.count)
          let closes = Dictionary(
            uniqueKeysWithValues: RealSeries.hourly["BTCUSDT"]!.map { ($0.openTime, $0.close) }
          )
          for answer in try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil) {
            let t = answer.barTime!
            #expect(answer.outcome == (closes[t + hour]! > closes[t]! ? 1 : 0))
          }
          let stats = try await client.getModelStats(.with { $0.model.modelID = "btc" })
          #expect(stats.versions.first?.horizons.first?.matured == Int64(bars.count))
          #expect(stats.versions.first?.horizons.first?.hasLogLoss == true)
          #expect(
            try await client.listModels(.init()).versions.first?.counters.matured
              == UInt64(bars.count)
          )
        }
      }
    }
  }
}

/// A cross-asset reference that stops: what each version's missing-values choice does with the
/// bars after it, over the wire from a real feature service.
@Suite("Predictor: missing values", .timeLimit(.minutes(5)))
struct PredictorMissingValuesTests {
  @Test(
    "BNB stops: an EXCLUDE version refuses the later BTC bars naming the columns, an IMPUTE version of the same bundle answers them, NATIVE is refused for a logistic regression",
    .enabled(if: MarketData.available)
  )
  func referenceStops() async throws {
    let path = try await BlockingPool.shared.run { try PredictorLiveTests.realFeatureBundle() }
    defer { PredictorLiveTests.removeBundle(path) }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-missing-feature-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let info = PredictorLiveTests.featureRuntime(directory)
    let hour: Int64 = 3_600_000
    let start = MarketData.end - 2_000 * hour, stop = MarketData.end - 300 * hour
    let complete = MarketData.end - 400 * hour, late = MarketData.end - 200 * hour
    try await withServer(.shim, services: [try FeatureServiceImplementation(runtime: info)]) {
      featureClient,
      handle in
      let features = Vane_V1_FeatureService.Client(wrapping: featureClient)
      try await FeatureVectorTests.ingest(features, ["BTCUSDT", "ETHUSDT", "SOLUSDT"], from: start)
      try await FeatureVectorTests.ingest(features, ["BNBUSDT"], from: start, until: stop)
      let upstream = try UpstreamClient(
        address: "127.0.0.1:\(handle.port!)",
        name: "feature service"
      )
      let predictor = PredictorLiveTests.predictor(
        log: nil,
        features: upstream,
        config: PredictorConfig(featureDeadline: .seconds(60))
      )
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await upstream.run() }
        defer { upstream.client.beginGracefulShutdown() }
        try await PredictorLiveTests.serve(predictor) { client in
          func load(
            _ version: String,
            _ missing: Vane_V1_MissingValues
          ) async throws
            -> Vane_V1_ModelVersion
          {
            try await client.loadModel(
              .with {
                $0.bundlePath = path
                $0.modelID = "btc"
                $0.version = version
                $0.missing = missing
                $0.wait = true
              }
            )
          }
          let strict = try await load("strict", .unspecified)
          let filled = try await load("filled", .impute)
          #expect(strict.missing == .exclude && filled.missing == .impute)
          let native = await #expect(throws: RPCError.self) {
            try await load("native", .native)
          }
          #expect(native?.code == .invalidArgument && native?.message.contains("missing") == true)

          func predict(_ version: String, at bar: Int64) async throws -> Vane_V1_PredictResponse {
            try await client.predict(
              .with {
                $0.model.modelID = "btc"
                $0.model.version = version
                $0.market.market = FeatureVectorTests.market
                $0.market.bar.asOf = .init(unixMilliseconds: bar)
              }
            )
          }
          // Before BNB stopped both answer, the same.
          let a = try await predict("strict", at: complete)
          let b = try await predict("filled", at: complete)
          #expect(a.predictions.map(\.calibrated) == b.predictions.map(\.calibrated))
          // After it, only the version that keeps such inputs.
          let refused = await #expect(throws: RPCError.self) {
            try await predict("strict", at: late)
          }
          #expect(
            refused?.code == .failedPrecondition && refused?.message.contains("bnb_") == true,
            "\(refused?.message ?? "")"
          )
          let answered = try await predict("filled", at: late)
          #expect(try answered.asOf.unixMilliseconds(field: "as_of") == late)
          #expect(
            answered.predictions.allSatisfy {
              $0.calibrated.probabilities.allSatisfy(\.isFinite)
            }
          )
        }
      }
    }
  }
}

/// `vane serve predictor` killed with SIGKILL while a load runs: what it logged is intact,
/// and a new process (and joiner) carries on from it.
@Suite("Predictor: kill -9 and restart", .timeLimit(.minutes(5)))
struct PredictorCrashTests {
  struct Always: OutcomeSource {
    func outcomes(
      version: PredictionLog.VersionRecord,
      symbol: String,
      horizon: Int,
      from: Int64,
      to: Int64
    ) async throws -> [Int64: Int] {
      Dictionary(
        uniqueKeysWithValues: stride(from: from, through: to, by: Int(version.barMs)).map {
          ($0, 1)
        }
      )
    }
  }

  @Test(
    "Logged answers survive kill -9 mid-load; a restarted predictor lists them and the joiner resumes"
  )
  func killed() async throws {
    let path = try await BlockingPool.shared.run { PredictorServiceTests.bundles[0] }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-crash-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let first = try await ServeProcess(.predictor, dataDirectory: directory)
    let load = try await VaneBinary.run([
      "models", "load", path, "--model", "btc", "--version", "v1", "--address", first.address,
    ])
    #expect(load.status == 0, "\(load.stderr)")
    let hour: Int64 = 3_600_000, start: Int64 = 1_700_000_000_000 / 3_600_000 * 3_600_000
    for i in 0 ..< 5 {
      var vector = PredictorServiceTests.vector([0.2 * Double(i), 0, 0.5])
      vector.symbol = "BTCUSDT"
      vector.asOf = .init(unixMilliseconds: start + Int64(i) * hour)
      let file = directory.appendingPathExtension("v\(i).json")
      try vector.jsonUTF8Data().write(to: file)
      defer { try? FileManager.default.removeItem(at: file) }
      let predict = try await VaneBinary.run([
        "predict", "--vector", file.path, "--model", "btc", "--address", first.address,
      ])
      #expect(predict.status == 0, "\(predict.stderr)")
    }
    // The writer flushes every 100 ms; then a load is under way when the process dies.
    try await Task.sleep(for: .milliseconds(500))
    async let loading = VaneBinary.run([
      "models", "load", path, "--model", "btc", "--version", "v2", "--address", first.address,
      "--timeout", "5",
    ])
    try await Task.sleep(for: .milliseconds(50))
    first.kill()
    _ = try? await loading

    let log = try PredictionLog(path: directory.appendingPathComponent("predictions.sqlite").path)
    let answers = try log.answers(modelID: "btc", version: "v1", bars: nil, since: nil)
    #expect(
      answers.count == 10 && answers.allSatisfy { $0.outcome == nil && $0.symbol == "BTCUSDT" }
    )
    let second = try await ServeProcess(.predictor, dataDirectory: directory)
    defer { second.stop() }
    let stats = try await VaneBinary.run(["models", "stats", "btc/v1", "--address", second.address])
    #expect(
      stats.status == 0 && stats.stdout.contains("h1  answers 5  matured 0  pending 5"),
      "\(stats.stdout) \(stats.stderr)"
    )
    // The joiner carries on from the file.
    let joiner = OutcomeJoiner(log: log, source: Always(), clock: { start + 100 * hour })
    #expect(try await joiner.joinOnce() == 10)
  }
}

/// A window model (an LSTM) over the wire: the request's history is its window.
@Suite("Predictor: LSTM windows", .timeLimit(.minutes(5)))
struct PredictorWindowTests {
  static let bundle: String = {
    var rng = SplitMix64(seed: 21)
    let n = 1_200, hour: Int64 = 3_600_000
    var features: [Double] = [], labels: [[Int]] = [[], []]
    for _ in 0 ..< n {
      let signal = Double.random(in: -2 ... 2, using: &rng)
      features += [signal, Double.random(in: -1 ... 1, using: &rng), 0.5]
      labels[0].append(signal > 0 ? 1 : 0)
      labels[1].append(signal + Double.random(in: -1 ... 1, using: &rng) > 0 ? 1 : 0)
    }
    let data = try! TrainingData(
      columns: ["signal", "noise", "hvol_20"],
      features: features,
      openTimes: (0 ..< n).map { Int64($0) * hour },
      symbols: ["BTCUSDT"],
      horizons: [1, 3],
      labels: labels,
      labelEnds: [(0 ..< n).map { Int64($0 + 2) * hour }, (0 ..< n).map { Int64($0 + 4) * hour }],
      classes: ["DOWN", "UP"],
      barMs: hour
    )
    var training = LSTM.Training()
    training.maxEpochs = 2
    training.batchSize = 64
    let spec = RunSpec(
      models: [
        ModelSpec(
          name: "lstm",
          kind: .lstm(sequenceLength: 4, hiddenSize: 6, layers: 1, dropout: 0, training: training)
        )
      ],
      plan: try! WalkForwardPlan(
        trainBars: 300,
        testBars: 200,
        purgeBars: 4,
        embargoBars: 1,
        validationBars: 30
      )
    )
    let runs = try! WalkForwardRun.run(spec, data: data)
    let final = try! WalkForwardRun.fitFinal(spec, data: data, runs: runs)
    let directory = TestScratch.directory("lstm")
    let path = directory.appendingPathComponent("lstm.tar.gz").path
    _ = try! TrainingBundle.write(
      BundleRequest(
        id: "btc-lstm",
        created: Date(),
        symbols: ["BTCUSDT"],
        interval: "1h",
        taskKind: "binary",
        featureSetID: "test",
        featureSetSHA256: PredictorServiceTests.hash,
        calibration: .none
      ),
      data: data,
      runs: runs,
      final: final,
      to: path
    )
    return path
  }()

  @Test(
    "The history is the window: equal to the served model; too short or with a gap is INVALID_ARGUMENT naming history"
  )
  func window() async throws {
    let path = try await BlockingPool.shared.run { Self.bundle }
    let model = try ServableModel(bundle: try ModelBundle.open(path: path))
    let hour: Int64 = 3_600_000, end: Int64 = 1_800_000_000_000 / hour * hour
    let rows: [[Double]] = [
      [0.1, 0.2, 0.5], [-0.4, 0.1, 0.5], [1.2, -0.3, 0.5], [0.7, 0.0, 0.5],
    ]
    @Sendable func vector(_ i: Int, at time: Int64) -> Vane_V1_FeatureVector {
      var vector = PredictorServiceTests.vector(rows[i])
      vector.asOf = .init(unixMilliseconds: time)
      return vector
    }
    let expected = try model.predict(rows.flatMap { $0 }, count: 1)[0]
    try await PredictorLiveTests.serve(PredictorLiveTests.predictor(log: nil)) { client in
      let loaded = try await PredictorLiveTests.load(client, path)
      #expect(loaded.inputBars == 4 && loaded.modelKinds == [.lstm])
      let answer = try await client.predict(
        .with {
          $0.model.modelID = "btc"
          $0.history = (0 ..< 3).map { vector($0, at: end - Int64(3 - $0) * hour) }
          $0.features = vector(3, at: end)
        }
      )
      #expect(answer.predictions.map(\.calibrated.probabilities) == expected.map(\.calibrated))
      let short = await #expect(throws: RPCError.self) {
        try await client.predict(
          .with {
            $0.model.modelID = "btc"
            $0.history = [vector(2, at: end - hour)]
            $0.features = vector(3, at: end)
          }
        )
      }
      #expect(
        short?.code == .invalidArgument && short?.message.contains("history") == true,
        "\(String(describing: short))"
      )
      let gap = await #expect(throws: RPCError.self) {
        try await client.predict(
          .with {
            $0.model.modelID = "btc"
            $0.history = (0 ..< 3).map { vector($0, at: end - Int64(4 - $0) * hour) }
            $0.features = vector(3, at: end)
          }
        )
      }
      #expect(
        gap?.code == .invalidArgument && gap?.message.contains("consecutive") == true,
        "\(String(describing: gap))"
      )
    }
  }
}
