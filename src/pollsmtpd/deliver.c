/*
 * NAME
 *	deliver - turn an accepted message into Maildir and queue files
 * SYNOPSIS
 *	See deliver.h.
 * DESCRIPTION
 *	deliver_message() plans the copies first (one per distinct local
 *	mailbox, one per remote domain), writes every header block into one
 *	bounded buffer, and only then points the iovecs into it, because
 *	the buffer may move while it grows. Each copy is three iovecs:
 *	its own header block, the Received: line shared by all copies, and
 *	the message text, which is never copied. maildir_deliver() makes it
 *	all or nothing.
 *
 *	Header values come from the session, which has parsed them from
 *	the wire; they are still checked here for bytes that could end a
 *	header line (a defect upstream must not let a client write headers
 *	or envelope lines): such bytes are written as '?'.
 *
 *	Message IDs are 17 uppercase hex digits: 8 of the seconds, 5 of
 *	the microseconds and 4 of a counter. The (seconds, microseconds)
 *	pair is made strictly increasing within the process, so a clock
 *	stepped back cannot repeat an ID; the counter starts from the
 *	process ID, so two daemons on one host that draw an ID in the same
 *	microsecond still differ.
 * DIAGNOSTICS
 *	Each outcome is logged under the message ID: the sender, size and
 *	client, then one record per recipient, or the reason of a failure.
 * LIMITS
 *	Seconds fit 8 hex digits until 2106.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "maildir.h"

struct deliver {
	const struct conf *conf;
	struct maildir *md;
	uint64_t last_usec;		/* last ID time, microseconds since the epoch */
	unsigned counter;		/* low 16 bits go into the ID */
};

/*
 * One planned file. The header block is [off, off + len) of the shared
 * buffer; rcpt is the first recipient of the copy (local: the one that
 * names it in Delivered-To; remote: the domain's first).
 */
struct deliver_plan {
	const struct session_rcpt *rcpt;
	size_t off;
	size_t len;
};

static int deliver_append_clean(struct buf *b, const char *s);
static int deliver_received(const struct deliver *d,
    const struct session_message *msg, const char *id, struct buf *b);
static size_t deliver_plan_copies(const struct session_message *msg,
    struct deliver_plan *plan);
static int deliver_local_header(const struct session_message *msg,
    const struct session_rcpt *rcpt, struct buf *b);
static int deliver_remote_header(const struct session_message *msg,
    const struct session_rcpt *first, struct buf *b);
static int deliver_is_new_address(const struct session_message *msg,
    size_t i);
static int deliver_build_headers(const struct deliver *d,
    const struct session_message *msg, const char *id, struct buf *b,
    struct deliver_plan *plan, size_t *ncopies);
static void deliver_log_ok(const char *id, const char *session_id,
    const struct session_message *msg);

struct deliver *
deliver_new(const struct conf *conf, struct maildir *md)
{
	struct deliver *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->conf = conf;
	d->md = md;
	d->counter = (unsigned)getpid();
	return d;
}

void
deliver_free(struct deliver *d)
{
	free(d);
}

/* deliver_make_id - a new message ID; see DESCRIPTION at the top */
int
deliver_make_id(struct deliver *d, char *id, size_t idlen)
{
	struct timeval tv;
	uint64_t usec;
	int n;

	gettimeofday(&tv, NULL);
	usec = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	if (usec <= d->last_usec)
		usec = d->last_usec + 1;
	d->last_usec = usec;
	d->counter++;
	n = snprintf(id, idlen, "%08lX%05lX%04X",
	    (unsigned long)(usec / 1000000) & 0xffffffffUL,
	    (unsigned long)(usec % 1000000), d->counter & 0xffffU);
	if (n < 0 || (size_t)n >= idlen) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

/* deliver_format_date - RFC 5322 date-time in UTC, independent of the locale */
int
deliver_format_date(time_t t, char *dst, size_t dstlen)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;
	int n;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	n = snprintf(dst, dstlen, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= dstlen)
		return -1;
	return 0;
}

/* deliver_append_clean - append s with every byte outside 0x20..0x7e as '?' */
static int
deliver_append_clean(struct buf *b, const char *s)
{
	const char *start = s;
	char q = '?';

	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x20 && (unsigned char)*s <= 0x7e)
			continue;
		if (buf_append(b, start, (size_t)(s - start)) < 0
		    || buf_append(b, &q, 1) < 0)
			return -1;
		start = s + 1;
	}
	return buf_append(b, start, (size_t)(s - start));
}

/*
 * deliver_received - the server's Received: line, the same in every
 * copy: "from HELO ([ADDR]) by HOSTNAME (pollsmtpd) with ESMTP|SMTP id
 * ID; DATE". An IPv6 client is written as the RFC 5321 literal
 * [IPv6:...].
 */
static int
deliver_received(const struct deliver *d, const struct session_message *msg,
    const char *id, struct buf *b)
{
	char date[DELIVER_DATE_SIZE];
	const char *addr = msg->client_addr ? msg->client_addr : "";

	if (deliver_format_date(time(NULL), date, sizeof(date)) < 0)
		return -1;
	if (buf_append(b, "Received: from ", 15) < 0
	    || deliver_append_clean(b, msg->helo && *msg->helo ? msg->helo
		: "unknown") < 0
	    || buf_append(b, " ([", 3) < 0
	    || (strchr(addr, ':') != NULL && buf_append(b, "IPv6:", 5) < 0)
	    || deliver_append_clean(b, addr) < 0
	    || buf_append(b, "]) by ", 6) < 0
	    || deliver_append_clean(b, d->conf->hostname) < 0
	    || buf_printf(b, " (pollsmtpd) with %s id %s; %s\n",
		msg->esmtp ? "ESMTP" : "SMTP", id, date) < 0)
		return -1;
	return 0;
}

/*
 * deliver_is_new_address - whether recipient i is not a repeat of an
 * earlier recipient of the same domain (remote recipients only).
 */
static int
deliver_is_new_address(const struct session_message *msg, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (msg->rcpts[j].mailbox == NULL
		    && strcmp(msg->rcpts[j].address, msg->rcpts[i].address) == 0)
			return 0;
	return 1;
}

/*
 * deliver_plan_copies - one entry per distinct local mailbox, then one
 * per remote domain, in the order recipients were given. Returns the
 * number of copies. O(n^2) in the recipients, bounded by
 * max_recipients.
 */
static size_t
deliver_plan_copies(const struct session_message *msg,
    struct deliver_plan *plan)
{
	const struct session_rcpt *r;
	size_t i, k, n = 0;

	for (i = 0; i < msg->nrcpts; i++) {
		r = &msg->rcpts[i];
		for (k = 0; k < n; k++) {
			if (r->mailbox != NULL && plan[k].rcpt->mailbox != NULL
			    && strcmp(plan[k].rcpt->mailbox, r->mailbox) == 0)
				break;
			if (r->mailbox == NULL && plan[k].rcpt->mailbox == NULL
			    && strcmp(plan[k].rcpt->domain, r->domain) == 0)
				break;
		}
		if (k == n)
			plan[n++].rcpt = r;
	}
	return n;
}

static int
deliver_local_header(const struct session_message *msg,
    const struct session_rcpt *rcpt, struct buf *b)
{
	if (buf_append(b, "Return-Path: <", 14) < 0
	    || deliver_append_clean(b, msg->sender) < 0
	    || buf_append(b, ">\nDelivered-To: ", 16) < 0
	    || deliver_append_clean(b, rcpt->address) < 0
	    || buf_append(b, "\n", 1) < 0)
		return -1;
	return 0;
}

/*
 * deliver_remote_header - the envelope of one remote domain: its
 * recipients are first and every later recipient with the same domain,
 * each address once.
 */
static int
deliver_remote_header(const struct session_message *msg,
    const struct session_rcpt *first, struct buf *b)
{
	const struct session_rcpt *r;
	size_t i;

	if (buf_append(b, "X-Envelope-From: <", 18) < 0
	    || deliver_append_clean(b, msg->sender) < 0
	    || buf_append(b, ">", 1) < 0)
		return -1;
	if (msg->mail_params != NULL && *msg->mail_params != '\0'
	    && (buf_append(b, " ", 1) < 0
		|| deliver_append_clean(b, msg->mail_params) < 0))
		return -1;
	if (buf_append(b, "\n", 1) < 0)
		return -1;
	for (i = (size_t)(first - msg->rcpts); i < msg->nrcpts; i++) {
		r = &msg->rcpts[i];
		if (r->mailbox != NULL || strcmp(r->domain, first->domain) != 0
		    || !deliver_is_new_address(msg, i))
			continue;
		if (buf_append(b, "X-Envelope-To: <", 16) < 0
		    || deliver_append_clean(b, r->address) < 0
		    || buf_append(b, ">\n", 2) < 0)
			return -1;
	}
	return 0;
}

/*
 * deliver_build_headers - the Received: line at offset 0 of b, then the
 * header block of every planned copy. Returns 0, or -1 (out of memory).
 */
static int
deliver_build_headers(const struct deliver *d,
    const struct session_message *msg, const char *id, struct buf *b,
    struct deliver_plan *plan, size_t *ncopies)
{
	size_t i, n;

	if (deliver_received(d, msg, id, b) < 0)
		return -1;
	n = deliver_plan_copies(msg, plan);
	for (i = 0; i < n; i++) {
		plan[i].off = buf_len(b);
		if ((plan[i].rcpt->mailbox != NULL
		    ? deliver_local_header(msg, plan[i].rcpt, b)
		    : deliver_remote_header(msg, plan[i].rcpt, b)) < 0)
			return -1;
		plan[i].len = buf_len(b) - plan[i].off;
	}
	*ncopies = n;
	return 0;
}

static void
deliver_log_ok(const char *id, const char *session_id,
    const struct session_message *msg)
{
	const struct session_rcpt *r;
	size_t i;

	log_info(id, "session=%s client=[%s] from=<%s> size=%zu nrcpt=%zu",
	    session_id, msg->client_addr, msg->sender, msg->text_len,
	    msg->nrcpts);
	for (i = 0; i < msg->nrcpts; i++) {
		r = &msg->rcpts[i];
		if (r->mailbox != NULL)
			log_info(id, "to=<%s> mailbox=%s status=delivered",
			    r->address, r->mailbox);
		else
			log_info(id, "to=<%s> domain=%s status=queued",
			    r->address, r->domain);
	}
}

/*
 * deliver_message - store msg under a new ID, all copies or none
 *
 * The header buffer's maximum is computed from the inputs, so it can
 * only fail for lack of memory, never cut a header.
 */
enum session_store_result
deliver_message(struct deliver *d, const char *session_id,
    const struct session_message *msg, char *id, size_t idlen)
{
	enum session_store_result result = SESSION_STORE_TEMPFAIL;
	struct deliver_plan *plan = NULL;
	struct maildir_copy *copies = NULL;
	struct iovec *iov = NULL;
	struct buf *b = NULL;
	size_t ncopies, i, max, received_len;
	const char *data;
	int saved;

	if (deliver_make_id(d, id, idlen) < 0)
		log_panic(__func__, "message ID does not fit %zu bytes", idlen);
	if (msg->nrcpts == 0) {
		log_errx(id, "session=%s message without recipients", session_id);
		goto fail;
	}

	/*
	 * Each recipient costs at most one header block of its own: a
	 * local copy (sender and address) or a remote domain's envelope
	 * (sender, parameters and address), plus the fixed words.
	 */
	max = 1024 + strlen(msg->helo ? msg->helo : "")
	    + strlen(d->conf->hostname) + strlen(msg->client_addr);
	for (i = 0; i < msg->nrcpts; i++)
		max += 64 + strlen(msg->sender) + strlen(msg->mail_params ?
		    msg->mail_params : "") + strlen(msg->rcpts[i].address);

	if ((plan = calloc(msg->nrcpts, sizeof(*plan))) == NULL
	    || (copies = calloc(msg->nrcpts, sizeof(*copies))) == NULL
	    || (iov = calloc(msg->nrcpts * 3, sizeof(*iov))) == NULL
	    || (b = buf_new(max)) == NULL) {
		log_warn(id, "session=%s cannot store", session_id);
		goto fail;
	}

	if (deliver_build_headers(d, msg, id, b, plan, &ncopies) < 0) {
		log_warn(id, "session=%s cannot build headers", session_id);
		goto fail;
	}
	received_len = plan[0].off;

	/* The buffer is complete: from here on its data does not move. */
	data = buf_data(b);
	for (i = 0; i < ncopies; i++) {
		struct iovec *v = &iov[i * 3];

		v[0].iov_base = (void *)(data + plan[i].off);
		v[0].iov_len = plan[i].len;
		v[1].iov_base = (void *)data;
		v[1].iov_len = received_len;
		v[2].iov_base = (void *)msg->text;
		v[2].iov_len = msg->text_len;
		copies[i].mailbox = plan[i].rcpt->mailbox;
		copies[i].domain = plan[i].rcpt->mailbox ? NULL
		    : plan[i].rcpt->domain;
		copies[i].iov = v;
		copies[i].iovcnt = msg->text_len > 0 ? 3 : 2;
	}

	if (maildir_deliver(d->md, id, copies, ncopies) < 0) {
		saved = errno;
		if (saved == ENOSPC || saved == EDQUOT)
			result = SESSION_STORE_NOSPACE;
		log_warn(id, "session=%s from=<%s> not stored (%s)",
		    session_id, msg->sender, result == SESSION_STORE_NOSPACE
		    ? "disk full" : "temporary failure");
		goto fail;
	}
	deliver_log_ok(id, session_id, msg);
	result = SESSION_STORE_OK;

fail:
	buf_free(b);
	free(iov);
	free(copies);
	free(plan);
	return result;
}
