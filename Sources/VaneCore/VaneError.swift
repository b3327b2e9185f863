/// The error every Vane library throws: a code that says what kind of failure it is, a message a
/// person can act on, and the underlying cause.
///
/// Domain code throws these; the service edge maps ``Code`` to a gRPC status, and nowhere else.
public struct VaneError: Error, CustomStringConvertible, Sendable {
  /// What kind of failure this is; decides the gRPC status at the service edge.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private enum Wrapped: String, Sendable {
      case invalidArgument, notFound, alreadyExists, failedPrecondition, unavailable,
        unimplemented, permissionDenied, unauthenticated, resourceExhausted, aborted, cancelled,
        internalError
    }
    private let wrapped: Wrapped
    private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

    /// Bad input: the message names the field and the reason.
    public static let invalidArgument = Code(.invalidArgument)
    /// A named thing does not exist.
    public static let notFound = Code(.notFound)
    public static let alreadyExists = Code(.alreadyExists)
    /// The request is valid but the system is not in a state to serve it (a failed gate,
    /// too little history).
    public static let failedPrecondition = Code(.failedPrecondition)
    /// Loading, draining, or a dependency is down: retrying later may work.
    public static let unavailable = Code(.unavailable)
    /// The capability is not built yet.
    public static let unimplemented = Code(.unimplemented)
    public static let permissionDenied = Code(.permissionDenied)
    public static let unauthenticated = Code(.unauthenticated)
    public static let resourceExhausted = Code(.resourceExhausted)
    public static let aborted = Code(.aborted)
    public static let cancelled = Code(.cancelled)
    /// A bug or a broken invariant.
    public static let internalError = Code(.internalError)

    public var description: String { self.wrapped.rawValue }

    /// The canonical gRPC status name, e.g. "INVALID_ARGUMENT" for `.invalidArgument`.
    public var canonicalName: String { VaneError.canonicalStatusName(self.description) }
  }

  /// "INVALID_ARGUMENT" for "invalidArgument": a status code's Swift name (Vane's or
  /// grpc-swift's) as gRPC spells it on the wire, in logs and in metric labels.
  public static func canonicalStatusName(_ swiftName: String) -> String {
    if swiftName == "internalError" { return "INTERNAL" }
    var out = ""
    for character in swiftName {
      if character.isUppercase { out += "_" }
      out += character.uppercased()
    }
    return out
  }

  public var code: Code
  public var message: String
  public var cause: (any Error)?

  public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause
  }

  /// Bad input, naming the field and the reason.
  public static func invalidArgument(field: String, _ reason: String) -> VaneError {
    VaneError(.invalidArgument, "\(field): \(reason)")
  }

  public var description: String {
    if let cause { return "\(self.code): \(self.message) (cause: \(cause))" }
    return "\(self.code): \(self.message)"
  }
}
