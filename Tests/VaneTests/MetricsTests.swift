import Foundation
import Synchronization
import Testing
import VaneCore
import VaneMetrics
import VaneProto
import VaneServing
import VaneTestSupport

@testable import PredictorService

/// A plain HTTP/1.1 client over a loopback socket: what a Prometheus scraper sends, and what a
/// hostile one might.
enum HTTPProbe {
  struct Reply {
    var status: Int
    var head: String
    var body: String
  }

  /// Sends `request` verbatim to 127.0.0.1:`port` and reads until the server closes.
  /// - Returns: nil when the server closed without an answer.
  static func send(_ request: String, port: Int) -> Reply? {
    var reply: [UInt8] = []
    let connected = LoopbackPorts.withLoopbackSocket(port) { fd, address, length in
      guard connect(fd, address, length) == 0 else { return false }
      var timeout = timeval(tv_sec: 10, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      let bytes = Array(request.utf8)
      var sent = 0
      while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        sent += n
      }
      var buffer = [UInt8](repeating: 0, count: 65_536)
      while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        reply += buffer[0 ..< n]
      }
      return true
    }
    guard connected, !reply.isEmpty else { return nil }
    let text = String(decoding: reply, as: UTF8.self)
    let parts = text.components(separatedBy: "\r\n\r\n")
    let head = parts[0]
    let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return Reply(status: status, head: head, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
  }

  static func get(_ path: String, port: Int, method: String = "GET") -> Reply? {
    send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", port: port)
  }
}

/// Reads one sample from the Prometheus text format: the series named `name` whose labels
/// include `labels`.
func sample(_ name: String, _ labels: [String: String] = [:], in text: String) -> Double? {
  for line in text.split(separator: "\n") where !line.hasPrefix("#") {
    guard let space = line.lastIndex(of: " ") else { continue }
    let series = line[..<space]
    let seriesName =
      series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? String(series)
    guard seriesName == name else { continue }
    if labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) {
      return Double(line[line.index(after: space)...])
    }
  }
  return nil
}

@Suite(
  "Prometheus metrics: the endpoint, scrape-time figures, a service process",
  .serialized,
  .timeLimit(.minutes(3))
)
struct MetricsTests {
  @Test(
    "--metrics-address: host:port parsed, bad ones named",
    arguments: [
      ("127.0.0.1:0", true), ("0.0.0.0:9100", true), ("[::1]:0", true), ("localhost:0", true),
      ("127.0.0.1", false), ("127.0.0.1:70000", false), ("127.0.0.1:http", false),
      ("example.com:9100", false),
    ]
  )
  func addresses(address: String, valid: Bool) throws {
    if valid {
      let endpoint = try MetricsEndpoint(address: address, logger: .init(label: "test"))
      #expect(endpoint.port > 0)
      endpoint.stop()
    } else {
      let error = #expect(throws: VaneError.self) {
        try MetricsEndpoint(address: address, logger: .init(label: "test"))
      }
      #expect(
        error?.code == .invalidArgument && error?.message.contains("--metrics-address") == true,
        "\(String(describing: error))"
      )
    }
  }

  @Test(
    "GET /metrics serves the exposition after refreshing it; other paths 404, other methods 405, huge headers refused"
  )
  func endpoint() throws {
    let family = GaugeFamily("vane_test_endpoint_things")
    let mirror = CounterMirror("vane_test_endpoint_events_total")
    let totals = Mutex<(things: [String], events: Int64)>((["a", "b"], 5))
    let endpoint = try MetricsEndpoint(address: "127.0.0.1:0", logger: .init(label: "test")) {
      let (things, events) = totals.withLock { $0 }
      family.set(things.map { (dimensions: [("thing", $0)], value: 1) })
      mirror.observe(events, [("kind", "x")])
    }
    defer { endpoint.stop() }

    let first = try #require(HTTPProbe.get("/metrics", port: endpoint.port))
    #expect(first.status == 200)
    #expect(first.head.lowercased().contains("content-type: text/plain; version=0.0.4"))
    #expect(sample("vane_test_endpoint_things", ["thing": "a"], in: first.body) == 1)
    #expect(sample("vane_test_endpoint_events_total", ["kind": "x"], in: first.body) == 5)

    // A total that rose moves the counter by the difference; one that fell (its owner
    // restarted) counts from zero again, never down. A series gone from the family is removed.
    totals.withLock { $0 = (["b"], 8) }
    let second = try #require(HTTPProbe.get("/metrics?x=1", port: endpoint.port))
    #expect(sample("vane_test_endpoint_events_total", ["kind": "x"], in: second.body) == 8)
    #expect(sample("vane_test_endpoint_things", ["thing": "a"], in: second.body) == nil)
    #expect(sample("vane_test_endpoint_things", ["thing": "b"], in: second.body) == 1)
    totals.withLock { $0 = (["b"], 2) }
    let third = try #require(HTTPProbe.get("/metrics", port: endpoint.port))
    #expect(sample("vane_test_endpoint_events_total", ["kind": "x"], in: third.body) == 10)

    #expect(HTTPProbe.get("/metrics", port: endpoint.port, method: "HEAD")?.status == 200)
    #expect(HTTPProbe.get("/", port: endpoint.port)?.status == 404)
    let post = try #require(HTTPProbe.get("/metrics", port: endpoint.port, method: "POST"))
    #expect(post.status == 405 && post.head.contains("GET, HEAD"))
    // 64 KiB of headers: refused (or the connection closed), never answered with metrics.
    let huge = HTTPProbe.send(
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 65_536))\r\n\r\n",
      port: endpoint.port
    )
    #expect(huge.map { $0.status != 200 } ?? true)
    // Garbage is not HTTP.
    #expect(
      HTTPProbe.send("\u{1}\u{2}garbage\r\n\r\n", port: endpoint.port).map { $0.status >= 400 }
        ?? true
    )
    // And it still serves afterwards.
    #expect(HTTPProbe.get("/metrics", port: endpoint.port)?.status == 200)

    // A busy port is an error that names the option.
    let error = #expect(throws: VaneError.self) {
      try MetricsEndpoint(address: "127.0.0.1:\(endpoint.port)", logger: .init(label: "test"))
    }
    #expect(
      error?.message.contains("--metrics-address") == true
        && error?.message.contains("\(endpoint.port)") == true
    )
  }

  @Test(
    "vane serve feature --metrics-address: calls, errors and latency per method; candles stored per series"
  )
  func serviceProcess() async throws {
    let metricsPort = try LoopbackPorts.free()
    let server = try await ServeProcess(
      .feature,
      extraArguments: ["--metrics-address", "127.0.0.1:\(metricsPort)"]
    )
    defer { server.stop() }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-metrics-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = try FeatureCLITests.file(
      hours: 0 ..< 48,
      in: directory,
      name: "binance_ETHUSDT_1h.csv"
    )
    #expect(try await VaneBinary.run(["ingest", "--address", server.address, path]).status == 0)
    // NOT_FOUND: no such symbol.
    let missing = try await VaneBinary.run(["features", "--address", server.address, "NOPEUSDT"])
    #expect(missing.status != 0)

    let text = try #require(HTTPProbe.get("/metrics", port: metricsPort)).body
    #expect(
      sample("vane_build_info", ["service": "feature", "version": BuildInfo.version], in: text) == 1
    )
    let ingest = "vane.v1.FeatureService/IngestCandles"
    #expect(sample("vane_rpc_requests_total", ["method": ingest], in: text) == 1, "\(text)")
    #expect(sample("vane_rpc_duration_seconds_count", ["method": ingest], in: text) == 1)
    #expect(
      sample("vane_rpc_duration_seconds_bucket", ["method": ingest, "le": "+Inf"], in: text) == 1
    )
    #expect(sample("vane_rpc_errors_total", ["method": ingest], in: text) == nil)
    #expect(
      text.contains("vane_rpc_errors_total{method=\"vane.v1.FeatureService/")
        && text.contains("code=\"NOT_FOUND\""),
      "\(text)"
    )
    #expect(
      sample("vane_feature_candles_stored", ["symbol": "ETHUSDT", "interval": "1h"], in: text) == 48
    )
    #expect(
      sample(
        "vane_feature_newest_bar_open_seconds",
        ["symbol": "ETHUSDT", "interval": "1h"],
        in: text
      ) == Double(1_704_067_200 + 47 * 3600)
    )
  }

  @Test(
    "Predictor figures: answers per version and role, errors, traffic, readiness, read at scrape time"
  )
  func predictorFigures() async throws {
    VaneMetrics.bootstrap()
    let predictor = PredictorLiveTests.predictor(log: nil)
    let refresh = predictor.metricsRefresh()
    try await PredictorLiveTests.serve(predictor) { client in
      _ = try await client.loadModel(
        .with {
          $0.bundlePath = PredictorServiceTests.bundles[0]
          $0.modelID = "metrics-btc"
          $0.version = "v7"
          $0.wait = true
        }
      )
      for _ in 0 ..< 3 {
        var request = PredictorServiceTests.request([0.8, -0.2, 0.52])
        request.model.modelID = "metrics-btc"
        _ = try await client.predict(request)
      }
    }
    refresh()
    let text = String(decoding: VaneMetrics.exposition(), as: UTF8.self)
    let version = ["model_id": "metrics-btc", "version": "v7"]
    #expect(
      sample(
        "vane_predictor_predictions_total",
        version.merging(["role": "primary"]) { a, _ in a },
        in: text
      ) == 3,
      "\(text)"
    )
    #expect(sample("vane_predictor_traffic_percent", version, in: text) == 100)
    #expect(sample("vane_predictor_version_ready", version, in: text) == 1)
  }
}
