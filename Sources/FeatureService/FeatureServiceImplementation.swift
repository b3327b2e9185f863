public import GRPCCore
public import VaneProto
public import VaneRuntime
internal import VaneCore
internal import VaneFeatures
internal import Foundation

/// The feature service: candle ingestion and storage, indicators and feature sets, labels, online feature vectors and offline datasets.
///
/// A thin adapter from the generated service protocol to the domain libraries. Methods whose
/// capability is not built yet answer UNIMPLEMENTED, naming the method; ``implemented`` lists
/// the ones that are served (GetServiceInfo reports it).
public struct FeatureServiceImplementation: Vane_V1_FeatureService.SimpleServiceProtocol {
  /// The methods this build serves.
  public static let implemented: Set<String> = ["GetServiceInfo", "IngestCandles", "GetCoverage"]

  let runtime: RuntimeInfo
  let store: CandleStore

  /// Opens (creating if needed) the candle store `candles.sqlite` in the data directory.
  public init(runtime: RuntimeInfo) throws {
    self.runtime = runtime
    self.store = try CandleStore(path: URL(fileURLWithPath: runtime.dataDirectory).appendingPathComponent("candles.sqlite").path)
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
    try await serviceEdge {
      var iterator = request.makeAsyncIterator()
      guard let first = try await iterator.next() else {
        throw VaneError.invalidArgument(field: "header", "the stream ended before its header")
      }
      var session = try IngestSession(first: first)
      var number = 1
      while let message = try await iterator.next() {
        try session.add(message, number: number)
        number += 1
      }
      return try session.commit(to: self.store, now: Date())
    }
  }

  public func getCoverage(
    request: Vane_V1_GetCoverageRequest,
    context: ServerContext
  ) async throws -> Vane_V1_Coverage {
    try await serviceEdge {
      let range = request.hasRange ? try request.range.milliseconds(field: "range") : (start: Int64.min, end: Int64.max)
      let intervals = try request.intervals.enumerated().map { try CandleInterval($1, field: "intervals[\($0)]") }
      let series = try self.store.coverage(
        symbols: request.symbols, intervals: intervals, from: range.start, to: range.end,
        maxGaps: request.maxGaps == 0 ? 100 : Int(request.maxGaps))
      return .with { $0.series = series.map(Vane_V1_SeriesCoverage.init) }
    }
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
