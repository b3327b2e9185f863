internal import VaneProto
internal import VaneQuality
internal import Foundation
internal import SwiftProtobuf
internal import VaneBundle
internal import VaneCore
internal import VaneFeatures
internal import VaneRuntime
internal import VaneServing

// Conversions between the predictor's wire types and VaneServing's domain types, in one place.

extension Vane_V1_ModelStatus {
  init(_ status: VersionStatus) {
    switch status {
    // WARMING is still loading as far as the API's statuses go; status_message says which.
    case .loading, .warming: self = .loading
    case .ready: self = .ready
    case .draining: self = .unloading
    case .failed: self = .failed
    }
  }
}

extension Vane_V1_ModelKind {
  /// The API's kind of a bundle model (the stack is a logistic regression over the bases).
  init(_ kind: ModelKind) {
    switch kind {
    case .xgboost: self = .xgboost
    case .mlp: self = .mlp
    case .lstm: self = .lstm
    case .logisticRegression, .stack: self = .logisticRegression
    case .onnx: self = .onnx
    case .lightgbm: self = .lightgbm
    }
  }
}

extension Vane_V1_ModelVersion {
  init(_ listing: ModelRegistry.Listing) {
    self.init()
    let info = listing.info
    self.ref = .with {
      $0.modelID = info.modelID
      $0.version = info.version
    }
    self.status = Vane_V1_ModelStatus(info.status)
    switch info.status {
    case .failed(let reason): self.statusMessage = reason
    case .warming: self.statusMessage = "warming up"
    case .loading: self.statusMessage = "reading and verifying the bundle"
    case .draining: self.statusMessage = "draining \(info.inFlight) in-flight request(s)"
    case .ready:
      self.statusMessage =
        info.lastError.map { "serving; the last replacement failed: \($0)" } ?? ""
    }
    self.runtime = listing.model?.runtime == .onnx ? .onnx : .native
    self.trafficPercent = info.trafficPercent
    self.shadow = info.shadow
    self.loadTime = Google_Protobuf_Timestamp(date: info.loadTime)
    let counters = listing.counters
    self.counters = .with {
      $0.requests = counters.requests
      $0.errors = counters.errors
      $0.shadowRequests = counters.shadowRequests
      $0.shadowErrors = counters.shadowErrors
      $0.latencyP50 = Google_Protobuf_Duration(duration: counters.latencyP50)
      $0.latencyP99 = Google_Protobuf_Duration(duration: counters.latencyP99)
      if let last = counters.lastRequest {
        $0.lastRequestTime = Google_Protobuf_Timestamp(date: last)
      }
      $0.logged = counters.logged
      $0.logDropped = counters.logDropped
    }
    self.bundle = .with { $0.path = info.source }
    guard let model = listing.model else { return }
    let manifest = model.manifest
    self.bundle = .with {
      $0.bundleID = manifest.id
      $0.manifestSha256 = model.manifestSHA256
      $0.path = info.source
    }
    self.symbols = manifest.symbols
    if let interval = CandleInterval(rawValue: manifest.interval) { self.interval = interval.proto }
    self.featureSetID = manifest.featureSet.id
    self.featureSetHash = manifest.featureSet.sha256
    self.labelKind = manifest.task.classes.count == 2 ? .binaryDirection : .threeClass
    self.horizons = manifest.task.horizons.map { UInt32($0) }
    self.classes = manifest.task.classes
    if let method = manifest.calibration.flatMap({ CalibrationMethod(rawValue: $0.method) }) {
      self.calibration = Vane_V1_CalibrationMethod(method)
    }
    var kinds: [Vane_V1_ModelKind] = []
    for kind in model.modelKinds.map(Vane_V1_ModelKind.init) where !kinds.contains(kind) {
      kinds.append(kind)
    }
    self.modelKinds = kinds
    self.inputBars = UInt32(model.inputBars)
    self.trust = Vane_V1_TrustPolicy(model.policy)
    self.missing = Vane_V1_MissingValues(model.missingValues)
    if let end = model.dataEnd { self.modelDataEnd = Google_Protobuf_Timestamp(date: end) }
    if let created = model.createdAt {
      self.modelCreateTime = Google_Protobuf_Timestamp(date: created)
    }
  }
}

extension TrustPolicy {
  /// The domain policy of a LoadModel request's (unset: ``TrustPolicy/default``).
  /// - Throws: INVALID_ARGUMENT naming the field: a negative age or bound, an unknown action.
  init(_ proto: Vane_V1_TrustPolicy, field: String) throws {
    self = .default
    if proto.hasMaxModelAge {
      let age =
        Duration.seconds(proto.maxModelAge.seconds) + .nanoseconds(Int64(proto.maxModelAge.nanos))
      guard age > .zero else {
        throw VaneError.invalidArgument(field: "\(field).max_model_age", "must be positive")
      }
      self.maxModelAge = age
    }
    func action(_ value: Vane_V1_TrustAction, _ name: String) throws -> Action {
      switch value {
      case .unspecified, .flag: return .flag
      case .refuse: return .refuse
      case .UNRECOGNIZED(let raw):
        throw VaneError.invalidArgument(field: "\(field).\(name)", "\(raw) is not a TrustAction")
      }
    }
    self.onExpired = try action(proto.onExpired, "on_expired")
    self.onOutOfDistribution = try action(proto.onOutOfDistribution, "on_out_of_distribution")
    func bound(_ value: Double, _ name: String) throws -> Double? {
      guard value.isFinite, value >= 0 else {
        throw VaneError.invalidArgument(
          field: "\(field).\(name)",
          "\(value) must be a finite number ≥ 0"
        )
      }
      return value == 0 ? nil : value
    }
    if proto.hasZBound { self.zBound = try bound(proto.zBound, "z_bound") }
    if proto.hasDissimilarityThreshold {
      self.dissimilarityThreshold = try bound(
        proto.dissimilarityThreshold,
        "dissimilarity_threshold"
      )
    }
  }
}

extension Vane_V1_TrustPolicy {
  init(_ policy: TrustPolicy) {
    self.init()
    if let age = policy.maxModelAge { self.maxModelAge = Google_Protobuf_Duration(duration: age) }
    self.onExpired = policy.onExpired == .refuse ? .refuse : .flag
    self.onOutOfDistribution = policy.onOutOfDistribution == .refuse ? .refuse : .flag
    self.zBound = policy.zBound ?? 0
    self.dissimilarityThreshold = policy.dissimilarityThreshold ?? 0
  }
}

extension Vane_V1_TrustFlags {
  init(_ report: TrustReport) {
    self.init()
    self.expired = report.expired
    self.outOfDistribution = report.outOfDistribution
    self.outOfBoundColumns = report.outOfBoundColumns
    if let z = report.maximumZ { self.maxAbsZ = z }
    if let index = report.dissimilarity { self.dissimilarity = index }
  }
}

extension Vane_V1_VersionStats {
  init(_ stats: LiveStatistics) {
    self.init()
    self.ref = .with {
      $0.modelID = stats.modelID
      $0.version = stats.version
    }
    self.shadow = stats.shadow
    if let bars = stats.bars {
      self.window = .with {
        $0.start = Google_Protobuf_Timestamp(unixMilliseconds: bars.lowerBound)
        $0.end = Google_Protobuf_Timestamp(unixMilliseconds: bars.upperBound)
      }
    }
    self.horizons = stats.horizons.map { horizon in
      .with {
        $0.horizonBars = UInt32(horizon.horizon)
        $0.predictions = Int64(horizon.predictions)
        $0.matured = Int64(horizon.matured)
        $0.pending = Int64(horizon.pending)
        $0.unjoinable = Int64(horizon.unjoinable)
        if let value = horizon.auc { $0.auc = value }
        if let value = horizon.logLoss { $0.logLoss = value }
        if let value = horizon.brier { $0.brier = value }
        if let value = horizon.ece { $0.ece = value }
        if let value = horizon.accuracy { $0.accuracy = value }
        $0.classes = stats.classes
        $0.predictedShares = horizon.predictedShares
        $0.realizedShares = horizon.realizedShares
        if let value = horizon.scorePSI { $0.scorePsi = value }
        $0.expired = Int64(horizon.expired)
        $0.outOfDistribution = Int64(horizon.outOfDistribution)
        if let bar = horizon.lastMaturedBar {
          $0.lastMaturedBar = Google_Protobuf_Timestamp(unixMilliseconds: bar)
        }
        if let value = horizon.meanConfidence { $0.meanConfidence = value }
      }
    }
    self.inputDrift = stats.inputDrift.map { drift in
      .with {
        $0.column = drift.column
        $0.psi = drift.psi
      }
    }
  }
}

extension Vane_V1_TrafficSplit {
  init(modelID: String, _ split: ModelRegistry.State.Split) {
    self.init()
    self.modelID = modelID
    self.weights = split.weights
    self.shadowVersions = split.shadows
    self.shadowSamplePercent = split.shadowSamplePercent
    self.etag = String(split.etag)
    if split.updated != .distantPast {
      self.updateTime = Google_Protobuf_Timestamp(date: split.updated)
    }
  }
}

extension Google_Protobuf_Duration {
  init(duration: Duration) {
    let (seconds, attoseconds) = duration.components
    self.init(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
  }
}

/// A feature vector as the model's row: values in the model's column order, missing values NaN.
enum FeatureRow {
  /// - Throws: INVALID_ARGUMENT naming the field: another feature set hash, a column count or
  ///   names that are not the model's, a missing index out of range.
  static func values(
    _ vector: Vane_V1_FeatureVector,
    for model: ServableModel,
    field fieldName: @autoclosure () -> String
  ) throws -> [Double] {
    let columns = model.columns
    guard vector.featureSetHash == model.manifest.featureSet.sha256 else {
      throw VaneError.invalidArgument(
        field: "\(fieldName()).feature_set_hash",
        "'\(vector.featureSetHash.prefix(80))' is not the hash of the model's feature set \(model.manifest.featureSet.id) (\(model.manifest.featureSet.sha256))"
      )
    }
    // A named vector may hold more columns than the model reads (an imported model reads some
    // of its feature set's columns): they are taken by name.
    guard
      vector.values.count == columns.count
        || (!vector.columns.isEmpty && vector.values.count >= columns.count)
    else {
      throw VaneError.invalidArgument(
        field: "\(fieldName()).values",
        "\(vector.values.count) values; the model reads \(columns.count) columns"
      )
    }
    var values = vector.values
    if !vector.columns.isEmpty, vector.columns != columns {
      guard vector.columns.count == vector.values.count else {
        throw VaneError.invalidArgument(
          field: "\(fieldName()).columns",
          "\(vector.columns.count) names for \(vector.values.count) values"
        )
      }
      var index: [String: Int] = [:]
      for (i, name) in vector.columns.enumerated() where index[name] == nil { index[name] = i }
      values = try columns.map { name in
        guard let i = index[name] else {
          throw VaneError.invalidArgument(
            field: "\(fieldName()).columns",
            "has no column \(name), which the model reads"
          )
        }
        return vector.values[i]
      }
      // Missing indices refer to the vector's own order.
      for missing in vector.missingIndices {
        guard Int(missing) < vector.values.count else {
          throw VaneError.invalidArgument(
            field: "\(fieldName()).missing_indices",
            "\(missing) is not an index of the \(vector.values.count) values"
          )
        }
        if let target = columns.firstIndex(of: vector.columns[Int(missing)]) {
          values[target] = .nan
        }
      }
      return values
    }
    for missing in vector.missingIndices {
      guard Int(missing) < values.count else {
        throw VaneError.invalidArgument(
          field: "\(fieldName()).missing_indices",
          "\(missing) is not an index of the \(values.count) values"
        )
      }
      values[Int(missing)] = .nan
    }
    return values
  }
}
