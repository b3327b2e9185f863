public import Foundation

/// What one analysis measured: the new version and the baseline over the same window.
public struct AnalysisSample: Sendable, Equatable, Codable {
  /// One version's figures in the window (nil: not measurable, e.g. no paired answers).
  public struct Figures: Sendable, Equatable, Codable {
    public var requests: Int
    public var errors: Int
    public var latencyP50Ms: Double?
    public var latencyP99Ms: Double?
    public var meanConfidence: Double?
    public var maturedOutcomes: Int
    public var liveAUC: Double?
    public var liveLogLoss: Double?
    public var liveBrier: Double?
    public var scorePSI: Double?

    public init(
      requests: Int = 0,
      errors: Int = 0,
      latencyP50Ms: Double? = nil,
      latencyP99Ms: Double? = nil,
      meanConfidence: Double? = nil,
      maturedOutcomes: Int = 0,
      liveAUC: Double? = nil,
      liveLogLoss: Double? = nil,
      liveBrier: Double? = nil,
      scorePSI: Double? = nil
    ) {
      self.requests = requests
      self.errors = errors
      self.latencyP50Ms = latencyP50Ms
      self.latencyP99Ms = latencyP99Ms
      self.meanConfidence = meanConfidence
      self.maturedOutcomes = maturedOutcomes
      self.liveAUC = liveAUC
      self.liveLogLoss = liveLogLoss
      self.liveBrier = liveBrier
      self.scorePSI = scorePSI
    }
  }

  /// Paired answers: the new version's shadow answers beside the baseline's on the same input.
  public struct Pairs: Sendable, Equatable, Codable {
    public var count: Int
    public var disagreementRate: Double
    public var meanAbsProbDiff: Double

    public init(count: Int, disagreementRate: Double, meanAbsProbDiff: Double) {
      self.count = count
      self.disagreementRate = disagreementRate
      self.meanAbsProbDiff = meanAbsProbDiff
    }
  }

  public var candidate: Figures
  public var baseline: Figures?
  public var pairs: Pairs?
  /// Calls to the predictor that failed while measuring (they count as errors of the step).
  public var measurementErrors: Int

  public init(
    candidate: Figures,
    baseline: Figures? = nil,
    pairs: Pairs? = nil,
    measurementErrors: Int = 0
  ) {
    self.candidate = candidate
    self.baseline = baseline
    self.pairs = pairs
    self.measurementErrors = measurementErrors
  }

  /// A metric of one side (nil when not measured or without samples).
  public func value(_ metric: RolloutPlan.Metric, of figures: Figures?) -> Double? {
    guard let figures else { return nil }
    switch metric {
    case .errorRate:
      let requests = figures.requests + (figures == self.candidate ? self.measurementErrors : 0)
      let errors = figures.errors + (figures == self.candidate ? self.measurementErrors : 0)
      return requests > 0 ? Double(errors) / Double(requests) : nil
    case .latencyP50Ms: return figures.latencyP50Ms
    case .latencyP99Ms: return figures.latencyP99Ms
    case .requestCount: return Double(figures.requests)
    case .disagreementRate:
      return figures == self.candidate
        ? self.pairs.flatMap { $0.count > 0 ? $0.disagreementRate : nil } : nil
    case .meanAbsProbDiff:
      return figures == self.candidate
        ? self.pairs.flatMap { $0.count > 0 ? $0.meanAbsProbDiff : nil } : nil
    case .meanConfidence: return figures.meanConfidence
    case .maturedOutcomes: return Double(figures.maturedOutcomes)
    case .liveAUC: return figures.liveAUC
    case .liveLogLoss: return figures.liveLogLoss
    case .liveBrier: return figures.liveBrier
    case .scorePSI: return figures.scorePSI
    }
  }
}

/// One threshold's outcome at one analysis (the API's `AnalysisResult`).
public struct AnalysisResult: Sendable, Equatable, Codable {
  public var stepIndex: Int
  public var threshold: RolloutPlan.Threshold
  public var value: Double?
  public var baselineValue: Double?
  public var comparedValue: Double?
  public var passed: Bool
  /// Too few samples: neither passes nor counts as a failure.
  public var inconclusive: Bool
  public var sampleCount: Int
  public var time: Date
  public var reason: String
}

/// Judges a step's thresholds on a sample. Missing data is never a pass: a metric that could
/// not be measured, or a step short of its minimum requests or matured outcomes, is
/// inconclusive.
public enum Analysis {
  public static func evaluate(
    step: RolloutPlan.Step,
    index: Int,
    sample: AnalysisSample,
    requestsInStep: Int,
    at now: Date
  ) -> [AnalysisResult] {
    step.thresholds.map { threshold in
      let metric = threshold.metric
      let value = sample.value(metric, of: sample.candidate)
      let baseline = sample.value(metric, of: sample.baseline)
      var result = AnalysisResult(
        stepIndex: index,
        threshold: threshold,
        value: value,
        baselineValue: baseline,
        comparedValue: nil,
        passed: false,
        inconclusive: true,
        sampleCount: requestsInStep,
        time: now,
        reason: ""
      )
      if requestsInStep < step.minRequests {
        result.reason =
          "\(requestsInStep) of the \(step.minRequests) requests the step needs before analysis counts"
        return result
      }
      if metric.needsOutcomes, sample.candidate.maturedOutcomes < max(1, step.minMaturedOutcomes) {
        result.reason =
          "\(sample.candidate.maturedOutcomes) matured outcomes of the \(max(1, step.minMaturedOutcomes)) needed"
        return result
      }
      guard let value else {
        result.reason = "\(metric.rawValue) could not be measured (no samples)"
        return result
      }
      let compared: Double
      switch threshold.reference {
      case .absolute: compared = value
      case .baselineDelta, .baselineRatio:
        guard let baseline else {
          // The model's first version has no baseline: the check is moot, not failed.
          result.reason = "no baseline to compare \(metric.rawValue) with"
          if sample.baseline == nil {
            result.inconclusive = false
            result.passed = true
          }
          return result
        }
        if threshold.reference == .baselineDelta {
          compared = value - baseline
        } else {
          guard baseline != 0 else {
            result.reason = "the baseline's \(metric.rawValue) is 0: no ratio"
            result.inconclusive = value == 0
            result.passed = value == 0
            return result
          }
          compared = value / baseline
        }
      }
      result.comparedValue = compared
      result.inconclusive = false
      result.passed = threshold.comparison.holds(compared, threshold.threshold)
      let what =
        threshold.reference == .absolute
        ? metric.rawValue
        : "\(metric.rawValue) \(threshold.reference == .baselineDelta ? "− baseline" : "/ baseline")"
      result.reason = String(
        format: "%@ = %.4g %@ %.4g: %@",
        what,
        compared,
        threshold.comparison.rawValue,
        threshold.threshold,
        result.passed ? "passed" : "failed"
      )
      return result
    }
  }
}
