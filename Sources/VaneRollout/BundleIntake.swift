public import Foundation
public import VaneBundle
internal import VaneCore

/// What a bundle must be before deploy lets it near traffic: a bundle whose manifest and every
/// file hash verify (VaneBundle's hostile-input reader), blessed by a gatekeeper key deploy
/// trusts, the blessing covering this very manifest, and a feature set the feature service
/// serves. Verified bundles are unpacked into a content-addressed artifact store
/// (`<root>/<manifest sha256>/`), which the predictor reads by path.
public struct BundleIntake: Sendable {
  /// Raw Ed25519 public keys whose verdicts are trusted, besides the directory's.
  public let trustedKeys: [Data]
  /// Directory of trusted `*.pub` keys, read at every verification (so a key exported after
  /// deploy started, or a rotation, is seen without a restart); nil: only `trustedKeys`.
  public let trustedKeysDirectory: String?
  /// Where verified bundles are unpacked.
  public let artifactRoot: String

  public init(trustedKeys: [Data] = [], trustedKeysDirectory: String? = nil, artifactRoot: String) {
    self.trustedKeys = trustedKeys
    self.trustedKeysDirectory = trustedKeysDirectory
    self.artifactRoot = artifactRoot
  }

  /// The keys trusted now.
  public func keys() throws -> [Data] {
    guard let directory = self.trustedKeysDirectory else { return self.trustedKeys }
    return self.trustedKeys
      + (try Self.trustedKeys(in: directory)).filter { !self.trustedKeys.contains($0) }
  }

  /// Every `*.pub` in `directory` (the gatekeeper's `blessing.pub` and older keys, or its data
  /// directory as it is, whose `trusted_keys/` is read too).
  /// - Throws: FAILED_PRECONDITION naming a file that is not a key; NOT_FOUND for no directory.
  public static func trustedKeys(in directory: String) throws -> [Data] {
    let manager = FileManager.default
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
    else {
      throw VaneError(
        .failedPrecondition,
        "the trusted keys directory \(directory) does not exist (it holds the gatekeeper's blessing.pub)"
      )
    }
    var keys: [Data] = []
    for folder in [directory, directory + "/trusted_keys"] {
      let files = ((try? manager.contentsOfDirectory(atPath: folder)) ?? []).filter {
        $0.hasSuffix(".pub")
      }.sorted()
      for file in files {
        let key = try BlessingKey.publicKey(fromFile: folder + "/" + file)
        if !keys.contains(key) { keys.append(key) }
      }
    }
    return keys
  }

  /// Opens and verifies a bundle and its verdict.
  /// - Parameter featureSetKnown: whether the feature service serves a feature set hash (nil:
  ///   not checked).
  /// - Throws: INVALID_ARGUMENT (relative path), NOT_FOUND (no file), FAILED_PRECONDITION with
  ///   the reason: a bundle that does not verify (tampered, unsafe archive), no verdict, a
  ///   verdict by an unknown key or with a bad signature, a verdict for another manifest, a
  ///   feature set the feature service does not serve.
  public func verify(
    path: String,
    verdict: Verdict?,
    featureSetKnown: ((String) async throws -> Bool)? = nil
  ) async throws -> ModelBundle {
    guard path.hasPrefix("/") else {
      throw VaneError.invalidArgument(
        field: "bundle_path",
        "'\(path)' must be an absolute path on the deploy host"
      )
    }
    let bundle = try await BlockingPool.shared.run { try ModelBundle.open(path: path) }
    guard let verdict else {
      throw VaneError(
        .failedPrecondition,
        "bundle \(bundle.manifest.id) is not blessed: no blessing in the request and no \(ModelBundle.verdictPath(for: path))"
      )
    }
    let keys = try self.keys()
    guard !keys.isEmpty else {
      throw VaneError(
        .failedPrecondition,
        "deploy trusts no key yet: put the gatekeeper's blessing.pub in \(self.trustedKeysDirectory ?? "the trusted keys directory")"
      )
    }
    if let (failure, message) = verdict.verify(
      trustedKeys: keys,
      manifestSHA256: bundle.manifestSHA256
    ) {
      let what: String
      switch failure {
      case .unknownKey: what = "signed by an unknown key"
      case .badSignature: what = "its signature does not verify"
      case .subjectMismatch: what = "the blessing is for another bundle"
      case .statementMismatch, .malformed: what = "the blessing is malformed"
      }
      throw VaneError(.failedPrecondition, "bundle \(bundle.manifest.id): \(what): \(message)")
    }
    if let featureSetKnown, try await !featureSetKnown(bundle.manifest.featureSet.sha256) {
      throw VaneError(
        .failedPrecondition,
        "bundle \(bundle.manifest.id): its feature set \(bundle.manifest.featureSet.id) (\(bundle.manifest.featureSet.sha256)) is not one the feature service serves"
      )
    }
    return bundle
  }

  /// Reads the verdict file beside a bundle, decoded by `decode` (the API's JSON); nil when
  /// there is none. - Throws: FAILED_PRECONDITION for a file that is not a verdict.
  public static func verdictFile(
    for path: String,
    decode: (Data) throws -> Verdict
  ) throws -> Verdict? {
    let file = ModelBundle.verdictPath(for: path)
    guard let handle = FileHandle(forReadingAtPath: file) else { return nil }
    defer { try? handle.close() }
    let data = handle.readData(ofLength: 1 << 20)
    do {
      return try decode(data)
    } catch {
      throw VaneError(.failedPrecondition, "\(file) is not a verdict: \(error)", cause: error)
    }
  }

  /// Unpacks a verified bundle into the artifact store; the same bundle twice is one directory.
  /// - Returns: the directory the predictor loads.
  public func stage(_ bundle: ModelBundle) async throws -> String {
    let directory = self.artifactRoot + "/" + bundle.manifestSHA256
    try FileManager.default.createDirectory(
      atPath: self.artifactRoot,
      withIntermediateDirectories: true
    )
    try await BlockingPool.shared.run { try bundle.unpack(to: directory) }
    return directory
  }
}
