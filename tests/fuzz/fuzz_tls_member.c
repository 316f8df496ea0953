/*
 * fuzz_tls_member.c - libFuzzer target for the TLS identity check
 * (net/tls/tls.c, tls_member_parse()): which certificate common names
 * name a member.
 *
 * The input is a common name. Properties checked on every input:
 *
 *   1. parsing never crashes or overreads (ASan);
 *   2. a name is accepted exactly when it is "member-" and the decimal
 *      form of an id from 1 to 2^64 - 1, written as printf writes it: the
 *      accepted id printed back gives the input, byte for byte, so no two
 *      names stand for one member and no name stands for two.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t id = 0;
    int rv = tls_member_parse((const char *)data, size, &id);
    char canon[TLS_CN_MAX + 1];
    /* The one name that stands for @id, if the input's number is one. */
    if (rv == 0) {
        int n =
            snprintf(canon, sizeof(canon), TLS_MEMBER_PREFIX "%" PRIu64, id);
        if (id == 0 || n < 0 || (size_t)n != size ||
            memcmp(canon, data, size) != 0) {
            abort();
        }
        return 0;
    }
    if (rv != TLS_ENOID) {
        abort();
    }
    /* Refused: then it is not the canonical name of any id. */
    const size_t plen = sizeof(TLS_MEMBER_PREFIX) - 1;
    if (size > plen && size <= 20 + plen &&
        memcmp(data, TLS_MEMBER_PREFIX, plen) == 0) {
        char digits[32];
        memcpy(digits, data + plen, size - plen);
        digits[size - plen] = '\0';
        char *end;
        unsigned long long v = strtoull(digits, &end, 10);
        int n = snprintf(canon, sizeof(canon), "%llu", v);
        if (digits[0] >= '1' && digits[0] <= '9' && *end == '\0' && v != 0 &&
            v != ULLONG_MAX && (size_t)n == size - plen &&
            memcmp(canon, digits, size - plen) == 0) {
            abort(); /* a canonical name was refused */
        }
    }
    return 0;
}
