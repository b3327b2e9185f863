import ArgumentParser
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneProto
import VaneCore
import VaneRuntime
internal import Foundation

/// Options every predictor client command shares.
struct PredictorClientOptions: ParsableArguments {
  @Option(help: "Predictor address.")
  var address: String = "127.0.0.1:\(ServiceKind.predictor.defaultPort)"

  @Option(help: "Deadline in seconds of each call.")
  var timeout: Double = 60

  @OptionGroup var connection: ClientConnectionOptions

  func withClient<R: Sendable>(
    _ body:
      @Sendable (Vane_V1_PredictorService.Client<ShimClientTransport>, CallOptions) async throws ->
      R
  ) async throws -> R {
    try await self.connection.withClient(address: self.address, timeout: self.timeout) {
      grpc,
      options in
      try await body(Vane_V1_PredictorService.Client(wrapping: grpc), options)
    }
  }

  /// The admin token's metadata (LoadModel, UnloadModel and SetTrafficSplit are admin methods).
  var metadata: Metadata { get throws { try self.connection.metadata() } }
}

/// `vane models list|load|unload|split`: the predictor's loaded versions.
struct ModelsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "models",
    abstract: "List, load, unload and split traffic between the predictor's model versions.",
    subcommands: [List.self, Load.self, Unload.self, Split.self, Stats.self],
    defaultSubcommand: List.self
  )

  static func line(_ version: Vane_V1_ModelVersion) -> String {
    let status = String(describing: version.status).uppercased()
    var parts = [
      "\(version.ref.modelID)/\(version.ref.version)", status,
      String(format: "%g%%", version.trafficPercent),
    ]
    if version.shadow { parts.append("shadow") }
    parts.append("requests \(version.counters.requests) errors \(version.counters.errors)")
    if !version.statusMessage.isEmpty { parts.append(version.statusMessage) }
    return parts.joined(separator: "  ")
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Loaded versions, by model id then load time."
    )

    @Option(help: "Only this model id.")
    var model: String = ""

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      let response = try await self.client.withClient { client, options in
        try await client.listModels(.with { $0.modelID = self.model }, options: options)
      }
      for version in response.versions { Output.line(ModelsCommand.line(version)) }
    }
  }

  struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Live quality of a model's versions: logged answers joined with their realized outcomes."
    )

    @Argument(help: "The model id, or MODEL/VERSION for one version.")
    var model: String

    @Option(help: "Trailing window over bar time, in hours (default: 30 days).")
    var windowHours: Double?

    @Flag(help: "Print the response as JSON.")
    var json = false

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      let parts = self.model.split(separator: "/", maxSplits: 1).map(String.init)
      if let hours = self.windowHours, !(hours > 0 && hours.isFinite) {
        throw ValidationError("--window-hours: must be a positive number")
      }
      let request = Vane_V1_GetModelStatsRequest.with {
        $0.model = .with {
          $0.modelID = parts[0]
          if parts.count > 1 { $0.version = parts[1] }
        }
        if let hours = self.windowHours { $0.window = .init(seconds: Int64(hours * 3600)) }
      }
      let response = try await self.client.withClient { client, options in
        try await client.getModelStats(request, options: options)
      }
      if self.json {
        return Output.line(try response.jsonString(options: TrainCommand.jsonOptions))
      }
      func number(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "-" }
      for version in response.versions {
        Output.line(
          "\(version.ref.modelID)/\(version.ref.version)\(version.shadow ? "  shadow" : "")"
        )
        for h in version.horizons {
          Output.line(
            "  h\(h.horizonBars)  answers \(h.predictions)  matured \(h.matured)  pending \(h.pending)  unjoinable \(h.unjoinable)  "
              + "auc \(number(h.hasAuc ? h.auc : nil))  log loss \(number(h.hasLogLoss ? h.logLoss : nil))  brier \(number(h.hasBrier ? h.brier : nil))  "
              + "ece \(number(h.hasEce ? h.ece : nil))  score psi \(number(h.hasScorePsi ? h.scorePsi : nil))  flagged \(h.expired) expired, \(h.outOfDistribution) ood"
          )
        }
        if let top = version.inputDrift.first {
          Output.line(
            "  most drifted input: \(top.column) (psi \(String(format: "%.3f", top.psi)))"
          )
        }
      }
    }
  }

  struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Load a bundle (an absolute path on the predictor's host) as a version."
    )

    @Argument(
      help: "The bundle: a .tar.gz or an unpacked directory, absolute on the predictor's host."
    )
    var bundle: String

    @Option(help: "Model id (default: the bundle's symbols and interval).")
    var model: String = ""

    @Option(help: "Version label (default: the bundle id).")
    var version: String = ""

    @Flag(help: "Load beside an existing version of the same label and swap atomically.")
    var replace = false

    @Flag(help: "Start as a shadow (mirrored traffic, no weight).")
    var shadow = false

    @Option(
      help:
        "Inputs with missing values: exclude (refuse), native (NaN to tree models), impute (the scaler's centers); default: the bundle's training choice."
    )
    var missing: String?

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      let path =
        self.bundle.hasPrefix("/")
        ? self.bundle : FileManager.default.currentDirectoryPath + "/" + self.bundle
      let metadata = try self.client.metadata
      let missing = try self.missing.map(FeatureClientOptions.missingValues) ?? .unspecified
      let version = try await self.client.withClient { client, options in
        try await client.loadModel(
          .with {
            $0.bundlePath = path
            $0.modelID = self.model
            $0.version = self.version
            $0.replace = self.replace
            $0.shadow = self.shadow
            $0.missing = missing
            $0.wait = true
          },
          metadata: metadata,
          options: options
        )
      }
      Output.line(ModelsCommand.line(version))
    }
  }

  struct Unload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Unload a version once its in-flight requests finish."
    )

    @Argument(help: "MODEL/VERSION")
    var ref: String

    @Flag(help: "Unload even with traffic (its share is spread over the others) or as a shadow.")
    var force = false

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      let parts = self.ref.split(separator: "/", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ValidationError("MODEL/VERSION: '\(self.ref)' is not of that form")
      }
      let metadata = try self.client.metadata
      let version = try await self.client.withClient { client, options in
        try await client.unloadModel(
          .with {
            $0.model.modelID = parts[0]
            $0.model.version = parts[1]
            $0.force = self.force
            $0.wait = true
          },
          metadata: metadata,
          options: options
        )
      }
      Output.line(ModelsCommand.line(version))
    }
  }

  struct Split: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Set a model's traffic split: VERSION=PERCENT … summing to 100."
    )

    @Argument(help: "The model id.")
    var model: String

    @Argument(help: "VERSION=PERCENT, e.g. v1=90 v2=10.")
    var weights: [String]

    @Option(help: "A shadow version (repeatable).")
    var shadow: [String] = []

    @Option(help: "Percent of requests mirrored to the shadows.")
    var shadowPercent: Double?

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      var parsed: [String: Double] = [:]
      for item in self.weights {
        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let percent = Double(parts[1]) else {
          throw ValidationError("'\(item)' is not VERSION=PERCENT")
        }
        parsed[parts[0]] = percent
      }
      let request = Vane_V1_SetTrafficSplitRequest.with {
        $0.modelID = self.model
        $0.weights = parsed
        $0.shadowVersions = self.shadow
        if let percent = self.shadowPercent { $0.shadowSamplePercent = percent }
      }
      let metadata = try self.client.metadata
      let split = try await self.client.withClient { client, options in
        try await client.setTrafficSplit(request, metadata: metadata, options: options)
      }
      Output.line(
        split.weights.sorted { $0.key < $1.key }.map {
          "\($0.key)=\(String(format: "%g", $0.value))"
        }.joined(separator: " ")
          + (split.shadowVersions.isEmpty
            ? "" : "  shadow " + split.shadowVersions.joined(separator: ","))
          + "  etag \(split.etag)"
      )
    }
  }
}

/// `vane predict --vector FILE`: one prediction for a feature vector (the JSON `vane features
/// vector --json` prints; `-` reads standard input).
struct PredictCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract:
      "Calibrated class probabilities for a feature vector, or for a bar of a market (the predictor fetches its features).",
    discussion:
      "Exit codes: 0 answered, 1 the predictor refused or could not be reached, 2 the vector file cannot be read or parsed, 64 bad arguments."
  )

  /// Largest vector file read.
  static let maximumBytes = 16 << 20

  @Option(
    help:
      "A FeatureVector as JSON (`vane features vector --json` writes one), or - for standard input."
  )
  var vector: String?

  @Option(
    help: "A market instead of a vector: its symbol (the predictor asks the feature service)."
  )
  var symbol: String?

  @Option(help: "The market's interval.")
  var interval: String = "1h"

  @Option(
    name: .customLong("as-of"),
    help: "Open time of the market's bar (default: the latest closed bar)."
  )
  var asOf: String?

  @Option(help: "Model id (default: the only loaded model).")
  var model: String = ""

  @Option(help: "Pin a version (bypasses the traffic split).")
  var version: String = ""

  @Option(help: "Horizon in bars (default: every horizon the model serves).")
  var horizon: UInt32 = 0

  @Option(help: "Sticky routing key.")
  var routingKey: String = ""

  @Flag(help: "Print the response as JSON.")
  var json = false

  @OptionGroup var client: PredictorClientOptions

  func validate() throws {
    guard (self.vector == nil) != (self.symbol == nil) else {
      throw ValidationError("give --vector FILE or --symbol SYMBOL, one of them")
    }
    if self.asOf != nil, self.symbol == nil { throw ValidationError("--as-of: goes with --symbol") }
  }

  func run() async throws {
    var request = Vane_V1_PredictRequest.with {
      $0.model = .with {
        $0.modelID = self.model
        $0.version = self.version
      }
      $0.horizonBars = self.horizon
      $0.routingKey = self.routingKey
    }
    if let symbol = self.symbol {
      let interval = try FeatureClientOptions.interval(self.interval)
      request.market.market = .with {
        $0.symbol = symbol
        $0.interval = interval
      }
      if let asOf {
        request.market.bar.asOf = try FeatureClientOptions.time(asOf, option: "--as-of")
      }
    } else {
      request.features = try self.readVector(self.vector!)
    }
    let answer = try await self.client.withClient { [request] client, options in
      try await client.predict(request, options: options)
    }
    if self.json { return Output.line(try answer.jsonString(options: TrainCommand.jsonOptions)) }
    Output.line(
      "\(answer.model.modelID)/\(answer.model.version)\(answer.pinned ? " (pinned)" : "")  feature set \(answer.featureSetHash.prefix(12))"
    )
    for prediction in answer.predictions {
      let probabilities = zip(prediction.calibrated.classes, prediction.calibrated.probabilities)
        .map { "\($0) \(String(format: "%.4f", $1))" }
      Output.line(
        "h\(prediction.horizonBars)  \(prediction.predictedClass) \(String(format: "%.4f", prediction.confidence))  [\(probabilities.joined(separator: ", "))]"
      )
    }
    if answer.trust.expired {
      Output.line(
        "warning: the model has expired (its training data is older than its max_model_age)"
      )
    }
    if answer.trust.outOfDistribution {
      let columns =
        answer.trust.outOfBoundColumns.isEmpty
        ? "" : " (\(answer.trust.outOfBoundColumns.joined(separator: ", ")))"
      Output.line(
        "warning: the input is out of distribution\(columns); dissimilarity \(String(format: "%.3f", answer.trust.dissimilarity))"
      )
    }
  }

  private func readVector(_ path: String) throws -> Vane_V1_FeatureVector {
    let data: Data
    if path == "-" {
      data = FileHandle.standardInput.readData(ofLength: Self.maximumBytes + 1)
    } else {
      guard let handle = FileHandle(forReadingAtPath: path) else {
        throw Output.fileError(path, "cannot be read")
      }
      data = handle.readData(ofLength: Self.maximumBytes + 1)
      try? handle.close()
    }
    guard data.count <= Self.maximumBytes else {
      throw Output.fileError(path, "is larger than \(Self.maximumBytes >> 20) MiB")
    }
    do {
      return try Vane_V1_FeatureVector(jsonUTF8Data: data)
    } catch {
      throw Output.fileError(
        path,
        "not a FeatureVector in JSON (\(String(describing: error).prefix(200)))"
      )
    }
  }
}
