import GRPCCore
import SwiftProtobuf
import VaneBundle
import VaneCore
import VaneFeatures
import VaneModels
import VaneProto
import VaneRuntime
internal import Foundation

extension PipelineRun {
  /// Replays the live bars: each is ingested, predicted, the predictor settled and the active
  /// rollout advanced to the bar's close; every `checkEvery` bars the live metrics are read and
  /// the retraining triggers checked. Nothing waits on the wall clock, so the same candles
  /// give the same run at any speed.
  func replay() async throws {
    let times = self.market.liveTimes
    self.view.line(
      "== replay: \(times.count) live bars from \(PipelineTime.text(times.first!)) at \(self.settings.speed > 0 ? String(format: "%g bars/s", self.settings.speed) : "full speed"); each is ingested, then predicted"
    )
    let start = ContinuousClock.now
    for (i, time) in times.enumerated() {
      if self.settings.speed > 0 {
        let due = start + .milliseconds(Int64(Double(i) / self.settings.speed * 1000))
        if due > ContinuousClock.now { try await Task.sleep(until: due) }
      }
      try Task.checkCancellation()
      try await self.ingestBar(time)
      self.lastBar = time
      try await self.predict(time)
      self.summary.bars = i + 1
      try await self.settle(closing: time)
      self.recordTraffic(at: time)
      let checking = (i + 1) % self.settings.checkEvery == 0 || i == times.count - 1
      if checking {
        try await self.settlePredictor()
        try await self.refreshStats(window: .seconds(7 * 24 * 3600))
      }
      self.view.update(
        self.panel(
          bar: time,
          index: i,
          of: times.count,
          barsPerSecond: Double(i + 1) / max(PipelineTime.seconds(since: start), 1e-3)
        ).lines(),
        force: checking
      )
      if checking {
        if !self.view.live { self.printStatus(bar: time, index: i, of: times.count) }
        if self.active == nil { try await self.nextMove(at: time, index: i, of: times.count) }
        if self.settings.stopWhenDone, self.active == nil,
          self.retrains >= self.settings.maxRetrains,
          self.injected || !self.settings.injectBadModel
        {
          self.view.line(
            "   every stage has run: the replay stops here (\(times.count - i - 1) live bars left)"
          )
          break
        }
      }
    }
    try await self.finishActiveRollout()
  }

  /// What to do between rollouts: retrain when a trigger fires, else inject the bad candidate
  /// once the retrained version's rollout is over (or half the replay has gone by without one).
  func nextMove(at time: Int64, index: Int, of count: Int) async throws {
    guard let serving = self.serving else { return }
    if self.retrains < self.settings.maxRetrains,
      let reason = self.retrainReason(at: time, serving: serving)
    {
      self.retrains += 1
      // Training draws its own progress bar: the panel comes back with the next bar.
      self.view.clear()
      self.summary.retrainReasons.append("\(PipelineTime.text(time)): \(reason)")
      self.view.line("== retrain: \(reason)")
      let label = "v\(self.summary.versions.count + 1)"
      let previous = self.stage.current
      let index = try await self.timed("retrain \(label)") {
        try await self.train(until: time + self.barMs, label: label, role: "retrained")
      }
      if let index {
        try await self.timed("deploy \(label)") {
          self.view.line(
            "== deploy \(label): shadow, then a 25 % canary paced by matured outcomes, then full"
          )
          _ = try await self.deploy(index, plan: try self.rolloutPlan(), blessing: nil)
        }
      }
      self.stage.enter(previous)
      return
    }
    let retrainedOver = self.summary.versions.contains {
      $0.role == "retrained" && $0.outcome != "-"
    }
    if self.settings.injectBadModel, !self.injected,
      retrainedOver || self.retrains >= self.settings.maxRetrains || index >= count / 2
    {
      self.injected = true
      let previous = self.stage.current
      try await self.timed("inject bad model") { try await self.injectBadModel(from: serving) }
      self.stage.enter(previous)
    }
  }

  func rolloutPlan() throws -> Vane_V1_RolloutPlan {
    try self.plan(
      PipelineDefaults.rolloutPlanYAML(
        minRequests: self.settings.rolloutMinRequests,
        minMatured: self.settings.rolloutMinMatured
      ),
      source: "rollout plan"
    )
  }

  /// Why the serving version should be retrained now, if it should.
  func retrainReason(at time: Int64, serving: Int) -> String? {
    let version = self.summary.versions[serving]
    let ageBars = (time + self.barMs - version.dataEnd) / self.barMs
    if ageBars > Int64(self.settings.maxModelAgeBars) {
      return
        "\(version.label)'s training data ended \(ageBars) bars ago (limit \(self.settings.maxModelAgeBars))"
    }
    guard let stats = self.lastStats[version.version],
      let h1 = stats.horizons.first(where: { $0.horizonBars == 1 })
    else { return nil }
    if h1.predictions >= 96, h1.hasScorePsi, h1.scorePsi > self.settings.maxScorePSI {
      return String(
        format:
          "%@'s live score PSI %.3f > %.3f: its scores no longer look like its out-of-fold ones",
        version.label,
        h1.scorePsi,
        self.settings.maxScorePSI
      )
    }
    if h1.predictions >= 96, let drift = stats.inputDrift.max(by: { $0.psi < $1.psi }),
      drift.psi > self.settings.maxInputPSI
    {
      return String(
        format: "%@'s input %@ drifted: PSI %.3f > %.3f",
        version.label,
        drift.column,
        drift.psi,
        self.settings.maxInputPSI
      )
    }
    if h1.matured >= 96, h1.hasLogLoss, h1.logLoss > self.settings.maxLogLoss {
      return String(
        format: "%@'s live log loss %.4f > %.4f on %lld matured answers",
        version.label,
        h1.logLoss,
        self.settings.maxLogLoss,
        h1.matured
      )
    }
    return nil
  }

  /// Predicts bar `time` of the model's symbol from the feature service's stored candles.
  func predict(_ time: Int64) async throws {
    self.summary.predictions += 1
    let started = ContinuousClock.now
    defer { self.summary.predictLatencies.append(PipelineTime.seconds(since: started) * 1000) }
    do {
      _ = try await self.clients.predictor.predict(
        .with {
          $0.model = .with { $0.modelID = self.settings.modelID }
          $0.market = .with {
            $0.market = .with {
              $0.symbol = PipelineDefaults.symbol
              $0.interval = .interval1H
            }
            $0.bar = .with { $0.asOf = PipelineTime.timestamp(time) }
          }
          $0.requestID = "pipeline-\(time)"
          // The split routes each bar by its key, not by chance: the same bars reach the same
          // version in every run.
          $0.routingKey = "pipeline-\(time)"
        },
        options: self.clients.options
      )
    } catch let error as RPCError {
      // A failed answer is counted, not fatal: the rollout analysis sees it as an error.
      self.summary.failedPredictions += 1
      if self.summary.firstFailure.isEmpty {
        self.summary.firstFailure = "\(PipelineTime.text(time)): \(error.code): \(error.message)"
        self.view.line(
          "   Predict failed at \(PipelineTime.text(time)): \(error.code): \(error.message)"
        )
      }
    }
  }

  /// Reads GetModelStats for the model (a trailing window over bar time, or the default 30
  /// days) and keeps each version's live figures.
  func refreshStats(window: Duration?) async throws {
    let response = try await pipelineCall(self.stage.current, .predictor, "GetModelStats") {
      try await self.clients.predictor.getModelStats(
        .with {
          $0.model = .with { $0.modelID = self.settings.modelID }
          if let window { $0.window = Google_Protobuf_Duration(seconds: window.components.seconds) }
        },
        options: self.clients.options
      )
    }
    for stats in response.versions {
      self.lastStats[stats.ref.version] = stats
      if window != nil,
        let label = self.summary.versions.first(where: { $0.version == stats.ref.version })?.label,
        let h1 = stats.horizons.first(where: { $0.horizonBars == 1 })
      {
        self.summary.live.append(
          .init(
            bar: self.lastBar,
            version: label,
            auc: h1.hasAuc ? h1.auc : nil,
            logLoss: h1.hasLogLoss ? h1.logLoss : nil,
            matured: h1.matured
          )
        )
      }
      guard
        let index = self.summary.versions.firstIndex(where: { $0.version == stats.ref.version }),
        let h1 = stats.horizons.first(where: { $0.horizonBars == 1 })
      else { continue }
      if window == nil {
        self.summary.versions[index].predictions = h1.predictions
        self.summary.versions[index].matured = h1.matured
        if h1.hasAuc { self.summary.versions[index].liveAUC = h1.auc }
        if h1.hasLogLoss { self.summary.versions[index].liveLogLoss = h1.logLoss }
      }
    }
  }

  /// Traffic shares after bar `time`: the serving version's and the one rolling out.
  func recordTraffic(at time: Int64) {
    var shares: [String: Double] = [:]
    let active = self.active.map { self.summary.versions[$0.version].label }
    if let serving = self.serving {
      shares[self.summary.versions[serving].label] = 100 - (active == nil ? 0 : self.activeShare)
    }
    if let active, self.activeShare > 0 { shares[active] = self.activeShare }
    self.summary.traffic.append(.init(bar: time, shares: shares))
  }

  /// Each version's server-side latency percentiles from the predictor's counters.
  func readServerLatencies() async throws {
    let response = try await pipelineCall(self.stage.current, .predictor, "ListModels") {
      try await self.clients.predictor.listModels(
        .with { $0.modelID = self.settings.modelID },
        options: self.clients.options
      )
    }
    for model in response.versions {
      guard
        let label = self.summary.versions.first(where: { $0.version == model.ref.version })?.label
      else { continue }
      func ms(_ d: Google_Protobuf_Duration) -> Double {
        Double(d.seconds) * 1000 + Double(d.nanos) / 1e6
      }
      self.summary.serverLatencies[label] = (
        ms(model.counters.latencyP50), ms(model.counters.latencyP99)
      )
    }
  }

  /// The live panel's contents now.
  func panel(bar time: Int64, index: Int, of count: Int, barsPerSecond: Double?) -> PipelinePanel {
    let versions = self.summary.versions.enumerated().map { (i, version) -> PipelinePanel.Version in
      let h1 = self.lastStats[version.version]?.horizons.first { $0.horizonBars == 1 }
      var state: String
      if i == self.serving {
        state = String(format: "serving %g%%", 100 - self.activeShare)
      } else if let active = self.active, active.version == i {
        switch self.activeState {
        case .shadow: state = "shadow"
        case .canary: state = String(format: "canary %g%%", self.activeShare)
        case .full, .promoted: state = String(format: "serving %g%%", self.activeShare)
        case .paused: state = "paused"
        case .rollingBack: state = "rolling back"
        default: state = "loading"
        }
      } else {
        state =
          version.outcome == "-"
          ? "" : version.outcome.lowercased().replacingOccurrences(of: "_", with: " ")
      }
      return PipelinePanel.Version(
        label: version.label,
        role: version.role,
        oofAUC: version.oofAUC,
        liveAUC: h1.flatMap { $0.hasAuc ? $0.auc : nil },
        matured: h1?.matured ?? 0,
        answers: h1?.predictions ?? 0,
        state: state
      )
    }
    let rollout = self.active.map { active in
      (
        label: self.summary.versions[active.version].label,
        state: RolloutText.state(self.activeState), analysis: self.lastAnalysis
      )
    }
    return PipelinePanel(
      stage: "replay",
      bar: index + 1,
      bars: count,
      barTime: PipelineTime.text(time),
      barsPerSecond: barsPerSecond,
      versions: versions,
      rollout: rollout,
      failedPredictions: self.summary.failedPredictions
    )
  }

  func printStatus(bar time: Int64, index: Int, of count: Int) {
    var parts = ["   \(PipelineTime.text(time))  bar \(index + 1)/\(count)"]
    if let serving = self.serving {
      let version = self.summary.versions[serving]
      var text = "serving \(version.label)"
      if let active = self.active {
        text += " + \(self.summary.versions[active.version].label) rolling out"
      }
      parts.append(text)
      if let stats = self.lastStats[version.version],
        let h1 = stats.horizons.first(where: { $0.horizonBars == 1 })
      {
        let live = h1.hasAuc ? String(format: "%.3f", h1.auc) : "-"
        let oof = version.oofAUC.map { String(format: "%.3f", $0) } ?? "-"
        parts.append(
          "h1 live AUC \(live) (OOF \(oof)) on \(h1.matured) matured of \(h1.predictions), last 7 days"
        )
        if h1.hasScorePsi { parts.append(String(format: "score PSI %.3f", h1.scorePsi)) }
      }
    }
    if self.summary.failedPredictions > 0 {
      parts.append("failed \(self.summary.failedPredictions)")
    }
    self.view.line(parts.joined(separator: "  "))
  }

  /// After bar `time` was answered, the active rollout's clock moves to the bar's close: its
  /// analysis, when due, settles the predictor first, and its transitions happen in that call.
  func settle(closing time: Int64) async throws {
    try await self.advanceRollout(to: time + self.barMs)
  }

  /// Lets the predictor finish what the bars so far queued (shadow copies, log writes, the
  /// outcomes due), so the live metrics read next are the same in every run.
  func settlePredictor() async throws {
    _ = try await pipelineCall(self.stage.current, .predictor, "Settle") {
      try await self.clients.predictor.settle(
        Vane_V1_SettleRequest(),
        metadata: self.clients.metadata,
        options: self.clients.options
      )
    }
  }

  /// When the replay ends with a rollout still in a step, it is rolled back (with the reason),
  /// so nothing is left half-way.
  func finishActiveRollout() async throws {
    guard let active = self.active else { return }
    self.view.line("   the replay ended with rollout \(active.id) unfinished: rolling it back")
    let rollout = try await pipelineCall(self.stage.current, .deploy, "Rollback") {
      try await self.clients.deploy.rollback(
        .with {
          $0.rolloutID = active.id
          $0.reason = "the pipeline's replay ended before the rollout finished"
        },
        metadata: self.clients.metadata,
        options: self.clients.options
      )
    }
    self.follow(rollout)
  }

  // MARK: The bad candidate

  /// Builds a candidate from the serving bundle with its stack's meta-model inverted (as a sign
  /// error in an export would), keeping the out-of-fold report the gates read, so it passes
  /// them and is properly blessed; only the live analysis can tell. It must roll back.
  func injectBadModel(from serving: Int) async throws {
    let source = self.summary.versions[serving]
    let label = "v\(self.summary.versions.count + 1)"
    self.view.line(
      "== inject: \(label) = \(source.label) with its stack inverted (its out-of-fold report, which the gates read, is the good one's)"
    )
    let path = try await BlockingPool.shared.run { [settings = self.settings] in
      try BadCandidate.write(from: source.bundlePath, into: settings.bundleDirectory)
    }
    let bundle = try ModelBundle.open(path: path)
    let report = try await pipelineCall("inject bad model", .gatekeeper, "Evaluate") {
      try await self.clients.gatekeeper.evaluate(
        .with {
          $0.bundle = .with { $0.path = path }
          $0.policyName = PipelineDefaults.policyName
        },
        options: self.clients.options
      )
    }
    guard report.passed else {
      throw PipelineError(
        kind: .failed,
        stage: "inject bad model",
        message:
          "the inverted candidate did not pass '\(PipelineDefaults.policyName)' (it should: its report is the good one's)"
      )
    }
    let verdict = try await pipelineCall("inject bad model", .gatekeeper, "Bless") {
      try await self.clients.gatekeeper.bless(
        .with {
          $0.bundlePath = path
          $0.reportID = report.id
        },
        metadata: self.clients.metadata,
        options: self.clients.options
      )
    }
    self.view.line(
      "   \(label) = \(bundle.manifest.id): passed '\(PipelineDefaults.policyName)', blessed (key \(verdict.publicKeyID)); deploying it"
    )
    self.summary.versions.append(
      PipelineVersion(
        label: label,
        version: self.settings.versionLabel(label, bundleID: bundle.manifest.id),
        role: "inverted",
        bundlePath: path,
        dataEnd: source.dataEnd,
        oofAUC: source.oofAUC,
        bundleID: bundle.manifest.id
      )
    )
    _ = try await self.deploy(
      self.summary.versions.count - 1,
      plan: try self.rolloutPlan(),
      blessing: verdict
    )
  }
}

/// A bundle whose served model is the opposite of its source's: for the pipeline's fault drill.
enum BadCandidate {
  /// Writes `<directory>/<id>-inverted.tar.gz`: the stack meta-models' weights and intercepts
  /// negated (so the served probability of UP becomes that of DOWN), everything else as it was.
  /// - Returns: the path written.
  static func write(from path: String, into directory: String) throws -> String {
    let bundle = try ModelBundle.open(path: path)
    var manifest = bundle.manifest
    var files: [String: Data] = [:]
    for file in manifest.files { files[file.path] = try bundle.data(file.path) }
    var inverted = 0
    for model in manifest.models where model.role == .meta {
      var stack = try BundleJSON.decode(
        BundleStackFile<FeatureScaler, LogisticRegression>.self,
        from: try bundle.data(model.file),
        file: model.file
      )
      stack.model.weights = stack.model.weights.map { -$0 }
      stack.model.intercepts = stack.model.intercepts.map { -$0 }
      files[model.file] = try BundleJSON.encoder().encode(stack)
      inverted += 1
    }
    guard inverted > 0 else {
      throw VaneError(.failedPrecondition, "bundle \(manifest.id) has no stack to invert")
    }
    manifest.id += "-inverted"
    manifest.provenance["fault_injection"] =
      "vane pipeline: stack meta-model weights negated from \(bundle.manifest.id)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let target = directory + "/\(manifest.id).tar.gz"
    try ModelBundle.write(manifest, files: files, to: target)
    return target
  }
}
