/// A deadline for every call a task starts on the shim transport, kept by grpc++ as the call's
/// own deadline.
///
/// GRPCCore enforces `CallOptions.timeout` by racing each call against a sleeping child task in
/// a task group: a task, a timer and a cancellation per call, some 30 µs of client CPU each
/// (`vane bench rpc --deadline-ms`). grpc++ already keeps a deadline on every call; set there, a
/// late call ends the same way — DEADLINE_EXCEEDED on the client, the handler cancelled on the
/// server, which sees the `grpc-timeout` header as usual — for nothing extra.
///
/// ```swift
/// let info = try await ShimCallDeadline.withTimeout(.seconds(5)) {
///   try await client.getServiceInfo(request)
/// }
/// ```
///
/// The timeout runs from each call's start, as `CallOptions.timeout` does, and applies to the
/// calls started in `operation`, child tasks included. A call whose options carry a timeout
/// keeps that one.
public enum ShimCallDeadline {
  /// The timeout of the calls started by the current task; nil: none.
  @TaskLocal public static var timeout: Duration?

  /// Runs `operation` with `timeout` as the deadline of each call it starts.
  public static func withTimeout<R>(
    _ timeout: Duration,
    isolation: isolated (any Actor)? = #isolation,
    operation: () async throws -> R
  ) async rethrows -> R {
    try await Self.$timeout.withValue(timeout, operation: operation, isolation: isolation)
  }
}
