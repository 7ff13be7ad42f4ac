/*
 * NAME
 *	queuefile - the envelope of a remote queue file (reader)
 * SYNOPSIS
 *	See queuefile.h.
 * DESCRIPTION
 *	One line-oriented parser serves both entry points: queuefile_parse()
 *	hands it the whole buffer at once, queuefile_read() hands it what
 *	it has read so far and reads more only while the parser asks for
 *	more. A line is looked for within QUEUEFILE_LINE_MAX + 1 bytes, so
 *	an over-long line is refused before it is buffered, and the read
 *	buffer of QUEUEFILE_CHUNK bytes always has room for a whole line.
 *
 *	The strings of an envelope (sender, params, recipients) live back
 *	to back, NUL-terminated, in one bounded buffer; recipients are kept
 *	as offsets into it, so the buffer may move while it grows and the
 *	parser allocates per envelope, not per line or per byte.
 * DIAGNOSTICS
 *	See queuefile.h.
 * LIMITS
 *	QUEUEFILE_LINE_MAX octets a line, QUEUEFILE_RCPT_MAX recipients.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "queuefile.h"

#define QF_FROM_PREFIX		"X-Envelope-From: "
#define QF_TO_PREFIX		"X-Envelope-To: "
#define QF_RECEIVED_PREFIX	"Received:"
#define QF_LEN(s)		(sizeof(s) - 1)

/* Room for every string an envelope may hold, each with its NUL. */
#define QF_STRINGS_MAX \
	(((size_t)QUEUEFILE_RCPT_MAX + 2) * (QUEUEFILE_LINE_MAX + 1))

struct queuefile {
	struct buf *strings;	/* sender, params, recipients */
	size_t sender_off;
	size_t params_off;
	size_t *rcpt_off;
	size_t *rcpt_params_off;	/* "" when a recipient has none */
	size_t nrcpts;
	size_t rcpt_cap;
	size_t envelope_len;	/* offset of the Received: line */
};

enum qf_state {
	QF_EXPECT_FROM,		/* line 1 */
	QF_EXPECT_FIRST_TO,	/* after X-Envelope-From */
	QF_EXPECT_TO,		/* after at least one X-Envelope-To */
	QF_DONE,		/* the Received: line was seen whole */
};

/* What the parser wants next. */
enum qf_step {
	QF_STEP_MORE = -2,	/* feed more bytes */
	QF_STEP_ERROR = -1,	/* errno says why */
	QF_STEP_DONE = 0,	/* envelope complete */
	QF_STEP_MALFORMED = 1,	/* err says why */
	QF_STEP_NEXT = 2,	/* (one line) go on with the next line */
};

struct qf_parser {
	struct queuefile *qf;
	struct queuefile_error *err;
	enum qf_state state;
	unsigned long line;	/* lines seen so far */
	size_t offset;		/* of the next line from the start of data */
	int smtputf8;		/* the sender's parameters say SMTPUTF8 */
};

static int qf_malformed(struct qf_parser *p, int truncated,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int qf_has_prefix(const char *line, size_t len, const char *prefix,
    size_t plen);
static int qf_check_bytes(struct qf_parser *p, const char *line, size_t len);
static int qf_check_params(struct qf_parser *p, int utf8, const char *text,
    size_t len, const char *whose);
static int qf_has_word(const char *text, size_t len, const char *word);
static int qf_add_string(struct queuefile *qf, const char *s, size_t len,
    size_t *off);
static int qf_sender(struct qf_parser *p, const char *text, size_t len);
static int qf_recipient(struct qf_parser *p, const char *text, size_t len);
static int qf_line(struct qf_parser *p, const char *line, size_t len);
static int qf_end_of_data(struct qf_parser *p, size_t rest);
static int qf_feed(struct qf_parser *p, const char *data, size_t len,
    int eof, size_t *used);
static int qf_begin(struct qf_parser *p, struct queuefile_error *err);
static int qf_finish(struct qf_parser *p, int step, struct queuefile **qfp);
static int qf_empty_line(const char *p, const char *end);

/* qf_malformed - record why the envelope is malformed */
static int
qf_malformed(struct qf_parser *p, int truncated, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	p->err->line = p->line;
	p->err->truncated = truncated;
	if (p->line > 0)
		n = snprintf(p->err->reason, sizeof(p->err->reason),
		    "line %lu: ", p->line);
	if (n < 0 || (size_t)n >= sizeof(p->err->reason))
		n = 0;
	va_start(ap, fmt);
	/* A reason cut short is still a reason: no truncation check. */
	(void)vsnprintf(p->err->reason + n, sizeof(p->err->reason) - (size_t)n,
	    fmt, ap);
	va_end(ap);
	return QF_STEP_MALFORMED;
}

static int
qf_has_prefix(const char *line, size_t len, const char *prefix, size_t plen)
{
	return len >= plen && memcmp(line, prefix, plen) == 0;
}

/* qf_has_word - whether word (any case) is one of the SP-separated words */
static int
qf_has_word(const char *text, size_t len, const char *word)
{
	size_t i = 0, j, wlen = strlen(word);

	while (i < len) {
		for (j = i; j < len && text[j] != ' '; j++)
			;
		if (j - i == wlen && strncasecmp(text + i, word, wlen) == 0)
			return 1;
		i = j + 1;
	}
	return 0;
}

/*
 * qf_check_bytes - only printable ASCII and SP. The daemon refuses
 * everything else in commands, so anything else was not written by it;
 * but a message sent with SMTPUTF8 has UTF-8 addresses (RFC 6531), so
 * the envelope of one whose X-Envelope-From says SMTPUTF8 may hold
 * good UTF-8 (the first line is allowed it when it names SMTPUTF8, and
 * qf_sender() then makes sure it is a parameter).
 */
static int
qf_check_bytes(struct qf_parser *p, const char *line, size_t len)
{
	size_t i, n;
	unsigned char c;
	int utf8 = p->smtputf8 || (p->state == QF_EXPECT_FROM
	    && qf_has_word(line, len, "SMTPUTF8"));

	for (i = 0; i < len; i++) {
		c = (unsigned char)line[i];
		if (c >= 0x20 && c < 0x7f)
			continue;
		if (utf8 && c >= 0x80 && (n = addr_utf8_char(line + i,
		    len - i)) > 0) {
			i += n - 1;
			continue;
		}
		if (c == '\0')
			return qf_malformed(p, 0, "NUL byte in the envelope");
		if (c == '\r')
			return qf_malformed(p, 0,
			    "CR in the envelope (lines end in LF alone)");
		if (c >= 0x80 && utf8)
			return qf_malformed(p, 0,
			    "byte 0x%02x is not UTF-8", c);
		if (c >= 0x80)
			return qf_malformed(p, 0,
			    "8-bit byte 0x%02x in the envelope", c);
		return qf_malformed(p, 0,
		    "control character 0x%02x in the envelope", c);
	}
	return QF_STEP_NEXT;
}

static int
qf_add_string(struct queuefile *qf, const char *s, size_t len, size_t *off)
{
	*off = buf_len(qf->strings);
	if (buf_append(qf->strings, s, len) < 0
	    || buf_append(qf->strings, "", 1) < 0)
		return -1;
	return 0;
}

/* qf_sender - "<path>" or "<path> params" after "X-Envelope-From: " */
static int
qf_sender(struct qf_parser *p, const char *text, size_t len)
{
	struct addr a;
	enum addr_result r;
	size_t used;

	const char *gt = memchr(text, '>', len);
	int step;

	/* The parameters decide whether the path may be UTF-8. */
	if (gt != NULL && (size_t)(gt - text) + 1 < len)
		p->smtputf8 = qf_has_word(gt + 1, len - (size_t)(gt - text) - 1,
		    "SMTPUTF8");
	r = addr_parse_path(text, len, ADDR_ALLOW_NULL | (p->smtputf8 ?
	    ADDR_ALLOW_UTF8 : 0), &a, &used);
	if (r != ADDR_OK)
		return qf_malformed(p, 0, "bad sender path: %s",
		    addr_strerror(r));
	if (qf_add_string(p->qf, text + 1, used - 2, &p->qf->sender_off) < 0)
		return QF_STEP_ERROR;
	if (used == len) {
		if (qf_add_string(p->qf, "", 0, &p->qf->params_off) < 0)
			return QF_STEP_ERROR;
		return QF_STEP_NEXT;
	}
	if (text[used] != ' ' || used + 1 == len)
		return qf_malformed(p, 0,
		    "the sender path is followed by more than \" params\"");
	if ((step = qf_check_params(p, 0, text + used + 1, len - used - 1,
	    "sender")) != QF_STEP_NEXT)
		return step;
	if (qf_add_string(p->qf, text + used + 1, len - used - 1,
	    &p->qf->params_off) < 0)
		return QF_STEP_ERROR;
	return QF_STEP_NEXT;
}

/*
 * qf_check_params - " KEY=VALUE KEY ..." as the daemon writes them: words
 * of a keyword (letters, digits, '-'), then "=" and a value of no space
 * (whose own syntax, xtext, is the reader's to check), one space apart.
 * A value is ASCII unless utf8: the sender's parameters the daemon
 * accepts (SIZE, BODY, RET, ENVID, SMTPUTF8) are ASCII always; only a
 * recipient's ORCPT=utf-8;unitext (RFC 6533) is UTF-8, under SMTPUTF8,
 * and qf_check_bytes() has made sure the bytes are good UTF-8.
 */
static int
qf_check_params(struct qf_parser *p, int utf8, const char *text, size_t len,
    const char *whose)
{
	size_t i = 0, k;

	while (i < len) {
		for (k = i; k < len && ((text[k] >= 'A' && text[k] <= 'Z')
		    || (text[k] >= 'a' && text[k] <= 'z')
		    || (text[k] >= '0' && text[k] <= '9') || text[k] == '-'); k++)
			;
		if (k == i || (k < len && text[k] != '=' && text[k] != ' '))
			return qf_malformed(p, 0, "bad %s parameter", whose);
		if (k < len && text[k] == '=') {
			for (k++; k < len && text[k] != ' '; k++)
				if ((unsigned char)text[k] >= 0x80 && !utf8)
					return qf_malformed(p, 0, "8-bit byte "
					    "in a %s parameter", whose);
		}
		if (k < len && k + 1 == len)
			return qf_malformed(p, 0, "bad %s parameter", whose);
		i = k + 1;
	}
	return QF_STEP_NEXT;
}

/* qf_recipient - "<path>" or "<path> params" after "X-Envelope-To: " */
static int
qf_recipient(struct qf_parser *p, const char *text, size_t len)
{
	struct queuefile *qf = p->qf;
	struct addr a;
	enum addr_result r;
	size_t used, cap, *off;
	int step;

	if (qf->nrcpts >= QUEUEFILE_RCPT_MAX)
		return qf_malformed(p, 0, "more than %d recipients",
		    QUEUEFILE_RCPT_MAX);
	r = addr_parse_path(text, len, p->smtputf8 ? ADDR_ALLOW_UTF8 : 0, &a,
	    &used);
	if (r != ADDR_OK)
		return qf_malformed(p, 0, "bad recipient path: %s",
		    addr_strerror(r));
	if (used != len && (text[used] != ' ' || used + 1 == len))
		return qf_malformed(p, 0, "text after the recipient path");
	if (used != len && (step = qf_check_params(p, p->smtputf8,
	    text + used + 1, len - used - 1, "recipient")) != QF_STEP_NEXT)
		return step;
	if (qf->nrcpts == qf->rcpt_cap) {
		cap = qf->rcpt_cap ? qf->rcpt_cap * 2 : 8;
		if (cap > QUEUEFILE_RCPT_MAX)
			cap = QUEUEFILE_RCPT_MAX;
		if ((off = realloc(qf->rcpt_off, cap * sizeof(*off))) == NULL)
			return QF_STEP_ERROR;
		qf->rcpt_off = off;
		if ((off = realloc(qf->rcpt_params_off,
		    cap * sizeof(*off))) == NULL)
			return QF_STEP_ERROR;
		qf->rcpt_params_off = off;
		qf->rcpt_cap = cap;
	}
	if (qf_add_string(qf, text + 1, used - 2,
	    &qf->rcpt_off[qf->nrcpts]) < 0
	    || qf_add_string(qf, used == len ? "" : text + used + 1,
	    used == len ? 0 : len - used - 1,
	    &qf->rcpt_params_off[qf->nrcpts]) < 0)
		return QF_STEP_ERROR;
	qf->nrcpts++;
	return QF_STEP_NEXT;
}

/* qf_line - one whole line, without its LF */
static int
qf_line(struct qf_parser *p, const char *line, size_t len)
{
	int step;

	if ((step = qf_check_bytes(p, line, len)) != QF_STEP_NEXT)
		return step;

	if (qf_has_prefix(line, len, QF_FROM_PREFIX, QF_LEN(QF_FROM_PREFIX))) {
		if (p->state != QF_EXPECT_FROM)
			return qf_malformed(p, 0, "a second X-Envelope-From");
		p->state = QF_EXPECT_FIRST_TO;
		return qf_sender(p, line + QF_LEN(QF_FROM_PREFIX),
		    len - QF_LEN(QF_FROM_PREFIX));
	}
	if (qf_has_prefix(line, len, QF_TO_PREFIX, QF_LEN(QF_TO_PREFIX))) {
		if (p->state == QF_EXPECT_FROM)
			return qf_malformed(p, 0,
			    "X-Envelope-To before X-Envelope-From");
		p->state = QF_EXPECT_TO;
		return qf_recipient(p, line + QF_LEN(QF_TO_PREFIX),
		    len - QF_LEN(QF_TO_PREFIX));
	}
	if (qf_has_prefix(line, len, QF_RECEIVED_PREFIX,
	    QF_LEN(QF_RECEIVED_PREFIX))) {
		if (p->state == QF_EXPECT_FROM)
			return qf_malformed(p, 0,
			    "no X-Envelope-From (the file starts with "
			    "Received:)");
		if (p->state == QF_EXPECT_FIRST_TO)
			return qf_malformed(p, 0,
			    "no X-Envelope-To before Received:");
		p->state = QF_DONE;
		return QF_STEP_DONE;
	}
	if (len >= 11 && strncasecmp(line, "X-Envelope-", 11) == 0)
		return qf_malformed(p, 0, "malformed X-Envelope- line");
	if (p->state == QF_EXPECT_FROM)
		return qf_malformed(p, 0,
		    "not an envelope line (no X-Envelope-From)");
	if (p->state == QF_EXPECT_FIRST_TO)
		return qf_malformed(p, 0, "expected X-Envelope-To");
	return qf_malformed(p, 0,
	    "expected X-Envelope-To or Received: after the envelope");
}

/* qf_end_of_data - the data ended with rest bytes of an unfinished line */
static int
qf_end_of_data(struct qf_parser *p, size_t rest)
{
	if (rest > 0) {
		p->line++;
		return qf_malformed(p, 1, "the file ends inside a line");
	}
	if (p->line == 0)
		return qf_malformed(p, 1, "the file is empty");
	p->line++;
	if (p->state == QF_EXPECT_FIRST_TO)
		return qf_malformed(p, 1,
		    "the file ends after X-Envelope-From");
	return qf_malformed(p, 1, "the file ends before the Received: line");
}

/*
 * qf_feed - parse the whole lines in data[0..len-1]. *used is set to the
 * bytes consumed (whole lines). Returns a qf_step: MORE when the caller
 * should come back with the rest of the line and more (never when eof).
 */
static int
qf_feed(struct qf_parser *p, const char *data, size_t len, int eof,
    size_t *used)
{
	const char *lf;
	size_t pos = 0, rest, look, linelen;
	int step;

	*used = 0;
	for (;;) {
		rest = len - pos;
		look = rest < QUEUEFILE_LINE_MAX + 1 ? rest
		    : QUEUEFILE_LINE_MAX + 1;
		if ((lf = memchr(data + pos, '\n', look)) == NULL) {
			if (rest > QUEUEFILE_LINE_MAX) {
				p->line++;
				return qf_malformed(p, 0,
				    "longer than %d octets",
				    QUEUEFILE_LINE_MAX);
			}
			*used = pos;
			if (eof)
				return qf_end_of_data(p, rest);
			return QF_STEP_MORE;
		}
		linelen = (size_t)(lf - (data + pos));
		p->line++;
		if (p->state != QF_DONE)
			p->qf->envelope_len = p->offset;
		step = qf_line(p, data + pos, linelen);
		pos += linelen + 1;
		p->offset += linelen + 1;
		*used = pos;
		if (step != QF_STEP_NEXT)
			return step;
	}
}

static int
qf_begin(struct qf_parser *p, struct queuefile_error *err)
{
	memset(p, 0, sizeof(*p));
	memset(err, 0, sizeof(*err));
	p->err = err;
	if ((p->qf = calloc(1, sizeof(*p->qf))) == NULL)
		return -1;
	if ((p->qf->strings = buf_new(QF_STRINGS_MAX)) == NULL) {
		free(p->qf);
		p->qf = NULL;
		return -1;
	}
	p->state = QF_EXPECT_FROM;
	return 0;
}

/* qf_finish - hand the envelope over, or free it; map a step to 0/1/-1 */
static int
qf_finish(struct qf_parser *p, int step, struct queuefile **qfp)
{
	int saved;

	if (step == QF_STEP_DONE) {
		*qfp = p->qf;
		return 0;
	}
	saved = errno;
	queuefile_free(p->qf);
	errno = saved;
	if (step == QF_STEP_MALFORMED)
		return 1;
	if (errno == 0)
		errno = ENOMEM;
	return -1;
}

int
queuefile_parse(const char *data, size_t len, struct queuefile **qfp,
    struct queuefile_error *err)
{
	struct qf_parser p;
	size_t used;
	int step;

	*qfp = NULL;
	if (qf_begin(&p, err) < 0)
		return -1;
	errno = 0;
	step = qf_feed(&p, data, len, 1, &used);
	return qf_finish(&p, step, qfp);
}

int
queuefile_read(int fd, struct queuefile **qfp, struct queuefile_error *err)
{
	struct qf_parser p;
	char chunk[QUEUEFILE_CHUNK];
	size_t have = 0, used;
	off_t off = 0;
	ssize_t n;
	int step;

	*qfp = NULL;
	if (qf_begin(&p, err) < 0)
		return -1;
	for (;;) {
		n = pread(fd, chunk + have, sizeof(chunk) - have, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			step = QF_STEP_ERROR;
			break;
		}
		have += (size_t)n;
		off += n;
		errno = 0;
		step = qf_feed(&p, chunk, have, n == 0, &used);
		if (step != QF_STEP_MORE)
			break;
		/* At most QUEUEFILE_LINE_MAX bytes stay: there is room. */
		memmove(chunk, chunk + used, have - used);
		have -= used;
	}
	return qf_finish(&p, step, qfp);
}

void
queuefile_free(struct queuefile *qf)
{
	if (qf == NULL)
		return;
	buf_free(qf->strings);
	free(qf->rcpt_off);
	free(qf->rcpt_params_off);
	free(qf);
}

const char *
queuefile_sender(const struct queuefile *qf)
{
	return buf_data(qf->strings) + qf->sender_off;
}

const char *
queuefile_params(const struct queuefile *qf)
{
	return buf_data(qf->strings) + qf->params_off;
}

size_t
queuefile_nrcpts(const struct queuefile *qf)
{
	return qf->nrcpts;
}

const char *
queuefile_rcpt(const struct queuefile *qf, size_t i)
{
	if (i >= qf->nrcpts)
		return NULL;
	return buf_data(qf->strings) + qf->rcpt_off[i];
}

const char *
queuefile_rcpt_params(const struct queuefile *qf, size_t i)
{
	if (i >= qf->nrcpts)
		return NULL;
	return buf_data(qf->strings) + qf->rcpt_params_off[i];
}

int
queuefile_smtputf8(const struct queuefile *qf)
{
	const char *params = queuefile_params(qf);

	return qf_has_word(params, strlen(params), "SMTPUTF8");
}

/*
 * queuefile_param - the value of parameter name (any case) in params:
 * *len octets at the pointer returned ("" and 0 for a keyword without
 * a value), or NULL when params do not name it
 */
const char *
queuefile_param(const char *params, const char *name, size_t *len)
{
	size_t nlen = strlen(name), k;
	const char *p = params, *end;

	while (*p != '\0') {
		end = p + strcspn(p, " ");
		k = strcspn(p, "= ");
		if (k == nlen && strncasecmp(p, name, nlen) == 0) {
			if (p[k] == '=') {
				*len = (size_t)(end - p) - k - 1;
				return p + k + 1;
			}
			*len = 0;
			return p + k;
		}
		p = *end == ' ' ? end + 1 : end;
	}
	return NULL;
}

int
queuefile_notify(const char *params, const char *what)
{
	const char *v, *end;
	size_t len, k, wlen = strlen(what);

	if ((v = queuefile_param(params, "NOTIFY", &len)) == NULL)
		return -1;
	for (end = v + len; v < end; v += k + 1) {
		k = strcspn(v, ",");
		if (k > (size_t)(end - v))
			k = (size_t)(end - v);
		if (k == wlen && strncasecmp(v, what, k) == 0)
			return 1;
	}
	return 0;
}

size_t
queuefile_envelope_len(const struct queuefile *qf)
{
	return qf->envelope_len;
}

size_t
queuefile_header_len(const char *data, size_t len, int *complete)
{
	const char *lf, *end = data + len;

	*complete = 1;
	if (qf_empty_line(data, end))
		return 0;
	for (lf = data; lf < end; lf++) {
		if ((lf = memchr(lf, '\n', (size_t)(end - lf))) == NULL)
			break;
		if (qf_empty_line(lf + 1, end))
			return (size_t)(lf + 1 - data);
	}
	*complete = 0;
	return len;
}

int
queuefile_read_headers(int fd, off_t offset, struct buf *out)
{
	char chunk[QUEUEFILE_CHUNK];
	int at_line_start = 1;	/* the section starts at a line */
	ssize_t n;
	size_t i;

	for (;;) {
		n = pread(fd, chunk, sizeof(chunk), offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		/* The empty line may begin in the chunk before this one. */
		for (i = 0; i < (size_t)n; i++) {
			if (at_line_start
			    && qf_empty_line(chunk + i, chunk + n))
				return buf_append(out, chunk, i);
			/* A CR that ends the chunk: read again from it. */
			if (at_line_start && chunk[i] == '\r' && i > 0
			    && i + 1 == (size_t)n)
				break;
			at_line_start = chunk[i] == '\n';
		}
		if (buf_append(out, chunk, i) < 0)
			return -1;
		offset += (off_t)i;
	}
}

/*
 * qf_empty_line - whether the line at p (before end) is empty:
 * LF alone, or CR LF in a text kept as it was received (BINARYMIME,
 * RFC 3030), whose lines end in CR LF
 */
static int
qf_empty_line(const char *p, const char *end)
{
	return p < end && (*p == '\n'
	    || (*p == '\r' && p + 1 < end && p[1] == '\n'));
}

int
queuefile_state_parse(const char *data, size_t len, struct queuefile_state *st)
{
	const char *line, *end, *lf, *sp;
	size_t n, vlen;
	char num[32];
	long long v;
	char *stop;

	memset(st, 0, sizeof(*st));
	for (line = data, end = data + len; line < end; line = lf + 1) {
		if ((lf = memchr(line, '\n', (size_t)(end - line))) == NULL)
			lf = end;
		n = (size_t)(lf - line);
		if ((sp = memchr(line, ' ', n)) == NULL)
			continue;
		vlen = (size_t)(lf - sp - 1);
		if ((size_t)(sp - line) == 10
		    && memcmp(line, "last_error", 10) == 0) {
			if (vlen >= sizeof(st->last_error))
				vlen = sizeof(st->last_error) - 1;
			memcpy(st->last_error, sp + 1, vlen);
			st->last_error[vlen] = '\0';
			continue;
		}
		if (vlen == 0 || vlen >= sizeof(num))
			continue;
		memcpy(num, sp + 1, vlen);
		num[vlen] = '\0';
		errno = 0;
		v = strtoll(num, &stop, 10);
		if (errno != 0 || *stop != '\0' || v < 0) {
			errno = EINVAL;
			return -1;
		}
		if ((size_t)(sp - line) == 8 && memcmp(line, "attempts", 8) == 0)
			st->attempts = v > LONG_MAX ? LONG_MAX : (long)v;
		else if ((size_t)(sp - line) == 12
		    && memcmp(line, "next_attempt", 12) == 0)
			st->next_attempt = v;
	}
	return 0;
}

int
queuefile_state_format(const struct queuefile_state *st, char *dst,
    size_t len)
{
	char clean[QUEUEFILE_ERROR_MAX];
	size_t i;
	int n;

	for (i = 0; st->last_error[i] != '\0' && i < sizeof(clean) - 1; i++)
		clean[i] = (unsigned char)st->last_error[i] < 0x20
		    || (unsigned char)st->last_error[i] > 0x7e
		    ? '?' : st->last_error[i];
	clean[i] = '\0';
	n = snprintf(dst, len, "attempts %ld\n", st->attempts);
	if (n >= 0 && (size_t)n < len && st->next_attempt > 0)
		n += snprintf(dst + n, len - (size_t)n, "next_attempt %lld\n",
		    st->next_attempt);
	if (n >= 0 && (size_t)n < len && clean[0] != '\0')
		n += snprintf(dst + n, len - (size_t)n, "last_error %s\n",
		    clean);
	if (n < 0 || (size_t)n >= len) {
		errno = ENOSPC;
		return -1;
	}
	return n;
}

int
queuefile_state_read(int dirfd, const char *path, struct queuefile_state *st)
{
	char data[QUEUEFILE_ERROR_MAX + 256];
	ssize_t n;
	size_t got = 0;
	int fd, saved;

	memset(st, 0, sizeof(*st));
	if ((fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 1 : -1;
	while (got < sizeof(data)) {
		n = read(fd, data + got, sizeof(data) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return queuefile_state_parse(data, got, st);
}
