/*
 * tls_certs.c - see tls_certs.h.
 */
#include "tls_certs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void run(const char *cmd)
{
    if (system(cmd) != 0) {
        fprintf(stderr, "tls_certs: failed: %s\n", cmd);
        abort();
    }
}

const char *tls_certs_make(void)
{
    char cmd[4096];
    snprintf(dir, sizeof(dir), "/tmp/ballot-tls-test-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd),
             "rm -rf %s && bash %s/scripts/tls-certs.sh %s/a 1 2 3 client && "
             "bash %s/scripts/tls-certs.sh %s/b 1 2 client && "
             "mkdir -p %s/expired && cp %s/a/ca.crt %s/a/ca.key "
             "%s/expired/ && bash %s/scripts/tls-certs.sh --days -1 "
             "%s/expired 2 client && rm %s/expired/ca.key",
             dir, BALLOT_SOURCE_DIR, dir, BALLOT_SOURCE_DIR, dir, dir, dir, dir,
             dir, BALLOT_SOURCE_DIR, dir, dir);
    run(cmd);
    return dir;
}

void tls_certs_path(char *out, size_t len, const char *sub, const char *name)
{
    snprintf(out, len, "%s/%s/%s", dir, sub, name);
}

void tls_certs_pair(const char *sub,
                    const char *name,
                    char *crt,
                    char *key,
                    size_t len)
{
    snprintf(crt, len, "%s/%s/%s.crt", dir, sub, name);
    snprintf(key, len, "%s/%s/%s.key", dir, sub, name);
}

void tls_certs_remove(void)
{
    char cmd[512];
    if (dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        run(cmd);
    }
}
