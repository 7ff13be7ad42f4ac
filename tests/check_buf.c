/*
 * NAME
 *	check_buf - tests of the bounded buffer
 * DESCRIPTION
 *	The maximum is a hard limit that leaves the buffer unchanged, the
 *	content survives consuming and growing in any order, and an emptied
 *	buffer holds no memory.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

START_TEST(test_append_and_consume)
{
	struct buf *b = buf_new(1024);

	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(buf_len(b), 0);
	ck_assert_int_eq(buf_append(b, "hello ", 6), 0);
	ck_assert_int_eq(buf_printf(b, "%s %d", "world", 42), 0);
	ck_assert_uint_eq(buf_len(b), 14);
	ck_assert_str_eq(buf_data(b), "hello world 42");
	buf_consume(b, 6);
	ck_assert_str_eq(buf_data(b), "world 42");
	ck_assert_uint_eq(buf_room(b), 1024 - 8);
	buf_consume(b, 100);
	ck_assert_uint_eq(buf_len(b), 0);
	ck_assert_ptr_null(buf_data(b));
	buf_free(b);
}
END_TEST

START_TEST(test_maximum_is_hard)
{
	struct buf *b = buf_new(10);
	char big[11];

	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(buf_append(b, big, 10), 0);
	errno = 0;
	ck_assert_int_eq(buf_append(b, "y", 1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(buf_len(b), 10);
	ck_assert_int_eq(memcmp(buf_data(b), big, 10), 0);
	buf_consume(b, 4);
	ck_assert_int_eq(buf_printf(b, "%s", "12345"), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(buf_len(b), 6);
	ck_assert_int_eq(buf_printf(b, "%s", "1234"), 0);
	ck_assert_uint_eq(buf_len(b), 10);
	ck_assert_str_eq(buf_data(b), "xxxxxx1234");
	buf_free(b);
}
END_TEST

START_TEST(test_grow_keeps_content)
{
	struct buf *b = buf_new(1 << 20);
	char chunk[97];
	size_t i, total = 0;

	/* Interleave appends and partial consumes; check every byte. */
	for (i = 0; i < 5000; i++) {
		memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
		ck_assert_int_eq(buf_append(b, chunk, sizeof(chunk)), 0);
		total += sizeof(chunk);
		if (i % 3 == 0) {
			buf_consume(b, 50);
			total -= 50;
		}
	}
	ck_assert_uint_eq(buf_len(b), total);
	ck_assert_uint_eq(strlen(buf_data(b)), total);
	buf_free(b);
}
END_TEST

START_TEST(test_zero_maximum)
{
	struct buf *b = buf_new(0);

	ck_assert_int_eq(buf_append(b, "", 0), 0);
	ck_assert_int_eq(buf_append(b, "a", 1), -1);
	ck_assert_uint_eq(buf_room(b), 0);
	buf_reset(b);
	buf_free(b);
	buf_free(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_append_and_consume);
	tcase_add_test(tc, test_maximum_is_hard);
	tcase_add_test(tc, test_grow_keeps_content);
	tcase_add_test(tc, test_zero_maximum);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
