public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore

/// The gatekeeper service: metrics, probability calibration, quality gates and signed verdicts.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct GatekeeperServiceImplementation: Vane_V1_GatekeeperService.SimpleServiceProtocol {
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

  public func calibrate(
    request: Vane_V1_CalibrateRequest,
    context: ServerContext
  ) async throws -> Vane_V1_CalibrateResponse {
    throw unimplemented(.gatekeeper, "Calibrate")
  }

  public func evaluate(
    request: Vane_V1_EvaluateRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Report {
    throw unimplemented(.gatekeeper, "Evaluate")
  }

  public func bless(
    request: Vane_V1_BlessRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Verdict {
    throw unimplemented(.gatekeeper, "Bless")
  }

  public func verifyBlessing(
    request: Vane_V1_VerifyBlessingRequest,
    context: ServerContext
  ) async throws -> Vane_V1_VerifyBlessingResponse {
    throw unimplemented(.gatekeeper, "VerifyBlessing")
  }

  public func getPolicy(
    request: Vane_V1_GetPolicyRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Policy {
    throw unimplemented(.gatekeeper, "GetPolicy")
  }

  public func setPolicy(
    request: Vane_V1_SetPolicyRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Policy {
    throw unimplemented(.gatekeeper, "SetPolicy")
  }

  public func listPolicies(
    request: Vane_V1_ListPoliciesRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListPoliciesResponse {
    throw unimplemented(.gatekeeper, "ListPolicies")
  }

  public func listReports(
    request: Vane_V1_ListReportsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListReportsResponse {
    throw unimplemented(.gatekeeper, "ListReports")
  }

  public func getReport(
    request: Vane_V1_GetReportRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Report {
    throw unimplemented(.gatekeeper, "GetReport")
  }
}
