/*
 * NAME
 *	check_maildir - Check suite of lib/maildir
 * SYNOPSIS
 *	tests/check_maildir
 * DESCRIPTION
 *	Each test works in a fresh directory made with mkdtemp(3) under /tmp
 *	(the Maildir root is its subdirectory "root", so that maildir_open()
 *	has to make it) and removes it afterwards. The tests look at what an
 *	administrator would find on disk: the tree and its modes, the names,
 *	the exact bytes of each delivered file, and above all the files that
 *	must not exist after a failed delivery (nothing in any tmp/, new/ or
 *	queue directory). Failures are made for real: a tmp/ or new/
 *	directory replaced by a file after maildir_add_user(), RLIMIT_FSIZE
 *	(with SIGXFSZ ignored) for a write that fails half-way with EFBIG,
 *	and a file already in place under the name a delivery wants. Batches
 *	(group commit) are checked the same way: each message all or
 *	nothing, the others of its batch untouched. A user directory removed
 *	(and made again) while the Maildir is open must not stop delivery,
 *	nor leak a descriptor.
 * DIAGNOSTICS
 *	Exit status 0 when every test passes. Runs under valgrind with
 *	CK_FORK=no and with -fsanitize=address,undefined.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"

#define HOST	"mx.example.org"

/*
 * Fault injection: the test program's renameat2() and fsync() come
 * before the C library's (libpollsmtpd is linked into it), so a test
 * can make the file system lack RENAME_NOREPLACE, or refuse to sync a
 * directory; otherwise they are the system calls.
 */
static int fake_no_noreplace;		/* renameat2(NOREPLACE): EINVAL */
static int fake_dir_fsync_fails;	/* fsync() of a directory: EIO */
static char logged[8192];		/* records of capture_sink() */

int
renameat2(int olddfd, const char *oldname, int newdfd, const char *newname,
    unsigned int flags)
{
	if (fake_no_noreplace && (flags & RENAME_NOREPLACE)) {
		errno = EINVAL;
		return (-1);
	}
	return ((int)syscall(SYS_renameat2, olddfd, oldname, newdfd, newname,
	    flags));
}

int
fsync(int fd)
{
	struct stat st;

	if (fake_dir_fsync_fails && fstat(fd, &st) == 0
	    && S_ISDIR(st.st_mode)) {
		errno = EIO;
		return (-1);
	}
	return ((int)syscall(SYS_fsync, fd));
}

static void
capture_sink(enum log_level level, const char *record, size_t len,
    void *ctx)
{
	size_t have = strlen(logged);

	(void)level;
	(void)ctx;
	if (have + len + 2 < sizeof(logged)) {
		memcpy(logged + have, record, len);
		logged[have + len] = '\n';
		logged[have + len + 1] = '\0';
	}
}

static char tmpdir[PATH_MAX];		/* made by mkdtemp() for one test */
static char root[PATH_MAX];		/* tmpdir/root: the Maildir root */
static int nregular;			/* nftw() callback's count */

static void xpath(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int rm_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw);
static int count_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw);
static void setup(void);
static void teardown(void);
static int count_files(void);
static int count_entries(const char *dir);
static void only_entry(const char *dir, char *name, size_t namelen);
static int mode_of(const char *path, int want_dir);
static void write_plain(const char *path, const char *text);
static void assert_content(const char *path, const void *data, size_t len);
static struct maildir *open_with_users(void);
static int count_fds(void);
static int compare_names(const void *a, const void *b);
static void three_copies(struct maildir_copy copies[3], struct iovec *iov);
static void remove_tree(const char *path);
static void assert_user_tree(const char *user);
static int spool_with(struct maildir *md, const char *text, size_t len);
static void assert_anonymous(int fd);
static void assert_named_content(const char *dir, const char *id,
    const void *data, size_t len);
static void queue_removed(const char *what, int spool_first);
static void capture_sink(enum log_level level, const char *record,
    size_t len, void *ctx);
static void make_outside(char *outside);
static uid_t owner_of(const char *path);
static Suite *maildir_suite(void);

/* xpath - format a path; a cut path would make a test lie */

static void
xpath(char *dst, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, PATH_MAX, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	ck_assert_int_lt(n, PATH_MAX);
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return (remove(path) == -1 ? -1 : 0);
}

static int
count_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode))
		nregular++;
	return (0);
}

static void
setup(void)
{
	xpath(tmpdir, "/tmp/check_maildir.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	xpath(root, "%s/root", tmpdir);
}

static void
teardown(void)
{
	(void)nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* count_files - regular files anywhere under root */

static int
count_files(void)
{
	nregular = 0;
	ck_assert_int_eq(nftw(root, count_entry, 16, FTW_PHYS), 0);
	return (nregular);
}

/* count_entries - entries of dir other than . and .., -1 if no dir */

static int
count_entries(const char *dir)
{
	DIR *d;
	struct dirent *de;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return (-1);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	(void)closedir(d);
	return (n);
}

/* only_entry - the name of the one entry dir must hold */

static void
only_entry(const char *dir, char *name, size_t namelen)
{
	DIR *d;
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ck_assert_uint_lt(strlen(de->d_name), namelen);
		memcpy(name, de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	(void)closedir(d);
	ck_assert_int_eq(n, 1);
}

/* mode_of - permission bits of path, which must be a dir or a file */

static int
mode_of(const char *path, int want_dir)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	if (want_dir)
		ck_assert(S_ISDIR(st.st_mode));
	else
		ck_assert(S_ISREG(st.st_mode));
	return ((int)(st.st_mode & 07777));
}

static void
write_plain(const char *path, const char *text)
{
	int fd;
	size_t len = strlen(text);

	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600), 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* assert_content - path holds exactly these bytes */

static void
assert_content(const char *path, const void *data, size_t len)
{
	char *got;
	size_t have = 0;
	ssize_t n;
	int fd;

	ck_assert_ptr_nonnull(got = malloc(len + 1));
	ck_assert_int_ge(fd = open(path, O_RDONLY), 0);
	/* One byte more than expected, to see a file that is too long. */
	while (have < len + 1
	    && (n = read(fd, got + have, len + 1 - have)) > 0)
		have += (size_t)n;
	(void)close(fd);
	ck_assert_uint_eq(have, len);
	ck_assert(memcmp(got, data, len) == 0);
	free(got);
}

static struct maildir *
open_with_users(void)
{
	struct maildir *md;

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 1));
	ck_assert_int_eq(maildir_add_user(md, "alice"), 0);
	ck_assert_int_eq(maildir_add_user(md, "bob"), 0);
	return (md);
}

/* count_fds - descriptors open in this process */

static int
count_fds(void)
{
	int n = count_entries("/proc/self/fd");

	ck_assert_int_gt(n, 0);
	return (n);
}

/*
 * The tree.
 */

START_TEST(test_open_creates_tree)
{
	struct maildir *md;
	char p[PATH_MAX];
	static const char *const sub[] = { "tmp", "new", "cur" };
	size_t i;

	ck_assert_int_eq(access(root, F_OK), -1);
	md = open_with_users();
	ck_assert_int_eq(mode_of(root, 1), 0700);
	xpath(p, "%s/.OTHER_SERVERS", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	ck_assert_int_eq(count_entries(p), 0);
	for (i = 0; i < 3; i++) {
		xpath(p, "%s/alice/%s", root, sub[i]);
		ck_assert_int_eq(mode_of(p, 1), 0700);
		ck_assert_int_eq(count_entries(p), 0);
		xpath(p, "%s/bob/%s", root, sub[i]);
		ck_assert_int_eq(mode_of(p, 1), 0700);
	}
	xpath(p, "%s/alice", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	ck_assert_int_eq(count_entries(p), 3);
	/* alice, bob, .OTHER_SERVERS and nothing else */
	ck_assert_int_eq(count_entries(root), 3);
	/* Adding a user twice is harmless. */
	ck_assert_int_eq(maildir_add_user(md, "alice"), 0);
	maildir_close(md);
}
END_TEST

START_TEST(test_open_existing_tree)
{
	struct maildir *md;
	struct iovec iov = { .iov_base = (void *)"kept\n", .iov_len = 5 };
	struct maildir_copy copy = { .mailbox = "alice", .iov = &iov,
	    .iovcnt = 1 };
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];

	md = open_with_users();
	ck_assert_int_eq(maildir_deliver(md, "ID1", &copy, 1), 0);
	maildir_close(md);

	/* A restart finds the tree as it was and keeps the mail. */
	md = open_with_users();
	xpath(p, "%s/alice/new", root);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_content(p, "kept\n", 5);
	ck_assert_int_eq(maildir_deliver(md, "ID2", &copy, 1), 0);
	ck_assert_int_eq(count_files(), 2);
	maildir_close(md);
	maildir_close(NULL);
}
END_TEST

START_TEST(test_open_refused)
{
	char p[PATH_MAX];

	errno = 0;
	ck_assert_ptr_null(maildir_open(NULL, HOST, 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(maildir_open(root, "", 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(maildir_open(root, NULL, 1));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(access(root, F_OK), -1);

	/* Only the last component is made. */
	xpath(p, "%s/missing/root", tmpdir);
	errno = 0;
	ck_assert_ptr_null(maildir_open(p, HOST, 1));
	ck_assert_int_eq(errno, ENOENT);

	/* A root that is a file. */
	write_plain(root, "not a directory\n");
	errno = 0;
	ck_assert_ptr_null(maildir_open(root, HOST, 1));
	ck_assert_int_eq(errno, ENOTDIR);
}
END_TEST

START_TEST(test_add_user_refused)
{
	static const char *const bad[] = {
		"", ".", "..", ".hidden", ".OTHER_SERVERS", "a/b", "/etc",
		"al ice", "al\nice", "al\tice", "\xc3\xa9t\xc3\xa9",
	};
	char longname[NAME_MAX + 2];
	struct maildir *md;
	size_t i;

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 1));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(maildir_add_user(md, bad[i]) == -1,
		    "user \"%s\" accepted", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	errno = 0;
	ck_assert_int_eq(maildir_add_user(md, longname), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(maildir_add_user(md, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(maildir_add_user(NULL, "alice"), -1);
	ck_assert_int_eq(errno, EINVAL);
	/* Nothing but the queue was made. */
	ck_assert_int_eq(count_entries(root), 1);

	/* The longest allowed name works. */
	longname[NAME_MAX] = '\0';
	ck_assert_int_eq(maildir_add_user(md, longname), 0);
	ck_assert_int_eq(count_entries(root), 2);
	maildir_close(md);
}
END_TEST

/*
 * Names.
 */

START_TEST(test_name_format)
{
	struct maildir *md;
	char name[MAILDIR_NAME_MAX];
	char *end;
	long long secs;
	time_t before;
	time_t after;

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	before = time(NULL);
	ck_assert_int_eq(maildir_name(md, "0A1B2C3D4E5F6A7B8", name,
	    sizeof(name)), 0);
	after = time(NULL);
	ck_assert(name[0] >= '1' && name[0] <= '9');
	secs = strtoll(name, &end, 10);
	ck_assert_int_ge(secs, (long long)before);
	ck_assert_int_le(secs, (long long)after);
	ck_assert_str_eq(end, ".0A1B2C3D4E5F6A7B8." HOST);
	maildir_close(md);
}
END_TEST

START_TEST(test_name_host_escaped)
{
	struct maildir *md;
	char name[MAILDIR_NAME_MAX];
	char id[32];
	char *dot;

	ck_assert_ptr_nonnull(md = maildir_open(root, "a/b:c.example", 0));
	ck_assert_int_eq(maildir_name(md, "X1", name, sizeof(name)), 0);
	dot = strchr(name, '.');
	ck_assert_ptr_nonnull(dot);
	ck_assert_str_eq(dot, ".X1.a\\057b\\072c.example");
	ck_assert_ptr_null(strchr(name, '/'));
	ck_assert_ptr_null(strchr(name, ':'));
	ck_assert_int_eq(maildir_name_id(name, id, sizeof(id)), 0);
	ck_assert_str_eq(id, "X1");
	maildir_close(md);

	/* Control characters and spaces are escaped as well. */
	ck_assert_ptr_nonnull(md = maildir_open(root, "a b\n", 0));
	ck_assert_int_eq(maildir_name(md, "X1", name, sizeof(name)), 0);
	ck_assert_str_eq(strchr(name, '.'), ".X1.a\\040b\\012");
	maildir_close(md);
}
END_TEST

START_TEST(test_name_bad_id)
{
	static const char *const bad[] = {
		"", "AB.C", "AB/C", "AB-C", "AB C", "AB:C", "AB_C", "AB\nC",
		"..", "\xc3\xa9",
	};
	struct maildir *md;
	char name[MAILDIR_NAME_MAX];
	size_t i;

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(maildir_name(md, bad[i], name, sizeof(name))
		    == -1, "ID \"%s\" accepted", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	errno = 0;
	ck_assert_int_eq(maildir_name(md, NULL, name, sizeof(name)), -1);
	ck_assert_int_eq(errno, EINVAL);
	maildir_close(md);
}
END_TEST

START_TEST(test_name_too_long)
{
	struct maildir *md;
	char host[MAILDIR_NAME_MAX];
	char name[MAILDIR_NAME_MAX];

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	errno = 0;
	ck_assert_int_eq(maildir_name(md, "ABC", name, 10), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	maildir_close(md);

	/*
	 * A host name that would leave no room for a name within NAME_MAX
	 * is refused when the tree is opened, not message by message.
	 */
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	host[231] = '\0';
	ck_assert_int_eq(maildir_hostname_ok(host), 0);
	errno = 0;
	ck_assert_ptr_null(maildir_open(root, host, 0));
	ck_assert_int_eq(errno, ENAMETOOLONG);
	host[MAILDIR_HOST_MAX + 1] = '\0';
	ck_assert_int_eq(maildir_hostname_ok(host), 0);
	/* The longest one: a name with the longest ID still fits. */
	host[MAILDIR_HOST_MAX] = '\0';
	ck_assert_int_eq(maildir_hostname_ok(host), 1);
	ck_assert_ptr_nonnull(md = maildir_open(root, host, 0));
	ck_assert_int_eq(maildir_name(md, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
	    name, sizeof(name)), 0);
	ck_assert_uint_le(strlen(name) + strlen(".99999:2,") + 16, NAME_MAX);
	errno = 0;
	ck_assert_int_eq(maildir_name(md, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
	    name, sizeof(name)), -1);
	ck_assert_int_eq(errno, EINVAL);
	maildir_close(md);
	/* Escaping counts: ':' takes four bytes in a name. */
	memset(host, ':', (MAILDIR_HOST_MAX / 4) + 1);
	host[(MAILDIR_HOST_MAX / 4) + 1] = '\0';
	ck_assert_int_eq(maildir_hostname_ok(host), 0);
	ck_assert_int_eq(maildir_hostname_ok(""), 0);
}
END_TEST

static int
compare_names(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

START_TEST(test_name_unique)
{
	enum { N = 1000 };
	struct maildir *md;
	char **names;
	char id[32];
	char back[32];
	size_t i;

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	ck_assert_ptr_nonnull(names = calloc(N, sizeof(*names)));
	for (i = 0; i < N; i++) {
		ck_assert_int_lt(snprintf(id, sizeof(id), "%017zX", i * 7919),
		    (int)sizeof(id));
		ck_assert_ptr_nonnull(names[i] = malloc(MAILDIR_NAME_MAX));
		ck_assert_int_eq(maildir_name(md, id, names[i],
		    MAILDIR_NAME_MAX), 0);
		ck_assert_int_eq(maildir_name_id(names[i], back, sizeof(back)),
		    0);
		ck_assert_str_eq(back, id);
	}
	qsort(names, N, sizeof(*names), compare_names);
	for (i = 1; i < N; i++)
		ck_assert_str_ne(names[i - 1], names[i]);
	for (i = 0; i < N; i++)
		free(names[i]);
	free(names);
	maildir_close(md);
}
END_TEST

START_TEST(test_name_id_parse)
{
	static const char *const bad[] = {
		"", "ABC", "1234", "1234.", "1234..host", "1234.ABC",
		"1234.ABC.", "x234.ABC.host", ".1234.ABC.host", "1234.A-B.host",
		"1234.ABC.ho/st", "-1.ABC.host", " 1234.ABC.host",
	};
	char id[8];
	size_t i;

	ck_assert_int_eq(maildir_name_id("1234.ABC.host", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "ABC");
	/* A letter moved to cur/ carries flags after the host. */
	ck_assert_int_eq(maildir_name_id("1.Z9.a.b.c:2,S", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "Z9");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(maildir_name_id(bad[i], id, sizeof(id)) == -1,
		    "name \"%s\" accepted", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	/* An ID that does not fit: refused, not cut. */
	errno = 0;
	ck_assert_int_eq(maildir_name_id("1.ABCDEFGH.host", id, sizeof(id)),
	    -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_int_eq(maildir_name_id("1.ABCDEFG.host", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "ABCDEFG");
}
END_TEST

/*
 * Delivery.
 */

START_TEST(test_deliver_one)
{
	static const char head[] = "Return-Path: <a@b.example>\n"
	    "Delivered-To: alice@example.org\n";
	static const char body[] = "Subject: hi\n\nbody\n";
	struct iovec iov[2] = {
		{ .iov_base = (void *)head, .iov_len = sizeof(head) - 1 },
		{ .iov_base = (void *)body, .iov_len = sizeof(body) - 1 },
	};
	struct maildir_copy copy = { .mailbox = "alice", .iov = iov,
	    .iovcnt = 2 };
	char want[sizeof(head) + sizeof(body)];
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	char id[32];
	struct maildir *md;
	int do_fsync;

	memcpy(want, head, sizeof(head) - 1);
	memcpy(want + sizeof(head) - 1, body, sizeof(body));
	for (do_fsync = 0; do_fsync <= 1; do_fsync++) {
		ck_assert_ptr_nonnull(md = maildir_open(root, HOST, do_fsync));
		ck_assert_int_eq(maildir_add_user(md, "alice"), 0);
		ck_assert_int_eq(maildir_deliver(md, "ONE1", &copy, 1), 0);
		xpath(p, "%s/alice/new", root);
		only_entry(p, name, sizeof(name));
		ck_assert_int_eq(maildir_name_id(name, id, sizeof(id)), 0);
		ck_assert_str_eq(id, "ONE1");
		xpath(p, "%s/alice/new/%s", root, name);
		assert_content(p, want, strlen(want));
		ck_assert_int_eq(mode_of(p, 0), 0600);
		xpath(p, "%s/alice/tmp", root);
		ck_assert_int_eq(count_entries(p), 0);
		xpath(p, "%s/alice/cur", root);
		ck_assert_int_eq(count_entries(p), 0);
		ck_assert_int_eq(count_files(), 1);
		maildir_close(md);
		xpath(p, "%s/alice/new/%s", root, name);
		ck_assert_int_eq(unlink(p), 0);
	}
}
END_TEST

START_TEST(test_deliver_three)
{
	static const char *const text[] = {
		"Delivered-To: alice@example.org\n\nhello\n",
		"Delivered-To: bob@example.org\n\nhello\n",
		"X-Envelope-From: <s@x.example>\n"
		    "X-Envelope-To: <r@remote.example>\n\nhello\n",
	};
	struct iovec iov[3];
	struct maildir_copy copies[3] = {
		{ .mailbox = "alice" },
		{ .mailbox = "bob" },
		{ .domain = "remote.example" },
	};
	static const char *const dir[] = {
		"alice/new", "bob/new", ".OTHER_SERVERS/remote.example",
	};
	char names[2][MAILDIR_NAME_MAX];
	char p[PATH_MAX];
	struct maildir *md;
	size_t i;

	for (i = 0; i < 3; i++) {
		iov[i].iov_base = (void *)text[i];
		iov[i].iov_len = strlen(text[i]);
		copies[i].iov = &iov[i];
		copies[i].iovcnt = 1;
	}
	md = open_with_users();
	ck_assert_int_eq(maildir_deliver(md, "A1B2C3", copies, 3), 0);

	xpath(p, "%s/alice/new", root);
	only_entry(p, names[0], sizeof(names[0]));
	for (i = 0; i < 3; i++) {
		if (i < 2) {
			xpath(p, "%s/%s", root, dir[i]);
			only_entry(p, names[1], sizeof(names[1]));
			/* The same name in every target directory. */
			ck_assert_str_eq(names[1], names[0]);
		}
		xpath(p, "%s/%s/%s", root, dir[i], names[0]);
		assert_content(p, text[i], strlen(text[i]));
		ck_assert_int_eq(mode_of(p, 0), 0600);
	}
	/* The queue directory: the letter and error/, made for it. */
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	ck_assert_int_eq(count_entries(p), 2);
	xpath(p, "%s/.OTHER_SERVERS/remote.example/error", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	ck_assert_int_eq(count_entries(p), 0);
	/* Nothing left behind in any tmp/. */
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 3);
	maildir_close(md);
}
END_TEST

START_TEST(test_deliver_many_iovecs)
{
	enum { NIOV = 300, CHUNK = 4099 };
	struct iovec iov[NIOV];
	struct maildir_copy copy = { .mailbox = "bob", .iov = iov,
	    .iovcnt = NIOV };
	char *data;
	char *want;
	size_t wantlen = 0;
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	struct maildir *md;
	size_t i;

	/* More iovecs than one writev() takes, some of them empty. */
	ck_assert_ptr_nonnull(data = malloc((size_t)NIOV * CHUNK));
	ck_assert_ptr_nonnull(want = malloc((size_t)NIOV * CHUNK));
	for (i = 0; i < (size_t)NIOV * CHUNK; i++)
		data[i] = (char)(i * 31 + i / 7);
	for (i = 0; i < NIOV; i++) {
		iov[i].iov_base = data + i * CHUNK;
		iov[i].iov_len = (i % 5 == 3) ? 0 : (i * 13) % CHUNK + 1;
		memcpy(want + wantlen, iov[i].iov_base, iov[i].iov_len);
		wantlen += iov[i].iov_len;
	}
	md = open_with_users();
	ck_assert_int_eq(maildir_deliver(md, "BIG", &copy, 1), 0);
	xpath(p, "%s/bob/new", root);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/bob/new/%s", root, name);
	assert_content(p, want, wantlen);

	/* An empty letter is stored as an empty file. */
	copy.iovcnt = 0;
	copy.iov = NULL;
	copy.mailbox = "alice";
	ck_assert_int_eq(maildir_deliver(md, "EMPTY", &copy, 1), 0);
	xpath(p, "%s/alice/new", root);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_content(p, "", 0);
	maildir_close(md);
	free(want);
	free(data);
}
END_TEST

/*
 * Relaying to many domains: every letter lands, several domain copies of
 * one message share the queue's .tmp/, and the directory cache does not
 * keep a descriptor per domain ever seen.
 */

START_TEST(test_deliver_many_domains)
{
	enum { NDOM = 40 };
	char domains[NDOM][32];
	struct maildir_copy copies[NDOM];
	struct iovec iov = { .iov_base = (void *)"x\n", .iov_len = 2 };
	char id[16];
	char p[PATH_MAX];
	struct maildir *md;
	int base;
	size_t i;

	md = open_with_users();
	base = count_fds();
	memset(copies, 0, sizeof(copies));
	for (i = 0; i < NDOM; i++) {
		ck_assert_int_lt(snprintf(domains[i], sizeof(domains[i]),
		    "d%zu.example", i), (int)sizeof(domains[i]));
		copies[i].domain = domains[i];
		copies[i].iov = &iov;
		copies[i].iovcnt = 1;
		ck_assert_int_lt(snprintf(id, sizeof(id), "S%zu", i),
		    (int)sizeof(id));
		ck_assert_int_eq(maildir_deliver(md, id, &copies[i], 1), 0);
		ck_assert_int_le(count_fds(), base + 16);
	}
	ck_assert_int_eq(maildir_deliver(md, "ALL", copies, NDOM), 0);
	ck_assert_int_le(count_fds(), base + 16);
	for (i = 0; i < NDOM; i++) {
		xpath(p, "%s/.OTHER_SERVERS/%s", root, domains[i]);
		ck_assert_int_eq(count_entries(p), 3);
	}
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 2 * NDOM);
	maildir_close(md);
}
END_TEST

/* The delivery stage may remove a domain directory the cache holds. */

START_TEST(test_deliver_domain_recreated)
{
	struct iovec iov = { .iov_base = (void *)"q\n", .iov_len = 2 };
	struct maildir_copy copy = { .domain = "remote.example", .iov = &iov,
	    .iovcnt = 1 };
	char p[PATH_MAX];
	struct maildir *md;

	md = open_with_users();
	ck_assert_int_eq(maildir_deliver(md, "R1", &copy, 1), 0);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_eq(nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	ck_assert_int_eq(access(p, F_OK), -1);

	ck_assert_int_eq(maildir_deliver(md, "R2", &copy, 1), 0);
	ck_assert_int_eq(count_entries(p), 2);
	xpath(p, "%s/.OTHER_SERVERS/remote.example/error", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	ck_assert_int_eq(count_files(), 1);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	maildir_close(md);
}
END_TEST

/*
 * A file already under the name a delivery wants is never replaced, and
 * the copies already in place are taken back.
 */

START_TEST(test_deliver_never_replaces)
{
	struct iovec iov = { .iov_base = (void *)"new\n", .iov_len = 4 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "bob", .iov = &iov, .iovcnt = 1 },
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX];
	struct maildir *md;
	long long now;
	int k;

	md = open_with_users();
	/* Plant the name for this second and the next ones. */
	now = (long long)time(NULL);
	for (k = 0; k < 3; k++) {
		xpath(p, "%s/alice/new/%lld.DUP.%s", root, now + k, HOST);
		write_plain(p, "old\n");
	}
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "DUP", copies, 2), -1);
	ck_assert_int_eq(errno, EEXIST);
	for (k = 0; k < 3; k++) {
		xpath(p, "%s/alice/new/%lld.DUP.%s", root, now + k, HOST);
		assert_content(p, "old\n", 4);
	}
	ck_assert_int_eq(count_files(), 3);
	maildir_close(md);
}
END_TEST

/*
 * Failures: all or nothing.
 */

static const char *const fail_text = "the letter\n";

static void
three_copies(struct maildir_copy copies[3], struct iovec *iov)
{
	iov->iov_base = (void *)fail_text;
	iov->iov_len = strlen(fail_text);
	memset(copies, 0, 3 * sizeof(copies[0]));
	copies[0].mailbox = "alice";
	copies[1].mailbox = "bob";
	copies[2].domain = "remote.example";
	copies[0].iov = copies[1].iov = copies[2].iov = iov;
	copies[0].iovcnt = copies[1].iovcnt = copies[2].iovcnt = 1;
}

/*
 * The second copy cannot be written (bob/tmp is a file now, so it
 * cannot be made again either): the first one's tmp file goes.
 */

START_TEST(test_fail_second_write)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	char p[PATH_MAX];
	struct maildir *md;

	three_copies(copies, &iov);
	md = open_with_users();
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(rmdir(p), 0);
	write_plain(p, "");
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "F1", copies, 3), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* Only the planted bob/tmp file remains. */
	ck_assert_int_eq(count_files(), 1);
	assert_content(p, "", 0);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 0);
	maildir_close(md);
}
END_TEST

/*
 * The second copy cannot be renamed into place: the first is already in
 * alice/new and must go, and so must the third, still in the queue's
 * .tmp/.
 */

START_TEST(test_fail_second_rename)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	char p[PATH_MAX];
	struct maildir *md;

	three_copies(copies, &iov);
	md = open_with_users();
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(rmdir(p), 0);
	/* The name is taken by a file now, as a confused admin might do. */
	write_plain(p, "");
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "F2", copies, 3), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* Only the planted bob/new file remains. */
	ck_assert_int_eq(count_files(), 1);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_eq(count_entries(p), 1);	/* error/ only */
	maildir_close(md);
}
END_TEST

/*
 * A write that stops half-way (as when the disk fills up): the errno
 * comes through unchanged and no file stays, not even the complete first
 * copy.
 */

START_TEST(test_fail_file_size_limit)
{
	enum { LIMIT = 4096, BIG = 10000 };
	struct rlimit saved;
	struct rlimit small;
	void (*saved_handler)(int);
	struct iovec iov[2];
	struct maildir_copy copies[2] = {
		{ .mailbox = "alice", .iov = &iov[0], .iovcnt = 1 },
		{ .domain = "remote.example", .iov = &iov[1], .iovcnt = 1 },
	};
	char *big;
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	struct maildir *md;
	int ret;
	int err;

	ck_assert_ptr_nonnull(big = malloc(BIG));
	memset(big, 'b', BIG);
	iov[0].iov_base = (void *)"small\n";
	iov[0].iov_len = 6;
	iov[1].iov_base = big;
	iov[1].iov_len = BIG;
	md = open_with_users();

	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
	small = saved;
	small.rlim_cur = LIMIT;
	saved_handler = signal(SIGXFSZ, SIG_IGN);
	ck_assert(saved_handler != SIG_ERR);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	errno = 0;
	ret = maildir_deliver(md, "FULL", copies, 2);
	err = errno;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
	ck_assert(signal(SIGXFSZ, saved_handler) != SIG_ERR);

	ck_assert_int_eq(ret, -1);
	ck_assert_int_eq(err, EFBIG);
	ck_assert_int_eq(count_files(), 0);

	/* Without the limit the same letter is stored whole. */
	ck_assert_int_eq(maildir_deliver(md, "ROOMY", copies, 2), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/alice/new", root);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/.OTHER_SERVERS/remote.example/%s", root, name);
	assert_content(p, big, BIG);
	ck_assert_int_eq(count_files(), 2);
	maildir_close(md);
	free(big);
}
END_TEST

START_TEST(test_refuse_unknown_mailbox)
{
	static const char *const unknown[] = { "carol", "ALICE", "alice/",
	    "../alice", ".OTHER_SERVERS", "" };
	struct iovec iov = { .iov_base = (void *)"x\n", .iov_len = 2 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
		{ .iov = &iov, .iovcnt = 1 },
	};
	struct maildir *md;
	size_t i;

	md = open_with_users();
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		copies[1].mailbox = unknown[i];
		errno = 0;
		ck_assert_msg(maildir_deliver(md, "U1", copies, 2) == -1,
		    "mailbox \"%s\" accepted", unknown[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	ck_assert_int_eq(count_files(), 0);
	maildir_close(md);
}
END_TEST

START_TEST(test_refuse_unsafe_domain)
{
	static const char *const bad[] = {
		"", ".", "..", ".evil", ".tmp", "../x", "a/b", "/etc", "a..b",
		"a\\b", "a b", "a\nb", "[127.0.0.1]", "[IPv6:::1]",
		"Remote.Example", "r\xc3\xa9mote.example",
	};
	char toolong[MAILDIR_NAME_MAX + 1];
	struct iovec iov = { .iov_base = (void *)"x\n", .iov_len = 2 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
		{ .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX];
	struct maildir *md;
	size_t i;

	md = open_with_users();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		copies[1].domain = bad[i];
		errno = 0;
		ck_assert_msg(maildir_deliver(md, "D1", copies, 2) == -1,
		    "domain \"%s\" accepted", bad[i]);
		ck_assert_int_eq(errno, EINVAL);
	}
	memset(toolong, 'a', 256);
	toolong[256] = '\0';
	copies[1].domain = toolong;
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "D1", copies, 2), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(count_files(), 0);
	/* No directory was made for any of them. */
	xpath(p, "%s/.OTHER_SERVERS", root);
	ck_assert_int_eq(count_entries(p), 1);
	ck_assert_int_eq(count_entries(tmpdir), 1);

	/* 255 octets is still a domain. */
	toolong[255] = '\0';
	ck_assert_int_eq(maildir_deliver(md, "D2", copies, 2), 0);
	ck_assert_int_eq(count_files(), 2);
	maildir_close(md);
}
END_TEST

START_TEST(test_refuse_bad_copies)
{
	struct iovec iov = { .iov_base = (void *)"x\n", .iov_len = 2 };
	struct maildir_copy both = { .mailbox = "alice",
	    .domain = "remote.example", .iov = &iov, .iovcnt = 1 };
	struct maildir_copy neither = { .iov = &iov, .iovcnt = 1 };
	struct maildir_copy negative = { .mailbox = "alice", .iov = &iov,
	    .iovcnt = -1 };
	struct maildir_copy noiov = { .mailbox = "alice", .iovcnt = 1 };
	struct maildir_copy users2[2] = {
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
	};
	struct maildir_copy domains2[3] = {
		{ .domain = "remote.example", .iov = &iov, .iovcnt = 1 },
		{ .mailbox = "bob", .iov = &iov, .iovcnt = 1 },
		{ .domain = "remote.example", .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX];
	struct maildir *md;

	md = open_with_users();
#define REFUSED(call) do { \
		errno = 0; \
		ck_assert_int_eq((call), -1); \
		ck_assert_int_eq(errno, EINVAL); \
	} while (0)
	REFUSED(maildir_deliver(md, "B1", &both, 1));
	REFUSED(maildir_deliver(md, "B1", &neither, 1));
	REFUSED(maildir_deliver(md, "B1", &negative, 1));
	REFUSED(maildir_deliver(md, "B1", &noiov, 1));
	/* Two copies for one target directory. */
	REFUSED(maildir_deliver(md, "B1", users2, 2));
	REFUSED(maildir_deliver(md, "B1", domains2, 3));
	REFUSED(maildir_deliver(md, "B1", users2, 0));
	REFUSED(maildir_deliver(md, "B1", NULL, 1));
	REFUSED(maildir_deliver(md, "B-1", users2, 1));
	REFUSED(maildir_deliver(md, "", users2, 1));
	REFUSED(maildir_deliver(md, NULL, users2, 1));
	REFUSED(maildir_deliver(NULL, "B1", users2, 1));
#undef REFUSED
	ck_assert_int_eq(count_files(), 0);
	xpath(p, "%s/.OTHER_SERVERS", root);
	ck_assert_int_eq(count_entries(p), 1);
	/* The same copies, minus the duplicate, are fine. */
	ck_assert_int_eq(maildir_deliver(md, "B2", domains2, 2), 0);
	ck_assert_int_eq(count_files(), 2);
	maildir_close(md);
}
END_TEST

/*
 * Start-up clean-up of tmp/.
 */

START_TEST(test_clean_tmp)
{
	char p[PATH_MAX];
	struct maildir *md;

	md = open_with_users();
	xpath(p, "%s/alice/tmp/1.A.%s.0", root, HOST);
	write_plain(p, "stale");
	xpath(p, "%s/alice/tmp/2.A2.%s", root, HOST);
	write_plain(p, "stale");
	xpath(p, "%s/bob/tmp/1.B.%s.0", root, HOST);
	write_plain(p, "stale");
	xpath(p, "%s/.OTHER_SERVERS/.tmp/1.C.%s.2", root, HOST);
	write_plain(p, "stale");
	/*
	 * Not ours to remove: a name that is no Maildir name, another
	 * host's files (one whose name starts like ours, too), a directory
	 * in tmp/, a letter in new/.
	 */
	xpath(p, "%s/alice/tmp/junk", root);
	write_plain(p, "keep");
	xpath(p, "%s/alice/tmp/1.F.other.example.0", root);
	write_plain(p, "keep");
	xpath(p, "%s/.OTHER_SERVERS/.tmp/1.G.%s.example.0", root, HOST);
	write_plain(p, "keep");
	xpath(p, "%s/bob/tmp/1.H.%sx", root, HOST);
	write_plain(p, "keep");
	xpath(p, "%s/alice/tmp/3.K.%s.keep.d", root, HOST);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	xpath(p, "%s/alice/new/1.D.h", root);
	write_plain(p, "mail");

	ck_assert_int_eq(maildir_clean_tmp(md), 4);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 3);
	xpath(p, "%s/alice/tmp/3.K.%s.keep.d", root, HOST);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	xpath(p, "%s/alice/tmp/junk", root);
	assert_content(p, "keep", 4);
	xpath(p, "%s/alice/tmp/1.F.other.example.0", root);
	assert_content(p, "keep", 4);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(count_entries(p), 1);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 1);
	xpath(p, "%s/alice/new/1.D.h", root);
	assert_content(p, "mail", 4);
	ck_assert_int_eq(count_files(), 5);
	/* Again: nothing left to do, and reading twice works. */
	ck_assert_int_eq(maildir_clean_tmp(md), 0);
	xpath(p, "%s/bob/tmp/1.E.%s.0", root, HOST);
	write_plain(p, "stale");
	ck_assert_int_eq(maildir_clean_tmp(md), 1);
	ck_assert_int_eq(count_files(), 5);
	errno = 0;
	ck_assert_int_eq(maildir_clean_tmp(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	maildir_close(md);
}
END_TEST

/*
 * Group commit: batches of messages, each still all or nothing.
 */

/* Nothing of a staged message is visible in new/ or the queue yet. */

START_TEST(test_batch_commits_all)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	struct maildir_batch *b;
	char p[PATH_MAX];
	struct maildir *md;
	int errs[3] = { -1, -1, -1 };

	three_copies(copies, &iov);
	md = open_with_users();
	ck_assert_ptr_nonnull(b = maildir_batch_new(md));
	ck_assert_int_eq(maildir_batch_add(b, "M1", copies, 3), 0);
	ck_assert_int_eq(maildir_batch_add(b, "M2", &copies[0], 1), 1);
	ck_assert_int_eq(maildir_batch_add(b, "M3", &copies[2], 1), 2);
	ck_assert_uint_eq(maildir_batch_count(b), 3);
	ck_assert_uint_eq(maildir_batch_files(b), 5);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_eq(count_entries(p), 1);	/* error/ only */

	ck_assert_uint_eq(maildir_batch_commit(b, errs), 0);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], 0);
	ck_assert_int_eq(errs[2], 0);
	ck_assert_uint_eq(maildir_batch_count(b), 0);
	ck_assert_uint_eq(maildir_batch_files(b), 0);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 2);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 1);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_eq(count_entries(p), 3);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 5);

	/* The batch is reused. */
	ck_assert_int_eq(maildir_batch_add(b, "M4", &copies[1], 1), 0);
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 0);
	ck_assert_int_eq(count_files(), 6);
	maildir_batch_free(b);
	maildir_close(md);
}
END_TEST

/*
 * One message of a batch cannot be placed (bob/new is gone): it goes
 * whole, its copy already in alice/new included; the others stay.
 */

START_TEST(test_batch_one_fails_alone)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	struct maildir_batch *b;
	char p[PATH_MAX];
	struct maildir *md;
	int errs[3];

	three_copies(copies, &iov);
	md = open_with_users();
	ck_assert_ptr_nonnull(b = maildir_batch_new(md));
	ck_assert_int_eq(maildir_batch_add(b, "OK1", &copies[0], 1), 0);
	ck_assert_int_eq(maildir_batch_add(b, "BAD", copies, 3), 1);
	ck_assert_int_eq(maildir_batch_add(b, "OK2", &copies[2], 1), 2);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(rmdir(p), 0);
	write_plain(p, "");
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 1);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], ENOENT);
	ck_assert_int_eq(errs[2], 0);
	/* OK1 in alice/new, OK2 queued, the planted file: nothing of BAD. */
	ck_assert_int_eq(count_files(), 3);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 1);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_eq(count_entries(p), 2);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	maildir_batch_free(b);
	maildir_close(md);
}
END_TEST

/* A message that cannot be staged leaves the batch as it was. */

START_TEST(test_batch_add_fails_alone)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	struct maildir_batch *b;
	char p[PATH_MAX];
	struct maildir *md;
	int errs[2];

	three_copies(copies, &iov);
	md = open_with_users();
	ck_assert_ptr_nonnull(b = maildir_batch_new(md));
	ck_assert_int_eq(maildir_batch_add(b, "FIRST", &copies[0], 1), 0);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(rmdir(p), 0);
	write_plain(p, "");
	errno = 0;
	ck_assert_int_eq(maildir_batch_add(b, "BAD", copies, 3), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_uint_eq(maildir_batch_count(b), 1);
	ck_assert_uint_eq(maildir_batch_files(b), 1);
	/* Only FIRST's tmp file exists, and the planted bob/tmp. */
	ck_assert_int_eq(count_files(), 2);
	ck_assert_int_eq(maildir_batch_add(b, "LAST", &copies[2], 1), 1);
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 0);
	ck_assert_int_eq(count_files(), 3);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 1);
	maildir_batch_free(b);
	maildir_close(md);
}
END_TEST

/* Freeing a batch that was never committed leaves no file behind. */

START_TEST(test_batch_free_removes_staged)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	struct maildir_batch *b;
	struct maildir *md;
	int fds;

	three_copies(copies, &iov);
	md = open_with_users();
	fds = count_fds();
	ck_assert_ptr_nonnull(b = maildir_batch_new(md));
	ck_assert_int_eq(maildir_batch_add(b, "GONE1", copies, 3), 0);
	ck_assert_int_eq(maildir_batch_add(b, "GONE2", copies, 2), 1);
	ck_assert_int_eq(count_files(), 5);
	maildir_batch_free(b);
	ck_assert_int_eq(count_files(), 0);
	/* The open tmp files were closed; the domain stays cached. */
	ck_assert_int_eq(count_fds(), fds + 1);
	maildir_batch_free(NULL);
	errno = 0;
	ck_assert_ptr_null(maildir_batch_new(NULL));
	ck_assert_int_eq(errno, EINVAL);
	maildir_close(md);
}
END_TEST

/*
 * Without fsync (tmpfs benchmarks) a batch still places every copy, and
 * keeps no descriptor open between add and commit.
 */

START_TEST(test_batch_without_fsync)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	struct maildir_batch *b;
	struct maildir *md;
	int errs[2];
	int fds;

	three_copies(copies, &iov);
	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	ck_assert_int_eq(maildir_add_user(md, "alice"), 0);
	ck_assert_int_eq(maildir_add_user(md, "bob"), 0);
	ck_assert_ptr_nonnull(b = maildir_batch_new(md));
	ck_assert_int_eq(maildir_batch_add(b, "NF1", copies, 3), 0);
	fds = count_fds();
	ck_assert_int_eq(maildir_batch_add(b, "NF2", copies, 2), 1);
	ck_assert_int_eq(count_fds(), fds);
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 0);
	ck_assert_int_eq(count_files(), 5);
	maildir_batch_free(b);
	maildir_close(md);
}
END_TEST

/*
 * Directories removed while the Maildir is open: a user's new/, tmp/ or
 * whole directory is made again by the next delivery, and the
 * descriptors of the removed ones are closed.
 */

/* remove_tree - remove path and everything below it */

static void
remove_tree(const char *path)
{
	ck_assert_int_eq(nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}

/* assert_user_tree - root/user/{tmp,new,cur} are directories, mode 0700 */

static void
assert_user_tree(const char *user)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char p[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		xpath(p, "%s/%s/%s", root, user, subs[i]);
		ck_assert_int_eq(mode_of(p, 1), 0700);
	}
}

START_TEST(test_user_dirs_made_again)
{
	struct iovec iov = { .iov_base = (void *)"hi\n", .iov_len = 3 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
		{ .mailbox = "bob", .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	struct maildir *md;
	int fds;

	md = open_with_users();
	fds = count_fds();
	ck_assert_int_eq(maildir_deliver(md, "U1", copies, 1), 0);

	/* new/, with the letter in it: the rename finds it gone. */
	xpath(p, "%s/alice/new", root);
	remove_tree(p);
	ck_assert_int_eq(maildir_deliver(md, "U2", copies, 1), 0);
	assert_user_tree("alice");
	only_entry(p, name, sizeof(name));
	ck_assert_ptr_nonnull(strstr(name, ".U2."));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_content(p, "hi\n", 3);
	ck_assert_int_eq(count_fds(), fds);

	/* tmp/: creating the file finds it gone. */
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(rmdir(p), 0);
	ck_assert_int_eq(maildir_deliver(md, "U3", copies, 1), 0);
	assert_user_tree("alice");
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 2);
	ck_assert_int_eq(count_fds(), fds);

	/* The whole user directory, then a message for alice and bob. */
	xpath(p, "%s/alice", root);
	remove_tree(p);
	ck_assert_int_eq(maildir_deliver(md, "U4", copies, 2), 0);
	assert_user_tree("alice");
	xpath(p, "%s/alice/new", root);
	only_entry(p, name, sizeof(name));
	ck_assert_ptr_nonnull(strstr(name, ".U4."));
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 1);
	ck_assert_int_eq(count_files(), 2);
	ck_assert_int_eq(count_fds(), fds);

	/* The kept descriptors are the new ones: tmp/ is cleaned there. */
	xpath(p, "%s/alice/tmp/1.LEFT.%s.0", root, HOST);
	write_plain(p, "x");
	ck_assert_int_eq(maildir_clean_tmp(md), 1);
	ck_assert_int_eq(access(p, F_OK), -1);
	maildir_close(md);
}
END_TEST

/*
 * new/ replaced by a file: refused while the file is there (which is
 * left alone), stored again once new/ is a directory again.
 */

START_TEST(test_user_new_repaired)
{
	struct iovec iov = { .iov_base = (void *)"again\n", .iov_len = 6 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "bob", .iov = &iov, .iovcnt = 1 },
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	struct maildir *md;
	int fds;
	int k;

	md = open_with_users();
	fds = count_fds();
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(rmdir(p), 0);
	write_plain(p, "not a directory\n");
	for (k = 0; k < 2; k++) {
		errno = 0;
		ck_assert_int_eq(maildir_deliver(md, "R1", copies, 2), -1);
		ck_assert_int_eq(errno, ENOENT);
		ck_assert_int_eq(count_files(), 1);
		assert_content(p, "not a directory\n", 16);
		ck_assert_int_eq(count_fds(), fds);
	}

	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(maildir_deliver(md, "R2", copies, 2), 0);
	only_entry(p, name, sizeof(name));
	ck_assert_ptr_nonnull(strstr(name, ".R2."));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_content(p, "again\n", 6);
	xpath(p, "%s/bob/new/%s", root, name);
	assert_content(p, "again\n", 6);
	ck_assert_int_eq(count_files(), 2);
	ck_assert_int_eq(count_fds(), fds);
	maildir_close(md);
}
END_TEST

/*
 * In a batch: alice/new goes after three messages are staged. The first
 * to be placed opens it again; the others, still holding the old
 * descriptor, follow. Old descriptors are closed once the batch is done.
 * A tmp/ removed with a staged file in it loses that message only.
 */

START_TEST(test_batch_user_dirs_made_again)
{
	struct maildir_copy copies[3];
	struct iovec iov;
	struct maildir_batch *b;
	char p[PATH_MAX];
	struct maildir *md;
	int errs[3];
	int fds;

	three_copies(copies, &iov);
	md = open_with_users();
	/* The domain directory is cached from here on. */
	ck_assert_int_eq(maildir_deliver(md, "WARM", &copies[2], 1), 0);
	fds = count_fds();
	ck_assert_ptr_nonnull(b = maildir_batch_new(md));
	ck_assert_int_eq(maildir_batch_add(b, "B1", &copies[0], 1), 0);
	ck_assert_int_eq(maildir_batch_add(b, "B2", copies, 3), 1);
	ck_assert_int_eq(maildir_batch_add(b, "B3", &copies[0], 2), 2);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(rmdir(p), 0);
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 0);
	ck_assert_int_eq(errs[0], 0);
	ck_assert_int_eq(errs[1], 0);
	ck_assert_int_eq(errs[2], 0);
	assert_user_tree("alice");
	ck_assert_int_eq(count_entries(p), 3);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 2);
	ck_assert_int_eq(count_files(), 7);
	ck_assert_int_eq(count_fds(), fds);

	/* tmp/ removed under a staged file: B4 goes whole, B5 is stored. */
	ck_assert_int_eq(maildir_batch_add(b, "B4", copies, 2), 0);
	xpath(p, "%s/bob/tmp", root);
	remove_tree(p);
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 1);
	ck_assert_int_eq(errs[0], ENOENT);
	ck_assert_int_eq(count_files(), 7);
	ck_assert_int_eq(count_fds(), fds);
	ck_assert_int_eq(maildir_batch_add(b, "B5", copies, 2), 0);
	ck_assert_uint_eq(maildir_batch_commit(b, errs), 0);
	ck_assert_int_eq(errs[0], 0);
	assert_user_tree("bob");
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 3);
	ck_assert_int_eq(count_files(), 9);
	ck_assert_int_eq(count_fds(), fds);
	maildir_batch_free(b);
	maildir_close(md);
}
END_TEST

/*
 * Spool files: the text of a message, copied after the header lines.
 */

/* spool_with - a spool of md holding len bytes of text, offset at the end */

static int
spool_with(struct maildir *md, const char *text, size_t len)
{
	size_t done = 0;
	ssize_t n;
	int fd;

	ck_assert_int_ge(fd = maildir_spool_open(md), 0);
	while (done < len) {
		ck_assert_int_gt(n = write(fd, text + done, len - done), 0);
		done += (size_t)n;
	}
	return (fd);
}

/* assert_anonymous - fd is a regular file open read-write, with no name */

static void
assert_anonymous(int fd)
{
	struct stat st;
	int flags;

	ck_assert_int_ne(flags = fcntl(fd, F_GETFL), -1);
	ck_assert_int_eq(flags & O_ACCMODE, O_RDWR);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_nlink, 0);
}

/* assert_named_content - the one file of dir named for id holds data */

static void
assert_named_content(const char *dir, const char *id, const void *data,
    size_t len)
{
	char want[MAILDIR_NAME_MAX];
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	xpath(want, ".%s.", id);
	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (strstr(de->d_name, want) == NULL)
			continue;
		xpath(p, "%s/%s", dir, de->d_name);
		assert_content(p, data, len);
		n++;
	}
	(void)closedir(d);
	ck_assert_int_eq(n, 1);
}

/*
 * maildir_spool_open(): readable and writable, on the tree, and no
 * entry in any directory, before and after it is used and closed.
 */

START_TEST(test_spool_open)
{
	static const char text[] = "Subject: spooled\n\nbody\n";
	char buf[sizeof(text)];
	char p[PATH_MAX];
	struct maildir *md;
	int fd1, fd2;

	md = open_with_users();
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_ge(fd1 = maildir_spool_open(md), 0);
	ck_assert_int_ge(fd2 = maildir_spool_open(md), 0);
	ck_assert_int_ne(fd1, fd2);
	assert_anonymous(fd1);
	assert_anonymous(fd2);
	ck_assert_int_eq(write(fd1, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	ck_assert_int_eq(pread(fd1, buf, sizeof(buf), 0),
	    (ssize_t)sizeof(text) - 1);
	ck_assert(memcmp(buf, text, sizeof(text) - 1) == 0);
	/* Two spools are two files. */
	ck_assert_int_eq(pread(fd2, buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_int_eq(close(fd1), 0);
	ck_assert_int_eq(close(fd2), 0);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 0);
	errno = 0;
	ck_assert_int_eq(maildir_spool_open(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	maildir_close(md);
}
END_TEST

/*
 * A copy with text_fd/text_len: its iovecs, then exactly bytes
 * [0, text_len) of the text, whatever the file's offset, shared by
 * three copies, for a text of many copy chunks; from a spool on
 * another file system too (/dev/shm, where the kernel cannot copy
 * across: the bounded copy by hand). The spool holds more than
 * text_len: the rest is not copied.
 */

START_TEST(test_copy_text)
{
	enum { TEXTLEN = 100003, EXTRA = 77 };
	static const char *const heads[] = {
		"Delivered-To: alice@example.org\n",
		"Delivered-To: bob@example.org\n",
		"X-Envelope-To: <r@remote.example>\n",
	};
	static const char *const dirs[] = {
		"alice/new", "bob/new", ".OTHER_SERVERS/remote.example",
	};
	static const char received[] = "Received: by test\n";
	struct iovec iov[3][2];
	struct maildir_copy copies[3];
	char name[MAILDIR_NAME_MAX];
	char p[PATH_MAX];
	char *text, *want;
	struct maildir *md;
	size_t i, hlen;
	int fds[2], nfds = 1, k;

	ck_assert_ptr_nonnull(text = malloc(TEXTLEN + EXTRA));
	ck_assert_ptr_nonnull(want = malloc(TEXTLEN + 256));
	for (i = 0; i < TEXTLEN + EXTRA; i++)
		text[i] = (i % 80 == 79) ? '\n' : (char)('!' + (i * 11 + i / 80)
		    % 90);
	md = open_with_users();
	fds[0] = spool_with(md, text, TEXTLEN + EXTRA);
	xpath(p, "/dev/shm/check_maildir.XXXXXX");
	if ((fds[1] = mkstemp(p)) != -1) {
		ck_assert_int_eq(unlink(p), 0);
		ck_assert_int_eq(write(fds[1], text, TEXTLEN + EXTRA),
		    TEXTLEN + EXTRA);
		nfds = 2;
	}
	for (k = 0; k < nfds; k++) {
		memset(copies, 0, sizeof(copies));
		copies[0].mailbox = "alice";
		copies[1].mailbox = "bob";
		copies[2].domain = "remote.example";
		for (i = 0; i < 3; i++) {
			iov[i][0].iov_base = (void *)heads[i];
			iov[i][0].iov_len = strlen(heads[i]);
			iov[i][1].iov_base = (void *)received;
			iov[i][1].iov_len = sizeof(received) - 1;
			copies[i].iov = iov[i];
			copies[i].iovcnt = 2;
			copies[i].text_fd = fds[k];
			copies[i].text_len = TEXTLEN;
		}
		ck_assert_int_eq(maildir_deliver(md, k == 0 ? "TEXT1" : "TEXT2",
		    copies, 3), 0);
		xpath(p, "%s/alice/new", root);
		only_entry(p, name, sizeof(name));
		for (i = 0; i < 3; i++) {
			hlen = strlen(heads[i]);
			memcpy(want, heads[i], hlen);
			memcpy(want + hlen, received, sizeof(received) - 1);
			memcpy(want + hlen + sizeof(received) - 1, text,
			    TEXTLEN);
			/* The same name in every target directory. */
			xpath(p, "%s/%s/%s", root, dirs[i], name);
			assert_content(p, want, hlen + sizeof(received) - 1
			    + TEXTLEN);
			ck_assert_int_eq(unlink(p), 0);
		}
		/* The text is still whole for the next message. */
		xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
		ck_assert_int_eq(count_entries(p), 0);
		ck_assert_int_eq(count_files(), 0);
	}
	for (k = 0; k < nfds; k++)
		ck_assert_int_eq(close(fds[k]), 0);
	maildir_close(md);
	free(want);
	free(text);
}
END_TEST

/* A text shorter than text_len: EIO, and no copy is left anywhere. */

START_TEST(test_copy_text_short)
{
	static const char text[] = "only this much\n";
	struct iovec iov = { .iov_base = (void *)"H: v\n", .iov_len = 5 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
		{ .domain = "remote.example", .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX];
	struct maildir *md;
	int fd;

	md = open_with_users();
	fd = spool_with(md, text, sizeof(text) - 1);
	copies[0].text_fd = copies[1].text_fd = fd;
	copies[0].text_len = copies[1].text_len = sizeof(text);
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "SHORT", copies, 2), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(count_files(), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	copies[0].text_len = copies[1].text_len = sizeof(text) - 1;
	ck_assert_int_eq(maildir_deliver(md, "WHOLE", copies, 2), 0);
	ck_assert_int_eq(count_files(), 2);
	ck_assert_int_eq(close(fd), 0);
	maildir_close(md);
}
END_TEST

/*
 * queue_removed - remove what (below root) while md is open, then
 * (spool_first) open a spool and store a queued message from it, or
 * store first from an older spool and open a spool afterwards. Both
 * work, and the queue's directories are there again.
 */

static void
queue_removed(const char *what, int spool_first)
{
	static const char head[] = "X-Envelope-To: <r@remote.example>\n";
	static const char text[] = "Subject: queued\n\nagain\n";
	struct iovec iov = { .iov_base = (void *)head,
	    .iov_len = sizeof(head) - 1 };
	struct maildir_copy copy = { .domain = "remote.example", .iov = &iov,
	    .iovcnt = 1 };
	char want[sizeof(head) + sizeof(text)];
	char p[PATH_MAX];
	struct maildir *md;
	int fd, later, fds, whole = strcmp(what, MAILDIR_QUEUE_DIR) == 0;

	memcpy(want, head, sizeof(head) - 1);
	memcpy(want + sizeof(head) - 1, text, sizeof(text));
	md = open_with_users();
	/* A domain directory cached, and a spool open, before the removal. */
	fd = spool_with(md, text, sizeof(text) - 1);
	copy.text_fd = fd;
	copy.text_len = sizeof(text) - 1;
	ck_assert_int_eq(maildir_deliver(md, "BEFORE", &copy, 1), 0);
	fds = count_fds();
	xpath(p, "%s/%s", root, what);
	remove_tree(p);

	if (spool_first) {
		later = maildir_spool_open(md);
		ck_assert_msg(later >= 0, "maildir_spool_open: %s",
		    strerror(errno));
		assert_anonymous(later);
		ck_assert_int_eq(write(later, text, sizeof(text) - 1),
		    (ssize_t)sizeof(text) - 1);
		copy.text_fd = later;
		ck_assert_int_eq(maildir_deliver(md, "AFTER", &copy, 1), 0);
	} else {
		ck_assert_int_eq(maildir_deliver(md, "AFTER", &copy, 1), 0);
		ck_assert_int_ge(later = maildir_spool_open(md), 0);
		assert_anonymous(later);
	}
	xpath(p, "%s/.OTHER_SERVERS", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/remote.example/error", root);
	ck_assert_int_eq(mode_of(p, 1), 0700);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	/* error/, AFTER, and BEFORE unless it went with the queue. */
	ck_assert_int_eq(count_entries(p), whole ? 2 : 3);
	assert_named_content(p, "AFTER", want, strlen(want));
	ck_assert_int_eq(count_files(), whole ? 1 : 2);
	ck_assert_int_eq(close(later), 0);
	/* The removed directories' descriptors were not kept. */
	ck_assert_int_eq(count_fds(), fds);
	/* And again, now that nothing is missing. */
	copy.text_fd = fd;
	ck_assert_int_eq(maildir_deliver(md, "NEXT", &copy, 1), 0);
	ck_assert_int_eq(count_files(), whole ? 2 : 3);
	ck_assert_int_eq(close(fd), 0);
	maildir_close(md);
}

START_TEST(test_queue_tmp_removed_deliver_first)
{
	queue_removed(".OTHER_SERVERS/.tmp", 0);
}
END_TEST

START_TEST(test_queue_removed_deliver_first)
{
	queue_removed(".OTHER_SERVERS", 0);
}
END_TEST

/* The spool first: no delivery has made the directories again yet. */
START_TEST(test_queue_tmp_removed_spool_first)
{
	queue_removed(".OTHER_SERVERS/.tmp", 1);
}
END_TEST

START_TEST(test_queue_removed_spool_first)
{
	queue_removed(".OTHER_SERVERS", 1);
}
END_TEST

/*
 * Start-up safety: symbolic links in the tree, the host lock, the
 * ownership walk.
 */

/* make_outside - tmpdir/outside with tmp/, new/, cur/: not the tree's */

static void
make_outside(char *outside)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char p[PATH_MAX];
	size_t i;

	xpath(outside, "%s/outside", tmpdir);
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	for (i = 0; i < 3; i++) {
		xpath(p, "%s/%s", outside, sub[i]);
		ck_assert_int_eq(mkdir(p, 0755), 0);
	}
}

START_TEST(test_symlinked_mailbox_refused)
{
	char outside[PATH_MAX], p[PATH_MAX];
	struct maildir *md;

	make_outside(outside);
	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 1));
	xpath(p, "%s/alice", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	errno = 0;
	ck_assert_int_eq(maildir_add_user(md, "alice"), -1);
	ck_assert_int_eq(errno, ELOOP);
	/* A symlink one level down, and a file where cur/ belongs. */
	xpath(p, "%s/bob", root);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	errno = 0;
	ck_assert_int_eq(maildir_add_user(md, "bob"), -1);
	ck_assert_int_eq(errno, ELOOP);
	xpath(p, "%s/carol", root);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	xpath(p, "%s/carol/cur", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	errno = 0;
	ck_assert_int_eq(maildir_add_user(md, "carol"), -1);
	ck_assert_int_eq(errno, ELOOP);
	/* Nothing was made outside: still the three directories. */
	ck_assert_int_eq(count_entries(outside), 3);
	xpath(p, "%s/tmp", outside);
	ck_assert_int_eq(count_entries(p), 0);
	maildir_close(md);

	/* The queue's directories: .OTHER_SERVERS as a link. */
	remove_tree(root);
	ck_assert_int_eq(mkdir(root, 0700), 0);
	xpath(p, "%s/.OTHER_SERVERS", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	errno = 0;
	ck_assert_ptr_null(maildir_open(root, HOST, 1));
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_int_eq(count_entries(outside), 3);
}
END_TEST

START_TEST(test_lock_per_host)
{
	struct maildir *md, *md2, *other;
	char p[PATH_MAX];
	int fds;

	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	ck_assert_int_eq(maildir_lock(md), 0);
	ck_assert_int_eq(maildir_lock(md), 0);
	ck_assert_str_eq(maildir_lock_name(md), ".lock." HOST);
	xpath(p, "%s/.lock.%s", root, HOST);
	ck_assert_int_eq(mode_of(p, 0), 0600);
	/* A second opener for this host is refused, another host is not. */
	ck_assert_ptr_nonnull(md2 = maildir_open(root, HOST, 0));
	fds = count_fds();
	errno = 0;
	ck_assert_int_eq(maildir_lock(md2), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	ck_assert_int_eq(count_fds(), fds);
	ck_assert_ptr_nonnull(other = maildir_open(root, "mx2.example.org", 0));
	ck_assert_int_eq(maildir_lock(other), 0);
	/* Closing releases it. */
	maildir_close(md);
	ck_assert_int_eq(maildir_lock(md2), 0);
	maildir_close(md2);
	maildir_close(other);
	/* A symbolic link where the lock belongs is not followed. */
	xpath(p, "%s/.lock.%s", root, HOST);
	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(symlink("/etc/passwd", p), 0);
	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 0));
	errno = 0;
	ck_assert_int_eq(maildir_lock(md), -1);
	ck_assert_int_eq(errno, ELOOP);
	maildir_close(md);
}
END_TEST

/* owner_of - uid of path, not following a last symlink */

static uid_t
owner_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return (st.st_uid);
}

START_TEST(test_give_walks_the_tree_only)
{
	char outside[PATH_MAX], p[PATH_MAX], bad[PATH_MAX];
	struct iovec iov = { .iov_base = (void *)"x\n", .iov_len = 2 };
	struct maildir_copy copy = { .domain = "remote.example", .iov = &iov,
	    .iovcnt = 1 };
	struct maildir *md;
	uid_t uid = 65534;
	gid_t gid = 65534;

	if (geteuid() != 0)
		return;			/* chown to another user needs root */
	make_outside(outside);
	md = open_with_users();
	ck_assert_int_eq(maildir_lock(md), 0);
	ck_assert_int_eq(maildir_deliver(md, "Q1", &copy, 1), 0);
	ck_assert_int_eq(maildir_give(md, uid, gid, bad, sizeof(bad)), 0);
	ck_assert_uint_eq(owner_of(root), uid);
	xpath(p, "%s/alice/cur", root);
	ck_assert_uint_eq(owner_of(p), uid);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_uint_eq(owner_of(p), uid);
	xpath(p, "%s/.OTHER_SERVERS/remote.example/error", root);
	ck_assert_uint_eq(owner_of(p), uid);
	xpath(p, "%s/.lock.%s", root, HOST);
	ck_assert_uint_eq(owner_of(p), uid);

	/* A link planted in the queue stops the walk, named. */
	xpath(p, "%s/.OTHER_SERVERS/evil.example", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	errno = 0;
	ck_assert_int_eq(maildir_give(md, 0, 0, bad, sizeof(bad)), -1);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_str_eq(bad, ".OTHER_SERVERS/evil.example");
	ck_assert_int_eq(unlink(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/remote.example/error", root);
	ck_assert_int_eq(rmdir(p), 0);
	ck_assert_int_eq(symlink(outside, p), 0);
	errno = 0;
	ck_assert_int_eq(maildir_give(md, uid, gid, bad, sizeof(bad)), -1);
	ck_assert_int_eq(errno, ELOOP);
	ck_assert_str_eq(bad, ".OTHER_SERVERS/remote.example/error");
	/* The outside directory and its contents kept their owner. */
	ck_assert_uint_eq(owner_of(outside), 0);
	xpath(p, "%s/new", outside);
	ck_assert_uint_eq(owner_of(p), 0);
	maildir_close(md);
}
END_TEST

/*
 * Without RENAME_NOREPLACE the letter is linked into place: an existing
 * file under its name is still never replaced (nor, by the undo, removed).
 */

START_TEST(test_no_noreplace_never_replaces)
{
	struct iovec iov = { .iov_base = (void *)"new\n", .iov_len = 4 };
	struct maildir_copy copies[2] = {
		{ .mailbox = "bob", .iov = &iov, .iovcnt = 1 },
		{ .mailbox = "alice", .iov = &iov, .iovcnt = 1 },
	};
	char p[PATH_MAX], name[MAILDIR_NAME_MAX];
	struct maildir *md;
	long long now;
	int k;

	md = open_with_users();
	fake_no_noreplace = 1;
	ck_assert_int_eq(maildir_deliver(md, "OK1", copies, 2), 0);
	xpath(p, "%s/alice/new", root);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_content(p, "new\n", 4);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 2);

	now = (long long)time(NULL);
	for (k = 0; k < 3; k++) {
		xpath(p, "%s/alice/new/%lld.DUP.%s", root, now + k, HOST);
		write_plain(p, "old\n");
	}
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "DUP", copies, 2), -1);
	ck_assert_int_eq(errno, EEXIST);
	fake_no_noreplace = 0;
	for (k = 0; k < 3; k++) {
		xpath(p, "%s/alice/new/%lld.DUP.%s", root, now + k, HOST);
		assert_content(p, "old\n", 4);
	}
	/* bob's copy was taken back; tmp/ is empty everywhere. */
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 1);
	ck_assert_int_eq(count_files(), 5);
	maildir_close(md);
}
END_TEST

/*
 * A directory that cannot be synced: the letter is taken back, and a
 * removal that cannot be synced either is said (a possible duplicate).
 */

START_TEST(test_undo_sync_failure_logged)
{
	struct iovec iov = { .iov_base = (void *)"x\n", .iov_len = 2 };
	struct maildir_copy copy = { .mailbox = "alice", .iov = &iov,
	    .iovcnt = 1 };
	struct maildir *md;
	char p[PATH_MAX];

	md = open_with_users();
	logged[0] = '\0';
	log_set_sink(capture_sink, NULL);
	fake_dir_fsync_fails = 1;
	errno = 0;
	ck_assert_int_eq(maildir_deliver(md, "SYNC1", &copy, 1), -1);
	ck_assert_int_eq(errno, EIO);
	fake_dir_fsync_fails = 0;
	log_set_sink(NULL, NULL);
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_ptr_nonnull(strstr(logged, "ERROR SYNC1 cannot sync the "
	    "removal of "));
	ck_assert_ptr_nonnull(strstr(logged, "may come back as a duplicate"));
	maildir_close(md);
}
END_TEST

static Suite *
maildir_suite(void)
{
	Suite *s = suite_create("maildir");
	TCase *tc;

	tc = tcase_create("tree");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_creates_tree);
	tcase_add_test(tc, test_open_existing_tree);
	tcase_add_test(tc, test_open_refused);
	tcase_add_test(tc, test_add_user_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_name_format);
	tcase_add_test(tc, test_name_host_escaped);
	tcase_add_test(tc, test_name_bad_id);
	tcase_add_test(tc, test_name_too_long);
	tcase_add_test(tc, test_name_unique);
	tcase_add_test(tc, test_name_id_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("deliver");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_deliver_one);
	tcase_add_test(tc, test_deliver_three);
	tcase_add_test(tc, test_deliver_many_iovecs);
	tcase_add_test(tc, test_deliver_many_domains);
	tcase_add_test(tc, test_deliver_domain_recreated);
	tcase_add_test(tc, test_deliver_never_replaces);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fail_second_write);
	tcase_add_test(tc, test_fail_second_rename);
	tcase_add_test(tc, test_fail_file_size_limit);
	tcase_add_test(tc, test_refuse_unknown_mailbox);
	tcase_add_test(tc, test_refuse_unsafe_domain);
	tcase_add_test(tc, test_refuse_bad_copies);
	suite_add_tcase(s, tc);

	tc = tcase_create("batch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_batch_commits_all);
	tcase_add_test(tc, test_batch_one_fails_alone);
	tcase_add_test(tc, test_batch_add_fails_alone);
	tcase_add_test(tc, test_batch_free_removes_staged);
	tcase_add_test(tc, test_batch_without_fsync);
	suite_add_tcase(s, tc);

	tc = tcase_create("removed");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_user_dirs_made_again);
	tcase_add_test(tc, test_user_new_repaired);
	tcase_add_test(tc, test_batch_user_dirs_made_again);
	suite_add_tcase(s, tc);

	tc = tcase_create("spool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_spool_open);
	tcase_add_test(tc, test_copy_text);
	tcase_add_test(tc, test_copy_text_short);
	tcase_add_test(tc, test_queue_tmp_removed_deliver_first);
	tcase_add_test(tc, test_queue_removed_deliver_first);
	tcase_add_test(tc, test_queue_tmp_removed_spool_first);
	tcase_add_test(tc, test_queue_removed_spool_first);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_clean_tmp);
	suite_add_tcase(s, tc);

	tc = tcase_create("startup");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_symlinked_mailbox_refused);
	tcase_add_test(tc, test_lock_per_host);
	tcase_add_test(tc, test_give_walks_the_tree_only);
	tcase_add_test(tc, test_no_noreplace_never_replaces);
	tcase_add_test(tc, test_undo_sync_failure_logged);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(maildir_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
