import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
import VaneCore
import VaneFeatures
import VaneProto
import VaneRuntime
import VaneTestSupport
import FeatureService

@testable import vane

/// IngestCandles and GetCoverage through the generated client, over both transports.
@Suite("Feature service: IngestCandles and GetCoverage")
struct FeatureIngestTests {
  static let hour: Int64 = 3_600_000
  /// 2024-01-01 00:00 UTC.
  static let t0: Int64 = 1_704_067_200_000

  static func candle(_ hour: Int64, close: Double = 1.5, minute: Int64 = 0) -> Vane_V1_Candle {
    Vane_V1_Candle(
      Candle(
        openTime: Self.t0 + hour * Self.hour + minute * 60_000,
        open: 1,
        high: 2,
        low: 0.5,
        close: close,
        volume: 3
      )
    )
  }

  static func header(
    _ symbol: String = "BTCUSDT",
    _ interval: Vane_V1_Interval = .interval1H,
    options: Vane_V1_IngestOptions = .init()
  ) -> Vane_V1_IngestCandlesRequest {
    .with {
      $0.header = .with {
        $0.market = .with {
          $0.symbol = symbol
          $0.interval = interval
        }
        $0.source = "test"
        $0.options = options
      }
    }
  }

  static func batch(
    _ candles: [Vane_V1_Candle],
    file: String = "t.csv",
    lines: [UInt64] = []
  ) -> Vane_V1_IngestCandlesRequest {
    .with {
      $0.batch = .with {
        $0.candles = candles
        $0.file = file
        $0.lines = lines
      }
    }
  }

  /// Runs `body` against a feature service over a fresh data directory, then `store` on the
  /// candle store it left behind.
  static func withFeatureService<R: Sendable>(
    _ transport: TransportKind,
    _ body: @Sendable (Vane_V1_FeatureService.Client<AnyClientTransport>) async throws -> R,
    store check: (CandleStore) throws -> Void = { _ in }
  ) async throws -> R {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-feature-\(UUID().uuidString)"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let info = RuntimeInfo(
      kind: .feature,
      configuredAddress: "127.0.0.1:0",
      dataDirectory: directory.path,
      tls: false,
      adminAuth: .loopbackOnly
    )
    let result = try await withServer(
      transport,
      services: [try FeatureServiceImplementation(runtime: info)]
    ) { client, _ in
      try await body(Vane_V1_FeatureService.Client(wrapping: client))
    }
    try check(try CandleStore(path: directory.appendingPathComponent("candles.sqlite").path))
    return result
  }

  static func ingest(
    _ client: Vane_V1_FeatureService.Client<AnyClientTransport>,
    _ messages: [Vane_V1_IngestCandlesRequest]
  ) async throws -> Vane_V1_IngestCandlesResponse {
    try await client.ingestCandles { try await $0.write(contentsOf: messages) }
  }

  static func coverage(
    _ client: Vane_V1_FeatureService.Client<AnyClientTransport>,
    _ symbol: String = "BTCUSDT"
  ) async throws -> Vane_V1_SeriesCoverage? {
    do {
      return try await client.getCoverage(.with { $0.symbols = [symbol] }).series.first
    } catch let error as RPCError where error.code == .notFound {
      return nil
    }
  }

  @Test(
    "A burst of 2,000 GetCoverage calls (SQLite reads) leaves GetServiceInfo answering: store reads wait on the blocking pool, not on the cooperative pool's two threads"
  )
  func burstOfReads() async throws {
    try await Self.withFeatureService(.shim) { client in
      _ = try await Self.ingest(
        client,
        [Self.header(), Self.batch((Int64(0) ..< 200).map { Self.candle($0) })]
      )
      let (answered, coverages) = try await withThrowingTaskGroup(of: Bool.self) { group in
        for _ in 0 ..< 2_000 {
          group.addTask {
            try await client.getCoverage(.with { $0.symbols = ["BTCUSDT"] }).series.count == 1
          }
        }
        // Asked while the burst is queued: it needs no store and must not wait behind it.
        var options = CallOptions.defaults
        options.timeout = .seconds(20)
        let info = try await client.getServiceInfo(.init(), options: options)
        var coverages = 0
        for try await covered in group where covered { coverages += 1 }
        return (info.service, coverages)
      }
      #expect(answered == "vane.v1.FeatureService")
      #expect(coverages == 2_000)
    }
  }

  @Test(
    "GetCoverage of a symbol never ingested is NOT_FOUND naming it; of a known one at another interval, empty"
  )
  func coverageOfUnknownSymbol() async throws {
    try await Self.withFeatureService(.inProcess) { client in
      _ = try await Self.ingest(
        client,
        [Self.header(), Self.batch([Self.candle(0), Self.candle(1)])]
      )
      let error = await #expect(throws: RPCError.self) {
        _ = try await client.getCoverage(.with { $0.symbols = ["BTCUSDT", "DOGEUSDT"] })
      }
      #expect(
        error?.code == .notFound && error?.message.contains("symbols[1]") == true
          && error?.message.contains("DOGEUSDT") == true
      )
      #expect(
        try await client.getCoverage(
          .with {
            $0.symbols = ["BTCUSDT"]
            $0.intervals = [.interval4H]
          }
        ).series.isEmpty
      )
    }
  }

  @Test(
    "A row of zero prices is refused as NEGATIVE (the proto's reason covers zero), naming the field"
  )
  func zeroPrices() async throws {
    try await Self.withFeatureService(.inProcess) { client in
      let zero = Vane_V1_Candle(
        Candle(openTime: Self.t0 + 2 * Self.hour, open: 0, high: 0, low: 0, close: 0, volume: 0)
      )
      let response = try await Self.ingest(
        client,
        [Self.header(), Self.batch([Self.candle(0), Self.candle(1), zero], lines: [2, 3, 4])]
      )
      #expect(response.accepted == 2)
      let invalid = try #require(response.invalidRows.first)
      #expect(invalid.line == 4 && invalid.reason == .negative)
      #expect(invalid.message.contains("open is zero"), "\(invalid.message)")
    }
  }

  @Test(
    "A newest candle with a sliver of the usual volume is stored and reported as suspect, with the reason; a usual one is not"
  )
  func suspectLastCandle() async throws {
    try await Self.withFeatureService(.inProcess) { client in
      func bar(_ hour: Int64, volume: Double) -> Vane_V1_Candle {
        Vane_V1_Candle(
          Candle(
            openTime: Self.t0 + hour * Self.hour,
            open: 1,
            high: 2,
            low: 0.5,
            close: 1.5,
            volume: volume
          )
        )
      }
      let usual = (0 ..< 30).map { bar(Int64($0), volume: 100 + Double($0 % 5) * 10) }
      let clean = try await Self.ingest(client, [Self.header(), Self.batch(usual)])
      #expect(clean.accepted == 30 && !clean.suspectLastCandle)
      // Exported five minutes into the bar: a twelfth of the usual volume.
      let early = try await Self.ingest(client, [Self.header(), Self.batch([bar(30, volume: 9)])])
      #expect(early.accepted == 1 && early.storedCount == 31)
      let openTime = try early.suspectOpenTime.unixMilliseconds(field: "t")
      #expect(early.suspectLastCandle && openTime == Self.t0 + 30 * Self.hour)
      #expect(
        early.suspectReason.contains("% of the median")
          && early.suspectReason.contains("before it closed"),
        "\(early.suspectReason)"
      )
      #expect(IngestCommand.describe(early, path: "b.csv").contains("suspect last candle"))
    }
  }

  @Test(
    "A stream is validated and stored whole; the report accounts for every row",
    arguments: TransportKind.allCases
  )
  func reportAccounts(transport: TransportKind) async throws {
    try await Self.withFeatureService(transport) { client in
      var bad = Self.candle(3)
      bad.high = 1.2  // below close 1.5
      var options = Vane_V1_IngestOptions()
      // Hour 8 has closed, hour 9 has not.
      options.referenceTime = .init(unixMilliseconds: Self.t0 + 9 * Self.hour + 1)
      let response = try await Self.ingest(
        client,
        [
          Self.header(options: options),
          Self.batch(
            [Self.candle(0), Self.candle(1), Self.candle(1), bad, Self.candle(2, minute: 28)],
            lines: [2, 3, 4, 5, 6]
          ),
          Self.batch(
            [Self.candle(6), Self.candle(7), Self.candle(9), Self.candle(8)],
            file: "u.csv"
          ),
        ]
      )
      #expect(response.received == 9)
      #expect(response.accepted == 5)  // hours 0, 1, 6, 7, 8
      #expect(response.duplicatesDropped == 1)
      #expect(response.offGridDropped == 1)
      #expect(response.invalid == 1)
      #expect(response.unfinishedLastCandle)
      #expect(
        try response.unfinishedOpenTime.unixMilliseconds(field: "t") == Self.t0 + 9 * Self.hour
      )
      let invalid = try #require(response.invalidRows.first)
      #expect(
        invalid.file == "t.csv" && invalid.line == 5 && invalid.index == 3
          && invalid.reason == .ohlcInconsistent
      )
      #expect(invalid.message.contains("high 1.2 is below"))
      #expect(response.offGridRows.map(\.line) == [6])
      #expect(response.offGridRows.first?.reason == .offGrid)
      // received = accepted + replaced + duplicates + off-grid + invalid + unfinished
      #expect(
        response.received == response.accepted + response.replaced + response.duplicatesDropped
          + response.offGridDropped + response.invalid + 1
      )
      #expect(response.storedCount == 5)
      #expect(response.gapCount == 1)
      let coverage = try #require(try await Self.coverage(client))
      #expect(
        coverage.candleCount == 5 && coverage.expectedCount == 9 && coverage.missingCount == 4
      )
      #expect(coverage.gaps.map(\.missingBars) == [4])
      #expect(coverage.sources == ["test"])
      #expect(coverage.hasLastIngestTime)
    }
  }

  @Test(
    "A conflicting duplicate fails the stream and stores nothing from it; repeating a stream stores nothing twice",
    arguments: TransportKind.allCases
  )
  func conflictsAndIdempotence(transport: TransportKind) async throws {
    try await Self.withFeatureService(transport) { client in
      let first = try await Self.ingest(
        client,
        [Self.header(), Self.batch((0 ..< 10).map { Self.candle($0) })]
      )
      #expect(first.accepted == 10)
      let again = try await Self.ingest(
        client,
        [Self.header(), Self.batch((0 ..< 10).map { Self.candle($0) })]
      )
      #expect(again.accepted == 0 && again.duplicatesDropped == 10)
      // New hours 10..<20, and hour 5 contradicting the store: nothing of it may land.
      let code = await statusCode(of: {
        _ = try await Self.ingest(
          client,
          [
            Self.header(),
            Self.batch((10 ..< 20).map { Self.candle($0) } + [Self.candle(5, close: 1.9)]),
          ]
        )
      })
      #expect(code == .invalidArgument)
      #expect(try await Self.coverage(client)?.candleCount == 10)
      // In-stream conflicts fail too, naming both lines.
      do {
        _ = try await Self.ingest(
          client,
          [
            Self.header(),
            Self.batch([Self.candle(30), Self.candle(30, close: 1.9)], lines: [7, 8]),
          ]
        )
        Issue.record("a conflicting duplicate was accepted")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        #expect(
          error.message.contains("t.csv:8") && error.message.contains("line 7"),
          "\(error.message)"
        )
      }
      #expect(try await Self.coverage(client)?.candleCount == 10)
    }
  }

  @Test(
    "Duplicate policies: keep the stored copy, replace it, or reject the row",
    arguments: [
      (Vane_V1_DuplicatePolicy.keepExisting, 1.5, Int64(0), Int64(0)),
      (.replace, 1.9, 1, 0),
      (.rejectConflicts, 1.5, 0, 1),
    ]
  )
  func policies(
    policy: Vane_V1_DuplicatePolicy,
    storedClose: Double,
    replaced: Int64,
    invalid: Int64
  ) async throws {
    try await Self.withFeatureService(.inProcess) { client in
      _ = try await Self.ingest(
        client,
        [Self.header(), Self.batch([Self.candle(0), Self.candle(1)])]
      )
      var options = Vane_V1_IngestOptions()
      options.onDuplicate = policy
      let response = try await Self.ingest(
        client,
        [Self.header(options: options), Self.batch([Self.candle(1, close: 1.9), Self.candle(2)])]
      )
      #expect(response.accepted == 1)
      #expect(response.conflicts == 1)
      #expect(response.replaced == replaced)
      #expect(response.invalid == invalid)
    } store: { store throws in
      #expect(
        try store.candles(symbol: "BTCUSDT", interval: .h1).map(\.close) == [1.5, storedClose, 1.5]
      )
    }
  }

  @Test("Strict streams fail on the first invalid row; dry runs store nothing")
  func strictAndDryRun() async throws {
    try await Self.withFeatureService(.inProcess) { client in
      var bad = Self.candle(1)
      bad.volume = -1
      var strict = Vane_V1_IngestOptions()
      strict.strict = true
      let code = await statusCode(of: {
        _ = try await Self.ingest(
          client,
          [Self.header(options: strict), Self.batch([Self.candle(0), bad], lines: [2, 3])]
        )
      })
      #expect(code == .invalidArgument)
      var dry = Vane_V1_IngestOptions()
      dry.dryRun = true
      let response = try await Self.ingest(
        client,
        [Self.header(options: dry), Self.batch([Self.candle(0), Self.candle(1)])]
      )
      #expect(response.dryRun && response.accepted == 2)
      #expect(try await Self.coverage(client) == nil)
    }
  }

  @Test(
    "Malformed streams are refused with INVALID_ARGUMENT naming the field",
    arguments: [
      ([FeatureIngestTests.batch([FeatureIngestTests.candle(0)])], "header"),
      ([FeatureIngestTests.header("btc-usdt")], "header.market.symbol"),
      ([FeatureIngestTests.header("BTCUSDT", .unspecified)], "header.market.interval"),
      ([FeatureIngestTests.header(), FeatureIngestTests.header()], "message[1]"),
      (
        [
          FeatureIngestTests.header(),
          FeatureIngestTests.batch([FeatureIngestTests.candle(0)], lines: [1, 2]),
        ], "message[1].batch.lines"
      ),
      (
        [FeatureIngestTests.header(), FeatureIngestTests.batch([Vane_V1_Candle()])],
        "message[1].batch.candles[0].open_time"
      ),
      (
        [
          FeatureIngestTests.header("BTCUSDT", .interval4H),
          FeatureIngestTests.batch((0 ..< 3).map { FeatureIngestTests.candle($0) }),
        ], "interval"
      ),
    ]
  )
  func malformed(messages: [Vane_V1_IngestCandlesRequest], field: String) async throws {
    try await Self.withFeatureService(.inProcess) { client in
      do {
        _ = try await Self.ingest(client, messages)
        Issue.record("accepted a malformed stream")
      } catch let error as RPCError {
        #expect(error.code == .invalidArgument)
        #expect(error.message.hasPrefix("\(field):"), "\(error.message)")
      }
    }
  }

  @Test("GetCoverage filters by symbol, interval and range, and caps the gaps it lists")
  func coverageFilters() async throws {
    try await Self.withFeatureService(.inProcess) { client in
      _ = try await Self.ingest(
        client,
        [Self.header(), Self.batch([0, 2, 4, 6, 8].map { Self.candle($0) })]
      )
      _ = try await Self.ingest(client, [Self.header("ETHUSDT"), Self.batch([Self.candle(0)])])
      let all = try await client.getCoverage(.init())
      #expect(all.series.map(\.market.symbol) == ["BTCUSDT", "ETHUSDT"])
      let ranged = try await client.getCoverage(
        .with {
          $0.symbols = ["BTCUSDT"]
          $0.intervals = [.interval1H]
          $0.range = .init(start: Self.t0 + 2 * Self.hour, end: Self.t0 + 7 * Self.hour)
          $0.maxGaps = 1
        }
      )
      let series = try #require(ranged.series.first)
      #expect(series.candleCount == 3 && series.missingCount == 2)
      #expect(series.gaps.count == 1 && series.gapsTruncated)
      #expect(try await client.getCoverage(.with { $0.intervals = [.interval4H] }).series.isEmpty)
      let code = await statusCode(of: {
        _ = try await client.getCoverage(.with { $0.range = .init(start: Self.t0, end: Self.t0) })
      })
      #expect(code == .invalidArgument)
    }
  }

  @Test(
    "The real BTC files: the 11-column file adds 11,933 hours, fills in extras on 43,789, drops 43 off-grid rows",
    .enabled(if: MarketData.available)
  )
  func realFiles() async throws {
    try await Self.withFeatureService(.shim) { client in
      var responses: [Vane_V1_IngestCandlesResponse] = []
      for name in ["binance_BTCUSDT_1h.csv.gz", "binance_BTCUSDT_1h_11col_2017-2024.csv.gz"] {
        let messages = try await ComputeExecutor.shared.run {
          let file = try CandleFileParser.read(path: MarketData.path(name))
          return FeatureUpload.messages(file: file, symbol: "BTCUSDT", interval: .h1, source: name)
        }
        responses.append(try await Self.ingest(client, messages))
      }
      #expect(responses[0].accepted == 52_549 && responses[0].gapCount == 20)
      #expect(responses[1].accepted == 11_933)
      #expect(
        responses[1].duplicatesDropped == 43_789 && responses[1].enriched == 43_789
          && responses[1].conflicts == 0
      )
      #expect(responses[1].offGridDropped == 43 && responses[1].offGridRows.count == 43)
      #expect(responses[1].offGridRows.allSatisfy { $0.message.contains(":28:14") })
      #expect(responses[1].storedCount == 64_482)
    }
  }

  @Test(
    "Symbols are read from file names the way real files are named",
    arguments: [
      ("binance_BTCUSDT_1h.csv.gz", "BTCUSDT"), ("ETHUSDT-1h-2024-01.csv", "ETHUSDT"),
      ("SOLUSDT_4h.csv", "SOLUSDT"),
      ("candles.csv", nil), ("USDT.csv", nil),
    ]
  )
  func symbolFromFileName(name: String, symbol: String?) {
    #expect(FeatureUpload.symbol(fromFileName: name) == symbol)
  }
}
