/*
 * codec.h - the wire format of Raft messages between ballotd nodes.
 *
 * A peer connection carries frames:
 *
 *   0        4        12
 *   +--------+--------+---------------------+
 *   | len    | xxh3   | payload (len bytes) |
 *   +--------+--------+---------------------+
 *
 * len (u32, little endian) counts the payload only and is at most
 * CODEC_FRAME_MAX; xxh3 (u64) is XXH3_64bits of the payload. A connection
 * starts with a handshake: a hello from the dialer (codec_hello_*), a
 * challenge from the listener (codec_challenge_*) and a proof from the
 * dialer (codec_auth_*); every later payload, dialer to listener, is one
 * Raft message (codec_message_*). docs/peer.md ("Peer
 * protocol") is the normative description, with a version number.
 *
 * Every decoder treats its input as hostile: lengths and counts are checked
 * against the input and the limits before anything is allocated, and a
 * malformed payload is an error, never a crash.
 */
#ifndef BALLOT_NET_CODEC_H
#define BALLOT_NET_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* Error codes: the -5000 range. */
enum {
    CODEC_EINVAL = -5001,    /* malformed payload or frame */
    CODEC_ECHECKSUM = -5002, /* frame checksum mismatch */
    CODEC_ETOOBIG = -5003,   /* a length beyond the limits */
    CODEC_ENOMEM = -5004,
    CODEC_EVERSION = -5005, /* unknown wire version */
};

const char *codec_strerror(int code);

/* The version of the message layouts (the header's ver byte). */
#define CODEC_VERSION 1u
/* The version of the handshake (the hello's version field). Version 1 had
 * no handshake and is refused. */
#define CODEC_HELLO_VERSION 2u
#define CODEC_FRAME_HEADER 12u
/* The largest payload: a snapshot chunk or an append batch plus headers. */
#define CODEC_FRAME_MAX (80u * 1024u * 1024u)

/* Sizes of the handshake's nonces and proofs (HMAC-SHA256). */
#define CODEC_NONCE_BYTES 32u
#define CODEC_PROOF_BYTES 32u

/* The first payload on a connection, from the dialer: who is speaking, to
 * which cluster, and the dialer's nonce. */
struct codec_hello
{
    uint32_t version;    /* CODEC_HELLO_VERSION */
    uint64_t cluster_id; /* refuse peers of another cluster */
    raft_id from;
    raft_id to;
    uint8_t nonce[CODEC_NONCE_BYTES];
};

/* Bytes codec_hello_encode() writes. */
#define CODEC_HELLO_BYTES 64u

/* Writes @h into @buf (CODEC_HELLO_BYTES bytes). */
void codec_hello_encode(const struct codec_hello *h, uint8_t *buf);
/* Parses a hello of exactly CODEC_HELLO_BYTES bytes. Returns 0,
 * CODEC_EINVAL (length, magic, a zero id) or CODEC_EVERSION (another
 * version: the caller refuses the peer). */
int codec_hello_decode(const uint8_t *buf, size_t len, struct codec_hello *h);

/* The listener's answer to a hello: its nonce and its proof. */
struct codec_challenge
{
    uint8_t nonce[CODEC_NONCE_BYTES];
    uint8_t proof[CODEC_PROOF_BYTES];
};

#define CODEC_CHALLENGE_BYTES 68u

void codec_challenge_encode(const struct codec_challenge *c, uint8_t *buf);
/* Parses a challenge of exactly CODEC_CHALLENGE_BYTES bytes: 0 or
 * CODEC_EINVAL. */
int codec_challenge_decode(const uint8_t *buf,
                           size_t len,
                           struct codec_challenge *c);

/* The dialer's proof, the handshake's last frame. */
#define CODEC_AUTH_BYTES 36u

void codec_auth_encode(const uint8_t proof[CODEC_PROOF_BYTES], uint8_t *buf);
/* Parses a proof frame of exactly CODEC_AUTH_BYTES bytes: 0 or
 * CODEC_EINVAL. */
int codec_auth_decode(const uint8_t *buf,
                      size_t len,
                      uint8_t proof[CODEC_PROOF_BYTES]);

/* Bytes codec_message_encode() needs for @m (entries and chunk data
 * included). */
size_t codec_message_size(const struct raft_message *m);

/* Serializes @m into @buf (codec_message_size() bytes). A RAFT_MSG_SNAPSHOT
 * must carry its data (the driver fills it before encoding). @m must be
 * well formed: a known type, entries/data non-NULL when their length is
 * not 0, at most RAFT_CONF_MAX members (transport_send() checks this). */
void codec_message_encode(const struct raft_message *m, uint8_t *buf);

/* Parses one message payload. On success @m's entries (for an append) point
 * into a block the decoder allocated and stores in *@block (free with
 * free()), and entry data and chunk data point into @buf: both must outlive
 * the use of @m. Limits: at most RAFT_CONF_MAX members, @max_entries
 * entries, @max_entry_bytes per entry. Returns 0, CODEC_EINVAL,
 * CODEC_ETOOBIG, CODEC_EVERSION (another wire version) or CODEC_ENOMEM;
 * on failure *@block is NULL and nothing is allocated. */
int codec_message_decode(const uint8_t *buf,
                         size_t len,
                         uint32_t max_entries,
                         uint32_t max_entry_bytes,
                         struct raft_message *m,
                         void **block);

/* Writes the 12-byte frame header for @payload of @len bytes. */
void codec_frame_header(const uint8_t *payload, uint32_t len, uint8_t *hdr);

/* Checks a frame header against CODEC_FRAME_MAX and stores the payload
 * length; 0 or CODEC_ETOOBIG. */
int codec_frame_length(const uint8_t *hdr, uint32_t *len);

/* Verifies the payload against the header's checksum; 0 or
 * CODEC_ECHECKSUM. */
int codec_frame_verify(const uint8_t *hdr, const uint8_t *payload);

#endif
