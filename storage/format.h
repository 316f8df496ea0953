/*
 * format.h - encoders and decoders of every on-disk structure of the storage
 * layer (internal). docs/storage.md is the normative description; the byte
 * layouts are also drawn above each encoder in format.c.
 *
 * Decoders treat their input as untrusted: every length is checked against
 * the bytes available before anything is read or allocated.
 */
#ifndef BALLOT_STORAGE_FORMAT_H
#define BALLOT_STORAGE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* Version of every file format below; bumped on any incompatible change. */
#define FORMAT_VERSION 1

#define FORMAT_SEG_HEADER_BYTES 64
#define FORMAT_REC_HEADER_BYTES 32
/* The largest payload of one record. Bounds what recovery will believe a
 * length field before it has checked the checksum. */
#define FORMAT_REC_DATA_MAX (64u * 1024u * 1024u)

#define FORMAT_HARDSTATE_BYTES 40
#define FORMAT_SNAPMETA_FIXED_BYTES 48 /* everything but the conf bytes */
#define FORMAT_SNAPMETA_MAX_BYTES \
    (FORMAT_SNAPMETA_FIXED_BYTES + RAFT_CONF_ENCODED_MAX)

enum format_record_type {
    FORMAT_REC_ENTRY = 1,    /* a raft_entry */
    FORMAT_REC_TRUNCATE = 2, /* entries >= index are discarded */
    FORMAT_REC_COMMIT = 3,   /* commit hint for the hard state on file */
    FORMAT_REC_RESET = 4,    /* every entry is discarded; log restarts */
};

struct format_seg_header
{
    uint64_t seq;           /* sequence number, equal to the file name */
    raft_index first_index; /* index the next entry had when it was made */
};

struct format_record
{
    uint8_t type;       /* enum format_record_type */
    uint8_t entry_type; /* enum raft_entry_type for FORMAT_REC_ENTRY */
    raft_term term;
    raft_index index;
    uint32_t len;
    const uint8_t *data; /* borrowed */
};

/* Results of format_record_decode() besides 0. */
enum {
    FORMAT_END = 1,   /* an all-zero header: the unwritten end of a segment */
    FORMAT_SHORT = 2, /* the record runs past the available bytes */
    FORMAT_BAD = 3,   /* checksum mismatch or impossible field */
};

void format_seg_header_encode(const struct format_seg_header *hdr,
                              uint8_t buf[FORMAT_SEG_HEADER_BYTES]);

/* Returns 0, STORAGE_ECORRUPT (with a reason in @why) or STORAGE_EVERSION. */
int format_seg_header_decode(const uint8_t *buf,
                             size_t len,
                             struct format_seg_header *hdr,
                             const char **why);

/* Bytes a record with @len payload bytes occupies (header, payload, padding
 * to a multiple of 8). */
size_t format_record_size(uint32_t len);

/* Writes format_record_size(rec->len) bytes into @buf. */
void format_record_encode(const struct format_record *rec, uint8_t *buf);

/* Decodes the record at the start of @buf (@avail bytes). Returns 0 and
 * fills @rec (data points into @buf), or FORMAT_END, FORMAT_SHORT or
 * FORMAT_BAD with a static reason in @why. */
int format_record_decode(const uint8_t *buf,
                         size_t avail,
                         struct format_record *rec,
                         const char **why);

void format_hardstate_encode(const struct raft_hard_state *hs,
                             uint8_t buf[FORMAT_HARDSTATE_BYTES]);
/* Returns 0, STORAGE_ECORRUPT (reason in @why) or STORAGE_EVERSION. */
int format_hardstate_decode(const uint8_t *buf,
                            size_t len,
                            struct raft_hard_state *hs,
                            const char **why);

/* Encodes into @buf (FORMAT_SNAPMETA_MAX_BYTES) and stores the length. */
void format_snapmeta_encode(const struct raft_snapshot_meta *meta,
                            uint8_t *buf,
                            size_t *len);
/* Returns 0, STORAGE_ECORRUPT (reason in @why) or STORAGE_EVERSION. */
int format_snapmeta_decode(const uint8_t *buf,
                           size_t len,
                           struct raft_snapshot_meta *meta,
                           const char **why);

/* The configuration codec, byte-identical to raft_conf_encode() (u32
 * version 1, u32 n, n x {u64 id, u8 role}, little endian). Storage carries
 * its own copy so that it depends on raft.h's types only. */
void format_conf_encode(const struct raft_conf *conf,
                        uint8_t *buf,
                        size_t *len);
/* Returns 0 or STORAGE_ECORRUPT; @conf is untouched on failure. */
int format_conf_decode(const uint8_t *buf, size_t len, struct raft_conf *conf);

#endif /* BALLOT_STORAGE_FORMAT_H */
