/*
 * NAME
 *	deliver - turn an accepted message into Maildir and queue files
 * SYNOPSIS
 *	See deliver.h.
 * DESCRIPTION
 *	deliver_message() plans the copies first (one per distinct local
 *	mailbox, one per remote domain), writes every header block into one
 *	bounded buffer, and only then points the iovecs into it, because
 *	the buffer may move while it grows. Each copy is two iovecs (its
 *	own header block, the Received: line shared by all copies) and then
 *	the message text, copied from the spool file by the kernel
 *	(maildir's copy_file_range), never through this process's memory.
 *	maildir_deliver() makes it all or nothing.
 *
 *	A success report (DSN NOTIFY=SUCCESS of a local recipient) is one
 *	more copy in the same maildir batch, of its own ID (so that it may
 *	go to a Maildir or queue directory a copy of the message goes to,
 *	and is its own letter for the agent): it becomes durable in the
 *	same commit as the message, or neither does. Its texts (the
 *	message's header section read back from the spool, the report from
 *	bounce_format()) are the only memory taken per message: reports
 *	are rare, and their bounds come from the message.
 *
 *	Group commit: deliver_submit() only queues; deliver_flush() takes
 *	the queue in chunks (at most DELIVER_BATCH_MESSAGES messages and
 *	max_files files), stages each message of a chunk in one
 *	maildir batch, commits the batch (one pass of syncs for all), logs
 *	each outcome and only then calls the done callbacks, which queue
 *	the 250 (or 451/452) replies. A flush takes only the messages of
 *	its own pass (those queued before it began): what the callbacks
 *	submit waits for the next loop iteration. A message is written
 *	when its chunk is staged, not when it is submitted: a session whose
 *	client vanished
 *	before the flush is cancelled and nothing of its message is made.
 *	The callbacks run after the chunk is finished, from a copy of the
 *	chunk, so that one of them may submit, cancel or flush again.
 *
 *	Nothing is allocated per message once the server has warmed up:
 *	the header text, the copy plans and iovecs, the queue and the batch
 *	keep their memory and grow to the largest message seen. The date of
 *	the Received: line is formatted once per second.
 *
 *	Header values come from the session, which has parsed them from
 *	the wire; they are still checked here for bytes that could end a
 *	header line (a defect upstream must not let a client write headers
 *	or envelope lines): such bytes are written as '?'. With SMTPUTF8,
 *	addresses may be UTF-8 (RFC 6532) and are written as they are when
 *	they are good UTF-8 without control characters; the Received: line
 *	then says "with UTF8SMTP" (RFC 6531 3.7.3).
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "bounce.h"
#include "buf.h"
#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "maildir.h"
#include "queuefile.h"

/* The message's header section a success report returns, at most. */
#define DELIVER_REPORT_HEADERS_MAX	(64 * 1024)
/* Room for one recipient in a report: its lines, twice (notice, fields). */
#define DELIVER_REPORT_RCPT_MAX		(4 * ADDR_PATH_MAX + 2 * DELIVER_ORCPT_MAX)
#define DELIVER_ORCPT_MAX		512	/* RFC 3461 4.2: 500 characters */

/*
 * Header text of one message: grows to the largest seen and is reused.
 * max is the bound of the message being built (see deliver_stage()).
 */
struct deliver_text {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/*
 * One planned file. The header block is [off, off + len) of the header
 * text; rcpt is the first recipient of the copy (local: the one that
 * names it in Delivered-To; remote: the domain's first).
 */
struct deliver_plan {
	const struct session_rcpt *rcpt;
	size_t off;
	size_t len;
};

/*
 * The success report of one message (RFC 3461 6.2), staged with it as
 * one more copy of its own ID: id is "" when the message gets none.
 */
struct deliver_report {
	char id[DELIVER_ID_SIZE];
	const char *mailbox;		/* the sender's Maildir, or NULL */
	char domain[ADDR_DOMAIN_MAX + 1];	/* else the sender's queue */
	size_t nrcpts;			/* recipients it reports */
};

/* A submitted message, from deliver_submit() to its done call. */
struct deliver_job {
	const char *session_id;
	const struct session_message *msg;
	int text_fd;			/* msg->size bytes of text, */
	const char *text;		/* or these (then text_fd is -1) */
	unsigned long pass;		/* the flush that stores it */
	deliver_done_fn done;		/* NULL once cancelled */
	void *ctx;
	int index;			/* in the maildir batch, or -1 */
	enum session_store_result result;
	char id[DELIVER_ID_SIZE];
	struct deliver_report report;
};

struct deliver {
	const struct conf *conf;
	struct maildir *md;
	struct maildir_batch *batch;
	uint64_t last_usec;		/* last ID time, microseconds since the epoch */
	unsigned counter;		/* low 16 bits go into the ID */
	time_t date_time;		/* the second date_text shows */
	char date_text[DELIVER_DATE_SIZE];

	struct deliver_job *queue;	/* submitted, not yet taken */
	size_t nqueue;
	size_t queue_cap;
	struct deliver_job chunk[DELIVER_BATCH_MESSAGES];	/* being stored */
	size_t nchunk;
	struct deliver_job done_calls[DELIVER_BATCH_MESSAGES];	/* to call */
	size_t ndone;
	int errs[DELIVER_BATCH_MESSAGES];
	int flushing;
	size_t max_files;		/* files one commit keeps open */
	unsigned long pass;		/* of the next flush */

	/* Reused for each message; room for rcpts_cap recipients. */
	struct deliver_text hdr;
	struct deliver_plan *plan;
	struct maildir_copy *copies;
	struct iovec *iov;
	size_t rcpts_cap;

	/* A success report: its recipients, decoded ORCPTs, texts. */
	struct bounce_rcpt *report_rcpts;
	char (*report_orcpt)[DELIVER_ORCPT_MAX];
	size_t report_cap;
	struct buf *report_head;	/* its Return-Path or envelope, Received: */
	struct buf *report_text;	/* the report itself */
	struct buf *report_orig;	/* the headers it returns */
};

static int deliver_text_add(struct deliver_text *t, const char *s,
    size_t len);
static int deliver_text_printf(struct deliver_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int deliver_append_clean(struct deliver_text *t, const char *s);
static int deliver_append_addr(struct deliver_text *t,
    const struct session_message *msg, const char *s);
static const char *deliver_date(struct deliver *d);
static int deliver_received(struct deliver *d,
    const struct session_message *msg, const char *id,
    struct deliver_text *t);
static size_t deliver_plan_copies(const struct session_message *msg,
    struct deliver_plan *plan);
static int deliver_local_header(const struct session_message *msg,
    const struct session_rcpt *rcpt, struct deliver_text *t);
static int deliver_remote_header(const struct session_message *msg,
    const struct session_rcpt *first, struct deliver_text *t);
static int deliver_is_new_address(const struct session_message *msg,
    size_t i);
static int deliver_build_headers(struct deliver *d,
    const struct session_message *msg, const char *id, size_t *ncopies);
static int deliver_reserve_rcpts(struct deliver *d, size_t nrcpts);
static int deliver_stage(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, const char *text,
    const char *id, struct deliver_report *report);
static int deliver_enqueue(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, const char *text,
    deliver_done_fn done, void *ctx);
static int deliver_report_reserve(struct deliver *d, size_t nrcpts);
static void deliver_report_release(struct deliver *d);
static int deliver_is_ascii(const char *s);
static enum session_store_result deliver_outcome(const char *id,
    const char *session_id, const struct session_message *msg, int err,
    const struct deliver_report *report);
static int deliver_notify_success(const struct session_rcpt *r);
static int deliver_wants_report(const struct session_message *msg);
static int deliver_report_dest(struct deliver *d, const char *id,
    const struct session_message *msg, struct deliver_report *report);
static int deliver_report_headers(struct deliver *d, int text_fd,
    const char *in_memory, size_t size, const char *received,
    size_t received_len);
static int deliver_report_build(struct deliver *d,
    const struct session_message *msg, int text_fd, const char *text,
    const char *id, size_t received_len, struct deliver_report *report,
    struct maildir_copy *copy, struct iovec *iov);
static void deliver_log_ok(const char *id, const char *session_id,
    const struct session_message *msg);
static void deliver_commit_chunk(struct deliver *d, unsigned long pass);

struct deliver *
deliver_new(const struct conf *conf, struct maildir *md)
{
	struct deliver *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->conf = conf;
	d->md = md;
	d->counter = (unsigned)getpid();
	d->date_time = (time_t)-1;
	d->max_files = DELIVER_BATCH_FILES;
	if ((d->batch = maildir_batch_new(md)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
deliver_free(struct deliver *d)
{
	if (d == NULL)
		return;
	maildir_batch_free(d->batch);
	buf_free(d->report_head);
	buf_free(d->report_text);
	buf_free(d->report_orig);
	free(d->report_rcpts);
	free(d->report_orcpt);
	free(d->queue);
	free(d->hdr.data);
	free(d->plan);
	free(d->copies);
	free(d->iov);
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

/*
 * deliver_text_add - append len bytes; past t->max it fails (EMSGSIZE)
 * and changes nothing. The memory is kept for the next message.
 */
static int
deliver_text_add(struct deliver_text *t, const char *s, size_t len)
{
	size_t cap;
	char *p;

	if (len > t->max - t->len) {
		errno = EMSGSIZE;
		return -1;
	}
	if (t->len + len > t->cap) {
		cap = t->cap ? t->cap : 512;
		while (cap < t->len + len)
			cap *= 2;
		if ((p = realloc(t->data, cap)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		t->data = p;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, len);
	t->len += len;
	return 0;
}

static int
deliver_text_printf(struct deliver_text *t, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		errno = EMSGSIZE;
		return -1;
	}
	return deliver_text_add(t, line, (size_t)n);
}

/* deliver_append_clean - append s with every byte outside 0x20..0x7e as '?' */
static int
deliver_append_clean(struct deliver_text *t, const char *s)
{
	const char *start = s;

	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x20 && (unsigned char)*s <= 0x7e)
			continue;
		if (deliver_text_add(t, start, (size_t)(s - start)) < 0
		    || deliver_text_add(t, "?", 1) < 0)
			return -1;
		start = s + 1;
	}
	return deliver_text_add(t, start, (size_t)(s - start));
}

/*
 * deliver_append_addr - an address or parameter: with SMTPUTF8 (RFC
 * 6532) it may be UTF-8, which the session has checked and which can
 * end no line; anything else goes through deliver_append_clean()
 */
static int
deliver_append_addr(struct deliver_text *t, const struct session_message *msg,
    const char *s)
{
	const char *p;

	if (!msg->smtputf8 || !addr_utf8_valid(s, strlen(s)))
		return deliver_append_clean(t, s);
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return deliver_append_clean(t, s);
	return deliver_text_add(t, s, (size_t)(p - s));
}

/* deliver_date - the date of now, formatted again only when the second changes */
static const char *
deliver_date(struct deliver *d)
{
	time_t now = time(NULL);

	if (now != d->date_time) {
		if (deliver_format_date(now, d->date_text,
		    sizeof(d->date_text)) < 0)
			return NULL;
		d->date_time = now;
	}
	return d->date_text;
}

/*
 * deliver_received - the server's Received: line, the same in every
 * copy: "from HELO ([ADDR]) by HOSTNAME (pollsmtpd) with ESMTP|SMTP id
 * ID; DATE". An IPv6 client is written as the RFC 5321 literal
 * [IPv6:...]. A message that came through TLS says "with ESMTPS" (RFC
 * 3848; "SMTPS" after HELO) and, as Postfix does, names protocol and
 * cipher in a comment after the client: "([ADDR]) (using TLSv1.3 with
 * cipher ... (256/256 bits)) by ...".
 */
static int
deliver_received(struct deliver *d, const struct session_message *msg,
    const char *id, struct deliver_text *t)
{
	const char *date = deliver_date(d);
	const char *addr = msg->client_addr ? msg->client_addr : "";

	if (date == NULL)
		return -1;
	if (deliver_text_add(t, "Received: from ", 15) < 0
	    || deliver_append_clean(t, msg->helo && *msg->helo ? msg->helo
		: "unknown") < 0
	    || deliver_text_add(t, " ([", 3) < 0
	    || (strchr(addr, ':') != NULL && deliver_text_add(t, "IPv6:", 5) < 0)
	    || deliver_append_clean(t, addr) < 0
	    || deliver_text_add(t, "])", 2) < 0
	    || (msg->tls != NULL && (deliver_text_add(t, " (using ", 8) < 0
		|| deliver_append_clean(t, msg->tls) < 0
		|| deliver_text_add(t, ")", 1) < 0))
	    || deliver_text_add(t, " by ", 4) < 0
	    || deliver_append_clean(t, d->conf->hostname) < 0
	    /* RFC 3848 and RFC 6531: ESMTPS, UTF8SMTP, UTF8SMTPS */
	    || deliver_text_printf(t, " (pollsmtpd) with %s%s id %s; %s\n",
		msg->smtputf8 ? "UTF8SMTP" : msg->esmtp ? "ESMTP" : "SMTP",
		msg->tls != NULL ? "S" : "",
		id, date) < 0)
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
    const struct session_rcpt *rcpt, struct deliver_text *t)
{
	if (deliver_text_add(t, "Return-Path: <", 14) < 0
	    || deliver_append_addr(t, msg, msg->sender) < 0
	    || deliver_text_add(t, ">\nDelivered-To: ", 16) < 0
	    || deliver_append_addr(t, msg, rcpt->address) < 0
	    || deliver_text_add(t, "\n", 1) < 0)
		return -1;
	/*
	 * RFC 9228: each address the message was delivered to, the
	 * latest on top; an alias or the catch-all was the first.
	 */
	if (rcpt->original != NULL
	    && (deliver_text_add(t, "Delivered-To: ", 14) < 0
	    || deliver_append_addr(t, msg, rcpt->original) < 0
	    || deliver_text_add(t, "\n", 1) < 0))
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
    const struct session_rcpt *first, struct deliver_text *t)
{
	const struct session_rcpt *r;
	size_t i;

	if (deliver_text_add(t, "X-Envelope-From: <", 18) < 0
	    || deliver_append_addr(t, msg, msg->sender) < 0
	    || deliver_text_add(t, ">", 1) < 0)
		return -1;
	if (msg->mail_params != NULL && *msg->mail_params != '\0'
	    && (deliver_text_add(t, " ", 1) < 0
		|| deliver_append_clean(t, msg->mail_params) < 0))
		return -1;
	if (deliver_text_add(t, "\n", 1) < 0)
		return -1;
	for (i = (size_t)(first - msg->rcpts); i < msg->nrcpts; i++) {
		r = &msg->rcpts[i];
		if (r->mailbox != NULL || strcmp(r->domain, first->domain) != 0
		    || !deliver_is_new_address(msg, i))
			continue;
		if (deliver_text_add(t, "X-Envelope-To: <", 16) < 0
		    || deliver_append_addr(t, msg, r->address) < 0
		    || deliver_text_add(t, ">", 1) < 0)
			return -1;
		/* DSN's NOTIFY and ORCPT, for the delivery agent (RFC 3461). */
		if (r->params != NULL && *r->params != '\0'
		    && (deliver_text_add(t, " ", 1) < 0
		    || deliver_append_addr(t, msg, r->params) < 0))
			return -1;
		if (deliver_text_add(t, "\n", 1) < 0)
			return -1;
	}
	return 0;
}

/*
 * deliver_build_headers - the Received: line at offset 0 of d->hdr,
 * then the header block of every planned copy. Returns 0, or -1 (out
 * of memory).
 */
static int
deliver_build_headers(struct deliver *d, const struct session_message *msg,
    const char *id, size_t *ncopies)
{
	struct deliver_plan *plan = d->plan;
	size_t i, n;

	if (deliver_received(d, msg, id, &d->hdr) < 0)
		return -1;
	n = deliver_plan_copies(msg, plan);
	for (i = 0; i < n; i++) {
		plan[i].off = d->hdr.len;
		if ((plan[i].rcpt->mailbox != NULL
		    ? deliver_local_header(msg, plan[i].rcpt, &d->hdr)
		    : deliver_remote_header(msg, plan[i].rcpt, &d->hdr)) < 0)
			return -1;
		plan[i].len = d->hdr.len - plan[i].off;
	}
	*ncopies = n;
	return 0;
}

/* deliver_reserve_rcpts - room in the reused arrays for nrcpts recipients */
static int
deliver_reserve_rcpts(struct deliver *d, size_t nrcpts)
{
	struct deliver_plan *plan;
	struct maildir_copy *copies;
	struct iovec *iov;
	size_t cap = d->rcpts_cap ? d->rcpts_cap : 8;

	if (nrcpts <= d->rcpts_cap)
		return 0;
	while (cap < nrcpts)
		cap *= 2;
	if (cap > SIZE_MAX / (3 * sizeof(*iov))) {
		errno = ENOMEM;
		return -1;
	}
	/* Each realloc keeps the old block when it fails: no leak either way. */
	if ((plan = realloc(d->plan, cap * sizeof(*plan))) == NULL)
		return -1;
	d->plan = plan;
	if ((copies = realloc(d->copies, cap * sizeof(*copies))) == NULL)
		return -1;
	d->copies = copies;
	if ((iov = realloc(d->iov, cap * 3 * sizeof(*iov))) == NULL)
		return -1;
	d->iov = iov;
	d->rcpts_cap = cap;
	return 0;
}

static void
deliver_log_ok(const char *id, const char *session_id,
    const struct session_message *msg)
{
	const struct session_rcpt *r;
	size_t i;

	log_info(id, "session=%s client=[%s] from=<%s> size=%zu nrcpt=%zu",
	    session_id, msg->client_addr, msg->sender, msg->size,
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
 * deliver_stage - write msg, under the ID id, into d->batch: every
 * copy in tmp/, nothing synced or in place yet. Returns the index in
 * the batch, or -1 (logged; errno tells why).
 *
 * The header text's bound is computed from the inputs, so it can only
 * fail for lack of memory, never cut a header. Each recipient costs at
 * most one header block of its own: a local copy (sender and address)
 * or a remote domain's envelope (sender, parameters and address), plus
 * the fixed words.
 */
static int
deliver_stage(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, const char *text,
    const char *id, struct deliver_report *report)
{
	size_t ncopies, i, received_len;
	int index;

	memset(report, 0, sizeof(*report));
	if (msg->nrcpts == 0) {
		log_errx(id, "session=%s message without recipients", session_id);
		errno = EINVAL;
		return -1;
	}
	d->hdr.len = 0;
	d->hdr.max = 1024 + strlen(msg->helo ? msg->helo : "")
	    + strlen(d->conf->hostname) + strlen(msg->client_addr);
	for (i = 0; i < msg->nrcpts; i++)
		d->hdr.max += 64 + strlen(msg->sender) + strlen(msg->mail_params ?
		    msg->mail_params : "") + strlen(msg->rcpts[i].address)
		    + (msg->rcpts[i].original != NULL ?
		    strlen(msg->rcpts[i].original) : 0)
		    + (msg->rcpts[i].params != NULL ?
		    strlen(msg->rcpts[i].params) : 0);
	/* One copy a recipient at most, and a success report. */
	if (deliver_reserve_rcpts(d, msg->nrcpts + 1) < 0
	    || deliver_build_headers(d, msg, id, &ncopies) < 0) {
		log_warn(id, "session=%s cannot build headers", session_id);
		return -1;
	}
	received_len = d->plan[0].off;

	/* The headers are complete: from here on their data does not move. */
	for (i = 0; i < ncopies; i++) {
		struct iovec *v = &d->iov[i * 3];

		v[0].iov_base = d->hdr.data + d->plan[i].off;
		v[0].iov_len = d->plan[i].len;
		v[1].iov_base = d->hdr.data;
		v[1].iov_len = received_len;
		d->copies[i].mailbox = d->plan[i].rcpt->mailbox;
		d->copies[i].domain = d->plan[i].rcpt->mailbox ? NULL
		    : d->plan[i].rcpt->domain;
		d->copies[i].iov = v;
		d->copies[i].iovcnt = 2;
		d->copies[i].text_fd = text_fd;
		d->copies[i].text_len = msg->size;
		d->copies[i].id = NULL;
		if (text != NULL) {
			/* The text is in memory: the third iovec. */
			v[2].iov_base = (void *)(uintptr_t)text;
			v[2].iov_len = msg->size;
			d->copies[i].iovcnt = 3;
			d->copies[i].text_fd = -1;
			d->copies[i].text_len = 0;
		}
	}
	/*
	 * The success report is one more copy, of its own ID, in the same
	 * commit: it exists exactly when the delivery it reports does.
	 */
	if (deliver_wants_report(msg)
	    && deliver_report_dest(d, id, msg, report)) {
		if (deliver_report_build(d, msg, text_fd, text, id, received_len,
		    report, &d->copies[ncopies], &d->iov[ncopies * 3]) < 0) {
			log_warn(id, "session=%s cannot build the success "
			    "report", session_id);
			deliver_report_release(d);
			report->id[0] = '\0';
			return -1;
		}
		ncopies++;
	}
	index = maildir_batch_add(d->batch, id, d->copies, ncopies);
	deliver_report_release(d);
	if (index < 0) {
		report->id[0] = '\0';
		return -1;
	}
	return index;
}

/*
 * deliver_notify_success - whether r is a local recipient whose RCPT
 * said NOTIFY=...SUCCESS... (the session has checked and upper-cased
 * the list)
 */
static int
deliver_notify_success(const struct session_rcpt *r)
{
	return r->mailbox != NULL && r->params != NULL
	    && queuefile_notify(r->params, "SUCCESS") == 1;
}

/*
 * deliver_wants_report - whether storing msg owes its sender a success
 * report: a sender (never one to <>, RFC 3461 6.2) and a local
 * recipient that asked for it. Remote recipients are the agent's: it
 * reports "relayed", or the next hop reports.
 */
static int
deliver_wants_report(const struct session_message *msg)
{
	size_t i;

	if (msg->sender == NULL || *msg->sender == '\0')
		return 0;
	for (i = 0; i < msg->nrcpts; i++)
		if (deliver_notify_success(&msg->rcpts[i]))
			return 1;
	return 0;
}

/* deliver_is_ascii - whether s is printable ASCII only */
static int
deliver_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/*
 * deliver_report_dest - where the success report of msg goes: the
 * sender's Maildir when the sender is local (a user, also with a
 * +extension; any other local part: the postmaster, as the agent does
 * for bounces), else the queue of the sender's domain, which the agent
 * drains like any letter. Returns 1, or 0 when the report cannot be
 * made (logged; the message is stored all the same): a sender that is
 * an address literal or cannot be queued, no postmaster. Under SMTPUTF8
 * the sender and the recipients may be UTF-8: the report is then
 * internationalized (RFC 6533, bounce.c).
 */
static int
deliver_report_dest(struct deliver *d, const char *id,
    const struct session_message *msg, struct deliver_report *report)
{
	const struct conf *conf = d->conf;
	struct conf_target t;
	char path[ADDR_PATH_MAX + 3];
	struct addr a;
	size_t used;
	int n;

	n = snprintf(path, sizeof(path), "<%s>", msg->sender);
	if (n < 0 || (size_t)n >= sizeof(path)
	    || addr_parse_path(path, (size_t)n, msg->smtputf8
	    ? ADDR_ALLOW_UTF8 : 0, &a, &used) != ADDR_OK
	    || used != (size_t)n) {
		log_warnx(id, "no success report: the sender <%s> is no "
		    "address", msg->sender);
		return 0;
	}
	if (!a.literal && conf_is_local_domain(conf, a.ace)) {
		if (conf_lookup_local(conf, a.mailbox, &t) && t.user != NULL)
			report->mailbox = t.user;
		else if ((report->mailbox = conf_find_user(conf,
		    conf->postmaster)) == NULL) {
			log_warnx(id, "no success report: <%s> is no local "
			    "user and there is no postmaster", msg->sender);
			return 0;
		}
		return 1;
	}
	if (a.literal || !addr_domain_is_safe(a.ace)) {
		log_warnx(id, "no success report: <%s> cannot be queued",
		    msg->sender);
		return 0;
	}
	report->mailbox = NULL;
	memcpy(report->domain, a.ace, strlen(a.ace) + 1);
	return 1;
}

/* deliver_report_reserve - room for a report of nrcpts recipients */
static int
deliver_report_reserve(struct deliver *d, size_t nrcpts)
{
	struct bounce_rcpt *rcpts;
	char (*orcpt)[DELIVER_ORCPT_MAX];

	if (nrcpts <= d->report_cap)
		return 0;
	if ((rcpts = reallocarray(d->report_rcpts, nrcpts,
	    sizeof(*rcpts))) == NULL)
		return -1;
	d->report_rcpts = rcpts;
	if ((orcpt = reallocarray(d->report_orcpt, nrcpts,
	    sizeof(*orcpt))) == NULL)
		return -1;
	d->report_orcpt = orcpt;
	d->report_cap = nrcpts;
	return 0;
}

/* deliver_report_release - the texts of a report, once staged */
static void
deliver_report_release(struct deliver *d)
{
	buf_free(d->report_head);
	buf_free(d->report_text);
	buf_free(d->report_orig);
	d->report_head = d->report_text = d->report_orig = NULL;
}

/*
 * deliver_report_headers - into d->report_orig: our Received: line,
 * then the message's header section read back from the spool (or from
 * in_memory, the text when it is not in a file), at most
 * DELIVER_REPORT_HEADERS_MAX bytes of it (a longer one is cut after
 * its last whole line). Returns the length of the headers, or -1.
 */
static int
deliver_report_headers(struct deliver *d, int text_fd, const char *in_memory,
    size_t size, const char *received, size_t received_len)
{
	char chunk[4096];
	size_t want = size < DELIVER_REPORT_HEADERS_MAX ? size
	    : DELIVER_REPORT_HEADERS_MAX;
	size_t got = 0, len;
	const char *text;
	ssize_t n;
	int complete;

	if (buf_append(d->report_orig, received, received_len) < 0)
		return -1;
	if (in_memory != NULL) {
		if (buf_append(d->report_orig, in_memory, want) < 0)
			return -1;
		got = want;
	}
	while (got < want) {
		n = pread(text_fd, chunk, want - got < sizeof(chunk)
		    ? want - got : sizeof(chunk), (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (buf_append(d->report_orig, chunk, (size_t)n) < 0)
			return -1;
		got += (size_t)n;
	}
	text = buf_data(d->report_orig) + received_len;
	len = queuefile_header_len(text, got, &complete);
	if (!complete && got < size)
		while (len > 0 && text[len - 1] != '\n')
			len--;
	return (int)(received_len + len);
}

/*
 * deliver_report_build - the success report of msg (id) as the copy
 * copy, its two iovecs in iov: "Action: delivered" for every local
 * recipient that asked (RFC 3464), by bounce_format(). Original-
 * Recipient is the ORCPT given, else, after an alias or the catch-all,
 * the address given (as RFC 3461 5.2.1 lets a relay add it). Headers
 * only, whatever RET says (RFC 3461 4.3). Returns 0, or -1 (out of
 * memory, the spool unreadable): the message is then not stored.
 */
static int
deliver_report_build(struct deliver *d, const struct session_message *msg,
    int text_fd, const char *text, const char *id, size_t received_len,
    struct deliver_report *report, struct maildir_copy *copy,
    struct iovec *iov)
{
	const struct conf *conf = d->conf;
	const struct session_rcpt *r;
	struct bounce_rcpt *br;
	struct bounce_info bi;
	char envid[DELIVER_ORCPT_MAX], date[DELIVER_DATE_SIZE];
	const char *v;
	size_t i, n = 0, vlen;
	time_t now = time(NULL);
	int hlen, len;

	if (deliver_report_reserve(d, msg->nrcpts) < 0)
		return -1;
	for (i = 0; i < msg->nrcpts; i++) {
		r = &msg->rcpts[i];
		if (!deliver_notify_success(r))
			continue;
		br = &d->report_rcpts[n];
		memset(br, 0, sizeof(*br));
		br->rcpt = r->address;
		br->status = "2.0.0";
		v = queuefile_param(r->params, "ORCPT", &vlen);
		if (v != NULL && addr_xtext_decode(v, vlen, d->report_orcpt[n],
		    sizeof(d->report_orcpt[n])) == 0)
			br->orcpt = d->report_orcpt[n];
		else if (r->original != NULL && (len = snprintf(
		    d->report_orcpt[n], sizeof(d->report_orcpt[n]), "%s;%s",
		    deliver_is_ascii(r->original) ? "rfc822" : "utf-8",
		    r->original)) > 0
		    && (size_t)len < sizeof(d->report_orcpt[n]))
			br->orcpt = d->report_orcpt[n];
		n++;
	}
	report->nrcpts = n;
	v = queuefile_param(msg->mail_params != NULL ? msg->mail_params : "",
	    "ENVID", &vlen);
	if (v == NULL || addr_xtext_decode(v, vlen, envid, sizeof(envid)) < 0)
		envid[0] = '\0';
	if (deliver_make_id(d, report->id, sizeof(report->id)) < 0
	    || deliver_format_date(now, date, sizeof(date)) < 0) {
		errno = EINVAL;
		return -1;
	}
	/* Bounds from the inputs: only memory can make these fail. */
	if ((d->report_orig = buf_new(received_len
	    + DELIVER_REPORT_HEADERS_MAX)) == NULL
	    || (d->report_text = buf_new(received_len
	    + DELIVER_REPORT_HEADERS_MAX + 8192 + strlen(conf->hostname) * 8
	    + n * DELIVER_REPORT_RCPT_MAX)) == NULL
	    || (d->report_head = buf_new(256 + 2 * ADDR_PATH_MAX
	    + strlen(conf->hostname))) == NULL)
		return -1;
	if ((hlen = deliver_report_headers(d, text_fd, text, msg->size,
	    d->hdr.data, received_len)) < 0)
		return -1;

	memset(&bi, 0, sizeof(bi));
	bi.hostname = conf->hostname;
	bi.id = report->id;
	bi.orig_id = id;
	bi.sender = msg->sender;
	bi.arrival = now;
	bi.now = now;
	bi.rcpts = d->report_rcpts;
	bi.nrcpts = n;
	bi.headers = buf_data(d->report_orig);
	bi.headers_len = (size_t)hlen;
	bi.envid = envid[0] != '\0' ? envid : NULL;
	bi.delivered = 1;
	if (bounce_format(&bi, d->report_text) < 0)
		return -1;
	if (report->mailbox != NULL ? buf_printf(d->report_head,
	    "Return-Path: <>\nDelivered-To: %s\n", msg->sender) < 0
	    : buf_printf(d->report_head, "X-Envelope-From: <>%s\n"
	    "X-Envelope-To: <%s>\n", bounce_is_global(&bi) ? " SMTPUTF8"
	    : "", msg->sender) < 0)
		return -1;
	if (buf_printf(d->report_head, "Received: by %s (pollsmtpd) id %s; "
	    "%s\n", conf->hostname, report->id, date) < 0)
		return -1;
	iov[0].iov_base = (void *)buf_data(d->report_head);
	iov[0].iov_len = buf_len(d->report_head);
	iov[1].iov_base = (void *)buf_data(d->report_text);
	iov[1].iov_len = buf_len(d->report_text);
	memset(copy, 0, sizeof(*copy));
	copy->mailbox = report->mailbox;
	copy->domain = report->mailbox != NULL ? NULL : report->domain;
	copy->iov = iov;
	copy->iovcnt = 2;
	copy->text_fd = -1;
	copy->id = report->id;
	return 0;
}

/*
 * deliver_outcome - log how storing msg (and its success report, when
 * report names one) ended (err: 0 or errno)
 */
static enum session_store_result
deliver_outcome(const char *id, const char *session_id,
    const struct session_message *msg, int err,
    const struct deliver_report *report)
{
	enum session_store_result result = SESSION_STORE_TEMPFAIL;

	if (err == 0) {
		deliver_log_ok(id, session_id, msg);
		if (report != NULL && report->id[0] != '\0') {
			log_info(id, "success report %s queued for <%s> "
			    "(%s %s)", report->id, msg->sender,
			    report->mailbox != NULL ? "Maildir of" : "domain",
			    report->mailbox != NULL ? report->mailbox
			    : report->domain);
			log_info(report->id, "from=<> to=<%s> success report "
			    "of %s, %zu recipient%s delivered", msg->sender, id,
			    report->nrcpts, report->nrcpts == 1 ? "" : "s");
		}
		return SESSION_STORE_OK;
	}
	if (err == ENOSPC || err == EDQUOT)
		result = SESSION_STORE_NOSPACE;
	errno = err;
	log_warn(id, "session=%s from=<%s> not stored (%s)", session_id,
	    msg->sender, result == SESSION_STORE_NOSPACE ? "disk full"
	    : "temporary failure");
	return result;
}

/* deliver_message - store msg under a new ID, all copies or none, now */
enum session_store_result
deliver_message(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, char *id, size_t idlen)
{
	struct deliver_report report;
	int err = 0;

	if (deliver_make_id(d, id, idlen) < 0)
		log_panic(__func__, "message ID does not fit %zu bytes", idlen);
	if (deliver_stage(d, session_id, msg, text_fd, NULL, id, &report) < 0)
		err = errno ? errno : EIO;
	else
		(void)maildir_batch_commit(d->batch, &err);
	return deliver_outcome(id, session_id, msg, err, &report);
}

int
deliver_submit(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, deliver_done_fn done,
    void *ctx)
{
	return deliver_enqueue(d, session_id, msg, text_fd, NULL, done, ctx);
}

int
deliver_submit_text(struct deliver *d, const char *session_id,
    const struct session_message *msg, const char *text,
    deliver_done_fn done, void *ctx)
{
	return deliver_enqueue(d, session_id, msg, -1, text, done, ctx);
}

/* deliver_enqueue - what deliver_submit() and deliver_submit_text() do */
static int
deliver_enqueue(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, const char *text,
    deliver_done_fn done, void *ctx)
{
	struct deliver_job *grown, *job;
	size_t cap;

	if (d->nqueue == d->queue_cap) {
		cap = d->queue_cap ? d->queue_cap * 2 : 32;
		if ((grown = realloc(d->queue, cap * sizeof(*grown))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		d->queue = grown;
		d->queue_cap = cap;
	}
	job = &d->queue[d->nqueue++];
	memset(job, 0, sizeof(*job));
	job->session_id = session_id;
	job->msg = msg;
	job->text_fd = text_fd;
	job->text = text;
	job->pass = d->pass;
	job->done = done;
	job->ctx = ctx;
	job->index = -1;
	return 0;
}

int
deliver_spool_open(struct deliver *d)
{
	return maildir_spool_open(d->md);
}

size_t
deliver_pending(const struct deliver *d)
{
	return d->nqueue;
}

/*
 * deliver_cancel - ctx goes away: its queued messages are dropped
 * (never written), and done is not called for it any more.
 */
void
deliver_cancel(struct deliver *d, void *ctx)
{
	size_t i, k = 0;

	for (i = 0; i < d->nqueue; i++)
		if (d->queue[i].ctx != ctx)
			d->queue[k++] = d->queue[i];
	d->nqueue = k;
	for (i = 0; i < d->nchunk; i++)
		if (d->chunk[i].ctx == ctx)
			d->chunk[i].done = NULL;
	for (i = 0; i < d->ndone; i++)
		if (d->done_calls[i].ctx == ctx)
			d->done_calls[i].done = NULL;
}

/*
 * deliver_commit_chunk - take messages of this pass from the head of
 * the queue, as many as one commit may hold, store them together, then
 * call their done callbacks. A message has at most one file per
 * recipient; a single message over max_files still goes alone.
 */
static void
deliver_commit_chunk(struct deliver *d, unsigned long pass)
{
	struct timespec t0, t1;
	struct deliver_job *job;
	size_t n = 0, files = 0, i;
	int debug = log_debug_enabled();

	if (debug)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n < d->nqueue && d->queue[n].pass == pass
	    && n < DELIVER_BATCH_MESSAGES) {
		size_t more = d->queue[n].msg->nrcpts
		    + (size_t)deliver_wants_report(d->queue[n].msg);

		if (n > 0 && files + more > d->max_files)
			break;
		files += more;
		n++;
	}
	memcpy(d->chunk, d->queue, n * sizeof(*d->chunk));
	memmove(d->queue, d->queue + n, (d->nqueue - n) * sizeof(*d->queue));
	d->nqueue -= n;
	d->nchunk = n;

	for (i = 0; i < n; i++) {
		job = &d->chunk[i];
		if (deliver_make_id(d, job->id, sizeof(job->id)) < 0)
			log_panic(__func__, "message ID does not fit");
		job->index = deliver_stage(d, job->session_id, job->msg,
		    job->text_fd, job->text, job->id, &job->report);
		if (job->index < 0)
			job->result = deliver_outcome(job->id, job->session_id,
			    job->msg, errno ? errno : EIO, &job->report);
	}
	if (maildir_batch_count(d->batch) > 0)
		(void)maildir_batch_commit(d->batch, d->errs);
	for (i = 0; i < n; i++) {
		job = &d->chunk[i];
		if (job->index >= 0)
			job->result = deliver_outcome(job->id, job->session_id,
			    job->msg, d->errs[job->index], &job->report);
	}
	if (debug) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_debug("-", "group commit: %zu messages, %zu recipients, "
		    "%ld us", n, files, (long)((t1.tv_sec - t0.tv_sec)
		    * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
	}

	/*
	 * The chunk is done: callbacks may now submit (to the queue) or
	 * cancel (a later call of this list), and nothing refers to the
	 * chunk any more.
	 */
	memcpy(d->done_calls, d->chunk, n * sizeof(*d->done_calls));
	d->ndone = n;
	d->nchunk = 0;
	for (i = 0; i < d->ndone; i++) {
		job = &d->done_calls[i];
		if (job->done != NULL)
			job->done(job->ctx, job->result, job->id);
	}
	d->ndone = 0;
}

/*
 * deliver_flush - store what was queued when it was called, in as many
 * commits as it takes, and return how many messages wait for the next
 * flush. A message submitted by a done callback (a client pipelining
 * message after message) waits for the next flush: one client cannot
 * hold the loop in a chain of commits while the others wait. A flush
 * asked for from within a callback does nothing.
 */
size_t
deliver_flush(struct deliver *d)
{
	unsigned long pass;

	if (d->flushing)
		return d->nqueue;
	d->flushing = 1;
	/* Jobs are queued in order of their pass: these come first. */
	pass = d->pass++;
	while (d->nqueue > 0 && d->queue[0].pass == pass)
		deliver_commit_chunk(d, pass);
	d->flushing = 0;
	return d->nqueue;
}

void
deliver_set_max_files(struct deliver *d, size_t max_files)
{
	d->max_files = max_files > 0 ? max_files : 1;
}
