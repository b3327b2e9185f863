internal import Foundation
internal import GRPCCore
internal import SwiftProtobuf
internal import VaneCore
internal import VaneFeatures
internal import VaneProto
internal import VaneRuntime
internal import VaneServing

/// How the predictor reaches the feature service and joins outcomes.
public struct PredictorConfig: Sendable {
  /// Deadline of one GetFeatures call for a market input.
  public var featureDeadline: Duration
  /// A market input asking for the latest bar is refused when that bar closed more than this
  /// many bars ago (nil: never; replaying history needs that).
  public var maximumStaleBars: Int?
  /// How often the outcome joiner runs, and the deadline of its BuildDataset calls.
  public var joinInterval: Duration
  public var outcomeDeadline: Duration

  public init(featureDeadline: Duration = .seconds(2), maximumStaleBars: Int? = 2, joinInterval: Duration = .seconds(5), outcomeDeadline: Duration = .seconds(60)) {
    self.featureDeadline = featureDeadline
    self.maximumStaleBars = maximumStaleBars
    self.joinInterval = joinInterval
    self.outcomeDeadline = outcomeDeadline
  }
}

extension PredictorServiceImplementation {
  /// A request's input: its vector, or for a market input the online vector of every feature
  /// set the model's versions read (fetched once per set).
  struct Input: Sendable {
    var vectors: [String: Vane_V1_FeatureVector]
    var isMarket: Bool
    var interval: Vane_V1_Interval?
    var latency: Duration

    /// The vector for the version the request routed to.
    func vector(for model: ServableModel, field: String) throws -> Vane_V1_FeatureVector {
      guard self.isMarket else { return self.vectors.first!.value }
      if let interval = self.interval, (try? CandleInterval(interval, field: "")) != CandleInterval(rawValue: model.manifest.interval) {
        throw VaneError.invalidArgument(field: "\(field)market.market.interval", "is not the model's interval \(model.manifest.interval)")
      }
      guard let vector = self.vectors[model.manifest.featureSet.id] else {
        throw VaneError(.unavailable, "\(field)market: no vector of feature set \(model.manifest.featureSet.id) was fetched (a version loaded meanwhile)")
      }
      return vector
    }
  }

  /// Resolves a request's input; a market input is fetched from the feature service.
  /// - Throws: INVALID_ARGUMENT (no input, no symbol or interval), UNAVAILABLE (no feature
  ///   service configured or reachable), NOT_FOUND (no such model), and what the feature
  ///   service answered (FAILED_PRECONDITION for stale or incomplete features, naming the bar
  ///   and the columns).
  func input(_ request: Vane_V1_PredictRequest, field: String) async throws -> Input {
    switch request.input {
    case .features(let vector)?:
      return Input(vectors: ["": vector], isMarket: false, interval: nil, latency: .zero)
    case .market(let market)?:
      guard !market.market.symbol.isEmpty else { throw VaneError.invalidArgument(field: "\(field)market.market.symbol", "is required") }
      let interval = try CandleInterval(market.market.interval, field: "\(field)market.market.interval")
      guard let features = self.features else {
        throw VaneError(.unavailable, "\(field)market: this predictor has no feature service configured (--feature-address); send features")
      }
      let sets = self.registry.featureSets(modelID: request.model.modelID, pinned: request.model.version.isEmpty ? nil : request.model.version)
      guard !sets.isEmpty else { throw VaneError(.unavailable, "model '\(request.model.modelID)' has no READY version") }
      let started = ContinuousClock.now
      var vectors: [String: Vane_V1_FeatureVector] = [:]
      for set in sets.sorted() {
        let get = Vane_V1_GetFeaturesRequest.with {
          $0.market = market.market
          $0.featureSetID = set
          $0.bar = market.bar
          $0.includeColumns = true
          if !market.hasBar, let bars = self.config.maximumStaleBars {
            $0.maxStaleness = Google_Protobuf_Duration(duration: .milliseconds(interval.milliseconds * Int64(bars)))
          }
        }
        vectors[set] = try await features.call { client in
          try await Vane_V1_FeatureService.Client(wrapping: client).getFeatures(get, options: UpstreamClient.options(deadline: self.config.featureDeadline))
        }
      }
      return Input(vectors: vectors, isMarket: true, interval: market.market.interval, latency: ContinuousClock.now - started)
    case nil:
      throw VaneError.invalidArgument(field: "\(field)input", "is required: features or market")
    }
  }
}
