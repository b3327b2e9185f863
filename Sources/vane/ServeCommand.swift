import ArgumentParser
import GRPCCore
import GRPCShimTransport
import Logging
import ServiceLifecycle
import VaneCore
import VaneRuntime
import VaneMetrics
import FeatureService
import TrainerService
import PredictorService
import GatekeeperService
import DeployService
internal import Foundation

/// `vane serve <service>`: runs one service until SIGTERM/SIGINT, then drains.
struct ServeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Run one service (feature, trainer, predictor, gatekeeper, deploy).",
    discussion: """
      Each option falls back to a VANE_* environment variable, then to a default:
        --address          VANE_ADDRESS           127.0.0.1:<the service's port, 50051-50055>
        --data-dir         VANE_DATA_DIR          ./vane-data/<service>
        --tls-cert         VANE_TLS_CERT          (plaintext)
        --tls-key          VANE_TLS_KEY
        --tls-client-ca    VANE_TLS_CLIENT_CA     (no client certificates)
        --admin-token-file VANE_ADMIN_TOKEN_FILE  (admin methods open to loopback callers only)
        --grace-period     VANE_GRACE_PERIOD      10 (seconds)
        --max-message-mib  VANE_MAX_MESSAGE_MIB   64
        --keepalive-time   VANE_KEEPALIVE_TIME    (grpc++'s default: 2 hours)
        --keepalive-timeout VANE_KEEPALIVE_TIMEOUT 20 (seconds)
        --log-level        VANE_LOG_LEVEL         info
        --metrics-address  VANE_METRICS_ADDRESS   (no metrics) host:port of the Prometheus endpoint, GET /metrics
      Trainer, predictor (market inputs, outcomes) and deploy (feature set check; "none": no check):
        --feature-address  VANE_FEATURE_ADDRESS   127.0.0.1:50051
      Predictor only:
        --join-interval    VANE_JOIN_INTERVAL     5 (seconds between outcome joins)
      Gatekeeper only:
        --bundle-root      VANE_BUNDLE_ROOTS      (its data directory and the trainer's beside it; ':'-separated)
      Deploy only:
        --predictor-address VANE_PREDICTOR_ADDRESS 127.0.0.1:50053
        --trusted-keys     VANE_TRUSTED_KEYS      (the gatekeeper's data directory beside deploy's)
      Trainer only:
        --gatekeeper-address VANE_GATEKEEPER_ADDRESS 127.0.0.1:50054
        --threads          VANE_THREADS           2
      """
  )

  @Argument(
    help: "The service to run: \(ServiceKind.allCases.map(\.rawValue).joined(separator: ", "))."
  )
  var service: String

  @Option(help: "host:port to listen on (port 0 picks a free port).")
  var address: String?

  @Option(
    name: .customLong("data-dir"),
    help: "Directory for the service's database and artifacts."
  )
  var dataDirectory: String?

  @Option(name: .customLong("tls-cert"), help: "PEM certificate chain; enables TLS.")
  var tlsCertificate: String?

  @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
  var tlsKey: String?

  @Option(
    name: .customLong("tls-client-ca"),
    help: "PEM roots for client certificates; enables mutual TLS."
  )
  var tlsClientCA: String?

  @Option(
    name: .customLong("admin-token-file"),
    help: "File holding the bearer token admin methods require."
  )
  var adminTokenFile: String?

  @Option(
    name: .customLong("grace-period"),
    help: "Seconds in-flight calls may run after SIGTERM/SIGINT."
  )
  var gracePeriod: Double?

  @Option(name: .customLong("max-message-mib"), help: "Largest message received or sent, in MiB.")
  var maxMessageMiB: Int?

  @Option(
    name: .customLong("keepalive-time"),
    help: "Seconds between keepalive pings on an idle connection."
  )
  var keepaliveTime: Double?

  @Option(
    name: .customLong("keepalive-timeout"),
    help: "Seconds to wait for a keepalive ping's answer before closing."
  )
  var keepaliveTimeout: Double?

  @Option(
    name: .customLong("log-level"),
    help: "trace, debug, info, notice, warning, error or critical."
  )
  var logLevel: String?

  @Option(
    name: .customLong("metrics-address"),
    help: "host:port for Prometheus metrics over HTTP (GET /metrics); port 0 picks one."
  )
  var metricsAddress: String?

  @Option(
    name: .customLong("feature-address"),
    help: "Trainer and predictor: the feature service's host:port."
  )
  var featureAddress: String?

  @Option(name: .customLong("gatekeeper-address"), help: "Trainer: the gatekeeper's host:port.")
  var gatekeeperAddress: String?

  @Option(
    name: .customLong("bundle-root"),
    help: "Gatekeeper: a directory bundle paths may lie under (repeatable)."
  )
  var bundleRoots: [String] = []

  @Option(name: .customLong("predictor-address"), help: "Deploy: the predictor's host:port.")
  var predictorAddress: String?

  @Option(
    name: .customLong("trusted-keys"),
    help:
      "Deploy: directory of trusted *.pub keys (the gatekeeper's data directory works as it is)."
  )
  var trustedKeys: String?

  @Option(help: "Trainer: threads for numeric work (OpenBLAS, XGBoost) when a spec sets none.")
  var threads: Int?

  @Option(
    name: .customLong("join-interval"),
    help: "Predictor: seconds between passes that join logged answers with their outcomes."
  )
  var joinInterval: Double?

  func run() async throws {
    let environment = ProcessInfo.processInfo.environment
    guard let kind = ServiceKind(rawValue: self.service) else {
      throw ValidationError(
        "unknown service '\(self.service)': expected one of \(ServiceKind.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    let level = resolveSetting(
      flag: self.logLevel,
      environment: "VANE_LOG_LEVEL",
      in: environment,
      default: "info"
    )
    guard let logLevel = Logger.Level(rawValue: level) else {
      throw ValidationError("--log-level: '\(level)' is not a log level")
    }
    VaneLogging.bootstrap(level: logLevel)
    var logger = Logger(label: "vane.\(kind.rawValue)")
    logger[metadataKey: "pid"] = "\(ProcessInfo.processInfo.processIdentifier)"

    let metricsAddress = resolveSetting(
      flag: self.metricsAddress,
      environment: "VANE_METRICS_ADDRESS",
      in: environment,
      default: ""
    )
    if !metricsAddress.isEmpty { VaneMetrics.bootstrap() }
    let config = try ServerConfig(
      kind: kind,
      address: resolveSetting(
        flag: self.address,
        environment: "VANE_ADDRESS",
        in: environment,
        default: "127.0.0.1:\(kind.defaultPort)"
      ),
      dataDirectory: resolveSetting(
        flag: self.dataDirectory,
        environment: "VANE_DATA_DIR",
        in: environment,
        default: "vane-data/\(kind.rawValue)"
      ),
      tls: self.serverTLS(environment),
      adminAuth: self.adminAuth(environment),
      messageLimits: self.messageLimits(environment),
      keepalive: self.keepalive(environment),
      shutdownGracePeriod: self.grace(environment),
      recordsMetrics: !metricsAddress.isEmpty
    )
    let upstreams = ServiceFactory.Upstreams(
      featureAddress: resolveSetting(
        flag: self.featureAddress,
        environment: "VANE_FEATURE_ADDRESS",
        in: environment,
        default: "127.0.0.1:\(ServiceKind.feature.defaultPort)"
      ),
      gatekeeperAddress: resolveSetting(
        flag: self.gatekeeperAddress,
        environment: "VANE_GATEKEEPER_ADDRESS",
        in: environment,
        default: "127.0.0.1:\(ServiceKind.gatekeeper.defaultPort)"
      ),
      predictorAddress: resolveSetting(
        flag: self.predictorAddress,
        environment: "VANE_PREDICTOR_ADDRESS",
        in: environment,
        default: "127.0.0.1:\(ServiceKind.predictor.defaultPort)"
      ),
      bundleRoots: {
        if !self.bundleRoots.isEmpty { return self.bundleRoots }
        let value = environment["VANE_BUNDLE_ROOTS"] ?? ""
        return value.isEmpty ? nil : value.split(separator: ":").map(String.init)
      }(),
      trustedKeysDirectory: {
        let value = resolveSetting(
          flag: self.trustedKeys,
          environment: "VANE_TRUSTED_KEYS",
          in: environment,
          default: ""
        )
        return value.isEmpty ? nil : value
      }(),
      threads: Int(
        resolveSetting(
          flag: self.threads.map(String.init),
          environment: "VANE_THREADS",
          in: environment,
          default: "2"
        )
      ) ?? 0,
      joinInterval: try self.seconds(
        self.joinInterval,
        option: "--join-interval",
        environment: "VANE_JOIN_INTERVAL",
        in: environment,
        default: "5"
      )
    )
    guard upstreams.joinInterval > .zero else {
      throw ValidationError("--join-interval: must be positive")
    }
    guard (1 ... 256).contains(upstreams.threads) else {
      throw ValidationError("--threads: must be 1 to 256")
    }
    var background: [any Service] = []
    var metricsRefresh: @Sendable () -> Void = {}
    let server = try VaneServer(config: config, logger: logger) { info in
      let built = try ServiceFactory.build(
        for: kind,
        info: info,
        upstreams: upstreams,
        logger: logger
      )
      background = built.background
      metricsRefresh = built.metricsRefresh
      return built.rpc
    }
    var services: [any Service] = [server] + background
    if !metricsAddress.isEmpty {
      VaneMetrics.recordBuildInfo(service: kind.rawValue, version: BuildInfo.version)
      do {
        services.append(
          try MetricsEndpoint(address: metricsAddress, logger: logger, refresh: metricsRefresh)
        )
      } catch let error as VaneError {
        throw ValidationError(error.message)
      }
    }
    if let parent = environment["VANE_STACK_PARENT_PID"].flatMap(Int32.init) {
      services.append(ParentWatch(parent: parent, logger: logger))
    }
    let group = ServiceGroup(
      configuration: .init(
        services: services.map {
          .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup)
        },
        gracefulShutdownSignals: [.sigterm, .sigint],
        cancellationSignals: [],
        logger: logger
      )
    )
    try await group.run()
  }

  private func serverTLS(_ environment: [String: String]) throws -> ShimServerTLS? {
    let cert = resolveSetting(
      flag: self.tlsCertificate,
      environment: "VANE_TLS_CERT",
      in: environment,
      default: ""
    )
    let key = resolveSetting(
      flag: self.tlsKey,
      environment: "VANE_TLS_KEY",
      in: environment,
      default: ""
    )
    let clientCA = resolveSetting(
      flag: self.tlsClientCA,
      environment: "VANE_TLS_CLIENT_CA",
      in: environment,
      default: ""
    )
    if cert.isEmpty && key.isEmpty {
      if !clientCA.isEmpty {
        throw ValidationError("--tls-client-ca: needs --tls-cert and --tls-key")
      }
      return nil
    }
    guard !cert.isEmpty, !key.isEmpty else {
      throw ValidationError("--tls-cert and --tls-key: give both or neither")
    }
    return ShimServerTLS(
      certificateChainPEM: try readFile(cert, option: "--tls-cert"),
      privateKeyPEM: try readFile(key, option: "--tls-key"),
      clientCARootsPEM: clientCA.isEmpty ? nil : try readFile(clientCA, option: "--tls-client-ca")
    )
  }

  private func adminAuth(_ environment: [String: String]) throws -> AdminAuthInterceptor.Mode {
    let path = resolveSetting(
      flag: self.adminTokenFile,
      environment: "VANE_ADMIN_TOKEN_FILE",
      in: environment,
      default: ""
    )
    if path.isEmpty { return .loopbackOnly }
    let token = try readFile(path, option: "--admin-token-file").trimmingCharacters(
      in: .whitespacesAndNewlines
    )
    guard token.count >= 16 else {
      throw ValidationError(
        "--admin-token-file: the token in \(path) is \(token.count) characters; use at least 16"
      )
    }
    return .token(token)
  }

  private func messageLimits(_ environment: [String: String]) throws -> ShimMessageLimits {
    let text = resolveSetting(
      flag: self.maxMessageMiB.map(String.init),
      environment: "VANE_MAX_MESSAGE_MIB",
      in: environment,
      default: "64"
    )
    guard let mib = Int(text), mib > 0, mib <= 2047 else {
      throw ValidationError(
        "--max-message-mib: '\(text)' is not a whole number of MiB between 1 and 2047"
      )
    }
    return ShimMessageLimits(maxReceiveBytes: mib << 20, maxSendBytes: mib << 20)
  }

  private func grace(_ environment: [String: String]) throws -> Duration {
    try seconds(
      self.gracePeriod,
      option: "--grace-period",
      environment: "VANE_GRACE_PERIOD",
      in: environment,
      default: "10"
    )
  }

  private func keepalive(_ environment: [String: String]) throws -> ShimKeepalive {
    let time: Duration? =
      if self.keepaliveTime != nil
        || environment["VANE_KEEPALIVE_TIME"].map({ !$0.isEmpty }) == true
      {
        try seconds(
          self.keepaliveTime,
          option: "--keepalive-time",
          environment: "VANE_KEEPALIVE_TIME",
          in: environment,
          default: ""
        )
      } else {
        nil
      }
    let timeout = try seconds(
      self.keepaliveTimeout,
      option: "--keepalive-timeout",
      environment: "VANE_KEEPALIVE_TIMEOUT",
      in: environment,
      default: "20"
    )
    return ShimKeepalive(time: time, timeout: timeout, permitWithoutCalls: true)
  }

  /// A non-negative number of seconds from a flag, then the environment, then a default.
  private func seconds(
    _ flag: Double?,
    option: String,
    environment name: String,
    in environment: [String: String],
    default value: String
  ) throws -> Duration {
    let text = resolveSetting(
      flag: flag.map { String($0) },
      environment: name,
      in: environment,
      default: value
    )
    guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
      throw ValidationError("\(option): '\(text)' is not a non-negative number of seconds")
    }
    return .milliseconds(Int64(seconds * 1000))
  }
}

/// Reads a file named by an option, with an error that names the option.
func readFile(_ path: String, option: String) throws -> String {
  do {
    return try String(contentsOfFile: path, encoding: .utf8)
  } catch {
    throw ValidationError("\(option): cannot read \(path): \(error.localizedDescription)")
  }
}

/// Under `vane stack`, ends the service when the stack process is gone, so that no service
/// outlives it even if it was killed without a chance to stop its children.
struct ParentWatch: Service {
  let parent: Int32
  let logger: Logger

  func run() async throws {
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
      if getppid() != self.parent {
        self.logger.warning("the stack process is gone; shutting down")
        return
      }
      try? await Task.sleep(for: .milliseconds(250))
    }
  }
}
