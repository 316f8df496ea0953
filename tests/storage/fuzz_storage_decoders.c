/*
 * fuzz_storage_decoders.c - libFuzzer target for every on-disk decoder of
 * the storage layer: segment header, record, hard state, snapshot meta and
 * configuration. The first input byte picks the decoder. Property: a
 * decoder never reads past its input, and whatever it accepts re-encodes
 * to exactly the bytes it came from.
 *
 * Build with clang (tests/storage/CMakeLists.txt adds it when the compiler
 * is clang): ./fuzz_storage_decoders corpus/
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const uint8_t *a, const uint8_t *b, size_t len)
{
    if (memcmp(a, b, len) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[FORMAT_REC_HEADER_BYTES + 70000];
    const char *why;
    uint8_t kind;

    if (size < 1) {
        return 0;
    }
    kind = data[0] % 5;
    data++;
    size--;
    switch (kind) {
    case 0: {
        struct format_seg_header h;
        if (format_seg_header_decode(data, size, &h, &why) == 0) {
            format_seg_header_encode(&h, out);
            check_same(out, data, FORMAT_SEG_HEADER_BYTES);
        }
        break;
    }
    case 1: {
        struct format_record r;
        if (format_record_decode(data, size, &r, &why) == 0) {
            size_t n = format_record_size(r.len);
            if (n <= sizeof out) {
                format_record_encode(&r, out);
                check_same(out, data, n);
            }
        }
        break;
    }
    case 2: {
        struct raft_hard_state hs;
        if (format_hardstate_decode(data, size, &hs, &why) == 0) {
            format_hardstate_encode(&hs, out);
            check_same(out, data, FORMAT_HARDSTATE_BYTES);
        }
        break;
    }
    case 3: {
        struct raft_snapshot_meta m;
        size_t n;
        if (format_snapmeta_decode(data, size, &m, &why) == 0) {
            format_snapmeta_encode(&m, out, &n);
            if (n != size) {
                abort();
            }
            check_same(out, data, n);
        }
        break;
    }
    default: {
        struct raft_conf c;
        size_t n;
        if (format_conf_decode(data, size, &c) == 0) {
            format_conf_encode(&c, out, &n);
            if (n != size) {
                abort();
            }
            check_same(out, data, n);
        }
        break;
    }
    }
    return 0;
}
