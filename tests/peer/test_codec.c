/*
 * test_codec.c - the peer wire format: round trips of every message type,
 * golden bytes that pin the layout of docs/peer.md, every truncation,
 * mutations, limits, the hello and the frame header.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "peer_util.h"

/* Limits generous enough for every generated message. */
#define BIG_ENTRIES 100000u
#define BIG_ENTRY_BYTES (64u * 1024u * 1024u)

/* Decodes @buf, checks it equals @want and encodes back to @buf. */
static void check_round_trip(const struct raft_message *want,
                             const uint8_t *buf,
                             size_t len)
{
    struct raft_message got;
    void *block = NULL;
    int rv = codec_message_decode(buf, len, BIG_ENTRIES, BIG_ENTRY_BYTES, &got,
                                  &block);
    ck_assert_msg(rv == 0, "type %u: %s", want->type, codec_strerror(rv));
    ck_assert_msg(message_equal(want, &got), "type %u differs", want->type);
    ck_assert_uint_eq(codec_message_size(&got), len);
    uint8_t *again = malloc(len);
    ck_assert_ptr_nonnull(again);
    codec_message_encode(&got, again);
    ck_assert_int_eq(memcmp(again, buf, len), 0);
    free(again);
    free(block);
}

/* Every type, many seeds: encode, decode, compare, encode again. */
START_TEST(test_codec_round_trips_every_type_with_random_fields)
{
    struct prng r = {.s = 42};
    for (int round = 0; round < 300; round++) {
        for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
            struct gen_msg g;
            gen_message(&r, type, round % 10 == 0 ? 300 : 8, 300, 4096, &g);
            size_t len;
            uint8_t *buf = encode_alloc(&g.m, &len);
            check_round_trip(&g.m, buf, len);
            free(buf);
            gen_free(&g);
        }
    }
}
END_TEST

/* Every field at 0, then every field at its maximum, round trips. */
START_TEST(test_codec_round_trips_zero_and_maximum_values)
{
    for (int pass = 0; pass < 2; pass++) {
        uint64_t v = pass == 0 ? 0 : UINT64_MAX;
        for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
            struct raft_message m;
            struct raft_entry e = {.term = v,
                                   .index = v,
                                   .type = RAFT_ENTRY_CONF,
                                   .len = 0,
                                   .data = NULL};
            memset(&m, pass == 0 ? 0 : 0xff, sizeof(m));
            m.type = type;
            m.from = m.to = m.term = v;
            /* Booleans and pointers must stay meaningful. */
            switch (type) {
            case RAFT_MSG_PREVOTE:
            case RAFT_MSG_VOTE:
                m.u.vote.transfer = pass == 1;
                break;
            case RAFT_MSG_PREVOTE_RESP:
            case RAFT_MSG_VOTE_RESP:
                m.u.vote_resp.granted = pass == 1;
                break;
            case RAFT_MSG_APPEND:
                m.u.append.n_entries = 1;
                m.u.append.entries = &e;
                break;
            case RAFT_MSG_APPEND_RESP:
                m.u.append_resp.success = pass == 1;
                break;
            case RAFT_MSG_SNAPSHOT:
                m.u.snapshot.meta.conf.n = 0;
                m.u.snapshot.len = 0;
                m.u.snapshot.data = NULL;
                m.u.snapshot.done = pass == 1;
                break;
            case RAFT_MSG_SNAPSHOT_RESP:
                m.u.snapshot_resp.done = pass == 1;
                break;
            case RAFT_MSG_READ_INDEX:
                m.u.read_index.index = 0;
                m.u.read_index.ok = false;
                break;
            case RAFT_MSG_READ_INDEX_RESP:
                m.u.read_index.ok = pass == 1;
                break;
            default:
                break;
            }
            size_t len;
            uint8_t *buf = encode_alloc(&m, &len);
            check_round_trip(&m, buf, len);
            free(buf);
        }
    }
}
END_TEST

/* An append with no entries and one with many; entry and chunk data hold
 * all 256 byte values. */
START_TEST(test_codec_round_trips_empty_and_many_entries_with_binary_data)
{
    static uint8_t all[256];
    for (int i = 0; i < 256; i++) {
        all[i] = (uint8_t)i;
    }
    struct raft_entry *es = calloc(5000, sizeof(*es));
    ck_assert_ptr_nonnull(es);
    for (uint32_t i = 0; i < 5000; i++) {
        es[i] = (struct raft_entry){.term = 7,
                                    .index = 100 + i,
                                    .type = RAFT_ENTRY_NORMAL,
                                    .len = i % 257,
                                    .data = i % 257 ? all : NULL};
    }
    struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2};
    for (int pass = 0; pass < 2; pass++) {
        m.u.append.n_entries = pass == 0 ? 0 : 5000;
        m.u.append.entries = pass == 0 ? NULL : es;
        size_t len;
        uint8_t *buf = encode_alloc(&m, &len);
        check_round_trip(&m, buf, len);
        free(buf);
    }
    struct raft_message s = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    s.u.snapshot.len = 256;
    s.u.snapshot.data = all;
    s.u.snapshot.meta.conf.n = 1;
    s.u.snapshot.meta.conf.members[0].id = 9;
    s.u.snapshot.meta.conf.members[0].role = RAFT_VOTER;
    size_t len;
    uint8_t *buf = encode_alloc(&s, &len);
    check_round_trip(&s, buf, len);
    free(buf);
    free(es);
}
END_TEST

/* A vote and a hello encode to exactly the bytes docs/peer.md draws. */
START_TEST(test_codec_writes_the_documented_bytes)
{
    struct raft_message m = {
        .type = RAFT_MSG_VOTE,
        .from = 1,
        .to = 0x0203,
        .term = 5,
        .u.vote = {
            .last_log_index = 0x10, .last_log_term = 4, .transfer = true}};
    static const uint8_t want[] = {
        1,    3,                   /* version, type */
        1,    0, 0, 0, 0, 0, 0, 0, /* from */
        3,    2, 0, 0, 0, 0, 0, 0, /* to */
        5,    0, 0, 0, 0, 0, 0, 0, /* term */
        0x10, 0, 0, 0, 0, 0, 0, 0, /* last_log_index */
        4,    0, 0, 0, 0, 0, 0, 0, /* last_log_term */
        1,                         /* transfer */
    };
    uint8_t buf[sizeof(want)];
    ck_assert_uint_eq(codec_message_size(&m), sizeof(want));
    codec_message_encode(&m, buf);
    ck_assert_int_eq(memcmp(buf, want, sizeof(want)), 0);

    struct codec_hello h = {
        .version = CODEC_VERSION, .cluster_id = 0x77, .from = 1, .to = 2};
    static const uint8_t hello[CODEC_HELLO_BYTES] = {
        'B', 'L', 'T', 'P', 1, 0, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0,
        1,   0,   0,   0,   0, 0, 0, 0, 2,    0, 0, 0, 0, 0, 0, 0};
    uint8_t hb[CODEC_HELLO_BYTES];
    codec_hello_encode(&h, hb);
    ck_assert_int_eq(memcmp(hb, hello, sizeof(hello)), 0);
}
END_TEST

/* Every proper prefix of every type's encoding is refused, without leaking
 * (ASan) and without touching bytes past the prefix. */
START_TEST(test_codec_rejects_every_truncation)
{
    struct prng r = {.s = 7};
    for (int round = 0; round < 20; round++) {
        for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
            struct gen_msg g;
            gen_message(&r, type, 4, 40, 64, &g);
            size_t len;
            uint8_t *buf = encode_alloc(&g.m, &len);
            for (size_t cut = 0; cut < len; cut++) {
                /* A copy of exactly @cut bytes lets ASan catch overreads. */
                uint8_t *part = malloc(cut > 0 ? cut : 1);
                ck_assert_ptr_nonnull(part);
                memcpy(part, buf, cut);
                struct raft_message m;
                void *block = (void *)1;
                int rv = codec_message_decode(part, cut, BIG_ENTRIES,
                                              BIG_ENTRY_BYTES, &m, &block);
                ck_assert_msg(rv == CODEC_EINVAL, "type %u cut %zu: %d", type,
                              cut, rv);
                ck_assert_ptr_null(block);
                free(part);
            }
            free(buf);
            gen_free(&g);
        }
    }
}
END_TEST

/* One byte more than the body is refused. */
START_TEST(test_codec_rejects_trailing_bytes)
{
    struct prng r = {.s = 8};
    for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct gen_msg g;
        gen_message(&r, type, 3, 10, 10, &g);
        size_t len = codec_message_size(&g.m);
        uint8_t *buf = calloc(1, len + 1);
        ck_assert_ptr_nonnull(buf);
        codec_message_encode(&g.m, buf);
        struct raft_message m;
        void *block;
        ck_assert_int_eq(codec_message_decode(buf, len + 1, BIG_ENTRIES,
                                              BIG_ENTRY_BYTES, &m, &block),
                         CODEC_EINVAL);
        ck_assert_ptr_null(block);
        free(buf);
        gen_free(&g);
    }
}
END_TEST

/* Random flips, overwrites, insertions and deletions either fail or decode
 * to a message that encodes back to exactly the mutated bytes. */
START_TEST(test_codec_mutated_payloads_fail_cleanly_or_round_trip)
{
    struct prng r = {.s = 99};
    size_t decoded = 0;
    for (int round = 0; round < 20000; round++) {
        struct gen_msg g;
        uint8_t type = (uint8_t)(1 + prng_below(&r, RAFT_MSG_TYPE_MAX));
        gen_message(&r, type, 3, 20, 40, &g);
        size_t len;
        uint8_t *enc = encode_alloc(&g.m, &len);
        uint8_t *buf = malloc(len + 8);
        ck_assert_ptr_nonnull(buf);
        memcpy(buf, enc, len);
        int edits = 1 + (int)prng_below(&r, 3);
        for (int i = 0; i < edits && len > 0; i++) {
            size_t at = (size_t)prng_below(&r, len);
            switch (prng_below(&r, 4)) {
            case 0:
                buf[at] ^= (uint8_t)(1u << prng_below(&r, 8));
                break;
            case 1:
                buf[at] = (uint8_t)prng_next(&r);
                break;
            case 2:
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)prng_below(&r, 3);
                len++;
                break;
            default:
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            }
        }
        /* Copy to an exact-size block so ASan sees any overread. */
        uint8_t *exact = malloc(len > 0 ? len : 1);
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, buf, len);
        struct raft_message m;
        void *block;
        int rv = codec_message_decode(exact, len, 16, 64, &m, &block);
        if (rv == 0) {
            decoded++;
            ck_assert_uint_eq(codec_message_size(&m), len);
            uint8_t *again = malloc(len);
            ck_assert_ptr_nonnull(again);
            codec_message_encode(&m, again);
            ck_assert_int_eq(memcmp(again, exact, len), 0);
            free(again);
        } else {
            ck_assert(rv == CODEC_EINVAL || rv == CODEC_ETOOBIG ||
                      rv == CODEC_EVERSION);
            ck_assert_ptr_null(block);
        }
        free(block);
        free(exact);
        free(buf);
        free(enc);
        gen_free(&g);
    }
    /* Flipping an id or term bit keeps a message valid: some must pass. */
    ck_assert_uint_gt(decoded, 1000);
}
END_TEST

static struct raft_message heartbeat(void)
{
    struct raft_message m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2};
    return m;
}

/* A version other than 1 is EVERSION; an unknown type is EINVAL. */
START_TEST(test_codec_rejects_unknown_versions_and_types)
{
    struct raft_message hb = heartbeat(), m;
    uint8_t buf[64];
    void *block;
    size_t len = codec_message_size(&hb);
    static const uint8_t versions[] = {0, 2, 255};
    for (size_t i = 0; i < sizeof(versions); i++) {
        codec_message_encode(&hb, buf);
        buf[0] = versions[i];
        ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &m, &block),
                         CODEC_EVERSION);
    }
    static const uint8_t types[] = {0, RAFT_MSG_TYPE_MAX + 1, 255};
    for (size_t i = 0; i < sizeof(types); i++) {
        codec_message_encode(&hb, buf);
        buf[1] = types[i];
        ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &m, &block),
                         CODEC_EINVAL);
    }
    ck_assert_int_eq(codec_message_decode(buf, 0, 1, 1, &m, &block),
                     CODEC_EINVAL);
}
END_TEST

/* Each type's boolean byte is refused when it is 2 or 255. */
START_TEST(test_codec_rejects_booleans_other_than_zero_and_one)
{
    /* Offset of the boolean from the end of each fixed-size encoding. */
    static const struct
    {
        uint8_t type;
        size_t from_start;
    } cases[] = {
        {RAFT_MSG_VOTE, 26 + 16},
        {RAFT_MSG_PREVOTE, 26 + 16},
        {RAFT_MSG_VOTE_RESP, 26},
        {RAFT_MSG_PREVOTE_RESP, 26},
        {RAFT_MSG_APPEND_RESP, 26},
        {RAFT_MSG_SNAPSHOT_RESP, 26 + 16},
        {RAFT_MSG_READ_INDEX_RESP, 26 + 16},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct raft_message m = {.type = cases[i].type, .from = 1, .to = 2};
        uint8_t buf[64];
        size_t len = codec_message_size(&m);
        static const uint8_t bad[] = {2, 255};
        for (size_t j = 0; j < sizeof(bad); j++) {
            struct raft_message out;
            void *block;
            codec_message_encode(&m, buf);
            ck_assert_uint_eq(buf[cases[i].from_start], 0);
            buf[cases[i].from_start] = bad[j];
            ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &out, &block),
                             CODEC_EINVAL);
        }
    }
    /* The chunk's done flag sits just before its data. */
    struct raft_message s = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    uint8_t buf[128];
    size_t len = codec_message_size(&s);
    codec_message_encode(&s, buf);
    buf[len - 1] = 2;
    struct raft_message out;
    void *block;
    ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &out, &block),
                     CODEC_EINVAL);
}
END_TEST

/* Writes an append header claiming @n entries, followed by @extra zero
 * bytes; returns the length. */
static size_t append_claiming(uint8_t *buf, uint32_t n, size_t extra)
{
    struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2};
    size_t len = codec_message_size(&m);
    codec_message_encode(&m, buf);
    for (int i = 0; i < 4; i++) {
        buf[len - 4 + (size_t)i] = (uint8_t)(n >> (8 * i));
    }
    memset(buf + len, 0, extra);
    return len + extra;
}

/* A count above max_entries is ETOOBIG; a count the input cannot hold is
 * EINVAL, even with no limit, so nothing huge is ever allocated (under ASan
 * a 160 GB request would abort the test). */
START_TEST(test_codec_refuses_entry_counts_before_allocating)
{
    uint8_t buf[256];
    struct raft_message m;
    void *block;
    size_t len = append_claiming(buf, 11, 0);
    ck_assert_int_eq(codec_message_decode(buf, len, 10, 100, &m, &block),
                     CODEC_ETOOBIG);
    len = append_claiming(buf, UINT32_MAX, 100);
    ck_assert_int_eq(
        codec_message_decode(buf, len, UINT32_MAX, UINT32_MAX, &m, &block),
        CODEC_EINVAL);
    ck_assert_ptr_null(block);
    /* Five entries need 105 bytes; 104 are not enough. */
    len = append_claiming(buf, 5, 104);
    ck_assert_int_eq(codec_message_decode(buf, len, 10, 100, &m, &block),
                     CODEC_EINVAL);
}
END_TEST

/* An entry of max_entry_bytes passes; one byte more is ETOOBIG. */
START_TEST(test_codec_refuses_entries_over_the_size_limit)
{
    uint8_t data[65] = {0};
    struct raft_entry e = {
        .term = 1, .index = 1, .type = RAFT_ENTRY_NORMAL, .data = data};
    struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 1, .to = 2};
    m.u.append.n_entries = 1;
    m.u.append.entries = &e;
    uint8_t buf[256];
    struct raft_message out;
    void *block;
    e.len = 64;
    codec_message_encode(&m, buf);
    ck_assert_int_eq(
        codec_message_decode(buf, codec_message_size(&m), 1, 64, &out, &block),
        0);
    free(block);
    e.len = 65;
    codec_message_encode(&m, buf);
    ck_assert_int_eq(
        codec_message_decode(buf, codec_message_size(&m), 1, 64, &out, &block),
        CODEC_ETOOBIG);
    ck_assert_ptr_null(block);
    /* An entry type other than normal or conf is malformed. */
    e.len = 0;
    codec_message_encode(&m, buf);
    buf[26 + 28 + 16] = 3;
    ck_assert_int_eq(
        codec_message_decode(buf, codec_message_size(&m), 1, 64, &out, &block),
        CODEC_EINVAL);
}
END_TEST

/* A chunk whose configuration claims more than RAFT_CONF_MAX members, or
 * whose conf length exceeds the largest encoding, is ETOOBIG; a duplicate
 * member is EINVAL. */
START_TEST(test_codec_refuses_snapshot_confs_over_the_limit)
{
    struct raft_message s = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    s.u.snapshot.meta.conf.n = 2;
    s.u.snapshot.meta.conf.members[0] = (struct raft_member){5, RAFT_VOTER};
    s.u.snapshot.meta.conf.members[1] = (struct raft_member){6, RAFT_VOTER};
    uint8_t buf[512];
    size_t len = codec_message_size(&s);
    struct raft_message out;
    void *block;
    /* The conf starts after the header, index, term, size and conf_len. */
    const size_t conf_at = 26 + 24 + 4;

    codec_message_encode(&s, buf);
    buf[conf_at + 4] = RAFT_CONF_MAX + 1;
    ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &out, &block),
                     CODEC_ETOOBIG);

    codec_message_encode(&s, buf);
    buf[conf_at - 4] = RAFT_CONF_ENCODED_MAX + 1;
    ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &out, &block),
                     CODEC_ETOOBIG);

    codec_message_encode(&s, buf);
    buf[conf_at + 8 + 9] = 5; /* second id equals the first */
    ck_assert_int_eq(codec_message_decode(buf, len, 1, 1, &out, &block),
                     CODEC_EINVAL);
}
END_TEST

/* A hello round trips with its nonce; bad magic, length or ids are
 * EINVAL and another version (1 had no handshake) is EVERSION. */
START_TEST(test_codec_hello_round_trips_and_rejects_bad_fields)
{
    struct codec_hello h = {.version = CODEC_HELLO_VERSION,
                            .cluster_id = UINT64_MAX,
                            .from = 3,
                            .to = UINT64_MAX},
                       got;
    for (unsigned i = 0; i < CODEC_NONCE_BYTES; i++) {
        h.nonce[i] = (uint8_t)(i * 7 + 1);
    }
    uint8_t buf[CODEC_HELLO_BYTES + 1];
    codec_hello_encode(&h, buf);
    ck_assert_int_eq(codec_hello_decode(buf, CODEC_HELLO_BYTES, &got), 0);
    ck_assert_uint_eq(got.version, h.version);
    ck_assert_uint_eq(got.cluster_id, h.cluster_id);
    ck_assert_uint_eq(got.from, h.from);
    ck_assert_uint_eq(got.to, h.to);
    ck_assert_int_eq(memcmp(got.nonce, h.nonce, CODEC_NONCE_BYTES), 0);
    for (size_t n = 0; n <= CODEC_HELLO_BYTES + 1; n++) {
        if (n != CODEC_HELLO_BYTES) {
            ck_assert_int_eq(codec_hello_decode(buf, n, &got), CODEC_EINVAL);
        }
    }
    buf[0] ^= 1;
    ck_assert_int_eq(codec_hello_decode(buf, CODEC_HELLO_BYTES, &got),
                     CODEC_EINVAL);
    h.version = 1;
    codec_hello_encode(&h, buf);
    ck_assert_int_eq(codec_hello_decode(buf, CODEC_HELLO_BYTES, &got),
                     CODEC_EVERSION);
    h.version = CODEC_HELLO_VERSION;
    h.from = 0;
    codec_hello_encode(&h, buf);
    ck_assert_int_eq(codec_hello_decode(buf, CODEC_HELLO_BYTES, &got),
                     CODEC_EINVAL);
}
END_TEST

/* The challenge and the proof frames round trip; a wrong length or magic
 * is EINVAL, and neither can be taken for the other or for a hello. */
START_TEST(test_codec_handshake_frames_round_trip_and_reject_bad_fields)
{
    struct codec_challenge ch, got;
    uint8_t proof[CODEC_PROOF_BYTES], back[CODEC_PROOF_BYTES];
    uint8_t buf[CODEC_CHALLENGE_BYTES + 1];
    struct codec_hello h;
    for (unsigned i = 0; i < CODEC_NONCE_BYTES; i++) {
        ch.nonce[i] = (uint8_t)i;
        ch.proof[i] = (uint8_t)(255 - i);
        proof[i] = (uint8_t)(i ^ 0x5a);
    }
    codec_challenge_encode(&ch, buf);
    ck_assert_int_eq(codec_challenge_decode(buf, CODEC_CHALLENGE_BYTES, &got),
                     0);
    ck_assert_int_eq(memcmp(&got, &ch, sizeof(ch)), 0);
    for (size_t n = 0; n <= CODEC_CHALLENGE_BYTES + 1; n++) {
        if (n != CODEC_CHALLENGE_BYTES) {
            ck_assert_int_eq(codec_challenge_decode(buf, n, &got),
                             CODEC_EINVAL);
        }
    }
    ck_assert_int_eq(codec_auth_decode(buf, CODEC_AUTH_BYTES, back),
                     CODEC_EINVAL);
    buf[1] ^= 1;
    ck_assert_int_eq(codec_challenge_decode(buf, CODEC_CHALLENGE_BYTES, &got),
                     CODEC_EINVAL);

    codec_auth_encode(proof, buf);
    ck_assert_int_eq(codec_auth_decode(buf, CODEC_AUTH_BYTES, back), 0);
    ck_assert_int_eq(memcmp(back, proof, sizeof(proof)), 0);
    for (size_t n = 0; n <= CODEC_AUTH_BYTES + 1; n++) {
        if (n != CODEC_AUTH_BYTES) {
            ck_assert_int_eq(codec_auth_decode(buf, n, back), CODEC_EINVAL);
        }
    }
    ck_assert_int_eq(codec_hello_decode(buf, CODEC_HELLO_BYTES, &h),
                     CODEC_EINVAL);
    buf[3] ^= 1;
    ck_assert_int_eq(codec_auth_decode(buf, CODEC_AUTH_BYTES, back),
                     CODEC_EINVAL);
}
END_TEST

/* The frame header carries the length and XXH3 of the payload; any flipped
 * bit in payload or checksum is caught; lengths past the maximum are
 * ETOOBIG. */
START_TEST(test_codec_frame_header_checks_length_and_checksum)
{
    uint8_t payload[100], hdr[CODEC_FRAME_HEADER];
    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    codec_frame_header(payload, sizeof(payload), hdr);
    uint32_t len;
    ck_assert_int_eq(codec_frame_length(hdr, &len), 0);
    ck_assert_uint_eq(len, sizeof(payload));
    ck_assert_int_eq(codec_frame_verify(hdr, payload), 0);
    for (size_t bit = 0; bit < sizeof(payload) * 8; bit++) {
        payload[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_int_eq(codec_frame_verify(hdr, payload), CODEC_ECHECKSUM);
        payload[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 32; bit < 96; bit++) {
        hdr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_int_eq(codec_frame_verify(hdr, payload), CODEC_ECHECKSUM);
        hdr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* The empty payload has a checksum too. */
    codec_frame_header(payload, 0, hdr);
    ck_assert_int_eq(codec_frame_verify(hdr, payload), 0);

    uint8_t big[CODEC_FRAME_HEADER] = {0};
    uint32_t max = CODEC_FRAME_MAX;
    for (int i = 0; i < 4; i++) {
        big[i] = (uint8_t)(max >> (8 * i));
    }
    ck_assert_int_eq(codec_frame_length(big, &len), 0);
    ck_assert_uint_eq(len, CODEC_FRAME_MAX);
    big[0]++;
    ck_assert_int_eq(codec_frame_length(big, &len), CODEC_ETOOBIG);
    memset(big, 0xff, 4);
    ck_assert_int_eq(codec_frame_length(big, &len), CODEC_ETOOBIG);
}
END_TEST

/* Every code has its own text; unknown codes get a generic one. */
START_TEST(test_codec_strerror_names_every_code)
{
    static const int codes[] = {CODEC_EINVAL, CODEC_ECHECKSUM, CODEC_ETOOBIG,
                                CODEC_ENOMEM, CODEC_EVERSION};
    const char *unknown = codec_strerror(-1);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_str_ne(codec_strerror(codes[i]), unknown);
        for (size_t j = 0; j < i; j++) {
            ck_assert_str_ne(codec_strerror(codes[i]),
                             codec_strerror(codes[j]));
        }
    }
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_codec_round_trips_every_type_with_random_fields);
    tcase_add_test(tc, test_codec_round_trips_zero_and_maximum_values);
    tcase_add_test(
        tc, test_codec_round_trips_empty_and_many_entries_with_binary_data);
    tcase_add_test(tc, test_codec_writes_the_documented_bytes);
    tcase_add_test(tc, test_codec_rejects_every_truncation);
    tcase_add_test(tc, test_codec_rejects_trailing_bytes);
    tcase_add_test(tc, test_codec_mutated_payloads_fail_cleanly_or_round_trip);
    tcase_add_test(tc, test_codec_rejects_unknown_versions_and_types);
    tcase_add_test(tc, test_codec_rejects_booleans_other_than_zero_and_one);
    tcase_add_test(tc, test_codec_refuses_entry_counts_before_allocating);
    tcase_add_test(tc, test_codec_refuses_entries_over_the_size_limit);
    tcase_add_test(tc, test_codec_refuses_snapshot_confs_over_the_limit);
    tcase_add_test(tc, test_codec_hello_round_trips_and_rejects_bad_fields);
    tcase_add_test(
        tc, test_codec_handshake_frames_round_trip_and_reject_bad_fields);
    tcase_add_test(tc, test_codec_frame_header_checks_length_and_checksum);
    tcase_add_test(tc, test_codec_strerror_names_every_code);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
