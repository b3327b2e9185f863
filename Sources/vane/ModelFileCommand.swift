import ArgumentParser
import VaneCore
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
      let model = try ModelFileCommand.load(self.file)
      guard let data = FileManager.default.contents(atPath: self.inputs) else { throw Output.fileError(self.inputs, "cannot be read") }
      let tensors: [String: ONNXTensor]
      do { tensors = try ONNXTensorJSON.decode(data, limits: model.limits) } catch let error as VaneError {
        throw Output.fileError(self.inputs, error.message)
      }
      let outputs: [String: ONNXTensor]
      do { outputs = try model.run(tensors) } catch let error as VaneError {
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
  }
}
