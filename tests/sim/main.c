/*
 * main.c - the sim command line.
 *
 *   sim --seed S [--nodes 3|5] [--ticks T] [--verbose]   one seed
 *   sim --seeds N [--from F] [--nodes 3|5]               N seeds from F
 *   sim --regressions FILE                               every line of FILE
 *   sim ... --check-determinism                          run each seed twice
 *   sim ... --storage wal                  persist through the real WAL
 *   sim ... --max-events N     fail a seed as a livelock after N events
 *   sim --seeds N ... --expect-reached a,b   fail unless some seed of the
 *                    batch reached each named rare situation (coverage.c)
 *
 * Exits 0 if every seed passed, 1 if any failed (each failure prints the
 * command that replays it), 2 on bad usage.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

struct run_args
{
    struct sim_options opt;
    uint64_t seeds;
    uint64_t from;
    bool have_seed;
    bool determinism;
    bool quiet;
    const char *regressions;
    const char *expect_reached; /* comma-separated situations */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sim [--seed S | --seeds N [--from F] | --regressions "
            "FILE]\n"
            "           [--nodes 3|5] [--ticks T] [--verbose] [--quiet]\n"
            "           [--check-determinism] [--storage mem|wal]\n"
            "           [--max-events N] [--expect-reached SITUATION,...]\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, struct run_args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        uint64_t v = 0;
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--verbose") == 0 || strcmp(arg, "-v") == 0) {
            a->opt.verbose = true;
        } else if (strcmp(arg, "--quiet") == 0) {
            a->quiet = true;
        } else if (strcmp(arg, "--check-determinism") == 0) {
            a->determinism = true;
        } else if (!has_value) {
            return -1;
        } else if (strcmp(arg, "--regressions") == 0) {
            a->regressions = argv[++i];
        } else if (strcmp(arg, "--expect-reached") == 0) {
            a->expect_reached = argv[++i];
        } else if (strcmp(arg, "--storage") == 0) {
            const char *kind = argv[++i];
            if (strcmp(kind, "mem") == 0) {
                a->opt.storage = SIM_STORAGE_MEM;
            } else if (strcmp(kind, "wal") == 0) {
                a->opt.storage = SIM_STORAGE_WAL;
            } else {
                return -1;
            }
        } else if (parse_u64(argv[i + 1], &v) != 0) {
            return -1;
        } else if (strcmp(arg, "--seed") == 0) {
            a->opt.seed = v;
            a->have_seed = true;
            i++;
        } else if (strcmp(arg, "--seeds") == 0) {
            a->seeds = v;
            i++;
        } else if (strcmp(arg, "--from") == 0) {
            a->from = v;
            i++;
        } else if (strcmp(arg, "--nodes") == 0) {
            if (v != 3 && v != 5) {
                return -1;
            }
            a->opt.nodes = (unsigned)v;
            i++;
        } else if (strcmp(arg, "--ticks") == 0) {
            a->opt.fault_ticks = v;
            i++;
        } else if (strcmp(arg, "--max-events") == 0 && v > 0) {
            a->opt.max_events = v;
            i++;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Runs one seed (twice with --check-determinism). Returns 0 if it passed. */
static int run_one(const struct run_args *a,
                   const struct sim_options *opt,
                   const char *prog)
{
    uint64_t h1 = 0, h2 = 0;
    int rc = sim_run(opt, &h1, a->quiet && !opt->verbose, prog);
    if (rc != 0 || !a->determinism) {
        return rc;
    }
    struct sim_options again = *opt;
    again.verbose = false;
    rc = sim_run(&again, &h2, true, prog);
    if (rc != 0 || h1 != h2) {
        printf(
            "FAIL seed %llu: [determinism] two runs of one seed traced "
            "%016llx and %016llx\n  replay: %s --seed %llu --nodes %u%s "
            "--check-determinism\n",
            (unsigned long long)opt->seed, (unsigned long long)h1,
            (unsigned long long)h2, prog, (unsigned long long)opt->seed,
            opt->nodes,
            opt->storage == SIM_STORAGE_WAL ? " --storage wal" : "");
        return 1;
    }
    return 0;
}

/* Replays every "--seed S [args]" line of @path; '#' starts a comment. */
static int run_regressions(const struct run_args *base,
                           const char *path,
                           const char *prog)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "sim: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    char line[512];
    unsigned lineno = 0, ran = 0, failed = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        char *argv[32];
        int argc = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok != NULL && argc < 32;
             tok = strtok(NULL, " \t\r\n")) {
            argv[argc++] = tok;
        }
        if (argc == 0) {
            continue;
        }
        struct run_args a = *base;
        a.have_seed = false;
        if (parse(argc, argv, &a) != 0 || !a.have_seed) {
            fprintf(stderr, "sim: %s:%u: bad line\n", path, lineno);
            fclose(f);
            return 2;
        }
        ran++;
        if (run_one(&a, &a.opt, prog) != 0) {
            failed++;
        }
    }
    fclose(f);
    printf("regressions: %u seeds, %u failed\n", ran, failed);
    return failed ? 1 : 0;
}

/* Whether every situation named in @list (comma-separated) was reached
 * by some seed; prints the ones that were not. */
static bool reached_all(const char *list, const struct sim_coverage *c)
{
    static const struct
    {
        const char *name;
        size_t offset;
    } known[] = {
        {"stale-suffix", offsetof(struct sim_coverage, stale_suffix)},
        {"snapshot-overlap", offsetof(struct sim_coverage, snapshot_overlap)},
        {"sticky-vote", offsetof(struct sim_coverage, sticky_vote)},
    };
    bool ok = true;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) &&
               strcmp(known[i].name, tok) != 0) {
            i++;
        }
        if (i == sizeof(known) / sizeof(known[0])) {
            printf("coverage: no situation named '%s'\n", tok);
            ok = false;
        } else if (*(const uint64_t *)((const char *)c + known[i].offset) ==
                   0) {
            printf("coverage: no seed reached %s\n", tok);
            ok = false;
        }
    }
    return ok;
}

int main(int argc, char **argv)
{
    struct run_args a;
    memset(&a, 0, sizeof(a));
    if (parse(argc - 1, argv + 1, &a) != 0) {
        usage(stderr);
        return 2;
    }
    const char *prog = argv[0];
    if (a.regressions != NULL) {
        return run_regressions(&a, a.regressions, prog);
    }
    if (a.have_seed) {
        return run_one(&a, &a.opt, prog) == 0 ? 0 : 1;
    }
    if (a.seeds == 0) {
        usage(stderr);
        return 2;
    }
    /* Seed i of a batch runs with the cluster size the seed picks unless
     * --nodes fixes it, so a batch mixes 3- and 5-node clusters. */
    a.quiet = a.quiet || !a.opt.verbose; /* batches print failures only */
    clock_t start = clock();
    uint64_t failed = 0;
    for (uint64_t i = 0; i < a.seeds; i++) {
        struct sim_options opt = a.opt;
        opt.seed = a.from + i;
        if (run_one(&a, &opt, prog) != 0) {
            failed++;
        }
    }
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("%llu seeds from %llu: %llu passed, %llu failed (%.1f s CPU)\n",
           (unsigned long long)a.seeds, (unsigned long long)a.from,
           (unsigned long long)(a.seeds - failed), (unsigned long long)failed,
           secs);
    const struct sim_coverage *c = &sim_coverage_totals;
    printf(
        "reached in: stale-suffix %llu seeds, snapshot-overlap %llu, "
        "sticky-vote %llu (of %llu runs)\n",
        (unsigned long long)c->stale_suffix,
        (unsigned long long)c->snapshot_overlap,
        (unsigned long long)c->sticky_vote, (unsigned long long)c->seeds);
    if (a.expect_reached != NULL && !reached_all(a.expect_reached, c)) {
        failed++;
    }
    if (a.opt.storage == SIM_STORAGE_WAL) {
        const struct storage_wal_stats *w = &storage_wal_totals;
        printf(
            "wal: %llu crashes, %llu opens, %llu repairs (%llu torn bytes "
            "erased), %llu warnings, %llu probes of durable state\n"
            "     repairs: %llu torn tails, %llu leftover temporary files, "
            "%llu "
            "logs contradicting the snapshot, %llu commit hints lowered\n",
            (unsigned long long)w->crashes, (unsigned long long)w->opens,
            (unsigned long long)w->repairs, (unsigned long long)w->torn_bytes,
            (unsigned long long)w->warnings, (unsigned long long)w->probes,
            (unsigned long long)w->torn_tails,
            (unsigned long long)w->tmps_removed,
            (unsigned long long)w->snapshot_drops,
            (unsigned long long)w->commit_clamps);
        printf(
            "     faults: %llu writes failed with EIO, %llu with ENOSPC, "
            "%llu on a full disk (%llu full-disk periods), %llu syncs "
            "failed (%llu dropped the unsynced writes)\n"
            "     %llu halts (%llu with a power loss), %llu restarts "
            "failed, %llu calls succeeded despite a fault\n",
            (unsigned long long)w->fault_write_eio,
            (unsigned long long)w->fault_write_enospc,
            (unsigned long long)w->fault_full,
            (unsigned long long)w->full_periods,
            (unsigned long long)w->fault_sync_eio,
            (unsigned long long)w->sync_dropped, (unsigned long long)w->halts,
            (unsigned long long)w->halts_power,
            (unsigned long long)w->restarts_failed,
            (unsigned long long)w->fault_absorbed);
    }
    return failed ? 1 : 0;
}
