import ArgumentParser
import VaneRuntime
import VaneFeatures
import VaneProto
internal import Foundation

/// The candles a pipeline replays: per symbol, the history before the cut and the bars after it,
/// which arrive one at a time as a live feed would.
struct PipelineMarket: Sendable {
  struct Series: Sendable {
    var symbol: String
    var file: ParsedCandleFile
    /// Rows opened before the cut.
    var history: [CandleRow]
    /// Rows opened at or after the cut, by open time.
    var live: [Int64: CandleRow]
  }

  var series: [Series]
  /// Open times of the live bars of the model's symbol, ascending (at most `liveBars`).
  var liveTimes: [Int64]
  var cut: Int64

  /// Where the embedded default data lies: the `vane` executable's resource bundle (SwiftPM
  /// copies `Sources/vane/Resources/market` beside the executable), or `VANE_MARKET_DIR`.
  static func embeddedDirectory() -> String? {
    if let directory = ProcessInfo.processInfo.environment["VANE_MARKET_DIR"], !directory.isEmpty {
      return directory
    }
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
      .deletingLastPathComponent()
    for candidate in ["Vane_vane.resources/market", "../share/vane/market"] {
      let path = executable.appendingPathComponent(candidate).standardizedFileURL.path
      if FileManager.default.fileExists(atPath: path) { return path }
    }
    return nil
  }

  /// The candle files to read: the given files, else every `*.csv[.gz]` of `directory` whose
  /// name carries one of the four symbols at 1h, else the embedded sample.
  static func files(arguments: [String], directory: String?) throws -> [String] {
    if !arguments.isEmpty { return arguments }
    guard let directory = directory ?? Self.embeddedDirectory() else {
      throw ValidationError(
        "no candle files given and the embedded sample is missing (set VANE_MARKET_DIR, --market DIR or name files)"
      )
    }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    let picked = PipelineDefaults.symbols.compactMap { symbol in
      names.sorted().first { name in
        FeatureUpload.symbol(fromFileName: name) == symbol && name.contains("_1h")
          && !name.contains("11col")
          && (name.hasSuffix(".csv") || name.hasSuffix(".csv.gz"))
      }.map { directory + "/" + $0 }
    }
    guard picked.count == PipelineDefaults.symbols.count else {
      throw ValidationError(
        "\(directory): needs 1h candle files for \(PipelineDefaults.symbols.joined(separator: ", ")); found \(picked.count)"
      )
    }
    return picked
  }

  /// The ingest streams that deliver bar `time` as a live feed would: one per series that has
  /// the bar, with the bar's close as the reference time.
  func barStreams(_ time: Int64) -> [(symbol: String, messages: [Vane_V1_IngestCandlesRequest])] {
    self.series.compactMap { series in
      guard let row = series.live[time] else { return nil }
      var file = series.file
      file.rows = [row]
      file.problems = []
      let options = Vane_V1_IngestOptions.with {
        $0.referenceTime = PipelineTime.timestamp(time + CandleInterval.h1.milliseconds)
      }
      return (
        series.symbol,
        FeatureUpload.messages(
          file: file,
          symbol: series.symbol,
          interval: .h1,
          source: "vane pipeline: live",
          options: options
        )
      )
    }
  }

  /// The ingest streams of every series' history (each row before the cut).
  func historyStreams() -> [(series: Series, messages: [Vane_V1_IngestCandlesRequest])] {
    self.series.map { series in
      var file = series.file
      file.rows = series.history
      let options = Vane_V1_IngestOptions.with {
        $0.referenceTime = PipelineTime.timestamp(self.cut)
      }
      return (
        series,
        FeatureUpload.messages(
          file: file,
          symbol: series.symbol,
          interval: .h1,
          source: "vane pipeline: \(file.name)",
          options: options
        )
      )
    }
  }

  /// Reads `paths` and splits them at `cut`.
  /// - Throws: ExitCode(2) naming the file for one that cannot be read or names no symbol.
  static func load(paths: [String], cut: Int64, liveBars: Int?) throws -> PipelineMarket {
    var series: [Series] = []
    for path in paths {
      let name = URL(fileURLWithPath: path).lastPathComponent
      guard let symbol = FeatureUpload.symbol(fromFileName: name) else {
        throw Output.fileError(
          path,
          "the file name names no symbol (e.g. binance_BTCUSDT_1h.csv.gz)"
        )
      }
      let file: ParsedCandleFile
      do {
        file = try CandleFileParser.read(path: path)
      } catch {
        throw Output.fileError(path, "\(error)")
      }
      guard (try? CandleValidator.interval(of: file)) == .h1 else {
        throw Output.fileError(
          path,
          "the pipeline replays 1h candles; this file's bars are not 1h apart"
        )
      }
      var live: [Int64: CandleRow] = [:]
      for row in file.rows where row.candle.openTime >= cut { live[row.candle.openTime] = row }
      series.append(
        Series(
          symbol: symbol,
          file: file,
          history: file.rows.filter { $0.candle.openTime < cut },
          live: live
        )
      )
    }
    let missing = PipelineDefaults.symbols.filter { symbol in
      !series.contains { $0.symbol == symbol }
    }
    guard missing.isEmpty else {
      throw ValidationError(
        "the v1 feature set needs candles of \(missing.joined(separator: ", ")) too"
      )
    }
    guard let model = series.first(where: { $0.symbol == PipelineDefaults.symbol }),
      !model.history.isEmpty
    else {
      throw ValidationError("no \(PipelineDefaults.symbol) candles before the cut")
    }
    var times = model.live.keys.sorted()
    if let liveBars { times = Array(times.prefix(liveBars)) }
    guard !times.isEmpty else {
      throw ValidationError(
        "no \(PipelineDefaults.symbol) candles after the cut: nothing to replay"
      )
    }
    return PipelineMarket(series: series, liveTimes: times, cut: cut)
  }
}
