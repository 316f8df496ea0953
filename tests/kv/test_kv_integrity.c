/*
 * test_kv_integrity.c - damaged data is an error, never data: record
 * checksums on every read path, the latch that refuses everything after
 * damage was found, the scrub, the store digest (KV_CMD_DIGEST) and the
 * upgrade of a store written before checksums existed.
 *
 * Damage is done the way a disk does it: bytes of the closed store's data
 * file are changed in place, found by searching the file for them.
 */
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "kv_test_util.h"

/* The live environment directory of the store in @dir (DIR/CURRENT). */
static void env_dir(const char *dir, char *out, size_t len)
{
    char cur[512], name[64] = "";
    snprintf(cur, sizeof(cur), "%s/CURRENT", dir);
    FILE *f = fopen(cur, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(name, sizeof(name), f));
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    snprintf(out, len, "%s/%s", dir, name);
}

/* Flips one bit of every copy of @needle in the store's data file (the
 * store must be closed). Returns the number of copies changed. */
static int flip_in_data(const char *dir, const char *needle)
{
    char env[512], path[600];
    struct stat st;
    env_dir(dir, env, sizeof(env));
    snprintf(path, sizeof(path), "%s/data.mdb", env);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, n, 0), (ssize_t)n);
    size_t nl = strlen(needle);
    int found = 0;
    for (size_t i = 0; i + nl <= n; i++) {
        if (memcmp(buf + i, needle, nl) == 0) {
            buf[i + nl - 1] ^= 0x01;
            found++;
        }
    }
    ck_assert_int_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
    close(fd);
    free(buf);
    return found;
}

static void put_one(struct kv_store *s,
                    raft_index index,
                    const char *key,
                    const char *value)
{
    size_t len;
    struct kv_apply_result res;
    uint8_t *data = kvt_put(key, value, &len);
    kvt_apply_one(s, index, data, len, &res);
    kv_apply_result_free(&res);
}

static uint64_t digest_at(struct kv_store *s, raft_index index)
{
    struct kv_cmd c;
    struct kv_apply_result res;
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DIGEST;
    uint8_t *data = kvt_encode(&c, &len);
    kvt_apply_one(s, index, data, len, &res);
    ck_assert_int_eq(res.entries[0].code, 0);
    ck_assert_uint_eq(res.entries[0].cmd_type, KV_CMD_DIGEST);
    uint64_t d = res.entries[0].digest;
    kv_apply_result_free(&res);
    return d;
}

static int scrub_pass(struct kv_store *s, struct kv_scrub_stats *stats)
{
    struct kv_scrub *sc = NULL;
    bool done = false;
    int rv;
    ck_assert_int_eq(kv_scrub_create(s, &sc), 0);
    /* Small steps, so that resuming between steps is what is tested. */
    do {
        rv = kv_scrub_step(s, sc, 100, &done);
    } while (rv == 0 && !done);
    if (stats != NULL) {
        kv_scrub_get_stats(sc, stats);
    }
    kv_scrub_destroy(sc);
    return rv;
}

/* A hash field's value damaged at rest: the scrub finds it, and reading
 * the field fails with KV_ECORRUPT instead of returning it. (The history
 * keeps the hash key's events, not the field values, so the field record
 * is the only copy.) */
START_TEST(test_integrity_a_damaged_hash_field_is_found_and_not_served)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    const uint8_t *f = (const uint8_t *)"fld";
    const uint8_t *v = (const uint8_t *)"field-value-0123456789";
    size_t fl = 3, vl = strlen((const char *)v), len;
    uint8_t packed[64];
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_HSET;
    c.op.type = KV_OP_HSET;
    c.op.key = (const uint8_t *)"h";
    c.op.key_len = 1;
    kv_hash_pairs_encode(1, &f, &fl, &v, &vl, packed);
    c.op.value = packed;
    c.op.value_len = (uint32_t)kv_hash_pairs_size(1, &fl, &vl);
    uint8_t *data = kvt_encode(&c, &len);
    struct kv_apply_result res;
    kvt_apply_one(s, 1, data, len, &res);
    kv_apply_result_free(&res);
    ck_assert_int_eq(scrub_pass(s, NULL), 0);
    kv_close(s);
    ck_assert_int_ge(flip_in_data(dir, "field-value-0123456789"), 1);
    s = kvt_open(dir, 16u << 20);
    ck_assert_int_eq(scrub_pass(s, NULL), KV_ECORRUPT);
    char why[256];
    ck_assert(kv_corrupt(s, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "hash_fields"));
    kv_close(s);
    /* A fresh open: the read itself finds it. */
    s = kvt_open(dir, 16u << 20);
    struct kv_range_result rr;
    uint32_t fl32 = 3;
    ck_assert_int_eq(kv_hash_read(s, (const uint8_t *)"h", 1, &f, &fl32, 1,
                                  NULL, 0, 0, false, &rr),
                     KV_ECORRUPT);
    kv_range_result_free(&rr);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A byte flipped inside a stored value: the read fails with KV_ECORRUPT
 * instead of returning the damaged value. */
START_TEST(test_integrity_a_flipped_value_byte_is_an_error_not_the_value)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    struct kv_range_result rr;
    put_one(s, 1, "victim", "precious-value-0123456789");
    put_one(s, 2, "other", "bystander-value");
    kv_close(s);
    /* Once in the record, once in the history record. */
    ck_assert_int_ge(flip_in_data(dir, "precious-value-0123456789"), 2);

    s = kvt_open(dir, 16u << 20);
    ck_assert(!kv_corrupt(s, NULL, 0));
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"victim", 6, &rr), KV_ECORRUPT);
    ck_assert_uint_eq(rr.n_kvs, 0);
    kv_range_result_free(&rr);
    char why[256];
    ck_assert(kv_corrupt(s, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "damaged"));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Once damage was found nothing more is served or applied, not even the
 * undamaged keys: the store is to be rebuilt, not trusted in part. */
START_TEST(test_integrity_a_corrupt_store_refuses_every_later_read_and_apply)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    struct kv_range_result rr;
    struct kv_range_req req;
    put_one(s, 1, "victim", "precious-value-0123456789");
    put_one(s, 2, "other", "bystander-value");
    kv_close(s);
    ck_assert_int_ge(flip_in_data(dir, "precious-value-0123456789"), 2);

    s = kvt_open(dir, 16u << 20);
    memset(&req, 0, sizeof(req));
    req.key = (const uint8_t *)"\0";
    req.key_len = 1;
    req.end = (const uint8_t *)"\0";
    req.end_len = 1;
    /* A range over everything meets the damaged record. */
    ck_assert_int_eq(kv_range(s, &req, &rr), KV_ECORRUPT);
    kv_range_result_free(&rr);
    ck_assert_int_eq(kv_get(s, (const uint8_t *)"other", 5, &rr), KV_ECORRUPT);
    kv_range_result_free(&rr);
    size_t len;
    struct kvt_batch b = {0};
    uint8_t *data = kvt_put("new", "x", &len);
    kvt_batch_add(&b, 3, data, len);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), KV_ECORRUPT);
    kvt_batch_clear(&b);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* A write over a damaged record (which must read the old one) fails the
 * batch instead of carrying the damage on. */
START_TEST(test_integrity_an_overwrite_of_a_damaged_record_fails_the_batch)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    put_one(s, 1, "victim", "precious-value-0123456789");
    kv_close(s);
    ck_assert_int_ge(flip_in_data(dir, "precious-value-0123456789"), 2);
    s = kvt_open(dir, 16u << 20);
    size_t len;
    struct kvt_batch b = {0};
    uint8_t *data = kvt_put("victim", "y", &len);
    kvt_batch_add(&b, 2, data, len);
    ck_assert_int_eq(kv_apply(s, b.e, b.n, NULL), KV_ECORRUPT);
    kvt_batch_clear(&b);
    ck_assert(kv_corrupt(s, NULL, 0));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* The history a watch replays is checked as well. */
START_TEST(test_integrity_a_flipped_history_byte_fails_the_history_read)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    struct kv_history_result hr;
    struct kv_history_pos from = {1, 0};
    put_one(s, 1, "k", "old-value-in-history-only");
    put_one(s, 2, "k", "the current value");
    kv_close(s);
    ck_assert_int_ge(flip_in_data(dir, "old-value-in-history-only"), 1);
    s = kvt_open(dir, 16u << 20);
    ck_assert_int_eq(kv_history_read(s, from, 0, &hr, NULL), KV_ECORRUPT);
    kv_history_result_free(&hr);
    ck_assert(kv_corrupt(s, NULL, 0));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* The scrub finds damage in a record no client read. */
START_TEST(test_integrity_the_scrub_finds_a_damaged_record_nobody_read)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    struct kv_scrub_stats st;
    kvt_apply_puts(s, 1, 200, "key", 50);
    put_one(s, 201, "zzz-rarely-read", "quiet-value-abcdefghij");
    ck_assert_int_eq(scrub_pass(s, &st), 0);
    ck_assert_uint_eq(st.passes, 1);
    ck_assert_uint_ge(st.records, 402);
    /* Nothing was applied during the pass: the sum was compared. */
    ck_assert_uint_eq(st.digest_checks, 1);
    kv_close(s);
    ck_assert_int_ge(flip_in_data(dir, "quiet-value-abcdefghij"), 2);
    s = kvt_open(dir, 16u << 20);
    ck_assert_int_eq(scrub_pass(s, NULL), KV_ECORRUPT);
    char why[256];
    ck_assert(kv_corrupt(s, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "zzz-rarely-read"));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Opens the LMDB environment of a closed store directly. */
static MDB_env *raw_open(const char *dir,
                         MDB_txn **txn,
                         MDB_dbi *dbi,
                         const char *db)
{
    char env_path[512];
    MDB_env *env;
    env_dir(dir, env_path, sizeof(env_path));
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, 64u << 20), 0);
    ck_assert_int_eq(mdb_env_open(env, env_path, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, txn), 0);
    ck_assert_int_eq(mdb_dbi_open(*txn, db, 0, dbi), 0);
    return env;
}

/* A record that disappears without an apply (as when a garbled branch page
 * hides part of the tree) leaves every other record intact; the sum of the
 * records no longer matches the store digest, and the scrub says so. */
START_TEST(test_integrity_the_scrub_finds_a_record_lost_without_an_apply)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    kvt_apply_puts(s, 1, 50, "key", 20);
    kv_close(s);
    MDB_txn *txn;
    MDB_dbi keys;
    MDB_env *env = raw_open(dir, &txn, &keys, "keys");
    MDB_val k = {9, (void *)"key000007"};
    ck_assert_int_eq(mdb_del(txn, keys, &k, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    s = kvt_open(dir, 16u << 20);
    ck_assert_int_eq(scrub_pass(s, NULL), KV_ECORRUPT);
    char why[256];
    ck_assert(kv_corrupt(s, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "digest"));
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Two replicas that applied the same log report the same digest at the
 * same digest entry; one whose store diverged reports another. */
START_TEST(test_integrity_the_digest_entry_tells_diverged_replicas_apart)
{
    char *da = kvt_mkdtemp(), *db = kvt_mkdtemp();
    struct kv_store *a = kvt_open(da, 16u << 20), *b = kvt_open(db, 16u << 20);
    kvt_apply_log(a, 1, 300);
    kvt_apply_log(b, 1, 300);
    uint64_t d1 = digest_at(a, 301);
    ck_assert_uint_eq(d1, digest_at(b, 301));
    ck_assert_uint_ne(d1, 0);
    /* Deletes take their records out of the digest again. */
    size_t len;
    struct kv_apply_result res;
    uint8_t *del_a = kvt_del("key007", &len);
    kvt_apply_one(a, 302, del_a, len, &res);
    kv_apply_result_free(&res);
    uint8_t *del_b = kvt_del("key007", &len);
    kvt_apply_one(b, 302, del_b, len, &res);
    kv_apply_result_free(&res);
    uint64_t d2 = digest_at(a, 303);
    ck_assert_uint_ne(d2, d1);
    ck_assert_uint_eq(d2, digest_at(b, 303));
    /* b's store diverges: a value changed as a nondeterministic apply
     * would change it, record checksum and digest kept consistent. */
    put_one(b, 304, "key008", "not what a wrote");
    put_one(a, 304, "key008", "what a wrote");
    ck_assert_uint_ne(digest_at(a, 305), digest_at(b, 305));
    /* The digest is the sum of the records: a scrub agrees with it. */
    struct kv_scrub_stats st;
    ck_assert_int_eq(scrub_pass(a, &st), 0);
    ck_assert_uint_eq(st.digest_checks, 1);
    struct kv_status sa;
    ck_assert_int_eq(kv_status(a, &sa), 0);
    ck_assert_uint_eq(sa.digest, digest_at(a, 306));
    kv_close(a);
    kv_close(b);
    kvt_rmdir(da);
    kvt_rmdir(db);
}
END_TEST

/* A snapshot is what a damaged replica is rebuilt from: a damaged store
 * does not export one. */
START_TEST(test_integrity_a_damaged_store_exports_no_snapshot)
{
    char *dir = kvt_mkdtemp();
    char path[600];
    struct kv_store *s = kvt_open(dir, 16u << 20);
    struct kv_snapshot *snap = NULL;
    put_one(s, 1, "victim", "precious-value-0123456789");
    kv_close(s);
    ck_assert_int_ge(flip_in_data(dir, "precious-value-0123456789"), 2);
    s = kvt_open(dir, 16u << 20);
    snprintf(path, sizeof(path), "%s.snap", dir);
    ck_assert_int_eq(kv_snapshot_create(s, path, &snap), KV_ECORRUPT);
    ck_assert_ptr_null(snap);
    ck_assert_int_ne(access(path, F_OK), 0);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* The checksum of a version 2 record, as that version wrote it: the
 * XXH3-64 of the bytes after it, seeded with the XXH3-64 of the key. */
static uint64_t v2_sum(const void *key,
                       size_t key_len,
                       const uint8_t *body,
                       size_t body_len)
{
    uint64_t seed = XXH3_64bits_withSeed(key, key_len, 0x62616c6c6f74u);
    return XXH3_64bits_withSeed(body, body_len, seed);
}

/* Rewrites every record of a closed store in an older layout and marks the
 * store with that version: 1 has no checksums and no lease or expiry (a
 * 24-byte "keys" header, a 25-byte history header), 2 has checksums but no
 * lease or expiry (a 32-byte "keys" header, today's history records), 3
 * has lease and expiry but no type byte (a 48-byte "keys" header). */
static void downgrade_to(const char *dir, int version)
{
    MDB_txn *txn;
    MDB_dbi dbis[2], meta;
    MDB_env *env = raw_open(dir, &txn, &dbis[0], "keys");
    ck_assert_int_eq(mdb_dbi_open(txn, "history", 0, &dbis[1]), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    for (int i = 0; i < (version == 1 ? 2 : 1); i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        ck_assert_int_eq(mdb_cursor_open(txn, dbis[i], &cur), 0);
        int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (rc == 0) {
            uint8_t buf[4096], key[512];
            const uint8_t *p = v.mv_data;
            size_t n = 0;
            ck_assert_uint_le(v.mv_size, sizeof(buf));
            ck_assert_uint_le(k.mv_size, sizeof(key));
            /* The put moves the key within the page: use a copy. */
            memcpy(key, k.mv_data, k.mv_size);
            k.mv_data = key;
            if (i == 1) {
                /* History: the checksum dropped. */
                n = v.mv_size - 8;
                memcpy(buf, p + 8, n);
            } else {
                /* Keys: the type byte (all), the checksum (v1) and the
                 * lease and expiry (v1, v2) dropped; the revisions and
                 * the value kept. Today's value starts at byte 49. */
                size_t off = version == 1 ? 0 : 8;
                size_t fields = version == 3 ? 40 : 24;
                memcpy(buf + off, p + 8, fields);
                memcpy(buf + off + fields, p + 49, v.mv_size - 49);
                n = off + fields + (v.mv_size - 49);
                if (version >= 2) {
                    uint64_t sum = v2_sum(key, k.mv_size, buf + 8, n - 8);
                    memcpy(buf, &sum, 8); /* little endian here */
                }
            }
            MDB_val nv = {n, buf};
            ck_assert_int_eq(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        ck_assert_int_eq(rc, MDB_NOTFOUND);
        mdb_cursor_close(cur);
    }
    uint8_t ver[8] = {(uint8_t)version, 0, 0, 0, 0, 0, 0, 0};
    MDB_val fk = {6, (void *)"format"}, fv = {8, ver};
    ck_assert_int_eq(mdb_put(txn, meta, &fk, &fv, 0), 0);
    MDB_val dk = {6, (void *)"digest"};
    ck_assert_int_eq(mdb_del(txn, meta, &dk, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A store written by an older version (1: before records had checksums;
 * 2: before keys had a lease and an expiry) is upgraded when opened: the
 * same data reads back, and the records and digest check. */
static void upgrade_from(int version)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    kvt_apply_log(s, 1, 400);
    uint64_t digest = digest_at(s, 401);
    char *before = kvt_dump(s);
    kv_close(s);
    downgrade_to(dir, version);
    s = kvt_open(dir, 16u << 20);
    char *after = kvt_dump(s);
    ck_assert_msg(strcmp(before, after) == 0, "the upgrade changed data");
    struct kv_scrub_stats st;
    ck_assert_int_eq(scrub_pass(s, &st), 0);
    ck_assert_uint_eq(st.digest_checks, 1);
    ck_assert_uint_eq(digest_at(s, 402), digest);
    free(before);
    free(after);
    kv_close(s);
    kvt_rmdir(dir);
}

START_TEST(test_integrity_a_version_1_store_is_upgraded_when_opened)
{
    upgrade_from(1);
}
END_TEST

START_TEST(test_integrity_a_version_2_store_is_upgraded_when_opened)
{
    upgrade_from(2);
}
END_TEST

START_TEST(test_integrity_a_version_3_store_is_upgraded_when_opened)
{
    upgrade_from(3);
}
END_TEST

/* A digest entry carries the proposer's digest at an earlier entry and
 * hands it back with the replica's own; a truncated one is refused. */
START_TEST(test_integrity_the_digest_command_round_trips_its_operands)
{
    struct kv_cmd c, d;
    size_t len;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_DIGEST;
    c.digest_index = 77;
    c.digest = 0x0123456789abcdefull;
    uint8_t *buf = kvt_encode(&c, &len);
    ck_assert_uint_eq(len, 18);
    ck_assert_int_eq(kv_cmd_decode(buf, len, NULL, &d), 0);
    ck_assert_uint_eq(d.type, KV_CMD_DIGEST);
    ck_assert_uint_eq(d.digest_index, 77);
    ck_assert_uint_eq(d.digest, 0x0123456789abcdefull);
    kv_cmd_free(&d, NULL);
    ck_assert_int_eq(kv_cmd_decode(buf, len - 1, NULL, &d), KV_EBADCMD);
    kv_cmd_free(&d, NULL);
    ck_assert(!kv_cmd_adds_data(buf, len));

    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 16u << 20);
    struct kv_apply_result res;
    kvt_apply_one(s, 1, buf, len, &res);
    ck_assert_uint_eq(res.entries[0].digest_check_index, 77);
    ck_assert_uint_eq(res.entries[0].digest_check, 0x0123456789abcdefull);
    ck_assert_uint_eq(res.entries[0].digest, 0);
    kv_apply_result_free(&res);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

Suite *kv_integrity_suite(void)
{
    Suite *s = suite_create("integrity");
    TCase *tc = tcase_create("integrity");
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, test_integrity_a_flipped_value_byte_is_an_error_not_the_value);
    tcase_add_test(
        tc, test_integrity_a_corrupt_store_refuses_every_later_read_and_apply);
    tcase_add_test(
        tc, test_integrity_an_overwrite_of_a_damaged_record_fails_the_batch);
    tcase_add_test(
        tc, test_integrity_a_flipped_history_byte_fails_the_history_read);
    tcase_add_test(tc,
                   test_integrity_the_scrub_finds_a_damaged_record_nobody_read);
    tcase_add_test(
        tc, test_integrity_the_scrub_finds_a_record_lost_without_an_apply);
    tcase_add_test(
        tc, test_integrity_the_digest_entry_tells_diverged_replicas_apart);
    tcase_add_test(tc, test_integrity_a_damaged_store_exports_no_snapshot);
    tcase_add_test(tc,
                   test_integrity_a_version_1_store_is_upgraded_when_opened);
    tcase_add_test(tc,
                   test_integrity_a_version_2_store_is_upgraded_when_opened);
    tcase_add_test(tc,
                   test_integrity_a_version_3_store_is_upgraded_when_opened);
    tcase_add_test(tc,
                   test_integrity_a_damaged_hash_field_is_found_and_not_served);
    tcase_add_test(tc,
                   test_integrity_the_digest_command_round_trips_its_operands);
    suite_add_tcase(s, tc);
    return s;
}
