/*
 * kv_test_util.c - helpers shared by the kv tests, and the test runner.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kv_test_util.h"

char *kvt_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char buf[512];
    snprintf(buf, sizeof(buf), "%s/ballot-kv-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
    return strdup(buf);
}

static int rm_one(const char *path,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void kvt_rmdir(char *path)
{
    if (path != NULL) {
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
    }
}

struct kv_store *kvt_open(const char *dir, uint64_t map_size)
{
    struct kv_options o;
    struct kv_store *s = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof(o));
    o.map_size = map_size;
    int rv = kv_open(dir, &o, &s, err, sizeof(err));
    ck_assert_msg(rv == 0, "kv_open: %d %s", rv, err);
    return s;
}

uint8_t *kvt_encode(const struct kv_cmd *cmd, size_t *len)
{
    size_t n = kv_cmd_encoded_size(cmd);
    ck_assert_uint_gt(n, 0);
    uint8_t *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(kv_cmd_encode(cmd, buf, n, len), 0);
    ck_assert_uint_eq(*len, n);
    return buf;
}

uint8_t *kvt_put(const char *key, const char *value, size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_PUT;
    c.op.type = KV_OP_PUT;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    c.op.value = (const uint8_t *)value;
    c.op.value_len = (uint32_t)strlen(value);
    return kvt_encode(&c, len);
}

uint8_t *kvt_del(const char *key, size_t *len)
{
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DELETE;
    c.op.type = KV_OP_DELETE;
    c.op.key = (const uint8_t *)key;
    c.op.key_len = (uint32_t)strlen(key);
    return kvt_encode(&c, len);
}

void kvt_batch_add(struct kvt_batch *b,
                   raft_index index,
                   uint8_t *data,
                   size_t len)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->e = realloc(b->e, b->cap * sizeof(*b->e));
        ck_assert_ptr_nonnull(b->e);
    }
    struct raft_entry *e = &b->e[b->n++];
    memset(e, 0, sizeof(*e));
    e->index = index;
    e->term = 1;
    e->type = RAFT_ENTRY_NORMAL;
    e->len = (uint32_t)len;
    e->data = data;
}

void kvt_batch_clear(struct kvt_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((void *)b->e[i].data);
    }
    free(b->e);
    memset(b, 0, sizeof(*b));
}

void kvt_apply_one(struct kv_store *s,
                   raft_index index,
                   uint8_t *data,
                   size_t len,
                   struct kv_apply_result *res)
{
    struct kvt_batch b = {0};
    kvt_batch_add(&b, index, data, len);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, res), 0);
    ck_assert_uint_eq(res->n_entries, 1);
    kvt_batch_clear(&b);
}

void kvt_apply_puts(struct kv_store *s,
                    raft_index first,
                    size_t n,
                    const char *prefix,
                    size_t value_len)
{
    struct kvt_batch b = {0};
    char key[64];
    char *value = malloc(value_len + 1);
    ck_assert_ptr_nonnull(value);
    memset(value, 'v', value_len);
    value[value_len] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        snprintf(key, sizeof(key), "%s%06zu", prefix, i);
        uint8_t *d = kvt_put(key, value, &len);
        kvt_batch_add(&b, first + i, d, len);
    }
    int rv = kv_apply(s, b.e, b.n, NULL);
    ck_assert_msg(rv == 0, "kv_apply: %s", kv_strerror(rv));
    kvt_batch_clear(&b);
    free(value);
}

char *kvt_dump(struct kv_store *s)
{
    struct kv_range_result r;
    struct kv_range_req all = {
        (const uint8_t *)"", (const uint8_t *)"\0", 0, 1, 0, 0};
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    ck_assert_int_eq(kv_range(s, &all, &r), 0);
    ck_assert(!r.more);
    len += (size_t)snprintf(out + len, cap - len, "rev=%llu applied=%llu\n",
                            (unsigned long long)r.revision,
                            (unsigned long long)r.applied);
    for (size_t i = 0; i < r.n_kvs; i++) {
        const struct kv_kv *kv = &r.kvs[i];
        while (len + 200 + kv->key_len + kv->value_len > cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        len += (size_t)snprintf(
            out + len, cap - len, "%.*s=%.*s c%llu m%llu v%llu t%u\n",
            (int)kv->key_len, kv->key, (int)kv->value_len, kv->value,
            (unsigned long long)kv->create_revision,
            (unsigned long long)kv->mod_revision,
            (unsigned long long)kv->version, (unsigned)kv->type);
        if (kv->type != KV_TYPE_HASH) {
            continue;
        }
        /* A hash: its fields too, in field order. */
        struct kv_range_result h;
        ck_assert_int_eq(kv_hash_read(s, kv->key, kv->key_len, NULL, NULL, 0,
                                      NULL, 0, 0, false, &h),
                         0);
        for (size_t j = 0; j < h.n_kvs; j++) {
            const struct kv_kv *f = &h.kvs[j];
            while (len + 200 + f->key_len + f->value_len > cap) {
                cap *= 2;
                out = realloc(out, cap);
            }
            len += (size_t)snprintf(out + len, cap - len, "  %.*s=%.*s\n",
                                    (int)f->key_len, f->key, (int)f->value_len,
                                    f->value);
        }
        kv_range_result_free(&h);
    }
    kv_range_result_free(&r);
    return out;
}

void kvt_apply_log(struct kv_store *s, raft_index first, size_t n)
{
    struct kvt_batch b = {0};
    for (size_t i = 0; i < n; i++) {
        raft_index index = first + i;
        char key[32], value[32];
        size_t len;
        snprintf(key, sizeof(key), "key%03llu",
                 (unsigned long long)(index * 7919 % 500));
        snprintf(value, sizeof(value), "value-%llu", (unsigned long long)index);
        uint8_t *d = kvt_put(key, value, &len);
        kvt_batch_add(&b, index, d, len);
    }
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), 0);
    kvt_batch_clear(&b);
}

int kvt_transfer(struct kv_store *s, const char *path)
{
    struct kv_snapshot *snap = NULL;
    uint8_t buf[5000];
    uint64_t off = 0;
    uint64_t rng = 7;
    int rv = kv_snapshot_open(path, NULL, &snap, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    ck_assert_int_eq(kv_snapshot_stage_begin(s), 0);
    for (;;) {
        size_t n = 0;
        size_t want = 1 + kvt_below(&rng, sizeof(buf));
        ck_assert_int_eq(kv_snapshot_read_chunk(snap, off, buf, want, &n), 0);
        if (n == 0) {
            break;
        }
        ck_assert_int_eq(kv_snapshot_stage_write(s, off, buf, n), 0);
        /* A duplicated message resends a chunk. */
        if (kvt_below(&rng, 10) == 0) {
            ck_assert_int_eq(kv_snapshot_stage_write(s, off, buf, n), 0);
        }
        off += n;
    }
    ck_assert_uint_eq(off, kv_snapshot_info(snap)->size);
    kv_snapshot_close(snap);
    return kv_snapshot_stage_finish(s, NULL);
}

void kvt_snapshot_transfer(struct kv_store *src,
                           const char *src_dir,
                           struct kv_store *dst)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s.snap", src_dir);
    struct kv_snapshot *snap = NULL;
    ck_assert_int_eq(kv_snapshot_create(src, path, &snap), 0);
    kv_snapshot_close(snap);
    ck_assert_int_eq(kvt_transfer(dst, path), 0);
    unlink(path);
    ck_assert_int_eq(kv_snapshot_install(dst), 0);
}

int main(void)
{
    SRunner *sr = srunner_create(kv_cmd_suite());
    srunner_add_suite(sr, kv_model_suite());
    srunner_add_suite(sr, kv_apply_suite());
    srunner_add_suite(sr, kv_history_suite());
    srunner_add_suite(sr, kv_snapshot_suite());
    srunner_add_suite(sr, kv_session_suite());
    srunner_add_suite(sr, kv_members_suite());
    srunner_add_suite(sr, kv_acl_suite());
    srunner_add_suite(sr, kv_checkpoint_suite());
    srunner_add_suite(sr, kv_space_suite());
    srunner_add_suite(sr, kv_sequence_suite());
    srunner_add_suite(sr, kv_hash_suite());
    srunner_add_suite(sr, kv_integrity_suite());
    srunner_add_suite(sr, kv_lease_suite());
    srunner_add_suite(sr, kv_lock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
