internal import Foundation

/// The pictures and the page a person looks at before promoting a model: a reliability
/// diagram and a score histogram per model as SVG, and a one-page HTML report with the gates
/// table, the metrics and the pictures. Plain SVG and HTML, no scripts, no external assets.
public enum QualityReportPage {
  /// Reliability diagram: accuracy against mean confidence per bin, with the diagonal and the
  /// bin counts as bar heights along the bottom.
  public static func reliabilitySVG(_ calibration: CalibrationError, title: String) -> String {
    let size = 320.0, margin = 40.0, plot = size - 2 * margin
    func x(_ v: Double) -> Double { margin + v * plot }
    func y(_ v: Double) -> Double { size - margin - v * plot }
    var parts = [
      ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(size))" height="\##(Int(size))" viewBox="0 0 \##(Int(size)) \##(Int(size))" font-family="sans-serif" font-size="11">"##,
      ##"<title>\##(Self.escape(title))</title>"##,
      ##"<rect x="\##(margin)" y="\##(margin)" width="\##(plot)" height="\##(plot)" fill="none" stroke="#999"/>"##,
      ##"<line x1="\##(x(0))" y1="\##(y(0))" x2="\##(x(1))" y2="\##(y(1))" stroke="#bbb" stroke-dasharray="4 3"/>"##,
      ##"<text x="\##(size / 2)" y="\##(size - 8)" text-anchor="middle">confidence</text>"##,
      ##"<text x="12" y="\##(size / 2)" text-anchor="middle" transform="rotate(-90 12 \##(size / 2))">accuracy</text>"##,
      ##"<text x="\##(size / 2)" y="20" text-anchor="middle" font-weight="bold">\##(Self.escape(title)) — ECE \##(String(format: "%.4f", calibration.expected))</text>"##,
    ]
    let total = max(calibration.bins.map(\.count).max() ?? 1, 1)
    let width = plot / Double(max(calibration.bins.count, 1))
    for (b, bin) in calibration.bins.enumerated() where bin.count > 0 {
      let height = 0.2 * plot * Double(bin.count) / Double(total)
      parts.append(##"<rect x="\##(margin + Double(b) * width + 1)" y="\##(y(0) - height)" width="\##(width - 2)" height="\##(height)" fill="#dde"/>"##)
    }
    let points = calibration.bins.filter { $0.count > 0 }.map { "\(x($0.meanConfidence)),\(y($0.accuracy))" }
    if !points.isEmpty {
      parts.append(##"<polyline points="\##(points.joined(separator: " "))" fill="none" stroke="#c33" stroke-width="2"/>"##)
      for bin in calibration.bins where bin.count > 0 {
        parts.append(##"<circle cx="\##(x(bin.meanConfidence))" cy="\##(y(bin.accuracy))" r="3" fill="#c33"><title>\##(bin.count) samples: confidence \##(String(format: "%.3f", bin.meanConfidence)), accuracy \##(String(format: "%.3f", bin.accuracy))</title></circle>"##)
      }
    }
    parts.append("</svg>")
    return parts.joined(separator: "\n")
  }

  /// Histogram of P(class 1) (binary) or of the predicted class's confidence, 20 bins, split by
  /// true class for binary models.
  public static func histogramSVG(_ predictions: Predictions, title: String) -> String {
    let width = 320.0, height = 200.0, margin = 30.0
    let bins = 20
    let series = predictions.isBinary ? 2 : 1
    var counts = [[Int]](repeating: [Int](repeating: 0, count: bins), count: series)
    for i in 0..<predictions.count where predictions.isFinite(i) {
      let score = predictions.isBinary ? predictions.probability(i, 1) : predictions.confidence(i)
      let b = min(max(Int(score * Double(bins)), 0), bins - 1)
      counts[predictions.isBinary ? predictions.labels[i] : 0][b] += 1
    }
    let top = max(counts.joined().max() ?? 1, 1)
    let barWidth = (width - 2 * margin) / Double(bins)
    var parts = [
      ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" viewBox="0 0 \##(Int(width)) \##(Int(height))" font-family="sans-serif" font-size="11">"##,
      ##"<title>\##(Self.escape(title))</title>"##,
      ##"<text x="\##(width / 2)" y="16" text-anchor="middle" font-weight="bold">\##(Self.escape(title))</text>"##,
      ##"<line x1="\##(margin)" y1="\##(height - margin)" x2="\##(width - margin)" y2="\##(height - margin)" stroke="#999"/>"##,
      ##"<text x="\##(width / 2)" y="\##(height - 8)" text-anchor="middle">\##(predictions.isBinary ? "P(UP)" : "confidence") (blue: true DOWN, orange: true UP)</text>"##,
    ]
    let colours = series == 2 ? ["#36c", "#e83"] : ["#36c"]
    for s in 0..<series {
      for b in 0..<bins where counts[s][b] > 0 {
        let h = (height - 2 * margin - 10) * Double(counts[s][b]) / Double(top)
        let x = margin + Double(b) * barWidth + (series == 2 ? Double(s) * barWidth / 2 : 0)
        parts.append(##"<rect x="\##(x)" y="\##(height - margin - h)" width="\##(barWidth / Double(series) - 1)" height="\##(h)" fill="\##(colours[s])"><title>\##(counts[s][b])</title></rect>"##)
      }
    }
    parts.append("</svg>")
    return parts.joined(separator: "\n")
  }

  /// One model on the page: its name, report and predictions.
  public struct Model: Sendable {
    public var name: String
    public var report: MetricsReport
    public var predictions: Predictions

    public init(name: String, report: MetricsReport, predictions: Predictions) {
      self.name = name
      self.report = report
      self.predictions = predictions
    }
  }

  /// The one-page report: verdict, gates table, metrics per model, pictures.
  public static func html(bundle: String, manifestSHA256: String, verdict: GateVerdict, models: [Model]) -> String {
    var page = [
      "<!doctype html>", ##"<html lang="en"><head><meta charset="utf-8">"##,
      "<title>Vane quality report: \(Self.escape(bundle))</title>",
      "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.pass{color:#161}.fail{color:#b11;font-weight:bold}.pics{display:flex;gap:1em;flex-wrap:wrap}</style>",
      "</head><body>",
      "<h1>\(Self.escape(bundle))</h1>",
      "<p>manifest sha256 <code>\(Self.escape(manifestSHA256))</code> · policy <b>\(Self.escape(verdict.policy))</b> · verdict <span class=\"\(verdict.passed ? "pass" : "fail")\">\(verdict.passed ? "PASSED" : "FAILED: \(verdict.failures.count) gate(s)")</span></p>",
      "<h2>Gates</h2><table><tr><th>gate</th><th>value</th><th>threshold</th><th>result</th><th>why</th></tr>",
    ]
    for result in verdict.results {
      page.append("<tr><td>\(Self.escape(result.gate))</td><td>\(result.value.map { String(format: "%.4g", $0) } ?? "—")</td><td>\(Self.escape(result.threshold))</td><td class=\"\(result.passed ? "pass" : "fail")\">\(result.passed ? "pass" : "FAIL")</td><td>\(Self.escape(result.reason))</td></tr>")
    }
    page.append("</table><h2>Metrics</h2><table><tr><th>model</th><th>samples</th><th>AUC</th><th>log loss</th><th>Brier</th><th>accuracy</th><th>ECE</th><th>MCE</th><th>&gt;0.99</th><th>class shares</th><th>max |logit|</th><th>NaN/Inf</th></tr>")
    for model in models {
      let r = model.report
      page.append("<tr><td>\(Self.escape(model.name))</td><td>\(r.samples)</td><td>\(String(format: "%.4f", r.rocAUC))</td><td>\(String(format: "%.4f", r.logLoss))</td><td>\(String(format: "%.4f", r.brier))</td><td>\(String(format: "%.4f", r.accuracy))</td><td>\(String(format: "%.4f", r.calibration.expected))</td><td>\(String(format: "%.4f", r.calibration.maximum))</td><td>\(String(format: "%.2f %%", r.shareAbove99 * 100))</td><td>\(r.predictedClassShare.map { String(format: "%.1f %%", $0 * 100) }.joined(separator: " / "))</td><td>\(r.maxAbsLogit.map { String(format: "%.3g", $0) } ?? "—")</td><td>\(r.nanCount + r.infiniteCount)</td></tr>")
    }
    page.append("</table><h2>Pictures</h2>")
    for model in models {
      page.append("<h3>\(Self.escape(model.name))</h3><div class=\"pics\">")
      page.append(Self.reliabilitySVG(model.report.calibration, title: "\(model.name): reliability"))
      page.append(Self.histogramSVG(model.predictions, title: "\(model.name): scores"))
      page.append("</div>")
    }
    page.append("</body></html>")
    return page.joined(separator: "\n")
  }

  /// Escapes text for HTML and SVG.
  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
