/*
 * NAME
 *	inspect - what every maildir-inspect command shares
 * SYNOPSIS
 *	#include "inspect.h"
 * DESCRIPTION
 *	struct inspect is the parsed command line and the opened root, made
 *	once by main() and read by the commands. Each command returns an
 *	exit status and may raise in->status (see inspect_io_error()).
 *
 *	inspect_io_error() reports that PATH (relative to the root) could
 *	not be read and makes the final exit status EX_IOERR.
 *	inspect_warnx() prints "maildir-inspect: message" on stderr.
 *
 *	inspect_parse_duration() reads "90", "90s", "10m", "2h", "3d", "1w"
 *	and sums like "1h30m" into seconds.
 *	inspect_format_age() writes an age compactly: "45s", "12m",
 *	"2h05m", "3d04h".
 *	inspect_print_safe() writes bytes for a terminal: every C0 and C1
 *	control (raw bytes 0x00-0x1f, 0x7f, 0x80-0x9f, and the UTF-8 of
 *	U+0080-U+009F) and every byte that is not part of valid UTF-8 as
 *	\xHH (with INSPECT_ESC_8BIT every byte over 0x7e); with
 *	INSPECT_KEEP_LINES TAB and LF stay as they are.
 *	inspect_utf8_len() is the length of the valid UTF-8 sequence of two
 *	or more bytes at s (at most len), or 0.
 *	inspect_contains_nocase() tells whether needle occurs in haystack,
 *	ignoring ASCII case.
 * DIAGNOSTICS
 *	inspect_parse_duration() returns 0, or -1 for a malformed or too
 *	large duration.
 */
#ifndef MAILDIR_INSPECT_INSPECT_H
#define MAILDIR_INSPECT_INSPECT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct conf;

/* Files left in a tmp/ longer than this are stale (the Maildir rule). */
#define INSPECT_STALE_AFTER	(36L * 3600)
#define INSPECT_ID_MAX		64
/* delivery.claim_timeout when there is no configuration (-d ROOT). */
#define INSPECT_CLAIM_TIMEOUT	3600L

struct inspect {
	const char *root;		/* as given or configured */
	int rootfd;
	const struct conf *conf;	/* NULL with -d ROOT */
	int json;
	time_t now;			/* one clock reading for the run */
	int status;			/* EX_IOERR: something was unreadable */

	const char *domain;		/* list DOMAIN (lower-cased) */
	const char *from;		/* list --from */
	const char *to;			/* list --to */
	long long older_than;		/* list --older-than; -1: none */
	int error;			/* list/ages --error */
	int buckets;			/* ages -b N */
	int by_sender;			/* ages -s */
	const char *id;			/* show ID */
	int body;			/* show --body */
};

#define INSPECT_ESC_8BIT	0x01
#define INSPECT_KEEP_LINES	0x02

void inspect_io_error(struct inspect *in, const char *path, int err);
void inspect_warnx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
int inspect_parse_duration(const char *text, long long *seconds);
void inspect_format_age(long long age, char *dst, size_t len);
void inspect_print_safe(FILE *fp, const char *s, size_t len, int flags);
size_t inspect_utf8_len(const unsigned char *s, size_t len);
int inspect_contains_nocase(const char *haystack, const char *needle);
long long inspect_age(const struct inspect *in, time_t mtime);

#endif
