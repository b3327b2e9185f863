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

  public init(
    featureDeadline: Duration = .seconds(5),
    maximumStaleBars: Int? = 2,
    joinInterval: Duration = .seconds(5),
    outcomeDeadline: Duration = .seconds(60)
  ) {
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
    /// A vector input's window: the vectors of the bars before the input's, oldest first, then
    /// the input's own (empty for a market input).
    var window: [Vane_V1_FeatureVector]
    /// A market input's windows, per feature set id, in the same order (empty for a vector).
    var windows: [String: [Vane_V1_FeatureVector]]
    var isMarket: Bool
    var interval: Vane_V1_Interval?
    var latency: Duration
    /// The input's own bar, for the log: its market (nil when the vector does not say) and
    /// open time (nil when it has none or an unreadable one).
    var symbol: String?
    var barTime: Int64?

    init(
      window: [Vane_V1_FeatureVector] = [],
      windows: [String: [Vane_V1_FeatureVector]] = [:],
      isMarket: Bool,
      interval: Vane_V1_Interval?,
      latency: Duration
    ) {
      self.window = window
      self.windows = windows
      self.isMarket = isMarket
      self.interval = interval
      self.latency = latency
      // The input's own bar: the last of its window (a market input's first feature set's),
      // read in place (a copy of the vector costs more than the two fields read).
      func own(_ vectors: [Vane_V1_FeatureVector]) -> (String?, Int64?) {
        guard let last = vectors.indices.last else { return (nil, nil) }
        return (
          vectors[last].symbol.isEmpty ? nil : vectors[last].symbol,
          vectors[last].hasAsOf ? try? vectors[last].asOf.unixMilliseconds(field: "as_of") : nil
        )
      }
      (self.symbol, self.barTime) = own(window.isEmpty ? windows.first?.value ?? [] : window)
    }

    /// A vector input's window (its history, then the vector itself), or nil for another input.
    /// Synchronous, so that the served path resolves the usual input without an async call.
    static func vector(_ request: Vane_V1_PredictRequest) -> Input? {
      guard case .features(let vector)? = request.input else { return nil }
      return Input(
        window: request.history.isEmpty ? [vector] : request.history + [vector],
        isMarket: false,
        interval: nil,
        latency: .zero
      )
    }

    /// The model's rows: the last `inputBars` vectors, consecutive bars, as raw values; and
    /// the open time of the bar answered for, when its vector has one.
    ///
    /// The vectors are read where they are: each copy of one retains and releases its arrays
    /// and strings, on every request.
    func rows(
      for model: ServableModel,
      field: String
    ) throws -> (values: [Double], asOf: Google_Protobuf_Timestamp?) {
      let window: [Vane_V1_FeatureVector]
      if self.isMarket {
        if let interval = self.interval,
          (try? CandleInterval(interval, field: ""))
            != CandleInterval(rawValue: model.manifest.interval)
        {
          throw VaneError.invalidArgument(
            field: "\(field)market.market.interval",
            "is not the model's interval \(model.manifest.interval)"
          )
        }
        guard let fetched = self.windows[model.manifest.featureSet.id] else {
          throw VaneError(
            .unavailable,
            "\(field)market: no vector of feature set \(model.manifest.featureSet.id) was fetched (a version loaded meanwhile)"
          )
        }
        window = fetched
      } else {
        window = self.window
      }
      let bars = model.inputBars
      guard window.count >= bars, bars > 0 else {
        throw VaneError.invalidArgument(
          field: "\(field)history",
          "the model reads windows of \(bars) bars: send the \(bars - 1) vectors before the input's (got \(window.count - 1))"
        )
      }
      let first = window.count - bars
      if bars > 1, let step = CandleInterval(rawValue: model.manifest.interval)?.milliseconds,
        window[first...].allSatisfy(\.hasAsOf)
      {
        let times = window[first...].map {
          Int64($0.asOf.seconds) * 1000 + Int64($0.asOf.nanos / 1_000_000)
        }
        if let gap = times.indices.dropLast().first(where: { times[$0 + 1] - times[$0] != step }) {
          throw VaneError.invalidArgument(
            field: "\(field)history",
            "bars \(gap) and \(gap + 1) of the window are not consecutive \(model.manifest.interval) bars"
          )
        }
      }
      let last = window.count - 1
      let asOf = window[last].hasAsOf ? window[last].asOf : nil
      // Named only for an error: a served request builds no string it does not show.
      let isMarket = self.isMarket
      func values(_ index: Int) throws -> [Double] {
        try FeatureRow.values(
          window[index],
          for: model,
          field: index < last
            ? "\(field)history[\(index)]" : isMarket ? "\(field)market" : "\(field)features"
        )
      }
      // One bar (most models): the vector's own values, not a copy of them.
      if bars == 1 { return (try values(last), asOf) }
      var rows: [Double] = []
      rows.reserveCapacity(bars * model.columns.count)
      for index in first ... last { rows += try values(index) }
      return (rows, asOf)
    }
  }

  /// Resolves a request's input; a market input is fetched from the feature service.
  /// - Throws: INVALID_ARGUMENT (no input, no symbol or interval), UNAVAILABLE (no feature
  ///   service configured or reachable), NOT_FOUND (no such model), and what the feature
  ///   service answered (FAILED_PRECONDITION for stale or incomplete features, naming the bar
  ///   and the columns).
  func input(_ request: Vane_V1_PredictRequest, field: String) async throws -> Input {
    switch request.input {
    case .features?:
      return Input.vector(request)!
    case .market(let market)?:
      guard !market.market.symbol.isEmpty else {
        throw VaneError.invalidArgument(field: "\(field)market.market.symbol", "is required")
      }
      let interval = try CandleInterval(
        market.market.interval,
        field: "\(field)market.market.interval"
      )
      guard let features = self.features else {
        throw VaneError(
          .unavailable,
          "\(field)market: this predictor has no feature service configured (--feature-address); send features"
        )
      }
      let sets = self.registry.featureSets(
        modelID: request.model.modelID,
        pinned: request.model.version.isEmpty ? nil : request.model.version
      )
      guard !sets.isEmpty else {
        throw VaneError(.unavailable, "model '\(request.model.modelID)' has no READY version")
      }
      let started = ContinuousClock.now
      var windows: [String: [Vane_V1_FeatureVector]] = [:]
      func fetch(
        _ set: String,
        _ bar: Vane_V1_BarSelector?,
        keepsMissing: Bool
      ) async throws -> Vane_V1_FeatureVector {
        let get = Vane_V1_GetFeaturesRequest.with {
          $0.market = market.market
          $0.featureSetID = set
          if let bar { $0.bar = bar }
          $0.includeColumns = true
          // A bar missing only a feature value is answered for versions that keep such inputs;
          // each version then imputes, passes NaN, or refuses by its own choice.
          if keepsMissing { $0.missingValues = .impute }
          if bar == nil, let bars = self.config.maximumStaleBars {
            $0.maxStaleness = Google_Protobuf_Duration(
              duration: .milliseconds(interval.milliseconds * Int64(bars))
            )
          }
        }
        return try await features.call(deadline: self.config.featureDeadline) { client in
          try await Vane_V1_FeatureService.Client(wrapping: client).getFeatures(get)
        }
      }
      for (set, needs) in sets.sorted(by: { $0.key < $1.key }) {
        let bars = needs.bars
        let current = try await fetch(
          set,
          market.hasBar ? market.bar : nil,
          keepsMissing: needs.keepsMissing
        )
        var window = [current]
        // A window model reads the bars before it too, each by its open time.
        if bars > 1 {
          let asOf = try current.asOf.unixMilliseconds(field: "\(field)market.bar")
          for back in 1 ..< bars {
            let bar = Vane_V1_BarSelector.with {
              $0.asOf = Google_Protobuf_Timestamp(
                unixMilliseconds: asOf - Int64(back) * interval.milliseconds
              )
            }
            window.insert(try await fetch(set, bar, keepsMissing: needs.keepsMissing), at: 0)
          }
        }
        windows[set] = window
      }
      return Input(
        windows: windows,
        isMarket: true,
        interval: market.market.interval,
        latency: ContinuousClock.now - started
      )
    case nil:
      throw VaneError.invalidArgument(field: "\(field)input", "is required: features or market")
    }
  }
}
