/*
 * NAME
 *	bounce - delivery status notifications (RFC 3464)
 * SYNOPSIS
 *	#include "bounce.h"
 * DESCRIPTION
 *	bounce_format() appends to out the whole text of a bounce (LF line
 *	ends, as stored messages have them): From: MAILER-DAEMON@hostname,
 *	To: the sender, Auto-Submitted: auto-replied (RFC 3834), and a
 *	multipart/report; report-type=delivery-status body (RFC 3462,
 *	RFC 3464) of three parts: a text/plain notice for people, the
 *	message/delivery-status fields (Reporting-MTA, Arrival-Date, then
 *	per recipient Final-Recipient, Action: failed, Status, Remote-MTA
 *	when a remote server answered, Diagnostic-Code), and the original
 *	header section as text/rfc822-headers.
 *	DSN (RFC 3461): envid, when set, is the Original-Envelope-Id of the
 *	per-message fields; a recipient's orcpt, when set, its
 *	Original-Recipient ("type;address", decoded). message, when set
 *	(RET=FULL), makes the third part message/rfc822 with the whole
 *	message instead of its headers. relayed makes the report a success
 *	report (RFC 3464 "Action: relayed", for NOTIFY=SUCCESS when the next
 *	hop does not offer DSN) rather than a bounce: its own Subject and
 *	notice, every recipient "relayed". delivered makes it the success
 *	report of a local delivery (RFC 3461 6.2, RFC 3464 "Action:
 *	delivered", Status 2.0.0, for NOTIFY=SUCCESS), which the receiving
 *	daemon writes with the delivery itself: every recipient
 *	"delivered", and the headers only whatever message says (RFC 3461
 *	4.3: RET concerns reports of failure; one without failure SHOULD
 *	return the headers only).
 *	bounce_is_global() tells whether the report holds UTF-8 (the
 *	sender, a reported address, or the returned text: SMTPUTF8, RFC
 *	6531): bounce_format() then writes it internationalized (RFC 6533),
 *	and it must travel with SMTPUTF8.
 *	bounce_format_date() writes an RFC 5322 date (UTC, "+0000"),
 *	independent of the locale.
 * DIAGNOSTICS
 *	bounce_format() returns 0, or -1 with errno (EMSGSIZE when out is
 *	full, ENOMEM). bounce_format_date() returns 0, or -1 when dst is
 *	too small.
 */
#ifndef POLLSMTPD_BOUNCE_H
#define POLLSMTPD_BOUNCE_H

#include <stddef.h>
#include <time.h>

struct buf;

struct bounce_rcpt {
	const char *rcpt;		/* the address, without brackets */
	const char *status;		/* enhanced status, "5.1.1" */
	const char *diagnostic;		/* "smtp; 550 5.1.1 ...", or NULL */
	const char *remote_mta;		/* the server that said so, or NULL */
	const char *orcpt;		/* "rfc822;addr" (decoded), or NULL */
};

struct bounce_info {
	const char *hostname;		/* ours: Reporting-MTA, From: */
	const char *id;			/* the bounce's own message ID */
	const char *orig_id;		/* the failed letter's ID */
	const char *sender;		/* who gets the bounce */
	time_t arrival;			/* when the letter came */
	time_t now;
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	const char *headers;		/* the letter's header section */
	size_t headers_len;
	const char *envid;		/* ENVID (decoded), or NULL */
	const char *message;		/* RET=FULL: the whole text, or NULL */
	size_t message_len;
	int relayed;			/* a success report, not a bounce */
	int delivered;			/* a report of local delivery */
};

int bounce_format(const struct bounce_info *bi, struct buf *out);
int bounce_is_global(const struct bounce_info *bi);
int bounce_format_date(time_t t, char *dst, size_t dstlen);

#endif
