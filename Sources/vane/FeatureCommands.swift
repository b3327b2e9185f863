import ArgumentParser
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneCore
import VaneFeatures
import VaneProto
import VaneRuntime
internal import Foundation

/// Options every feature-service client command shares.
struct FeatureClientOptions: ParsableArguments {
  @Option(help: "Feature service address.")
  var address: String = "127.0.0.1:\(ServiceKind.feature.defaultPort)"

  @Option(help: "Deadline in seconds.")
  var timeout: Double = 300

  @OptionGroup var connection: ClientConnectionOptions

  func withClient<R: Sendable>(
    _ body:
      @Sendable (Vane_V1_FeatureService.Client<ShimClientTransport>, CallOptions) async throws -> R
  ) async throws -> R {
    try await self.connection.withClient(address: self.address, timeout: self.timeout) {
      grpc,
      options in
      try await body(Vane_V1_FeatureService.Client(wrapping: grpc), options)
    }
  }

  static func time(_ text: String, option: String) throws -> Google_Protobuf_Timestamp {
    guard let ms = CandleTime.parse(text) else {
      throw ValidationError(
        "\(option): '\(text)' is not a time (e.g. 2024-06-01, 2024-06-01T12:00:00Z, or epoch ms)"
      )
    }
    return Google_Protobuf_Timestamp(unixMilliseconds: ms)
  }

  static func interval(_ name: String) throws -> Vane_V1_Interval {
    guard let interval = CandleInterval(rawValue: name) else {
      throw ValidationError(
        "--interval: '\(name)' is not one of \(CandleInterval.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    return interval.proto
  }

  /// `--missing exclude|native|impute` as the wire value.
  static func missingValues(_ name: String) throws -> Vane_V1_MissingValues {
    guard let choice = MissingValues(rawValue: name) else {
      throw ValidationError(
        "--missing: '\(name)' is not one of \(MissingValues.allCases.map(\.rawValue).joined(separator: ", "))"
      )
    }
    return .init(choice)
  }
}

/// `vane features SYMBOL`: the online feature vector of one bar, or a feature set's definition.
struct FeaturesCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "features",
    abstract:
      "Print the feature vector of a bar (default: the latest closed one), or describe a feature set.",
    discussion:
      "Exit code: 0 on success, 1 on an RPC error (e.g. FAILED_PRECONDITION when history is too short), 2 on bad arguments."
  )

  @Argument(help: "Symbol, e.g. BTCUSDT (not needed with --describe).")
  var symbol: String?

  @Option(help: "Interval.")
  var interval: String = "1h"

  @Option(
    name: .customLong("feature-set"),
    help: "Feature set id (default: the service's default)."
  )
  var featureSet: String = ""

  @Option(name: .customLong("as-of"), help: "Open time of the bar.")
  var asOf: String?

  @Option(name: .customLong("known-at"), help: "Point in time: the latest bar closed by then.")
  var knownAt: String?

  @Flag(
    name: .customLong("allow-missing"),
    help: "Return a vector with missing values instead of failing."
  )
  var allowMissing = false

  @Flag(help: "Describe the feature set's columns instead.")
  var describe = false

  @Flag(help: "Print JSON.")
  var json = false

  @OptionGroup var client: FeatureClientOptions

  func run() async throws {
    if self.describe {
      let request = Vane_V1_DescribeFeatureSetRequest.with { $0.featureSetID = self.featureSet }
      let json = self.json
      try await self.client.withClient { client, options in
        let set = try await client.describeFeatureSet(request, options: options)
        if json { return Output.line(try set.jsonString()) }
        Output.line(
          "feature set \(set.id)  sha256 \(set.sha256)  \(set.columnCount) columns, max lookback \(set.maxLookbackBars) bars"
        )
        for column in set.columns {
          Output.line(
            "\(String(column.index).padding(toLength: 3, withPad: " ", startingAt: 0)) \(column.name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(column.group.padding(toLength: 13, withPad: " ", startingAt: 0)) \(String(column.lookbackBars).padding(toLength: 4, withPad: " ", startingAt: 0)) \(column.definition)"
          )
        }
      }
      return
    }
    guard let symbol = self.symbol else {
      throw ValidationError("SYMBOL: give a symbol, or --describe")
    }
    guard self.asOf == nil || self.knownAt == nil else {
      throw ValidationError("--as-of and --known-at: give one of them")
    }
    var request = Vane_V1_GetFeaturesRequest()
    let interval = try FeatureClientOptions.interval(self.interval)
    request.market = .with {
      $0.symbol = symbol
      $0.interval = interval
    }
    request.featureSetID = self.featureSet
    request.includeColumns = true
    request.allowMissing = self.allowMissing
    if let asOf { request.bar.asOf = try FeatureClientOptions.time(asOf, option: "--as-of") }
    if let knownAt {
      request.bar.knownAt = try FeatureClientOptions.time(knownAt, option: "--known-at")
    }
    let json = self.json
    let finished = request
    try await self.client.withClient { client, options in
      let vector = try await client.getFeatures(finished, options: options)
      if json { return Output.line(try vector.jsonString()) }
      Output.line(
        "\(vector.symbol) as of \(CandleTime.format(try vector.asOf.unixMilliseconds(field: "as_of")))  feature set \(vector.featureSetID) (\(vector.featureSetHash.prefix(12)))"
      )
      for (name, value) in zip(vector.columns, vector.values) {
        Output.line("\(name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(value)")
      }
    }
  }
}
