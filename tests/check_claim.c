/*
 * NAME
 *	check_claim - unit tests of the delivery agent's claims
 * DESCRIPTION
 *	Each test works in its own mkdtemp() directory, the domain
 *	directory of a queue, as two hosts ("a.test" and "b.test") sharing
 *	one tree would see it: who wins a claim, what a sweep takes back
 *	and when, and that a shrunk letter never returns once its claim was
 *	taken from its holder.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"

#define LETTER	"1796112000.6B0F43ED503A7331D.rx1.test"

static char dir[PATH_MAX];
static int dfd = -1;

static void
setup(void)
{
	const char *base = getenv("TMPDIR");
	int n;

	n = snprintf(dir, sizeof(dir), "%s/check_claim.XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	ck_assert(n > 0 && (size_t)n < sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
}

static int
remove_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
teardown(void)
{
	if (dfd >= 0)
		close(dfd);
	ck_assert_int_eq(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void
put(const char *path, const char *text)
{
	int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* text - the file's whole content, or NULL when it does not exist */
static char *
text(const char *path)
{
	static char buf[4096];
	ssize_t n;
	int fd = openat(dfd, path, O_RDONLY);

	if (fd < 0) {
		ck_assert_int_eq(errno, ENOENT);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return buf;
}

static int
exists(const char *path)
{
	return faccessat(dfd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static time_t
ctime_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ctime;
}

START_TEST(test_host_name)
{
	char h[32], name[64];
	const char *host;

	ck_assert_int_eq(claim_host_name("mx1.example.org", h, sizeof(h)), 0);
	ck_assert_str_eq(h, "mx1.example.org");
	ck_assert_int_eq(claim_host_name("a/b:c d", h, sizeof(h)), 0);
	ck_assert_str_eq(h, "a\\057b\\072c\\040d");
	/* Exactly full, then one byte short. */
	ck_assert_int_eq(claim_host_name("abc", h, 4), 0);
	ck_assert_int_eq(claim_host_name("abcd", h, 4), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(claim_host_name("a:", h, 5), -1);

	ck_assert_int_eq(claim_split(LETTER ":a\\072b", name, sizeof(name),
	    &host), 0);
	ck_assert_str_eq(name, LETTER);
	ck_assert_str_eq(host, "a\\072b");
	ck_assert_int_eq(claim_split(LETTER, name, sizeof(name), &host), -1);
	ck_assert_int_eq(claim_split(":a.test", name, sizeof(name), &host),
	    -1);
	ck_assert_int_eq(claim_split(LETTER ":", name, sizeof(name), &host),
	    -1);
	ck_assert_int_eq(claim_split(LETTER ":a:b", name, sizeof(name),
	    &host), -1);
	ck_assert_int_eq(claim_split(".x:a", name, sizeof(name), &host), -1);
	ck_assert_int_eq(claim_split(LETTER ":a", name, 8, &host), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(test_one_host_wins)
{
	put(LETTER, "letter\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	ck_assert_int_eq(claim_take(dfd, LETTER, "b.test"), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(!exists(LETTER));
	ck_assert(!exists(".claim/" LETTER ":b.test"));
	ck_assert_str_eq(text(".claim/" LETTER ":a.test"), "letter\n");

	/* Back untouched; then the other host may win it. */
	ck_assert_int_eq(claim_give_back(dfd, LETTER, "b.test"), -1);
	ck_assert_int_eq(claim_give_back(dfd, LETTER, "a.test"), 0);
	ck_assert_str_eq(text(LETTER), "letter\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "b.test"), 0);
	ck_assert_str_eq(text(".claim/" LETTER ":b.test"), "letter\n");
}
END_TEST

static int held_answer;
static int ntaken;
static char taken_name[256], taken_holder[256];

static int
held(void *ctx, const char *name)
{
	(void)ctx;
	ck_assert_str_eq(name, LETTER);
	return held_answer;
}

static void
taken(void *ctx, const char *name, const char *holder)
{
	(void)ctx;
	ntaken++;
	(void)snprintf(taken_name, sizeof(taken_name), "%s", name);
	(void)snprintf(taken_holder, sizeof(taken_holder), "%s", holder);
}

static void
sweep_init(struct claim_sweep *sw, const char *host, time_t now)
{
	memset(sw, 0, sizeof(*sw));
	sw->host = host;
	sw->timeout = 60;
	sw->now = now;
	sw->held = held;
	sw->taken = taken;
	ntaken = 0;
}

START_TEST(test_sweep_own)
{
	struct claim_sweep sw;

	put(LETTER, "letter\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	/* Held by a session of ours: left alone, however old. */
	held_answer = 1;
	sweep_init(&sw, "a.test", time(NULL) + 86400);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 0);
	ck_assert(exists(".claim/" LETTER ":a.test"));
	ck_assert_int_eq(sw.changed, 0);
	/* Held by none (the agent that took it died): back at once. */
	held_answer = 0;
	sweep_init(&sw, "a.test", time(NULL));
	ck_assert_int_eq(claim_sweep(dfd, &sw), 1);
	ck_assert_int_eq(ntaken, 1);
	ck_assert_str_eq(taken_name, LETTER);
	ck_assert_str_eq(taken_holder, "a.test");
	ck_assert_int_eq(sw.changed, 1);
	ck_assert_str_eq(text(LETTER), "letter\n");
	ck_assert(!exists(".claim/" LETTER ":a.test"));
}
END_TEST

START_TEST(test_sweep_other_host)
{
	struct claim_sweep sw;
	time_t t;

	put(LETTER, "letter\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	t = ctime_of(".claim/" LETTER ":a.test");
	held_answer = 1;	/* never asked about another host's */
	/*
	 * Fresh (and at t + 60 it may be 59.x s old: st_ctime is whole
	 * seconds): kept, and the sweeper learns when it goes stale.
	 */
	sweep_init(&sw, "b.test", t + 60);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 0);
	ck_assert_int_eq(ntaken, 0);
	ck_assert_int_eq((long long)sw.next, (long long)t + 61);
	ck_assert(exists(".claim/" LETTER ":a.test"));
	ck_assert(!exists(LETTER));
	/* Surely more than claim_timeout seconds old: taken back. */
	sweep_init(&sw, "b.test", t + 61);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 1);
	ck_assert_int_eq((long long)sw.next, 0);
	ck_assert_str_eq(taken_holder, "a.test");
	ck_assert_str_eq(text(LETTER), "letter\n");
	ck_assert(!exists(".claim/" LETTER ":a.test"));
	/* A second sweeper finds nothing left to take. */
	sweep_init(&sw, "c.test", t + 61);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 0);
	ck_assert_str_eq(text(LETTER), "letter\n");
}
END_TEST

START_TEST(test_sweep_name_back_already)
{
	struct claim_sweep sw;

	/* The old text claimed, the shrunk one queued: the claim goes. */
	put(LETTER, "old\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	put(LETTER, "shrunk\n");
	held_answer = 0;
	sweep_init(&sw, "b.test", time(NULL) + 3600);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 0);
	ck_assert_int_eq(ntaken, 0);
	ck_assert_int_eq(sw.changed, 1);
	ck_assert_str_eq(text(LETTER), "shrunk\n");
	ck_assert(!exists(".claim/" LETTER ":a.test"));
}
END_TEST

START_TEST(test_sweep_ignores_others)
{
	struct claim_sweep sw;

	ck_assert_int_eq(mkdirat(dfd, ".claim", 0700), 0);
	put(".claim/not-a-letter:a.test", "x");
	put(".claim/" LETTER, "no host");
	held_answer = 0;
	sweep_init(&sw, "a.test", time(NULL) + 3600);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 0);
	ck_assert(exists(".claim/not-a-letter:a.test"));
	ck_assert(exists(".claim/" LETTER));
	ck_assert(!exists(LETTER));
	/* No .claim/ at all: nothing to do. */
	ck_assert_int_eq(unlinkat(dfd, ".claim/not-a-letter:a.test", 0), 0);
	ck_assert_int_eq(unlinkat(dfd, ".claim/" LETTER, 0), 0);
	ck_assert_int_eq(unlinkat(dfd, ".claim", AT_REMOVEDIR), 0);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 0);
}
END_TEST

START_TEST(test_replace_while_ours)
{
	int fd;

	put(LETTER, "two recipients\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	fd = openat(dfd, ".claim/" LETTER ":a.test", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	put("shrunk.tmp", "one recipient\n");
	ck_assert_int_eq(claim_replace(dfd, LETTER, "a.test", fd, dfd,
	    "shrunk.tmp"), 0);
	ck_assert(!exists("shrunk.tmp"));
	ck_assert(!exists(LETTER));	/* still claimed, shrunk */
	ck_assert_str_eq(text(".claim/" LETTER ":a.test"), "one recipient\n");
	ck_assert_int_eq(claim_give_back(dfd, LETTER, "a.test"), 0);
	ck_assert_str_eq(text(LETTER), "one recipient\n");
	close(fd);
}
END_TEST

START_TEST(test_replace_after_take_back)
{
	struct claim_sweep sw;
	int fd;

	put(LETTER, "two recipients\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	fd = openat(dfd, ".claim/" LETTER ":a.test", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	/* Host b thinks a is dead and takes the letter back, then claims. */
	sweep_init(&sw, "b.test", time(NULL) + 3600);
	ck_assert_int_eq(claim_sweep(dfd, &sw), 1);
	ck_assert_int_eq(claim_take(dfd, LETTER, "b.test"), 0);
	/* Host a finishes: its shrunk copy must not come back. */
	put("shrunk.tmp", "one recipient\n");
	ck_assert_int_eq(claim_replace(dfd, LETTER, "a.test", fd, dfd,
	    "shrunk.tmp"), -1);
	ck_assert_int_eq(errno, ESTALE);
	ck_assert(exists("shrunk.tmp"));
	ck_assert(!exists(".claim/" LETTER ":a.test"));
	ck_assert_int_eq(claim_give_back(dfd, LETTER, "a.test"), -1);
	ck_assert(!exists(LETTER));
	ck_assert_str_eq(text(".claim/" LETTER ":b.test"),
	    "two recipients\n");
	close(fd);
	/* Same name, another file (the claim made anew): not ours either. */
	put(LETTER, "new\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	fd = openat(dfd, ".claim/" LETTER ":b.test", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(claim_replace(dfd, LETTER, "a.test", fd, dfd,
	    "shrunk.tmp"), -1);
	ck_assert_int_eq(errno, ESTALE);
	ck_assert_str_eq(text(".claim/" LETTER ":a.test"), "new\n");
	close(fd);
}
END_TEST

START_TEST(test_renew)
{
	struct stat before, after;
	struct timespec deadline;
	int fd;

	put(LETTER, "letter\n");
	ck_assert_int_eq(claim_take(dfd, LETTER, "a.test"), 0);
	fd = openat(dfd, ".claim/" LETTER ":a.test", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &before), 0);
	/* Renew until the clock of the file system has moved (a tick). */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 5;
	for (;;) {
		struct timespec now;

		ck_assert_int_eq(claim_renew(fd), 0);
		ck_assert_int_eq(fstat(fd, &after), 0);
		if (after.st_ctim.tv_sec != before.st_ctim.tv_sec
		    || after.st_ctim.tv_nsec != before.st_ctim.tv_nsec)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ck_assert_msg(now.tv_sec < deadline.tv_sec,
		    "claim_renew() never changed the change time");
	}
	ck_assert(after.st_ctim.tv_sec > before.st_ctim.tv_sec
	    || (after.st_ctim.tv_sec == before.st_ctim.tv_sec
	    && after.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
	/* The letter's own time (its arrival for maildir-inspect) stays. */
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_str_eq(text(".claim/" LETTER ":a.test"), "letter\n");
	close(fd);
}
END_TEST

static Suite *
claim_suite(void)
{
	Suite *s = suite_create("claim");
	TCase *tc = tcase_create("claim");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_host_name);
	tcase_add_test(tc, test_one_host_wins);
	tcase_add_test(tc, test_sweep_own);
	tcase_add_test(tc, test_sweep_other_host);
	tcase_add_test(tc, test_sweep_name_back_already);
	tcase_add_test(tc, test_sweep_ignores_others);
	tcase_add_test(tc, test_replace_while_ours);
	tcase_add_test(tc, test_replace_after_take_back);
	tcase_add_test(tc, test_renew);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(claim_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
