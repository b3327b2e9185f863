internal import Foundation
internal import VaneCore
internal import VaneMath

/// The result of judging one set of predictions against one policy: what the gatekeeper
/// stores, lists, serves and draws.
public struct QualityReport: Sendable, Equatable, Codable {
  /// What was judged.
  public struct Subject: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case inline, bundle }
    public var kind: Kind
    /// SHA-256 of the bundle manifest (bundle subjects, or inline ones that named it).
    public var manifestSHA256: String
    public var bundleID: String
    public var bundlePath: String
    /// Free-text name of an inline subject.
    public var label: String
    /// ``Predictions/digest(classes:)`` of the judged predictions.
    public var predictionsSHA256: String
    public var sampleCount: Int
    public var classes: [String]
    /// Bar interval of the data, when known.
    public var interval: String?

    public init(
      kind: Kind,
      manifestSHA256: String = "",
      bundleID: String = "",
      bundlePath: String = "",
      label: String = "",
      predictionsSHA256: String = "",
      sampleCount: Int = 0,
      classes: [String] = [],
      interval: String? = nil
    ) {
      self.kind = kind
      self.manifestSHA256 = manifestSHA256
      self.bundleID = bundleID
      self.bundlePath = bundlePath
      self.label = label
      self.predictionsSHA256 = predictionsSHA256
      self.sampleCount = sampleCount
      self.classes = classes
      self.interval = interval
    }
  }

  /// The metrics of one fold.
  public struct Fold: Sendable, Equatable, Codable {
    public var id: Int
    public var sampleCount: Int
    public var metrics: [String: Double]

    public init(id: Int, sampleCount: Int, metrics: [String: Double]) {
      self.id = id
      self.sampleCount = sampleCount
      self.metrics = metrics
    }
  }

  /// Server-assigned id ("" until stored) and creation time (ms since the epoch).
  public var id: String
  public var createdMs: Int64
  public var subject: Subject
  public var policyName: String
  public var policySHA256: String
  public var passed: Bool
  public var gates: [GateResult]
  public var metrics: [String: Double]
  public var baselineMetrics: [String: Double]
  public var baselineReportID: String
  /// "top_label" first, then one per class.
  public var reliability: [ReliabilityDiagram]
  public var folds: [Fold]
  public var warnings: [String]

  public init(
    id: String,
    createdMs: Int64,
    subject: Subject,
    policyName: String,
    policySHA256: String,
    passed: Bool,
    gates: [GateResult],
    metrics: [String: Double],
    baselineMetrics: [String: Double],
    baselineReportID: String,
    reliability: [ReliabilityDiagram],
    folds: [Fold],
    warnings: [String]
  ) {
    self.id = id
    self.createdMs = createdMs
    self.subject = subject
    self.policyName = policyName
    self.policySHA256 = policySHA256
    self.passed = passed
    self.gates = gates
    self.metrics = metrics
    self.baselineMetrics = baselineMetrics
    self.baselineReportID = baselineReportID
    self.reliability = reliability
    self.folds = folds
    self.warnings = warnings
  }

  /// The blocking gates that failed.
  public var failedGates: [String] {
    self.gates.filter { !$0.passed && !$0.skipped && $0.severity == .blocking }.map(\.gate)
  }
}

/// What to judge: predictions and everything known about where they come from.
public struct Judgement: Sendable {
  public var predictions: Predictions
  public var classes: [String]
  /// One fold id per sample, or empty.
  public var foldIDs: [Int]
  public var subject: QualityReport.Subject
  /// The baseline: its predictions on the same samples (paired), or the metrics of a stored
  /// report (with its id).
  public enum Baseline: Sendable {
    case paired(Predictions)
    case report(id: String, metrics: [String: Double])
  }
  public var baseline: Baseline?
  public var baseAUCs: [String: Double]
  public var inputs: InputSummary?
  /// Equal-width bins for ECE and the diagrams.
  public var bins: Int

  public init(
    predictions: Predictions,
    classes: [String],
    foldIDs: [Int] = [],
    subject: QualityReport.Subject,
    baseline: Baseline? = nil,
    baseAUCs: [String: Double] = [:],
    inputs: InputSummary? = nil,
    bins: Int = 15
  ) {
    self.predictions = predictions
    self.classes = classes
    self.foldIDs = foldIDs
    self.subject = subject
    self.baseline = baseline
    self.baseAUCs = baseAUCs
    self.inputs = inputs
    self.bins = bins
  }
}

extension QualityReport {
  /// Folds smaller than this get a warning: their metrics are noise.
  public static let smallFold = 50

  /// Measures the predictions (and each fold, and a paired baseline), applies the policy and
  /// writes the report (id empty, to be assigned when stored).
  /// - Throws: INVALID_ARGUMENT naming the field when classes, fold ids or a paired baseline
  ///   do not match the predictions.
  public static func judge(
    _ judgement: Judgement,
    policy: QualityPolicy,
    policySHA256: String,
    at ms: Int64
  ) throws -> QualityReport {
    let predictions = judgement.predictions
    guard judgement.classes.count == predictions.classCount,
      Set(judgement.classes).count == judgement.classes.count,
      judgement.classes.allSatisfy({ !$0.isEmpty })
    else {
      throw VaneError.invalidArgument(
        field: "predictions.classes",
        "need \(predictions.classCount) distinct, non-empty names (got \(judgement.classes))"
      )
    }
    guard judgement.foldIDs.isEmpty || judgement.foldIDs.count == predictions.count else {
      throw VaneError.invalidArgument(
        field: "predictions.fold_ids",
        "\(judgement.foldIDs.count) fold ids for \(predictions.count) samples"
      )
    }
    guard (1 ... 1000).contains(judgement.bins) else {
      throw VaneError.invalidArgument(field: "bins", "must be between 1 and 1000")
    }
    let measurement = Measurement(predictions, classes: judgement.classes, bins: judgement.bins)
    var warnings: [String] = []
    var folds: [Fold] = []
    var foldAUCs: [Int: Double] = [:]
    if !judgement.foldIDs.isEmpty {
      var rows: [Int: [Int]] = [:]
      for (i, id) in judgement.foldIDs.enumerated() { rows[id, default: []].append(i) }
      for id in rows.keys.sorted() {
        let fold = Measurement(
          predictions.subset(rows[id]!),
          classes: judgement.classes,
          bins: judgement.bins
        )
        folds.append(Fold(id: id, sampleCount: rows[id]!.count, metrics: fold.values))
        if let auc = fold.values["auc"] { foldAUCs[id] = auc }
        if rows[id]!.count < Self.smallFold {
          warnings.append("fold \(id) has \(rows[id]!.count) samples: its metrics are noise")
        }
      }
    }
    var baselineMetrics: [String: Double]?
    var baselineReportID = ""
    switch judgement.baseline {
    case .paired(let baseline):
      guard baseline.count == predictions.count, baseline.classCount == predictions.classCount
      else {
        throw VaneError.invalidArgument(
          field: "baseline",
          "\(baseline.count) samples of \(baseline.classCount) classes; the candidate has \(predictions.count) of \(predictions.classCount)"
        )
      }
      if let i = zip(baseline.labels, predictions.labels).enumerated().first(where: {
        $0.element.0 != $0.element.1
      })?.offset {
        throw VaneError.invalidArgument(
          field: "baseline.labels[\(i)]",
          "differs from the candidate's label: paired predictions must be on the same samples"
        )
      }
      baselineMetrics =
        Measurement(baseline, classes: judgement.classes, bins: judgement.bins).values
    case .report(let id, let metrics):
      baselineMetrics = metrics
      baselineReportID = id
    case nil: break
    }
    let input = GateInput(
      model: measurement,
      baseAUCs: judgement.baseAUCs,
      foldAUCs: foldAUCs,
      interval: judgement.subject.interval,
      inputs: judgement.inputs,
      baseline: baselineMetrics
    )
    let metrics = input.metrics()
    let verdict = policy.evaluate(input, metrics: metrics)
    for gate in verdict.warnings {
      warnings.append("warning gate \(gate.gate) failed: \(gate.reason)")
    }
    var subject = judgement.subject
    subject.predictionsSHA256 = predictions.digest(classes: judgement.classes)
    subject.sampleCount = predictions.count
    subject.classes = judgement.classes
    return QualityReport(
      id: "",
      createdMs: ms,
      subject: subject,
      policyName: policy.name,
      policySHA256: policySHA256,
      passed: verdict.passed,
      gates: verdict.results,
      metrics: metrics.values,
      baselineMetrics: baselineMetrics ?? [:],
      baselineReportID: baselineReportID,
      reliability: measurement.reliability,
      folds: folds,
      warnings: warnings
    )
  }
}

extension Predictions {
  /// SHA-256 (hex) of the class names, the labels and the probabilities: names a prediction
  /// set in reports. Layout: "vane-predictions-v1\n", each class name and "\n", then per sample
  /// the label (Int32) and its probabilities (Float64), little-endian.
  public func digest(classes: [String]) -> String {
    var hasher = SHA256()
    hasher.update(data: Data("vane-predictions-v1\n".utf8))
    for name in classes { hasher.update(data: Data((name + "\n").utf8)) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(self.count * (4 + 8 * self.classCount))
    for i in 0 ..< self.count {
      withUnsafeBytes(of: Int32(self.labels[i]).littleEndian) { bytes.append(contentsOf: $0) }
      for k in 0 ..< self.classCount {
        withUnsafeBytes(of: self.probability(i, k).bitPattern.littleEndian) {
          bytes.append(contentsOf: $0)
        }
      }
    }
    hasher.update(data: bytes)
    return hasher.finalize().hexString
  }

  /// Predictions as the API sends them: `values` is N × K row-major, probabilities (each finite
  /// row in [0, 1] and summing to 1 within 1e-6) or raw logits (turned into probabilities by a
  /// softmax; the logits are kept). Rows with a NaN or infinite value are accepted: the
  /// `non_finite` gate counts them.
  /// - Throws: INVALID_ARGUMENT naming the field (`values[i]`, `labels[i]`, …) and the reason.
  public init(values: [Double], classCount: Int, labels: [Int], valuesAreLogits: Bool) throws {
    guard classCount >= 2 else {
      throw VaneError.invalidArgument(
        field: "classes",
        "need at least 2 classes (got \(classCount))"
      )
    }
    guard !labels.isEmpty else { throw VaneError.invalidArgument(field: "labels", "no samples") }
    guard values.count == labels.count * classCount else {
      throw VaneError.invalidArgument(
        field: "values",
        "\(values.count) values for \(labels.count) samples × \(classCount) classes"
      )
    }
    if valuesAreLogits {
      var probabilities = Logistic.softmax(values, columns: classCount)
      // A row with a NaN or infinite logit has no softmax: it stays non-finite for the gate.
      for i in 0 ..< labels.count {
        let row = values[(i * classCount) ..< ((i + 1) * classCount)]
        if !row.allSatisfy(\.isFinite) {
          for k in 0 ..< classCount {
            probabilities[i * classCount + k] = row.contains(where: \.isNaN) ? .nan : .infinity
          }
        }
      }
      try self.init(
        probabilities: probabilities,
        classCount: classCount,
        labels: labels,
        logits: values
      )
    } else {
      for i in 0 ..< labels.count {
        let row = values[(i * classCount) ..< ((i + 1) * classCount)]
        switch Self.problem(ofProbabilities: row) {
        case .outside(let bad)?:
          throw VaneError.invalidArgument(
            field: "values[\(bad)]",
            "probability \(values[bad]) is outside [0, 1] (set values_are_logits for logits)"
          )
        case .sum(let total)?:
          throw VaneError.invalidArgument(
            field: "values[\(i * classCount)...]",
            "the probabilities of sample \(i) sum to \(total), not 1"
          )
        case nil:
          continue
        }
      }
      try self.init(probabilities: values, classCount: classCount, labels: labels)
    }
  }

  /// What is wrong with one row of probabilities.
  public enum RowProblem: Sendable, Equatable {
    /// The value at this index (of the whole array) is outside [0, 1].
    case outside(Int)
    /// The row sums to this, not 1 (within 1e-6).
    case sum(Double)
  }

  /// Checks a finite row of probabilities (a row with a NaN or infinite value passes: the
  /// `non_finite` gate counts it). The one check the API and the CLI both apply.
  public static func problem(ofProbabilities row: ArraySlice<Double>) -> RowProblem? {
    guard row.allSatisfy(\.isFinite) else { return nil }
    if let bad = row.firstIndex(where: { $0 < 0 || $0 > 1 }) { return .outside(bad) }
    let total = row.reduce(0, +)
    return abs(total - 1) <= 1e-6 ? nil : .sum(total)
  }
}
