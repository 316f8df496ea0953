/*
 * config_watch.c - a program that keeps its configuration in ballot and
 * reacts when it changes: it embeds a node and prints every key under a
 * prefix that is set, changed or deleted, with the revision of the
 * change.
 *
 *   config_watch [ballotd flags] [--prefix P] [--until KEY=VALUE]
 *
 * Change the configuration with any client (`ballot put config/x 1`,
 * redis-cli SET). It polls a linearizable range of the prefix every
 * 100 ms and compares mod revisions, so it sees the latest value of each
 * key, not every intermediate one; the watches of the coordination API
 * stream every change. With --until it exits once KEY has VALUE.
 */
#define _POSIX_C_SOURCE 200809L
#include <ballot.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS_MAX 1024

struct seen
{
    char key[BALLOT_KEY_MAX + 1];
    uint64_t mod_revision;
    bool present;
};

static struct seen seen[KEYS_MAX];
static size_t n_seen;

static struct seen *find(const char *key)
{
    for (size_t i = 0; i < n_seen; i++) {
        if (strcmp(seen[i].key, key) == 0) {
            return &seen[i];
        }
    }
    if (n_seen == KEYS_MAX) {
        return NULL;
    }
    struct seen *s = &seen[n_seen++];
    snprintf(s->key, sizeof(s->key), "%s", key);
    return s;
}

/* Compares one snapshot of the prefix with what was seen; prints the
 * differences. Returns 1 if @until_key has @until_value. */
static int compare(const struct ballot_result *r,
                   const char *until_key,
                   const char *until_value)
{
    int done = 0;
    for (size_t i = 0; i < n_seen; i++) {
        seen[i].present = false;
    }
    for (size_t i = 0; i < r->ops[0].n_kvs; i++) {
        const struct ballot_kv *kv = &r->ops[0].kvs[i];
        char key[BALLOT_KEY_MAX + 1];
        snprintf(key, sizeof(key), "%.*s", (int)kv->key_len,
                 (const char *)kv->key);
        struct seen *s = find(key);
        if (s == NULL) {
            continue;
        }
        bool was = s->mod_revision != 0;
        if (s->mod_revision != kv->mod_revision) {
            printf("%s %s = %.*s (revision %" PRIu64 ")\n",
                   was ? "changed" : "set", key, (int)kv->value_len,
                   (const char *)kv->value, kv->mod_revision);
            s->mod_revision = kv->mod_revision;
        }
        s->present = true;
        if (until_key != NULL && strcmp(key, until_key) == 0 &&
            kv->value_len == strlen(until_value) &&
            memcmp(kv->value, until_value, kv->value_len) == 0) {
            done = 1;
        }
    }
    for (size_t i = 0; i < n_seen; i++) {
        if (!seen[i].present && seen[i].mod_revision != 0) {
            printf("deleted %s (revision %" PRIu64 ")\n", seen[i].key,
                   r->revision);
            seen[i].mod_revision = 0;
        }
    }
    return done;
}

int main(int argc, char **argv)
{
    struct ballot_config *cfg;
    struct ballot *b;
    char err[512], until_key[BALLOT_KEY_MAX + 1] = "";
    const char *prefix = "config/", *until_value = NULL;
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
    printf("watching %s\n", prefix);
    for (;;) {
        struct ballot_result *r;
        struct timespec ts = {0, 100 * 1000000L};
        if (ballot_range_wait(b, prefix, strlen(prefix), NULL, 0, 0,
                              BALLOT_RANGE_PREFIX, BALLOT_LINEARIZABLE,
                              &r) == 0) {
            int done =
                compare(r, until_value != NULL ? until_key : NULL, until_value);
            ballot_result_free(r);
            if (done) {
                break;
            }
        }
        nanosleep(&ts, NULL);
    }
    ballot_close(b);
    return 0;
}
