/*
 * NAME
 *	check_spool - Check suite of lib/spool
 * SYNOPSIS
 *	tests/check_spool
 * DESCRIPTION
 *	The text written through a spool is read back from its file: whole
 *	and in order, for small writes, writes larger than the window and
 *	writes of exactly the window; the memory held is bounded by the
 *	window at every step (the file is never more than SPOOL_WINDOW
 *	bytes behind spool_size()); spool_finish() leaves the whole text in
 *	the file. Write errors are made for real: /dev/full (ENOSPC from
 *	the device), and RLIMIT_FSIZE (EFBIG, with SIGXFSZ ignored), which
 *	can be lifted afterwards to show that a kept error writes nothing
 *	more even once the cause is gone. spool_free() closes the
 *	descriptor, and an O_TMPFILE spool leaves no entry in its
 *	directory, before or after. A lazy spool opens no file for a text
 *	of at most the window (spool_text() has it), opens one exactly
 *	once when the text outgrows it, and keeps the open's error.
 * DIAGNOSTICS
 *	Exit status 0 when every test passes.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

static char tmpdir[PATH_MAX];		/* made by mkdtemp() for one test */

static void setup(void);
static void teardown(void);
static int open_anonymous(void);
static int count_entries(const char *dir);
static off_t file_size(int fd);
static void fill_pattern(char *p, size_t len, size_t start);
static void assert_file(int fd, const char *want, size_t len);
static void assert_window_bound(const struct spool *sp);
static void assert_closed(int fd);
static Suite *spool_suite(void);

static void
setup(void)
{
	int n;

	n = snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_spool.XXXXXX");
	ck_assert(n > 0 && (size_t)n < sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	/* Every spool of these tests is anonymous: the directory is empty. */
	(void)rmdir(tmpdir);
}

/* open_anonymous - a file in tmpdir without a name, as the daemon uses */

static int
open_anonymous(void)
{
	int fd;

	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	ck_assert_msg(fd >= 0, "O_TMPFILE in %s: %s", tmpdir, strerror(errno));
	return fd;
}

/* count_entries - entries of dir other than . and .. */

static int
count_entries(const char *dir)
{
	DIR *d;
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	(void)closedir(d);
	return n;
}

static off_t
file_size(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_size;
}

/*
 * fill_pattern - bytes that differ from their neighbours and do not
 * repeat with any power of two, so that a block written twice, out of
 * order or shifted by a byte does not compare equal.
 */

static void
fill_pattern(char *p, size_t len, size_t start)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)(((start + i) * 7 + (start + i) / 251) % 253);
}

/* assert_file - fd holds exactly these bytes, read with pread */

static void
assert_file(int fd, const char *want, size_t len)
{
	char *got;
	size_t have = 0;
	ssize_t n;

	ck_assert_int_eq(file_size(fd), (off_t)len);
	ck_assert_ptr_nonnull(got = malloc(len + 1));
	while (have < len + 1
	    && (n = pread(fd, got + have, len + 1 - have, (off_t)have)) > 0)
		have += (size_t)n;
	ck_assert_uint_eq(have, len);
	ck_assert(memcmp(got, want, len) == 0);
	free(got);
}

/* assert_window_bound - what is not in the file yet fits the window */

static void
assert_window_bound(const struct spool *sp)
{
	off_t size = file_size(spool_fd(sp));

	ck_assert_int_le(size, (off_t)spool_size(sp));
	ck_assert_uint_le(spool_size(sp) - (size_t)size, SPOOL_WINDOW);
}

/* assert_closed - fd is not an open descriptor any more */

static void
assert_closed(int fd)
{
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
}

/*
 * The text arrives.
 */

/* Writes of 1, 2, 3, ... bytes, past several windows. */

START_TEST(test_small_writes)
{
	enum { TOTAL = 5 * SPOOL_WINDOW + 333 };
	struct spool *sp;
	char *text;
	size_t off = 0, len = 1;
	int fd;

	ck_assert_ptr_nonnull(text = malloc(TOTAL));
	fill_pattern(text, TOTAL, 0);
	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_fd(sp), fd);
	ck_assert_uint_eq(spool_size(sp), 0);
	while (off < TOTAL) {
		if (len > TOTAL - off)
			len = TOTAL - off;
		ck_assert_int_eq(spool_write(sp, text + off, len), 0);
		off += len;
		ck_assert_uint_eq(spool_size(sp), off);
		assert_window_bound(sp);
		len = len % 97 + 1;
	}
	ck_assert_int_eq(spool_error(sp), 0);
	ck_assert_int_eq(spool_finish(sp), 0);
	ck_assert_uint_eq(spool_size(sp), TOTAL);
	assert_file(fd, text, TOTAL);
	spool_free(sp);
	free(text);
}
END_TEST

/* One write of several windows and a bit, then more after it. */

START_TEST(test_large_writes)
{
	enum { BIG = 3 * SPOOL_WINDOW + 17, MORE = SPOOL_WINDOW + 1 };
	struct spool *sp;
	char *text;
	int fd;

	ck_assert_ptr_nonnull(text = malloc(BIG + MORE + 5));
	fill_pattern(text, BIG + MORE + 5, 0);
	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_write(sp, text, 5), 0);
	ck_assert_int_eq(spool_write(sp, text + 5, BIG), 0);
	ck_assert_uint_eq(spool_size(sp), BIG + 5);
	assert_window_bound(sp);
	ck_assert_int_eq(spool_write(sp, text + 5 + BIG, MORE), 0);
	ck_assert_uint_eq(spool_size(sp), BIG + MORE + 5);
	assert_window_bound(sp);
	ck_assert_int_eq(spool_finish(sp), 0);
	assert_file(fd, text, BIG + MORE + 5);
	spool_free(sp);
	free(text);
}
END_TEST

/*
 * Exactly the window, in one write and in two halves, then one byte
 * more: nothing lost or doubled at the boundary.
 */

START_TEST(test_exact_window)
{
	struct spool *sp;
	char *text;
	int fd, round;

	ck_assert_ptr_nonnull(text = malloc(2 * SPOOL_WINDOW + 1));
	fill_pattern(text, 2 * SPOOL_WINDOW + 1, 11);
	for (round = 0; round < 2; round++) {
		fd = open_anonymous();
		ck_assert_ptr_nonnull(sp = spool_new(fd));
		if (round == 0) {
			ck_assert_int_eq(spool_write(sp, text, SPOOL_WINDOW), 0);
		} else {
			ck_assert_int_eq(spool_write(sp, text,
			    SPOOL_WINDOW / 2), 0);
			ck_assert_int_eq(spool_write(sp, text + SPOOL_WINDOW / 2,
			    SPOOL_WINDOW - SPOOL_WINDOW / 2), 0);
		}
		ck_assert_uint_eq(spool_size(sp), SPOOL_WINDOW);
		assert_window_bound(sp);
		ck_assert_int_eq(spool_finish(sp), 0);
		assert_file(fd, text, SPOOL_WINDOW);

		/* The window again, and one byte over it. */
		ck_assert_int_eq(spool_write(sp, text + SPOOL_WINDOW,
		    SPOOL_WINDOW), 0);
		ck_assert_int_eq(spool_write(sp, text + 2 * SPOOL_WINDOW, 1), 0);
		ck_assert_uint_eq(spool_size(sp), 2 * SPOOL_WINDOW + 1);
		assert_window_bound(sp);
		ck_assert_int_eq(spool_finish(sp), 0);
		assert_file(fd, text, 2 * SPOOL_WINDOW + 1);
		spool_free(sp);
	}
	free(text);
}
END_TEST

/*
 * Bytes smaller than the window stay in memory until spool_finish(),
 * which writes them; an empty spool finishes as an empty file, and
 * zero-length writes change nothing.
 */

START_TEST(test_finish_flushes)
{
	static const char text[] = "Subject: short\n\nbody\n";
	struct spool *sp;
	int fd;

	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_write(sp, text, 0), 0);
	ck_assert_int_eq(spool_finish(sp), 0);
	ck_assert_uint_eq(spool_size(sp), 0);
	assert_file(fd, "", 0);

	ck_assert_int_eq(spool_write(sp, text, sizeof(text) - 1), 0);
	ck_assert_int_eq(spool_write(sp, text, 0), 0);
	ck_assert_uint_eq(spool_size(sp), sizeof(text) - 1);
	/* Held in the window: not written yet. */
	ck_assert_int_eq(file_size(fd), 0);
	ck_assert_int_eq(spool_finish(sp), 0);
	assert_file(fd, text, sizeof(text) - 1);
	/* A second finish has nothing more to write. */
	ck_assert_int_eq(spool_finish(sp), 0);
	assert_file(fd, text, sizeof(text) - 1);
	spool_free(sp);
}
END_TEST

/*
 * Write errors are kept.
 */

/* /dev/full: the first flush, at spool_finish(), fails with ENOSPC. */

START_TEST(test_full_at_finish)
{
	struct spool *sp;
	int fd;

	ck_assert_int_ge(fd = open("/dev/full", O_RDWR | O_CLOEXEC), 0);
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_write(sp, "hello\n", 6), 0);
	ck_assert_int_eq(spool_error(sp), 0);
	errno = 0;
	ck_assert_int_eq(spool_finish(sp), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(spool_error(sp), ENOSPC);

	/* Kept: every later call fails the same way and takes nothing. */
	errno = 0;
	ck_assert_int_eq(spool_write(sp, "more\n", 5), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_eq(spool_size(sp), 6);
	errno = 0;
	ck_assert_int_eq(spool_finish(sp), -1);
	ck_assert_int_eq(errno, ENOSPC);
	errno = 0;
	ck_assert_int_eq(spool_write(sp, "x", 0), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(spool_error(sp), ENOSPC);
	spool_free(sp);
	assert_closed(fd);
}
END_TEST

/* /dev/full: the first flush, when the window is full, fails at once. */

START_TEST(test_full_at_window)
{
	struct spool *sp;
	char *text;
	size_t size;
	int fd;

	ck_assert_ptr_nonnull(text = malloc(SPOOL_WINDOW + 1));
	fill_pattern(text, SPOOL_WINDOW + 1, 0);
	ck_assert_int_ge(fd = open("/dev/full", O_RDWR | O_CLOEXEC), 0);
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_write(sp, text, SPOOL_WINDOW), 0);
	errno = 0;
	ck_assert_int_eq(spool_write(sp, text + SPOOL_WINDOW, 1), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(spool_error(sp), ENOSPC);
	size = spool_size(sp);
	ck_assert_uint_le(size, SPOOL_WINDOW + 1);

	errno = 0;
	ck_assert_int_eq(spool_write(sp, text, SPOOL_WINDOW), -1);
	ck_assert_int_eq(errno, ENOSPC);
	errno = 0;
	ck_assert_int_eq(spool_finish(sp), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_eq(spool_size(sp), size);
	spool_free(sp);
	free(text);
}
END_TEST

/*
 * A write that stops half-way (RLIMIT_FSIZE: EFBIG, as a file system
 * filling up would stop it). Once the limit is lifted, the kept error
 * still stops every write: the file keeps the bytes it had.
 */

START_TEST(test_error_writes_nothing_more)
{
	enum { LIMIT = 4096 };
	struct rlimit saved, small;
	void (*saved_handler)(int);
	struct spool *sp;
	char *text;
	int fd, ret, err;

	ck_assert_ptr_nonnull(text = malloc(3 * SPOOL_WINDOW));
	fill_pattern(text, 3 * SPOOL_WINDOW, 0);
	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
	small = saved;
	small.rlim_cur = LIMIT;
	saved_handler = signal(SIGXFSZ, SIG_IGN);
	ck_assert(saved_handler != SIG_ERR);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	errno = 0;
	ret = spool_write(sp, text, 2 * SPOOL_WINDOW);
	err = errno;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
	ck_assert(signal(SIGXFSZ, saved_handler) != SIG_ERR);

	ck_assert_int_eq(ret, -1);
	ck_assert_int_eq(err, EFBIG);
	ck_assert_int_eq(spool_error(sp), EFBIG);
	/* What the kernel took before it refused: the start of the text. */
	ck_assert_int_eq(file_size(fd), LIMIT);
	assert_file(fd, text, LIMIT);

	errno = 0;
	ck_assert_int_eq(spool_write(sp, text, SPOOL_WINDOW), -1);
	ck_assert_int_eq(errno, EFBIG);
	errno = 0;
	ck_assert_int_eq(spool_finish(sp), -1);
	ck_assert_int_eq(errno, EFBIG);
	assert_file(fd, text, LIMIT);
	spool_free(sp);
	free(text);
}
END_TEST

/*
 * The descriptor.
 */

START_TEST(test_new_bad_fd)
{
	errno = 0;
	ck_assert_ptr_null(spool_new(-1));
	ck_assert_int_eq(errno, EBADF);
	spool_free(NULL);
}
END_TEST

/* spool_free() closes the file: used or not, finished or not. */

START_TEST(test_free_closes)
{
	struct spool *sp;
	int fd;

	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	spool_free(sp);
	assert_closed(fd);

	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_write(sp, "unfinished", 10), 0);
	spool_free(sp);
	assert_closed(fd);
}
END_TEST

/* An O_TMPFILE spool has no name, and its text is gone with it. */

START_TEST(test_tmpfile_leaves_nothing)
{
	enum { TOTAL = 2 * SPOOL_WINDOW + 99 };
	struct spool *sp;
	struct stat st;
	char *text;
	int fd;

	ck_assert_ptr_nonnull(text = malloc(TOTAL));
	fill_pattern(text, TOTAL, 3);
	fd = open_anonymous();
	ck_assert_ptr_nonnull(sp = spool_new(fd));
	ck_assert_int_eq(spool_write(sp, text, TOTAL), 0);
	ck_assert_int_eq(count_entries(tmpdir), 0);
	ck_assert_int_eq(spool_finish(sp), 0);
	assert_file(fd, text, TOTAL);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_int_eq(count_entries(tmpdir), 0);
	spool_free(sp);
	assert_closed(fd);
	ck_assert_int_eq(count_entries(tmpdir), 0);
	/* The directory can go: nothing was ever in it. */
	ck_assert_int_eq(rmdir(tmpdir), 0);
	free(text);
}
END_TEST

/*
 * A lazy spool: its open_file counts its calls and hands out an
 * anonymous file (or fails with the errno it is given).
 */
struct lazy_open {
	int calls;
	int fail;			/* errno to fail with, or 0 */
	int fd;				/* the descriptor handed out, or -1 */
};

static int
lazy_open_file(void *ctx)
{
	struct lazy_open *lo = ctx;

	lo->calls++;
	if (lo->fail != 0) {
		errno = lo->fail;
		return -1;
	}
	return lo->fd = open_anonymous();
}

/* A text of at most the window never opens a file and is read in memory. */

START_TEST(test_lazy_fits_window)
{
	struct lazy_open lo = { 0, 0, -1 };
	struct spool *sp;
	char *text;

	ck_assert_ptr_nonnull(text = malloc(SPOOL_WINDOW));
	fill_pattern(text, SPOOL_WINDOW, 0);
	ck_assert_ptr_nonnull(sp = spool_new_lazy(lazy_open_file, &lo));
	ck_assert_int_eq(spool_write(sp, text, 100), 0);
	ck_assert_int_eq(spool_write(sp, text + 100, SPOOL_WINDOW - 100), 0);
	ck_assert_int_eq(spool_finish(sp), 0);
	ck_assert_int_eq(lo.calls, 0);
	ck_assert_int_eq(spool_fd(sp), -1);
	ck_assert_uint_eq(spool_size(sp), SPOOL_WINDOW);
	ck_assert_ptr_nonnull(spool_text(sp));
	ck_assert_mem_eq(spool_text(sp), text, SPOOL_WINDOW);
	spool_free(sp);
	ck_assert_int_eq(count_entries(tmpdir), 0);

	/* An empty text too: "" and no file. */
	ck_assert_ptr_nonnull(sp = spool_new_lazy(lazy_open_file, &lo));
	ck_assert_int_eq(spool_finish(sp), 0);
	ck_assert_str_eq(spool_text(sp), "");
	ck_assert_uint_eq(spool_size(sp), 0);
	spool_free(sp);
	ck_assert_int_eq(lo.calls, 0);
	free(text);
}
END_TEST

/* One byte over the window: the file is opened once and holds it all. */

START_TEST(test_lazy_overflows)
{
	enum { TOTAL = 3 * SPOOL_WINDOW + 1 };
	struct lazy_open lo = { 0, 0, -1 };
	struct spool *sp;
	char *text;
	size_t off;

	ck_assert_ptr_nonnull(text = malloc(TOTAL));
	fill_pattern(text, TOTAL, 0);
	ck_assert_ptr_nonnull(sp = spool_new_lazy(lazy_open_file, &lo));
	ck_assert_int_eq(spool_write(sp, text, SPOOL_WINDOW), 0);
	ck_assert_int_eq(lo.calls, 0);
	for (off = SPOOL_WINDOW; off < TOTAL; off += 1000)
		ck_assert_int_eq(spool_write(sp, text + off,
		    TOTAL - off < 1000 ? TOTAL - off : 1000), 0);
	ck_assert_int_eq(lo.calls, 1);
	ck_assert_int_eq(spool_finish(sp), 0);
	ck_assert_int_eq(lo.calls, 1);
	ck_assert_int_eq(spool_fd(sp), lo.fd);
	ck_assert_ptr_null(spool_text(sp));
	ck_assert_uint_eq(spool_size(sp), TOTAL);
	assert_file(lo.fd, text, TOTAL);
	spool_free(sp);
	assert_closed(lo.fd);
	free(text);
}
END_TEST

/* The file cannot be had: the error is kept and told at the end. */

START_TEST(test_lazy_open_fails)
{
	struct lazy_open lo = { 0, EMFILE, -1 };
	struct spool *sp;
	char *text;

	ck_assert_ptr_nonnull(text = malloc(SPOOL_WINDOW + 10));
	fill_pattern(text, SPOOL_WINDOW + 10, 0);
	ck_assert_ptr_nonnull(sp = spool_new_lazy(lazy_open_file, &lo));
	ck_assert_int_eq(spool_write(sp, text, SPOOL_WINDOW), 0);
	errno = 0;
	ck_assert_int_eq(spool_write(sp, text + SPOOL_WINDOW, 10), -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(spool_write(sp, text, 1), -1);
	ck_assert_int_eq(spool_finish(sp), -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(spool_error(sp), EMFILE);
	ck_assert_int_eq(lo.calls, 1);
	spool_free(sp);
	free(text);
}
END_TEST

static Suite *
spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *tc;

	tc = tcase_create("text");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_small_writes);
	tcase_add_test(tc, test_large_writes);
	tcase_add_test(tc, test_exact_window);
	tcase_add_test(tc, test_finish_flushes);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_at_finish);
	tcase_add_test(tc, test_full_at_window);
	tcase_add_test(tc, test_error_writes_nothing_more);
	suite_add_tcase(s, tc);

	tc = tcase_create("descriptor");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_new_bad_fd);
	tcase_add_test(tc, test_free_closes);
	tcase_add_test(tc, test_tmpfile_leaves_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("lazy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lazy_fits_window);
	tcase_add_test(tc, test_lazy_overflows);
	tcase_add_test(tc, test_lazy_open_fails);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(spool_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
