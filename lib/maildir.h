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
 *	Root itself may be a symbolic link (the administrator's choice);
 *	below it every directory is opened with O_NOFOLLOW and made with
 *	mkdirat(): a symbolic link (or a file) where a directory of the tree
 *	belongs fails with ELOOP (ENOTDIR), and nothing outside the tree is
 *	made or opened.
 *	maildir_close() releases it (NULL allowed).
 *	maildir_hostname_ok() tells whether every name made with hostname
 *	fits NAME_MAX (its escaped form at most MAILDIR_HOST_MAX bytes);
 *	maildir_open() refuses a longer one (ENAMETOOLONG), so a host name
 *	that could not name a file is refused at start, not per message.
 *	maildir_lock() takes an exclusive flock() on root/.lock.HOST
 *	(maildir_lock_name(), made when missing) for as long as md is open:
 *	a second daemon for the same host and tree gets EWOULDBLOCK. Call it
 *	before maildir_clean_tmp(), which would otherwise remove the files
 *	of a running daemon's deliveries.
 *	maildir_give() hands the directories the daemon writes into (root,
 *	the queue and its .tmp/, every user's Maildir, each domain
 *	directory and its error/) and the lock file to uid/gid, with
 *	fchown() on descriptors opened from root with O_NOFOLLOW; a symbolic
 *	link met on the way fails it with ELOOP. On failure bad (when not
 *	NULL) names the entry, relative to root.
 *	maildir_add_user() creates root/<user>/{tmp,new,cur} when missing
 *	and keeps descriptors of its tmp and new. user must be a name
 *	already validated (conf does it); it is refused otherwise. Should
 *	tmp/ or new/ (or the whole root/<user>) be removed later, a delivery
 *	that finds it gone opens it again (making it, and cur/, when
 *	missing) and tries once more, as for a queue domain's directory.
 *	maildir_spool_open() returns a new anonymous file, open for reading
 *	and writing, on the tree's file system (below root/.OTHER_SERVERS/
 *	.tmp, with no name that a crash could leave behind): where a
 *	message's text waits for its copies (see spool.h).
 *	maildir_clean_tmp() removes the files this host left in every known
 *	tmp/ directory (by a crash): those whose names are this host's
 *	("SECONDS.ID.HOST" or "SECONDS.ID.HOST.N"); another host's files and
 *	anything else are left alone. It returns how many it removed.
 *
 *	maildir_name() makes the unique file name for a message ID:
 *	"SECONDS.ID.HOST" (SECONDS the current time). ID must be letters
 *	and digits only, at most MAILDIR_ID_MAX of them. The ID is the second dot-separated field, so
 *	maildir_name_id() finds it again.
 *
 *	maildir_deliver() stores one message as ncopies files, all or none:
 *	each copy is written (its iovecs, in order, then text_len bytes
 *	from the start of text_fd, which may be shared by the copies and
 *	must hold them) to a new file in the
 *	matching tmp/ with O_CREAT|O_EXCL, fsynced and closed; then each is
 *	renamed into place (root/<user>/new/NAME, or
 *	root/.OTHER_SERVERS/<domain>/NAME, creating <domain>/ and
 *	<domain>/error/ when missing), and every target directory is
 *	fsynced. Should root/.OTHER_SERVERS or its .tmp/ be removed while
 *	the daemon runs, they are made again when next needed. If any step
 *	fails, every file this call made is removed,
 *	from tmp/ and from the target directories, before it returns.
 *	A copy names either mailbox (a user added with maildir_add_user) or
 *	domain (a domain that passed addr_domain_is_safe()), never both.
 *	A copy with an id of its own is another message stored with this
 *	one, all or none with it (a delivery report written in the same
 *	commit as the delivery it reports): its file is named by its own
 *	ID, so it may go to a directory that a copy of the message goes to
 *	as well. Copies of one name go to distinct directories.
 *
 *	Group commit: a batch stores many messages with one pass of syncs.
 *	maildir_batch_new() makes an empty batch for md (which must outlive
 *	it); maildir_batch_free() removes the files of messages still staged
 *	and releases it (NULL allowed).
 *	maildir_batch_add() stages one message as maildir_deliver() would,
 *	but stops after writing its copies to tmp/: nothing is synced or
 *	renamed yet, and the iovecs are no longer needed when it returns. It
 *	returns the message's index in the batch (0, 1, ...).
 *	maildir_batch_commit() finishes every staged message: the data of
 *	all their files is synced in one pass (writeback started for all,
 *	then fsync of each), each copy renamed into place, and each
 *	target directory fsynced once, however many messages it received.
 *	Each message stays all or nothing on its own: errs (room for
 *	maildir_batch_count() entries) gets, for message i, 0 when
 *	every copy is durable in place, or the errno of its
 *	failure when none of its files is left. The batch is empty after it.
 *	maildir_batch_count() is the number of messages staged,
 *	maildir_batch_files() the number of their files.
 * DIAGNOSTICS
 *	maildir_open() returns NULL and sets errno. maildir_lock() and
 *	maildir_give() return 0, or -1 with errno. maildir_deliver()
 *	returns 0, or -1 with errno (ENOSPC and EDQUOT mean the disk is full;
 *	EINVAL a bad copy). maildir_name() returns 0, or -1 when the name does
 *	not fit or the ID is not alphanumeric.
 *	maildir_batch_new() returns NULL (ENOMEM, or EINVAL for a NULL md).
 *	maildir_batch_add() returns -1 with errno as maildir_deliver() does,
 *	and then nothing of that message exists (the batch's other messages
 *	are untouched). maildir_batch_commit() returns how many messages
 *	failed.
 * LIMITS
 *	MAILDIR_NAME_MAX bytes for a name, including the NUL.
 */
#ifndef POLLSMTPD_MAILDIR_H
#define POLLSMTPD_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define MAILDIR_NAME_MAX	256
#define MAILDIR_QUEUE_DIR	".OTHER_SERVERS"
#define MAILDIR_LOCK_PREFIX	".lock."
#define MAILDIR_ID_MAX		32	/* letters and digits */
/*
 * The longest host part (escaped): "SECONDS." (up to 20 digits), the
 * ID, ".", HOST, a tmp/ copy suffix (".NNNNN") and the ":2,FLAGS" a
 * mail reader adds in cur/ (16 bytes kept for it) fit in NAME_MAX (255).
 */
#define MAILDIR_HOST_MAX	(255 - 21 - MAILDIR_ID_MAX - 1 - 6 - 16)

struct maildir;
struct maildir_batch;

struct maildir_copy {
	const char *mailbox;		/* local user, or NULL */
	const char *domain;		/* remote domain, or NULL */
	const struct iovec *iov;	/* file content: first these bytes, */
	int iovcnt;
	int text_fd;			/* then bytes [0, text_len) of this file */
	size_t text_len;		/* (0: none) */
	const char *id;			/* its own message ID, or NULL: the message's */
};

struct maildir *maildir_open(const char *root, const char *hostname,
    int do_fsync);
void maildir_close(struct maildir *md);
int maildir_add_user(struct maildir *md, const char *user);
int maildir_clean_tmp(struct maildir *md);
int maildir_spool_open(struct maildir *md);
int maildir_hostname_ok(const char *hostname);
int maildir_lock(struct maildir *md);
const char *maildir_lock_name(const struct maildir *md);
int maildir_give(struct maildir *md, uid_t uid, gid_t gid, char *bad,
    size_t badlen);
int maildir_name(const struct maildir *md, const char *id, char *dst,
    size_t dstlen);
int maildir_name_id(const char *name, char *id, size_t idlen);
int maildir_deliver(struct maildir *md, const char *id,
    const struct maildir_copy *copies, size_t ncopies);

struct maildir_batch *maildir_batch_new(struct maildir *md);
void maildir_batch_free(struct maildir_batch *b);
int maildir_batch_add(struct maildir_batch *b, const char *id,
    const struct maildir_copy *copies, size_t ncopies);
size_t maildir_batch_commit(struct maildir_batch *b, int *errs);
size_t maildir_batch_count(const struct maildir_batch *b);
size_t maildir_batch_files(const struct maildir_batch *b);

#endif
