/*
 * NAME
 *	session - the SMTP protocol engine: bytes in, replies and actions out
 * SYNOPSIS
 *	#include "session.h"
 * DESCRIPTION
 *	One struct session is one SMTP conversation (RFC 5321 with
 *	PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, CHUNKING,
 *	BINARYMIME, DSN and LIMITS). It knows no file
 *	descriptor and no clock: the caller hands it the bytes the client
 *	sent, takes the reply bytes it produced, stores the messages it
 *	hands over, and tells it when a timer ran out.
 *
 *	States: START (greeting sent) -> GREETED (HELO/EHLO) -> MAIL -> RCPT
 *	-> DATA -> GREETED after the final dot, or RCPT -> BDAT (chunks
 *	taken) -> GREETED after the LAST chunk; QUIT closes from any state.
 *	A command out of sequence gets 503 5.5.1 and changes no state (a
 *	BDAT's octets are read first).
 *
 *	Recipients: a local part names a user, an alias (several
 *	session_rcpt, each mailbox and remote target once, one RCPT against
 *	max_recipients), the postmaster, or a user after the extension of
 *	local.recipient_delimiter is taken off, or else local.catchall.
 *
 *	session_new() starts a session for a client at client_addr (numeric
 *	text: "127.0.0.1" or "::1"); relay_allowed tells whether the client
 *	may send to non-local domains; id names the session in log records.
 *	The 220 greeting is queued as output at once.
 *
 *	Message text is not kept by the engine: it goes, as it arrives and
 *	in pieces of any size, to the caller's sink (dot-stuffing undone,
 *	CRLF as LF). sink->open() is called when DATA is accepted (-1 with
 *	errno: the client gets 451 4.3.0, or 452 4.3.1 for ENOSPC/EDQUOT,
 *	instead of 354); sink->write() gets the text in order (-1 with
 *	errno: nothing more is written, the rest is read and the client
 *	gets 451/452 at the final dot); sink->close() tells that the text
 *	is no longer needed: the message was refused, abandoned, or
 *	answered after storing. open and close come in pairs. BDAT chunks
 *	feed the same sink with the same bytes (CRLF as LF, no dot-stuffing
 *	to undo; BINARYMIME as received). With a NULL
 *	sink the text is checked and measured, and not kept.
 *	session_free() releases it (NULL allowed).
 *
 *	session_input_room() tells how many bytes session_input() takes now:
 *	0 while a message waits to be stored, while the session is closing,
 *	or while too much output waits to be sent. The caller reads at most
 *	that many bytes from the client.
 *	session_input() takes bytes from the client and runs every complete
 *	command they hold, queueing replies; it stops, keeping the rest of
 *	the bytes, when a message is ready to be stored.
 *
 *	Actions: what the caller must do besides sending the output, in the
 *	order the engine asked. session_action() is the oldest one not yet
 *	taken (SESSION_ACTION_NONE when there is none); the caller takes it
 *	in hand and says so with session_action_taken():
 *	  SESSION_ACTION_STORE: store session_pending() (its text is what
 *	    the sink holds), then give the result to session_stored()
 *	    (which answers this action whether it was taken or not);
 *	  SESSION_ACTION_STARTTLS: send what output is left (the 220),
 *	    then make the connection TLS and say when the handshake is
 *	    done with session_tls_started(); until then the session takes
 *	    no input (session_input_room() is 0), and whatever the
 *	    client sent after STARTTLS is already thrown away. A
 *	    handshake that fails ends the connection, without a reply;
 *	  SESSION_ACTION_CLOSE: send what output is left, then close.
 *	session_output() shows the reply bytes waiting to be sent;
 *	session_output_drop() tells that n of them were sent (which may let
 *	the engine go on with bytes it kept).
 *	session_pending() returns the message waiting to be stored, or NULL.
 *	session_summary() writes the counts of the commands run so far, as
 *	Postfix's disconnect record does: "ehlo=1 mail=1 rcpt=1/2 data=1
 *	quit=1 commands=5/6" (a kind is "N" when all N succeeded, "OK/N"
 *	when not).
 *	session_stored() gives the result of storing it: SESSION_STORE_OK
 *	with the message ID (250 2.0.0 Ok: queued as ID),
 *	SESSION_STORE_TEMPFAIL (451 4.3.0), SESSION_STORE_NOSPACE
 *	(452 4.3.1); then the engine goes on with the bytes it kept.
 *	session_closing() is true once the session has ended (QUIT, too many
 *	errors, timeout, shutdown): send the output, then close.
 *	session_in_data() is true while message text is being received,
 *	after DATA or inside a BDAT chunk (the caller applies data_timeout
 *	instead of command_timeout).
 *	session_lines() counts the command lines and message texts taken so
 *	far: command_timeout runs from the last time it grew, so a client
 *	that trickles a byte at a time without ending a line is still cut.
 *	session_timeout() queues 421 4.4.2 and closes; session_shutdown()
 *	queues 421 4.3.2 and closes (a pending message is not answered: the
 *	caller stores it or not, first).
 *
 *	TLS. The engine knows no TLS library: the caller does the
 *	handshake and hands over its outcome as text. session_tls_offer()
 *	says that STARTTLS may be offered (a certificate is loaded and the
 *	connection is plaintext). session_tls_started() says that the
 *	connection is in TLS now, with description (protocol and cipher,
 *	for Received: and the log): after STARTTLS the session starts
 *	over (RFC 3207: EHLO needed again, STARTTLS no longer offered);
 *	on an implicit TLS connection (RFC 8314) it is called once the
 *	handshake is done, before the greeting is sent. session_tls() is
 *	that description, or NULL.
 * DIAGNOSTICS
 *	session_new() returns NULL when out of memory. session_input()
 *	returns 0, or -1 when given more than session_input_room() allowed
 *	(nothing taken).
 *	session_summary() returns 0, or -1 when dst is too small.
 *	session_tls_started() returns 0, or -1 (out of memory, or not at
 *	the start nor after STARTTLS).
 * LIMITS
 *	Command lines 512 octets with CRLF (longer: 500 5.5.2, discarded up
 *	to the next LF); message text max_message_size octets as sent, CRLF
 *	counted as two (RFC 1870; longer: read to the end, then 552 5.3.4);
 *	max_recipients recipients (more: 452 4.5.3); SESSION_MAX_ERRORS
 *	errors (then 421 4.7.0 and close); past SESSION_JUNK_LIMIT NOOP,
 *	RSET, VRFY and ETRN commands each counts as an error.
 *	A refused DATA with more input already waiting: 554 5.5.0 and close
 *	(RFC 2920: the client did not wait; its text is never run).
 */
#ifndef POLLSMTPD_SESSION_H
#define POLLSMTPD_SESSION_H

#include <stddef.h>

struct conf;
struct session;

#define SESSION_LINE_MAX	512
#define SESSION_MAX_ERRORS	20
#define SESSION_JUNK_LIMIT	100
#define SESSION_ACTIONS_MAX	4
#define SESSION_SUMMARY_SIZE	256

enum session_store_result {
	SESSION_STORE_OK,
	SESSION_STORE_TEMPFAIL,
	SESSION_STORE_NOSPACE,
};

enum session_action {
	SESSION_ACTION_NONE,
	SESSION_ACTION_STORE,
	SESSION_ACTION_STARTTLS,
	SESSION_ACTION_CLOSE,
};

/* Where message text goes; every function gets the ctx given with it. */
struct session_sink {
	int (*open)(void *ctx);
	int (*write)(void *ctx, const char *text, size_t len);
	void (*close)(void *ctx);
};

/*
 * One destination of a message. A recipient the client gave is one
 * destination, or (an alias) several: each final mailbox once, each
 * remote target once; those carry the given address as original.
 */
struct session_rcpt {
	const char *address;	/* "local@domain": as given (route dropped),
				   the final one after an alias or the
				   catch-all, or "postmaster" */
	const char *original;	/* the address given, when an alias or the
				   catch-all led here; else NULL */
	const char *mailbox;	/* configured user for local mail, NULL for remote */
	const char *domain;	/* lower-cased domain, A-labels (the queue
				   directory); "" for <postmaster> */
	const char *params;	/* RCPT parameters as accepted (NOTIFY,
				   ORCPT), "" if none */
};

/* A message ready to be stored. Valid until session_stored(). */
struct session_message {
	const char *helo;		/* HELO/EHLO argument */
	int esmtp;			/* 1 after EHLO, 0 after HELO */
	const char *tls;		/* protocol and cipher, NULL without TLS */
	const char *client_addr;	/* as given to session_new() */
	const char *sender;		/* reverse-path without <>; "" for <> */
	const char *mail_params;	/* MAIL FROM parameters as accepted, "" if none */
	int smtputf8;			/* MAIL said SMTPUTF8: UTF-8 addresses and headers */
	const struct session_rcpt *rcpts;
	size_t nrcpts;
	size_t size;			/* bytes of text in the sink: LF line ends */
	unsigned long long octets;	/* as sent (RFC 1870: CRLF is two) */
};

struct session *session_new(const struct conf *conf, const char *client_addr,
    int relay_allowed, const char *id, const struct session_sink *sink,
    void *sink_ctx);
void session_free(struct session *s);

size_t session_input_room(const struct session *s);
int session_input(struct session *s, const char *data, size_t len);
const char *session_output(const struct session *s, size_t *len);
void session_output_drop(struct session *s, size_t n);
const struct session_message *session_pending(const struct session *s);
enum session_action session_action(const struct session *s);
void session_action_taken(struct session *s);
int session_summary(const struct session *s, char *dst, size_t dstlen);
void session_stored(struct session *s, enum session_store_result r,
    const char *id);
int session_closing(const struct session *s);
int session_in_data(const struct session *s);
unsigned long session_lines(const struct session *s);
void session_timeout(struct session *s);
void session_shutdown(struct session *s);
void session_tls_offer(struct session *s);
int session_tls_started(struct session *s, const char *description);
const char *session_tls(const struct session *s);

#endif
