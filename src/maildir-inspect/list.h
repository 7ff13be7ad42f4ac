/*
 * NAME
 *	list - the "list" and "show" commands: letters with their envelopes
 * SYNOPSIS
 *	#include "list.h"
 * DESCRIPTION
 *	list_run() prints a line (or a JSON object) per queued letter -
 *	in->error: per letter in error/ - of every domain or of in->domain,
 *	sorted by domain, then oldest first: ID, domain, size, arrival time
 *	(UTC), age, recipient count, sender and recipients (the text ends
 *	with a total line, "-- 12 KiB in 3 letters.", or "Mail queue is
 *	empty", as postqueue -p does). The filters in->older_than (age in
 *	seconds, strictly greater), in->from (a substring of the sender,
 *	ignoring case; "<>" means the null sender) and in->to (a substring
 *	of any recipient) must all match. Only the head of each file is
 *	read (queuefile_read()); the age filter is applied before a file is
 *	opened.
 *
 *	show_run() prints every letter whose ID is in->id (a message for
 *	several domains has a file in each), queued or in error/: its
 *	envelope and header section, and with in->body the rest of the
 *	message; then every copy delivered to a local user (new/ or cur/,
 *	marked "delivered", its sender and recipient taken from the
 *	Return-Path: and Delivered-To: lines in front of it).
 * DIAGNOSTICS
 *	Return an exit status: 0; 1 (show: no letter has that ID);
 *	EX_IOERR (a file or directory could not be read: the others are
 *	still listed); EX_OSERR (out of memory).
 */
#ifndef MAILDIR_INSPECT_LIST_H
#define MAILDIR_INSPECT_LIST_H

#include "inspect.h"

int list_run(struct inspect *in);
int show_run(struct inspect *in);

#endif
