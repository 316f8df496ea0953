/*
 * test_acl.c - users and ACLs on the client port (net/server/acl.c), over
 * the fake node and its real store: every command category against each
 * permission, AUTH and HELLO with users, key patterns, the ACL command,
 * admin-only commands, the default user's bootstrap, and a write that
 * loses a race to an ACL change being refused where it is applied.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "kv.h"
#include "kv_acl.h"
#include "passwd.h"

static struct harness h;
static struct cli c;

/* The fewest iterations allowed for the hashes >password makes: every
 * test pays a few, and sanitizer runs on a loaded machine are slow. */
static void setup(void)
{
    struct server_options opts;
    server_options_default(&opts);
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.password_iterations = PASSWD_ITERATIONS_MIN;
    harness_start(&h, &opts);
    cli_open(&c, h.port);
}

static void teardown(void)
{
    cli_close(&c);
    harness_stop(&h);
}

#define EQ(conn, line, want) ck_assert_str_eq(q(conn, line), want)

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Opens @o and authenticates it as @user with password "pw". */
static void login(struct cli *o, const char *user)
{
    char line[128];
    cli_open(o, h.port);
    snprintf(line, sizeof(line), "AUTH %s pw", user);
    EQ(o, line, "+OK\r\n");
}

/* Every category of command tried by users of each permission. The
 * expected answers are written out by hand, from Redis's categories. */
START_TEST(test_acl_every_category_against_each_permission)
{
    static const struct
    {
        const char *name;
        const char *rules;
    } users[] = {
        {"reader", "+@read ~*"},
        {"writer", "+@write ~*"},
        {"admin", "+@admin ~*"},
        {"conn", "+@connection ~*"},
        {"safe", "+@all -@dangerous ~*"},
        {"nothing", "-@all ~*"},
        {"all", "+@all ~*"},
    };
    /* Commands and, per user in the order above, whether it may run. */
    static const struct
    {
        const char *line;
        const char *allowed; /* one letter per user: y or n */
    } cmds[] = {
        {"GET k", "ynnnyny"},          /* read string */
        {"EXISTS k", "ynnnyny"},       /* read keyspace */
        {"SET k v", "nynnyny"},        /* write string */
        {"DEL k", "nynnyny"},          /* write keyspace */
        {"KEYS *", "ynnnnny"},         /* read keyspace dangerous */
        {"PING", "nnnyyny"},           /* connection */
        {"UNWATCH", "nnnnyny"},        /* transaction */
        {"BCOMPACT 1", "nnynnny"},     /* admin */
        {"BMEMBER LIST", "nnynnny"},   /* admin */
        {"BTRANSFER 2", "nnynnny"},    /* admin */
        {"BSNAPSHOT LIST", "nnynnny"}, /* admin */
        {"ACL LIST", "nnynnny"},       /* admin */
        {"ACL WHOAMI", "nnnnyny"},     /* slow */
        {"INFO", "nnnnnny"},           /* dangerous */
        {"CONFIG GET maxmemory", "nnynnny"},
    };
    char line[256];
    for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
        snprintf(line, sizeof(line), "ACL SETUSER %s on >pw %s", users[u].name,
                 users[u].rules);
        EQ(&c, line, "+OK\r\n");
    }
    EQ(&c, "SET k 1", "+OK\r\n");
    for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
        struct cli o;
        login(&o, users[u].name);
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            const char *r = q(&o, cmds[i].line);
            bool refused = starts(r, "-NOPERM");
            bool want = cmds[i].allowed[u] == 'y';
            ck_assert_msg(refused != want, "%s ran '%s': %s", users[u].name,
                          cmds[i].line, r);
        }
        cli_close(&o);
    }
}
END_TEST

/* AUTH user pass and HELLO 3 AUTH user pass log in as that user; wrong
 * passwords, unknown and disabled users are refused the same way. */
START_TEST(test_acl_auth_and_hello_log_in_as_users)
{
    struct cli o;
    EQ(&c, "ACL SETUSER alice on >pw >second +@all ~*", "+OK\r\n");
    EQ(&c, "ACL SETUSER carol off >pw +@all ~*", "+OK\r\n");
    EQ(&c, "ACL SETUSER dave on nopass +@all ~*", "+OK\r\n");
    cli_open(&o, h.port);
    EQ(&o, "ACL WHOAMI", "$7\r\ndefault\r\n");
    const char *wrong =
        "-WRONGPASS invalid username-password pair or user "
        "is disabled.\r\n";
    EQ(&o, "AUTH alice nope", wrong);
    EQ(&o, "AUTH nobody pw", wrong);
    EQ(&o, "AUTH carol pw", wrong);
    EQ(&o, "ACL WHOAMI", "$7\r\ndefault\r\n");
    EQ(&o, "AUTH alice second", "+OK\r\n");
    EQ(&o, "ACL WHOAMI", "$5\r\nalice\r\n");
    EQ(&o, "AUTH dave anything", "+OK\r\n");
    EQ(&o, "ACL WHOAMI", "$4\r\ndave\r\n");
    const char *r = q(&o, "HELLO 3 AUTH alice pw");
    ck_assert_msg(starts(r, "%7\r\n"), "%s", r);
    EQ(&o, "ACL WHOAMI", "$5\r\nalice\r\n");
    EQ(&o, "RESET", "+RESET\r\n");
    EQ(&o, "ACL WHOAMI", "$7\r\ndefault\r\n");
    /* <password removes one password; the other still works. */
    EQ(&c, "ACL SETUSER alice <second", "+OK\r\n");
    EQ(&o, "AUTH alice second", wrong);
    EQ(&o, "AUTH alice pw", "+OK\r\n");
    r = q(&c, "ACL SETUSER alice <second");
    ck_assert_msg(starts(r, "-ERR Error in ACL SETUSER modifier"), "%s", r);
    cli_close(&o);
}
END_TEST

/* Key patterns: reads need read rights and writes write rights on every
 * key the command names; whole-keyspace commands need every key. */
START_TEST(test_acl_key_patterns_limit_reads_and_writes)
{
    struct cli o;
    const char *nokey = "-NOPERM No permissions to access a key\r\n";
    EQ(&c, "ACL SETUSER alice on >pw +@all -@admin ~app:* %R~pub:*", "+OK\r\n");
    EQ(&c, "SET pub:1 p", "+OK\r\n");
    EQ(&c, "SET secret s", "+OK\r\n");
    login(&o, "alice");
    EQ(&o, "SET app:1 a", "+OK\r\n");
    EQ(&o, "GET app:1", "$1\r\na\r\n");
    EQ(&o, "GET pub:1", "$1\r\np\r\n");
    EQ(&o, "SET pub:1 x", nokey);
    EQ(&o, "GET secret", nokey);
    EQ(&o, "DEL secret", nokey);
    EQ(&o, "MSET app:2 b secret x", nokey);
    EQ(&o, "MGET app:1 secret", nokey);
    EQ(&o, "INCR pub:1", nokey);
    EQ(&o, "KEYS *", nokey);
    EQ(&o, "FLUSHALL", nokey);
    const char *br[] = {"BRANGE", "app:", "", "PREFIX"};
    size_t brl[] = {6, 4, 0, 6};
    const char *got = qv(&o, 4, br, brl);
    ck_assert_msg(!starts(got, "-") && strstr(got, "app:1") != NULL, "%s", got);
    EQ(&o, "BRANGE a z", nokey);
    EQ(&o, "BREQ 7 1 SET secret x", nokey);
    EQ(&o, "BREQ 7 1 SET app:3 c", "+OK\r\n");
    /* Inside MULTI the refusal is at queueing, and EXEC then aborts. */
    EQ(&o, "MULTI", "+OK\r\n");
    EQ(&o, "SET app:4 d", "+QUEUED\r\n");
    EQ(&o, "SET secret x", nokey);
    const char *r = q(&o, "EXEC");
    ck_assert_msg(starts(r, "-EXECABORT"), "%s", r);
    /* BTXN's keys are checked where it is applied. */
    r = q(&o, "BTXN 0 1 PUT secret x 0");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&c, "GET secret", "$1\r\ns\r\n");
    cli_close(&o);
}
END_TEST

/* Interposes "ACL SETUSER @user @rules" (from another node's admin) just
 * before the next proposal of this node enters the log. */
static void lose_race_to_acl(const char *user, const char *rule)
{
    uint8_t value[512];
    size_t rl = strlen(rule);
    struct kv_cmd cmd;
    if (rule[0] == '\0') {
        kv_cmd_acl(&cmd, user, strlen(user), NULL, 0);
    } else {
        size_t vl = kv_acl_rules_encode(NULL, NULL, 0, &rule, &rl, 1, value,
                                        sizeof(value));
        ck_assert_uint_gt(vl, 0);
        kv_cmd_acl(&cmd, user, strlen(user), value, vl);
    }
    uint8_t buf[1024];
    size_t len = 0;
    ck_assert_int_eq(kv_cmd_encode(&cmd, buf, sizeof(buf), &len), 0);
    fake_bnode_interpose(h.node, buf, len);
}

/* A write checked and proposed while its user may run it, but applied
 * after an ACL change that forbids it, is refused at apply (NOPERM) and
 * changes nothing: the decision is the log's, the same on every replica.
 * Without the check at apply the write would land. */
START_TEST(test_acl_a_write_that_loses_a_race_to_an_acl_change_is_refused)
{
    struct cli o;
    EQ(&c, "ACL SETUSER alice on >pw +@all -@admin ~*", "+OK\r\n");
    login(&o, "alice");
    EQ(&o, "SET k 1", "+OK\r\n");

    lose_race_to_acl("alice", "-set");
    const char *r = q(&o, "SET k 2");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&c, "GET k", "$1\r\n1\r\n");
    r = q(&o, "SET k 3");
    ck_assert_msg(starts(r, "-NOPERM User alice has no permissions"), "%s", r);

    /* The same for a read-modify-write, a view write (MSET), a
     * transaction, a key pattern taken away and a deleted user. */
    lose_race_to_acl("alice", "-incr");
    r = q(&o, "INCR k");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    lose_race_to_acl("alice", "-mset");
    r = q(&o, "MSET a 1 b 2");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&o, "MULTI", "+OK\r\n");
    EQ(&o, "APPEND k x", "+QUEUED\r\n");
    lose_race_to_acl("alice", "-@transaction");
    r = q(&o, "EXEC");
    ck_assert_msg(strstr(r, "NOPERM") != NULL, "%s", r);
    lose_race_to_acl("alice", "resetkeys");
    r = q(&o, "DEL k");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&c, "ACL SETUSER alice ~* +@transaction", "+OK\r\n");
    lose_race_to_acl("alice", "");
    r = q(&o, "DEL k");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&c, "MGET k a b", "*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n");
    r = q(&o, "GET k");
    ck_assert_msg(starts(r, "-NOPERM User alice no longer exists"), "%s", r);

    /* A change that allows more lets the racing write through. */
    EQ(&c, "ACL SETUSER bob on >pw +get ~*", "+OK\r\n");
    EQ(&c, "ACL SETUSER bob +set", "+OK\r\n");
    struct cli b;
    login(&b, "bob");
    lose_race_to_acl("bob", "+del");
    EQ(&b, "SET k 9", "+OK\r\n");
    cli_close(&b);
    cli_close(&o);
}
END_TEST

/* Membership, transfer, snapshots, compaction and ACL changes are admin
 * commands; a user without @admin changes no user. */
START_TEST(test_acl_changes_and_cluster_commands_need_admin)
{
    struct cli o;
    EQ(&c, "ACL SETUSER ops on >pw +@all -@admin ~*", "+OK\r\n");
    login(&o, "ops");
    const char *lines[] = {"ACL SETUSER x on", "ACL DELUSER ops",
                           "ACL GETUSER ops",  "ACL USERS",
                           "BMEMBER LIST",     "BTRANSFER 2",
                           "BSNAPSHOT CREATE", "BCOMPACT 1"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *r = q(&o, lines[i]);
        ck_assert_msg(starts(r, "-NOPERM"), "%s: %s", lines[i], r);
    }
    EQ(&o, "ACL WHOAMI", "$3\r\nops\r\n");
    EQ(&c, "ACL USERS", "*2\r\n$7\r\ndefault\r\n$3\r\nops\r\n");
    EQ(&c, "ACL SETUSER ops +acl|setuser", "+OK\r\n");
    EQ(&o, "ACL SETUSER x on", "+OK\r\n");
    EQ(&c, "ACL DELUSER x ops nobody", ":2\r\n");
    EQ(&c, "ACL USERS", "*1\r\n$7\r\ndefault\r\n");
    cli_close(&o);
}
END_TEST

/* ACL's replies and errors in Redis's words. */
START_TEST(test_acl_command_replies_like_redis)
{
    EQ(&c, "ACL SETUSER alice on nopass ~app:* %R~pub:* +@read -keys",
       "+OK\r\n");
    EQ(&c, "ACL LIST",
       "*2\r\n$49\r\nuser alice on nopass ~app:* %R~pub:* +@read -keys\r\n"
       "$31\r\nuser default on nopass ~* +@all\r\n");
    EQ(&c, "ACL GETUSER alice",
       "*12\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$6\r\nnopass\r\n"
       "$9\r\npasswords\r\n*0\r\n$8\r\ncommands\r\n$12\r\n+@read -keys\r\n"
       "$4\r\nkeys\r\n$15\r\n~app:* %R~pub:*\r\n$8\r\nchannels\r\n$0\r\n\r\n"
       "$9\r\nselectors\r\n*0\r\n");
    EQ(&c, "ACL GETUSER nobody", "$-1\r\n");
    const char *r = q(&c, "ACL SETUSER bob on +nosuch");
    ck_assert_msg(starts(r,
                         "-ERR Error in ACL SETUSER modifier '+nosuch': "
                         "Unknown command"),
                  "%s", r);
    r = q(&c, "ACL SETUSER bob on bogus");
    ck_assert_msg(starts(r, "-ERR Error in ACL SETUSER modifier 'bogus'"), "%s",
                  r);
    r = q(&c, "ACL SETUSER bob +@nosuch");
    ck_assert_msg(starts(r, "-ERR Error in ACL SETUSER modifier"), "%s", r);
    EQ(&c, "ACL GETUSER bob", "$-1\r\n");
    EQ(&c, "ACL DELUSER default",
       "-ERR The 'default' user cannot be removed\r\n");
    r = q(&c, "ACL CAT");
    ck_assert_msg(starts(r, "*10\r\n") && strstr(r, "$5\r\nadmin\r\n"), "%s",
                  r);
    r = q(&c, "ACL CAT admin");
    ck_assert_msg(strstr(r, "$7\r\nbmember\r\n") != NULL &&
                      strstr(r, "$3\r\nget\r\n") == NULL,
                  "%s", r);
    EQ(&c, "ACL CAT nosuch", "-ERR Unknown category 'nosuch'\r\n");
    r = q(&c, "ACL LOAD");
    ck_assert_msg(starts(r, "-ERR unknown subcommand 'LOAD'"), "%s", r);
}
END_TEST

/* With a client password and default_user_rules, the default user is
 * what they say until ACL SETUSER default stores it; the change keeps the
 * password it had. */
START_TEST(test_acl_default_user_starts_from_the_settings)
{
    struct server_options opts;
    struct cli o;
    server_options_default(&opts);
    opts.host = "127.0.0.1";
    opts.port = 0;
    ck_assert_int_eq(
        passwd_hash("pw", 2, PASSWD_ITERATIONS_MIN, opts.password_hash), 0);
    snprintf(opts.default_user_rules, sizeof(opts.default_user_rules),
             "+@all -flushall ~*");
    harness_start(&h, &opts);
    cli_open(&c, h.port);
    EQ(&c, "GET k", "-NOAUTH Authentication required.\r\n");
    EQ(&c, "AUTH pw", "+OK\r\n");
    EQ(&c, "SET k 1", "+OK\r\n");
    const char *r = q(&c, "FLUSHALL");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&c, "ACL SETUSER default -del", "+OK\r\n");
    r = q(&c, "DEL k");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    r = q(&c, "FLUSHALL");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    cli_open(&o, h.port);
    EQ(&o, "GET k", "-NOAUTH Authentication required.\r\n");
    EQ(&o, "AUTH default pw", "+OK\r\n");
    EQ(&o, "GET k", "$1\r\n1\r\n");
    cli_close(&o);
    /* A malformed setting stops the client port from starting. */
    char err[256];
    struct server *srv = NULL;
    snprintf(opts.default_user_rules, sizeof(opts.default_user_rules),
             "+@nosuch");
    ck_assert_int_eq(
        server_start(&h.loop, h.node, &opts, &srv, err, sizeof(err)),
        SERVER_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "default_user_rules"));
    cli_close(&c);
    harness_stop(&h);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Admission control                                                       */

static void start_limited(uint64_t conn_req,
                          uint64_t conn_bytes,
                          uint64_t user_req)
{
    struct server_options opts;
    server_options_default(&opts);
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.rate_conn_requests = conn_req;
    opts.rate_conn_bytes = conn_bytes;
    opts.rate_user_requests = user_req;
    harness_start(&h, &opts);
    cli_open(&c, h.port);
}

/* Pipelines @n PINGs on @o and counts the answered ones; the refused ones
 * say how long to wait, which *@wait gets (the longest). */
static int pings(struct cli *o, int n, long *wait)
{
    struct dbuf out = {0};
    int ok = 0;
    for (int i = 0; i < n; i++) {
        cli_send(o, "PING\r\n", 6);
    }
    *wait = 0;
    for (int i = 0; i < n; i++) {
        out.len = 0;
        ck_assert_int_eq(cli_reply(o, &out), 0);
        dbuf_put(&out, "", 1);
        if (strcmp(out.data, "+PONG\r\n") == 0) {
            ok++;
            continue;
        }
        ck_assert_msg(starts(out.data, "-RATELIMITED rate limited"), "%s",
                      out.data);
        const char *after = strstr(out.data, "retry after ");
        ck_assert_ptr_nonnull(after);
        long ms = strtol(after + 12, NULL, 10);
        ck_assert_msg(ms > 0 && ms <= 1000, "%s", out.data);
        *wait = ms > *wait ? ms : *wait;
    }
    dbuf_free(&out);
    return ok;
}

/* A connection gets one second's worth of its request rate at once, then
 * RATELIMITED with the time to wait; after that wait it is served again,
 * and another connection never noticed. The refusals are counted. */
START_TEST(test_limits_a_connection_over_its_rate_is_told_when_to_retry)
{
    struct cli o;
    long wait = 0;
    start_limited(20, 0, 0);
    int ok = pings(&c, 60, &wait);
    /* The burst, plus what refilled while the pipeline was read. */
    ck_assert_msg(ok >= 20 && ok <= 30, "%d answered", ok);
    ck_assert(wait > 0);
    cli_open(&o, h.port);
    EQ(&o, "PING", "+PONG\r\n");
    cli_close(&o);
    usleep((useconds_t)(wait + 100) * 1000);
    EQ(&c, "PING", "+PONG\r\n");
    struct server_stats st;
    server_stats(h.srv, &st);
    ck_assert_uint_ge(st.rate_limited_conn, 30);
    ck_assert_uint_eq(st.rate_limited_user, 0);
    cli_close(&c);
    harness_stop(&h);
}
END_TEST

/* A user's rate is shared by all its connections; other users have their
 * own. */
START_TEST(test_limits_a_user_shares_its_rate_across_connections)
{
    struct cli a1, a2, b;
    long wait = 0;
    start_limited(0, 0, 20);
    EQ(&c, "ACL SETUSER alice on nopass +@all ~*", "+OK\r\n");
    EQ(&c, "ACL SETUSER bob on nopass +@all ~*", "+OK\r\n");
    cli_open(&a1, h.port);
    cli_open(&a2, h.port);
    cli_open(&b, h.port);
    EQ(&a1, "AUTH alice x", "+OK\r\n");
    EQ(&a2, "AUTH alice x", "+OK\r\n");
    EQ(&b, "AUTH bob x", "+OK\r\n");
    int ok = pings(&a1, 15, &wait) + pings(&a2, 15, &wait);
    ck_assert_msg(ok >= 16 && ok <= 26, "%d answered", ok);
    ck_assert_int_eq(pings(&b, 15, &wait), 15);
    struct server_stats st;
    server_stats(h.srv, &st);
    ck_assert_uint_ge(st.rate_limited_user, 4);
    cli_close(&a1);
    cli_close(&a2);
    cli_close(&b);
    cli_close(&c);
    harness_stop(&h);
}
END_TEST

/* A byte rate lets a request larger than a second's worth through once,
 * then makes the connection wait until the debt is paid. */
START_TEST(test_limits_a_byte_rate_charges_large_requests)
{
    static char value[3001];
    memset(value, 'v', 3000);
    const char *set[] = {"SET", "k", value};
    size_t lens[] = {3, 1, 3000};
    start_limited(0, 1000, 0);
    ck_assert_str_eq(qv(&c, 3, set, lens), "+OK\r\n");
    const char *r = q(&c, "GET k");
    ck_assert_msg(starts(r, "-RATELIMITED"), "%s", r);
    long ms = strtol(strstr(r, "retry after ") + 12, NULL, 10);
    /* 3000 bytes against a full bucket of 1000 at 1000 a second: about
     * two seconds of debt, less what refilled meanwhile. */
    ck_assert_msg(ms > 1000 && ms <= 2100, "%s", r);
    cli_close(&c);
    harness_stop(&h);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* The audit log                                                           */

/* Reads the whole file @path into a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Authentication failures, admin commands and refusals are appended to the
 * audit file with who, what and when; passwords never appear in it. */
START_TEST(test_audit_file_records_who_did_what_and_when)
{
    char dir[] = "/tmp/ballot-audit-XXXXXX";
    char path[128];
    struct server_options opts;
    struct cli o;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    server_options_default(&opts);
    opts.host = "127.0.0.1";
    opts.port = 0;
    snprintf(opts.audit_file, sizeof(opts.audit_file), "%s", path);
    opts.password_iterations = PASSWD_ITERATIONS_MIN;
    harness_start(&h, &opts);
    cli_open(&c, h.port);
    EQ(&c, "ACL SETUSER alice on >hunter2 +@read ~*", "+OK\r\n");
    cli_open(&o, h.port);
    const char *r = q(&o, "AUTH alice wrong-guess");
    ck_assert_msg(starts(r, "-WRONGPASS"), "%s", r);
    r = q(&o, "AUTH mallory x");
    ck_assert_msg(starts(r, "-WRONGPASS"), "%s", r);
    EQ(&o, "AUTH alice hunter2", "+OK\r\n");
    r = q(&o, "BCOMPACT 1");
    ck_assert_msg(starts(r, "-NOPERM"), "%s", r);
    EQ(&o, "GET k", "$-1\r\n");
    cli_close(&o);
    q(&c, "BMEMBER LIST");
    const char *log = slurp(path);
    const char *want[] = {
        "event=admin user=default client=",
        "cmd=\"ACL SETUSER alice on >*** +@read ~*\"",
        "event=auth-failed user=alice client=",
        "event=auth-failed user=mallory client=",
        "event=denied user=alice client=",
        "cmd=\"BCOMPACT 1\"",
        "cmd=\"BMEMBER LIST\"",
        " addr=127.0.0.1:",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_msg(strstr(log, want[i]) != NULL, "no '%s' in:\n%s", want[i],
                      log);
    }
    /* Every line starts with its UTC time. */
    ck_assert_msg(log[4] == '-' && log[10] == 'T' && strstr(log, "Z event="),
                  "%s", log);
    ck_assert_ptr_null(strstr(log, "hunter2"));
    ck_assert_ptr_null(strstr(log, "wrong-guess"));
    ck_assert_ptr_null(strstr(log, "GET k"));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    cli_close(&c);
    harness_stop(&h);
    unlink(path);
    rmdir(dir);
}
END_TEST

static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;
static char audit_lines[8192];

static void audit_capture(void *arg, int level, const char *msg)
{
    (void)arg;
    ck_assert_int_eq(level, 1);
    pthread_mutex_lock(&audit_lock);
    size_t n = strlen(audit_lines);
    snprintf(audit_lines + n, sizeof(audit_lines) - n, "%s\n", msg);
    pthread_mutex_unlock(&audit_lock);
}

/* Without a file, audit lines go to the log callback. */
START_TEST(test_audit_lines_go_to_the_log_callback_without_a_file)
{
    struct server_options opts;
    server_options_default(&opts);
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.log = audit_capture;
    harness_start(&h, &opts);
    cli_open(&c, h.port);
    const char *r = q(&c, "AUTH nobody pw");
    ck_assert_msg(starts(r, "-WRONGPASS"), "%s", r);
    EQ(&c, "ACL DELUSER nobody", ":0\r\n");
    pthread_mutex_lock(&audit_lock);
    ck_assert_msg(strstr(audit_lines, "audit: ") == audit_lines &&
                      strstr(audit_lines, "event=auth-failed user=nobody") &&
                      strstr(audit_lines, "cmd=\"ACL DELUSER nobody\""),
                  "%s", audit_lines);
    pthread_mutex_unlock(&audit_lock);
    cli_close(&c);
    harness_stop(&h);
}
END_TEST

static Suite *acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("acl");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_acl_every_category_against_each_permission);
    tcase_add_test(tc, test_acl_auth_and_hello_log_in_as_users);
    tcase_add_test(tc, test_acl_key_patterns_limit_reads_and_writes);
    tcase_add_test(
        tc, test_acl_a_write_that_loses_a_race_to_an_acl_change_is_refused);
    tcase_add_test(tc, test_acl_changes_and_cluster_commands_need_admin);
    tcase_add_test(tc, test_acl_command_replies_like_redis);
    suite_add_tcase(s, tc);
    TCase *boot = tcase_create("bootstrap");
    tcase_set_timeout(boot, 120);
    tcase_add_test(boot, test_acl_default_user_starts_from_the_settings);
    tcase_add_test(
        boot, test_limits_a_connection_over_its_rate_is_told_when_to_retry);
    tcase_add_test(boot, test_limits_a_user_shares_its_rate_across_connections);
    tcase_add_test(boot, test_limits_a_byte_rate_charges_large_requests);
    tcase_add_test(boot, test_audit_file_records_who_did_what_and_when);
    tcase_add_test(boot,
                   test_audit_lines_go_to_the_log_callback_without_a_file);
    suite_add_tcase(s, boot);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(acl_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
