import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import VaneQuality

@Suite("Report pictures and page")
struct ReportPageTests {
  @Test(
    "The SVGs and the page are well-formed XML and carry the verdict, every gate and escaped names"
  )
  func page() throws {
    let predictions = try GateTests.model(25_000, seed: 12) { z, _ in z * 12 }
    var folds: [Int] = []
    for i in 0 ..< predictions.count { folds.append(i / 5_000) }
    let report = try QualityReport.judge(
      Judgement(
        predictions: predictions,
        classes: ["DOWN", "UP"],
        foldIDs: folds,
        subject: .init(kind: .inline, label: "btc <1h> & co", interval: "1h"),
        inputs: GateTests.scaledInputs()
      ),
      policy: .default,
      policySHA256: "ab12",
      at: 1_700_000_000_000
    )
    let html = QualityReportPage.html(report)
    #expect(
      html.contains("FAILED") && html.contains("btc &lt;1h&gt; &amp; co")
        && html.contains("overconfidence")
    )
    for gate in report.gates { #expect(html.contains(QualityReportPage.escape(gate.gate))) }
    #expect(report.reliability.map(\.target) == ["top_label", "DOWN", "UP"])
    #expect(
      report.folds.map(\.id) == [0, 1, 2, 3, 4]
        && report.folds.allSatisfy { $0.sampleCount == 5_000 }
    )
    // The page as a whole, and each SVG on its own, parse as XML.
    let body = html.replacingOccurrences(of: "<!doctype html>", with: "").replacingOccurrences(
      of: ##"<meta charset="utf-8">"##,
      with: ""
    )
    for document in [
      body, QualityReportPage.reliabilitySVG(report.reliability[0], title: "a < b"),
      QualityReportPage.histogramSVG(report.reliability[2], title: "h"),
    ] {
      let parser = XMLParser(data: Data(document.utf8))
      #expect(parser.parse(), "\(parser.parserError.map(String.init(describing:)) ?? "")")
    }
  }
}
