import ArgumentParser
import VaneCore
import VaneServing
internal import Foundation

/// `vane import MODEL --features MAPPING.yaml --out BUNDLE`: a model trained elsewhere as a
/// Vane bundle, locally (the trainer's ImportModel RPC does the same on the server).
struct ImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract:
      "Wrap a model trained elsewhere (ONNX, LightGBM text, XGBoost JSON) into a Vane bundle the predictor serves.",
    discussion: """
      The mapping (YAML or JSON) says what the model predicts and which feature-set column each \
      of its inputs reads:

        symbols: [BTCUSDT]
        interval: 1h
        classes: [DOWN, UP]
        horizon: 1                           # or horizons: [1, 4, 12], one output column each
        columns: [rsi_14, natr_14, ...]      # or inputs: {input_name: [columns...]}
        output_transform: none               # ONNX logits: softmax or sigmoid

      The model is loaded, checked against the mapping and run once before the bundle is \
      written; the bundle is opened and answers as the predictor would load it. Without --oof \
      the bundle can be served but the gatekeeper cannot bless it.
      Exit codes: 0 written, 1 refused (the message names the field: model, mapping, scaler, \
      calibration, out_of_fold), 2 a file that cannot be read, 64 bad arguments.
      """
  )

  @Argument(help: "The model file (.onnx, LightGBM .txt, XGBoost .json).")
  var model: String

  @Option(
    name: .customLong("features"),
    help: "The mapping of the model's inputs to feature columns (YAML or JSON)."
  )
  var mapping: String

  @Option(
    help: "A scaler JSON ({method, columns, center, scale, fittedRows}) applied before the model."
  )
  var scaler: String?

  @Option(help: "A calibration JSON ({\"method\": \"temperature\", \"parameters\": {...}}).")
  var calibration: String?

  @Option(
    name: .customLong("oof"),
    help:
      "Out-of-fold predictions CSV (label, one column per class, optional fold): makes the bundle blessable."
  )
  var outOfFold: String?

  @Option(help: "Where to write the bundle (.tar.gz).")
  var out: String

  @Flag(help: "Replace a file already at --out.")
  var force = false

  func run() throws {
    func read(_ path: String?) throws -> Data? {
      guard let path else { return nil }
      guard let data = FileManager.default.contents(atPath: path) else {
        throw Output.fileError(path, "cannot be read")
      }
      return data
    }
    let size =
      ((try? FileManager.default.attributesOfItem(atPath: self.model))?[.size] as? NSNumber)?
      .intValue ?? 0
    guard size <= ModelImport.maximumModelBytes else {
      throw Output.fileError(self.model, "\(size) bytes; at most \(ModelImport.maximumModelBytes)")
    }
    guard let model = try read(self.model), let mappingData = try read(self.mapping) else { return }
    guard self.force || !FileManager.default.fileExists(atPath: self.out) else {
      FileHandle.standardError.write(
        Data("ERROR: \(self.out) exists (use --force to replace it)\n".utf8)
      )
      throw ExitCode(1)
    }
    let out = URL(fileURLWithPath: self.out).standardizedFileURL.path
    do {
      let mapping = try ModelImport.Mapping.parse(
        String(decoding: mappingData, as: UTF8.self),
        source: self.mapping
      )
      let extras = ModelImport.Extras(
        scaler: try read(self.scaler),
        calibration: try read(self.calibration),
        outOfFold: try read(self.outOfFold)
      )
      let prepared = try ModelImport.prepare(
        model: model,
        fileName: self.model,
        mapping: mapping,
        extras: extras
      )
      let written = try ModelImport.write(prepared, to: out)
      Output.line("wrote \(out)")
      Output.line("bundle \(written.manifest.id)  manifest sha256 \(written.sha256)")
      Output.line(
        "model: \(prepared.format.rawValue), \(prepared.columns.count) feature columns of \(prepared.manifest.featureSet.id): \(prepared.columns.prefix(8).joined(separator: ", "))\(prepared.columns.count > 8 ? ", …" : "")"
      )
      Output.line(
        "task: \(prepared.manifest.task.classes.joined(separator: "/")) at \(mapping.horizons.map(String.init).joined(separator: ", ")) bar(s), \(mapping.symbols.joined(separator: ", ")) \(mapping.interval)"
      )
      Output.line(
        "blessable: \(prepared.blessable ? "yes (out-of-fold predictions included)" : "no")"
      )
      for note in prepared.notes { Output.line("note: \(note)") }
    } catch let error as VaneError {
      FileHandle.standardError.write(Data("ERROR: \(error.message)\n".utf8))
      throw ExitCode(error.code == .unavailable ? 2 : 1)
    }
  }
}
