// Digests and signatures for Vane on OpenSSL's libcrypto (Debian's libssl-dev): SHA-256 for
// manifests, datasets and reports, Ed25519 for signed verdicts. Only EVP calls; the digest
// context is the one handle, owned by one Swift value.
#ifndef VANE_CRYPTO_H
#define VANE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vane_crypto_sha256 vane_crypto_sha256;

// A fresh SHA-256 context, or NULL when out of memory.
vane_crypto_sha256 *vane_crypto_sha256_new(void);
// An independent copy of `context` (same bytes absorbed so far), or NULL when out of memory.
vane_crypto_sha256 *vane_crypto_sha256_copy(const vane_crypto_sha256 *context);
// Absorbs `length` bytes. Returns 1, or 0 on failure.
int vane_crypto_sha256_update(vane_crypto_sha256 *context, const void *bytes, size_t length);
// Writes the 32-byte digest of the bytes absorbed so far, leaving `context` as it was. Returns 1,
// or 0 on failure.
int vane_crypto_sha256_digest(const vane_crypto_sha256 *context, uint8_t digest[32]);
void vane_crypto_sha256_free(vane_crypto_sha256 *context);

// A new Ed25519 key pair from the system's random source: the 32-byte seed (the raw private key)
// and its 32-byte public key. Returns 1, or 0 on failure.
int vane_crypto_ed25519_generate(uint8_t private_key[32], uint8_t public_key[32]);
// The public key of a raw private key. Returns 1, or 0 when the key is unusable.
int vane_crypto_ed25519_public_key(const uint8_t private_key[32], uint8_t public_key[32]);
// Signs `length` bytes (pure Ed25519, RFC 8032). Returns 1, or 0 on failure.
int vane_crypto_ed25519_sign(const uint8_t private_key[32], const void *message, size_t length, uint8_t signature[64]);
// Returns 1 when `signature` is a valid signature of the message under `public_key`, else 0.
int vane_crypto_ed25519_verify(const uint8_t public_key[32], const void *message, size_t length, const uint8_t signature[64]);

#ifdef __cplusplus
}
#endif

#endif
