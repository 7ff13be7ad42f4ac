/*
 * NAME
 *	check_logger - tests of the logger process and its queue
 * DESCRIPTION
 *	A real logger is forked for each test and writes to a file in a
 *	temporary directory. The tests show what an administrator sees in
 *	the log: every record, in order; a reopen after the file was moved
 *	away; a record that says how many were dropped when the logger was
 *	stuck; a new logger after the old one was killed; a logger that
 *	exits when its daemon is gone.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "logger.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_logger.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pollsmtpd.log", dir);
	log_init("check_logger", 0);
}

static void
teardown(void)
{
	char p[192];

	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static char *
slurp(const char *file)
{
	FILE *fp = fopen(file, "r");
	char *data;
	long n;

	if (fp == NULL)
		return strdup("");
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	data = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(data, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	return data;
}

static int
count_lines(const char *s, const char *needle)
{
	int n = 0;

	for (; (s = strstr(s, needle)) != NULL; s++)
		n++;
	return n;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* flush_until_idle - act as the event loop would, for at most ms */
static void
flush_until_idle(struct logger *lg, long ms)
{
	struct pollfd pfd;

	for (; ms > 0 && logger_wants_write(lg); ms -= 10) {
		pfd.fd = logger_fd(lg);
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 10) > 0)
			logger_flush(lg);
	}
}

START_TEST(test_records_in_order)
{
	struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
	char want[64], *log, *prev = NULL, *at;
	int i;

	ck_assert_ptr_nonnull(lg);
	for (i = 0; i < 500; i++) {
		log_info("S1", "record %d", i);
		if (i % 50 == 0)
			flush_until_idle(lg, 2000);
	}
	flush_until_idle(lg, 2000);
	logger_stop(lg);
	log = slurp(path);
	for (i = 0; i < 500; i++) {
		snprintf(want, sizeof(want), " INFO S1 record %d\n", i);
		at = strstr(log, want);
		ck_assert_msg(at != NULL, "record %d missing", i);
		ck_assert_msg(prev == NULL || at > prev, "record %d out of order", i);
		prev = at;
	}
	free(log);
}
END_TEST

START_TEST(test_debug_records_only_when_enabled)
{
	struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
	char *log;

	log_debug("S2", "hidden");
	log_set_debug(1);
	log_debug("S2", "shown");
	log_set_debug(0);
	logger_stop(lg);
	log = slurp(path);
	ck_assert_ptr_null(strstr(log, "hidden"));
	ck_assert_ptr_nonnull(strstr(log, " DEBUG S2 shown\n"));
	free(log);
}
END_TEST

START_TEST(test_stuck_logger_never_blocks_and_counts_drops)
{
	struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
	char filler[1500], *log, *at;
	unsigned long dropped = 0;
	struct timespec t0, t1;
	int i, lines;

	memset(filler, 'x', sizeof(filler) - 1);
	filler[sizeof(filler) - 1] = '\0';
	kill(logger_pid(lg), SIGSTOP);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Far more than the queue and the backlog together can hold. */
	for (i = 0; i < 2000; i++)
		log_info("S3", "%d %s", i, filler);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 5, "logging blocked");
	ck_assert(logger_wants_write(lg));
	kill(logger_pid(lg), SIGCONT);
	flush_until_idle(lg, 5000);
	log_info("S3", "after");
	logger_stop(lg);

	log = slurp(path);
	lines = count_lines(log, " INFO S3 ");
	at = strstr(log, "log backlog full: ");
	ck_assert_ptr_nonnull(at);
	dropped = strtoul(at + strlen("log backlog full: "), NULL, 10);
	ck_assert_uint_gt(dropped, 0);
	/* Every record either arrived or was counted as dropped. */
	ck_assert_uint_eq((unsigned long)lines - 1 + dropped, 2000);
	ck_assert_ptr_nonnull(strstr(log, " INFO S3 after\n"));
	free(log);
}
END_TEST

START_TEST(test_killed_logger_is_replaced)
{
	struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
	pid_t old = logger_pid(lg);
	char *log;
	int i;

	log_info("S4", "before");
	kill(old, SIGKILL);
	for (i = 0; i < 100 && logger_pid(lg) == old; i++) {
		sleep_ms(10);
		logger_reap(lg);
	}
	ck_assert_int_ne(logger_pid(lg), old);
	ck_assert_int_gt(logger_pid(lg), 0);
	ck_assert_int_eq(kill(logger_pid(lg), 0), 0);
	log_info("S4", "after");
	logger_stop(lg);
	log = slurp(path);
	ck_assert_ptr_nonnull(strstr(log, "killed by signal 9"));
	ck_assert_ptr_nonnull(strstr(log, " INFO S4 after\n"));
	free(log);
}
END_TEST

START_TEST(test_reopen_after_move)
{
	struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
	char moved[192], *old, *cur;

	log_info("S5", "first");
	snprintf(moved, sizeof(moved), "%s.1", path);
	flush_until_idle(lg, 1000);
	sleep_ms(100);
	ck_assert_int_eq(rename(path, moved), 0);
	logger_reopen(lg);
	log_info("S5", "second");
	logger_stop(lg);
	old = slurp(moved);
	cur = slurp(path);
	ck_assert_ptr_nonnull(strstr(old, " INFO S5 first\n"));
	ck_assert_ptr_null(strstr(old, "second"));
	ck_assert_ptr_nonnull(strstr(cur, " INFO S5 second\n"));
	free(old);
	free(cur);
}
END_TEST

START_TEST(test_logger_exits_when_daemon_dies)
{
	int fds[2], i;
	pid_t daemon_pid, logger = 0;
	char *log;

	ck_assert_int_eq(pipe(fds), 0);
	if ((daemon_pid = fork()) == 0) {
		struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
		pid_t p = logger_pid(lg);

		log_info("S6", "last words");
		logger_flush(lg);	/* as the event loop does before it sleeps */
		if (write(fds[1], &p, sizeof(p)) != sizeof(p))
			_exit(2);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(fds[0], &logger, sizeof(logger)), sizeof(logger));
	kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, NULL, 0);
	for (i = 0; i < 300 && kill(logger, 0) == 0; i++)
		sleep_ms(10);
	ck_assert_msg(kill(logger, 0) < 0, "logger outlived the daemon");
	log = slurp(path);
	ck_assert_ptr_nonnull(strstr(log, " INFO S6 last words\n"));
	free(log);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_unwritable_log_file_fails_start)
{
	char bad[192];

	snprintf(bad, sizeof(bad), "%s/no/such/dir/log", dir);
	ck_assert_ptr_null(logger_start(bad, (uid_t)-1, (gid_t)-1, NULL));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("logger");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_records_in_order);
	tcase_add_test(tc, test_debug_records_only_when_enabled);
	tcase_add_test(tc, test_stuck_logger_never_blocks_and_counts_drops);
	tcase_add_test(tc, test_killed_logger_is_replaced);
	tcase_add_test(tc, test_reopen_after_move);
	tcase_add_test(tc, test_logger_exits_when_daemon_dies);
	tcase_add_test(tc, test_unwritable_log_file_fails_start);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
