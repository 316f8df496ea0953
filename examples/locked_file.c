/*
 * locked_file.c - threads of one program take turns at a shared file,
 * under a lock kept in an embedded ballot node: each holder reads a
 * number from the file, adds one and writes it back, so a lost update
 * would show in the final count.
 *
 *   locked_file [ballotd flags] --file PATH [--threads N] [--rounds R]
 *
 * The lock is a key created by a transaction only if it does not exist
 * (create_revision == 0); the revision of that write is the holder's
 * fencing token, which grows with every new holder, and the release
 * deletes the key only if it still names this holder. Every token is
 * appended to PATH.tokens, so a checker can see that they only grow.
 * Exits 0 if the file ends at N * R. (A holder that dies keeps this lock:
 * locks tied to leases, which end with their holder, are the
 * coordination API's job.)
 */
#define _POSIX_C_SOURCE 200809L
#include <ballot.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct ballot *node;
static const char *path;
static int rounds = 20;

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* Takes the lock for @me; returns the fencing token. */
static uint64_t lock(const char *me)
{
    struct ballot_cmp absent = {
        BALLOT_CMP_CREATE_REVISION, BALLOT_CMP_EQ, "lock/file", 9, NULL, 0, 0};
    struct ballot_op take = {BALLOT_OP_PUT, "lock/file", 9, me, strlen(me)};
    struct ballot_txn txn = {&absent, 1, &take, 1, NULL, 0};
    for (long backoff = 200;;
         backoff = backoff < 20000 ? backoff * 2 : backoff) {
        struct ballot_result *r;
        if (ballot_txn_wait(node, &txn, NULL, &r) == 0) {
            bool mine = r->succeeded;
            uint64_t token = r->revision;
            ballot_result_free(r);
            if (mine) {
                return token;
            }
        }
        sleep_us(backoff);
    }
}

static void unlock(const char *me)
{
    struct ballot_cmp held = {
        BALLOT_CMP_VALUE, BALLOT_CMP_EQ, "lock/file", 9, me, strlen(me), 0};
    struct ballot_op drop = {BALLOT_OP_DELETE, "lock/file", 9, NULL, 0};
    struct ballot_txn txn = {&held, 1, &drop, 1, NULL, 0};
    while (ballot_txn_wait(node, &txn, NULL, NULL) != 0) {
        sleep_us(1000);
    }
}

static long read_number(void)
{
    long n = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &n) != 1) {
            n = -1000000;
        }
        fclose(f);
    }
    return n;
}

static void write_number(long n, uint64_t token)
{
    char tokens[4200];
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%ld\n", n);
        fclose(f);
    }
    snprintf(tokens, sizeof(tokens), "%s.tokens", path);
    f = fopen(tokens, "a");
    if (f != NULL) {
        fprintf(f, "%" PRIu64 "\n", token);
        fclose(f);
    }
}

static void *worker(void *arg)
{
    char me[32];
    snprintf(me, sizeof(me), "thread-%d", (int)(intptr_t)arg);
    for (int i = 0; i < rounds; i++) {
        uint64_t token = lock(me);
        long n = read_number();
        sleep_us(500); /* a wide window for a lost update */
        write_number(n + 1, token);
        unlock(me);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct ballot_config *cfg;
    char err[512];
    int threads = 4;
    int kept = 1;
    /* Our flags out, ballotd's for the node. */
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--file") == 0) {
            path = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            threads = atoi(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[++i]);
        } else {
            argv[kept++] = argv[i];
        }
    }
    if (path == NULL || threads < 1 || threads > 64 || rounds < 1 ||
        ballot_config_create(&cfg) != 0 ||
        ballot_config_args(cfg, kept, argv) != 0) {
        fprintf(stderr,
                "usage: locked_file [ballotd flags] --file PATH "
                "[--threads N] [--rounds R]\n");
        return 2;
    }
    if (ballot_open(cfg, &node, err, sizeof(err)) != 0) {
        fprintf(stderr, "locked_file: %s\n", err);
        return 1;
    }
    ballot_config_destroy(cfg);
    write_number(0, 0);
    pthread_t th[64];
    for (int t = 0; t < threads; t++) {
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
    }
    ballot_close(node);
    long n = read_number();
    printf("count %ld of %d\n", n, threads * rounds);
    return n == (long)threads * rounds ? 0 : 1;
}
