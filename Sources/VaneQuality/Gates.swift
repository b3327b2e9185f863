internal import Foundation
internal import VaneCore

/// What a policy is checked against: the reports of a model's out-of-fold predictions.
public struct GateInput: Sendable {
  /// The model judged (for a stacked bundle: the meta-learner's predictions).
  public var model: MetricsReport
  /// Base models of a stack, by name (checked by `min_base_auc`; a single model is its own
  /// base when this is empty).
  public var baseModels: [String: MetricsReport]
  /// Per-fold out-of-fold AUCs (checked by `min_fold_auc`).
  public var foldAUCs: [Double]
  /// Bar interval of the training data ("1h", "4h", …) for `min_samples`.
  public var interval: String?
  /// Summary of the scaled inputs the model saw.
  public var inputs: InputSummary?
  /// The incumbent's report, for relative gates.
  public var baseline: MetricsReport?

  public init(
    model: MetricsReport, baseModels: [String: MetricsReport] = [:], foldAUCs: [Double] = [], interval: String? = nil,
    inputs: InputSummary? = nil, baseline: MetricsReport? = nil
  ) {
    self.model = model
    self.baseModels = baseModels
    self.foldAUCs = foldAUCs
    self.interval = interval
    self.inputs = inputs
    self.baseline = baseline
  }
}

/// One gate's outcome: a person reads `reason`; machines read the rest.
public struct GateResult: Sendable, Equatable, Codable {
  public var gate: String
  /// The measured value (nil when it could not be measured: then the gate fails).
  public var value: Double?
  /// The threshold in words, e.g. "≥ 0.55".
  public var threshold: String
  public var passed: Bool
  /// One line: what was measured against what, and why it matters.
  public var reason: String
}

/// The gates' verdict: passed only if every gate passed.
public struct GateVerdict: Sendable, Equatable, Codable {
  public var policy: String
  public var results: [GateResult]
  public var passed: Bool { self.results.allSatisfy(\.passed) }
  public var failures: [GateResult] { self.results.filter { !$0.passed } }
}

extension QualityPolicy {
  /// Checks every gate the policy sets. A gate whose input is missing fails (saying what is
  /// missing): a policy never passes silently.
  public func evaluate(_ input: GateInput) -> GateVerdict {
    var results: [GateResult] = []
    let model = input.model
    func add(_ gate: String, _ value: Double?, _ threshold: String, _ passed: Bool, _ reason: String) {
      results.append(GateResult(gate: gate, value: value, threshold: threshold, passed: passed, reason: reason))
    }
    func format(_ x: Double) -> String { String(format: "%.4g", x) }

    if let limit = self.maxNonFinite {
      let bad = model.nanCount + model.infiniteCount
      add("max_non_finite", Double(bad), "≤ \(limit)", bad <= limit,
          bad <= limit ? "\(bad) NaN/Inf predictions" : "\(model.nanCount) NaN and \(model.infiniteCount) infinite predictions: the model emits non-numbers, so its outputs cannot be trusted at all")
    }
    if let minimum = self.minSamples[input.interval ?? ""] ?? (input.interval == nil ? self.minSamples.values.max() : nil) {
      let n = model.samples
      add("min_samples", Double(n), "≥ \(minimum)", n >= minimum,
          n >= minimum ? "\(n) out-of-fold samples" : "only \(n) out-of-fold samples (need \(minimum) at \(input.interval ?? "the strictest interval")): too few to trust any metric below")
    }
    if let minimum = self.minStackedAUC {
      let auc = model.rocAUC
      add("min_stacked_auc", auc.isFinite ? auc : nil, "≥ \(format(minimum))", auc >= minimum,
          auc >= minimum ? "out-of-fold AUC \(format(auc))" : auc.isFinite ? "out-of-fold AUC \(format(auc)) is below \(format(minimum)): barely better than chance at ranking ups over downs" : "AUC is undefined (one class only, or no finite predictions)")
    }
    if let minimum = self.minBaseAUC {
      let bases = input.baseModels.isEmpty ? ["model": model] : input.baseModels
      for name in bases.keys.sorted() {
        let auc = bases[name]!.rocAUC
        add("min_base_auc[\(name)]", auc.isFinite ? auc : nil, "≥ \(format(minimum))", auc >= minimum,
            auc >= minimum ? "\(name): out-of-fold AUC \(format(auc))" : "\(name): out-of-fold AUC \(auc.isFinite ? format(auc) : "undefined") is below \(format(minimum)): this base model adds noise to the stack")
      }
    }
    if let (quantile, minimum) = self.minFoldAUC {
      if input.foldAUCs.isEmpty {
        add("min_fold_auc", nil, "q\(format(quantile)) ≥ \(format(minimum))", false, "no per-fold AUCs were given: cannot check that every period holds up")
      } else {
        let value = Statistics.quantile(sorted: input.foldAUCs.sorted(), quantile)
        add("min_fold_auc", value, "q\(format(quantile)) ≥ \(format(minimum))", value >= minimum,
            value >= minimum ? "the \(format(quantile)) quantile of \(input.foldAUCs.count) fold AUCs is \(format(value))" : "the \(format(quantile)) quantile of fold AUCs is \(format(value)) < \(format(minimum)): the model fails in some market periods")
      }
    }
    if let maximum = self.maxECE {
      let ece = model.calibration.expected
      add("max_ece", ece.isFinite ? ece : nil, "≤ \(format(maximum))", ece <= maximum,
          ece <= maximum ? "ECE \(format(ece))" : "ECE \(format(ece)) > \(format(maximum)): its probabilities do not mean what they say")
    }
    if let maximum = self.maxShareAbove99 {
      let share = model.shareAbove99
      add("max_share_above_0_99", share.isFinite ? share : nil, "< \(format(maximum))", share < maximum,
          share < maximum ? "\(format(share * 100)) % of predictions above 0.99" : "\(format(share * 100)) % of predictions are more than 99 % confident: direction models are never that sure; the model is overconfident")
    }
    if let (low, high) = self.classShare {
      for (k, share) in model.predictedClassShare.enumerated() {
        let ok = share >= low && share <= high
        add("class_share[\(k)]", share, "\(format(low))–\(format(high))", ok,
            ok ? "class \(k) predicted \(format(share * 100)) % of the time" : "class \(k) is predicted \(format(share * 100)) % of the time (allowed \(format(low * 100))–\(format(high * 100)) %): the model has collapsed toward one answer")
      }
      if model.predictedClassShare.isEmpty {
        add("class_share", nil, "\(format(low))–\(format(high))", false, "no finite predictions to count")
      }
    }
    if let maximum = self.maxAbsLogit {
      if let value = model.maxAbsLogit {
        add("max_abs_logit", value, "< \(format(maximum))", value < maximum,
            value < maximum ? "largest |logit| \(format(value))" : "largest |logit| is \(format(value)) (limit \(format(maximum))): typical of unscaled inputs; such a model saturates and its probabilities are meaningless")
      } else {
        add("max_abs_logit", nil, "< \(format(maximum))", false, "the predictions carry no logits: cannot check their range")
      }
    }
    if self.inputMeanAbsMax != nil || self.inputStdDeviationMax != nil {
      if let inputs = input.inputs {
        if let limit = self.inputMeanAbsMax {
          let worst = inputs.mean.indices.max { abs(inputs.mean[$0]) < abs(inputs.mean[$1]) }
          let value = worst.map { abs(inputs.mean[$0]) } ?? .nan
          let ok = value < limit
          add("input_mean_abs_max", value, "< \(format(limit))", ok,
              ok ? "scaled inputs: largest |mean| \(format(value))" : "scaled input '\(worst.map { inputs.columns[$0] } ?? "?")' has mean \(format(inputs.mean[worst!])): the scaler was not fitted on these data, or was not applied")
        }
        if let limit = self.inputStdDeviationMax {
          let worst = inputs.std.indices.max { abs(inputs.std[$0] - 1) < abs(inputs.std[$1] - 1) }
          let value = worst.map { abs(inputs.std[$0] - 1) } ?? .nan
          let ok = value < limit
          add("input_std_deviation_max", value, "< \(format(limit))", ok,
              ok ? "scaled inputs: largest |std − 1| \(format(value))" : "scaled input '\(worst.map { inputs.columns[$0] } ?? "?")' has std \(format(inputs.std[worst!])): inputs are not standardised")
        }
      } else {
        add("input_normalization", nil, "given", false, "no summary of the scaled inputs was given: cannot check normalisation")
      }
    }
    for gate in self.relative {
      let name = "relative[\(gate.metric.rawValue)]"
      guard let baseline = input.baseline else {
        add(name, nil, "within \(format(gate.maxWorse)) of the baseline", false, "no baseline report was given: cannot compare with the incumbent")
        continue
      }
      let ours = gate.metric.value(model), theirs = gate.metric.value(baseline)
      let worse = gate.metric.higherIsBetter ? theirs - ours : ours - theirs
      let ok = worse <= gate.maxWorse
      add(name, ours, "within \(format(gate.maxWorse)) of \(format(theirs))", ok,
          ok ? "\(gate.metric.rawValue) \(format(ours)) vs incumbent \(format(theirs))" : "\(gate.metric.rawValue) \(format(ours)) is worse than the incumbent's \(format(theirs)) by \(format(worse)) (> \(format(gate.maxWorse))): it would degrade production")
    }
    return GateVerdict(policy: self.name, results: results)
  }
}
