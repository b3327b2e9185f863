public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import Foundation
internal import VaneBundle
internal import VaneCore
internal import VaneQuality

/// The gatekeeper service: metrics, probability calibration, quality gates and signed verdicts.
///
/// A thin adapter from the generated service protocol to VaneQuality (metrics, calibration,
/// policies, reports, verdicts) and VaneBundle (reading a bundle's manifest and out-of-fold
/// predictions). State lives in `gatekeeper.sqlite` and the signing key in `blessing.key`
/// (public half `blessing.pub`), both in the data directory; extra trusted public keys (an
/// earlier key, after a rotation) are read from `trusted_keys/*.pub`.
public struct GatekeeperServiceImplementation: Vane_V1_GatekeeperService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = [
    "GetServiceInfo", "Calibrate", "Evaluate", "Bless", "VerifyBlessing", "GetPolicy", "SetPolicy",
    "ListPolicies", "ListReports",
    "GetReport",
  ]

  let runtime: RuntimeInfo
  let store: QualityStore
  let key: BlessingKey
  let trustedKeys: [Data]
  /// Where bundle paths may point.
  let bundleRoots: BundleRoots

  /// Opens the store and loads (or, on first start, makes) the signing key.
  /// - Throws: UNAVAILABLE or FAILED_PRECONDITION when the data directory or key is unusable.
  /// - Parameter bundleRoots: where bundle paths may point (nil: the data directory and the
  ///   trainer's beside it, as `vane stack` and compose lay them out).
  public init(runtime: RuntimeInfo, bundleRoots: [String]? = nil) throws {
    self.runtime = runtime
    let directory = URL(fileURLWithPath: runtime.dataDirectory)
    self.bundleRoots = BundleRoots(
      bundleRoots ?? [
        directory.path,
        directory.deletingLastPathComponent().appendingPathComponent("trainer").path,
      ]
    )
    self.store = try QualityStore(
      path: directory.appendingPathComponent("gatekeeper.sqlite").path,
      now: Self.nowMs()
    )
    self.key = try BlessingKey.loadOrCreate(in: runtime.dataDirectory)
    let extra = directory.appendingPathComponent("trusted_keys")
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: extra.path)) ?? []).filter {
      $0.hasSuffix(".pub")
    }.sorted()
    self.trustedKeys =
      [self.key.publicKey]
      + (try files.map {
        try BlessingKey.publicKey(fromFile: extra.appendingPathComponent($0).path)
      })
  }

  static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

  public func getServiceInfo(
    request: Vane_V1_GetServiceInfoRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ServiceInfo {
    try self.runtime.serviceInfo(implemented: Self.implemented)
  }

  public func calibrate(
    request: Vane_V1_CalibrateRequest,
    context: ServerContext
  ) async throws -> Vane_V1_CalibrateResponse {
    try await serviceEdge { try await BlockingPool.shared.run { try Self.calibrate(request) } }
  }

  /// Calibrate's work, on the blocking pool.
  static func calibrate(_ request: Vane_V1_CalibrateRequest) throws -> Vane_V1_CalibrateResponse {
    guard request.hasPredictions else {
      throw VaneError.invalidArgument(field: "predictions", "is required")
    }
    let (predictions, classes, foldIDs) = try request.predictions.decoded(path: "predictions")
    let method = try request.method.decoded(field: "method")
    let bins = try Self.bins(request.bins)
    let before = Measurement(predictions, classes: classes, bins: bins)
    guard predictions.count == predictions.finiteOnly.count else {
      throw VaneError.invalidArgument(
        field: "predictions.values",
        "\(Int(before.values["non_finite"] ?? 0)) samples have NaN or infinite values; calibration needs finite predictions"
      )
    }
    var response = Vane_V1_CalibrateResponse()
    let calibration: Calibration
    if method == .auto {
      let choice = try Calibrator.choose(predictions)
      calibration = choice.chosen
      response.candidates = Calibrator.candidates(predictions).map { candidate in
        .with {
          $0.method = .init(candidate)
          $0.metrics =
            Measurement(choice.crossValidated[candidate]!, classes: classes, bins: bins).values
          $0.selected = candidate == calibration.method
        }
      }
    } else {
      calibration = try Calibrator.fit(method, predictions)
    }
    let after: Predictions
    if request.crossFit {
      // Fold ids as given, else 5 contiguous blocks (time order is kept: no fold sees its
      // neighbours' future).
      let folds =
        foldIDs.isEmpty ? (0 ..< predictions.count).map { $0 * 5 / predictions.count } : foldIDs
      after = try Calibrator.crossFitted(calibration.method, predictions, folds: folds)
    } else {
      after = calibration.apply(predictions)
    }
    let measuredAfter = Measurement(after, classes: classes, bins: bins)
    response.calibration = .init(
      calibration,
      classes: classes,
      sampleCount: predictions.count,
      fitMs: Self.nowMs()
    )
    response.metricsBefore = before.values
    response.metricsAfter = measuredAfter.values
    response.afterIsCrossFitted = request.crossFit
    response.reliabilityBefore = before.reliability.map(Vane_V1_ReliabilityDiagram.init)
    response.reliabilityAfter = measuredAfter.reliability.map(Vane_V1_ReliabilityDiagram.init)
    return response
  }

  static func bins(_ requested: UInt32) throws -> Int {
    guard requested <= 1000 else {
      throw VaneError.invalidArgument(field: "bins", "must be at most 1000 (got \(requested))")
    }
    return requested == 0 ? 15 : Int(requested)
  }

  public func evaluate(
    request: Vane_V1_EvaluateRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Report {
    try await serviceEdge {
      // Every store read and write runs on the blocking pool: SQLite must not hold one of the
      // cooperative pool's few threads.
      let policy = try await BlockingPool.shared.run {
        try self.store.policy(named: request.policyName)
      }
      let bins = try Self.bins(request.bins)
      var judgement: Judgement
      switch request.subject {
      case .inline(let inline):
        guard inline.hasPredictions else {
          throw VaneError.invalidArgument(field: "inline.predictions", "is required")
        }
        let (predictions, classes, folds) = try inline.predictions.decoded(
          path: "inline.predictions"
        )
        if !inline.interval.isEmpty, !["15m", "1h", "4h", "1d"].contains(inline.interval) {
          throw VaneError.invalidArgument(
            field: "inline.interval",
            "'\(inline.interval)' is not one of 15m, 1h, 4h, 1d"
          )
        }
        judgement = Judgement(
          predictions: predictions,
          classes: classes,
          foldIDs: folds,
          subject: .init(
            kind: .inline,
            manifestSHA256: inline.manifestSha256,
            label: inline.label,
            interval: inline.interval.isEmpty ? nil : inline.interval
          ),
          inputs: try inline.inputs.decoded(path: "inline.inputs"),
          bins: bins
        )
        if inline.hasBaseline {
          let (baseline, baselineClasses, _) = try inline.baseline.decoded(path: "inline.baseline")
          guard baselineClasses == classes else {
            throw VaneError.invalidArgument(
              field: "inline.baseline.classes",
              "\(baselineClasses) differ from the candidate's \(classes)"
            )
          }
          judgement.baseline = .paired(baseline)
        }
      case .bundle(let subject):
        judgement = try await BlockingPool.shared.run { [self] in
          try self.bundleJudgement(path: subject.path, bins: bins)
        }
      case nil:
        throw VaneError.invalidArgument(field: "subject", "set inline or bundle")
      }
      if judgement.baseline == nil, !request.baselineReportID.isEmpty {
        let baseline = try await BlockingPool.shared.run {
          try self.store.report(id: request.baselineReportID)
        }
        guard baseline.subject.classes == judgement.classes else {
          throw VaneError.invalidArgument(
            field: "baseline_report_id",
            "report \(baseline.id) is over classes \(baseline.subject.classes), the subject over \(judgement.classes)"
          )
        }
        judgement.baseline = .report(id: baseline.id, metrics: baseline.metrics)
      }
      let input = judgement
      let report = try await BlockingPool.shared.run {
        try QualityReport.judge(
          input,
          policy: policy.policy,
          policySHA256: policy.sha256,
          at: Self.nowMs()
        )
      }
      if request.dryRun { return Vane_V1_Report(report) }
      return Vane_V1_Report(try await BlockingPool.shared.run { try self.store.store(report) })
    }
  }

  /// A bundle's out-of-fold predictions with its calibration applied, its base models' AUCs,
  /// interval and input summary.
  func bundleJudgement(path: String, bins: Int) throws -> Judgement {
    let resolved = try self.bundleRoots.check(path, field: "bundle.path")
    let bundle = try prefixed("bundle") { try ModelBundle.open(path: resolved) }
    let oof = try bundle.outOfFold()
    let classes = bundle.manifest.task.classes
    func predictions(_ model: String) throws -> Predictions {
      guard let output = oof.models[model] else {
        throw VaneError(
          .failedPrecondition,
          "bundle \(bundle.manifest.id): the out-of-fold file has no predictions of model '\(model)'"
        )
      }
      do {
        return try Predictions(
          values: output.values,
          classCount: classes.count,
          labels: oof.labels,
          valuesAreLogits: output.valuesAreLogits
        )
      } catch let error as VaneError {
        throw VaneError(
          .failedPrecondition,
          "bundle \(bundle.manifest.id): out-of-fold predictions of '\(model)': \(error.message)"
        )
      }
    }
    var judged = try predictions(oof.final)
    if let stored = bundle.manifest.calibration {
      let calibration: Calibration
      do {
        calibration = try Calibration(
          method: CalibrationMethod(rawValue: stored.method) ?? .auto,
          parametersJSON: stored.parameters,
          classCount: classes.count
        )
      } catch let error as VaneError {
        throw VaneError(
          .failedPrecondition,
          "bundle \(bundle.manifest.id): calibration: \(error.message)"
        )
      }
      // Non-finite rows stay as they are: the non_finite gate must still see them.
      let finite = (0 ..< judged.count).filter(judged.isFinite)
      if finite.count == judged.count {
        judged = calibration.apply(judged)
      } else {
        let calibrated = calibration.apply(judged.subset(finite))
        var values = judged.probabilities
        for (row, i) in finite.enumerated() {
          for c in 0 ..< classes.count {
            values[i * classes.count + c] = calibrated.probability(row, c)
          }
        }
        judged = try Predictions(
          probabilities: values,
          classCount: classes.count,
          labels: judged.labels,
          logits: judged.logits
        )
      }
    }
    var bases: [String: Double] = [:]
    for name in oof.models.keys.sorted() where name != oof.final {
      bases[name] =
        Measurement(try predictions(name), classes: classes, bins: bins).values["auc"] ?? .nan
    }
    return Judgement(
      predictions: judged,
      classes: classes,
      foldIDs: oof.foldIDs,
      subject: .init(
        kind: .bundle,
        manifestSHA256: bundle.manifestSHA256,
        bundleID: bundle.manifest.id,
        bundlePath: path,
        interval: bundle.manifest.interval
      ),
      baseAUCs: bases,
      inputs: oof.inputs.map { InputSummary(columns: $0.columns, mean: $0.mean, std: $0.std) },
      bins: bins
    )
  }

  /// Opens (reading and checking every file of) a bundle on the blocking pool.
  /// Opens a bundle under the bundle roots (anything else is PERMISSION_DENIED, unopened).
  func openBundle(_ path: String, field: String) async throws -> ModelBundle {
    let resolved = try self.bundleRoots.check(path, field: field)
    return try await BlockingPool.shared.run {
      try prefixed(field) { try ModelBundle.open(path: resolved) }
    }
  }

  public func bless(
    request: Vane_V1_BlessRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Verdict {
    try await serviceEdge {
      guard !request.reportID.isEmpty else {
        throw VaneError.invalidArgument(field: "report_id", "is required")
      }
      let report = try await BlockingPool.shared.run { try self.store.report(id: request.reportID) }
      guard report.passed else {
        throw VaneError(
          .failedPrecondition,
          "report \(report.id) did not pass policy \(report.policyName): failed gates \(report.failedGates.joined(separator: ", "))"
        )
      }
      let manifest: String
      var bundleID = report.subject.bundleID
      switch request.subject {
      case .bundlePath(let path):
        let bundle = try await self.openBundle(path, field: "bundle_path")
        manifest = bundle.manifestSHA256
        bundleID = bundle.manifest.id
      case .manifestSha256(let hash):
        guard hash.count == 64, hash.allSatisfy(\.isHexDigit) else {
          throw VaneError.invalidArgument(field: "manifest_sha256", "must be 64 hex digits")
        }
        manifest = hash.lowercased()
      case nil:
        throw VaneError.invalidArgument(field: "subject", "set bundle_path or manifest_sha256")
      }
      guard !report.subject.manifestSHA256.isEmpty else {
        throw VaneError(
          .failedPrecondition,
          "report \(report.id) names no bundle manifest: evaluate the bundle (or send manifest_sha256 with the predictions)"
        )
      }
      guard report.subject.manifestSHA256 == manifest else {
        throw VaneError(
          .failedPrecondition,
          "report \(report.id) judged manifest \(report.subject.manifestSHA256), not \(manifest): the bundle changed since"
        )
      }
      let now = Date().timeIntervalSince1970
      let verdict = try self.key.sign(
        manifestSHA256: manifest,
        bundleID: bundleID,
        reportID: report.id,
        policyName: report.policyName,
        policySHA256: report.policySHA256,
        signTimeNanos: Int64((now * 1e6).rounded(.down)) * 1000
      )
      try await BlockingPool.shared.run { try self.store.record(verdict) }
      return Vane_V1_Verdict(verdict)
    }
  }

  public func verifyBlessing(
    request: Vane_V1_VerifyBlessingRequest,
    context: ServerContext
  ) async throws -> Vane_V1_VerifyBlessingResponse {
    try await serviceEdge {
      guard request.hasVerdict else {
        throw VaneError.invalidArgument(field: "verdict", "is required")
      }
      var subject: String?
      switch request.subject {
      case .bundlePath(let path):
        subject = try await self.openBundle(path, field: "bundle_path").manifestSHA256
      case .manifestSha256(let hash): subject = hash.lowercased()
      case nil: break
      }
      var response = Vane_V1_VerifyBlessingResponse()
      response.subjectManifestSha256 = subject ?? ""
      if let (failure, message) = request.verdict.decoded.verify(
        trustedKeys: self.trustedKeys,
        manifestSHA256: subject
      ) {
        response.valid = false
        response.message = message
        switch failure {
        case .malformed: response.failure = .malformed
        case .unknownKey: response.failure = .unknownKey
        case .badSignature: response.failure = .badSignature
        case .statementMismatch: response.failure = .statementMismatch
        case .subjectMismatch: response.failure = .subjectMismatch
        }
      } else {
        response.valid = true
      }
      return response
    }
  }

  public func getPolicy(
    request: Vane_V1_GetPolicyRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Policy {
    try await serviceEdge {
      Vane_V1_Policy(
        try await BlockingPool.shared.run { try self.store.policy(named: request.name) }
      )
    }
  }

  public func setPolicy(
    request: Vane_V1_SetPolicyRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Policy {
    try await serviceEdge {
      let format: StoredPolicy.Format?
      switch request.format {
      case .unspecified: format = nil
      case .yaml: format = .yaml
      case .json: format = .json
      case .UNRECOGNIZED(let value):
        throw VaneError.invalidArgument(field: "format", "unknown format \(value)")
      }
      let now = Self.nowMs()
      let stored = try await BlockingPool.shared.run {
        try self.store.setPolicy(
          name: request.name,
          text: request.text,
          format: format,
          makeDefault: request.makeDefault,
          validateOnly: request.validateOnly,
          expectedSHA256: request.expectedSha256.isEmpty ? nil : request.expectedSha256,
          at: now
        )
      }
      return Vane_V1_Policy(stored)
    }
  }

  static func pageSize(_ page: Vane_V1_PageRequest) throws -> Int {
    guard page.pageSize >= 0 else {
      throw VaneError.invalidArgument(field: "page.page_size", "must not be negative")
    }
    return page.pageSize == 0 ? 50 : min(Int(page.pageSize), 1000)
  }

  public func listPolicies(
    request: Vane_V1_ListPoliciesRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListPoliciesResponse {
    try await serviceEdge {
      // Pages are by name: the token is the last name of the previous page.
      let limit = try Self.pageSize(request.page)
      let (policies, more) = try await BlockingPool.shared.run {
        try self.store.policies(
          after: request.page.pageToken.isEmpty ? nil : request.page.pageToken,
          limit: limit
        )
      }
      return .with {
        $0.policies = policies.map(Vane_V1_Policy.init)
        if more, let last = policies.last { $0.page.nextPageToken = last.name }
      }
    }
  }

  public func listReports(
    request: Vane_V1_ListReportsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListReportsResponse {
    try await serviceEdge {
      var filter = ReportFilter()
      if !request.manifestSha256.isEmpty {
        filter.manifestSHA256 = request.manifestSha256.lowercased()
      }
      if !request.policyName.isEmpty { filter.policyName = request.policyName }
      if request.hasPassed { filter.passed = request.passed }
      if request.hasCreated {
        let range = try request.created.milliseconds(field: "created")
        filter.createdFrom = range.start == .min ? nil : range.start
        filter.createdTo = range.end == .max ? nil : range.end
      }
      let limit = try Self.pageSize(request.page), chosen = filter
      let (reports, next) = try await BlockingPool.shared.run {
        try self.store.reports(
          chosen,
          limit: limit,
          pageToken: request.page.pageToken.isEmpty ? nil : request.page.pageToken
        )
      }
      return .with {
        $0.reports = reports.map { Vane_V1_Report($0, details: request.includeDetails) }
        if let next { $0.page.nextPageToken = next }
      }
    }
  }

  public func getReport(
    request: Vane_V1_GetReportRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Report {
    try await serviceEdge {
      guard !request.reportID.isEmpty else {
        throw VaneError.invalidArgument(field: "report_id", "is required")
      }
      return Vane_V1_Report(
        try await BlockingPool.shared.run { try self.store.report(id: request.reportID) }
      )
    }
  }
}
