/*
 * defrag.c - `ballotd defrag`; see defrag.h.
 */
#include "defrag.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "datadir.h"
#include "kv.h"

int defrag_main(int argc, char **argv)
{
    const char *data = NULL;
    char path[4200], err[512] = "";
    uint64_t before = 0, after = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else {
            data = NULL;
            break;
        }
    }
    if (data == NULL) {
        fprintf(stderr,
                "usage: ballotd defrag --data DIR\n"
                "Gives the free pages of the stopped node's store in DIR "
                "back to the file system.\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/%s", data, DATADIR_KV);
    int rv = kv_defrag(path, NULL, &before, &after, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "ballotd defrag: %s\n",
                err[0] != '\0' ? err : kv_strerror(rv));
        return 6;
    }
    printf("store %s: %.1f MiB on disk before, %.1f MiB after\n", path,
           (double)before / (1 << 20), (double)after / (1 << 20));
    return 0;
}
