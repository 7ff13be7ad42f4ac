/*
 * NAME
 *	scan - walk the Maildir tree, read-only
 * SYNOPSIS
 *	See scan.h.
 * DESCRIPTION
 *	Every directory is opened relative to its parent's descriptor with
 *	O_NOFOLLOW, so a symbolic link never takes the walk out of the tree,
 *	and nothing is ever opened for writing. The big directories (a
 *	domain with 100,000 letters) are read in directory order, one
 *	fstatat(2) an entry; only the short lists (domains, the root) are
 *	sorted.
 * DIAGNOSTICS
 *	See scan.h.
 * LIMITS
 *	Paths relative to the root of at most PATH_MAX bytes; a longer one
 *	is reported as a bad name.
 */
#include "config.h"

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "maildir.h"
#include "queuefile.h"
#include "scan.h"

/* One walk: what scan_queue() or scan_users() was asked. */
struct scan {
	const struct inspect *in;
	int flags;
	const struct scan_ops *ops;
	void *ctx;
	int stopped;		/* ops->letter returned -1 */
};

static const char *const scan_problem_names[] = {
	[SCAN_STALE_TMP] = "stale-tmp",
	[SCAN_BAD_NAME] = "bad-name",
	[SCAN_BAD_DOMAIN] = "bad-domain",
	[SCAN_MALFORMED_ENVELOPE] = "malformed-envelope",
	[SCAN_WRONG_DOMAIN] = "wrong-domain",
	[SCAN_MISSING_ERROR_DIR] = "missing-error-dir",
	[SCAN_MISSING_MAILDIR] = "missing-maildir",
	[SCAN_UNKNOWN_ENTRY] = "unknown-entry",
	[SCAN_UNREADABLE] = "unreadable",
	[SCAN_STALE_CLAIM] = "stale-claim",
};

static void scan_problem(struct scan *s, enum scan_problem kind,
    const char *path, const char *detail, int err);
static void scan_strict(struct scan *s, enum scan_problem kind,
    const char *path, const char *detail);
static int scan_path(char *dst, size_t len, const char *dir,
    const char *name);
static DIR *scan_opendir(int parentfd, const char *name);
static int scan_next(DIR *d, struct dirent **de);
static int scan_names(struct scan *s, int fd, const char *path,
    char ***names, size_t *n);
static void scan_free_names(char **names, size_t n);
static int scan_compare_names(const void *a, const void *b);
static int scan_is_letter_name(const char *name, char *id, size_t idlen);
static int scan_letters(struct scan *s, int parentfd, const char *dirpath,
    const char *domain, int in_error);
static int scan_claims(struct scan *s, int parentfd, const char *dirpath,
    const char *domain);
static int scan_domain(struct scan *s, int queuefd, const char *domain);
static void scan_tmp(struct scan *s, int parentfd, const char *name,
    const char *path);
static long scan_count(struct scan *s, int parentfd, const char *name,
    const char *path);
static void scan_user(struct scan *s, const char *user);
static int scan_delivered(struct scan *s, int userfd, const char *user,
    const char *folder);
static int scan_is_maildir(int rootfd, const char *name);
static int scan_is_printable(const char *name);

const char *
scan_problem_name(enum scan_problem kind)
{
	if ((size_t)kind >= sizeof(scan_problem_names)
	    / sizeof(scan_problem_names[0]))
		return "unknown";
	return scan_problem_names[kind];
}

static void
scan_problem(struct scan *s, enum scan_problem kind, const char *path,
    const char *detail, int err)
{
	if (s->ops->problem != NULL)
		s->ops->problem(s->ctx, kind, path, detail, err);
}

/* scan_strict - a problem that only check (SCAN_STRICT) wants to hear of */
static void
scan_strict(struct scan *s, enum scan_problem kind, const char *path,
    const char *detail)
{
	if (s->flags & SCAN_STRICT)
		scan_problem(s, kind, path, detail, 0);
}

/* scan_path - "dir/name", or name alone when dir is "" */
static int
scan_path(char *dst, size_t len, const char *dir, const char *name)
{
	int n;

	n = snprintf(dst, len, "%s%s%s", dir, *dir ? "/" : "", name);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static DIR *
scan_opendir(int parentfd, const char *name)
{
	DIR *d;
	int fd, saved;

	fd = openat(parentfd, name,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		(void)close(fd);
		errno = saved;
	}
	return d;
}

/*
 * scan_next - the next entry other than "." and "..". Returns 1 with
 * *de set, 0 at the end, -1 on a read error (errno).
 */
static int
scan_next(DIR *d, struct dirent **de)
{
	for (;;) {
		errno = 0;
		if ((*de = readdir(d)) == NULL)
			return errno == 0 ? 0 : -1;
		if (strcmp((*de)->d_name, ".") != 0
		    && strcmp((*de)->d_name, "..") != 0)
			return 1;
	}
}

static int
scan_compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
scan_free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * scan_names - the sorted entry names of the directory fd (which it
 * does not close). Returns 0 (a read error was reported as a problem and
 * ends the list early), or -1 when out of memory.
 */
static int
scan_names(struct scan *s, int fd, const char *path, char ***names,
    size_t *n)
{
	struct dirent *de;
	DIR *d;
	char **list = NULL, **grown;
	size_t count = 0, cap = 0;
	int r;

	*names = NULL;
	*n = 0;
	if ((d = scan_opendir(fd, ".")) == NULL) {
		if (errno != ENOENT)
			scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
		return 0;
	}
	while ((r = scan_next(d, &de)) > 0) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (grown == NULL)
				goto fail;
			list = grown;
		}
		if ((list[count] = strdup(de->d_name)) == NULL)
			goto fail;
		count++;
	}
	if (r < 0)
		scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
	(void)closedir(d);
	if (count > 0)
		qsort(list, count, sizeof(*list), scan_compare_names);
	*names = list;
	*n = count;
	return 0;

fail:
	(void)closedir(d);
	scan_free_names(list, count);
	errno = ENOMEM;
	return -1;
}

/*
 * scan_is_letter_name - a Maildir name with an ID, as the daemon makes
 * them. A queued letter is never renamed with ":2,FLAGS", so a ':' is
 * as wrong as a leading dot.
 */
static int
scan_is_letter_name(const char *name, char *id, size_t idlen)
{
	if (name[0] == '.' || strchr(name, ':') != NULL)
		return 0;
	return maildir_name_id(name, id, idlen) == 0;
}

/*
 * scan_letters - the letters of a domain directory (in_error 0: the
 * directory parentfd, where error/ is expected) or of its error/
 * (in_error 1: parentfd/error).
 */
static int
scan_letters(struct scan *s, int parentfd, const char *dirpath,
    const char *domain, int in_error)
{
	struct scan_letter l;
	struct dirent *de;
	struct stat st;
	DIR *d;
	char path[PATH_MAX], id[INSPECT_ID_MAX];
	int r, has_error_dir = 0, want, ret = 0;

	want = (s->flags & (in_error ? SCAN_ERROR : SCAN_QUEUED)) != 0;
	if ((d = scan_opendir(parentfd, in_error ? "error" : ".")) == NULL) {
		if (errno == ENOENT)
			return 0;
		scan_problem(s, SCAN_UNREADABLE, dirpath, NULL, errno);
		return 0;
	}
	while ((r = scan_next(d, &de)) > 0) {
		if (scan_path(path, sizeof(path), dirpath, de->d_name) < 0) {
			scan_strict(s, SCAN_BAD_NAME, dirpath,
			    "a name too long for a path");
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    < 0) {
			if (errno != ENOENT)
				scan_problem(s, SCAN_UNREADABLE, path, NULL,
				    errno);
			continue;
		}
		if (!in_error && strcmp(de->d_name, "error") == 0
		    && S_ISDIR(st.st_mode)) {
			has_error_dir = 1;
			if ((s->flags & (SCAN_ERROR | SCAN_STRICT))
			    && scan_letters(s, dirfd(d), path, domain, 1) < 0) {
				ret = -1;
				break;
			}
			continue;
		}
		/* The delivery agent's: states (read by list), claims. */
		if (S_ISDIR(st.st_mode)
		    && strcmp(de->d_name, QUEUEFILE_STATE_DIR) == 0)
			continue;
		if (!in_error && S_ISDIR(st.st_mode)
		    && strcmp(de->d_name, QUEUEFILE_CLAIM_DIR) == 0) {
			if (want && scan_claims(s, dirfd(d), path, domain) < 0) {
				ret = -1;
				break;
			}
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			scan_strict(s, SCAN_UNKNOWN_ENTRY, path,
			    "not a regular file");
			continue;
		}
		if (!scan_is_letter_name(de->d_name, id, sizeof(id))) {
			scan_strict(s, SCAN_BAD_NAME, path,
			    "not a Maildir name SECONDS.ID.HOST");
			continue;
		}
		if (!want || s->ops->letter == NULL)
			continue;
		memset(&l, 0, sizeof(l));	/* not claimed, among others */
		l.domain = domain;
		l.user = NULL;
		l.folder = NULL;
		l.in_error = in_error;
		l.dirfd = dirfd(d);
		l.name = de->d_name;
		l.path = path;
		l.id = id;
		l.size = st.st_size;
		l.mtime = st.st_mtime;
		if (s->ops->letter(s->ctx, &l) < 0) {
			ret = -1;
			break;
		}
	}
	if (r < 0)
		scan_problem(s, SCAN_UNREADABLE, dirpath, NULL, errno);
	if (ret == 0 && r == 0 && !in_error && !has_error_dir)
		scan_strict(s, SCAN_MISSING_ERROR_DIR, dirpath,
		    "no error/ directory");
	(void)closedir(d);
	return ret;
}

/*
 * scan_claims - <domain>/.claim/: letters the delivery agent of some
 * host is sending now, named NAME:HOST; still queued (state 0).
 */
static int
scan_claims(struct scan *s, int parentfd, const char *dirpath,
    const char *domain)
{
	struct scan_letter l;
	struct dirent *de;
	struct stat st;
	DIR *d;
	char path[PATH_MAX], id[INSPECT_ID_MAX], name[PATH_MAX];
	const char *colon;
	long timeout = s->in->conf != NULL
	    ? s->in->conf->delivery_claim_timeout : INSPECT_CLAIM_TIMEOUT;
	int r, ret = 0;

	if ((d = scan_opendir(parentfd, QUEUEFILE_CLAIM_DIR)) == NULL)
		return 0;
	while ((r = scan_next(d, &de)) > 0) {
		if ((colon = strchr(de->d_name, ':')) == NULL
		    || (size_t)(colon - de->d_name) >= sizeof(name)
		    || scan_path(path, sizeof(path), dirpath, de->d_name) < 0)
			continue;
		memcpy(name, de->d_name, (size_t)(colon - de->d_name));
		name[colon - de->d_name] = '\0';
		if (!scan_is_letter_name(name, id, sizeof(id))
		    || fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((s->flags & SCAN_STRICT) && s->in->now - st.st_ctime
		    > timeout) {
			char since[32], age[32], detail[MAILDIR_NAME_MAX + 160];
			struct tm tm;

			if (gmtime_r(&st.st_ctime, &tm) == NULL
			    || strftime(since, sizeof(since),
			    "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
				(void)snprintf(since, sizeof(since), "-");
			inspect_format_age((long long)(s->in->now
			    - st.st_ctime), age, sizeof(age));
			/* A detail cut short still names the problem. */
			(void)snprintf(detail, sizeof(detail), "claimed by %s "
			    "since %s (%s, claim_timeout %ld s): that host "
			    "is gone or stuck", colon + 1, since, age,
			    timeout);
			scan_problem(s, SCAN_STALE_CLAIM, path, detail, 0);
		}
		if (s->ops->letter == NULL)
			continue;
		memset(&l, 0, sizeof(l));
		l.domain = domain;
		l.dirfd = dirfd(d);
		l.name = de->d_name;
		l.path = path;
		l.id = id;
		l.size = st.st_size;
		l.mtime = st.st_mtime;
		l.claim_host = colon + 1;
		l.claim_since = st.st_ctime;
		if (s->ops->letter(s->ctx, &l) < 0) {
			ret = -1;
			break;
		}
	}
	(void)closedir(d);
	return ret;
}

/* scan_domain - one entry of root/.OTHER_SERVERS that names a domain */
static int
scan_domain(struct scan *s, int queuefd, const char *domain)
{
	char path[PATH_MAX];
	DIR *d;
	int ret;

	if (scan_path(path, sizeof(path), MAILDIR_QUEUE_DIR, domain) < 0)
		return 0;
	if ((d = scan_opendir(queuefd, domain)) == NULL) {
		if (errno == ENOTDIR || errno == ELOOP)
			scan_strict(s, SCAN_UNKNOWN_ENTRY, path,
			    "not a directory");
		else if (errno != ENOENT)
			scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
		return 0;
	}
	if (!addr_domain_is_safe(domain)) {
		scan_strict(s, SCAN_BAD_DOMAIN, path,
		    "not a lower-case domain name");
		(void)closedir(d);
		return 0;
	}
	if (s->ops->domain != NULL)
		s->ops->domain(s->ctx, domain);
	ret = scan_letters(s, dirfd(d), path, domain, 0);
	(void)closedir(d);
	return ret;
}

/* scan_tmp - stale files in a tmp/ directory (SCAN_STRICT only) */
static void
scan_tmp(struct scan *s, int parentfd, const char *name, const char *path)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	char file[PATH_MAX], detail[64], age[32];
	long long seconds;
	int r;

	if ((d = scan_opendir(parentfd, name)) == NULL) {
		if (errno == ENOENT)
			scan_strict(s, SCAN_MISSING_MAILDIR, path,
			    "no tmp/ directory");
		else
			scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
		return;
	}
	while ((r = scan_next(d, &de)) > 0) {
		if (scan_path(file, sizeof(file), path, de->d_name) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    < 0) {
			if (errno != ENOENT)
				scan_problem(s, SCAN_UNREADABLE, file, NULL,
				    errno);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			scan_strict(s, SCAN_UNKNOWN_ENTRY, file,
			    "not a regular file");
			continue;
		}
		seconds = inspect_age(s->in, st.st_mtime);
		if (seconds <= INSPECT_STALE_AFTER)
			continue;
		inspect_format_age(seconds, age, sizeof(age));
		(void)snprintf(detail, sizeof(detail), "left in tmp/ for %s",
		    age);
		scan_strict(s, SCAN_STALE_TMP, file, detail);
	}
	if (r < 0)
		scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
	(void)closedir(d);
}

int
scan_queue(const struct inspect *in, int flags, const struct scan_ops *ops,
    void *ctx)
{
	struct scan s = { in, flags, ops, ctx, 0 };
	struct stat st;
	char **names = NULL, path[PATH_MAX];
	size_t n = 0, i;
	int queuefd, ret = 0;

	queuefd = openat(in->rootfd, MAILDIR_QUEUE_DIR,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (queuefd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			scan_strict(&s, SCAN_UNKNOWN_ENTRY, MAILDIR_QUEUE_DIR,
			    "not a directory");
		else if (errno != ENOENT)
			scan_problem(&s, SCAN_UNREADABLE, MAILDIR_QUEUE_DIR,
			    NULL, errno);
		return 0;
	}
	if (in->domain != NULL) {
		ret = scan_domain(&s, queuefd, in->domain);
		goto done;
	}
	if (scan_names(&s, queuefd, MAILDIR_QUEUE_DIR, &names, &n) < 0) {
		ret = -1;
		goto done;
	}
	for (i = 0; i < n && ret == 0; i++) {
		if (scan_path(path, sizeof(path), MAILDIR_QUEUE_DIR, names[i])
		    < 0)
			continue;
		if (strcmp(names[i], ".tmp") == 0) {
			if (flags & SCAN_STRICT)
				scan_tmp(&s, queuefd, names[i], path);
			continue;
		}
		if (names[i][0] == '.') {
			scan_strict(&s, SCAN_UNKNOWN_ENTRY, path,
			    "not a domain directory");
			continue;
		}
		if (fstatat(queuefd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				scan_problem(&s, SCAN_UNREADABLE, path, NULL,
				    errno);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			scan_strict(&s, SCAN_UNKNOWN_ENTRY, path,
			    "not a directory");
			continue;
		}
		ret = scan_domain(&s, queuefd, names[i]);
	}
done:
	scan_free_names(names, n);
	(void)close(queuefd);
	return ret;
}

/* scan_count - entries of root/<user>/<name> not starting with '.' */
static long
scan_count(struct scan *s, int parentfd, const char *name, const char *path)
{
	struct dirent *de;
	DIR *d;
	long count = 0;
	int r;

	if ((d = scan_opendir(parentfd, name)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			scan_strict(s, SCAN_MISSING_MAILDIR, path,
			    "missing directory");
		else
			scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
		return -1;
	}
	while ((r = scan_next(d, &de)) > 0)
		if (de->d_name[0] != '.')
			count++;
	if (r < 0)
		scan_problem(s, SCAN_UNREADABLE, path, NULL, errno);
	(void)closedir(d);
	return count;
}

/*
 * scan_delivered - the letters of root/<user>/<folder> (SCAN_DELIVERED).
 * Returns 0, or -1 when ops->letter stopped the walk.
 */
static int
scan_delivered(struct scan *s, int userfd, const char *user,
    const char *folder)
{
	struct scan_letter l;
	struct dirent *de;
	struct stat st;
	DIR *d;
	char dir[PATH_MAX], path[PATH_MAX], id[INSPECT_ID_MAX];
	int r, ret = 0;

	if (s->ops->letter == NULL
	    || scan_path(dir, sizeof(dir), user, folder) < 0)
		return 0;
	if ((d = scan_opendir(userfd, folder)) == NULL) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			scan_problem(s, SCAN_UNREADABLE, dir, NULL, errno);
		return 0;
	}
	while ((r = scan_next(d, &de)) > 0) {
		if (de->d_name[0] == '.'
		    || maildir_name_id(de->d_name, id, sizeof(id)) < 0
		    || scan_path(path, sizeof(path), dir, de->d_name) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    < 0) {
			if (errno != ENOENT)
				scan_problem(s, SCAN_UNREADABLE, path, NULL,
				    errno);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		memset(&l, 0, sizeof(l));
		l.user = user;
		l.folder = folder;
		l.dirfd = dirfd(d);
		l.name = de->d_name;
		l.path = path;
		l.id = id;
		l.size = st.st_size;
		l.mtime = st.st_mtime;
		if (s->ops->letter(s->ctx, &l) < 0) {
			ret = -1;
			break;
		}
	}
	if (r < 0)
		scan_problem(s, SCAN_UNREADABLE, dir, NULL, errno);
	(void)closedir(d);
	return ret;
}

static void
scan_user(struct scan *s, const char *user)
{
	struct scan_user u = { user, -1, -1 };
	char path[PATH_MAX];
	int fd;

	fd = openat(s->in->rootfd, user,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			scan_strict(s, SCAN_MISSING_MAILDIR, user,
			    "no Maildir for this user");
		else
			scan_problem(s, SCAN_UNREADABLE, user, NULL, errno);
	} else {
		if (scan_path(path, sizeof(path), user, "new") == 0)
			u.nnew = scan_count(s, fd, "new", path);
		if (scan_path(path, sizeof(path), user, "cur") == 0)
			u.ncur = scan_count(s, fd, "cur", path);
		if ((s->flags & SCAN_STRICT)
		    && scan_path(path, sizeof(path), user, "tmp") == 0)
			scan_tmp(s, fd, "tmp", path);
		if ((s->flags & SCAN_DELIVERED)
		    && (scan_delivered(s, fd, user, "new") < 0
		    || scan_delivered(s, fd, user, "cur") < 0))
			s->stopped = 1;
		(void)close(fd);
	}
	if (s->ops->user != NULL)
		s->ops->user(s->ctx, &u);
}

/*
 * scan_is_printable - a name fit to be shown as a user: one found on
 * disk (no configuration) is printed in tables without escaping.
 */
static int
scan_is_printable(const char *name)
{
	const unsigned char *p;

	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return 0;
	return 1;
}

/* scan_is_maildir - root/name holds tmp/, new/ and cur/ */
static int
scan_is_maildir(int rootfd, const char *name)
{
	static const char *const subdirs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (scan_path(path, sizeof(path), name, subdirs[i]) < 0)
			return 0;
		if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0
		    || !S_ISDIR(st.st_mode))
			return 0;
	}
	return 1;
}

int
scan_users(const struct inspect *in, int flags, const struct scan_ops *ops,
    void *ctx)
{
	struct scan s = { in, flags, ops, ctx, 0 };
	struct stat st;
	char **names = NULL;
	size_t n = 0, i;
	int configured, maildir;

	if (in->conf != NULL)
		for (i = 0; i < in->conf->nusers && !s.stopped; i++)
			scan_user(&s, in->conf->users[i]);
	if (s.stopped)
		return -1;
	if (in->conf != NULL && !(flags & SCAN_STRICT))
		return 0;

	if (scan_names(&s, in->rootfd, ".", &names, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(names[i], MAILDIR_QUEUE_DIR) == 0
		    || strcmp(names[i], "lost+found") == 0)
			continue;
		/* A daemon's lock, one per host sharing the tree. */
		if (strncmp(names[i], MAILDIR_LOCK_PREFIX,
		    strlen(MAILDIR_LOCK_PREFIX)) == 0
		    && fstatat(in->rootfd, names[i], &st, AT_SYMLINK_NOFOLLOW)
		    == 0 && S_ISREG(st.st_mode))
			continue;
		configured = 0;
		if (in->conf != NULL) {
			size_t j;

			for (j = 0; j < in->conf->nusers; j++)
				if (strcmp(in->conf->users[j], names[i]) == 0)
					configured = 1;
			if (!configured)
				scan_strict(&s, SCAN_UNKNOWN_ENTRY, names[i],
				    "not a configured user's Maildir");
			continue;
		}
		if (fstatat(in->rootfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		maildir = names[i][0] != '.' && S_ISDIR(st.st_mode)
		    && scan_is_printable(names[i])
		    && scan_is_maildir(in->rootfd, names[i]);
		if (maildir)
			scan_user(&s, names[i]);
		else
			scan_strict(&s, SCAN_UNKNOWN_ENTRY, names[i],
			    "not a Maildir");
		if (s.stopped)
			break;
	}
	scan_free_names(names, n);
	return s.stopped ? -1 : 0;
}
