internal import Foundation
internal import VaneBundle
internal import VaneCore
internal import VaneQuality

/// A version's live quality from the prediction log (see ``PredictionLog/statistics(modelID:version:window:since:)``).
public struct LiveStatistics: Sendable, Equatable {
  public struct Horizon: Sendable, Equatable {
    public var horizon: Int
    public var predictions = 0
    public var matured = 0
    public var pending = 0
    public var unjoinable = 0
    public var auc: Double?
    public var logLoss: Double?
    public var brier: Double?
    public var ece: Double?
    public var accuracy: Double?
    public var predictedShares: [Double] = []
    public var realizedShares: [Double] = []
    public var scorePSI: Double?
    public var expired = 0
    public var outOfDistribution = 0
    public var lastMaturedBar: Int64?
    public var meanConfidence: Double?
  }

  /// A version's shadow answers beside another version's primary answers on the same requests.
  public struct Pairs: Sendable, Equatable {
    public var baseline: String
    public var count: Int
    public var disagreementRate: Double
    public var meanAbsProbDiff: Double
  }

  public var modelID: String
  public var version: String
  public var shadow: Bool
  public var classes: [String]
  /// Bar times covered (nil: nothing logged).
  public var bars: ClosedRange<Int64>?
  public var horizons: [Horizon]
  /// Column name and PSI against its training deciles, highest first.
  public var inputDrift: [(column: String, psi: Double)]

  public static func == (a: LiveStatistics, b: LiveStatistics) -> Bool {
    a.modelID == b.modelID && a.version == b.version && a.shadow == b.shadow
      && a.classes == b.classes && a.bars == b.bars
      && a.horizons == b.horizons && a.inputDrift.map(\.column) == b.inputDrift.map(\.column)
      && a.inputDrift.map(\.psi) == b.inputDrift.map(\.psi)
  }
}

extension PredictionLog {
  /// `version`'s shadow answers paired with `baseline`'s primary answers to the same requests
  /// (answered at or after `since`), at the first horizon they share.
  public func pairs(
    modelID: String,
    version: String,
    baseline: String,
    since: Int64?,
    sinceBar: Int64? = nil
  ) throws -> LiveStatistics.Pairs {
    let rows = try self.pairedAnswers(
      modelID: modelID,
      version: version,
      baseline: baseline,
      since: since,
      sinceBar: sinceBar
    )
    var disagree = 0, diff = 0.0
    for (shadow, primary) in rows {
      let a = shadow.indices.max { shadow[$0] < shadow[$1] } ?? 0,
        b = primary.indices.max { primary[$0] < primary[$1] } ?? 0
      if a != b { disagree += 1 }
      diff += abs(shadow[b] - primary[b])
    }
    let n = rows.count
    return LiveStatistics.Pairs(
      baseline: baseline,
      count: n,
      disagreementRate: n > 0 ? Double(disagree) / Double(n) : 0,
      meanAbsProbDiff: n > 0 ? diff / Double(n) : 0
    )
  }

  /// Live statistics of a registered version over the bars in the trailing `window` that ends
  /// at its newest logged bar, counting answers made at or after `since` and for bars opened at
  /// or after `sinceBar` (Unix ms).
  /// - Throws: NOT_FOUND when the version never registered with this log.
  public func statistics(
    modelID: String,
    version: String,
    window: Duration,
    since: Int64?,
    sinceBar: Int64? = nil
  ) throws -> LiveStatistics {
    guard let record = self.version(modelID: modelID, version: version) else {
      throw VaneError(.notFound, "the prediction log has no version \(modelID)/\(version)")
    }
    let k = record.classes.count
    var bars: ClosedRange<Int64>?
    if let latest = try self.latestBar(modelID: modelID, version: version) {
      let first = max(latest - Int64(window.components.seconds) * 1000, sinceBar ?? .min)
      // Past the newest logged bar, the range holds no answer.
      bars = first ... max(first, latest)
    }
    let answers = try self.answers(modelID: modelID, version: version, bars: bars, since: since)
    var horizons: [LiveStatistics.Horizon] = []
    for horizon in Set(answers.map(\.horizon)).sorted() {
      let here = answers.filter { $0.horizon == horizon }
      var stats = LiveStatistics.Horizon(horizon: horizon)
      stats.predictions = here.count
      stats.expired = here.filter { $0.flags.contains("expired") }.count
      stats.outOfDistribution = here.filter { $0.flags.contains("out_of_distribution") }.count
      stats.unjoinable = here.filter { $0.symbol == nil || $0.barTime == nil }.count
      let matured = here.filter { $0.outcome != nil && $0.calibrated.count == k }
      stats.matured = matured.count
      stats.pending = stats.predictions - stats.matured - stats.unjoinable
      stats.lastMaturedBar = matured.compactMap(\.barTime).max()
      var predicted = [Int](repeating: 0, count: k)
      for answer in here where answer.calibrated.count == k {
        predicted[
          answer.calibrated.indices.max { answer.calibrated[$0] < answer.calibrated[$1] } ?? 0
        ] += 1
      }
      let answered = max(1, predicted.reduce(0, +))
      stats.predictedShares = predicted.map { Double($0) / Double(answered) }
      let confidences = here.compactMap { $0.calibrated.count == k ? $0.calibrated.max() : nil }
      if !confidences.isEmpty {
        stats.meanConfidence = confidences.reduce(0, +) / Double(confidences.count)
      }
      if !matured.isEmpty {
        var realized = [Int](repeating: 0, count: k)
        for answer in matured { realized[answer.outcome!] += 1 }
        stats.realizedShares = realized.map { Double($0) / Double(matured.count) }
        if let predictions = try? Predictions(
          probabilities: matured.flatMap(\.calibrated),
          classCount: k,
          labels: matured.map { $0.outcome! }
        ) {
          let auc = Metrics.rocAUC(predictions)
          stats.auc = auc.isFinite ? auc : nil
          stats.logLoss = Metrics.logLoss(predictions)
          stats.brier = Metrics.brier(predictions)
          stats.accuracy = Metrics.accuracy(confusion: Metrics.confusion(predictions))
          stats.ece =
            k == 2
            ? Metrics.calibrationUniform(
              positiveProbability: matured.map { $0.calibrated[1] },
              labels: matured.map { $0.outcome! }
            ).expected
            : Metrics.calibrationUniform(
              confidence: (0 ..< predictions.count).map(predictions.confidence),
              correct: (0 ..< predictions.count).map {
                predictions.predictedClass($0) == predictions.labels[$0]
              }
            ).expected
        }
      }
      // The served score against its out-of-fold deciles: binary P(last class), else the mean
      // of every class's PSI.
      if let scores = record.reference?.scores.first(where: { $0.horizon == horizon }),
        !here.isEmpty
      {
        let classes = k == 2 ? [k - 1] : Array(0 ..< k)
        let values = classes.compactMap { c -> Double? in
          guard let distribution = scores.classes[c] else { return nil }
          return distribution.psi(
            here.compactMap { $0.calibrated.count == k ? $0.calibrated[c] : nil }
          )
        }.filter(\.isFinite)
        if !values.isEmpty { stats.scorePSI = values.reduce(0, +) / Double(values.count) }
      }
      horizons.append(stats)
    }
    // Inputs once per prediction (every horizon logs the same row).
    var drift: [(column: String, psi: Double)] = []
    if let reference = record.reference {
      var seen = Set<String>()
      let rows = answers.filter {
        seen.insert($0.predictionID).inserted && $0.features.count == record.columns.count
      }
      if !rows.isEmpty {
        for (c, column) in reference.columns.enumerated() {
          guard let distribution = column.distribution else { continue }
          let psi = distribution.psi(rows.map { $0.features[c] })
          if psi.isFinite { drift.append((column.name, psi)) }
        }
      }
      drift.sort { $0.psi > $1.psi }
    }
    return LiveStatistics(
      // A shadow only when every answer in the window was one: a version that began as a
      // shadow and then took traffic is not one.
      modelID: modelID,
      version: version,
      shadow: !answers.isEmpty && answers.allSatisfy(\.shadow),
      classes: record.classes,
      bars: bars,
      horizons: horizons,
      inputDrift: drift
    )
  }
}
