/*
 * NAME
 *	session - the SMTP protocol engine: bytes in, replies and actions out
 * SYNOPSIS
 *	See session.h.
 * DESCRIPTION
 *	The engine reads from one bounded input buffer and writes to one
 *	bounded output buffer; it knows no descriptor and no clock.
 *
 *	Commands. A command line ends in CRLF and is at most SESSION_LINE_MAX
 *	octets with it. The line is checked before anything else looks at
 *	it: a bare LF, a bare CR, a NUL or an 8-bit byte makes it a 500 5.5.2
 *	and it is never run. MAIL and RCPT may hold UTF-8 (SMTPUTF8, RFC
 *	6531): good UTF-8 goes on to the command, which refuses a UTF-8
 *	address with 553 5.6.7 unless MAIL said SMTPUTF8; bytes that are
 *	not UTF-8 get 501 5.5.2 after SMTPUTF8, and 553 5.6.7 (inside the
 *	path) or 500 5.5.2 without it.
 *	An over-long line gets one 500 5.5.2 and the
 *	rest of it, up to the next LF, is thrown away unread. A good line
 *	is looked up in the command table {verb, states it is allowed in,
 *	handler}; out of sequence is 503 5.5.1 and changes no state. An
 *	HTTP request line (GET, POST, CONNECT, ...) gets 421 4.7.0 and ends
 *	the session at once, so that SMTP commands smuggled in the body of a
 *	cross-protocol request are never run.
 *
 *	Message text. The text after 354 is parsed as a stream by a small
 *	state machine (text_feed()), so a message may come in pieces of any
 *	size; what it holds goes straight on to the caller's sink (a spool
 *	file), so memory does not grow with the message. Only CRLF "." CRLF
 *	ends it. A CR not followed by LF, or an LF not preceded by CR, or a
 *	NUL, anywhere in the text marks the message as bad: it is read to
 *	the real end and refused with 550, so "<LF>.<LF>", "<LF>.<CR><LF>",
 *	"<CR>.<CR>" and the like can never end a message or split it in two
 *	(SMTP smuggling). Text over max_message_size octets as sent (RFC
 *	1870: CRLF counts two, the stuffed dots and the final dot none) is
 *	read to the end and refused with 552 5.3.4. Once a message is
 *	refused its text is let go at once, and a failed write is answered
 *	at the final dot (451 4.3.0, 452 4.3.1 when the disk is full).
 *	Dot-stuffing is undone and CRLF is stored as LF; lines longer than
 *	1000 octets are kept as they are.
 *
 *	BDAT (RFC 3030). Once a BDAT's size is read, exactly that many
 *	octets are taken from the input as the chunk (chunk_feed()), in any
 *	state, and the BDAT is answered after them: 503 when it came out of
 *	sequence, so a refused BDAT's octets are never run as commands. A
 *	chunk feeds the sink as DATA text does, with one byte of state for a
 *	CR that ends a chunk; a chunk that fails ends the transaction.
 *
 *	SMTPUTF8 (RFC 6531). A MAIL line that names SMTPUTF8, and the RCPT
 *	lines of its transaction, may hold UTF-8; every other 8-bit byte in
 *	a command is refused before the command runs. Such a message's
 *	header section is checked as UTF-8 as it streams (text_check_utf8()).
 *
 *	Actions. Storing a message, starting TLS and closing are actions
 *	the caller takes from a small queue, in the order they were asked
 *	for (session_action()).
 *
 *	STARTTLS (RFC 3207). Offered in the EHLO reply only when the
 *	caller said TLS can be had (session_tls_offer()) and the session
 *	is not in TLS yet. Taken after HELO/EHLO outside a transaction
 *	(as OpenSMTPD does: a client learns of it from EHLO, and a
 *	transaction half-made in plaintext is not carried into TLS); with
 *	an argument 501 5.5.4, in TLS already 503 5.5.1, not offered 502
 *	5.5.1. After "220 2.0.0 Ready to start TLS" nothing more is read
 *	until the caller says the handshake is done, and every byte the
 *	client sent after the command is thrown away unrun: plaintext
 *	pipelined behind STARTTLS would otherwise run as if it came
 *	through TLS (CVE-2011-0411). Then the session starts over, as
 *	RFC 3207 4.2 asks: no HELO/EHLO, no transaction, no greeting (the
 *	client sends EHLO again).
 *
 *	Pipelining. Replies are queued in order; processing stops while a
 *	message waits to be stored (session_pending()), and while more than
 *	SESSION_OUTPUT_HIGH reply bytes wait to be sent, and goes on with the
 *	kept bytes after session_stored() or session_output_drop().
 *
 *	Pipelining after a refused DATA (RFC 2920: DATA must end a batch):
 *	554 5.5.0 and close, so that message text is never run as commands.
 *
 *	Errors. Every 4xx/5xx reply counts against SESSION_MAX_ERRORS, with
 *	two exceptions: the 452 4.5.3 of a recipient over max_recipients
 *	(RFC 5321 4.5.3.1.10 lets a client send the rest in a later
 *	transaction; counting them would kill a client that pipelines many
 *	recipients) and the result of storing a message (a server problem,
 *	not the client's). Past SESSION_JUNK_LIMIT, each NOOP, RSET, VRFY
 *	or ETRN counts as one too (Postfix's
 *	smtpd_junk_command_limit), so a client cannot hold its slot for
 *	ever. At the limit: 421 4.7.0 and close.
 *
 *	Logging. A 4xx/5xx reply is logged as Postfix's reject lines are:
 *	the command, the client's address, the reply, the sender and HELO
 *	name; session_summary() gives the disconnect record its counts.
 *
 *	Recipients. A path is parsed by addr_parse_path() and never becomes
 *	a file name here: a local recipient is looked up in the configured
 *	user list; a remote domain is accepted only from a relay client and
 *	only when addr_domain_is_safe() passes it (address literals are never
 *	relayed). Duplicates are answered 250 and kept once: local ones by
 *	mailbox (one copy per Maildir), remote ones by address.
 * DIAGNOSTICS
 *	session_new() returns NULL when out of memory; session_input()
 *	returns -1 when given more than session_input_room() allowed. When
 *	memory runs out mid-session the client gets a 4xx reply (452 4.3.1,
 *	or 421 and close when even the input cannot be kept).
 * LIMITS
 *	Input buffer SESSION_INPUT_MAX, output SESSION_OUTPUT_MAX octets;
 *	HELO/EHLO argument SESSION_HELO_MAX octets; see session.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "buf.h"
#include "conf.h"
#include "log.h"
#include "session.h"

#define SESSION_INPUT_MAX	(64 * 1024)
#define SESSION_OUTPUT_MAX	(64 * 1024)
#define SESSION_OUTPUT_HIGH	(32 * 1024)
#define SESSION_HELO_MAX	255
#define SESSION_REPLY_MAX	1024

enum state {
	STATE_START,		/* greeting sent, no HELO/EHLO yet */
	STATE_GREETED,		/* HELO/EHLO done, no transaction */
	STATE_MAIL,		/* sender accepted */
	STATE_RCPT,		/* at least one recipient accepted */
	STATE_DATA,		/* receiving message text */
	STATE_BDAT,		/* BDAT chunks taken, the LAST one not yet */
	STATE_STORING,		/* message complete, waiting for session_stored() */
	STATE_STARTTLS,		/* 220 to STARTTLS sent, handshake to come */
	STATE_CLOSED,		/* last reply queued; nothing more is read */
};

static const char *const state_names[] = {
	[STATE_START] = "START",
	[STATE_GREETED] = "GREETED",
	[STATE_MAIL] = "MAIL",
	[STATE_RCPT] = "RCPT",
	[STATE_DATA] = "DATA",
	[STATE_BDAT] = "BDAT",
	[STATE_STORING] = "STORING",
	[STATE_STARTTLS] = "STARTTLS",
	[STATE_CLOSED] = "CLOSED",
};

#define IN(st)		(1u << (st))
#define ANY_STATE	(IN(STATE_START) | IN(STATE_GREETED) | IN(STATE_MAIL) | \
			 IN(STATE_RCPT) | IN(STATE_BDAT))

/* Where the text parser stands; see text_feed(). */
enum text_state {
	TEXT_LINE_START,	/* after CRLF, or right after the 354 */
	TEXT_DOT,		/* "." at the start of a line */
	TEXT_DOT_CR,		/* "." CR at the start of a line */
	TEXT_MIDDLE,		/* inside a line */
	TEXT_CR,		/* CR inside a line: LF must follow */
};

/* Commands counted in the disconnect record, in the order it names them. */
enum tally_index {
	TALLY_HELO, TALLY_EHLO, TALLY_STARTTLS, TALLY_MAIL, TALLY_RCPT,
	TALLY_DATA, TALLY_BDAT, TALLY_RSET, TALLY_NOOP, TALLY_VRFY,
	TALLY_HELP, TALLY_QUIT, TALLY_OTHER, TALLY_UNKNOWN, TALLY_COUNT
};

static const char *const tally_names[TALLY_COUNT] = {
	"helo", "ehlo", "starttls", "mail", "rcpt", "data", "bdat", "rset",
	"noop", "vrfy", "help", "quit", "other", "unknown",
};

struct rcpt {
	char *address;
	char *domain;
	char *original;		/* see struct session_rcpt */
	char *params;		/* RCPT parameters as accepted */
	const char *mailbox;	/* points into the configuration; NULL: remote */
};

/* A destination a RCPT leads to, before it is kept. */
struct rcpt_dest {
	char address[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	const char *domain;
	const char *mailbox;
	const char *original;
	const char *params;	/* NOTIFY, ORCPT; "" if none */
	char own_params[SESSION_LINE_MAX + ADDR_PATH_MAX * 3 + 16];
};

struct session {
	const struct conf *conf;
	char *id;
	char *client_addr;
	int relay_allowed;
	enum state state;
	struct buf *in;
	struct buf *out;
	int discarding;		/* dropping the rest of an over-long line */
	unsigned errors;
	unsigned long lines;	/* command lines and message texts taken */
	const char *command;	/* the line being run, for reject records */

	char *helo;
	int esmtp;
	int tls_offer;		/* STARTTLS may be offered */
	char *tls;		/* protocol and cipher once in TLS, else NULL */

	/* The transaction. */
	char *sender;
	char *mail_params;
	int smtputf8;		/* MAIL said SMTPUTF8 (RFC 6531) */
	int binarymime;		/* MAIL said BODY=BINARYMIME (RFC 3030) */
	struct rcpt *rcpts;
	size_t nrcpts;
	size_t rcpts_alloc;
	size_t naccepted;	/* RCPT commands accepted (max_recipients) */

	/* The message text: measured and checked here, kept by the sink. */
	const struct session_sink *sink;
	void *sink_ctx;
	int text_open;		/* sink->open() done, sink->close() due */
	enum text_state text_state;
	int text_bare;		/* a bare CR or LF was seen */
	int text_nul;		/* a NUL was seen */
	int text_too_big;
	int text_err;		/* errno of a failed sink->write(), or 0 */
	int text_bad_utf8;	/* SMTPUTF8: a header is not UTF-8 */
	int hdr_done;		/* the header section has ended */
	size_t hdr_line;	/* octets of the header line so far, CR aside */
	unsigned u8_need;	/* UTF-8 continuation bytes still due */
	unsigned char u8_lo, u8_hi;	/* the range of the next one */
	size_t text_size;	/* bytes given to the sink */
	unsigned long long text_octets;	/* as sent, RFC 1870 */

	/* BDAT (RFC 3030): the chunk being read, counted in octets. */
	unsigned long long chunk_left;	/* octets of it still to come */
	int chunk_last;		/* it is the LAST one */
	int chunk_discard;	/* its octets are read and dropped ... */
	const char *chunk_refusal;	/* ... and then this is the reply */
	int chunk_counted;	/* whether that reply counts as an error */
	int chunk_cr;		/* the last octet kept was a CR */
	int via_bdat;		/* the pending message came by BDAT */
	char chunk_command[64];	/* "BDAT n LAST", for reject records */

	/* What the caller must do, oldest first; see session_action(). */
	enum session_action actions[SESSION_ACTIONS_MAX];
	size_t nactions;

	/* For the disconnect record: commands run and how they ended. */
	int verb;		/* tally index of the command being run, or -1 */
	int last_code;		/* the last reply's code */
	unsigned junk;		/* NOOP, RSET, VRFY, ETRN so far */
	int data_refused;	/* the last command was a refused DATA */
	struct tally {
		unsigned ok;
		unsigned total;
	} tally[TALLY_COUNT];

	/* What session_pending() shows. */
	struct session_message message;
	struct session_rcpt *message_rcpts;
};

struct command {
	const char *verb;
	unsigned allowed;	/* IN() bits of the states it may run in */
	void (*handler)(struct session *, char *);
	int tally;		/* where the disconnect record counts it */
	int junk;		/* counts against SESSION_JUNK_LIMIT */
};

static void state_enter(struct session *, enum state);
static void reply(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_uncounted(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_add(struct session *, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));
static void session_run(struct session *);
static int command_feed(struct session *);
static void command_run(struct session *, char *, size_t);
static const char *sequence_hint(const struct session *, const char *);
static size_t text_feed(struct session *, const char *, size_t);
static void text_append(struct session *, const char *, size_t, size_t);
static void text_close(struct session *);
static void text_end(struct session *);
static void action_push(struct session *, enum session_action);
static void tally_count(struct session *, int, int);
static void transaction_reset(struct session *);
static int text_as_command(struct session *);
static void close_with(struct session *, const char *, const char *);
static const char *hostname(const struct session *);
static int helo_valid(const char *);
static int path_is_8bit(const char *, size_t);
static int utf8_context(const struct session *, const char *);
static int utf8_command_ok(const struct session *, const char *, size_t);
static void text_check_utf8(struct session *, const char *, size_t);
static int text_refused(const struct session *);
static void text_begin(struct session *);
static void text_refuse(struct session *, int);
static void text_hand_over(struct session *, int);
static size_t chunk_feed(struct session *, const char *, size_t);
static void chunk_done(struct session *);
static void cmd_bdat(struct session *, char *);
static int helo_accept(struct session *, char *, int);
static const struct rcpt *rcpt_find(const struct session *, const char *,
    const char *);
static int rcpt_add(struct session *, const struct rcpt_dest *);
static void rcpt_accept(struct session *, const char *,
    const struct rcpt_dest *, size_t);
static void rcpt_forget(struct session *, size_t);
static void rcpt_local(struct session *, const struct addr *, const char *,
    const char *);
static int rcpt_params_parse(struct session *, char *, char *, size_t);
static int rcpt_orcpt_ok(const struct session *, const char *);
static int rcpt_notify_ok(char *);
static int rcpt_alias_params(const char *, const char *, char *, size_t);
static char *skip_spaces(char *);
static int mail_params_parse(struct session *, char *, char *, size_t);
static void cmd_ehlo(struct session *, char *);
static void cmd_helo(struct session *, char *);
static void cmd_mail(struct session *, char *);
static void cmd_rcpt(struct session *, char *);
static void cmd_data(struct session *, char *);
static void cmd_rset(struct session *, char *);
static void cmd_noop(struct session *, char *);
static void cmd_help(struct session *, char *);
static void cmd_vrfy(struct session *, char *);
static void cmd_quit(struct session *, char *);
static void cmd_starttls(struct session *, char *);
static void cmd_not_implemented(struct session *, char *);
static void cmd_http(struct session *, char *);

static const struct command commands[] = {
	{ "EHLO", ANY_STATE, cmd_ehlo, TALLY_EHLO, 0 },
	{ "HELO", ANY_STATE, cmd_helo, TALLY_HELO, 0 },
	{ "MAIL", IN(STATE_GREETED), cmd_mail, TALLY_MAIL, 0 },
	{ "RCPT", IN(STATE_MAIL) | IN(STATE_RCPT), cmd_rcpt, TALLY_RCPT, 0 },
	{ "DATA", IN(STATE_RCPT), cmd_data, TALLY_DATA, 0 },
	{ "RSET", ANY_STATE, cmd_rset, TALLY_RSET, 1 },
	{ "NOOP", ANY_STATE, cmd_noop, TALLY_NOOP, 1 },
	{ "HELP", ANY_STATE, cmd_help, TALLY_HELP, 0 },
	{ "VRFY", ANY_STATE, cmd_vrfy, TALLY_VRFY, 1 },
	{ "QUIT", ANY_STATE, cmd_quit, TALLY_QUIT, 0 },
	/* Known, and refused as such rather than as unknown. */
	{ "EXPN", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	{ "TURN", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	{ "ETRN", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 1 },
	{ "ATRN", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	{ "STARTTLS", ANY_STATE, cmd_starttls, TALLY_STARTTLS, 0 },
	{ "AUTH", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	/* Any state: a BDAT's octets are read even when it is refused. */
	{ "BDAT", ANY_STATE, cmd_bdat, TALLY_BDAT, 0 },
	{ "SEND", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	{ "SOML", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	{ "SAML", ANY_STATE, cmd_not_implemented, TALLY_OTHER, 0 },
	/* A browser or proxy talking HTTP to port 25 is sent away at once. */
	{ "GET", ANY_STATE, cmd_http, TALLY_OTHER, 0 },
	{ "POST", ANY_STATE, cmd_http, TALLY_OTHER, 0 },
	{ "HEAD", ANY_STATE, cmd_http, TALLY_OTHER, 0 },
	{ "PUT", ANY_STATE, cmd_http, TALLY_OTHER, 0 },
	{ "CONNECT", ANY_STATE, cmd_http, TALLY_OTHER, 0 },
	{ "OPTIONS", ANY_STATE, cmd_http, TALLY_OTHER, 0 },
};

static const char *
hostname(const struct session *s)
{
	const char *h = s->conf->hostname;

	return h != NULL && *h != '\0' ? h : "localhost";
}

struct session *
session_new(const struct conf *conf, const char *client_addr,
    int relay_allowed, const char *id, const struct session_sink *sink,
    void *sink_ctx)
{
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->conf = conf;
	s->relay_allowed = relay_allowed;
	s->state = STATE_START;
	s->sink = sink;
	s->sink_ctx = sink_ctx;
	s->verb = -1;
	if ((s->id = strdup(id != NULL ? id : "-")) == NULL ||
	    (s->client_addr = strdup(client_addr != NULL ? client_addr : ""))
	    == NULL ||
	    (s->in = buf_new(SESSION_INPUT_MAX)) == NULL ||
	    (s->out = buf_new(SESSION_OUTPUT_MAX)) == NULL)
		goto fail;
	reply_uncounted(s, "220 %s ESMTP pollsmtpd", hostname(s));
	if (s->state == STATE_CLOSED)
		goto fail;
	log_debug(s->id, "session for %s, relay %s", s->client_addr,
	    relay_allowed ? "allowed" : "denied");
	return s;

fail:
	session_free(s);
	return NULL;
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	transaction_reset(s);
	free(s->helo);
	free(s->tls);
	buf_free(s->out);
	buf_free(s->in);
	free(s->client_addr);
	free(s->id);
	free(s);
}

/* state_enter - the one place where the state changes */
static void
state_enter(struct session *s, enum state st)
{
	if (s->state != st)
		log_debug(s->id, "state %s -> %s", state_names[s->state],
		    state_names[st]);
	s->state = st;
	if (st == STATE_CLOSED) {
		/* Nothing after QUIT (or a 421) is ever run. */
		buf_reset(s->in);
		s->discarding = 0;
		s->chunk_left = 0;
		transaction_reset(s);
		action_push(s, SESSION_ACTION_CLOSE);
	} else if (st == STATE_STARTTLS) {
		/* CVE-2011-0411: what came after STARTTLS is never run. */
		if (buf_len(s->in) > 0 || s->discarding)
			log_info(s->id, "STARTTLS: %zu bytes sent after it "
			    "before TLS thrown away", buf_len(s->in));
		buf_reset(s->in);
		s->discarding = 0;
		action_push(s, SESSION_ACTION_STARTTLS);
	}
}

/*
 * action_push - ask the caller to do something, after what it was
 * asked before. The engine asks for at most one store at a time (it
 * takes no input meanwhile) and for one close, so the queue is small.
 */
static void
action_push(struct session *s, enum session_action a)
{
	if (s->nactions == SESSION_ACTIONS_MAX)
		log_panic(__func__, "more than %d actions", SESSION_ACTIONS_MAX);
	s->actions[s->nactions++] = a;
}

enum session_action
session_action(const struct session *s)
{
	return s->nactions > 0 ? s->actions[0] : SESSION_ACTION_NONE;
}

void
session_action_taken(struct session *s)
{
	if (s->nactions == 0)
		return;
	memmove(s->actions, s->actions + 1,
	    (s->nactions - 1) * sizeof(s->actions[0]));
	s->nactions--;
}

/* tally_count - one more command of kind k, ok or not */
static void
tally_count(struct session *s, int k, int ok)
{
	if (k < 0 || k >= TALLY_COUNT)
		return;
	s->tally[k].total++;
	if (ok)
		s->tally[k].ok++;
}

/*
 * session_summary - what Postfix's "disconnect from" record says: each
 * command kind used, "name=N" when all N succeeded, "name=OK/N"
 * otherwise, then the totals.
 */
int
session_summary(const struct session *s, char *dst, size_t dstlen)
{
	unsigned ok = 0, total = 0;
	size_t o = 0;
	int k, n;

	if (dstlen == 0)
		return -1;
	dst[0] = '\0';
	for (k = 0; k <= TALLY_COUNT; k++) {
		const char *name = k < TALLY_COUNT ? tally_names[k] : "commands";
		unsigned kok = k < TALLY_COUNT ? s->tally[k].ok : ok;
		unsigned ktotal = k < TALLY_COUNT ? s->tally[k].total : total;

		if (k < TALLY_COUNT) {
			if (ktotal == 0)
				continue;
			ok += kok;
			total += ktotal;
		}
		if (kok == ktotal)
			n = snprintf(dst + o, dstlen - o, "%s%s=%u",
			    o > 0 ? " " : "", name, ktotal);
		else
			n = snprintf(dst + o, dstlen - o, "%s%s=%u/%u",
			    o > 0 ? " " : "", name, kok, ktotal);
		if (n < 0 || (size_t)n >= dstlen - o)
			return -1;
		o += (size_t)n;
	}
	return 0;
}

/*
 * reply_add - queue one reply (lines separated by CRLF, the final CRLF
 * added here). counted: whether a 4xx/5xx counts as a client error.
 * A reply that cannot be queued closes the session: the client would
 * otherwise wait for it forever.
 */
static void
reply_add(struct session *s, int counted, const char *fmt, va_list ap)
{
	char line[SESSION_REPLY_MAX];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		log_warnx(s->id, "reply too long, replaced");
		n = snprintf(line, sizeof(line), "451 4.3.0 Error: internal error");
		if (n < 0 || (size_t)n >= sizeof(line))
			log_panic(__func__, "snprintf of a constant failed");
	}
	if (buf_append(s->out, line, (size_t)n) < 0 ||
	    buf_append(s->out, "\r\n", 2) < 0) {
		log_warn(s->id, "cannot queue reply");
		state_enter(s, STATE_CLOSED);
		return;
	}
	log_debug(s->id, "< %s", line);
	s->last_code = line[0] - '0';
	if (line[0] == '4' || line[0] == '5') {
		/*
		 * As Postfix's reject lines: who (address, HELO name), the
		 * transaction's sender, then what was refused and why.
		 */
		log_info(s->id, "reject: %s%s%s from [%s]: %s; from=<%s> "
		    "helo=<%s>", s->command != NULL ? "\"" : "",
		    s->command != NULL ? s->command : s->state == STATE_DATA
		    || s->state == STATE_STORING ? "end of data" : "connection",
		    s->command != NULL ? "\"" : "", s->client_addr, line,
		    s->sender != NULL ? s->sender : "",
		    s->helo != NULL ? s->helo : "");
		if (counted)
			s->errors++;
	}
}

static void
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_add(s, 1, fmt, ap);
	va_end(ap);
}

static void
reply_uncounted(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_add(s, 0, fmt, ap);
	va_end(ap);
}

/* close_with - queue a final 421 and stop reading */
static void
close_with(struct session *s, const char *code, const char *why)
{
	if (s->state == STATE_CLOSED)
		return;
	reply_uncounted(s, "421 %s %s %s", code, hostname(s), why);
	log_info(s->id, "closing: %s", why);
	state_enter(s, STATE_CLOSED);
}

size_t
session_input_room(const struct session *s)
{
	if (s->state == STATE_STORING || s->state == STATE_CLOSED ||
	    s->state == STATE_STARTTLS ||
	    buf_len(s->out) >= SESSION_OUTPUT_HIGH)
		return 0;
	return buf_room(s->in);
}

int
session_input(struct session *s, const char *data, size_t len)
{
	size_t used;

	if (len > session_input_room(s))
		return -1;
	if (len == 0)
		return 0;
	if ((s->state == STATE_DATA || s->chunk_left > 0)
	    && buf_len(s->in) == 0) {
		/* Text goes from the caller's bytes to the sink, uncopied. */
		used = s->chunk_left > 0 ? chunk_feed(s, data, len)
		    : text_feed(s, data, len);
		data += used;
		len -= used;
		/* A refused message counts as session_run() would count it. */
		if (s->errors >= SESSION_MAX_ERRORS)
			close_with(s, "4.7.0", "Error: too many errors");
		if (len == 0 || s->state == STATE_CLOSED)
			return 0;
	}
	if (buf_append(s->in, data, len) < 0) {
		log_warn(s->id, "cannot keep input");
		close_with(s, "4.3.2", "Error: out of memory");
		return 0;
	}
	session_run(s);
	return 0;
}

const char *
session_output(const struct session *s, size_t *len)
{
	const char *data = buf_data(s->out);

	*len = buf_len(s->out);
	return data != NULL ? data : "";
}

void
session_output_drop(struct session *s, size_t n)
{
	buf_consume(s->out, n);
	session_run(s);
}

const struct session_message *
session_pending(const struct session *s)
{
	return s->state == STATE_STORING ? &s->message : NULL;
}

void
session_stored(struct session *s, enum session_store_result r, const char *id)
{
	size_t i;

	if (s->state != STATE_STORING) {
		log_warnx(s->id, "session_stored without a pending message");
		return;
	}
	/* Storing answers the store action, taken or not. */
	for (i = 0; i < s->nactions; i++)
		if (s->actions[i] == SESSION_ACTION_STORE) {
			memmove(s->actions + i, s->actions + i + 1,
			    (s->nactions - i - 1) * sizeof(s->actions[0]));
			s->nactions--;
			break;
		}
	tally_count(s, s->via_bdat ? TALLY_BDAT : TALLY_DATA,
	    r == SESSION_STORE_OK);
	switch (r) {
	case SESSION_STORE_OK:
		log_info(s->id, "queued as %s: from=<%s> nrcpt=%zu size=%zu",
		    id != NULL ? id : "-", s->sender, s->nrcpts,
		    s->message.size);
		reply_uncounted(s, "250 2.0.0 Ok: queued as %s",
		    id != NULL ? id : "-");
		break;
	case SESSION_STORE_NOSPACE:
		reply_uncounted(s, "452 4.3.1 Error: insufficient system storage");
		break;
	case SESSION_STORE_TEMPFAIL:
	default:
		reply_uncounted(s, "451 4.3.0 Error: queue file write error");
		break;
	}
	if (s->state == STATE_CLOSED)
		return;
	transaction_reset(s);
	state_enter(s, STATE_GREETED);
	session_run(s);
}

int
session_closing(const struct session *s)
{
	return s->state == STATE_CLOSED;
}

unsigned long
session_lines(const struct session *s)
{
	return s->lines;
}

int
session_in_data(const struct session *s)
{
	return s->state == STATE_DATA || s->chunk_left > 0;
}

void
session_timeout(struct session *s)
{
	close_with(s, "4.4.2", "Error: timeout exceeded");
}

void
session_shutdown(struct session *s)
{
	close_with(s, "4.3.2", "Service shutting down");
}

void
session_tls_offer(struct session *s)
{
	s->tls_offer = 1;
}

/*
 * session_tls_started - the handshake is done: after STARTTLS the
 * session starts over (RFC 3207 4.2: forget the EHLO argument and
 * whatever else the client said); on an implicit TLS connection it
 * is still at the start. Either way STARTTLS is offered no more.
 */
int
session_tls_started(struct session *s, const char *description)
{
	char *copy;

	if (s->tls != NULL || (s->state != STATE_STARTTLS
	    && s->state != STATE_START)) {
		log_warnx(s->id, "session_tls_started in state %s",
		    state_names[s->state]);
		return -1;
	}
	if ((copy = strdup(description != NULL ? description : "TLS"))
	    == NULL)
		return -1;
	s->tls = copy;
	log_info(s->id, "TLS established: %s", s->tls);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	s->data_refused = 0;
	transaction_reset(s);
	buf_reset(s->in);
	s->discarding = 0;
	state_enter(s, STATE_START);
	return 0;
}

const char *
session_tls(const struct session *s)
{
	return s->tls;
}

/*
 * session_run - run what the input holds, as far as the engine may go:
 * not while a message waits to be stored, not after the end, and not
 * while the client leaves too many replies unread.
 */
static void
session_run(struct session *s)
{
	while (buf_len(s->in) > 0 && buf_len(s->out) < SESSION_OUTPUT_HIGH) {
		if (s->state == STATE_STORING || s->state == STATE_CLOSED
		    || s->state == STATE_STARTTLS)
			break;
		if (s->chunk_left > 0)
			buf_consume(s->in, chunk_feed(s, buf_data(s->in),
			    buf_len(s->in)));
		else if (s->state == STATE_DATA)
			buf_consume(s->in, text_feed(s, buf_data(s->in),
			    buf_len(s->in)));
		else if (command_feed(s) == 0)
			break;
		if (s->errors >= SESSION_MAX_ERRORS)
			close_with(s, "4.7.0", "Error: too many errors");
	}
}

/*
 * command_feed - take one command line (or a piece of an over-long one)
 * from the input. Returns 0 when a complete line has not arrived yet.
 */
static int
command_feed(struct session *s)
{
	char line[SESSION_LINE_MAX + 1];
	const char *data = buf_data(s->in);
	size_t len = buf_len(s->in);
	const char *lf;
	size_t n;

	if (s->discarding) {
		if ((lf = memchr(data, '\n', len)) == NULL) {
			buf_consume(s->in, len);
			return 1;
		}
		buf_consume(s->in, (size_t)(lf - data) + 1);
		s->discarding = 0;
		s->lines++;
		return 1;
	}
	lf = memchr(data, '\n', len < SESSION_LINE_MAX ? len : SESSION_LINE_MAX);
	if (lf == NULL) {
		if (len < SESSION_LINE_MAX)
			return 0;
		/* The limit is enforced before the line is kept anywhere. */
		buf_consume(s->in, SESSION_LINE_MAX);
		s->discarding = 1;
		s->command = NULL;
		reply(s, "500 5.5.2 Error: line too long");
		return 1;
	}
	n = (size_t)(lf - data) + 1;
	memcpy(line, data, n);
	line[n] = '\0';
	buf_consume(s->in, n);
	s->lines++;
	command_run(s, line, n);
	return 1;
}

/* command_run - check one line (with its line end) and run it */
static void
command_run(struct session *s, char *line, size_t n)
{
	const struct command *cmd = NULL;
	const char *bad = NULL;
	size_t i, len, verblen;
	char *arg;

	s->command = NULL;
	if (n < 2 || line[n - 2] != '\r') {
		log_bytes(LOG_LEVEL_INFO, s->id, "refused line", line, n);
		if (text_as_command(s))
			return;
		reply(s, "500 5.5.2 Error: bare LF in command");
		return;
	}
	len = n - 2;
	line[len] = '\0';
	for (i = 0; i < len && bad == NULL; i++) {
		if (line[i] == '\r')
			bad = "bare CR";
		else if (line[i] == '\0')
			bad = "NUL";
		else if ((unsigned char)line[i] >= 0x80
		    && !utf8_command_ok(s, line, len))
			bad = "8-bit byte";
	}
	if (bad != NULL) {
		log_bytes(LOG_LEVEL_INFO, s->id, "refused line", line, len);
		if (text_as_command(s))
			return;
		if (utf8_context(s, line) && (unsigned char)line[i - 1] >= 0x80)
			reply(s, "501 5.5.2 Error: malformed UTF-8 in command");
		else if (path_is_8bit(line, i - 1))
			reply(s, "553 5.6.7 Error: non-ASCII address without "
			    "SMTPUTF8");
		else
			reply(s, "500 5.5.2 Error: %s in command", bad);
		return;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	s->command = line;
	log_debug(s->id, "> %s", line);

	verblen = strcspn(line, " ");
	arg = skip_spaces(line + verblen);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].verb) == verblen &&
		    strncasecmp(commands[i].verb, line, verblen) == 0) {
			cmd = &commands[i];
			break;
		}
	}
	/* AUTH arguments are credentials: keep them out of the log. */
	if (cmd != NULL && strcmp(cmd->verb, "AUTH") == 0)
		s->command = "AUTH ...";
	s->verb = cmd != NULL ? cmd->tally : TALLY_UNKNOWN;
	if (cmd == NULL && text_as_command(s)) {
		s->command = NULL;
		return;
	}
	s->data_refused = 0;
	if (cmd == NULL)
		reply(s, "500 5.5.1 Error: command not recognized");
	else if ((cmd->allowed & IN(s->state)) == 0)
		reply(s, "503 5.5.1 Error: %s", sequence_hint(s, cmd->verb));
	else {
		cmd->handler(s, arg);
		/*
		 * Postfix's smtpd_junk_command_limit: past it each NOOP,
		 * RSET, VRFY, ... counts as an error, so that a client
		 * that only keeps its slot busy (each command starts the
		 * command timer again) is ended by the error limit.
		 */
		if (cmd->junk && ++s->junk > SESSION_JUNK_LIMIT)
			s->errors++;
	}
	/* DATA is counted once its message has been answered. */
	if (s->verb != TALLY_DATA || s->state != STATE_DATA)
		tally_count(s, s->verb, s->last_code >= 2 && s->last_code <= 3);
	s->verb = -1;

	/*
	 * RFC 2920: DATA ends a batch, and a client must wait for its
	 * reply. A refused DATA with more input already here means the
	 * client is sending its message text regardless: running that
	 * text as commands would deliver whatever it says (a message
	 * quoting an SMTP dialog, crafted to be relayed). Postfix's
	 * smtpd_forbid_unauth_pipelining does the same.
	 */
	if (cmd != NULL && cmd->tally == TALLY_DATA
	    && s->state != STATE_DATA && s->state != STATE_CLOSED) {
		if (buf_len(s->in) > 0) {
			log_info(s->id, "pipelining after a refused DATA: "
			    "%zu bytes not run", buf_len(s->in));
			reply_uncounted(s, "554 5.5.0 Error: improper use of "
			    "SMTP command pipelining");
			state_enter(s, STATE_CLOSED);
		} else {
			s->data_refused = 1;
		}
	}
	s->command = NULL;
}

/*
 * text_as_command - a line that is no command came right after a
 * refused DATA: the client is sending the message text it thought
 * would be taken, in a later packet than the DATA (so the pipelining
 * check above could not see it). Its first line is a header or an
 * empty line, never a command: end the session before any line of it
 * that looks like one is run. Returns 1 when the session was ended.
 */
static int
text_as_command(struct session *s)
{
	if (!s->data_refused)
		return 0;
	s->data_refused = 0;
	log_info(s->id, "message text after a refused DATA: not run");
	reply_uncounted(s, "554 5.5.0 Error: message text sent after a "
	    "refused DATA command");
	state_enter(s, STATE_CLOSED);
	return 1;
}

/*
 * path_is_8bit - whether the byte at pos, the first bad byte of the line,
 * is an 8-bit byte inside the path of MAIL FROM:<...> or RCPT TO:<...>:
 * an address that needs SMTPUTF8, which is not offered (RFC 6531: 553
 * 5.6.7, non-ASCII addresses not permitted).
 */
static int
path_is_8bit(const char *line, size_t pos)
{
	const char *open, *close;

	if ((unsigned char)line[pos] < 0x80
	    || (strncasecmp(line, "MAIL FROM:", 10) != 0
	    && strncasecmp(line, "RCPT TO:", 8) != 0))
		return 0;
	if ((open = strchr(line, '<')) == NULL || (size_t)(open - line) > pos)
		return 0;
	close = strchr(open, '>');
	return close == NULL || (size_t)(close - line) > pos;
}

/*
 * utf8_context - whether 8-bit bytes may stand in this line: MAIL that
 * names SMTPUTF8 among its words, or RCPT in an SMTPUTF8 transaction.
 * (A quoted local part that spells " SMTPUTF8" only gets its address
 * refused later: cmd_mail() looks at the real parameters.)
 */
static int
utf8_context(const struct session *s, const char *line)
{
	const char *p;

	if (strncasecmp(line, "RCPT ", 5) == 0)
		return s->smtputf8;
	if (strncasecmp(line, "MAIL ", 5) != 0)
		return 0;
	for (p = line; (p = strchr(p, ' ')) != NULL; p++)
		if (strncasecmp(p + 1, "SMTPUTF8", 8) == 0
		    && (p[9] == '\0' || p[9] == ' '))
			return 1;
	return 0;
}

/*
 * utf8_command_ok - whether the 8-bit bytes of this line may go on to
 * its command: good UTF-8 in a MAIL or RCPT line of SMTPUTF8; any other
 * 8-bit line is refused before it runs.
 */
static int
utf8_command_ok(const struct session *s, const char *line, size_t len)
{
	return utf8_context(s, line) && addr_utf8_valid(line, len);
}

/* sequence_hint - what the client should have sent first */
static const char *
sequence_hint(const struct session *s, const char *verb)
{
	if (s->state == STATE_START)
		return "send HELO/EHLO first";
	if (s->state == STATE_BDAT)
		return strcmp(verb, "DATA") == 0 ? "DATA after BDAT"
		    : "BDAT transaction in progress";
	if (strcmp(verb, "MAIL") == 0)
		return "nested MAIL command";
	if (s->state == STATE_GREETED)
		return "need MAIL command";
	return "need RCPT command";
}

static char *
skip_spaces(char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/*
 * text_feed - run len bytes of message text at p through the
 * end-of-data state machine; returns how many it took (all of them,
 * or up to and with the final dot). Only CRLF "." CRLF ends the
 * message; the state before the first byte is TEXT_LINE_START because
 * the DATA command's CRLF counts as the first CRLF. A bare CR or LF
 * marks the message bad and does not start a line, so no smuggled end
 * can match; a NUL marks it bad too (a next hop that drops NULs would
 * otherwise see lines we never saw).
 */
static size_t
text_feed(struct session *s, const char *p, size_t len)
{
	size_t i = 0, j;
	int end = 0;

	while (i < len && !end) {
		switch (s->text_state) {
		case TEXT_LINE_START:
			if (p[i] == '.') {
				s->text_state = TEXT_DOT;
				i++;
			} else {
				s->text_state = TEXT_MIDDLE;
			}
			break;
		case TEXT_DOT:
			if (p[i] == '\r') {
				s->text_state = TEXT_DOT_CR;
				i++;
			} else {
				/* RFC 5321 4.5.2: drop the leading dot. */
				s->text_state = TEXT_MIDDLE;
			}
			break;
		case TEXT_DOT_CR:
			if (p[i] == '\n') {
				end = 1;
				i++;
			} else {
				s->text_bare = 1;
				text_close(s);
				s->text_state = TEXT_MIDDLE;
			}
			break;
		case TEXT_MIDDLE:
			for (j = i; j < len && p[j] != '\r' && p[j] != '\n'
			    && p[j] != '\0'; j++)
				;
			if (j > i) {
				text_append(s, p + i, j - i, j - i);
				i = j;
			} else if (p[i] == '\r') {
				s->text_state = TEXT_CR;
				i++;
			} else if (p[i] == '\0') {
				s->text_nul = 1;
				text_close(s);
				i++;
			} else {
				s->text_bare = 1;
				text_close(s);
				i++;
			}
			break;
		case TEXT_CR:
			if (p[i] == '\n') {
				/* CRLF is stored as LF and counts as sent. */
				text_append(s, "\n", 1, 2);
				s->text_state = TEXT_LINE_START;
				i++;
			} else {
				/* The byte is looked at again as text. */
				s->text_bare = 1;
				text_close(s);
				s->text_state = TEXT_MIDDLE;
			}
			break;
		}
	}
	if (end)
		text_end(s);
	return i;
}

/*
 * text_append - n bytes of text, which the client sent as octets
 * octets (RFC 1870 counts CRLF as two). Once the message is refused
 * for any reason its text is let go at once (the sink's file and
 * window are freed) and only the count goes on.
 */
static void
text_append(struct session *s, const char *p, size_t n, size_t octets)
{
	s->text_octets += octets;
	if (!s->text_too_big && s->text_octets
	    > (unsigned long long)s->conf->max_message_size)
		s->text_too_big = 1;
	if (s->smtputf8 && !s->hdr_done)
		text_check_utf8(s, p, n);
	if (text_refused(s)) {
		text_close(s);
		return;
	}
	s->text_size += n;
	if (s->sink != NULL && s->sink->write(s->sink_ctx, p, n) < 0) {
		s->text_err = errno != 0 ? errno : EIO;
		log_warn(s->id, "cannot keep message text");
		text_close(s);
	}
}

/* text_close - the sink may forget the text (once) */
static void
text_close(struct session *s)
{
	if (!s->text_open)
		return;
	s->text_open = 0;
	if (s->sink != NULL)
		s->sink->close(s->sink_ctx);
}

/* text_refused - whether the text is refused, for any reason */
static int
text_refused(const struct session *s)
{
	return s->text_bare || s->text_nul || s->text_too_big || s->text_err
	    || s->text_bad_utf8;
}

/* text_begin - a message text starts: nothing seen, nothing refused */
static void
text_begin(struct session *s)
{
	s->text_state = TEXT_LINE_START;
	s->text_bare = s->text_nul = s->text_too_big = s->text_err = 0;
	s->text_bad_utf8 = s->hdr_done = 0;
	s->hdr_line = 0;
	s->u8_need = 0;
	s->text_size = 0;
	s->text_octets = 0;
}

/*
 * text_check_utf8 - SMTPUTF8 (RFC 6532): the header section must be
 * UTF-8. A small decoder that keeps its state between pieces of text;
 * it stops at the empty line that ends the header section. The same
 * character classes as addr_utf8_char(): no overlong form, surrogate,
 * code point over U+10FFFF or C1 control.
 */
static void
text_check_utf8(struct session *s, const char *p, size_t n)
{
	unsigned char c;
	size_t i;

	for (i = 0; i < n && !s->hdr_done && !s->text_bad_utf8; i++) {
		c = (unsigned char)p[i];
		if (s->u8_need > 0) {
			if (c < s->u8_lo || c > s->u8_hi) {
				s->text_bad_utf8 = 1;
				break;
			}
			s->u8_lo = 0x80;
			s->u8_hi = 0xbf;
			s->u8_need--;
			s->hdr_line++;
			continue;
		}
		if (c == '\n') {
			if (s->hdr_line == 0)
				s->hdr_done = 1;
			s->hdr_line = 0;
			continue;
		}
		if (c != '\r')
			s->hdr_line++;
		if (c < 0x80)
			continue;
		s->u8_lo = 0x80;
		s->u8_hi = 0xbf;
		if (c == 0xc2)
			s->u8_lo = 0xa0;	/* no C1 control */
		else if (c == 0xe0)
			s->u8_lo = 0xa0;	/* no overlong form */
		else if (c == 0xed)
			s->u8_hi = 0x9f;	/* no surrogate */
		else if (c == 0xf0)
			s->u8_lo = 0x90;
		else if (c == 0xf4)
			s->u8_hi = 0x8f;	/* nothing over U+10FFFF */
		if (c >= 0xc2 && c <= 0xdf)
			s->u8_need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			s->u8_need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			s->u8_need = 3;
		else
			s->text_bad_utf8 = 1;
	}
}

/*
 * text_refuse - the reply for a refused text (see text_refused()); the
 * transaction ends
 */
static void
text_refuse(struct session *s, int tally)
{
	const char *why;

	why = s->text_bare ? "bare CR or LF in text" : s->text_nul
	    ? "NUL in text" : s->text_too_big ? "too big" : s->text_bad_utf8
	    ? "header not UTF-8" : "text could not be kept";
	log_info(s->id, "message rejected: %s: from=<%s> nrcpt=%zu "
	    "octets=%llu", why, s->sender, s->nrcpts, s->text_octets);
	text_close(s);
	if (s->text_bare)
		reply(s, "550 5.5.2 Error: bare CR or LF in message text");
	else if (s->text_nul)
		reply(s, "550 5.6.0 Error: NUL byte in message text");
	else if (s->text_too_big)
		reply(s, "552 5.3.4 Error: message exceeds fixed maximum "
		    "message size");
	else if (s->text_bad_utf8)
		reply(s, "550 5.6.0 Error: message header is not UTF-8");
	else if (s->text_err == ENOSPC || s->text_err == EDQUOT)
		reply_uncounted(s, "452 4.3.1 Error: insufficient "
		    "system storage");
	else
		reply_uncounted(s, "451 4.3.0 Error: queue file write "
		    "error");
	tally_count(s, tally, 0);
	if (s->state != STATE_CLOSED)
		state_enter(s, STATE_GREETED);
	transaction_reset(s);
}

/* text_end - the final dot: refuse the message or hand it over */
static void
text_end(struct session *s)
{
	s->lines++;
	/* A header section cut inside a character is not UTF-8 either. */
	if (s->smtputf8 && !s->hdr_done && s->u8_need > 0)
		s->text_bad_utf8 = 1;
	if (text_refused(s)) {
		text_refuse(s, TALLY_DATA);
		return;
	}
	text_hand_over(s, 0);
}

/*
 * text_hand_over - the text is complete and good: the message waits
 * to be stored (via_bdat: it came in BDAT chunks)
 */
static void
text_hand_over(struct session *s, int via_bdat)
{
	struct session_message *m = &s->message;
	size_t i;

	if ((s->message_rcpts = calloc(s->nrcpts,
	    sizeof(*s->message_rcpts))) == NULL) {
		text_close(s);
		reply_uncounted(s, "452 4.3.1 Error: insufficient system storage");
		if (s->state != STATE_CLOSED)
			state_enter(s, STATE_GREETED);
		tally_count(s, via_bdat ? TALLY_BDAT : TALLY_DATA, 0);
		transaction_reset(s);
		return;
	}
	s->via_bdat = via_bdat;
	for (i = 0; i < s->nrcpts; i++) {
		s->message_rcpts[i].address = s->rcpts[i].address;
		s->message_rcpts[i].original = s->rcpts[i].original;
		s->message_rcpts[i].params = s->rcpts[i].params;
		s->message_rcpts[i].mailbox = s->rcpts[i].mailbox;
		s->message_rcpts[i].domain = s->rcpts[i].domain;
	}
	m->helo = s->helo;
	m->esmtp = s->esmtp;
	m->tls = s->tls;
	m->client_addr = s->client_addr;
	m->sender = s->sender;
	m->mail_params = s->mail_params;
	m->smtputf8 = s->smtputf8;
	m->rcpts = s->message_rcpts;
	m->nrcpts = s->nrcpts;
	m->size = s->text_size;
	m->octets = s->text_octets;
	log_debug(s->id, "message complete: %zu bytes", m->size);
	state_enter(s, STATE_STORING);
	action_push(s, SESSION_ACTION_STORE);
}

/* transaction_reset - forget sender, recipients and text */
static void
transaction_reset(struct session *s)
{
	free(s->sender);
	s->sender = NULL;
	free(s->mail_params);
	s->mail_params = NULL;
	rcpt_forget(s, 0);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpts = s->rcpts_alloc = s->naccepted = 0;
	text_close(s);
	text_begin(s);
	s->smtputf8 = s->binarymime = 0;
	s->chunk_cr = s->via_bdat = 0;
	free(s->message_rcpts);
	s->message_rcpts = NULL;
	memset(&s->message, 0, sizeof(s->message));
}

/*
 * helo_valid - a domain or an address literal (RFC 5321 4.1.1.1); it
 * ends up in Received: and the log, so nothing else may pass
 */
static int
helo_valid(const char *arg)
{
	return strlen(arg) <= SESSION_HELO_MAX && addr_helo_valid(arg);
}

static int
helo_accept(struct session *s, char *arg, int esmtp)
{
	char *copy;

	if (!helo_valid(arg)) {
		reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return -1;
	}
	if ((copy = strdup(arg)) == NULL) {
		reply(s, "452 4.3.1 Error: insufficient system storage");
		return -1;
	}
	free(s->helo);
	s->helo = copy;
	s->esmtp = esmtp;
	transaction_reset(s);
	state_enter(s, STATE_GREETED);
	log_info(s->id, "%s %s from [%s]", esmtp ? "EHLO" : "HELO", s->helo,
	    s->client_addr);
	return 0;
}

static void
cmd_ehlo(struct session *s, char *arg)
{
	if (helo_accept(s, arg, 1) < 0)
		return;
	/*
	 * LIMITS (RFC 9422): RCPTMAX is max_recipients; there is no cap
	 * on the transactions of a session, so no MAILMAX.
	 */
	reply(s, "250-%s\r\n250-PIPELINING\r\n250-SIZE %ld\r\n250-8BITMIME\r\n"
	    "%s250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"
	    "250-BINARYMIME\r\n250-DSN\r\n250-LIMITS RCPTMAX=%ld\r\n"
	    "250 HELP", hostname(s), s->conf->max_message_size,
	    s->tls_offer && s->tls == NULL ? "250-STARTTLS\r\n" : "",
	    s->conf->max_recipients);
}

static void
cmd_helo(struct session *s, char *arg)
{
	if (helo_accept(s, arg, 0) < 0)
		return;
	reply(s, "250 %s", hostname(s));
}

/*
 * mail_params_parse - check the MAIL FROM parameters in p and write them,
 * as accepted, to out. Returns 0, or -1 after a reply.
 */
static int
mail_params_parse(struct session *s, char *p, char *out, size_t outlen)
{
	int seen_size = 0, seen_body = 0, seen_ret = 0, seen_envid = 0, n;
	char decoded[SESSION_LINE_MAX];
	size_t o = 0;
	const char *digit;
	char *word, *value;
	unsigned long long size, limit;

	out[0] = '\0';
	for (p = skip_spaces(p); *p != '\0'; p = skip_spaces(p)) {
		word = p;
		p += strcspn(p, " ");
		if (*p != '\0')
			*p++ = '\0';
		if ((value = strchr(word, '=')) != NULL)
			*value++ = '\0';
		if (strcasecmp(word, "SIZE") == 0) {
			if (seen_size++ || value == NULL || *value == '\0' ||
			    strspn(value, "0123456789") != strlen(value)) {
				reply(s, "501 5.5.4 Syntax: SIZE=number");
				return -1;
			}
			/* Stop once past the limit: no overflow possible. */
			limit = (unsigned long long)s->conf->max_message_size;
			size = 0;
			for (digit = value; *digit != '\0' && size <= limit;
			    digit++)
				size = size * 10 + (unsigned)(*digit - '0');
			if (size > limit) {
				reply(s, "552 5.3.4 Error: message size exceeds "
				    "fixed limit");
				return -1;
			}
		} else if (strcasecmp(word, "BODY") == 0) {
			if (seen_body++ || value == NULL) {
				reply(s, "501 5.5.4 Syntax: "
				    "BODY=7BIT|8BITMIME|BINARYMIME");
				return -1;
			}
			if (strcasecmp(value, "BINARYMIME") == 0)
				s->binarymime = 1;
			else if (strcasecmp(value, "7BIT") != 0 &&
			    strcasecmp(value, "8BITMIME") != 0) {
				reply(s, "555 5.5.4 Error: unsupported BODY type");
				return -1;
			}
		} else if (strcasecmp(word, "RET") == 0) {
			/* RFC 3461 4.3: what a bounce carries. */
			if (seen_ret++ || value == NULL
			    || (strcasecmp(value, "FULL") != 0
			    && strcasecmp(value, "HDRS") != 0)) {
				reply(s, "501 5.5.4 Syntax: RET=FULL|HDRS");
				return -1;
			}
		} else if (strcasecmp(word, "ENVID") == 0) {
			/* RFC 3461 4.4: xtext of at most 100 printable octets. */
			if (seen_envid++ || value == NULL || *value == '\0'
			    || strlen(value) > 100
			    || addr_xtext_decode(value, strlen(value), decoded,
			    sizeof(decoded)) < 0 || strchr(decoded, ' ') != NULL) {
				reply(s, "501 5.5.4 Syntax: ENVID=xtext");
				return -1;
			}
		} else if (strcasecmp(word, "SMTPUTF8") == 0) {
			if (s->smtputf8++ || value != NULL) {
				reply(s, "501 5.5.4 Syntax: SMTPUTF8 (no value)");
				return -1;
			}
		} else {
			reply(s, "555 5.5.4 Error: unsupported parameter");
			return -1;
		}
		n = snprintf(out + o, outlen - o, "%s%s%s%s", o > 0 ? " " : "",
		    word, value != NULL ? "=" : "", value != NULL ? value : "");
		if (n < 0 || (size_t)n >= outlen - o) {
			reply(s, "501 5.5.4 Error: parameters too long");
			return -1;
		}
		o += (size_t)n;
	}
	return 0;
}

static void
cmd_mail(struct session *s, char *arg)
{
	char sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char params[SESSION_LINE_MAX];
	struct addr a;
	enum addr_result r;
	size_t used;
	char *p, *rest;

	if (strncasecmp(arg, "FROM:", 5) != 0) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	/* "MAIL FROM: <a@b>" breaks RFC 5321 but is common. */
	p = skip_spaces(arg + 5);
	if (*p != '<') {
		reply(s, "501 5.1.7 Error: bad sender address syntax");
		return;
	}
	r = addr_parse_path(p, strlen(p), ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8,
	    &a, &used);
	if (r != ADDR_OK) {
		reply(s, "501 5.1.7 Error: bad sender address: %s",
		    addr_strerror(r));
		return;
	}
	rest = p + used;
	if (*rest != '\0' && *rest != ' ') {
		reply(s, "501 5.1.7 Error: bad sender address syntax");
		return;
	}
	s->smtputf8 = s->binarymime = 0;
	if (mail_params_parse(s, rest, params, sizeof(params)) < 0) {
		s->smtputf8 = s->binarymime = 0;
		return;
	}
	if (a.utf8 && !s->smtputf8) {
		reply(s, "553 5.6.7 Error: non-ASCII address without SMTPUTF8");
		return;
	}
	if (addr_format(&a, sender, sizeof(sender)) < 0) {
		reply(s, "501 5.1.7 Error: bad sender address");
		return;
	}
	if ((s->sender = strdup(sender)) == NULL ||
	    (s->mail_params = strdup(params)) == NULL) {
		transaction_reset(s);
		reply(s, "452 4.3.1 Error: insufficient system storage");
		return;
	}
	log_info(s->id, "from=<%s>%s%s", s->sender, *params ? " " : "", params);
	state_enter(s, STATE_MAIL);
	reply(s, "250 2.1.0 Ok");
}

/* rcpt_find - the recipient already accepted for the same destination */
static const struct rcpt *
rcpt_find(const struct session *s, const char *address, const char *mailbox)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++) {
		if (mailbox != NULL && s->rcpts[i].mailbox != NULL &&
		    strcasecmp(mailbox, s->rcpts[i].mailbox) == 0)
			return &s->rcpts[i];
		if (mailbox == NULL && s->rcpts[i].mailbox == NULL &&
		    strcmp(address, s->rcpts[i].address) == 0)
			return &s->rcpts[i];
	}
	return NULL;
}

static int
rcpt_add(struct session *s, const struct rcpt_dest *d)
{
	struct rcpt *r;
	size_t alloc;

	if (s->nrcpts == s->rcpts_alloc) {
		alloc = s->rcpts_alloc ? s->rcpts_alloc * 2 : 4;
		if ((r = reallocarray(s->rcpts, alloc, sizeof(*r))) == NULL)
			return -1;
		s->rcpts = r;
		s->rcpts_alloc = alloc;
	}
	r = &s->rcpts[s->nrcpts];
	memset(r, 0, sizeof(*r));
	r->mailbox = d->mailbox;
	if ((r->address = strdup(d->address)) == NULL
	    || (r->domain = strdup(d->domain)) == NULL
	    || (r->params = strdup(d->params != NULL ? d->params : ""))
	    == NULL
	    || (d->original != NULL
	    && (r->original = strdup(d->original)) == NULL)) {
		free(r->address);
		free(r->domain);
		free(r->params);
		return -1;
	}
	s->nrcpts++;
	return 0;
}

/*
 * rcpt_accept - one RCPT command (given: its address) leads to the n
 * destinations d: those not accepted before are added, and the command
 * counts once against max_recipients (RFC 5321 counts the commands; an
 * alias may make more). Replies either way.
 */
static void
rcpt_accept(struct session *s, const char *given, const struct rcpt_dest *d,
    size_t n)
{
	size_t i, fresh = 0, before = s->nrcpts;

	for (i = 0; i < n; i++)
		if (rcpt_find(s, d[i].address, d[i].mailbox) == NULL)
			fresh++;
	if (fresh == 0) {
		log_info(s->id, "to=<%s> duplicate, kept once", given);
		reply(s, "250 2.1.5 Ok");
		return;
	}
	if (s->conf->max_recipients > 0 &&
	    s->naccepted >= (size_t)s->conf->max_recipients) {
		reply_uncounted(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	for (i = 0; i < n; i++) {
		if (rcpt_find(s, d[i].address, d[i].mailbox) != NULL)
			continue;
		if (rcpt_add(s, &d[i]) < 0) {
			/* The command is all or nothing. */
			rcpt_forget(s, before);
			reply(s, "452 4.3.1 Error: insufficient system storage");
			return;
		}
		if (d[i].mailbox != NULL)
			log_info(s->id, "to=<%s> accepted, mailbox %s%s%s",
			    given, d[i].mailbox, d[i].original ? " as " : "",
			    d[i].original ? d[i].address : "");
		else
			log_info(s->id, "to=<%s> accepted, relay to %s%s%s",
			    given, d[i].domain, d[i].original ? " as " : "",
			    d[i].original ? d[i].address : "");
	}
	s->naccepted++;
	state_enter(s, STATE_RCPT);
	reply(s, "250 2.1.5 Ok");
}

/* rcpt_forget - drop the recipients past the first keep */
static void
rcpt_forget(struct session *s, size_t keep)
{
	while (s->nrcpts > keep) {
		s->nrcpts--;
		free(s->rcpts[s->nrcpts].address);
		free(s->rcpts[s->nrcpts].domain);
		free(s->rcpts[s->nrcpts].original);
		free(s->rcpts[s->nrcpts].params);
	}
}

/*
 * rcpt_local - a recipient of a local domain (or <postmaster>): a user
 * (also with a +extension, which Delivered-To keeps), an alias (each
 * final mailbox and remote target once), the postmaster, or else the
 * catch-all user. An alias's or the catch-all's local copies are
 * addressed to user@domain, the given address kept as the original.
 */
static void
rcpt_local(struct session *s, const struct addr *a, const char *given,
    const char *params)
{
	const struct conf *conf = s->conf;
	struct conf_target t;
	struct rcpt_dest one, *d;
	const char *domain = a->domain, *at;
	size_t i, n;
	int len;

	memset(&one, 0, sizeof(one));
	if (a->postmaster)
		(void)conf_lookup_local(conf, "postmaster", &t);
	else if (!conf_lookup_local(conf, a->mailbox, &t)) {
		if (*conf->catchall == '\0') {
			reply(s, "550 5.1.1 <%s>: Recipient address rejected: "
			    "User unknown", given);
			return;
		}
		t.user = conf->catchall;
		one.original = given;
	}
	if (t.alias == NULL) {
		if (t.user == NULL) {
			reply(s, "550 5.1.1 <%s>: no postmaster configured",
			    given);
			return;
		}
		one.mailbox = t.user;
		one.domain = domain;
		one.params = params;
		len = snprintf(one.address, sizeof(one.address), "%s%s%s",
		    one.original ? t.user : given, one.original ? "@" : "",
		    one.original ? domain : "");
		if (len < 0 || (size_t)len >= sizeof(one.address)) {
			reply(s, "501 5.1.3 Error: bad recipient address");
			return;
		}
		rcpt_accept(s, given, &one, 1);
		return;
	}

	/* <postmaster> names no domain: its copies name the first local one. */
	if (*domain == '\0')
		domain = conf->ndomains > 0 ? conf->domains[0] : hostname(s);
	n = t.alias->nmailboxes + t.alias->nremotes;
	if ((d = calloc(n, sizeof(*d))) == NULL) {
		reply(s, "452 4.3.1 Error: insufficient system storage");
		return;
	}
	for (i = 0; i < n; i++) {
		d[i].original = given;
		d[i].params = params;
		if (i >= t.alias->nmailboxes && rcpt_alias_params(params, given,
		    d[i].own_params, sizeof(d[i].own_params)) == 0)
			d[i].params = d[i].own_params;
		if (i < t.alias->nmailboxes) {
			d[i].mailbox = t.alias->mailboxes[i];
			d[i].domain = a->domain;
			len = snprintf(d[i].address, sizeof(d[i].address),
			    "%s@%s", d[i].mailbox, domain);
		} else {
			d[i].domain = (at = strrchr(t.alias->remotes[i -
			    t.alias->nmailboxes], '@')) != NULL ? at + 1 : "";
			len = snprintf(d[i].address, sizeof(d[i].address),
			    "%s", t.alias->remotes[i - t.alias->nmailboxes]);
		}
		if (len < 0 || (size_t)len >= sizeof(d[i].address)) {
			free(d);
			reply(s, "501 5.1.3 Error: bad recipient address");
			return;
		}
	}
	rcpt_accept(s, given, d, n);
	free(d);
}

/*
 * rcpt_params_parse - check the RCPT parameters in p (RFC 3461 NOTIFY
 * and ORCPT, each at most once) and write them, as accepted, to out:
 * NOTIFY upper-cased, ORCPT as sent. Returns 0, or -1 after a reply.
 */
static int
rcpt_params_parse(struct session *s, char *p, char *out, size_t outlen)
{
	int seen_notify = 0, seen_orcpt = 0, n;
	size_t o = 0;
	const char *name;
	char *word, *value;

	out[0] = '\0';
	for (p = skip_spaces(p); *p != '\0'; p = skip_spaces(p)) {
		word = p;
		p += strcspn(p, " ");
		if (*p != '\0')
			*p++ = '\0';
		if ((value = strchr(word, '=')) != NULL)
			*value++ = '\0';
		if (strcasecmp(word, "NOTIFY") == 0) {
			name = "NOTIFY";
			if (seen_notify++ || !rcpt_notify_ok(value)) {
				reply(s, "501 5.5.4 Syntax: "
				    "NOTIFY=NEVER|SUCCESS,FAILURE,DELAY");
				return -1;
			}
		} else if (strcasecmp(word, "ORCPT") == 0) {
			name = "ORCPT";
			if (seen_orcpt++ || value == NULL
			    || !rcpt_orcpt_ok(s, value)) {
				reply(s, "501 5.5.4 Syntax: ORCPT=addr-type;xtext");
				return -1;
			}
		} else {
			reply(s, "555 5.5.4 Error: unsupported parameter");
			return -1;
		}
		n = snprintf(out + o, outlen - o, "%s%s=%s", o > 0 ? " " : "",
		    name, value);
		if (n < 0 || (size_t)n >= outlen - o) {
			reply(s, "501 5.5.4 Error: parameters too long");
			return -1;
		}
		o += (size_t)n;
	}
	return 0;
}

/*
 * rcpt_notify_ok - NOTIFY=NEVER, or a comma list of SUCCESS, FAILURE
 * and DELAY, each once, any case (RFC 3461 4.1); upper-cases value
 */
static int
rcpt_notify_ok(char *value)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned seen = 0;
	size_t wlen, k;
	char *v;

	if (value == NULL || *value == '\0')
		return 0;
	if (strcasecmp(value, "NEVER") != 0) {
		for (v = value;; v++) {
			wlen = strcspn(v, ",");
			for (k = 0; k < 3; k++)
				if (wlen == strlen(words[k])
				    && strncasecmp(v, words[k], wlen) == 0)
					break;
			if (k == 3 || (seen & (1u << k)) != 0)
				return 0;
			seen |= 1u << k;
			v += wlen;
			if (*v == '\0')
				break;
		}
	}
	for (v = value; *v != '\0'; v++)
		if (*v >= 'a' && *v <= 'z')
			*v = (char)(*v - 'a' + 'A');
	return 1;
}

/*
 * rcpt_orcpt_ok - ORCPT=addr-type;value (RFC 3461 4.2): at most 500
 * octets; addr-type an atom; "rfc822" takes xtext of printable ASCII,
 * "utf-8" RFC 6533's utf-8-addr-xtext (and utf-8-addr-unitext with
 * SMTPUTF8), any other type xtext
 */
static int
rcpt_orcpt_ok(const struct session *s, const char *value)
{
	char decoded[SESSION_LINE_MAX];
	const char *semi = strchr(value, ';'), *p;

	if (semi == NULL || semi == value || strlen(value) > 500
	    || semi[1] == '\0')
		return 0;
	for (p = value; p < semi; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
		    || (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	if ((size_t)(semi - value) == 5 && strncasecmp(value, "utf-8", 5) == 0)
		return addr_utf8_xtext_valid(semi + 1, strlen(semi + 1),
		    s->smtputf8);
	return addr_xtext_decode(semi + 1, strlen(semi + 1), decoded,
	    sizeof(decoded)) == 0;
}

/*
 * rcpt_alias_params - the parameters for a remote target of an alias:
 * those given, and ORCPT=rfc822;<the address given> when the client
 * sent none (RFC 3461 5.2.1 lets a relay add it, so that a report
 * names the address the sender used). Returns 0 with out filled in,
 * or -1 to keep params as they are.
 */
static int
rcpt_alias_params(const char *params, const char *given, char *out,
    size_t outlen)
{
	char xtext[ADDR_PATH_MAX * 3 + 1];
	const char *p;
	int n;

	for (p = params; (p = strstr(p, "ORCPT=")) != NULL; p++)
		if (p == params || p[-1] == ' ')
			return -1;
	if (!addr_utf8_valid(given, strlen(given)))
		return -1;
	for (p = given; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return -1;	/* a UTF-8 address: no rfc822 type */
	if (addr_xtext_encode(given, xtext, sizeof(xtext)) < 0)
		return -1;
	n = snprintf(out, outlen, "%s%sORCPT=rfc822;%s", params,
	    *params ? " " : "", xtext);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static void
cmd_rcpt(struct session *s, char *arg)
{
	char address[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char params[SESSION_LINE_MAX];
	struct rcpt_dest one;
	struct addr a;
	enum addr_result r;
	size_t used;
	char *p, *rest;

	if (strncasecmp(arg, "TO:", 3) != 0) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	p = skip_spaces(arg + 3);
	if (*p != '<') {
		reply(s, "501 5.1.3 Error: bad recipient address syntax");
		return;
	}
	r = addr_parse_path(p, strlen(p), ADDR_ALLOW_POSTMASTER
	    | ADDR_ALLOW_UTF8, &a, &used);
	if (r != ADDR_OK) {
		reply(s, "501 5.1.3 Error: bad recipient address: %s",
		    addr_strerror(r));
		return;
	}
	if (a.utf8 && !s->smtputf8) {
		reply(s, "553 5.6.7 Error: non-ASCII address without SMTPUTF8");
		return;
	}
	rest = p + used;
	if (*rest != '\0' && *rest != ' ') {
		reply(s, "501 5.1.3 Error: bad recipient address syntax");
		return;
	}
	if (rcpt_params_parse(s, rest, params, sizeof(params)) < 0)
		return;
	if (addr_format(&a, address, sizeof(address)) < 0) {
		reply(s, "501 5.1.3 Error: bad recipient address");
		return;
	}
	if (a.postmaster)	/* any case: one name for Delivered-To */
		snprintf(address, sizeof(address), "postmaster");

	/* A UTF-8 domain is known, and queued, by its A-labels. */
	if (a.postmaster || (!a.literal && conf_is_local_domain(s->conf,
	    a.ace))) {
		rcpt_local(s, &a, address, params);
		return;
	}
	if (!s->relay_allowed) {
		reply(s, "554 5.7.1 <%s>: Relay access denied", address);
		return;
	} else if (a.literal) {
		reply(s, "550 5.7.1 <%s>: Recipient address rejected: "
		    "mail to address literals is not relayed", address);
		return;
	} else if (!addr_domain_is_safe(a.ace)) {
		reply(s, "501 5.1.2 <%s>: Recipient address rejected: "
		    "a numeric domain is not a domain name", address);
		return;
	}
	memset(&one, 0, sizeof(one));
	memcpy(one.address, address, sizeof(address));
	one.domain = a.ace;
	one.params = params;
	rcpt_accept(s, address, &one, 1);
}

static void
cmd_data(struct session *s, char *arg)
{
	if (*arg != '\0') {
		reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	/* RFC 3030 3: a BINARYMIME body cannot be sent with DATA. */
	if (s->binarymime) {
		reply(s, "503 5.5.1 Error: BODY=BINARYMIME needs BDAT");
		return;
	}
	if (s->sink != NULL && s->sink->open(s->sink_ctx) < 0) {
		log_warn(s->id, "cannot make room for a message");
		if (errno == ENOSPC || errno == EDQUOT)
			reply_uncounted(s, "452 4.3.1 Error: insufficient "
			    "system storage");
		else
			reply_uncounted(s, "451 4.3.0 Error: cannot accept "
			    "a message now");
		return;
	}
	s->text_open = 1;
	text_begin(s);
	state_enter(s, STATE_DATA);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * cmd_bdat - BDAT octets [LAST] (RFC 3030). Once the size is known its
 * octets are read, exactly that many and never as commands, whatever
 * the reply: a BDAT out of sequence (after a failed one, the transaction
 * is gone: 503) has its octets read and dropped, and is answered after
 * them. Only a size that cannot be read leaves the octets unknown: 501,
 * and, as after a refused DATA, the session ends if more input is
 * already waiting or the next line is not a command.
 */
static void
cmd_bdat(struct session *s, char *arg)
{
	unsigned long long n = 0;
	char *p = arg, *end;
	int last = 0, len;

	end = p + strspn(p, "0123456789");
	if (end == p || end - p > 18 || (*end != '\0' && *end != ' '))
		goto syntax;
	for (; p < end; p++)
		n = n * 10 + (unsigned)(*p - '0');
	p = skip_spaces(end);
	if (*p != '\0') {
		if (strcasecmp(p, "LAST") != 0)
			goto syntax;
		last = 1;
	}
	len = snprintf(s->chunk_command, sizeof(s->chunk_command),
	    "BDAT %llu%s", n, last ? " LAST" : "");
	if (len < 0 || (size_t)len >= sizeof(s->chunk_command))
		s->chunk_command[0] = '\0';

	/* The reply comes with the end of the chunk: counted then. */
	s->verb = -1;
	s->chunk_left = n;
	s->chunk_last = last;
	s->chunk_discard = 0;
	if (s->state != STATE_RCPT && s->state != STATE_BDAT) {
		s->chunk_discard = 1;
		s->chunk_refusal = sequence_hint(s, "BDAT");
		s->chunk_counted = 1;
	} else if (s->state == STATE_RCPT) {
		if (s->sink != NULL && s->sink->open(s->sink_ctx) < 0) {
			log_warn(s->id, "cannot make room for a message");
			s->chunk_discard = 1;
			s->chunk_refusal = errno == ENOSPC || errno == EDQUOT
			    ? "452 4.3.1 Error: insufficient system storage"
			    : "451 4.3.0 Error: cannot accept a message now";
			s->chunk_counted = 0;
		} else {
			s->text_open = 1;
			text_begin(s);
			s->chunk_cr = 0;
			state_enter(s, STATE_BDAT);
		}
	}
	if (n == 0)
		chunk_done(s);
	return;

syntax:
	reply(s, "501 5.5.4 Syntax: BDAT octets [LAST]");
	if (buf_len(s->in) > 0) {
		log_info(s->id, "input after a BDAT of unknown size: %zu bytes "
		    "not run", buf_len(s->in));
		reply_uncounted(s, "554 5.5.0 Error: BDAT octets unknown, "
		    "closing");
		state_enter(s, STATE_CLOSED);
	} else {
		s->data_refused = 1;
	}
}

/*
 * chunk_feed - up to chunk_left octets of a BDAT chunk at p; returns how
 * many it took. They count against max_message_size as they are (RFC
 * 3030: as sent). A BINARYMIME body is kept as it is; any other is
 * text with CRLF line ends, kept with LF ends as DATA keeps it (so the
 * same message is the same bytes either way; a CR at the end of one
 * chunk and the LF at the start of the next are one line end), and a
 * bare CR or LF or a NUL refuses it as in DATA. There is no
 * dot-stuffing in BDAT.
 */
static size_t
chunk_feed(struct session *s, const char *p, size_t len)
{
	size_t n = len < s->chunk_left ? len : (size_t)s->chunk_left;
	size_t i, j;

	s->chunk_left -= n;
	if (!s->chunk_discard) {
		s->text_octets += n;
		if (!s->text_too_big && s->text_octets
		    > (unsigned long long)s->conf->max_message_size)
			s->text_too_big = 1;
		if (s->binarymime) {
			text_append(s, p, n, 0);
		} else {
			for (i = 0; i < n && !text_refused(s); i = j) {
				if (s->chunk_cr) {
					s->chunk_cr = 0;
					if (p[i] != '\n') {
						s->text_bare = 1;
						break;
					}
					text_append(s, "\n", 1, 0);
					j = i + 1;
					continue;
				}
				for (j = i; j < n && p[j] != '\r' && p[j] != '\n'
				    && p[j] != '\0'; j++)
					;
				if (j > i) {
					text_append(s, p + i, j - i, 0);
					continue;
				}
				if (p[i] == '\r') {
					s->chunk_cr = 1;
					j = i + 1;
				} else if (p[i] == '\n') {
					s->text_bare = 1;
				} else {
					s->text_nul = 1;
				}
			}
		}
		if (text_refused(s))
			text_close(s);
	}
	if (s->chunk_left == 0)
		chunk_done(s);
	return n;
}

/* chunk_done - the last octet of a chunk: answer it */
static void
chunk_done(struct session *s)
{
	s->lines++;
	s->command = s->chunk_command;
	if (s->chunk_discard) {
		if (s->chunk_counted)
			reply(s, "503 5.5.1 Error: %s", s->chunk_refusal);
		else {
			reply_uncounted(s, "%s", s->chunk_refusal);
			if (s->state != STATE_CLOSED)
				state_enter(s, STATE_GREETED);
			transaction_reset(s);
		}
		tally_count(s, TALLY_BDAT, 0);
		s->chunk_discard = 0;
		s->command = NULL;
		return;
	}
	if (s->chunk_last) {
		if (s->chunk_cr)
			s->text_bare = 1;
		if (s->smtputf8 && !s->hdr_done && s->u8_need > 0)
			s->text_bad_utf8 = 1;
	}
	if (text_refused(s))
		text_refuse(s, TALLY_BDAT);
	else if (s->chunk_last)
		text_hand_over(s, 1);
	else {
		reply(s, "250 2.0.0 Ok: %llu octets received", s->text_octets);
		tally_count(s, TALLY_BDAT, 1);
	}
	s->command = NULL;
}

static void
cmd_rset(struct session *s, char *arg)
{
	if (*arg != '\0') {
		reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	transaction_reset(s);
	if (s->state != STATE_START)
		state_enter(s, STATE_GREETED);
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, char *arg)
{
	(void)arg;
	reply(s, "250 2.0.0 Ok");
}

static void
cmd_help(struct session *s, char *arg)
{
	(void)arg;
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET "
	    "NOOP HELP VRFY QUIT");
}

static void
cmd_vrfy(struct session *s, char *arg)
{
	if (*arg == '\0') {
		reply(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* Never tell which users exist. */
	reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and "
	    "attempt delivery");
}

static void
cmd_quit(struct session *s, char *arg)
{
	(void)arg;
	reply(s, "221 2.0.0 Bye");
	log_info(s->id, "QUIT");
	state_enter(s, STATE_CLOSED);
}

/*
 * cmd_http - an HTTP request (or one of its header lines) on the SMTP
 * port: a cross-protocol attack would smuggle SMTP commands in the
 * request body, so the session ends before any of them is read.
 */
static void
cmd_http(struct session *s, char *arg)
{
	(void)arg;
	reply(s, "421 4.7.0 Error: HTTP is not SMTP, closing");
	state_enter(s, STATE_CLOSED);
}

/*
 * cmd_starttls - the checks in Postfix's order (syntax, TLS active,
 * offered), then the state; the handshake is the caller's, asked for
 * by the action that entering STATE_STARTTLS queues.
 */
static void
cmd_starttls(struct session *s, char *arg)
{
	if (*arg != '\0') {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->tls != NULL) {
		reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!s->tls_offer) {
		reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (s->state == STATE_START) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->state != STATE_GREETED) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	if (s->state == STATE_CLOSED)
		return;
	log_info(s->id, "STARTTLS");
	state_enter(s, STATE_STARTTLS);
}

static void
cmd_not_implemented(struct session *s, char *arg)
{
	(void)arg;
	reply(s, "502 5.5.1 Error: command not implemented");
}
