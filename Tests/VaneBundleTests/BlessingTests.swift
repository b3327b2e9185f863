import Foundation
import Testing
import VaneCore

@testable import VaneBundle

@Suite("Blessings: Ed25519 over the manifest hash")
struct BlessingTests {
  static let manifest = Data(#"{"bundle":"btc-1h","models":["xgb","mlp"],"feature_set":"v1"}"#.utf8)

  static func sign(_ key: BlessingKey, _ hash: String) throws -> Verdict {
    try key.sign(
      manifestSHA256: hash,
      bundleID: "btc-1h",
      reportID: "r1",
      policyName: "default",
      policySHA256: String(repeating: "ab", count: 32),
      signTimeNanos: 1_700_000_000_123_456_789
    )
  }

  @Test("The statement is the documented text")
  func statement() throws {
    let key = try BlessingKey.ephemeral()
    let verdict = try Self.sign(key, "00ff")
    #expect(
      String(decoding: verdict.statement, as: UTF8.self) == """
        vane-verdict-v1
        manifest_sha256=00ff
        bundle_id=btc-1h
        report_id=r1
        policy_name=default
        policy_sha256=\(String(repeating: "ab", count: 32))
        sign_time=2023-11-14T22:13:20.123456789Z
        public_key_id=\(key.keyID)

        """
    )
    #expect(
      key.keyID.count == 16
        && key.keyID == String(SHA256.hash(data: key.publicKey).hexString.prefix(16))
    )
    #expect(Verdict.rfc3339(nanos: 0) == "1970-01-01T00:00:00.000000000Z")
    #expect(Verdict.rfc3339(nanos: -1) == "1969-12-31T23:59:59.999999999Z")
    #expect(throws: VaneError.self) {
      _ = try key.sign(
        manifestSHA256: "a",
        bundleID: "b\nmanifest_sha256=evil",
        reportID: "r",
        policyName: "p",
        policySHA256: "s",
        signTimeNanos: 0
      )
    }
  }

  @Test("Sign then verify; each kind of tampering is caught with its own failure")
  func roundTripAndTamper() throws {
    let key = try BlessingKey.ephemeral()
    let hash = SHA256.hash(data: Self.manifest).hexString
    let verdict = try Self.sign(key, hash)
    #expect(verdict.verify(trustedKeys: [key.publicKey], manifestSHA256: hash) == nil)
    #expect(verdict.verify(trustedKeys: [key.publicKey]) == nil)
    var tampered = Self.manifest
    tampered[10] ^= 1
    #expect(
      verdict.verify(
        trustedKeys: [key.publicKey],
        manifestSHA256: SHA256.hash(data: tampered).hexString
      )?.failure
        == .subjectMismatch
    )
    var other = verdict
    other.policyName = "lenient"
    #expect(other.verify(trustedKeys: [key.publicKey])?.failure == .statementMismatch)
    other = verdict
    other.statement = Data(
      String(decoding: verdict.statement, as: UTF8.self).replacingOccurrences(
        of: "default",
        with: "lenient"
      ).utf8
    )
    #expect(other.verify(trustedKeys: [key.publicKey])?.failure == .badSignature)
    #expect(
      verdict.verify(trustedKeys: [try BlessingKey.ephemeral().publicKey])?.failure == .unknownKey
    )
    other = verdict
    other.signature[0] ^= 0x80
    #expect(other.verify(trustedKeys: [key.publicKey])?.failure == .badSignature)
    other = verdict
    other.algorithm = "rsa"
    #expect(other.verify(trustedKeys: [key.publicKey])?.failure == .malformed)
    other = verdict
    other.statement = Data("vane-verdict-v1\n".utf8)
    #expect(other.verify(trustedKeys: [key.publicKey])?.failure == .malformed)
    let decoded = try JSONDecoder().decode(Verdict.self, from: JSONEncoder().encode(verdict))
    #expect(
      decoded == verdict
        && decoded.verify(trustedKeys: [key.publicKey], manifestSHA256: hash) == nil
    )
  }

  @Test(
    "The key is made once in the data directory (private 0600), exported, and reloaded the same"
  )
  func keyFiles() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "vane-keys-\(UUID().uuidString)"
    ).path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let first = try BlessingKey.loadOrCreate(in: directory)
    let mode =
      try FileManager.default.attributesOfItem(atPath: directory + "/blessing.key")[
        .posixPermissions
      ] as? NSNumber
    #expect(mode?.intValue == 0o600)
    #expect(try BlessingKey.publicKey(fromFile: directory + "/blessing.pub") == first.publicKey)
    let again = try BlessingKey.loadOrCreate(in: directory)
    #expect(again.publicKey == first.publicKey)
    try FileManager.default.setAttributes(
      [.posixPermissions: 0o644],
      ofItemAtPath: directory + "/blessing.key"
    )
    #expect { _ = try BlessingKey.loadOrCreate(in: directory) } throws: {
      ($0 as? VaneError)?.code == .failedPrecondition
    }
    try FileManager.default.setAttributes(
      [.posixPermissions: 0o600],
      ofItemAtPath: directory + "/blessing.key"
    )
    try Data("garbage".utf8).write(to: URL(fileURLWithPath: directory + "/blessing.key"))
    #expect { _ = try BlessingKey.loadOrCreate(in: directory) } throws: {
      ($0 as? VaneError)?.message.contains("not a base64 Ed25519") == true
    }
  }
}
