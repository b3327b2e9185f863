internal import Foundation
internal import SwiftProtobuf
internal import VaneCore
public import VaneProto
public import VaneQuality

/// Conversions between the generated gatekeeper messages and VaneQuality's types. Every field
/// read from a request is checked here or in the library; errors name the field by its path.

/// Re-raises an INVALID_ARGUMENT from the library with the request path of the message it
/// came from (`inline.predictions.` + `values[3]: …`).
public func prefixed<T>(_ path: String, _ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as VaneError where error.code == .invalidArgument {
    throw VaneError(.invalidArgument, "\(path).\(error.message)", cause: error.cause)
  }
}

extension Vane_V1_Predictions {
  /// The predictions, their class names and fold ids.
  /// - Throws: INVALID_ARGUMENT naming `path` and the field.
  public func decoded(
    path: String
  ) throws -> (predictions: Predictions, classes: [String], foldIDs: [Int]) {
    try prefixed(path) {
      guard self.sampleCount > 0 else {
        throw VaneError.invalidArgument(field: "sample_count", "must be positive")
      }
      guard self.labels.count == Int(self.sampleCount) else {
        throw VaneError.invalidArgument(
          field: "labels",
          "\(self.labels.count) labels for sample_count \(self.sampleCount)"
        )
      }
      guard self.classes.count >= 2 else {
        throw VaneError.invalidArgument(
          field: "classes",
          "need at least 2 class names (got \(self.classes.count))"
        )
      }
      guard Set(self.classes).count == self.classes.count,
        self.classes.allSatisfy({ !$0.isEmpty && !$0.contains("/") })
      else {
        throw VaneError.invalidArgument(
          field: "classes",
          "names must be distinct, non-empty and without '/' (got \(self.classes))"
        )
      }
      guard self.foldIds.isEmpty || self.foldIds.count == Int(self.sampleCount) else {
        throw VaneError.invalidArgument(
          field: "fold_ids",
          "\(self.foldIds.count) fold ids for sample_count \(self.sampleCount)"
        )
      }
      let predictions = try Predictions(
        values: self.values,
        classCount: self.classes.count,
        labels: self.labels.map(Int.init),
        valuesAreLogits: self.valuesAreLogits
      )
      return (predictions, self.classes, self.foldIds.map(Int.init))
    }
  }
}

extension Vane_V1_Calibration {
  public init(_ calibration: Calibration, classes: [String], sampleCount: Int, fitMs: Int64) {
    self.init()
    self.method = .init(calibration.method)
    self.parametersJson = calibration.parametersJSON()
    self.classes = classes
    self.sampleCount = Int64(sampleCount)
    self.fitTime = .init(unixMilliseconds: fitMs)
  }
}

extension Vane_V1_ReliabilityDiagram {
  public init(_ diagram: ReliabilityDiagram) {
    self.init()
    self.target = diagram.target
    self.binning = diagram.binning == .uniform ? .uniform : .quantile
    self.bins = diagram.bins.map { bin in
      .with {
        $0.lower = bin.lower
        $0.upper = bin.upper
        $0.count = Int64(bin.count)
        $0.meanPredicted = bin.meanConfidence
        $0.observedFrequency = bin.accuracy
      }
    }
    self.ece = diagram.ece
    self.mce = diagram.mce
  }
}

extension Vane_V1_Comparison {
  public init(_ comparison: QualityPolicy.Comparison) {
    switch comparison {
    case .lessThan: self = .lessThan
    case .lessOrEqual: self = .lessOrEqual
    case .greaterThan: self = .greaterThan
    case .greaterOrEqual: self = .greaterOrEqual
    }
  }
}

extension Vane_V1_ThresholdReference {
  public init(_ reference: QualityPolicy.Reference) {
    switch reference {
    case .absolute: self = .absolute
    case .baselineDelta: self = .baselineDelta
    case .baselineRatio: self = .baselineRatio
    }
  }
}

extension Vane_V1_GateSeverity {
  public init(_ severity: QualityPolicy.Severity) {
    self = severity == .blocking ? .blocking : .warning
  }
}

extension Vane_V1_GateResult {
  public init(_ result: GateResult) {
    self.init()
    self.gate = result.gate
    self.metric = result.metric
    self.value = result.value ?? .nan
    if let baseline = result.baselineValue { self.baselineValue = baseline }
    self.comparedValue = result.comparedValue ?? .nan
    self.threshold = result.threshold
    self.comparison = .init(result.comparison)
    self.reference = .init(result.reference)
    self.passed = result.passed
    self.skipped = result.skipped
    self.severity = .init(result.severity)
    self.reason = result.reason
  }
}

extension Vane_V1_Report {
  /// The report; reliability diagrams and folds only with `details`.
  public init(_ report: QualityReport, details: Bool = true) {
    self.init()
    self.id = report.id
    self.createTime = .init(unixMilliseconds: report.createdMs)
    self.subject = .with {
      $0.kind = report.subject.kind == .inline ? .inline : .bundle
      $0.manifestSha256 = report.subject.manifestSHA256
      $0.bundleID = report.subject.bundleID
      $0.bundlePath = report.subject.bundlePath
      $0.label = report.subject.label
      $0.predictionsSha256 = report.subject.predictionsSHA256
      $0.sampleCount = Int64(report.subject.sampleCount)
      $0.classes = report.subject.classes
    }
    self.policyName = report.policyName
    self.policySha256 = report.policySHA256
    self.passed = report.passed
    self.gates = report.gates.map(Vane_V1_GateResult.init)
    self.metrics = report.metrics
    self.baselineMetrics = report.baselineMetrics
    self.baselineReportID = report.baselineReportID
    if details {
      self.reliability = report.reliability.map(Vane_V1_ReliabilityDiagram.init)
      self.folds = report.folds.map { fold in
        .with {
          $0.foldID = Int32(clamping: fold.id)
          $0.sampleCount = Int64(fold.sampleCount)
          $0.metrics = fold.metrics
        }
      }
    }
    self.warnings = report.warnings
  }
}

extension Vane_V1_Policy {
  public init(_ stored: StoredPolicy) {
    self.init()
    self.name = stored.name
    self.text = stored.text
    self.format = stored.format == .json ? .json : .yaml
    self.sha256 = stored.sha256
    self.isDefault = stored.isDefault
    self.updateTime = .init(unixMilliseconds: stored.updatedMs)
    self.gates = stored.policy.gates.map { gate in
      .with {
        $0.name = gate.name
        $0.metric = gate.metric
        $0.comparison = .init(gate.comparison)
        $0.threshold = gate.threshold ?? .nan
        $0.intervalThresholds = gate.intervalThresholds
        $0.reference = .init(gate.reference)
        $0.severity = .init(gate.severity)
        $0.skipWithoutBaseline = gate.skipWithoutBaseline
        $0.note = gate.note
      }
    }
  }
}

extension Vane_V1_InputSummary {
  public func decoded(path: String) throws -> InputSummary? {
    guard !self.columns.isEmpty || !self.mean.isEmpty || !self.std.isEmpty else { return nil }
    guard self.mean.count == self.columns.count, self.std.count == self.columns.count else {
      throw VaneError.invalidArgument(
        field: path,
        "\(self.columns.count) columns, \(self.mean.count) means and \(self.std.count) stds"
      )
    }
    return InputSummary(columns: self.columns, mean: self.mean, std: self.std)
  }
}

extension QualityReport {
  /// A report as the API sent it (for drawing it client-side).
  public init(_ report: Vane_V1_Report) {
    func comparison(_ c: Vane_V1_Comparison) -> QualityPolicy.Comparison {
      switch c {
      case .lessThan: .lessThan
      case .lessOrEqual: .lessOrEqual
      case .greaterThan: .greaterThan
      default: .greaterOrEqual
      }
    }
    func reference(_ r: Vane_V1_ThresholdReference) -> QualityPolicy.Reference {
      switch r {
      case .baselineDelta: .baselineDelta
      case .baselineRatio: .baselineRatio
      default: .absolute
      }
    }
    self.init(
      id: report.id,
      createdMs: report.createTime.seconds * 1000 + Int64(report.createTime.nanos / 1_000_000),
      subject: .init(
        kind: report.subject.kind == .bundle ? .bundle : .inline,
        manifestSHA256: report.subject.manifestSha256,
        bundleID: report.subject.bundleID,
        bundlePath: report.subject.bundlePath,
        label: report.subject.label,
        predictionsSHA256: report.subject.predictionsSha256,
        sampleCount: Int(report.subject.sampleCount),
        classes: report.subject.classes
      ),
      policyName: report.policyName,
      policySHA256: report.policySha256,
      passed: report.passed,
      gates: report.gates.map { gate in
        GateResult(
          gate: gate.gate,
          metric: gate.metric,
          value: gate.value.isNaN ? nil : gate.value,
          baselineValue: gate.hasBaselineValue ? gate.baselineValue : nil,
          comparedValue: gate.comparedValue.isNaN ? nil : gate.comparedValue,
          threshold: gate.threshold,
          comparison: comparison(gate.comparison),
          reference: reference(gate.reference),
          severity: gate.severity == .warning ? .warning : .blocking,
          passed: gate.passed,
          skipped: gate.skipped,
          reason: gate.reason
        )
      },
      metrics: report.metrics,
      baselineMetrics: report.baselineMetrics,
      baselineReportID: report.baselineReportID,
      reliability: report.reliability.map { diagram in
        ReliabilityDiagram(
          target: diagram.target,
          binning: diagram.binning == .quantile ? .quantile : .uniform,
          bins: diagram.bins.map {
            ReliabilityBin(
              lower: $0.lower,
              upper: $0.upper,
              count: Int($0.count),
              meanConfidence: $0.meanPredicted,
              accuracy: $0.observedFrequency
            )
          },
          ece: diagram.ece,
          mce: diagram.mce
        )
      },
      folds: report.folds.map {
        .init(id: Int($0.foldID), sampleCount: Int($0.sampleCount), metrics: $0.metrics)
      },
      warnings: report.warnings
    )
  }
}
