import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import VaneQuality

@Suite("Report pictures and page")
struct ReportPageTests {
  @Test("The SVGs and the page are well-formed XML and carry the verdict, every gate and escaped names")
  func page() throws {
    let predictions = try GateTests.model(25_000, seed: 12) { z, _ in z * 12 }
    let report = MetricsReport(predictions)
    let verdict = QualityPolicy.default.evaluate(GateInput(model: report, interval: "1h", inputs: GateTests.scaledInputs()))
    let html = QualityReportPage.html(
      bundle: "btc <1h> & co", manifestSHA256: "ab12", verdict: verdict,
      models: [.init(name: "stack", report: report, predictions: predictions)])
    #expect(html.contains("FAILED") && html.contains("btc &lt;1h&gt; &amp; co"))
    for result in verdict.results { #expect(html.contains(QualityReportPage.escape(result.gate))) }
    // Each SVG parses as XML on its own.
    for svg in [QualityReportPage.reliabilitySVG(report.calibration, title: "a < b"), QualityReportPage.histogramSVG(predictions, title: "h")] {
      let parser = XMLParser(data: Data(svg.utf8))
      #expect(parser.parse(), "\(parser.parserError.map(String.init(describing:)) ?? "")")
    }
  }
}
