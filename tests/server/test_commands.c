/*
 * test_commands.c - every command of the client port through real TCP,
 * against the fake node: replies, reply types in RESP2 and RESP3, and the
 * error strings clients parse.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "cmd_view.h"
#include "harness.h"
#include "kv.h"

static struct harness h;
static struct cli c;

static void setup(void)
{
    harness_start(&h, NULL);
    cli_open(&c, h.port);
}

static void teardown(void)
{
    cli_close(&c);
    harness_stop(&h);
}

#define EQ(line, want) ck_assert_str_eq(q(&c, line), want)

/* PING and ECHO answer at once, with and without a message. */
START_TEST(test_commands_ping_and_echo)
{
    EQ("PING", "+PONG\r\n");
    EQ("ping hello", "$5\r\nhello\r\n");
    EQ("ECHO hi", "$2\r\nhi\r\n");
    EQ("PING a b", "-ERR wrong number of arguments for 'ping' command\r\n");
}
END_TEST

/* Unknown commands and wrong arities get Redis's exact messages. */
START_TEST(test_commands_unknown_and_arity_errors_match_redis)
{
    EQ("FOO", "-ERR unknown command 'FOO', with args beginning with: \r\n");
    EQ("foo a b",
       "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
    EQ("GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EQ("get a b", "-ERR wrong number of arguments for 'get' command\r\n");
    EQ("MSET a", "-ERR wrong number of arguments for 'mset' command\r\n");
    EQ("MSET a b c", "-ERR wrong number of arguments for 'mset' command\r\n");
}
END_TEST

/* A member's host must be a numeric address: a name would be looked up
 * with a call that blocks the event loop, so none is ever accepted. */
START_TEST(test_commands_bmember_refuses_host_names)
{
    static const char *const bad[] = {
        "BMEMBER ADDLEARNER 4 db4.example.com:7379",
        "BMEMBER ADDVOTER 4 localhost:7379:7380",
        "BMEMBER ADDLEARNER 4 127.0.0:7379",
        "BMEMBER ADDLEARNER 4 127.0.0.1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *r = q(&c, bad[i]);
        ck_assert_msg(strstr(r, "-ERR BMEMBER: the address must be") == r &&
                          strstr(r, "numeric IPv4") != NULL,
                      "%s: %s", bad[i], r);
    }
}
END_TEST

/* One request may name at most CMD_VIEW_KEYS_MAX keys (the node answers
 * it in one turn of its loop): MGET of that many works, one more is
 * refused with a message that says what to do, and so is watching more
 * than that many keys on one connection, in one WATCH or over several. */
START_TEST(test_commands_requests_touch_a_bounded_number_of_keys)
{
    size_t n = CMD_VIEW_KEYS_MAX + 1;
    const char **argv = calloc(n + 1, sizeof(*argv));
    size_t *lens = calloc(n + 1, sizeof(*lens));
    char(*names)[16] = calloc(n, sizeof(*names));
    ck_assert(argv != NULL && lens != NULL && names != NULL);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "many:%zu", i);
        argv[i + 1] = names[i];
        lens[i + 1] = strlen(names[i]);
    }
    EQ("SET many:7 seven", "+OK\r\n");
    argv[0] = "MGET";
    lens[0] = 4;
    const char *r = qv(&c, (int)n, argv, lens); /* CMD_VIEW_KEYS_MAX keys */
    ck_assert_msg(strncmp(r, "*32768\r\n", 8) == 0, "%.40s", r);
    ck_assert_ptr_nonnull(strstr(r, "$5\r\nseven\r\n"));
    r = qv(&c, (int)n + 1, argv, lens);
    ck_assert_msg(strstr(r,
                         "-ERR a request may read or write at most 32768 "
                         "keys") == r,
                  "%.120s", r);
    argv[0] = "WATCH";
    lens[0] = 5;
    r = qv(&c, (int)n + 1, argv, lens);
    ck_assert_msg(
        strstr(r, "-ERR a connection may watch at most 32768 keys") == r,
        "%.120s", r);
    EQ("UNWATCH", "+OK\r\n");
    r = qv(&c, (int)n - 1, argv, lens); /* 32,767 keys */
    ck_assert_msg(strcmp(r, "+OK\r\n") == 0, "%.120s", r);
    EQ("WATCH another:1 another:2",
       "-ERR a connection may watch at most 32768 keys: UNWATCH, or split the "
       "transaction\r\n");
    EQ("UNWATCH", "+OK\r\n");
    EQ("GET many:7", "$5\r\nseven\r\n");
    free(argv);
    free(lens);
    free(names);
}
END_TEST

/* HELLO switches the protocol; replies change their encoding. */
START_TEST(test_commands_hello_switches_resp_version)
{
    const char *r = q(&c, "HELLO 3");
    ck_assert_msg(strncmp(r, "%7\r\n$6\r\nserver\r\n$6\r\nballot\r\n", 27) == 0,
                  "%s", r);
    ck_assert_ptr_nonnull(strstr(r, "$5\r\nproto\r\n:3\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$4\r\nmode\r\n$10\r\nstandalone\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$4\r\nrole\r\n$6\r\nmaster\r\n"));
    EQ("GET missing", "_\r\n");
    r = q(&c, "HELLO 2");
    ck_assert_msg(strncmp(r, "*14\r\n", 5) == 0, "%s", r);
    EQ("GET missing", "$-1\r\n");
    EQ("HELLO 4", "-NOPROTO unsupported protocol version\r\n");
    EQ("HELLO x",
       "-ERR Protocol version is not an integer or out of range\r\n");
    /* No password set: an unknown user is refused, the default user
     * passes with any password (Redis's nopass default user). */
    EQ("HELLO 3 AUTH u p",
       "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    r = q(&c, "HELLO 2 AUTH default anything");
    ck_assert_msg(strncmp(r, "*14\r\n", 5) == 0, "%s", r);
    r = q(&c, "HELLO 2 SETNAME me");
    EQ("CLIENT GETNAME", "$2\r\nme\r\n");
}
END_TEST

/* Connection commands: AUTH, SELECT, CLIENT, COMMAND, INFO. */
START_TEST(test_commands_connection_and_server_commands)
{
    EQ("AUTH pw",
       "-ERR AUTH <password> called without any password configured for "
       "the default user. Are you sure your configuration is correct?\r\n");
    EQ("AUTH default pw", "+OK\r\n");
    EQ("AUTH nobody pw",
       "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EQ("AUTH a b c", "-ERR syntax error\r\n");
    EQ("SELECT 0", "+OK\r\n");
    EQ("SELECT 1", "-ERR DB index is out of range\r\n");
    EQ("SELECT x", "-ERR value is not an integer or out of range\r\n");
    const char *r = q(&c, "CLIENT ID");
    ck_assert_int_eq(r[0], ':');
    EQ("CLIENT GETNAME", "$-1\r\n");
    EQ("CLIENT SETNAME worker-1", "+OK\r\n");
    EQ("CLIENT GETNAME", "$8\r\nworker-1\r\n");
    EQ("CLIENT NOPE", "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n");
    r = q(&c, "COMMAND COUNT");
    ck_assert_int_eq(r[0], ':');
    ck_assert_int_eq(atoi(r + 1), (int)cmd_table_len);
    EQ("COMMAND DOCS", "*0\r\n");
    r = q(&c, "COMMAND INFO get");
    ck_assert_msg(strncmp(r, "*1\r\n*6\r\n$3\r\nget\r\n:2\r\n", 21) == 0, "%s",
                  r);
    r = q(&c, "INFO");
    ck_assert_ptr_nonnull(strstr(r, "# Raft"));
    ck_assert_ptr_nonnull(strstr(r, "role:leader"));
    ck_assert_ptr_nonnull(strstr(r, "members:1:voter"));
    r = q(&c, "INFO clients");
    ck_assert_ptr_nonnull(strstr(r, "connected_clients:1"));
    ck_assert_ptr_null(strstr(r, "# Raft"));
    EQ("READONLY", "+OK\r\n");
    EQ("READWRITE", "+OK\r\n");
    EQ("QUIT", "+OK\r\n");
    ck_assert(cli_closed(&c));
}
END_TEST

/* The basic string commands and their reply types. */
START_TEST(test_commands_strings)
{
    EQ("GET k", "$-1\r\n");
    EQ("SET k v1", "+OK\r\n");
    EQ("GET k", "$2\r\nv1\r\n");
    EQ("STRLEN k", ":2\r\n");
    EQ("STRLEN nope", ":0\r\n");
    EQ("SETNX k v2", ":0\r\n");
    EQ("SETNX k2 v2", ":1\r\n");
    EQ("GETSET k v3", "$2\r\nv1\r\n");
    EQ("GETSET fresh v", "$-1\r\n");
    EQ("EXISTS k k2 nope k", ":3\r\n");
    EQ("MGET k nope k2", "*3\r\n$2\r\nv3\r\n$-1\r\n$2\r\nv2\r\n");
    EQ("GETDEL k", "$2\r\nv3\r\n");
    EQ("GETDEL k", "$-1\r\n");
    EQ("APPEND a hello", ":5\r\n");
    EQ("APPEND a _world", ":11\r\n");
    EQ("GET a", "$11\r\nhello_world\r\n");
    EQ("MSET x 1 y 2 z 3", "+OK\r\n");
    EQ("MGET x y z", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    EQ("MSETNX x 9 new 9", ":0\r\n");
    EQ("EXISTS new", ":0\r\n");
    EQ("MSETNX n1 9 n2 9", ":1\r\n");
    EQ("DEL x y nope x", ":2\r\n");
    EQ("DBSIZE", ":6\r\n");
}
END_TEST

/* SET's options follow Redis: NX, XX, GET, and no expiry yet. */
START_TEST(test_commands_set_options)
{
    EQ("SET k v NX", "+OK\r\n");
    EQ("SET k w NX", "$-1\r\n");
    EQ("SET k w XX", "+OK\r\n");
    EQ("SET nope w XX", "$-1\r\n");
    EQ("EXISTS nope", ":0\r\n");
    EQ("SET k u GET", "$1\r\nw\r\n");
    EQ("SET k2 u GET", "$-1\r\n");
    EQ("SET k z NX GET", "$1\r\nu\r\n");
    EQ("GET k", "$1\r\nu\r\n");
    EQ("SET k v NX XX", "-ERR syntax error\r\n");
    EQ("SET k v BOGUS", "-ERR syntax error\r\n");
    /* Expiry options: tests/server/test_lease.c. */
    EQ("SET k v EX 10", "+OK\r\n");
    EQ("SET k v KEEPTTL", "+OK\r\n");
}
END_TEST

/* INCR and friends: values, errors and overflow. */
START_TEST(test_commands_incr_family)
{
    EQ("INCR n", ":1\r\n");
    EQ("INCRBY n 10", ":11\r\n");
    EQ("DECR n", ":10\r\n");
    EQ("DECRBY n 20", ":-10\r\n");
    EQ("GET n", "$3\r\n-10\r\n");
    EQ("SET s abc", "+OK\r\n");
    EQ("INCR s", "-ERR value is not an integer or out of range\r\n");
    EQ("INCRBY n x", "-ERR value is not an integer or out of range\r\n");
    EQ("INCRBY n 01", "-ERR value is not an integer or out of range\r\n");
    EQ("SET big 9223372036854775807", "+OK\r\n");
    EQ("INCR big", "-ERR increment or decrement would overflow\r\n");
    EQ("SET small -9223372036854775808", "+OK\r\n");
    EQ("DECR small", "-ERR increment or decrement would overflow\r\n");
    EQ("DECRBY n -9223372036854775808", "-ERR decrement would overflow\r\n");
}
END_TEST

/* Copies @pattern into @out with every "%s" replaced by @prefix. */
static void expand(char *out,
                   size_t cap,
                   const char *pattern,
                   const char *prefix)
{
    size_t n = 0;
    for (const char *p = pattern; *p != '\0' && n + 8 < cap; p++) {
        if (p[0] == '%' && p[1] == 's') {
            for (const char *x = prefix; *x != '\0' && n + 1 < cap; x++) {
                out[n++] = *x;
            }
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

/* The read-modify-writes the state machine evaluates (outside MULTI) and
 * their view handlers (inside MULTI) give the same replies and leave the
 * same values; each direct one is one proposal with no read. */
START_TEST(test_commands_read_modify_writes_match_inside_and_outside_multi)
{
    static const char *const script[] = {
        "INCR %sn",
        "INCRBY %sn 41",
        "DECR %sn",
        "DECRBY %sn 2",
        "INCRBYFLOAT %sf 10.50",
        "INCRBYFLOAT %sf 0.1",
        "INCRBYFLOAT %sn 1e2",
        "INCRBYFLOAT %sf x",
        "APPEND %ss ab",
        "APPEND %ss cd",
        "INCR %ss",
        "SETNX %sx 1",
        "SETNX %sx 2",
        "GETSET %sx 3",
        "GETSET %sy 4",
        "SET %sx 5 GET",
        "SET %sz 6 NX GET",
        "SET %sz 7 NX GET",
        "SET %sz 8 XX GET",
        "SET %sw 9 XX GET",
        "SET %sz 10 XX",
        "SET %sw 11 XX",
        "SET %sz 12 NX",
        "GETDEL %sz",
        "GETDEL %sz",
        "MSETNX %sm1 a %sm2 b",
        "MSETNX %sm2 c %sm3 d",
        "GET %sn",
        "GET %sf",
        "GET %ss",
        "GET %sx",
        "GET %sz",
        "GET %sm3",
    };
    enum { N = sizeof(script) / sizeof(script[0]) };
    char *direct[N];
    char line[128];
    unsigned long p0 = fake_bnode_proposals(h.node);
    unsigned long r0 = fake_bnode_reads(h.node);
    for (size_t i = 0; i < N; i++) {
        expand(line, sizeof(line), script[i], "a:");
        direct[i] = strdup(q(&c, line));
    }
    /* 27 writes (the GETs and refusals aside, the INCR of text and the
     * float of text still go through the log), 6 GETs: only the GETs
     * read. */
    ck_assert_uint_eq(fake_bnode_reads(h.node) - r0, 6);
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 27);
    EQ("MULTI", "+OK\r\n");
    for (size_t i = 0; i < N; i++) {
        expand(line, sizeof(line), script[i], "b:");
        EQ(line, "+QUEUED\r\n");
    }
    struct dbuf want = {0};
    snprintf(line, sizeof(line), "*%d\r\n", (int)N);
    dbuf_put(&want, line, strlen(line));
    for (size_t i = 0; i < N; i++) {
        dbuf_put(&want, direct[i], strlen(direct[i]));
        free(direct[i]);
    }
    dbuf_put(&want, "", 1);
    EQ("EXEC", want.data);
    dbuf_free(&want);
    EQ("GET a:f", "$4\r\n10.6\r\n");
    EQ("GET a:n", "$3\r\n139\r\n");
    EQ("APPEND a:s e", ":5\r\n");
}
END_TEST

/* BREQ around each read-modify-write: a retry of an applied request id
 * gets the first reply, built from the result the store kept, and does not
 * run again. */
START_TEST(test_commands_breq_read_modify_writes_apply_once)
{
    static const char *const cmds[][2] = {
        {"BREQ 30 1 INCRBY r 5", ":5\r\n"},
        {"BREQ 30 2 INCRBYFLOAT r 0.5", "$3\r\n5.5\r\n"},
        {"BREQ 30 3 APPEND r x", ":4\r\n"},
        {"BREQ 30 4 INCR r",
         "-ERR value is not an integer or out of range\r\n"},
        {"BREQ 30 5 SET r y GET", "$4\r\n5.5x\r\n"},
        {"BREQ 30 6 SETNX r z", ":0\r\n"},
        {"BREQ 30 7 SET q z NX GET", "$-1\r\n"},
        {"BREQ 30 8 GETDEL q", "$1\r\nz\r\n"},
        {"BREQ 30 9 MSETNX q 1 r 2", ":0\r\n"},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        EQ(cmds[i][0], cmds[i][1]);
        unsigned long p0 = fake_bnode_proposals(h.node);
        EQ(cmds[i][0], cmds[i][1]); /* the retry */
        ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 1);
    }
    EQ("GET r", "$1\r\ny\r\n");
    EQ("GET q", "$-1\r\n");
    EQ("BREQ 30 1 INCR r",
       "-ERR request id already superseded: client 30 seq 1 is below its "
       "last applied seq 9\r\n");
    /* An id first used by an INCR, retried as another command. */
    EQ("BREQ 31 1 INCR c", ":1\r\n");
    const char *r = q(&c, "BREQ 31 1 APPEND c x");
    ck_assert_msg(strstr(r, "by a different command") != NULL, "%s", r);
    EQ("GET c", "$1\r\n1\r\n");
}
END_TEST

/* The key commands tools reach for, with Redis 7.0's replies and errors:
 * TYPE, GETRANGE (negative indexes), SETRANGE (padding, empty value),
 * RENAME, RENAMENX, COPY, MEMORY USAGE, OBJECT ENCODING, and FLUSHALL as
 * one log entry. */
START_TEST(test_commands_key_commands_like_redis)
{
    EQ("SET s HelloWorld", "+OK\r\n");
    EQ("TYPE s", "+string\r\n");
    EQ("TYPE nope", "+none\r\n");
    EQ("GETRANGE s 0 3", "$4\r\nHell\r\n");
    EQ("GETRANGE s -3 -1", "$3\r\nrld\r\n");
    EQ("GETRANGE s 0 -1", "$10\r\nHelloWorld\r\n");
    EQ("GETRANGE s 10 100", "$0\r\n\r\n");
    EQ("GETRANGE s -1 -5", "$0\r\n\r\n");
    EQ("GETRANGE nope 0 -1", "$0\r\n\r\n");
    EQ("GETRANGE s x 1", "-ERR value is not an integer or out of range\r\n");
    EQ("SETRANGE s 5 Redis", ":10\r\n");
    EQ("GET s", "$10\r\nHelloRedis\r\n");
    EQ("SETRANGE pad 3 ab", ":5\r\n");
    ck_assert_int_eq(memcmp(q(&c, "GET pad"), "$5\r\n\0\0\0ab\r\n", 12), 0);
    {
        const char *argv[] = {"SETRANGE", "empty", "5", ""};
        const size_t lens[] = {8, 5, 1, 0};
        ck_assert_str_eq(qv(&c, 4, argv, lens), ":0\r\n");
    }
    EQ("EXISTS empty", ":0\r\n");
    EQ("SETRANGE s -1 x", "-ERR offset is out of range\r\n");
    EQ("SETRANGE s 1048576 x",
       "-ERR value too large: ballot's limit is 1048576 bytes\r\n");

    EQ("RENAME nope x", "-ERR no such key\r\n");
    EQ("RENAME s t", "+OK\r\n");
    EQ("EXISTS s", ":0\r\n");
    EQ("GET t", "$10\r\nHelloRedis\r\n");
    EQ("RENAME t t", "+OK\r\n");
    EQ("SET u other", "+OK\r\n");
    EQ("RENAMENX t u", ":0\r\n");
    EQ("RENAMENX t v", ":1\r\n");
    EQ("RENAME v u", "+OK\r\n");
    EQ("GET u", "$10\r\nHelloRedis\r\n");

    EQ("COPY u w", ":1\r\n");
    EQ("COPY u w", ":0\r\n");
    EQ("SET u changed", "+OK\r\n");
    EQ("COPY u w REPLACE", ":1\r\n");
    EQ("GET w", "$7\r\nchanged\r\n");
    EQ("COPY nope w", ":0\r\n");
    EQ("COPY u u", "-ERR source and destination objects are the same\r\n");
    EQ("COPY u w DB 1", "-ERR DB index is out of range\r\n");
    EQ("COPY u w BOGUS", "-ERR syntax error\r\n");

    EQ("MEMORY USAGE w", ":40\r\n"); /* 1 + 7 + 32 */
    EQ("MEMORY USAGE w SAMPLES 0", ":40\r\n");
    EQ("MEMORY USAGE nope", "$-1\r\n");
    EQ("SET i 12345", "+OK\r\n");
    EQ("OBJECT ENCODING i", "$3\r\nint\r\n");
    EQ("OBJECT ENCODING w", "$6\r\nembstr\r\n");
    EQ("OBJECT ENCODING nope", "$-1\r\n");
    EQ("OBJECT BOGUS x",
       "-ERR unknown subcommand 'BOGUS'. Try OBJECT HELP.\r\n");

    /* In a transaction too, seeing the transaction's own writes. */
    EQ("MULTI", "+OK\r\n");
    EQ("SET m abc", "+QUEUED\r\n");
    EQ("RENAME m n", "+QUEUED\r\n");
    EQ("GETRANGE n 1 1", "+QUEUED\r\n");
    EQ("TYPE m", "+QUEUED\r\n");
    EQ("EXEC", "*4\r\n+OK\r\n+OK\r\n$1\r\nb\r\n+none\r\n");

    unsigned long p0 = fake_bnode_proposals(h.node);
    EQ("FLUSHALL", "+OK\r\n");
    ck_assert_uint_eq(fake_bnode_proposals(h.node) - p0, 1);
    EQ("DBSIZE", ":0\r\n");
    EQ("FLUSHDB ASYNC", "+OK\r\n");
    EQ("FLUSHDB NOW", "-ERR syntax error\r\n");
}
END_TEST

/* The server commands tools send: TIME, CONFIG GET from ballot's settings
 * and CONFIG SET refused clearly, ROLE, CLIENT LIST/INFO/KILL/NO-EVICT/
 * NO-TOUCH, and INFO's standalone server, replication and keyspace. */
START_TEST(test_commands_server_commands_for_tools)
{
    const char *r = q(&c, "TIME");
    ck_assert_msg(strncmp(r, "*2\r\n$10\r\n", 9) == 0, "%s", r);
    EQ("CONFIG GET maxclients", "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
    EQ("CONFIG GET save appendonly",
       "*4\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n$4\r\nsave\r\n$0\r\n"
       "\r\n");
    EQ("CONFIG GET nosuch", "*0\r\n");
    EQ("CONFIG SET maxclients 5",
       "-ERR CONFIG SET 'maxclients' is not supported by ballot: its "
       "settings are fixed when ballotd starts (flags and config file, "
       "docs/operations.md)\r\n");
    EQ("CONFIG BOGUS", "-ERR unknown subcommand 'BOGUS'. Try CONFIG HELP.\r\n");
    EQ("SET k v", "+OK\r\n");
    r = q(&c, "ROLE");
    ck_assert_msg(strncmp(r, "*3\r\n$6\r\nmaster\r\n:", 17) == 0 &&
                      strstr(r, "*0\r\n") != NULL,
                  "%s", r);
    EQ("CLIENT NO-EVICT on", "+OK\r\n");
    EQ("CLIENT NO-TOUCH off", "+OK\r\n");
    EQ("CLIENT NO-EVICT maybe", "-ERR syntax error\r\n");
    EQ("CLIENT SETNAME lister", "+OK\r\n");
    struct cli o;
    cli_open(&o, h.port);
    ck_assert_str_eq(q(&o, "CLIENT SETNAME victim"), "+OK\r\n");
    r = q(&c, "CLIENT LIST");
    ck_assert_msg(strstr(r, " name=lister ") && strstr(r, " name=victim ") &&
                      strstr(r, "addr=127.0.0.1:") && strstr(r, " db=0 "),
                  "%s", r);
    r = q(&c, "CLIENT INFO");
    ck_assert_msg(strstr(r, " name=lister ") && !strstr(r, "victim"), "%s", r);
    /* Kill the other connection by its id. */
    char line[64];
    snprintf(line, sizeof(line), "CLIENT KILL ID %s",
             strstr(q(&o, "CLIENT ID"), ":") + 1);
    line[strcspn(line, "\r")] = '\0';
    EQ(line, ":1\r\n");
    ck_assert(cli_closed(&o));
    cli_close(&o);
    EQ(line, ":0\r\n");
    EQ("CLIENT KILL 1.2.3.4:5", "-ERR No such client\r\n");
    r = q(&c, "INFO");
    ck_assert_msg(strstr(r, "redis_mode:standalone") &&
                      strstr(r, "# Replication\r\nrole:master") &&
                      strstr(r, "db0:keys=1,expires=0") &&
                      strstr(r, "used_memory:") && strstr(r, "role:leader"),
                  "%s", r);
}
END_TEST

/* KEYS and SCAN with Redis's glob rules; SCAN's cursor walks everything. */
START_TEST(test_commands_keys_and_scan)
{
    char line[64];
    for (int i = 0; i < 50; i++) {
        snprintf(line, sizeof(line), "SET user:%02d x", i);
        EQ(line, "+OK\r\n");
    }
    EQ("SET other x", "+OK\r\n");
    EQ("KEYS user:0?",
       "*10\r\n$7\r\nuser:00\r\n$7\r\nuser:01\r\n$7\r\nuser:02\r\n$7\r\n"
       "user:03\r\n$7\r\nuser:04\r\n$7\r\nuser:05\r\n$7\r\nuser:06\r\n$7\r\n"
       "user:07\r\n$7\r\nuser:08\r\n$7\r\nuser:09\r\n");
    EQ("KEYS oth*", "*1\r\n$5\r\nother\r\n");
    EQ("KEYS user:[1-2][^0-8]", "*2\r\n$7\r\nuser:19\r\n$7\r\nuser:29\r\n");
    EQ("KEYS nomatch*", "*0\r\n");
    /* SCAN until the cursor comes back as 0. */
    char cursor[32] = "0";
    int seen = 0;
    int rounds = 0;
    do {
        snprintf(line, sizeof(line), "SCAN %s MATCH user:* COUNT 7", cursor);
        const char *r = q(&c, line);
        ck_assert_msg(strncmp(r, "*2\r\n$", 5) == 0, "%s", r);
        const char *p = strchr(r + 5, '\n') + 1;
        size_t n = strcspn(p, "\r");
        memcpy(cursor, p, n);
        cursor[n] = '\0';
        p = strchr(p, '\n') + 1;
        ck_assert_int_eq(*p, '*');
        seen += atoi(p + 1);
        rounds++;
    } while (strcmp(cursor, "0") != 0 && rounds < 100);
    ck_assert_int_eq(seen, 50);
    ck_assert_int_ge(rounds, 7);
    EQ("SCAN 0 COUNT 0", "-ERR syntax error\r\n");
    EQ("SCAN 0 COUNT x", "-ERR value is not an integer or out of range\r\n");
    EQ("SCAN abc", "-ERR invalid cursor\r\n");
    EQ("SCAN 0 TYPE hash COUNT 1000", "*2\r\n$1\r\n0\r\n*0\r\n");
    EQ("DBSIZE", ":51\r\n");
}
END_TEST

/* The glob matcher on its own: Redis's stringmatch cases. */
START_TEST(test_commands_glob_matches_like_redis)
{
#define M(p, s) cmd_glob_match(p, strlen(p), s, strlen(s), false)
    ck_assert(M("*", ""));
    ck_assert(M("h?llo", "hello"));
    ck_assert(!M("h?llo", "hllo"));
    ck_assert(M("h*llo", "heeeello"));
    ck_assert(M("h[ae]llo", "hallo"));
    ck_assert(!M("h[ae]llo", "hillo"));
    ck_assert(M("h[^e]llo", "hallo"));
    ck_assert(!M("h[^e]llo", "hello"));
    ck_assert(M("h[a-b]llo", "hbllo"));
    ck_assert(M("h[b-a]llo", "hallo"));
    ck_assert(M("h\\*llo", "h*llo"));
    ck_assert(!M("h\\*llo", "hello"));
    ck_assert(M("a*b*c", "axxbyyc"));
    ck_assert(!M("a*b*c", "axxbyy"));
    ck_assert(M("[\\]]", "]"));
    ck_assert(cmd_glob_match("HE*", 3, "hello", 5, true));
#undef M
}
END_TEST

/* Keys and values with every byte value round-trip. */
START_TEST(test_commands_binary_keys_and_values_round_trip)
{
    char key[256], val[256];
    for (int i = 0; i < 256; i++) {
        key[i] = (char)(255 - i);
        val[i] = (char)i;
    }
    const char *set[] = {"SET", key, val};
    size_t setl[] = {3, 256, 256};
    ck_assert_str_eq(qv(&c, 3, set, setl), "+OK\r\n");
    const char *get[] = {"GET", key};
    size_t getl[] = {3, 256};
    struct dbuf want = {0};
    dbuf_put(&want, "$256\r\n", 6);
    dbuf_put(&want, val, 256);
    dbuf_put(&want, "\r\n", 2);
    const char *r = qv(&c, 2, get, getl);
    ck_assert_int_eq(memcmp(r, want.data, want.len), 0);
    const char *keys[] = {"KEYS", "*"};
    r = qv(&c, 2, keys, NULL);
    ck_assert_int_eq(memcmp(r, "*1\r\n$256\r\n", 10), 0);
    ck_assert_int_eq(memcmp(r + 10, key, 256), 0);
    dbuf_free(&want);
}
END_TEST

/* Keys and values beyond kv's limits get an error, not a crash. */
START_TEST(test_commands_oversized_keys_and_values_are_refused)
{
    static char big[KV_VALUE_BYTES_MAX + 1];
    char key[KV_KEY_BYTES_MAX + 1];
    memset(big, 'v', sizeof(big));
    memset(key, 'k', sizeof(key));
    const char *a[] = {"SET", key, "v"};
    size_t al[] = {3, sizeof(key), 1};
    ck_assert_str_eq(qv(&c, 3, a, al),
                     "-ERR key too long: ballot's limit is 511 bytes\r\n");
    const char *b[] = {"SET", "k", big};
    size_t bl[] = {3, 1, sizeof(big)};
    ck_assert_str_eq(qv(&c, 3, b, bl),
                     "-ERR value too large: ballot's limit is 1048576 "
                     "bytes\r\n");
    bl[2] = KV_VALUE_BYTES_MAX;
    ck_assert_str_eq(qv(&c, 3, b, bl), "+OK\r\n");
    EQ("APPEND k x",
       "-ERR value too large: ballot's limit is 1048576 bytes\r\n");
    const char *g[] = {"GET", key};
    size_t gl[] = {3, sizeof(key)};
    ck_assert_str_eq(qv(&c, 2, g, gl), "$-1\r\n");
    EQ("SET \"\" v", "+OK\r\n"); /* the inline quote is part of the key */
    const char *e[] = {"SET", "", "v"};
    ck_assert_str_eq(qv(&c, 3, e, NULL),
                     "-ERR empty keys are not supported by ballot\r\n");
    EQ("PING", "+PONG\r\n");
}
END_TEST

/* BRANGE, BMETA and BTXN: the native commands. */
START_TEST(test_commands_native_range_meta_and_txn)
{
    EQ("MSET a 1 b 2 c 3 d 4", "+OK\r\n");
    const char *r = q(&c, "BRANGE b d");
    ck_assert_msg(strstr(r,
                         ":2\r\n:0\r\n*4\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc"
                         "\r\n$1\r\n3\r\n") != NULL,
                  "%s", r);
    const char *args[] = {"BRANGE", "a",        "",       "LIMIT",
                          "2",      "KEYSONLY", "REVERSE"};
    r = qv(&c, 7, args, NULL);
    ck_assert_msg(strstr(r, ":4\r\n:1\r\n*2\r\n$1\r\nd\r\n$1\r\nc\r\n") != NULL,
                  "%s", r);
    const char *pfx[] = {"BRANGE", "", "", "PREFIX", "COUNTONLY"};
    r = qv(&c, 5, pfx, NULL);
    ck_assert_msg(strstr(r, ":4\r\n:0\r\n*0\r\n") != NULL, "%s", r);
    r = q(&c, "BMETA a");
    ck_assert_msg(strstr(r, "$7\r\nversion\r\n:1\r\n") != NULL, "%s", r);
    EQ("BMETA nope", "$-1\r\n");
    /* Compare-and-swap on the value, then the else branch. */
    r = q(&c, "BTXN 1 VALUE a = 1 2 PUT a 10 GET a 1 GET a");
    ck_assert_msg(strncmp(r, "*3\r\n:1\r\n:", 9) == 0, "%s", r);
    ck_assert_msg(strstr(r, "*2\r\n+OK\r\n$2\r\n10\r\n") != NULL, "%s", r);
    r = q(&c, "BTXN 1 VALUE a = 1 1 PUT a 11 1 GET a");
    ck_assert_msg(strncmp(r, "*3\r\n:0\r\n", 8) == 0, "%s", r);
    ck_assert_msg(strstr(r, "*1\r\n$2\r\n10\r\n") != NULL, "%s", r);
    r = q(&c, "BTXN 1 EXISTS zz = 0 1 DELRANGE b d 0");
    ck_assert_msg(strstr(r, "*1\r\n:2\r\n") != NULL, "%s", r);
    EQ("EXISTS b c d", ":1\r\n");
    EQ("BTXN 1 EXISTS zz < 0 0 0",
       "-ERR BTXN: EXISTS takes = or != and 0 or 1\r\n");
    EQ("BTXN 0 1 FROB a 0", "-ERR BTXN: unknown operation 'FROB'\r\n");
    EQ("BTXN 0 1 PUT a", "-ERR BTXN: missing operation arguments\r\n");
    EQ("BTXN 0 0 0 extra",
       "-ERR BTXN: unexpected arguments after the else branch\r\n");
    r = q(&c, "BSTATUS");
    ck_assert_msg(strstr(r, "$4\r\nrole\r\n$6\r\nleader\r\n") != NULL, "%s", r);
    ck_assert_msg(strstr(r, "$8\r\ndb_bytes\r\n:") != NULL, "%s", r);
    EQ("BTRANSFER 2", "+OK\r\n");
    EQ("BTRANSFER x", "-ERR value is not an integer or out of range\r\n");
}
END_TEST

/* MULTI/EXEC: queueing, replies, read-modify-write inside, errors. */
START_TEST(test_commands_multi_exec)
{
    EQ("EXEC", "-ERR EXEC without MULTI\r\n");
    EQ("DISCARD", "-ERR DISCARD without MULTI\r\n");
    EQ("SET n 5", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("MULTI", "-ERR MULTI calls can not be nested\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    EQ("SET k v", "+QUEUED\r\n");
    EQ("GET k", "+QUEUED\r\n");
    EQ("DEL k nope", "+QUEUED\r\n");
    EQ("GET s", "+QUEUED\r\n");
    EQ("PING", "+QUEUED\r\n");
    EQ("EXEC", "*7\r\n:6\r\n:7\r\n+OK\r\n$1\r\nv\r\n:1\r\n$-1\r\n+PONG\r\n");
    EQ("GET n", "$1\r\n7\r\n");
    /* A runtime error fails only its command. */
    EQ("SET s abc", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("INCR s", "+QUEUED\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    EQ("EXEC", "*2\r\n-ERR value is not an integer or out of range\r\n:8\r\n");
    /* A queueing error aborts the whole transaction. */
    EQ("MULTI", "+OK\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    EQ("NOSUCH",
       "-ERR unknown command 'NOSUCH', with args beginning with: "
       "\r\n");
    EQ("KEYS *", "-ERR Command not allowed inside a transaction\r\n");
    EQ("EXEC",
       "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EQ("GET n", "$1\r\n8\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    EQ("DISCARD", "+OK\r\n");
    EQ("GET n", "$1\r\n8\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("EXEC", "*0\r\n");
}
END_TEST

/* WATCH: EXEC runs if the key did not change and returns a null array if
 * another connection changed it. */
START_TEST(test_commands_watch_aborts_when_another_client_writes)
{
    struct cli o;
    cli_open(&o, h.port);
    EQ("SET w 1", "+OK\r\n");
    EQ("WATCH w", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("WATCH w", "-ERR WATCH inside MULTI is not allowed\r\n");
    EQ("SET w 2", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n+OK\r\n");
    /* Again, with a write from another client in between. */
    EQ("WATCH w nope", "+OK\r\n");
    ck_assert_str_eq(q(&o, "SET w 3"), "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET w 4", "+QUEUED\r\n");
    EQ("EXEC", "*-1\r\n");
    EQ("GET w", "$1\r\n3\r\n");
    /* EXEC unwatched everything: this one runs. */
    EQ("MULTI", "+OK\r\n");
    EQ("SET w 5", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n+OK\r\n");
    /* A watched missing key created by someone else aborts too. */
    EQ("WATCH nope", "+OK\r\n");
    ck_assert_str_eq(q(&o, "SET nope x"), "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("GET w", "+QUEUED\r\n");
    EQ("EXEC", "*-1\r\n");
    /* UNWATCH forgets. */
    EQ("WATCH w", "+OK\r\n");
    ck_assert_str_eq(q(&o, "SET w 6"), "+OK\r\n");
    EQ("UNWATCH", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("GET w", "+QUEUED\r\n");
    EQ("EXEC", "*1\r\n$1\r\n6\r\n");
    cli_close(&o);
}
END_TEST

/* Makes the next proposal of the server lose the race to a put of @key =
 * @val from elsewhere (the fake node applies the put just before it). */
static void lose_race_to_put(const char *key, const char *val)
{
    struct kv_cmd cmd;
    memset(&cmd, 0, sizeof(cmd));
    cmd.type = KV_CMD_PUT;
    cmd.op.type = KV_OP_PUT;
    cmd.op.key = (const uint8_t *)key;
    cmd.op.key_len = (uint32_t)strlen(key);
    cmd.op.value = (const uint8_t *)val;
    cmd.op.value_len = (uint32_t)strlen(val);
    uint8_t buf[256];
    size_t len = 0;
    ck_assert_int_eq(kv_cmd_encode(&cmd, buf, sizeof(buf), &len), 0);
    fake_bnode_interpose(h.node, buf, len);
}

/* A watched key written by someone else after EXEC loaded it, but before
 * EXEC's write entered the log, aborts EXEC: the server's internal retry
 * of the guarded write keeps the watched keys in its guard (it used to
 * drop them and commit blindly). Blind writes, read-modify-writes, and a
 * watched key the transaction does not touch. */
START_TEST(test_commands_watch_holds_when_exec_write_loses_a_race)
{
    EQ("SET w 0", "+OK\r\n");
    EQ("WATCH w", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET w mine", "+QUEUED\r\n");
    lose_race_to_put("w", "theirs");
    EQ("EXEC", "*-1\r\n");
    EQ("GET w", "$6\r\ntheirs\r\n");

    /* The same with a read-modify-write in the transaction. */
    EQ("SET n 5", "+OK\r\n");
    EQ("WATCH n", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    lose_race_to_put("n", "100");
    EQ("EXEC", "*-1\r\n");
    EQ("GET n", "$3\r\n100\r\n");

    /* A watched key the transaction never touches. */
    EQ("WATCH guard", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET other x", "+QUEUED\r\n");
    lose_race_to_put("guard", "moved");
    EQ("EXEC", "*-1\r\n");
    EQ("GET other", "$-1\r\n");

    /* A race on a key that is not watched is retried, as before: INCR
     * applies on top of the other write. */
    EQ("WATCH guard", "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("INCR n", "+QUEUED\r\n");
    lose_race_to_put("n", "200");
    EQ("EXEC", "*1\r\n:201\r\n");

    /* And a plain read-modify-write, outside MULTI. */
    lose_race_to_put("n", "300");
    EQ("INCR n", ":301\r\n");
}
END_TEST

/* WATCH of many keys, each named several times, costs one hashed lookup
 * per key (it used to compare each key with every key watched before):
 * 30,000 distinct keys in five WATCH calls with repeats, then a change of
 * the last one aborts EXEC and an unchanged set lets it run. */
START_TEST(test_commands_watch_of_many_keys_checks_each_once)
{
    /* Just under CMD_VIEW_KEYS_MAX: quadratic checks would still take
     * seconds. */
    enum { N = 30000, CALLS = 5 };
    struct cli o;
    cli_open(&o, h.port);
    EQ("SET wk:29999 a", "+OK\r\n");
    for (int round = 0; round < 2; round++) {
        for (int call = 0; call < CALLS; call++) {
            /* Each call names its share of the keys, and every key of the
             * previous call again. */
            int from = call == 0 ? 0 : (call - 1) * (N / CALLS);
            int to = (call + 1) * (N / CALLS);
            struct dbuf req = {0};
            char word[64];
            int n = snprintf(word, sizeof(word), "*%d\r\n$5\r\nWATCH\r\n",
                             to - from + 1);
            dbuf_put(&req, word, (size_t)n);
            for (int i = from; i < to; i++) {
                char key[32];
                int kl = snprintf(key, sizeof(key), "wk:%d", i);
                n = snprintf(word, sizeof(word), "$%d\r\n%s\r\n", kl, key);
                dbuf_put(&req, word, (size_t)n);
            }
            cli_send(&c, req.data, req.len);
            dbuf_free(&req);
            struct dbuf rep = {0};
            ck_assert_int_eq(cli_reply(&c, &rep), 0);
            dbuf_put(&rep, "", 1);
            ck_assert_str_eq(rep.data, "+OK\r\n");
            dbuf_free(&rep);
        }
        if (round == 0) {
            ck_assert_str_eq(q(&o, "SET wk:29999 b"), "+OK\r\n");
        }
        EQ("MULTI", "+OK\r\n");
        EQ("GET wk:29999", "+QUEUED\r\n");
        EQ("EXEC", round == 0 ? "*-1\r\n" : "*1\r\n$1\r\nb\r\n");
    }
    cli_close(&o);
}
END_TEST

/* RESP3 types: nulls, null arrays, maps and verbatim text. */
START_TEST(test_commands_resp3_reply_types)
{
    struct cli o;
    cli_open(&o, h.port);
    q(&c, "HELLO 3");
    EQ("MGET a b", "*2\r\n_\r\n_\r\n");
    EQ("SET a 1", "+OK\r\n");
    const char *r = q(&c, "BMETA a");
    ck_assert_msg(strncmp(r, "%4\r\n$15\r\ncreate_revision\r\n", 26) == 0, "%s",
                  r);
    r = q(&c, "INFO server");
    ck_assert_msg(strncmp(r, "=", 1) == 0 && strstr(r, "txt:# Server"), "%s",
                  r);
    EQ("WATCH a", "+OK\r\n");
    ck_assert_str_eq(q(&o, "SET a 2"), "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("GET a", "+QUEUED\r\n");
    EQ("EXEC", "_\r\n");
    EQ("COMMAND DOCS", "%0\r\n");
    EQ("CLIENT GETNAME", "_\r\n");
    EQ("RESET", "+RESET\r\n");
    EQ("GET nope", "$-1\r\n");
    cli_close(&o);
}
END_TEST

/* Commands over kv's transaction limits fail whole, with a clear error. */
START_TEST(test_commands_transaction_limits)
{
    struct dbuf line = {0};
    char word[32];
    dbuf_put(&line, "DEL", 3);
    for (int i = 0; i < 129; i++) {
        int n = snprintf(word, sizeof(word), " k%d", i);
        dbuf_put(&line, word, (size_t)n);
    }
    EQ(line.data, "-ERR a write may change at most 128 keys in ballot\r\n");
    line.len = 0;
    dbuf_put(&line, "MSETNX", 6);
    for (int i = 0; i < 65; i++) {
        int n = snprintf(word, sizeof(word), " k%d v", i);
        dbuf_put(&line, word, (size_t)n);
    }
    EQ(line.data, "-ERR a write may read at most 64 keys in ballot\r\n");
    EQ("EXISTS k0", ":0\r\n");
    line.len = 0;
    dbuf_put(&line, "MSET", 4);
    for (int i = 0; i < 128; i++) {
        int n = snprintf(word, sizeof(word), " k%d v", i);
        dbuf_put(&line, word, (size_t)n);
    }
    EQ(line.data, "+OK\r\n");
    EQ("DBSIZE", ":128\r\n");
    const char *bad[] = {"CLIENT", "SETNAME", "a b"};
    ck_assert_str_eq(qv(&c, 3, bad, NULL),
                     "-ERR Client names cannot contain spaces, newlines or "
                     "special characters.\r\n");
    dbuf_free(&line);
}
END_TEST

/* BREQ: a write with a request id is applied at most once; a retry of an
 * applied one gets the original reply, even after other writes changed
 * the key; an older seq is refused; reads just run. */
START_TEST(test_commands_breq_applies_at_most_once)
{
    EQ("BREQ 7 1 INCR c", ":1\r\n");
    EQ("BREQ 7 1 INCR c", ":1\r\n");
    EQ("GET c", "$1\r\n1\r\n");
    EQ("INCR c", ":2\r\n");
    EQ("BREQ 7 1 INCR c", ":1\r\n");
    EQ("GET c", "$1\r\n2\r\n");
    EQ("BREQ 7 2 INCRBY c 10", ":12\r\n");
    EQ("BREQ 7 1 INCR c",
       "-ERR request id already superseded: client 7 seq 1 is below its "
       "last applied seq 2\r\n");
    EQ("BREQ 7 2 INCRBY c 10", ":12\r\n");
    EQ("GET c", "$2\r\n12\r\n");
    /* SET and GETSET replay their reply, GETSET the old value it read. */
    EQ("BREQ 8 1 SET k v1", "+OK\r\n");
    EQ("BREQ 8 1 SET k other", "+OK\r\n");
    EQ("GET k", "$2\r\nv1\r\n");
    EQ("BREQ 8 2 GETSET k v2", "$2\r\nv1\r\n");
    EQ("SET k v3", "+OK\r\n");
    EQ("BREQ 8 2 GETSET k v2", "$2\r\nv1\r\n");
    EQ("GET k", "$2\r\nv3\r\n");
    EQ("BREQ 8 3 APPEND k x", ":3\r\n");
    EQ("BREQ 8 3 APPEND k x", ":3\r\n");
    EQ("BREQ 8 4 DEL k", ":1\r\n");
    EQ("BREQ 8 4 DEL k", ":1\r\n");
    /* A write that ends up writing nothing still records its reply. */
    EQ("BREQ 8 6 DEL none", ":0\r\n");
    EQ("SET none x", "+OK\r\n");
    EQ("BREQ 8 6 DEL none", ":0\r\n");
    EQ("GET none", "$1\r\nx\r\n");
    EQ("BREQ 8 7 MSET a 1 b 2", "+OK\r\n");
    EQ("BREQ 8 7 MSET a 9 b 9", "+OK\r\n");
    EQ("MGET a b", "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    /* Reads run; another connection retrying the same id gets the same
     * reply. */
    EQ("BREQ 9 1 GET a", "$1\r\n1\r\n");
    struct cli c2;
    cli_open(&c2, h.port);
    ck_assert_str_eq(q(&c2, "BREQ 7 2 INCRBY c 10"), ":12\r\n");
    cli_close(&c2);
    /* Bad ids and commands BREQ cannot carry. */
    EQ("BREQ 0 1 SET k v",
       "-ERR BREQ client-id must be an integer in 1..2^63\r\n");
    EQ("BREQ 9223372036854775809 1 SET k v",
       "-ERR BREQ client-id must be an integer in 1..2^63\r\n");
    EQ("BREQ 9223372036854775808 1 SET k v", "+OK\r\n");
    EQ("BREQ 1 0 SET k v", "-ERR BREQ seq must be a positive integer\r\n");
    EQ("BREQ 1 x SET k v", "-ERR BREQ seq must be a positive integer\r\n");
    EQ("BREQ 1 1 NOPE k", "-ERR unknown command 'NOPE' in BREQ\r\n");
    EQ("BREQ 1 1 SET k",
       "-ERR wrong number of arguments for 'set' command\r\n");
    EQ("BREQ 1 1 BREQ 1 1 SET k v", "-ERR 'breq' cannot run inside BREQ\r\n");
    EQ("BREQ 1 1 MULTI", "-ERR 'multi' cannot run inside BREQ\r\n");
    EQ("BREQ 1 1 EXEC", "-ERR EXEC without MULTI\r\n");
    EQ("BREQ 1 1 WATCH k", "-ERR 'watch' cannot run inside BREQ\r\n");
    EQ("BREQ 1 1", "-ERR wrong number of arguments for 'breq' command\r\n");
}
END_TEST

/* The retry rule: a write whose outcome is unknown (applied, but the
 * reply was lost) is resent with the same request id and applied once. */
START_TEST(test_commands_breq_retry_after_unknown_outcome)
{
    fake_bnode_set_mode(h.node, FAKE_UNKNOWN);
    EQ("BREQ 7 1 INCR c",
       "-UNKNOWN outcome unknown: leadership changed before the write was "
       "confirmed; it may or may not have been applied\r\n");
    fake_bnode_set_mode(h.node, FAKE_OK);
    EQ("BREQ 7 1 INCR c", ":1\r\n");
    EQ("GET c", "$1\r\n1\r\n");
    EQ("BREQ 7 2 INCR c", ":2\r\n");
}
END_TEST

/* BREQ BTXN: the reply depends on the branch taken at apply time, so the
 * store keeps the result; a retry gets the first application's branch,
 * revision and reads, even after the key changed so that a re-run would
 * take the other branch. */
START_TEST(test_commands_breq_btxn_returns_the_first_outcome)
{
    const char *txn = "BREQ 10 1 BTXN 1 EXISTS k = 1 1 GET k 1 PUT k first";
    char *first = strdup(q(&c, txn));
    ck_assert_msg(strncmp(first, "*3\r\n:0\r\n:", 9) == 0, "%s", first);
    ck_assert_msg(strstr(first, "*1\r\n+OK\r\n") != NULL, "%s", first);
    EQ(txn, first);
    EQ("GET k", "$5\r\nfirst\r\n");
    EQ("SET k changed", "+OK\r\n");
    EQ(txn, first);
    EQ("GET k", "$7\r\nchanged\r\n");

    const char *read = "BREQ 10 2 BTXN 1 EXISTS k = 1 1 GET k 0";
    char *second = strdup(q(&c, read));
    ck_assert_msg(strncmp(second, "*3\r\n:1\r\n:", 9) == 0, "%s", second);
    ck_assert_msg(strstr(second, "*1\r\n$7\r\nchanged\r\n") != NULL, "%s",
                  second);
    EQ("DEL k", ":1\r\n");
    EQ(read, second); /* the value it read then, not the missing key now */
    EQ(txn,
       "-ERR request id already superseded: client 10 seq 1 is below "
       "its last applied seq 2\r\n");

    /* An id reused by another kind of command: the original reply if it
     * has one, otherwise a clear error; neither runs again. */
    EQ("BREQ 11 1 SET x y", "+OK\r\n");
    EQ("BREQ 11 1 BTXN 0 1 PUT x z 0", "+OK\r\n");
    char *put = strdup(q(&c, "BREQ 12 1 BTXN 0 1 PUT x w 0"));
    ck_assert_msg(strncmp(put, "*3\r\n:1\r\n:", 9) == 0, "%s", put);
    EQ("BREQ 12 1 BTXN 0 1 PUT x w 0", put);
    free(put);
    const char *r = q(&c, "BREQ 12 1 SET x v");
    ck_assert_msg(
        strncmp(r, "-ERR request id already applied at revision ", 44) == 0 &&
            strstr(r, "by a different command") != NULL,
        "%s", r);
    EQ("GET x", "$1\r\nw\r\n");

    /* Unknown outcome, then the retry: applied once. */
    fake_bnode_set_mode(h.node, FAKE_UNKNOWN);
    r = q(&c, "BREQ 13 1 BTXN 0 1 PUT n 1 0");
    ck_assert_msg(strncmp(r, "-UNKNOWN ", 9) == 0, "%s", r);
    fake_bnode_set_mode(h.node, FAKE_OK);
    r = q(&c, "BREQ 13 1 BTXN 1 EXISTS n = 0 1 PUT n 2 0");
    ck_assert_msg(strncmp(r, "*3\r\n:1\r\n:", 9) == 0, "%s", r);
    EQ("GET n", "$1\r\n1\r\n");
    free(first);
    free(second);
}
END_TEST

/* BREQ EXEC: MULTI ... BREQ id seq EXEC applies the queued commands at
 * most once; a retry of the whole block gets the first EXEC's replies. A
 * WATCH abort applies nothing and consumes nothing. */
START_TEST(test_commands_breq_exec_applies_at_most_once)
{
    EQ("MULTI", "+OK\r\n");
    EQ("INCR e", "+QUEUED\r\n");
    EQ("INCRBY e 10", "+QUEUED\r\n");
    EQ("BREQ 20 1 EXEC", "*2\r\n:1\r\n:11\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("INCR e", "+QUEUED\r\n");
    EQ("INCRBY e 10", "+QUEUED\r\n");
    EQ("BREQ 20 1 EXEC", "*2\r\n:1\r\n:11\r\n");
    EQ("GET e", "$2\r\n11\r\n");

    /* Inside MULTI, BREQ wraps only EXEC. */
    EQ("MULTI", "+OK\r\n");
    EQ("BREQ 20 2 INCR e", "-ERR Command not allowed inside a transaction\r\n");
    EQ("EXEC",
       "-EXECABORT Transaction discarded because of previous errors.\r\n");

    /* A watched key changed: nil, nothing applied, the id still free. */
    struct cli c2;
    cli_open(&c2, h.port);
    EQ("WATCH w", "+OK\r\n");
    ck_assert_str_eq(q(&c2, "SET w theirs"), "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET w mine", "+QUEUED\r\n");
    EQ("BREQ 20 2 EXEC", "*-1\r\n");
    EQ("GET w", "$6\r\ntheirs\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET w mine", "+QUEUED\r\n");
    EQ("BREQ 20 2 EXEC", "*1\r\n+OK\r\n");
    ck_assert_str_eq(q(&c2, "SET w theirs"), "+OK\r\n");
    EQ("MULTI", "+OK\r\n");
    EQ("SET w mine", "+QUEUED\r\n");
    EQ("BREQ 20 2 EXEC", "*1\r\n+OK\r\n");
    EQ("GET w", "$6\r\ntheirs\r\n");
    cli_close(&c2);

    /* Unknown outcome of an EXEC, then the retry of the block. */
    fake_bnode_set_mode(h.node, FAKE_UNKNOWN);
    EQ("MULTI", "+OK\r\n");
    EQ("INCR u", "+QUEUED\r\n");
    const char *r = q(&c, "BREQ 21 1 EXEC");
    ck_assert_msg(strncmp(r, "-UNKNOWN ", 9) == 0, "%s", r);
    fake_bnode_set_mode(h.node, FAKE_OK);
    EQ("MULTI", "+OK\r\n");
    EQ("INCR u", "+QUEUED\r\n");
    EQ("BREQ 21 1 EXEC", "*1\r\n:1\r\n");
    EQ("GET u", "$1\r\n1\r\n");
}
END_TEST

static Suite *commands_suite(void)
{
    Suite *s = suite_create("commands");
    TCase *tc = tcase_create("commands");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_commands_ping_and_echo);
    tcase_add_test(tc, test_commands_unknown_and_arity_errors_match_redis);
    tcase_add_test(tc, test_commands_hello_switches_resp_version);
    tcase_add_test(tc, test_commands_bmember_refuses_host_names);
    tcase_add_test(tc, test_commands_requests_touch_a_bounded_number_of_keys);
    tcase_add_test(tc, test_commands_connection_and_server_commands);
    tcase_add_test(tc, test_commands_strings);
    tcase_add_test(tc, test_commands_set_options);
    tcase_add_test(tc, test_commands_incr_family);
    tcase_add_test(
        tc, test_commands_read_modify_writes_match_inside_and_outside_multi);
    tcase_add_test(tc, test_commands_breq_read_modify_writes_apply_once);
    tcase_add_test(tc, test_commands_key_commands_like_redis);
    tcase_add_test(tc, test_commands_server_commands_for_tools);
    tcase_add_test(tc, test_commands_keys_and_scan);
    tcase_add_test(tc, test_commands_glob_matches_like_redis);
    tcase_add_test(tc, test_commands_binary_keys_and_values_round_trip);
    tcase_add_test(tc, test_commands_oversized_keys_and_values_are_refused);
    tcase_add_test(tc, test_commands_native_range_meta_and_txn);
    tcase_add_test(tc, test_commands_multi_exec);
    tcase_add_test(tc, test_commands_watch_aborts_when_another_client_writes);
    tcase_add_test(tc, test_commands_watch_holds_when_exec_write_loses_a_race);
    tcase_add_test(tc, test_commands_watch_of_many_keys_checks_each_once);
    tcase_add_test(tc, test_commands_resp3_reply_types);
    tcase_add_test(tc, test_commands_transaction_limits);
    tcase_add_test(tc, test_commands_breq_applies_at_most_once);
    tcase_add_test(tc, test_commands_breq_retry_after_unknown_outcome);
    tcase_add_test(tc, test_commands_breq_btxn_returns_the_first_outcome);
    tcase_add_test(tc, test_commands_breq_exec_applies_at_most_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(commands_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}