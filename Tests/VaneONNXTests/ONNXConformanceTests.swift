import Foundation
import Testing
import VaneCore
import VaneONNXRuntime

/// ONNX's own backend node tests (ONNX 1.12, Debian's libonnx-testdata; `make test` installs
/// it): each case a one-op model with input and expected output tensors. Every case is run and
/// counted passed, failed or unsupported; a case the committed baseline lists as passed must
/// still pass. `VANE_WRITE_ONNX_BASELINE=1` rewrites the baseline from this run.
@Suite("ONNX engine: the backend node conformance tests")
struct ONNXConformanceTests {
  static let directory =
    ProcessInfo.processInfo.environment["VANE_ONNX_TESTDATA"]
    ?? "/usr/share/libonnx-testdata/data/node"
  static let baseline = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/onnx-node-conformance.txt")

  enum Status: String { case passed, failed, unsupported }

  struct Outcome {
    var name: String
    var ops: [String]
    var status: Status
    var detail: String
  }

  /// Compares as ONNX's backend tests do: floats within rtol 1e-3 and atol 1e-7, NaN where
  /// NaN is expected; everything else exactly.
  static func mismatch(_ got: ONNXTensor, _ expected: ONNXTensor) -> String? {
    guard got.shape == expected.shape else {
      return "shape \(got.shape), expected \(expected.shape)"
    }
    guard got.elementType == expected.elementType else {
      return "type \(got.elementType), expected \(expected.elementType)"
    }
    switch (got.values, expected.values) {
    case (.float(let a), .float(let b)): return Self.close(a.map(Double.init), b.map(Double.init))
    case (.double(let a), .double(let b)): return Self.close(a, b)
    default: return got == expected ? nil : "values differ"
    }
  }

  static func close(_ a: [Double], _ b: [Double]) -> String? {
    for (index, (x, y)) in zip(a, b).enumerated() {
      if x.isNaN != y.isNaN || (!x.isNaN && x != y && abs(x - y) > 1e-7 + 1e-3 * abs(y)) {
        return "element \(index): \(x), expected \(y)"
      }
    }
    return nil
  }

  static func run(_ caseDirectory: URL) -> Outcome {
    let name = caseDirectory.lastPathComponent
    let model: ONNXModel
    do {
      model = try ONNXModel(contentsOf: caseDirectory.appendingPathComponent("model.onnx"))
    } catch let error as VaneError {
      let ops = Self.opsFromName(name, message: error.message)
      return Outcome(
        name: name,
        ops: ops,
        status: error.isUnsupportedONNX ? .unsupported : .failed,
        detail: error.message
      )
    } catch {
      return Outcome(name: name, ops: [], status: .failed, detail: "\(error)")
    }
    let ops = model.operatorCounts.keys.sorted()
    let sets = ((try? FileManager.default.contentsOfDirectory(atPath: caseDirectory.path)) ?? [])
      .filter { $0.hasPrefix("test_data_set_") }.sorted()
    for set in sets {
      let folder = caseDirectory.appendingPathComponent(set)
      func tensors(_ prefix: String) throws -> [ONNXTensor] {
        var result: [ONNXTensor] = []
        var index = 0
        while let data = FileManager.default.contents(
          atPath: folder.appendingPathComponent("\(prefix)_\(index).pb").path
        ) {
          result.append(try ONNXTensor.decode(serializedTensorProto: data).tensor)
          index += 1
        }
        return result
      }
      do {
        let inputs = try tensors("input"), expected = try tensors("output")
        guard inputs.count <= model.inputs.count else {
          return Outcome(
            name: name,
            ops: ops,
            status: .failed,
            detail: "\(inputs.count) inputs for \(model.inputs.count) declared"
          )
        }
        let feeds = Dictionary(uniqueKeysWithValues: zip(model.inputs.map(\.name), inputs))
        let outputs = try model.run(feeds)
        for (info, want) in zip(model.outputs, expected) {
          guard let got = outputs[info.name] else {
            return Outcome(name: name, ops: ops, status: .failed, detail: "no output \(info.name)")
          }
          if let problem = Self.mismatch(got, want) {
            return Outcome(
              name: name,
              ops: ops,
              status: .failed,
              detail: "\(set) \(info.name): \(problem)"
            )
          }
        }
      } catch let error as VaneError {
        return Outcome(
          name: name,
          ops: ops,
          status: error.isUnsupportedONNX ? .unsupported : .failed,
          detail: "\(set): \(error.message)"
        )
      } catch {
        return Outcome(name: name, ops: ops, status: .failed, detail: "\(set): \(error)")
      }
    }
    return Outcome(name: name, ops: ops, status: .passed, detail: "")
  }

  /// The op an unsupported model's error names ("op TopK (opset 11) of node …"), else the case.
  static func opsFromName(_ name: String, message: String) -> [String] {
    if let range = message.range(of: "unsupported: op ") {
      return [String(message[range.upperBound...].prefix { $0 != " " })]
    }
    return [String(name.dropFirst(5))]
  }

  @Test(
    "Every node case runs: passed, failed or unsupported per op; nothing the baseline passes regresses"
  )
  func conformance() async throws {
    try await BlockingPool.shared.run { try Self.conformance() }
  }

  static func conformance() throws {
    let root = URL(fileURLWithPath: Self.directory)
    let cases = try #require(
      try? FileManager.default.contentsOfDirectory(atPath: root.path).filter {
        $0.hasPrefix("test_")
      }.sorted(),
      "ONNX's node tests are not at \(Self.directory): install Debian's libonnx-testdata (make test does)"
    )
    #expect(cases.count > 900)
    let outcomes = cases.map { Self.run(root.appendingPathComponent($0)) }

    // Per op: passed / failed / unsupported.
    var table: [String: [Status: Int]] = [:]
    for outcome in outcomes {
      let op =
        outcome.ops.count == 1
        ? outcome.ops[0] : outcome.ops.isEmpty ? "?" : "expanded(\(outcome.ops.count) ops)"
      table[op, default: [:]][outcome.status, default: 0] += 1
    }
    let counts = Dictionary(grouping: outcomes, by: \.status).mapValues(\.count)
    var report =
      "ONNX node conformance: \(counts[.passed] ?? 0) passed, \(counts[.failed] ?? 0) failed, \(counts[.unsupported] ?? 0) unsupported of \(outcomes.count)\n"
    for op in table.keys.sorted() {
      let row = table[op]!
      report +=
        "  \(op.padding(toLength: 28, withPad: " ", startingAt: 0)) passed \(row[.passed] ?? 0)  failed \(row[.failed] ?? 0)  unsupported \(row[.unsupported] ?? 0)\n"
    }
    for outcome in outcomes where outcome.status == .failed {
      report += "  FAILED \(outcome.name): \(outcome.detail)\n"
    }
    print(report)

    let lines = outcomes.map { "\($0.name) \($0.status.rawValue)" }.joined(separator: "\n") + "\n"
    if ProcessInfo.processInfo.environment["VANE_WRITE_ONNX_BASELINE"] == "1" {
      try lines.write(to: Self.baseline, atomically: true, encoding: .utf8)
    }
    let baseline = try String(contentsOf: Self.baseline, encoding: .utf8)
    let passedBefore = Set(
      baseline.split(separator: "\n").filter { $0.hasSuffix(" passed") }.map {
        String($0.split(separator: " ")[0])
      }
    )
    for outcome in outcomes where passedBefore.contains(outcome.name) && outcome.status != .passed {
      Issue.record(
        "\(outcome.name) passed before and is \(outcome.status.rawValue) now: \(outcome.detail)"
      )
    }
    // Every op the engine claims has at least one passing case.
    let passingOps = Set(outcomes.filter { $0.status == .passed }.flatMap(\.ops))
    let claimed = ONNXModel.supportedOperators.filter { !passingOps.contains($0) }
    print("ops without a passing node case: \(claimed)")
  }
}
