/*
 * passwd.c - see passwd.h.
 */
#include "passwd.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 16u
#define HASH_BYTES 32u
static const char PREFIX[] = "pbkdf2-sha256$";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", in[i]);
    }
}

static int from_hex(const char *in, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = in[2 * i + (size_t)k];
            v <<= 4;
            if (ch >= '0' && ch <= '9') {
                v |= (unsigned)(ch - '0');
            } else if (ch >= 'a' && ch <= 'f') {
                v |= (unsigned)(ch - 'a' + 10);
            } else {
                return -1;
            }
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

static int derive(const char *pw,
                  size_t len,
                  const unsigned char *salt,
                  unsigned iterations,
                  unsigned char *out)
{
    if (len > PASSWD_BYTES_MAX) {
        return -1;
    }
    return PKCS5_PBKDF2_HMAC(len > 0 ? pw : "", (int)len, salt, SALT_BYTES,
                             (int)iterations, EVP_sha256(), HASH_BYTES,
                             out) == 1
               ? 0
               : -1;
}

/* Splits @stored into its parts; 0 or -1. */
static int parse(const char *stored,
                 unsigned *iterations,
                 unsigned char *salt,
                 unsigned char *hash)
{
    size_t n = strlen(PREFIX);
    if (strncmp(stored, PREFIX, n) != 0) {
        return -1;
    }
    const char *p = stored + n;
    char *end;
    unsigned long it = strtoul(p, &end, 10);
    if (end == p || *end != '$' || it < PASSWD_ITERATIONS_MIN ||
        it > PASSWD_ITERATIONS_MAX) {
        return -1;
    }
    p = end + 1;
    if (strlen(p) != 2 * SALT_BYTES + 1 + 2 * HASH_BYTES ||
        p[2 * SALT_BYTES] != '$' || from_hex(p, SALT_BYTES, salt) != 0 ||
        from_hex(p + 2 * SALT_BYTES + 1, HASH_BYTES, hash) != 0) {
        return -1;
    }
    *iterations = (unsigned)it;
    return 0;
}

int passwd_hash(const char *pw, size_t len, unsigned iterations, char *out)
{
    unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
    char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * HASH_BYTES + 1];
    if (iterations < PASSWD_ITERATIONS_MIN ||
        iterations > PASSWD_ITERATIONS_MAX ||
        RAND_bytes(salt, SALT_BYTES) != 1 ||
        derive(pw, len, salt, iterations, hash) != 0) {
        return -1;
    }
    to_hex(salt, SALT_BYTES, salt_hex);
    to_hex(hash, HASH_BYTES, hash_hex);
    snprintf(out, PASSWD_HASH_MAX, "%s%u$%s$%s", PREFIX, iterations, salt_hex,
             hash_hex);
    OPENSSL_cleanse(hash, sizeof(hash));
    return 0;
}

bool passwd_valid(const char *stored)
{
    unsigned it;
    unsigned char salt[SALT_BYTES], hash[HASH_BYTES];
    return strlen(stored) < PASSWD_HASH_MAX &&
           parse(stored, &it, salt, hash) == 0;
}

bool passwd_verify(const char *stored, const char *pw, size_t len)
{
    unsigned it;
    unsigned char salt[SALT_BYTES], want[HASH_BYTES], got[HASH_BYTES];
    if (parse(stored, &it, salt, want) != 0 ||
        derive(pw, len, salt, it, got) != 0) {
        return false;
    }
    bool ok = CRYPTO_memcmp(want, got, HASH_BYTES) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}
