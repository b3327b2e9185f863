public import VaneFeatures
public import VaneProto

/// The client half of IngestCandles: a parsed file as the messages of one ingest stream.
public enum FeatureUpload {
  /// Candles per batch message: about 0.5 MB on the wire, far under the default 64 MiB limit.
  public static let defaultBatchSize = 5_000

  /// Quote assets a symbol in a file name may end with.
  static let quotes = [
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "USD", "TRY",
  ]

  /// The symbol a file name carries, e.g. BTCUSDT in `binance_BTCUSDT_1h.csv.gz` or
  /// `BTCUSDT-1h-2024-01.csv`: the first upper-case token ending in a known quote asset.
  public static func symbol(fromFileName name: String) -> String? {
    let tokens = name.split { !($0.isASCII && ($0.isLetter || $0.isNumber)) }
    return tokens.lazy.map(String.init).first { token in
      token.count >= 5 && token.count <= 32 && token.allSatisfy { $0.isUppercase || $0.isNumber }
        && Self.quotes.contains { token.hasSuffix($0) && token.count > $0.count }
    }
  }

  /// The messages of one stream: the header, then the rows in batches with their file and
  /// line numbers, and the rows that did not parse forwarded so the server's report is whole.
  public static func messages(
    file: ParsedCandleFile,
    symbol: String,
    interval: CandleInterval,
    source: String,
    options: Vane_V1_IngestOptions = .init(),
    batchSize: Int = Self.defaultBatchSize
  ) -> [Vane_V1_IngestCandlesRequest] {
    var messages: [Vane_V1_IngestCandlesRequest] = [
      .with {
        $0.header = .with {
          $0.market = .with {
            $0.symbol = symbol
            $0.interval = interval.proto
          }
          $0.source = source
          $0.options = options
        }
      }
    ]
    let size = max(batchSize, 1)
    var start = 0
    repeat {
      let rows = file.rows[start ..< min(start + size, file.rows.count)]
      var batch = Vane_V1_CandleBatch()
      batch.file = file.name
      batch.candles = rows.map { Vane_V1_Candle($0.candle) }
      batch.lines = rows.map { UInt64($0.line) }
      if start == 0 { batch.rejectedRows = file.problems.map(Vane_V1_InvalidRow.init) }
      messages.append(.with { $0.batch = batch })
      start += size
    } while start < file.rows.count
    return messages
  }
}
