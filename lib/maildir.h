/*
 * NAME
 *	maildir - the Maildir tree: unique names, atomic durable delivery
 * SYNOPSIS
 *	#include "maildir.h"
 * DESCRIPTION
 *	The tree under root (application.maildir.path):
 *	  root/<user>/{tmp,new,cur}/		a local user's Maildir
 *	  root/.OTHER_SERVERS/.tmp/		queue files being written
 *	  root/.OTHER_SERVERS/<domain>/		queued for a remote domain
 *	  root/.OTHER_SERVERS/<domain>/error/	failed for good (not ours)
 *
 *	maildir_open() opens (creating if needed, mode 0700) root and
 *	root/.OTHER_SERVERS/.tmp, and keeps their descriptors; hostname goes
 *	into file names (with '/' written as \057 and ':' as \072, as the
 *	Maildir specification asks). With do_fsync false nothing is synced
 *	(for benchmarks on tmpfs; not for production).
 *	maildir_close() releases it (NULL allowed).
 *	maildir_add_user() creates root/<user>/{tmp,new,cur} when missing
 *	and keeps descriptors of its tmp and new. user must be a name
 *	already validated (conf does it); it is refused otherwise.
 *	maildir_clean_tmp() removes files left in every known tmp/ directory
 *	(by a crash) and returns how many it removed.
 *
 *	maildir_name() makes the unique file name for a message ID:
 *	"SECONDS.ID.HOST" (SECONDS the current time). ID must be letters
 *	and digits only. The ID is the second dot-separated field, so
 *	maildir_name_id() finds it again.
 *
 *	maildir_deliver() stores one message as ncopies files, all or none:
 *	each copy is written (its iovecs, in order) to a new file in the
 *	matching tmp/ with O_CREAT|O_EXCL, fsynced and closed; then each is
 *	renamed into place (root/<user>/new/NAME, or
 *	root/.OTHER_SERVERS/<domain>/NAME, creating <domain>/ and
 *	<domain>/error/ when missing), and every target directory is
 *	fsynced. If any step fails, every file this call made is removed,
 *	from tmp/ and from the target directories, before it returns.
 *	A copy names either mailbox (a user added with maildir_add_user) or
 *	domain (a domain that passed addr_domain_is_safe()), never both.
 * DIAGNOSTICS
 *	maildir_open() returns NULL and sets errno. maildir_deliver()
 *	returns 0, or -1 with errno (ENOSPC and EDQUOT mean the disk is full;
 *	EINVAL a bad copy). maildir_name() returns 0, or -1 when the name does
 *	not fit or the ID is not alphanumeric.
 * LIMITS
 *	MAILDIR_NAME_MAX bytes for a name, including the NUL.
 */
#ifndef POLLSMTPD_MAILDIR_H
#define POLLSMTPD_MAILDIR_H

#include <stddef.h>
#include <sys/uio.h>

#define MAILDIR_NAME_MAX	256
#define MAILDIR_QUEUE_DIR	".OTHER_SERVERS"

struct maildir;

struct maildir_copy {
	const char *mailbox;		/* local user, or NULL */
	const char *domain;		/* remote domain, or NULL */
	const struct iovec *iov;	/* file content */
	int iovcnt;
};

struct maildir *maildir_open(const char *root, const char *hostname,
    int do_fsync);
void maildir_close(struct maildir *md);
int maildir_add_user(struct maildir *md, const char *user);
int maildir_clean_tmp(struct maildir *md);
int maildir_name(const struct maildir *md, const char *id, char *dst,
    size_t dstlen);
int maildir_name_id(const char *name, char *id, size_t idlen);
int maildir_deliver(struct maildir *md, const char *id,
    const struct maildir_copy *copies, size_t ncopies);

#endif
