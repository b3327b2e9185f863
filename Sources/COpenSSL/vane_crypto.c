#include "vane_crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

// The handle the header names: one OpenSSL digest context.
struct vane_crypto_sha256 {
  EVP_MD_CTX *md;
};

vane_crypto_sha256 *vane_crypto_sha256_new(void) {
  vane_crypto_sha256 *context = OPENSSL_zalloc(sizeof *context);
  if (context == NULL) return NULL;
  context->md = EVP_MD_CTX_new();
  if (context->md == NULL || EVP_DigestInit_ex(context->md, EVP_sha256(), NULL) != 1) {
    vane_crypto_sha256_free(context);
    return NULL;
  }
  return context;
}

vane_crypto_sha256 *vane_crypto_sha256_copy(const vane_crypto_sha256 *context) {
  vane_crypto_sha256 *copy = OPENSSL_zalloc(sizeof *copy);
  if (copy == NULL) return NULL;
  copy->md = EVP_MD_CTX_new();
  if (copy->md == NULL || EVP_MD_CTX_copy_ex(copy->md, context->md) != 1) {
    vane_crypto_sha256_free(copy);
    return NULL;
  }
  return copy;
}

int vane_crypto_sha256_update(vane_crypto_sha256 *context, const void *bytes, size_t length) {
  if (length == 0) return 1;
  return EVP_DigestUpdate(context->md, bytes, length) == 1;
}

int vane_crypto_sha256_digest(const vane_crypto_sha256 *context, uint8_t digest[32]) {
  // Finishing consumes a context: finish a copy so the caller's can go on absorbing.
  EVP_MD_CTX *finishing = EVP_MD_CTX_new();
  if (finishing == NULL) return 0;
  unsigned int length = 0;
  int ok = EVP_MD_CTX_copy_ex(finishing, context->md) == 1 && EVP_DigestFinal_ex(finishing, digest, &length) == 1 && length == 32;
  EVP_MD_CTX_free(finishing);
  return ok;
}

void vane_crypto_sha256_free(vane_crypto_sha256 *context) {
  if (context == NULL) return;
  EVP_MD_CTX_free(context->md);
  OPENSSL_free(context);
}

static int raw_public_key(EVP_PKEY *key, uint8_t public_key[32]) {
  size_t length = 32;
  return EVP_PKEY_get_raw_public_key(key, public_key, &length) == 1 && length == 32;
}

int vane_crypto_ed25519_generate(uint8_t private_key[32], uint8_t public_key[32]) {
  if (RAND_bytes(private_key, 32) != 1) return 0;
  return vane_crypto_ed25519_public_key(private_key, public_key);
}

int vane_crypto_ed25519_public_key(const uint8_t private_key[32], uint8_t public_key[32]) {
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, private_key, 32);
  if (key == NULL) return 0;
  int ok = raw_public_key(key, public_key);
  EVP_PKEY_free(key);
  return ok;
}

int vane_crypto_ed25519_sign(const uint8_t private_key[32], const void *message, size_t length, uint8_t signature[64]) {
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, private_key, 32);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t signature_length = 64;
  // Ed25519 signs the whole message in one call, with no digest named.
  int ok = key != NULL && md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
           EVP_DigestSign(md, signature, &signature_length, message, length) == 1 && signature_length == 64;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  return ok;
}

int vane_crypto_ed25519_verify(const uint8_t public_key[32], const void *message, size_t length, const uint8_t signature[64]) {
  EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = key != NULL && md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
           EVP_DigestVerify(md, signature, 64, message, length) == 1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  return ok;
}
