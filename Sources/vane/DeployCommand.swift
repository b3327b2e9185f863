import ArgumentParser
import DeployService
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneBundle
import VaneCore
import VaneProto
import VaneRollout
import VaneRuntime
internal import Foundation

/// Options every deploy client command shares.
struct DeployClientOptions: ParsableArguments {
  @Option(help: "Deploy service address.")
  var address: String = "127.0.0.1:\(ServiceKind.deploy.defaultPort)"

  @Option(help: "Deadline in seconds of each call (watching has none).")
  var timeout: Double = 60

  @OptionGroup var connection: ClientConnectionOptions

  func withClient<R: Sendable>(
    _ body:
      @Sendable (Vane_V1_DeployService.Client<ShimClientTransport>, CallOptions, Metadata)
      async throws -> R
  ) async throws -> R {
    let metadata = try self.connection.metadata()
    return try await self.connection.withClient(address: self.address, timeout: self.timeout) {
      grpc,
      options in
      try await body(Vane_V1_DeployService.Client(wrapping: grpc), options, metadata)
    }
  }
}

/// How a rollout reads on a terminal, one event a line.
enum RolloutText {
  static func state(_ state: Vane_V1_RolloutState) -> String {
    String(describing: state).replacingOccurrences(
      of: "([a-z])([A-Z])",
      with: "$1_$2",
      options: .regularExpression
    ).uppercased()
  }

  static func line(_ event: Vane_V1_RolloutEvent) -> String {
    let step = event.stepIndex >= 0 ? "step \(event.stepIndex) " : ""
    let kind = String(describing: event.kind).replacingOccurrences(
      of: "([a-z])([A-Z])",
      with: "$1 $2",
      options: .regularExpression
    ).lowercased()
    return
      "[\(Self.state(event.state)) \(step)\(String(format: "%g%%", event.trafficPercent))] \(kind): \(event.reason)"
  }

  static func summary(_ rollout: Vane_V1_Rollout) -> String {
    var parts = [
      rollout.id, "\(rollout.model.modelID)/\(rollout.model.version)", Self.state(rollout.state),
      String(format: "%g%%", rollout.trafficPercent),
    ]
    if !rollout.baseline.version.isEmpty { parts.append("baseline \(rollout.baseline.version)") }
    if rollout.currentStep >= 0 {
      parts.append("step \(rollout.currentStep)/\(rollout.steps.count)")
    }
    if !rollout.failureReason.isEmpty { parts.append(rollout.failureReason) }
    return parts.joined(separator: "  ")
  }

  /// Follows a rollout to its end, printing each event (those already past first, from its
  /// history). - Returns: the exit code of its outcome.
  static func follow(
    _ id: String,
    client: Vane_V1_DeployService.Client<ShimClientTransport>,
    analysis: Bool
  ) async throws -> Int32 {
    try await client.watchRollout(
      .with {
        $0.rolloutID = id
        $0.includeAnalysis = analysis
      },
      options: .defaults
    ) { response in
      for try await event in response.messages {
        if event.kind == .snapshot {
          for past in event.rollout.history where analysis || past.kind != .analysis {
            Output.line(Self.line(past))
          }
        } else {
          Output.line(Self.line(event))
        }
      }
    }
    let final = try await client.getRollout(.with { $0.rolloutID = id })
    Output.line(Self.summary(final))
    switch final.state {
    case .promoted: return 0
    case .rolledBack: return 3
    default: return 1
    }
  }
}

/// `vane deploy BUNDLE`: rolls a blessed bundle out through the deploy service and follows it.
struct DeployCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "deploy",
    abstract:
      "Roll a blessed bundle out: shadow, canary steps, full, with analysis and automatic rollback.",
    discussion: """
      The bundle's blessing is the `<bundle>.verdict.json` the trainer writes beside a blessed \
      bundle (sent with the request). The path must be one the deploy host sees. Exit codes: 0 \
      promoted, 3 rolled back, 1 failed or refused, 2 an unreadable plan or verdict file, 64 bad \
      arguments; with --detach, 0 once the rollout is accepted.
      """
  )

  @Argument(help: "The bundle (.tar.gz or directory).")
  var bundle: String

  @Option(help: "A rollout plan in YAML (default: the server's plan).")
  var plan: String?

  @Option(help: "Model id (default: the bundle's symbols and interval).")
  var model: String = ""

  @Option(help: "Version label (default: the bundle id).")
  var version: String = ""

  @Option(help: "Idempotency key: the same key again returns the same rollout.")
  var requestID: String = ""

  @Flag(help: "Return once the rollout is accepted instead of following it.")
  var detach = false

  @Flag(help: "Verify the bundle and blessing only.")
  var dryRun = false

  @Flag(help: "Also print every analysis.")
  var analysis = false

  @Flag(
    help:
      "Upload the bundle to the deploy host first (done anyway when the host does not have the file)."
  )
  var upload = false

  @OptionGroup var client: DeployClientOptions

  /// Streams a local bundle to the deploy host. - Returns: its path there.
  static func upload(
    _ path: String,
    client: Vane_V1_DeployService.Client<ShimClientTransport>,
    metadata: Metadata
  ) async throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw Output.fileError(path, "cannot be read")
    }
    defer { try? handle.close() }
    let size =
      (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value
      ?? 0
    let response = try await client.uploadBundle(metadata: metadata, options: .defaults) { writer in
      try await writer.write(
        .with {
          $0.header = .with {
            $0.fileName = URL(fileURLWithPath: path).lastPathComponent
            $0.size = size
          }
        }
      )
      while true {
        let chunk = handle.readData(ofLength: 1 << 20)
        if chunk.isEmpty { break }
        try await writer.write(.with { $0.chunk = chunk })
      }
    }
    Output.line("uploaded \(response.bundleID) (\(response.size) bytes) as \(response.bundlePath)")
    return response.bundlePath
  }

  func run() async throws {
    let path = URL(fileURLWithPath: self.bundle).standardizedFileURL.path
    var request = Vane_V1_DeployRequest.with {
      $0.bundlePath = path
      $0.modelID = self.model
      $0.version = self.version
      $0.requestID = self.requestID
      $0.dryRun = self.dryRun
    }
    if let file = self.plan {
      guard let data = FileManager.default.contents(atPath: file) else {
        throw Output.fileError(file, "cannot be read")
      }
      do {
        request.plan = Vane_V1_RolloutPlan(
          try RolloutPlan.parse(String(decoding: data, as: UTF8.self), source: file)
        )
      } catch let error as VaneError {
        throw Output.fileError(file, error.message)
      }
    }
    let verdictFile = ModelBundle.verdictPath(for: path)
    if let data = FileManager.default.contents(atPath: verdictFile) {
      do {
        request.blessing = try Vane_V1_Verdict(jsonUTF8Data: data)
      } catch {
        throw Output.fileError(
          verdictFile,
          "not a verdict (\(String(describing: error).prefix(200)))"
        )
      }
    }
    let detach = self.detach || self.dryRun, analysis = self.analysis, upload = self.upload
    let code = try await self.client.withClient { [request] client, options, metadata in
      var request = request
      // A bundle the deploy host cannot see is uploaded first.
      if upload {
        request.bundlePath = try await Self.upload(path, client: client, metadata: metadata)
      }
      let rollout: Vane_V1_Rollout
      do {
        rollout = try await client.deploy(request, metadata: metadata, options: options)
      } catch let error as RPCError
        where error.code == .notFound && error.message.contains(path) && !upload
      {
        request.bundlePath = try await Self.upload(path, client: client, metadata: metadata)
        rollout = try await client.deploy(request, metadata: metadata, options: options)
      }
      Output.line(RolloutText.summary(rollout))
      if detach { return Int32(0) }
      return try await RolloutText.follow(rollout.id, client: client, analysis: analysis)
    }
    if code != 0 { throw ExitCode(code) }
  }
}

/// `vane rollouts list|watch|promote|pause|resume|rollback`.
struct RolloutsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rollouts",
    abstract: "List, follow and steer the deploy service's rollouts.",
    subcommands: [List.self, Watch.self, Promote.self, Pause.self, Resume.self, Rollback.self],
    defaultSubcommand: List.self
  )

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rollouts, newest first.")
    @Option(help: "Only this model id.")
    var model: String = ""
    @OptionGroup var client: DeployClientOptions

    func run() async throws {
      let response = try await self.client.withClient { client, options, _ in
        try await client.listRollouts(.with { $0.modelID = self.model }, options: options)
      }
      for rollout in response.rollouts { Output.line(RolloutText.summary(rollout)) }
    }
  }

  struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Follow a rollout to its end (exit 0 promoted, 3 rolled back, 1 failed)."
    )
    @Argument(help: "Rollout id.")
    var id: String
    @Flag(help: "Also print every analysis.")
    var analysis = false
    @OptionGroup var client: DeployClientOptions

    func run() async throws {
      let code = try await self.client.withClient { client, _, _ in
        try await RolloutText.follow(self.id, client: client, analysis: self.analysis)
      }
      if code != 0 { throw ExitCode(code) }
    }
  }

  struct Promote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "End the current step as passed (or go to FULL); continues past a manual-promotion hold."
    )
    @Argument(help: "Rollout id.")
    var id: String
    @Flag(help: "Skip the remaining steps.")
    var skipToFull = false
    @Option(help: "Why, for the history.")
    var reason: String = ""
    @OptionGroup var client: DeployClientOptions

    func run() async throws {
      let rollout = try await self.client.withClient { client, options, metadata in
        try await client.promote(
          .with {
            $0.rolloutID = self.id
            $0.skipToFull = self.skipToFull
            $0.reason = self.reason
          },
          metadata: metadata,
          options: options
        )
      }
      Output.line(RolloutText.summary(rollout))
    }
  }

  struct Pause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Freeze a rollout at its current traffic."
    )
    @Argument(help: "Rollout id.")
    var id: String
    @Option(help: "Why, for the history.")
    var reason: String = ""
    @OptionGroup var client: DeployClientOptions

    func run() async throws {
      let rollout = try await self.client.withClient { client, options, metadata in
        try await client.pause(
          .with {
            $0.rolloutID = self.id
            $0.reason = self.reason
          },
          metadata: metadata,
          options: options
        )
      }
      Output.line(RolloutText.summary(rollout))
    }
  }

  struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resume a paused rollout.")
    @Argument(help: "Rollout id.")
    var id: String
    @Option(help: "Why, for the history.")
    var reason: String = ""
    @OptionGroup var client: DeployClientOptions

    func run() async throws {
      let rollout = try await self.client.withClient { client, options, metadata in
        try await client.resume(
          .with {
            $0.rolloutID = self.id
            $0.reason = self.reason
          },
          metadata: metadata,
          options: options
        )
      }
      Output.line(RolloutText.summary(rollout))
    }
  }

  struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Back to the baseline: its full traffic, then the new version unloaded."
    )
    @Argument(help: "Rollout id.")
    var id: String
    @Option(help: "Why, for the history.")
    var reason: String = ""
    @OptionGroup var client: DeployClientOptions

    func run() async throws {
      let rollout = try await self.client.withClient { client, options, metadata in
        try await client.rollback(
          .with {
            $0.rolloutID = self.id
            $0.reason = self.reason
          },
          metadata: metadata,
          options: options
        )
      }
      Output.line(RolloutText.summary(rollout))
    }
  }
}
