/*
 * test_datadir.c - net/datadir.c: the configuration a new cluster starts
 * with, and restoring a data directory from a snapshot file, checked by
 * opening what it made the way the node does (kv, WAL, raft_restore).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "kv.h"
#include "wal.h"

static char tmp[64];
static char snap_path[512], data[512];
static struct bnode_options opts;
static char *expected; /* kvt_dump() of the store the snapshot holds */

static void apply_cmd(struct kv_store *kv,
                      raft_index index,
                      const struct kv_cmd *cmd)
{
    struct raft_entry e;
    uint8_t buf[512];
    size_t len;
    ck_assert_int_eq(kv_cmd_encode(cmd, buf, sizeof(buf), &len), 0);
    memset(&e, 0, sizeof(e));
    e.index = index;
    e.term = 1;
    e.type = RAFT_ENTRY_NORMAL;
    e.data = buf;
    e.len = (uint32_t)len;
    ck_assert_int_eq(kv_apply(kv, &e, 1, NULL), 0);
}

/* Applies a put (@value) or a delete (@value NULL) at @index. */
static void apply(struct kv_store *kv,
                  raft_index index,
                  const char *key,
                  const char *value)
{
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = value != NULL ? KV_CMD_PUT : KV_CMD_DELETE;
    cmd.op.type = cmd.type;
    cmd.op.key = (const uint8_t *)key;
    cmd.op.key_len = (uint32_t)strlen(key);
    cmd.op.value = (const uint8_t *)value;
    cmd.op.value_len = value != NULL ? (uint32_t)strlen(value) : 0;
    apply_cmd(kv, index, &cmd);
}

/* Records at @index that member 9 listens at an address of the old
 * cluster. */
static void apply_member_record(struct kv_store *kv, raft_index index)
{
    uint8_t key[8];
    struct kv_cmd cmd;
    kv_cmd_member(&cmd, key, 9, "10.9.9.9:7379:7380", 18);
    apply_cmd(kv, index, &cmd);
}

/* The whole state of a store as text: applied index, revision, and every
 * pair with its metadata. */
static char *dump(struct kv_store *kv)
{
    struct kv_status st;
    struct kv_range_req req;
    struct kv_range_result res;
    char *out = malloc(1 << 16);
    size_t n = 0;
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(kv_status(kv, &st), 0);
    n += (size_t)snprintf(out, 1 << 16, "applied %llu revision %llu\n",
                          (unsigned long long)st.applied,
                          (unsigned long long)st.revision);
    memset(&req, 0, sizeof(req));
    req.flags = KV_FLAG_PREFIX;
    ck_assert_int_eq(kv_range(kv, &req, &res), 0);
    for (size_t i = 0; i < res.n_kvs; i++) {
        const struct kv_kv *p = &res.kvs[i];
        n += (size_t)snprintf(
            out + n, (1 << 16) - n, "%.*s=%.*s %llu %llu %llu\n",
            (int)p->key_len, (const char *)p->key, (int)p->value_len,
            (const char *)p->value, (unsigned long long)p->create_revision,
            (unsigned long long)p->mod_revision,
            (unsigned long long)p->version);
    }
    kv_range_result_free(&res);
    return out;
}

static struct kv_store *open_store(const char *dir)
{
    struct kv_store *kv = NULL;
    char err[256];
    ck_assert_msg(kv_open(dir, NULL, &kv, err, sizeof(err)) == 0, "%s", err);
    return kv;
}

/* Three members, this node is 1; a store with 50 keys (some rewritten,
 * one deleted) and its snapshot in snap_path. */
static void setup(void)
{
    struct kv_snapshot *snap;
    char dir[512], key[32];
    snprintf(tmp, sizeof(tmp), "/tmp/ballot-datadir-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(snap_path, sizeof(snap_path), "%s/backup.snap", tmp);
    snprintf(data, sizeof(data), "%s/data", tmp);
    snprintf(dir, sizeof(dir), "%s/store", tmp);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    struct kv_store *kv = open_store(dir);
    raft_index index = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "key%06d", i);
        apply(kv, ++index, key, "first value");
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "key%06d", i);
        apply(kv, ++index, key, "second");
    }
    apply(kv, ++index, "key000003", NULL);
    apply_member_record(kv, ++index);
    ck_assert_int_eq(kv_snapshot_create(kv, snap_path, &snap), 0);
    kv_snapshot_close(snap);
    expected = dump(kv);
    kv_close(kv);

    memset(&opts, 0, sizeof(opts));
    opts.id = 1;
    opts.data_dir = data;
    opts.n_members = 3;
    for (unsigned i = 0; i < 3; i++) {
        opts.members[i].id = i + 1;
        snprintf(opts.members[i].host, sizeof(opts.members[i].host),
                 "127.0.0.%u", i + 1);
        opts.members[i].client_port = 7379;
        opts.members[i].peer_port = 7380;
    }
}

static void teardown(void)
{
    char cmd[128];
    free(expected);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Without voters named every member is a voter; with them, only they. */
START_TEST(test_datadir_initial_conf_is_the_voters_or_every_member)
{
    struct raft_conf conf;
    ck_assert(datadir_initial_conf(&opts, &conf));
    ck_assert_uint_eq(conf.n, 3);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_uint_eq(conf.members[i].id, i + 1);
        ck_assert_uint_eq(conf.members[i].role, RAFT_VOTER);
    }
    opts.n_voters = 2;
    opts.voters[0] = 3;
    opts.voters[1] = 2;
    ck_assert(!datadir_initial_conf(&opts, &conf));
    ck_assert_uint_eq(conf.n, 2);
    ck_assert_uint_eq(conf.members[0].id, 2);
    ck_assert_uint_eq(conf.members[1].id, 3);
    opts.id = 3;
    ck_assert(datadir_initial_conf(&opts, &conf));
}
END_TEST

/* The restored directory holds exactly the snapshot's store, and a WAL
 * whose base is the snapshot's index in the new configuration, with no
 * entries after it: the core restores from it at that index. */
START_TEST(test_datadir_restore_builds_a_node_at_the_snapshot)
{
    struct datadir_restored res;
    struct wal_options wo;
    struct wal_loaded loaded;
    struct wal *wal;
    struct raft_node *raft;
    struct raft_config cfg;
    char err[512], path[600];
    ck_assert_msg(
        datadir_restore(snap_path, &opts, &res, err, sizeof(err)) == 0, "%s",
        err);
    ck_assert_uint_eq(res.index, 62);
    ck_assert_uint_eq(res.term, DATADIR_RESTORE_TERM);
    ck_assert_uint_eq(res.revision, 61);
    ck_assert_uint_eq(res.conf.n, 3);

    snprintf(path, sizeof(path), "%s/%s", data, DATADIR_KV);
    struct kv_store *kv = open_store(path);
    char *got = dump(kv);
    ck_assert_ptr_nonnull(strstr(expected, "applied 62 revision 61\n"));
    ck_assert_ptr_nonnull(strstr(expected, "key000000=second 1 51 2\n"));
    ck_assert_ptr_nonnull(strstr(expected, "key000049=first value 50 50 1\n"));
    ck_assert_ptr_null(strstr(expected, "key000003="));
    ck_assert_str_eq(got, expected);
    free(got);
    /* The old cluster's recorded member addresses are not carried over:
     * the restored cluster's members are those of the restore. */
    struct kv_member members[KV_MEMBERS_MAX];
    size_t n_members = 1;
    ck_assert_int_eq(kv_members(kv, members, KV_MEMBERS_MAX, &n_members), 0);
    ck_assert_uint_eq(n_members, 0);
    kv_close(kv);

    snprintf(path, sizeof(path), "%s/%s", data, DATADIR_WAL);
    wal_options_default(&wo);
    ck_assert_int_eq(wal_create(&wo, &wal), 0);
    ck_assert_int_eq(wal_open(wal, path, &loaded), 0);
    ck_assert(loaded.has_snapshot);
    ck_assert_uint_eq(loaded.snapshot.index, 62);
    ck_assert_uint_eq(loaded.snapshot.term, DATADIR_RESTORE_TERM);
    ck_assert_uint_eq(loaded.snapshot.conf.n, 3);
    ck_assert_uint_eq(loaded.snapshot.size, res.size);
    ck_assert_uint_eq(loaded.n_entries, 0);
    ck_assert_uint_eq(loaded.hs.term, DATADIR_RESTORE_TERM);
    ck_assert_uint_eq(loaded.hs.vote, 0);
    ck_assert_uint_eq(loaded.hs.commit, 62);
    ck_assert_uint_eq(loaded.repairs, 0);

    raft_config_default(&cfg, 1, 42);
    ck_assert_int_eq(raft_node_create(&cfg, &raft), 0);
    ck_assert_int_eq(raft_restore(raft, &loaded.hs, &loaded.snapshot,
                                  loaded.entries, loaded.n_entries, 62),
                     0);
    ck_assert_uint_eq(raft_last_index(raft), 62);
    ck_assert_uint_eq(raft_commit_index(raft), 62);
    ck_assert_uint_eq(raft_conf_voters(raft_conf_of(raft)), 3);
    raft_node_destroy(raft);
    wal_loaded_free(wal, &loaded);
    wal_destroy(wal);
}
END_TEST

/* Flips one byte of the snapshot file at @off. */
static void flip(off_t off)
{
    int fd = open(snap_path, O_RDWR);
    unsigned char b;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void refused(int code, const char *what)
{
    struct datadir_restored res;
    char err[512];
    ck_assert_int_eq(datadir_restore(snap_path, &opts, &res, err, sizeof(err)),
                     code);
    ck_assert_msg(strstr(err, what) != NULL, "%s", err);
    ck_assert(!exists(data)); /* nothing was created */
}

/* A damaged, cut or missing file is refused before anything is made. */
START_TEST(test_datadir_restore_refuses_a_damaged_snapshot)
{
    struct stat st;
    ck_assert_int_eq(stat(snap_path, &st), 0);
    flip(st.st_size / 2);
    refused(DATADIR_ECORRUPT, "payload checksum mismatch");
    flip(st.st_size / 2);
    flip(20); /* the applied index, in the header */
    refused(DATADIR_ECORRUPT, "header checksum mismatch");
    flip(20);
    ck_assert_int_eq(truncate(snap_path, st.st_size - 1), 0);
    refused(DATADIR_ECORRUPT, "header announces");
    unlink(snap_path);
    refused(DATADIR_EIO, "No such file");
}
END_TEST

/* A directory with anything in it is never touched; an empty one is
 * used. */
START_TEST(test_datadir_restore_refuses_a_directory_that_is_not_empty)
{
    struct datadir_restored res;
    char err[512], path[600];
    ck_assert_int_eq(mkdir(data, 0755), 0);
    snprintf(path, sizeof(path), "%s/precious", data);
    FILE *f = fopen(path, "w");
    fputs("keep me", f);
    fclose(f);
    ck_assert_int_eq(datadir_restore(snap_path, &opts, &res, err, sizeof(err)),
                     DATADIR_EEXIST);
    ck_assert_ptr_nonnull(strstr(err, "is not empty"));
    unlink(path);
    ck_assert_int_eq(datadir_restore(snap_path, &opts, &res, err, sizeof(err)),
                     0);
    snprintf(path, sizeof(path), "%s/%s/hardstate", data, DATADIR_WAL);
    ck_assert(exists(path));
}
END_TEST

/* A node that is not among the voters would start as a stranger to the
 * new configuration: it is refused. */
START_TEST(test_datadir_restore_refuses_a_node_that_is_not_a_voter)
{
    opts.n_voters = 2;
    opts.voters[0] = 2;
    opts.voters[1] = 3;
    refused(DATADIR_EINVAL, "is not a voter");
}
END_TEST

/* A torn store is rebuilt from the newest snapshot file in range that
 * verifies (a damaged newer one is skipped, the recorded members kept), or
 * empty when the log starts at index 1; with no usable file for a log that
 * starts later, it is refused. */
START_TEST(test_datadir_rebuild_kv_from_the_newest_usable_snapshot)
{
    char dir[600], cmd[3200], err[512], path[700];
    raft_index used = 99;
    snprintf(dir, sizeof(dir), "%s/%s", data, DATADIR_SNAP);
    ck_assert_int_eq(mkdir(data, 0755), 0);
    /* No snapshot and a log from index 1: an empty store. */
    ck_assert_int_eq(
        datadir_rebuild_kv(data, 0, 10, 0, &used, err, sizeof(err)), 0);
    ck_assert_uint_eq(used, 0);
    snprintf(path, sizeof(path), "%s/%s", data, DATADIR_KV);
    struct kv_store *kv = open_store(path);
    struct kv_status st;
    ck_assert_int_eq(kv_status(kv, &st), 0);
    ck_assert_uint_eq(st.applied, 0);
    kv_close(kv);

    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(cmd, sizeof(cmd),
             "cp %s %s/00000000000000000062.snap && "
             "head -c 5000 /dev/urandom > %s/00000000000000000070.snap && "
             "touch %s/00000000000000000200.snap %s/new.snap",
             snap_path, dir, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(
        datadir_rebuild_kv(data, 60, 80, 0, &used, err, sizeof(err)) == 0, "%s",
        err);
    ck_assert_uint_eq(used, 62);
    kv = open_store(path);
    char *got = dump(kv);
    ck_assert_str_eq(got, expected);
    free(got);
    struct kv_member members[KV_MEMBERS_MAX];
    size_t n_members = 0;
    ck_assert_int_eq(kv_members(kv, members, KV_MEMBERS_MAX, &n_members), 0);
    ck_assert_uint_eq(n_members, 1);
    kv_close(kv);

    /* A crash after the new store was complete but before it replaced the
     * torn one: the next start puts it in place; an incomplete one is
     * dropped. */
    snprintf(cmd, sizeof(cmd),
             "cp -r %s/kv %s/kv.new && touch %s/kv.new/marker && "
             "mkdir %s/kv.tmp && touch %s/kv/junk %s/kv.tmp/junk",
             data, data, data, data, data, data);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(datadir_finish_rebuild(data, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/kv/marker", data);
    ck_assert(exists(path));
    snprintf(path, sizeof(path), "%s/kv/junk", data);
    ck_assert(!exists(path));
    snprintf(path, sizeof(path), "%s/kv.new", data);
    ck_assert(!exists(path));
    snprintf(path, sizeof(path), "%s/kv.tmp", data);
    ck_assert(!exists(path));
    ck_assert_int_eq(datadir_finish_rebuild(data, err, sizeof(err)), 0);

    /* The log starts after 62: no file covers it. */
    ck_assert_int_eq(
        datadir_rebuild_kv(data, 63, 80, 0, &used, err, sizeof(err)),
        DATADIR_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "add this node again"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datadir");
    TCase *tc = tcase_create("datadir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_datadir_initial_conf_is_the_voters_or_every_member);
    tcase_add_test(tc, test_datadir_restore_builds_a_node_at_the_snapshot);
    tcase_add_test(tc, test_datadir_restore_refuses_a_damaged_snapshot);
    tcase_add_test(tc,
                   test_datadir_restore_refuses_a_directory_that_is_not_empty);
    tcase_add_test(tc, test_datadir_restore_refuses_a_node_that_is_not_a_voter);
    tcase_add_test(tc, test_datadir_rebuild_kv_from_the_newest_usable_snapshot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
