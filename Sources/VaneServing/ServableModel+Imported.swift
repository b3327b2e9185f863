// An imported ONNX graph as a servable base model: its inputs filled from the bundle's feature
// columns as its `vane.onnx-import.v1` envelope maps them, its output made class probabilities.

internal import Foundation
internal import VaneBundle
internal import VaneCore
internal import VaneONNXRuntime

/// An imported ONNX graph on Vane's engine, ready to answer.
struct ImportedGraph: Sendable {
  struct Input: Sendable {
    var name: String
    /// Index of each of the input's columns in the bundle's feature columns.
    var columns: [Int]
    var float: Bool
  }

  let engine: ONNXModel
  let inputs: [Input]
  /// Bars each row is (1, or the sequence length of a `[rows, bars, features]` input).
  let bars: Int
  let output: String
  let transform: BundleONNXImport.Transform
  /// Output columns per row for a graph with one head per horizon (nil: one set of class scores),
  /// and their horizons.
  let heads: Int?
  let headHorizons: [Int]?
  let classes: Int
  /// The envelope's bundle file, for errors.
  let file: String

  /// Loads the envelope and the graph it names and checks them against the bundle.
  /// - Throws: FAILED_PRECONDITION naming the file: a malformed envelope, a graph the engine
  ///   refuses, an input or output the graph does not have, a column the bundle lacks.
  init(
    envelope data: Data,
    file: String,
    bundle: ModelBundle,
    columns: [String],
    classes: Int
  ) throws {
    func fail(_ reason: String) -> VaneError {
      VaneError(.failedPrecondition, "\(file): \(reason)")
    }
    let envelope = try BundleJSON.decode(BundleONNXImport.self, from: data, file: file)
    guard envelope.format == BundleONNXImport.format else {
      throw fail("format '\(envelope.format)' is not \(BundleONNXImport.format)")
    }
    let engine: ONNXModel
    do {
      engine = try ONNXModel(data: try bundle.data(envelope.model))
    } catch let error as VaneError {
      throw fail("\(envelope.model): \(error.message)")
    }
    let index = Dictionary(
      columns.enumerated().map { ($1, $0) },
      uniquingKeysWith: { first, _ in first }
    )
    guard Set(envelope.inputs.map(\.name)) == Set(engine.inputs.map(\.name)),
      envelope.inputs.count == engine.inputs.count
    else {
      throw fail(
        "its inputs \(envelope.inputs.map(\.name)) are not the graph's \(engine.inputs.map(\.name))"
      )
    }
    guard let bars = envelope.inputs.first?.bars, bars >= 1,
      envelope.inputs.allSatisfy({ $0.bars == bars })
    else {
      throw fail("every input must read the same number of bars (1 or more)")
    }
    self.inputs = try envelope.inputs.map { input in
      let positions = try input.columns.map { column -> Int in
        guard let position = index[column] else {
          throw fail("input \(input.name) reads \(column), which is not a column of the bundle")
        }
        return position
      }
      guard ["float32", "float64"].contains(input.dtype) else {
        throw fail("input \(input.name): dtype \(input.dtype) is not float32 or float64")
      }
      return Input(name: input.name, columns: positions, float: input.dtype == "float32")
    }
    guard engine.outputs.contains(where: { $0.name == envelope.output }) else {
      throw fail(
        "output \(envelope.output) is not one of the graph's (\(engine.outputs.map(\.name).joined(separator: ", ")))"
      )
    }
    self.engine = engine
    self.bars = bars
    self.output = envelope.output
    self.transform = envelope.transform
    self.heads = envelope.heads?.count
    self.headHorizons = envelope.heads
    if self.heads != nil {
      guard classes == 2, envelope.transform != .softmax else {
        throw fail("heads need two classes and output_transform none or sigmoid")
      }
    }
    self.classes = classes
    self.file = file
  }

  /// The graph's output for `count` rows of `bars × width` values each (scaled as the bundle
  /// scales them; NaN passed on as the graph's missing value), as doubles.
  /// - Throws: INVALID_ARGUMENT when the graph refuses the inputs; FAILED_PRECONDITION when the
  ///   output is not a float tensor.
  func output(_ rows: [Double], count: Int, width: Int) throws -> [Double] {
    var feeds: [String: ONNXTensor] = [:]
    for input in self.inputs {
      var values: [Double] = []
      values.reserveCapacity(count * self.bars * input.columns.count)
      for r in 0 ..< count {
        for b in 0 ..< self.bars {
          let start = (r * self.bars + b) * width
          for c in input.columns { values.append(rows[start + c]) }
        }
      }
      let shape =
        self.bars == 1 ? [count, input.columns.count] : [count, self.bars, input.columns.count]
      feeds[input.name] =
        input.float
        ? ONNXTensor(shape: shape, floats: values.map(Float.init))
        : ONNXTensor(shape: shape, doubles: values)
    }
    guard let tensor = try self.engine.run(feeds)[self.output], let out = tensor.doubleValues else {
      throw VaneError(
        .failedPrecondition,
        "\(self.file): output \(self.output) is not a float tensor"
      )
    }
    return out
  }

  /// Class probabilities (`count × classes`) from the graph's `output` for `count` rows: for
  /// head `head` of a multi-head graph, that column's positive-class probability as [1 − p, p].
  /// - Throws: FAILED_PRECONDITION when the output is not `classes` probabilities per row (or
  ///   one column per head), or not finite.
  func probabilities(_ out: [Double], head: Int?, count: Int) throws -> [Double] {
    let k = self.classes
    if let heads = self.heads, let head {
      guard out.count == count * heads else {
        throw VaneError(
          .failedPrecondition,
          "\(self.file): output \(self.output) holds \(out.count) values, not \(heads) heads for \(count) rows"
        )
      }
      let probabilities = (0 ..< count).flatMap { r -> [Double] in
        let z = out[r * heads + head]
        let p = self.transform == .sigmoid ? 1 / (1 + Foundation.exp(-z)) : z
        return [1 - p, p]
      }
      if let bad = probabilities.firstIndex(where: { !$0.isFinite || $0 < -1e-6 || $0 > 1 + 1e-6 })
      {
        throw VaneError(
          .failedPrecondition,
          "row \(bad / 2): head \(head) of the imported model gives \(probabilities[bad | 1]), not a probability"
        )
      }
      return probabilities
    }
    var probabilities: [Double]
    switch self.transform {
    case .sigmoid:
      guard k == 2, out.count == count else {
        throw VaneError(
          .failedPrecondition,
          "\(self.file): output \(self.output) holds \(out.count) values, not one logit per row for two classes"
        )
      }
      probabilities = out.flatMap { z -> [Double] in
        let p = 1 / (1 + Foundation.exp(-z))
        return [1 - p, p]
      }
    case .softmax:
      guard out.count == count * k else {
        throw VaneError(
          .failedPrecondition,
          "\(self.file): output \(self.output) holds \(out.count) values, not \(k) logits per row"
        )
      }
      probabilities = []
      probabilities.reserveCapacity(count * k)
      for r in 0 ..< count {
        let row = out[(r * k) ..< ((r + 1) * k)]
        let top = row.max() ?? 0
        let e = row.map { Foundation.exp($0 - top) }
        let total = e.reduce(0, +)
        probabilities += e.map { $0 / total }
      }
    case .none:
      if out.count == count * k {
        probabilities = out
      } else if k == 2, out.count == count {
        probabilities = out.flatMap { [1 - $0, $0] }
      } else {
        throw VaneError(
          .failedPrecondition,
          "\(self.file): output \(self.output) holds \(out.count) values, not \(k) probabilities per row"
        )
      }
    }
    if let bad = probabilities.firstIndex(where: { !$0.isFinite }) {
      throw VaneError(
        .failedPrecondition,
        "row \(bad / k): the imported model's output is not finite (an input it reads is missing, or out of its range)"
      )
    }
    return probabilities
  }
}
