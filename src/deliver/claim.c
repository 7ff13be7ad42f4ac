/*
 * NAME
 *	claim - which delivery agent sends a letter: claims on the tree
 * SYNOPSIS
 *	See claim.h.
 * DESCRIPTION
 *	Everything is a rename, an unlink or a stat relative to the domain
 *	directory, so that several hosts on one NFS tree need no lock and
 *	no traffic with each other: the file system decides every race.
 *	The change time (st_ctime) of a claim is its age: a rename sets it
 *	(on every Linux file system and on NFS, where the server's clock
 *	sets it), and so does claim_renew().
 * DIAGNOSTICS
 *	See claim.h.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "claim.h"
#include "maildir.h"
#include "queuefile.h"

#define CLAIM_PATH_MAX	(MAILDIR_NAME_MAX * 2 + 16)

static int claim_is_letter(const char *name);
static int claim_back(int dfd, const char *entry, const char *name,
    struct claim_sweep *sw);

int
claim_host_name(const char *hostname, char *dst, size_t len)
{
	const unsigned char *s;
	size_t used = 0;

	for (s = (const unsigned char *)hostname; *s != '\0'; s++) {
		if (*s == '/' || *s == ':' || *s < '!' || *s > '~') {
			if (used + 4 >= len)
				goto toolong;
			(void)snprintf(dst + used, 5, "\\%03o", *s);
			used += 4;
		} else {
			if (used + 1 >= len)
				goto toolong;
			dst[used++] = (char)*s;
		}
	}
	if (used >= len)
		goto toolong;
	dst[used] = '\0';
	return 0;

toolong:
	if (len > 0)
		dst[0] = '\0';
	errno = ENAMETOOLONG;
	return -1;
}

int
claim_path(char *dst, size_t len, const char *name, const char *host)
{
	int n = snprintf(dst, len, "%s/%s:%s", QUEUEFILE_CLAIM_DIR, name, host);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
claim_split(const char *entry, char *name, size_t len, const char **host)
{
	const char *colon = strchr(entry, ':');
	size_t n;

	if (colon == NULL || colon == entry || entry[0] == '.'
	    || colon[1] == '\0' || strchr(colon + 1, ':') != NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((n = (size_t)(colon - entry)) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(name, entry, n);
	name[n] = '\0';
	*host = colon + 1;
	return 0;
}

/* claim_is_letter - a queued letter's name: SECONDS.ID.HOST */
static int
claim_is_letter(const char *name)
{
	char id[64];

	return name[0] != '.' && strchr(name, ':') == NULL
	    && strlen(name) < MAILDIR_NAME_MAX
	    && maildir_name_id(name, id, sizeof(id)) == 0;
}

int
claim_take(int dfd, const char *name, const char *host)
{
	char claim[CLAIM_PATH_MAX];

	if (claim_path(claim, sizeof(claim), name, host) < 0)
		return -1;
	if (mkdirat(dfd, QUEUEFILE_CLAIM_DIR, 0700) < 0 && errno != EEXIST)
		return -1;
	return renameat(dfd, name, dfd, claim);
}

int
claim_give_back(int dfd, const char *name, const char *host)
{
	char claim[CLAIM_PATH_MAX];

	if (claim_path(claim, sizeof(claim), name, host) < 0)
		return -1;
	return renameat(dfd, claim, dfd, name);
}

int
claim_replace(int dfd, const char *name, const char *host, int fd,
    int tmpdfd, const char *tmp)
{
	char claim[CLAIM_PATH_MAX];
	struct stat held, now;

	if (claim_path(claim, sizeof(claim), name, host) < 0
	    || fstat(fd, &held) < 0)
		return -1;
	if (fstatat(dfd, claim, &now, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			errno = ESTALE;
		return -1;
	}
	if (now.st_dev != held.st_dev || now.st_ino != held.st_ino) {
		errno = ESTALE;
		return -1;
	}
	return renameat(tmpdfd, tmp, dfd, claim);
}

int
claim_renew(int fd)
{
	/* Setting the access time changes the change time as well. */
	const struct timespec ts[2] = {
		{ 0, UTIME_NOW }, { 0, UTIME_OMIT },
	};

	return futimens(fd, ts);
}

/* claim_back - one claim (entry of .claim/) back to NAME, or dropped */
static int
claim_back(int dfd, const char *entry, const char *name,
    struct claim_sweep *sw)
{
	char path[CLAIM_PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", QUEUEFILE_CLAIM_DIR, entry);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* NAME is back already: the claim is the older text. */
		if (unlinkat(dfd, path, 0) == 0)
			sw->changed = 1;
		return 0;
	}
	/* ENOENT: another host took it back first. */
	if (renameat(dfd, path, dfd, name) < 0)
		return 0;
	sw->changed = 1;
	return 1;
}

int
claim_sweep(int dfd, struct claim_sweep *sw)
{
	char name[MAILDIR_NAME_MAX];
	const char *holder;
	struct dirent *de;
	struct stat st;
	time_t stale;
	DIR *d;
	int cfd, count = 0;

	sw->next = 0;
	sw->changed = 0;
	if ((cfd = openat(dfd, QUEUEFILE_CLAIM_DIR, O_RDONLY | O_DIRECTORY
	    | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(cfd)) == NULL) {
		close(cfd);
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (claim_split(de->d_name, name, sizeof(name), &holder) < 0
		    || !claim_is_letter(name))
			continue;
		if (strcmp(holder, sw->host) == 0) {
			if (sw->held != NULL && sw->held(sw->ctx, name))
				continue;	/* a session of ours has it */
		} else {
			if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0)
				continue;	/* gone meanwhile */
			/* Whole seconds: never early, at most 1 s late. */
			stale = st.st_ctime + sw->timeout + 1;
			if (stale > sw->now) {
				if (sw->next == 0 || stale < sw->next)
					sw->next = stale;
				continue;
			}
		}
		if (claim_back(dfd, de->d_name, name, sw) > 0) {
			count++;
			if (sw->taken != NULL)
				sw->taken(sw->ctx, name, holder);
		}
	}
	closedir(d);
	return count;
}
