import Foundation
import Testing
import VaneCore

/// SHA-256 and Ed25519 on libcrypto, checked against published vectors (FIPS 180-2's examples,
/// RFC 8032 §7.1; both agree with Python's hashlib and `cryptography`).
@Suite("libcrypto digests and signatures")
struct CryptoTests {
  @Test(
    "SHA-256 of the FIPS 180-2 examples",
    arguments: [
      ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
      ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
      (
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
      ),
      (
        String(repeating: "a", count: 1_000_000),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
      ),
    ]
  )
  func sha256(message: String, digest: String) {
    #expect(SHA256.hash(data: Data(message.utf8)).hexString == digest)
  }

  @Test(
    "Absorbing in pieces equals one pass; a copy goes on alone; finalize leaves the hasher usable"
  )
  func sha256Incremental() {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0 ..< 10_000).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
    let whole = SHA256.hash(data: bytes)
    for _ in 0 ..< 20 {
      var hasher = SHA256(), cut = 0
      while cut < bytes.count {
        let next = min(bytes.count, cut + Int.random(in: 0 ... 700, using: &generator))
        bytes[cut ..< next].withUnsafeBytes { hasher.update(bufferPointer: $0) }
        cut = next
      }
      #expect(hasher.finalize() == whole)
    }
    var first = SHA256()
    first.update(data: Data("abc".utf8))
    let midway = first.finalize()
    var second = first
    second.update(data: Data("def".utf8))
    #expect(first.finalize() == midway && midway == SHA256.hash(data: Data("abc".utf8)))
    #expect(second.finalize() == SHA256.hash(data: Data("abcdef".utf8)))
    first.update(data: Data("def".utf8))
    #expect(first.finalize() == second.finalize())
  }

  static func hex(_ text: String) -> Data {
    Data(
      stride(from: 0, to: text.count, by: 2).map { UInt8(text.dropFirst($0).prefix(2), radix: 16)! }
    )
  }

  @Test(
    "Ed25519: RFC 8032's test vectors 1 and 2",
    arguments: [
      (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
      ),
      (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
      ),
    ]
  )
  func ed25519(seed: String, publicKey: String, message: String, signature: String) throws {
    let key = try Ed25519.PrivateKey(rawRepresentation: Self.hex(seed))
    #expect(key.publicKey.rawRepresentation.hexString == publicKey)
    let signed = try key.signature(for: Self.hex(message))
    #expect(signed.hexString == signature)
    #expect(key.publicKey.isValidSignature(signed, for: Self.hex(message)))
    // One flipped bit in the message or the signature, or another key: rejected.
    #expect(!key.publicKey.isValidSignature(signed, for: Self.hex(message) + Data([0])))
    var flipped = signed
    flipped[flipped.startIndex + 10] ^= 0x04
    #expect(!key.publicKey.isValidSignature(flipped, for: Self.hex(message)))
    #expect(!key.publicKey.isValidSignature(signed.prefix(63), for: Self.hex(message)))
    #expect(!(try Ed25519.PrivateKey()).publicKey.isValidSignature(signed, for: Self.hex(message)))
  }

  @Test("Ed25519 keys: a fresh key signs and verifies; raw forms of the wrong size are refused")
  func ed25519Keys() throws {
    let key = try Ed25519.PrivateKey()
    let again = try Ed25519.PrivateKey(rawRepresentation: key.rawRepresentation)
    #expect(again.publicKey == key.publicKey && key.rawRepresentation.count == 32)
    let message = Data("vane-verdict-v1\n".utf8)
    #expect(again.publicKey.isValidSignature(try key.signature(for: message), for: message))
    #expect(throws: VaneError.self) { try Ed25519.PrivateKey(rawRepresentation: Data(count: 31)) }
    #expect(throws: VaneError.self) { try Ed25519.PublicKey(rawRepresentation: Data(count: 33)) }
  }
}
