internal import Foundation
internal import Logging
public import ServiceLifecycle
internal import SwiftProtobuf
internal import Synchronization
internal import VaneBundle
internal import VaneCore
internal import VaneMath
internal import VaneModels
internal import VaneProto
internal import VaneRuntime
internal import VaneTraining

/// Runs queued training jobs one at a time, for as long as the trainer runs: pulls the dataset
/// from the feature service, trains walk-forward (folds checkpointed), refits, writes the bundle
/// and has the gatekeeper evaluate it. Numeric work runs on the blocking pool. On shutdown the
/// running job stops at its next checkpoint and is left INTERRUPTED, to be resumed.
public final class TrainingWorker: Service, Sendable {
  let board: JobBoard
  let upstreams: Upstreams
  let bundles: String
  let logger: Logger

  init(board: JobBoard, upstreams: Upstreams, bundleDirectory: String, logger: Logger) {
    self.board = board
    self.upstreams = upstreams
    self.bundles = bundleDirectory
    self.logger = logger
  }

  /// Runs queued jobs until the service group shuts down, and the connections to the feature
  /// service and the gatekeeper beside them (they close with it).
  public func run() async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await self.upstreams.feature.run() }
      group.addTask { try await self.upstreams.gatekeeper.run() }
      await withGracefulShutdownHandler {
        for await _ in self.board.wakeups {
          while !Task.isShuttingDownGracefully, let (job, flag) = try? self.board.startNext() {
            // The job's work carries the id of the call that started it (logs, upstream calls).
            await RequestID.$current.withValue(
              job.originRequestID.isEmpty ? nil : job.originRequestID
            ) { await self.execute(job, flag: flag) }
          }
          if Task.isShuttingDownGracefully { break }
        }
      } onGracefulShutdown: {
        self.board.interruptRunning()
        self.board.closeWatchers()
      }
      // No job runs any more: the connections close.
      self.upstreams.feature.client.beginGracefulShutdown()
      self.upstreams.gatekeeper.client.beginGracefulShutdown()
      try await group.waitForAll()
    }
  }

  /// Everything a job does, from data to verdict; its outcome is recorded on the board.
  func execute(_ job: Vane_V1_Job, flag: CancellationFlag) async {
    let id = job.id
    var logger = self.logger
    logger[metadataKey: "job"] = "\(id)"
    let clock = ProgressClock()
    var stage = Vane_V1_JobStage.loadingData
    do {
      let resolved = try job.spec.resolved(defaultThreads: self.upstreams.config.threads)
      logger.info(
        "job started",
        metadata: [
          "symbols": "\(resolved.spec.symbols.joined(separator: ","))",
          "models": "\(resolved.run.models.map(\.name))",
        ]
      )
      let loaded = try await self.upstreams.dataset(resolved, cancellation: flag)
      let previous = try self.board.store.datasetSHA256(job: id)
      guard previous.isEmpty || previous == loaded.contentSHA256 else {
        throw VaneError(
          .failedPrecondition,
          "the dataset changed since the job started (content sha256 \(loaded.contentSHA256), was \(previous)): start a new job"
        )
      }
      try self.board.store.setDatasetSHA256(loaded.contentSHA256, job: id)
      self.board.progress(
        id,
        clock.progress(stage: .training),
        detail: .log(
          .with {
            $0.level = .info
            $0.message =
              "dataset \(loaded.provenance["dataset_id"] ?? ""): \(loaded.data.rowCount) rows × \(loaded.data.columns.count) columns"
          }
        ),
        save: true
      )
      stage = .training
      let units = try Self.units(resolved, data: loaded.data)
      clock.begin(units: units)

      let board = self.board, bundles = self.bundles, store = self.board.store
      let output = try await BlockingPool.shared.run {
        () throws -> (runs: [ModelRun], written: WrittenBundle) in
        BLAS.setThreadCount(resolved.threads)
        let control = RunControl(cancellation: flag, checkpoints: store.checkpoints(job: id))
        let report: (RunEvent) -> Bool = { event in
          board.progress(
            id,
            clock.advance(event),
            detail: Self.detail(event),
            save: Self.isMetric(event)
          )
          return !flag.isCancelled
        }
        let runs = try WalkForwardRun.run(
          resolved.run,
          data: loaded.data,
          control: control,
          progress: report
        )
        if clock.resumed > 0 {
          board.progress(
            id,
            clock.progress(stage: .finalFit),
            detail: .log(
              .with {
                $0.level = .info
                $0.message =
                  "\(clock.resumed) finished folds were taken from checkpoints, not trained again"
              }
            ),
            save: true
          )
        }
        let final = try WalkForwardRun.fitFinal(
          resolved.run,
          data: loaded.data,
          runs: runs,
          control: control,
          progress: report
        )
        board.progress(id, clock.progress(stage: .calibrating), save: true)
        try FileManager.default.createDirectory(atPath: bundles, withIntermediateDirectories: true)
        let bundleID = Self.bundleID(resolved.spec, interval: resolved.interval, job: id)
        let request = BundleRequest(
          id: bundleID,
          created: Date(),
          symbols: resolved.spec.symbols,
          interval: resolved.interval,
          taskKind: resolved.spec.labels.kind == .threeClass ? "three_class" : "binary",
          featureSetID: loaded.featureSetID,
          featureSetSHA256: loaded.featureSetSHA256,
          calibration: resolved.calibration,
          exportONNX: resolved.spec.exportOnnx,
          provenance: Self.provenance(resolved, loaded: loaded, job: id),
          spec: try? resolved.spec.jsonUTF8Data(),
          missingValues: resolved.run.missingValues
        )
        board.progress(id, clock.progress(stage: .bundling), save: true)
        let written = try TrainingBundle.write(
          request,
          data: loaded.data,
          runs: runs,
          final: final,
          to: "\(bundles)/\(bundleID).tar.gz"
        )
        return (runs, written)
      }
      stage = .bundling
      let metrics = Self.modelMetrics(output.runs, spec: resolved)
      self.board.update(id) { job in
        job.bundle = .with {
          $0.bundleID = output.written.manifest.id
          $0.manifestSha256 = output.written.manifestSHA256
          $0.path = output.written.path
        }
        job.modelMetrics = metrics
        job.warnings += output.written.warnings
      }
      if !resolved.spec.skipEvaluation {
        stage = .evaluating
        self.board.progress(id, clock.progress(stage: .evaluating), save: true)
        let verdict = try await self.upstreams.evaluate(
          bundlePath: output.written.path,
          policy: resolved.spec.gatePolicy,
          bless: resolved.spec.bless,
          cancellation: flag
        )
        self.board.update(id) { $0.verdict = verdict }
      }
      try self.board.finish(id, state: .succeeded) { $0.spec = resolved.spec }
      // Only now: a job stopped while its bundle is evaluated resumes from its folds.
      try? self.board.store.removeCheckpoints(job: id)
      logger.info("job succeeded", metadata: ["bundle": "\(output.written.path)"])
    } catch {
      let failure = error as? VaneError ?? VaneError(.internalError, "\(error)", cause: error)
      let current = (try? self.board.job(id)) ?? job
      let stoppedStage = current.progress.stage == .unspecified ? stage : current.progress.stage
      if failure.code == .cancelled, current.cancelRequested {
        try? self.board.finish(id, state: .cancelled) { _ in }
        logger.info("job cancelled")
      } else if failure.code == .cancelled {
        // Not asked for: the trainer is stopping. Finished folds are kept for ResumeJob.
        try? self.board.finish(id, state: .interrupted) {
          $0.error = .with {
            $0.code = "UNAVAILABLE"
            $0.message =
              "the trainer stopped while the job was running; ResumeJob continues it after its last finished fold"
            $0.stage = stoppedStage
          }
        }
        logger.info("job interrupted")
      } else {
        try? self.board.finish(id, state: .failed) {
          $0.error = .with {
            $0.code = failure.code.canonicalName
            $0.message = failure.message
            $0.stage = stoppedStage
          }
        }
        logger.error("job failed", metadata: ["error": "\(failure)"])
      }
    }
  }

  static func bundleID(_ spec: Vane_V1_TrainingSpec, interval: String, job: String) -> String {
    let base =
      spec.name.isEmpty
      ? spec.symbols.joined(separator: "-").lowercased() + "-\(interval)" : spec.name
    return String(base.prefix(80)) + "-" + job
  }

  static func provenance(
    _ resolved: ResolvedSpec,
    loaded: LoadedDataset,
    job: String
  ) -> [String: String] {
    var provenance = loaded.provenance
    provenance["job_id"] = job
    provenance["trainer_version"] = BuildInfo.version
    provenance["seed"] = "\(resolved.spec.seed)"
    provenance["device"] = "cpu"
    provenance["threads"] = "\(resolved.threads)"
    if let version = XGBoostModel.libraryVersion { provenance["xgboost_version"] = version }
    for (key, value) in resolved.spec.tags { provenance["tag.\(key)"] = value }
    return provenance
  }

  static func isMetric(_ event: RunEvent) -> Bool {
    if case .metric = event { return true }
    return false
  }

  static func detail(_ event: RunEvent) -> Vane_V1_JobEvent.OneOf_Detail? {
    guard case .metric(let name, let value, let model, let horizon, let fold) = event else {
      return nil
    }
    return .metric(
      .with {
        $0.name = name
        $0.value = value
        $0.model = model
        $0.horizonBars = UInt32(horizon)
        $0.fold = UInt32(fold)
      }
    )
  }

  /// Units of work for the progress estimate: one per fold of every model and horizon (one
  /// per fold for an LSTM, which trains every horizon at once), per stack fold and per final fit.
  static func units(_ resolved: ResolvedSpec, data: TrainingData) throws -> Int {
    let longest = data.horizons.indices.max { data.horizons[$0] < data.horizons[$1] }!
    let folds = try resolved.run.plan.folds(
      openTimes: data.openTimes,
      labelEnds: data.labelEnds[longest],
      barMs: data.barMs
    ).count
    var units = 0
    for model in resolved.run.models {
      if case .lstm = model.kind {
        units += folds + 1
      } else {
        units += (folds + 1) * data.horizons.count
      }
    }
    if let stacking = resolved.run.stacking {
      units += (max(folds - stacking.minimumFolds, 0) + 1) * data.horizons.count
    }
    return max(units, 1)
  }

  static func modelMetrics(_ runs: [ModelRun], spec: ResolvedSpec) -> [Vane_V1_ModelMetrics] {
    runs.map { run in
      .with {
        $0.model = run.name
        $0.kind =
          switch run.kind {
          case "xgboost": .xgboost
          case "mlp": .mlp
          case "lstm": .lstm
          default: .logisticRegression
          }
        $0.role = run.kind == "stack" ? .meta : .base
        $0.horizonBars = UInt32(run.horizon)
        $0.oofMetrics = run.metrics.filter { $0.value.isFinite }
        $0.oofRows = Int64(run.outOfFoldRows)
        $0.trainTime = .init(secondsDouble: run.folds.reduce(0) { $0 + $1.seconds })
        $0.folds = run.folds.map { fold in
          .with {
            $0.fold = UInt32(fold.number)
            $0.trainRange = .with {
              $0.start = .init(unixMilliseconds: fold.trainRange.lowerBound)
              $0.end = .init(unixMilliseconds: fold.trainRange.upperBound)
            }
            $0.testRange = .with {
              $0.start = .init(unixMilliseconds: fold.testRange.lowerBound)
              $0.end = .init(unixMilliseconds: fold.testRange.upperBound)
            }
            $0.trainRows = Int64(fold.trainRows)
            $0.testRows = Int64(fold.testRows)
            $0.metrics = fold.metrics.filter { $0.value.isFinite }
            $0.trainTime = .init(secondsDouble: fold.seconds)
            $0.bestIteration = UInt32(max(fold.bestIteration, 0))
          }
        }
      }
    }
  }
}

/// The job's progress: stage, fold, model, completion and time estimates, from the run's events.
final class ProgressClock: Sendable {
  private struct State {
    var started = ContinuousClock.now
    var trainingStarted: ContinuousClock.Instant?
    var units = 1
    var done = 0
    var resumed = 0
    var progress = Vane_V1_JobProgress()
  }

  /// Folds taken from checkpoints so far.
  var resumed: Int { self.state.withLock { $0.resumed } }

  private let state = Mutex(State())

  func begin(units: Int) {
    self.state.withLock {
      $0.units = units
      $0.trainingStarted = .now
    }
  }

  /// The progress at a new stage.
  func progress(stage: Vane_V1_JobStage) -> Vane_V1_JobProgress {
    self.state.withLock { state in
      state.progress.stage = stage
      if stage != .training && stage != .stacking {
        state.progress.fold = 0
        state.progress.foldCount = 0
      }
      return Self.stamp(&state)
    }
  }

  /// The progress after a run event.
  func advance(_ event: RunEvent) -> Vane_V1_JobProgress {
    self.state.withLock { state in
      switch event {
      case .fold(let model, let horizon, let fold, let count, let resumed):
        state.done += 1
        if resumed { state.resumed += 1 }
        state.progress.stage = model == "stack" ? .stacking : .training
        state.progress.model = model
        state.progress.horizonBars = UInt32(horizon)
        state.progress.fold = UInt32(fold)
        state.progress.foldCount = UInt32(count)
      case .finalFit(let model, let horizon):
        state.done += 1
        state.progress.stage = .finalFit
        state.progress.model = model
        state.progress.horizonBars = UInt32(horizon)
        state.progress.fold = 0
        state.progress.foldCount = 0
      case .metric:
        break
      }
      return Self.stamp(&state)
    }
  }

  private static func stamp(_ state: inout State) -> Vane_V1_JobProgress {
    let now = ContinuousClock.now
    let elapsed = now - state.started
    state.progress.elapsed = .init(secondsDouble: Self.seconds(elapsed))
    // Units started so far, the current one half done.
    let done = max(Double(state.done) - 0.5, 0)
    state.progress.fraction = min(done / Double(state.units), 0.99)
    if let training = state.trainingStarted, done > 0 {
      let perUnit = Self.seconds(now - training) / done
      state.progress.estimatedRemaining = .init(
        secondsDouble: perUnit * (Double(state.units) - done)
      )
    } else {
      state.progress.clearEstimatedRemaining()
    }
    return state.progress
  }

  static func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
  }
}
