/*
 * ballotd.c - one node of a ballot cluster, as a daemon: a small main over
 * the library programs embed (include/ballot/uv.h), so the daemon and an
 * embedding program run the same code. SIGTERM or SIGINT stops it
 * gracefully: in-flight requests are answered or failed cleanly, LMDB is
 * synced, every handle is closed. A storage failure halts the node; the
 * daemon then stops and exits with code 70, so that a supervisor restarts
 * it from disk. `ballotd restore ...` builds a data directory offline
 * (restore.h); `ballotd secret FILE` makes a cluster secret and `ballotd
 * passwd FILE` a client password's hash (docs/security.md).
 */
#include <signal.h>
#include <stdio.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ballot/uv.h"
#include "config.h"
#include "defrag.h"
#include "log.h"
#include "restore.h"

/* Exit code after a storage failure (EX_SOFTWARE). */
#define EXIT_HALTED 70
/* How long a stop after a storage failure may take before the process
 * exits anyway: a failed disk must not keep a dead node around. */
#define HALT_STOP_MS 10000
/* How often freed heap memory is handed back to the system. */
#define TRIM_EVERY_MS 5000

struct daemon
{
    uv_loop_t *loop;
    struct ballot *node;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;
    uv_timer_t halt_guard;
    uv_timer_t trim;
    bool stopping;
    int exit_code;
};

static void on_stopped(void *arg)
{
    struct daemon *d = arg;
    d->node = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->halt_guard, NULL);
    uv_close((uv_handle_t *)&d->trim, NULL);
    blog(BLOG_INFO, "stopped");
}

static void stop(struct daemon *d)
{
    if (!d->stopping) {
        d->stopping = true;
        ballot_stop(d->node, on_stopped, d);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (d->stopping) {
        blog(BLOG_WARN, "signal %d again: exiting at once", signum);
        exit(1);
    }
    blog(BLOG_INFO, "signal %d: stopping", signum);
    stop(d);
}

/* glibc keeps the pages of freed memory in the middle of its heap: after
 * a burst of connections (each with a 64 KiB read buffer) closed, the
 * process kept tens of megabytes it no longer used, and every burst
 * touched other pages of that heap (measured: 8 -> 45 MiB over 30,000
 * connections, 3 MiB after a trim). A trim gives them back; it walks the
 * free lists, well under a millisecond for such a heap. */
/* SIGHUP: new TLS certificates and keys, without a restart (the cluster
 * keeps its connections; new ones use the new files). */
static void on_sighup(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    char err[600] = "";
    (void)signum;
    if (d->stopping) {
        return;
    }
    if (ballot_tls_reload(d->node, err, sizeof(err)) == 0) {
        blog(BLOG_INFO, "SIGHUP: TLS certificate, key and CA reloaded");
    } else {
        blog(BLOG_WARN, "SIGHUP: %s", err[0] != '\0' ? err : "nothing to do");
    }
}

static void on_trim(uv_timer_t *t)
{
    (void)t;
#if defined(__GLIBC__)
    (void)malloc_trim(0);
#endif
}

static void on_halt_guard(uv_timer_t *t)
{
    (void)t;
    blog(BLOG_ERROR, "the halted node did not stop in %d ms: exiting",
         HALT_STOP_MS);
    exit(EXIT_HALTED);
}

static void on_halt(void *arg, const char *why)
{
    struct daemon *d = arg;
    /* A failed disk, a damaged store, or a former primary that must
     * rejoin as a replica (docs/modes.md): @why says which and what to
     * do. */
    blog(BLOG_ERROR,
         "the node halted (%s): stopping; restart it once the "
         "cause is dealt with",
         why);
    d->exit_code = EXIT_HALTED;
    uv_timer_start(&d->halt_guard, on_halt_guard, HALT_STOP_MS, 0);
    stop(d);
}

int main(int argc, char **argv)
{
    struct ballot_config *cfg;
    struct ballot_status st;
    struct daemon d;
    char err[700] = "";

    if (argc >= 2 && strcmp(argv[1], "restore") == 0) {
        return restore_main(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "defrag") == 0) {
        return defrag_main(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "secret") == 0) {
        if (argc != 3) {
            fprintf(stderr,
                    "usage: ballotd secret FILE\n"
                    "writes a new cluster secret to FILE (mode 600); "
                    "copy it to every member\n");
            return 2;
        }
        if (config_make_secret(argv[2], err, sizeof(err)) != 0) {
            fprintf(stderr, "ballotd: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "passwd") == 0) {
        unsigned long iterations = PASSWD_ITERATIONS_DEFAULT;
        int file = 2;
        if (argc == 5 && strcmp(argv[2], "--iterations") == 0) {
            char *end;
            iterations = strtoul(argv[3], &end, 10);
            file = 4;
            if (*end != '\0' || iterations < PASSWD_ITERATIONS_MIN ||
                iterations > PASSWD_ITERATIONS_MAX) {
                argc = 0; /* prints the usage below */
            }
        }
        if (argc != file + 1) {
            fprintf(stderr,
                    "usage: ballotd passwd [--iterations N] FILE < password\n"
                    "writes the hash of the password read from standard "
                    "input\nto FILE (mode 600), for client_password_file; "
                    "N from %u to %u\n(default %u)\n",
                    PASSWD_ITERATIONS_MIN, PASSWD_ITERATIONS_MAX,
                    PASSWD_ITERATIONS_DEFAULT);
            return 2;
        }
        if (config_make_password(argv[file], stdin, (unsigned)iterations, err,
                                 sizeof(err)) != 0) {
            fprintf(stderr, "ballotd: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (ballot_config_create(&cfg) != 0) {
        fprintf(stderr, "ballotd: out of memory\n");
        return 1;
    }
    /* --check-config: check the settings as a start would, then exit. */
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
            argc--;
            break;
        }
    }
    int rv = ballot_config_args(cfg, argc, argv);
    if (rv == 1) {
        ballot_config_destroy(cfg);
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "ballotd: %s\n", ballot_config_errmsg(cfg));
        ballot_config_destroy(cfg);
        return 2;
    }
    if (check_only) {
        rv = ballot_config_check(cfg);
        if (rv == 0) {
            printf("configuration ok\n");
        } else {
            fprintf(stderr, "ballotd: %s\n", ballot_config_errmsg(cfg));
        }
        ballot_config_destroy(cfg);
        return rv == 0 ? 0 : 2;
    }
    memset(&d, 0, sizeof(d));
    /* Every line names the node, from the first; the node filters its own
     * lines by the log_level setting, ballotd's by the same. */
    char setting[32];
    static const char *levels[] = {"debug", "info", "warn", "error"};
    if (ballot_config_get(cfg, "id", setting, sizeof(setting)) == 0) {
        blog_set_node(strtoull(setting, NULL, 10));
    }
    if (ballot_config_get(cfg, "log_format", setting, sizeof(setting)) == 0) {
        blog_set_format(strcmp(setting, "json") == 0 ? BLOG_JSON : BLOG_TEXT);
    }
    if (ballot_config_get(cfg, "log_level", setting, sizeof(setting)) == 0) {
        for (int i = 0; i < 4; i++) {
            if (strcmp(setting, levels[i]) == 0) {
                blog_set_level((enum blog_level)i);
            }
        }
    }
    ballot_config_set_log(cfg, blog_line, NULL, BALLOT_LOG_DEBUG);
    ballot_config_set_halt(cfg, on_halt, &d);
    /* Each batch's fdatasync runs on libuv's thread pool (4 threads by
     * default), beside snapshot copies that take a while each: the node's
     * own and up to SERVER_EXPORTS_MAX exports. Room for all of them, so
     * that a batch never waits for a copy; an operator's setting wins. The
     * pool reads this at its first use. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    /* A client that disconnects must not kill the server with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    d.loop = uv_default_loop();
    rv = ballot_start(d.loop, cfg, &d.node, err, sizeof(err));
    ballot_config_destroy(cfg);
    if (rv != 0) {
        /* A usage error (no id, no members) is the command line's. */
        fprintf(stderr, "ballotd: %s\n", err);
        blog(BLOG_ERROR, "cannot start: %s", err);
        uv_run(d.loop, UV_RUN_DEFAULT); /* let what started close */
        return rv == BALLOT_EINVAL ? 2 : 1;
    }
    ballot_status(d.node, &st);
    blog_set_node(st.id);
    uv_timer_init(d.loop, &d.halt_guard);
    uv_timer_init(d.loop, &d.trim);
    uv_timer_start(&d.trim, on_trim, TRIM_EVERY_MS, TRIM_EVERY_MS);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = &d;
    d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_init(d.loop, &d.sighup);
    d.sighup.data = &d;
    uv_signal_start(&d.sighup, on_sighup, SIGHUP);
    blog(BLOG_INFO, "node %llu running (library %s)", (unsigned long long)st.id,
         ballot_version());

    uv_run(d.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(d.loop);
    if (rv != 0) {
        blog(BLOG_WARN, "loop closed with handles open: %s", uv_strerror(rv));
    }
    return d.exit_code;
}
