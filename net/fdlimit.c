/*
 * fdlimit.c - see fdlimit.h.
 */
#include "fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int fdlimit_plan(uint64_t soft,
                 uint64_t hard,
                 unsigned fixed,
                 unsigned max_clients,
                 struct fdlimit_plan *out)
{
    uint64_t want = (uint64_t)fixed + max_clients;
    memset(out, 0, sizeof(*out));
    out->soft_before = soft;
    out->hard = hard;
    out->fixed = fixed;
    out->soft = soft;
    if (soft < want) {
        out->soft = want < hard ? want : hard;
    }
    out->raised = out->soft > soft;
    uint64_t room = out->soft > fixed ? out->soft - fixed : 0;
    out->max_clients = room < max_clients ? (unsigned)room : max_clients;
    out->lowered = out->max_clients < max_clients;
    return out->max_clients >= FDLIMIT_CLIENTS_MIN ||
                   out->max_clients == max_clients
               ? 0
               : -1;
}

static uint64_t from_rlim(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

int fdlimit_apply(unsigned fixed,
                  unsigned max_clients,
                  struct fdlimit_plan *out,
                  char *err,
                  size_t err_len)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, err_len, "cannot read RLIMIT_NOFILE: %s",
                 strerror(errno));
        return -1;
    }
    if (fdlimit_plan(from_rlim(rl.rlim_cur), from_rlim(rl.rlim_max), fixed,
                     max_clients, out) != 0) {
        snprintf(err, err_len,
                 "the descriptor limit (RLIMIT_NOFILE, hard %llu) leaves "
                 "room for %u clients: the node keeps %u descriptors for "
                 "itself and its ports and needs room for at least %u "
                 "clients; raise the limit (ulimit -n, LimitNOFILE=) to at "
                 "least %u",
                 (unsigned long long)out->hard, out->max_clients, fixed,
                 FDLIMIT_CLIENTS_MIN, fixed + FDLIMIT_CLIENTS_MIN);
        return -1;
    }
    if (out->raised) {
        rl.rlim_cur = (rlim_t)out->soft;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            snprintf(err, err_len, "cannot raise RLIMIT_NOFILE to %llu: %s",
                     (unsigned long long)out->soft, strerror(errno));
            return -1;
        }
    }
    return 0;
}
