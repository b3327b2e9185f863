/// The five Vane services: their names on the command line and on the wire, and default ports.
public enum ServiceKind: String, CaseIterable, Sendable, Codable {
  case feature, trainer, predictor, gatekeeper, deploy

  /// The fully-qualified protobuf service name, as health and reflection know it.
  public var grpcServiceName: String {
    switch self {
    case .feature: "vane.v1.FeatureService"
    case .trainer: "vane.v1.TrainerService"
    case .predictor: "vane.v1.PredictorService"
    case .gatekeeper: "vane.v1.GatekeeperService"
    case .deploy: "vane.v1.DeployService"
    }
  }

  /// The port DESIGN.md assigns: 50051 for feature up to 50055 for deploy.
  public var defaultPort: Int {
    switch self {
    case .feature: 50051
    case .trainer: 50052
    case .predictor: 50053
    case .gatekeeper: 50054
    case .deploy: 50055
    }
  }

  /// Its Prometheus endpoint's port in a container and in `vane stack`: the service's port + 10
  /// (50061 for feature up to 50065 for deploy).
  public var defaultMetricsPort: Int { self.defaultPort + 10 }

  /// The service whose protobuf name is `name` ("vane.v1.FeatureService"), if any.
  public init?(grpcServiceName name: String) {
    guard let kind = Self.allCases.first(where: { $0.grpcServiceName == name }) else { return nil }
    self = kind
  }
}
