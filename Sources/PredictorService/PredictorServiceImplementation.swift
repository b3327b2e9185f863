public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore

/// The predictor service: loaded model versions, inference, traffic split, shadow scoring and hot swap.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct PredictorServiceImplementation: Vane_V1_PredictorService.SimpleServiceProtocol {
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

  public func predict(
    request: Vane_V1_PredictRequest,
    context: ServerContext
  ) async throws -> Vane_V1_PredictResponse {
    throw unimplemented(.predictor, "Predict")
  }

  public func predictBatch(
    request: Vane_V1_PredictBatchRequest,
    context: ServerContext
  ) async throws -> Vane_V1_PredictBatchResponse {
    throw unimplemented(.predictor, "PredictBatch")
  }

  public func loadModel(
    request: Vane_V1_LoadModelRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ModelVersion {
    throw unimplemented(.predictor, "LoadModel")
  }

  public func unloadModel(
    request: Vane_V1_UnloadModelRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ModelVersion {
    throw unimplemented(.predictor, "UnloadModel")
  }

  public func setTrafficSplit(
    request: Vane_V1_SetTrafficSplitRequest,
    context: ServerContext
  ) async throws -> Vane_V1_TrafficSplit {
    throw unimplemented(.predictor, "SetTrafficSplit")
  }

  public func listModels(
    request: Vane_V1_ListModelsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListModelsResponse {
    throw unimplemented(.predictor, "ListModels")
  }
}
