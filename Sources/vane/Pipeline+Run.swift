import ArgumentParser
import FeatureService
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import Synchronization
import VaneFeatures
import VaneBundle
import VaneCore
import VaneProto
import VaneQuality
import VaneRollout
import VaneRuntime
internal import Foundation

/// What a run may do and when: the replay's pace, the retraining triggers, the fault injected.
struct PipelineSettings: Sendable {
  var quick = false
  /// Replayed bars per second of wall-clock time; 0: as fast as the services answer.
  var speed: Double = 20
  /// Retrain when the serving model's training data ended longer ago than this (in bars).
  var maxModelAgeBars = 336
  /// Retrain when the live score PSI (horizon 1) against the out-of-fold scores passes this.
  var maxScorePSI = 0.25
  /// Retrain when any input column's PSI against its training deciles passes this.
  var maxInputPSI = 1.0
  /// Retrain when the live log loss (horizon 1) passes this (ln 2 ≈ 0.693 is a coin).
  var maxLogLoss = 0.72
  /// Most retrainings in one run.
  var maxRetrains = 1
  /// Deploy a properly signed but inverted candidate, which the rollout analysis must roll back.
  var injectBadModel = true
  /// Bars between live-metric checks (and status lines).
  var checkEvery = 24
  /// Live answers a first version serves before it is promoted.
  var firstMinRequests = 24
  /// Requests and matured outcomes a new version's steps need.
  var rolloutMinRequests = Self.defaultRolloutMinRequests
  var rolloutMinMatured = Self.defaultRolloutMinMatured
  static let defaultRolloutMinRequests = 24
  static let defaultRolloutMinMatured = 48
  /// End the replay once every stage has run (retrained, rolled out, the bad candidate rolled
  /// back) instead of replaying every live bar.
  var stopWhenDone = false
  /// The model id the pipeline serves.
  var modelID = "\(PipelineDefaults.symbol)_1h"
  /// Where injected bundles are written (a gatekeeper bundle root).
  var bundleDirectory: String
  /// A redrawn panel on a terminal, or plain lines.
  var view: PipelineView.Mode = .auto
  /// Version labels in the predictor: the run's own ("v1", "v2", …) on services the pipeline
  /// started (a fresh predictor, so they are unique; the traffic split hashes them, so the same
  /// candles route the same bars), else the bundle ids (services that may hold earlier runs).
  var runLabels = false

  /// The predictor's label for version `label` of bundle `bundleID`.
  func versionLabel(_ label: String, bundleID: String) -> String {
    self.runLabels ? label : bundleID
  }
}

/// The stage a run is in and the rollout it drives, readable from outside the run (a signal
/// handler, the command that cleans up after it).
final class PipelineStage: Sendable {
  private let name = Mutex("starting")
  private let rollout = Mutex<String?>(nil)
  var current: String { self.name.withLock { $0 } }
  func enter(_ stage: String) { self.name.withLock { $0 = stage } }
  /// The rollout in progress: on the data clock only the run moves it.
  var activeRollout: String? { self.rollout.withLock { $0 } }
  func rolloutStarted(_ id: String) { self.rollout.withLock { $0 = id } }
  func rolloutEnded() { self.rollout.withLock { $0 = nil } }
}

/// One version the run produced, and what became of it.
struct PipelineVersion: Sendable {
  var label: String
  /// Its label in the predictor (see ``PipelineSettings/runLabels``).
  var version: String
  var role: String
  var bundlePath: String
  var dataEnd: Int64
  var oofAUC: Double?
  var liveAUC: Double?
  var liveLogLoss: Double?
  var predictions: Int64 = 0
  var matured: Int64 = 0
  var outcome = "-"
  var reason = ""
  /// The bundle it was loaded from.
  var bundleID = ""
}

/// What a finished run reports (the terminal summary and the HTML report).
struct PipelineSummary: Sendable {
  /// One series as ingested before the replay.
  struct Coverage: Sendable {
    var symbol: String
    var bars: Int64
    var first: Int64
    var last: Int64
    var gaps: Int64
    var liveBars: Int
  }

  /// One walk-forward fold's out-of-fold AUC.
  struct Fold: Sendable {
    var version: String
    var model: String
    var horizon: UInt32
    var fold: UInt32
    var auc: Double
  }

  /// Live figures of a version at a replayed bar (a trailing 7-day window).
  struct LivePoint: Sendable {
    var bar: Int64
    var version: String
    var auc: Double?
    var logLoss: Double?
    var matured: Int64
  }

  /// Traffic shares after a replayed bar, by version label (a shadow's mirror is not a share).
  struct TrafficPoint: Sendable {
    var bar: Int64
    var shares: [String: Double]
  }

  /// A rollout event as printed, with the replayed bar it happened at.
  struct Event: Sendable {
    var bar: Int64
    var version: String
    var text: String
  }

  var stages: [(name: String, seconds: Double)] = []
  var coverage: [Coverage] = []
  var folds: [Fold] = []
  /// The gatekeeper's report on each version's bundle under the pipeline's policy.
  var reports: [String: Vane_V1_Report] = [:]
  /// Per version: its out-of-fold predictions before calibration and after a cross-fitted fit
  /// of the same method (the gatekeeper's Calibrate), for the report's before/after diagrams.
  var calibrations: [String: Vane_V1_CalibrateResponse] = [:]
  var live: [LivePoint] = []
  var traffic: [TrafficPoint] = []
  var events: [Event] = []
  /// Client-side Predict latencies, in milliseconds.
  var predictLatencies: [Double] = []
  /// Server-side p50 and p99 per version at the end (ListModels counters), in milliseconds.
  var serverLatencies: [String: (p50: Double, p99: Double)] = [:]
  var cut: Int64 = 0
  var versions: [PipelineVersion] = []
  var bars = 0
  var predictions = 0
  var failedPredictions = 0
  var firstFailure = ""
  var retrainReasons: [String] = []
  var defaultPolicyFailures: [String] = []
}

/// One run of the loop over running services: ingest, train, gate and bless, deploy, replay
/// the live bars (predicting each), retrain when the model ages or drifts, roll new versions
/// out, inject a bad one, and report. Used by one task only.
final class PipelineRun {
  let clients: PipelineClients
  let market: PipelineMarket
  let settings: PipelineSettings
  let connection: ClientConnectionOptions
  let trainerAddress: String
  let stage: PipelineStage
  var summary = PipelineSummary()
  /// The version serving all traffic (an index into summary.versions).
  var serving: Int?
  /// The rollout in progress: its id, its version, the last event printed.
  var active: (id: String, version: Int, sequence: UInt64)?
  var retrains = 0
  var injected = false
  /// The last bar replayed (the cut before the replay).
  var lastBar: Int64 = 0
  /// Traffic share of the version rolling out (a canary's, or all once FULL).
  var activeShare = 0.0
  /// The latest live figures per version (the status line's window).
  var lastStats: [String: Vane_V1_VersionStats] = [:]
  /// The active rollout's state and its latest analysis, for the live panel.
  var activeState: Vane_V1_RolloutState = .unspecified
  /// The active (or last) rollout as deploy last returned it.
  var lastRollout: Vane_V1_Rollout?
  var lastAnalysis = ""
  let view: PipelineView
  let barMs: Int64 = 3_600_000

  init(
    clients: PipelineClients,
    market: PipelineMarket,
    settings: PipelineSettings,
    connection: ClientConnectionOptions,
    trainerAddress: String,
    stage: PipelineStage
  ) {
    self.clients = clients
    self.market = market
    self.settings = settings
    self.connection = connection
    self.trainerAddress = trainerAddress
    self.stage = stage
    self.view = PipelineView(mode: settings.view)
  }

  /// Runs every stage. - Throws: ``PipelineError``.
  func run() async throws -> PipelineSummary {
    self.summary.cut = self.market.cut
    self.lastBar = self.market.cut
    try await self.timed("ingest history") { try await self.ingestHistory() }
    try await self.timed("set policy") { try await self.setPolicy() }
    let first = try await self.timed("train v1") {
      try await self.train(until: self.market.cut, label: "v1", role: "first")
    }
    guard let first else {
      throw PipelineError(
        kind: .gateSaidNo,
        stage: "train v1",
        message:
          "the first model did not pass the '\(PipelineDefaults.policyName)' gates: nothing to serve"
      )
    }
    try await self.timed("gates under 'default'") { try await self.explainDefaultPolicy(first) }
    try await self.timed("deploy v1") { try await self.deployFirst(first) }
    try await self.timed("replay") { try await self.replay() }
    try await self.timed("final metrics") {
      try await self.settlePredictor()
      try await self.refreshStats(window: nil)
      try await self.readServerLatencies()
    }
    return self.summary
  }

  @discardableResult
  func timed<R>(_ name: String, _ body: () async throws -> R) async throws -> R {
    self.stage.enter(name)
    let start = ContinuousClock.now
    defer { self.summary.stages.append((name, PipelineTime.seconds(since: start))) }
    return try await body()
  }

  // MARK: Ingest

  func ingestHistory() async throws {
    self.view.line(
      "== ingest: history before \(PipelineTime.text(self.market.cut)) (the rest arrives bar by bar)"
    )
    for (series, messages) in self.market.historyStreams() {
      let response = try await pipelineCall("ingest history", .feature, "IngestCandles") {
        try await self.clients.feature.ingestCandles(options: self.clients.options) {
          try await $0.write(contentsOf: messages)
        }
      }
      self.summary.coverage.append(
        .init(
          symbol: series.symbol,
          bars: response.accepted,
          first: series.history.first?.candle.openTime ?? 0,
          last: series.history.last?.candle.openTime ?? 0,
          gaps: response.gapCount,
          liveBars: self.market.liveTimes.filter { series.live[$0] != nil }.count
        )
      )
      let first = series.history.first.map { PipelineTime.text($0.candle.openTime) } ?? "-"
      let last = series.history.last.map { PipelineTime.text($0.candle.openTime) } ?? "-"
      self.view.line(
        "   \(series.symbol.padding(toLength: 8, withPad: " ", startingAt: 0))  \(response.accepted) bars \(first) .. \(last)  invalid \(response.invalid)  duplicates \(response.duplicatesDropped)  gaps \(response.gapCount)  stored \(response.storedCount)"
      )
    }
  }

  /// One live bar of every series that has it, each through its own IngestCandles stream as a
  /// feed would send it, with the bar's close as the reference time.
  func ingestBar(_ time: Int64) async throws {
    for (symbol, messages) in self.market.barStreams(time) {
      let response = try await pipelineCall("replay", .feature, "IngestCandles") {
        try await self.clients.feature.ingestCandles(options: self.clients.options) {
          try await $0.write(contentsOf: messages)
        }
      }
      guard response.accepted + response.duplicatesDropped == 1 else {
        throw PipelineError(
          kind: .failed,
          stage: "replay",
          message:
            "\(symbol) bar \(PipelineTime.text(time)) was not stored (invalid \(response.invalid), unfinished \(response.unfinishedLastCandle))"
        )
      }
    }
  }

  // MARK: Train, gate, bless

  func setPolicy() async throws {
    _ = try await pipelineCall("set policy", .gatekeeper, "SetPolicy") {
      try await self.clients.gatekeeper.setPolicy(
        .with {
          $0.name = PipelineDefaults.policyName
          $0.text = PipelineDefaults.hourlyPolicyYAML
          $0.format = .yaml
        },
        metadata: self.clients.metadata,
        options: self.clients.options
      )
    }
    self.view.line(
      "== gates: policy '\(PipelineDefaults.policyName)' set on the gatekeeper (`vane pipeline --print-defaults` shows it)"
    )
  }

  /// Trains on every bar before `until`, evaluates and blesses. - Returns: the new version's
  /// index, or nil when its gates failed.
  func train(until: Int64, label: String, role: String) async throws -> Int? {
    let stageName = self.stage.current
    var spec = try TrainCommand.parse(
      Data(PipelineDefaults.trainingSpecYAML(quick: self.settings.quick).utf8),
      source: "pipeline spec"
    )
    let start = self.market.series.first { $0.symbol == PipelineDefaults.symbol }!.history.first!
      .candle.openTime
    spec.dataRange = .with {
      $0.start = PipelineTime.timestamp(start)
      $0.end = PipelineTime.timestamp(until)
    }
    self.view.line(
      "== train \(label): walk-forward on \(PipelineDefaults.symbol) 1h bars \(PipelineTime.text(start)) .. \(PipelineTime.text(until))"
    )
    let job = try await pipelineCall(stageName, .trainer, "StartTraining") {
      try await self.clients.trainer.startTraining(
        .with { $0.spec = spec },
        options: self.clients.options
      )
    }
    let final: Vane_V1_Job
    do {
      final = try await JobWatch.follow(
        job.id,
        address: self.trainerAddress,
        connection: self.connection,
        prefix: "   "
      )
    } catch is ExitCode {
      throw PipelineError(
        kind: .failed,
        stage: stageName,
        message: "vane.v1.TrainerService/WatchJob: the watch of job \(job.id) failed"
      )
    }
    guard final.state == .succeeded else {
      throw PipelineError(
        kind: .failed,
        stage: stageName,
        message:
          "job \(final.id) ended \(final.state): \(final.error.code) in \(JobWatch.stageName(final.error.stage)): \(final.error.message)"
      )
    }
    for metrics in final.modelMetrics {
      let values = ["auc", "log_loss", "ece"].compactMap { name in
        metrics.oofMetrics[name].map { String(format: "%@ %.4f", name, $0) }
      }
      self.view.line(
        "   \(metrics.model.padding(toLength: 8, withPad: " ", startingAt: 0)) h\(metrics.horizonBars)  OOF rows \(metrics.oofRows)  \(values.joined(separator: "  "))"
      )
    }
    let verdict = final.verdict
    let oof =
      final.modelMetrics.first { $0.role == .meta && $0.horizonBars == 1 }
      ?? final.modelMetrics.first { $0.horizonBars == 1 }
    var version = PipelineVersion(
      label: label,
      version: self.settings.versionLabel(label, bundleID: final.bundle.bundleID),
      role: role,
      bundlePath: final.bundle.path,
      dataEnd: until,
      oofAUC: oof?.oofMetrics["auc"],
      bundleID: final.bundle.bundleID
    )
    guard final.hasVerdict, verdict.passed, verdict.blessed else {
      let why =
        final.hasVerdict
        ? "gates failed: \(verdict.failedGates.joined(separator: ", "))"
        : "the bundle was not evaluated"
      self.view.line("   \(label) \(final.bundle.bundleID): \(why); it is not deployed")
      version.outcome = "NOT BLESSED"
      version.reason = why
      self.summary.versions.append(version)
      return nil
    }
    self.view.line(
      "   \(label) = \(final.bundle.bundleID): passed '\(verdict.policyName)' (report \(verdict.reportID)), blessed; verdict beside the bundle"
    )
    for metrics in final.modelMetrics where metrics.horizonBars == 1 {
      for fold in metrics.folds {
        if let auc = fold.metrics["auc"] {
          self.summary.folds.append(
            .init(
              version: label,
              model: metrics.model,
              horizon: metrics.horizonBars,
              fold: fold.fold,
              auc: auc
            )
          )
        }
      }
    }
    self.summary.reports[label] = try await pipelineCall(stageName, .gatekeeper, "GetReport") {
      try await self.clients.gatekeeper.getReport(
        .with { $0.reportID = verdict.reportID },
        options: self.clients.options
      )
    }
    if let request = try await BlockingPool.shared.run({
      try Self.calibrationRequest(bundlePath: final.bundle.path)
    }) {
      self.summary.calibrations[label] = try await pipelineCall(stageName, .gatekeeper, "Calibrate")
      {
        try await self.clients.gatekeeper.calibrate(request, options: self.clients.options)
      }
    }
    self.summary.versions.append(version)
    return self.summary.versions.count - 1
  }

  /// A Calibrate request for a bundle's served model's raw out-of-fold predictions, with the
  /// bundle's own calibration method, cross-fitted over its folds (nil: the bundle has no
  /// calibration or no out-of-fold file).
  static func calibrationRequest(bundlePath: String) throws -> Vane_V1_CalibrateRequest? {
    let bundle = try ModelBundle.open(path: bundlePath)
    guard let stored = bundle.manifest.calibration,
      let method = CalibrationMethod(rawValue: stored.method), method != .none,
      bundle.manifest.outOfFold != nil
    else { return nil }
    let oof = try bundle.outOfFold()
    guard let output = oof.models[oof.final] else { return nil }
    return .with {
      $0.predictions = .with {
        $0.sampleCount = UInt32(oof.labels.count)
        $0.classes = bundle.manifest.task.classes
        $0.values = output.values
        $0.valuesAreLogits = output.valuesAreLogits
        $0.labels = oof.labels.map(Int32.init)
        $0.foldIds = oof.foldIds.map(Int32.init)
      }
      $0.method = Vane_V1_CalibrationMethod(method)
      $0.crossFit = true
    }
  }

  /// Evaluates the first bundle under the seed's `default` policy too (nothing is stored) and
  /// says plainly which of its gates fail and why.
  func explainDefaultPolicy(_ index: Int) async throws {
    let path = self.summary.versions[index].bundlePath
    let report = try await pipelineCall("gates under 'default'", .gatekeeper, "Evaluate") {
      try await self.clients.gatekeeper.evaluate(
        .with {
          $0.bundle = .with { $0.path = path }
          $0.policyName = "default"
          $0.dryRun = true
        },
        options: self.clients.options
      )
    }
    let failed = report.gates.filter { !$0.passed && !$0.skipped }
    if failed.isEmpty {
      self.view.line("== gates: the same bundle also passes the 'default' policy")
      return
    }
    self.view.line(
      "== gates: under the 'default' policy this bundle would not ship (\(failed.count) of \(report.gates.count) gates fail):"
    )
    for gate in failed {
      let line = "\(gate.gate): \(gate.reason)"
      self.summary.defaultPolicyFailures.append(line)
      self.view.line("   \(line)")
    }
    self.view.line(
      "   'default' asks more AUC than hourly direction models reach; '\(PipelineDefaults.policyName)' keeps its calibration and sanity gates"
    )
  }

  // MARK: Deploy

  func plan(_ yaml: String, source: String) throws -> Vane_V1_RolloutPlan {
    Vane_V1_RolloutPlan(try RolloutPlan.parse(yaml, source: source))
  }

  func deployFirst(_ index: Int) async throws {
    let version = self.summary.versions[index]
    self.view.line(
      "== deploy \(version.label): no version serves \(self.settings.modelID) yet, so it goes to FULL once loaded and is promoted after \(self.settings.firstMinRequests) live answers"
    )
    let plan = try self.plan(
      PipelineDefaults.firstPlanYAML(minRequests: self.settings.firstMinRequests),
      source: "first plan"
    )
    let rollout = try await self.deploy(index, plan: plan, blessing: nil)
    // Advanced to the cut, the rollout stages and loads the version (in that call) and goes
    // to FULL: the replay starts once it takes traffic.
    try await self.advanceRollout(to: self.market.cut)
    guard let current = self.lastRollout, current.id == rollout else { return }
    if [.failed, .rolledBack, .aborted].contains(current.state) {
      throw PipelineError(
        kind: .failed,
        stage: "deploy v1",
        message:
          "rollout \(rollout) ended \(RolloutText.state(current.state)): \(current.failureReason)"
      )
    }
    guard current.trafficPercent >= 100 || current.state == .promoted else {
      throw PipelineError(
        kind: .failed,
        stage: "deploy v1",
        message: "rollout \(rollout) did not take traffic (\(RolloutText.state(current.state)))"
      )
    }
  }

  /// Starts a rollout of version `index`. - Returns: its id.
  func deploy(
    _ index: Int,
    plan: Vane_V1_RolloutPlan,
    blessing: Vane_V1_Verdict?
  ) async throws -> String {
    let version = self.summary.versions[index]
    // A bundle's blessing is the verdict file beside it (the trainer's), or the one given.
    var verdict = blessing
    if verdict == nil,
      let data = FileManager.default.contents(
        atPath: ModelBundle.verdictPath(for: version.bundlePath)
      )
    {
      verdict = try? Vane_V1_Verdict(jsonUTF8Data: data)
    }
    var request = Vane_V1_DeployRequest.with {
      $0.bundlePath = version.bundlePath
      if let verdict { $0.blessing = verdict }
      $0.modelID = self.settings.modelID
      $0.version = version.version
      $0.plan = plan
    }
    let rollout = try await pipelineCall(self.stage.current, .deploy, "Deploy") {
      do {
        return try await self.clients.deploy.deploy(
          request,
          metadata: self.clients.metadata,
          options: self.clients.options
        )
      } catch let error as RPCError where error.code == .notFound {
        // The deploy host does not see this file (another machine, or a container without the
        // trainer's volume): stream it there, as `vane deploy` does.
        request.bundlePath = try await DeployCommand.upload(
          version.bundlePath,
          client: self.clients.deploy,
          metadata: self.clients.metadata
        )
        return try await self.clients.deploy.deploy(
          request,
          metadata: self.clients.metadata,
          options: self.clients.options
        )
      }
    }
    self.view.line(
      "   rollout \(rollout.id): \(version.label) \(version.version)\(rollout.baseline.version.isEmpty ? "" : " against \(self.label(of: rollout.baseline.version))")"
    )
    self.active = (rollout.id, index, 0)
    self.stage.rolloutStarted(rollout.id)
    return rollout.id
  }

  func label(of version: String) -> String {
    self.summary.versions.first { $0.version == version }?.label ?? version
  }

  /// Prints the rollout's events not printed yet (analyses only when they fail).
  func printEvents(_ rollout: Vane_V1_Rollout) {
    guard var active = self.active, active.id == rollout.id else { return }
    for event in rollout.history where event.sequence > active.sequence {
      active.sequence = event.sequence
      if event.kind == .analysis { self.lastAnalysis = Self.analysisText(event) }
      if event.kind == .analysis, event.analysis.passed || event.analysis.inconclusive { continue }
      let text = RolloutText.line(event)
      self.view.line("   \(self.summary.versions[active.version].label) \(text)")
      self.summary.events.append(
        .init(bar: self.lastBar, version: self.summary.versions[active.version].label, text: text)
      )
    }
    self.active = active
  }

  /// An analysis as the panel shows it: its verdict and the reason.
  static func analysisText(_ event: Vane_V1_RolloutEvent) -> String {
    let verdict =
      event.analysis.passed ? "passed" : event.analysis.inconclusive ? "inconclusive" : "failed"
    return event.reason.isEmpty ? verdict : "\(verdict): \(event.reason)"
  }

  /// Moves the active rollout's data clock to `now` (Unix ms) and follows what it did.
  func advanceRollout(to now: Int64) async throws {
    guard let active = self.active else { return }
    let rollout = try await pipelineCall(self.stage.current, .deploy, "AdvanceRollout") {
      try await self.clients.deploy.advanceRollout(
        .with {
          $0.rolloutID = active.id
          $0.now = PipelineTime.timestamp(now)
        },
        metadata: self.clients.metadata,
        options: self.clients.options
      )
    }
    self.follow(rollout)
  }

  /// Takes the active rollout as deploy returned it: prints its new events; when it has ended,
  /// records its outcome and makes the promoted version the serving one.
  func follow(_ rollout: Vane_V1_Rollout) {
    guard let active = self.active, active.id == rollout.id else { return }
    self.lastRollout = rollout
    self.printEvents(rollout)
    self.activeState = rollout.state
    self.activeShare =
      [.canary, .full, .promoted].contains(rollout.state) ? rollout.trafficPercent : 0
    switch rollout.state {
    case .promoted:
      self.summary.versions[active.version].outcome = "PROMOTED"
      if let serving = self.serving, serving != active.version {
        self.summary.versions[serving].outcome = "replaced"
      }
      self.serving = active.version
      self.active = nil
      self.stage.rolloutEnded()
      self.view.line(
        "   \(self.summary.versions[active.version].label) is promoted: it serves all traffic"
      )
    case .rolledBack, .failed, .aborted:
      self.summary.versions[active.version].outcome = RolloutText.state(rollout.state)
      self.summary.versions[active.version].reason = rollout.failureReason
      self.active = nil
      self.stage.rolloutEnded()
      self.view.line(
        "   \(self.summary.versions[active.version].label) \(RolloutText.state(rollout.state)): \(rollout.failureReason)"
      )
    default:
      break
    }
  }
}
