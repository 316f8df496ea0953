/*
 * test_kv_members.c - member addresses recorded through the log: put,
 * replace and forget, no revision change, the table bound, malformed
 * commands, and survival across reopening and snapshot install.
 */
#include <string.h>

#include "kv_test_util.h"

/* A KV_CMD_MEMBER command for @id: records @addr, or forgets it if NULL. */
static uint8_t *member_cmd(uint64_t id, const char *addr, size_t *len)
{
    uint8_t key[8];
    struct kv_cmd c;
    kv_cmd_member(&c, key, id, addr, addr != NULL ? (uint32_t)strlen(addr) : 0);
    return kvt_encode(&c, len);
}

/* Applies one command at @index; returns its entry code. */
static int apply_code(struct kv_store *s,
                      raft_index index,
                      uint8_t *d,
                      size_t len)
{
    struct kv_apply_result res;
    kvt_apply_one(s, index, d, len, &res);
    int code = res.entries[0].code;
    ck_assert_uint_eq(res.entries[0].cmd_type, KV_CMD_MEMBER);
    kv_apply_result_free(&res);
    return code;
}

static void check_members(struct kv_store *s,
                          size_t want_n,
                          const uint64_t *ids,
                          const char *const *addrs)
{
    struct kv_member m[KV_MEMBERS_MAX];
    size_t n = 0;
    ck_assert_int_eq(kv_members(s, m, KV_MEMBERS_MAX, &n), 0);
    ck_assert_uint_eq(n, want_n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(m[i].id, ids[i]);
        ck_assert_uint_eq(m[i].addr_len, strlen(addrs[i]));
        ck_assert(memcmp(m[i].addr, addrs[i], m[i].addr_len) == 0);
    }
}

START_TEST(test_members_put_replace_forget_and_reopen)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    uint8_t *d;
    check_members(s, 0, NULL, NULL);
    d = member_cmd(4, "127.0.0.4:7379:7380", &len);
    ck_assert_int_eq(apply_code(s, 1, d, len), 0);
    d = member_cmd(2, "127.0.0.2:7379:7380", &len);
    ck_assert_int_eq(apply_code(s, 2, d, len), 0);
    d = member_cmd(4, "10.0.0.4:1:2", &len);
    ck_assert_int_eq(apply_code(s, 3, d, len), 0);
    const uint64_t ids[] = {2, 4};
    const char *const addrs[] = {"127.0.0.2:7379:7380", "10.0.0.4:1:2"};
    check_members(s, 2, ids, addrs);
    /* Metadata, not data: the store revision did not move. */
    struct kv_status st;
    ck_assert_int_eq(kv_status(s, &st), 0);
    ck_assert_uint_eq(st.revision, 0);
    ck_assert_uint_eq(st.applied, 3);
    kv_close(s);

    s = kvt_open(dir, 0);
    check_members(s, 2, ids, addrs);
    d = member_cmd(2, NULL, &len);
    ck_assert_int_eq(apply_code(s, 4, d, len), 0);
    d = member_cmd(9, NULL, &len); /* forgetting an unknown id is fine */
    ck_assert_int_eq(apply_code(s, 5, d, len), 0);
    check_members(s, 1, ids + 1, addrs + 1);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* At most KV_MEMBERS_MAX ids: one more is refused (deterministically, as
 * an entry code), while replacing a recorded one still works. */
START_TEST(test_members_table_is_bounded)
{
    char *dir = kvt_mkdtemp();
    struct kv_store *s = kvt_open(dir, 0);
    size_t len;
    raft_index index = 1;
    for (uint64_t id = 1; id <= KV_MEMBERS_MAX; id++) {
        uint8_t *d = member_cmd(id, "h:1:2", &len);
        ck_assert_int_eq(apply_code(s, index++, d, len), 0);
    }
    uint8_t *d = member_cmd(KV_MEMBERS_MAX + 1, "h:1:2", &len);
    ck_assert_int_eq(apply_code(s, index++, d, len), KV_ELIMIT);
    d = member_cmd(1, "other:1:2", &len);
    ck_assert_int_eq(apply_code(s, index++, d, len), 0);
    struct kv_member m[KV_MEMBERS_MAX];
    size_t n = 0;
    ck_assert_int_eq(kv_members(s, m, KV_MEMBERS_MAX, &n), 0);
    ck_assert_uint_eq(n, KV_MEMBERS_MAX);
    ck_assert_uint_eq(m[0].addr_len, 9);
    ck_assert_int_eq(kv_members(s, m, 3, &n), KV_ELIMIT);
    kv_close(s);
    kvt_rmdir(dir);
}
END_TEST

/* Malformed member commands are refused by the encoder and the decoder. */
START_TEST(test_members_malformed_commands_are_refused)
{
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t big[KV_MEMBER_ADDR_MAX + 1];
    memset(big, 'a', sizeof(big));
    struct kv_cmd c;
    memset(&c, 0, sizeof(c));
    c.type = KV_CMD_MEMBER;
    c.op.type = KV_OP_PUT;
    c.op.key = key;
    c.op.key_len = 8;
    c.op.value = big;
    c.op.value_len = KV_MEMBER_ADDR_MAX;
    ck_assert_uint_gt(kv_cmd_encoded_size(&c), 0);
    c.op.value_len = KV_MEMBER_ADDR_MAX + 1;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.op.value_len = 4;
    c.op.key_len = 7; /* ids are 8 bytes */
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.op.key_len = 8;
    c.op.type = KV_OP_DELETE_RANGE;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.op.type = KV_OP_PUT;
    c.op.flags = KV_FLAG_PREV_KV;
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    c.op.flags = 0;
    key[7] = 0; /* id 0 */
    ck_assert_uint_eq(kv_cmd_encoded_size(&c), 0);
    key[7] = 1;
    /* A valid encoding with its id zeroed on the wire. */
    size_t len;
    uint8_t *p = kvt_encode(&c, &len);
    struct kv_cmd d;
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), 0);
    ck_assert_uint_eq(d.type, KV_CMD_MEMBER);
    kv_cmd_free(&d, NULL);
    memset(p + 2 + 2 + 4, 0, 8); /* version, type, op type+flags, key_len */
    ck_assert_int_eq(kv_cmd_decode(p, len, NULL, &d), KV_EBADCMD);
    free(p);
}
END_TEST

/* The table travels in snapshots: an installed store knows the members. */
START_TEST(test_members_survive_snapshot_install)
{
    char *src_dir = kvt_mkdtemp();
    char *dst_dir = kvt_mkdtemp();
    struct kv_store *src = kvt_open(src_dir, 0);
    size_t len;
    uint8_t *d = member_cmd(5, "127.0.0.5:1:2", &len);
    ck_assert_int_eq(apply_code(src, 1, d, len), 0);
    struct kv_store *dst = kvt_open(dst_dir, 0);
    kvt_snapshot_transfer(src, src_dir, dst);
    const uint64_t ids[] = {5};
    const char *const addrs[] = {"127.0.0.5:1:2"};
    check_members(dst, 1, ids, addrs);
    kv_close(src);
    kv_close(dst);
    kvt_rmdir(src_dir);
    kvt_rmdir(dst_dir);
}
END_TEST

Suite *kv_members_suite(void)
{
    Suite *s = suite_create("members");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_members_put_replace_forget_and_reopen);
    tcase_add_test(tc, test_members_table_is_bounded);
    tcase_add_test(tc, test_members_malformed_commands_are_refused);
    tcase_add_test(tc, test_members_survive_snapshot_install);
    suite_add_tcase(s, tc);
    return s;
}
