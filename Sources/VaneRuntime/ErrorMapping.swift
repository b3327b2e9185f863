public import GRPCCore
public import VaneCore

extension VaneError {
  /// The gRPC status for this error: the one place domain errors become wire errors.
  public var rpcError: RPCError {
    let code: RPCError.Code
    switch self.code {
    case .invalidArgument: code = .invalidArgument
    case .notFound: code = .notFound
    case .alreadyExists: code = .alreadyExists
    case .failedPrecondition: code = .failedPrecondition
    case .unavailable: code = .unavailable
    case .unimplemented: code = .unimplemented
    case .permissionDenied: code = .permissionDenied
    case .unauthenticated: code = .unauthenticated
    case .resourceExhausted: code = .resourceExhausted
    case .aborted: code = .aborted
    case .cancelled: code = .cancelled
    default: code = .internalError
    }
    return RPCError(code: code, message: self.message, cause: self.cause)
  }
}

/// Runs a service method's body, turning `VaneError`s into the matching gRPC status.
public func serviceEdge<T>(_ body: () async throws -> T) async throws -> T {
  do {
    return try await body()
  } catch let error as VaneError {
    throw error.rpcError
  }
}

/// The answer for an RPC whose capability is not built yet: UNIMPLEMENTED, naming the method.
public func unimplemented(_ service: ServiceKind, _ method: String) -> RPCError {
  VaneError(
    .unimplemented,
    "\(service.grpcServiceName)/\(method) is not implemented in this build yet"
  ).rpcError
}
