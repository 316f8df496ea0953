/*
 * tls_certs.h - certificates for the TLS tests, made once per test binary
 * with scripts/tls-certs.sh (the documented way), in a temporary directory.
 *
 *   DIR/a/        CA "a": ca.crt, node-1..3 (member-1..3), client
 *   DIR/b/        CA "b", another CA: node-1, node-2, client
 *   DIR/expired/  signed by CA "a" but expired: node-2, client
 */
#ifndef BALLOT_TESTS_TLS_CERTS_H
#define BALLOT_TESTS_TLS_CERTS_H

#include <stddef.h>

/* Makes the certificates (aborts on failure) and returns DIR. Call from
 * main(), before the tests fork. */
const char *tls_certs_make(void);

/* Writes "DIR/SUB/NAME" into @out. */
void tls_certs_path(char *out, size_t len, const char *sub, const char *name);

/* Writes the paths of DIR/SUB/NAME.crt and DIR/SUB/NAME.key. */
void tls_certs_pair(const char *sub,
                    const char *name,
                    char *crt,
                    char *key,
                    size_t len);

/* Removes DIR; call from main() after the tests. */
void tls_certs_remove(void);

#endif
