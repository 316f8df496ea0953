/*
 * joiner.c - a program outside the tree, built against an installed
 * ballot with nothing but `pkg-config --cflags --libs ballot`: it embeds
 * node ID, joins a running cluster (it is added there with `ballot member
 * add`), and prints the value of KEY once its store has it.
 *
 *   joiner DATA_DIR ID HOST:CLIENT:PEER MEMBER... KEY
 *
 * MEMBER is "ID=HOST:CLIENT:PEER" of every other member. The cluster
 * secret's file is named by the environment variable JOINER_SECRET_FILE.
 * Exits 0 after printing the value, 1 if it did not arrive within 30 s.
 */
#define _POSIX_C_SOURCE 200809L
#include <ballot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    struct ballot_config *cfg;
    struct ballot *b;
    char member[256], err[512];
    if (argc < 6) {
        fprintf(stderr,
                "usage: joiner DATA_DIR ID HOST:CLIENT:PEER "
                "MEMBER... KEY\n");
        return 2;
    }
    const char *key = argv[argc - 1];
    if (ballot_config_create(&cfg) != 0 ||
        ballot_config_set(cfg, "data", argv[1]) != 0 ||
        ballot_config_set(cfg, "id", argv[2]) != 0 ||
        getenv("JOINER_SECRET_FILE") == NULL ||
        ballot_config_set(cfg, "cluster_secret_file",
                          getenv("JOINER_SECRET_FILE")) != 0) {
        fprintf(stderr, "joiner: bad settings\n");
        return 2;
    }
    snprintf(member, sizeof(member), "%s=%s", argv[2], argv[3]);
    for (int i = 3; i < argc - 1; i++) {
        const char *m = i == 3 ? member : argv[i];
        if (ballot_config_set(cfg, "member", m) != 0) {
            fprintf(stderr, "joiner: %s\n", ballot_config_errmsg(cfg));
            return 2;
        }
    }
    if (ballot_open(cfg, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "joiner: %s\n", err);
        return 1;
    }
    ballot_config_destroy(cfg);
    int rc = 1;
    for (int i = 0; i < 3000 && rc != 0; i++) {
        struct ballot_result *r;
        if (ballot_get_wait(b, key, strlen(key), BALLOT_LOCAL, &r) == 0) {
            if (r->ops[0].n_kvs == 1) {
                printf("%.*s\n", (int)r->ops[0].kvs[0].value_len,
                       (const char *)r->ops[0].kvs[0].value);
                rc = 0;
            }
            ballot_result_free(r);
        }
        if (rc != 0) {
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
    }
    struct ballot_status st;
    if (rc == 0 && ballot_status(b, &st) == 0) {
        printf("members %zu leader %llu\n", st.n_members,
               (unsigned long long)st.leader);
    }
    ballot_close(b);
    return rc;
}
