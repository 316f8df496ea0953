/*
 * fuzz_kv_cmd.c - libFuzzer target for the command decoder.
 *
 * Property: the decoder never crashes or reads out of bounds on any input,
 * and whatever it accepts re-encodes to exactly the same bytes (the
 * encoding is canonical, so replicas cannot disagree on a command's
 * meaning). Built with -DBALLOT_FUZZ=ON and clang; the seed corpus is in
 * corpus/cmd.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kv_cmd cmd;
    if (kv_cmd_decode(data, size, NULL, &cmd) != 0) {
        return 0;
    }
    size_t n = kv_cmd_encoded_size(&cmd);
    uint8_t *buf = malloc(n ? n : 1);
    size_t len = 0;
    if (n != size || buf == NULL || kv_cmd_encode(&cmd, buf, n, &len) != 0 ||
        len != size || memcmp(buf, data, size) != 0) {
        abort();
    }
    free(buf);
    kv_cmd_free(&cmd, NULL);
    return 0;
}
