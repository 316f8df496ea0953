/*
 * format.c - byte layouts of the WAL segments, hard state and snapshot meta
 * files. All integers are little endian. Checksums are XXH3-64.
 */
#include "format.h"

#include <string.h>
/* The hash inlined from the header: the same values as libxxhash's, but
 * no call through the PLT and code the compiler specializes for the
 * short inputs of a record (a third of the cost of every write). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "storage.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/*
 * Segment header, 64 bytes at offset 0 of every segment file:
 *
 *   0       8        12       16       24            32          56      64
 *   +-------+--------+--------+--------+-------------+-----------+-------+
 *   | magic | version| hdrlen | seq    | first_index | reserved  | xxh3  |
 *   | 8 B   | u32 =1 | u32=64 | u64    | u64         | 24 B zero | u64   |
 *   +-------+--------+--------+--------+-------------+-----------+-------+
 *
 * magic is the ASCII "ballotWL"; xxh3 covers bytes 0..55. first_index is the
 * index the next entry had when the segment was created, which lets a log
 * whose older segments were compacted away be replayed from any segment.
 */
static const uint8_t seg_magic[8] = {'b', 'a', 'l', 'l', 'o', 't', 'W', 'L'};

void format_seg_header_encode(const struct format_seg_header *hdr,
                              uint8_t buf[FORMAT_SEG_HEADER_BYTES])
{
    memset(buf, 0, FORMAT_SEG_HEADER_BYTES);
    memcpy(buf, seg_magic, sizeof seg_magic);
    put_u32(buf + 8, FORMAT_VERSION);
    put_u32(buf + 12, FORMAT_SEG_HEADER_BYTES);
    put_u64(buf + 16, hdr->seq);
    put_u64(buf + 24, hdr->first_index);
    put_u64(buf + 56, XXH3_64bits(buf, 56));
}

int format_seg_header_decode(const uint8_t *buf,
                             size_t len,
                             struct format_seg_header *hdr,
                             const char **why)
{
    if (len < FORMAT_SEG_HEADER_BYTES) {
        *why = "segment shorter than its header";
        return STORAGE_ECORRUPT;
    }
    if (memcmp(buf, seg_magic, sizeof seg_magic) != 0) {
        *why = "bad segment magic";
        return STORAGE_ECORRUPT;
    }
    if (get_u64(buf + 56) != XXH3_64bits(buf, 56)) {
        *why = "segment header checksum mismatch";
        return STORAGE_ECORRUPT;
    }
    if (get_u32(buf + 8) != FORMAT_VERSION) {
        *why = "unsupported segment format version";
        return STORAGE_EVERSION;
    }
    if (get_u32(buf + 12) != FORMAT_SEG_HEADER_BYTES ||
        !all_zero(buf + 32, 24)) {
        *why = "bad segment header fields";
        return STORAGE_ECORRUPT;
    }
    hdr->seq = get_u64(buf + 16);
    hdr->first_index = get_u64(buf + 24);
    if (hdr->first_index == 0) {
        *why = "segment first index is zero";
        return STORAGE_ECORRUPT;
    }
    return 0;
}

/*
 * Record, 8-byte aligned inside a segment:
 *
 *   0      4      5       6       8       16      24      32          32+len
 *   +------+------+-------+-------+-------+-------+-------+-------------+-----+
 *   | len  | type | etype | rsvd  | term  | index | xxh3  | data        | pad |
 *   | u32  | u8   | u8    | u16=0 | u64   | u64   | u64   | len bytes   | 0-7 |
 *   +------+------+-------+-------+-------+-------+-------+-------------+-----+
 *
 * xxh3 = XXH3_64bits_withSeed(data + pad, XXH3_64bits(bytes 0..23)): it
 * covers every byte of the record except itself, padding included, so a
 * flipped bit anywhere is caught. type 0 never occurs, which makes an
 * all-zero header the unambiguous end of a preallocated segment.
 *
 *   type 1 ENTRY:    etype = raft entry type, term/index of the entry.
 *   type 2 TRUNCATE: entries >= index are discarded; len 0, term 0.
 *   type 3 COMMIT:   term = hard state term, index = commit, data = u64 vote.
 *   type 4 RESET:    every entry is discarded and the next entry has index
 *                    index (a snapshot replaced the log); len 0, term 0.
 */
size_t format_record_size(uint32_t len)
{
    return FORMAT_REC_HEADER_BYTES + (((size_t)len + 7) & ~(size_t)7);
}

static uint64_t record_checksum(const uint8_t *rec, size_t padded)
{
    uint64_t seed = XXH3_64bits(rec, 24);
    return XXH3_64bits_withSeed(rec + FORMAT_REC_HEADER_BYTES, padded, seed);
}

void format_record_encode(const struct format_record *rec, uint8_t *buf)
{
    size_t size = format_record_size(rec->len);

    put_u32(buf, rec->len);
    buf[4] = rec->type;
    buf[5] = rec->entry_type;
    buf[6] = 0;
    buf[7] = 0;
    put_u64(buf + 8, rec->term);
    put_u64(buf + 16, rec->index);
    if (rec->len > 0) {
        memcpy(buf + FORMAT_REC_HEADER_BYTES, rec->data, rec->len);
    }
    memset(buf + FORMAT_REC_HEADER_BYTES + rec->len, 0,
           size - FORMAT_REC_HEADER_BYTES - rec->len);
    put_u64(buf + 24, record_checksum(buf, size - FORMAT_REC_HEADER_BYTES));
}

static bool record_fields_valid(const struct format_record *rec)
{
    switch (rec->type) {
    case FORMAT_REC_ENTRY:
        return (rec->entry_type == RAFT_ENTRY_NORMAL ||
                rec->entry_type == RAFT_ENTRY_CONF) &&
               rec->index > 0 && rec->term > 0;
    case FORMAT_REC_TRUNCATE:
    case FORMAT_REC_RESET:
        return rec->entry_type == 0 && rec->len == 0 && rec->term == 0 &&
               rec->index > 0;
    case FORMAT_REC_COMMIT:
        return rec->entry_type == 0 && rec->len == 8;
    default:
        return false;
    }
}

int format_record_decode(const uint8_t *buf,
                         size_t avail,
                         struct format_record *rec,
                         const char **why)
{
    size_t size;

    if (avail < FORMAT_REC_HEADER_BYTES) {
        if (all_zero(buf, avail)) {
            *why = "end of segment";
            return FORMAT_END;
        }
        *why = "partial record header";
        return FORMAT_SHORT;
    }
    if (all_zero(buf, FORMAT_REC_HEADER_BYTES)) {
        *why = "end of segment";
        return FORMAT_END;
    }
    rec->len = get_u32(buf);
    rec->type = buf[4];
    rec->entry_type = buf[5];
    rec->term = get_u64(buf + 8);
    rec->index = get_u64(buf + 16);
    rec->data = buf + FORMAT_REC_HEADER_BYTES;
    if (rec->len > FORMAT_REC_DATA_MAX) {
        /* Checked before the length is used, so a flipped high bit cannot
         * make recovery read or allocate gigabytes. */
        *why = "record length over the limit";
        return FORMAT_BAD;
    }
    size = format_record_size(rec->len);
    if (size > avail) {
        *why = "record runs past the end of the segment";
        return FORMAT_SHORT;
    }
    if (get_u64(buf + 24) !=
        record_checksum(buf, size - FORMAT_REC_HEADER_BYTES)) {
        *why = "checksum mismatch";
        return FORMAT_BAD;
    }
    if (buf[6] != 0 || buf[7] != 0 || !record_fields_valid(rec)) {
        *why = "invalid record fields";
        return FORMAT_BAD;
    }
    return 0;
}

/*
 * Hard state file "hardstate", 40 bytes, replaced atomically:
 *
 *   0       4         8       16      24       32      40
 *   +-------+---------+-------+-------+--------+-------+
 *   | magic | version | term  | vote  | commit | xxh3  |
 *   | "BLHS"| u32 =1  | u64   | u64   | u64    | u64   |
 *   +-------+---------+-------+-------+--------+-------+
 *
 * xxh3 covers bytes 0..31.
 */
static const uint8_t hs_magic[4] = {'B', 'L', 'H', 'S'};

void format_hardstate_encode(const struct raft_hard_state *hs,
                             uint8_t buf[FORMAT_HARDSTATE_BYTES])
{
    memcpy(buf, hs_magic, 4);
    put_u32(buf + 4, FORMAT_VERSION);
    put_u64(buf + 8, hs->term);
    put_u64(buf + 16, hs->vote);
    put_u64(buf + 24, hs->commit);
    put_u64(buf + 32, XXH3_64bits(buf, 32));
}

int format_hardstate_decode(const uint8_t *buf,
                            size_t len,
                            struct raft_hard_state *hs,
                            const char **why)
{
    if (len != FORMAT_HARDSTATE_BYTES) {
        *why = "wrong file size";
        return STORAGE_ECORRUPT;
    }
    if (memcmp(buf, hs_magic, 4) != 0) {
        *why = "bad magic";
        return STORAGE_ECORRUPT;
    }
    if (get_u64(buf + 32) != XXH3_64bits(buf, 32)) {
        *why = "checksum mismatch";
        return STORAGE_ECORRUPT;
    }
    if (get_u32(buf + 4) != FORMAT_VERSION) {
        *why = "unsupported format version";
        return STORAGE_EVERSION;
    }
    hs->term = get_u64(buf + 8);
    hs->vote = get_u64(buf + 16);
    hs->commit = get_u64(buf + 24);
    return 0;
}

/*
 * Snapshot meta file "snapshot.meta", replaced atomically:
 *
 *   0       4         8       16      24      32        36      40       40+n
 *   +-------+---------+-------+-------+-------+---------+-------+--------+-----+
 *   | magic | version | index | term  | size  | conf_len| rsvd  | conf   |
 * xxh3| | "BLSM"| u32 =1  | u64   | u64   | u64   | u32 = n | u32=0 | n bytes|
 * u64 |
 *   +-------+---------+-------+-------+-------+---------+-------+--------+-----+
 *
 * conf is format_conf_encode()d; xxh3 covers every byte before it.
 */
static const uint8_t sm_magic[4] = {'B', 'L', 'S', 'M'};

void format_snapmeta_encode(const struct raft_snapshot_meta *meta,
                            uint8_t *buf,
                            size_t *len)
{
    size_t conf_len;

    memcpy(buf, sm_magic, 4);
    put_u32(buf + 4, FORMAT_VERSION);
    put_u64(buf + 8, meta->index);
    put_u64(buf + 16, meta->term);
    put_u64(buf + 24, meta->size);
    format_conf_encode(&meta->conf, buf + 40, &conf_len);
    put_u32(buf + 32, (uint32_t)conf_len);
    put_u32(buf + 36, 0);
    put_u64(buf + 40 + conf_len, XXH3_64bits(buf, 40 + conf_len));
    *len = 40 + conf_len + 8;
}

int format_snapmeta_decode(const uint8_t *buf,
                           size_t len,
                           struct raft_snapshot_meta *meta,
                           const char **why)
{
    uint32_t conf_len;
    struct raft_snapshot_meta out;

    if (len < FORMAT_SNAPMETA_FIXED_BYTES || len > FORMAT_SNAPMETA_MAX_BYTES) {
        *why = "wrong file size";
        return STORAGE_ECORRUPT;
    }
    if (memcmp(buf, sm_magic, 4) != 0) {
        *why = "bad magic";
        return STORAGE_ECORRUPT;
    }
    conf_len = get_u32(buf + 32);
    if ((size_t)conf_len != len - FORMAT_SNAPMETA_FIXED_BYTES) {
        *why = "conf length does not match the file size";
        return STORAGE_ECORRUPT;
    }
    if (get_u64(buf + len - 8) != XXH3_64bits(buf, len - 8)) {
        *why = "checksum mismatch";
        return STORAGE_ECORRUPT;
    }
    if (get_u32(buf + 4) != FORMAT_VERSION) {
        *why = "unsupported format version";
        return STORAGE_EVERSION;
    }
    memset(&out, 0, sizeof out);
    out.index = get_u64(buf + 8);
    out.term = get_u64(buf + 16);
    out.size = get_u64(buf + 24);
    if (get_u32(buf + 36) != 0 || out.index == 0 || out.term == 0 ||
        format_conf_decode(buf + 40, conf_len, &out.conf) != 0) {
        *why = "invalid snapshot meta fields";
        return STORAGE_ECORRUPT;
    }
    *meta = out;
    return 0;
}

void format_conf_encode(const struct raft_conf *conf, uint8_t *buf, size_t *len)
{
    size_t off = 8;

    put_u32(buf, 1);
    put_u32(buf + 4, conf->n);
    for (uint32_t i = 0; i < conf->n && i < RAFT_CONF_MAX; i++) {
        put_u64(buf + off, conf->members[i].id);
        buf[off + 8] = conf->members[i].role;
        off += 9;
    }
    *len = off;
}

int format_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *conf)
{
    struct raft_conf out;
    uint32_t n;

    if (len < 8 || get_u32(buf) != 1) {
        return STORAGE_ECORRUPT;
    }
    n = get_u32(buf + 4);
    if (n > RAFT_CONF_MAX || len != 8 + (size_t)n * 9) {
        return STORAGE_ECORRUPT;
    }
    memset(&out, 0, sizeof out);
    out.n = n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = buf + 8 + (size_t)i * 9;
        out.members[i].id = get_u64(p);
        out.members[i].role = p[8];
        if (out.members[i].id == 0 ||
            (p[8] != RAFT_VOTER && p[8] != RAFT_LEARNER)) {
            return STORAGE_ECORRUPT;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (out.members[j].id == out.members[i].id) {
                return STORAGE_ECORRUPT;
            }
        }
    }
    *conf = out;
    return 0;
}
