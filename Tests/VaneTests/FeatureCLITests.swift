import Foundation
import GRPCCore
import GRPCShimTransport
import Testing
import VaneProto
import VaneCore
import VaneTestSupport

/// `vane ingest`, `vane features` and `vane dataset` against a `vane serve feature` process.
@Suite("vane ingest, vane features, vane dataset")
struct FeatureCLITests {
  /// A candle file in the naive-UTC layout: `hours` hourly bars from 2024-01-01, a seeded walk.
  static func file(
    hours: Range<Int>,
    extra: [String] = [],
    in directory: URL,
    name: String
  ) throws -> String {
    var random = SplitMix64(seed: 21)
    var lines = ["timestamp,open,high,low,close,volume"]
    var price = 40_000.0
    for hour in hours {
      let open = price
      price *= 1 + (random.uniform() - 0.5) * 0.01
      let time = CandleTimeText.hour(hour)
      lines.append(
        "\(time),\(open),\(max(open, price) * 1.001),\(min(open, price) * 0.999),\(price),\(10 + random.uniform())"
      )
    }
    let url = directory.appendingPathComponent(name)
    try (lines + extra).joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  @Test(
    "A file refused before any call prints one error and exits, with no client-shutdown error after it (ingest, train, gate)"
  )
  func oneErrorOnly() async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-one-error-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    // One row: the interval cannot be inferred. Nothing listens on the address either.
    let one = try Self.file(hours: 0 ..< 1, in: directory, name: "binance_ONEUSDT_1h.csv")
    let spec = directory.appendingPathComponent("bad.yaml")
    try "name: [unclosed".write(to: spec, atomically: true, encoding: .utf8)
    let predictions = directory.appendingPathComponent("p.csv")
    try "label,DOWN,UP\nUP,0.5,3\n".write(to: predictions, atomically: true, encoding: .utf8)
    for (arguments, expected) in [
      (["ingest", "--address", "127.0.0.1:9", one], "too few rows to infer the interval"),
      (["train", "--address", "127.0.0.1:9", spec.path], "bad.yaml"),
      (
        ["gate", "evaluate", "--address", "127.0.0.1:9", "--interval", "1h", predictions.path],
        "p.csv:2"
      ),
    ] {
      let result = try await VaneBinary.run(arguments)
      #expect(result.status == 1 || result.status == 2, "\(arguments[0]): \(result.status)")
      let errors = result.stderr.split(separator: "\n").filter {
        $0.hasPrefix("ERROR")
      }
      #expect(
        errors.count == 1 && errors[0].contains(expected),
        "\(arguments[0]): \(result.stderr)"
      )
      for leaked in ["runConnections", "clientIsStopped", "GRPCCore"] {
        #expect(!result.stderr.contains(leaked), "\(arguments[0]): \(result.stderr)")
      }
    }
  }

  @Test(
    "SIGTERM ends an open StreamFeatures with UNAVAILABLE at once instead of holding shutdown for the grace period"
  )
  func shutdownEndsStreams() async throws {
    let server = try await ServeProcess(.feature, extraArguments: ["--grace-period", "30"])
    defer { server.stop() }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-feature-stream-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = try Self.file(hours: 0 ..< 48, in: directory, name: "binance_ETHUSDT_1h.csv")
    #expect(try await VaneBinary.run(["ingest", "--address", server.address, path]).status == 0)
    let started = ContinuousClock.now
    let code = try await withGRPCClient(
      transport: try ShimClientTransport(config: .init(target: server.address))
    ) { grpc -> RPCError.Code? in
      let client = Vane_V1_FeatureService.Client(wrapping: grpc)
      async let ended: RPCError.Code? = {
        do {
          try await client.streamFeatures(
            .with {
              $0.markets = [
                .with {
                  $0.symbol = "ETHUSDT"
                  $0.interval = .interval1H
                }
              ]
              $0.allowMissing = true
            }
          ) { response in for try await _ in response.messages {} }
          return nil
        } catch let error as RPCError {
          return error.code
        }
      }()
      try await Task.sleep(for: .milliseconds(500))
      server.process.terminate()
      return try await ended
    }
    await server.process.exited()
    #expect(code == .unavailable)
    #expect(server.process.terminationStatus == 0)
    #expect(ContinuousClock.now - started < .seconds(15), "the drain waited for the stream")
  }

  @Test(
    "An export taken mid-bar: the last candle is unfinished by the file's own time (or --reference-time) and left out; 'now' uses the server's clock"
  )
  func unfinishedLastCandle() async throws {
    let server = try await ServeProcess(.feature)
    defer { server.stop() }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-feature-mid-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    // 48 hourly bars from 2024-01-01; the file written at 47:30, inside the last bar.
    let path = try Self.file(hours: 0 ..< 48, in: directory, name: "binance_ETHUSDT_1h.csv")
    let written = Date(timeIntervalSince1970: 1_704_067_200 + 47 * 3600 + 1800)
    try FileManager.default.setAttributes([.modificationDate: written], ofItemAtPath: path)
    let byFile = try await VaneBinary.run([
      "ingest", "--address", server.address, "--dry-run", path,
    ])
    #expect(
      byFile.status == 0 && byFile.stdout.contains("last candle unfinished (2024-01-02 23:00:00)")
        && byFile.stdout.contains("47 new"),
      "\(byFile.stdout)"
    )
    let explicit = try await VaneBinary.run([
      "ingest", "--address", server.address, "--dry-run", "--reference-time",
      "2024-01-02T22:30:00Z", path,
    ])
    #expect(
      explicit.status == 0
        && explicit.stdout.contains("last candle unfinished (2024-01-02 23:00:00)"),
      "\(explicit.stdout)"
    )
    let now = try await VaneBinary.run([
      "ingest", "--address", server.address, "--dry-run", "--reference-time", "now", path,
    ])
    #expect(
      now.status == 0 && !now.stdout.contains("unfinished") && now.stdout.contains("48 new"),
      "\(now.stdout)"
    )
    let bad = try await VaneBinary.run([
      "ingest", "--address", server.address, "--reference-time", "soon", path,
    ])
    #expect(bad.status == 64 && bad.stderr.contains("--reference-time"), "\(bad.stderr)")
  }

  @Test(
    "Ingest reports what it stored and dropped; a conflicting file exits 1 and stores nothing; datasets are written as CSV and as the VANEDS01 layout"
  )
  func endToEnd() async throws {
    let server = try await ServeProcess(.feature)
    defer { server.stop() }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-feature-cli-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }

    let good = try Self.file(
      hours: 0 ..< 700,
      extra: ["2024-01-01 03:28:14,1,2,0.5,1.5,3"],
      in: directory,
      name: "binance_BTCUSDT_1h.csv"
    )
    let ingest = try await VaneBinary.run(["ingest", "--address", server.address, good])
    #expect(ingest.status == 0, "\(ingest.stderr)")
    #expect(
      ingest.stdout.contains("BTCUSDT 1h") && ingest.stdout.contains("received 701: 700 new"),
      "\(ingest.stdout)"
    )
    #expect(
      ingest.stdout.contains(
        "off-grid binance_BTCUSDT_1h.csv:702: open time 2024-01-01 03:28:14 is off the 1h grid"
      ),
      "\(ingest.stdout)"
    )

    // The same hours with other prices: refused whole, nothing stored, exit 1.
    var lines = try String(contentsOfFile: good, encoding: .utf8).split(separator: "\n").map(
      String.init
    )
    lines[5] = lines[5].replacingOccurrences(
      of: ",",
      with: ",9",
      options: [],
      range: lines[5].range(of: ",", options: .backwards)
    )
    let conflicting = directory.appendingPathComponent("BTCUSDT-conflict.csv")
    try (lines + ["2024-02-01 00:00:00,1,2,0.5,1.5,3"]).joined(separator: "\n").write(
      to: conflicting,
      atomically: true,
      encoding: .utf8
    )
    let refused = try await VaneBinary.run([
      "ingest", "--address", server.address, conflicting.path,
    ])
    #expect(refused.status == 1)
    #expect(refused.stderr.contains("already has a different candle"), "\(refused.stderr)")
    let json = try await VaneBinary.run([
      "ingest", "--address", server.address, "--json", "--dry-run", good,
    ])
    #expect(json.stdout.contains(#""storedCount":"700""#), "\(json.stdout)")

    let describe = try await VaneBinary.run(["features", "--address", server.address, "--describe"])
    #expect(
      describe.status == 0 && describe.stdout.contains("78 columns")
        && describe.stdout.contains("hvol_20")
    )
    // Without the other three symbols the cross-asset columns are missing: an error that says
    // so, or a vector with them missing when asked.
    let strict = try await VaneBinary.run(["features", "--address", server.address, "BTCUSDT"])
    #expect(strict.status == 1 && strict.stderr.contains("failedPrecondition"), "\(strict.stderr)")
    let partial = try await VaneBinary.run([
      "features", "--address", server.address, "BTCUSDT", "--allow-missing", "--as-of",
      "2024-01-29T00:00:00Z",
    ])
    #expect(
      partial.status == 0 && partial.stdout.contains("as of 2024-01-29 00:00:00")
        && partial.stdout.contains("hour_sin"),
      "\(partial.stdout)"
    )

    // 700 bars, horizons 5 and 12: every bar with a resolvable label is kept (incomplete rows on).
    let csv = directory.appendingPathComponent("ds.csv").path
    let dataset = try await VaneBinary.run([
      "dataset", "--address", server.address, "--symbols", "BTCUSDT", "--horizons", "5,12",
      "--keep-incomplete", "--out", csv,
    ])
    #expect(dataset.status == 0, "\(dataset.stderr)")
    let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
    #expect(rows.count == 701)
    #expect(
      rows[0].hasPrefix("open_time,symbol,logret_1,")
        && rows[0].hasSuffix("label_h5,label_end_h5,label_h12,label_end_h12")
    )
    #expect(rows[1].hasPrefix("2024-01-01T00:00:00Z,BTCUSDT,,"))
    #expect(dataset.stderr.contains("700 rows"), "\(dataset.stderr)")

    let vds = directory.appendingPathComponent("ds.vds").path
    let binary = try await VaneBinary.run([
      "dataset", "--address", server.address, "--symbols", "BTCUSDT", "--horizons", "5,12",
      "--keep-incomplete", "--format", "vds", "--out", vds,
    ])
    #expect(binary.status == 0, "\(binary.stderr)")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: vds)))
    #expect(Array(bytes[0 ..< 8]) == Array("VANEDS01".utf8))
    let headerLength =
      Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
    let header =
      try JSONSerialization.jsonObject(with: Data(bytes[12 ..< (12 + headerLength)]))
      as? [String: Any]
    #expect(
      (header?["columns"] as? [String])?.count == 78 && (header?["horizons"] as? [Int]) == [5, 12]
    )
    // Rows: i64 time, u32 symbol, 78 f64, then per horizon i32 class and i64 end.
    let record = 8 + 4 + 78 * 8 + 2 * (4 + 8)
    let trailer = bytes.count - (8 + 8 + 64)
    #expect((trailer - 12 - headerLength) == 700 * record)
    #expect(Array(bytes[trailer ..< (trailer + 8)]) == Array("VANEEND1".utf8))
    #expect(bytes[trailer + 8] == UInt8(700 & 0xFF) && bytes[trailer + 9] == UInt8(700 >> 8))
    let first = 12 + headerLength
    let openTime = (0 ..< 8).reduce(Int64(0)) { $0 | Int64(bytes[first + $1]) << (8 * Int64($1)) }
    #expect(openTime == 1_704_067_200_000)
  }
}

/// Hour offsets from 2024-01-01 00:00 UTC as the naive text real files use.
enum CandleTimeText {
  static func hour(_ offset: Int) -> String {
    let day = offset / 24, hour = offset % 24
    // January has 31 days; the tests stay within January and February 2024.
    let (month, dayOfMonth) = day < 31 ? (1, day + 1) : (2, day - 30)
    return String(format: "2024-%02d-%02d %02d:00:00", month, dayOfMonth, hour)
  }
}
