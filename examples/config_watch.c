/*
 * config_watch.c - a program that keeps its configuration in ballot and
 * reacts when it changes: it embeds a node, reads every key under a
 * prefix, then watches the prefix from the revision after that read, so
 * that no change is missed or seen twice, and prints each key that is
 * set, changed or deleted with the revision of the change.
 *
 *   config_watch [ballotd flags] [--prefix P] [--until KEY=VALUE]
 *
 * Change the configuration with any client (`ballot put config/x 1`,
 * redis-cli SET). With --until it exits once KEY is set to VALUE.
 */
#define _POSIX_C_SOURCE 200809L
#include <ballot.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS_MAX 1024

/* The keys known to exist, to tell "set" from "changed". Touched only on
 * the node's thread (the watch callback) after the first read. */
static char known[KEYS_MAX][BALLOT_KEY_MAX + 1];
static size_t n_known;
static char until_key[BALLOT_KEY_MAX + 1];
static const char *until_value;
static atomic_int done;
static atomic_int failed;

static bool know(const char *key, bool present)
{
    for (size_t i = 0; i < n_known; i++) {
        if (strcmp(known[i], key) == 0) {
            if (!present) {
                known[i][0] = '\0';
            }
            return true;
        }
    }
    if (present && n_known < KEYS_MAX) {
        snprintf(known[n_known++], sizeof(known[0]), "%s", key);
    }
    return false;
}

static void on_change(void *arg,
                      int status,
                      const struct ballot_event *events,
                      size_t n,
                      uint64_t revision)
{
    (void)arg;
    if (status != 0) {
        /* Compacted past us, or the node stops: a real program would read
         * the prefix again and watch from there. */
        fprintf(stderr,
                "config_watch: watch ended: %s (revision %" PRIu64 ")\n",
                ballot_strerror(status), revision);
        atomic_store(&failed, 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ballot_kv *kv = &events[i].kv;
        char key[BALLOT_KEY_MAX + 1];
        snprintf(key, sizeof(key), "%.*s", (int)kv->key_len,
                 (const char *)kv->key);
        if (events[i].type == BALLOT_EVENT_DELETE) {
            know(key, false);
            printf("deleted %s (revision %" PRIu64 ")\n", key,
                   kv->mod_revision);
            continue;
        }
        printf("%s %s = %.*s (revision %" PRIu64 ")\n",
               know(key, true) ? "changed" : "set", key, (int)kv->value_len,
               (const char *)kv->value, kv->mod_revision);
        if (until_value != NULL && strcmp(key, until_key) == 0 &&
            kv->value_len == strlen(until_value) &&
            memcmp(kv->value, until_value, kv->value_len) == 0) {
            atomic_store(&done, 1);
        }
    }
}

int main(int argc, char **argv)
{
    struct ballot_config *cfg;
    struct ballot *b;
    struct ballot_result *r;
    struct ballot_watch *w;
    char err[512];
    const char *prefix = "config/";
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--prefix") == 0) {
            prefix = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--until") == 0) {
            const char *eq = strchr(argv[++i], '=');
            if (eq == NULL) {
                fprintf(stderr, "config_watch: --until KEY=VALUE\n");
                return 2;
            }
            snprintf(until_key, sizeof(until_key), "%.*s", (int)(eq - argv[i]),
                     argv[i]);
            until_value = eq + 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    if (ballot_config_create(&cfg) != 0 ||
        ballot_config_args(cfg, kept, argv) != 0) {
        fprintf(stderr, "config_watch: %s\n", ballot_config_errmsg(cfg));
        return 2;
    }
    if (ballot_open(cfg, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "config_watch: %s\n", err);
        return 1;
    }
    ballot_config_destroy(cfg);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The configuration as it is (retried until the cluster has a
     * leader), then every change after the revision that read saw. */
    struct timespec pause = {0, 100 * 1000000L};
    while (ballot_range_wait(b, prefix, strlen(prefix), NULL, 0, 0,
                             BALLOT_RANGE_PREFIX, BALLOT_LINEARIZABLE,
                             &r) != 0) {
        nanosleep(&pause, NULL);
    }
    for (size_t i = 0; i < r->ops[0].n_kvs; i++) {
        const struct ballot_kv *kv = &r->ops[0].kvs[i];
        char key[BALLOT_KEY_MAX + 1];
        snprintf(key, sizeof(key), "%.*s", (int)kv->key_len,
                 (const char *)kv->key);
        know(key, true);
        printf("initially %s = %.*s\n", key, (int)kv->value_len,
               (const char *)kv->value);
    }
    uint64_t from = r->revision + 1;
    ballot_result_free(r);
    if (ballot_watch(b, prefix, strlen(prefix), NULL, 0, BALLOT_RANGE_PREFIX,
                     from, on_change, NULL, &w) != 0) {
        fprintf(stderr, "config_watch: cannot watch %s\n", prefix);
        ballot_close(b);
        return 1;
    }
    printf("watching %s from revision %" PRIu64 "\n", prefix, from);
    while (!atomic_load(&done) && !atomic_load(&failed)) {
        nanosleep(&pause, NULL);
    }
    ballot_watch_cancel(b, w);
    ballot_close(b);
    return atomic_load(&failed) ? 1 : 0;
}
