/*
 * config.h - ballotd's settings, from a config file and command-line flags
 * (flags win). docs/operations.md lists every setting.
 */
#ifndef BALLOT_NET_CONFIG_H
#define BALLOT_NET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

#include "bnode.h"
#include "passwd.h"

struct ballotd_config
{
    struct bnode_options node;
    char data_dir[4096];
    /* The file holding the cluster secret (docs/security.md); config_finish
     * reads it into node.peer_secret. */
    char secret_file[4096];
    /* The file holding the client password's hash (`ballotd passwd`); its
     * content, checked, once read by config_finish(). */
    char client_password_file[4096];
    char client_password_hash[PASSWD_HASH_MAX];
    /* What the default user may do until ACL SETUSER default defines it
     * in the replicated store (ACL rules; empty: every command and key). */
    char default_user_rules[1024];
    /* PBKDF2 iterations of ACL SETUSER >password (0: default): server.h. */
    unsigned password_iterations;
    /* The audit log's file (empty: the log callback): server.h. */
    char audit_log_file[4096];
    /* TLS on every port (docs/security.md, "TLS"): on when @tls_cert_file
     * is set, which then needs the other two. PEM files, read at start and
     * again on SIGHUP (ballot_tls_reload()). */
    char tls_cert_file[4096];
    char tls_key_file[4096];
    char tls_ca_file[4096];
    /* Clients of the client and metrics ports must show a certificate of
     * the CA (Redis's tls-auth-clients; default on). */
    bool tls_auth_clients;
    /* Admission control per second (0: off): server.h. */
    uint64_t client_rate_requests;
    uint64_t client_rate_bytes;
    uint64_t user_rate_requests;
    uint64_t user_rate_bytes;
    /* Client listener. */
    char client_host[BNODE_HOST_MAX];
    int client_port;
    /* HTTP metrics (GET /metrics): -1 means client_port + 2, 0 off. */
    int metrics_port;
    /* Limits for client connections. */
    unsigned max_clients;
    uint64_t max_request_bytes;
    uint64_t max_output_bytes;
    unsigned max_pipeline;
    uint64_t idle_timeout_ms;
    uint64_t request_timeout_ms;
    uint64_t export_idle_ms;
    uint64_t loop_warn_ms;
    uint64_t max_client_memory;
    bool verbose;
    /* The lowest level logged (BNODE_LOG_*; log_level), and the lines'
     * format (log_format: "text", key=value, or "json"); verbose is
     * log_level debug. */
    int log_level;
    char log_format[8];
    /* Listen for clients on this node's client address (ballotd always
     * does; a program embedding a node may not want to). */
    bool serve_clients;
};

/* Limits of a config file (docs/operations.md, "Settings"): the longest
 * line (inih's line buffer, less its newline and terminator), the largest
 * file, the longest election timeout (tick_ms x election_ticks), and the
 * room for the reason a value is refused. */
#define CONFIG_LINE_MAX 198u
#define CONFIG_FILE_BYTES_MAX (1024u * 1024u)
#define CONFIG_ELECTION_MS_MAX 60000u
#define CONFIG_WHY_MAX 192u

/* Fills @cfg with defaults. */
void config_default(struct ballotd_config *cfg);

/* Parses "ID=HOST:CLIENT_PORT:PEER_PORT" (PEER_PORT defaults to
 * CLIENT_PORT + 1) into @m. Returns 0 or -1. */
int config_parse_member(const char *text, struct bnode_member *m);

/* Sets one setting by name (a flag without "--", or an INI key). Returns 0
 * or -1 with a message (unknown setting, invalid value) in @err. */
int config_set(struct ballotd_config *cfg,
               const char *name,
               const char *value,
               char *err,
               size_t err_len);

/* Reads the INI file at @path into @cfg. Returns 0, or -1 with a message
 * (file, line and what is wrong) in @err. */
/* Applies the INI text @text (@len bytes, borrowed) as if it were the
 * config file @path (named in messages). Returns 0 or -1 with a message in
 * @err. config_load_file() reads a file and calls it. */
int config_parse_text(struct ballotd_config *cfg,
                      const char *path,
                      const char *text,
                      size_t len,
                      char *err,
                      size_t err_len);
int config_load_file(struct ballotd_config *cfg,
                     const char *path,
                     char *err,
                     size_t err_len);

/* Applies command-line flags (argv[1..]) to @cfg, loading --config first
 * if given. Returns 0, 1 if --help was printed, or -1 with a message. */
int config_from_args(struct ballotd_config *cfg,
                     int argc,
                     char **argv,
                     char *err,
                     size_t err_len);

/* Reads a cluster secret from @path into @buf (at most @max bytes; the
 * file's trailing white space is not part of it) and stores its length in
 * @len. The file must be a regular file that only its owner can read, and
 * the secret at least AUTH_SECRET_MIN (32) bytes. Returns 0 or -1 with a
 * message in @err. */
int config_read_secret(const char *path,
                       uint8_t *buf,
                       size_t max,
                       size_t *len,
                       char *err,
                       size_t err_len);

/* Reads a password (one line) from @in and writes its hash (PBKDF2 with
 * @iterations) to a new file at @path, readable by its owner only. Returns 0 or
 * -1 with a message. */
int config_make_password(const char *path,
                         FILE *in,
                         unsigned iterations,
                         char *err,
                         size_t err_len);

/* Writes a new random secret (64 hex digits and a newline) to a new file
 * at @path, readable by its owner only. Returns 0 or -1 with a message. */
int config_make_secret(const char *path, char *err, size_t err_len);

/* Final checks (this node among the members, ports set, ...) and derived
 * values. Returns 0 or -1 with a message. */
int config_finish(struct ballotd_config *cfg, char *err, size_t err_len);

/* For a node that will talk to its peers: reads the cluster secret file
 * into node.peer_secret, or checks that insecure_peers was chosen. Returns
 * 0 or -1 with a message (docs/security.md). */
int config_peer_auth(struct ballotd_config *cfg, char *err, size_t err_len);

#endif
