/*
 * test_passwd.c - the client password's stored hash (net/server/passwd.c):
 * salted, slow, verified in constant time, and parsed strictly.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passwd.h"

/* A hash verifies its own password only; two hashes of one password
 * differ (the salt), and both verify it. */
START_TEST(test_passwd_verifies_its_password_only)
{
    char a[PASSWD_HASH_MAX], b[PASSWD_HASH_MAX];
    ck_assert_int_eq(passwd_hash("hunter2", 7, PASSWD_ITERATIONS_MIN, a), 0);
    ck_assert_int_eq(passwd_hash("hunter2", 7, PASSWD_ITERATIONS_MIN, b), 0);
    ck_assert_str_ne(a, b);
    ck_assert(passwd_valid(a));
    ck_assert(passwd_verify(a, "hunter2", 7));
    ck_assert(passwd_verify(b, "hunter2", 7));
    ck_assert(!passwd_verify(a, "hunter3", 7));
    ck_assert(!passwd_verify(a, "hunter2", 6));
    ck_assert(!passwd_verify(a, "", 0));
    ck_assert_ptr_null(strstr(a, "hunter2"));
    ck_assert_int_eq(strncmp(a, "pbkdf2-sha256$10000$", 20), 0);
}
END_TEST

/* Malformed stored hashes, and iteration counts outside the bounds, are
 * refused: a file cannot make a check free or endless. */
START_TEST(test_passwd_refuses_malformed_hashes)
{
    char h[PASSWD_HASH_MAX];
    ck_assert_int_eq(passwd_hash("pw", 2, PASSWD_ITERATIONS_MIN, h), 0);
    char bad[PASSWD_HASH_MAX + 8];
    const char *cases[] = {
        "",
        "plain-password",
        "pbkdf2-sha256$",
        "pbkdf2-sha256$100$00$00",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(!passwd_valid(cases[i]), "%s", cases[i]);
        ck_assert(!passwd_verify(cases[i], "pw", 2));
    }
    /* Too few and too many iterations. */
    strcpy(bad, h);
    memcpy(bad + 14, "09999", 5);
    ck_assert(!passwd_valid(bad));
    snprintf(bad, sizeof(bad), "pbkdf2-sha256$10000001%s", h + 19);
    ck_assert(!passwd_valid(bad));
    /* A non-hex digit, and a truncated hash. */
    strcpy(bad, h);
    bad[strlen(bad) - 1] = 'g';
    ck_assert(!passwd_valid(bad));
    strcpy(bad, h);
    bad[strlen(bad) - 2] = '\0';
    ck_assert(!passwd_valid(bad));
    ck_assert_int_eq(passwd_hash("pw", 2, PASSWD_ITERATIONS_MIN - 1, h), -1);
    char big[PASSWD_BYTES_MAX + 2];
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(passwd_hash(big, sizeof(big), PASSWD_ITERATIONS_MIN, h),
                     -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("passwd");
    TCase *tc = tcase_create("passwd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_passwd_verifies_its_password_only);
    tcase_add_test(tc, test_passwd_refuses_malformed_hashes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
