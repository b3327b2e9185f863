import GRPCCore
import VaneCore
import VaneRuntime
import FeatureService
import TrainerService
import PredictorService
import GatekeeperService
import DeployService

/// The implementation `vane serve <kind>` runs.
enum ServiceFactory {
  static func services(for kind: ServiceKind, info: RuntimeInfo) throws -> [any RegistrableRPCService] {
    switch kind {
    case .feature: [try FeatureServiceImplementation(runtime: info)]
    case .trainer: [TrainerServiceImplementation(runtime: info)]
    case .predictor: [PredictorServiceImplementation(runtime: info)]
    case .gatekeeper: [try GatekeeperServiceImplementation(runtime: info)]
    case .deploy: [DeployServiceImplementation(runtime: info)]
    }
  }
}
