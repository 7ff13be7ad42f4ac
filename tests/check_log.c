/*
 * NAME
 *	check_log - tests of log record formatting
 * DESCRIPTION
 *	Records have the documented shape, control characters from the wire
 *	cannot start a new line, long records are cut, DEBUG records are
 *	made only when asked for, and errno survives logging.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char last[LOG_RECORD_MAX + 1];
static enum log_level last_level;
static int records;

static void
capture(enum log_level level, const char *record, size_t len, void *ctx)
{
	(void)ctx;
	ck_assert_uint_le(len, LOG_RECORD_MAX);
	memcpy(last, record, len);
	last[len] = '\0';
	last_level = level;
	records++;
}

static void
setup(void)
{
	log_init("test", 0);
	log_set_sink(capture, NULL);
	records = 0;
	last[0] = '\0';
}

static void
teardown(void)
{
	log_set_sink(NULL, NULL);
}

START_TEST(test_record_shape)
{
	regex_t re;

	log_info("S1", "connect from %s", "127.0.0.1");
	ck_assert_int_eq(records, 1);
	ck_assert_int_eq(last_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
	    "[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z INFO S1 connect from 127\\.0\\.0\\.1$",
	    REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, last, 0, NULL, 0) == 0, "record: %s", last);
	regfree(&re);
	log_warnx(NULL, "no id");
	ck_assert_ptr_nonnull(strstr(last, " WARN - no id"));
}
END_TEST

START_TEST(test_escapes_wire_bytes)
{
	log_info("S2", "HELO %s", "evil\r\n2026-01-01T00:00:00.000Z INFO - forged\x01\\\xff");
	ck_assert_ptr_null(strchr(last, '\n'));
	ck_assert_ptr_null(strchr(last, '\r'));
	ck_assert_ptr_nonnull(strstr(last,
	    "HELO evil\\x0d\\x0a2026-01-01T00:00:00.000Z INFO - forged\\x01\\\\\\xff"));
}
END_TEST

START_TEST(test_long_record_is_cut)
{
	char big[3 * LOG_RECORD_MAX];

	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("S3", "%s", big);
	ck_assert_uint_le(strlen(last), LOG_RECORD_MAX);
	ck_assert_uint_gt(strlen(last), LOG_RECORD_MAX - 8);
	ck_assert_str_eq(last + strlen(last) - 3, "...");
	ck_assert_ptr_null(strchr(last, '\n'));
}
END_TEST

START_TEST(test_debug_only_when_enabled)
{
	log_debug("S4", "state %s", "greeted");
	ck_assert_int_eq(records, 0);
	log_set_debug(1);
	log_debug("S4", "state %s", "greeted");
	ck_assert_int_eq(records, 1);
	ck_assert_ptr_nonnull(strstr(last, " DEBUG S4 state greeted"));
	log_set_debug(0);
}
END_TEST

START_TEST(test_errno_kept_and_appended)
{
	errno = ENOSPC;
	log_warn("M1", "write %s", "tmp/x");
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_ptr_nonnull(strstr(last, "write tmp/x: No space left on device"));
}
END_TEST

START_TEST(test_fatalx_exits)
{
	fatalx("cannot go on");
}
END_TEST

START_TEST(test_bytes_with_nul)
{
	log_bytes(LOG_LEVEL_INFO, "S5", "refused line", "EHLO a\r\0b\\\n", 11);
	ck_assert_int_eq(records, 1);
	ck_assert_ptr_nonnull(strstr(last,
	    " INFO S5 refused line: \"EHLO a\\x0d\\x00b\\\\\\x0a\""));
}
END_TEST

START_TEST(test_bytes_cut)
{
	char big[3 * LOG_RECORD_MAX];

	memset(big, '\0', sizeof(big));
	log_bytes(LOG_LEVEL_WARN, "S6", "line", big, sizeof(big));
	ck_assert_uint_le(strlen(last), LOG_RECORD_MAX);
	ck_assert_str_eq(last + strlen(last) - 4, "...\"");
}
END_TEST

START_TEST(test_escape_function)
{
	char dst[8];

	ck_assert_uint_eq(log_escape(dst, sizeof(dst), "a\tb", 3), 6);
	ck_assert_str_eq(dst, "a\\x09b");
	/* No partial escape sequence at the end of a full buffer. */
	ck_assert_uint_eq(log_escape(dst, sizeof(dst), "abcd\n", 5), 4);
	ck_assert_str_eq(dst, "abcd");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_record_shape);
	tcase_add_test(tc, test_escapes_wire_bytes);
	tcase_add_test(tc, test_long_record_is_cut);
	tcase_add_test(tc, test_debug_only_when_enabled);
	tcase_add_test(tc, test_errno_kept_and_appended);
	tcase_add_exit_test(tc, test_fatalx_exits, 70);
	tcase_add_test(tc, test_escape_function);
	tcase_add_test(tc, test_bytes_with_nul);
	tcase_add_test(tc, test_bytes_cut);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
