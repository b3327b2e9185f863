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

  func withClient<R: Sendable>(_ body: @Sendable (Vane_V1_PredictorService.Client<ShimClientTransport>, CallOptions) async throws -> R) async throws -> R {
    try await self.connection.withClient(address: self.address, timeout: self.timeout) { grpc, options in
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
    subcommands: [List.self, Load.self, Unload.self, Split.self],
    defaultSubcommand: List.self
  )

  static func line(_ version: Vane_V1_ModelVersion) -> String {
    let status = String(describing: version.status).uppercased()
    var parts = ["\(version.ref.modelID)/\(version.ref.version)", status, String(format: "%g%%", version.trafficPercent)]
    if version.shadow { parts.append("shadow") }
    parts.append("requests \(version.counters.requests) errors \(version.counters.errors)")
    if !version.statusMessage.isEmpty { parts.append(version.statusMessage) }
    return parts.joined(separator: "  ")
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Loaded versions, by model id then load time.")

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

  struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load a bundle (an absolute path on the predictor's host) as a version.")

    @Argument(help: "The bundle: a .tar.gz or an unpacked directory, absolute on the predictor's host.")
    var bundle: String

    @Option(help: "Model id (default: the bundle's symbols and interval).")
    var model: String = ""

    @Option(help: "Version label (default: the bundle id).")
    var version: String = ""

    @Flag(help: "Load beside an existing version of the same label and swap atomically.")
    var replace = false

    @Flag(help: "Start as a shadow (mirrored traffic, no weight).")
    var shadow = false

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      let path = self.bundle.hasPrefix("/") ? self.bundle : FileManager.default.currentDirectoryPath + "/" + self.bundle
      let metadata = try self.client.metadata
      let version = try await self.client.withClient { client, options in
        try await client.loadModel(
          .with {
            $0.bundlePath = path
            $0.modelID = self.model
            $0.version = self.version
            $0.replace = self.replace
            $0.shadow = self.shadow
            $0.wait = true
          }, metadata: metadata, options: options)
      }
      Output.line(ModelsCommand.line(version))
    }
  }

  struct Unload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unload a version once its in-flight requests finish.")

    @Argument(help: "MODEL/VERSION")
    var ref: String

    @Flag(help: "Unload even with traffic (its share is spread over the others) or as a shadow.")
    var force = false

    @OptionGroup var client: PredictorClientOptions

    func run() async throws {
      let parts = self.ref.split(separator: "/", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("MODEL/VERSION: '\(self.ref)' is not of that form") }
      let metadata = try self.client.metadata
      let version = try await self.client.withClient { client, options in
        try await client.unloadModel(
          .with {
            $0.model.modelID = parts[0]
            $0.model.version = parts[1]
            $0.force = self.force
            $0.wait = true
          }, metadata: metadata, options: options)
      }
      Output.line(ModelsCommand.line(version))
    }
  }

  struct Split: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set a model's traffic split: VERSION=PERCENT … summing to 100.")

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
        guard parts.count == 2, let percent = Double(parts[1]) else { throw ValidationError("'\(item)' is not VERSION=PERCENT") }
        parsed[parts[0]] = percent
      }
      let request = Vane_V1_SetTrafficSplitRequest.with {
        $0.modelID = self.model
        $0.weights = parsed
        $0.shadowVersions = self.shadow
        if let percent = self.shadowPercent { $0.shadowSamplePercent = percent }
      }
      let metadata = try self.client.metadata
      let split = try await self.client.withClient { client, options in try await client.setTrafficSplit(request, metadata: metadata, options: options) }
      Output.line(split.weights.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%g", $0.value))" }.joined(separator: " ")
        + (split.shadowVersions.isEmpty ? "" : "  shadow " + split.shadowVersions.joined(separator: ",")) + "  etag \(split.etag)")
    }
  }
}

/// `vane predict --vector FILE`: one prediction for a feature vector (the JSON `vane features
/// vector --json` prints; `-` reads standard input).
struct PredictCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict",
    abstract: "Calibrated class probabilities for a feature vector.",
    discussion: "Exit codes: 0 answered, 1 the predictor refused or could not be reached, 2 the vector file cannot be read or parsed, 64 bad arguments."
  )

  /// Largest vector file read.
  static let maximumBytes = 16 << 20

  @Option(help: "A FeatureVector as JSON (`vane features vector --json` writes one), or - for standard input.")
  var vector: String

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

  func run() async throws {
    let data: Data
    if self.vector == "-" {
      data = FileHandle.standardInput.readData(ofLength: Self.maximumBytes + 1)
    } else {
      guard let handle = FileHandle(forReadingAtPath: self.vector) else { throw Output.fileError(self.vector, "cannot be read") }
      data = handle.readData(ofLength: Self.maximumBytes + 1)
      try? handle.close()
    }
    guard data.count <= Self.maximumBytes else { throw Output.fileError(self.vector, "is larger than \(Self.maximumBytes >> 20) MiB") }
    let features: Vane_V1_FeatureVector
    do {
      features = try Vane_V1_FeatureVector(jsonUTF8Data: data)
    } catch {
      throw Output.fileError(self.vector, "not a FeatureVector in JSON (\(String(describing: error).prefix(200)))")
    }
    let request = Vane_V1_PredictRequest.with {
      $0.model = .with {
        $0.modelID = self.model
        $0.version = self.version
      }
      $0.features = features
      $0.horizonBars = self.horizon
      $0.routingKey = self.routingKey
    }
    let answer = try await self.client.withClient { client, options in try await client.predict(request, options: options) }
    if self.json { return Output.line(try answer.jsonString(options: TrainCommand.jsonOptions)) }
    Output.line("\(answer.model.modelID)/\(answer.model.version)\(answer.pinned ? " (pinned)" : "")  feature set \(answer.featureSetHash.prefix(12))")
    for prediction in answer.predictions {
      let probabilities = zip(prediction.calibrated.classes, prediction.calibrated.probabilities).map { "\($0) \(String(format: "%.4f", $1))" }
      Output.line("h\(prediction.horizonBars)  \(prediction.predictedClass) \(String(format: "%.4f", prediction.confidence))  [\(probabilities.joined(separator: ", "))]")
    }
  }
}
