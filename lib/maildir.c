/*
 * NAME
 *	maildir - the Maildir tree: unique names, atomic durable delivery
 * SYNOPSIS
 *	See maildir.h.
 * DESCRIPTION
 *	Every path below root is reached through a directory descriptor kept
 *	open (root, root/.OTHER_SERVERS, its .tmp/, each user's tmp/ and
 *	new/, and a small cache of domain directories) and the *at() system
 *	calls, so no path is ever built from a string taken off the wire,
 *	and a rename of root while the daemon runs cannot send mail
 *	elsewhere.
 *
 *	maildir_deliver() works in phases, so that "all or none" is simple:
 *	  1. check every copy (known mailbox, strict domain, one target
 *	     directory per copy) before anything is touched;
 *	  2. open the target directories (creating a domain's directory and
 *	     its error/ when missing);
 *	  3. write each copy to tmp/NAME.INDEX (O_EXCL), fsync, close;
 *	  4. rename each into place as NAME, never replacing a file;
 *	  5. fsync each target directory.
 *	A failure in any phase removes every file made so far, from tmp/ and
 *	from the targets, and returns the errno of that first failure.
 *	Directories made on the way stay: they are part of the tree.
 *
 *	Group commit splits the same phases across many messages: a batch
 *	runs phases 1-3 for each message as it is added (without the
 *	fsync, and keeping the file open), and maildir_batch_commit() runs
 *	the syncs once for all of them:
 *	  a. sync_file_range(SYNC_FILE_RANGE_WRITE) on every file, so that
 *	     the disk gets all the data at once, then fsync() on each (which
 *	     now mostly finds its data written; it still reports an error of
 *	     its own file, which syncfs() did not before Linux 5.8);
 *	  b. rename each copy into place;
 *	  c. fsync each target directory once, however many copies it got.
 *	A message is still all or nothing on its own: a failure in a or b
 *	removes that message's files; a failed directory fsync in c removes
 *	every message that placed a file in that directory. Data is durable
 *	before any rename (a crash never leaves an empty letter in new/),
 *	and every rename is durable before the caller answers.
 *	maildir_deliver() is a batch of one.
 *
 *	Host names are escaped in file names: '/' as \057 and ':' as \072
 *	(the Maildir specification), and, so that a name stays one printable
 *	word, any other byte outside '!'..'~' as \ooo too.
 *
 *	Domain directories are opened on demand and kept in a cache of at
 *	most MAILDIR_DOMAIN_CACHE entries between deliveries (one delivery may
 *	use more; the least recently used are closed when it ends), so that
 *	relaying to many domains cannot exhaust descriptors. A cached
 *	directory that was removed meanwhile (by the delivery stage) is
 *	noticed by its link count and made again.
 *
 *	A user's tmp/ and new/ are opened once, by maildir_add_user(). When
 *	one is removed later (by an administrator, or with the whole user
 *	directory), creating a file in it or renaming into it fails with
 *	ENOENT: only then is the link count of both looked at, the removed
 *	one opened again (made again when missing, with cur/), and the
 *	failed step tried once more. A delivery pays nothing for this until
 *	something fails. A tmp file already written into a removed tmp/ is
 *	gone with it: that message fails, the next one is stored.
 * DIAGNOSTICS
 *	Functions return -1 (or NULL) with errno set; nothing here exits.
 *	A file that cannot be removed while undoing a failed delivery is
 *	logged (it would otherwise be a silent duplicate).
 * LIMITS
 *	MAILDIR_NAME_MAX bytes for a name; domains 255 bytes; user names
 *	NAME_MAX bytes.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"

#define MAILDIR_DIR_MODE	0700
#define MAILDIR_FILE_MODE	0600
#define MAILDIR_QUEUE_TMP	".tmp"
#define MAILDIR_ERROR_DIR	"error"
#define MAILDIR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define MAILDIR_DOMAIN_CACHE	16	/* domain directories kept open */
#define MAILDIR_IOV_BATCH	64	/* iovecs handed to one writev() */
#define MAILDIR_COPY_CHUNK	(16 * 1024)	/* text copied by hand, a read */
/* maildir_target.user of a copy for the queue */
#define MAILDIR_NO_USER		SIZE_MAX
/* NAME "." copy index */
#define MAILDIR_TMP_NAME_MAX	(MAILDIR_NAME_MAX + 24)

#define MAILDIR_DIR_FLAGS	(O_RDONLY | O_DIRECTORY | O_CLOEXEC)

struct maildir_user {
	char *name;			/* as configured: the directory name */
	int tmpfd;			/* root/<user>/tmp */
	int newfd;			/* root/<user>/new */
};

struct maildir_domain {
	char name[MAILDIR_DOMAIN_MAX + 1];
	int fd;				/* root/.OTHER_SERVERS/<name> */
	unsigned long last_used;	/* for eviction, from md->use_clock */
};

struct maildir {
	int rootfd;
	int queuefd;			/* root/.OTHER_SERVERS */
	int qtmpfd;			/* root/.OTHER_SERVERS/.tmp */
	int do_fsync;
	int lockfd;			/* root/.lock.HOST while locked, or -1 */
	char *host;			/* escaped for file names */
	char *lockname;			/* ".lock.HOST" */
	struct maildir_user *users;
	size_t nusers;
	struct maildir_domain *domains;
	size_t ndomains;
	unsigned long use_clock;
	/*
	 * While messages are staged, their targets hold descriptors of
	 * domain and user directories: the cache is then neither trimmed
	 * nor closed, and a directory found removed leaves its old
	 * descriptor in retired until nothing is staged.
	 */
	size_t nstaged;
	int *retired;
	size_t nretired;
};

/* One copy of a delivery in progress: where it goes, what exists. */
struct maildir_target {
	size_t user;			/* in md->users, or MAILDIR_NO_USER */
	int tmpdirfd;
	int dstdirfd;
	int fd;				/* tmp file kept open for its sync, or -1 */
	char name[MAILDIR_NAME_MAX];	/* in dst: the message's, or the copy's own */
	char tmpname[MAILDIR_TMP_NAME_MAX];
	int written;			/* tmp/tmpname exists */
	int placed;			/* renamed to dst/NAME */
};

/* One message of a batch: targets[first .. first + ntargets - 1]. */
struct maildir_staged {
	char name[MAILDIR_NAME_MAX];	/* its file name (copies of their own ID aside) */
	char id[MAILDIR_NAME_MAX];	/* for log records; part of name */
	size_t first;
	size_t ntargets;
	int err;			/* 0, or why it failed */
};

/*
 * The arrays only grow and are reused from batch to batch, so that a
 * busy server does not allocate per message.
 */
struct maildir_batch {
	struct maildir *md;
	struct maildir_staged *msgs;
	size_t nmsgs;
	size_t msgs_cap;
	struct maildir_target *targets;
	size_t ntargets;
	size_t targets_cap;
	int *dirs;			/* target directories renamed into, once each */
	size_t ndirs;
	size_t dirs_cap;
};

static char *maildir_escape_host(const char *hostname);
static int maildir_fsync_parent(const char *path);
static int maildir_mkdir_at(int dfd, const char *name, int do_fsync);
static int maildir_open_dir_at(int dfd, const char *name, int do_fsync,
    int extra_flags);
static int maildir_user_name_ok(const char *user);
static int maildir_domain_ok(const char *domain);
static int maildir_id_ok(const char *id);
static const struct maildir_user *maildir_find_user(const struct maildir *md,
    const char *user);
static int maildir_user_dirs(struct maildir *md, const char *user,
    int *tmpfd, int *newfd);
static int maildir_dir_live(int dfd);
static void maildir_retire(struct maildir *md, int fd);
static int maildir_user_renew(struct maildir *md, struct maildir_user *u);
static int maildir_queue_renew(struct maildir *md);
static int maildir_target_renew(struct maildir *md, struct maildir_target *t,
    const char *id);
static int maildir_domain_fd(struct maildir *md, const char *domain);
static void maildir_domain_drop(struct maildir *md, size_t idx);
static void maildir_trim_cache(struct maildir *md);
static int maildir_copies_check(const struct maildir *md,
    const struct maildir_copy *copies, size_t ncopies);
static int maildir_write_all(int fd, const struct iovec *iov, int iovcnt);
static int maildir_copy_text(int fd, int text_fd, size_t text_len);
static int maildir_write_tmp(struct maildir_target *t,
    const struct maildir_copy *c, int keep_open);
static int maildir_rename_new(int olddfd, const char *oldname, int newdfd,
    const char *newname);
static void maildir_undo(const struct maildir *md, const char *id,
    struct maildir_target *targets, size_t ntargets);
static int maildir_grow(void *arrayp, size_t *cap, size_t need,
    size_t size);
static void maildir_batch_undo(struct maildir_batch *b,
    struct maildir_staged *m);
static int maildir_batch_note_dir(struct maildir_batch *b, int dfd);
static int maildir_batch_place(struct maildir_batch *b,
    const struct maildir_staged *m, struct maildir_target *t);
static void maildir_start_writeback(int fd);
static int maildir_clean_dir(int dfd, const char *what, const char *host);
static int maildir_name_is_ours(const char *name, const char *host);
static int maildir_give_at(int dfd, const char *name, uid_t uid, gid_t gid,
    const char *where, char *bad, size_t badlen);
static int maildir_give_fd(int fd, uid_t uid, gid_t gid);
static void maildir_bad(char *bad, size_t badlen, const char *where,
    const char *name);

/* maildir_escape_host - the host name as it may appear in a file name */

static char *
maildir_escape_host(const char *hostname)
{
	size_t len = strlen(hostname);
	char *out;
	char *p;
	const unsigned char *s;

	if ((out = malloc(len * 4 + 1)) == NULL)
		return (NULL);
	p = out;
	for (s = (const unsigned char *)hostname; *s != '\0'; s++) {
		if (*s == '/' || *s == ':' || *s < '!' || *s > '~') {
			*p++ = '\\';
			*p++ = (char)('0' + ((*s >> 6) & 7));
			*p++ = (char)('0' + ((*s >> 3) & 7));
			*p++ = (char)('0' + (*s & 7));
		} else {
			*p++ = (char)*s;
		}
	}
	*p = '\0';
	return (out);
}

/* maildir_fsync_parent - make a new directory entry for path durable */

static int
maildir_fsync_parent(const char *path)
{
	char *parent;
	char *slash;
	size_t len;
	int fd = -1;
	int ret = -1;

	if ((parent = strdup(path)) == NULL)
		return (-1);
	len = strlen(parent);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	if ((slash = strrchr(parent, '/')) == NULL) {
		parent[0] = '.';
		parent[1] = '\0';
	} else if (slash == parent) {
		parent[1] = '\0';
	} else {
		*slash = '\0';
	}
	if ((fd = open(parent, MAILDIR_DIR_FLAGS)) == -1)
		goto fail;
	if (fsync(fd) == -1)
		goto fail;
	ret = 0;
fail:
	if (fd != -1) {
		int saved = errno;

		(void)close(fd);
		errno = saved;
	}
	free(parent);
	return (ret);
}

/*
 * maildir_mkdir_at - make directory dfd/name when missing. A directory
 * we made is only durable once its parent's entry is, hence the fsync.
 */

static int
maildir_mkdir_at(int dfd, const char *name, int do_fsync)
{
	struct stat st;

	if (mkdirat(dfd, name, MAILDIR_DIR_MODE) == -1) {
		if (errno != EEXIST)
			return (-1);
		/* What is there must be a directory, not a way out. */
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return (-1);
		if (S_ISLNK(st.st_mode)) {
			errno = ELOOP;
			return (-1);
		}
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return (-1);
		}
		return (0);
	}
	if (do_fsync && fsync(dfd) == -1)
		return (-1);
	return (0);
}

/*
 * maildir_open_dir_at - make dfd/name when missing, and open it. Never
 * through a symbolic link (ELOOP): every directory of the tree is a
 * real directory, so nothing outside it is ever reached.
 */

static int
maildir_open_dir_at(int dfd, const char *name, int do_fsync,
    int extra_flags)
{
	if (maildir_mkdir_at(dfd, name, do_fsync) == -1)
		return (-1);
	return (openat(dfd, name, MAILDIR_DIR_FLAGS | O_NOFOLLOW
	    | extra_flags));
}

/*
 * maildir_user_name_ok - a configured user name that can be a directory
 * right under root: no '/', no leading dot (that would also reach
 * .OTHER_SERVERS), printable ASCII only.
 */

static int
maildir_user_name_ok(const char *user)
{
	size_t len;
	const unsigned char *s;

	if (user == NULL || (len = strlen(user)) == 0 || len > NAME_MAX)
		return (0);
	if (user[0] == '.')
		return (0);
	for (s = (const unsigned char *)user; *s != '\0'; s++)
		if (*s == '/' || *s < '!' || *s > '~')
			return (0);
	return (1);
}

/*
 * maildir_domain_ok - a domain that may name a queue directory. The
 * caller already checked it with addr_domain_is_safe(); this is the last
 * line before the file system, so it is stricter than needed: lower-case
 * letters, digits, '-' and '.', no leading dot, no empty label.
 */

static int
maildir_domain_ok(const char *domain)
{
	size_t len;
	size_t i;

	if (domain == NULL || (len = strlen(domain)) == 0
	    || len > MAILDIR_DOMAIN_MAX)
		return (0);
	if (domain[0] == '.' || strstr(domain, "..") != NULL)
		return (0);
	for (i = 0; i < len; i++) {
		char c = domain[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		    || c == '-' || c == '.'))
			return (0);
	}
	return (1);
}

static int
maildir_id_ok(const char *id)
{
	const char *s;

	if (id == NULL || *id == '\0' || strlen(id) > MAILDIR_ID_MAX)
		return (0);
	for (s = id; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
		    || (*s >= '0' && *s <= '9')))
			return (0);
	return (1);
}

static const struct maildir_user *
maildir_find_user(const struct maildir *md, const char *user)
{
	size_t i;

	for (i = 0; i < md->nusers; i++)
		if (strcmp(md->users[i].name, user) == 0)
			return (&md->users[i]);
	return (NULL);
}

struct maildir *
maildir_open(const char *root, const char *hostname, int do_fsync)
{
	struct maildir *md;

	if (root == NULL || *root == '\0' || hostname == NULL
	    || *hostname == '\0') {
		errno = EINVAL;
		return (NULL);
	}
	if (!maildir_hostname_ok(hostname)) {
		errno = ENAMETOOLONG;
		return (NULL);
	}
	if ((md = calloc(1, sizeof(*md))) == NULL)
		return (NULL);
	md->rootfd = md->queuefd = md->qtmpfd = md->lockfd = -1;
	md->do_fsync = do_fsync;
	if ((md->host = maildir_escape_host(hostname)) == NULL)
		goto fail;
	if ((md->lockname = malloc(sizeof(MAILDIR_LOCK_PREFIX)
	    + strlen(md->host))) == NULL)
		goto fail;
	memcpy(md->lockname, MAILDIR_LOCK_PREFIX, sizeof(MAILDIR_LOCK_PREFIX)
	    - 1);
	memcpy(md->lockname + sizeof(MAILDIR_LOCK_PREFIX) - 1, md->host,
	    strlen(md->host) + 1);
	if (mkdir(root, MAILDIR_DIR_MODE) == 0) {
		if (do_fsync && maildir_fsync_parent(root) == -1)
			goto fail;
	} else if (errno != EEXIST) {
		goto fail;
	}
	if ((md->rootfd = open(root, MAILDIR_DIR_FLAGS)) == -1)
		goto fail;
	if ((md->queuefd = maildir_open_dir_at(md->rootfd, MAILDIR_QUEUE_DIR,
	    do_fsync, 0)) == -1)
		goto fail;
	if ((md->qtmpfd = maildir_open_dir_at(md->queuefd, MAILDIR_QUEUE_TMP,
	    do_fsync, 0)) == -1)
		goto fail;
	return (md);

fail:
	{
		int saved = errno;

		maildir_close(md);
		errno = saved;
	}
	return (NULL);
}

void
maildir_close(struct maildir *md)
{
	size_t i;

	if (md == NULL)
		return;
	for (i = 0; i < md->ndomains; i++)
		(void)close(md->domains[i].fd);
	free(md->domains);
	for (i = 0; i < md->nretired; i++)
		(void)close(md->retired[i]);
	free(md->retired);
	for (i = 0; i < md->nusers; i++) {
		(void)close(md->users[i].newfd);
		(void)close(md->users[i].tmpfd);
		free(md->users[i].name);
	}
	free(md->users);
	if (md->qtmpfd != -1)
		(void)close(md->qtmpfd);
	if (md->queuefd != -1)
		(void)close(md->queuefd);
	if (md->rootfd != -1)
		(void)close(md->rootfd);
	if (md->lockfd != -1)
		(void)close(md->lockfd);
	free(md->lockname);
	free(md->host);
	free(md);
}

int
maildir_add_user(struct maildir *md, const char *user)
{
	struct maildir_user *grown;
	char *name = NULL;
	int tmpfd = -1;
	int newfd = -1;

	if (md == NULL || !maildir_user_name_ok(user)) {
		errno = EINVAL;
		return (-1);
	}
	if (maildir_find_user(md, user) != NULL)
		return (0);
	if ((name = strdup(user)) == NULL)
		goto fail;
	if (maildir_user_dirs(md, user, &tmpfd, &newfd) == -1)
		goto fail;
	grown = realloc(md->users, (md->nusers + 1) * sizeof(*md->users));
	if (grown == NULL)
		goto fail;
	md->users = grown;
	md->users[md->nusers].name = name;
	md->users[md->nusers].tmpfd = tmpfd;
	md->users[md->nusers].newfd = newfd;
	md->nusers++;
	return (0);

fail:
	{
		int saved = errno;

		if (newfd != -1)
			(void)close(newfd);
		if (tmpfd != -1)
			(void)close(tmpfd);
		free(name);
		errno = saved;
	}
	return (-1);
}

/*
 * maildir_user_dirs - make root/<user>/{tmp,new,cur} where missing, and
 * open tmp/ into *tmpfd and new/ into *newfd where that is -1 (a
 * descriptor already there is kept). On failure only what this call
 * opened is closed again (and set back to -1).
 */

static int
maildir_user_dirs(struct maildir *md, const char *user, int *tmpfd,
    int *newfd)
{
	int userfd;
	int opened_tmp = 0;
	int opened_new = 0;

	if ((userfd = maildir_open_dir_at(md->rootfd, user, md->do_fsync,
	    0)) == -1)
		return (-1);
	if (*tmpfd == -1) {
		if ((*tmpfd = maildir_open_dir_at(userfd, "tmp", md->do_fsync,
		    0)) == -1)
			goto fail;
		opened_tmp = 1;
	}
	if (*newfd == -1) {
		if ((*newfd = maildir_open_dir_at(userfd, "new", md->do_fsync,
		    0)) == -1)
			goto fail;
		opened_new = 1;
	}
	if (maildir_mkdir_at(userfd, "cur", md->do_fsync) == -1)
		goto fail;
	(void)close(userfd);
	return (0);

fail:
	{
		int saved = errno;

		if (opened_new) {
			(void)close(*newfd);
			*newfd = -1;
		}
		if (opened_tmp) {
			(void)close(*tmpfd);
			*tmpfd = -1;
		}
		(void)close(userfd);
		errno = saved;
	}
	return (-1);
}

/* maildir_dir_live - dfd still names a directory that has a name */

static int
maildir_dir_live(int dfd)
{
	struct stat st;

	return (fstat(dfd, &st) == 0 && st.st_nlink > 0);
}

/*
 * maildir_retire - close a directory descriptor that is no longer kept.
 * A staged message may still use it: then it is closed once nothing is
 * staged (and should even that bookkeeping fail, it stays open: a leak,
 * never a descriptor closed under a message, whose number could then
 * name another directory).
 */

static void
maildir_retire(struct maildir *md, int fd)
{
	int *grown;

	if (md->nstaged == 0) {
		(void)close(fd);
	} else if ((grown = realloc(md->retired, (md->nretired + 1)
	    * sizeof(*md->retired))) != NULL) {
		md->retired = grown;
		md->retired[md->nretired++] = fd;
	}
}

/*
 * maildir_user_renew - open u's tmp/ and new/ again where the kept
 * descriptor names a removed directory (no link left), making them
 * again when missing. Returns 0 when both are live, -1 with errno when
 * one cannot be made (say, a file now has its name).
 */

static int
maildir_user_renew(struct maildir *md, struct maildir_user *u)
{
	int tmpfd = maildir_dir_live(u->tmpfd) ? u->tmpfd : -1;
	int newfd = maildir_dir_live(u->newfd) ? u->newfd : -1;

	if (tmpfd != -1 && newfd != -1)
		return (0);
	if (maildir_user_dirs(md, u->name, &tmpfd, &newfd) == -1)
		return (-1);
	if (tmpfd != u->tmpfd) {
		maildir_retire(md, u->tmpfd);
		u->tmpfd = tmpfd;
	}
	if (newfd != u->newfd) {
		maildir_retire(md, u->newfd);
		u->newfd = newfd;
	}
	log_info(NULL, "the Maildir of %s was removed meanwhile: opened "
	    "again", u->name);
	return (0);
}

/*
 * maildir_queue_renew - open root/.OTHER_SERVERS and its .tmp/ again
 * where the kept descriptor names a removed directory, making them
 * again when missing (an administrator's rm -rf must not stop relaying
 * until a restart). The domain cache goes with a removed queue: its
 * directories were below it. Returns 0 when both are live, -1 with
 * errno when one cannot be made.
 */

static int
maildir_queue_renew(struct maildir *md)
{
	int queuefd = md->queuefd;
	int qtmpfd = md->qtmpfd;

	if (!maildir_dir_live(queuefd)) {
		if ((queuefd = maildir_open_dir_at(md->rootfd,
		    MAILDIR_QUEUE_DIR, md->do_fsync, O_NOFOLLOW)) == -1)
			return (-1);
		while (md->ndomains > 0)
			maildir_domain_drop(md, md->ndomains - 1);
		maildir_retire(md, md->queuefd);
		md->queuefd = queuefd;
		qtmpfd = -1;
	} else if (!maildir_dir_live(qtmpfd)) {
		qtmpfd = -1;
	}
	if (qtmpfd == -1) {
		if ((qtmpfd = maildir_open_dir_at(md->queuefd,
		    MAILDIR_QUEUE_TMP, md->do_fsync, O_NOFOLLOW)) == -1)
			return (-1);
		maildir_retire(md, md->qtmpfd);
		md->qtmpfd = qtmpfd;
		log_info(NULL, "the queue directory %s was removed meanwhile: "
		    "opened again", MAILDIR_QUEUE_DIR);
	}
	return (0);
}

/*
 * maildir_spool_open - an anonymous file for a message's text, on the
 * file system of the tree (so that copies can be made in the kernel),
 * gone as soon as its descriptor is closed: O_TMPFILE in the queue's
 * .tmp/, or, where the file system cannot, a file made there and
 * unlinked at once.
 */

int
maildir_spool_open(struct maildir *md)
{
	char name[MAILDIR_NAME_MAX];
	int fd;

	if (md == NULL) {
		errno = EINVAL;
		return (-1);
	}
	/*
	 * A removed .tmp/ answers ENOENT, or EPERM on some file systems,
	 * and the fallback below would fail too: look at the directory
	 * itself (an fstat, next to the syncs of a message: nothing).
	 */
	if (!maildir_dir_live(md->qtmpfd) && maildir_queue_renew(md) == -1)
		return (-1);
	fd = openat(md->qtmpfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC,
	    MAILDIR_FILE_MODE);
	if (fd != -1 || (errno != EOPNOTSUPP && errno != EISDIR
	    && errno != EINVAL))
		return (fd);
	/* No O_TMPFILE here: a unique name of ours, unlinked at once. */
	if (snprintf(name, sizeof(name), "spool.%ld.%lu", (long)getpid(),
	    ++md->use_clock) >= (int)sizeof(name)) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	if ((fd = openat(md->qtmpfd, name, O_RDWR | O_CREAT | O_EXCL
	    | O_CLOEXEC | O_NOFOLLOW, MAILDIR_FILE_MODE)) == -1)
		return (-1);
	(void)unlinkat(md->qtmpfd, name, 0);
	return (fd);
}

/*
 * maildir_target_renew - a step of local copy t failed with ENOENT:
 * renew its user's directories and point t at them. A copy already
 * written keeps its tmp directory (its file is there or nowhere).
 * Returns 1 when t changed, so that one more try may work; otherwise 0
 * with errno ENOENT (the failure the caller reports), the reason why
 * the directories cannot be made again being logged.
 */

static int
maildir_target_renew(struct maildir *md, struct maildir_target *t,
    const char *id)
{
	struct maildir_user *u;
	int changed = 0;

	if (t->user == MAILDIR_NO_USER) {
		/* The queue's .tmp/ (the domain directory is fresh). */
		if (t->written || maildir_queue_renew(md) == -1
		    || t->tmpdirfd == md->qtmpfd) {
			errno = ENOENT;
			return (0);
		}
		t->tmpdirfd = md->qtmpfd;
		errno = ENOENT;
		return (1);
	}
	u = &md->users[t->user];
	if (maildir_user_renew(md, u) == -1) {
		log_warn(id, "cannot open the Maildir of %s again", u->name);
		errno = ENOENT;
		return (0);
	}
	if (!t->written && t->tmpdirfd != u->tmpfd) {
		t->tmpdirfd = u->tmpfd;
		changed = 1;
	}
	if (t->dstdirfd != u->newfd) {
		t->dstdirfd = u->newfd;
		changed = 1;
	}
	errno = ENOENT;
	return (changed);
}

/*
 * maildir_domain_fd - the descriptor of root/.OTHER_SERVERS/<domain>,
 * from the cache or opened now (made, with its error/, when missing).
 * O_NOFOLLOW: the name came from the wire, so a symlink planted in the
 * queue is not followed out of it.
 */

static int
maildir_domain_fd(struct maildir *md, const char *domain)
{
	struct maildir_domain *grown;
	struct stat st;
	size_t i;
	int fd;

	for (i = 0; i < md->ndomains; i++) {
		if (strcmp(md->domains[i].name, domain) != 0)
			continue;
		if (fstat(md->domains[i].fd, &st) == 0 && st.st_nlink > 0) {
			md->domains[i].last_used = ++md->use_clock;
			return (md->domains[i].fd);
		}
		/* Removed behind our back: make it again below. */
		maildir_domain_drop(md, i);
		break;
	}
	if ((fd = maildir_open_dir_at(md->queuefd, domain, md->do_fsync,
	    O_NOFOLLOW)) == -1) {
		/* The whole queue was removed: make it again, once. */
		if (errno != ENOENT || maildir_dir_live(md->queuefd)
		    || maildir_queue_renew(md) == -1
		    || (fd = maildir_open_dir_at(md->queuefd, domain,
		    md->do_fsync, O_NOFOLLOW)) == -1)
			return (-1);
	}
	if (maildir_mkdir_at(fd, MAILDIR_ERROR_DIR, md->do_fsync) == -1)
		goto fail;
	grown = realloc(md->domains, (md->ndomains + 1) * sizeof(*md->domains));
	if (grown == NULL)
		goto fail;
	md->domains = grown;
	/* maildir_domain_ok() bounded the length to fit, NUL included. */
	memcpy(md->domains[md->ndomains].name, domain, strlen(domain) + 1);
	md->domains[md->ndomains].fd = fd;
	md->domains[md->ndomains].last_used = ++md->use_clock;
	md->ndomains++;
	return (fd);

fail:
	{
		int saved = errno;

		(void)close(fd);
		errno = saved;
	}
	return (-1);
}

/* maildir_domain_drop - forget a cached directory (see maildir_retire) */

static void
maildir_domain_drop(struct maildir *md, size_t idx)
{
	maildir_retire(md, md->domains[idx].fd);
	md->domains[idx] = md->domains[md->ndomains - 1];
	md->ndomains--;
}

/*
 * maildir_trim_cache - close the least recently used domain directories,
 * and retired ones; only while nothing is staged.
 */

static void
maildir_trim_cache(struct maildir *md)
{
	if (md->nstaged > 0)
		return;
	while (md->nretired > 0)
		(void)close(md->retired[--md->nretired]);
	while (md->ndomains > MAILDIR_DOMAIN_CACHE) {
		size_t oldest = 0;
		size_t i;

		for (i = 1; i < md->ndomains; i++)
			if (md->domains[i].last_used
			    < md->domains[oldest].last_used)
				oldest = i;
		maildir_domain_drop(md, oldest);
	}
}

/*
 * maildir_copies_check - refuse (EINVAL) a delivery before it touches the
 * disk: each copy names exactly one known mailbox or one safe domain, no
 * two copies name the same target directory, content is present.
 */

static int
maildir_copies_check(const struct maildir *md,
    const struct maildir_copy *copies, size_t ncopies)
{
	size_t i;
	size_t j;

	for (i = 0; i < ncopies; i++) {
		const struct maildir_copy *c = &copies[i];

		if ((c->mailbox == NULL) == (c->domain == NULL))
			goto invalid;
		if (c->iovcnt < 0 || (c->iovcnt > 0 && c->iov == NULL))
			goto invalid;
		if (c->mailbox != NULL && maildir_find_user(md, c->mailbox)
		    == NULL)
			goto invalid;
		if (c->domain != NULL && !maildir_domain_ok(c->domain))
			goto invalid;
		if (c->id != NULL && !maildir_id_ok(c->id))
			goto invalid;
		for (j = 0; j < i; j++) {
			/* Of one name, one file a directory. */
			if ((c->id == NULL) != (copies[j].id == NULL)
			    || (c->id != NULL && strcmp(c->id, copies[j].id)
			    != 0))
				continue;
			if (c->mailbox != NULL && copies[j].mailbox != NULL
			    && strcmp(c->mailbox, copies[j].mailbox) == 0)
				goto invalid;
			if (c->domain != NULL && copies[j].domain != NULL
			    && strcmp(c->domain, copies[j].domain) == 0)
				goto invalid;
		}
	}
	return (0);

invalid:
	errno = EINVAL;
	return (-1);
}

/*
 * maildir_write_all - write every byte of iov to fd. A regular file may
 * take less than asked (a file size limit, a disk filling up); the rest
 * is written again until the kernel says why it cannot.
 */

static int
maildir_write_all(int fd, const struct iovec *iov, int iovcnt)
{
	struct iovec batch[MAILDIR_IOV_BATCH];
	int next = 0;			/* first iovec not fully written */
	size_t skip = 0;		/* bytes of iov[next] already written */

	while (next < iovcnt) {
		ssize_t done;
		size_t left;
		int n = 0;
		int i;

		if (iov[next].iov_len == skip) {
			next++;
			skip = 0;
			continue;
		}
		for (i = next; i < iovcnt && n < MAILDIR_IOV_BATCH; i++, n++) {
			size_t off = (i == next ? skip : 0);

			batch[n].iov_base = (char *)iov[i].iov_base + off;
			batch[n].iov_len = iov[i].iov_len - off;
		}
		if ((done = writev(fd, batch, n)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		if (done == 0) {
			/* No progress and no reason: do not spin. */
			errno = EIO;
			return (-1);
		}
		for (left = (size_t)done; left > 0;) {
			size_t rest = iov[next].iov_len - skip;

			if (left < rest) {
				skip += left;
				left = 0;
			} else {
				left -= rest;
				next++;
				skip = 0;
			}
		}
	}
	return (0);
}

/*
 * maildir_copy_text - append bytes [0, text_len) of text_fd to fd.
 * copy_file_range() lets the kernel copy (or share the blocks, where
 * the file system can) without the bytes passing through this
 * process; where it cannot (another file system, an old kernel), a
 * bounded buffer does. Offsets are explicit: text_fd is shared by
 * every copy of a message, so its file offset is never used.
 */

static int
maildir_copy_text(int fd, int text_fd, size_t text_len)
{
	char chunk[MAILDIR_COPY_CHUNK];
	off_t in = 0;
	size_t left = text_len;
	ssize_t n, w, done;

	while (left > 0) {
		n = copy_file_range(text_fd, &in, fd, NULL, left, 0);
		if (n > 0) {
			left -= (size_t)n;
			continue;
		}
		if (n == 0)
			goto short_text;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS
		    && errno != EOPNOTSUPP && errno != EBADF)
			return (-1);
		break;
	}
	while (left > 0) {
		n = pread(text_fd, chunk, left < sizeof(chunk) ? left
		    : sizeof(chunk), in);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		if (n == 0)
			goto short_text;
		for (done = 0; done < n; done += w) {
			if ((w = write(fd, chunk + done, (size_t)(n - done)))
			    < 0) {
				if (errno == EINTR) {
					w = 0;
					continue;
				}
				return (-1);
			}
			if (w == 0) {
				errno = EIO;
				return (-1);
			}
		}
		in += n;
		left -= (size_t)n;
	}
	return (0);

short_text:
	/* The text is shorter than its owner said: never store a cut copy. */
	errno = EIO;
	return (-1);
}

/*
 * maildir_write_tmp - create t's tmp file (it must not exist) and write
 * iov to it. With keep_open the descriptor stays in t->fd for the sync
 * of the batch; otherwise the file is closed at once. t->written tells
 * whether a file was made that must be removed should anything fail.
 */

static int
maildir_write_tmp(struct maildir_target *t, const struct maildir_copy *c,
    int keep_open)
{
	int fd;

	fd = openat(t->tmpdirfd, t->tmpname, O_WRONLY | O_CREAT | O_EXCL
	    | O_CLOEXEC | O_NOFOLLOW, MAILDIR_FILE_MODE);
	if (fd == -1)
		return (-1);
	t->written = 1;
	if (maildir_write_all(fd, c->iov, c->iovcnt) == -1
	    || (c->text_len > 0 && maildir_copy_text(fd, c->text_fd,
	    c->text_len) == -1)) {
		int saved = errno;

		(void)close(fd);
		errno = saved;
		return (-1);
	}
	if (keep_open) {
		t->fd = fd;
		return (0);
	}
	/* Some file systems (NFS) report a failed write only here. */
	return (close(fd));
}

/*
 * maildir_rename_new - rename into place, never over an existing file:
 * undoing a failed delivery removes what this call placed, and that must
 * never be someone else's letter. Where renameat2(RENAME_NOREPLACE) is
 * missing (EINVAL from the file system, ENOSYS from an old kernel) the
 * file is linked into place, which fails with EEXIST as well, and its
 * tmp/ name unlinked (qmail's way); a file system with neither refuses
 * the delivery (the linkat() error) rather than risk replacing a file.
 * A tmp/ name that cannot be unlinked after the link is only a second
 * name of the placed letter: logged, and removed at the next start.
 */

static int
maildir_rename_new(int olddfd, const char *oldname, int newdfd,
    const char *newname)
{
	if (renameat2(olddfd, oldname, newdfd, newname, RENAME_NOREPLACE) == 0)
		return (0);
	if (errno != EINVAL && errno != ENOSYS)
		return (-1);
	if (linkat(olddfd, oldname, newdfd, newname, 0) == -1)
		return (-1);
	if (unlinkat(olddfd, oldname, 0) == -1 && errno != ENOENT)
		log_warn(NULL, "cannot remove tmp/%s after linking it into "
		    "place", oldname);
	return (0);
}

/*
 * maildir_undo - remove every file a failed delivery made. The removal
 * of a placed file is synced like its arrival was, so that a crash
 * cannot bring back a letter the client was told was not taken.
 */

static void
maildir_undo(const struct maildir *md, const char *id,
    struct maildir_target *targets, size_t ntargets)
{
	size_t i;

	for (i = 0; i < ntargets; i++) {
		struct maildir_target *t = &targets[i];
		const char *name = t->name;

		if (t->fd != -1) {
			(void)close(t->fd);
			t->fd = -1;
		}
		if (t->placed) {
			if (unlinkat(t->dstdirfd, name, 0) == -1) {
				if (errno != ENOENT)
					log_warn(id, "cannot remove %s of a "
					    "failed delivery", name);
			} else if (md->do_fsync && fsync(t->dstdirfd) == -1
			    && fsync(t->dstdirfd) == -1) {
				/*
				 * Tried twice. The client hears 4xx and
				 * sends again; should the host crash now,
				 * this copy may come back: a duplicate, the
				 * lesser harm (never a loss). Say so, with
				 * the name, so that it can be found.
				 */
				log_err(id, "cannot sync the removal of %s "
				    "of a failed delivery: after a crash it "
				    "may come back as a duplicate", name);
			}
			t->placed = 0;
		} else if (t->written) {
			if (unlinkat(t->tmpdirfd, t->tmpname, 0) == -1
			    && errno != ENOENT)
				log_warn(id, "cannot remove tmp file %s of a "
				    "failed delivery", t->tmpname);
			t->written = 0;
		}
	}
}

/*
 * maildir_deliver - one message, all or none: a batch of one, on the
 * stack, whose arrays are released before returning.
 */

int
maildir_deliver(struct maildir *md, const char *id,
    const struct maildir_copy *copies, size_t ncopies)
{
	struct maildir_batch b;
	int err = 0;

	if (md == NULL) {
		errno = EINVAL;
		return (-1);
	}
	memset(&b, 0, sizeof(b));
	b.md = md;
	if (maildir_batch_add(&b, id, copies, ncopies) == -1)
		err = errno;
	else
		(void)maildir_batch_commit(&b, &err);
	free(b.dirs);
	free(b.targets);
	free(b.msgs);
	if (err != 0) {
		errno = err;
		return (-1);
	}
	return (0);
}

/* maildir_grow - make *arrayp hold at least need elements of size bytes */

static int
maildir_grow(void *arrayp, size_t *cap, size_t need, size_t size)
{
	void **array = arrayp;
	size_t n = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return (0);
	while (n < need)
		n *= 2;
	if (n > SIZE_MAX / size || (p = realloc(*array, n * size)) == NULL) {
		errno = ENOMEM;
		return (-1);
	}
	*array = p;
	*cap = n;
	return (0);
}

struct maildir_batch *
maildir_batch_new(struct maildir *md)
{
	struct maildir_batch *b;

	if (md == NULL) {
		errno = EINVAL;
		return (NULL);
	}
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return (NULL);
	b->md = md;
	return (b);
}

void
maildir_batch_free(struct maildir_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->nmsgs; i++)
		maildir_batch_undo(b, &b->msgs[i]);
	b->md->nstaged -= b->nmsgs;
	maildir_trim_cache(b->md);
	free(b->dirs);
	free(b->targets);
	free(b->msgs);
	free(b);
}

size_t
maildir_batch_count(const struct maildir_batch *b)
{
	return (b->nmsgs);
}

size_t
maildir_batch_files(const struct maildir_batch *b)
{
	return (b->ntargets);
}

/* maildir_batch_undo - remove every file of message m (once) */

static void
maildir_batch_undo(struct maildir_batch *b, struct maildir_staged *m)
{
	maildir_undo(b->md, m->id, &b->targets[m->first], m->ntargets);
}

/*
 * maildir_batch_add - phases 1 to 3 for one message (see DESCRIPTION);
 * a failure removes what this message made and leaves the batch as it
 * was.
 */

int
maildir_batch_add(struct maildir_batch *b, const char *id,
    const struct maildir_copy *copies, size_t ncopies)
{
	struct maildir *md;
	struct maildir_staged *m;
	size_t i;
	size_t ready = 0;		/* targets set up, for the undo */
	int err;

	if (b == NULL || copies == NULL || ncopies == 0) {
		errno = EINVAL;
		return (-1);
	}
	md = b->md;
	if (b->nmsgs >= INT_MAX || ncopies > SIZE_MAX / 2 - b->ntargets) {
		errno = ENOMEM;
		return (-1);
	}
	if (maildir_grow(&b->msgs, &b->msgs_cap, b->nmsgs + 1,
	    sizeof(*b->msgs)) == -1 || maildir_grow(&b->targets,
	    &b->targets_cap, b->ntargets + ncopies, sizeof(*b->targets)) == -1)
		return (-1);
	m = &b->msgs[b->nmsgs];
	if (maildir_name(md, id, m->name, sizeof(m->name)) == -1)
		return (-1);
	if (maildir_copies_check(md, copies, ncopies) == -1)
		return (-1);
	/* The name holds the ID, so the ID fits. */
	memcpy(m->id, id, strlen(id) + 1);
	m->first = b->ntargets;
	m->ntargets = ncopies;
	m->err = 0;
	/* From here on a domain directory's descriptor may be ours. */
	md->nstaged++;

	for (i = 0; i < ncopies; i++) {
		struct maildir_target *t = &b->targets[m->first + i];
		int n;

		memset(t, 0, sizeof(*t));
		t->fd = -1;
		ready = i + 1;
		if (copies[i].mailbox != NULL) {
			const struct maildir_user *u;

			u = maildir_find_user(md, copies[i].mailbox);
			t->user = (size_t)(u - md->users);
			t->tmpdirfd = u->tmpfd;
			t->dstdirfd = u->newfd;
		} else {
			t->user = MAILDIR_NO_USER;
			t->tmpdirfd = md->qtmpfd;
			if ((t->dstdirfd = maildir_domain_fd(md,
			    copies[i].domain)) == -1)
				goto fail;
		}
		if (copies[i].id == NULL)
			memcpy(t->name, m->name, sizeof(t->name));
		else if (maildir_name(md, copies[i].id, t->name,
		    sizeof(t->name)) == -1)
			goto fail;
		n = snprintf(t->tmpname, sizeof(t->tmpname), "%s.%zu",
		    t->name, i);
		if (n < 0 || (size_t)n >= sizeof(t->tmpname)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
	}
	for (i = 0; i < ncopies; i++) {
		struct maildir_target *t = &b->targets[m->first + i];

		if (maildir_write_tmp(t, &copies[i], md->do_fsync) == 0)
			continue;
		/* A removed tmp/: open it again and try once more. */
		if (errno != ENOENT || !maildir_target_renew(md, t, m->id)
		    || maildir_write_tmp(t, &copies[i], md->do_fsync) == -1)
			goto fail;
	}
	b->ntargets += ncopies;
	return ((int)b->nmsgs++);

fail:
	err = errno;
	maildir_undo(md, m->id, &b->targets[m->first], ready);
	md->nstaged--;
	maildir_trim_cache(md);
	errno = err;
	return (-1);
}

/* maildir_start_writeback - let the disk have fd's data without waiting */

static void
maildir_start_writeback(int fd)
{
#ifdef SYNC_FILE_RANGE_WRITE
	/* Only a hint: fsync() below is what reports errors. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
	(void)fd;
#endif
}

/* maildir_batch_note_dir - remember a directory to fsync, once */

static int
maildir_batch_note_dir(struct maildir_batch *b, int dfd)
{
	size_t i;

	for (i = 0; i < b->ndirs; i++)
		if (b->dirs[i] == dfd)
			return (0);
	if (maildir_grow(&b->dirs, &b->dirs_cap, b->ndirs + 1,
	    sizeof(*b->dirs)) == -1)
		return (-1);
	b->dirs[b->ndirs++] = dfd;
	return (0);
}

/*
 * maildir_batch_place - rename copy t of m into place, its directory
 * noted for phase c first (a placed file is always in b->dirs). A
 * removed new/ is opened again, and the rename tried once more.
 */

static int
maildir_batch_place(struct maildir_batch *b, const struct maildir_staged *m,
    struct maildir_target *t)
{
	int retried = 0;

	for (;;) {
		if (maildir_batch_note_dir(b, t->dstdirfd) == -1)
			return (-1);
		if (maildir_rename_new(t->tmpdirfd, t->tmpname, t->dstdirfd,
		    t->name) == 0)
			return (0);
		if (retried || errno != ENOENT
		    || !maildir_target_renew(b->md, t, m->id))
			return (-1);
		retried = 1;
	}
}

/*
 * maildir_batch_commit - phases a to c of DESCRIPTION for every staged
 * message. Directories are few (one per user and domain touched), so a
 * linear search keeps them unique.
 */

size_t
maildir_batch_commit(struct maildir_batch *b, int *errs)
{
	struct maildir *md = b->md;
	struct maildir_staged *m;
	struct maildir_target *t;
	size_t i, k, d, nfailed = 0;

	/* a. The data of every file, with one wait per file. */
	if (md->do_fsync) {
		for (k = 0; k < b->ntargets; k++)
			if (b->targets[k].fd != -1)
				maildir_start_writeback(b->targets[k].fd);
		for (i = 0; i < b->nmsgs; i++) {
			m = &b->msgs[i];
			for (k = 0; k < m->ntargets && m->err == 0; k++) {
				t = &b->targets[m->first + k];
				if (fsync(t->fd) == -1)
					m->err = errno;
			}
		}
	}
	for (i = 0; i < b->nmsgs; i++) {
		m = &b->msgs[i];
		for (k = 0; k < m->ntargets; k++) {
			t = &b->targets[m->first + k];
			if (t->fd == -1)
				continue;
			if (close(t->fd) == -1 && m->err == 0)
				m->err = errno;
			t->fd = -1;
		}
	}

	/* b. Into place; a message that cannot be placed whole goes. */
	for (i = 0; i < b->nmsgs; i++) {
		m = &b->msgs[i];
		for (k = 0; k < m->ntargets && m->err == 0; k++) {
			t = &b->targets[m->first + k];
			if (maildir_batch_place(b, m, t) == -1) {
				m->err = errno;
				break;
			}
			t->written = 0;
			t->placed = 1;
		}
		if (m->err != 0)
			maildir_batch_undo(b, m);
	}

	/*
	 * c. Each directory once. When one cannot be synced, no message
	 * that went there may be reported stored: each is taken back
	 * whole, from every directory it reached.
	 */
	if (md->do_fsync) {
		for (d = 0; d < b->ndirs; d++) {
			int err;

			if (fsync(b->dirs[d]) == 0)
				continue;
			err = errno;
			for (i = 0; i < b->nmsgs; i++) {
				m = &b->msgs[i];
				if (m->err != 0)
					continue;
				for (k = 0; k < m->ntargets; k++)
					if (b->targets[m->first + k].dstdirfd
					    == b->dirs[d])
						break;
				if (k == m->ntargets)
					continue;
				m->err = err;
				maildir_batch_undo(b, m);
			}
		}
	}

	for (i = 0; i < b->nmsgs; i++) {
		errs[i] = b->msgs[i].err;
		if (errs[i] != 0)
			nfailed++;
	}
	md->nstaged -= b->nmsgs;
	b->nmsgs = 0;
	b->ntargets = 0;
	b->ndirs = 0;
	maildir_trim_cache(md);
	return (nfailed);
}

int
maildir_name(const struct maildir *md, const char *id, char *dst,
    size_t dstlen)
{
	int n;

	if (md == NULL || dst == NULL || !maildir_id_ok(id)) {
		errno = EINVAL;
		return (-1);
	}
	n = snprintf(dst, dstlen, "%lld.%s.%s", (long long)time(NULL), id,
	    md->host);
	if (n < 0 || (size_t)n >= dstlen || n >= MAILDIR_NAME_MAX) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

/*
 * maildir_name_id - the ID of a name made by maildir_name(): digits, a
 * dot, the ID (letters and digits), a dot, a host part without '/'
 * (which may carry a ":2,FLAGS" suffix once the letter is in cur/).
 * Returns -1 with EINVAL for anything else, ERANGE when id is too small.
 */

int
maildir_name_id(const char *name, char *id, size_t idlen)
{
	const char *start;
	const char *end;
	size_t len;

	if (name == NULL || id == NULL) {
		errno = EINVAL;
		return (-1);
	}
	for (end = name; *end >= '0' && *end <= '9'; end++)
		continue;
	if (end == name || *end != '.')
		goto invalid;
	start = ++end;
	while ((*end >= 'A' && *end <= 'Z') || (*end >= 'a' && *end <= 'z')
	    || (*end >= '0' && *end <= '9'))
		end++;
	if (end == start || *end != '.' || end[1] == '\0'
	    || strchr(end, '/') != NULL)
		goto invalid;
	len = (size_t)(end - start);
	if (len >= idlen) {
		errno = ERANGE;
		return (-1);
	}
	memcpy(id, start, len);
	id[len] = '\0';
	return (0);

invalid:
	errno = EINVAL;
	return (-1);
}

/*
 * maildir_name_is_ours - name is "SECONDS.ID.HOST" or "SECONDS.ID.HOST.N"
 * (N digits: a copy's tmp/ name) with HOST this host's escaped name.
 * Another host sharing the tree has another HOST: its files are its own.
 */

static int
maildir_name_is_ours(const char *name, const char *host)
{
	const char *p = name;
	size_t hlen = strlen(host);

	while (*p >= '0' && *p <= '9')
		p++;
	if (p == name || *p++ != '.')
		return (0);
	if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
	    || (*p >= '0' && *p <= '9')))
		return (0);
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
	    || (*p >= '0' && *p <= '9'))
		p++;
	if (*p++ != '.' || strncmp(p, host, hlen) != 0)
		return (0);
	p += hlen;
	if (*p == '\0')
		return (1);
	if (*p++ != '.' || *p == '\0')
		return (0);
	while (*p >= '0' && *p <= '9')
		p++;
	return (*p == '\0');
}

/*
 * maildir_clean_dir - remove this host's regular files of one tmp/
 * directory. They are letters whose writer died before the rename: never
 * answered with 250, so removing them loses nothing. Anything else (a
 * name of another host, or no Maildir name at all) is left alone.
 * A second descriptor is opened so that reading the directory does not
 * disturb the one kept for delivery.
 */

static int
maildir_clean_dir(int dfd, const char *what, const char *host)
{
	struct dirent *de;
	struct stat st;
	DIR *dir = NULL;
	int fd;
	int count = 0;

	if ((fd = openat(dfd, ".", MAILDIR_DIR_FLAGS)) == -1)
		return (-1);
	if ((dir = fdopendir(fd)) == NULL) {
		int saved = errno;

		(void)close(fd);
		errno = saved;
		return (-1);
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0)
				goto fail;
			break;
		}
		if (!maildir_name_is_ours(de->d_name, host))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				continue;
			goto fail;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dfd, de->d_name, 0) == -1) {
			if (errno == ENOENT)
				continue;
			goto fail;
		}
		log_info(NULL, "removed %s/%s left by an interrupted delivery",
		    what, de->d_name);
		count++;
	}
	(void)closedir(dir);
	return (count);

fail:
	{
		int saved = errno;

		(void)closedir(dir);
		errno = saved;
	}
	return (-1);
}

int
maildir_clean_tmp(struct maildir *md)
{
	char what[NAME_MAX + sizeof("/tmp")];
	size_t i;
	int total;
	int n;

	if (md == NULL) {
		errno = EINVAL;
		return (-1);
	}
	if ((total = maildir_clean_dir(md->qtmpfd,
	    MAILDIR_QUEUE_DIR "/" MAILDIR_QUEUE_TMP, md->host)) == -1)
		return (-1);
	for (i = 0; i < md->nusers; i++) {
		n = snprintf(what, sizeof(what), "%s/tmp", md->users[i].name);
		if (n < 0 || (size_t)n >= sizeof(what)) {
			/* maildir_user_name_ok() bounds names: cannot happen */
			errno = ENAMETOOLONG;
			return (-1);
		}
		if ((n = maildir_clean_dir(md->users[i].tmpfd, what,
		    md->host)) == -1)
			return (-1);
		total += n;
	}
	return (total);
}

int
maildir_hostname_ok(const char *hostname)
{
	char *escaped;
	size_t len;

	if (hostname == NULL || *hostname == '\0')
		return (0);
	if ((escaped = maildir_escape_host(hostname)) == NULL)
		return (0);
	len = strlen(escaped);
	free(escaped);
	return (len <= MAILDIR_HOST_MAX);
}

/*
 * maildir_lock - one daemon per host and tree: an flock() on
 * root/.lock.HOST, held as long as md is open. flock() rather than
 * fcntl(): the lock belongs to the open file, so a child that closes its
 * copy (the logger does) cannot release it, and it goes when the last
 * holder dies, however it dies. (Over NFS Linux maps flock() to a
 * byte-range lock the server sees; each host has its own file.)
 */

int
maildir_lock(struct maildir *md)
{
	struct stat st;
	int fd;

	if (md == NULL) {
		errno = EINVAL;
		return (-1);
	}
	if (md->lockfd != -1)
		return (0);
	/* O_RDWR: NFS maps flock() to a write lock, which needs it. */
	if ((fd = openat(md->rootfd, md->lockname, O_RDWR | O_CREAT
	    | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, MAILDIR_FILE_MODE)) == -1)
		return (-1);
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) == -1)
		if (errno != EINTR)
			goto fail;
	md->lockfd = fd;
	return (0);

fail:
	{
		int saved = errno;

		(void)close(fd);
		errno = saved;
	}
	return (-1);
}

const char *
maildir_lock_name(const struct maildir *md)
{
	return (md->lockname);
}

/* maildir_bad - where the walk stopped, "WHERE/NAME", for the caller */

static void
maildir_bad(char *bad, size_t badlen, const char *where, const char *name)
{
	int saved = errno;
	int n;

	if (bad == NULL || badlen == 0)
		return;
	n = snprintf(bad, badlen, "%s%s%s", where, *where && *name ? "/" : "",
	    name);
	if (n < 0)
		bad[0] = '\0';
	/* A cut name is still the start of the right one. */
	errno = saved;
}

/* maildir_give_fd - fchown an open file of the tree when it is not uid's */

static int
maildir_give_fd(int fd, uid_t uid, gid_t gid)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return (-1);
	if (st.st_uid == uid && st.st_gid == gid)
		return (0);
	return (fchown(fd, uid, gid));
}

/*
 * maildir_give_at - give directory dfd/name (and, for a queue domain, its
 * error/) to uid. A missing entry or a plain file is left alone; a
 * symbolic link is an error (ELOOP), named in bad.
 */

static int
maildir_give_at(int dfd, const char *name, uid_t uid, gid_t gid,
    const char *where, char *bad, size_t badlen)
{
	char sub[PATH_MAX];
	struct stat st;
	int fd;
	int n;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return (0);
		maildir_bad(bad, badlen, where, name);
		return (-1);
	}
	if (S_ISLNK(st.st_mode)) {
		maildir_bad(bad, badlen, where, name);
		errno = ELOOP;
		return (-1);
	}
	if (!S_ISDIR(st.st_mode))
		return (0);
	if ((fd = openat(dfd, name, MAILDIR_DIR_FLAGS | O_NOFOLLOW)) == -1
	    || maildir_give_fd(fd, uid, gid) == -1)
		goto fail;
	if (strcmp(where, MAILDIR_QUEUE_DIR) == 0 && name[0] != '.') {
		n = snprintf(sub, sizeof(sub), "%s/%s", where, name);
		if (n < 0 || (size_t)n >= sizeof(sub)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		if (maildir_give_at(fd, MAILDIR_ERROR_DIR, uid, gid, sub, bad,
		    badlen) == -1) {
			int saved = errno;

			(void)close(fd);
			errno = saved;
			return (-1);
		}
	}
	(void)close(fd);
	return (0);

fail:
	{
		int saved = errno;

		maildir_bad(bad, badlen, where, name);
		if (fd != -1)
			(void)close(fd);
		errno = saved;
	}
	return (-1);
}

/*
 * maildir_give - start-up as root: the directories the daemon writes
 * into become uid's, walked from the root descriptor with O_NOFOLLOW
 * and changed with fchown() on what was opened, so that a symbolic link
 * planted in the tree (root/alice -> /etc) stops the walk (ELOOP)
 * instead of leading it out of the tree.
 */

int
maildir_give(struct maildir *md, uid_t uid, gid_t gid, char *bad,
    size_t badlen)
{
	struct dirent *de;
	DIR *dir = NULL;
	size_t i;
	int fd = -1;

	if (bad != NULL && badlen > 0)
		bad[0] = '\0';
	if (md == NULL) {
		errno = EINVAL;
		return (-1);
	}
	if (maildir_give_fd(md->rootfd, uid, gid) == -1) {
		maildir_bad(bad, badlen, "", ".");
		return (-1);
	}
	if (md->lockfd != -1 && maildir_give_fd(md->lockfd, uid, gid) == -1) {
		maildir_bad(bad, badlen, "", md->lockname);
		return (-1);
	}
	if (maildir_give_fd(md->queuefd, uid, gid) == -1
	    || maildir_give_fd(md->qtmpfd, uid, gid) == -1) {
		maildir_bad(bad, badlen, MAILDIR_QUEUE_DIR, MAILDIR_QUEUE_TMP);
		return (-1);
	}
	for (i = 0; i < md->nusers; i++) {
		const struct maildir_user *u = &md->users[i];

		if ((fd = openat(md->rootfd, u->name, MAILDIR_DIR_FLAGS
		    | O_NOFOLLOW)) == -1 || maildir_give_fd(fd, uid, gid) == -1
		    || maildir_give_fd(u->tmpfd, uid, gid) == -1
		    || maildir_give_fd(u->newfd, uid, gid) == -1) {
			maildir_bad(bad, badlen, "", u->name);
			goto fail;
		}
		if (maildir_give_at(fd, "cur", uid, gid, u->name, bad,
		    badlen) == -1)
			goto fail;
		(void)close(fd);
		fd = -1;
	}

	if ((fd = openat(md->queuefd, ".", MAILDIR_DIR_FLAGS)) == -1)
		goto fail;
	if ((dir = fdopendir(fd)) == NULL)
		goto fail;
	fd = -1;			/* dir owns it now */
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0)
				goto fail;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0
		    || strcmp(de->d_name, MAILDIR_QUEUE_TMP) == 0)
			continue;
		if (maildir_give_at(md->queuefd, de->d_name, uid, gid,
		    MAILDIR_QUEUE_DIR, bad, badlen) == -1)
			goto fail;
	}
	(void)closedir(dir);
	return (0);

fail:
	{
		int saved = errno;

		if (dir != NULL)
			(void)closedir(dir);
		if (fd != -1)
			(void)close(fd);
		errno = saved;
	}
	return (-1);
}
