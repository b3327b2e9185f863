public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore

/// The deploy service: model bundle verification, staging and staged rollouts with automatic rollback.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct DeployServiceImplementation: Vane_V1_DeployService.SimpleServiceProtocol {
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

  public func deploy(
    request: Vane_V1_DeployRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    throw unimplemented(.deploy, "Deploy")
  }

  public func getRollout(
    request: Vane_V1_GetRolloutRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    throw unimplemented(.deploy, "GetRollout")
  }

  public func listRollouts(
    request: Vane_V1_ListRolloutsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListRolloutsResponse {
    throw unimplemented(.deploy, "ListRollouts")
  }

  public func watchRollout(
    request: Vane_V1_WatchRolloutRequest,
    response: RPCWriter<Vane_V1_RolloutEvent>,
    context: ServerContext
  ) async throws {
    throw unimplemented(.deploy, "WatchRollout")
  }

  public func promote(
    request: Vane_V1_PromoteRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    throw unimplemented(.deploy, "Promote")
  }

  public func pause(
    request: Vane_V1_PauseRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    throw unimplemented(.deploy, "Pause")
  }

  public func resume(
    request: Vane_V1_ResumeRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    throw unimplemented(.deploy, "Resume")
  }

  public func rollback(
    request: Vane_V1_RollbackRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Rollout {
    throw unimplemented(.deploy, "Rollback")
  }
}
