/*
 * NAME
 *	queuefile - the envelope of a remote queue file (reader)
 * SYNOPSIS
 *	#include "queuefile.h"
 * DESCRIPTION
 *	A queue file (root/.OTHER_SERVERS/<domain>/NAME) starts with its
 *	envelope, then the server's own Received: line, then the message:
 *	  X-Envelope-From: <sender>[ SP params]	exactly one, the first line
 *	  X-Envelope-To: <rcpt>[ SP params]	one or more
 *	  Received: ...				ends the envelope
 *	Lines end in LF. Paths are checked with addr_parse_path(): the
 *	sender may be "<>", a recipient may not. Parameters are words
 *	KEYWORD or KEYWORD=VALUE one space apart: MAIL's (SIZE, BODY,
 *	SMTPUTF8, RET, ENVID) after the sender, RCPT's (NOTIFY, ORCPT,
 *	RFC 3461) after each recipient; values are kept as the client sent
 *	them (ENVID and ORCPT as xtext). When the sender's parameters say
 *	SMTPUTF8 the envelope lines may hold UTF-8 (RFC 6531 addresses),
 *	which must be good UTF-8; otherwise an 8-bit byte is malformed. Anything else in the
 *	leading run (a missing or second X-Envelope-From, no recipient, an
 *	unknown line, no Received: after the envelope, a line over
 *	QUEUEFILE_LINE_MAX octets, NUL, CR, any other control or 8-bit byte
 *	in these lines) makes the envelope malformed. Lines after the
 *	Received: line belong to the message and are never read as envelope,
 *	whatever they say.
 *
 *	queuefile_parse() parses the envelope at the start of data[0..len-1]
 *	(data need not be NUL-terminated; nothing past len is read).
 *	queuefile_read() does the same from the start of the file open on fd
 *	(with pread(2), so the file offset is not used or moved); it reads
 *	only as far as the end of the Received: line, in QUEUEFILE_CHUNK
 *	steps.
 *	On success *qfp is the envelope, released with queuefile_free()
 *	(NULL is allowed).
 *
 *	queuefile_sender() is the sender as written between the brackets
 *	("" for the null sender), queuefile_params() the text after
 *	"> " ("" when none), queuefile_nrcpts() and queuefile_rcpt() the
 *	recipients as written between the brackets, in file order;
 *	queuefile_rcpt_params() the parameters of recipient i ("" when
 *	none). queuefile_smtputf8() tells whether the sender's parameters
 *	say SMTPUTF8. queuefile_param() finds one parameter in a params
 *	string: its value and length, or NULL. queuefile_notify() tells
 *	whether a recipient's params ask NOTIFY for what ("SUCCESS",
 *	"FAILURE", "DELAY"; RFC 3461 4.1): 1 when its list names it, 0
 *	when not, -1 when there is no NOTIFY (each caller has its default:
 *	a bounce is owed for a failure, a success report is not).
 *	queuefile_envelope_len() is the offset of the Received: line, where
 *	the message (its header section first) begins.
 *
 *	queuefile_header_len() tells how many bytes at the start of data
 *	belong to a header section: every line up to, not including, the
 *	first empty line (*complete = 1), or all of data when it holds no
 *	empty line (*complete = 0). An empty line is an LF alone, or a CR
 *	LF: a BINARYMIME text is kept as received, with CR LF line ends.
 *	queuefile_read_headers() appends to out the header section that
 *	starts at offset in the file open on fd (for a queue file: offset
 *	queuefile_envelope_len()), reading no further than the empty line
 *	(either kind) that ends it or the end of the file.
 *
 *	The delivery state of a letter NAME in <domain>/ is the file
 *	<domain>/.state/NAME (for a letter in error/: error/.state/NAME),
 *	written by the delivery agent, read by it and by maildir-inspect;
 *	no file means never tried. It is text, one "key value" a line:
 *	  attempts N		tries so far
 *	  next_attempt T	epoch seconds of the next try (absent: now)
 *	  last_error TEXT	the last reply or failure (printable ASCII)
 *	Unknown keys are ignored (a later version may add some).
 *	queuefile_state_parse() reads such text, queuefile_state_format()
 *	writes it (a control byte in last_error becomes '?'), and
 *	queuefile_state_read() reads the state file path relative to dirfd.
 * DIAGNOSTICS
 *	queuefile_state_read() returns 0 (read), 1 (no state file: never
 *	tried; *st is zero), or -1 with errno; queuefile_state_parse()
 *	returns 0 or -1 (EINVAL: not a state file); queuefile_state_format()
 *	returns the length written, or -1 (ENOSPC) when dst is too small.
 *	queuefile_parse() and queuefile_read() return 0 (envelope parsed),
 *	1 (malformed: *err says why), or -1 with errno (ENOMEM, or a read
 *	error). err->line is the 1-based line of the problem (0 when none
 *	applies), err->truncated is set when the data ends inside the
 *	envelope or its Received: line, and err->reason is a NUL-terminated
 *	English sentence that begins with "line N: " when line is known.
 *	queuefile_read_headers() returns 0, or -1 with errno (EMSGSIZE when
 *	the header section does not fit in out; out then holds part of it).
 * LIMITS
 *	QUEUEFILE_LINE_MAX octets a line (the LF not counted), the Received:
 *	line included; QUEUEFILE_RCPT_MAX recipients.
 */
#ifndef POLLSMTPD_QUEUEFILE_H
#define POLLSMTPD_QUEUEFILE_H

#include <stddef.h>
#include <sys/types.h>

#define QUEUEFILE_LINE_MAX	1000
#define QUEUEFILE_RCPT_MAX	100000
#define QUEUEFILE_REASON_MAX	160
#define QUEUEFILE_CHUNK		8192
#define QUEUEFILE_ERROR_MAX	600
#define QUEUEFILE_STATE_DIR	".state"
#define QUEUEFILE_CLAIM_DIR	".claim"

struct buf;
struct queuefile;

struct queuefile_error {
	unsigned long line;		/* 1-based; 0 when none applies */
	int truncated;			/* the data ended too early */
	char reason[QUEUEFILE_REASON_MAX];
};

int queuefile_parse(const char *data, size_t len, struct queuefile **qfp,
    struct queuefile_error *err);
int queuefile_read(int fd, struct queuefile **qfp,
    struct queuefile_error *err);
void queuefile_free(struct queuefile *qf);

const char *queuefile_sender(const struct queuefile *qf);
const char *queuefile_params(const struct queuefile *qf);
size_t queuefile_nrcpts(const struct queuefile *qf);
const char *queuefile_rcpt(const struct queuefile *qf, size_t i);
const char *queuefile_rcpt_params(const struct queuefile *qf, size_t i);
int queuefile_smtputf8(const struct queuefile *qf);
const char *queuefile_param(const char *params, const char *name,
    size_t *len);
int queuefile_notify(const char *params, const char *what);
size_t queuefile_envelope_len(const struct queuefile *qf);

struct queuefile_state {
	long attempts;
	long long next_attempt;		/* epoch seconds; 0: due now */
	char last_error[QUEUEFILE_ERROR_MAX];	/* "" when none */
};

int queuefile_state_parse(const char *data, size_t len,
    struct queuefile_state *st);
int queuefile_state_format(const struct queuefile_state *st, char *dst,
    size_t len);
int queuefile_state_read(int dirfd, const char *path,
    struct queuefile_state *st);

size_t queuefile_header_len(const char *data, size_t len, int *complete);
int queuefile_read_headers(int fd, off_t offset, struct buf *out);

#endif
