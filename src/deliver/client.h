/*
 * NAME
 *	client - the outbound SMTP engine: replies in, commands out
 * SYNOPSIS
 *	#include "client.h"
 * DESCRIPTION
 *	One client is the protocol state of one outbound SMTP connection,
 *	the mirror of session: it never sees a descriptor or the clock. The
 *	caller (the agent) feeds it the bytes the server sent, writes what
 *	client_output() holds, hands it letters one at a time and streams
 *	each letter's text through client_body(). So every behaviour of a
 *	remote server is a transcript in the tests.
 *
 *	client_new() makes a client that will greet with helo_name; policy
 *	is delivery.tls (CONF_TLS_*), and tls_available tells whether the
 *	caller can start TLS at all. client_free() releases it (NULL
 *	allowed).
 *	client_feed() takes bytes from the server: whole reply lines are
 *	parsed (multi-line replies "NNN-" ... "NNN "), each complete reply
 *	moves the dialog on and may add commands to the output.
 *	client_output() is the buffer of bytes to send; the caller writes
 *	from its front and consumes what it wrote (buf_consume()).
 *	client_want() tells what the engine waits for (enum client_want).
 *	client_letter() starts one letter when the engine wants one:
 *	MAIL, every RCPT and DATA, all in one go when the server offers
 *	PIPELINING, else one by one as replies come. A letter over the
 *	server's SIZE fails at once (552 5.3.4, nothing sent); BODY=8BITMIME
 *	is sent only when the server offers 8BITMIME.
 *	DSN (RFC 3461): when the server offers DSN, mail_dsn follows MAIL
 *	and each recipient's rcpt_dsn its RCPT; when it does not, they are
 *	left out (the caller then reports "relayed" itself).
 *	SMTPUTF8 (RFC 6531): asked for and offered, MAIL says SMTPUTF8; not
 *	offered, a recipient whose address is not ASCII fails at once with
 *	553 5.6.7 (every recipient when the sender's is not), and the
 *	others go without it.
 *	BODY=BINARYMIME (RFC 3030): when the server offers CHUNKING and
 *	BINARYMIME, MAIL says BODY=BINARYMIME, no DATA is sent, and each
 *	client_body() becomes one BDAT chunk of the bytes as they are (no
 *	dot-stuffing, no line end changed but the LF that ends the first
 *	line, the queue's own LF-ended Received:); client_body_end() sends
 *	BDAT 0 LAST, whose reply (or the first refused chunk's) is the
 *	result. Chunks are pipelined when PIPELINING is offered, else the
 *	engine wants a reply after each. When either is not offered the
 *	letter fails at once with 554 5.6.3 (nothing sent).
 *	client_body() appends text of the letter while the engine wants
 *	CLIENT_WANT_BODY: LF line ends become CRLF and a leading dot is
 *	doubled, whatever the chunking; client_body_end() ends it (a
 *	missing last line end is added) with the final dot.
 *	client_result() is the outcome of the letter that just ended (NULL
 *	while none has): one reply per recipient, in the order given. It
 *	stays until client_result_clear() or the next client_letter().
 *	client_quit() sends QUIT once the engine is idle.
 *	client_lost() says the connection is gone (end of file, a reset, a
 *	timeout: reason says which); recipients still waiting get 421 4.4.2
 *	with that reason, and the engine is closed.
 *	client_session_error() is why the connection is unusable before or
 *	between letters (a greeting or EHLO/HELO refused, TLS required and
 *	not available): code and text of the reply, "" when none.
 *	client_timeout() is the RFC 5321 section 4.5.3.2 limit, in seconds,
 *	for the reply now awaited (0 when none is awaited): 300 for the
 *	greeting, EHLO, MAIL, RCPT, RSET, QUIT; 120 for DATA; 180 while the
 *	text is sent; 600 for the final dot.
 *	client_server_name() is the name the server gave in its EHLO (or
 *	HELO) reply, for loop detection; client_has() tells whether an EHLO
 *	keyword was offered (CLIENT_EXT_*), client_size_limit() the SIZE
 *	offered (0: none).
 *
 *	STARTTLS: with policy "may" and TLS available, or "encrypt", the
 *	engine sends STARTTLS when it is offered and, on 220, wants
 *	CLIENT_WANT_TLS: the caller starts TLS on the connection (the one
 *	place where the TLS io plugs in) and calls client_tls_started(),
 *	which forgets what the server said and sends EHLO again. Bytes
 *	after the 220 (a reply that came with it) are thrown away unread,
 *	never taken as replies (RFC 3207 4.2). While TLS is wanted,
 *	client_timeout() is 300 s: the caller's limit for the handshake.
 *	With
 *	"encrypt" and no TLS (not offered, or not available here), the
 *	connection is unusable: 454/451 4.7.5 (client_session_error()).
 * DIAGNOSTICS
 *	client_new() returns NULL when out of memory. client_letter()
 *	returns 0, or -1 (EINVAL: not wanted now, or no recipient; ENOMEM).
 *	client_feed() returns 0, or -1 after a protocol error (a line over
 *	CLIENT_LINE_MAX, a reply that is no reply): the engine then closed
 *	itself as client_lost() would.
 * LIMITS
 *	CLIENT_LINE_MAX bytes a reply line; CLIENT_TEXT_MAX bytes of a
 *	reply's text are kept (the rest is cut, for logs and bounces).
 */
#ifndef POLLSMTPD_CLIENT_H
#define POLLSMTPD_CLIENT_H

#include <stddef.h>

#define CLIENT_LINE_MAX		2048
#define CLIENT_TEXT_MAX		512

#define CLIENT_EXT_PIPELINING	0x01
#define CLIENT_EXT_SIZE		0x02
#define CLIENT_EXT_8BITMIME	0x04
#define CLIENT_EXT_STARTTLS	0x08
#define CLIENT_EXT_ENHANCED	0x10
#define CLIENT_EXT_DSN		0x20
#define CLIENT_EXT_SMTPUTF8	0x40
#define CLIENT_EXT_CHUNKING	0x80
#define CLIENT_EXT_BINARYMIME	0x100

struct buf;
struct client;

enum client_want {
	CLIENT_WANT_REPLY,		/* waiting for the server */
	CLIENT_WANT_LETTER,		/* idle: a letter, or client_quit() */
	CLIENT_WANT_BODY,		/* the letter's text, then body_end */
	CLIENT_WANT_TLS,		/* start TLS, then tls_started */
	CLIENT_WANT_CLOSE,		/* done: close the connection */
};

struct client_letter {
	const char *sender;		/* "" for <> */
	const char *const *rcpts;	/* addresses without brackets */
	size_t nrcpts;
	size_t size;			/* bytes of text, for SIZE= */
	int eightbit;			/* BODY=8BITMIME was asked for */
	int smtputf8;			/* SMTPUTF8 was asked for */
	int binarymime;			/* BODY=BINARYMIME was asked for */
	const char *mail_dsn;		/* "RET=... ENVID=...", or NULL */
	const char *const *rcpt_dsn;	/* per recipient "NOTIFY=... ORCPT=..."
					   (NULL: none at all; "" or NULL
					   entries: none for that one) */
};

struct client_reply {
	int code;			/* 250, 451, ...; 0: none yet */
	char status[16];		/* enhanced status "5.1.1" */
	char text[CLIENT_TEXT_MAX];	/* the reply, lines joined by "; " */
};

struct client_result {
	size_t nrcpts;
	struct client_reply *rcpt;	/* one per recipient, in order */
};

struct client *client_new(const char *helo_name, int policy,
    int tls_available);
void client_free(struct client *c);
int client_feed(struct client *c, const char *data, size_t len);
struct buf *client_output(struct client *c);
enum client_want client_want(const struct client *c);
int client_letter(struct client *c, const struct client_letter *l);
int client_body(struct client *c, const char *data, size_t len);
int client_body_end(struct client *c);
const struct client_result *client_result(const struct client *c);
void client_result_clear(struct client *c);
void client_quit(struct client *c);
void client_lost(struct client *c, const char *reason);
void client_tls_started(struct client *c);
const struct client_reply *client_session_error(const struct client *c);
int client_timeout(const struct client *c);
const char *client_server_name(const struct client *c);
int client_has(const struct client *c, int ext);
unsigned long client_size_limit(const struct client *c);

#endif
