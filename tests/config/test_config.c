/*
 * test_config.c - ballotd's settings refuse what they cannot honour, each
 * with a message that says what a valid value is: a table of config files
 * and flags, each with the words its error must contain.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* The members of a valid single-node configuration. */
#define GOOD "id = 1\nmember = 1=127.0.0.1:7379:7380\n"

struct bad_config
{
    const char *name;
    const char *file;      /* config file text; NULL: @flag only */
    const char *flag[3];   /* extra command-line arguments */
    const char *want;      /* in the error message; NULL: accepted */
    const char *want_also; /* a second piece of it, or NULL */
};

static char long_comment[400];

static const struct bad_config cases[] = {
    {"a valid file is accepted", GOOD, {NULL}, NULL, NULL},
    /* The comment's tail would have been read as "bootstrap = true". */
    {"an overlong line", long_comment, {NULL}, "line 3: longer than 198", NULL},
    {"a directory as the config file", "", {NULL}, "is a directory", NULL},
    {"an unknown setting",
     GOOD "electon_ticks = 30\n",
     {NULL},
     "electon_ticks = 30: unknown setting",
     NULL},
    {"an absurd number of election ticks",
     GOOD "election_ticks = 100000000\n",
     {NULL},
     "must be an integer from 2 to 100000",
     NULL},
    {"an election timeout of 11 days",
     GOOD "tick_ms = 1000\n",
     {"--election_ticks", "950400", NULL},
     "must be an integer from 2 to 100000",
     NULL},
    {"an election timeout over a minute",
     GOOD "tick_ms = 1000\nelection_ticks = 100\n",
     {NULL},
     "election timeout tick_ms x election_ticks = 100000 ms",
     "at most 60000 ms"},
    {"a tick of zero",
     GOOD,
     {"--tick_ms", "0", NULL},
     "must be an integer from 1 to 1000",
     NULL},
    {"a heartbeat not below the election timeout",
     GOOD "heartbeat_ticks = 30\n",
     {NULL},
     "heartbeat_ticks (30) must be below election_ticks (30)",
     NULL},
    {"a host name as a member address",
     "id = 1\nmember = 1=db1.example.com:7379:7380\n",
     {NULL},
     "'db1.example.com' is a host name",
     "give an address"},
    {"a member without ports",
     "id = 1\nmember = 1=127.0.0.1\n",
     {NULL},
     "give ID=ADDRESS:CLIENT_PORT",
     NULL},
    {"a negative scrub rate",
     GOOD "scrub_bytes_per_sec = -5\n",
     {NULL},
     "scrub_bytes_per_sec = -5: invalid value: must be an integer from 0",
     NULL},
    {"a boolean that is not one",
     GOOD "verify_at_start = maybe\n",
     {NULL},
     "verify_at_start = maybe: invalid value",
     NULL},
    {"a flag with a value out of range",
     GOOD,
     {"--digest_every_ms=999999999999", NULL},
     "must be an integer from 0 to 86400000",
     NULL},
    {"an acknowledgement mode the fallback does not have",
     GOOD "fallback_ack = sync\n",
     {NULL},
     "fallback_ack = sync: invalid value: must be async or semi-sync",
     NULL},
    {"a semi-sync timeout policy the fallback does not have",
     GOOD "fallback_ack_on_timeout = retry\n",
     {NULL},
     "fallback_ack_on_timeout = retry: invalid value: must be fail or async",
     NULL},
    {"more semi-sync replicas than a configuration can hold",
     GOOD,
     {"--fallback_ack_replicas=16", NULL},
     "must be an integer from 1 to 15",
     NULL},
};

/* Runs one case; returns the error message ("" if accepted). */
static void run_case(const struct bad_config *c, char *err, size_t err_len)
{
    char dir[] = "/tmp/ballot-config-XXXXXX";
    char path[64];
    struct ballotd_config cfg;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ballotd.conf", dir);
    if (strcmp(c->name, "a directory as the config file") == 0) {
        ck_assert_int_eq(mkdir(path, 0755), 0);
    } else {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(c->file, f);
        fclose(f);
    }
    char *argv[8] = {"ballotd", "--config", path};
    int argc = 3;
    for (int i = 0; c->flag[i] != NULL; i++) {
        argv[argc++] = (char *)c->flag[i];
    }
    config_default(&cfg);
    err[0] = '\0';
    if (config_from_args(&cfg, argc, argv, err, err_len) == 0 &&
        config_finish(&cfg, err, err_len) == 0) {
        err[0] = '\0';
    }
    if (strcmp(c->name, "a directory as the config file") == 0) {
        rmdir(path);
    } else {
        unlink(path);
    }
    rmdir(dir);
}

/* Every bad config is refused with its own message; the good one is
 * accepted. */
START_TEST(test_config_bad_settings_get_clear_messages)
{
    char err[512];
    /* A long comment whose tail, past inih's line buffer, says
     * "bootstrap = true". */
    char pad[260];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(long_comment, sizeof(long_comment),
             GOOD "# %.*s bootstrap = true\n", 190, pad);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_config *c = &cases[i];
        run_case(c, err, sizeof(err));
        if (c->want == NULL) {
            ck_assert_msg(err[0] == '\0', "%s: refused: %s", c->name, err);
            continue;
        }
        ck_assert_msg(err[0] != '\0', "%s: accepted", c->name);
        ck_assert_msg(strstr(err, c->want) != NULL, "%s: got '%s', want '%s'",
                      c->name, err, c->want);
        ck_assert_msg(c->want_also == NULL || strstr(err, c->want_also),
                      "%s: got '%s', want '%s'", c->name, err, c->want_also);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_config_bad_settings_get_clear_messages);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
