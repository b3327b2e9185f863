public import GRPCCore
public import VaneCore

/// The methods that change what is served or how it is judged: loading and unloading models,
/// moving traffic, deploying and rolling out, uploading or importing bundles, changing gate
/// policy and blessing a bundle. They need the admin
/// token when the server has one (see ``AdminAuthInterceptor``).
public enum AdminMethods {
  /// Method names per service.
  public static let byService: [ServiceKind: [String]] = [
    .trainer: ["ImportModel"],
    .predictor: ["LoadModel", "UnloadModel", "SetTrafficSplit", "Settle"],
    .gatekeeper: ["SetPolicy", "Bless"],
    .deploy: [
      "Deploy", "Promote", "Pause", "Resume", "Rollback", "UploadBundle", "AdvanceRollout",
    ],
  ]

  /// Every admin method, for the interceptor pipeline.
  public static let descriptors: [MethodDescriptor] = ServiceKind.allCases.flatMap { kind in
    Self.names(of: kind).map {
      MethodDescriptor(fullyQualifiedService: kind.grpcServiceName, method: $0)
    }
  }

  public static func names(of kind: ServiceKind) -> [String] {
    Self.byService[kind] ?? []
  }

  public static func isAdmin(service: String, method: String) -> Bool {
    guard let kind = ServiceKind(grpcServiceName: service) else { return false }
    return Self.names(of: kind).contains(method)
  }
}
