/*
 * cmd_snapshot.c - `ballot snapshot save FILE` and `ballot snapshot restore
 * FILE SETTINGS...`: backing up a cluster's store and starting a new
 * cluster from the backup (docs/operations.md, "Backup and restore").
 *
 * save: BSNAPSHOT CREATE on the first endpoint that answers (the node
 * copies its store behind a read barrier), READ in chunks of the size the
 * node announced (1 MiB by default) into FILE.part,
 * fsync, verify the file's checksums and that it is what the node
 * announced, rename to FILE, DONE. FILE.part is removed on any failure,
 * and the node deletes its copy when told DONE or when the connection
 * closes.
 *
 * restore: runs `ballotd restore` (net/restore.h), which builds the data
 * directory a node of a new cluster starts from with the node's own code.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kv.h"

/* How long the node may take to write its copy before CREATE answers (or
 * --timeout, if longer): a copy of a store of many GiB takes a while. */
#define SAVE_WAIT_MS (10 * 60 * 1000)
/* What BSNAPSHOT CREATE announced. */
struct announced
{
    long long token, size, index, term, revision, compact_revision;
    long long chunk_max; /* bytes asked for per READ */
    char checksum[24];
};

static bool parse_announced(redisReply *r, struct announced *a)
{
    redisReply *sum;
    if (r->type != REDIS_REPLY_ARRAY) {
        return false;
    }
    a->token = cli_map_int(r, "token");
    a->size = cli_map_int(r, "size");
    a->index = cli_map_int(r, "index");
    a->term = cli_map_int(r, "term");
    a->revision = cli_map_int(r, "revision");
    a->compact_revision = cli_map_int(r, "compact_revision");
    a->chunk_max = cli_map_int(r, "chunk_max");
    sum = cli_map_get(r, "checksum");
    if (sum == NULL || sum->type != REDIS_REPLY_STRING ||
        sum->len >= sizeof(a->checksum)) {
        return false;
    }
    memcpy(a->checksum, sum->str, sum->len + 1);
    return a->token > 0 && a->size >= (long long)KV_SNAPSHOT_HEADER_BYTES &&
           a->index >= 0 && a->term >= 0 && a->revision >= 0 &&
           a->chunk_max > 0;
}

/* Tells the node its copy can go; if the connection is gone, the node
 * has deleted it already. */
static void release_export(struct cli *cli, long long token)
{
    char tok[32];
    const char *argv[3] = {"BSNAPSHOT", "DONE", tok};
    redisReply *r;
    if (cli->conn == NULL) {
        return;
    }
    snprintf(tok, sizeof(tok), "%lld", token);
    r = cli_command_on(cli->conn, 3, argv);
    if (r == NULL) {
        cli_disconnect(cli);
        return;
    }
    freeReplyObject(r);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Streams the export into @fd. Returns CLI_OK or an exit code, with
 * cli->errmsg set. */
static int download(struct cli *cli, const struct announced *a, int fd)
{
    char tok[32], off[32], cnt[32];
    const char *argv[5] = {"BSNAPSHOT", "READ", tok, off, cnt};
    snprintf(tok, sizeof(tok), "%lld", a->token);
    snprintf(cnt, sizeof(cnt), "%lld", a->chunk_max);
    for (long long at = 0; at < a->size;) {
        redisReply *r;
        int rc = CLI_OK;
        snprintf(off, sizeof(off), "%lld", at);
        r = cli_command_on(cli->conn, 5, argv);
        if (r == NULL) {
            snprintf(
                cli->errmsg, sizeof(cli->errmsg), "%s: %s at byte %lld of %lld",
                cli->conn_addr,
                cli->conn->errstr[0] ? cli->conn->errstr : "connection lost",
                at, a->size);
            cli_disconnect(cli);
            return CLI_UNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(cli->errmsg, sizeof(cli->errmsg), "%s", r->str);
            rc = cli_error_code(r->str);
        } else if (r->type != REDIS_REPLY_STRING || r->len == 0 ||
                   (long long)r->len > a->size - at) {
            snprintf(cli->errmsg, sizeof(cli->errmsg),
                     "unexpected BSNAPSHOT READ reply at byte %lld", at);
            rc = CLI_REJECTED;
        } else if (write_all(fd, r->str, r->len) != 0) {
            snprintf(cli->errmsg, sizeof(cli->errmsg), "writing: %s",
                     strerror(errno));
            rc = CLI_LOCAL;
        } else {
            at += (long long)r->len;
        }
        freeReplyObject(r);
        if (rc != CLI_OK) {
            return rc;
        }
    }
    return CLI_OK;
}

/* Checks the downloaded file's checksums, and that it is the copy the
 * node announced. */
static int verify(struct cli *cli, const char *path, const struct announced *a)
{
    struct kv_snapshot *snap = NULL;
    char msg[300] = "", sum[24];
    int rc = kv_snapshot_open(path, NULL, &snap, msg, sizeof(msg));
    if (rc == 0) {
        rc = kv_snapshot_verify(snap, msg, sizeof(msg));
    }
    if (rc == 0) {
        const struct kv_snapshot_info *info = kv_snapshot_info(snap);
        snprintf(sum, sizeof(sum), "%016" PRIx64, info->payload_hash);
        if ((long long)info->size != a->size ||
            (long long)info->applied != a->index ||
            (long long)info->revision != a->revision ||
            strcmp(sum, a->checksum) != 0) {
            snprintf(msg, sizeof(msg),
                     "it is not the copy the node announced (index %" PRIu64
                     ", revision %" PRIu64 ", checksum %s)",
                     (uint64_t)info->applied, info->revision, sum);
            rc = -1;
        }
    }
    kv_snapshot_close(snap);
    if (rc != 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg),
                 "the downloaded snapshot does not verify: %s",
                 msg[0] ? msg : kv_strerror(rc));
        return CLI_LOCAL;
    }
    return CLI_OK;
}

/* Makes a rename in the directory of @path durable. */
static int sync_dir_of(const char *path)
{
    char *copy = strdup(path);
    int fd = copy != NULL ? open(dirname(copy), O_RDONLY | O_DIRECTORY) : -1;
    int rv = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    if (fd >= 0) {
        close(fd);
    }
    free(copy);
    return rv;
}

/* Writes the export into @part, then renames it to @file. */
static int save_to(struct cli *cli,
                   const struct announced *a,
                   const char *part,
                   const char *file)
{
    int rc, fd = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: %s", part,
                 strerror(errno));
        return CLI_LOCAL;
    }
    rc = download(cli, a, fd);
    if (rc == CLI_OK && fsync(fd) != 0) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: fsync: %s", part,
                 strerror(errno));
        rc = CLI_LOCAL;
    }
    close(fd);
    if (rc == CLI_OK) {
        rc = verify(cli, part, a);
    }
    if (rc == CLI_OK && (rename(part, file) != 0 || sync_dir_of(file) != 0)) {
        snprintf(cli->errmsg, sizeof(cli->errmsg), "%s: %s", file,
                 strerror(errno));
        rc = CLI_LOCAL;
    }
    return rc;
}

static void print_saved(struct cli *cli,
                        const char *file,
                        const struct announced *a)
{
    if (!cli->json) {
        printf("saved %s: index %lld, term %lld, revision %lld, %lld bytes\n",
               file, a->index, a->term, a->revision, a->size);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    cJSON_AddNumberToObject(o, "index", (double)a->index);
    cJSON_AddNumberToObject(o, "term", (double)a->term);
    cJSON_AddNumberToObject(o, "revision", (double)a->revision);
    cJSON_AddNumberToObject(o, "compact_revision", (double)a->compact_revision);
    cJSON_AddNumberToObject(o, "size", (double)a->size);
    cJSON_AddStringToObject(o, "checksum", a->checksum);
    cli_print_json(o);
}

static int snapshot_save(struct cli *cli, const char *file)
{
    const char *create[2] = {"BSNAPSHOT", "CREATE"};
    struct announced a;
    redisReply *r;
    char *part;
    int rc;

    memset(&a, 0, sizeof(a));
    part = malloc(strlen(file) + sizeof(".part"));
    if (part == NULL) {
        return cli_fail(cli, CLI_LOCAL, "out of memory");
    }
    sprintf(part, "%s.part", file);
    cli->wait_ms =
        cli->timeout_ms > SAVE_WAIT_MS ? cli->timeout_ms : SAVE_WAIT_MS;
    rc = cli_call(cli, CLI_READ, 2, create, NULL, &r);
    cli->wait_ms = 0;
    if (rc != CLI_OK || r->type == REDIS_REPLY_ERROR) {
        free(part);
        return cli_fail_reply(cli, rc, r);
    }
    bool ok = parse_announced(r, &a);
    freeReplyObject(r);
    if (!ok) {
        free(part);
        cli_disconnect(cli); /* the node drops whatever it made */
        return cli_fail(cli, CLI_REJECTED, "unexpected BSNAPSHOT CREATE reply");
    }
    rc = save_to(cli, &a, part, file);
    release_export(cli, a.token);
    if (rc != CLI_OK) {
        unlink(part);
        free(part);
        return cli_fail(cli, rc, "snapshot save: %s", cli->errmsg);
    }
    free(part);
    print_saved(cli, file, &a);
    return CLI_OK;
}

/* ---------------------------------------------------------------------- */
/* restore: an alias of `ballotd restore`                                  */

/* Where ballotd is: $BALLOTD, else beside this program (an installed
 * tree), else ../net/ballotd (the build tree), else the PATH. */
static void find_ballotd(char *out, size_t out_len)
{
    const char *env = getenv("BALLOTD");
    char self[4096];
    ssize_t n;
    if (env != NULL && env[0] != '\0') {
        snprintf(out, out_len, "%s", env);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        snprintf(out, out_len, "%s/ballotd", dir);
        if (access(out, X_OK) == 0) {
            return;
        }
        snprintf(out, out_len, "%s/../net/ballotd", dir);
        if (access(out, X_OK) == 0) {
            return;
        }
    }
    snprintf(out, out_len, "ballotd");
}

/* argv: "snapshot" "restore" FILE SETTING... The restore writes a node's
 * files with the node's own code, so it is ballotd's (restore.h in net/);
 * this client, which speaks only the client protocol, hands it over. */
static int snapshot_restore(struct cli *cli, int argc, char **argv)
{
    char path[4096];
    char **args = calloc((size_t)argc + 2, sizeof(*args));
    int n = 0;
    if (args == NULL) {
        return cli_fail(cli, CLI_LOCAL, "snapshot restore: out of memory");
    }
    find_ballotd(path, sizeof(path));
    args[n++] = path;
    args[n++] = "restore";
    if (cli->json) {
        args[n++] = "--json";
    }
    for (int i = 2; i < argc; i++) {
        args[n++] = argv[i];
    }
    args[n] = NULL;
    fflush(stdout);
    execvp(path, args);
    int e = errno;
    free(args);
    return cli_fail(cli, CLI_LOCAL,
                    "snapshot restore: cannot run %s: %s (it is `ballotd "
                    "restore`; set BALLOTD to its path)",
                    path, strerror(e));
}

int cmd_snapshot(struct cli *cli, int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "save") == 0) {
        return snapshot_save(cli, argv[2]);
    }
    if (argc >= 3 && strcmp(argv[1], "restore") == 0) {
        return snapshot_restore(cli, argc, argv);
    }
    return cli_usage(argv[0]);
}
