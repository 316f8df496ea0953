/*
 * test_operations.c - what operators and their tools rely on, against
 * real ballotd processes: the health endpoints a load balancer or an
 * orchestrator polls.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct cluster cl;

static void teardown(void)
{
    cl_close_all(&cl);
}

/* The body of an HTTP response (after the blank line). */
static const char *body_of(const char *resp)
{
    const char *p = resp != NULL ? strstr(resp, "\r\n\r\n") : NULL;
    return p != NULL ? p + 4 : "";
}

/* Polls @path on node @id until its status line starts with @want;
 * returns true if it did within @timeout_ms. */
static bool wait_http(unsigned id,
                      const char *path,
                      const char *want,
                      int timeout_ms)
{
    uint64_t end = cl_now_ms() + (uint64_t)timeout_ms;
    do {
        char *r = cl_http_get(&cl, id, path);
        bool ok = r != NULL && strncmp(r, want, strlen(want)) == 0;
        free(r);
        if (ok) {
            return true;
        }
        usleep(50000);
    } while (cl_now_ms() < end);
    return false;
}

/* /health, /ready and /status on every node of a healthy cluster; then
 * node 1 is cut off (the other two are killed): /ready turns 503 with the
 * reason while /health stays 200, and both are 200 again once the others
 * are back. */
START_TEST(test_operations_ready_flips_when_a_node_is_cut_off)
{
    cl_start(&cl, 3);
    unsigned leader = cl_wait_leader(&cl, 10000);
    ck_assert_uint_ne(leader, 0);
    for (unsigned id = 1; id <= 3; id++) {
        ck_assert(wait_http(id, "/ready", "HTTP/1.0 200", 10000));
        char *r = cl_http_get(&cl, id, "/health");
        ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 200", 12) == 0, "%s",
                      r);
        free(r);
        r = cl_http_get(&cl, id, "/status");
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_nonnull(strstr(r, "Content-Type: application/json"));
        cJSON *j = cJSON_Parse(body_of(r));
        ck_assert_msg(j != NULL, "not JSON: %s", r);
        ck_assert_int_eq((int)cJSON_GetObjectItem(j, "id")->valuedouble,
                         (int)id);
        ck_assert_int_eq((int)cJSON_GetObjectItem(j, "leader")->valuedouble,
                         (int)leader);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "members")),
                         3);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "role")->valuestring,
                         id == leader ? "leader" : "follower");
        cJSON_Delete(j);
        free(r);
    }
    char *r = cl_http_get(&cl, 1, "/nowhere");
    ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 404", 12) == 0, "%s", r);
    free(r);

    cl_kill(&cl, 2);
    cl_kill(&cl, 3);
    ck_assert_msg(wait_http(1, "/ready", "HTTP/1.0 503", 10000),
                  "node 1 still ready without a quorum");
    r = cl_http_get(&cl, 1, "/ready");
    ck_assert_msg(strstr(body_of(r), "not ready: no leader known"), "%s", r);
    free(r);
    r = cl_http_get(&cl, 1, "/health");
    ck_assert_msg(r != NULL && strncmp(r, "HTTP/1.0 200", 12) == 0, "%s", r);
    free(r);

    cl_start_node(&cl, 2);
    cl_start_node(&cl, 3);
    ck_assert_msg(wait_http(1, "/ready", "HTTP/1.0 200", 15000),
                  "node 1 not ready again after the others came back");
}
END_TEST

int main(int argc, char **argv)
{
    const struct cl_named_test tests[] = {
        {"ready_flips_when_a_node_is_cut_off",
         test_operations_ready_flips_when_a_node_is_cut_off},
    };
    return cl_run_tests("operations", tests, sizeof(tests) / sizeof(tests[0]),
                        120, teardown, argc, argv);
}
