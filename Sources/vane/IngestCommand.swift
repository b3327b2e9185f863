import ArgumentParser
import GRPCCore
import GRPCShimTransport
import SwiftProtobuf
import VaneCore
import VaneFeatures
import VaneProto
import VaneRuntime
internal import Foundation

/// `vane ingest PATH…`: parse candle files locally and upload each through IngestCandles (one
/// stream, one transaction per file); print what the service stored, dropped and why.
struct IngestCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ingest",
    abstract: "Upload candle files to the feature service and print its report.",
    discussion: """
      Reads the four layouts real candle files come in (header with ISO or naive UTC times, the
      11-column Binance layout behind '#' banner lines, Binance's headerless bulk download with
      epoch ms or µs), gzip or not. The symbol comes from --symbol or the file name
      (binance_BTCUSDT_1h.csv.gz → BTCUSDT); the interval is inferred from the data and checked
      against --interval. Each file is one stream committed whole or not at all. Exit code: 0 when
      every file was stored, 1 when any was refused, 2 on bad arguments.
      """
  )

  @Argument(help: "Candle files (.csv or .csv.gz).")
  var paths: [String]

  @Option(help: "Symbol of every file (default: from each file name).")
  var symbol: String?

  @Option(help: "Expected interval (15m, 1h, 4h, 1d); default: inferred from the data.")
  var interval: String?

  @Option(help: "Feature service address.")
  var address: String = "127.0.0.1:\(ServiceKind.feature.defaultPort)"

  @Option(help: "Source name recorded with the candles.")
  var source: String = "file"

  @Option(
    name: .customLong("on-duplicate"),
    help:
      "fail (default), keep, replace or reject: what a candle that differs from another copy does."
  )
  var onDuplicate: String = "fail"

  @Flag(help: "Fail a file on its first invalid row instead of skipping and reporting it.")
  var strict = false

  @Option(
    name: .customLong("reference-time"),
    help:
      "When the data was current (a time, or 'now' for the server's clock): a last candle closing after it is unfinished and left out. Default: each file's modification time."
  )
  var referenceTime: String?

  @Flag(name: .customLong("dry-run"), help: "Validate and report; store nothing.")
  var dryRun = false

  @Flag(help: "Print each report as one line of JSON instead of text.")
  var json = false

  @Option(help: "Deadline per file, in seconds.")
  var timeout: Double = 300

  @OptionGroup var connection: ClientConnectionOptions

  func run() async throws {
    let declared = try self.interval.map { name in
      guard let interval = CandleInterval(rawValue: name) else {
        throw ValidationError(
          "--interval: '\(name)' is not one of \(CandleInterval.allCases.map(\.rawValue).joined(separator: ", "))"
        )
      }
      return interval
    }
    let policy: Vane_V1_DuplicatePolicy = try {
      switch self.onDuplicate {
      case "fail": return .failOnConflict
      case "keep": return .keepExisting
      case "replace": return .replace
      case "reject": return .rejectConflicts
      default:
        throw ValidationError(
          "--on-duplicate: '\(self.onDuplicate)' is not fail, keep, replace or reject"
        )
      }
    }()
    var options = Vane_V1_IngestOptions()
    options.onDuplicate = policy
    options.strict = self.strict
    options.dryRun = self.dryRun
    let reference: Google_Protobuf_Timestamp? = try self.referenceTime.flatMap { text in
      text == "now" ? nil : try FeatureClientOptions.time(text, option: "--reference-time")
    }

    // Every file is read and checked before a client exists: a command whose files are all
    // refused makes no connection (and no client error follows the files' own).
    func refuse(_ path: String, _ reason: String) {
      FileHandle.standardError.write(Data("ERROR: \(path): \(reason)\n".utf8))
    }
    var failures = 0
    var uploads: [(path: String, messages: [Vane_V1_IngestCandlesRequest])] = []
    for path in self.paths {
      do {
        let file = try CandleFileParser.read(path: path)
        guard let symbol = self.symbol ?? FeatureUpload.symbol(fromFileName: file.name) else {
          throw VaneError.invalidArgument(
            field: "--symbol",
            "\(file.name) does not name a symbol like BTCUSDT; give --symbol"
          )
        }
        let interval = try CandleValidator.interval(of: file, declared: declared)
        // The file's own evidence: a bar cannot have closed after the file was written.
        var fileOptions = options
        if let reference {
          fileOptions.referenceTime = reference
        } else if self.referenceTime == nil, let written = Self.modificationTime(path) {
          fileOptions.referenceTime = written
        }
        uploads.append(
          (
            path,
            FeatureUpload.messages(
              file: file,
              symbol: symbol,
              interval: interval,
              source: self.source,
              options: fileOptions
            )
          )
        )
      } catch let error as VaneError {
        // The parser names the file by its last component; the path says it already.
        let name = URL(fileURLWithPath: path).lastPathComponent
        refuse(
          path,
          error.message.hasPrefix("\(name): ")
            ? String(error.message.dropFirst(name.count + 2)) : error.message
        )
        failures += 1
      }
    }
    if !uploads.isEmpty {
      let transport = try ShimClientTransport(
        config: self.connection.config(target: self.address)
      )
      var callOptions = CallOptions.defaults
      callOptions.timeout = .milliseconds(Int64(self.timeout * 1000))
      let sent = uploads
      failures += try await withGRPCClient(transport: transport) { grpc in
        let client = Vane_V1_FeatureService.Client(wrapping: grpc)
        var failures = 0
        for (path, messages) in sent {
          do {
            let response = try await client.ingestCandles(options: callOptions) { writer in
              try await writer.write(contentsOf: messages)
            }
            Output.line(self.json ? try response.jsonString() : Self.describe(response, path: path))
          } catch let error as RPCError {
            refuse(path, "\(error.code): \(error.message)")
            failures += 1
          }
        }
        return failures
      }
    }
    if failures > 0 { throw ExitCode(1) }
  }

  /// When a file was last written (nil for standard input or an unreadable time).
  static func modificationTime(_ path: String) -> Google_Protobuf_Timestamp? {
    guard path != "-",
      let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate]
        as? Date
    else { return nil }
    return Google_Protobuf_Timestamp(unixMilliseconds: Int64(date.timeIntervalSince1970 * 1000))
  }

  /// The report as a person reads it: counts, then each dropped row with its reason.
  static func describe(_ r: Vane_V1_IngestCandlesResponse, path: String) -> String {
    func time(_ t: Google_Protobuf_Timestamp) -> String {
      (try? t.unixMilliseconds(field: "time")).map(CandleTime.format) ?? "?"
    }
    var lines = [
      "\(path) → \(r.market.symbol) \((try? CandleInterval(r.market.interval, field: "interval"))?.rawValue ?? "?")\(r.dryRun ? " (dry run: nothing stored)" : "")",
      "  received \(r.received): \(r.accepted) new, \(r.replaced) replaced, \(r.duplicatesDropped) duplicates dropped (\(r.conflicts) conflicting, \(r.enriched) filled in extras), \(r.offGridDropped) off-grid, \(r.invalid) invalid\(r.unfinishedLastCandle ? ", last candle unfinished (\(time(r.unfinishedOpenTime)))" : "")",
    ]
    if r.hasStoredRange {
      lines.append(
        "  stored: \(r.storedCount) candles, \(time(r.storedRange.start)) → \(time(r.storedRange.end)), \(r.gapCount) gaps"
      )
    }
    if r.suspectLastCandle {
      lines.append("  suspect last candle \(time(r.suspectOpenTime)): \(r.suspectReason)")
    }
    for row in r.invalidRows { lines.append("  invalid \(row.file):\(row.line): \(row.message)") }
    if r.invalidRowsTruncated { lines.append("  … more invalid rows left out") }
    for row in r.offGridRows { lines.append("  off-grid \(row.file):\(row.line): \(row.message)") }
    if r.offGridRowsTruncated { lines.append("  … more off-grid rows left out") }
    return lines.joined(separator: "\n")
  }
}
