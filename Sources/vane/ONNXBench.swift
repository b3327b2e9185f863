import ArgumentParser
import VaneCore
import VaneMath
import VaneONNXRuntime
internal import Foundation

/// `vane bench onnx`: Vane's ONNX engine beside ONNX Runtime on the same models and inputs, in
/// one run (scripts/bench_onnx.py makes the models and times ONNX Runtime first).
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
      thread (ONNX Runtime intra_op_num_threads=1; OpenBLAS 1 thread). Single-row figures are \
      over --calls calls after 50 warm-up calls; batch figures over --batches runs of 256 rows. \
      Ratio = ONNX Runtime / Vane for times (> 1: Vane is faster), Vane / ONNX Runtime for rows/s. \
      The outputs are checked against ONNX Runtime's on the batch (max |difference|).
      """
  )

  @Option(help: "Single-row calls timed per model.")
  var calls = 2000

  @Option(help: "Batch runs timed per model.")
  var batches = 50

  @Option(
    help:
      "Only the models whose names start with these (comma-separated: mlp, lstm, lightgbm, logistic)."
  )
  var only: String?

  @Option(help: "The reference script.")
  var script = "scripts/bench_onnx.py"

  struct Reference: Decodable {
    struct Model: Decodable {
      var p50_us: Double
      var p99_us: Double
      var rows_per_second: Double
      var input: String
      var shape: [Int]
    }
    var onnxruntime: String
    var models: [String: Model]
  }

  func run() throws {
    // OpenBLAS reads OPENBLAS_NUM_THREADS when it loads, before this runs: set it directly (two
    // threads spin in sched_yield around every small product).
    BLAS.setThreadCount(1)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-bench-onnx-\(getpid())"
    )
    defer { try? FileManager.default.removeItem(at: directory) }
    let reference: Reference
    do {
      reference = try ReferenceScript.run(
        self.script,
        files: [],
        arguments: [directory.path, "--calls", "\(self.calls)", "--batches", "\(self.batches)"]
          + (self.only.map { ["--only", $0] } ?? []),
        as: Reference.self
      )
    } catch {
      throw ValidationError(
        "\(self.script) failed (\(error)): it needs python3 with onnxruntime, torch, lightgbm, onnxmltools and skl2onnx"
      )
    }
    Output.line(
      "vane bench onnx: Vane's engine vs ONNX Runtime \(reference.onnxruntime), one thread each"
    )
    Output.line(
      "model                    ORT p50 µs  Vane p50 µs  ratio   ORT p99 µs  Vane p99 µs   ORT rows/s  Vane rows/s  ratio  max |Δ|"
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
      let p50 = samples[samples.count / 2],
        p99 = samples[min(samples.count - 1, Int(Double(samples.count) * 0.99))]
      let start = clock.now
      var last: [String: ONNXTensor] = [:]
      for _ in 0 ..< self.batches { last = try model.run(batch) }
      let seconds = (clock.now - start).components
      let rows =
        Double(self.batches * figures.shape[0])
        / (Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18)
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
      Output.line(
        String(
          format: "%-24@ %10.1f %12.1f %6.2f× %11.1f %12.1f %12.0f %12.0f %5.2f×  %.1e",
          name as NSString,
          figures.p50_us,
          p50,
          figures.p50_us / p50,
          figures.p99_us,
          p99,
          figures.rows_per_second,
          rows,
          rows / figures.rows_per_second,
          difference
        )
      )
    }
    Output.line(
      "targets: single-row p50 ratio ≥ 1.00× (at most ONNX Runtime's p50), batch ratio ≥ 0.80×"
    )
  }
}
