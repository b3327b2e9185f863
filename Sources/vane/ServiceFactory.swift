import GRPCCore
import Logging
import ServiceLifecycle
import VaneCore
import VaneMath
import VaneRuntime
import VaneServing
import Foundation
import FeatureService
import TrainerService
import PredictorService
import GatekeeperService
import DeployService

/// The implementation `vane serve <kind>` runs: its RPC services, and the long-running parts
/// (the trainer's job worker) that run beside the server in its service group.
enum ServiceFactory {
  struct Built {
    var rpc: [RoutedService]
    var background: [any Service] = []
    /// Brings the service's domain figures up to date before a metrics scrape.
    var metricsRefresh: @Sendable () -> Void = {}
  }

  /// Where the services' upstreams are: flags, then `VANE_*` variables, then the default ports.
  struct Upstreams {
    var featureAddress: String
    var gatekeeperAddress: String
    var predictorAddress: String
    /// The gatekeeper's bundle roots (nil: its data directory and the trainer's beside it).
    var bundleRoots: [String]?
    /// Deploy's trusted keys (nil: the gatekeeper's data directory beside deploy's).
    var trustedKeysDirectory: String?
    var threads: Int
    /// Predictor: how often logged answers are joined with their outcomes.
    var joinInterval: Duration = .seconds(5)
  }

  static func build(
    for kind: ServiceKind,
    info: RuntimeInfo,
    upstreams: Upstreams,
    logger: Logger
  ) throws -> Built {
    switch kind {
    case .feature:
      try {
        let feature = try FeatureServiceImplementation(runtime: info)
        return Built(rpc: [RoutedService(feature)], metricsRefresh: feature.metricsRefresh())
      }()
    case .trainer:
      try {
        let trainer = try TrainerServiceImplementation(
          runtime: info,
          // One admin token for the stack: the trainer's own is what it sends to Bless.
          config: TrainerConfig(
            featureAddress: upstreams.featureAddress,
            gatekeeperAddress: upstreams.gatekeeperAddress,
            threads: upstreams.threads,
            adminToken: {
              if case .token(let token) = info.adminAuth { return token } else { return nil }
            }()
          ),
          logger: logger
        )
        return Built(
          rpc: [RoutedService(trainer)],
          background: [trainer.worker],
          metricsRefresh: trainer.metricsRefresh()
        )
      }()
    case .predictor:
      try {
        // Each answer is a few small products: OpenBLAS threads would only spin (sched_yield)
        // beside the gRPC threads that already answer requests in parallel.
        BLAS.setThreadCount(1)
        // Every answer is logged beside the service's other state, and joined with its outcome
        // from the feature service's candles.
        let log = try PredictionLog(
          path: URL(fileURLWithPath: info.dataDirectory).appendingPathComponent(
            "predictions.sqlite"
          ).path
        )
        let features = try UpstreamClient(
          address: upstreams.featureAddress,
          name: "feature service"
        )
        let predictor = PredictorServiceImplementation(
          runtime: info,
          registry: ModelRegistry(log: log),
          config: PredictorConfig(joinInterval: upstreams.joinInterval),
          features: features
        )
        return Built(
          rpc: [RoutedService(predictor)],
          background: predictor.background,
          metricsRefresh: predictor.metricsRefresh()
        )
      }()
    case .gatekeeper:
      Built(rpc: [
        RoutedService(
          try GatekeeperServiceImplementation(runtime: info, bundleRoots: upstreams.bundleRoots)
        )
      ])
    case .deploy:
      try {
        let deploy = try DeployServiceImplementation(
          runtime: info,
          config: DeployConfig(
            // "none": the bundle's feature set is not checked against a feature service.
            predictorAddress: upstreams.predictorAddress,
            featureAddress: upstreams.featureAddress == "none" ? nil : upstreams.featureAddress,
            trustedKeysDirectory: upstreams.trustedKeysDirectory
              ?? URL(fileURLWithPath: info.dataDirectory).deletingLastPathComponent()
              .appendingPathComponent("gatekeeper").path
          )
        )
        return Built(
          rpc: [RoutedService(deploy)],
          background: deploy.background,
          metricsRefresh: deploy.metricsRefresh()
        )
      }()
    }
  }
}
