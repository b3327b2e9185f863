import ArgumentParser
import GRPCShimTransport
import VaneProto
internal import Foundation

extension PredictorBench {
  /// Counts instructions per sequential call of Predict and of GetServiceInfo (the in-process
  /// client and server together, every thread, the prediction log's writer included) and
  /// prints them by library side by side, with the functions that make Predict's extra.
  ///
  /// Each method runs in a process of its own (`vane bench predictor-calls`), under callgrind
  /// with few and with many calls; the difference of the two profiles leaves out start-up,
  /// training the bundle and loading it, so what is left is the calls themselves.
  func countInstructions() throws {
    let vane = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    let few = 200, many = 200 + self.instructionCalls
    print(
      "\ninstructions per sequential call (valgrind callgrind, \(self.instructionCalls) calls of each method; client and server in one process, log \(self.withoutLog ? "off" : "on")):"
    )
    var counter = try CallgrindCounter.prepare(programs: [vane], in: self.profiles)
    counter.cacheSimulation = self.cacheMisses
    defer { if self.profiles == nil { counter.removeScratch() } }
    var profiles: [PredictorBenchCalls.Method: CallgrindCounter.Profile] = [:]
    for method in [PredictorBenchCalls.Method.info, .predict] {
      profiles[method] = try counter.profileClient(
        name: "predictor-\(method.rawValue)",
        program: vane,
        few: few,
        many: many
      ) { calls in
        [
          "bench", "predictor-calls", "--method", method.rawValue, "--calls", "\(calls)",
          "--width", "\(self.width)",
        ] + (self.withoutLog ? ["--without-log"] : [])
      }
    }
    let calls = many - few
    let info = profiles[.info]!.counts(calls: calls)
    let predict = profiles[.predict]!.counts(calls: calls)
    let extra = profiles[.predict]!.subtracting(profiles[.info]!).counts(calls: calls, top: 14)
    Self.printInstructions(info: info, predict: predict, extra: extra)
    if self.cacheMisses {
      Self.printCacheMisses(info: profiles[.info]!, predict: profiles[.predict]!, calls: calls)
    }
  }

  /// Simulated first-level cache misses per call of each method, and Predict's extra: each
  /// miss costs a trip to the second-level cache, which instructions alone do not count.
  static func printCacheMisses(
    info: CallgrindCounter.Profile,
    predict: CallgrindCounter.Profile,
    calls: Int
  ) {
    let number = CallgrindCounter.number, column = CallgrindCounter.column
    print(
      "\nsimulated first-level cache misses per call (valgrind --cache-sim=yes, one cache for every thread):"
    )
    print(
      "misses".padding(toLength: 46, withPad: " ", startingAt: 0) + column("GetServiceInfo", 16)
        + column("Predict", 10) + column("extra", 10)
    )
    for (event, name) in [
      ("I1mr", "instruction cache"), ("D1mr", "data cache, reads"), ("D1mw", "data cache, writes"),
    ] {
      guard let a = info.perCall(event, calls: calls), let b = predict.perCall(event, calls: calls)
      else { continue }
      print(
        name.padding(toLength: 46, withPad: " ", startingAt: 0) + column(number(a), 16)
          + column(number(b), 10) + column(number(b - a), 10)
      )
    }
  }

  static func printInstructions(
    info: CallgrindCounter.Counts,
    predict: CallgrindCounter.Counts,
    extra: CallgrindCounter.Counts
  ) {
    let number = CallgrindCounter.number, column = CallgrindCounter.column
    print(
      "where".padding(toLength: 46, withPad: " ", startingAt: 0) + column("GetServiceInfo", 16)
        + column("Predict", 10) + column("extra", 10)
    )
    var groups: [String] = []
    for counts in [info, predict] {
      for entry in counts.byGroup where !groups.contains(entry.group) {
        groups.append(entry.group)
      }
    }
    func value(_ counts: CallgrindCounter.Counts, _ group: String) -> Double {
      counts.byGroup.first { $0.group == group }?.perCall ?? 0
    }
    for group in groups {
      let (a, b) = (value(info, group), value(predict, group))
      // Groups under 1 % of both calls are noise in this table.
      if a < 0.01 * info.perCall && b < 0.01 * predict.perCall { continue }
      print(
        group.padding(toLength: 46, withPad: " ", startingAt: 0) + column(number(a), 16)
          + column(number(b), 10) + column(number(b - a), 10)
      )
    }
    print(
      "total".padding(toLength: 46, withPad: " ", startingAt: 0)
        + column(number(info.perCall), 16) + column(number(predict.perCall), 10)
        + column(number(predict.perCall - info.perCall), 10)
    )
    print(
      String(
        format: "instructions per call: Predict / GetServiceInfo = %.2f×",
        predict.perCall / info.perCall
      )
    )
    print(
      "where Predict's extra goes (own instructions per call, Predict's less GetServiceInfo's):"
    )
    for entry in extra.topFunctions {
      print(
        "  " + column(number(entry.perCall), 8) + "  "
          + String(CallgrindCounter.demangle(entry.name).prefix(110))
      )
    }
  }
}

/// `vane bench predictor-calls`: sequential calls of one method to the bench's in-process
/// predictor, in a process of its own, so that callgrind can count them
/// (`vane bench predictor --instructions`).
struct PredictorBenchCalls: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predictor-calls",
    abstract:
      "Sequential Predict or GetServiceInfo calls to an in-process predictor (used by bench predictor).",
    shouldDisplay: false
  )

  enum Method: String, ExpressibleByArgument, CaseIterable {
    case predict
    case info
  }

  @Option(help: "predict or info (GetServiceInfo).")
  var method: Method

  @Option(help: "Sequential calls after the warm-up.")
  var calls = 1_000

  @Option(help: "Calls before the counted ones (of the same method).")
  var warmup = 200

  @OptionGroup var serving: PredictorBenchServing

  func run() async throws {
    try await PredictorBench.withLoadedPredictor("calls", self.serving) { client, requests in
      for index in 0 ..< (self.warmup + self.calls) {
        switch self.method {
        case .predict: _ = try await client.predict(requests[index % requests.count])
        case .info: _ = try await client.getServiceInfo(.init())
        }
      }
    }
  }
}
