public import Foundation
internal import VaneCore

/// A blessing: the gatekeeper's signed statement that the bundle whose manifest hashes to
/// `manifestSHA256` passed policy `policyName` in report `reportID`. Ed25519 over `statement`,
/// the exact text the API documents (`Verdict.statement` in common.proto):
///
/// ```
/// vane-verdict-v1
/// manifest_sha256=<hex>
/// bundle_id=<id>
/// report_id=<id>
/// policy_name=<name>
/// policy_sha256=<hex>
/// sign_time=<RFC 3339 UTC, 9 fraction digits>
/// public_key_id=<first 16 hex of SHA-256 of the raw public key>
/// ```
public struct Verdict: Sendable, Equatable, Codable {
  public var manifestSHA256: String
  public var bundleID: String
  public var reportID: String
  public var policyName: String
  public var policySHA256: String
  /// Signing time, nanoseconds since the epoch.
  public var signTimeNanos: Int64
  public var publicKeyID: String
  /// "ed25519" (the only scheme).
  public var algorithm: String
  public var statement: Data
  public var signature: Data

  public static let header = "vane-verdict-v1"

  public init(
    manifestSHA256: String,
    bundleID: String,
    reportID: String,
    policyName: String,
    policySHA256: String,
    signTimeNanos: Int64,
    publicKeyID: String,
    algorithm: String,
    statement: Data,
    signature: Data
  ) {
    self.manifestSHA256 = manifestSHA256
    self.bundleID = bundleID
    self.reportID = reportID
    self.policyName = policyName
    self.policySHA256 = policySHA256
    self.signTimeNanos = signTimeNanos
    self.publicKeyID = publicKeyID
    self.algorithm = algorithm
    self.statement = statement
    self.signature = signature
  }

  /// The statement text for these claims.
  public static func statement(
    manifestSHA256: String,
    bundleID: String,
    reportID: String,
    policyName: String,
    policySHA256: String,
    signTimeNanos: Int64,
    publicKeyID: String
  ) -> Data {
    let lines = [
      Self.header, "manifest_sha256=\(manifestSHA256)", "bundle_id=\(bundleID)",
      "report_id=\(reportID)",
      "policy_name=\(policyName)", "policy_sha256=\(policySHA256)",
      "sign_time=\(Self.rfc3339(nanos: signTimeNanos))",
      "public_key_id=\(publicKeyID)",
    ]
    return Data(lines.map { $0 + "\n" }.joined().utf8)
  }

  /// `2025-01-02T03:04:05.123456789Z`.
  public static func rfc3339(nanos: Int64) -> String {
    let seconds = nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
    let fraction = nanos - seconds * 1_000_000_000
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ",
      Int(parts.tm_year) + 1900,
      Int(parts.tm_mon) + 1,
      Int(parts.tm_mday),
      Int(parts.tm_hour),
      Int(parts.tm_min),
      Int(parts.tm_sec),
      fraction
    )
  }

  /// Why a verdict does not verify.
  public enum Failure: String, Sendable, Equatable, Codable {
    /// Missing fields, unknown algorithm, unparsable statement.
    case malformed
    /// Signed by a key that is not trusted.
    case unknownKey
    /// The signature does not verify over the statement.
    case badSignature
    /// The structured fields differ from the signed statement.
    case statementMismatch
    /// The verdict covers another manifest than the subject's.
    case subjectMismatch
  }

  /// Checks the verdict: well-formed, signed by one of `trustedKeys` (raw 32-byte Ed25519
  /// public keys), fields equal to the signed statement, and, when `manifestSHA256` is given,
  /// covering that manifest.
  /// - Returns: nil when valid, else the failure and a sentence for a person.
  public func verify(
    trustedKeys: [Data],
    manifestSHA256 subject: String? = nil
  ) -> (failure: Failure, message: String)? {
    guard self.algorithm == "ed25519" else {
      return (.malformed, "unknown signature algorithm '\(self.algorithm)'")
    }
    guard self.signature.count == 64 else {
      return (.malformed, "an Ed25519 signature has 64 bytes, this one \(self.signature.count)")
    }
    guard let text = String(data: self.statement, encoding: .utf8), text.hasSuffix("\n") else {
      return (.malformed, "the statement is not '\\n'-terminated UTF-8 text")
    }
    let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(
      String.init
    )
    let keys = [
      "manifest_sha256", "bundle_id", "report_id", "policy_name", "policy_sha256", "sign_time",
      "public_key_id",
    ]
    guard lines.count == keys.count + 1, lines[0] == Self.header else {
      return (
        .malformed, "the statement must be '\(Self.header)' and \(keys.count) key=value lines"
      )
    }
    var claims: [String] = []
    for (key, line) in zip(keys, lines.dropFirst()) {
      guard line.hasPrefix(key + "=") else {
        return (.malformed, "statement line '\(line)' should start with '\(key)='")
      }
      claims.append(String(line.dropFirst(key.count + 1)))
    }
    guard let key = trustedKeys.first(where: { Self.keyID($0) == claims[6] }) else {
      return (.unknownKey, "signed by key \(claims[6]), which is not trusted here")
    }
    guard let publicKey = try? Ed25519.PublicKey(rawRepresentation: key),
      publicKey.isValidSignature(self.signature, for: self.statement)
    else { return (.badSignature, "the signature does not verify over the statement") }
    let fields = [
      self.manifestSHA256, self.bundleID, self.reportID, self.policyName, self.policySHA256,
      Self.rfc3339(nanos: self.signTimeNanos),
      self.publicKeyID,
    ]
    if let differing = zip(keys, zip(fields, claims)).first(where: { $0.1.0 != $0.1.1 }) {
      return (
        .statementMismatch,
        "\(differing.0) is '\(differing.1.0)' but the signed statement says '\(differing.1.1)'"
      )
    }
    if let subject, subject != claims[0] {
      return (
        .subjectMismatch,
        "the verdict covers manifest \(claims[0]), the subject's manifest is \(subject)"
      )
    }
    return nil
  }

  /// The id of a raw public key: the first 16 hex characters of its SHA-256.
  public static func keyID(_ publicKey: Data) -> String {
    String(SHA256.hash(data: publicKey).hexString.prefix(16))
  }
}

/// The gatekeeper's signing key, kept in its data directory: `blessing.key` (the raw private key,
/// base64, mode 0600) made on first use, and `blessing.pub` (the public key, base64) exported
/// for deploy.
public struct BlessingKey: Sendable {
  private let privateKey: Ed25519.PrivateKey

  /// Raw public key (32 bytes).
  public var publicKey: Data { self.privateKey.publicKey.rawRepresentation }

  /// Loads the key from `directory`, creating it (and the public file) on first use.
  /// - Throws: FAILED_PRECONDITION when the private key file is readable by others, or
  ///   corrupt; UNAVAILABLE when the directory cannot be written.
  public static func loadOrCreate(in directory: String) throws -> BlessingKey {
    let url = URL(fileURLWithPath: directory)
    let privateURL = url.appendingPathComponent("blessing.key"),
      publicURL = url.appendingPathComponent("blessing.pub")
    let manager = FileManager.default
    do {
      try manager.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw VaneError(.unavailable, "\(directory): cannot create the key directory", cause: error)
    }
    let key: Ed25519.PrivateKey
    if manager.fileExists(atPath: privateURL.path) {
      let attributes = try manager.attributesOfItem(atPath: privateURL.path)
      let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
      guard mode & 0o077 == 0 else {
        throw VaneError(
          .failedPrecondition,
          "\(privateURL.path): the signing key is readable by others (mode \(String(mode, radix: 8))); chmod 600 it"
        )
      }
      guard let text = try? String(contentsOf: privateURL, encoding: .utf8),
        let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
        let loaded = try? Ed25519.PrivateKey(rawRepresentation: raw)
      else {
        throw VaneError(.failedPrecondition, "\(privateURL.path): not a base64 Ed25519 private key")
      }
      key = loaded
    } else {
      key = try Ed25519.PrivateKey()
      // Created with mode 0600 before any byte is written.
      guard
        manager.createFile(
          atPath: privateURL.path,
          contents: nil,
          attributes: [.posixPermissions: 0o600]
        )
      else {
        throw VaneError(.unavailable, "\(privateURL.path): cannot create the signing key")
      }
      try Data((key.rawRepresentation.base64EncodedString() + "\n").utf8).write(to: privateURL)
    }
    try Data((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8).write(
      to: publicURL,
      options: .atomic
    )
    return BlessingKey(privateKey: key)
  }

  /// A key held in memory only (tests).
  public static func ephemeral() throws -> BlessingKey {
    BlessingKey(privateKey: try Ed25519.PrivateKey())
  }

  /// The key's id (``Verdict/keyID(_:)``).
  public var keyID: String { Verdict.keyID(self.publicKey) }

  /// Signs a verdict for a passing report on a manifest.
  public func sign(
    manifestSHA256: String,
    bundleID: String,
    reportID: String,
    policyName: String,
    policySHA256: String,
    signTimeNanos: Int64
  ) throws -> Verdict {
    for (name, value) in [
      ("manifest_sha256", manifestSHA256), ("bundle_id", bundleID), ("report_id", reportID),
      ("policy_name", policyName),
    ]
    where value.contains("\n") {
      throw VaneError.invalidArgument(
        field: name,
        "must not contain a line break (it is a line of the signed statement)"
      )
    }
    let statement = Verdict.statement(
      manifestSHA256: manifestSHA256,
      bundleID: bundleID,
      reportID: reportID,
      policyName: policyName,
      policySHA256: policySHA256,
      signTimeNanos: signTimeNanos,
      publicKeyID: self.keyID
    )
    return Verdict(
      manifestSHA256: manifestSHA256,
      bundleID: bundleID,
      reportID: reportID,
      policyName: policyName,
      policySHA256: policySHA256,
      signTimeNanos: signTimeNanos,
      publicKeyID: self.keyID,
      algorithm: "ed25519",
      statement: statement,
      signature: try self.privateKey.signature(for: statement)
    )
  }

  /// Reads an exported public key file (`blessing.pub`).
  /// - Throws: FAILED_PRECONDITION naming the file when it is not a base64 32-byte key.
  public static func publicKey(fromFile path: String) throws -> Data {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
      let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
      raw.count == 32
    else { throw VaneError(.failedPrecondition, "\(path): not a base64 Ed25519 public key") }
    return raw
  }
}
