/*
 * NAME
 *	check_logger - tests of the logger process and its queue
 * DESCRIPTION
 *	A real logger is forked for each test and writes to a file in a
 *	temporary directory. The tests show what an administrator sees in
 *	the log: every record, in order; a reopen after the file was moved
 *	away; a record that says how many were dropped when the logger was
 *	stuck; a new logger after the old one was killed, and, when the
 *	new ones die at once too, later and later; a logger that exits when
 *	its daemon is gone; records lost on a full log disk counted and
 *	reported once the log works again; a failed reopen said in the old
 *	file, which keeps the records.
 *
 *	Nothing sleeps in place of an event: a test waits for a logger's
 *	death with waitid(WNOWAIT) (the logger is its child, or, for the one
 *	of a killed daemon, becomes its child: the test is a subreaper),
 *	and for a record with poll_file() (reading until it is there, with
 *	a deadline).
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
#include <sys/prctl.h>
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

/* wait_dead - block until process pid (our child) is dead, not reaping it */
static void
wait_dead(pid_t pid)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(info.si_pid, pid);
}

/* poll_file - read file until it holds text, for at most ms; found? */
static int
poll_file(const char *file, const char *text, long ms)
{
	struct timespec start, now;
	char *data;
	int found;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		data = slurp(file);
		found = strstr(data, text) != NULL;
		free(data);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (found || (now.tv_sec - start.tv_sec) * 1000L
		    + (now.tv_nsec - start.tv_nsec) / 1000000L > ms)
			return found;
		(void)poll(NULL, 0, 5);
	}
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

	log_info("S4", "before");
	kill(old, SIGKILL);
	wait_dead(old);
	logger_reap(lg);
	/* The first death after a start: replaced at once. */
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
	ck_assert(poll_file(path, " INFO S5 first\n", 5000));
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
	int fds[2];
	pid_t daemon_pid, logger = 0;
	char *log;

	/* The logger, orphaned, becomes our child: we can wait for it. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
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
	/* Blocks until the logger exits: one that outlives its daemon
	 * fails the test by its timeout. */
	ck_assert_int_eq(waitpid(logger, NULL, 0), logger);
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
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

/* run_restart_wait - what the event loop does: wait the delay asked */
static void
run_restart_wait(struct logger *lg)
{
	long ms;

	while ((ms = logger_restart_wait(lg)) >= 0)
		(void)poll(NULL, 0, (int)ms);
}

START_TEST(test_quick_deaths_back_off)
{
	struct logger *lg = logger_start(path, (uid_t)-1, (gid_t)-1, NULL);
	struct timespec t0, t1;
	long ms, waited;
	pid_t pid;
	char *log;

	ck_assert_ptr_nonnull(lg);
	/* A first death: a new logger at once. */
	pid = logger_pid(lg);
	kill(pid, SIGKILL);
	wait_dead(pid);
	logger_reap(lg);
	ck_assert_int_gt(logger_pid(lg), 0);
	ck_assert_int_eq(logger_restart_wait(lg), -1);
	/* It dies at once too: the next one waits 100 ms, then 200 ms. */
	pid = logger_pid(lg);
	kill(pid, SIGKILL);
	wait_dead(pid);
	logger_reap(lg);
	ck_assert_int_eq(logger_pid(lg), 0);
	ms = logger_restart_wait(lg);
	ck_assert_int_gt(ms, 0);
	ck_assert_int_le(ms, 100);
	log_info("S8", "while no logger runs");
	run_restart_wait(lg);
	ck_assert_int_gt(logger_pid(lg), 0);
	pid = logger_pid(lg);
	kill(pid, SIGKILL);
	wait_dead(pid);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	logger_reap(lg);
	ck_assert_int_eq(logger_pid(lg), 0);
	ck_assert_int_gt(logger_restart_wait(lg), 100);
	run_restart_wait(lg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	waited = (t1.tv_sec - t0.tv_sec) * 1000L
	    + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
	ck_assert_int_ge(waited, 190);
	ck_assert_int_gt(logger_pid(lg), 0);
	logger_stop(lg);
	log = slurp(path);
	ck_assert_ptr_nonnull(strstr(log, "starting a new one in 0 ms"));
	ck_assert_ptr_nonnull(strstr(log, "starting a new one in 100 ms"));
	ck_assert_ptr_nonnull(strstr(log, "starting a new one in 200 ms"));
	/* Records made meanwhile waited for the new logger. */
	ck_assert_ptr_nonnull(strstr(log, " INFO S8 while no logger runs\n"));
	free(log);
}
END_TEST

/*
 * The log disk is full (/dev/full behind a symbolic link): every record
 * lost is counted, and said first once a file takes records again.
 */
START_TEST(test_lost_records_counted_and_reported)
{
	struct logger *lg;
	char real[192], *log, *note, *after;
	int i;

	snprintf(real, sizeof(real), "%s/real.log", dir);
	ck_assert_int_eq(symlink("/dev/full", path), 0);
	ck_assert_ptr_nonnull(lg = logger_start(path, (uid_t)-1, (gid_t)-1,
	    NULL));
	for (i = 0; i < 10; i++)
		log_info("S7", "lost %d", i);
	flush_until_idle(lg, 2000);
	/* The disk has room again: the reopen finds a real file. */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(real, path), 0);
	logger_reopen(lg);	/* logs "reopening", lost too: 11 */
	log_info("S7", "after");
	logger_stop(lg);
	log = slurp(real);
	ck_assert_ptr_null(strstr(log, "lost 0"));
	note = strstr(log, " WARN - log file ");
	ck_assert_ptr_nonnull(note);
	ck_assert_ptr_nonnull(strstr(note, ": 11 records lost: No space left "
	    "on device\n"));
	after = strstr(log, " INFO S7 after\n");
	ck_assert_ptr_nonnull(after);
	ck_assert(note < after);
	free(log);
}
END_TEST

/*
 * Rotation into a directory the logger cannot use: a warning in the old
 * file, which keeps getting the records.
 */
START_TEST(test_failed_reopen_warns_and_keeps_writing)
{
	char sub[160], file[256], moved[192], gone[256], *log;
	struct logger *lg;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(file, sizeof(file), "%s/pollsmtpd.log", sub);
	snprintf(moved, sizeof(moved), "%s/sub.1", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_ptr_nonnull(lg = logger_start(file, (uid_t)-1, (gid_t)-1,
	    NULL));
	log_info("S9", "first");
	flush_until_idle(lg, 1000);
	ck_assert(poll_file(file, " INFO S9 first\n", 5000));
	/* The directory goes away: the path cannot be opened again. */
	ck_assert_int_eq(rename(sub, moved), 0);
	logger_reopen(lg);
	log_info("S9", "second");
	logger_stop(lg);
	snprintf(gone, sizeof(gone), "%s/pollsmtpd.log", moved);
	log = slurp(gone);
	ck_assert_ptr_nonnull(strstr(log, " INFO S9 first\n"));
	ck_assert_ptr_nonnull(strstr(log, " WARN - cannot reopen the log file "));
	ck_assert_ptr_nonnull(strstr(log, "/sub/pollsmtpd.log: No such file or "
	    "directory; still writing to the file opened before\n"));
	ck_assert_ptr_nonnull(strstr(log, " INFO S9 second\n"));
	ck_assert_int_eq(access(sub, F_OK), -1);
	free(log);
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
	tcase_add_test(tc, test_quick_deaths_back_off);
	tcase_add_test(tc, test_lost_records_counted_and_reported);
	tcase_add_test(tc, test_failed_reopen_warns_and_keeps_writing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
