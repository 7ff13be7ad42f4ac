/*
 * NAME
 *	bounce - delivery status notifications (RFC 3464)
 * SYNOPSIS
 *	See bounce.h.
 * DESCRIPTION
 *	The MIME boundary is made of the bounce's ID and the host name, so
 *	that it cannot occur in the text it separates (the original headers
 *	are the only text not ours, and a header line that begins with
 *	"--" and this ID would have to be made for it). Every value that
 *	came from elsewhere has been checked or cleaned: replies of remote
 *	servers by the client engine (printable ASCII only), addresses and
 *	headers by the session (printable ASCII, or good UTF-8 under
 *	SMTPUTF8).
 *	A report that holds UTF-8 is internationalized as RFC 6533 says:
 *	report-type=global-delivery-status, the notice in charset utf-8, a
 *	message/global-delivery-status part whose UTF-8 addresses have the
 *	utf-8 address type (written as they are, its "utf-8-address" form),
 *	and the returned text as message/global-headers or message/global
 *	(RFC 6532 3.7). A report all in ASCII stays as RFC 3464 has it, so
 *	that every reader understands it.
 * DIAGNOSTICS
 *	See bounce.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "buf.h"

static int bounce_has_8bit(const char *s, size_t len);

/* bounce_has_8bit - whether s[0 .. len - 1] holds a byte over 0x7f */
static int
bounce_has_8bit(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] > 0x7f)
			return 1;
	return 0;
}

int
bounce_is_global(const struct bounce_info *bi)
{
	const struct bounce_rcpt *r;
	size_t i;

	if (bounce_has_8bit(bi->sender, strlen(bi->sender)))
		return 1;
	for (i = 0; i < bi->nrcpts; i++) {
		r = &bi->rcpts[i];
		if (bounce_has_8bit(r->rcpt, strlen(r->rcpt))
		    || (r->orcpt != NULL
		    && bounce_has_8bit(r->orcpt, strlen(r->orcpt))))
			return 1;
	}
	/* What goes back: the whole text, or the headers (always when delivered). */
	if (bi->message != NULL && !bi->delivered)
		return bounce_has_8bit(bi->message, bi->message_len);
	return bounce_has_8bit(bi->headers, bi->headers_len);
}

int
bounce_format_date(time_t t, char *dst, size_t dstlen)
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
	n = snprintf(dst, dstlen, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return n < 0 || (size_t)n >= dstlen ? -1 : 0;
}

int
bounce_format(const struct bounce_info *bi, struct buf *out)
{
	char now[64], arrival[64], boundary[160];
	const struct bounce_rcpt *r;
	const char *part, *action, *message = bi->message;
	size_t i, message_len = bi->message_len;
	int n, rc = 0, global = bounce_is_global(bi);
	/* UTF-8 is 8-bit text: the whole and every part say so. */
	const char *cte = global ? "Content-Transfer-Encoding: 8bit\n" : "";

	/*
	 * RFC 3461 4.3: RET chooses what a report of failure returns; one
	 * without failure returns the headers only. The agent's "relayed"
	 * report honours RET=FULL as it always did (its caller's choice).
	 */
	if (bi->delivered) {
		message = NULL;
		message_len = 0;
	}
	action = bi->delivered ? "delivered" : bi->relayed ? "relayed"
	    : "failed";

	if (bounce_format_date(bi->now, now, sizeof(now)) < 0
	    || bounce_format_date(bi->arrival, arrival, sizeof(arrival)) < 0) {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(boundary, sizeof(boundary), "%s/%s", bi->id,
	    bi->hostname);
	if (n < 0 || (size_t)n >= sizeof(boundary)) {
		errno = EMSGSIZE;
		return -1;
	}
	rc |= buf_printf(out,
	    "From: MAILER-DAEMON@%s (Mail Delivery System)\n"
	    "To: <%s>\n"
	    "Subject: %s\n"
	    "Date: %s\n"
	    "Message-ID: <%s@%s>\n"
	    "Auto-Submitted: auto-replied\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=%sdelivery-status;\n"
	    "\tboundary=\"%s\"\n"
	    "%s"
	    "\n"
	    "This is a MIME-encapsulated message.\n"
	    "\n"
	    "--%s\n"
	    "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=%s\n"
	    "%s"
	    "\n"
	    "This is the mail system at host %s.\n"
	    "\n",
	    bi->hostname, bi->sender, bi->relayed || bi->delivered
	    ? "Successful Mail Delivery Report"
	    : "Undelivered Mail Returned to Sender", now, bi->id, bi->hostname,
	    global ? "global-" : "", boundary, cte, boundary,
	    global ? "utf-8" : "us-ascii", cte, bi->hostname);
	if (bi->delivered)
		rc |= buf_printf(out,
		    "Your message (queue ID %s) was delivered to the mailboxes\n"
		    "of the recipients below, as you asked to be told. Its headers\n"
		    "are attached below.\n"
		    "\n", bi->orig_id);
	else if (bi->relayed)
		rc |= buf_printf(out,
		    "Your message (queue ID %s) was relayed to the recipients\n"
		    "below. Their next mail server does not offer delivery\n"
		    "status notifications, so this is the last notice you get\n"
		    "of a successful delivery. It is attached below (%s).\n"
		    "\n", bi->orig_id, message != NULL
		    ? "the whole message" : "its headers only");
	else
		rc |= buf_printf(out,
		    "I'm sorry to have to inform you that your message (queue ID %s)\n"
		    "could not be delivered to one or more recipients. It is attached\n"
		    "below (%s).\n"
		    "\n", bi->orig_id, message != NULL
		    ? "the whole message" : "its headers only");
	for (i = 0; i < bi->nrcpts; i++) {
		r = &bi->rcpts[i];
		rc |= buf_printf(out, "<%s>: %s\n", r->rcpt,
		    r->diagnostic != NULL ? r->diagnostic : bi->delivered
		    ? "delivered to mailbox" : r->status);
	}
	rc |= buf_printf(out,
	    "\n"
	    "--%s\n"
	    "Content-Description: Delivery report\n"
	    "Content-Type: message/%sdelivery-status\n"
	    "%s"
	    "\n",
	    boundary, global ? "global-" : "", cte);
	/* RFC 3464 2.2: Original-Envelope-Id first, then Reporting-MTA. */
	if (bi->envid != NULL)
		rc |= buf_printf(out, "Original-Envelope-Id: %s\n", bi->envid);
	rc |= buf_printf(out,
	    "Reporting-MTA: dns; %s\n"
	    "X-Pollsmtpd-Queue-ID: %s\n"
	    "Arrival-Date: %s\n",
	    bi->hostname, bi->orig_id, arrival);
	for (i = 0; i < bi->nrcpts; i++) {
		r = &bi->rcpts[i];
		rc |= buf_printf(out, "\n");
		/* RFC 3464 2.3: Original-Recipient before Final-Recipient. */
		if (r->orcpt != NULL)
			rc |= buf_printf(out, "Original-Recipient: %s\n",
			    r->orcpt);
		/* RFC 6533 3: a UTF-8 address has the utf-8 type. */
		rc |= buf_printf(out,
		    "Final-Recipient: %s; %s\n"
		    "Action: %s\n"
		    "Status: %s\n",
		    bounce_has_8bit(r->rcpt, strlen(r->rcpt)) ? "utf-8"
		    : "rfc822", r->rcpt, action, r->status);
		if (r->remote_mta != NULL)
			rc |= buf_printf(out, "Remote-MTA: dns; %s\n",
			    r->remote_mta);
		if (r->diagnostic != NULL)
			rc |= buf_printf(out, "Diagnostic-Code: %s\n",
			    r->diagnostic);
		rc |= buf_printf(out, "Last-Attempt-Date: %s\n", now);
	}
	if (message != NULL)
		part = bi->relayed ? "Relayed Message" : "Undelivered Message";
	else
		part = bi->delivered ? "Delivered Message Headers"
		    : bi->relayed ? "Relayed Message Headers"
		    : "Undelivered Message Headers";
	rc |= buf_printf(out,
	    "\n"
	    "--%s\n"
	    "Content-Description: %s\n"
	    "Content-Type: %s\n"
	    "%s"
	    "\n",
	    boundary, part, message != NULL ? (global ? "message/global"
	    : "message/rfc822") : global ? "message/global-headers"
	    : "text/rfc822-headers", cte);
	if (message != NULL) {
		/* RET=FULL (RFC 3461 4.3): the message as it came. */
		if (message_len > 0)
			rc |= buf_append(out, message, message_len);
		if (message_len > 0 && message[message_len - 1] != '\n')
			rc |= buf_append(out, "\n", 1);
	} else {
		if (bi->headers_len > 0)
			rc |= buf_append(out, bi->headers, bi->headers_len);
		if (bi->headers_len > 0
		    && bi->headers[bi->headers_len - 1] != '\n')
			rc |= buf_append(out, "\n", 1);
	}
	rc |= buf_printf(out, "\n--%s--\n", boundary);
	return rc != 0 ? -1 : 0;
}
