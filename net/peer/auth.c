/*
 * auth.c - nonces and HMAC-SHA256 proofs for the peer handshake, on
 * OpenSSL's libcrypto. See auth.h for the construction.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include "auth.h"

/* The label ties a proof to this protocol and its version: an HMAC the
 * same secret produced for anything else is never a valid proof. */
static const char LABEL[] = "ballot-peer-2";

int auth_random(uint8_t *buf, size_t n)
{
    if (n > (size_t)INT32_MAX) {
        return -1;
    }
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        *p++ = (uint8_t)(v >> (8 * i));
    }
    return p;
}

int auth_proof(const uint8_t *secret,
               size_t secret_len,
               enum auth_role role,
               uint64_t cluster_id,
               raft_id from,
               raft_id to,
               const uint8_t nonce_d[AUTH_NONCE_BYTES],
               const uint8_t nonce_l[AUTH_NONCE_BYTES],
               uint8_t mac[AUTH_MAC_BYTES])
{
    uint8_t msg[sizeof(LABEL) - 1 + 1 + 24 + 2 * AUTH_NONCE_BYTES];
    uint8_t *p = msg;
    /* HMAC() takes an empty key only through a non-NULL pointer. */
    static const uint8_t empty = 0;
    unsigned int out_len = 0;

    if (secret_len > AUTH_SECRET_MAX) {
        return -1;
    }
    memcpy(p, LABEL, sizeof(LABEL) - 1);
    p += sizeof(LABEL) - 1;
    *p++ = (uint8_t)role;
    p = put_u64(p, cluster_id);
    p = put_u64(p, from);
    p = put_u64(p, to);
    memcpy(p, nonce_d, AUTH_NONCE_BYTES);
    p += AUTH_NONCE_BYTES;
    memcpy(p, nonce_l, AUTH_NONCE_BYTES);
    p += AUTH_NONCE_BYTES;
    if (HMAC(EVP_sha256(), secret_len > 0 ? secret : &empty, (int)secret_len,
             msg, (size_t)(p - msg), mac, &out_len) == NULL ||
        out_len != AUTH_MAC_BYTES) {
        return -1;
    }
    return 0;
}

bool auth_proof_equal(const uint8_t a[AUTH_MAC_BYTES],
                      const uint8_t b[AUTH_MAC_BYTES])
{
    return CRYPTO_memcmp(a, b, AUTH_MAC_BYTES) == 0;
}

void auth_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
