/*
 * leader_work.c - three processes of this program, each embedding a node
 * of one ballot cluster, elect a leader among themselves; the leader does
 * the work, and when it dies another process takes over where it stopped.
 *
 *   leader_work --id N --data DIR --member 1=HOST:C:P --member 2=... \
 *               --member 3=... --bootstrap [--items K]
 *
 * (the flags are ballotd's). The work is a sequence of numbered items;
 * each is claimed with a transaction that succeeds only if the counter
 * has not moved since it was read, so no item is ever done twice, even
 * by a leader that has just been deposed. Each item done prints
 * "item K by node N". With --items K the program exits once K items are
 * done. docs/embedding.md walks through it.
 */
#define _POSIX_C_SOURCE 200809L
#include <ballot.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The counter's current value and the revision it was last written at (0
 * and 0 before the first item). Returns 0 or an error. */
static int read_counter(struct ballot *b, uint64_t *value, uint64_t *mod_rev)
{
    struct ballot_result *r;
    int rv = ballot_get_wait(b, "work/next", 9, BALLOT_LINEARIZABLE, &r);
    if (rv != 0) {
        return rv;
    }
    *value = 0;
    *mod_rev = 0;
    if (r->ops[0].n_kvs == 1) {
        char buf[32] = "";
        size_t n = r->ops[0].kvs[0].value_len;
        memcpy(buf, r->ops[0].kvs[0].value, n < 31 ? n : 31);
        *value = strtoull(buf, NULL, 10);
        *mod_rev = r->ops[0].kvs[0].mod_revision;
    }
    ballot_result_free(r);
    return 0;
}

/* Claims item @next: moves the counter from the revision it was read at,
 * and records who did it. Returns 1 if claimed, 0 if someone else moved
 * the counter first, or an error. */
static int claim(struct ballot *b, uint64_t id, uint64_t next, uint64_t mod_rev)
{
    char count[32], by[64], who[32];
    snprintf(count, sizeof(count), "%" PRIu64, next + 1);
    snprintf(by, sizeof(by), "work/item/%08" PRIu64, next);
    snprintf(who, sizeof(who), "%" PRIu64, id);
    struct ballot_cmp unchanged = {BALLOT_CMP_MOD_REVISION,
                                   BALLOT_CMP_EQ,
                                   "work/next",
                                   9,
                                   NULL,
                                   0,
                                   mod_rev};
    struct ballot_op ops[] = {
        {BALLOT_OP_PUT, "work/next", 9, count, strlen(count)},
        {BALLOT_OP_PUT, by, strlen(by), who, strlen(who)},
    };
    struct ballot_txn txn = {&unchanged, 1, ops, 2, NULL, 0};
    struct ballot_result *r;
    int rv = ballot_txn_wait(b, &txn, NULL, &r);
    if (rv != 0) {
        return rv;
    }
    rv = r->succeeded ? 1 : 0;
    ballot_result_free(r);
    return rv;
}

int main(int argc, char **argv)
{
    struct ballot_config *cfg;
    struct ballot *b;
    struct ballot_status st;
    char err[512];
    uint64_t items = 0, last_leader = 0;

    /* --items K is ours; everything else is ballotd's. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--items") == 0) {
            items = strtoull(argv[i + 1], NULL, 10);
            memmove(&argv[i], &argv[i + 2],
                    (size_t)(argc - i - 1) * sizeof(*argv));
            argc -= 2;
            break;
        }
    }
    if (ballot_config_create(&cfg) != 0) {
        return 1;
    }
    int rv = ballot_config_args(cfg, argc, argv);
    if (rv != 0) {
        if (rv != 1) {
            fprintf(stderr, "leader_work: %s\n", ballot_config_errmsg(cfg));
        }
        return rv == 1 ? 0 : 2;
    }
    if (ballot_open(cfg, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "leader_work: %s\n", err);
        return 1;
    }
    ballot_config_destroy(cfg);
    setvbuf(stdout, NULL, _IOLBF, 0);

    for (;;) {
        uint64_t next, mod_rev;
        if (ballot_status(b, &st) != 0) {
            break;
        }
        if (st.leader != last_leader && st.leader != 0) {
            printf("node %" PRIu64 ": leader is node %" PRIu64 "\n", st.id,
                   st.leader);
            last_leader = st.leader;
        }
        /* Everyone watches the counter; only the leader works. */
        if (read_counter(b, &next, &mod_rev) == 0 && items > 0 &&
            next >= items) {
            break;
        }
        if (st.role != BALLOT_LEADER) {
            sleep_ms(100);
            continue;
        }
        if (read_counter(b, &next, &mod_rev) != 0) {
            sleep_ms(50);
            continue;
        }
        /* The work itself would go here; this one takes 50 ms. */
        sleep_ms(50);
        if (claim(b, st.id, next, mod_rev) == 1) {
            printf("item %" PRIu64 " by node %" PRIu64 "\n", next, st.id);
        }
    }
    ballot_close(b);
    return 0;
}
