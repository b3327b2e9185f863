public import GRPCCore
internal import CoreMetrics
internal import VaneCore

/// Server side: counts each call and its failures and times it, per method, into swift-metrics
/// (Prometheus when the service runs with `--metrics-address`):
/// - `vane_rpc_requests_total{method}`: calls started;
/// - `vane_rpc_errors_total{method,code}`: calls that ended with a status other than OK;
/// - `vane_rpc_duration_seconds{method}`: time from the call's start until its last response
///   message was written (a stream's whole life), as a histogram.
public struct ServerMetricsInterceptor: ServerInterceptor {
  public init() {}

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next:
      @Sendable (StreamingServerRequest<Input>, ServerContext) async throws ->
      StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let method = context.descriptor.fullyQualifiedMethod
    let start = ContinuousClock.now
    Counter(label: "vane_rpc_requests_total", dimensions: [("method", method)]).increment()
    let response: StreamingServerResponse<Output>
    do {
      response = try await next(request, context)
    } catch {
      Self.finish(method: method, start: start, error: error)
      throw error
    }
    switch response.accepted {
    case .failure(let error):
      Self.finish(method: method, start: start, error: error)
      return response
    case .success(var contents):
      let producer = contents.producer
      contents.producer = { writer in
        do {
          let trailers = try await producer(writer)
          Self.finish(method: method, start: start, error: nil)
          return trailers
        } catch {
          Self.finish(method: method, start: start, error: error)
          throw error
        }
      }
      var wrapped = response
      wrapped.accepted = .success(contents)
      return wrapped
    }
  }

  private static func finish(method: String, start: ContinuousClock.Instant, error: (any Error)?) {
    let elapsed = (ContinuousClock.now - start).components
    Timer(label: "vane_rpc_duration_seconds", dimensions: [("method", method)])
      .recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
    guard let error else { return }
    let code: String =
      if let error = error as? RPCError {
        VaneError.canonicalStatusName(error.code.description)
      } else if let error = error as? any RPCErrorConvertible {
        VaneError.canonicalStatusName(error.rpcErrorCode.description)
      } else if let error = error as? VaneError { error.code.canonicalName } else { "UNKNOWN" }
    Counter(label: "vane_rpc_errors_total", dimensions: [("method", method), ("code", code)])
      .increment()
  }
}
