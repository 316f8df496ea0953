/*
 * test_bsnapshot.c - BSNAPSHOT through real TCP against the fake node: a
 * copy streamed in chunks verifies and holds the store; every bad argument
 * gets its error; exports are limited, belong to their connection, and are
 * deleted by DONE and when the connection closes.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "harness.h"
#include "kv.h"

static struct harness h;
static struct cli c;

static void setup(void)
{
    harness_start(&h, NULL);
    cli_open(&c, h.port);
}

static void teardown(void)
{
    cli_close(&c);
    harness_stop(&h);
    q_release();
}

#define EQ(line, want) ck_assert_str_eq(q(&c, line), want)

/* The integer field @name of a RESP2 map reply (a flat array). */
static long long field(const char *reply, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "$%zu\r\n%s\r\n:", strlen(name), name);
    const char *p = strstr(reply, pat);
    ck_assert_msg(p != NULL, "no %s in %s", name, reply);
    return atoll(p + strlen(pat));
}

/* Export files the fake node holds. */
static int exports_on_disk(void)
{
    char dir[128];
    int n = 0;
    snprintf(dir, sizeof(dir), "%s/export", h.dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return 0;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Sends BSNAPSHOT CREATE on @cl and returns its token (the reply must be
 * the map). */
static long long create_on(struct cli *cl)
{
    const char *r = q(cl, "BSNAPSHOT CREATE");
    ck_assert_msg(strncmp(r, "*16\r\n", 5) == 0, "%s", r);
    return field(r, "token");
}

/* READ @count bytes at @offset on @cl into @out; returns the bytes. */
static size_t read_chunk(struct cli *cl,
                         long long token,
                         long long offset,
                         long long count,
                         struct dbuf *out)
{
    char tok[32], off[32], cnt[32];
    const char *argv[] = {"BSNAPSHOT", "READ", tok, off, cnt};
    struct dbuf raw = {0};
    snprintf(tok, sizeof(tok), "%lld", token);
    snprintf(off, sizeof(off), "%lld", offset);
    snprintf(cnt, sizeof(cnt), "%lld", count);
    cli_sendv(cl, 5, argv, NULL);
    ck_assert_int_eq(cli_reply(cl, &raw), 0);
    ck_assert_msg(raw.data[0] == '$', "%s", raw.data);
    size_t n = (size_t)atoll(raw.data + 1);
    const char *body = strstr(raw.data, "\r\n") + 2;
    dbuf_put(out, body, n);
    dbuf_free(&raw);
    return n;
}

/* A copy read in small chunks is a snapshot file that verifies, announced
 * with its size, index, revision and checksum, and holds the store. */
START_TEST(test_bsnapshot_streams_a_copy_that_verifies)
{
    char path[128], sum[24];
    struct dbuf file = {0};
    struct kv_snapshot *snap;
    char msg[256];
    EQ("SET a 1", "+OK\r\n");
    EQ("SET b 2", "+OK\r\n");
    EQ("SET a 3", "+OK\r\n");
    unsigned long reads = fake_bnode_reads(h.node);
    const char *r = q(&c, "BSNAPSHOT CREATE");
    ck_assert_msg(strncmp(r, "*16\r\n", 5) == 0, "%s", r);
    /* Linearizable: one read barrier before the copy. */
    ck_assert_uint_eq(fake_bnode_reads(h.node), reads + 1);
    long long token = field(r, "token");
    long long size = field(r, "size");
    long long index = field(r, "index");
    long long revision = field(r, "revision");
    ck_assert_int_eq(field(r, "chunk_max"), SERVER_EXPORT_CHUNK_MAX);
    ck_assert_int_eq(field(r, "term"), 1);
    ck_assert_int_eq(revision, 3);
    ck_assert_int_gt(index, 0);
    const char *cs = strstr(r, "$8\r\nchecksum\r\n$16\r\n");
    ck_assert_ptr_nonnull(cs);
    snprintf(sum, sizeof(sum), "%.16s",
             cs + strlen("$8\r\nchecksum\r\n$16\r\n"));
    ck_assert_int_eq(exports_on_disk(), 1);

    for (long long off = 0; off < size;) {
        off += (long long)read_chunk(&c, token, off, 1000, &file);
    }
    ck_assert_uint_eq(file.len, (size_t)size);
    /* At the end: an empty chunk. */
    ck_assert_uint_eq(read_chunk(&c, token, size, 1000, &file), 0);

    snprintf(path, sizeof(path), "%s/copy.snap", h.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(file.data, 1, file.len, f), file.len);
    fclose(f);
    ck_assert_int_eq(kv_snapshot_open(path, NULL, &snap, msg, sizeof(msg)), 0);
    ck_assert_int_eq(kv_snapshot_verify(snap, msg, sizeof(msg)), 0);
    const struct kv_snapshot_info *info = kv_snapshot_info(snap);
    char got[24];
    snprintf(got, sizeof(got), "%016llx",
             (unsigned long long)info->payload_hash);
    ck_assert_str_eq(got, sum);
    ck_assert_int_eq((long long)info->applied, index);
    ck_assert_int_eq((long long)info->revision, revision);
    kv_snapshot_close(snap);
    unlink(path);
    dbuf_free(&file);

    /* DONE deletes the copy; the token is gone. */
    char line[64];
    snprintf(line, sizeof(line), "BSNAPSHOT DONE %lld", token);
    EQ(line, "+OK\r\n");
    ck_assert_int_eq(exports_on_disk(), 0);
    ck_assert_str_eq(q(&c, line),
                     "-ERR no such snapshot export on this connection "
                     "(unknown token, already done, released after going "
                     "unread for too long, or made on another "
                     "connection)\r\n");
}
END_TEST

/* Every malformed request gets its error and changes nothing. */
START_TEST(test_bsnapshot_refuses_bad_input)
{
    const char *nosuch =
        "-ERR no such snapshot export on this connection (unknown token, "
        "already done, released after going unread for too long, or made "
        "on another connection)\r\n";
    char line[128];
    EQ("BSNAPSHOT",
       "-ERR wrong number of arguments for 'bsnapshot' command\r\n");
    EQ("BSNAPSHOT CREATE x",
       "-ERR wrong number of arguments for 'bsnapshot|create' command\r\n");
    EQ("BSNAPSHOT READ 1 0",
       "-ERR wrong number of arguments for 'bsnapshot|read' command\r\n");
    EQ("BSNAPSHOT READ 1 0 1 1",
       "-ERR wrong number of arguments for 'bsnapshot|read' command\r\n");
    EQ("BSNAPSHOT DONE",
       "-ERR wrong number of arguments for 'bsnapshot|done' command\r\n");
    EQ("BSNAPSHOT SAVE",
       "-ERR unknown BSNAPSHOT subcommand; try CREATE, READ or DONE\r\n");
    EQ("BSNAPSHOT READ 1 0 10", nosuch);
    EQ("BSNAPSHOT DONE 1", nosuch);

    long long token = create_on(&c);
    long long size = field(q(&c, "BSNAPSHOT CREATE"), "size");
    const char *bad_tokens[] = {"0", "-1", "x", "01", "99999", ""};
    for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
        const char *argv[] = {"BSNAPSHOT", "READ", bad_tokens[i], "0", "10"};
        ck_assert_str_eq(qv(&c, 5, argv, NULL), nosuch);
    }
    char offset_err[128];
    snprintf(offset_err, sizeof(offset_err),
             "-ERR offset must be an integer from 0 to %lld (the export's "
             "size)\r\n",
             size);
    const char *bad_offsets[] = {"-1", "x", "1.5", "99999999999999999999",
                                 "9223372036854775807"};
    for (size_t i = 0; i < sizeof(bad_offsets) / sizeof(bad_offsets[0]); i++) {
        snprintf(line, sizeof(line), "BSNAPSHOT READ %lld %s 10", token,
                 bad_offsets[i]);
        ck_assert_str_eq(q(&c, line), offset_err);
    }
    snprintf(line, sizeof(line), "BSNAPSHOT READ %lld %lld 10", token,
             size + 1);
    ck_assert_str_eq(q(&c, line), offset_err);
    const char *bad_counts[] = {"0", "-5", "1048577", "x"};
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        snprintf(line, sizeof(line), "BSNAPSHOT READ %lld 0 %s", token,
                 bad_counts[i]);
        ck_assert_str_eq(q(&c, line),
                         "-ERR count must be an integer from 1 to "
                         "1048576\r\n");
    }
    /* The largest count is fine; it stops at the end. */
    snprintf(line, sizeof(line), "BSNAPSHOT READ %lld %lld 1048576", token,
             size - 10);
    ck_assert(strncmp(q(&c, line), "$10\r\n", 5) == 0);
    /* Not inside MULTI or BREQ. */
    EQ("MULTI", "+OK\r\n");
    EQ("BSNAPSHOT CREATE", "-ERR Command not allowed inside a transaction\r\n");
    EQ("DISCARD", "+OK\r\n");
    EQ("BREQ 1 1 BSNAPSHOT CREATE",
       "-ERR 'bsnapshot' cannot run inside BREQ\r\n");
}
END_TEST

/* Waits (bounded) until the fake node holds @n export files. */
static void wait_exports(int n)
{
    for (int i = 0; i < 500 && exports_on_disk() != n; i++) {
        usleep(10000);
    }
    ck_assert_int_eq(exports_on_disk(), n);
}

/* At most SERVER_EXPORTS_MAX exports exist; a token works only on its own
 * connection; closing a connection deletes its exports. */
START_TEST(test_bsnapshot_limits_exports_and_deletes_them_on_close)
{
    struct cli c2, c3;
    char line[64];
    ck_assert_uint_eq(SERVER_EXPORTS_MAX, 2);
    cli_open(&c2, h.port);
    cli_open(&c3, h.port);
    long long t1 = create_on(&c);
    long long t2 = create_on(&c2);
    ck_assert_int_ne(t1, t2);
    ck_assert_str_eq(q(&c3, "BSNAPSHOT CREATE"),
                     "-BUSY 2 snapshot exports exist already (the limit): "
                     "retry later\r\n");
    snprintf(line, sizeof(line), "BSNAPSHOT READ %lld 0 10", t1);
    ck_assert(strncmp(q(&c3, line), "-ERR no such snapshot export", 28) == 0);
    wait_exports(2);

    /* The first client disconnects in the middle of its download. */
    ck_assert(strncmp(q(&c, line), "$10\r\n", 5) == 0);
    cli_close(&c);
    wait_exports(1);
    long long t3 = create_on(&c3);
    ck_assert_int_gt(t3, t2);
    wait_exports(2);
    cli_close(&c2);
    cli_close(&c3);
    wait_exports(0);
    cli_open(&c, h.port); /* for the teardown */
}
END_TEST

/* A client that leaves while its copy is being written gets none: the
 * copy is deleted when it is ready, and its slot comes back. */
START_TEST(test_bsnapshot_client_gone_before_the_copy_is_ready)
{
    fake_bnode_set_hold(h.node, true);
    cli_send_line(&c, "READONLY");
    cli_send_line(&c, "BSNAPSHOT CREATE");
    wait_exports(1); /* the fake writes at once and answers later */
    cli_close(&c);
    usleep(50000); /* the server sees the connection close */
    fake_bnode_set_hold(h.node, false);
    wait_exports(0);
    cli_open(&c, h.port);
    (void)create_on(&c);
    struct cli c2;
    cli_open(&c2, h.port);
    (void)create_on(&c2); /* both slots are free again */
    cli_close(&c2);
}
END_TEST

/* READONLY takes no barrier; a barrier that fails answers TRYAGAIN and
 * gives the slot back. */
START_TEST(test_bsnapshot_barrier_and_its_failure)
{
    unsigned long reads = fake_bnode_reads(h.node);
    EQ("READONLY", "+OK\r\n");
    (void)create_on(&c);
    ck_assert_uint_eq(fake_bnode_reads(h.node), reads);
    EQ("READWRITE", "+OK\r\n");
    fake_bnode_set_mode(h.node, FAKE_NOREAD);
    for (int i = 0; i < 3; i++) {
        EQ("BSNAPSHOT CREATE",
           "-TRYAGAIN the read could not be confirmed (no leader or "
           "leadership changed): retry\r\n");
    }
    ck_assert_int_eq(exports_on_disk(), 1);
    fake_bnode_set_mode(h.node, FAKE_OK);
    (void)create_on(&c);
    ck_assert_int_eq(exports_on_disk(), 2);
}
END_TEST

/* With an output limit below two chunks the node announces, and
 * accepts, smaller chunks, so each reply fits the limit. */
START_TEST(test_bsnapshot_chunks_fit_a_small_output_limit)
{
    struct server_options opts;
    struct dbuf file = {0};
    char line[64];
    server_options_default(&opts);
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.output_bytes_max = 4096;
    harness_start(&h, &opts);
    cli_open(&c, h.port);
    const char *r = q(&c, "BSNAPSHOT CREATE");
    ck_assert_int_eq(field(r, "chunk_max"), 2048);
    long long token = field(r, "token");
    long long size = field(r, "size");
    snprintf(line, sizeof(line), "BSNAPSHOT READ %lld 0 2049", token);
    EQ(line, "-ERR count must be an integer from 1 to 2048\r\n");
    for (long long off = 0; off < size;) {
        off += (long long)read_chunk(&c, token, off, 2048, &file);
    }
    ck_assert_uint_eq(file.len, (size_t)size);
    ck_assert(memcmp(file.data, "BALLOTKV", 8) == 0);
    dbuf_free(&file);
    teardown();
}
END_TEST

static Suite *bsnapshot_suite(void)
{
    Suite *s = suite_create("bsnapshot");
    TCase *tc = tcase_create("bsnapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bsnapshot_streams_a_copy_that_verifies);
    tcase_add_test(tc, test_bsnapshot_refuses_bad_input);
    tcase_add_test(tc, test_bsnapshot_limits_exports_and_deletes_them_on_close);
    tcase_add_test(tc, test_bsnapshot_barrier_and_its_failure);
    tcase_add_test(tc, test_bsnapshot_client_gone_before_the_copy_is_ready);
    suite_add_tcase(s, tc);
    tc = tcase_create("bsnapshot_small_output");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bsnapshot_chunks_fit_a_small_output_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(bsnapshot_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
