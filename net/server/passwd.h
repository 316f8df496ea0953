/*
 * passwd.h - the client password's salted slow hash (PBKDF2-HMAC-SHA256,
 * OpenSSL's libcrypto), as stored in a node's client_password_file.
 *
 * The stored form is one line of text:
 *
 *   pbkdf2-sha256$ITERATIONS$SALT$HASH
 *
 * with SALT (16 bytes) and HASH (32 bytes) in lower-case hex. Only the hash
 * is kept anywhere, so a leaked file does not give the password away
 * without a brute-force search that each iteration slows down.
 */
#ifndef BALLOT_NET_SERVER_PASSWD_H
#define BALLOT_NET_SERVER_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

/* Room for a stored hash, NUL included. */
#define PASSWD_HASH_MAX 160u
/* Iterations `ballotd passwd` uses: tens of milliseconds per check, on a
 * worker thread (commands_admin.c), never on the loop. */
#define PASSWD_ITERATIONS_DEFAULT 100000u
/* Bounds a stored hash may name: below the minimum the hash is too fast to
 * slow a search; above the maximum one check would hold a worker for
 * seconds. */
#define PASSWD_ITERATIONS_MIN 10000u
#define PASSWD_ITERATIONS_MAX 10000000u
/* Longest password accepted (Redis has no limit; we need one). */
#define PASSWD_BYTES_MAX 512u

/* Hashes @pw (@len bytes) with a fresh random salt and @iterations into
 * @out (at least PASSWD_HASH_MAX bytes). Returns 0 or -1. */
int passwd_hash(const char *pw, size_t len, unsigned iterations, char *out);

/* True if @stored is a well-formed stored hash. */
bool passwd_valid(const char *stored);

/* True if @pw (@len bytes) matches @stored; compares in constant time.
 * Slow by design: call it off the loop. */
bool passwd_verify(const char *stored, const char *pw, size_t len);

#endif
