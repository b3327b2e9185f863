internal import Foundation
internal import VaneBundle
internal import VaneCore
internal import VaneProto
internal import VaneServing

/// An ImportModel request as the import library's inputs, and its result as the response: the
/// one place the RPC's wire types meet ``ModelImport``.
struct ModelImportRequest {
  var model: Data
  var fileName: String
  var mapping: ModelImport.Mapping
  var extras: ModelImport.Extras
  var validateOnly: Bool

  /// What an import gives back.
  struct Result {
    var prepared: ModelImport.Prepared
    var sha256: String
    var path: String
  }

  /// - Throws: INVALID_ARGUMENT naming the field (model, model_path, mapping, …); NOT_FOUND
  ///   for a model_path with no file.
  init(_ request: Vane_V1_ImportModelRequest) throws {
    switch (request.model.isEmpty, request.modelPath.isEmpty) {
    case (false, true):
      self.model = request.model
    case (true, false):
      let path = request.modelPath
      guard path.hasPrefix("/") else {
        throw VaneError.invalidArgument(
          field: "model_path",
          "'\(path.prefix(200))' must be absolute"
        )
      }
      let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?
        .intValue
      guard let size else {
        throw VaneError(.notFound, "model_path: \(path.prefix(200)) does not exist")
      }
      guard size <= ModelImport.maximumModelBytes else {
        throw VaneError.invalidArgument(
          field: "model_path",
          "\(size) bytes; at most \(ModelImport.maximumModelBytes)"
        )
      }
      guard let data = FileManager.default.contents(atPath: path) else {
        throw VaneError(.notFound, "model_path: \(path.prefix(200)) cannot be read")
      }
      self.model = data
    case (true, true):
      throw VaneError.invalidArgument(field: "model", "give the model's bytes or a model_path")
    case (false, false):
      throw VaneError.invalidArgument(field: "model_path", "give model or model_path, not both")
    }
    self.fileName =
      request.modelFileName.isEmpty
      ? (request.modelPath.isEmpty ? "model" : request.modelPath) : request.modelFileName
    guard !request.mapping.isEmpty else {
      throw VaneError.invalidArgument(field: "mapping", "is required")
    }
    self.mapping = try ModelImport.Mapping.parse(request.mapping, source: "mapping")
    func optional(_ text: String) -> Data? { text.isEmpty ? nil : Data(text.utf8) }
    self.extras = ModelImport.Extras(
      scaler: optional(request.scaler),
      calibration: optional(request.calibration),
      outOfFold: optional(request.outOfFold)
    )
    self.validateOnly = request.validateOnly
  }

  /// Prepares the bundle and writes it to `bundleDirectory/ID.tar.gz` (with validate_only, to
  /// a temporary place it is checked in and removed from).
  /// - Throws: ALREADY_EXISTS when a bundle of that id is there; what the import throws.
  func run(bundleDirectory: String) throws -> Result {
    let prepared = try ModelImport.prepare(
      model: self.model,
      fileName: self.fileName,
      mapping: self.mapping,
      extras: self.extras
    )
    if self.validateOnly {
      let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
        "vane-import-\(UUID().uuidString).tar.gz"
      ).path
      defer { try? FileManager.default.removeItem(atPath: scratch) }
      let written = try ModelImport.write(prepared, to: scratch)
      return Result(prepared: prepared, sha256: written.sha256, path: "")
    }
    let path = "\(bundleDirectory)/\(prepared.manifest.id).tar.gz"
    guard !FileManager.default.fileExists(atPath: path) else {
      throw VaneError(
        .alreadyExists,
        "a bundle with id \(prepared.manifest.id) exists (\(path)): set id in the mapping"
      )
    }
    do {
      try FileManager.default.createDirectory(
        atPath: bundleDirectory,
        withIntermediateDirectories: true
      )
    } catch {
      throw VaneError(
        .unavailable,
        "\(bundleDirectory): cannot create the bundle directory",
        cause: error
      )
    }
    let written = try ModelImport.write(prepared, to: path)
    return Result(prepared: prepared, sha256: written.sha256, path: path)
  }
}

extension Vane_V1_ImportModelResponse {
  init(_ result: ModelImportRequest.Result) {
    self.init()
    self.bundle = .with {
      $0.bundleID = result.prepared.manifest.id
      $0.manifestSha256 = result.sha256
      $0.path = result.path
    }
    self.format = result.prepared.format.rawValue
    self.columns = result.prepared.columns
    self.blessable = result.prepared.blessable
    self.notes = result.prepared.notes
  }
}
