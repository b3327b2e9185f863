internal import COpenSSL
public import Foundation

/// SHA-256 on OpenSSL's libcrypto: how manifests, datasets, feature sets and reports are named.
///
/// A value: a copy absorbs on independently of the original (the context is copied on the first
/// write to a shared one), and ``finalize()`` leaves it able to absorb more.
public struct SHA256: Sendable {
  private var context: Context

  public init() { self.context = Context() }

  /// The digest (32 bytes) of `data`.
  public static func hash(data: some DataProtocol) -> [UInt8] {
    var hasher = SHA256()
    hasher.update(data: data)
    return hasher.finalize()
  }

  /// Absorbs `data`.
  public mutating func update(data: some DataProtocol) {
    for region in data.regions { region.withUnsafeBytes { self.update(bufferPointer: $0) } }
  }

  /// Absorbs the bytes in `bufferPointer`.
  public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
    guard let base = bufferPointer.baseAddress, !bufferPointer.isEmpty else { return }
    if !isKnownUniquelyReferenced(&self.context) { self.context = Context(copying: self.context) }
    // Fails only when libcrypto cannot allocate, where Swift itself would trap.
    precondition(
      vane_crypto_sha256_update(self.context.handle, base, bufferPointer.count) == 1,
      "SHA-256: libcrypto failed to absorb bytes"
    )
  }

  /// The digest (32 bytes) of the bytes absorbed so far.
  public func finalize() -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    precondition(
      vane_crypto_sha256_digest(self.context.handle, &digest) == 1,
      "SHA-256: libcrypto failed to finish a digest"
    )
    return digest
  }

  /// Owns one libcrypto digest context.
  private final class Context: @unchecked Sendable {
    // Unchecked: the handle is only written through a uniquely referenced Context (see
    // `update`), and reading it (`finalize`) does not change it.
    let handle: OpaquePointer

    init() {
      guard let handle = vane_crypto_sha256_new() else {
        preconditionFailure("SHA-256: libcrypto could not allocate a context")
      }
      self.handle = handle
    }

    init(copying other: Context) {
      guard let handle = vane_crypto_sha256_copy(other.handle) else {
        preconditionFailure("SHA-256: libcrypto could not copy a context")
      }
      self.handle = handle
    }

    deinit { vane_crypto_sha256_free(self.handle) }
  }
}
