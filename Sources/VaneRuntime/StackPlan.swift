public import VaneCore

/// How `vane stack` runs the suite: the same `vane serve` command line and environment for each
/// service that `Compose/compose.yaml` declares, on loopback, each with its own data directory.
///
/// A test reads compose.yaml and checks it declares exactly these commands, so the local stack
/// and the containers cannot drift apart.
public struct StackPlan: Sendable {
  /// One service process.
  public struct Process: Sendable, Equatable {
    public var kind: ServiceKind
    /// The arguments after the executable, as compose.yaml's `command`.
    public var arguments: [String]
    /// The `VANE_*` variables the process gets.
    public var environment: [String: String]
    /// The address clients use to reach it.
    public var address: String
  }

  /// The arguments that start `kind`: the compose `command`.
  public static func arguments(for kind: ServiceKind) -> [String] {
    ["serve", kind.rawValue]
  }

  /// The environment compose.yaml gives `kind` in its container.
  public static func containerEnvironment(for kind: ServiceKind) -> [String: String] {
    var environment = [
      "VANE_ADDRESS": "0.0.0.0:\(kind.defaultPort)",
      "VANE_DATA_DIR": containerDataDirectory(for: kind),
    ]
    if kind == .trainer || kind == .predictor {
      environment["VANE_FEATURE_ADDRESS"] = "feature:\(ServiceKind.feature.defaultPort)"
    }
    if kind == .trainer {
      environment["VANE_GATEKEEPER_ADDRESS"] = "gatekeeper:\(ServiceKind.gatekeeper.defaultPort)"
    }
    return environment
  }

  /// Volumes a container mounts besides its own: the gatekeeper and the predictor read the
  /// bundles the trainer writes (under the trainer's data directory), read-only.
  public static func sharedVolumes(for kind: ServiceKind) -> [String] {
    kind == .gatekeeper || kind == .predictor ? ["trainer-data:\(containerDataDirectory(for: .trainer)):ro"] : []
  }

  /// Where compose.yaml mounts the service's named volume.
  public static func containerDataDirectory(for kind: ServiceKind) -> String {
    "/var/lib/vane/\(kind.rawValue)"
  }

  /// The processes of a loopback stack whose ports start at `basePort` (the default ports when
  /// it is 50051) with data under `dataRoot`.
  public static func loopback(basePort: Int, dataRoot: String, host: String = "127.0.0.1") -> [Process] {
    func address(_ kind: ServiceKind) -> String { "\(host):\(basePort + ServiceKind.allCases.firstIndex(of: kind)!)" }
    return ServiceKind.allCases.map { kind in
      var environment = [
        "VANE_ADDRESS": address(kind),
        "VANE_DATA_DIR": dataRoot.hasSuffix("/") ? dataRoot + kind.rawValue : dataRoot + "/" + kind.rawValue,
      ]
      if kind == .trainer || kind == .predictor {
        environment["VANE_FEATURE_ADDRESS"] = address(.feature)
      }
      if kind == .trainer {
        environment["VANE_GATEKEEPER_ADDRESS"] = address(.gatekeeper)
      }
      return Process(kind: kind, arguments: Self.arguments(for: kind), environment: environment, address: address(kind))
    }
  }
}
