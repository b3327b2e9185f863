public import GRPCCore
internal import VaneCore

/// Server side: each call runs with the caller's `x-request-id` (or a new one when it sent
/// none or an unusable one) as ``RequestID/current``, for its handler and its response stream,
/// and sends the id back in the initial metadata.
public struct RequestIDServerInterceptor: ServerInterceptor {
  public init() {}

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next:
      @Sendable (StreamingServerRequest<Input>, ServerContext) async throws ->
      StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let id =
      RequestID.validated(
        request.metadata[stringValues: RequestID.metadataKey].first(where: { _ in true })
      ) ?? RequestID.make()
    var response = try await RequestID.$current.withValue(id) { try await next(request, context) }
    if case .success(var contents) = response.accepted {
      // A streaming handler's messages are produced after `next` returns: keep the id there too.
      let producer = contents.producer
      contents.producer = { writer in
        try await RequestID.$current.withValue(id) { try await producer(writer) }
      }
      contents.metadata.replaceOrAddString(id, forKey: RequestID.metadataKey)
      response.accepted = .success(contents)
    }
    return response
  }
}

/// Client side: a call made while serving a request (``RequestID/current`` is set) carries its
/// id to the next service, unless the call sets one itself.
public struct RequestIDClientInterceptor: ClientInterceptor {
  public init() {}

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingClientRequest<Input>,
    context: ClientContext,
    next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<
      Output
    >
  ) async throws -> StreamingClientResponse<Output> {
    var request = request
    if let id = RequestID.current,
      request.metadata[stringValues: RequestID.metadataKey].first(where: { _ in true }) == nil
    {
      request.metadata.addString(id, forKey: RequestID.metadataKey)
    }
    return try await next(request, context)
  }
}
