import Foundation
import GRPCCore
import Logging
import SwiftProtobuf
import Synchronization
import Testing
import VaneBundle
import VaneCore
import VaneFeatures
import VaneMath
import VaneMetrics
import VaneModels
import VaneTraining
import VaneProto
import VaneRuntime
import VaneServing
import VaneTestSupport
import FeatureService
import GatekeeperService

@testable import TrainerService

/// The board's ordering: transitions from several threads at once.
@Suite("Trainer jobs: events stay in order under races")
struct JobBoardOrderTests {
  @Test(
    "Progress, a cancel and a finish racing on three threads: a watcher sees strictly increasing sequences ending with the final event, and the store keeps the final state and sequence",
    arguments: 0 ..< 12
  )
  func race(round: Int) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-board-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try JobStore(path: directory.appendingPathComponent("jobs.sqlite").path)
    let board = try JobBoard(store: store, now: 0)
    _ = try board.enqueue(JobBookTests.job("r\(round)"))
    let (job, _) = try #require(try board.startNext())
    let events = try board.watch(job.id, after: 0)
    try await BlockingPool.shared.run {
      DispatchQueue.concurrentPerform(iterations: 3) { lane in
        switch lane {
        case 0:
          for fold in 0 ..< 200 {
            board.progress(job.id, .with { $0.fold = UInt32(fold) }, save: fold % 2 == 0)
          }
        case 1:
          _ = try? board.cancel(job.id, reason: "race")
        default:
          try? board.finish(job.id, state: .succeeded) { _ in }
        }
      }
    }
    var sequences: [UInt64] = []
    var final: Vane_V1_Job?
    for await event in events {
      sequences.append(event.sequence)
      if case .finalJob(let job)? = event.detail { final = job }
    }
    #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 }, "\(sequences)")
    let ended = try #require(final)
    let stored = try #require(try store.jobs().first { $0.job.id == job.id })
    #expect(stored.sequence == sequences.last && stored.job.state == ended.state)
    #expect(try board.job(job.id).state == ended.state)
  }
}

/// The job state machine, without I/O.
@Suite("Trainer jobs: the state machine")
struct JobBookTests {
  static func job(_ id: String) -> Vane_V1_Job {
    .with {
      $0.id = id
      $0.createTime = .init(unixMilliseconds: 1_000)
    }
  }

  @Test(
    "QUEUED → RUNNING → SUCCEEDED, with strictly increasing sequences and a final event carrying the job"
  )
  func lifecycle() throws {
    var book = JobBook()
    let queued = book.enqueue(Self.job("a"), now: 1)
    #expect(queued.sequence == 1 && queued.state == .queued)
    #expect(book.next() == "a")
    #expect(book.next() == nil)
    let started = try book.start("a", now: 2)
    #expect(started.state == .running && started.progress.stage == .loadingData)
    let maybe = book.progress(
      "a",
      .with {
        $0.stage = .training
        $0.fold = 3
      },
      now: 3
    )
    let progress = try #require(maybe)
    #expect(progress.sequence == 3 && progress.progress.fold == 3)
    let final = book.finish("a", state: .succeeded, now: 4) { $0.bundle.bundleID = "b" }
    #expect(final.sequence == 4)
    guard case .finalJob(let job)? = final.detail else {
      Issue.record("no final job")
      return
    }
    #expect(job.state == .succeeded && job.bundle.bundleID == "b" && job.progress.fraction == 1)
    // A finished job takes no progress and cannot start again.
    #expect(book.progress("a", .init(), now: 5) == nil)
    #expect(throws: VaneError.self) { try book.start("a", now: 6) }
  }

  @Test(
    "CancelJob: QUEUED cancels at once, RUNNING is marked, CANCELLED is unchanged, finished is refused"
  )
  func cancel() throws {
    var book = JobBook()
    _ = book.enqueue(Self.job("q"), now: 1)
    _ = book.enqueue(Self.job("r"), now: 1)
    let queued = try book.requestCancel("q", reason: "no", now: 2)
    #expect(queued.job.state == .cancelled && !queued.running && queued.events.count == 1)
    #expect(book.next() == "r")
    _ = try book.start("r", now: 3)
    let running = try book.requestCancel("r", reason: "stop", now: 4)
    #expect(
      running.running && running.job.state == .running && running.job.cancelRequested
        && running.job.cancelReason == "stop"
    )
    let again = try book.requestCancel("q", reason: "", now: 5)
    #expect(again.job.state == .cancelled && again.events.isEmpty)
    _ = book.finish("r", state: .failed, now: 6) { _ in }
    let error = #expect(throws: VaneError.self) { try book.requestCancel("r", reason: "", now: 7) }
    #expect(error?.code == .failedPrecondition)
    #expect(
      (#expect(throws: VaneError.self) { try book.requestCancel("zz", reason: "", now: 7) })?.code
        == .notFound
    )
  }

  @Test(
    "A job stored RUNNING loads as INTERRUPTED; ResumeJob queues it again; only INTERRUPTED resumes"
  )
  func interruptAndResume() throws {
    var book = JobBook()
    var stored = Self.job("x")
    stored.state = .running
    stored.progress.stage = .training
    let loaded = book.load(stored, sequence: 41, now: 9)
    let event = try #require(loaded)
    #expect(event.sequence == 42 && event.state == .interrupted)
    #expect(book.jobs["x"]?.error.stage == .training)
    _ = try book.resume("x", now: 10)
    #expect(book.jobs["x"]?.state == .queued && book.jobs["x"]?.hasError == false)
    #expect(book.next() == "x")
    #expect(
      (#expect(throws: VaneError.self) { try book.resume("x", now: 11) })?.code
        == .failedPrecondition
    )
    var queued = Self.job("y")
    queued.state = .queued
    #expect(book.load(queued, sequence: 1, now: 12) == nil)
    #expect(book.next() == "y")
  }

  @Test(
    "WatchJob's opening: a snapshot, a replay after a sequence, or only the final event; the log keeps the last 1000"
  )
  func opening() throws {
    var book = JobBook()
    _ = book.enqueue(Self.job("w"), now: 1)
    _ = book.next()
    _ = try book.start("w", now: 2)
    for fold in 1 ... 1_200 { _ = book.progress("w", .with { $0.fold = UInt32(fold) }, now: 3) }
    let snapshot = try book.opening("w", after: 0, now: 4)
    #expect(snapshot.count == 1 && snapshot[0].sequence == 1_202 && snapshot[0].detail == nil)
    let replay = try book.opening("w", after: 1_190, now: 4)
    #expect(replay.map(\.sequence) == Array(1_191 ... 1_202))
    #expect(book.events["w"]?.count == JobBook.retainedEvents)
    _ = book.finish("w", state: .cancelled, now: 5) { _ in }
    let done = try book.opening("w", after: 5, now: 6)
    #expect(done.count == 1)
    if case .finalJob? = done[0].detail {} else { Issue.record("not a final event") }
  }
}

@Suite("Trainer: a BuildDataset stream read defensively")
struct DatasetAssemblerTests {
  static let set = Vane_V1_FeatureSet.with {
    $0.id = "t"
    $0.columns = [
      .with {
        $0.name = "a"
        $0.scaled = true
      },
      .with {
        $0.name = "b"
        $0.scaled = false
      },
    ]
  }
  static let header = Vane_V1_DatasetChunk.with {
    $0.header = .with {
      $0.columns = ["a", "b"]
      $0.columnCount = 2
      $0.symbols = ["BTCUSDT"]
      $0.interval = .interval1H
      $0.labels = .with {
        $0.kind = .binaryDirection
        $0.horizons = [.with { $0.bars = 1 }]
      }
      $0.classes = ["DOWN", "UP"]
    }
  }
  static func rows(
    first: Int64 = 0,
    count: Int = 2,
    label: Int32 = 1,
    symbol: UInt32 = 0
  ) -> Vane_V1_DatasetChunk {
    .with {
      $0.rows = .with {
        $0.firstRowIndex = first
        $0.rowCount = UInt32(count)
        $0.columnCount = 2
        $0.openTimeUnixMs = (0 ..< count).map { (first + Int64($0)) * 3_600_000 }
        $0.symbolIndex = Array(repeating: symbol, count: count)
        $0.features = Array(repeating: 0.5, count: 2 * count)
        $0.labels = [
          .with {
            $0.horizonBars = 1
            $0.label = Array(repeating: label, count: count)
            $0.labelEndUnixMs = (0 ..< count).map { (first + Int64($0) + 2) * 3_600_000 }
          }
        ]
      }
    }
  }
  static let unknownInterval: Vane_V1_DatasetChunk = {
    var chunk = header
    chunk.header.interval = .UNRECOGNIZED(99)
    return chunk
  }()

  static func summary(_ rows: Int64) -> Vane_V1_DatasetChunk {
    .with { $0.summary = .with { $0.rowsEmitted = rows } }
  }

  @Test("A whole stream becomes training rows with the feature set's scaled flags")
  func whole() throws {
    var assembler = DatasetAssembler(featureSet: Self.set)
    for chunk in [Self.header, Self.rows(), Self.rows(first: 2), Self.summary(4)] {
      try assembler.add(chunk)
    }
    let loaded = try assembler.finish()
    #expect(
      loaded.data.rowCount == 4 && loaded.data.scaled == [true, false]
        && loaded.data.labels == [[1, 1, 1, 1]]
    )
  }

  @Test(
    "Broken streams are errors naming what is wrong",
    arguments: [
      ([rows()], "rows before the header"),
      ([header, header], "a second header"),
      ([header, rows(first: 5)], "out of order"),
      ([header, rows(label: 7)], "not a class index"),
      ([header, rows(symbol: 3)], "symbol index"),
      ([header, rows(), summary(9)], "counts 9 rows"),
      ([header, rows()], "ended before its summary"),
      ([.init()], "an empty chunk"),
      // An interval the trainer does not know is an error, never a day's bars.
      ([unknownInterval, rows(), rows(first: 2), summary(4)], "dataset header interval"),
    ] as [([Vane_V1_DatasetChunk], String)]
  )
  func broken(chunks: [Vane_V1_DatasetChunk], reason: String) throws {
    var assembler = DatasetAssembler(featureSet: Self.set)
    let error = #expect(throws: VaneError.self) {
      for chunk in chunks { try assembler.add(chunk) }
      _ = try assembler.finish()
    }
    #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
  }

  @Test("A header whose columns are not the feature set's is refused")
  func columns() throws {
    var other = Self.header
    other.header.columns = ["a", "c"]
    var assembler = DatasetAssembler(featureSet: Self.set)
    #expect(throws: VaneError.self) { try assembler.add(other) }
  }
}

@Suite("Trainer spec checks")
struct TrainingSpecTests {
  static var valid: Vane_V1_TrainingSpec {
    .with {
      $0.symbols = ["BTCUSDT"]
      $0.interval = .interval1H
      $0.labels = .with {
        $0.kind = .binaryDirection
        $0.horizons = [.with { $0.bars = 5 }, .with { $0.bars = 12 }]
      }
      $0.models = [
        .with {
          $0.name = "xgb"
          $0.kind = .xgboost
        },
        .with {
          $0.name = "lstm"
          $0.kind = .lstm
        },
      ]
      $0.walkForward = .with {
        $0.trainBars = 1000
        $0.testBars = 100
      }
      $0.stacking.enabled = true
    }
  }

  @Test("Defaults are resolved and written into the spec")
  func defaults() throws {
    let resolved = try Self.valid.resolved(defaultThreads: 2)
    #expect(
      resolved.spec.walkForward.purgeBars == 12 && resolved.spec.walkForward.retrainEveryBars == 100
    )
    #expect(
      resolved.spec.models[0].xgboost.numBoostRounds == 500
        && resolved.spec.models[0].xgboost.treeMethod == "hist"
    )
    #expect(
      resolved.spec.models[1].lstm.sequenceLength == 32
        && resolved.spec.models[1].lstm.training.batchSize == 256
    )
    #expect(resolved.spec.models[1].lstm.training.precision == .float32)
    #expect(
      resolved.spec.stacking.minOofFolds == 2
        && resolved.spec.stacking.baseModels == ["xgb", "lstm"]
    )
    #expect(
      resolved.spec.calibration == .auto && resolved.spec.scaler == .standard
        && resolved.spec.device == .cpu
    )
    #expect(resolved.horizons == [5, 12] && resolved.threads == 2 && resolved.interval == "1h")
    #expect(resolved.spec.missing == .exclude && resolved.run.missingValues == .exclude)
    // Resolving again changes nothing: the resolved spec is a fixed point.
    #expect(try resolved.spec.resolved(defaultThreads: 2).spec == resolved.spec)
  }

  @Test(
    "Bad specs name the field",
    arguments: [
      ({ @Sendable (s: inout Vane_V1_TrainingSpec) in s.symbols = [] }, "spec.symbols"),
      ({ @Sendable (s: inout Vane_V1_TrainingSpec) in s.symbols = ["btc"] }, "spec.symbols[0]"),
      ({ @Sendable (s: inout Vane_V1_TrainingSpec) in s.interval = .unspecified }, "spec.interval"),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.labels.horizons = [] },
        "spec.labels.horizons"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.models[1].name = "xgb" },
        "spec.models[1].name"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in
          s.models[0].xgboost = .with { $0.maxDepth = 0 }
        }, "spec.models[0].xgboost.max_depth"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.models[0].mlp = .init() },
        "spec.models[0].params"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.models[0].hyperparameters = ["eta": "0.1"]
        }, "spec.models[0].hyperparameters"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.labels.kind = .threeClass },
        "spec.models[1].kind"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.walkForward.purgeBars = 3 },
        "spec.walk_forward.purge_bars"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.walkForward.testBars = 0 },
        "walk_forward.test_bars"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.stacking.baseModels = ["nope"] },
        "spec.stacking.base_models[0]"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in s.calibration = .vector }, "spec.calibration"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in
          s.models[1].lstm = .with { $0.training.optimizer = .sgd }
        }, "spec.models[1].lstm.training.optimizer"
      ),
      (
        { @Sendable (s: inout Vane_V1_TrainingSpec) in
          s.missing = .native
          s.models.removeFirst()  // the XGBoost model
          s.stacking.enabled = false
        }, "spec.missing"
      ),
    ] as [(@Sendable (inout Vane_V1_TrainingSpec) -> Void, String)]
  )
  func badSpecs(change: @Sendable (inout Vane_V1_TrainingSpec) -> Void, field: String) throws {
    var spec = Self.valid
    change(&spec)
    let error = #expect(throws: VaneError.self) { try spec.resolved(defaultThreads: 2) }
    #expect(error?.code == .invalidArgument)
    #expect(error?.message.contains(field) == true, "\(error?.message ?? "")")
  }

  @Test("A 1 MB name, symbol or parameter is quoted in a short message, never echoed whole")
  func hugeFields() throws {
    let huge = String(repeating: "x", count: 1 << 20)
    for change in [
      { @Sendable (s: inout Vane_V1_TrainingSpec) in s.name = huge },
      { @Sendable (s: inout Vane_V1_TrainingSpec) in s.symbols = [huge] },
      { @Sendable (s: inout Vane_V1_TrainingSpec) in s.models[0].hyperparameters = [huge: "1"] },
    ] as [@Sendable (inout Vane_V1_TrainingSpec) -> Void] {
      var spec = Self.valid
      change(&spec)
      let error = #expect(throws: VaneError.self) { try spec.resolved(defaultThreads: 2) }
      #expect(error?.code == .invalidArgument && (error?.message.utf8.count ?? .max) < 400)
    }
  }

  @Test(
    "The MLP trains in float32 unless the spec asks for float64",
    arguments: [
      (Vane_V1_Precision.unspecified, Vane_V1_Precision.float32, NeuralTraining.Precision.float32),
      (.float32, .float32, .float32),
      (.float64, .float64, .float64),
    ]
  )
  func mlpPrecision(
    asked: Vane_V1_Precision,
    written: Vane_V1_Precision,
    runs: NeuralTraining.Precision
  ) throws {
    var spec = Self.valid
    spec.models[1] = .with {
      $0.name = "mlp"
      $0.kind = .mlp
      $0.mlp = .with { $0.training.precision = asked }
    }
    spec.stacking.baseModels = []
    let resolved = try spec.resolved(defaultThreads: 2)
    #expect(resolved.spec.models[1].mlp.training.precision == written)
    guard case .mlp(_, _, _, let training) = resolved.run.models[1].kind else {
      Issue.record("model 1 resolved to \(resolved.run.models[1].kind)")
      return
    }
    #expect(training.precision == runs)
  }

  @Test(
    "Device CUDA where it cannot run answers FAILED_PRECONDITION naming why",
    .enabled(
      if: CUDADevices.visible.isEmpty,
      "this machine shows an NVIDIA GPU: the refusal for want of one is not reachable"
    )
  )
  func cuda() throws {
    var spec = Self.valid
    spec.device = .cuda
    let error = #expect(throws: VaneError.self) { try spec.resolved(defaultThreads: 2) }
    #expect(error?.code == .failedPrecondition)
    let message = error?.message ?? ""
    #expect(message.hasPrefix("spec.device: DEVICE_CUDA cannot train here"))
    // The spec's XGBoost and LSTM have CUDA backends; this machine has no GPU, and what the
    // LSTM's backend lacks here is named too.
    #expect(message.contains("no NVIDIA GPU is visible"))
    for problem in CUDATrainingDevice.problems() { #expect(message.contains(problem)) }
    #expect(!message.contains("models[0]") && !message.contains("models[1]"))
  }

  typealias Models = [(name: String, kind: Vane_V1_ModelKind, float64: Bool)]
  static let cudaBuild = XGBoostLibraryInfo(
    version: "3.2.0",
    path: "/x/libxgboost.so",
    usesCUDA: true
  )
  static let cpuBuild = XGBoostLibraryInfo(
    version: "1.7.4",
    path: "/y/libxgboost.so.0",
    usesCUDA: false
  )

  @Test(
    "DEVICE_CUDA: every reason it cannot run is named, and none when it can",
    arguments: [
      (
        Models([("xgb", .xgboost, false)]),
        Result<XGBoostLibraryInfo, VaneError>.success(cudaBuild), ["H100"], [String](), []
      ),
      (
        Models([("xgb", .xgboost, false), ("net", .mlp, false)]), .success(cudaBuild), ["H100"],
        [], []
      ),
      (
        Models([("xgb", .xgboost, false), ("net", .mlp, true)]), .success(cudaBuild), ["H100"],
        [], ["models[1] 'net' (mlp) trains on CUDA in float32 only"]
      ),
      (
        Models([("net", .mlp, false)]), .success(cpuBuild), [],
        ["NVRTC: not found for CUDA 12"], ["NVRTC: not found for CUDA 12"]
      ),
      (
        Models([("xgb", .xgboost, false)]), .success(cpuBuild), ["H100"], ["NVRTC: missing"],
        ["libxgboost 1.7.4 at /y/libxgboost.so.0", "built without CUDA", "VANE_XGBOOST_LIBRARY"]
      ),
      (
        Models([("xgb", .xgboost, false)]),
        .failure(VaneError(.failedPrecondition, "XGBoost is not available: cannot load")),
        ["H100"], [], ["XGBoost is not available: cannot load"]
      ),
      (
        Models([("xgb", .xgboost, false)]), .success(cudaBuild), [], [],
        ["no NVIDIA GPU is visible"]
      ),
      (
        Models([("a", .logisticRegression, false), ("b", .lstm, true), ("c", .xgboost, false)]),
        .success(cpuBuild), [], [],
        [
          "models[0] 'a' (logisticRegression) has no CUDA backend",
          "models[1] 'b' (lstm) trains on CUDA in float32 only", "built without CUDA",
          "no NVIDIA GPU is visible",
        ]
      ),
      (Models([("seq", .lstm, false)]), .success(cpuBuild), [], [], []),
      (
        Models([("seq", .lstm, false)]), .success(cudaBuild), ["H100"],
        ["CUDA runtime: not found"], ["CUDA runtime: not found"]
      ),
    ] as [(Models, Result<XGBoostLibraryInfo, VaneError>, [String], [String], [String])]
  )
  func cudaReasons(
    models: Models,
    library: Result<XGBoostLibraryInfo, VaneError>,
    gpus: [String],
    cuda: [String],
    expected: [String]
  ) {
    let refusal = Vane_V1_TrainingSpec.cudaRefusal(
      models: models,
      library: library,
      gpus: gpus,
      cuda: cuda
    )
    if expected.isEmpty {
      #expect(refusal == nil)
    } else {
      for part in expected { #expect(refusal?.contains(part) == true, "\(part)") }
      #expect(refusal?.hasSuffix("Use DEVICE_CPU") == true)
    }
    // What a kind not asked for lacks is not named.
    if !models.contains(where: { $0.kind == .mlp || $0.kind == .lstm }) {
      for problem in cuda { #expect(refusal?.contains(problem) != true) }
    }
  }

  @Test(
    "The trainer's GetServiceInfo names the libxgboost it trains with",
    .enabled(if: XGBoostModel.libraryVersion != nil, "libxgboost is not installed")
  )
  func xgboostCapability() throws {
    let version = try #require(XGBoostModel.libraryVersion)
    let flags = TrainerServiceImplementation.capabilities
    #expect(flags.first == "xgboost-\(version)")
    let info = try XGBoostModel.library.get()
    #expect(flags.contains("xgboost-cuda") == info.usesCUDA)
    #expect(flags.contains("cuda") == (info.usesCUDA && !CUDADevices.visible.isEmpty))
  }
}

/// The trainer against a real feature service and gatekeeper (over the shim, by address), on
/// real 1h candles.
@Suite(
  "Trainer service: jobs end to end",
  .enabled(if: MarketData.available),
  .serialized,
  .timeLimit(.minutes(10))
)
struct TrainerServiceTests {
  typealias Client = Vane_V1_TrainerService.Client<AnyClientTransport>

  /// A small job: logistic regression and XGBoost at two horizons, stacked, on BTCUSDT 1h of
  /// 2023-07 to 2024-12 (v1 features with their cross-asset columns).
  static func spec(models: [Vane_V1_ModelSpec]? = nil) -> Vane_V1_TrainingSpec {
    .with {
      $0.name = "e2e"
      $0.symbols = ["BTCUSDT"]
      $0.interval = .interval1H
      $0.labels = .with {
        $0.kind = .binaryDirection
        $0.horizons = [.with { $0.bars = 5 }, .with { $0.bars = 12 }]
      }
      $0.dataRange = .init(start: 1_688_169_600_000, end: 1_735_689_600_000)
      $0.models =
        models ?? [
          .with {
            $0.name = "logreg"
            $0.kind = .logisticRegression
          },
          .with {
            $0.name = "xgb"
            $0.kind = .xgboost
            $0.xgboost = .with {
              $0.numBoostRounds = 30
              $0.maxDepth = 3
            }
          },
        ]
      $0.walkForward = .with {
        $0.trainBars = 5000
        $0.testBars = 1500
        $0.validationBars = 500
      }
      $0.stacking.enabled = true
      $0.seed = 11
      $0.threads = 1
    }
  }

  /// Runs `body` with a trainer client (in-process) whose worker runs beside it, over a
  /// feature service holding the candles and a gatekeeper, both reached by address over the shim.
  static func withStack<R: Sendable>(
    directory: URL? = nil,
    bnbUntil: Int64 = .max,
    gatekeeperAddress: String? = nil,
    gatekeeperToken: String? = nil,
    trainerToken: String? = nil,
    gatekeeperPolicy: String? = nil,
    _ body: @Sendable (Client, TrainerServiceImplementation) async throws -> R
  ) async throws -> R {
    let root =
      directory
      ?? FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-trainer-\(UUID().uuidString)"
      )
    defer { if directory == nil { try? FileManager.default.removeItem(at: root) } }
    @Sendable func info(_ kind: ServiceKind) -> RuntimeInfo {
      RuntimeInfo(
        kind: kind,
        configuredAddress: "127.0.0.1:0",
        dataDirectory: root.appendingPathComponent(kind.rawValue).path,
        tls: false,
        adminAuth: .loopbackOnly
      )
    }
    return try await withServer(
      .shim,
      services: [try FeatureServiceImplementation(runtime: info(.feature))]
    ) { featureClient, feature in
      let features = Vane_V1_FeatureService.Client(wrapping: featureClient)
      // A fresh store does not know the symbol (NOT_FOUND); a restarted one has it.
      let stored =
        (try? await features.getCoverage(.with { $0.symbols = ["BTCUSDT"] }))?.series.isEmpty
        == false
      if !stored {
        try await FeatureVectorTests.ingest(features, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
        try await FeatureVectorTests.ingest(features, ["BNBUSDT"], until: bnbUntil)
      }
      return try await withServer(
        .shim,
        services: [try GatekeeperServiceImplementation(runtime: info(.gatekeeper))],
        interceptors: gatekeeperToken.map { AdminAuthInterceptor.pipeline(mode: .token($0)) } ?? []
      ) { gatekeeperClient, gatekeeper in
        if let gatekeeperPolicy {
          _ = try await Vane_V1_GatekeeperService.Client(wrapping: gatekeeperClient).setPolicy(
            .with {
              $0.name = "any"
              $0.text = gatekeeperPolicy
            },
            metadata: gatekeeperToken.map { ["authorization": "Bearer \($0)"] } ?? [:]
          )
        }
        let trainer = try TrainerServiceImplementation(
          runtime: info(.trainer),
          config: TrainerConfig(
            featureAddress: "127.0.0.1:\(feature.port!)",
            gatekeeperAddress: gatekeeperAddress ?? "127.0.0.1:\(gatekeeper.port!)",
            threads: 1,
            adminToken: trainerToken
          ),
          logger: Logger(label: "test")
        )
        return try await withServer(
          .inProcess,
          services: [trainer],
          interceptors: [.apply(RequestIDServerInterceptor(), to: .all)]
        ) { client, _ in
          try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await trainer.worker.run() }
            defer { group.cancelAll() }
            return try await body(Client(wrapping: client), trainer)
          }
        }
      }
    }
  }

  /// Follows a job to its final event; the events seen on the way.
  static func follow(
    _ client: Client,
    _ id: String,
    onEvent: @escaping @Sendable (Vane_V1_JobEvent) -> Void = { _ in }
  ) async throws -> (Vane_V1_Job, [Vane_V1_JobEvent]) {
    try await client.watchJob(
      .with {
        $0.jobID = id
        $0.includeLogs = true
      }
    ) { response in
      var events: [Vane_V1_JobEvent] = []
      for try await event in response.messages {
        events.append(event)
        onEvent(event)
        if case .finalJob(let job)? = event.detail { return (job, events) }
      }
      throw VaneError(.internalError, "the watch ended without a final event")
    }
  }

  @Test(
    "A job pulls BuildDataset, trains walk-forward, writes a bundle the gatekeeper evaluates; progress streams; the record survives a restart"
  )
  func endToEnd() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-trainer-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    let id = try await Self.runJob(root: root)
    // A new trainer on the same data directory still knows the job.
    try await Self.withStack(directory: root) { client, trainer in
      let job = try await client.getJob(.with { $0.jobID = id })
      #expect(job.state == .succeeded)
      let list = try await client.listJobs(.with { $0.states = [.succeeded] })
      #expect(list.jobs.map(\.id) == [id] && !list.jobs[0].hasSpec)
      // Jobs by state at scrape time: every state listed, this one job SUCCEEDED.
      VaneMetrics.bootstrap()
      trainer.metricsRefresh()()
      let text = String(decoding: VaneMetrics.exposition(), as: UTF8.self)
      #expect(sample("vane_trainer_jobs", ["state": "succeeded"], in: text) == 1, "\(text)")
      #expect(sample("vane_trainer_jobs", ["state": "running"], in: text) == 0)
    }
  }

  static func runJob(root: URL) async throws -> String {
    try await Self.withStack(directory: root) { client, _ in
      let validated = try await client.startTraining(
        .with {
          $0.spec = Self.spec()
          $0.validateOnly = true
        }
      )
      #expect(validated.id.isEmpty && validated.spec.walkForward.purgeBars == 12)
      let queued = try await client.startTraining(
        .with {
          $0.spec = Self.spec()
          $0.requestID = "e2e-1"
        },
        metadata: ["x-request-id": "trace-e2e-1"]
      )
      #expect(queued.state == .queued || queued.state == .running)
      // The job keeps the x-request-id of the call that started it; its work runs under it.
      #expect(queued.originRequestID == "trace-e2e-1")
      // The same request id and spec return the same job; another spec is refused.
      #expect(
        try await client.startTraining(
          .with {
            $0.spec = Self.spec()
            $0.requestID = "e2e-1"
          }
        ).id == queued.id
      )
      // Checked against the feature service before anything is queued.
      var unknown = Self.spec()
      unknown.featureSetID = "v9"
      await #expect { try await client.startTraining(.with { $0.spec = unknown }) } throws: {
        ($0 as? RPCError)?.code == .notFound
      }
      var fourHours = Self.spec()
      fourHours.interval = .interval4H
      await #expect { try await client.startTraining(.with { $0.spec = fourHours }) } throws: {
        ($0 as? RPCError)?.code == .invalidArgument
          && ($0 as? RPCError)?.message.contains("spec.interval") == true
      }
      var other = Self.spec()
      other.seed = 12
      await #expect(throws: RPCError.self) {
        try await client.startTraining(
          .with {
            $0.spec = other
            $0.requestID = "e2e-1"
          }
        )
      }
      let (job, events) = try await Self.follow(client, queued.id)
      #expect(job.state == .succeeded, "\(job.error)")
      #expect(
        events.contains {
          $0.progress.stage == .training && $0.progress.foldCount > 0
            && $0.progress.hasEstimatedRemaining
        }
      )
      #expect(
        events.contains {
          if case .metric(let m)? = $0.detail {
            return m.name == "auc" && m.fold > 0
          } else {
            return false
          }
        }
      )
      #expect(zip(events, events.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
      // The bundle: every model, OOF predictions the gatekeeper judged, a verdict recorded.
      let bundle = try ModelBundle.open(path: job.bundle.path)
      #expect(bundle.manifestSHA256 == job.bundle.manifestSha256)
      #expect(bundle.manifest.provenance["dataset_sha256"]?.count == 64)
      #expect(Set(bundle.manifest.models.map(\.name)) == ["logreg", "xgb", "stack"])
      #expect(
        job.verdict.manifestSha256 == job.bundle.manifestSha256 && !job.verdict.reportID.isEmpty
      )
      #expect(
        job.modelMetrics.count == 6
          && job.modelMetrics.allSatisfy { ($0.oofMetrics["auc"] ?? 0) > 0.4 }
      )
      return job.id
    }
  }

  @Test(
    "missing: IMPUTE keeps the BTC rows after a reference stops, the bundle records the choice, the imputation and what each choice kept"
  )
  func imputes() async throws {
    let stop: Int64 = 1_717_200_000_000  // BNB's candles end 2024-06-01
    try await Self.withStack(bnbUntil: stop) { client, _ in
      var spec = Self.spec(models: [
        .with {
          $0.name = "logreg"
          $0.kind = .logisticRegression
        }
      ])
      spec.stacking.enabled = false
      spec.skipEvaluation = true
      spec.missing = .impute
      let queued = try await client.startTraining(.with { $0.spec = spec })
      #expect(queued.spec.missing == .impute)
      let (job, _) = try await Self.follow(client, queued.id)
      #expect(job.state == .succeeded, "\(job.error)")
      let bundle = try ModelBundle.open(path: job.bundle.path)
      let provenance = bundle.manifest.provenance
      #expect(bundle.manifest.missingValues == "impute" && provenance["missing_values"] == "impute")
      let complete = try #require(provenance["rows_complete"].flatMap { Int($0) })
      let withMissing = try #require(provenance["rows_with_missing_values"].flatMap { Int($0) })
      // Seven months of hourly BTC rows after BNB stopped, kept.
      #expect(withMissing > 4_000 && provenance["rows"] == "\(complete + withMissing)")
      let scaler = try FeatureScaler.decode(try bundle.data("models/scaler.json"))
      #expect(scaler.impute?.count == scaler.columns.count)
      #expect(try ServableModel(bundle: bundle).missingValues == .impute)
    }
  }

  @Test(
    "Blessing through a gatekeeper that requires a token: the trainer's token blesses; without it Bless is refused and the job fails naming it"
  )
  func blessWithToken() async throws {
    var spec = Self.spec(models: [
      .with {
        $0.name = "logreg"
        $0.kind = .logisticRegression
      }
    ])
    spec.stacking.enabled = false
    spec.bless = true
    // A policy any bundle passes: only the token decides the blessing.
    spec.gatePolicy = "any"
    let policy = """
      name: any
      gates:
        - {name: samples, metric: n, op: ">=", threshold: 1}
      """
    let chosen = spec
    for token in ["s3cret", nil] as [String?] {
      try await Self.withStack(
        gatekeeperToken: "s3cret",
        trainerToken: token,
        gatekeeperPolicy: policy
      ) { client, _ in
        let job = try await client.startTraining(.with { $0.spec = chosen })
        let (final, _) = try await Self.follow(client, job.id)
        if token != nil {
          #expect(
            final.state == .succeeded && final.verdict.passed && final.verdict.blessed,
            "\(final.error)"
          )
        } else {
          // The report passed; Bless, an admin method, refused the call without the token.
          #expect(
            final.state == .failed && final.error.stage == .evaluating
              && final.error.message.contains("gatekeeper"),
            "\(final.state) \(final.error)"
          )
        }
      }
    }
  }

  @Test(
    "A job stopped while its bundle is evaluated resumes from its checkpoints: every fold is taken from them, none trained again"
  )
  func resumeWhileEvaluating() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-trainer-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    var spec = Self.spec(models: [
      .with {
        $0.name = "logreg"
        $0.kind = .logisticRegression
      }
    ])
    spec.stacking.enabled = false
    let chosen = spec
    // Nothing listens where the gatekeeper should be: the job waits at EVALUATING, retrying,
    // and is stopped there.
    let (id, folds) = try await Self.withStack(directory: root, gatekeeperAddress: "127.0.0.1:9") {
      client,
      trainer in
      let job = try await client.startTraining(.with { $0.spec = chosen })
      let (interrupted, events) = try await Self.follow(client, job.id) { event in
        if event.progress.stage == .evaluating { trainer.board.interruptRunning() }
      }
      #expect(interrupted.state == .interrupted && interrupted.error.stage == .evaluating)
      let folds = Set(
        events.filter { $0.progress.stage == .training && $0.progress.fold > 0 }
          .map(\.progress.fold)
      )
      #expect(folds.count > 1)
      return (job.id, folds.count)
    }
    try await Self.withStack(directory: root) { client, _ in
      _ = try await client.resumeJob(.with { $0.jobID = id })
      let (final, events) = try await Self.follow(client, id)
      #expect(final.state == .succeeded && final.hasVerdict, "\(final.error)")
      let resumed = events.compactMap { event -> String? in
        if case .log(let line)? = event.detail, line.message.contains("taken from checkpoints") {
          return line.message
        }
        return nil
      }
      // Every fold of the first run came from its checkpoint: none was trained again.
      // (A fold is checkpointed per model and horizon: one model, two horizons here.)
      let checkpoints = folds * chosen.labels.horizons.count
      #expect(
        resumed == ["\(checkpoints) finished folds were taken from checkpoints, not trained again"]
      )
    }
  }

  @Test(
    "CancelJob stops a running job within a second and keeps it CANCELLED; an unknown job is NOT_FOUND"
  )
  func cancel() async throws {
    try await Self.withStack { client, _ in
      let mlp = Self.spec(models: [
        .with {
          $0.name = "mlp"
          $0.kind = .mlp
          $0.mlp = .with {
            $0.hiddenUnits = [256, 128]
            $0.training = .with {
              $0.maxEpochs = 200
              $0.earlyStoppingPatience = 0
            }
          }
        }
      ])
      let job = try await client.startTraining(.with { $0.spec = mlp })
      let cancelledAt = Mutex<ContinuousClock.Instant?>(nil)
      let (final, _) = try await Self.follow(client, job.id) { event in
        guard event.progress.stage == .training, cancelledAt.withLock({ $0 == nil }) else { return }
        cancelledAt.withLock { $0 = .now }
        Task {
          _ = try await client.cancelJob(
            .with {
              $0.jobID = job.id
              $0.reason = "test"
            }
          )
        }
      }
      let waited = ContinuousClock.now - (cancelledAt.withLock { $0 } ?? .now)
      #expect(final.state == .cancelled && final.cancelReason == "test")
      #expect(waited < .seconds(3), "\(waited)")
      await #expect(throws: RPCError.self) { try await client.getJob(.with { $0.jobID = "j000" }) }
    }
  }

  @Test(
    "A job stopped by a shutdown is INTERRUPTED; ResumeJob finishes it from its checkpoints with the metrics of an uninterrupted run"
  )
  func resume() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-trainer-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: root) }
    try await Self.withStack(directory: root) { client, trainer in
      let straight = try await client.startTraining(.with { $0.spec = Self.spec() })
      let (reference, _) = try await Self.follow(client, straight.id)
      let job = try await client.startTraining(.with { $0.spec = Self.spec() })
      let folds = Mutex(0)
      let (interrupted, _) = try await Self.follow(client, job.id) { event in
        guard event.progress.stage == .training, event.progress.fold > 0 else { return }
        if folds.withLock({
          $0 += 1
          return $0
        }) == 3 {
          trainer.board.interruptRunning()
        }
      }
      #expect(interrupted.state == .interrupted && interrupted.error.code == "UNAVAILABLE")
      let resumed = try await client.resumeJob(.with { $0.jobID = job.id })
      #expect(resumed.state == .queued || resumed.state == .running)
      let (final, events) = try await Self.follow(client, job.id)
      #expect(final.state == .succeeded)
      #expect(
        events.contains {
          if case .log(let line)? = $0.detail {
            return line.message.contains("taken from checkpoints")
          } else {
            return false
          }
        }
      )
      for (a, b) in zip(final.modelMetrics, reference.modelMetrics) {
        #expect(
          a.model == b.model && a.oofMetrics["auc"] == b.oofMetrics["auc"],
          "\(a.model) h\(a.horizonBars)"
        )
      }
      await #expect(throws: RPCError.self) {
        try await client.resumeJob(.with { $0.jobID = job.id })
      }
      // ListJobs pages newest first; a token only serves the filters that made it.
      let first = try await client.listJobs(.with { $0.page.pageSize = 1 })
      #expect(
        first.jobs.map(\.id) == [job.id] && first.page.totalSize == 2
          && !first.page.nextPageToken.isEmpty
      )
      let second = try await client.listJobs(
        .with {
          $0.page.pageSize = 1
          $0.page.pageToken = first.page.nextPageToken
        }
      )
      #expect(second.jobs.map(\.id) == [straight.id] && second.page.nextPageToken.isEmpty)
      await #expect {
        try await client.listJobs(
          .with {
            $0.states = [.failed]
            $0.page.pageToken = first.page.nextPageToken
          }
        )
      } throws: {
        ($0 as? RPCError)?.code == .invalidArgument
      }
    }
  }
}
