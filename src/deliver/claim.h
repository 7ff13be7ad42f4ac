/*
 * NAME
 *	claim - which delivery agent sends a letter: claims on the tree
 * SYNOPSIS
 *	#include "claim.h"
 * DESCRIPTION
 *	A letter <domain>/NAME is claimed by renaming it to
 *	<domain>/.claim/NAME:HOST, HOST the claiming host's name as Maildir
 *	names write it. A rename is atomic (also on NFS): of several hosts
 *	sharing the tree, exactly one wins. No lock files. Every dfd below
 *	is the domain directory; nothing here fsyncs (the caller does).
 *
 *	claim_host_name() writes hostname as Maildir names write it: '/',
 *	':' and every byte outside '!'..'~' as \NNN (octal), so that
 *	NAME:HOST splits at its only colon.
 *	claim_path() writes ".claim/NAME:HOST".
 *	claim_split() splits an entry of .claim/ into NAME (copied to name)
 *	and HOST (*host points into entry).
 *
 *	claim_take() claims dfd/NAME for host (making .claim/ when missing).
 *	claim_give_back() renames the claim back to NAME, untouched.
 *	claim_replace() puts the file tmpdfd/tmp in place of host's claim
 *	of NAME (a letter shrunk to the recipients still due: its new text
 *	is claimed too, until claim_give_back() queues it), but only while
 *	the claim is still the file fd is open on: a claim taken back by
 *	another host meanwhile is never brought back to life.
 *	claim_renew() marks the claimed file open on fd as alive (its
 *	change time becomes now): a holder renews what it holds longer than
 *	claim_timeout / 3, so that only a dead host's claims go stale.
 *
 *	claim_sweep() takes claims back (to NAME): those of sw->host that
 *	sw->held() says no session of this agent holds (a previous agent
 *	died with them), and those of every other host whose change time is
 *	more than sw->timeout seconds before sw->now (in whole seconds: a
 *	claim is never taken back early, at most a second late). Where NAME exists
 *	again, the claim is the older text and is removed. sw->taken() (may
 *	be NULL) hears of each letter taken back; sw->next gets the earliest
 *	time at which a claim seen now goes stale (0: none), sw->changed
 *	whether the directory changed.
 * DIAGNOSTICS
 *	claim_host_name(), claim_path() and claim_split() return 0, or -1
 *	when the result would not fit (ENAMETOOLONG) or the entry is no
 *	claim (EINVAL). claim_take() returns 0, or -1 with errno: ENOENT
 *	when the letter is gone (another host claimed or sent it).
 *	claim_replace() returns 0, or -1 with errno: ESTALE when the claim
 *	is no longer ours (tmp is left to the caller). claim_give_back()
 *	and claim_renew() return 0 or -1 with errno. claim_sweep() returns
 *	how many claims it took back, or -1 when .claim/ cannot be read
 *	(a missing .claim/ is no claim: 0).
 */
#ifndef POLLSMTPD_CLAIM_H
#define POLLSMTPD_CLAIM_H

#include <stddef.h>
#include <time.h>

struct claim_sweep {
	const char *host;		/* this host, as claim_host_name() */
	long timeout;			/* delivery.claim_timeout */
	time_t now;
	int (*held)(void *ctx, const char *name);
	void (*taken)(void *ctx, const char *name, const char *holder);
	void *ctx;
	time_t next;			/* out: a seen claim goes stale; 0 */
	int changed;			/* out */
};

int claim_host_name(const char *hostname, char *dst, size_t len);
int claim_path(char *dst, size_t len, const char *name, const char *host);
int claim_split(const char *entry, char *name, size_t len,
    const char **host);
int claim_take(int dfd, const char *name, const char *host);
int claim_give_back(int dfd, const char *name, const char *host);
int claim_replace(int dfd, const char *name, const char *host, int fd,
    int tmpdfd, const char *tmp);
int claim_renew(int fd);
int claim_sweep(int dfd, struct claim_sweep *sw);

#endif
