import ArgumentParser
import VaneBundle
import VaneCore
import VaneModels
import VaneONNXRuntime
import VaneServing
internal import Foundation

/// `vane model inspect|run FILE`: any ONNX model, on Vane's own engine, without a service.
struct ModelFileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "model",
    abstract:
      "Inspect or run a model file (ONNX, XGBoost JSON, LightGBM text) on Vane's own engines (no service needed).",
    discussion: """
      Exit codes: 0 done, 1 the model does not run (an unsupported op or type, a refused input), \
      2 a file that cannot be read or parsed, 64 bad arguments.
      """,
    subcommands: [Inspect.self, Run.self]
  )

  typealias FileKind = ModelImport.Format

  /// A model file's format by its content.
  static func kind(_ path: String) throws -> FileKind {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw Output.fileError(path, "cannot be read")
    }
    defer { try? handle.close() }
    return ModelImport.Format.detect((try? handle.read(upToCount: 4096)) ?? Data())
  }

  /// Reads an XGBoost JSON or LightGBM text model, or exits 2 naming what is wrong.
  static func loadTrees(_ path: String, _ kind: FileKind) throws -> TreeEnsemble {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw Output.fileError(path, "cannot be read")
    }
    guard data.count <= 1 << 30 else {
      throw Output.fileError(path, "\(data.count) bytes is over the 1 GiB limit")
    }
    do {
      return kind == .lightgbm
        ? try TreeEnsemble.lightgbm(text: data) : try TreeEnsemble.xgboost(file: data)
    } catch let error as VaneError {
      throw Output.fileError(path, error.message)
    }
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
    let shape =
      info.shape.map { "[" + $0.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]" }
      ?? "(any shape)"
    return "\(info.name)  \(info.elementType?.description ?? "(not a tensor)")  \(shape)"
  }

  struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "What a model file takes and gives: inputs, outputs, opsets and op counts (ONNX), or objective, trees and features (XGBoost, LightGBM)."
    )

    @Argument(
      help:
        "The model file (.onnx, XGBoost .json, LightGBM .txt), or a Vane bundle (.tar.gz, .tar or an unpacked directory)."
    )
    var file: String

    func run() throws {
      if try Self.isBundle(self.file) {
        try Self.inspectBundle(self.file)
        return
      }
      let kind = try ModelFileCommand.kind(self.file)
      if kind != .onnx {
        Self.describe(try ModelFileCommand.loadTrees(self.file, kind), file: self.file)
        return
      }
      let model = try ModelFileCommand.load(self.file)
      Output.line(
        "\(self.file): ONNX IR \(model.irVersion)\(model.producer.isEmpty ? "" : ", made by \(model.producer)")"
      )
      Output.line(
        "opsets: "
          + model.opsets.sorted { $0.key < $1.key }.map {
            "\($0.key.isEmpty ? "ai.onnx" : $0.key) \($0.value)"
          }.joined(separator: ", ")
      )
      Output.line("inputs:")
      for input in model.inputs { Output.line("  " + ModelFileCommand.describe(input)) }
      Output.line("outputs:")
      for output in model.outputs { Output.line("  " + ModelFileCommand.describe(output)) }
      Output.line("ops (\(model.operatorCounts.values.reduce(0, +)) nodes):")
      for (op, count) in model.operatorCounts.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }
      ) { Output.line("  \(op)  \(count)") }
    }

    /// A directory, a gzip stream or a ustar archive: a bundle, not a model file.
    static func isBundle(_ path: String) throws -> Bool {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw Output.fileError(path, "does not exist")
      }
      if isDirectory.boolValue { return true }
      guard let handle = FileHandle(forReadingAtPath: path) else {
        throw Output.fileError(path, "cannot be read")
      }
      defer { try? handle.close() }
      let head = [UInt8]((try? handle.read(upToCount: 512)) ?? Data())
      return Gzip.isCompressed(head)
        || (head.count == 512 && String(decoding: head[257 ..< 262], as: UTF8.self) == "ustar")
    }

    /// Opens and verifies a bundle (every file's size and SHA-256, within the archive limits)
    /// and prints what it holds; exits 2 naming what is wrong.
    static func inspectBundle(_ path: String) throws {
      let absolute =
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
      let bundle: ModelBundle
      do { bundle = try ModelBundle.open(path: absolute) } catch let error as VaneError {
        throw Output.fileError(path, error.message)
      }
      let manifest = bundle.manifest
      Output.line(
        "\(path): bundle \(manifest.id), verified (manifest sha256 \(bundle.manifestSHA256))"
      )
      Output.line(
        "task: \(manifest.task.kind) \(manifest.task.classes.joined(separator: "/")) at horizons \(manifest.task.horizons.map(String.init).joined(separator: ", ")); \(manifest.symbols.joined(separator: ",")) \(manifest.interval)"
      )
      Output.line(
        "features: \(manifest.featureSet.id) (\(manifest.featureSet.columns.count) columns); missing values: \(manifest.missingValues ?? "exclude")"
      )
      Output.line("models:")
      for model in manifest.models {
        let horizons =
          model.horizons.map { " h" + $0.map(String.init).joined(separator: ",") } ?? ""
        Output.line(
          "  \(model.name)  \(model.kind.rawValue)  \(model.role.rawValue)\(horizons)  \(model.file)"
        )
      }
      Output.line(
        "files (\(manifest.files.count), \(manifest.files.reduce(0) { $0 + $1.size }) bytes):"
      )
      for file in manifest.files { Output.line("  \(file.path)  \(file.size)") }
    }

    static func describe(_ trees: TreeEnsemble, file: String) {
      Output.line("\(file): \(trees.format.rawValue), objective \(trees.objectiveName)")
      let iterations = trees.trees.count / max(1, trees.groups)
      Output.line(
        "features: \(trees.featureCount)  classes: \(trees.classCount == 0 ? "none (margin only)" : "\(trees.classCount)")  trees: \(trees.trees.count) (\(iterations) iterations × \(trees.groups))"
          + (trees.averageOutput ? "  averaged (random forest)" : "")
      )
      var splits = 0, categorical = 0, leaves = 0, depth = 0
      for tree in trees.trees {
        for node in tree.left.indices {
          if tree.isLeaf(node) {
            leaves += 1
          } else {
            splits += 1
            if case .categories = tree.split[node] { categorical += 1 }
          }
        }
        // Pre-order numbering: a child's depth is its parent's plus one.
        var depths = [Int](repeating: 0, count: tree.left.count)
        for node in tree.left.indices where !tree.isLeaf(node) {
          depths[tree.left[node]] = depths[node] + 1
          depths[tree.right[node]] = depths[node] + 1
        }
        depth = max(depth, depths.max() ?? 0)
      }
      Output.line(
        "splits: \(splits) (\(categorical) categorical)  leaves: \(leaves)  deepest leaf: \(depth)"
      )
      if !trees.featureNames.isEmpty {
        let shown = trees.featureNames.prefix(20).joined(separator: " ")
        Output.line(
          "feature names: \(shown)\(trees.featureNames.count > 20 ? " … (\(trees.featureNames.count))" : "")"
        )
      }
      Output.line("inputs:\n  (any name)  float32 or float64  [?, \(trees.featureCount)]")
      let margin = trees.groups == 1 ? "[?]" : "[?, \(trees.groups)]"
      Output.line(
        "outputs:\n  margin  \(trees.format == .xgboost ? "float32" : "float64")  \(margin)"
      )
      if trees.classCount > 0 { Output.line("  probabilities  float64  [?, \(trees.classCount)]") }
    }
  }

  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run an ONNX model on inputs from JSON; print or write its outputs as JSON.",
      discussion: """
        IN.json maps each input name to {"dtype": "float32", "shape": [rows, columns], "data": [...]} \
        (data row-major and flattened; NaN and infinities as "NaN", "Infinity", "-Infinity"). \
        The outputs use the same layout per output name.
        """
    )

    @Argument(help: "The .onnx file.")
    var file: String

    @Option(name: .customLong("inputs"), help: "JSON of the inputs.")
    var inputs: String

    @Option(name: .customLong("out"), help: "Write the outputs here instead of standard output.")
    var out: String?

    func run() throws {
      let kind = try ModelFileCommand.kind(self.file)
      let model = kind == .onnx ? try ModelFileCommand.load(self.file) : nil
      let trees = kind != .onnx ? try ModelFileCommand.loadTrees(self.file, kind) : nil
      guard let data = FileManager.default.contents(atPath: self.inputs) else {
        throw Output.fileError(self.inputs, "cannot be read")
      }
      let tensors: [String: ONNXTensor]
      do { tensors = try ONNXTensorJSON.decode(data, limits: model?.limits ?? .default) } catch let
        error as VaneError
      {
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
        do { try encoded.write(to: URL(fileURLWithPath: out), options: .atomic) } catch {
          throw Output.fileError(out, "cannot be written: \(error.localizedDescription)")
        }
      } else {
        FileHandle.standardOutput.write(encoded + Data("\n".utf8))
      }
    }

    /// A tree model on its one `[rows, features]` input: `margin` (raw scores, `[rows]` for a
    /// binary model; float32 for XGBoost, whose sums are in float, float64 for LightGBM) and,
    /// unless the objective is a regression or ranking one, `probabilities` (`[rows, classes]`).
    static func runTrees(
      _ trees: TreeEnsemble,
      _ inputs: [String: ONNXTensor]
    ) throws -> [String: ONNXTensor] {
      guard inputs.count == 1, let (name, x) = inputs.first else {
        throw VaneError(
          .invalidArgument,
          "a tree model takes one input, [rows, features]; got \(inputs.count)"
        )
      }
      guard x.rank == 2, x.shape[1] == trees.featureCount, let values = x.doubleValues else {
        throw VaneError(
          .invalidArgument,
          "input '\(name)': a float [rows, \(trees.featureCount)] tensor is needed, not \(x.elementType) \(x.shape)"
        )
      }
      let rows = x.shape[0]
      let margins = trees.margins(batch: values, rows: rows)
      let probabilities = trees.probabilities(margins: margins, rows: rows)
      let shape = trees.groups == 1 ? [rows] : [rows, trees.groups]
      var outputs = [
        "margin": trees.format == .xgboost
          ? ONNXTensor(shape: shape, floats: margins.map(Float.init))
          : ONNXTensor(shape: shape, doubles: margins)
      ]
      if trees.classCount > 0 {
        outputs["probabilities"] = ONNXTensor(
          shape: [rows, trees.classCount],
          doubles: probabilities
        )
      }
      return outputs
    }
  }
}
