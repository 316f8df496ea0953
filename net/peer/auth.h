/*
 * auth.h - the peer handshake's cryptography: nonces and HMAC-SHA256
 * proofs over a shared cluster secret (OpenSSL's libcrypto).
 *
 * A connection between two nodes starts with a challenge-response in both
 * directions (docs/peer.md, "Handshake"):
 *
 *   dialer   -> listener   hello: cluster id, from, to, nonce_d
 *   listener -> dialer     challenge: nonce_l, proof_l
 *   dialer   -> listener   proof: proof_d
 *
 *   proof_x = HMAC-SHA256(secret, "ballot-peer-2" || role_x || cluster_id
 *                         || from || to || nonce_d || nonce_l)
 *
 * Each side proves it knows the secret over a nonce the other side just
 * drew, so a recorded handshake cannot be replayed; the role byte differs
 * between the two proofs, so a proof one side sent cannot be reflected
 * back as the other side's; the ids are inside the MAC, so a proof for one
 * pair of members proves nothing for another.
 *
 * Nothing here touches the network or libuv.
 */
#ifndef BALLOT_NET_AUTH_H
#define BALLOT_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define AUTH_NONCE_BYTES 32u
#define AUTH_MAC_BYTES 32u
/* A cluster secret is at least this long (32 hex digits hold 128 bits)
 * and at most AUTH_SECRET_MAX bytes. */
#define AUTH_SECRET_MIN 32u
#define AUTH_SECRET_MAX 1024u

/* Which side's proof: the roles make the two proofs of one handshake
 * differ (no reflection). */
enum auth_role {
    AUTH_ROLE_LISTENER = 'L',
    AUTH_ROLE_DIALER = 'D',
};

/* Fills @buf with @n cryptographically random bytes. Returns 0, or -1 if
 * the system's generator failed (the caller refuses the connection). */
int auth_random(uint8_t *buf, size_t n);

/* Computes the proof of @role for the connection from @from (the dialer)
 * to @to (the listener) into @mac (AUTH_MAC_BYTES). @secret may be empty
 * (@secret_len 0) for a cluster that runs without peer authentication: the
 * handshake then proves nothing, but both ends still agree on it. Returns
 * 0 or -1 (libcrypto failed). */
int auth_proof(const uint8_t *secret,
               size_t secret_len,
               enum auth_role role,
               uint64_t cluster_id,
               raft_id from,
               raft_id to,
               const uint8_t nonce_d[AUTH_NONCE_BYTES],
               const uint8_t nonce_l[AUTH_NONCE_BYTES],
               uint8_t mac[AUTH_MAC_BYTES]);

/* Compares two proofs in constant time. */
bool auth_proof_equal(const uint8_t a[AUTH_MAC_BYTES],
                      const uint8_t b[AUTH_MAC_BYTES]);

/* Overwrites @n bytes at @p with zeros in a way the compiler keeps, so a
 * secret does not linger in freed memory. */
void auth_wipe(void *p, size_t n);

#endif
