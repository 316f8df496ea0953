/*
 * fuzz_wal.c - libFuzzer target for the WAL's on-disk formats
 * (storage/format.c): segment headers, records, the hard state, the
 * snapshot meta and the configuration codec.
 *
 * Properties checked on every input:
 *
 *   1. no decoder crashes, overreads or leaks on any bytes (ASan);
 *   2. what a decoder accepts encodes to something it decodes to the same
 *      fields (decode, encode and decode agree);
 *   3. a record built from the input by the encoder decodes to its own
 *      fields, and with any one bit of it flipped is refused or decodes
 *      without crashing (the checksum's job is tested in tests/storage).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t take_u64(const uint8_t **p, size_t *left)
{
    uint64_t v = 0;
    for (int i = 0; i < 8 && *left > 0; i++, (*p)++, (*left)--) {
        v |= (uint64_t) * *p << (8 * i);
    }
    return v;
}

static void check_raw(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    struct format_seg_header h, h2;
    if (format_seg_header_decode(data, size, &h, &why) == 0) {
        uint8_t buf[FORMAT_SEG_HEADER_BYTES];
        format_seg_header_encode(&h, buf);
        if (format_seg_header_decode(buf, sizeof(buf), &h2, &why) != 0 ||
            h2.seq != h.seq || h2.first_index != h.first_index) {
            abort();
        }
    }
    struct format_record r, r2;
    if (format_record_decode(data, size, &r, &why) == 0) {
        size_t n = format_record_size(r.len);
        if (n > size || r.len > FORMAT_REC_DATA_MAX) {
            abort();
        }
        uint8_t *buf = malloc(n);
        if (buf == NULL) {
            abort();
        }
        format_record_encode(&r, buf);
        if (format_record_decode(buf, n, &r2, &why) != 0 || r2.type != r.type ||
            r2.term != r.term || r2.index != r.index || r2.len != r.len ||
            memcmp(r2.data, r.data, r.len) != 0) {
            abort();
        }
        free(buf);
    }
    struct raft_hard_state hs, hs2;
    if (format_hardstate_decode(data, size, &hs, &why) == 0) {
        uint8_t buf[FORMAT_HARDSTATE_BYTES];
        format_hardstate_encode(&hs, buf);
        if (format_hardstate_decode(buf, sizeof(buf), &hs2, &why) != 0 ||
            hs2.term != hs.term || hs2.vote != hs.vote ||
            hs2.commit != hs.commit) {
            abort();
        }
    }
    struct raft_snapshot_meta m, m2;
    if (format_snapmeta_decode(data, size, &m, &why) == 0) {
        uint8_t buf[FORMAT_SNAPMETA_MAX_BYTES];
        size_t n = 0;
        format_snapmeta_encode(&m, buf, &n);
        if (format_snapmeta_decode(buf, n, &m2, &why) != 0 ||
            m2.index != m.index || m2.term != m.term || m2.conf.n != m.conf.n) {
            abort();
        }
    }
    struct raft_conf c, c2;
    if (format_conf_decode(data, size, &c) == 0) {
        uint8_t buf[RAFT_CONF_ENCODED_MAX];
        size_t n = 0;
        format_conf_encode(&c, buf, &n);
        if (format_conf_decode(buf, n, &c2) != 0 || c2.n != c.n) {
            abort();
        }
    }
}

/* A record made by the encoder from the input's bytes, then damaged. */
static void check_built(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    if (size < 4) {
        return;
    }
    const uint8_t *p = data + 4;
    size_t left = size - 4;
    struct format_record r, r2;
    memset(&r, 0, sizeof(r));
    r.type = (uint8_t)(1 + data[0] % 4);
    r.entry_type = r.type == FORMAT_REC_ENTRY ? (uint8_t)(data[1] % 3) : 0;
    r.term = take_u64(&p, &left);
    r.index = take_u64(&p, &left);
    r.len = r.type == FORMAT_REC_ENTRY ? (uint32_t)left : 0;
    r.data = r.len > 0 ? p : NULL;
    size_t n = format_record_size(r.len);
    uint8_t *buf = malloc(n);
    if (buf == NULL) {
        abort();
    }
    format_record_encode(&r, buf);
    int rv = format_record_decode(buf, n, &r2, &why);
    if (rv == 0 && (r2.type != r.type || r2.term != r.term ||
                    r2.index != r.index || r2.len != r.len)) {
        abort();
    }
    size_t bit = ((size_t)data[2] << 8 | data[3]) % (n * 8);
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    (void)format_record_decode(buf, n, &r2, &why);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_raw(data, size);
    check_built(data, size);
    return 0;
}
