public import GRPCCore
public import Logging
public import VaneProto
public import VaneRuntime
internal import Foundation
internal import SwiftProtobuf
internal import VaneCore
internal import VaneMath
internal import VaneModels
internal import VaneQuality
internal import VaneServing

/// The trainer service: training jobs: walk-forward cross-validation, model training, bundles.
///
/// A thin adapter from the generated service protocol to the job board (``JobBoard``, state in
/// `trainer.sqlite` in the data directory) and the worker (``TrainingWorker``) that runs the
/// jobs; bundles are written to `bundles/` in the data directory.
public struct TrainerServiceImplementation: Vane_V1_TrainerService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = [
    "GetServiceInfo", "StartTraining", "GetJob", "ListJobs", "CancelJob", "ResumeJob", "WatchJob",
    "ImportModel",
  ]

  let runtime: RuntimeInfo
  let board: JobBoard
  let config: TrainerConfig
  /// Runs the jobs; the caller runs it in its service group.
  public let worker: TrainingWorker

  /// Opens the job store (jobs left RUNNING by an earlier process become INTERRUPTED).
  /// - Throws: UNAVAILABLE when the data directory is unusable.
  public init(runtime: RuntimeInfo, config: TrainerConfig, logger: Logger) throws {
    self.runtime = runtime
    self.config = config
    let directory = URL(fileURLWithPath: runtime.dataDirectory)
    let store = try JobStore(path: directory.appendingPathComponent("trainer.sqlite").path)
    self.board = try JobBoard(store: store, now: JobBoard.now())
    self.worker = TrainingWorker(
      board: self.board,
      upstreams: try Upstreams(config: config),
      bundleDirectory: directory.appendingPathComponent("bundles").path,
      logger: logger
    )
  }

  public func getServiceInfo(
    request: Vane_V1_GetServiceInfoRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ServiceInfo {
    try self.runtime.serviceInfo(implemented: Self.implemented, capabilities: Self.capabilities)
  }

  /// The trainer's feature flags: `xgboost-VERSION` for the libxgboost it trains with (and
  /// `xgboost-cuda` when that one was built with CUDA), `cuda` when a spec may ask for
  /// DEVICE_CUDA here (a CUDA build of the library and a visible GPU). Fixed for a process.
  static let capabilities: [String] = {
    guard case .success(let library) = XGBoostModel.library else { return [] }
    var flags = ["xgboost-\(library.version)"]
    if library.usesCUDA {
      flags.append("xgboost-cuda")
      if !CUDADevices.visible.isEmpty { flags.append("cuda") }
    }
    return flags
  }()

  public func startTraining(
    request: Vane_V1_StartTrainingRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    try await serviceEdge {
      guard request.hasSpec else { throw VaneError.invalidArgument(field: "spec", "is required") }
      guard request.requestID.count <= 128 else {
        throw VaneError.invalidArgument(field: "request_id", "at most 128 characters")
      }
      let resolved = try request.spec.resolved(defaultThreads: self.config.threads)
      if let earlier = self.board.job(requestID: request.requestID) {
        guard earlier.spec == resolved.spec else {
          throw VaneError(
            .alreadyExists,
            "request_id '\(request.requestID)' was used for job \(earlier.id) with a different spec"
          )
        }
        return earlier
      }
      var job = Vane_V1_Job.with {
        $0.requestID = request.requestID
        $0.originRequestID = RequestID.current ?? ""
        $0.spec = resolved.spec
        $0.state = .queued
        $0.progress = .with { $0.stage = .queued }
      }
      try await self.worker.upstreams.precheck(resolved.spec)
      if request.validateOnly { return job }
      let queued = self.board.allJobs().filter { $0.state == .queued }.count
      guard queued < 100 else {
        throw VaneError(
          .resourceExhausted,
          "\(queued) jobs are queued (limit 100): wait or cancel some"
        )
      }
      let now = JobBoard.now()
      job.id = String(format: "j%011llx%06x", UInt64(now), UInt32.random(in: 0 ..< (1 << 24)))
      job.createTime = .init(unixMilliseconds: now)
      return try self.board.enqueue(job)
    }
  }

  public func importModel(
    request: Vane_V1_ImportModelRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ImportModelResponse {
    try await serviceEdge {
      let bundles = self.worker.bundles
      let imported = try await BlockingPool.shared.run {
        try ModelImportRequest(request).run(bundleDirectory: bundles)
      }
      return Vane_V1_ImportModelResponse(imported)
    }
  }

  public func getJob(
    request: Vane_V1_GetJobRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    try await serviceEdge {
      let job = try self.board.job(try Self.jobID(request.jobID))
      return request.view == .basic ? Self.basic(job) : job
    }
  }

  public func listJobs(
    request: Vane_V1_ListJobsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListJobsResponse {
    try await serviceEdge {
      guard request.page.pageSize >= 0 else {
        throw VaneError.invalidArgument(field: "page.page_size", "must not be negative")
      }
      let size = request.page.pageSize == 0 ? 50 : min(Int(request.page.pageSize), 1000)
      let created =
        request.hasCreated
        ? try request.created.milliseconds(field: "created") : (Int64.min, Int64.max)
      let states = Set(request.states)
      let matching = self.board.allJobs().filter { job in
        let time = job.createTime.seconds * 1000 + Int64(job.createTime.nanos / 1_000_000)
        return (states.isEmpty || states.contains(job.state))
          && (request.symbol.isEmpty || job.spec.symbols.contains(request.symbol))
          && time >= created.0 && time < created.1
      }
      // The token is the last id of the page before, bound to the filters that made it.
      let filters = Self.fingerprint(request)
      var start = 0
      if !request.page.pageToken.isEmpty {
        let parts = request.page.pageToken.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0] == filters,
          let index = matching.firstIndex(where: { $0.id == parts[1] })
        else {
          throw VaneError.invalidArgument(
            field: "page.page_token",
            "not a token of this listing (the filters changed, or it is not one of ours)"
          )
        }
        start = index + 1
      }
      let page = Array(matching[start ..< min(start + size, matching.count)])
      return .with {
        $0.jobs = request.view == .full ? page : page.map(Self.basic)
        if start + size < matching.count, let last = page.last {
          $0.page.nextPageToken = "\(filters):\(last.id)"
        }
        $0.page.totalSize = Int64(matching.count)
      }
    }
  }

  public func cancelJob(
    request: Vane_V1_CancelJobRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    try await serviceEdge {
      guard request.reason.count <= 1024 else {
        throw VaneError.invalidArgument(field: "reason", "at most 1024 characters")
      }
      return try self.board.cancel(try Self.jobID(request.jobID), reason: request.reason)
    }
  }

  public func resumeJob(
    request: Vane_V1_ResumeJobRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    try await serviceEdge { try self.board.resume(try Self.jobID(request.jobID)) }
  }

  public func watchJob(
    request: Vane_V1_WatchJobRequest,
    response: RPCWriter<Vane_V1_JobEvent>,
    context: ServerContext
  ) async throws {
    try await serviceEdge {
      let minimum =
        request.minLogLevel == .unspecified ? Vane_V1_LogLevel.info : request.minLogLevel
      let events = try self.board.watch(try Self.jobID(request.jobID), after: request.afterSequence)
      var finished = false
      for await event in events {
        if case .log(let line)? = event.detail,
          !request.includeLogs || line.level.rawValue < minimum.rawValue
        {
          // Still a progress update: send it without the log line.
          var plain = event
          plain.detail = nil
          try await response.write(plain)
          continue
        }
        try await response.write(event)
        if case .finalJob? = event.detail { finished = true }
      }
      guard finished else {
        throw VaneError(
          .unavailable,
          "the trainer is shutting down; watch again after it restarts (after_sequence keeps your place)"
        )
      }
    }
  }

  static func jobID(_ id: String) throws -> String {
    guard !id.isEmpty else { throw VaneError.invalidArgument(field: "job_id", "is required") }
    guard id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
      throw VaneError.invalidArgument(field: "job_id", "'\(id.prefix(64))' is not a job id")
    }
    return id
  }

  /// BASIC view: without the spec and per-fold metrics.
  static func basic(_ job: Vane_V1_Job) -> Vane_V1_Job {
    var job = job
    job.clearSpec()
    for i in job.modelMetrics.indices { job.modelMetrics[i].folds = [] }
    return job
  }

  static func fingerprint(_ request: Vane_V1_ListJobsRequest) -> String {
    var filters = request
    filters.page = .init()
    filters.view = .unspecified
    let bytes = (try? filters.serializedBytes() as [UInt8]) ?? []
    return String(SHA256.hash(data: Data(bytes)).hexString.prefix(12))
  }
}
