internal import COpenSSL
public import Foundation

/// Ed25519 signatures (RFC 8032) on OpenSSL's libcrypto: how the gatekeeper signs verdicts and
/// deploy checks them. Keys are raw 32-byte values, as every Ed25519 implementation writes them.
public enum Ed25519 {
  /// A private key: its 32-byte seed.
  public struct PrivateKey: Sendable {
    /// The 32-byte seed.
    public let rawRepresentation: Data
    /// Its public key.
    public let publicKey: PublicKey

    /// A new key from the system's random source.
    /// - Throws: INTERNAL when libcrypto cannot draw one.
    public init() throws {
      var seed = [UInt8](repeating: 0, count: 32), public_ = [UInt8](repeating: 0, count: 32)
      guard vane_crypto_ed25519_generate(&seed, &public_) == 1 else {
        throw VaneError(.internalError, "Ed25519: libcrypto could not generate a key")
      }
      self.rawRepresentation = Data(seed)
      self.publicKey = PublicKey(checked: Data(public_))
    }

    /// The key whose seed is `rawRepresentation`.
    /// - Throws: INVALID_ARGUMENT when it is not 32 bytes.
    public init(rawRepresentation: Data) throws {
      guard rawRepresentation.count == 32 else {
        throw VaneError.invalidArgument(
          field: "private_key",
          "an Ed25519 private key is 32 bytes, not \(rawRepresentation.count)"
        )
      }
      let seed = [UInt8](rawRepresentation)
      var public_ = [UInt8](repeating: 0, count: 32)
      guard vane_crypto_ed25519_public_key(seed, &public_) == 1 else {
        throw VaneError.invalidArgument(
          field: "private_key",
          "libcrypto does not accept it as an Ed25519 key"
        )
      }
      self.rawRepresentation = Data(seed)
      self.publicKey = PublicKey(checked: Data(public_))
    }

    /// The 64-byte signature of `message`.
    /// - Throws: INTERNAL when libcrypto fails.
    public func signature(for message: Data) throws -> Data {
      var signature = [UInt8](repeating: 0, count: 64)
      let seed = [UInt8](self.rawRepresentation), bytes = [UInt8](message)
      guard vane_crypto_ed25519_sign(seed, bytes, bytes.count, &signature) == 1 else {
        throw VaneError(.internalError, "Ed25519: libcrypto could not sign")
      }
      return Data(signature)
    }
  }

  /// A public key: 32 bytes.
  public struct PublicKey: Sendable, Equatable {
    public let rawRepresentation: Data

    /// - Throws: INVALID_ARGUMENT when it is not 32 bytes.
    public init(rawRepresentation: Data) throws {
      guard rawRepresentation.count == 32 else {
        throw VaneError.invalidArgument(
          field: "public_key",
          "an Ed25519 public key is 32 bytes, not \(rawRepresentation.count)"
        )
      }
      self.rawRepresentation = Data(rawRepresentation)
    }

    fileprivate init(checked raw: Data) { self.rawRepresentation = raw }

    /// Whether `signature` is a valid signature of `message` under this key.
    public func isValidSignature(_ signature: Data, for message: Data) -> Bool {
      guard signature.count == 64 else { return false }
      let key = [UInt8](self.rawRepresentation), bytes = [UInt8](message),
        signed = [UInt8](signature)
      return vane_crypto_ed25519_verify(key, bytes, bytes.count, signed) == 1
    }
  }
}
