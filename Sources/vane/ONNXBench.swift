import ArgumentParser
import VaneCore
import VaneMath
import VaneONNXRuntime
internal import Foundation

/// `vane bench onnx`: Vane's ONNX engine beside ONNX Runtime on the same models and inputs, in
/// one run, in alternating rounds (scripts/bench_onnx.py makes the models and times ONNX Runtime
/// a round at a time).
struct ONNXBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "onnx",
    abstract:
      "Vane's ONNX engine vs ONNX Runtime (1 thread): single-row p50/p99 and batch-256 rows/s on four models.",
    discussion: """
      Models (made by scripts/bench_onnx.py, which needs onnxruntime, torch, lightgbm, onnxmltools \
      and skl2onnx): an MLP 78-512-256-128-3 with batch norm and an LSTM over 48 steps of 16 \
      features with 3 heads (PyTorch exports), a 300-tree LightGBM binary model (onnxmltools) and \
      a logistic regression (skl2onnx) fitted on real BTC indicator rows. Both sides run on one \
      thread (ONNX Runtime intra_op_num_threads=1; OpenBLAS 1 thread). Each model is timed in \
      --rounds rounds, ONNX Runtime's then Vane's, both pinned to one CPU (--no-pin: not), so \
      that drift on a noisy machine hits both: a \
      round is --calls single-row calls after 50 warm-up calls, then --batches runs of 256 rows. \
      Figures are the medians over rounds; ratio = ONNX Runtime / Vane for times (> 1: Vane is \
      faster), Vane / ONNX Runtime for rows/s, with the per-round ratios' range beside it. The \
      outputs are checked against ONNX Runtime's on the batch (max |difference|).
      """
  )

  @Option(help: "Single-row calls timed per model and round.")
  var calls = 2000

  @Option(help: "Batch runs timed per model and round.")
  var batches = 50

  @Option(help: "Alternating rounds of ONNX Runtime and Vane per model.")
  var rounds = 5

  @Flag(
    inversion: .prefixedNo,
    help: "Pin both sides to the CPU the benchmark starts on (they take turns on one core)."
  )
  var pin = true

  func validate() throws {
    guard self.calls > 0, self.batches > 0, self.rounds > 0 else {
      throw ValidationError("--calls, --batches and --rounds must be positive")
    }
  }

  @Option(
    help:
      "Only the models whose names start with these (comma-separated: mlp, lstm, lightgbm, logistic)."
  )
  var only: String?

  @Option(help: "The reference script.")
  var script = "scripts/bench_onnx.py"

  /// What the reference script says when it is ready.
  struct Reference: Decodable {
    struct Model: Decodable {
      var input: String
      var shape: [Int]
    }
    var onnxruntime: String
    var models: [String: Model]
  }

  /// One round's figures for one side.
  struct Round: Decodable {
    var p50_us: Double
    var p99_us: Double
    var rows_per_second: Double
  }

  func run() throws {
    // OpenBLAS reads OPENBLAS_NUM_THREADS when it loads, before this runs: set it directly (two
    // threads spin in sched_yield around every small product).
    BLAS.setThreadCount(1)
    // Both sides take turns on one core (the reference process inherits the pinning).
    let cpu = self.pin ? CPUAffinity.pinToCurrentCPU() : nil
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-onnx-\(getpid())"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let session: ReferenceSession
    let reference: Reference
    do {
      session = try ReferenceSession(
        self.script,
        arguments: [directory.path, "--calls", "\(self.calls)", "--batches", "\(self.batches)"]
          + (self.only.map { ["--only", $0] } ?? [])
      )
      reference = try session.next(Reference.self)
    } catch {
      throw ValidationError(
        "\(self.script) failed (\(error)): it needs python3 with onnxruntime, torch, lightgbm, onnxmltools and skl2onnx"
      )
    }
    Output.line(
      "vane bench onnx: Vane's engine vs ONNX Runtime \(reference.onnxruntime), one thread each"
        + (cpu.map { ", both on CPU \($0)" } ?? "")
        + ", \(self.rounds) alternating rounds (medians; per-round ratios in brackets)"
    )
    Output.line(
      "model                    ORT p50 µs  Vane p50 µs  ratio [rounds]       ORT p99 µs  Vane p99 µs   ORT rows/s  Vane rows/s  ratio [rounds]       max |Δ|"
    )
    for name in reference.models.keys.sorted() {
      let figures = reference.models[name]!
      let model = try ONNXModel(contentsOf: directory.appendingPathComponent("\(name).onnx"))
      func floats(_ suffix: String) throws -> [Float] {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name).\(suffix).bin"))
        return data.withUnsafeBytes { raw in
          (0 ..< (data.count / 4)).map {
            Float(
              bitPattern: UInt32(
                littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)
              )
            )
          }
        }
      }
      var singleShape = figures.shape
      singleShape[0] = 1
      let single = [figures.input: ONNXTensor(shape: singleShape, floats: try floats("single"))]
      let batch = [figures.input: ONNXTensor(shape: figures.shape, floats: try floats("batch"))]
      var last: [String: ONNXTensor] = [:]
      // ONNX Runtime's round, then Vane's, `rounds` times.
      var theirs: [Round] = [], ours: [Round] = []
      for _ in 0 ..< self.rounds {
        theirs.append(try session.ask(name, as: Round.self))
        let round: Round
        (round, last) = try self.round(model, single: single, batch: batch, rows: figures.shape[0])
        ours.append(round)
      }
      let expected = try floats("out")
      let got: [Double] =
        model.outputs.first.flatMap { last[$0.name] }.flatMap { tensor in
          switch tensor.values {
          case .float(let v): v.map(Double.init)
          case .double(let v): v
          case .integer(let v): v.map(Double.init)
          default: nil
          }
        } ?? []
      let difference =
        got.count == expected.count
        ? zip(got, expected).map { abs($0 - Double($1)) }.max() ?? 0 : .infinity
      func spread(_ ratios: [Double]) -> String {
        String(format: "[%.2f–%.2f]", ratios.min() ?? .nan, ratios.max() ?? .nan)
      }
      let singleRatios = zip(theirs, ours).map { $0.p50_us / $1.p50_us }
      let batchRatios = zip(theirs, ours).map { $1.rows_per_second / $0.rows_per_second }
      let (ortP50, p50) = (
        (theirs.map(\.p50_us).median ?? .nan), (ours.map(\.p50_us).median ?? .nan)
      )
      let (ortRows, rows) = (
        (theirs.map(\.rows_per_second).median ?? .nan), (ours.map(\.rows_per_second).median ?? .nan)
      )
      Output.line(
        String(
          format: "%-24@ %10.1f %12.1f %6.2f× %-13@ %10.1f %12.1f %12.0f %12.0f %5.2f× %-13@ %.1e",
          name as NSString,
          ortP50,
          p50,
          ortP50 / p50,
          spread(singleRatios) as NSString,
          (theirs.map(\.p99_us).median ?? .nan),
          (ours.map(\.p99_us).median ?? .nan),
          ortRows,
          rows,
          rows / ortRows,
          spread(batchRatios) as NSString,
          difference
        )
      )
    }
    Output.line(
      "targets: single-row p50 ratio ≥ 1.00× (at most ONNX Runtime's p50), batch ratio ≥ 0.80×"
    )
  }

  /// One round of Vane's engine: 50 warm-up calls, `calls` timed single-row calls, `batches`
  /// timed batches; and the last batch's outputs.
  func round(
    _ model: ONNXModel,
    single: [String: ONNXTensor],
    batch: [String: ONNXTensor],
    rows: Int
  ) throws -> (Round, [String: ONNXTensor]) {
    for _ in 0 ..< 50 { _ = try model.run(single) }
    var samples: [Double] = []
    samples.reserveCapacity(self.calls)
    let clock = ContinuousClock()
    for _ in 0 ..< self.calls {
      let start = clock.now
      _ = try model.run(single)
      let elapsed = (clock.now - start).components
      samples.append(Double(elapsed.seconds) * 1e6 + Double(elapsed.attoseconds) / 1e12)
    }
    samples.sort()
    let start = clock.now
    var last: [String: ONNXTensor] = [:]
    for _ in 0 ..< self.batches { last = try model.run(batch) }
    let seconds = (clock.now - start).components
    return (
      Round(
        p50_us: samples[samples.count / 2],
        p99_us: samples[min(samples.count - 1, Int(Double(samples.count) * 0.99))],
        rows_per_second: Double(self.batches * rows)
          / (Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18)
      ),
      last
    )
  }
}
