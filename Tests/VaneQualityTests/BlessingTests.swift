import Foundation
import Testing
import VaneCore

@testable import VaneQuality

@Suite("Blessings: Ed25519 over the manifest hash")
struct BlessingTests {
  static let manifest = Data(#"{"bundle":"btc-1h","models":["xgb","mlp"],"feature_set":"v1"}"#.utf8)

  @Test("Sign then verify; any change to the manifest, policy, time, key or signature fails")
  func roundTripAndTamper() throws {
    let key = BlessingKey.ephemeral()
    let hash = sha256Hex(Self.manifest)
    let blessing = try key.bless(manifestSHA256: hash, policy: "default", at: 1_700_000_000_000)
    #expect(blessing.verify(manifestSHA256: hash, trustedPublicKey: key.publicKey))
    var tampered = Self.manifest
    tampered[10] ^= 1
    #expect(!blessing.verify(manifestSHA256: sha256Hex(tampered), trustedPublicKey: key.publicKey))
    var other = blessing
    other.policy = "lenient"
    #expect(!other.verify(manifestSHA256: hash, trustedPublicKey: key.publicKey))
    other = blessing
    other.signedAtMs += 1
    #expect(!other.verify(manifestSHA256: hash, trustedPublicKey: key.publicKey))
    #expect(!blessing.verify(manifestSHA256: hash, trustedPublicKey: BlessingKey.ephemeral().publicKey))
    other = blessing
    var signature = Data(base64Encoded: other.signature)!
    signature[0] ^= 0x80
    other.signature = signature.base64EncodedString()
    #expect(!other.verify(manifestSHA256: hash, trustedPublicKey: key.publicKey))
    let decoded = try JSONDecoder().decode(Blessing.self, from: JSONEncoder().encode(blessing))
    #expect(decoded.verify(manifestSHA256: hash, trustedPublicKey: key.publicKey))
  }

  @Test("The key is made once in the data directory (private 0600), exported, and reloaded the same")
  func keyFiles() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vane-keys-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let first = try BlessingKey.loadOrCreate(in: directory)
    let mode = try FileManager.default.attributesOfItem(atPath: directory + "/blessing.key")[.posixPermissions] as? NSNumber
    #expect(mode?.intValue == 0o600)
    #expect(try BlessingKey.publicKey(fromFile: directory + "/blessing.pub") == first.publicKey)
    let again = try BlessingKey.loadOrCreate(in: directory)
    #expect(again.publicKey == first.publicKey)
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory + "/blessing.key")
    #expect { _ = try BlessingKey.loadOrCreate(in: directory) } throws: { ($0 as? VaneError)?.code == .failedPrecondition }
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: directory + "/blessing.key")
    try Data("garbage".utf8).write(to: URL(fileURLWithPath: directory + "/blessing.key"))
    #expect { _ = try BlessingKey.loadOrCreate(in: directory) } throws: { ($0 as? VaneError)?.message.contains("not a base64 Ed25519") == true }
  }
}
