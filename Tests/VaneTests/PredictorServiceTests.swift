import Foundation
import GRPCCore
import Synchronization
import Testing
import VaneBundle
import VaneCore
import VaneModels
import VaneProto
import VaneRuntime
import VaneServing
import VaneTestSupport
import VaneTraining
import PredictorService

/// The predictor over the wire: bundles the trainer writes loaded, answered, split, swapped and
/// unloaded, and every bad input refused with the right code.
@Suite("Predictor service", .timeLimit(.minutes(5)))
struct PredictorServiceTests {
  typealias Client = Vane_V1_PredictorService.Client<AnyClientTransport>
  static let hash = String(repeating: "ab", count: 32)

  /// Bundles written once for the suite: two trainings (different seeds) of a stacked
  /// logistic regression + XGBoost model on synthetic rows.
  static let bundles: [String] = {
    let directory = TestScratch.directory("predictor")
    return [11, 12].map { seed in
      let path = directory.appendingPathComponent("bundle-\(seed).tar.gz").path
      try! Self.write(seed: UInt64(seed), to: path)
      return path
    }
  }()

  /// A bundle whose model answers the opposite class (trained on flipped labels).
  static let flippedBundle: String = {
    let path = TestScratch.directory("predictor-flipped").appendingPathComponent("b.tar.gz").path
    try! Self.write(seed: 13, to: path, flip: true)
    return path
  }()

  /// A bundle with its models' ONNX exports (for INFERENCE_RUNTIME_ONNX).
  static let onnxBundle: String = {
    let path = TestScratch.directory("predictor-onnx").appendingPathComponent("b.tar.gz").path
    try! Self.write(seed: 11, to: path, exportONNX: true)
    return path
  }()

  static func write(
    seed: UInt64,
    to path: String,
    flip: Bool = false,
    exportONNX: Bool = false
  ) throws {
    var rng = SplitMix64(seed: seed)
    let n = 1_600
    var features: [Double] = [], open: [Int64] = [], labels: [[Int]] = [[], []],
      ends: [[Int64]] = [[], []]
    let hour: Int64 = 3_600_000
    for t in 0 ..< n {
      let signal = Double.random(in: -2 ... 2, using: &rng),
        noise = Double.random(in: -1 ... 1, using: &rng)
      features += [signal, noise, 0.5 + 0.1 * Double.random(in: 0 ..< 1, using: &rng)]
      open.append(Int64(t) * hour)
      for (h, horizon) in [1, 3].enumerated() {
        labels[h].append((signal + Double.random(in: -2 ... 2, using: &rng) > 0) != flip ? 1 : 0)
        ends[h].append(Int64(t + horizon + 1) * hour)
      }
    }
    let data = try TrainingData(
      columns: ["signal", "noise", "hvol_20"],
      features: features,
      openTimes: open,
      symbols: ["BTCUSDT"],
      horizons: [1, 3],
      labels: labels,
      labelEnds: ends,
      classes: ["DOWN", "UP"],
      barMs: hour
    )
    var xgb = XGBoostModel.Parameters()
    xgb.rounds = 20
    xgb.maxDepth = 3
    xgb.earlyStoppingRounds = 5
    xgb.threads = 1
    xgb.seed = seed
    let spec = RunSpec(
      models: [
        ModelSpec(name: "logreg", kind: .logisticRegression(.init())),
        ModelSpec(name: "xgb", kind: .xgboost(xgb)),
      ],
      plan: try WalkForwardPlan(
        trainBars: 300,
        testBars: 200,
        purgeBars: 3,
        embargoBars: 1,
        validationBars: 30
      ),
      stacking: .init(minimumFolds: 2)
    )
    let runs = try WalkForwardRun.run(spec, data: data)
    let final = try WalkForwardRun.fitFinal(spec, data: data, runs: runs)
    let request = BundleRequest(
      id: "btc-s\(seed)",
      created: Date(timeIntervalSince1970: 1_800_000_000),
      symbols: ["BTCUSDT"],
      interval: "1h",
      taskKind: "binary",
      featureSetID: "test",
      featureSetSHA256: Self.hash,
      calibration: .temperature,
      exportONNX: exportONNX
    )
    _ = try TrainingBundle.write(request, data: data, runs: runs, final: final, to: path)
  }

  static func withPredictor<R: Sendable>(
    _ transport: TransportKind = .inProcess,
    _ body: @Sendable (Client, PredictorServiceImplementation) async throws -> R
  ) async throws -> R {
    // The bundles are trained on first use: on the blocking pool, not the cooperative one.
    _ = try await BlockingPool.shared.run { Self.bundles }
    let info = RuntimeInfo(
      kind: .predictor,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: "/tmp",
      tls: false,
      adminAuth: .loopbackOnly
    )
    let predictor = PredictorServiceImplementation(runtime: info)
    return try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { await predictor.registry.runShadows() }
      defer { predictor.registry.finishShadows() }
      return try await withServer(transport, services: [predictor]) { client, _ in
        try await body(Client(wrapping: client), predictor)
      }
    }
  }

  static func load(
    _ client: Client,
    bundle: Int,
    version: String,
    replace: Bool = false
  ) async throws -> Vane_V1_ModelVersion {
    try await client.loadModel(
      .with {
        $0.bundlePath = Self.bundles[bundle]
        $0.modelID = "btc"
        $0.version = version
        $0.wait = true
        $0.replace = replace
      }
    )
  }

  static func vector(_ values: [Double], hash: String = Self.hash) -> Vane_V1_FeatureVector {
    .with {
      $0.featureSetID = "test"
      $0.featureSetHash = hash
      $0.values = values
      $0.asOf = .init(unixMilliseconds: 1_800_000_000_000)
    }
  }

  static func request(
    _ values: [Double],
    version: String = "",
    key: String = ""
  ) -> Vane_V1_PredictRequest {
    .with {
      $0.model = .with {
        $0.modelID = "btc"
        $0.version = version
      }
      $0.features = Self.vector(values)
      $0.routingKey = key
    }
  }

  @Test(
    "Load, predict, list: the answer is the bundle's served model, calibrated, over both transports",
    arguments: TransportKind.allCases
  )
  func loadAndPredict(transport: TransportKind) async throws {
    let path = try await BlockingPool.shared.run { Self.bundles[0] }
    let expected = try ServableModel(bundle: try ModelBundle.open(path: path)).predict(
      [0.8, -0.2, 0.52],
      count: 1
    )[0]
    try await Self.withPredictor(transport) { client, _ in
      let loaded = try await Self.load(client, bundle: 0, version: "v1")
      #expect(loaded.status == .ready)
      #expect(loaded.trafficPercent == 100)
      #expect(
        loaded.horizons == [1, 3] && loaded.classes == ["DOWN", "UP"]
          && loaded.featureSetHash == Self.hash
      )
      #expect(Set(loaded.modelKinds) == [.logisticRegression, .xgboost])
      let answer = try await client.predict(Self.request([0.8, -0.2, 0.52]))
      #expect(answer.model.version == "v1" && !answer.pinned)
      #expect(answer.predictions.map(\.horizonBars) == [1, 3])
      for (got, want) in zip(answer.predictions, expected) {
        #expect(got.calibrated.probabilities == want.calibrated)
        #expect(got.raw.probabilities == want.raw)
        #expect(got.predictedClass == (want.calibrated[1] > want.calibrated[0] ? "UP" : "DOWN"))
      }
      // The outcome of horizon 3 is known when bar as_of + 3 closes.
      #expect(
        try answer.predictions[1].resolveTime.unixMilliseconds(field: "") == 1_800_000_000_000 + 4
          * 3_600_000
      )
      let one = try await client.predict(
        .with {
          $0.features = Self.vector([0.8, -0.2, 0.52])
          $0.horizonBars = 3
        }
      )
      #expect(one.predictions.map(\.horizonBars) == [3])
      let listed = try await client.listModels(.init())
      #expect(listed.versions.map(\.ref.version) == ["v1"])
      #expect(listed.versions[0].counters.requests == 2)
      #expect(listed.trafficSplits.first?.weights == ["v1": 100])
    }
  }

  @Test("Bad input is refused with the code and the field")
  func badInput() async throws {
    try await Self.withPredictor { client, _ in
      func code(_ body: () async throws -> Void) async -> RPCError.Code? {
        do { try await body() } catch let error as RPCError { return error.code } catch {
          return nil
        }
        return nil
      }
      #expect(
        await code {
          _ = try await client.predict(.with { $0.features = Self.vector([0, 0, 0.5]) })
        } == .unavailable
      )
      #expect(await code { _ = try await client.predict(Self.request([0, 0, 0.5])) } == .notFound)
      #expect(
        await code { _ = try await client.loadModel(.with { $0.bundlePath = "relative/b.tar.gz" }) }
          == .invalidArgument
      )
      #expect(
        await code {
          _ = try await client.loadModel(.with { $0.bundlePath = "/nonexistent/b.tar.gz" })
        } == .notFound
      )
      #expect(
        await code {
          _ = try await client.loadModel(
            .with {
              $0.bundlePath = Self.bundles[0]
              $0.runtime = .onnx
            }
          )
        } == .failedPrecondition
      )
      _ = try await Self.load(client, bundle: 0, version: "v1")
      #expect(
        await code { _ = try await Self.load(client, bundle: 1, version: "v1") } == .alreadyExists
      )
      #expect(
        await code {
          _ = try await client.predict(
            .with { $0.features = Self.vector([0, 0, 0.5], hash: "other") }
          )
        } == .invalidArgument
      )
      #expect(
        await code { _ = try await client.predict(Self.request([0, 0])) } == .invalidArgument
      )
      #expect(
        await code {
          _ = try await client.predict(
            .with {
              $0.model.modelID = "eth"
              $0.features = Self.vector([0, 0, 0.5])
            }
          )
        } == .notFound
      )
      #expect(
        await code { _ = try await client.predict(Self.request([0, 0, 0.5], version: "v9")) }
          == .notFound
      )
      #expect(
        await code { _ = try await client.predict(.with { $0.model.modelID = "btc" }) }
          == .invalidArgument
      )
      #expect(
        await code { _ = try await client.predict(.with { $0.market = .init() }) }
          == .invalidArgument
      )
      #expect(
        await code {
          _ = try await client.predict(
            .with {
              $0.market.market = .with {
                $0.symbol = "BTCUSDT"
                $0.interval = .interval1H
              }
            }
          )
        } == .unavailable
      )
      #expect(
        await code {
          _ = try await client.setTrafficSplit(
            .with {
              $0.modelID = "btc"
              $0.weights = ["v1": 60]
            }
          )
        } == .invalidArgument
      )
      #expect(
        await code {
          _ = try await client.setTrafficSplit(
            .with {
              $0.modelID = "btc"
              $0.weights = ["v1": 100]
              $0.expectedEtag = "12345"
            }
          )
        } == .aborted
      )
      #expect(
        await code {
          _ = try await client.unloadModel(
            .with {
              $0.model.modelID = "btc"
              $0.model.version = "v1"
            }
          )
        } == .failedPrecondition
      )
      let tooMany = Vane_V1_PredictBatchRequest.with {
        $0.requests = Array(repeating: Self.request([0, 0, 0.5]), count: 4097)
      }
      #expect(await code { _ = try await client.predictBatch(tooMany) } == .invalidArgument)
      // A batch: each item stands alone.
      let batch = try await client.predictBatch(
        .with {
          $0.requests = [
            Self.request([0.1, 0, 0.5]), Self.request([0, 0]), Self.request([0.3, 0, 0.5]),
          ]
        }
      )
      #expect(batch.results.map { $0.prediction.predictions.count } == [2, 0, 2])
      #expect(batch.results[1].error.code == Int32(Status.Code.invalidArgument.rawValue))
      #expect(batch.results[1].error.message.contains("requests[1].features.values"))
      // Nothing that failed disturbed what serves.
      #expect(try await client.predict(Self.request([0, 0, 0.5])).model.version == "v1")
    }
  }

  @Test("Split, sticky keys, pinned versions, shadows, forced unload")
  func routing() async throws {
    try await Self.withPredictor { client, predictor in
      _ = try await Self.load(client, bundle: 0, version: "v1")
      let second = try await Self.load(client, bundle: 1, version: "v2")
      #expect(second.trafficPercent == 0)
      let split = try await client.setTrafficSplit(
        .with {
          $0.modelID = "btc"
          $0.weights = ["v1": 50, "v2": 50]
        }
      )
      #expect(split.weights == ["v1": 50, "v2": 50])
      var versions: [String: String] = [:]
      for key in (0 ..< 40).map({ "k\($0)" }) {
        versions[key] = try await client.predict(Self.request([0, 0, 0.5], key: key)).model.version
      }
      for key in versions.keys {
        #expect(
          try await client.predict(Self.request([0, 0, 0.5], key: key)).model.version
            == versions[key]
        )
      }
      #expect(Set(versions.values) == ["v1", "v2"])
      let pinned = try await client.predict(Self.request([0, 0, 0.5], version: "v2"))
      #expect(pinned.pinned && pinned.model.version == "v2")
      // Without shadows, and for a vector input, those messages are not sent at all.
      #expect(!pinned.hasShadow && pinned.latency.hasTotal && !pinned.latency.hasFeatures)
      // v2 becomes a shadow of everything v1 answers.
      _ = try await client.setTrafficSplit(
        .with {
          $0.modelID = "btc"
          $0.weights = ["v1": 100]
          $0.shadowVersions = ["v2"]
          $0.expectedEtag = split.etag
        }
      )
      let shadowed = try await client.predict(Self.request([0, 0, 0.5]))
      #expect(shadowed.model.version == "v1" && shadowed.shadow.versions == ["v2"])
      #expect(shadowed.hasShadow)
      let scored = await Self.eventually {
        predictor.registry.list().first { $0.info.version == "v2" }?.counters.shadowRequests == 1
      }
      #expect(scored)
      let unloaded = try await client.unloadModel(
        .with {
          $0.model.modelID = "btc"
          $0.model.version = "v2"
          $0.force = true
          $0.wait = true
        }
      )
      #expect(unloaded.status == .unloading)
      let listed = try await client.listModels(.init())
      #expect(listed.versions.map(\.ref.version) == ["v1"])
      #expect(listed.trafficSplits.first?.shadowVersions == [])
    }
  }

  static func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0 ..< 2_000 {
      if condition() { return true }
      try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
  }

  @Test(
    "Hot swap under load: requests keep succeeding while versions are replaced, re-split and unloaded"
  )
  func swapUnderLoad() async throws {
    try await Self.withPredictor(.shim) { client, _ in
      _ = try await Self.load(client, bundle: 0, version: "v1")
      let load = LoadCounters()
      try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0 ..< 16 {
          group.addTask {
            var i = 0
            while !load.done.load(ordering: .relaxed) {
              do {
                _ = try await client.predict(
                  Self.request([Double(i % 7) / 7, 0, 0.5], key: "w\(worker)-\(i)")
                )
                load.answered.add(1, ordering: .relaxed)
              } catch {
                load.failures.add(1, ordering: .relaxed)
              }
              i += 1
            }
          }
        }
        // 10 rounds: replace v1 in place, bring in v2, move all traffic to it, unload v1, and back.
        for round in 0 ..< 5 {
          _ = try await Self.load(client, bundle: round % 2, version: "v1", replace: true)
          _ = try await Self.load(client, bundle: (round + 1) % 2, version: "v2")
          _ = try await client.setTrafficSplit(
            .with {
              $0.modelID = "btc"
              $0.weights = ["v1": 20, "v2": 80]
            }
          )
          _ = try await client.setTrafficSplit(
            .with {
              $0.modelID = "btc"
              $0.weights = ["v2": 100]
            }
          )
          _ = try await client.unloadModel(
            .with {
              $0.model.modelID = "btc"
              $0.model.version = "v1"
              $0.wait = true
            }
          )
          _ = try await Self.load(client, bundle: round % 2, version: "v1")
          _ = try await client.setTrafficSplit(
            .with {
              $0.modelID = "btc"
              $0.weights = ["v1": 100]
            }
          )
          _ = try await client.unloadModel(
            .with {
              $0.model.modelID = "btc"
              $0.model.version = "v2"
              $0.wait = true
            }
          )
        }
        load.done.store(true, ordering: .relaxed)
        try await group.waitForAll()
      }
      #expect(load.failures.load(ordering: .relaxed) == 0)
      #expect(load.answered.load(ordering: .relaxed) > 100)
    }
  }
}

/// `vane models` and `vane predict` against a `vane serve predictor` process.
@Suite("vane models, vane predict")
struct PredictorCLITests {
  @Test("load, list, predict, split, unload; a bad vector file exits 2, a refused call 1")
  func cli() async throws {
    let path = try await BlockingPool.shared.run { PredictorServiceTests.bundles[0] }
    let server = try await ServeProcess(.predictor)
    defer { server.stop() }
    let load = try await VaneBinary.run([
      "models", "load", path, "--model", "btc", "--version", "v1", "--address", server.address,
    ])
    #expect(load.status == 0, "\(load.stderr)")
    #expect(load.stdout.contains("btc/v1  READY  100%"), "\(load.stdout)")
    let list = try await VaneBinary.run(["models", "list", "--address", server.address])
    #expect(list.stdout.contains("btc/v1"))
    let vector = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-vector-\(UUID().uuidString).json"
    )
    defer { try? FileManager.default.removeItem(at: vector) }
    try PredictorServiceTests.vector([0.8, -0.2, 0.52]).jsonString().write(
      to: vector,
      atomically: true,
      encoding: .utf8
    )
    let predict = try await VaneBinary.run([
      "predict", "--vector", vector.path, "--address", server.address,
    ])
    #expect(predict.status == 0, "\(predict.stderr)")
    #expect(
      predict.stdout.contains("btc/v1") && predict.stdout.contains("h1  ")
        && predict.stdout.contains("h3  "),
      "\(predict.stdout)"
    )
    let json = try await VaneBinary.run([
      "predict", "--vector", vector.path, "--horizon", "3", "--json", "--address", server.address,
    ])
    let answer = try Vane_V1_PredictResponse(
      jsonString: json.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    )
    #expect(answer.predictions.map(\.horizonBars) == [3])
    let split = try await VaneBinary.run([
      "models", "split", "btc", "v1=100", "--address", server.address,
    ])
    #expect(split.status == 0 && split.stdout.contains("v1=100"), "\(split.stderr)")
    let badSplit = try await VaneBinary.run([
      "models", "split", "btc", "v1=60", "--address", server.address,
    ])
    #expect(badSplit.status == 1 && badSplit.stderr.contains("weights"), "\(badSplit.stderr)")
    try "{not json".write(to: vector, atomically: true, encoding: .utf8)
    let badFile = try await VaneBinary.run([
      "predict", "--vector", vector.path, "--address", server.address,
    ])
    #expect(badFile.status == 2 && badFile.stderr.contains(vector.path), "\(badFile.stderr)")
    // The answers above are logged (the writer flushes every 100 ms): stats list the version.
    try await Task.sleep(for: .milliseconds(300))
    let stats = try await VaneBinary.run(["models", "stats", "btc", "--address", server.address])
    #expect(
      stats.status == 0 && stats.stdout.contains("btc/v1") && stats.stdout.contains("h1  answers"),
      "\(stats.stdout) \(stats.stderr)"
    )
    let neither = try await VaneBinary.run(["predict", "--address", server.address])
    #expect(neither.status == 64, "\(neither.stderr)")
    let market = try await VaneBinary.run([
      "predict", "--symbol", "BTCUSDT", "--address", server.address, "--timeout", "5",
    ])
    #expect(market.status == 1, "\(market.stderr)")
    let unload = try await VaneBinary.run([
      "models", "unload", "btc/v1", "--force", "--address", server.address,
    ])
    #expect(unload.status == 0, "\(unload.stderr)")
    let refused = try await VaneBinary.run([
      "models", "unload", "btc/v1", "--address", server.address,
    ])
    #expect(refused.status == 1 && refused.stderr.contains("notFound"), "\(refused.stderr)")
  }
}

/// What the load workers count.
private final class LoadCounters: Sendable {
  let failures = Atomic<Int>(0)
  let answered = Atomic<Int>(0)
  let done = Atomic<Bool>(false)

  @Test(
    "INFERENCE_RUNTIME_ONNX: the bundle's ONNX exports on Vane's engine answer as its native models do, stack and calibration included (1e-5)"
  )
  func onnxRuntime() async throws {
    _ = try await BlockingPool.shared.run { PredictorServiceTests.onnxBundle }
    try await PredictorServiceTests.withPredictor { client, _ in
      _ = try await client.loadModel(
        .with {
          $0.bundlePath = PredictorServiceTests.onnxBundle
          $0.modelID = "btc"
          $0.version = "native"
          $0.wait = true
          // One of the rows below misses a value: trees route it, the others read the center.
          $0.missing = .native
        }
      )
      let onnx = try await client.loadModel(
        .with {
          $0.bundlePath = PredictorServiceTests.onnxBundle
          $0.modelID = "btc"
          $0.version = "onnx"
          $0.wait = true
          $0.runtime = .onnx
          $0.missing = .native
        }
      )
      #expect(onnx.status == .ready && onnx.runtime == .onnx, "\(onnx.statusMessage)")
      for values in [
        [0.8, -0.2, 0.52], [-1.5, 0.3, 0.61], [.nan, 0.1, 0.5], [3.9, -0.99, 0.45],
      ] {
        let native = try await client.predict(
          PredictorServiceTests.request(values, version: "native")
        )
        let exported = try await client.predict(
          PredictorServiceTests.request(values, version: "onnx")
        )
        #expect(native.predictions.map(\.horizonBars) == exported.predictions.map(\.horizonBars))
        for (a, b) in zip(native.predictions, exported.predictions) {
          let difference =
            zip(
              a.raw.probabilities + a.calibrated.probabilities,
              b.raw.probabilities + b.calibrated.probabilities
            ).map { abs($0 - $1) }.max() ?? 1
          #expect(
            difference <= 1e-5,
            "\(values) h\(a.horizonBars): native \(a.calibrated.probabilities) vs ONNX \(b.calibrated.probabilities)"
          )
        }
      }
    }
  }
}
