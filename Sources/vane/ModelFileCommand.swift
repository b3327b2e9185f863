import ArgumentParser
import VaneCore
import VaneModels
import VaneONNXRuntime
internal import Foundation

/// `vane model inspect|run FILE`: any ONNX model, on Vane's own engine, without a service.
struct ModelFileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "model",
    abstract: "Inspect or run an ONNX model file on Vane's engine (no service needed).",
    discussion: """
      Exit codes: 0 done, 1 the model does not run (an unsupported op or type, a refused input), \
      2 a file that cannot be read or parsed, 64 bad arguments.
      """,
    subcommands: [Inspect.self, Run.self]
  )

  /// A model file by its content: an XGBoost JSON model, LightGBM's text format (not read yet),
  /// or else ONNX.
  enum FileKind { case onnx, xgboost, lightgbm }

  static func kind(_ path: String) throws -> FileKind {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw Output.fileError(path, "cannot be read") }
    defer { try? handle.close() }
    let head = String(decoding: (try? handle.read(upToCount: 4096)) ?? Data(), as: UTF8.self)
    let trimmed = head.drop { $0.isWhitespace }
    if trimmed.hasPrefix("{") && head.contains("\"learner\"") { return .xgboost }
    if trimmed.hasPrefix("tree\n") || trimmed.hasPrefix("version=v") { return .lightgbm }
    return .onnx
  }

  /// Reads an XGBoost JSON model, or exits 2 naming what is wrong.
  static func loadTrees(_ path: String) throws -> TreeEnsemble {
    guard let data = FileManager.default.contents(atPath: path) else { throw Output.fileError(path, "cannot be read") }
    guard data.count <= 1 << 30 else { throw Output.fileError(path, "\(data.count) bytes is over the 1 GiB limit") }
    do { return try TreeEnsemble.xgboost(file: data) } catch let error as VaneError { throw Output.fileError(path, error.message) }
  }

  static func refuseLightGBM(_ path: String) -> ExitCode {
    FileHandle.standardError.write(Data("ERROR: \(path): LightGBM text models are not read yet (ONNX and XGBoost JSON are)\n".utf8))
    return ExitCode(1)
  }

  /// Loads the model, or exits 2 (unreadable, broken) or 1 (valid but unsupported).
  static func load(_ path: String) throws -> ONNXModel {
    do {
      return try ONNXModel(contentsOf: URL(fileURLWithPath: path))
    } catch let error as VaneError {
      if error.isUnsupportedONNX {
        FileHandle.standardError.write(Data("ERROR: \(path): \(error.message)\n".utf8))
        throw ExitCode(1)
      }
      throw Output.fileError(path, error.message)
    }
  }

  static func describe(_ info: ONNXModel.ValueInfo) -> String {
    let shape = info.shape.map { "[" + $0.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]" } ?? "(any shape)"
    return "\(info.name)  \(info.elementType?.description ?? "(not a tensor)")  \(shape)"
  }

  struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inputs, outputs, opsets and op counts of an ONNX model.")

    @Argument(help: "The .onnx file.")
    var file: String

    func run() throws {
      switch try ModelFileCommand.kind(self.file) {
      case .lightgbm: throw ModelFileCommand.refuseLightGBM(self.file)
      case .xgboost:
        let trees = try ModelFileCommand.loadTrees(self.file)
        Output.line("\(self.file): XGBoost JSON, objective \(trees.objective.rawValue)")
        Output.line("features: \(trees.featureCount)  classes: \(trees.objective == .binaryLogistic ? 2 : trees.groups)  trees: \(trees.trees.count)")
        Output.line("inputs:\n  (any name)  float32 or float64  [?, \(trees.featureCount)]")
        Output.line("outputs:\n  margin  float32  \(trees.groups == 1 ? "[?]" : "[?, \(trees.groups)]")\n  probabilities  float64  [?, \(trees.objective == .binaryLogistic ? 2 : trees.groups)]")
        return
      case .onnx: break
      }
      let model = try ModelFileCommand.load(self.file)
      Output.line("\(self.file): ONNX IR \(model.irVersion)\(model.producer.isEmpty ? "" : ", made by \(model.producer)")")
      Output.line("opsets: " + model.opsets.sorted { $0.key < $1.key }.map { "\($0.key.isEmpty ? "ai.onnx" : $0.key) \($0.value)" }.joined(separator: ", "))
      Output.line("inputs:")
      for input in model.inputs { Output.line("  " + ModelFileCommand.describe(input)) }
      Output.line("outputs:")
      for output in model.outputs { Output.line("  " + ModelFileCommand.describe(output)) }
      Output.line("ops (\(model.operatorCounts.values.reduce(0, +)) nodes):")
      for (op, count) in model.operatorCounts.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) { Output.line("  \(op)  \(count)") }
    }
  }

  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run an ONNX model on inputs from JSON; print or write its outputs as JSON.",
      discussion: """
        IN.json maps each input name to {"dtype": "float32", "shape": [rows, columns], "data": [...]} \
        (data row-major and flattened; NaN and infinities as "NaN", "Infinity", "-Infinity"). \
        The outputs use the same layout per output name.
        """)

    @Argument(help: "The .onnx file.")
    var file: String

    @Option(name: .customLong("inputs"), help: "JSON of the inputs.")
    var inputs: String

    @Option(name: .customLong("out"), help: "Write the outputs here instead of standard output.")
    var out: String?

    func run() throws {
      let kind = try ModelFileCommand.kind(self.file)
      if kind == .lightgbm { throw ModelFileCommand.refuseLightGBM(self.file) }
      let model = kind == .onnx ? try ModelFileCommand.load(self.file) : nil
      let trees = kind == .xgboost ? try ModelFileCommand.loadTrees(self.file) : nil
      guard let data = FileManager.default.contents(atPath: self.inputs) else { throw Output.fileError(self.inputs, "cannot be read") }
      let tensors: [String: ONNXTensor]
      do { tensors = try ONNXTensorJSON.decode(data, limits: model?.limits ?? .default) } catch let error as VaneError {
        throw Output.fileError(self.inputs, error.message)
      }
      let outputs: [String: ONNXTensor]
      do {
        if let model {
          outputs = try model.run(tensors)
        } else {
          outputs = try Self.runTrees(trees!, tensors)
        }
      } catch let error as VaneError {
        FileHandle.standardError.write(Data("ERROR: \(error.message)\n".utf8))
        throw ExitCode(1)
      }
      let encoded = try ONNXTensorJSON.encode(outputs)
      if let out = self.out {
        do { try encoded.write(to: URL(fileURLWithPath: out), options: .atomic) } catch { throw Output.fileError(out, "cannot be written: \(error.localizedDescription)") }
      } else {
        FileHandle.standardOutput.write(encoded + Data("\n".utf8))
      }
    }

    /// A tree model on its one `[rows, features]` input: `margin` (raw scores, `[rows]` for a
    /// binary model) and `probabilities` (`[rows, classes]`).
    static func runTrees(_ trees: TreeEnsemble, _ inputs: [String: ONNXTensor]) throws -> [String: ONNXTensor] {
      guard inputs.count == 1, let (name, x) = inputs.first else {
        throw VaneError(.invalidArgument, "a tree model takes one input, [rows, features]; got \(inputs.count)")
      }
      guard x.rank == 2, x.shape[1] == trees.featureCount, let values = x.doubleValues else {
        throw VaneError(.invalidArgument, "input '\(name)': a float [rows, \(trees.featureCount)] tensor is needed, not \(x.elementType) \(x.shape)")
      }
      let rows = x.shape[0]
      let margins = trees.margins(batch: values, rows: rows)
      let probabilities = values.withUnsafeBufferPointer { all in
        (0..<rows).flatMap { r in trees.probabilities(UnsafeBufferPointer(rebasing: all[(r * trees.featureCount)..<((r + 1) * trees.featureCount)])) }
      }
      let classes = trees.objective == .binaryLogistic ? 2 : trees.groups
      return [
        "margin": ONNXTensor(shape: trees.groups == 1 ? [rows] : [rows, trees.groups], floats: margins),
        "probabilities": ONNXTensor(shape: [rows, classes], doubles: probabilities),
      ]
    }
  }
}
