internal import Foundation
internal import GRPCCore
internal import GRPCShimTransport
internal import SwiftProtobuf
internal import VaneCore
internal import VaneBundle
internal import VaneFeatures
internal import VaneProto
internal import VaneRuntime
internal import VaneTraining

/// Where the trainer finds the services it calls, and how patiently.
public struct TrainerConfig: Sendable {
  /// FeatureService "host:port" (BuildDataset, DescribeFeatureSet).
  public var featureAddress: String
  /// GatekeeperService "host:port" (Evaluate, Bless).
  public var gatekeeperAddress: String
  /// Numeric threads when a spec leaves `threads` 0 (BLAS and XGBoost).
  public var threads: Int
  /// Deadline of one BuildDataset stream, and of every other call.
  public var datasetDeadline: Duration
  public var callDeadline: Duration
  /// Attempts per call when the upstream is unavailable or late.
  public var attempts: Int
  /// The bearer token sent on the gatekeeper's admin method (Bless) when the stack has one.
  public var adminToken: String?

  public init(
    featureAddress: String,
    gatekeeperAddress: String,
    threads: Int = 2,
    datasetDeadline: Duration = .seconds(600),
    callDeadline: Duration = .seconds(120),
    attempts: Int = 4,
    adminToken: String? = nil
  ) {
    self.adminToken = adminToken
    self.featureAddress = featureAddress
    self.gatekeeperAddress = gatekeeperAddress
    self.threads = threads
    self.datasetDeadline = datasetDeadline
    self.callDeadline = callDeadline
    self.attempts = attempts
  }
}

/// A dataset pulled from the feature service, and where it came from.
struct LoadedDataset: Sendable {
  var data: TrainingData
  var featureSetID: String
  var featureSetSHA256: String
  var contentSHA256: String
  /// For bundle.json: dataset id, ranges, row counts, exclusions (gaps) per reason and symbol.
  var provenance: [String: String]
}

/// The trainer's calls to the other services: real gRPC calls over one long-lived connection per
/// upstream (``UpstreamClient``, run by the ``TrainingWorker``), each with a deadline, retried
/// with backoff while the upstream is unavailable.
struct Upstreams: Sendable {
  let config: TrainerConfig
  let feature: UpstreamClient
  let gatekeeper: UpstreamClient

  /// - Throws: INVALID_ARGUMENT naming an address the transport does not accept.
  init(config: TrainerConfig) throws {
    self.config = config
    // Datasets are streamed in chunks far below this; a chunk is bounded by the sender.
    self.feature = try UpstreamClient(
      address: config.featureAddress,
      name: "feature service",
      maxReceiveBytes: 256 << 20
    )
    self.gatekeeper = try UpstreamClient(address: config.gatekeeperAddress, name: "gatekeeper")
  }

  /// Codes worth another attempt: the upstream was down, draining or too slow.
  static let transient: Set<RPCError.Code> = [
    .unavailable, .deadlineExceeded, .resourceExhausted, .aborted,
  ]

  /// Runs `body` against `upstream`'s client, retrying transient failures (0.5 s, 1 s, 2 s…) on
  /// the same connection, which reconnects meanwhile.
  func call<R: Sendable>(
    _ upstream: UpstreamClient,
    deadline: Duration,
    cancellation: CancellationFlag?,
    _ body: @Sendable (GRPCClient<ShimClientTransport>) async throws -> R
  ) async throws -> R {
    let service = upstream.name, address = upstream.address
    var delay = Duration.milliseconds(500)
    for attempt in 1 ... max(self.config.attempts, 1) {
      do {
        return try await ShimCallDeadline.withTimeout(deadline) { try await body(upstream.client) }
      } catch let error as RPCError
        where Self.transient.contains(error.code) && attempt < self.config.attempts
      {
        if cancellation?.isCancelled == true {
          throw VaneError(.cancelled, "cancelled while waiting for the \(service)")
        }
        try await Task.sleep(for: delay)
        delay *= 2
      } catch let error as RPCError {
        throw VaneError(upstream: error, "\(service) at \(address)")
      }
    }
    throw VaneError(
      .unavailable,
      "\(service) at \(address): no answer after \(self.config.attempts) attempts"
    )
  }

  /// The spec's dataset: the feature set's column definitions (DescribeFeatureSet), then the
  /// BuildDataset stream, assembled into training rows.
  func dataset(_ spec: ResolvedSpec, cancellation: CancellationFlag?) async throws -> LoadedDataset
  {
    let spec = spec.spec
    return try await self.call(
      self.feature,
      deadline: self.config.callDeadline,
      cancellation: cancellation
    ) { grpc in
      let client = Vane_V1_FeatureService.Client(wrapping: grpc)
      let set = try await client.describeFeatureSet(.with { $0.featureSetID = spec.featureSetID })
      let request = Vane_V1_BuildDatasetRequest.with {
        $0.symbols = spec.symbols
        $0.interval = spec.interval
        $0.featureSetID = spec.featureSetID
        $0.labels = spec.labels
        if spec.hasDataRange { $0.range = spec.dataRange }
        $0.missingValues = spec.missing
      }
      return try await ShimCallDeadline.withTimeout(self.config.datasetDeadline) {
        try await client.buildDataset(request) { response in
          var assembler = DatasetAssembler(featureSet: set)
          for try await chunk in response.messages {
            if cancellation?.isCancelled == true {
              throw VaneError(.cancelled, "cancelled while loading the dataset")
            }
            try assembler.add(chunk)
          }
          return try assembler.finish()
        }
      }
    }
  }

  /// StartTraining's check of the spec against the feature service: an unknown feature set is
  /// NOT_FOUND and an interval it is not defined for is INVALID_ARGUMENT, before anything is
  /// queued. When the feature service cannot be reached the job is queued all the same (its
  /// data load retries).
  func precheck(_ spec: Vane_V1_TrainingSpec) async throws {
    let set: Vane_V1_FeatureSet
    do {
      set = try await ShimCallDeadline.withTimeout(.seconds(5)) {
        try await Vane_V1_FeatureService.Client(wrapping: self.feature.client)
          .describeFeatureSet(.with { $0.featureSetID = spec.featureSetID })
      }
    } catch let error as RPCError where error.code == .notFound || error.code == .invalidArgument {
      throw VaneError(
        VaneError.code(upstream: error.code),
        "spec.feature_set_id: \(error.message)",
        cause: error
      )
    } catch {
      return
    }
    if !set.intervals.isEmpty, !set.intervals.contains(spec.interval) {
      throw VaneError.invalidArgument(
        field: "spec.interval",
        "feature set \(set.id) is defined for \(set.intervals.compactMap(Vane_V1_TrainingSpec.intervalName).joined(separator: ", ")) only"
      )
    }
  }

  /// Evaluate (and, when asked and passed, Bless) a bundle; the verdict summary for the job.
  func evaluate(
    bundlePath: String,
    policy: String,
    bless: Bool,
    cancellation: CancellationFlag?
  ) async throws -> Vane_V1_VerdictSummary {
    return try await self.call(
      self.gatekeeper,
      deadline: self.config.callDeadline,
      cancellation: cancellation
    ) { grpc in
      let client = Vane_V1_GatekeeperService.Client(wrapping: grpc)
      let report = try await client.evaluate(
        .with {
          $0.bundle = .with { $0.path = bundlePath }
          $0.policyName = policy
        }
      )
      var summary = Vane_V1_VerdictSummary.with {
        $0.reportID = report.id
        $0.policyName = report.policyName
        $0.passed = report.passed
        $0.failedGates = report.gates.filter {
          !$0.passed && !$0.skipped && $0.severity != .warning
        }.map(\.gate)
        $0.manifestSha256 = report.subject.manifestSha256
        $0.evaluateTime = report.createTime
      }
      if bless, report.passed {
        var metadata: Metadata = [:]
        if let token = self.config.adminToken {
          metadata.addString("Bearer \(token)", forKey: "authorization")
        }
        let verdict = try await client.bless(
          .with {
            $0.bundlePath = bundlePath
            $0.reportID = report.id
          },
          metadata: metadata
        )
        summary.blessed = true
        summary.manifestSha256 = verdict.manifestSha256
        // Beside the bundle, for `vane deploy` to send with it.
        do {
          try Data(try verdict.jsonUTF8Data()).write(
            to: URL(fileURLWithPath: ModelBundle.verdictPath(for: bundlePath)),
            options: .atomic
          )
        } catch {
          throw VaneError(
            .unavailable,
            "writing \(ModelBundle.verdictPath(for: bundlePath)) failed",
            cause: error
          )
        }
      }
      return summary
    }
  }
}

/// Builds training rows from a BuildDataset stream: a header, row blocks, a summary; checked as
/// it goes (a hostile or broken stream is an error naming what is wrong, never a crash).
struct DatasetAssembler {
  let featureSet: Vane_V1_FeatureSet
  var header: Vane_V1_DatasetHeader?
  var summary: Vane_V1_DatasetSummary?
  var features: [Double] = []
  var openTimes: [Int64] = []
  var symbols: [Int] = []
  var labels: [[Int]] = []
  var labelEnds: [[Int64]] = []

  init(featureSet: Vane_V1_FeatureSet) { self.featureSet = featureSet }

  static func fail(_ reason: String) -> VaneError {
    VaneError(.internalError, "BuildDataset stream: \(reason)")
  }

  mutating func add(_ chunk: Vane_V1_DatasetChunk) throws {
    switch chunk.chunk {
    case .header(let header)?:
      guard self.header == nil else { throw Self.fail("a second header") }
      guard header.columns.count == Int(header.columnCount), !header.columns.isEmpty else {
        throw Self.fail("header columns and column_count differ")
      }
      guard header.columns == self.featureSet.columns.map(\.name) else {
        throw Self.fail("the header's columns are not feature set \(self.featureSet.id)'s")
      }
      guard header.classes.count >= 2, !header.labels.horizons.isEmpty else {
        throw Self.fail("header without classes or horizons")
      }
      self.header = header
      self.labels = Array(repeating: [], count: header.labels.horizons.count)
      self.labelEnds = Array(repeating: [], count: header.labels.horizons.count)
    case .rows(let rows)?:
      guard let header = self.header else { throw Self.fail("rows before the header") }
      guard self.summary == nil else { throw Self.fail("rows after the summary") }
      let n = Int(rows.rowCount), width = header.columns.count
      guard rows.firstRowIndex == Int64(self.openTimes.count) else {
        throw Self.fail("rows out of order (first_row_index \(rows.firstRowIndex))")
      }
      guard Int(rows.columnCount) == width, rows.features.count == n * width,
        rows.openTimeUnixMs.count == n, rows.symbolIndex.count == n,
        rows.labels.count == header.labels.horizons.count,
        rows.labels.allSatisfy({ $0.label.count == n && $0.labelEndUnixMs.count == n })
      else { throw Self.fail("a block of \(n) rows has fields of other lengths") }
      guard rows.symbolIndex.allSatisfy({ Int($0) < header.symbols.count }) else {
        throw Self.fail("a symbol index is out of range")
      }
      self.features += rows.features
      self.openTimes += rows.openTimeUnixMs
      self.symbols += rows.symbolIndex.map(Int.init)
      for (h, block) in rows.labels.enumerated() {
        guard block.label.allSatisfy({ $0 >= -1 && Int($0) < header.classes.count }) else {
          throw Self.fail("a label is not a class index")
        }
        self.labels[h] += block.label.map(Int.init)
        self.labelEnds[h] += block.labelEndUnixMs
      }
    case .summary(let summary)?:
      guard self.header != nil else { throw Self.fail("a summary before the header") }
      self.summary = summary
    case nil:
      throw Self.fail("an empty chunk")
    }
  }

  func finish() throws -> LoadedDataset {
    guard let header, let summary else {
      throw Self.fail("ended before its \(self.header == nil ? "header" : "summary")")
    }
    guard summary.rowsEmitted == Int64(self.openTimes.count) else {
      throw Self.fail(
        "the summary counts \(summary.rowsEmitted) rows; \(self.openTimes.count) arrived"
      )
    }
    guard !self.openTimes.isEmpty else {
      throw VaneError(
        .failedPrecondition,
        "the dataset is empty: no complete rows for \(header.symbols.joined(separator: ",")) in the range (ingest candles first)"
      )
    }
    // The one interval table (an unknown interval is an error, not a day).
    let barMs = try CandleInterval(header.interval, field: "dataset header interval").milliseconds
    let data = try TrainingData(
      columns: header.columns,
      scaled: self.featureSet.columns.map(\.scaled),
      features: self.features,
      openTimes: self.openTimes,
      symbolIndex: self.symbols,
      symbols: header.symbols,
      horizons: header.labels.horizons.map { Int($0.bars) },
      labels: self.labels,
      labelEnds: self.labelEnds,
      classes: header.classes,
      barMs: barMs
    )
    func time(_ t: Google_Protobuf_Timestamp) -> String {
      TrainingBundle.timestamp(
        Date(timeIntervalSince1970: TimeInterval(t.seconds) + TimeInterval(t.nanos) / 1e9)
      )
    }
    var provenance: [String: String] = [
      "dataset_id": header.datasetID, "dataset_sha256": summary.contentSha256,
      "feature_set_id": header.featureSetID,
      "feature_set_sha256": header.featureSetHash, "rows": "\(summary.rowsEmitted)",
      "rows_excluded": "\(summary.rowsExcluded)",
      // What each missing-values choice keeps: complete rows always, the others unless excluded.
      "missing_values":
        (try? summary.missingValues.decoded(field: "missing_values")).flatMap { $0 }?.rawValue
        ?? MissingValues.exclude.rawValue,
      "rows_complete": "\(summary.completeRows)",
      "rows_with_missing_values": "\(summary.rowsWithMissingValues)",
      "data_range": "\(time(summary.emittedRange.start))/\(time(summary.emittedRange.end))",
    ]
    let exclusions = summary.exclusions.map { "\($0.reason)=\($0.symbol):\($0.rows)" }
    if !exclusions.isEmpty { provenance["excluded_rows"] = exclusions.joined(separator: ",") }
    return LoadedDataset(
      data: data,
      featureSetID: header.featureSetID,
      featureSetSHA256: header.featureSetHash,
      contentSHA256: summary.contentSha256,
      provenance: provenance
    )
  }
}
