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
 * DIAGNOSTICS
 *	Functions return -1 (or NULL) with errno set; nothing here exits.
 *	A file that cannot be removed while undoing a failed delivery is
 *	logged (it would otherwise be a silent duplicate).
 * LIMITS
 *	MAILDIR_NAME_MAX bytes for a name; domains 255 bytes; user names
 *	NAME_MAX bytes.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
	char *host;			/* escaped for file names */
	struct maildir_user *users;
	size_t nusers;
	struct maildir_domain *domains;
	size_t ndomains;
	unsigned long use_clock;
};

/* One copy of a delivery in progress: where it goes, what exists. */
struct maildir_target {
	int tmpdirfd;
	int dstdirfd;
	char tmpname[MAILDIR_TMP_NAME_MAX];
	int written;			/* tmp/tmpname exists */
	int placed;			/* renamed to dst/NAME */
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
static int maildir_domain_fd(struct maildir *md, const char *domain);
static void maildir_domain_drop(struct maildir *md, size_t idx);
static void maildir_trim_cache(struct maildir *md);
static int maildir_copies_check(const struct maildir *md,
    const struct maildir_copy *copies, size_t ncopies);
static int maildir_write_all(int fd, const struct iovec *iov, int iovcnt);
static int maildir_write_file(int dfd, const char *name,
    const struct iovec *iov, int iovcnt, int do_fsync, int *created);
static int maildir_rename_new(int olddfd, const char *oldname, int newdfd,
    const char *newname);
static void maildir_undo(const struct maildir *md, const char *id,
    struct maildir_target *targets, size_t ntargets, const char *name);
static int maildir_clean_dir(int dfd, const char *what);

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
	if (mkdirat(dfd, name, MAILDIR_DIR_MODE) == -1)
		return (errno == EEXIST ? 0 : -1);
	if (do_fsync && fsync(dfd) == -1)
		return (-1);
	return (0);
}

/* maildir_open_dir_at - make dfd/name when missing, and open it */

static int
maildir_open_dir_at(int dfd, const char *name, int do_fsync,
    int extra_flags)
{
	if (maildir_mkdir_at(dfd, name, do_fsync) == -1)
		return (-1);
	return (openat(dfd, name, MAILDIR_DIR_FLAGS | extra_flags));
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

	if (id == NULL || *id == '\0')
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
	if ((md = calloc(1, sizeof(*md))) == NULL)
		return (NULL);
	md->rootfd = md->queuefd = md->qtmpfd = -1;
	md->do_fsync = do_fsync;
	if ((md->host = maildir_escape_host(hostname)) == NULL)
		goto fail;
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
	free(md->host);
	free(md);
}

int
maildir_add_user(struct maildir *md, const char *user)
{
	struct maildir_user *grown;
	char *name = NULL;
	int userfd = -1;
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
	if ((userfd = maildir_open_dir_at(md->rootfd, user, md->do_fsync,
	    0)) == -1)
		goto fail;
	if ((tmpfd = maildir_open_dir_at(userfd, "tmp", md->do_fsync,
	    0)) == -1)
		goto fail;
	if ((newfd = maildir_open_dir_at(userfd, "new", md->do_fsync,
	    0)) == -1)
		goto fail;
	if (maildir_mkdir_at(userfd, "cur", md->do_fsync) == -1)
		goto fail;
	grown = realloc(md->users, (md->nusers + 1) * sizeof(*md->users));
	if (grown == NULL)
		goto fail;
	md->users = grown;
	md->users[md->nusers].name = name;
	md->users[md->nusers].tmpfd = tmpfd;
	md->users[md->nusers].newfd = newfd;
	md->nusers++;
	(void)close(userfd);
	return (0);

fail:
	{
		int saved = errno;

		if (newfd != -1)
			(void)close(newfd);
		if (tmpfd != -1)
			(void)close(tmpfd);
		if (userfd != -1)
			(void)close(userfd);
		free(name);
		errno = saved;
	}
	return (-1);
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
	    O_NOFOLLOW)) == -1)
		return (-1);
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

static void
maildir_domain_drop(struct maildir *md, size_t idx)
{
	(void)close(md->domains[idx].fd);
	md->domains[idx] = md->domains[md->ndomains - 1];
	md->ndomains--;
}

/* maildir_trim_cache - close the least recently used domain directories */

static void
maildir_trim_cache(struct maildir *md)
{
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
		for (j = 0; j < i; j++) {
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
 * maildir_write_file - create dfd/name (it must not exist), write iov to
 * it, fsync and close it. *created tells the caller whether a file was
 * made that must be removed should anything fail later.
 */

static int
maildir_write_file(int dfd, const char *name, const struct iovec *iov,
    int iovcnt, int do_fsync, int *created)
{
	int fd;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
	    | O_NOFOLLOW, MAILDIR_FILE_MODE);
	if (fd == -1)
		return (-1);
	*created = 1;
	if (maildir_write_all(fd, iov, iovcnt) == -1)
		goto fail;
	if (do_fsync && fsync(fd) == -1)
		goto fail;
	/* Some file systems (NFS) report a failed write only here. */
	if (close(fd) == -1)
		return (-1);
	return (0);

fail:
	{
		int saved = errno;

		(void)close(fd);
		errno = saved;
	}
	return (-1);
}

/*
 * maildir_rename_new - rename into place, never over an existing file:
 * undoing a failed delivery removes what this call placed, and that must
 * never be someone else's letter. A file system that cannot refuse to
 * replace (EINVAL) gets a plain rename; the ID in the name keeps it
 * unique there, as in qmail.
 */

static int
maildir_rename_new(int olddfd, const char *oldname, int newdfd,
    const char *newname)
{
	if (renameat2(olddfd, oldname, newdfd, newname, RENAME_NOREPLACE) == 0)
		return (0);
	if (errno != EINVAL && errno != ENOSYS)
		return (-1);
	return (renameat(olddfd, oldname, newdfd, newname));
}

/*
 * maildir_undo - remove every file a failed delivery made. The removal
 * of a placed file is synced like its arrival was, so that a crash
 * cannot bring back a letter the client was told was not taken.
 */

static void
maildir_undo(const struct maildir *md, const char *id,
    struct maildir_target *targets, size_t ntargets, const char *name)
{
	size_t i;

	for (i = 0; i < ntargets; i++) {
		struct maildir_target *t = &targets[i];

		if (t->placed) {
			if (unlinkat(t->dstdirfd, name, 0) == -1) {
				if (errno != ENOENT)
					log_warn(id, "cannot remove %s of a "
					    "failed delivery", name);
			} else if (md->do_fsync) {
				(void)fsync(t->dstdirfd);
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

int
maildir_deliver(struct maildir *md, const char *id,
    const struct maildir_copy *copies, size_t ncopies)
{
	char name[MAILDIR_NAME_MAX];
	struct maildir_target *targets = NULL;
	size_t i;
	int err;

	if (md == NULL || copies == NULL || ncopies == 0) {
		errno = EINVAL;
		return (-1);
	}
	if (maildir_name(md, id, name, sizeof(name)) == -1)
		return (-1);
	if (maildir_copies_check(md, copies, ncopies) == -1)
		return (-1);
	if ((targets = calloc(ncopies, sizeof(*targets))) == NULL)
		return (-1);

	for (i = 0; i < ncopies; i++) {
		struct maildir_target *t = &targets[i];
		int n;

		if (copies[i].mailbox != NULL) {
			const struct maildir_user *u;

			u = maildir_find_user(md, copies[i].mailbox);
			t->tmpdirfd = u->tmpfd;
			t->dstdirfd = u->newfd;
		} else {
			t->tmpdirfd = md->qtmpfd;
			if ((t->dstdirfd = maildir_domain_fd(md,
			    copies[i].domain)) == -1)
				goto fail;
		}
		n = snprintf(t->tmpname, sizeof(t->tmpname), "%s.%zu", name,
		    i);
		if (n < 0 || (size_t)n >= sizeof(t->tmpname)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
	}
	for (i = 0; i < ncopies; i++)
		if (maildir_write_file(targets[i].tmpdirfd, targets[i].tmpname,
		    copies[i].iov, copies[i].iovcnt, md->do_fsync,
		    &targets[i].written) == -1)
			goto fail;
	for (i = 0; i < ncopies; i++) {
		if (maildir_rename_new(targets[i].tmpdirfd, targets[i].tmpname,
		    targets[i].dstdirfd, name) == -1)
			goto fail;
		targets[i].written = 0;
		targets[i].placed = 1;
	}
	/* Copies never share a target directory: each is synced once. */
	if (md->do_fsync)
		for (i = 0; i < ncopies; i++)
			if (fsync(targets[i].dstdirfd) == -1)
				goto fail;
	maildir_trim_cache(md);
	free(targets);
	return (0);

fail:
	err = errno;
	maildir_undo(md, id, targets, ncopies, name);
	maildir_trim_cache(md);
	free(targets);
	errno = err;
	return (-1);
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
 * maildir_clean_dir - remove the regular files of one tmp/ directory.
 * They are letters whose writer died before the rename: never answered
 * with 250, so removing them loses nothing. Anything else is left alone.
 * A second descriptor is opened so that reading the directory does not
 * disturb the one kept for delivery.
 */

static int
maildir_clean_dir(int dfd, const char *what)
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
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
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
	    MAILDIR_QUEUE_DIR "/" MAILDIR_QUEUE_TMP)) == -1)
		return (-1);
	for (i = 0; i < md->nusers; i++) {
		n = snprintf(what, sizeof(what), "%s/tmp", md->users[i].name);
		if (n < 0 || (size_t)n >= sizeof(what)) {
			/* maildir_user_name_ok() bounds names: cannot happen */
			errno = ENAMETOOLONG;
			return (-1);
		}
		if ((n = maildir_clean_dir(md->users[i].tmpfd, what)) == -1)
			return (-1);
		total += n;
	}
	return (total);
}
