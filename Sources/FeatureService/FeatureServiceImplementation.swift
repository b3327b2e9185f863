public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore

/// The feature service: candle ingestion and storage, indicators and feature sets, labels, online feature vectors and offline datasets.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct FeatureServiceImplementation: Vane_V1_FeatureService.SimpleServiceProtocol {
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

  public func ingestCandles(
    request: RPCAsyncSequence<Vane_V1_IngestCandlesRequest, any Error>,
    context: ServerContext
  ) async throws -> Vane_V1_IngestCandlesResponse {
    throw unimplemented(.feature, "IngestCandles")
  }

  public func getCoverage(
    request: Vane_V1_GetCoverageRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Coverage {
    throw unimplemented(.feature, "GetCoverage")
  }

  public func getFeatures(
    request: Vane_V1_GetFeaturesRequest,
    context: ServerContext
  ) async throws -> Vane_V1_FeatureVector {
    throw unimplemented(.feature, "GetFeatures")
  }

  public func streamFeatures(
    request: Vane_V1_StreamFeaturesRequest,
    response: RPCWriter<Vane_V1_FeatureVector>,
    context: ServerContext
  ) async throws {
    throw unimplemented(.feature, "StreamFeatures")
  }

  public func buildDataset(
    request: Vane_V1_BuildDatasetRequest,
    response: RPCWriter<Vane_V1_DatasetChunk>,
    context: ServerContext
  ) async throws {
    throw unimplemented(.feature, "BuildDataset")
  }

  public func describeFeatureSet(
    request: Vane_V1_DescribeFeatureSetRequest,
    context: ServerContext
  ) async throws -> Vane_V1_FeatureSet {
    throw unimplemented(.feature, "DescribeFeatureSet")
  }

  public func listFeatureSets(
    request: Vane_V1_ListFeatureSetsRequest,
    context: ServerContext
  ) async throws -> Vane_V1_ListFeatureSetsResponse {
    throw unimplemented(.feature, "ListFeatureSets")
  }
}
