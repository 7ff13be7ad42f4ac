/*
 * NAME
 *	summary - the "summary" command: the queue and the mailboxes at a glance
 * SYNOPSIS
 *	#include "summary.h"
 * DESCRIPTION
 *	summary_run() prints, per remote domain with at least one letter,
 *	the queued letters, their bytes, the age of the oldest and the
 *	letters in error/; per local user the counts of new/ and cur/; and
 *	totals, as text or (in->json) as one JSON document. It reads
 *	directories and file status only, never a file.
 * DIAGNOSTICS
 *	Returns an exit status: 0, EX_IOERR (something was unreadable),
 *	EX_OSERR (out of memory).
 */
#ifndef MAILDIR_INSPECT_SUMMARY_H
#define MAILDIR_INSPECT_SUMMARY_H

#include "inspect.h"

int summary_run(struct inspect *in);

#endif
