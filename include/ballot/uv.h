/*
 * ballot/uv.h - run a ballot node on a libuv loop the program already
 * runs (see ballot.h for everything else).
 *
 * The node's handles live on @loop, every ballot_* function must be called
 * on the loop's thread (others return BALLOT_EWRONGTHREAD), and callbacks
 * run there. The blocking _wait functions are not available in this mode.
 */
#ifndef BALLOT_UV_H
#define BALLOT_UV_H

#include <uv.h>

#include "../ballot.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called once a node stopped by ballot_stop() has released everything
 * (its handles are closed; the loop may then be closed). */
typedef void (*ballot_stop_cb)(void *arg);

/* Starts the node described by @cfg on @loop, from the loop's thread.
 * Returns like ballot_open(); on success the node runs while the program
 * runs the loop. @cfg is borrowed. */
BALLOT_API int ballot_start(uv_loop_t *loop,
                            const struct ballot_config *cfg,
                            struct ballot **out,
                            char *errmsg,
                            size_t errmsg_len);

/* Stops a node started with ballot_start(): from now on every call
 * returns BALLOT_ECLOSED; pending requests complete (reads with
 * BALLOT_ECLOSED, writes of unknown fate with BALLOT_EUNKNOWN); then @cb
 * runs (may be NULL) and @b is freed. Calling it again before then
 * returns BALLOT_ECLOSED; on a node from ballot_open(), BALLOT_EINVAL; off
 * the loop thread, BALLOT_EWRONGTHREAD. */
BALLOT_API int ballot_stop(struct ballot *b, ballot_stop_cb cb, void *arg);

/* Reads the node's TLS certificate, key and CA files again (tls_cert_file
 * and the others; ballotd does this on SIGHUP). New connections on every
 * port use the new ones; connections already up keep theirs, so the
 * cluster stays connected. On failure the old files stay in use. Returns
 * 0, BALLOT_EINVAL (TLS is off, a file is unusable: the reason in
 * @errmsg, which may be NULL; or a node from ballot_open()) or
 * BALLOT_EWRONGTHREAD (off the loop thread). */
BALLOT_API int ballot_tls_reload(struct ballot *b,
                                 char *errmsg,
                                 size_t errmsg_len);

/* True once the node halted because its storage failed. */
BALLOT_API bool ballot_halted(const struct ballot *b);

#ifdef __cplusplus
}
#endif

#endif
