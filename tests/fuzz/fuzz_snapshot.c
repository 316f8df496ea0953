/*
 * fuzz_snapshot.c - libFuzzer target for what a snapshot carries: its
 * file header (kv/kv_snapshot.c) and the store records of its payload
 * (kv_record_decode(), kv_hist_decode(): the same decoders read the live
 * store).
 *
 * Properties checked on every input:
 *
 *   1. no decoder crashes or overreads on any bytes (ASan), the header
 *      both as given and with its checksum made right (so that the fields
 *      behind the checksum are explored too);
 *   2. an accepted header encodes back to its own bytes;
 *   3. a record or history record the decoder accepts encodes back to its
 *      own bytes;
 *   4. a record built by the encoder from the input decodes to its own
 *      fields, and with any single bit flipped, in the record or in its
 *      key, it is refused: damage is never read as data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "kv_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *data, size_t size)
{
    uint8_t h[KV_SNAPSHOT_HEADER_BYTES] = {0}, again[KV_SNAPSHOT_HEADER_BYTES];
    struct kv_snapshot_info info;
    char msg[128];
    memcpy(h, data, size < sizeof(h) ? size : sizeof(h));
    for (int fixed = 0; fixed < 2; fixed++) {
        if (fixed) {
            kv_put_u64le(h + 56, XXH3_64bits(h, 56));
        }
        if (kv_snapshot_header_decode(h, &info, msg, sizeof(msg)) == 0) {
            kv_snapshot_header_encode(&info, again);
            if (memcmp(again, h, sizeof(h)) != 0) {
                abort();
            }
        }
    }
}

static void check_raw_records(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return;
    }
    size_t key_len = data[0] % (size < 64 ? size : 64);
    MDB_val k = {key_len, (void *)(data + 1)};
    MDB_val v = {size - 1 - key_len, (void *)(data + 1 + key_len)};
    if (1 + key_len > size) {
        return;
    }
    struct kv_kv kv;
    if (key_len > 0 && kv_record_decode(&k, &v, &kv) == 0) {
        uint8_t *buf = malloc(v.mv_size);
        if (buf == NULL) {
            abort();
        }
        kv_record_encode(&kv, buf);
        if (memcmp(buf, v.mv_data, v.mv_size) != 0) {
            abort();
        }
        free(buf);
    }
    if (size >= 1 + KV_HIST_KEY) {
        MDB_val hk = {KV_HIST_KEY, (void *)(data + 1)};
        MDB_val hv = {size - 1 - KV_HIST_KEY, (void *)(data + 1 + KV_HIST_KEY)};
        struct kv_event ev;
        if (kv_hist_decode(&hk, &hv, &ev) == 0) {
            uint8_t *buf = malloc(hv.mv_size);
            if (buf == NULL) {
                abort();
            }
            kv_hist_encode(hk.mv_data, ev.type, &ev.kv, buf);
            if (memcmp(buf, hv.mv_data, hv.mv_size) != 0) {
                abort();
            }
            free(buf);
        }
    }
}

/* A record made by the encoder, then one bit flipped. */
static void check_built_record(const uint8_t *data, size_t size)
{
    if (size < 4 + 24) {
        return;
    }
    uint8_t key[KV_KEY_BYTES_MAX];
    size_t key_len = 1 + data[0] % 32;
    size_t bit_sel = (size_t)data[1] << 8 | data[2];
    const uint8_t *p = data + 3;
    size_t left = size - 3;
    if (left < key_len + 24) {
        return;
    }
    memcpy(key, p, key_len);
    p += key_len;
    left -= key_len;
    struct kv_kv kv, got;
    memset(&kv, 0, sizeof(kv));
    kv.key = key;
    kv.key_len = (uint32_t)key_len;
    kv.create_revision = kv_get_u64le(p);
    kv.mod_revision = kv_get_u64le(p + 8);
    kv.version = kv_get_u64le(p + 16);
    kv.value = p + 24;
    kv.value_len = (uint32_t)(left - 24);
    size_t n = KV_REC_HEADER + kv.value_len;
    uint8_t *rec = malloc(n);
    if (rec == NULL) {
        abort();
    }
    kv_record_encode(&kv, rec);
    MDB_val k = {key_len, key}, v = {n, rec};
    if (kv_record_decode(&k, &v, &got) != 0 ||
        got.create_revision != kv.create_revision ||
        got.mod_revision != kv.mod_revision || got.version != kv.version ||
        got.value_len != kv.value_len ||
        memcmp(got.value, kv.value, kv.value_len) != 0) {
        abort();
    }
    size_t bit = bit_sel % ((n + key_len) * 8);
    uint8_t *target = bit / 8 < n ? rec + bit / 8 : key + (bit / 8 - n);
    *target ^= (uint8_t)(1u << (bit % 8));
    if (kv_record_decode(&k, &v, &got) == 0) {
        abort(); /* a flipped bit read as data */
    }
    free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_header(data, size);
    check_raw_records(data, size);
    check_built_record(data, size);
    return 0;
}
