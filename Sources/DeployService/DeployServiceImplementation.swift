public import GRPCCore
public import VaneProto
public import VaneRuntime
public import ServiceLifecycle
internal import Foundation
internal import SwiftProtobuf
internal import VaneBundle
internal import VaneCore
internal import VaneQuality
internal import VaneRollout

/// Where deploy finds the predictor and the feature service, and whom it trusts.
public struct DeployConfig: Sendable {
  /// PredictorService "host:port".
  public var predictorAddress: String
  /// FeatureService "host:port" (the bundle's feature set must be one it serves); nil: not checked.
  public var featureAddress: String?
  /// Directory of trusted `*.pub` keys (the gatekeeper's data directory works as it is).
  public var trustedKeysDirectory: String
  /// Deadline of each predictor call.
  public var callDeadline: Duration
  /// How often the controller looks at its rollouts.
  public var tick: Duration

  public init(
    predictorAddress: String,
    featureAddress: String?,
    trustedKeysDirectory: String,
    callDeadline: Duration = .seconds(10),
    tick: Duration = .milliseconds(250)
  ) {
    self.predictorAddress = predictorAddress
    self.featureAddress = featureAddress
    self.trustedKeysDirectory = trustedKeysDirectory
    self.callDeadline = callDeadline
    self.tick = tick
  }
}

/// The deploy service: blessed bundles verified, staged in a content-addressed artifact store
/// and rolled out in steps by ``RolloutController``, with automatic rollback.
///
/// A thin adapter from the generated service protocol to VaneRollout.
public struct DeployServiceImplementation: Vane_V1_DeployService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = [
    "GetServiceInfo", "Deploy", "GetRollout", "ListRollouts", "WatchRollout", "Promote", "Pause",
    "Resume", "Rollback", "UploadBundle",
    "AdvanceRollout",
  ]

  let runtime: RuntimeInfo
  let intake: BundleIntake
  let predictor: UpstreamClient
  let features: UpstreamClient?
  let port: GRPCPredictorPort
  let controller: RolloutController

  /// Opens deploy's store (`deploy.sqlite`); the trusted keys are read at each Deploy.
  /// - Throws: UNAVAILABLE for an unusable store; INVALID_ARGUMENT for a bad address.
  public init(runtime: RuntimeInfo, config: DeployConfig) throws {
    self.runtime = runtime
    let data = URL(fileURLWithPath: runtime.dataDirectory)
    self.intake = BundleIntake(
      trustedKeysDirectory: config.trustedKeysDirectory,
      artifactRoot: data.appendingPathComponent("artifacts").path
    )
    self.predictor = try UpstreamClient(address: config.predictorAddress, name: "predictor")
    self.features = try config.featureAddress.map {
      try UpstreamClient(address: $0, name: "feature service")
    }
    var metadata: Metadata = [:]
    if case .token(let token) = runtime.adminAuth {
      metadata.addString("Bearer \(token)", forKey: "authorization")
    }
    self.port = GRPCPredictorPort(
      client: self.predictor,
      deadline: config.callDeadline,
      adminMetadata: metadata
    )
    self.controller = try RolloutController(
      store: try RolloutStore(path: data.appendingPathComponent("deploy.sqlite").path),
      predictor: self.port,
      intake: self.intake,
      tick: config.tick
    )
  }

  /// What runs beside the server: the upstream connections, the controller and the
  /// predictor's health watch. A service group shuts its services down in reverse order, so
  /// users come after what they use: the watch's open stream ends before the predictor
  /// connection, which waits for its streams, is shut down.
  public var background: [any Service] {
    [self.predictor] + (self.features.map { [$0] } ?? []) + [
      self.controller, PredictorHealthWatch(client: self.predictor, controller: self.controller),
    ]
  }

  public func getServiceInfo(
    request: Vane_V1_GetServiceInfoRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ServiceInfo {
    try self.runtime.serviceInfo(implemented: Self.implemented)
  }

  static func actor(_ context: ServerContext) -> String { "admin@\(context.remotePeer)" }

  public func deploy(
    request: Vane_V1_DeployRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge { try await self.start(request, actor: Self.actor(context)) }
  }

  /// Verifies a Deploy request's bundle and blessing and hands the rollout to the controller.
  func start(_ request: Vane_V1_DeployRequest, actor: String) async throws -> Vane_V1_Rollout {
    guard !request.bundlePath.isEmpty else {
      throw VaneError.invalidArgument(field: "bundle_path", "is required")
    }
    let plan = try RolloutPlan(request.plan, field: "plan")
    var verdict: Verdict? = request.hasBlessing ? request.blessing.decoded : nil
    if verdict == nil {
      verdict = try BundleIntake.verdictFile(for: request.bundlePath) { data in
        try Vane_V1_Verdict(jsonUTF8Data: data).decoded
      }
    }
    let featureCheck: ((String) async throws -> Bool)? =
      self.features == nil ? nil : { hash in try await self.featureSetServed(hash) }
    let bundle = try await self.intake.verify(
      path: request.bundlePath,
      verdict: verdict,
      featureSetKnown: featureCheck
    )
    let manifest = bundle.manifest
    let modelID =
      request.modelID.isEmpty
      ? (manifest.symbols.joined(separator: "+") + "_" + manifest.interval) : request.modelID
    let version = request.version.isEmpty ? manifest.id : request.version
    // Store reads run on the blocking pool, not on the cooperative pool's few threads.
    let store = self.controller.store
    if !request.requestID.isEmpty,
      let earlier = try await BlockingPool.shared.run({
        try store.rollout(requestID: request.requestID)
      })
    {
      // The same request again is the same rollout; another request under its key is refused.
      guard earlier.manifestSHA256 == bundle.manifestSHA256, earlier.modelID == modelID,
        earlier.version == version
      else {
        throw VaneError(
          .alreadyExists,
          "request_id \(request.requestID) was used for rollout \(earlier.id) of \(earlier.modelID)/\(earlier.version) (bundle \(earlier.bundleID))"
        )
      }
      return Vane_V1_Rollout(earlier)
    }
    // The incumbent: the version serving most of the model's traffic now.
    let listed: [PredictorVersion]
    do {
      listed = try await self.port.versions(modelID: modelID)
    } catch let error as VaneError where error.code == .unavailable {
      throw VaneError(
        .unavailable,
        "the predictor is unreachable, so nothing can be rolled out: \(error.message)",
        cause: error
      )
    }
    if listed.contains(where: { $0.version == version }) {
      throw VaneError(
        .failedPrecondition,
        "\(modelID)/\(version) is already loaded in the predictor; deploy under another version label"
      )
    }
    let incumbent = listed.filter { $0.ready && $0.trafficPercent > 0 }.max {
      $0.trafficPercent < $1.trafficPercent
    }
    if request.dryRun {
      var rollout = Rollout(
        id: "",
        requestID: request.requestID,
        bundlePath: request.bundlePath,
        bundleID: manifest.id,
        manifestSHA256: bundle.manifestSHA256,
        verdict: verdict!,
        modelID: modelID,
        version: version,
        baselineVersion: incumbent?.version,
        baselineBundlePath: incumbent?.bundlePath,
        plan: plan,
        now: Date()
      )
      rollout.state = .pending
      return Vane_V1_Rollout(rollout)
    }
    var rollout = Rollout(
      id: "ro-" + UUID().uuidString.lowercased().prefix(12),
      requestID: request.requestID,
      bundlePath: request.bundlePath,
      bundleID: manifest.id,
      manifestSHA256: bundle.manifestSHA256,
      verdict: verdict!,
      modelID: modelID,
      version: version,
      baselineVersion: incumbent?.version,
      baselineBundlePath: incumbent?.bundlePath,
      plan: plan,
      now: Date()
    )
    rollout.originRequestID = RequestID.current
    return Vane_V1_Rollout(try await self.controller.start(rollout, bundle: bundle, actor: actor))
  }

  /// Whether the feature service serves a feature set with this hash.
  func featureSetServed(_ hash: String) async throws -> Bool {
    guard let features = self.features else { return true }
    let sets = try await features.call(deadline: .seconds(10)) { grpc in
      try await Vane_V1_FeatureService.Client(wrapping: grpc).listFeatureSets(.init())
    }
    return sets.featureSets.contains { $0.sha256 == hash }
  }

  /// Largest chunk of an upload.
  static let maximumChunkBytes = 4 << 20

  public func uploadBundle(
    request: RPCAsyncSequence<Vane_V1_UploadBundleRequest, any Error>,
    context: ServerContext
  ) async throws -> Vane_V1_UploadBundleResponse {
    try await serviceEdge {
      var upload: BundleUpload?
      for try await message in request {
        switch message.part {
        case .header(let header)?:
          guard upload == nil else {
            throw VaneError.invalidArgument(field: "header", "comes once, first")
          }
          upload = try BundleUpload(
            directory: URL(fileURLWithPath: self.runtime.dataDirectory).appendingPathComponent(
              "uploads"
            ).path,
            expectedSize: Int(clamping: header.size)
          )
        case .chunk(let chunk)?:
          guard let upload else {
            throw VaneError.invalidArgument(field: "header", "must come before the first chunk")
          }
          guard chunk.count <= Self.maximumChunkBytes else {
            throw VaneError.invalidArgument(
              field: "chunk",
              "\(chunk.count) bytes; a chunk has at most \(Self.maximumChunkBytes)"
            )
          }
          try upload.append(chunk)
        case nil:
          throw VaneError.invalidArgument(field: "part", "is empty")
        }
      }
      guard let upload else {
        throw VaneError.invalidArgument(field: "header", "no upload header was sent")
      }
      let temporary = try upload.finish(), directory = upload.directory
      let (path, bundle) = try await BlockingPool.shared.run {
        try BundleUpload.keep(temporary, in: directory)
      }
      return .with {
        $0.bundlePath = path
        $0.bundleID = bundle.manifest.id
        $0.manifestSha256 = bundle.manifestSHA256
        $0.size = UInt64(upload.expectedSize)
      }
    }
  }

  public func getRollout(
    request: Vane_V1_GetRolloutRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      guard let rollout = try await self.controller.rollout(id: request.rolloutID) else {
        throw VaneError(.notFound, "no rollout \(request.rolloutID)")
      }
      return Vane_V1_Rollout(rollout)
    }
  }

  public func listRollouts(
    request: Vane_V1_ListRolloutsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListRolloutsResponse {
    try await serviceEdge {
      guard request.page.pageSize >= 0 else {
        throw VaneError.invalidArgument(field: "page.page_size", "is negative")
      }
      var states: Set<Rollout.State> = []
      for (i, state) in request.states.enumerated() {
        guard let domain = state.domain else {
          throw VaneError.invalidArgument(field: "states[\(i)]", "is not a rollout state")
        }
        states.insert(domain)
      }
      let store = self.controller.store, chosen = states
      var all = try await BlockingPool.shared.run {
        try store.rollouts(states: chosen, modelID: request.modelID)
      }
      // Active rollouts as the controller has them now.
      for (i, rollout) in all.enumerated() where !rollout.state.isTerminal {
        if let live = try await self.controller.rollout(id: rollout.id) { all[i] = live }
      }
      var start = 0
      if !request.page.pageToken.isEmpty {
        guard let offset = Int(request.page.pageToken), offset >= 0 else {
          throw VaneError.invalidArgument(field: "page.page_token", "not a token this listing gave")
        }
        start = min(offset, all.count)
      }
      let size = request.page.pageSize == 0 ? 50 : min(Int(request.page.pageSize), 500)
      let page = Array(all[start ..< min(all.count, start + size)])
      return .with { response in
        response.rollouts = page.map { Vane_V1_Rollout($0, history: false) }
        response.page = .with {
          if start + size < all.count { $0.nextPageToken = String(start + size) }
          $0.totalSize = Int64(all.count)
        }
      }
    }
  }

  public func watchRollout(
    request: Vane_V1_WatchRolloutRequest,
    response: RPCWriter<Vane_V1_RolloutEvent>,
    context: ServerContext
  ) async throws {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      let (snapshot, events) = await self.controller.watch(id: request.rolloutID)
      guard let snapshot else { throw VaneError(.notFound, "no rollout \(request.rolloutID)") }
      try await response.write(
        .with {
          $0.rolloutID = snapshot.id
          $0.sequence = UInt64(snapshot.lastSequence)
          $0.time = Google_Protobuf_Timestamp(date: Date())
          $0.kind = .snapshot
          $0.state = Vane_V1_RolloutState(snapshot.state)
          $0.stepIndex = Int32(snapshot.currentStep)
          $0.trafficPercent = snapshot.trafficPercent
          $0.actor = "system"
          $0.rollout = Vane_V1_Rollout(snapshot)
        }
      )
      if request.afterSequence > 0 {
        for event in snapshot.history
        where UInt64(event.sequence) > request.afterSequence
          && (request.includeAnalysis || event.kind != .analysis)
        {
          try await response.write(Vane_V1_RolloutEvent(event, rolloutID: snapshot.id))
        }
      }
      guard !snapshot.state.isTerminal else { return }
      for await event in events {
        if event.kind == .analysis, !request.includeAnalysis { continue }
        try await response.write(Vane_V1_RolloutEvent(event, rolloutID: snapshot.id))
        if event.state.isTerminal { return }
      }
      // The stream ended without a terminal event: the server is draining.
      if let now = try await self.controller.rollout(id: snapshot.id), !now.state.isTerminal {
        throw VaneError(
          .unavailable,
          "the deploy service is shutting down; watch rollout \(snapshot.id) again"
        )
      }
    }
  }

  public func promote(
    request: Vane_V1_PromoteRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      return Vane_V1_Rollout(
        try await self.controller.promote(
          id: request.rolloutID,
          skipToFull: request.skipToFull,
          reason: request.reason,
          actor: Self.actor(context)
        )
      )
    }
  }

  public func pause(
    request: Vane_V1_PauseRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      return Vane_V1_Rollout(
        try await self.controller.pause(
          id: request.rolloutID,
          reason: request.reason,
          actor: Self.actor(context)
        )
      )
    }
  }

  public func resume(
    request: Vane_V1_ResumeRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      return Vane_V1_Rollout(
        try await self.controller.resume(
          id: request.rolloutID,
          reason: request.reason,
          actor: Self.actor(context)
        )
      )
    }
  }

  public func rollback(
    request: Vane_V1_RollbackRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      return Vane_V1_Rollout(
        try await self.controller.rollback(
          id: request.rolloutID,
          reason: request.reason,
          actor: Self.actor(context)
        )
      )
    }
  }

  public func advanceRollout(
    request: Vane_V1_AdvanceRolloutRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    try await serviceEdge {
      guard !request.rolloutID.isEmpty else {
        throw VaneError.invalidArgument(field: "rollout_id", "is required")
      }
      guard request.hasNow else {
        throw VaneError.invalidArgument(
          field: "now",
          "is required: the data time the rollout's traffic has reached"
        )
      }
      return Vane_V1_Rollout(
        try await self.controller.advance(id: request.rolloutID, to: request.now.date)
      )
    }
  }
}
