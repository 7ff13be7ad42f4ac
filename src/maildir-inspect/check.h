/*
 * NAME
 *	check - the "check" command: the integrity of the tree
 * SYNOPSIS
 *	#include "check.h"
 * DESCRIPTION
 *	check_run() walks the whole tree strictly (see scan.h) and reads
 *	the envelope of every letter, queued and in error/, and lists each
 *	problem - kind, path relative to the root, detail - sorted by path:
 *	  stale-tmp           a file in a tmp/ older than 36 hours
 *	  bad-name            a file name that is not SECONDS.ID.HOST
 *	  bad-domain          a queue directory not named by a domain
 *	  malformed-envelope  the envelope of a letter is malformed
 *	  wrong-domain        a recipient outside the letter's domain
 *	  missing-error-dir   a domain directory without error/
 *	  missing-maildir     a user without a complete Maildir
 *	  unknown-entry       anything else that does not belong
 *	  unreadable          a file or directory that cannot be read
 * DIAGNOSTICS
 *	Returns an exit status: 0 (no problem), 1 (problems), EX_OSERR.
 */
#ifndef MAILDIR_INSPECT_CHECK_H
#define MAILDIR_INSPECT_CHECK_H

#include "inspect.h"

int check_run(struct inspect *in);

#endif
