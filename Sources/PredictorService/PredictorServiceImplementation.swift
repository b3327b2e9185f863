public import GRPCCore
public import VaneProto
public import VaneRuntime
public import ServiceLifecycle
internal import Foundation
internal import SwiftProtobuf
internal import VaneBundle
internal import VaneCore
internal import VaneFeatures
public import VaneServing

/// The predictor service: loaded model versions, inference, traffic split, shadow scoring and hot swap.
///
/// A thin adapter from the generated service protocol to ``ModelRegistry``. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct PredictorServiceImplementation: Vane_V1_PredictorService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = [
    "GetServiceInfo", "Predict", "PredictBatch", "LoadModel", "UnloadModel", "SetTrafficSplit",
    "ListModels", "GetModelStats", "Settle",
  ]
  /// Most items of one PredictBatch.
  public static let maximumBatch = 4096

  let runtime: RuntimeInfo
  public let registry: ModelRegistry
  public let config: PredictorConfig
  /// The feature service, for market inputs and outcomes (nil: market inputs are UNAVAILABLE).
  public let features: UpstreamClient?

  public init(
    runtime: RuntimeInfo,
    registry: ModelRegistry = ModelRegistry(),
    config: PredictorConfig = PredictorConfig(),
    features: UpstreamClient? = nil
  ) {
    self.runtime = runtime
    self.registry = registry
    self.config = config
    self.features = features
  }

  /// Scores shadow requests off the answer path while the server runs.
  public var shadowScorer: some Service { ShadowScorer(registry: self.registry) }

  /// What runs beside the server: the shadow scorer, the feature service's connection, the
  /// prediction log's writer and the outcome joiner (the last two when there is a log).
  public var background: [any Service] {
    var services: [any Service] = [self.shadowScorer]
    if let features = self.features { services.append(features) }
    if let log = self.registry.log {
      services.append(PredictionLog.Writer(log: log))
      if let joiner = self.outcomeJoiner { services.append(joiner) }
    }
    return services
  }

  /// Joins logged answers with outcomes from the feature service (nil without a log or one).
  var outcomeJoiner: OutcomeJoiner? {
    guard let log = self.registry.log, let features = self.features else { return nil }
    return OutcomeJoiner(
      log: log,
      source: FeatureServiceOutcomes(client: features, deadline: self.config.outcomeDeadline),
      interval: self.config.joinInterval
    )
  }

  public func getServiceInfo(
    request: Vane_V1_GetServiceInfoRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ServiceInfo {
    try self.runtime.serviceInfo(implemented: Self.implemented)
  }

  public func predict(
    request: Vane_V1_PredictRequest,
    context: ServerContext
  ) async throws -> Vane_V1_PredictResponse {
    try await serviceEdge {
      // A vector (most requests) needs no await: no async frame on the answer path.
      if let input = Input.vector(request) {
        return try self.answer(request, input: input, field: "")
      }
      return try self.answer(request, input: try await self.input(request, field: ""), field: "")
    }
  }

  public func predictBatch(
    request: Vane_V1_PredictBatchRequest,
    context: ServerContext
  ) async throws -> Vane_V1_PredictBatchResponse {
    try await serviceEdge {
      guard !request.requests.isEmpty else {
        throw VaneError.invalidArgument(field: "requests", "is empty")
      }
      guard request.requests.count <= Self.maximumBatch else {
        throw VaneError.invalidArgument(
          field: "requests",
          "has \(request.requests.count) items (at most \(Self.maximumBatch))"
        )
      }
      // Market inputs are fetched first (each item fails alone), then the numeric work runs
      // on the blocking pool, not the cooperative one.
      var inputs: [Result<Input, any Error>] = []
      for (index, item) in request.requests.enumerated() {
        do {
          inputs.append(.success(try await self.input(item, field: "requests[\(index)].")))
        } catch {
          inputs.append(.failure(error))
        }
      }
      let resolved = inputs
      return try await BlockingPool.shared.run {
        Vane_V1_PredictBatchResponse.with { response in
          response.results = request.requests.enumerated().map {
            index,
            item -> Vane_V1_PredictBatchResult in
            do {
              let prediction = try self.answer(
                item,
                input: try resolved[index].get(),
                field: "requests[\(index)]."
              )
              return .with { $0.prediction = prediction }
            } catch let error as VaneError {
              let status = error.rpcError
              return .with {
                $0.error = .with {
                  $0.code = Int32(Status.Code(status.code).rawValue)
                  $0.message = status.message
                }
              }
            } catch {
              return .with {
                $0.error = .with {
                  $0.code = Int32(Status.Code.unknown.rawValue)
                  $0.message = "\(error)"
                }
              }
            }
          }
        }
      }
    }
  }

  /// One prediction on a resolved input; errors name fields under `field` (a batch item's prefix).
  func answer(
    _ request: Vane_V1_PredictRequest,
    input: Input,
    field: String
  ) throws -> Vane_V1_PredictResponse {
    let received = ContinuousClock.now
    var random = ProcessRandom()
    let route = ModelRegistry.State.Route(
      modelID: request.model.modelID,
      pinned: request.model.version.isEmpty ? nil : request.model.version,
      routingKey: request.routingKey.isEmpty ? nil : request.routingKey,
      draw: Double.random(in: 0 ..< 1, using: &random),
      shadowDraw: Double.random(in: 0 ..< 1, using: &random)
    )
    let horizons = request.horizonBars == 0 ? [] : [Int(request.horizonBars)]
    let context = ModelRegistry.RequestContext(
      // The request's own id, else the call's (x-request-id, which every Vane client sends),
      // else (empty) the registry names it by the prediction's id.
      requestID: request.requestID.isEmpty
        ? (RequestID.current ?? "") : String(request.requestID.prefix(128)),
      symbol: input.symbol,
      barTime: input.barTime
    )
    var answeredAsOf: Google_Protobuf_Timestamp?
    let answer = try self.registry.predict(route, horizons: horizons, context: context) { model in
      let (values, asOf) = try input.rows(for: model, field: field)
      answeredAsOf = asOf
      return (values, 1)
    }
    let vectorAsOf = answeredAsOf
    // The manifest's few fields the answer needs, read in place (a copy of the manifest
    // retained and released each of its strings and arrays).
    let loaded = answer.loaded
    let classes = loaded.model.manifest.task.classes
    // The bar's length only dates an answer whose vector has a time.
    let bar =
      vectorAsOf == nil
      ? nil : CandleInterval(rawValue: loaded.model.manifest.interval)?.milliseconds
    let asOf = try vectorAsOf.map { try $0.unixMilliseconds(field: "\(field)features.as_of") }
    return .with { response in
      response.model = .with {
        $0.modelID = answer.modelID
        $0.version = answer.version
      }
      response.pinned = answer.pinned
      response.predictions = answer.outputs[0].map { output in
        .with { prediction in
          prediction.horizonBars = UInt32(output.horizon)
          prediction.calibrated = .with {
            $0.classes = classes
            $0.probabilities = output.calibrated
          }
          prediction.raw = .with {
            $0.classes = classes
            $0.probabilities = output.raw
          }
          let best =
            output.calibrated.indices.max { output.calibrated[$0] < output.calibrated[$1] } ?? 0
          prediction.predictedClass = classes[best]
          prediction.confidence = output.calibrated[best]
          if let asOf, let bar {
            // The outcome is known when bar as_of + horizon closes.
            prediction.resolveTime = Google_Protobuf_Timestamp(
              unixMilliseconds: asOf + Int64(output.horizon + 1) * bar
            )
          }
        }
      }
      if let vectorAsOf { response.asOf = vectorAsOf }
      response.featureSetHash = loaded.model.manifest.featureSet.sha256
      // Messages that would say nothing are left unset, which every proto3 reader takes as
      // the same empty value: no shadow without shadows, no feature time for a vector input.
      // Each nested message costs the server's encoder and every client's decoder about a
      // microsecond, on the round trip.
      if !answer.shadowVersions.isEmpty || answer.sampledOut {
        response.shadow = .with {
          $0.versions = answer.shadowVersions
          $0.sampledOut = answer.sampledOut
        }
      }
      response.latency = .with {
        $0.total = Google_Protobuf_Duration(
          duration: ContinuousClock.now - received + input.latency
        )
        if input.latency > .zero {
          $0.features = Google_Protobuf_Duration(duration: input.latency)
        }
        $0.inference = Google_Protobuf_Duration(duration: answer.inference)
      }
      response.predictionID = self.registry.log == nil ? "" : answer.predictionID
      if let end = loaded.model.dataEnd {
        response.modelDataEnd = Google_Protobuf_Timestamp(date: end)
      }
      if let created = loaded.model.createdAt {
        response.modelCreateTime = Google_Protobuf_Timestamp(date: created)
      }
      response.trust = Vane_V1_TrustFlags(answer.trust[0])
    }
  }

  public func loadModel(
    request: Vane_V1_LoadModelRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ModelVersion {
    try await serviceEdge {
      let runtime: ServableModel.Runtime
      switch request.runtime {
      case .unspecified, .native: runtime = .native
      case .onnx: runtime = .onnx
      case .UNRECOGNIZED(let value):
        throw VaneError.invalidArgument(field: "runtime", "unknown runtime \(value)")
      }
      let path: String, expected: String?
      switch request.source {
      case .bundlePath(let value)?: (path, expected) = (value, nil)
      case .bundle(let reference)?: (path, expected) = (reference.path, reference.manifestSha256)
      case nil:
        throw VaneError.invalidArgument(field: "source", "is required: bundle_path or bundle")
      }
      guard !path.isEmpty else { throw VaneError.invalidArgument(field: "bundle_path", "is empty") }
      let trust = try TrustPolicy(request.trust, field: "trust")
      let info = try await self.registry.load(
        .init(
          path: path,
          expectedManifestSHA256: expected,
          modelID: request.modelID,
          version: request.version,
          replace: request.replace,
          shadow: request.shadow,
          wait: request.wait,
          trust: trust,
          runtime: runtime,
          missingValues: try request.missing.decoded(field: "missing")
        )
      )
      return try self.version(modelID: info.modelID, version: info.version)
    }
  }

  public func unloadModel(
    request: Vane_V1_UnloadModelRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ModelVersion {
    try await serviceEdge {
      guard !request.model.modelID.isEmpty else {
        throw VaneError.invalidArgument(field: "model.model_id", "is required")
      }
      guard !request.model.version.isEmpty else {
        throw VaneError.invalidArgument(field: "model.version", "is required")
      }
      let listing = self.registry.list().first {
        $0.info.modelID == request.model.modelID && $0.info.version == request.model.version
      }
      let timeout: Duration? =
        request.hasDrainTimeout
        ? .seconds(request.drainTimeout.seconds) + .nanoseconds(Int64(request.drainTimeout.nanos))
        : nil
      if let timeout, timeout < .zero {
        throw VaneError.invalidArgument(field: "drain_timeout", "is negative")
      }
      let info = try await self.registry.unload(
        modelID: request.model.modelID,
        version: request.model.version,
        force: request.force,
        drainTimeout: timeout,
        wait: request.wait
      )
      var version = Vane_V1_ModelVersion(
        ModelRegistry.Listing(
          info: info,
          model: listing?.model,
          counters: listing?.counters ?? VersionCounters().snapshot()
        )
      )
      version.status = .unloading
      return version
    }
  }

  public func setTrafficSplit(
    request: Vane_V1_SetTrafficSplitRequest,
    context: ServerContext
  ) async throws -> Vane_V1_TrafficSplit {
    try await serviceEdge {
      guard !request.modelID.isEmpty else {
        throw VaneError.invalidArgument(field: "model_id", "is required")
      }
      var etag: UInt64?
      if !request.expectedEtag.isEmpty {
        guard let value = UInt64(request.expectedEtag) else {
          throw VaneError(
            .aborted,
            "expected_etag '\(request.expectedEtag.prefix(40))' is not an etag this predictor gave"
          )
        }
        etag = value
      }
      let split = try self.registry.setSplit(
        modelID: request.modelID,
        weights: request.weights,
        shadows: request.shadowVersions,
        shadowSamplePercent: request.hasShadowSamplePercent ? request.shadowSamplePercent : nil,
        expectedEtag: etag
      )
      return Vane_V1_TrafficSplit(modelID: request.modelID, split)
    }
  }

  public func listModels(
    request: Vane_V1_ListModelsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListModelsResponse {
    try await serviceEdge {
      guard request.page.pageSize >= 0 else {
        throw VaneError.invalidArgument(field: "page.page_size", "is negative")
      }
      let statuses = Set(request.statuses)
      var all = self.registry.list().filter { listing in
        (request.modelID.isEmpty || listing.info.modelID == request.modelID)
          && (statuses.isEmpty || statuses.contains(Vane_V1_ModelStatus(listing.info.status)))
      }
      // Tokens are positions in the ordered listing.
      var start = 0
      if !request.page.pageToken.isEmpty {
        guard let offset = Int(request.page.pageToken), offset >= 0 else {
          throw VaneError.invalidArgument(field: "page.page_token", "not a token this listing gave")
        }
        start = min(offset, all.count)
      }
      let total = all.count
      let size = request.page.pageSize == 0 ? 100 : min(Int(request.page.pageSize), 1000)
      all = Array(all[start ..< min(total, start + size)])
      return .with { response in
        response.versions = all.map(Vane_V1_ModelVersion.init)
        // Matured answers come from the log's file (they survive restarts), when there is one.
        if let counts = try? self.registry.log?.counts() {
          for i in response.versions.indices {
            let ref = response.versions[i].ref
            response.versions[i].counters.matured = UInt64(
              counts[VersionKey(ref.modelID, ref.version)]?.matured ?? 0
            )
          }
        }
        var seen: [String] = []
        for listing in all where !seen.contains(listing.info.modelID) {
          seen.append(listing.info.modelID)
        }
        response.trafficSplits = seen.compactMap { id in
          self.registry.split(of: id).map { Vane_V1_TrafficSplit(modelID: id, $0) }
        }
        response.page = .with {
          if start + size < total { $0.nextPageToken = String(start + size) }
          $0.totalSize = Int64(total)
        }
      }
    }
  }

  func version(modelID: String, version: String) throws -> Vane_V1_ModelVersion {
    guard
      let listing = self.registry.list().first(where: {
        $0.info.modelID == modelID && $0.info.version == version
      })
    else {
      throw VaneError(.notFound, "no version \(modelID)/\(version) is loaded")
    }
    return Vane_V1_ModelVersion(listing)
  }
}

/// The predictor's shadow scoring as a long-running part of its service group.
struct ShadowScorer: Service {
  let registry: ModelRegistry

  func run() async {
    await withGracefulShutdownHandler {
      await self.registry.runShadows()
    } onGracefulShutdown: {
      self.registry.finishShadows()
    }
  }
}
