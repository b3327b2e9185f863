import GRPCCore
import Logging
import ServiceLifecycle
import VaneCore
import VaneRuntime
import FeatureService
import TrainerService
import PredictorService
import GatekeeperService
import DeployService

/// The implementation `vane serve <kind>` runs: its RPC services, and the long-running parts
/// (the trainer's job worker) that run beside the server in its service group.
enum ServiceFactory {
  struct Built {
    var rpc: [any RegistrableRPCService]
    var background: [any Service] = []
  }

  /// Where the trainer's upstreams are: flags, then `VANE_*` variables, then the default ports.
  struct Upstreams {
    var featureAddress: String
    var gatekeeperAddress: String
    var threads: Int
  }

  static func build(for kind: ServiceKind, info: RuntimeInfo, upstreams: Upstreams, logger: Logger) throws -> Built {
    switch kind {
    case .feature: Built(rpc: [try FeatureServiceImplementation(runtime: info)])
    case .trainer:
      try {
        let trainer = try TrainerServiceImplementation(
          runtime: info,
          config: TrainerConfig(featureAddress: upstreams.featureAddress, gatekeeperAddress: upstreams.gatekeeperAddress, threads: upstreams.threads),
          logger: logger)
        return Built(rpc: [trainer], background: [trainer.worker])
      }()
    case .predictor:
      {
        let predictor = PredictorServiceImplementation(runtime: info)
        return Built(rpc: [predictor], background: [predictor.shadowScorer])
      }()
    case .gatekeeper: Built(rpc: [try GatekeeperServiceImplementation(runtime: info)])
    case .deploy: Built(rpc: [DeployServiceImplementation(runtime: info)])
    }
  }
}
