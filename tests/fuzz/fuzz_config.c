/*
 * fuzz_config.c - libFuzzer target for ballotd's config file parser
 * (net/config.c over inih).
 *
 * Properties checked on every input:
 *
 *   1. parsing never crashes, overreads or leaks (ASan);
 *   2. an input is accepted or refused with a message, never both;
 *   3. an accepted file keeps every limit of config.h: an election timeout
 *      within CONFIG_ELECTION_MS_MAX once finished, members with numeric
 *      addresses and ports in range.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ballotd_config cfg;
    char err[512];
    config_default(&cfg);
    int rv = config_parse_text(&cfg, "fuzz.conf", (const char *)data, size, err,
                               sizeof(err));
    if (rv != 0) {
        if (err[0] == '\0') {
            abort();
        }
        return 0;
    }
    for (unsigned i = 0; i < cfg.node.n_members; i++) {
        const struct bnode_member *m = &cfg.node.members[i];
        struct in6_addr a;
        if ((inet_pton(AF_INET, m->host, &a) != 1 &&
             inet_pton(AF_INET6, m->host, &a) != 1) ||
            m->client_port <= 0 || m->client_port > 65535 ||
            m->peer_port <= 0 || m->peer_port > 65535) {
            abort();
        }
    }
    /* Files a config names are read by config_finish(): not the
     * fuzzer's business (a name could be a FIFO). */
    cfg.client_password_file[0] = '\0';
    cfg.secret_file[0] = '\0';
    if (config_finish(&cfg, err, sizeof(err)) == 0 &&
        (uint64_t)cfg.node.tick_ms * cfg.node.election_ticks >
            CONFIG_ELECTION_MS_MAX) {
        abort();
    }
    return 0;
}
