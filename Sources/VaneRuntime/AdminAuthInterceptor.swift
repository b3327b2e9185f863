public import GRPCCore

/// Guards the methods that change state (load a model, move traffic, deploy, set a policy).
///
/// With a token, a call must carry `authorization: Bearer <token>`; without one, such methods
/// are open to loopback callers only.
public struct AdminAuthInterceptor: ServerInterceptor {
  /// How admin calls are authorised.
  public enum Mode: Sendable, Equatable {
    case token(String)
    case loopbackOnly
  }

  public let mode: Mode

  public init(mode: Mode) {
    self.mode = mode
  }

  /// The interceptor applied to the admin methods only, as every Vane server installs it.
  public static func pipeline(mode: Mode) -> [ConditionalInterceptor<any ServerInterceptor>] {
    // Matched by name: generated descriptors also carry the call type, which a set lookup
    // would compare too.
    [
      .apply(
        AdminAuthInterceptor(mode: mode),
        to: .allMatching {
          AdminMethods.isAdmin(service: $0.service.fullyQualifiedService, method: $0.method)
        }
      )
    ]
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next:
      @Sendable (StreamingServerRequest<Input>, ServerContext) async throws ->
      StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    try self.authorize(
      metadata: request.metadata,
      peer: context.remotePeer,
      method: context.descriptor
    )
    return try await next(request, context)
  }

  /// Throws UNAUTHENTICATED or PERMISSION_DENIED when the caller may not call `method`.
  public func authorize(metadata: Metadata, peer: String, method: MethodDescriptor) throws {
    switch self.mode {
    case .token(let token):
      let presented = metadata[stringValues: "authorization"].first(where: { _ in true })
      guard let presented else {
        throw RPCError(
          code: .unauthenticated,
          message:
            "\(method.fullyQualifiedMethod) is an admin method: send 'authorization: Bearer <token>'."
        )
      }
      guard presented.hasPrefix("Bearer "),
        Self.constantTimeEquals(Array(presented.utf8.dropFirst(7)), Array(token.utf8))
      else {
        throw RPCError(
          code: .unauthenticated,
          message: "\(method.fullyQualifiedMethod): the bearer token is not valid."
        )
      }
    case .loopbackOnly:
      guard Self.isLoopback(peer: peer) else {
        throw RPCError(
          code: .permissionDenied,
          message:
            "\(method.fullyQualifiedMethod) is an admin method and this server has no admin token: it accepts admin calls from loopback only (peer \(peer))."
        )
      }
    }
  }

  /// Whether a gRPC peer string ("ipv4:127.0.0.1:1234", "ipv6:[::1]:1234", "unix:/path",
  /// "in-process:...") is on this machine.
  public static func isLoopback(peer: String) -> Bool {
    if peer.hasPrefix("ipv4:127.") || peer.hasPrefix("ipv6:[::1]")
      || peer.hasPrefix("ipv6:%5B::1%5D")
    {
      return true
    }
    if peer.hasPrefix("ipv6:[::ffff:127.") { return true }
    if peer.hasPrefix("unix:") || peer.hasPrefix("unix-abstract:") || peer.hasPrefix("in-process:")
    {
      return true
    }
    return false
  }

  /// Compares without stopping at the first difference, so the time taken says nothing about
  /// how much of a guess was right.
  static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for index in 0 ..< max(a.count, b.count) {
      let x = index < a.count ? a[index] : 0
      let y = index < b.count ? b[index] : 0
      difference |= x ^ y
    }
    return difference == 0
  }
}
