/*
 * fuzz_kv_acl.c - libFuzzer target for the ACL rule parser and the stored
 * user record (kv/kv_acl.c).
 *
 * The input is a list of rules separated by '\n'. Properties checked on
 * every input:
 *
 *   1. parsing never crashes or overreads (ASan), whatever the rule;
 *   2. a rule that is refused leaves a reason; after every accepted rule
 *      the user stays within its limits, encodes within
 *      KV_ACL_RECORD_MAX, and decodes back to the same user (the record
 *      is canonical);
 *   3. the text forms fit their buffers, and the checks (commands, keys,
 *      ranges, the glob against the input's own bytes) terminate;
 *   4. the whole input, taken as a stored record, is refused or decodes to
 *      a user that encodes back to exactly those bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv_acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The same user: the flags and every entry in use (what lies past the
 * counts in the arrays is not part of the user). */
static bool same_user(const struct kv_acl_user *a, const struct kv_acl_user *b)
{
    if (strcmp(a->name, b->name) != 0 || a->on != b->on ||
        a->nopass != b->nopass || a->n_passwords != b->n_passwords ||
        a->n_rules != b->n_rules || a->n_patterns != b->n_patterns) {
        return false;
    }
    for (unsigned i = 0; i < a->n_passwords; i++) {
        if (strcmp(a->passwords[i], b->passwords[i]) != 0) {
            return false;
        }
    }
    for (unsigned i = 0; i < a->n_rules; i++) {
        const struct kv_acl_cmd_rule *x = &a->rules[i], *y = &b->rules[i];
        if (x->allow != y->allow || x->category != y->category ||
            x->cats != y->cats || strcmp(x->name, y->name) != 0) {
            return false;
        }
    }
    for (unsigned i = 0; i < a->n_patterns; i++) {
        const struct kv_acl_pattern *x = &a->patterns[i];
        const struct kv_acl_pattern *y = &b->patterns[i];
        if (x->perm != y->perm || x->len != y->len ||
            memcmp(x->pat, y->pat, x->len) != 0) {
            return false;
        }
    }
    return true;
}

static void check_user(const struct kv_acl_user *u)
{
    static uint8_t rec[KV_ACL_RECORD_MAX];
    static struct kv_acl_user back;
    static char text[16384];
    if (u->n_passwords > KV_ACL_PASSWORDS_MAX ||
        u->n_rules > KV_ACL_CMD_RULES_MAX ||
        u->n_patterns > KV_ACL_PATTERNS_MAX) {
        abort();
    }
    size_t n = kv_acl_user_encode(u, rec);
    if (n > KV_ACL_RECORD_MAX ||
        kv_acl_user_decode(rec, n, u->name, strlen(u->name), &back) != 0 ||
        !same_user(u, &back)) {
        abort();
    }
    if (kv_acl_user_describe(u, text, sizeof(text)) >= sizeof(text)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kv_acl_user u, v;
    char err[128];
    kv_acl_user_init(&u, "fuzz", 4);
    size_t at = 0;
    while (at <= size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl != NULL ? (size_t)(nl - (data + at)) : size - at;
        err[0] = '\0';
        int rv = kv_acl_user_apply_rule(&u, (const char *)data + at, len, err,
                                        sizeof(err));
        if (rv != 0 && err[0] == '\0') {
            abort();
        }
        /* A refused rule may leave the user half changed (the store
         * applies a copy); what is left must still be a valid user. */
        check_user(&u);
        (void)kv_acl_allows_cmd(&u, "get", "x", KV_ACL_CAT_READ);
        (void)kv_acl_allows_key(&u, data + at, len, KV_ACL_KEY_READ);
        (void)kv_acl_allows_range(&u, data, at, data + at, len, at % 2 == 0,
                                  KV_ACL_KEY_WRITE);
        (void)kv_acl_glob((const char *)data + at, len, data, size);
        at += len + 1;
    }
    if (kv_acl_user_decode(data, size, "fuzz", 4, &v) == 0) {
        static uint8_t rec[KV_ACL_RECORD_MAX];
        if (kv_acl_user_encode(&v, rec) != size ||
            memcmp(rec, data, size) != 0) {
            abort();
        }
    }
    return 0;
}
