internal import VaneCore
internal import Foundation

/// A row a loader could not use, with where it was and why.
public struct RowProblem: Error, Sendable, Equatable, CustomStringConvertible {
  /// What kind of rule the row broke: the machine-readable half of ``reason``.
  public enum Kind: String, Sendable, Equatable {
    /// The row could not be read into a candle (bad number, wrong column count, bad time).
    case parse
    /// A NaN or infinite value.
    case nonFinite
    /// A negative price or volume.
    case negative
    /// high/low do not bound open/close.
    case ohlcInconsistent
    /// A second, different candle for an open time (under a policy that rejects it).
    case conflictingDuplicate
    /// An open time off the interval grid.
    case offGrid
    /// The last bar had not closed by the end of the data.
    case unfinished
  }

  public var file: String
  /// 1-based line number in the (decompressed) file; 0 when unknown.
  public var line: Int
  public var kind: Kind
  public var reason: String
  /// The row's open time, when it could be read (ms since the epoch).
  public var openTime: Int64?
  /// 0-based position among all rows of an ingest stream, when known.
  public var index: Int?

  public init(
    file: String,
    line: Int,
    kind: Kind = .parse,
    reason: String,
    openTime: Int64? = nil,
    index: Int? = nil
  ) {
    self.file = file
    self.line = line
    self.kind = kind
    self.reason = reason
    self.openTime = openTime
    self.index = index
  }

  public var description: String { "\(self.file):\(self.line): \(self.reason)" }
}

/// One parsed row: the candle and where it came from.
public struct CandleRow: Sendable, Equatable {
  /// Source file name (as reported back) and 1-based line; 0 when unknown.
  public var file: String
  public var line: Int
  public var candle: Candle
  /// The file's own close time, where the layout has one (milliseconds since the epoch).
  public var closeTime: Int64?
  /// 0-based position among all rows of an ingest stream, when known.
  public var index: Int?

  public init(file: String, line: Int, candle: Candle, closeTime: Int64? = nil, index: Int? = nil) {
    self.file = file
    self.line = line
    self.candle = candle
    self.closeTime = closeTime
    self.index = index
  }
}

/// The shapes candle files come in (see ../shared/data/market/SOURCES.md).
public enum CandleFileLayout: String, Sendable {
  /// A header row naming the columns; times as ISO text with or without an offset, dates, or
  /// epoch numbers. Covers `ts,open,…`, `timestamp,open,…` and the 11-column Binance layout
  /// behind `#` banner lines.
  case header
  /// Binance's bulk download: no header, 12 columns, epoch milliseconds (microseconds from 2025).
  case binanceBulk
}

/// A candle file, parsed row by row: what parsed, and what did not (with the reason).
public struct ParsedCandleFile: Sendable {
  public var name: String
  public var layout: CandleFileLayout
  public var rows: [CandleRow]
  public var problems: [RowProblem]
}

/// Reads candle files in the four layouts real files come in, gzip or not. Written for hostile
/// input: every malformed row is reported with its line and reason, never guessed at.
public enum CandleFileParser {
  /// Largest file accepted after decompression.
  public static let maximumBytes = 2 << 30

  /// Reads and parses a file (`.gz` is detected by its magic bytes, not its name).
  public static func read(path: String) throws -> ParsedCandleFile {
    let name = URL(fileURLWithPath: path).lastPathComponent
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
    } catch {
      throw VaneError(.notFound, "\(path): cannot read the file", cause: error)
    }
    return try Self.parse(bytes: [UInt8](data), name: name)
  }

  /// Parses file contents; gzip is inflated transparently.
  public static func parse(bytes: [UInt8], name: String) throws -> ParsedCandleFile {
    let text =
      Gzip.isCompressed(bytes)
      ? try Gzip.decompress(bytes, limit: Self.maximumBytes, name: name) : bytes
    try BinaryFileKind.check(
      text.prefix(4096),
      name: name,
      expected: "candles as CSV text (optionally gzip-compressed)"
    )
    guard text.count <= Self.maximumBytes else {
      throw VaneError(.resourceExhausted, "\(name): larger than \(Self.maximumBytes) bytes")
    }
    var lines = LineSplitter(text)
    // Banner lines (`#`) and blank lines before the data are skipped.
    var first: (number: Int, fields: [ArraySlice<UInt8>])?
    while let (number, line) = lines.next() {
      if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
      first = (number, Self.split(line))
      break
    }
    guard let first else {
      throw VaneError(.invalidArgument, "\(name): no data rows (empty, or only comment lines)")
    }
    let firstField = first.fields[0]
    if !firstField.isEmpty, firstField.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
      return try Self.parseBulk(name: name, first: first, rest: &lines)
    }
    return try Self.parseWithHeader(name: name, header: first, rest: &lines)
  }

  // MARK: Layouts

  private struct Columns {
    var time: Int
    var open: Int, high: Int, low: Int, close: Int, volume: Int
    var closeTime: Int?
    var quoteVolume: Int?, trades: Int?, takerBase: Int?, takerQuote: Int?
  }

  private static func parseWithHeader(
    name: String,
    header: (number: Int, fields: [ArraySlice<UInt8>]),
    rest: inout LineSplitter
  ) throws -> ParsedCandleFile {
    let names = header.fields.map {
      String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
    }
    func column(_ candidates: [String]) -> Int? { names.firstIndex { candidates.contains($0) } }
    func required(_ candidates: [String]) throws -> Int {
      guard let index = column(candidates) else {
        throw VaneError(
          .invalidArgument,
          "\(name):\(header.number): the header has no \(candidates[0]) column (found: \(MessageText.quote(names.joined(separator: ","), limit: 200)))"
        )
      }
      return index
    }
    let columns = Columns(
      time: try required(["ts", "timestamp", "date", "open_time", "time", "datetime"]),
      open: try required(["open"]),
      high: try required(["high"]),
      low: try required(["low"]),
      close: try required(["close"]),
      volume: try required(["volume"]),
      closeTime: column(["close_time"]),
      quoteVolume: column(["quote_asset_volume", "quote_volume"]),
      trades: column(["number_of_trades", "trades", "count"]),
      takerBase: column(["taker_buy_base_asset_volume", "taker_buy_base_volume"]),
      takerQuote: column(["taker_buy_quote_asset_volume", "taker_buy_quote_volume"])
    )
    var rows: [CandleRow] = []
    var problems: [RowProblem] = []
    while let (number, line) = rest.next() {
      if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
      let fields = Self.split(line)
      guard fields.count == names.count else {
        problems.append(
          RowProblem(
            file: name,
            line: number,
            reason: "has \(fields.count) fields, the header has \(names.count)"
          )
        )
        continue
      }
      switch Self.candle(fields, columns, file: name, line: number) {
      case .success(let row): rows.append(row)
      case .failure(let problem): problems.append(problem)
      }
    }
    return ParsedCandleFile(name: name, layout: .header, rows: rows, problems: problems)
  }

  private static func parseBulk(
    name: String,
    first: (number: Int, fields: [ArraySlice<UInt8>]),
    rest: inout LineSplitter
  ) throws -> ParsedCandleFile {
    let columns = Columns(
      time: 0,
      open: 1,
      high: 2,
      low: 3,
      close: 4,
      volume: 5,
      closeTime: 6,
      quoteVolume: 7,
      trades: 8,
      takerBase: 9,
      takerQuote: 10
    )
    var rows: [CandleRow] = []
    var problems: [RowProblem] = []
    func take(_ number: Int, _ fields: [ArraySlice<UInt8>]) {
      guard fields.count == 12 else {
        problems.append(
          RowProblem(
            file: name,
            line: number,
            reason: "has \(fields.count) fields, the Binance bulk layout has 12"
          )
        )
        return
      }
      switch Self.candle(fields, columns, file: name, line: number) {
      case .success(let row): rows.append(row)
      case .failure(let problem): problems.append(problem)
      }
    }
    take(first.number, first.fields)
    while let (number, line) = rest.next() {
      if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
      take(number, Self.split(line))
    }
    return ParsedCandleFile(name: name, layout: .binanceBulk, rows: rows, problems: problems)
  }

  // MARK: Fields

  private static func candle(
    _ fields: [ArraySlice<UInt8>],
    _ columns: Columns,
    file: String,
    line: Int
  ) -> Result<CandleRow, RowProblem> {
    func problem(_ reason: String) -> Result<CandleRow, RowProblem> {
      .failure(RowProblem(file: file, line: line, reason: reason))
    }
    guard let openTime = CandleTime.parse(fields[columns.time]) else {
      return problem("time \(MessageText.quote(bytes: fields[columns.time])) is not a timestamp")
    }
    var values: [Double] = []
    for (label, index) in [
      ("open", columns.open), ("high", columns.high), ("low", columns.low),
      ("close", columns.close), ("volume", columns.volume),
    ] {
      guard let value = Self.number(fields[index]) else {
        return problem("\(label) \(MessageText.quote(bytes: fields[index])) is not a number")
      }
      values.append(value)
    }
    var candle = Candle(
      openTime: openTime,
      open: values[0],
      high: values[1],
      low: values[2],
      close: values[3],
      volume: values[4]
    )
    var closeTime: Int64?
    if let index = columns.closeTime {
      guard let parsed = CandleTime.parse(fields[index]) else {
        return problem("close_time \(MessageText.quote(bytes: fields[index])) is not a timestamp")
      }
      closeTime = parsed
    }
    func optional(_ index: Int?, _ label: String) -> Result<Double?, RowProblem> {
      guard let index else { return .success(nil) }
      guard let value = Self.number(fields[index]) else {
        return .failure(
          RowProblem(
            file: file,
            line: line,
            reason: "\(label) \(MessageText.quote(bytes: fields[index])) is not a number"
          )
        )
      }
      return .success(value)
    }
    do {
      candle.quoteVolume = try optional(columns.quoteVolume, "quote_asset_volume").get()
      candle.takerBuyBaseVolume = try optional(columns.takerBase, "taker_buy_base_asset_volume")
        .get()
      candle.takerBuyQuoteVolume = try optional(columns.takerQuote, "taker_buy_quote_asset_volume")
        .get()
      if let trades = try optional(columns.trades, "number_of_trades").get() {
        guard trades >= 0, trades == trades.rounded(), trades < 9e18 else {
          return problem("number_of_trades \(trades) is not a count")
        }
        candle.tradeCount = Int64(trades)
      }
    } catch {
      return .failure(error)
    }
    return .success(CandleRow(file: file, line: line, candle: candle, closeTime: closeTime))
  }

  private static func number(_ field: ArraySlice<UInt8>) -> Double? {
    guard !field.isEmpty, field.count <= 64 else { return nil }
    return Double(String(decoding: field, as: UTF8.self))
  }

  /// Splits a CSV line on commas (these files never quote), trimming spaces and a trailing CR.
  static func split(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    var line = line
    if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
    return line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { field in
      var field = field
      while field.first == UInt8(ascii: " ") { field = field.dropFirst() }
      while field.last == UInt8(ascii: " ") { field = field.dropLast() }
      return field
    }
  }
}

/// Lines of a byte buffer with their 1-based numbers.
struct LineSplitter {
  private let bytes: [UInt8]
  private var position = 0
  private var number = 0

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  mutating func next() -> (Int, ArraySlice<UInt8>)? {
    guard self.position < self.bytes.count else { return nil }
    let start = self.position
    var end = start
    while end < self.bytes.count, self.bytes[end] != UInt8(ascii: "\n") { end += 1 }
    self.position = end + 1
    self.number += 1
    return (self.number, self.bytes[start ..< end])
  }
}
