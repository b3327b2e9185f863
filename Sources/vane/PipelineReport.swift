internal import Foundation

/// How a finished pipeline run reads: the summary table on the terminal.
enum PipelineReport {
  static func printSummary(_ summary: PipelineSummary, seconds: Double) {
    func pad(_ text: String, _ width: Int) -> String {
      text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
    }
    func number(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "-" }

    Output.line("")
    Output.line(
      "== summary: \(summary.bars) live bars replayed, \(summary.predictions) predictions, \(summary.failedPredictions) failed, in \(String(format: "%.0f", seconds)) s"
    )
    Output.line("")
    Output.line("   stage                      seconds")
    for stage in summary.stages {
      Output.line("   \(pad(stage.name, 26)) \(String(format: "%7.1f", stage.seconds))")
    }
    Output.line("")
    Output.line(
      "   "
        + [
          pad("version", 8), pad("role", 10), pad("OOF AUC h1", 11), pad("live AUC h1", 12),
          pad("log loss", 9), pad("answers", 8), pad("matured", 8), "outcome",
        ].joined(separator: " ")
    )
    for version in summary.versions {
      let row = [
        pad(version.label, 8), pad(version.role, 10), pad(number(version.oofAUC), 11),
        pad(number(version.liveAUC), 12), pad(number(version.liveLogLoss), 9),
        pad("\(version.predictions)", 8), pad("\(version.matured)", 8), version.outcome,
      ]
      Output.line("   " + row.joined(separator: " "))
    }
    for version in summary.versions where !version.reason.isEmpty {
      Output.line("   \(version.label): \(version.reason)")
    }
    for reason in summary.retrainReasons { Output.line("   retrained at \(reason)") }
    if !summary.firstFailure.isEmpty {
      Output.line("   first failed prediction: \(summary.firstFailure)")
    }
  }
}
