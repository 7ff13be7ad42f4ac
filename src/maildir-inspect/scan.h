/*
 * NAME
 *	scan - walk the Maildir tree, read-only
 * SYNOPSIS
 *	#include "scan.h"
 * DESCRIPTION
 *	scan_queue() walks root/.OTHER_SERVERS: domains in name order (only
 *	in->domain when it is set), and in each the letters of the domain
 *	directory (SCAN_QUEUED) and of its error/ (SCAN_ERROR), in directory
 *	order. A letter is a regular file whose name is a Maildir name
 *	"SECONDS.ID.HOST" (no leading dot, no ':'); it is given to
 *	ops->letter with its size and mtime, found with readdir(3) and
 *	fstatat(2) alone - no file is opened here.
 *	scan_users() counts new/ and cur/ of every local user: the
 *	configured users in configuration order, or, without a
 *	configuration, every directory of root not starting with '.' that
 *	holds tmp/, new/ and cur/, in name order.
 *	With SCAN_DELIVERED scan_users() also gives every letter of each
 *	user's new/ and cur/ to ops->letter (domain NULL, user and folder
 *	set): a regular file whose name, not starting with '.', is a
 *	Maildir name with an ID ("SECONDS.ID.HOST", with ":2,FLAGS" in
 *	cur/); other files there are skipped.
 *	With SCAN_STRICT both also report what does not belong (names that
 *	are not Maildir names, domain directories that are not domains,
 *	entries of unknown kind, missing error/ or Maildir directories) and
 *	look into every tmp/ for files older than INSPECT_STALE_AFTER, and
 *	report claims (<domain>/.claim/NAME:HOST) not renewed for
 *	delivery.claim_timeout (INSPECT_CLAIM_TIMEOUT without a
 *	configuration): a host that died holding them.
 *	A claimed letter comes with claim_host (the holder, as its name
 *	writes it) and claim_since (the claim's change time: when it was
 *	taken, or last renewed by its holder).
 *
 *	A directory entry that vanishes while it is looked at (ENOENT) is
 *	skipped silently: the daemon works on while we read. Any other
 *	failure is given to ops->problem as SCAN_UNREADABLE with its errno,
 *	and the walk goes on. A missing root/.OTHER_SERVERS is an empty
 *	queue.
 *	Every callback may be NULL. ops->letter returns 0, or -1 to stop
 *	the walk (out of memory).
 *
 *	scan_problem_name() is the stable name of a problem kind, as check
 *	prints it ("stale-tmp", "bad-name", ...).
 * DIAGNOSTICS
 *	scan_queue() and scan_users() return 0, or -1 when a callback
 *	stopped them or memory ran out.
 */
#ifndef MAILDIR_INSPECT_SCAN_H
#define MAILDIR_INSPECT_SCAN_H

#include <sys/types.h>
#include <time.h>

#include "inspect.h"

#define SCAN_QUEUED	0x01	/* letters in <domain>/ */
#define SCAN_ERROR	0x02	/* letters in <domain>/error/ */
#define SCAN_STRICT	0x04	/* report every problem, look into tmp/ */
#define SCAN_DELIVERED	0x08	/* scan_users(): the letters of new/, cur/ */

enum scan_problem {
	SCAN_STALE_TMP,
	SCAN_BAD_NAME,
	SCAN_BAD_DOMAIN,
	SCAN_MALFORMED_ENVELOPE,
	SCAN_WRONG_DOMAIN,
	SCAN_MISSING_ERROR_DIR,
	SCAN_MISSING_MAILDIR,
	SCAN_UNKNOWN_ENTRY,
	SCAN_UNREADABLE,
	SCAN_STALE_CLAIM,
};

struct scan_letter {
	const char *domain;	/* NULL for a delivered letter */
	const char *user;	/* a delivered letter's user, else NULL */
	const char *folder;	/* "new" or "cur", else NULL */
	int in_error;		/* in <domain>/error/ */
	int dirfd;		/* the directory that holds it */
	const char *name;	/* its file name */
	const char *path;	/* relative to the root */
	const char *id;		/* the message ID from the name */
	off_t size;
	time_t mtime;
	const char *claim_host;	/* claimed: the holder (in name), else NULL */
	time_t claim_since;	/* claimed: taken or last renewed (ctime) */
};

struct scan_user {
	const char *name;
	long nnew;		/* -1 when new/ is missing */
	long ncur;		/* -1 when cur/ is missing */
};

struct scan_ops {
	void (*domain)(void *ctx, const char *domain);
	int (*letter)(void *ctx, const struct scan_letter *l);
	void (*user)(void *ctx, const struct scan_user *u);
	void (*problem)(void *ctx, enum scan_problem kind, const char *path,
	    const char *detail, int err);
};

int scan_queue(const struct inspect *in, int flags,
    const struct scan_ops *ops, void *ctx);
int scan_users(const struct inspect *in, int flags,
    const struct scan_ops *ops, void *ctx);
const char *scan_problem_name(enum scan_problem kind);

#endif
