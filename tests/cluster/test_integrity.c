/*
 * test_integrity.c - damaged or diverged data at rest, against real
 * ballotd processes (docs/operations.md, "Damaged data"): a flipped byte
 * in a value is an error to the client and halts the node, never the
 * value; a damaged LMDB page is refused at start with a message, without
 * an abort or a core; a missing hardstate is refused; the scrub finds
 * damage nobody read; a replica whose store diverged is reported by the
 * digest check.
 *
 * Damage is done as a disk does it: bytes of a node's data file are
 * changed in place, found by searching the file for them.
 */
#define _GNU_SOURCE /* unshare() */
#include <check.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kv_internal.h"

static struct cluster cl;

/* The tmpfs of the sizing test, unmounted however the test ends. */
static char mounted[600];

static void unmount_at_exit(void)
{
    if (mounted[0] != 0) {
        (void)umount2(mounted, MNT_DETACH);
        mounted[0] = 0;
    }
}

static void teardown(void)
{
    /* The nodes go first, or the file system they use stays busy. */
    for (unsigned id = 1; id <= cl.n; id++) {
        if (cl.nodes[id - 1].pid != 0) {
            cl_kill(&cl, id);
        }
    }
    unmount_at_exit();
    cl_close_all(&cl);
}

/* A small map keeps data.mdb (as large as the map) quick to search; no
 * check at start and no scrub unless a test asks, so that the read path
 * is what meets the damage. */
static const char *const small_args[] = {"--kv_map_size",
                                         "16777216",
                                         "--verify_at_start",
                                         "false",
                                         "--scrub_bytes_per_sec",
                                         "0",
                                         NULL};

/* DATA/kv/<live generation>/data.mdb of node @id. */
static void data_file(unsigned id, char *out, size_t len)
{
    char cur[700], name[64] = "";
    snprintf(cur, sizeof(cur), "%s/kv/CURRENT", cl.nodes[id - 1].dir);
    FILE *f = fopen(cur, "r");
    ck_assert_msg(f != NULL, "no %s", cur);
    ck_assert_ptr_nonnull(fgets(name, sizeof(name), f));
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    snprintf(out, len, "%s/kv/%s/data.mdb", cl.nodes[id - 1].dir, name);
}

/* Applies @fn to every copy of @needle in node @id's data file: returns
 * how many there were. @fn gets the file's bytes and the copy's offset. */
static int edit_data(unsigned id,
                     const char *needle,
                     void (*fn)(uint8_t *buf, size_t size, size_t at))
{
    char path[800];
    struct stat st;
    data_file(id, path, sizeof(path));
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
            fn(buf, n, i + nl - 1);
            found++;
        }
    }
    ck_assert_int_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
    close(fd);
    free(buf);
    return found;
}

static void flip_bit(uint8_t *buf, size_t size, size_t at)
{
    (void)size;
    buf[at] ^= 0x01;
}

/* Zeroes the whole 4 KiB page the byte is in: its header too. */
static void zero_page(uint8_t *buf, size_t size, size_t at)
{
    size_t page = at / 4096 * 4096;
    memset(buf + page, 0, page + 4096 <= size ? 4096 : size - page);
}

static void set_key(unsigned id, const char *key, const char *value)
{
    struct cl_reply r;
    const char *argv[] = {"SET", key, value};
    ck_assert_int_eq(cl_cmd(&cl, id, 10000, &r, 3, argv), 0);
    ck_assert_msg(r.type == CL_STATUS, "SET %s: %s", key,
                  r.str != NULL ? r.str : "?");
    cl_reply_free(&r);
}

/* Waits (bounded) for node @id to exit; returns its wait status, or -1 if
 * it is still running. */
static int wait_exit(unsigned id, int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    int status = -1;
    while (cl_now_ms() < end) {
        pid_t r = waitpid(cl.nodes[id - 1].pid, &status, WNOHANG);
        if (r == cl.nodes[id - 1].pid) {
            cl.nodes[id - 1].pid = 0;
            return status;
        }
        usleep(20000);
    }
    return -1;
}

/* Node @id's log (malloc'ed). */
static char *node_log(unsigned id)
{
    char path[400], *log = NULL;
    snprintf(path, sizeof(path), "%s/node%u.log", cl.root, id);
    const char *argv[] = {"cat", path, NULL};
    cl_run(argv, NULL, &log, NULL, 5000);
    return log != NULL ? log : strdup("");
}

/* An integer field of node @id's BSTATUS (-1 if it is not there). */
static long long bstatus_int(unsigned id, const char *name, char *str_out)
{
    struct cl_reply r;
    const char *argv[] = {"BSTATUS"};
    long long v = -1;
    if (cl_cmd(&cl, id, 5000, &r, 1, argv) != 0) {
        return -1;
    }
    for (size_t i = 0; r.type == CL_ARRAY && i + 1 < r.n_elems; i += 2) {
        if (r.elems[i].str != NULL && strcmp(r.elems[i].str, name) == 0) {
            if (r.elems[i + 1].type == CL_INT) {
                v = r.elems[i + 1].integer;
            } else if (str_out != NULL && r.elems[i + 1].str != NULL) {
                snprintf(str_out, 32, "%s", r.elems[i + 1].str);
                v = 0;
            }
        }
    }
    cl_reply_free(&r);
    return v;
}

/* A byte flipped inside a value in the data file of a stopped node: after
 * the restart, reading the key is a clear error, never the damaged value,
 * and the node halts saying to rebuild it from a peer's snapshot. */
START_TEST(test_integrity_flipped_value_byte_is_an_error_not_the_value)
{
    struct cl_reply r;
    cl_start_args(&cl, 1, small_args);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    set_key(1, "victim", "precious-value-0123456789");
    set_key(1, "other", "bystander");
    ck_assert_int_eq(cl_term(&cl, 1), 0);
    ck_assert_int_ge(edit_data(1, "precious-value-0123456789", flip_bit), 1);

    cl_start_node(&cl, 1);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    const char *get[] = {"GET", "victim"};
    ck_assert_int_eq(cl_cmd(&cl, 1, 10000, &r, 2, get), 0);
    ck_assert_msg(r.type == CL_ERR, "the damaged value was served: %s",
                  r.str != NULL ? r.str : "(nil)");
    ck_assert_msg(strstr(r.str, "corrupt") != NULL, "unclear error: %s", r.str);
    ck_assert(strstr(r.str, "precious-value-012345678") == NULL);
    cl_reply_free(&r);

    /* The node stops serving: it halts and exits (the supervisor's
     * restart then meets the check at start). */
    int status = wait_exit(1, 15000);
    ck_assert_msg(status != -1, "the node kept running on a damaged store");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status 0x%x",
                  status);
    char *log = node_log(1);
    ck_assert_msg(strstr(log, "store damaged") != NULL &&
                      strstr(log, "rebuild this node") != NULL,
                  "%s", log);
    free(log);
}
END_TEST

/* A zeroed page (header included) under the keys: the node refuses to
 * start with a message that says why, and exits normally: no LMDB
 * assertion, no abort, no core. */
START_TEST(test_integrity_damaged_page_refuses_to_start_without_abort)
{
    const char *args[] = {"--kv_map_size", "16777216", NULL};
    char key[64], value[128];
    cl_start_args(&cl, 1, args);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    /* Enough keys for a tree of several pages. */
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "key-%04d", i);
        snprintf(value, sizeof(value), "value-%04d-%060d", i, i);
        set_key(1, key, value);
    }
    ck_assert_int_eq(cl_term(&cl, 1), 0);
    ck_assert_int_ge(edit_data(1, "value-0150-", zero_page), 1);

    cl_start_node(&cl, 1);
    int status = wait_exit(1, 30000);
    ck_assert_msg(status != -1, "the node started on a damaged store");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
                  "the node died of a signal: status 0x%x", status);
    char *log = node_log(1);
    ck_assert_msg(strstr(log, "is damaged") != NULL &&
                      strstr(log, "refusing to start") != NULL &&
                      strstr(log, "rebuild this node") != NULL,
                  "%s", log);
    free(log);
    char core[700];
    snprintf(core, sizeof(core), "%s/core", cl.nodes[0].dir);
    ck_assert_int_ne(access(core, F_OK), 0);
}
END_TEST

/* A deleted wal/hardstate next to a log of some term is refused at start
 * (the term and the vote are lost), not read as term 0. */
START_TEST(test_integrity_missing_hardstate_is_refused)
{
    char path[700];
    cl_start_args(&cl, 1, small_args);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    set_key(1, "k", "v");
    ck_assert_int_eq(cl_term(&cl, 1), 0);
    snprintf(path, sizeof(path), "%s/wal/hardstate", cl.nodes[0].dir);
    ck_assert_int_eq(unlink(path), 0);
    cl_start_node(&cl, 1);
    int status = wait_exit(1, 15000);
    ck_assert_msg(status != -1, "the node started without its hard state");
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    char *log = node_log(1);
    ck_assert_msg(strstr(log, "hardstate is missing") != NULL, "%s", log);
    free(log);
}
END_TEST

/* Damage in a value nobody reads, made while the node runs: the scrub
 * finds it and the node halts. */
START_TEST(test_integrity_scrub_finds_damage_nobody_read)
{
    const char *args[] = {"--kv_map_size",
                          "16777216",
                          "--scrub_bytes_per_sec",
                          "1000000",
                          "--checkpoint_idle_ms",
                          "100",
                          NULL};
    cl_start_args(&cl, 1, args);
    ck_assert_uint_ne(cl_wait_leader(&cl, 10000), 0);
    set_key(1, "quiet", "never-read-value-abcdefghij");
    /* The map is shared: a change to the file is what the node reads. */
    ck_assert_int_ge(edit_data(1, "never-read-value-abcdefghij", flip_bit), 1);
    int status = wait_exit(1, 20000);
    ck_assert_msg(status != -1, "the scrub did not find the damage");
    char *log = node_log(1);
    ck_assert_msg(strstr(log, "store damaged") != NULL, "%s", log);
    free(log);
}
END_TEST

/* Changes key @key's value in node @id's stopped store to @value the way a
 * nondeterministic apply would: a well-formed record, and a store digest
 * kept consistent with it, so that only a comparison with the other
 * replicas can tell. */
static void diverge(unsigned id, const char *key, const char *value)
{
    char path[800];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi keys, meta;
    data_file(id, path, sizeof(path));
    *strrchr(path, '/') = 0;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, 16u << 20), 0);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "keys", 0, &keys), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {strlen(key), (void *)key}, v;
    ck_assert_int_eq(mdb_get(txn, keys, &k, &v), 0);
    struct kv_kv kv;
    ck_assert_int_eq(kv_record_decode(&k, &v, &kv), 0);
    uint64_t old_sum = kv_record_sum(&v);
    uint8_t rec[KV_REC_HEADER + 256];
    kv.value = (const uint8_t *)value;
    kv.value_len = (uint32_t)strlen(value);
    kv_record_encode(&kv, rec);
    MDB_val nv = {KV_REC_HEADER + kv.value_len, rec};
    ck_assert_int_eq(mdb_put(txn, keys, &k, &nv, 0), 0);
    MDB_val dk = {strlen(KV_META_DIGEST), (void *)KV_META_DIGEST}, dv;
    ck_assert_int_eq(mdb_get(txn, meta, &dk, &dv), 0);
    uint8_t d[8];
    kv_put_u64le(d, kv_get_u64le(dv.mv_data) - old_sum + kv_record_sum(&nv));
    MDB_val ndv = {8, d};
    ck_assert_int_eq(mdb_put(txn, meta, &dk, &ndv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    ck_assert_int_eq(mdb_env_sync(env, 1), 0);
    mdb_env_close(env);
}

/* A replica whose store diverged (its checksums and digest consistent, so
 * no local check can tell) is reported by the digest entries: at the same
 * digest index its digest differs from the others', and the replicas that
 * compare see a mismatch and log it. */
START_TEST(test_integrity_diverged_replica_is_reported_by_the_digest)
{
    const char *args[] = {"--kv_map_size", "16777216", "--digest_every_ms",
                          "200", NULL};
    char key[32];
    cl_start_args(&cl, 3, args);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "key-%02d", i);
        set_key(leader, key, "the same everywhere");
    }
    unsigned odd = leader == 3 ? 2 : 3;
    /* Every replica has applied the writes once a later digest entry is
     * on all of them. */
    uint64_t end = cl_now_ms() + 20000;
    long long idx = 0;
    do {
        usleep(100000);
        idx = bstatus_int(odd, "digest_index", NULL);
    } while (idx <= 0 && cl_now_ms() < end);
    ck_assert_int_gt(idx, 0);
    usleep(500000);
    ck_assert_int_eq(cl_term(&cl, odd), 0);
    diverge(odd, "key-07", "something else");
    cl_start_node(&cl, odd);

    /* The checker: the same digest index everywhere, one digest apart. */
    bool reported = false;
    end = cl_now_ms() + 30000;
    while (!reported && cl_now_ms() < end) {
        usleep(200000);
        long long mismatches = 0;
        for (unsigned id = 1; id <= 3; id++) {
            long long m = bstatus_int(id, "digest_mismatches", NULL);
            mismatches += m > 0 ? m : 0;
        }
        reported = mismatches > 0;
    }
    ck_assert_msg(reported, "no replica reported the divergence");
    bool told = false;
    for (unsigned id = 1; id <= 3 && !told; id++) {
        char *log = node_log(id);
        told = strstr(log, "store diverged") != NULL;
        free(log);
    }
    ck_assert_msg(told, "no log line says the store diverged");
    /* Published digests: at one digest index, the odd replica's differs
     * from the two that agree. */
    end = cl_now_ms() + 20000;
    bool apart = false;
    while (!apart && cl_now_ms() < end) {
        char d[3][32] = {"", "", ""};
        long long ix[3];
        for (unsigned id = 1; id <= 3; id++) {
            ix[id - 1] = bstatus_int(id, "digest_index", NULL);
            (void)bstatus_int(id, "digest", d[id - 1]);
        }
        if (ix[0] > 0 && ix[0] == ix[1] && ix[1] == ix[2]) {
            unsigned a = odd == 1 ? 2 : 1, b = odd == 3 ? 2 : 3;
            apart = strcmp(d[a - 1], d[b - 1]) == 0 &&
                    strcmp(d[a - 1], d[odd - 1]) != 0;
            ck_assert_msg(apart, "digests at %lld: %s %s %s", ix[0], d[0], d[1],
                          d[2]);
        }
        usleep(50000);
    }
    ck_assert(apart);
}
END_TEST

/* Bytes of disk the files under @dir hold (holes not counted). */
static uint64_t disk_usage(const char *dir)
{
    char *out = NULL;
    const char *argv[] = {"du", "-s", "-B1", dir, NULL};
    ck_assert_int_eq(cl_run(argv, NULL, &out, NULL, 30000), 0);
    uint64_t n = strtoull(out, NULL, 10);
    free(out);
    return n;
}

static void copy_tree(const char *from, const char *to)
{
    char src[700];
    snprintf(src, sizeof(src), "%s/.", from);
    /* Holes stay holes: a disk reservation is not data. */
    const char *argv[] = {"cp", "-a", "--sparse=always", src, to, NULL};
    ck_assert_int_eq(cl_run(argv, NULL, NULL, NULL, 60000), 0);
}

/* The free disk a node needs beyond its data to start again (documented
 * in docs/operations.md, "Space"): the store's headroom, a WAL segment and
 * slack. */
#define SIZING_MARGIN_BYTES (192ull << 20)

/* A node whose data directory holds a few hundred MiB starts again, and
 * takes writes, on a file system with only SIZING_MARGIN_BYTES free
 * beyond its data (it used to want about twice and a half the store's
 * size free before its first apply). */
START_TEST(test_integrity_restart_needs_only_data_and_a_modest_margin)
{
    enum { KEYS = 6000, VALUE = 32768 };
    char copy[300], key[32];
    struct cl_conn conn;
    struct cl_reply r;
    /* A mount namespace of this test's own: its mounts vanish with it
     * (and the nodes it starts), however it ends. */
    ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare: %s", strerror(errno));
    ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    cl_prepare_args(&cl, 1, NULL);
    struct cl_node *nd = &cl.nodes[0];
    ck_assert_int_eq(mkdir(nd->dir, 0755), 0);
    ck_assert_msg(mount("tmpfs", nd->dir, "tmpfs", 0, "size=2g") == 0,
                  "mount: %s", strerror(errno));
    snprintf(mounted, sizeof(mounted), "%s", nd->dir);
    atexit(unmount_at_exit);
    cl_start_node(&cl, 1);
    ck_assert_uint_eq(cl_wait_leader(&cl, 10000), 1);
    char *value = malloc(VALUE);
    ck_assert_ptr_nonnull(value);
    ck_assert_int_eq(cl_connect(&conn, nd->client_port, 3000), 0);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "key%05d", i);
        memset(value, 'a' + i % 26, VALUE);
        const char *argv[] = {"SET", key, value};
        size_t lens[] = {3, strlen(key), VALUE};
        ck_assert_int_eq(cl_callv(&conn, 10000, &r, 3, argv, lens), 0);
        ck_assert_int_eq(r.type, CL_STATUS);
        cl_reply_free(&r);
    }
    cl_close(&conn);
    ck_assert_int_eq(cl_term(&cl, 1), 0);

    /* The same data on a file system of data + margin. */
    snprintf(copy, sizeof(copy), "%s/copy", cl.root);
    ck_assert_int_eq(mkdir(copy, 0755), 0);
    copy_tree(nd->dir, copy);
    unmount_at_exit();
    uint64_t data = disk_usage(copy);
    char opts[64];
    snprintf(opts, sizeof(opts), "size=%llu",
             (unsigned long long)(data + SIZING_MARGIN_BYTES));
    ck_assert_int_eq(mount("tmpfs", nd->dir, "tmpfs", 0, opts), 0);
    snprintf(mounted, sizeof(mounted), "%s", nd->dir);
    copy_tree(copy, nd->dir);
    fprintf(stderr, "data %llu MiB, file system %llu MiB\n",
            (unsigned long long)(data >> 20),
            (unsigned long long)((data + SIZING_MARGIN_BYTES) >> 20));

    cl_start_node(&cl, 1);
    ck_assert_uint_eq(cl_wait_leader(&cl, 15000), 1);
    ck_assert_int_eq(cl_connect(&conn, nd->client_port, 3000), 0);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "new%05d", i);
        memset(value, 'z', VALUE);
        const char *argv[] = {"SET", key, value};
        size_t lens[] = {3, strlen(key), VALUE};
        ck_assert_int_eq(cl_callv(&conn, 10000, &r, 3, argv, lens), 0);
        ck_assert_msg(r.type == CL_STATUS, "SET after the restart: %s",
                      r.str != NULL ? r.str : "?");
        cl_reply_free(&r);
    }
    const char *get[] = {"GET", "key04321"};
    ck_assert_int_eq(cl_call(&conn, 5000, &r, 2, get), 0);
    ck_assert(r.type == CL_BULK && r.len == VALUE &&
              r.str[0] == 'a' + 4321 % 26);
    cl_reply_free(&r);
    cl_close(&conn);
    free(value);
    cl_kill(&cl, 1);
    unmount_at_exit();
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"flipped_value_byte_is_an_error_not_the_value",
         test_integrity_flipped_value_byte_is_an_error_not_the_value},
        {"damaged_page_refuses_to_start_without_abort",
         test_integrity_damaged_page_refuses_to_start_without_abort},
        {"missing_hardstate_is_refused",
         test_integrity_missing_hardstate_is_refused},
        {"scrub_finds_damage_nobody_read",
         test_integrity_scrub_finds_damage_nobody_read},
        {"diverged_replica_is_reported_by_the_digest",
         test_integrity_diverged_replica_is_reported_by_the_digest},
        {"restart_needs_only_data_and_a_modest_margin",
         test_integrity_restart_needs_only_data_and_a_modest_margin},
    };
    /* The sizing test mounts file systems: root only (ctest counts exit
     * code 77 as skipped). */
    if (argc > 1 && strstr(argv[1], "margin") != NULL && geteuid() != 0) {
        fprintf(stderr, "skipped: mounting a tmpfs needs root\n");
        return 77;
    }
    return cl_run_tests("integrity", tests, sizeof(tests) / sizeof(tests[0]),
                        120, teardown, argc, argv);
}
