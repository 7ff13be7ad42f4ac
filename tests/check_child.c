/*
 * NAME
 *	check_child - unit tests of what a forked child closes
 * DESCRIPTION
 *	Each test forks: the child holds descriptors at low, middle and
 *	high numbers, calls child_close_others() and tells by its exit
 *	status which of them are in the wrong state (open when they should
 *	be closed, or the reverse). The same is proven with close_range(2)
 *	refused by a seccomp filter, as on a kernel before 5.9.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

/* The descriptors each child looks at. */
#define NPROBE	6

struct probe {
	int fd;
	int kept;	/* in the keep list */
};

static int is_open(int fd);
static void refuse_close_range(void);
static int run_child(const int *keep, size_t nkeep, int no_close_range);

static int
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/*
 * refuse_close_range - close_range(2) answers ENOSYS from now on (with
 * kernel headers too old to name it, the library falls back anyway)
 */
static void
refuse_close_range(void)
{
#ifdef SYS_close_range
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
	    || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		_exit(100);
	/* The filter must really be in the way, or the test proves nothing. */
	if (syscall(SYS_close_range, 3U, 2U, 0U) != -1 || errno != ENOSYS)
		_exit(101);
#endif
}

/*
 * run_child - fork; the child opens the probes (those of keep[] among
 * them), closes the others, and exits with one bit for each probe in
 * the wrong state (0: all right), or 100 and up when it could not set
 * up. Returns that status, -1 when the child did not exit.
 */
static int
run_child(const int *keep, size_t nkeep, int no_close_range)
{
	static const int numbers[NPROBE] = { 3, 9, 40, 41, 200, 1000 };
	struct probe probes[NPROBE];
	size_t i, j;
	int status, null, bits;
	pid_t pid;

	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		if ((null = open("/dev/null", O_RDONLY)) < 0)
			_exit(102);
		for (i = 0; i < NPROBE; i++) {
			probes[i].fd = numbers[i];
			probes[i].kept = 0;
			for (j = 0; j < nkeep; j++)
				if (keep[j] == numbers[i])
					probes[i].kept = 1;
			if (numbers[i] != null
			    && dup2(null, numbers[i]) != numbers[i])
				_exit(103);
		}
		/* null itself, if no probe, is one more to be closed. */
		if (no_close_range)
			refuse_close_range();
		child_close_others(keep, nkeep);
		bits = 0;
		for (i = 0; i < NPROBE; i++)
			if (is_open(probes[i].fd) != probes[i].kept)
				bits |= 1 << i;
		/* Standard input, output and error are never touched. */
		for (i = 0; i < 3; i++)
			if (!is_open((int)i))
				bits |= 1 << (NPROBE + i);
		_exit(bits);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
need_std(void)
{
	int fd, null;

	/* make check may start us with a standard descriptor closed. */
	for (fd = 0; fd < 3; fd++)
		if (!is_open(fd)) {
			ck_assert_int_ge(null = open("/dev/null", O_RDWR), 0);
			if (null != fd) {
				ck_assert_int_eq(dup2(null, fd), fd);
				(void)close(null);
			}
		}
}

START_TEST(test_keeps_those_named)
{
	/* Unsorted, a duplicate, a negative one and a standard one. */
	const int keep[] = { 200, 41, -1, 2, 41, 9 };

	need_std();
	ck_assert_int_eq(run_child(keep, sizeof(keep) / sizeof(keep[0]), 0), 0);
}
END_TEST

START_TEST(test_keeps_the_lowest_and_highest)
{
	const int keep[] = { 1000, 3 };

	need_std();
	ck_assert_int_eq(run_child(keep, 2, 0), 0);
}
END_TEST

START_TEST(test_nothing_kept)
{
	need_std();
	ck_assert_int_eq(run_child(NULL, 0, 0), 0);
}
END_TEST

START_TEST(test_without_close_range)
{
	const int keep[] = { 200, 41, 9 };

	need_std();
	ck_assert_int_eq(run_child(keep, 3, 1), 0);
	ck_assert_int_eq(run_child(NULL, 0, 1), 0);
}
END_TEST

static Suite *
child_suite(void)
{
	Suite *s = suite_create("child");
	TCase *tc = tcase_create("child");

	tcase_add_test(tc, test_keeps_those_named);
	tcase_add_test(tc, test_keeps_the_lowest_and_highest);
	tcase_add_test(tc, test_nothing_kept);
	tcase_add_test(tc, test_without_close_range);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(child_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
