public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore

/// The trainer service: training jobs: walk-forward cross-validation, model training, bundles and ONNX export.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct TrainerServiceImplementation: Vane_V1_TrainerService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = ["GetServiceInfo"]

  let runtime: RuntimeInfo

  public init(runtime: RuntimeInfo) {
    self.runtime = runtime
  }

  public func getServiceInfo(
    request: Vane_V1_GetServiceInfoRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ServiceInfo {
    try self.runtime.serviceInfo(implemented: Self.implemented)
  }

  public func startTraining(
    request: Vane_V1_StartTrainingRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    throw unimplemented(.trainer, "StartTraining")
  }

  public func getJob(
    request: Vane_V1_GetJobRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    throw unimplemented(.trainer, "GetJob")
  }

  public func listJobs(
    request: Vane_V1_ListJobsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListJobsResponse {
    throw unimplemented(.trainer, "ListJobs")
  }

  public func cancelJob(
    request: Vane_V1_CancelJobRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Job {
    throw unimplemented(.trainer, "CancelJob")
  }

  public func watchJob(
    request: Vane_V1_WatchJobRequest,
    response: RPCWriter<Vane_V1_JobEvent>,
    context: ServerContext
  ) async throws {
    throw unimplemented(.trainer, "WatchJob")
  }
}
