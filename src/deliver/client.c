/*
 * NAME
 *	client - the outbound SMTP engine: replies in, commands out
 * SYNOPSIS
 *	See client.h.
 * DESCRIPTION
 *	The engine keeps a queue of the commands sent whose replies have
 *	not come yet (pending): with PIPELINING one letter puts MAIL, its
 *	RCPTs and DATA there at once, and each reply that comes is matched
 *	against the oldest pending command. Recipients' results are set by
 *	the replies as RFC 5321 and RFC 2920 order them: a refused MAIL is
 *	every recipient's answer; RCPT answers its own recipient; a refused
 *	DATA or the reply to the final dot answers every recipient whose
 *	RCPT was accepted. After a failed transaction the next letter
 *	starts with RSET.
 *
 *	A 421 reply at any point means the server is closing: whatever is
 *	waiting gets that reply and the engine closes.
 *
 *	BDAT (BINARYMIME) has no 354: the text starts once every RCPT is
 *	sent, and each chunk is a pending command whose reply is read like
 *	any other; BDAT 0 LAST stands where the final dot would.
 * DIAGNOSTICS
 *	See client.h.
 * LIMITS
 *	CLIENT_PENDING_MAX commands in flight: a letter pipelines at most
 *	that many recipients minus three; the rest go as replies come.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "client.h"
#include "conf.h"
#include "log.h"

#define CLIENT_OUT_MAX		(4 * 1024 * 1024)
#define CLIENT_PENDING_MAX	128
#define CLIENT_NAME_MAX		256

enum client_cmd {
	CLIENT_CMD_GREETING,
	CLIENT_CMD_EHLO,
	CLIENT_CMD_HELO,
	CLIENT_CMD_STARTTLS,
	CLIENT_CMD_RSET,
	CLIENT_CMD_MAIL,
	CLIENT_CMD_RCPT,
	CLIENT_CMD_DATA,
	CLIENT_CMD_DOT,			/* the final dot, or BDAT 0 LAST */
	CLIENT_CMD_BDAT,		/* a chunk of a BINARYMIME text */
	CLIENT_CMD_QUIT,
};

enum client_state {
	CLIENT_ST_HELLO,		/* greeting, EHLO/HELO, STARTTLS */
	CLIENT_ST_TLS,			/* the caller starts TLS */
	CLIENT_ST_IDLE,			/* between letters */
	CLIENT_ST_LETTER,		/* MAIL, RCPT, DATA in flight */
	CLIENT_ST_BODY,			/* the caller sends the text */
	CLIENT_ST_DOT,			/* waiting for the final reply */
	CLIENT_ST_QUIT,			/* QUIT sent */
	CLIENT_ST_CLOSED,
};

struct client_pending {
	enum client_cmd cmd;
	size_t rcpt;			/* CLIENT_CMD_RCPT: which */
};

struct client {
	char *helo;
	int policy;
	int tls_available;
	enum client_state state;
	struct buf *out;
	struct buf *in;			/* a reply line not yet complete */

	struct client_reply reply;	/* the reply being read */
	int reply_lines;
	size_t reply_len;

	int ext;			/* CLIENT_EXT_* offered */
	unsigned long size_limit;
	char server_name[CLIENT_NAME_MAX];
	int tls_done;

	struct client_pending pending[CLIENT_PENDING_MAX];
	size_t pend_head, npending;

	/* The letter in flight. */
	const struct client_letter *letter;
	size_t next_rcpt;		/* the next RCPT to send */
	size_t naccepted;
	int mail_failed;
	int discard;			/* 354 with no recipient: dot, ignore */
	int bdat;			/* BINARYMIME: the text goes as BDAT */
	int bdat_first_line;		/* still in our LF-ended Received: */
	struct client_reply bdat_error;	/* the first chunk refused */
	int need_rset;
	unsigned char *skip;		/* recipients failed before RCPT */
	int body_bol;			/* the text is at the start of a line */
	struct client_result result;
	int have_result;

	struct client_reply session_error;
};

static void client_send(struct client *c, enum client_cmd cmd, size_t rcpt,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void client_reply_done(struct client *c);
static void client_hello_reply(struct client *c, enum client_cmd cmd,
    const struct client_reply *r);
static void client_letter_reply(struct client *c,
    const struct client_pending *p, const struct client_reply *r);
static void client_after_hello(struct client *c);
static void client_fail_session(struct client *c,
    const struct client_reply *r);
static void client_end_letter(struct client *c, int failed);
static void client_set_accepted(struct client *c,
    const struct client_reply *r);
static void client_send_rcpt(struct client *c);
static void client_start_text(struct client *c);
static int client_bdat(struct client *c, const char *data, size_t len);
static void client_skip_failed(struct client *c);
static int client_is_ascii(const char *s);
static void client_make_reply(struct client_reply *r, int code,
    const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int client_parse_line(struct client *c, const char *line,
    size_t len);
static void client_ehlo_keyword(struct client *c, const char *line);

struct client *
client_new(const char *helo_name, int policy, int tls_available)
{
	struct client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->helo = strdup(helo_name)) == NULL
	    || (c->out = buf_new(CLIENT_OUT_MAX)) == NULL
	    || (c->in = buf_new(CLIENT_LINE_MAX + 2)) == NULL) {
		client_free(c);
		return NULL;
	}
	c->policy = policy;
	c->tls_available = tls_available;
	c->state = CLIENT_ST_HELLO;
	c->pending[0].cmd = CLIENT_CMD_GREETING;
	c->npending = 1;
	return c;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	free(c->result.rcpt);
	free(c->skip);
	buf_free(c->in);
	buf_free(c->out);
	free(c->helo);
	free(c);
}

struct buf *
client_output(struct client *c)
{
	return c->out;
}

enum client_want
client_want(const struct client *c)
{
	switch (c->state) {
	case CLIENT_ST_CLOSED:
		return CLIENT_WANT_CLOSE;
	case CLIENT_ST_BODY:
		/*
		 * BDAT: one chunk at a time without PIPELINING (RFC 3030
		 * 4.2), and never more chunks in flight than we can track.
		 */
		if (c->bdat && c->npending >= ((c->ext & CLIENT_EXT_PIPELINING)
		    ? CLIENT_PENDING_MAX - 2 : 1))
			return CLIENT_WANT_REPLY;
		return CLIENT_WANT_BODY;
	case CLIENT_ST_TLS:
		return CLIENT_WANT_TLS;
	case CLIENT_ST_IDLE:
		return c->npending == 0 ? CLIENT_WANT_LETTER : CLIENT_WANT_REPLY;
	default:
		return CLIENT_WANT_REPLY;
	}
}

const struct client_result *
client_result(const struct client *c)
{
	return c->have_result ? &c->result : NULL;
}

void
client_result_clear(struct client *c)
{
	c->have_result = 0;
}

const struct client_reply *
client_session_error(const struct client *c)
{
	return &c->session_error;
}

const char *
client_server_name(const struct client *c)
{
	return c->server_name;
}

int
client_has(const struct client *c, int ext)
{
	return (c->ext & ext) != 0;
}

unsigned long
client_size_limit(const struct client *c)
{
	return c->size_limit;
}

int
client_timeout(const struct client *c)
{
	if (c->state == CLIENT_ST_BODY)
		return 180;
	/* The handshake is waited for like a reply (Postfix: 300 s). */
	if (c->state == CLIENT_ST_TLS)
		return 300;
	if (c->npending == 0)
		return 0;
	switch (c->pending[c->pend_head].cmd) {
	case CLIENT_CMD_DATA:
		return 120;
	case CLIENT_CMD_DOT:
		return 600;
	default:
		return 300;
	}
}

/* client_make_reply - a reply made here (no server said it) */
static void
client_make_reply(struct client_reply *r, int code, const char *status,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	memset(r, 0, sizeof(*r));
	r->code = code;
	(void)snprintf(r->status, sizeof(r->status), "%s", status);
	n = snprintf(r->text, sizeof(r->text), "%d %s ", code, status);
	if (n < 0 || (size_t)n >= sizeof(r->text))
		return;
	va_start(ap, fmt);
	/* A cut diagnostic is still a diagnostic: the text is bounded. */
	(void)vsnprintf(r->text + n, sizeof(r->text) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* client_send - one command line, and the reply it waits for */
static void
client_send(struct client *c, enum client_cmd cmd, size_t rcpt,
    const char *fmt, ...)
{
	char line[CLIENT_LINE_MAX];
	va_list ap;
	int n;
	size_t slot;

	if (c->npending == CLIENT_PENDING_MAX)
		log_panic(__func__, "too many commands in flight");
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		log_panic(__func__, "a command longer than a line");
	memcpy(line + n, "\r\n", 2);
	if (buf_append(c->out, line, (size_t)n + 2) < 0)
		log_panic(__func__, "output buffer full");
	slot = (c->pend_head + c->npending) % CLIENT_PENDING_MAX;
	c->pending[slot].cmd = cmd;
	c->pending[slot].rcpt = rcpt;
	c->npending++;
}

int
client_feed(struct client *c, const char *data, size_t len)
{
	const char *lf;
	size_t take;

	/*
	 * RFC 3207 4.2 (and CVE-2011-0411 the other way round): what the
	 * server sent after its 220 to STARTTLS, in plaintext, is never
	 * read as SMTP.
	 */
	while (len > 0 && c->state != CLIENT_ST_CLOSED
	    && c->state != CLIENT_ST_TLS) {
		lf = memchr(data, '\n', len);
		take = lf != NULL ? (size_t)(lf - data) + 1 : len;
		if (buf_append(c->in, data, take) < 0) {
			client_lost(c, "a reply line over 2048 bytes");
			return -1;
		}
		data += take;
		len -= take;
		if (lf == NULL)
			break;
		take = buf_len(c->in) - 1;
		if (take > 0 && buf_data(c->in)[take - 1] == '\r')
			take--;
		if (client_parse_line(c, buf_data(c->in), take) < 0) {
			buf_reset(c->in);
			client_lost(c, "a malformed reply");
			return -1;
		}
		buf_reset(c->in);
	}
	return 0;
}

/*
 * client_parse_line - one reply line: "NNN-text" continues, "NNN text"
 * or "NNN" ends the reply. Returns -1 when it is not a reply line.
 */
static int
client_parse_line(struct client *c, const char *line, size_t len)
{
	struct client_reply *r = &c->reply;
	const char *text;
	size_t tlen, room;
	int code, last, n;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0'
	    || line[1] > '9' || line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	last = len == 3 || line[3] == ' ';
	if (c->reply_lines > 0 && code != r->code)
		return -1;
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (c->reply_lines == 0) {
		memset(r, 0, sizeof(*r));
		r->code = code;
		c->reply_len = 0;
		/* The enhanced status code: class.subject.detail */
		n = 0;
		if (tlen >= 5 && text[0] == line[0] && text[1] == '.') {
			size_t i = 2, dots = 0;

			while (i < tlen && i < sizeof(r->status) - 1
			    && (text[i] == '.' || (text[i] >= '0'
			    && text[i] <= '9'))) {
				dots += text[i] == '.';
				i++;
			}
			if (dots == 1 && (i == tlen || text[i] == ' ')
			    && text[i - 1] != '.') {
				memcpy(r->status, text, i);
				r->status[i] = '\0';
				n = 1;
			}
		}
		if (!n)
			(void)snprintf(r->status, sizeof(r->status), "%c.0.0",
			    line[0]);
		n = snprintf(r->text, sizeof(r->text), "%d", code);
		c->reply_len = n > 0 ? (size_t)n : 0;
	}
	if (c->reply_lines == 0 && c->state == CLIENT_ST_HELLO
	    && c->npending > 0
	    && (c->pending[c->pend_head].cmd == CLIENT_CMD_EHLO
	    || c->pending[c->pend_head].cmd == CLIENT_CMD_HELO) && code / 100 == 2) {
		size_t w = 0;

		while (w < tlen && w < sizeof(c->server_name) - 1
		    && text[w] != ' ')
			w++;
		memcpy(c->server_name, text, w);
		c->server_name[w] = '\0';
	} else if (c->reply_lines > 0 && c->npending > 0
	    && c->pending[c->pend_head].cmd == CLIENT_CMD_EHLO
	    && code / 100 == 2) {
		char kw[CLIENT_LINE_MAX];

		memcpy(kw, text, tlen);
		kw[tlen] = '\0';
		client_ehlo_keyword(c, kw);
	}
	/* The text kept: the lines joined, bounded, control bytes dropped. */
	room = sizeof(r->text) - 1 - c->reply_len;
	if (tlen > 0 && room > 1) {
		size_t i;

		r->text[c->reply_len++] = ' ';
		room--;
		for (i = 0; i < tlen && room > 0; i++) {
			unsigned char ch = (unsigned char)text[i];

			r->text[c->reply_len++] = ch < 0x20 || ch > 0x7e
			    ? '?' : (char)ch;
			room--;
		}
		r->text[c->reply_len] = '\0';
	}
	c->reply_lines++;
	if (last) {
		c->reply_lines = 0;
		client_reply_done(c);
	}
	return 0;
}

/* client_ehlo_keyword - one line of an EHLO reply after the first */
static void
client_ehlo_keyword(struct client *c, const char *line)
{
	static const struct {
		const char *name;
		int ext;
	} kws[] = {
		{ "PIPELINING", CLIENT_EXT_PIPELINING },
		{ "SIZE", CLIENT_EXT_SIZE },
		{ "8BITMIME", CLIENT_EXT_8BITMIME },
		{ "STARTTLS", CLIENT_EXT_STARTTLS },
		{ "ENHANCEDSTATUSCODES", CLIENT_EXT_ENHANCED },
		{ "DSN", CLIENT_EXT_DSN },
		{ "SMTPUTF8", CLIENT_EXT_SMTPUTF8 },
		{ "CHUNKING", CLIENT_EXT_CHUNKING },
		{ "BINARYMIME", CLIENT_EXT_BINARYMIME },
	};
	size_t i, n;

	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		n = strlen(kws[i].name);
		if (strncasecmp(line, kws[i].name, n) != 0
		    || (line[n] != '\0' && line[n] != ' '))
			continue;
		c->ext |= kws[i].ext;
		if (kws[i].ext == CLIENT_EXT_SIZE && line[n] == ' ') {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(line + n + 1, &end, 10);
			if (errno == 0 && end != line + n + 1)
				c->size_limit = v;
		}
	}
}

/* client_reply_done - a whole reply: match it with the oldest command */
static void
client_reply_done(struct client *c)
{
	struct client_reply r = c->reply;
	struct client_pending p;

	if (c->npending == 0)
		return;			/* unasked for: ignored */
	p = c->pending[c->pend_head];
	c->pend_head = (c->pend_head + 1) % CLIENT_PENDING_MAX;
	c->npending--;

	if (p.cmd == CLIENT_CMD_QUIT) {
		c->state = CLIENT_ST_CLOSED;
		return;
	}
	if (r.code == 421) {
		/* The server is going away: r answers whatever waits. */
		if (c->state == CLIENT_ST_HELLO || c->state == CLIENT_ST_IDLE)
			c->session_error = r;
		if (c->letter != NULL) {
			c->npending = 0;
			client_set_accepted(c, &r);
			client_end_letter(c, 1);
		}
		c->npending = 0;
		c->state = CLIENT_ST_CLOSED;
		return;
	}
	switch (p.cmd) {
	case CLIENT_CMD_GREETING:
	case CLIENT_CMD_EHLO:
	case CLIENT_CMD_HELO:
	case CLIENT_CMD_STARTTLS:
		client_hello_reply(c, p.cmd, &r);
		break;
	default:
		client_letter_reply(c, &p, &r);
		break;
	}
}

/* client_fail_session - the connection cannot carry mail: say why, QUIT */
static void
client_fail_session(struct client *c, const struct client_reply *r)
{
	c->session_error = *r;
	c->state = CLIENT_ST_QUIT;
	client_send(c, CLIENT_CMD_QUIT, 0, "QUIT");
}

static void
client_hello_reply(struct client *c, enum client_cmd cmd,
    const struct client_reply *r)
{
	int ok = r->code / 100 == 2;

	switch (cmd) {
	case CLIENT_CMD_GREETING:
		if (r->code != 220) {
			client_fail_session(c, r);
			return;
		}
		client_send(c, CLIENT_CMD_EHLO, 0, "EHLO %s", c->helo);
		return;
	case CLIENT_CMD_EHLO:
		if (ok) {
			client_after_hello(c);
			return;
		}
		if (r->code / 100 == 5) {
			/* RFC 5321 3.2: an old server; HELO, no extensions. */
			c->ext = 0;
			c->size_limit = 0;
			client_send(c, CLIENT_CMD_HELO, 0, "HELO %s", c->helo);
			return;
		}
		client_fail_session(c, r);
		return;
	case CLIENT_CMD_HELO:
		if (!ok) {
			client_fail_session(c, r);
			return;
		}
		client_after_hello(c);
		return;
	case CLIENT_CMD_STARTTLS:
		if (r->code == 220) {
			c->state = CLIENT_ST_TLS;
			return;
		}
		if (c->policy == CONF_TLS_ENCRYPT) {
			client_fail_session(c, r);
			return;
		}
		c->state = CLIENT_ST_IDLE;
		return;
	default:
		log_panic(__func__, "command %d", (int)cmd);
	}
}

/*
 * client_after_hello - EHLO or HELO accepted. The one place of the TLS
 * policy: STARTTLS now, or refuse to go on without it, or go on plain.
 */
static void
client_after_hello(struct client *c)
{
	struct client_reply r;
	int offered = (c->ext & CLIENT_EXT_STARTTLS) != 0;

	if (!c->tls_done && c->policy != CONF_TLS_NONE) {
		if (c->policy == CONF_TLS_ENCRYPT && !c->tls_available) {
			client_make_reply(&r, 451, "4.7.5", "TLS not available "
			    "(delivery.tls = \"encrypt\", but this delivery "
			    "agent cannot start TLS)");
			client_fail_session(c, &r);
			return;
		}
		if (c->policy == CONF_TLS_ENCRYPT && !offered) {
			client_make_reply(&r, 454, "4.7.5", "TLS required "
			    "(delivery.tls = \"encrypt\") but STARTTLS is not "
			    "offered");
			client_fail_session(c, &r);
			return;
		}
		if (offered && c->tls_available) {
			client_send(c, CLIENT_CMD_STARTTLS, 0, "STARTTLS");
			return;
		}
	}
	c->state = CLIENT_ST_IDLE;
}

void
client_tls_started(struct client *c)
{
	if (c->state != CLIENT_ST_TLS)
		log_panic(__func__, "not starting TLS");
	/* RFC 3207 4.2: forget everything the server said before. */
	c->tls_done = 1;
	buf_reset(c->in);
	c->reply_lines = 0;
	c->ext = 0;
	c->size_limit = 0;
	c->server_name[0] = '\0';
	c->state = CLIENT_ST_HELLO;
	client_send(c, CLIENT_CMD_EHLO, 0, "EHLO %s", c->helo);
}

int
client_letter(struct client *c, const struct client_letter *l)
{
	struct client_reply *v, r;
	unsigned char *skip;
	char size[32];
	size_t i;
	int n, dsn, utf8;

	if (client_want(c) != CLIENT_WANT_LETTER || l->nrcpts == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((v = calloc(l->nrcpts, sizeof(*v))) == NULL)
		return -1;
	if ((skip = calloc(l->nrcpts, 1)) == NULL) {
		free(v);
		return -1;
	}
	free(c->result.rcpt);
	free(c->skip);
	c->result.rcpt = v;
	c->skip = skip;
	c->result.nrcpts = l->nrcpts;
	c->have_result = 0;
	c->letter = l;
	c->next_rcpt = 0;
	c->naccepted = 0;
	c->mail_failed = 0;
	c->discard = 0;
	c->bdat = 0;
	c->bdat_error.code = 0;

	r.code = 0;
	if ((c->ext & CLIENT_EXT_SIZE) && c->size_limit > 0
	    && l->size > c->size_limit)
		client_make_reply(&r, 552, "5.3.4", "message size %zu exceeds "
		    "the size limit %lu of the server", l->size,
		    c->size_limit);
	else if (l->binarymime && (c->ext & (CLIENT_EXT_CHUNKING
	    | CLIENT_EXT_BINARYMIME)) != (CLIENT_EXT_CHUNKING
	    | CLIENT_EXT_BINARYMIME))
		client_make_reply(&r, 554, "5.6.3", "BODY=BINARYMIME, but the "
		    "server does not offer CHUNKING and BINARYMIME");
	else if (l->smtputf8 && !(c->ext & CLIENT_EXT_SMTPUTF8)
	    && !client_is_ascii(l->sender))
		client_make_reply(&r, 553, "5.6.7", "the sender's address "
		    "needs SMTPUTF8, which the server does not offer");
	utf8 = l->smtputf8 && (c->ext & CLIENT_EXT_SMTPUTF8);
	/* RFC 6531 3.2: without SMTPUTF8 a UTF-8 address cannot go. */
	for (i = 0; r.code == 0 && i < l->nrcpts; i++)
		if (l->smtputf8 && !utf8 && !client_is_ascii(l->rcpts[i])) {
			client_make_reply(&c->result.rcpt[i], 553, "5.6.7",
			    "the address needs SMTPUTF8, which the server does "
			    "not offer");
			c->skip[i] = 1;
		}
	if (r.code != 0) {
		for (i = 0; i < l->nrcpts; i++)
			c->result.rcpt[i] = r;
	}
	client_skip_failed(c);
	if (r.code != 0 || c->next_rcpt == l->nrcpts) {
		/* Nobody left to send to: nothing is sent. */
		c->letter = NULL;
		c->have_result = 1;
		return 0;
	}
	dsn = (c->ext & CLIENT_EXT_DSN) != 0;
	c->bdat = l->binarymime;
	c->state = CLIENT_ST_LETTER;
	if (c->need_rset) {
		client_send(c, CLIENT_CMD_RSET, 0, "RSET");
		c->need_rset = 0;
	}
	size[0] = '\0';
	if (c->ext & CLIENT_EXT_SIZE) {
		n = snprintf(size, sizeof(size), " SIZE=%zu", l->size);
		if (n < 0 || (size_t)n >= sizeof(size))
			log_panic(__func__, "SIZE= does not fit");
	}
	client_send(c, CLIENT_CMD_MAIL, 0, "MAIL FROM:<%s>%s%s%s%s%s",
	    l->sender, size, c->bdat ? " BODY=BINARYMIME" : l->eightbit
	    && (c->ext & CLIENT_EXT_8BITMIME) ? " BODY=8BITMIME" : "",
	    utf8 ? " SMTPUTF8" : "",
	    dsn && l->mail_dsn != NULL && *l->mail_dsn ? " " : "",
	    dsn && l->mail_dsn != NULL ? l->mail_dsn : "");
	if (c->ext & CLIENT_EXT_PIPELINING) {
		/* RFC 2920: MAIL, every RCPT and DATA in one go. */
		while (c->next_rcpt < l->nrcpts
		    && c->npending < CLIENT_PENDING_MAX - 1)
			client_send_rcpt(c);
		if (c->next_rcpt == l->nrcpts)
			client_start_text(c);
	}
	return 0;
}

/*
 * client_start_text - every RCPT is sent: DATA, or with BINARYMIME the
 * text at once as BDAT chunks (RFC 3030: no 354 to wait for)
 */
static void
client_start_text(struct client *c)
{
	if (!c->bdat) {
		client_send(c, CLIENT_CMD_DATA, 0, "DATA");
		return;
	}
	c->state = CLIENT_ST_BODY;
	c->bdat_first_line = 1;
}

/* client_send_rcpt - RCPT for the next recipient not failed already */
static void
client_send_rcpt(struct client *c)
{
	const struct client_letter *l = c->letter;
	const char *p = NULL;
	size_t i = c->next_rcpt++;

	if ((c->ext & CLIENT_EXT_DSN) && l->rcpt_dsn != NULL)
		p = l->rcpt_dsn[i];
	client_send(c, CLIENT_CMD_RCPT, i, "RCPT TO:<%s>%s%s", l->rcpts[i],
	    p != NULL && *p ? " " : "", p != NULL ? p : "");
	client_skip_failed(c);
}

/* client_skip_failed - next_rcpt past recipients that failed before RCPT */
static void
client_skip_failed(struct client *c)
{
	while (c->next_rcpt < c->letter->nrcpts && c->skip[c->next_rcpt])
		c->next_rcpt++;
}

static int
client_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* client_set_accepted - r answers every recipient still waiting */
static void
client_set_accepted(struct client *c, const struct client_reply *r)
{
	size_t i;

	for (i = 0; i < c->result.nrcpts; i++)
		if (c->result.rcpt[i].code == 0
		    || c->result.rcpt[i].code / 100 == 2)
			c->result.rcpt[i] = *r;
}

/* client_end_letter - the letter's results are final */
static void
client_end_letter(struct client *c, int failed)
{
	c->letter = NULL;
	c->have_result = 1;
	c->need_rset = failed;
	if (c->state != CLIENT_ST_CLOSED && c->state != CLIENT_ST_QUIT)
		c->state = CLIENT_ST_IDLE;
}

static void
client_letter_reply(struct client *c, const struct client_pending *p,
    const struct client_reply *r)
{
	size_t i;
	int ok = r->code / 100 == 2;

	switch (p->cmd) {
	case CLIENT_CMD_RSET:
		return;
	case CLIENT_CMD_MAIL:
		if (!ok) {
			c->mail_failed = 1;
			for (i = 0; i < c->result.nrcpts; i++)
				if (!c->skip[i])
					c->result.rcpt[i] = *r;
			/* Pipelined: the RCPT and DATA replies still come. */
			if (!(c->ext & CLIENT_EXT_PIPELINING))
				client_end_letter(c, 1);
			return;
		}
		if (!(c->ext & CLIENT_EXT_PIPELINING))
			client_send_rcpt(c);
		return;
	case CLIENT_CMD_RCPT:
		if (!c->mail_failed) {
			c->result.rcpt[p->rcpt] = *r;
			if (ok)
				c->naccepted++;
		}
		if (c->next_rcpt < c->letter->nrcpts) {
			client_send_rcpt(c);
			if ((c->ext & CLIENT_EXT_PIPELINING)
			    && c->next_rcpt == c->letter->nrcpts)
				client_start_text(c);
			return;
		}
		if (!(c->ext & CLIENT_EXT_PIPELINING)) {
			if (c->naccepted > 0)
				client_start_text(c);
			else
				client_end_letter(c, 1);
		}
		return;
	case CLIENT_CMD_DATA:
		if (c->mail_failed || c->naccepted == 0) {
			if (r->code == 354) {
				/* Nobody to send to: an empty text, ignored. */
				c->discard = 1;
				c->state = CLIENT_ST_DOT;
				if (buf_append(c->out, ".\r\n", 3) < 0)
					log_panic(__func__, "output full");
				c->pending[(c->pend_head + c->npending)
				    % CLIENT_PENDING_MAX].cmd = CLIENT_CMD_DOT;
				c->npending++;
				return;
			}
			client_end_letter(c, 1);
			return;
		}
		if (r->code == 354) {
			c->state = CLIENT_ST_BODY;
			c->body_bol = 1;
			return;
		}
		client_set_accepted(c, r);
		client_end_letter(c, 1);
		return;
	case CLIENT_CMD_BDAT:
		if (!ok && c->bdat_error.code == 0)
			c->bdat_error = *r;
		return;
	case CLIENT_CMD_DOT:
		/* RFC 3030 2: after a refused chunk, that refusal counts. */
		if (c->bdat && c->bdat_error.code != 0) {
			r = &c->bdat_error;
			ok = 0;
		}
		if (!c->discard)
			client_set_accepted(c, r);
		client_end_letter(c, c->discard || !ok);
		return;
	default:
		log_panic(__func__, "command %d", (int)p->cmd);
	}
}

int
client_body(struct client *c, const char *data, size_t len)
{
	const char *lf;
	size_t span;

	if (client_want(c) != CLIENT_WANT_BODY) {
		errno = EINVAL;
		return -1;
	}
	if (c->bdat)
		return client_bdat(c, data, len);
	while (len > 0) {
		if (c->body_bol && data[0] == '.'
		    && buf_append(c->out, ".", 1) < 0)
			return -1;
		lf = memchr(data, '\n', len);
		span = lf != NULL ? (size_t)(lf - data) : len;
		if (span > 0 && buf_append(c->out, data, span) < 0)
			return -1;
		if (lf == NULL) {
			c->body_bol = 0;
			break;
		}
		if (buf_append(c->out, "\r\n", 2) < 0)
			return -1;
		c->body_bol = 1;
		data += span + 1;
		len -= span + 1;
	}
	return 0;
}

/*
 * client_bdat - one BDAT chunk of the bytes as they are: no dot-stuffing,
 * no line ends changed, except the LF that ends the queue's own first
 * line (our Received:, written with LF) which becomes CRLF
 */
static int
client_bdat(struct client *c, const char *data, size_t len)
{
	char head[40];
	const char *lf = NULL;
	size_t slot, span = len;
	int n;

	if (c->bdat_first_line && (lf = memchr(data, '\n', len)) != NULL)
		span = (size_t)(lf - data);
	n = snprintf(head, sizeof(head), "BDAT %zu\r\n", len
	    + (lf != NULL && (span == 0 || data[span - 1] != '\r')));
	if (n < 0 || (size_t)n >= sizeof(head))
		log_panic(__func__, "BDAT line does not fit");
	if (buf_append(c->out, head, (size_t)n) < 0
	    || buf_append(c->out, data, span) < 0)
		return -1;
	if (lf != NULL) {
		c->bdat_first_line = 0;
		if ((span == 0 || data[span - 1] != '\r')
		    && buf_append(c->out, "\r", 1) < 0)
			return -1;
		if (buf_append(c->out, data + span, len - span) < 0)
			return -1;
	}
	slot = (c->pend_head + c->npending) % CLIENT_PENDING_MAX;
	c->pending[slot].cmd = CLIENT_CMD_BDAT;
	c->npending++;
	return 0;
}

int
client_body_end(struct client *c)
{
	size_t slot;

	if (client_want(c) != CLIENT_WANT_BODY) {
		errno = EINVAL;
		return -1;
	}
	if (c->bdat) {
		if (buf_append(c->out, "BDAT 0 LAST\r\n", 13) < 0)
			return -1;
	} else {
		if (!c->body_bol && buf_append(c->out, "\r\n", 2) < 0)
			return -1;
		if (buf_append(c->out, ".\r\n", 3) < 0)
			return -1;
	}
	slot = (c->pend_head + c->npending) % CLIENT_PENDING_MAX;
	c->pending[slot].cmd = CLIENT_CMD_DOT;
	c->npending++;
	c->state = CLIENT_ST_DOT;
	return 0;
}

void
client_quit(struct client *c)
{
	if (c->state != CLIENT_ST_IDLE || c->npending > 0)
		return;
	c->state = CLIENT_ST_QUIT;
	client_send(c, CLIENT_CMD_QUIT, 0, "QUIT");
}

void
client_lost(struct client *c, const char *reason)
{
	struct client_reply r;

	if (c->state == CLIENT_ST_CLOSED)
		return;
	client_make_reply(&r, 421, "4.4.2", "lost connection: %s", reason);
	if (c->letter != NULL) {
		client_set_accepted(c, &r);
		client_end_letter(c, 1);
	} else if (c->state != CLIENT_ST_QUIT
	    && c->session_error.code == 0)
		c->session_error = r;
	c->npending = 0;
	c->state = CLIENT_ST_CLOSED;
}
