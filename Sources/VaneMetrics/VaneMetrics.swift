internal import CoreMetrics
internal import Metrics
internal import Prometheus
internal import Synchronization

/// The process's Prometheus registry behind swift-metrics: every `Counter`, `Gauge` and
/// `Timer` made after ``bootstrap()`` lands in it, and ``exposition()`` renders it.
/// Until then swift-metrics hands out no-op handlers, so a service run without
/// `--metrics-address` pays nothing.
public enum VaneMetrics {
  private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

  /// Makes the registry the metrics backend; idempotent (swift-metrics allows one bootstrap per
  /// process).
  public static func bootstrap() {
    state.withLock { registry in
      guard registry == nil else { return }
      let made = PrometheusCollectorRegistry()
      var factory = PrometheusMetricsFactory(registry: made)
      factory.defaultDurationHistogramBuckets = Self.latencyBuckets
      MetricsSystem.bootstrap(factory)
      registry = made
    }
  }

  /// Whether ``bootstrap()`` ran.
  public static var isBootstrapped: Bool { state.withLock { $0 != nil } }

  /// The text exposition of everything recorded so far (empty before ``bootstrap()``).
  public static func exposition() -> [UInt8] {
    state.withLock { $0 }?.emitToBuffer() ?? []
  }

  /// `vane_build_info{service,version} 1`: which build answers at this endpoint.
  public static func recordBuildInfo(service: String, version: String) {
    CoreMetrics.Gauge(
      label: "vane_build_info",
      dimensions: [("service", service), ("version", version)]
    ).record(1)
  }

  /// Latency buckets, 100 µs to 60 s: a Predict answers in well under a millisecond and a
  /// training call may take a minute; swift-prometheus's default starts at 5 ms.
  static let latencyBuckets: [Duration] = [
    .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
    .microseconds(2500), .milliseconds(5),
    .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
    .milliseconds(500),
    .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
  ]
}

/// Mirrors a running total kept elsewhere (a registry's request count since load) into a
/// Prometheus counter, read at scrape time: the counter rises by what the total rose since the
/// last read, so hot paths keep their own counters and pay nothing for the export. A total that
/// went down (its owner was unloaded and loaded again) restarts from there without a decrease.
public final class CounterMirror: Sendable {
  private let label: String
  private let seen = Mutex<[[String]: (last: Int64, counter: CoreMetrics.Counter)]>([:])

  public init(_ label: String) { self.label = label }

  /// Records `total` for the series with `dimensions`.
  public func observe(_ total: Int64, _ dimensions: [(String, String)]) {
    let key = dimensions.flatMap { [$0.0, $0.1] }
    let (counter, delta): (CoreMetrics.Counter, Int64) = self.seen.withLock { seen in
      let entry =
        seen[key] ?? (
          last: 0, counter: CoreMetrics.Counter(label: self.label, dimensions: dimensions)
        )
      seen[key] = (last: total, counter: entry.counter)
      return (entry.counter, total >= entry.last ? total - entry.last : total)
    }
    if delta > 0 { counter.increment(by: delta) }
  }
}

/// A family of gauges read at scrape time (jobs by state, rollout steps): a series seen in the
/// last read but not in this one is removed, so a finished rollout's step does not linger.
public final class GaugeFamily: Sendable {
  private let label: String
  private let live = Mutex<[[String]: CoreMetrics.Gauge]>([:])

  public init(_ label: String) { self.label = label }

  /// Sets the family to exactly `values`.
  public func set(_ values: [(dimensions: [(String, String)], value: Double)]) {
    let gone: [CoreMetrics.Gauge] = self.live.withLock { live in
      var next: [[String]: CoreMetrics.Gauge] = [:]
      for (dimensions, value) in values {
        let key = dimensions.flatMap { [$0.0, $0.1] }
        let gauge =
          next[key] ?? live[key] ?? CoreMetrics.Gauge(label: self.label, dimensions: dimensions)
        gauge.record(value)
        next[key] = gauge
      }
      let removed = live.filter { next[$0.key] == nil }.map(\.value)
      live = next
      return removed
    }
    for gauge in gone { gauge.destroy() }
  }
}
