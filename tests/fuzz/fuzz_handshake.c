/*
 * fuzz_handshake.c - libFuzzer target for the peer handshake's frames
 * (net/peer/codec.c: hello, challenge, proof) and proofs (net/peer/auth.c).
 *
 * The input is one handshake payload. Properties checked on every input:
 *
 *   1. decoding never crashes or overreads (ASan);
 *   2. a payload the hello, challenge or proof decoder accepts has exactly
 *      that frame's length and encodes back to its own bytes (canonical),
 *      and no payload is accepted by two of the decoders (a frame of one
 *      step can never be taken for another's);
 *   3. the proofs of the two roles computed over the accepted fields
 *      differ (no reflection), each compares equal only to itself, and
 *      flipping any nonce bit changes the proof (no replay across nonces).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t SECRET[] = "fuzz-secret-0123456789abcdef0123456789";

static void check_proofs(uint64_t cluster,
                         raft_id from,
                         raft_id to,
                         const uint8_t *nonce_d,
                         const uint8_t *nonce_l)
{
    uint8_t l[AUTH_MAC_BYTES], d[AUTH_MAC_BYTES], again[AUTH_MAC_BYTES];
    uint8_t flipped[AUTH_NONCE_BYTES];
    if (auth_proof(SECRET, sizeof(SECRET) - 1, AUTH_ROLE_LISTENER, cluster,
                   from, to, nonce_d, nonce_l, l) != 0 ||
        auth_proof(SECRET, sizeof(SECRET) - 1, AUTH_ROLE_DIALER, cluster, from,
                   to, nonce_d, nonce_l, d) != 0) {
        abort();
    }
    if (auth_proof_equal(l, d) || !auth_proof_equal(l, l)) {
        abort();
    }
    memcpy(flipped, nonce_l, AUTH_NONCE_BYTES);
    flipped[nonce_d[0] % AUTH_NONCE_BYTES] ^= 1;
    if (auth_proof(SECRET, sizeof(SECRET) - 1, AUTH_ROLE_DIALER, cluster, from,
                   to, nonce_d, flipped, again) != 0 ||
        auth_proof_equal(again, d)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct codec_hello h;
    struct codec_challenge ch;
    uint8_t proof[CODEC_PROOF_BYTES];
    uint8_t buf[CODEC_CHALLENGE_BYTES];
    int accepted = 0;

    if (codec_hello_decode(data, size, &h) == 0) {
        accepted++;
        codec_hello_encode(&h, buf);
        if (size != CODEC_HELLO_BYTES || memcmp(buf, data, size) != 0) {
            abort();
        }
        check_proofs(h.cluster_id, h.from, h.to, h.nonce, data);
    }
    if (codec_challenge_decode(data, size, &ch) == 0) {
        accepted++;
        codec_challenge_encode(&ch, buf);
        if (size != CODEC_CHALLENGE_BYTES || memcmp(buf, data, size) != 0) {
            abort();
        }
        check_proofs(1, 2, 3, ch.proof, ch.nonce);
    }
    if (codec_auth_decode(data, size, proof) == 0) {
        accepted++;
        codec_auth_encode(proof, buf);
        if (size != CODEC_AUTH_BYTES || memcmp(buf, data, size) != 0) {
            abort();
        }
    }
    if (accepted > 1) {
        abort();
    }
    return 0;
}
