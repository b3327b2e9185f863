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
      "VANE_METRICS_ADDRESS": "0.0.0.0:\(kind.defaultMetricsPort)",
    ]
    if kind == .trainer || kind == .predictor || kind == .deploy {
      environment["VANE_FEATURE_ADDRESS"] = "feature:\(ServiceKind.feature.defaultPort)"
    }
    if kind == .deploy {
      environment["VANE_PREDICTOR_ADDRESS"] = "predictor:\(ServiceKind.predictor.defaultPort)"
    }
    if kind == .trainer {
      environment["VANE_GATEKEEPER_ADDRESS"] = "gatekeeper:\(ServiceKind.gatekeeper.defaultPort)"
    }
    if kind == .gatekeeper {
      environment["VANE_BUNDLE_ROOTS"] = Self.bundleRoots(dataRoot: "/var/lib/vane")
    }
    return environment
  }

  /// The directory of `vane pipeline`'s own files under a data root (the bundles it builds,
  /// which the gatekeeper evaluates and blesses).
  public static func pipelineDirectory(dataRoot: String) -> String {
    (dataRoot.hasSuffix("/") ? dataRoot : dataRoot + "/") + "pipeline"
  }

  /// Where the gatekeeper reads bundles: its own directory, the trainer's and the pipeline's.
  static func bundleRoots(dataRoot: String) -> String {
    let root = dataRoot.hasSuffix("/") ? dataRoot : dataRoot + "/"
    return [
      root + ServiceKind.gatekeeper.rawValue, root + ServiceKind.trainer.rawValue,
      Self.pipelineDirectory(dataRoot: dataRoot),
    ].joined(separator: ":")
  }

  /// Volumes a container mounts besides its own, read-only: the gatekeeper and the predictor
  /// read the bundles the trainer writes, the predictor the bundles deploy stages, and deploy
  /// the gatekeeper's exported `blessing.pub` (its trusted key, beside its own data directory).
  public static func sharedVolumes(for kind: ServiceKind) -> [String] {
    func volume(_ of: ServiceKind) -> String {
      "\(of.rawValue)-data:\(containerDataDirectory(for: of)):ro"
    }
    switch kind {
    case .gatekeeper:
      return [
        volume(.trainer), "pipeline-data:\(Self.pipelineDirectory(dataRoot: "/var/lib/vane")):ro",
      ]
    case .predictor: return [volume(.trainer), volume(.deploy)]
    case .deploy: return [volume(.gatekeeper)]
    case .feature, .trainer: return []
    }
  }

  /// Where compose.yaml mounts the service's named volume.
  public static func containerDataDirectory(for kind: ServiceKind) -> String {
    "/var/lib/vane/\(kind.rawValue)"
  }

  /// The processes of a loopback stack whose ports start at `basePort` (the default ports when
  /// it is 50051) with data under `dataRoot`, and Prometheus endpoints from `metricsBasePort`
  /// (nil: none).
  public static func loopback(
    basePort: Int,
    metricsBasePort: Int? = nil,
    dataRoot: String,
    host: String = "127.0.0.1"
  ) -> [Process] {
    func address(_ kind: ServiceKind) -> String {
      "\(host):\(basePort + ServiceKind.allCases.firstIndex(of: kind)!)"
    }
    return ServiceKind.allCases.map { kind in
      var environment = [
        "VANE_ADDRESS": address(kind),
        "VANE_DATA_DIR": dataRoot.hasSuffix("/")
          ? dataRoot + kind.rawValue : dataRoot + "/" + kind.rawValue,
      ]
      if let metricsBasePort {
        environment["VANE_METRICS_ADDRESS"] =
          "\(host):\(metricsBasePort + ServiceKind.allCases.firstIndex(of: kind)!)"
      }
      if kind == .trainer || kind == .predictor || kind == .deploy {
        environment["VANE_FEATURE_ADDRESS"] = address(.feature)
      }
      if kind == .deploy {
        environment["VANE_PREDICTOR_ADDRESS"] = address(.predictor)
      }
      if kind == .trainer {
        environment["VANE_GATEKEEPER_ADDRESS"] = address(.gatekeeper)
      }
      if kind == .gatekeeper {
        environment["VANE_BUNDLE_ROOTS"] = Self.bundleRoots(dataRoot: dataRoot)
      }
      return Process(
        kind: kind,
        arguments: Self.arguments(for: kind),
        environment: environment,
        address: address(kind)
      )
    }
  }
}
