import ArgumentParser
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneCore
import VaneProto
import VaneQuality
import VaneRuntime
internal import Foundation

/// `vane gate …`: the gatekeeper's client commands.
struct GateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gate",
    abstract:
      "Evaluate predictions or bundles against a quality policy, fit calibrations, read reports.",
    subcommands: [GateEvaluateCommand.self, GateCalibrateCommand.self, GateReportCommand.self]
  )
}

/// Options every gatekeeper client command shares.
struct GateClientOptions: ParsableArguments {
  @Option(help: "Gatekeeper address.")
  var address: String = "127.0.0.1:\(ServiceKind.gatekeeper.defaultPort)"

  @Option(help: "Deadline in seconds.")
  var timeout: Double = 120

  @OptionGroup var connection: ClientConnectionOptions

  func withClient<R: Sendable>(
    _ body:
      @Sendable (Vane_V1_GatekeeperService.Client<ShimClientTransport>, CallOptions) async throws ->
      R
  ) async throws -> R {
    try await self.connection.withClient(address: self.address, timeout: self.timeout) {
      grpc,
      options in
      try await body(Vane_V1_GatekeeperService.Client(wrapping: grpc), options)
    }
  }

  /// A predictions CSV (see ``PredictionsCSV``) as the API's message.
  static func predictions(_ path: String, logits: Bool) throws -> Vane_V1_Predictions {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw Output.fileError(path, "cannot be read")
    }
    let file: PredictionsCSV
    do {
      try BinaryFileKind.check(data.prefix(4096), name: path, expected: "predictions as CSV text")
      file = try PredictionsCSV.parse(String(decoding: data, as: UTF8.self), name: path)
      if !logits { try file.checkProbabilities(name: path) }
    } catch let error as VaneError {
      throw Output.fileError(path, error.message)
    }
    return .with {
      $0.sampleCount = UInt32(file.labels.count)
      $0.classes = file.classes
      $0.values = file.values
      $0.valuesAreLogits = logits
      $0.labels = file.labels.map(Int32.init)
      $0.foldIds = file.foldIDs.map(Int32.init)
    }
  }

  /// The report as a person reads it: the verdict, each gate, the warnings.
  static func print(_ report: Vane_V1_Report) {
    let name =
      [report.subject.label, report.subject.bundleID].first { !$0.isEmpty } ?? "predictions"
    Output.line(
      "\(report.passed ? "PASSED" : "FAILED")  \(name) under policy \(report.policyName)  (\(report.subject.sampleCount) samples\(report.id.isEmpty ? ", not stored" : ", report \(report.id)"))"
    )
    for gate in report.gates {
      let outcome =
        gate.skipped ? "skip" : gate.passed ? "pass" : gate.severity == .warning ? "WARN" : "FAIL"
      Output.line(
        "  \(outcome)  \(gate.gate.padding(toLength: 18, withPad: " ", startingAt: 0)) \(gate.reason)"
      )
    }
    for warning in report.warnings { Output.line("  warning: \(warning)") }
  }
}

/// `vane gate evaluate`: judge predictions (a CSV) or a bundle against a policy.
struct GateEvaluateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract:
      "Evaluate predictions or a bundle's out-of-fold predictions against a policy; the report is stored unless --dry-run.",
    discussion: """
      PREDICTIONS is a CSV with a header `label,<class>,<class>[,…][,fold]`: the true label (a class name or index), one \
      column per class (probabilities, or logits with --logits), and an optional fold id. Binary models have two classes \
      (e.g. DOWN,UP). nan/inf values are accepted: the non_finite gate counts them.

      Exit code: 0 when every blocking gate passed, 3 when one failed, 1 on an RPC error, 2 on a file that cannot be read or parsed, 64 on bad arguments.
      """
  )

  @Argument(help: "Predictions CSV (omit with --bundle).")
  var predictions: String?

  @Option(
    help:
      "Absolute path (on the gatekeeper's host) of a bundle .tar.gz or directory to evaluate instead."
  )
  var bundle: String?

  @Flag(help: "The class columns hold logits, not probabilities.")
  var logits = false

  @Option(help: "Policy name (default: the gatekeeper's default policy).")
  var policy: String = ""

  @Option(
    help:
      "Bar interval of the data (15m, 1h, 4h, 1d): picks per-interval thresholds; unknown = the strictest."
  )
  var interval: String = ""

  @Option(
    name: .customLong("manifest-sha256"),
    help: "Bundle manifest these predictions belong to (needed to bless by the report)."
  )
  var manifest: String = ""

  @Option(help: "Name shown in the report.")
  var label: String = ""

  @Option(
    name: .customLong("baseline"),
    help: "The baseline model's predictions CSV on the same samples (paired comparison)."
  )
  var baseline: String?

  @Option(
    name: .customLong("baseline-report"),
    help: "A stored report whose metrics are the baseline."
  )
  var baselineReport: String = ""

  @Option(
    name: .customLong("inputs"),
    help:
      "CSV of the scaled inputs the model saw (header = column names), for the normalisation gates."
  )
  var inputs: String?

  @Option(help: "Bins for ECE and reliability diagrams.")
  var bins: UInt32 = 15

  @Flag(name: .customLong("dry-run"), help: "Do not store the report.")
  var dryRun = false

  @Option(help: "Also write the one-page HTML report here.")
  var html: String?

  @Flag(help: "Print the report as JSON.")
  var json = false

  @OptionGroup var client: GateClientOptions

  func validate() throws {
    guard (self.predictions == nil) != (self.bundle == nil) else {
      throw ValidationError("give PREDICTIONS or --bundle, not both")
    }
  }

  func run() async throws {
    var request = Vane_V1_EvaluateRequest()
    if let bundle = self.bundle {
      request.bundle.path =
        bundle.hasPrefix("/") ? bundle : FileManager.default.currentDirectoryPath + "/" + bundle
    } else if let path = self.predictions {
      var inline = Vane_V1_InlineSubject()
      inline.predictions = try GateClientOptions.predictions(path, logits: self.logits)
      inline.interval = self.interval
      inline.manifestSha256 = self.manifest
      inline.label = self.label.isEmpty ? URL(fileURLWithPath: path).lastPathComponent : self.label
      if let baseline = self.baseline {
        inline.baseline = try GateClientOptions.predictions(baseline, logits: self.logits)
      }
      if let inputs = self.inputs { inline.inputs = try Self.inputSummary(inputs) }
      request.inline = inline
    }
    request.policyName = self.policy
    request.baselineReportID = self.baselineReport
    request.bins = self.bins
    request.dryRun = self.dryRun
    let (json, html, message) = (self.json, self.html, request)
    let report = try await self.client.withClient { client, options in
      try await client.evaluate(message, options: options)
    }
    if json { Output.line(try report.jsonString()) } else { GateClientOptions.print(report) }
    if let html {
      try Data(QualityReportPage.html(QualityReport(report)).utf8).write(
        to: URL(fileURLWithPath: html)
      )
    }
    if !report.passed { throw ExitCode(3) }
  }

  /// Column means and standard deviations of a CSV of scaled inputs (``InputSummary/parseCSV(_:name:)``).
  static func inputSummary(_ path: String) throws -> Vane_V1_InputSummary {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw Output.fileError(path, "cannot be read")
    }
    let summary: InputSummary
    do {
      try BinaryFileKind.check(data.prefix(4096), name: path, expected: "scaled inputs as CSV text")
      summary = try InputSummary.parseCSV(String(decoding: data, as: UTF8.self), name: path)
    } catch let error as VaneError {
      throw Output.fileError(path, error.message)
    }
    return .with {
      $0.columns = summary.columns
      $0.mean = summary.mean
      $0.std = summary.std
    }
  }
}

/// `vane gate calibrate`: fit a calibration map to predictions.
struct GateCalibrateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "calibrate",
    abstract:
      "Fit a probability calibration to predictions and labels; print metrics before and after.",
    discussion:
      "PREDICTIONS is a CSV as for `vane gate evaluate`. Exit code: 0 on success, 1 on an RPC error, 2 on a file that cannot be read or parsed, 64 on bad arguments."
  )

  @Argument(help: "Predictions CSV.")
  var predictions: String

  @Flag(help: "The class columns hold logits, not probabilities.")
  var logits = false

  @Option(help: "auto, none, temperature, platt, isotonic or vector.")
  var method: String = "auto"

  @Flag(
    name: .customLong("cross-fit"),
    help: "Measure 'after' on held-out folds (the fold column, or 5 contiguous blocks)."
  )
  var crossFit = false

  @Option(help: "Bins for ECE and reliability diagrams.")
  var bins: UInt32 = 15

  @Option(
    help:
      "Write the fitted calibration (method and parameters, as a bundle stores it) to this JSON file."
  )
  var out: String?

  @Flag(help: "Print the response as JSON.")
  var json = false

  @OptionGroup var client: GateClientOptions

  func run() async throws {
    let methods: [String: Vane_V1_CalibrationMethod] = [
      "auto": .auto, "none": .none, "temperature": .temperature, "platt": .platt,
      "isotonic": .isotonic, "vector": .vector,
    ]
    guard let method = methods[self.method] else {
      throw ValidationError(
        "--method: '\(self.method)' is not one of \(methods.keys.sorted().joined(separator: ", "))"
      )
    }
    var request = Vane_V1_CalibrateRequest()
    request.predictions = try GateClientOptions.predictions(self.predictions, logits: self.logits)
    request.method = method
    request.crossFit = self.crossFit
    request.bins = self.bins
    let message = request
    let response = try await self.client.withClient { client, options in
      try await client.calibrate(message, options: options)
    }
    if self.json {
      Output.line(try response.jsonString())
    } else {
      let chosen = response.calibration
      Output.line(
        "method \(Self.name(chosen.method)) \(chosen.parametersJson)  (fitted on \(chosen.sampleCount) samples)"
      )
      for candidate in response.candidates {
        Output.line(
          "  \(candidate.selected ? "*" : " ") \(Self.name(candidate.method).padding(toLength: 12, withPad: " ", startingAt: 0)) cross-validated log loss \(QualityFormat.number(candidate.metrics["log_loss"]))  ece \(QualityFormat.number(candidate.metrics["ece"]))"
        )
      }
      Output.line(
        "  metric            before      after\(response.afterIsCrossFitted ? " (cross-fitted)" : " (on the fitting data)")"
      )
      for key in ["log_loss", "brier", "ece", "mce", "auc", "accuracy", "share_above_0_99"] {
        Output.line(
          "  \(key.padding(toLength: 18, withPad: " ", startingAt: 0))\(QualityFormat.number(response.metricsBefore[key]).padding(toLength: 12, withPad: " ", startingAt: 0))\(QualityFormat.number(response.metricsAfter[key]))"
        )
      }
    }
    if let out = self.out {
      let method = Self.name(response.calibration.method)
      let document = try JSONSerialization.data(
        withJSONObject: [
          "method": method, "parameters": response.calibration.parametersJson,
          "classes": response.calibration.classes,
        ],
        options: [.sortedKeys, .prettyPrinted]
      )
      try document.write(to: URL(fileURLWithPath: out))
    }
  }

  static func name(_ method: Vane_V1_CalibrationMethod) -> String {
    switch method {
    case .none: "none"
    case .temperature: "temperature"
    case .platt: "platt"
    case .isotonic: "isotonic"
    case .vector: "vector"
    default: "auto"
    }
  }
}

/// `vane gate report`: print a stored report, or write its HTML page.
struct GateReportCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Print a stored report (or the newest ones) and write its one-page HTML report.",
    discussion:
      "Exit code: 0 on success, 1 on an RPC error (NOT_FOUND for an unknown id), 64 on bad arguments."
  )

  @Argument(help: "Report id (default: the newest report).")
  var id: String?

  @Option(
    help: "Write the HTML report (gates, metrics, reliability diagrams, score histogram) here."
  )
  var html: String?

  @Flag(help: "Print the report as JSON.")
  var json = false

  @OptionGroup var client: GateClientOptions

  func run() async throws {
    let id = self.id
    let report = try await self.client.withClient { client, options -> Vane_V1_Report? in
      if let id { return try await client.getReport(.with { $0.reportID = id }, options: options) }
      return try await client.listReports(
        .with {
          $0.page.pageSize = 1
          $0.includeDetails = true
        },
        options: options
      ).reports.first
    }
    guard let report else {
      FileHandle.standardError.write(Data("ERROR: no report is stored yet\n".utf8))
      throw ExitCode(1)
    }
    if self.json { Output.line(try report.jsonString()) } else { GateClientOptions.print(report) }
    if let html = self.html {
      try Data(QualityReportPage.html(QualityReport(report)).utf8).write(
        to: URL(fileURLWithPath: html)
      )
      if !self.json { Output.line("wrote \(html)") }
    }
  }
}
