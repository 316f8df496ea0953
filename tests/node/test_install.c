/*
 * test_install.c - a follower receiving a snapshot from the leader, with
 * three real nodes (bnode.c, the transport on loopback, WAL and LMDB in a
 * temporary directory) on one libuv loop in this process. White-box: the
 * tests read the driver's state (bnode_internal.h) to stage the moments
 * they check.
 *
 * - An install that must wait for a worker still copying the store waits
 *   without blocking the loop: timers, peers and clients go on.
 * - A snapshot that does not verify is refused (the node does not halt)
 *   and the leader's next snapshot is installed.
 * - A stall of the loop is measured.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "bnode_internal.h"
#include "datadir.h"

#define N_NODES 3
#define WAIT_MS 30000

static struct
{
    uv_loop_t loop;
    char root[256];
    int port_base;
    struct bnode *nodes[N_NODES + 1]; /* by id; NULL when stopped */
    int stopped;                      /* stop callbacks run */
    int acked, failed;                /* write callbacks */
    uint64_t next_key;
    uv_timer_t wake;
    uint64_t wakes; /* wake timer callbacks: the loop is not blocked */
    uv_timer_t blocker;
} t;

static void on_wake(uv_timer_t *h)
{
    (void)h;
    t.wakes++;
}

static void start_node(raft_id id)
{
    struct bnode_options o;
    char dir[300], err[512] = "";
    bnode_options_default(&o);
    o.insecure_peers = true; /* loopback nodes of this test alone */
    o.id = id;
    snprintf(dir, sizeof(dir), "%s/n%llu", t.root, (unsigned long long)id);
    o.data_dir = dir;
    o.bootstrap = true;
    o.snapshot_every = 50;
    o.snapshot_trailing = 10;
    o.checkpoint_every = 25;
    for (raft_id i = 1; i <= N_NODES; i++) {
        struct bnode_member *m = &o.members[o.n_members++];
        m->id = i;
        snprintf(m->host, sizeof(m->host), "127.0.0.1");
        m->client_port = t.port_base + (int)i * 2;
        m->peer_port = t.port_base + (int)i * 2 + 1;
    }
    ck_assert_msg(bnode_start(&t.loop, &o, &t.nodes[id], err, sizeof(err)) == 0,
                  "bnode_start %llu: %s", (unsigned long long)id, err);
}

/* Runs the loop until @pred holds (fails the test after WAIT_MS). */
static void run_until(bool (*pred)(void *), void *arg, const char *what)
{
    uint64_t start = uv_now(&t.loop);
    while (!pred(arg)) {
        ck_assert_msg(uv_now(&t.loop) - start < WAIT_MS, "timed out: %s", what);
        uv_run(&t.loop, UV_RUN_ONCE);
    }
}

static void run_for(uint64_t ms)
{
    uint64_t start = uv_now(&t.loop);
    while (uv_now(&t.loop) - start < ms) {
        uv_run(&t.loop, UV_RUN_ONCE);
    }
}

static raft_id leader(void)
{
    for (raft_id i = 1; i <= N_NODES; i++) {
        struct bnode_status st;
        if (t.nodes[i] == NULL) {
            continue;
        }
        bnode_status(t.nodes[i], &st);
        if (st.state == RAFT_LEADER) {
            return i;
        }
    }
    return 0;
}

static bool has_leader(void *arg)
{
    (void)arg;
    return leader() != 0;
}

static void on_write(void *arg, int status, const struct kv_entry_result *r)
{
    (void)arg;
    (void)r;
    if (status == 0) {
        t.acked++;
    } else {
        t.failed++;
    }
}

static bool acked_at_least(void *arg)
{
    return t.acked >= *(int *)arg;
}

/* Writes @n keys through the leader and waits for their acknowledgements. */
static void write_keys(int n)
{
    int want = t.acked + n;
    for (int i = 0; i < n; i++) {
        char key[32], val[64];
        uint8_t buf[256];
        size_t len;
        struct kv_cmd cmd;
        run_until(has_leader, NULL, "a leader");
        snprintf(key, sizeof(key), "key:%06llu",
                 (unsigned long long)t.next_key++);
        snprintf(val, sizeof(val), "value of %s", key);
        memset(&cmd, 0, sizeof(cmd));
        cmd.type = KV_CMD_PUT;
        cmd.op.type = KV_OP_PUT;
        cmd.op.key = (const uint8_t *)key;
        cmd.op.key_len = (uint32_t)strlen(key);
        cmd.op.value = (const uint8_t *)val;
        cmd.op.value_len = (uint32_t)strlen(val);
        ck_assert_int_eq(kv_cmd_encode(&cmd, buf, sizeof(buf), &len), 0);
        ck_assert_int_eq(
            bnode_propose(t.nodes[leader()], buf, len, on_write, NULL), 0);
    }
    run_until(acked_at_least, &want, "acknowledgements");
    ck_assert_int_eq(t.failed, 0);
}

static void on_stopped(void *arg)
{
    (void)arg;
    t.stopped++;
}

static bool stopped_at_least(void *arg)
{
    return t.stopped >= *(int *)arg;
}

static void stop_node(raft_id id)
{
    int want = t.stopped + 1;
    bnode_stop(t.nodes[id], on_stopped, NULL);
    t.nodes[id] = NULL;
    run_until(stopped_at_least, &want, "a node stopping");
}

/* The leader's log no longer holds what @id lacks: it needs a snapshot. */
static bool compacted_past(void *arg)
{
    raft_index last = *(raft_index *)arg;
    struct bnode_status st;
    raft_id l = leader();
    if (l == 0) {
        return false;
    }
    bnode_status(t.nodes[l], &st);
    return st.first_index > last + 1;
}

/* Follower @id has applied everything the leader committed. */
static bool caught_up(void *arg)
{
    raft_id id = *(raft_id *)arg;
    struct bnode_status a, b;
    raft_id l = leader();
    if (l == 0 || t.nodes[id] == NULL) {
        return false;
    }
    bnode_status(t.nodes[l], &a);
    bnode_status(t.nodes[id], &b);
    return b.applied >= a.commit && b.revision == a.revision;
}

/* True if nothing listens on 127.0.0.1:@port (bound as libuv does, with
 * SO_REUSEADDR). */
static bool port_free(int port)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Reserves a block of 20 ports the way tests/cluster/harness.c does (a
 * lock file per block, held until the process exits, shared with every
 * test process that uses the scheme), so that concurrent tests never
 * collide. */
static int reserve_ports(void)
{
    int start = (int)(getpid() % 600);
    for (int k = 0; k < 600; k++) {
        int base = 20000 + ((start + k) % 600) * 20;
        char path[64];
        snprintf(path, sizeof(path), "/tmp/ballot-test-ports-%d.lock", base);
        int fd = open(path, O_CREAT | O_RDWR, 0644);
        if (fd < 0) {
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            continue;
        }
        bool free_block = true;
        for (int p = base; p < base + 20 && free_block; p++) {
            free_block = port_free(p);
        }
        if (free_block) {
            return base; /* fd stays open: the lock lives with the process */
        }
        close(fd);
    }
    ck_abort_msg("no free block of 20 ports below 32768");
    return -1;
}

static void setup(void)
{
    memset(&t, 0, sizeof(t));
    snprintf(t.root, sizeof(t.root), "/tmp/ballot-install-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t.root));
    t.port_base = reserve_ports();
    ck_assert_int_eq(uv_loop_init(&t.loop), 0);
    uv_timer_init(&t.loop, &t.wake);
    uv_timer_start(&t.wake, on_wake, 10, 10);
    for (raft_id i = 1; i <= N_NODES; i++) {
        start_node(i);
    }
    run_until(has_leader, NULL, "a leader");
}

static void teardown(void)
{
    int want = t.stopped;
    char cmd[300];
    for (raft_id i = 1; i <= N_NODES; i++) {
        if (t.nodes[i] != NULL) {
            want++;
            bnode_stop(t.nodes[i], on_stopped, NULL);
            t.nodes[i] = NULL;
        }
    }
    run_until(stopped_at_least, &want, "the nodes stopping");
    uv_close((uv_handle_t *)&t.wake, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&t.loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t.root);
    ck_assert_int_eq(system(cmd), 0);
}

/* Stops a follower, writes until the leader's log is compacted past it,
 * and returns the follower's id. */
static raft_id lag_a_follower(void)
{
    raft_id l = leader();
    raft_id f = l % N_NODES + 1;
    struct bnode_status st;
    bnode_status(t.nodes[f], &st);
    raft_index last = st.last_index;
    stop_node(f);
    write_keys(200);
    run_until(compacted_past, &last, "the leader compacting its log");
    return f;
}

static bool install_waits(void *arg)
{
    return t.nodes[*(raft_id *)arg]->install_waiting;
}

/* A follower whose snapshot is complete while a worker still copies its
 * store (an export, or its own snapshot) must not replace the store under
 * the copy, but waits for it without blocking the loop: heartbeats,
 * client requests and timers go on, and the install runs when the copy is
 * done. (The copy is simulated by holding the count of copies.) The
 * heartbeats that arrived while it waited count at their time: the
 * follower does not campaign when it resumes. */
START_TEST(test_install_waits_for_a_copy_without_blocking_the_loop)
{
    raft_id f = lag_a_follower();
    start_node(f);
    atomic_fetch_add(&t.nodes[f]->snap_copies, 1); /* a copy is running */
    run_until(install_waits, &f, "the install waiting for the copy");
    uint64_t wakes = t.wakes;
    write_keys(20); /* the cluster serves meanwhile */
    /* Longer than the longest election timeout (600 ms): the leader's
     * heartbeats and the ticks queue up in the order they come, and the
     * follower must not take the ticks for a silent leader. */
    run_for(1000);
    ck_assert_uint_ge(t.wakes - wakes, 10);
    ck_assert(t.nodes[f]->install_waiting);
    struct bnode_status st;
    bnode_status(t.nodes[f], &st);
    ck_assert_uint_lt(st.revision, 200); /* the store is still the old one */
    /* The copy ends: the install runs and the follower catches up. */
    atomic_fetch_sub(&t.nodes[f]->snap_copies, 1);
    bnode_install_resume(t.nodes[f]);
    ck_assert(!t.nodes[f]->install_waiting);
    run_until(caught_up, &f, "the follower catching up");
    bnode_status(t.nodes[f], &st);
    ck_assert_uint_ge(st.snapshot_index, 50);
    ck_assert_uint_eq(raft_stats_of(t.nodes[f]->raft)->elections_started, 0);
}
END_TEST

/* Flips one payload byte of every snapshot file in node @id's snap/. */
static int corrupt_snapshots(raft_id id)
{
    char dir[400], path[800];
    int n = 0;
    snprintf(dir, sizeof(dir), "%s/n%llu/%s", t.root, (unsigned long long)id,
             DATADIR_SNAP);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".snap") == NULL) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDWR);
        ck_assert_int_ge(fd, 0);
        uint8_t b;
        ck_assert_int_eq(pread(fd, &b, 1, 64 + 100), 1);
        b ^= 0x40;
        ck_assert_int_eq(pwrite(fd, &b, 1, 64 + 100), 1);
        close(fd);
        n++;
    }
    closedir(d);
    return n;
}

static bool refused_one(void *arg)
{
    struct bnode *node = t.nodes[*(raft_id *)arg];
    return node != NULL && node->snaps_refused > 0;
}

/* A snapshot whose bytes do not verify at the follower is refused, not a
 * reason to halt: the follower drops the batch, restarts its core from its
 * disk, and the leader sends a snapshot again; here a newer, intact one,
 * which is installed. */
START_TEST(test_install_refuses_a_corrupt_snapshot_and_takes_the_next)
{
    raft_id f = lag_a_follower();
    raft_id l = leader();
    ck_assert_int_gt(corrupt_snapshots(l), 0);
    start_node(f);
    run_until(refused_one, &f, "the corrupt snapshot being refused");
    /* Still a working member: the next snapshot replaces the bad one. */
    write_keys(100);
    run_until(caught_up, &f, "the follower catching up");
    struct bnode_status st;
    bnode_status(t.nodes[f], &st);
    ck_assert_uint_ge(st.snapshot_index, 200);
}
END_TEST

static void block_loop(uv_timer_t *h)
{
    (void)h;
    uv_sleep(400); /* the loop thread is busy: every node's tick is late */
}

/* A stall of the loop thread is measured by how late the tick timer
 * fires, and reported by bnode_status() (INFO raft, /metrics). */
START_TEST(test_install_a_stalled_loop_is_measured)
{
    struct bnode_status st;
    uv_timer_init(&t.loop, &t.blocker);
    uv_timer_start(&t.blocker, block_loop, 50, 0);
    run_for(200);
    uv_close((uv_handle_t *)&t.blocker, NULL);
    run_for(20);
    for (raft_id i = 1; i <= N_NODES; i++) {
        bnode_status(t.nodes[i], &st);
        ck_assert_uint_ge(st.loop_stall_max_ms, 300);
        ck_assert_uint_ge(st.loop_stalls, 1);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("install");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_install_waits_for_a_copy_without_blocking_the_loop);
    tcase_add_test(tc,
                   test_install_refuses_a_corrupt_snapshot_and_takes_the_next);
    tcase_add_test(tc, test_install_a_stalled_loop_is_measured);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
