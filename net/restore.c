/*
 * restore.c - `ballotd restore FILE SETTINGS...` (restore.h). With
 * ballotd's own settings, datadir_restore() builds the data directory a
 * node of a new cluster starts from. It contacts no node.
 */
#include "restore.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "datadir.h"

/* Exit codes, the same as the `ballot` CLI's for the same failures. */
enum {
    RESTORE_OK = 0,
    RESTORE_USAGE = 2,
    RESTORE_FAILED = 6,
};

static int usage(void)
{
    fprintf(stderr,
            "usage: ballotd restore [--json] FILE --data DIR --id N "
            "--member ID=HOST:CLIENT_PORT[:PEER_PORT]... [--voters IDS] "
            "[--config FILE]\n"
            "  creates the data directory DIR from which ballotd (started "
            "with the same\n  settings, without --bootstrap) runs node N of "
            "a new cluster whose state is\n  FILE; restore every member from "
            "the same FILE with the same members\n");
    return RESTORE_USAGE;
}

/* Reports a failure on stderr and, with --json, as the CLI's JSON error
 * object on stdout ({"error": {"message", "exit_code"}}), so that `ballot
 * --json snapshot restore` keeps its shape. Returns @code. */
static int fail(bool json, int code, const char *msg)
{
    fprintf(stderr, "ballotd restore: %s\n", msg);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", msg);
        cJSON_AddNumberToObject(e, "exit_code", code);
        char *s = cJSON_PrintUnformatted(o);
        if (s != NULL) {
            printf("%s\n", s);
            cJSON_free(s);
        }
        cJSON_Delete(o);
    }
    return code;
}

static void print_json(const struct ballotd_config *cfg,
                       const struct datadir_restored *res)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return;
    }
    cJSON_AddStringToObject(o, "data", cfg->data_dir);
    cJSON_AddNumberToObject(o, "id", (double)cfg->node.id);
    cJSON_AddNumberToObject(o, "index", (double)res->index);
    cJSON_AddNumberToObject(o, "term", (double)res->term);
    cJSON_AddNumberToObject(o, "revision", (double)res->revision);
    cJSON_AddNumberToObject(o, "size", (double)res->size);
    cJSON *arr = cJSON_AddArrayToObject(o, "voters");
    for (uint32_t i = 0; arr != NULL && i < res->conf.n; i++) {
        cJSON_AddItemToArray(
            arr, cJSON_CreateNumber((double)res->conf.members[i].id));
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s != NULL) {
        printf("%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(o);
}

static void print_text(const struct ballotd_config *cfg,
                       const struct datadir_restored *res)
{
    char voters[RAFT_CONF_MAX * 21 + 1] = "";
    size_t n = 0;
    for (uint32_t i = 0; i < res->conf.n; i++) {
        n += (size_t)snprintf(voters + n, sizeof(voters) - n, "%s%" PRIu64,
                              i > 0 ? "," : "",
                              (uint64_t)res->conf.members[i].id);
    }
    printf("restored index %" PRIu64 " (revision %" PRIu64 ", %" PRIu64
           " bytes) into %s as node %" PRIu64
           " of a new cluster of voters %s;\n"
           "start ballotd on it with the same settings, without --bootstrap\n",
           (uint64_t)res->index, res->revision, res->size, cfg->data_dir,
           (uint64_t)cfg->node.id, voters);
}

int restore_main(int argc, char **argv)
{
    struct ballotd_config cfg;
    struct datadir_restored res;
    char err[512];
    bool json = false;
    int first = 1;
    if (argc > first && strcmp(argv[first], "--json") == 0) {
        json = true;
        first++;
    }
    if (argc <= first || argv[first][0] == '-') {
        return usage();
    }
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return usage();
        }
    }
    config_default(&cfg);
    /* The settings are ballotd's, parsed by ballotd's own code; it skips
     * its argv[0], which is FILE here. */
    const char *file = argv[first];
    if (config_from_args(&cfg, argc - first, argv + first, err, sizeof(err)) !=
            0 ||
        config_finish(&cfg, err, sizeof(err)) != 0) {
        fail(json, RESTORE_USAGE, err);
        return usage();
    }
    int rc = datadir_restore(file, &cfg.node, &res, err, sizeof(err));
    if (rc != 0) {
        return fail(json, rc == DATADIR_EINVAL ? RESTORE_USAGE : RESTORE_FAILED,
                    err);
    }
    if (json) {
        print_json(&cfg, &res);
    } else {
        print_text(&cfg, &res);
    }
    return RESTORE_OK;
}
