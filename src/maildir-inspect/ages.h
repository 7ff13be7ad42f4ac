/*
 * NAME
 *	ages - the "ages" command: letters by domain and age bucket (qshape)
 * SYNOPSIS
 *	#include "ages.h"
 * DESCRIPTION
 *	ages_run() counts the queued letters (in->error: the letters in
 *	error/) of every domain in in->buckets age buckets that double in
 *	width, as qshape(1) does: 0-5m, 5-10m, 10-20m, ... and the last
 *	one open-ended (10 buckets: up to 1280m, then 1280m+; a bucket
 *	holds from <= age < to), and prints the table, TOTAL first, then
 *	the domains by falling count, as text (qshape's header: T 5 10 20
 *	... 1280 1280+) or as one JSON document.
 *	By default a domain is the recipient domain (the queue directory)
 *	and no file is read, like summary. With in->by_sender it is the
 *	sender's domain ("MAILER-DAEMON" for the null sender, as qshape
 *	-s says, "(malformed)" for a letter without a readable envelope):
 *	every envelope is read, and the copies of one message (one file per
 *	remote domain, one ID) count once.
 * DIAGNOSTICS
 *	Returns an exit status: 0, EX_IOERR or EX_OSERR.
 */
#ifndef MAILDIR_INSPECT_AGES_H
#define MAILDIR_INSPECT_AGES_H

#include "inspect.h"

#define AGES_BUCKETS_DEFAULT	10	/* qshape's default */
#define AGES_BUCKETS_MAX	30

int ages_run(struct inspect *in);

#endif
