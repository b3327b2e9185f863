import ArgumentParser
import VaneRuntime
import GRPCCore
import SwiftProtobuf
import VaneCore
import VaneFeatures
import VaneProto
internal import Foundation

/// `vane dataset`: stream BuildDataset into a CSV file or Vane's binary dataset layout.
struct DatasetCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dataset",
    abstract: "Build an offline training dataset with the feature service and write it to a file.",
    discussion: """
      CSV: one header line (open_time, symbol, the feature columns, then label_h<H> and
      label_end_h<H> per horizon, and fwd_return_h<H> with --forward-returns), one line per row;
      times are ISO-8601 UTC, missing values are empty.
      Binary (--format vds, for large datasets; little-endian):
        magic "VANEDS01"; u32 header length N; N bytes of UTF-8 JSON (dataset_id, feature_set_id,
        feature_set_hash, columns, symbols, classes, horizons, forward_returns); then per row:
        i64 open time (ms since the epoch), u32 symbol index, f64 × columns (NaN = missing), and per
        horizon i32 class (-1 unresolved), i64 label end (ms)[, f64 forward log return];
        then the trailer: magic "VANEEND1", u64 row count, and 64 bytes of the hex content SHA-256.
      The summary (rows, exclusions per reason, class balance) is printed to standard error.
      """
  )

  @Option(help: "Comma-separated symbols pooled into the dataset.")
  var symbols: String

  @Option(help: "Interval.")
  var interval: String = "1h"

  @Option(
    name: .customLong("feature-set"),
    help: "Feature set id (default: the service's default)."
  )
  var featureSet: String = ""

  @Option(help: "binary or 3class.")
  var labels: String = "binary"

  @Option(help: "Comma-separated horizons in bars.")
  var horizons: String = "5,12,24"

  @Option(name: .customLong("hold-return"), help: "3class: HOLD when |r| <= this fraction.")
  var holdReturn: Double?

  @Option(name: .customLong("hold-atr"), help: "3class: HOLD when |move| <= k × ATR(14): give k.")
  var holdATR: Double?

  @Option(
    name: .customLong("hold-vol"),
    help: "3class: HOLD when |r| <= k × σ24 × sqrt(h): give k."
  )
  var holdVolatility: Double?

  @Option(help: "First bar (inclusive).")
  var from: String?

  @Option(help: "End (exclusive).")
  var to: String?

  @Option(help: "Output file.")
  var out: String

  @Option(help: "csv or vds.")
  var format: String = "csv"

  @Flag(
    name: .customLong("forward-returns"),
    help: "Also write the forward log return per horizon."
  )
  var forwardReturns = false

  @Flag(name: .customLong("keep-incomplete"), help: "Keep rows with missing features or labels.")
  var keepIncomplete = false

  @Option(
    help:
      "Rows whose only defect is a missing feature value: exclude (default), or keep them with NaN (native, impute)."
  )
  var missing = "exclude"

  @OptionGroup var client: FeatureClientOptions

  func request() throws -> Vane_V1_BuildDatasetRequest {
    var request = Vane_V1_BuildDatasetRequest()
    request.symbols = self.symbols.split(separator: ",").map {
      String($0).trimmingCharacters(in: .whitespaces)
    }
    request.interval = try FeatureClientOptions.interval(self.interval)
    request.featureSetID = self.featureSet
    let horizons = try self.horizons.split(separator: ",").map { part -> Vane_V1_Horizon in
      guard let bars = UInt32(part.trimmingCharacters(in: .whitespaces)), bars > 0 else {
        throw ValidationError("--horizons: '\(part)' is not a positive number of bars")
      }
      return .with { $0.bars = bars }
    }
    request.labels = try .with { labels in
      labels.horizons = horizons
      switch self.labels {
      case "binary": labels.kind = .binaryDirection
      case "3class":
        labels.kind = .threeClass
        if let value = self.holdReturn { labels.holdReturnThreshold = value }
        if let value = self.holdATR { labels.holdAtrBand = .with { $0.multiple = value } }
        if let value = self.holdVolatility {
          labels.holdVolatilityBand = .with { $0.multiple = value }
        }
      default: throw ValidationError("--labels: '\(self.labels)' is not binary or 3class")
      }
    }
    if let from { request.range.start = try FeatureClientOptions.time(from, option: "--from") }
    if let to { request.range.end = try FeatureClientOptions.time(to, option: "--to") }
    request.includeForwardReturns = self.forwardReturns
    request.keepIncompleteRows = self.keepIncomplete
    request.missingValues = try FeatureClientOptions.missingValues(self.missing)
    return request
  }

  func run() async throws {
    guard self.format == "csv" || self.format == "vds" else {
      throw ValidationError("--format: '\(self.format)' is not csv or vds")
    }
    let request = try self.request()
    guard FileManager.default.createFile(atPath: self.out, contents: nil) else {
      throw ValidationError("--out: cannot create \(self.out)")
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: self.out))
    let writer = DatasetFileWriter(
      handle: handle,
      csv: self.format == "csv",
      forwardReturns: self.forwardReturns
    )
    let summary = try await self.client.withClient { client, options in
      try await client.buildDataset(request, options: options) { response in
        var summary: Vane_V1_DatasetSummary?
        var writer = writer
        for try await chunk in response.messages {
          switch chunk.chunk {
          case .header(let header)?: try writer.header(header)
          case .rows(let rows)?: try writer.rows(rows)
          case .summary(let value)?:
            try writer.finish(value)
            summary = value
          case nil: break
          }
        }
        return summary
      }
    }
    try handle.close()
    guard let summary else { throw ValidationError("the stream ended without a summary") }
    var lines = [
      "\(self.out): \(summary.rowsEmitted) rows, \(summary.rowsExcluded) excluded, content sha256 \(summary.contentSha256)"
    ]
    lines.append(
      "  \(summary.completeRows) complete rows; \(summary.rowsWithMissingValues) with a missing feature value (\(summary.missingValues == .exclude ? "excluded; --missing native or impute keeps them" : "kept with NaN"))"
    )
    for exclusion in summary.exclusions {
      lines.append("  excluded \(exclusion.symbol) \(exclusion.reason): \(exclusion.rows) rows")
    }
    for balance in summary.classBalance {
      lines.append(
        "  h\(balance.horizonBars) classes: \(balance.counts.map(String.init).joined(separator: " / "))"
      )
    }
    FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
  }
}

/// Writes BuildDataset chunks as CSV or the binary layout described in `vane dataset --help`.
struct DatasetFileWriter: @unchecked Sendable {
  let handle: FileHandle
  let csv: Bool
  let forwardReturns: Bool
  var header = Vane_V1_DatasetHeader()
  var rowsWritten: UInt64 = 0

  init(handle: FileHandle, csv: Bool, forwardReturns: Bool) {
    self.handle = handle
    self.csv = csv
    self.forwardReturns = forwardReturns
  }

  mutating func header(_ header: Vane_V1_DatasetHeader) throws {
    self.header = header
    let horizons = header.labels.horizons.map(\.bars)
    if self.csv {
      var names = ["open_time", "symbol"] + header.columns
      for h in horizons {
        names +=
          ["label_h\(h)", "label_end_h\(h)"] + (self.forwardReturns ? ["fwd_return_h\(h)"] : [])
      }
      try self.handle.write(contentsOf: Data((names.joined(separator: ",") + "\n").utf8))
    } else {
      let json: [String: Any] = [
        "dataset_id": header.datasetID, "feature_set_id": header.featureSetID,
        "feature_set_hash": header.featureSetHash,
        "columns": header.columns, "symbols": header.symbols, "classes": header.classes,
        "horizons": horizons.map(Int.init), "forward_returns": self.forwardReturns,
      ]
      let body = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
      var data = Data("VANEDS01".utf8)
      data.append(contentsOf: withUnsafeBytes(of: UInt32(body.count).littleEndian) { Array($0) })
      data.append(body)
      try self.handle.write(contentsOf: data)
    }
  }

  mutating func rows(_ rows: Vane_V1_DatasetRows) throws {
    let width = Int(rows.columnCount)
    var data = Data()
    for r in 0 ..< Int(rows.rowCount) {
      if self.csv {
        var fields = [
          Self.iso(rows.openTimeUnixMs[r]), self.header.symbols[Int(rows.symbolIndex[r])],
        ]
        for c in 0 ..< width {
          let value = rows.features[r * width + c]
          fields.append(value.isFinite ? "\(value)" : "")
        }
        for labels in rows.labels {
          fields += [String(labels.label[r]), Self.iso(labels.labelEndUnixMs[r])]
          if self.forwardReturns {
            let value = labels.forwardReturn.isEmpty ? .nan : labels.forwardReturn[r]
            fields.append(value.isFinite ? "\(value)" : "")
          }
        }
        data.append(contentsOf: (fields.joined(separator: ",") + "\n").utf8)
      } else {
        func put<T: FixedWidthInteger>(_ value: T) {
          withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
        }
        put(rows.openTimeUnixMs[r])
        put(rows.symbolIndex[r])
        for c in 0 ..< width { put(rows.features[r * width + c].bitPattern) }
        for labels in rows.labels {
          put(labels.label[r])
          put(labels.labelEndUnixMs[r])
          if self.forwardReturns {
            put((labels.forwardReturn.isEmpty ? .nan : labels.forwardReturn[r]).bitPattern)
          }
        }
      }
    }
    self.rowsWritten += UInt64(rows.rowCount)
    try self.handle.write(contentsOf: data)
  }

  func finish(_ summary: Vane_V1_DatasetSummary) throws {
    guard !self.csv else { return }
    var data = Data("VANEEND1".utf8)
    withUnsafeBytes(of: self.rowsWritten.littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: summary.contentSha256.utf8.prefix(64))
    try self.handle.write(contentsOf: data)
  }

  static func iso(_ ms: Int64) -> String {
    CandleTime.format(ms).replacingOccurrences(of: " ", with: "T") + "Z"
  }
}
