internal import Foundation
import VaneQuality

/// A line (or marker) plot drawn as SVG: axes with ticks and tick labels, axis titles with
/// units, a legend. What the pipeline's report draws with; no script, no network.
struct SVGPlot {
  struct Series {
    var name: String
    var points: [(x: Double, y: Double)]
    /// Held until the next point (traffic shares), instead of a straight line.
    var step = false
    var markers = false
    var dashed = false
  }

  var title: String
  var xTitle: String
  var yTitle: String
  var series: [Series]
  var xLabel: (Double) -> String = { SVGPlot.number($0) }
  var yLabel: (Double) -> String = { SVGPlot.number($0) }
  /// Fixed ranges (else the data's, padded).
  var xRange: ClosedRange<Double>?
  var yRange: ClosedRange<Double>?
  /// The y = x line (reliability diagrams).
  var diagonal = false

  static let palette = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
  ]

  static func number(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e6 { return String(format: "%.0f", value) }
    return abs(value) >= 100
      ? String(format: "%.0f", value)
      : abs(value) >= 1 ? String(format: "%.2g", value) : String(format: "%.3g", value)
  }

  /// About `count` evenly spaced round values covering `range`.
  static func ticks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
    let span = range.upperBound - range.lowerBound
    guard span > 0, span.isFinite else { return [range.lowerBound] }
    let raw = span / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var tick = ceil(range.lowerBound / step) * step
    var ticks: [Double] = []
    while tick <= range.upperBound + step * 1e-9 {
      ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
      tick += step
    }
    return ticks
  }

  func svg(width: Double = 640, height: Double = 320) -> String {
    let left = 64.0, right = 16.0, top = 30.0, bottom = 48.0
    let points = self.series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
    func padded(_ values: [Double]) -> ClosedRange<Double> {
      guard let low = values.min(), let high = values.max() else { return 0 ... 1 }
      if low == high { return (low - 1) ... (high + 1) }
      let pad = (high - low) * 0.05
      return (low - pad) ... (high + pad)
    }
    let xr = self.xRange ?? padded(points.map(\.x))
    let yr = self.yRange ?? padded(points.map(\.y))
    let plotW = width - left - right, plotH = height - top - bottom
    func x(_ v: Double) -> Double {
      left + (v - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * plotW
    }
    func y(_ v: Double) -> Double {
      top + plotH - (v - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * plotH
    }
    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    var out =
      "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(QualityReportPage.escape(self.title))\">"
    out +=
      "<text x=\"\(f(width / 2))\" y=\"18\" text-anchor=\"middle\" class=\"title\">\(QualityReportPage.escape(self.title))</text>"
    // Axes, grid and tick labels.
    out += "<g class=\"axes\">"
    for tick in Self.ticks(yr) where yr.contains(tick) {
      out +=
        "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(y(tick)))\" y2=\"\(f(y(tick)))\" class=\"grid\"/>"
      out +=
        "<text x=\"\(f(left - 6))\" y=\"\(f(y(tick) + 4))\" text-anchor=\"end\">\(QualityReportPage.escape(self.yLabel(tick)))</text>"
    }
    for tick in Self.ticks(xr) where xr.contains(tick) {
      out +=
        "<line x1=\"\(f(x(tick)))\" x2=\"\(f(x(tick)))\" y1=\"\(f(top + plotH))\" y2=\"\(f(top + plotH + 5))\" class=\"tick\"/>"
      out +=
        "<text x=\"\(f(x(tick)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(QualityReportPage.escape(self.xLabel(tick)))</text>"
    }
    out +=
      "<line x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(f(top + plotH))\" class=\"axis\"/>"
    out +=
      "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(top + plotH))\" y2=\"\(f(top + plotH))\" class=\"axis\"/>"
    out +=
      "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\" class=\"axis-title\">\(QualityReportPage.escape(self.xTitle))</text>"
    out +=
      "<text transform=\"translate(14 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" class=\"axis-title\">\(QualityReportPage.escape(self.yTitle))</text>"
    out += "</g>"
    if self.diagonal {
      let low = max(xr.lowerBound, yr.lowerBound), high = min(xr.upperBound, yr.upperBound)
      out +=
        "<line x1=\"\(f(x(low)))\" y1=\"\(f(y(low)))\" x2=\"\(f(x(high)))\" y2=\"\(f(y(high)))\" class=\"diagonal\"/>"
    }
    // Series, clipped to the plot area.
    out += "<g class=\"data\">"
    for (index, series) in self.series.enumerated() {
      let color = Self.palette[index % Self.palette.count]
      let visible = series.points.filter { $0.x.isFinite && $0.y.isFinite }
      var path = ""
      for (i, point) in visible.enumerated() {
        let px = x(point.x), py = y(min(max(point.y, yr.lowerBound), yr.upperBound))
        if i == 0 {
          path += "M\(f(px)) \(f(py))"
        } else if series.step {
          path += " H\(f(px)) V\(f(py))"
        } else {
          path += " L\(f(px)) \(f(py))"
        }
      }
      if !path.isEmpty {
        out +=
          "<path d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.8\"\(series.dashed ? " stroke-dasharray=\"5 4\"" : "")><title>\(QualityReportPage.escape(series.name))</title></path>"
      }
      if series.markers {
        for point in visible {
          out +=
            "<circle cx=\"\(f(x(point.x)))\" cy=\"\(f(y(min(max(point.y, yr.lowerBound), yr.upperBound))))\" r=\"3\" fill=\"\(color)\"/>"
        }
      }
    }
    out += "</g>"
    // Legend.
    var legendX = left + 8
    for (index, series) in self.series.enumerated() {
      let color = Self.palette[index % Self.palette.count]
      out +=
        "<rect x=\"\(f(legendX))\" y=\"\(f(top + 4))\" width=\"10\" height=\"10\" fill=\"\(color)\" class=\"legend\"/>"
      out +=
        "<text x=\"\(f(legendX + 14))\" y=\"\(f(top + 13))\" class=\"legend\">\(QualityReportPage.escape(series.name))</text>"
      legendX += 22 + Double(series.name.count) * 6.5
    }
    out += "</svg>"
    return out
  }
}
