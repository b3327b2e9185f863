import VaneProto
import VaneQuality
internal import Foundation

extension PipelineReport {
  /// The run as one HTML page (no script from elsewhere, no network): data coverage, walk-forward
  /// AUC per fold and model, reliability diagrams, gate results, the rollout timeline with traffic
  /// shares, live metrics per version, latency percentiles. Plots are SVG.
  static func html(_ summary: PipelineSummary, seconds: Double) -> String {
    let e = QualityReportPage.escape
    func number(_ value: Double?, _ format: String = "%.4f") -> String {
      value.map { String(format: format, $0) } ?? "–"
    }
    func day(_ ms: Double) -> String { String(PipelineTime.text(Int64(ms)).prefix(10)) }
    var page: [String] = []
    page.append(
      """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>Vane pipeline report</title>
      <style>
      body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
      h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
      table { border-collapse: collapse; margin: 8px 0 16px; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
      td.n { text-align: right; font-variant-numeric: tabular-nums; }
      .fail { color: #b00020; } .pass { color: #16794c; } .muted { color: #777; }
      svg.plot { margin: 6px 12px 6px 0; } svg .title { font-weight: 600; font-size: 13px; }
      svg text { font-size: 11px; fill: #333; } svg .axis { stroke: #333; } svg .grid { stroke: #e6e6e6; } svg .tick { stroke: #333; }
      svg .diagonal { stroke: #999; stroke-dasharray: 4 4; } svg .axis-title { font-size: 12px; }
      </style></head><body>
      <h1>Vane pipeline report</h1>
      <p>\(summary.bars) live bars replayed after \(e(PipelineTime.text(summary.cut))) UTC, \(summary.predictions) predictions, \(summary.failedPredictions) failed; the run took \(String(format: "%.0f", seconds)) s.
      Each stage below was a call to a running service; the replay ingested one bar at a time and predicted it.</p>
      """
    )

    // What became of each version.
    page.append(
      "<h2>Versions</h2><table><tr><th>version</th><th>role</th><th>bundle</th><th>OOF AUC h1</th><th>live AUC h1</th><th>live log loss h1</th><th>answers</th><th>matured</th><th>outcome</th></tr>"
    )
    for v in summary.versions {
      let css =
        v.outcome == "PROMOTED"
        ? "pass" : v.outcome.contains("ROLLED") || v.outcome.contains("NOT") ? "fail" : ""
      page.append(
        "<tr><td>\(e(v.label))</td><td>\(e(v.role))</td><td class=\"muted\">\(e(v.bundleID.isEmpty ? v.version : v.bundleID))</td><td class=\"n\">\(number(v.oofAUC))</td><td class=\"n\">\(number(v.liveAUC))</td><td class=\"n\">\(number(v.liveLogLoss))</td><td class=\"n\">\(v.predictions)</td><td class=\"n\">\(v.matured)</td><td class=\"\(css)\">\(e(v.outcome))\(v.reason.isEmpty ? "" : ": " + e(v.reason))</td></tr>"
      )
    }
    page.append("</table>")
    if !summary.retrainReasons.isEmpty {
      page.append(
        "<p>Retrained at " + summary.retrainReasons.map(e).joined(separator: "; ") + ".</p>"
      )
    }
    page.append("<table><tr><th>stage</th><th>seconds</th></tr>")
    for stage in summary.stages {
      page.append(
        "<tr><td>\(e(stage.name))</td><td class=\"n\">\(String(format: "%.1f", stage.seconds))</td></tr>"
      )
    }
    page.append("</table>")

    // Data coverage.
    page.append(
      "<h2>Data coverage</h2><table><tr><th>symbol</th><th>history bars</th><th>first</th><th>last</th><th>gaps</th><th>live bars</th></tr>"
    )
    for c in summary.coverage {
      page.append(
        "<tr><td>\(e(c.symbol))</td><td class=\"n\">\(c.bars)</td><td>\(e(PipelineTime.text(c.first)))</td><td>\(e(PipelineTime.text(c.last)))</td><td class=\"n\">\(c.gaps)</td><td class=\"n\">\(c.liveBars)</td></tr>"
      )
    }
    page.append("</table>")

    // Walk-forward AUC per fold and model.
    page.append("<h2>Walk-forward: out-of-fold AUC per fold (horizon 1 bar)</h2><div>")
    for version in summary.versions.map(\.label) {
      let folds = summary.folds.filter { $0.version == version }
      guard !folds.isEmpty else { continue }
      var seen: [String] = []
      for fold in folds where !seen.contains(fold.model) { seen.append(fold.model) }
      let series = seen.map { model in
        SVGPlot.Series(
          name: model,
          points: folds.filter { $0.model == model }.map { (Double($0.fold), $0.auc) },
          markers: true
        )
      }
      let chance = SVGPlot.Series(
        name: "chance",
        points: [
          (Double(folds.map(\.fold).min() ?? 0), 0.5), (Double(folds.map(\.fold).max() ?? 1), 0.5),
        ],
        dashed: true
      )
      page.append(
        SVGPlot(
          title: "\(version): AUC per fold",
          xTitle: "fold (each a month of test bars)",
          yTitle: "out-of-fold AUC",
          series: series + [chance]
        ).svg()
      )
    }
    page.append("</div>")

    // Reliability diagrams and gates, per version's report.
    page.append("<h2>Calibration: reliability diagrams of the out-of-fold predictions</h2>")
    page.append(
      "<p>Before: the served model's raw out-of-fold predictions. After: the same method fitted on the other folds and applied to each (cross-fitted). Then each target under the calibration the bundle serves.</p><div>"
    )
    for version in summary.versions.map(\.label) {
      if let calibration = summary.calibrations[version] {
        for (stage, diagrams) in [
          ("before calibration", calibration.reliabilityBefore),
          (
            "after \((try? calibration.calibration.method.decoded(field: "method"))?.rawValue ?? "calibration"), cross-fitted",
            calibration.reliabilityAfter
          ),
        ] {
          guard let diagram = diagrams.first(where: { $0.target == "top_label" }) ?? diagrams.first
          else { continue }
          let bins = diagram.bins.filter { $0.count > 0 }
          let plot = SVGPlot(
            title: "\(version): top label \(stage) (ECE \(String(format: "%.4f", diagram.ece)))",
            xTitle: "mean predicted probability",
            yTitle: "observed frequency",
            series: [
              SVGPlot.Series(
                name: "bins",
                points: bins.map { ($0.meanPredicted, $0.observedFrequency) },
                markers: true
              )
            ],
            xRange: 0 ... 1,
            yRange: 0 ... 1,
            diagonal: true
          )
          page.append(plot.svg(width: 340, height: 320))
        }
      }
      guard let report = summary.reports[version] else { continue }
      for diagram in report.reliability {
        let bins = diagram.bins.filter { $0.count > 0 }
        let plot = SVGPlot(
          title:
            "\(version): \(diagram.target.isEmpty ? "top label" : diagram.target) (ECE \(String(format: "%.4f", diagram.ece)))",
          xTitle: "mean predicted probability",
          yTitle: "observed frequency",
          series: [
            SVGPlot.Series(
              name: "bins",
              points: bins.map { ($0.meanPredicted, $0.observedFrequency) },
              markers: true
            )
          ],
          xRange: 0 ... 1,
          yRange: 0 ... 1,
          diagonal: true
        )
        page.append(plot.svg(width: 340, height: 320))
      }
    }
    page.append("</div>")
    page.append("<h2>Gates</h2>")
    for version in summary.versions.map(\.label) {
      guard let report = summary.reports[version] else { continue }
      page.append(
        "<p>\(e(version)) under '\(e(report.policyName))': <b class=\"\(report.passed ? "pass" : "fail")\">\(report.passed ? "passed" : "failed")</b> (report \(e(report.id)))</p>"
      )
      page.append(
        "<table><tr><th>gate</th><th>metric</th><th>value</th><th>threshold</th><th>result</th></tr>"
      )
      for gate in report.gates {
        let result = gate.skipped ? "skipped" : gate.passed ? "passed" : "FAILED"
        page.append(
          "<tr><td>\(e(gate.gate))</td><td>\(e(gate.metric))</td><td class=\"n\">\(number(gate.value))</td><td class=\"n\">\(number(gate.threshold))</td><td class=\"\(gate.passed ? "pass" : "fail")\">\(result)\(gate.reason.isEmpty ? "" : ": " + e(gate.reason))</td></tr>"
        )
      }
      page.append("</table>")
    }
    if !summary.defaultPolicyFailures.isEmpty {
      page.append(
        "<p>Under the seed's <b>default</b> policy the first bundle would not ship:</p><ul>"
      )
      for line in summary.defaultPolicyFailures { page.append("<li>\(e(line))</li>") }
      page.append("</ul>")
    }

    // Rollouts: traffic over the replay, and every event.
    page.append("<h2>Rollouts</h2><div>")
    let labels = summary.versions.map(\.label).filter { label in
      summary.traffic.contains { $0.shares[label] != nil }
    }
    if !summary.traffic.isEmpty {
      let series = labels.map { label in
        SVGPlot.Series(
          name: label,
          points: summary.traffic.map { (Double($0.bar), $0.shares[label] ?? 0) },
          step: true
        )
      }
      page.append(
        SVGPlot(
          title: "Traffic share by version",
          xTitle: "bar (UTC date)",
          yTitle: "share of requests (%)",
          series: series,
          xLabel: day,
          yRange: 0 ... 100
        ).svg(width: 1000)
      )
    }
    page.append("</div><table><tr><th>bar</th><th>version</th><th>event</th></tr>")
    for event in summary.events {
      page.append(
        "<tr><td>\(e(PipelineTime.text(event.bar)))</td><td>\(e(event.version))</td><td>\(e(event.text))</td></tr>"
      )
    }
    page.append("</table>")

    // Live metrics per version over the replay.
    page.append("<h2>Live metrics (trailing 7 days of matured outcomes, horizon 1 bar)</h2><div>")
    let liveLabels = summary.versions.map(\.label).filter { label in
      summary.live.contains { $0.version == label && $0.auc != nil }
    }
    if !liveLabels.isEmpty {
      let auc = liveLabels.map { label in
        SVGPlot.Series(
          name: label,
          points: summary.live.filter { $0.version == label }.compactMap { p in
            p.auc.map { (Double(p.bar), $0) }
          },
          markers: true
        )
      }
      page.append(
        SVGPlot(
          title: "Live AUC by version",
          xTitle: "bar (UTC date)",
          yTitle: "AUC",
          series: auc,
          xLabel: day
        ).svg(width: 520)
      )
      let loss = liveLabels.map { label in
        SVGPlot.Series(
          name: label,
          points: summary.live.filter { $0.version == label }.compactMap { p in
            p.logLoss.map { (Double(p.bar), $0) }
          },
          markers: true
        )
      }
      page.append(
        SVGPlot(
          title: "Live log loss by version",
          xTitle: "bar (UTC date)",
          yTitle: "log loss (nats)",
          series: loss,
          xLabel: day
        ).svg(width: 520)
      )
    } else {
      page.append("<p class=\"muted\">No outcomes matured during the replay.</p>")
    }
    page.append("</div>")

    // Latency.
    page.append("<h2>Latency</h2>")
    let sorted = summary.predictLatencies.sorted()
    func percentile(_ q: Double) -> Double? {
      sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
    }
    page.append(
      "<p>Predict as the pipeline saw it (market input: the predictor asks the feature service for the bar's vector, then scores it), \(sorted.count) calls: p50 \(number(percentile(0.5), "%.2f")) ms, p90 \(number(percentile(0.9), "%.2f")) ms, p99 \(number(percentile(0.99), "%.2f")) ms, max \(number(sorted.last, "%.2f")) ms.</p>"
    )
    if !sorted.isEmpty {
      let cdf = sorted.enumerated().map {
        (Double($0.offset + 1) / Double(sorted.count) * 100, $0.element)
      }
      page.append(
        SVGPlot(
          title: "Predict latency, client side",
          xTitle: "percentile (%)",
          yTitle: "latency (ms)",
          series: [.init(name: "Predict", points: cdf)],
          xRange: 0 ... 100
        ).svg()
      )
    }
    if !summary.serverLatencies.isEmpty {
      page.append(
        "<table><tr><th>version (still loaded)</th><th>server p50 (ms)</th><th>server p99 (ms)</th></tr>"
      )
      for (label, latency) in summary.serverLatencies.sorted(by: { $0.key < $1.key }) {
        page.append(
          "<tr><td>\(e(label))</td><td class=\"n\">\(String(format: "%.3f", latency.p50))</td><td class=\"n\">\(String(format: "%.3f", latency.p99))</td></tr>"
        )
      }
      page.append("</table>")
    }
    // A self-check a headless browser reads back: how many plots drew nothing, and any error.
    page.append(
      """
      <script>
      window.vaneErrors = 0;
      window.addEventListener('error', function () { window.vaneErrors += 1; document.body.dataset.errors = String(window.vaneErrors); });
      window.addEventListener('load', function () {
        var plots = document.querySelectorAll('svg.plot');
        var empty = 0;
        plots.forEach(function (svg) { if (svg.querySelectorAll('g.data path, g.data circle').length === 0) { empty += 1; } });
        document.body.dataset.plots = String(plots.length);
        document.body.dataset.emptyPlots = String(empty);
        document.body.dataset.errors = String(window.vaneErrors);
      });
      </script>
      </body></html>
      """
    )
    return page.joined(separator: "\n")
  }

  /// Writes the report atomically. - Returns: its path.
  static func write(_ summary: PipelineSummary, seconds: Double, to path: String) throws -> String {
    let temporary = path + ".tmp"
    try Data(Self.html(summary, seconds: seconds).utf8).write(to: URL(fileURLWithPath: temporary))
    if FileManager.default.fileExists(atPath: path) {
      try FileManager.default.removeItem(atPath: path)
    }
    try FileManager.default.moveItem(atPath: temporary, toPath: path)
    return path
  }
}
