import Foundation
import Testing
import VaneCore
import VaneTestSupport

@testable import VaneFeatures

@Suite(
  "Candle files: the four layouts, validated against SOURCES.md",
  .enabled(if: MarketData.available),
  .computeBound
)
struct RealCandleFileTests {
  @Test(
    "Each real file gives the rows, interval and gaps SOURCES.md documents",
    arguments: [
      ("binance_BTCUSDT_1h.csv.gz", CandleInterval.h1, 52_549, 59),
      ("binance_ETHUSDT_1h.csv.gz", .h1, 52_549, 59),
      ("binance_SOLUSDT_1h.csv.gz", .h1, 38_471, 19),
      ("binance_BNBUSDT_1h.csv.gz", .h1, 62_587, 122),
      ("binance_BTCUSDT_4h.csv.gz", .h4, 16_147, 16),
      ("binance_ETHUSDT_4h.csv.gz", .h4, 16_147, 16),
      ("binance_SOLUSDT_4h.csv.gz", .h4, 9_623, 0),
      ("binance_BNBUSDT_4h.csv.gz", .h4, 15_662, 16),
      ("binance_BTCUSDT_1d.csv.gz", .d1, 2_694, 0),
      ("binance_SOLUSDT_1d.csv.gz", .d1, 1_604, 0),
      ("binance_BNBUSDT_1d.csv.gz", .d1, 2_613, 0),
    ]
  )
  func documentedShape(name: String, interval: CandleInterval, rows: Int, missing: Int) throws {
    let file = try CandleFileParser.read(path: MarketData.path(name))
    #expect(file.layout == .header)
    #expect(file.problems.isEmpty, "\(file.problems.prefix(3))")
    let report = try CandleValidator.validate(file, asOf: MarketData.end)
    #expect(report.interval == interval)
    #expect(report.accepted.count == rows)
    #expect(report.rejected.isEmpty, "\(report.rejected.prefix(3))")
    #expect(report.offGrid.isEmpty)
    #expect(report.duplicates == 0)
    #expect(report.unfinished == nil)
    #expect(report.missingBars == missing)
  }

  @Test(
    "The 11-column file: banner skipped, 43 off-grid rows reported and dropped, 170 missing hours"
  )
  func elevenColumn() throws {
    let file = try CandleFileParser.read(
      path: MarketData.path("binance_BTCUSDT_1h_11col_2017-2024.csv.gz")
    )
    #expect(file.problems.isEmpty, "\(file.problems.prefix(3))")
    #expect(file.rows.count == 55_765)
    let report = try CandleValidator.validate(file, interval: .h1, asOf: MarketData.end)
    #expect(report.offGrid.count == 43)
    #expect(
      report.offGrid.allSatisfy {
        $0.reason.contains(":28:14") && $0.reason.contains("off the 1h grid")
      }
    )
    #expect(report.accepted.count == 55_765 - 43)
    #expect(report.missingBars == 170)
    // The Binance kline columns come through.
    let first = try #require(report.accepted.first)
    #expect(first.openTime == 1_502_942_400_000)  // 2017-08-17 04:00 UTC
    #expect(first.tradeCount == 171)
    #expect(first.quoteVolume == 202_366.13839304)
    #expect(first.takerBuyBaseVolume == 35.160503)
  }

  @Test("The 11-column file and the BTC 1h file agree on every hour they share")
  func filesAgree() throws {
    let eleven = try CandleValidator.validate(
      try CandleFileParser.read(path: MarketData.path("binance_BTCUSDT_1h_11col_2017-2024.csv.gz")),
      asOf: MarketData.end
    )
    let plain = try CandleValidator.validate(
      try CandleFileParser.read(path: MarketData.path("binance_BTCUSDT_1h.csv.gz")),
      asOf: MarketData.end
    )
    let byTime = Dictionary(uniqueKeysWithValues: plain.accepted.map { ($0.openTime, $0) })
    var shared = 0
    for candle in eleven.accepted {
      guard let other = byTime[candle.openTime] else { continue }
      shared += 1
      #expect(
        [candle.open, candle.high, candle.low, candle.close, candle.volume] == [
          other.open, other.high, other.low, other.close, other.volume,
        ],
        "\(CandleTime.format(candle.openTime))"
      )
    }
    #expect(shared == 43_789)
  }

  @Test(
    "Binance's bulk layout (no header, 12 columns) in milliseconds and in microseconds reads the same candles"
  )
  func bulkLayout() throws {
    let reference = try CandleValidator.validate(
      try CandleFileParser.read(path: MarketData.path("binance_BTCUSDT_1h_11col_2017-2024.csv.gz")),
      asOf: MarketData.end
    )
    let sample = Array(reference.accepted.suffix(500))
    func bulk(scale: Int64) -> [UInt8] {
      let lines = sample.map { c in
        let open = c.openTime * scale
        let close = (c.openTime + 3_599_999) * scale
        return
          "\(open),\(c.open),\(c.high),\(c.low),\(c.close),\(c.volume),\(close),\(c.quoteVolume!),\(c.tradeCount!),\(c.takerBuyBaseVolume!),\(c.takerBuyQuoteVolume!),0"
      }
      return Array((lines.joined(separator: "\n") + "\n").utf8)
    }
    for scale: Int64 in [1, 1000] {
      let file = try CandleFileParser.parse(bytes: bulk(scale: scale), name: "BTCUSDT-1h.csv")
      #expect(file.layout == .binanceBulk)
      let report = try CandleValidator.validate(file, asOf: MarketData.end)
      #expect(report.accepted == sample, "scale \(scale)")
    }
  }
}

@Suite("Candle validation: every rule, with line and reason")
struct CandleValidationTests {
  @Test("A 1 MB field is reported in a short reason, never echoed whole")
  func hugeField() throws {
    let huge = String(repeating: "7", count: 1 << 20)
    let text =
      Self.header
      + "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,\(huge),2,0.5,1.5,3\n2024-01-01 02:00:00,1,2,0.5,1.5,3\n"
    let file = try CandleFileParser.parse(bytes: Array(text.utf8), name: "t.csv")
    let problem = try #require(file.problems.first)
    #expect(
      problem.line == 3 && problem.reason.contains("open '7777")
        && problem.reason.contains("(1048576 bytes) is not a number"),
      "\(problem.reason.prefix(200))"
    )
    #expect(problem.reason.utf8.count < 200)
  }

  static let header = "timestamp,open,high,low,close,volume\n"

  static func report(
    _ body: String,
    asOf: Int64 = MarketData.end,
    interval: CandleInterval? = nil
  ) throws -> CandleValidationReport {
    try CandleValidator.validate(
      CandleFileParser.parse(bytes: Array((Self.header + body).utf8), name: "t.csv"),
      interval: interval,
      asOf: asOf
    )
  }

  @Test(
    "Bad rows are reported with file, line and reason, and the good ones kept",
    arguments: [
      ("2024-01-01 02:00:00,1,2,0.5,x,10", "close 'x' is not a number"),
      ("2024-01-01 02:00:00,1,2,0.5,1.5,-3", "volume is negative"),
      ("2024-01-01 02:00:00,0,0,0,0,0", "open is zero (prices must be positive)"),
      ("2024-01-01 02:00:00,1,2,0,1.5,3", "low is zero"),
      ("2024-01-01 02:00:00,1,2,0.5,nan,3", "close is not finite"),
      ("2024-01-01 02:00:00,1,1.2,0.5,1.5,3", "high 1.2 is below max(open, close)"),
      ("2024-01-01 02:00:00,1,2,1.1,1.5,3", "low 1.1 is above min(open, close)"),
      ("2024-02-30 02:00:00,1,2,0.5,1.5,3", "is not a timestamp"),
      ("2024-01-01 02:00:00,1,2,0.5", "has 4 fields, the header has 6"),
    ]
  )
  func badRow(row: String, reason: String) throws {
    let report = try Self.report(
      "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n\(row)\n2024-01-01 03:00:00,1,2,0.5,1.5,3\n"
    )
    #expect(report.accepted.count == 3)
    let problem = try #require(report.rejected.first)
    #expect(problem.file == "t.csv")
    #expect(problem.line == 4)
    #expect(problem.reason.contains(reason), "\(problem.reason)")
  }

  @Test(
    "Identical duplicates are dropped; conflicting ones fail the whole batch, naming both lines"
  )
  func duplicates() throws {
    let same = try Self.report(
      "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n"
    )
    #expect(same.duplicates == 1)
    #expect(same.accepted.count == 2)
    #expect {
      try Self.report(
        "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.6,3\n"
      )
    } throws: { error in
      guard let error = error as? VaneError else { return false }
      return error.code == .invalidArgument && error.message.contains("t.csv:4")
        && error.message.contains("line 3")
    }
  }

  @Test("A last candle that has not closed by the end of the data is flagged and left out")
  func unfinished() throws {
    let body =
      "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n2024-01-01 02:00:00,1,2,0.5,1.5,3\n"
    // Data current to 02:30: the 02:00 bar is still forming.
    let report = try Self.report(body, asOf: 1_704_076_200_000)
    #expect(report.accepted.count == 2)
    #expect(report.unfinished?.line == 4)
    #expect(try Self.report(body, asOf: 1_704_078_000_000).unfinished == nil)
  }

  @Test("Off-grid rows are reported and dropped, never snapped; gaps are measured")
  func offGridAndGaps() throws {
    let report = try Self.report(
      "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n2024-01-01 01:28:14,1,2,0.5,1.5,3\n2024-01-01 05:00:00,1,2,0.5,1.5,3\n"
    )
    #expect(report.offGrid.map(\.line) == [4])
    #expect(report.accepted.count == 3)
    #expect(
      report.gaps == [CandleGap(start: 1_704_074_400_000, end: 1_704_085_200_000, missingBars: 3)]
    )  // 02:00 up to 05:00
  }

  @Test("A declared interval that disagrees with the data is an error naming the field")
  func declaredInterval() {
    #expect {
      try Self.report(
        "2024-01-01 00:00:00,1,2,0.5,1.5,3\n2024-01-01 01:00:00,1,2,0.5,1.5,3\n",
        interval: .h4
      )
    } throws: { ($0 as? VaneError)?.message.hasPrefix("interval:") == true }
  }

  @Test(
    "Binary files are refused by format, their bytes never pasted: Parquet, Arrow/Feather, an Arrow stream, a ZIP, NUL bytes; gzip-wrapped too",
    arguments: [
      (Array("PAR1".utf8) + [0x15, 0x04, 0x15, 0x80, 0x01], "Apache Parquet"),
      (Array("ARROW1".utf8) + [0, 0, 0xFF, 0xFF, 0xFF, 0xFF], "Apache Arrow IPC (Feather v2)"),
      (Array("FEA1".utf8) + [0, 0, 0, 0], "Feather v1"),
      ([0xFF, 0xFF, 0xFF, 0xFF, 0x78, 0, 0, 0], "Arrow IPC stream"),
      ([0x50, 0x4B, 0x03, 0x04, 0x14, 0, 6, 0], "ZIP archive"),
      (Array("ts,open\n".utf8) + [0, 0, 0, 7], "binary file"),
    ] as [([UInt8], String)]
  )
  func binaryFiles(head: [UInt8], format: String) throws {
    let bytes = head + [UInt8](repeating: 0x41, count: 100)
    for (input, name) in [(bytes, "c.parquet"), (try Gzip.compress(bytes, name: "z"), "c.gz")] {
      #expect {
        try CandleFileParser.parse(bytes: input, name: name)
      } throws: {
        guard let error = $0 as? VaneError, error.code == .invalidArgument else { return false }
        return error.message.hasPrefix("\(name): is ") && error.message.contains(format)
          && error.message.contains("not supported") && !error.message.contains("AAAA")
      }
    }
    #expect(BinaryFileKind.detect(Array("timestamp,open,high,low,close,volume\n".utf8)) == nil)
  }

  @Test("A 1 MB header line is quoted in a short message")
  func hugeHeader() throws {
    let text = String(repeating: "x", count: 1 << 20) + "\n2024-01-01 00:00:00,1,2,0.5,1.5,3\n"
    #expect {
      try CandleFileParser.parse(bytes: Array(text.utf8), name: "h.csv")
    } throws: {
      guard let error = $0 as? VaneError else { return false }
      return error.message.contains("no ts column") && error.message.utf8.count < 400
    }
  }

  @Test("Hostile input: empty, header only, truncated gzip, binary noise")
  func hostile() throws {
    #expect(throws: VaneError.self) { try CandleFileParser.parse(bytes: [], name: "empty.csv") }
    #expect(throws: VaneError.self) {
      try CandleFileParser.parse(bytes: Array("# only a banner\n".utf8), name: "b.csv")
    }
    #expect(throws: VaneError.self) {
      try CandleFileParser.parse(
        bytes: [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
        name: "cut.csv.gz"
      )
    }
    #expect {
      try CandleFileParser.parse(bytes: Array("open,high\n\u{1}\u{2},\u{3}\n".utf8), name: "n.csv")
    } throws: {
      ($0 as? VaneError)?.message.contains("n.csv:1: the header has no ts column") == true
    }
    // Noise rows under a good header are rejected one by one, with their reasons.
    let file = try CandleFileParser.parse(
      bytes: Array("ts,open,high,low,close,volume\n\u{1},\u{2},3,4,5,6\n,,,,,\n".utf8),
      name: "m.csv"
    )
    #expect(file.rows.isEmpty)
    #expect(file.problems.map(\.line) == [2, 3])
  }

  @Test(
    "Timestamps in every spelling the files use",
    arguments: [
      ("2019-01-01 00:00:00+00:00", Int64(1_546_300_800_000)),
      ("2019-01-01 00:00:00", 1_546_300_800_000),
      ("2019-01-01T01:00:00Z", 1_546_304_400_000), ("2019-01-01 02:00:00+01:00", 1_546_304_400_000),
      ("2017-08-17", 1_502_928_000_000), ("1546300800000", 1_546_300_800_000),
      ("1735689600000000", 1_735_689_600_000), ("1546300800", 1_546_300_800_000),
      ("2024-01-01 04:59:59.999", 1_704_085_199_999),
    ]
  )
  func timestamps(text: String, milliseconds: Int64) {
    #expect(CandleTime.parse(Array(text.utf8)) == milliseconds)
  }

  @Test("Formatting inverts parsing over centuries, leap days included")
  func formatRoundTrip() {
    for text in [
      "1970-01-01 00:00:00", "2000-02-29 12:34:56", "2024-12-31 23:00:00", "2100-03-01 00:00:00",
      "1969-12-31 23:59:59",
    ] {
      let parsed = CandleTime.parse(Array(text.utf8))
      #expect(parsed.map(CandleTime.format) == text)
    }
  }
}
