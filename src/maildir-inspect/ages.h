/*
 * NAME
 *	ages - the "ages" command: letters by domain and age bucket (qshape)
 * SYNOPSIS
 *	#include "ages.h"
 * DESCRIPTION
 *	ages_run() counts the queued letters (in->error: the letters in
 *	error/) of every domain in the age buckets 0-5m, 5-10m, 10-20m,
 *	20-40m, 40-80m, 80-160m and 160m+ (a bucket holds from <= age < to),
 *	and prints the table, TOTAL first, then the domains by falling
 *	count, as text or as one JSON document. Like summary, it reads no
 *	file.
 * DIAGNOSTICS
 *	Returns an exit status: 0, EX_IOERR or EX_OSERR.
 */
#ifndef MAILDIR_INSPECT_AGES_H
#define MAILDIR_INSPECT_AGES_H

#include "inspect.h"

int ages_run(struct inspect *in);

#endif
