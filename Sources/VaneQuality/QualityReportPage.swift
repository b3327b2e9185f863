internal import Foundation
internal import VaneBundle

/// The pictures and the page a person looks at before promoting a model: a reliability
/// diagram and a score histogram per model as SVG, and a one-page HTML report with the gates
/// table, the metrics and the pictures. Plain SVG and HTML, no scripts, no external assets.
public enum QualityReportPage {
  /// Reliability diagram: observed frequency against mean predicted probability per bin, with
  /// the diagonal and the bin counts as bar heights along the bottom.
  public static func reliabilitySVG(_ diagram: ReliabilityDiagram, title: String) -> String {
    let size = 320.0, margin = 40.0, plot = size - 2 * margin
    func x(_ v: Double) -> Double { margin + v * plot }
    func y(_ v: Double) -> Double { size - margin - v * plot }
    let axis =
      diagram.target == "top_label"
      ? ("confidence", "accuracy") : ("P(\(diagram.target))", "frequency of \(diagram.target)")
    var parts = [
      ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(size))" height="\##(Int(size))" viewBox="0 0 \##(Int(size)) \##(Int(size))" font-family="sans-serif" font-size="11">"##,
      ##"<title>\##(Self.escape(title))</title>"##,
      ##"<rect x="\##(margin)" y="\##(margin)" width="\##(plot)" height="\##(plot)" fill="none" stroke="#999"/>"##,
      ##"<line x1="\##(x(0))" y1="\##(y(0))" x2="\##(x(1))" y2="\##(y(1))" stroke="#bbb" stroke-dasharray="4 3"/>"##,
      ##"<text x="\##(size / 2)" y="\##(size - 8)" text-anchor="middle">\##(Self.escape(axis.0))</text>"##,
      ##"<text x="12" y="\##(size / 2)" text-anchor="middle" transform="rotate(-90 12 \##(size / 2))">\##(Self.escape(axis.1))</text>"##,
      ##"<text x="\##(size / 2)" y="20" text-anchor="middle" font-weight="bold">\##(Self.escape(title)) — ECE \##(String(format: "%.4f", diagram.ece))</text>"##,
    ]
    let total = max(diagram.bins.map(\.count).max() ?? 1, 1)
    for bin in diagram.bins where bin.count > 0 {
      let height = 0.2 * plot * Double(bin.count) / Double(total)
      let left = x(min(max(bin.lower, 0), 1)), right = x(min(max(bin.upper, 0), 1))
      parts.append(
        ##"<rect x="\##(left + 1)" y="\##(y(0) - height)" width="\##(max(right - left - 2, 1))" height="\##(height)" fill="#dde"/>"##
      )
    }
    let filled = diagram.bins.filter { $0.count > 0 }
    if !filled.isEmpty {
      parts.append(
        ##"<polyline points="\##(filled.map { "\($0.meanConfidence.svg(x)),\($0.accuracy.svg(y))" }.joined(separator: " "))" fill="none" stroke="#c33" stroke-width="2"/>"##
      )
      for bin in filled {
        parts.append(
          ##"<circle cx="\##(bin.meanConfidence.svg(x))" cy="\##(bin.accuracy.svg(y))" r="3" fill="#c33"><title>\##(bin.count) samples: predicted \##(String(format: "%.3f", bin.meanConfidence)), observed \##(String(format: "%.3f", bin.accuracy))</title></circle>"##
        )
      }
    }
    parts.append("</svg>")
    return parts.joined(separator: "\n")
  }

  /// Histogram of scores from a diagram's bins: P(class) for a class diagram (each bar split
  /// into samples of that class and the rest), confidence for "top_label" (right and wrong).
  public static func histogramSVG(_ diagram: ReliabilityDiagram, title: String) -> String {
    let width = 320.0, height = 200.0, margin = 30.0
    let top = max(diagram.bins.map(\.count).max() ?? 1, 1)
    let scale = (height - 2 * margin - 10) / Double(top)
    let (event, other) =
      diagram.target == "top_label" ? ("right", "wrong") : ("true \(diagram.target)", "other")
    var parts = [
      ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" viewBox="0 0 \##(Int(width)) \##(Int(height))" font-family="sans-serif" font-size="11">"##,
      ##"<title>\##(Self.escape(title))</title>"##,
      ##"<text x="\##(width / 2)" y="16" text-anchor="middle" font-weight="bold">\##(Self.escape(title))</text>"##,
      ##"<line x1="\##(margin)" y1="\##(height - margin)" x2="\##(width - margin)" y2="\##(height - margin)" stroke="#999"/>"##,
      ##"<text x="\##(width / 2)" y="\##(height - 8)" text-anchor="middle">\##(Self.escape(diagram.target == "top_label" ? "confidence" : "P(\(diagram.target))")) (orange: \##(Self.escape(event)), blue: \##(Self.escape(other)))</text>"##,
    ]
    let plot = width - 2 * margin
    for bin in diagram.bins where bin.count > 0 {
      let hits = Int((Double(bin.count) * bin.accuracy).rounded())
      let left = margin + min(max(bin.lower, 0), 1) * plot,
        barWidth = max((min(max(bin.upper, 0), 1) - min(max(bin.lower, 0), 1)) * plot - 1, 1)
      let hitHeight = Double(hits) * scale, missHeight = Double(bin.count - hits) * scale
      let base = height - margin
      parts.append(
        ##"<rect x="\##(left)" y="\##(base - missHeight)" width="\##(barWidth)" height="\##(missHeight)" fill="#36c"><title>\##(bin.count - hits) \##(Self.escape(other))</title></rect>"##
      )
      parts.append(
        ##"<rect x="\##(left)" y="\##(base - missHeight - hitHeight)" width="\##(barWidth)" height="\##(hitHeight)" fill="#e83"><title>\##(hits) \##(Self.escape(event))</title></rect>"##
      )
    }
    parts.append("</svg>")
    return parts.joined(separator: "\n")
  }

  /// The one-page report: verdict, gates table, metrics, per-fold metrics, pictures.
  public static func html(_ report: QualityReport) -> String {
    let subject = report.subject
    let name =
      [subject.label, subject.bundleID, subject.bundlePath].first { !$0.isEmpty }
      ?? "predictions \(subject.predictionsSHA256.prefix(12))"
    let number = QualityFormat.number
    let failed = report.failedGates
    var page = [
      "<!doctype html>", ##"<html lang="en"><head><meta charset="utf-8">"##,
      "<title>Vane quality report: \(Self.escape(name))</title>",
      "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.pass{color:#161}.fail{color:#b11;font-weight:bold}.skip{color:#777}.pics{display:flex;gap:1em;flex-wrap:wrap}</style>",
      "</head><body>",
      "<h1>\(Self.escape(name))</h1>",
      "<p>report <code>\(Self.escape(report.id.isEmpty ? "(not stored)" : report.id))</code> · \(Self.escape(Verdict.rfc3339(nanos: report.createdMs * 1_000_000))) · \(subject.sampleCount) samples · classes \(Self.escape(subject.classes.joined(separator: ", ")))\(subject.interval.map { " · " + Self.escape($0) } ?? "")</p>",
      "<p>manifest sha256 <code>\(Self.escape(subject.manifestSHA256.isEmpty ? "—" : subject.manifestSHA256))</code> · predictions sha256 <code>\(Self.escape(subject.predictionsSHA256))</code></p>",
      "<p>policy <b>\(Self.escape(report.policyName))</b> (<code>\(Self.escape(String(report.policySHA256.prefix(12))))</code>) · verdict <span class=\"\(report.passed ? "pass" : "fail")\">\(report.passed ? "PASSED" : "FAILED: " + Self.escape(failed.joined(separator: ", ")))</span></p>",
      "<h2>Gates</h2><table><tr><th>gate</th><th>metric</th><th>value</th><th>baseline</th><th>check</th><th>result</th><th>why</th></tr>",
    ]
    for gate in report.gates {
      let outcome =
        gate.skipped
        ? ("skip", "skipped")
        : gate.passed ? ("pass", "pass") : ("fail", gate.severity == .blocking ? "FAIL" : "warn")
      let compared =
        gate.reference == .absolute ? "" : gate.reference == .baselineDelta ? "Δ " : "ratio "
      page.append(
        "<tr><td>\(Self.escape(gate.gate))</td><td>\(Self.escape(gate.metric))</td><td>\(number(gate.value))</td><td>\(number(gate.baselineValue))</td><td>\(compared)\(Self.escape(gate.comparison.rawValue)) \(number(gate.threshold))</td><td class=\"\(outcome.0)\">\(outcome.1)</td><td>\(Self.escape(gate.reason))</td></tr>"
      )
    }
    page.append("</table>")
    if !report.warnings.isEmpty {
      page.append(
        "<h2>Warnings</h2><ul>" + report.warnings.map { "<li>\(Self.escape($0))</li>" }.joined()
          + "</ul>"
      )
    }
    page.append(
      "<h2>Metrics</h2><table><tr><th>metric</th><th>value</th>\(report.baselineMetrics.isEmpty ? "" : "<th>baseline</th>")</tr>"
    )
    for key in report.metrics.keys.sorted() {
      page.append(
        "<tr><td>\(Self.escape(key))</td><td>\(number(report.metrics[key]))</td>\(report.baselineMetrics.isEmpty ? "" : "<td>\(number(report.baselineMetrics[key]))</td>")</tr>"
      )
    }
    page.append("</table>")
    if !report.folds.isEmpty {
      let columns = ["auc", "log_loss", "ece", "accuracy", "share_above_0_99"]
      page.append(
        "<h2>Folds</h2><table><tr><th>fold</th><th>samples</th>"
          + columns.map { "<th>\($0)</th>" }.joined() + "</tr>"
      )
      for fold in report.folds {
        page.append(
          "<tr><td>\(fold.id)</td><td>\(fold.sampleCount)</td>"
            + columns.map { "<td>\(number(fold.metrics[$0]))</td>" }.joined() + "</tr>"
        )
      }
      page.append("</table>")
    }
    page.append("<h2>Pictures</h2><div class=\"pics\">")
    for diagram in report.reliability {
      page.append(
        Self.reliabilitySVG(
          diagram,
          title: diagram.target == "top_label"
            ? "reliability (top label)" : "reliability: \(diagram.target)"
        )
      )
    }
    // Binary: the histogram of P(positive class); otherwise of the top-label confidence.
    let histogram =
      report.reliability.count == 3 ? report.reliability.last : report.reliability.first
    if let histogram { page.append(Self.histogramSVG(histogram, title: "scores")) }
    page.append("</div></body></html>")
    return page.joined(separator: "\n")
  }

  /// Escapes text for HTML and SVG.
  public static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}

extension Double {
  /// An SVG coordinate of this value in [0, 1] (clipped) through `map`.
  fileprivate func svg(_ map: (Double) -> Double) -> Double {
    map(Swift.min(Swift.max(self, 0), 1))
  }
}
