/*
 * acl_audit.c - the audit log (see acl.h): authentication failures,
 * administrative commands and refused commands, one line each, with who
 * (user, client id, address), what (the command, passwords masked) and
 * when (UTC, milliseconds):
 *
 *   2026-12-07T01:02:03.456Z event=admin user=default client=4
 *   addr=127.0.0.1:51234 cmd="ACL SETUSER bob on >*** +@read"
 *
 * (one line). Lines go to audit_file (appended, mode 600, one write(2)
 * each, so lines of concurrent writers never interleave) or, without one,
 * to the node's log callback at INFO level.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"

/* Longest audit line; a longer command is cut (and says so). */
#define AUDIT_LINE_MAX 1024u

int acl_audit_open(struct cmd_env *env, char *err, size_t err_len)
{
    env->audit_fd = -1;
    if (env->opts.audit_file[0] == '\0') {
        return 0;
    }
    int fd = open(env->opts.audit_file,
                  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "server: audit_file %s: %s",
                 env->opts.audit_file, strerror(errno));
        return -1;
    }
    env->audit_fd = fd;
    return 0;
}

void acl_audit_close(struct cmd_env *env)
{
    if (env->audit_fd >= 0) {
        close(env->audit_fd);
    }
    env->audit_fd = -1;
}

/* Appends @s (@len bytes) to @buf at *@n, quoted: printable bytes as they
 * are, '"' and '\\' escaped, others as \xNN. */
static void put_quoted(char *buf,
                       size_t cap,
                       size_t *n,
                       const char *s,
                       size_t len)
{
    for (size_t i = 0; i < len && *n + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            buf[(*n)++] = '\\';
            buf[(*n)++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            *n += (size_t)snprintf(buf + *n, cap - *n, "\\x%02x", ch);
        } else {
            buf[(*n)++] = (char)ch;
        }
    }
}

void acl_audit(struct cmd_client *c,
               const char *event,
               const char *user,
               size_t user_len,
               size_t argc,
               const char *const *argv,
               const size_t *argvlen)
{
    struct cmd_env *env = c->env;
    if (env->audit_fd < 0 && env->opts.log == NULL) {
        return;
    }
    char line[AUDIT_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n,
                          ".%03ldZ event=%s user=", ts.tv_nsec / 1000000L,
                          event);
    if (user == NULL) {
        user = c->user[0] ? c->user : "default";
        user_len = strlen(user);
    }
    put_quoted(line, sizeof(line), &n, user,
               user_len > KV_ACL_NAME_MAX ? KV_ACL_NAME_MAX : user_len);
    n = cmd_appendf(line, sizeof(line), n, " client=%llu addr=%s",
                    (unsigned long long)c->id, c->addr[0] ? c->addr : "-");
    if (argc > 0) {
        n = cmd_appendf(line, sizeof(line), n, " cmd=\"");
        for (size_t i = 0; i < argc && n + 16 < sizeof(line); i++) {
            if (i > 0) {
                line[n++] = ' ';
            }
            /* A password is never written down, in clear or hashed. */
            bool secret = argvlen[i] > 0 &&
                          (argv[i][0] == '>' || argv[i][0] == '<' ||
                           argv[i][0] == '#' || argv[i][0] == '!') &&
                          i >= 3 && cmd_arg_is(argv[0], argvlen[0], "acl");
            bool auth_pw = cmd_arg_is(argv[0], argvlen[0], "auth") && i >= 1;
            if (secret) {
                n = cmd_appendf(line, sizeof(line), n, "%c***", argv[i][0]);
            } else if (auth_pw) {
                n = cmd_appendf(line, sizeof(line), n, "***");
            } else {
                put_quoted(line, sizeof(line) - 16, &n, argv[i], argvlen[i]);
            }
        }
        if (n + 16 >= sizeof(line)) {
            n = cmd_appendf(line, sizeof(line), n, "...");
        }
        n = cmd_appendf(line, sizeof(line), n, "\"");
    }
    if (env->audit_fd >= 0) {
        line[n++] = '\n';
        /* One write per line: O_APPEND keeps lines whole. A failure is
         * not the client's: the line is lost, the command goes on. */
        ssize_t w = write(env->audit_fd, line, n);
        (void)w;
    } else {
        line[n] = '\0';
        char msg[AUDIT_LINE_MAX + 8];
        snprintf(msg, sizeof(msg), "audit: %s", line);
        env->opts.log(env->opts.log_arg, 1 /* info */, msg);
    }
}
