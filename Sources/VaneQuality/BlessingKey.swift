internal import Crypto
public import Foundation
internal import VaneCore

/// A gatekeeper's signature on a bundle that passed its gates: Ed25519 over the bundle's
/// manifest hash, the policy and the time, so deploy can check that exactly this manifest was
/// judged and passed.
public struct Blessing: Sendable, Equatable, Codable {
  /// SHA-256 (hex) of the bundle manifest that was judged.
  public var manifestSHA256: String
  public var policy: String
  /// When the verdict was signed (ms since the epoch).
  public var signedAtMs: Int64
  /// Ed25519 signature (base64) over ``signedMessage``.
  public var signature: String
  /// The signer's public key (base64, raw 32 bytes), for finding the right trusted key.
  public var publicKey: String

  /// The bytes signed: a domain-separated, line-based text.
  public var signedMessage: Data {
    Data("vane.blessing.v1\nmanifest_sha256=\(self.manifestSHA256)\npolicy=\(self.policy)\nsigned_at_ms=\(self.signedAtMs)\n".utf8)
  }

  /// Whether `publicKey` (raw 32 bytes) signed this blessing for a manifest with this hash.
  /// False on any difference: another manifest, policy, time, key or a bad signature.
  public func verify(manifestSHA256: String, trustedPublicKey: Data) -> Bool {
    guard manifestSHA256 == self.manifestSHA256,
          Data(base64Encoded: self.publicKey) == trustedPublicKey,
          let key = try? Curve25519.Signing.PublicKey(rawRepresentation: trustedPublicKey),
          let signature = Data(base64Encoded: self.signature)
    else { return false }
    return key.isValidSignature(signature, for: self.signedMessage)
  }
}

/// The gatekeeper's signing key, kept in its data directory: `blessing.key` (the raw private key,
/// base64, mode 0600) made on first use, and `blessing.pub` (the public key, base64) exported
/// for deploy.
public struct BlessingKey: Sendable {
  private let privateKey: Curve25519.Signing.PrivateKey

  /// Raw public key (32 bytes).
  public var publicKey: Data { self.privateKey.publicKey.rawRepresentation }

  /// Loads the key from `directory`, creating it (and the public file) on first use.
  /// - Throws: FAILED_PRECONDITION when the private key file is readable by others, or
  ///   corrupt; UNAVAILABLE when the directory cannot be written.
  public static func loadOrCreate(in directory: String) throws -> BlessingKey {
    let url = URL(fileURLWithPath: directory)
    let privateURL = url.appendingPathComponent("blessing.key"), publicURL = url.appendingPathComponent("blessing.pub")
    let manager = FileManager.default
    do {
      try manager.createDirectory(at: url, withIntermediateDirectories: true)
    } catch {
      throw VaneError(.unavailable, "\(directory): cannot create the key directory", cause: error)
    }
    let key: Curve25519.Signing.PrivateKey
    if manager.fileExists(atPath: privateURL.path) {
      let attributes = try manager.attributesOfItem(atPath: privateURL.path)
      let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
      guard mode & 0o077 == 0 else {
        throw VaneError(.failedPrecondition, "\(privateURL.path): the signing key is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
      }
      guard let text = try? String(contentsOf: privateURL, encoding: .utf8),
            let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let loaded = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
      else { throw VaneError(.failedPrecondition, "\(privateURL.path): not a base64 Ed25519 private key") }
      key = loaded
    } else {
      key = Curve25519.Signing.PrivateKey()
      // Created with mode 0600 before any byte is written.
      guard manager.createFile(atPath: privateURL.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
        throw VaneError(.unavailable, "\(privateURL.path): cannot create the signing key")
      }
      try Data((key.rawRepresentation.base64EncodedString() + "\n").utf8).write(to: privateURL)
    }
    try Data((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8).write(to: publicURL, options: .atomic)
    return BlessingKey(privateKey: key)
  }

  /// A key held in memory only (tests).
  public static func ephemeral() -> BlessingKey { BlessingKey(privateKey: Curve25519.Signing.PrivateKey()) }

  /// Signs a passing verdict on a manifest.
  public func bless(manifestSHA256: String, policy: String, at ms: Int64) throws -> Blessing {
    var blessing = Blessing(
      manifestSHA256: manifestSHA256, policy: policy, signedAtMs: ms, signature: "",
      publicKey: self.publicKey.base64EncodedString())
    blessing.signature = try self.privateKey.signature(for: blessing.signedMessage).base64EncodedString()
    return blessing
  }

  /// Reads an exported public key file (`blessing.pub`).
  /// - Throws: FAILED_PRECONDITION naming the file when it is not a base64 32-byte key.
  public static func publicKey(fromFile path: String) throws -> Data {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
          let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), raw.count == 32
    else { throw VaneError(.failedPrecondition, "\(path): not a base64 Ed25519 public key") }
    return raw
  }
}

/// SHA-256 (hex) of bytes: how manifests are named.
public func sha256Hex(_ data: Data) -> String {
  SHA256.hash(data: data).hexString
}
