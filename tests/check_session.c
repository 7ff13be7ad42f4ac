/*
 * NAME
 *	check_session - Check suite of the SMTP protocol engine
 * SYNOPSIS
 *	tests/check_session
 * DESCRIPTION
 *	Drives struct session with client bytes and compares the replies and
 *	the messages it hands over with what a client must see: every
 *	command in every state, pipelined batches (whole and one byte at a
 *	time must give the same output), hostile bytes in commands, every
 *	smuggling ending in DATA, dot-stuffing, size and recipient limits,
 *	relay control, the error limit, timeouts and storage results.
 *
 *	Dialog transcripts, tests/transcripts/ *.dlg, are replayed through
 *	the engine, one Check test per file, twice: once with every client
 *	line handed over whole, once one byte at a time. A transcript is a
 *	text file of lines (the file's own line end is not part of a line):
 *
 *	  # comment             ignored, as are empty lines
 *	  C: text               the client sends text, then CRLF
 *	  C- text               the client sends text, nothing appended
 *	  S: reply              the next reply line (without CRLF) is exactly
 *	                        "reply"; a trailing '*' makes it a prefix
 *	  ! relay               (before the first C:) the client may relay
 *	  ! stored OK ID        answer the pending message: queued as ID
 *	  ! stored TEMPFAIL     ... 451 4.3.0
 *	  ! stored NOSPACE      ... 452 4.3.1
 *	  ! expect-text ESC     the pending message text is exactly ESC
 *	  ! expect-sender ESC   the pending message's reverse-path
 *	  ! expect-params ESC   the pending message's MAIL parameters
 *	  ! expect-rcpts A:M .. the pending message's recipients in order,
 *	                        address A and mailbox M ("-" for remote)
 *	  ! no-pending          no message waits to be stored
 *	  ! timeout             the command timer runs out
 *	  ! shutdown            the daemon stops
 *	  ! closed              the session is closing
 *	  ! tls-offer           STARTTLS may be offered (session_tls_offer())
 *	  ! starttls            the STARTTLS action is due: take it, drop
 *	                        the client bytes not taken (they would go
 *	                        to the handshake) and finish the handshake
 *	                        with TLS_TEXT
 *	  ! implicit-tls        the connection is TLS from the start
 *	  ! expect-tls ESC      the pending message's TLS description ("-":
 *	                        none)
 *
 *	In C:, C- and ESC text the escapes \r \n \t \0 \\ and \xHH stand
 *	for their bytes. Client bytes the session cannot take yet (a message
 *	is pending) are kept and handed over after "! stored". At the end of
 *	a transcript every reply must have been matched by an S: line.
 *
 *	The engine runs against a fixed configuration: hostname
 *	mx.example.org, local domains example.org and example.net, users
 *	alice, bob and Carol, postmaster alice, max_recipients 5,
 *	max_message_size 4096.
 * DIAGNOSTICS
 *	Exit status 0 when every test passed.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "session.h"

#ifndef TEST_SRCDIR
#error "TEST_SRCDIR must name the tests source directory"
#endif

#define HOST		"mx.example.org"
#define GREETING	"220 " HOST " ESMTP pollsmtpd\r\n"
#define EHLO_REPLY	"250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 4096\r\n" \
			"250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n" \
			"250-SMTPUTF8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n" \
			"250-DSN\r\n250-LIMITS RCPTMAX=5\r\n250 HELP\r\n"
#define TLS_TEXT	"TLSv1.3 with cipher TEST (256/256 bits)"
#define MAX_SIZE	4096
#define MAX_RCPTS	5

static struct conf *conf;

/* Log records, kept for the tests that look at them (and off stderr). */
static char *logged;
static size_t loggedlen;
#define LOGGED_MAX	(256 * 1024)

/*
 * The session's sink in these tests: the text in memory, with counts
 * of opens and closes (they must pair), and failures on demand.
 */
struct textsink {
	char *data;		/* the last message's text, NUL-terminated */
	size_t len;
	int open;
	unsigned opens;
	unsigned closes;
	int fail_open;		/* errno for open(), or 0 */
	int fail_write;		/* errno for write() once past fail_after */
	size_t fail_after;
};

/* One simulated client: what it still has to send, what it was told. */
struct client {
	struct session *s;
	int relay;
	size_t chunk;		/* bytes a session_input() call; 0: all it takes */
	char *pend;		/* client bytes the session has not taken yet */
	size_t pendlen;
	char *out;		/* every reply byte received, NUL-terminated */
	size_t outlen;
	size_t outread;		/* bytes of out already looked at */
	struct textsink text;	/* the session's sink */
	unsigned stored;	/* messages answered automatically */
	char *log;		/* summary of those messages */
	size_t loglen;
};

static int sink_open(void *ctx);
static int sink_write(void *ctx, const char *text, size_t len);
static void sink_close(void *ctx);
static const char *msg_text(struct client *c,
    const struct session_message *m);
static struct conf *make_conf(void);

static const struct session_sink test_sink = {
	sink_open, sink_write, sink_close,
};
static void setup(void);
static void teardown(void);
static struct client *client_new(int relay, size_t chunk);
static void client_free(struct client *c);
static void append(char **p, size_t *len, const char *data, size_t n);
static void client_drain(struct client *c);
static void client_pump(struct client *c);
static void client_send(struct client *c, const char *data, size_t len);
static const char *say(struct client *c, const char *text);
static const char *unread(struct client *c);
static char *next_line(struct client *c);
static void message_summary(struct client *c,
    const struct session_message *m);
static char *run_stream(const char *in, size_t len, size_t chunk, int relay,
    char **log);
static size_t unescape(const char *src, char *dst);
static void expect_prefix(const char *got, const char *want);
static void log_keep(enum log_level level, const char *record, size_t len,
    void *ctx);
static Suite *session_suite(void);

static void
log_keep(enum log_level level, const char *record, size_t len, void *ctx)
{
	(void)level;
	(void)ctx;
	if (loggedlen + len + 1 > LOGGED_MAX)
		return;
	append(&logged, &loggedlen, record, len);
	append(&logged, &loggedlen, "\n", 1);
}

static int
sink_open(void *ctx)
{
	struct textsink *t = ctx;

	ck_assert_int_eq(t->open, 0);
	if (t->fail_open != 0) {
		errno = t->fail_open;
		return -1;
	}
	t->open = 1;
	t->opens++;
	t->len = 0;
	append(&t->data, &t->len, "", 0);
	return 0;
}

static int
sink_write(void *ctx, const char *text, size_t len)
{
	struct textsink *t = ctx;

	ck_assert_int_eq(t->open, 1);
	ck_assert_uint_gt(len, 0);
	if (t->fail_write != 0 && t->len + len > t->fail_after) {
		errno = t->fail_write;
		return -1;
	}
	append(&t->data, &t->len, text, len);
	return 0;
}

static void
sink_close(void *ctx)
{
	struct textsink *t = ctx;

	ck_assert_int_eq(t->open, 1);
	t->open = 0;
	t->closes++;
}

/* msg_text - the text of the pending message m: what the sink holds */
static const char *
msg_text(struct client *c, const struct session_message *m)
{
	ck_assert_int_eq(c->text.open, 1);
	ck_assert_uint_eq(c->text.len, m->size);
	return c->text.data;
}

static void
conf_report_fail(const char *message, void *ctx)
{
	(void)ctx;
	ck_abort_msg("test configuration: %s", message);
}

/*
 * make_conf - the configuration of every test, loaded as a daemon
 * loads its file, so that aliases are resolved by conf itself
 */
static struct conf *
make_conf(void)
{
	static const char text[] =
	    "hostname = \"" HOST "\";\n"
	    "server = { max_recipients = 5; max_message_size = 4096; };\n"
	    "local = {\n"
	    "  domains = [ \"example.org\", \"example.net\" ];\n"
	    "  users = [ \"alice\", \"bob\", \"Carol\" ];\n"
	    "  postmaster = \"alice\";\n"
	    "  aliases = {\n"
	    "    info = [ \"alice\", \"bob\" ];\n"
	    "    sales = [ \"info\", \"carol@example.net\",\n"
	    "      \"partner@remote.example\" ];\n"
	    "    staff = [ \"sales\", \"bob+staff\" ];\n"
	    "    away = [ \"someone@elsewhere.example\" ];\n"
	    "  };\n"
	    "};\n";
	char path[] = "/tmp/check_session.XXXXXX";
	struct conf *c;
	FILE *f;
	int fd;

	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	ck_assert_uint_eq(fwrite(text, 1, sizeof(text) - 1, f),
	    sizeof(text) - 1);
	ck_assert_int_eq(fclose(f), 0);
	c = conf_load(path, conf_report_fail, NULL);
	unlink(path);
	ck_assert_ptr_nonnull(c);
	return c;
}

static void
setup(void)
{
	conf = make_conf();
	log_set_sink(log_keep, NULL);
}

static void
teardown(void)
{
	conf_free(conf);
	conf = NULL;
	log_set_sink(NULL, NULL);
	free(logged);
	logged = NULL;
	loggedlen = 0;
}

static void
append(char **p, size_t *len, const char *data, size_t n)
{
	char *q;

	q = realloc(*p, *len + n + 1);
	ck_assert_ptr_nonnull(q);
	memcpy(q + *len, data, n);
	*len += n;
	q[*len] = '\0';
	*p = q;
}

static struct client *
client_new(int relay, size_t chunk)
{
	struct client *c;

	c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->relay = relay;
	c->chunk = chunk;
	c->s = session_new(conf, "127.0.0.1", relay, "S1", &test_sink,
	    &c->text);
	ck_assert_ptr_nonnull(c->s);
	append(&c->out, &c->outlen, "", 0);
	append(&c->log, &c->loglen, "", 0);
	client_drain(c);
	return c;
}

static void
client_free(struct client *c)
{
	session_free(c->s);
	/* Every text the session opened it closed, also when freed in DATA. */
	ck_assert_uint_eq(c->text.opens, c->text.closes);
	free(c->text.data);
	free(c->pend);
	free(c->out);
	free(c->log);
	free(c);
}

/* client_drain - read every reply byte the session has queued */
static void
client_drain(struct client *c)
{
	const char *data;
	size_t len;

	data = session_output(c->s, &len);
	if (len > 0) {
		append(&c->out, &c->outlen, data, len);
		session_output_drop(c->s, len);
	}
}

/* client_pump - hand over as many kept client bytes as the session takes */
static void
client_pump(struct client *c)
{
	size_t room, n;

	client_drain(c);
	while (c->pendlen > 0) {
		if ((room = session_input_room(c->s)) == 0) {
			client_drain(c);
			if ((room = session_input_room(c->s)) == 0)
				break;
		}
		n = c->pendlen < room ? c->pendlen : room;
		if (c->chunk > 0 && n > c->chunk)
			n = c->chunk;
		ck_assert_int_eq(session_input(c->s, c->pend, n), 0);
		memmove(c->pend, c->pend + n, c->pendlen - n);
		c->pendlen -= n;
		client_drain(c);
	}
}

static void
client_send(struct client *c, const char *data, size_t len)
{
	append(&c->pend, &c->pendlen, data, len);
	client_pump(c);
}

/* unread - the replies not looked at yet; they count as read now */
static const char *
unread(struct client *c)
{
	const char *p = c->out + c->outread;

	c->outread = c->outlen;
	return p;
}

/* say - send text as it is and return the replies it brought */
static const char *
say(struct client *c, const char *text)
{
	client_send(c, text, strlen(text));
	return unread(c);
}

/* next_line - the next unread reply line without CRLF (malloc'ed), or NULL */
static char *
next_line(struct client *c)
{
	const char *start = c->out + c->outread, *end;
	char *line;

	if ((end = strstr(start, "\r\n")) == NULL)
		return NULL;
	line = strndup(start, (size_t)(end - start));
	ck_assert_ptr_nonnull(line);
	c->outread += (size_t)(end - start) + 2;
	return line;
}

static void
message_summary(struct client *c, const struct session_message *m)
{
	char head[2048];
	size_t i;
	int n;

	n = snprintf(head, sizeof(head), "[helo=%s esmtp=%d from=<%s> %s|",
	    m->helo, m->esmtp, m->sender, m->mail_params);
	ck_assert(n > 0 && (size_t)n < sizeof(head));
	append(&c->log, &c->loglen, head, (size_t)n);
	for (i = 0; i < m->nrcpts; i++) {
		n = snprintf(head, sizeof(head), "%s:%s:%s|",
		    m->rcpts[i].address, m->rcpts[i].mailbox ?
		    m->rcpts[i].mailbox : "-", m->rcpts[i].domain);
		ck_assert(n > 0 && (size_t)n < sizeof(head));
		append(&c->log, &c->loglen, head, (size_t)n);
	}
	append(&c->log, &c->loglen, msg_text(c, m), m->size);
	append(&c->log, &c->loglen, "]", 1);
}

/*
 * run_stream - feed the whole input in pieces of chunk bytes (0: as much
 * as the session takes), answering every message with OK. Returns all
 * replies; *log gets a summary of the messages.
 */
static char *
run_stream(const char *in, size_t len, size_t chunk, int relay, char **log)
{
	struct client *c = client_new(relay, chunk);
	const struct session_message *m;
	char id[32];
	char *out;

	client_send(c, in, len);
	while ((m = session_pending(c->s)) != NULL) {
		message_summary(c, m);
		snprintf(id, sizeof(id), "ID%u", ++c->stored);
		session_stored(c->s, SESSION_STORE_OK, id);
		client_pump(c);
	}
	ck_assert(c->pendlen == 0 || session_closing(c->s));
	out = c->out;
	*log = c->log;
	c->out = c->log = NULL;
	client_free(c);
	return out;
}

/* unescape - \r \n \t \0 \\ \xHH; returns the length, or SIZE_MAX on error */
static size_t
unescape(const char *src, char *dst)
{
	size_t o = 0;
	unsigned v;

	while (*src != '\0') {
		if (*src != '\\') {
			dst[o++] = *src++;
			continue;
		}
		switch (src[1]) {
		case 'r': dst[o++] = '\r'; src += 2; break;
		case 'n': dst[o++] = '\n'; src += 2; break;
		case 't': dst[o++] = '\t'; src += 2; break;
		case '0': dst[o++] = '\0'; src += 2; break;
		case '\\': dst[o++] = '\\'; src += 2; break;
		case 'x':
			if (sscanf(src + 2, "%2x", &v) != 1 ||
			    strspn(src + 2, "0123456789abcdefABCDEF") < 2)
				return SIZE_MAX;
			dst[o++] = (char)v;
			src += 4;
			break;
		default:
			return SIZE_MAX;
		}
	}
	dst[o] = '\0';
	return o;
}

static void
expect_prefix(const char *got, const char *want)
{
	ck_assert_msg(strncmp(got, want, strlen(want)) == 0,
	    "expected \"%s...\", got \"%s\"", want, got);
}

/* ---- basics ---------------------------------------------------------- */

START_TEST(test_greeting)
{
	struct client *c = client_new(0, 0);

	ck_assert_str_eq(c->out, GREETING);
	ck_assert(!session_closing(c->s));
	ck_assert(!session_in_data(c->s));
	ck_assert_ptr_null(session_pending(c->s));
	ck_assert_uint_gt(session_input_room(c->s), 1024);
	client_free(c);
}
END_TEST

START_TEST(test_http_request_closes)
{
	const char *verbs[] = { "GET / HTTP/1.1", "POST /x HTTP/1.0",
	    "CONNECT mx:25 HTTP/1.1", "head / HTTP/1.1" };
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		struct client *c = client_new(1, 0);
		char req[256];

		(void)unread(c);
		snprintf(req, sizeof(req), "%s\r\nHost: x\r\n\r\n"
		    "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\n"
		    "DATA\r\nsmuggled\r\n.\r\n", verbs[i]);
		/* One reply, then nothing of the body is ever run. */
		ck_assert_str_eq(say(c, req),
		    "421 4.7.0 Error: HTTP is not SMTP, closing\r\n");
		ck_assert(session_closing(c->s));
		ck_assert_ptr_null(session_pending(c->s));
		client_free(c);
	}
}
END_TEST

START_TEST(test_lines_count_only_complete_lines)
{
	struct client *c = client_new(0, 1);
	unsigned long before = session_lines(c->s);

	/* A byte at a time without a line end: no progress. */
	(void)say(c, "NOO");
	ck_assert_uint_eq(session_lines(c->s), before);
	(void)say(c, "P\r\n");
	ck_assert_uint_eq(session_lines(c->s), before + 1);
	(void)say(c, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\n"
	    "DATA\r\nline one\r\nline two\r\n");
	ck_assert_uint_eq(session_lines(c->s), before + 5);
	/* Message text counts once, at its final dot. */
	(void)say(c, ".\r\n");
	ck_assert_uint_eq(session_lines(c->s), before + 6);
	client_free(c);
}
END_TEST

START_TEST(test_ehlo_reply)
{
	struct client *c = client_new(0, 0);

	unread(c);
	ck_assert_str_eq(say(c, "EHLO client.example\r\n"),
	    "250-" HOST "\r\n"
	    "250-PIPELINING\r\n"
	    "250-SIZE 4096\r\n"
	    "250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n"
	    "250-SMTPUTF8\r\n"
	    "250-CHUNKING\r\n"
	    "250-BINARYMIME\r\n"
	    "250-DSN\r\n"
	    "250-LIMITS RCPTMAX=5\r\n"
	    "250 HELP\r\n");
	ck_assert_str_eq(say(c, "HELO client.example\r\n"), "250 " HOST "\r\n");
	ck_assert_str_eq(say(c, "ehlo x\r\n"), EHLO_REPLY);
	client_free(c);
}
END_TEST

START_TEST(test_helo_argument)
{
	static const char *const bad[] = {
		"EHLO\r\n", "EHLO \r\n", "HELO\r\n", "EHLO a b\r\n",
		"EHLO a\tb\r\n", "HELO \x01x\r\n",
	};
	char line[300];
	struct client *c = client_new(0, 0);
	size_t i;

	unread(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_prefix(say(c, bad[i]), "501 5.5.4 ");
	/* Nothing was greeted. */
	expect_prefix(say(c, "MAIL FROM:<>\r\n"), "503 5.5.1 ");
	/* A name of 255 octets: four labels of 63 and their dots. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "HELO ", 5);
	line[5 + 63] = line[5 + 127] = line[5 + 191] = '.';
	memcpy(line + 5 + 255, "\r\n", 3);
	ck_assert_str_eq(say(c, line), "250 " HOST "\r\n");
	memcpy(line + 5 + 255, "a\r\n", 4);
	expect_prefix(say(c, line), "501 5.5.4 ");
	/* Trailing blanks are not part of the argument. */
	ck_assert_str_eq(say(c, "HELO [127.0.0.1]  \r\n"), "250 " HOST "\r\n");
	client_free(c);
}
END_TEST

/*
 * What the HELO/EHLO argument may be (issue 11 item 4): a domain or an
 * address literal. Anything else is 501 5.5.4 and changes nothing, so
 * the name handed over with a message - the one deliver.c writes into
 * Received: - is only ever text that addr_helo_valid() passed.
 */
START_TEST(test_helo_checked)
{
	static const char *const refused[] = {
		"a;b", "a;b.example", "client.example;by evil", "x(y)",
		"x\"y", "a,b", "a/b", "../../../tmp/x", "a@b", "a:b",
		"a..b", "-a.example", "127.0.0.1", "2130706433", "0x7f000001",
		"[1.2.3.4];", "[x-tag:a;b]", "[256.1.1.1]", "[IPv6:::g]",
		"h\x7f", "\x1b[2J",
	};
	static const char *const accepted[] = {
		"client.example", "Client.Example.ORG", "x", "my_pc.example",
		"client.example.", "[127.0.0.1]", "[IPv6:::1]",
	};
	char line[300];
	const struct session_message *m;
	struct client *c;
	size_t i;
	int n;

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		c = client_new(0, 0);
		unread(c);
		expect_prefix(say(c, "EHLO good.example\r\n"), "250-");
		n = snprintf(line, sizeof(line), "EHLO %s\r\n", refused[i]);
		ck_assert(n > 0 && (size_t)n < sizeof(line));
		ck_assert_msg(strcmp(say(c, line),
		    "501 5.5.4 Syntax: EHLO hostname\r\n") == 0,
		    "EHLO %s was not refused", refused[i]);
		n = snprintf(line, sizeof(line), "HELO %s\r\n", refused[i]);
		ck_assert(n > 0 && (size_t)n < sizeof(line));
		ck_assert_str_eq(say(c, line),
		    "501 5.5.4 Syntax: HELO hostname\r\n");
		say(c, "MAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\n"
		    "DATA\r\nhi\r\n.\r\n");
		ck_assert_ptr_nonnull(m = session_pending(c->s));
		ck_assert_str_eq(m->helo, "good.example");
		ck_assert_int_eq(m->esmtp, 1);
		client_free(c);
	}
	for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		c = client_new(0, 0);
		unread(c);
		n = snprintf(line, sizeof(line), "HELO %s\r\n", accepted[i]);
		ck_assert(n > 0 && (size_t)n < sizeof(line));
		ck_assert_str_eq(say(c, line), "250 " HOST "\r\n");
		say(c, "MAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\n"
		    "DATA\r\nhi\r\n.\r\n");
		ck_assert_ptr_nonnull(m = session_pending(c->s));
		ck_assert_str_eq(m->helo, accepted[i]);
		ck_assert_int_eq(addr_helo_valid(m->helo), 1);
		client_free(c);
	}
}
END_TEST

/*
 * An 8-bit byte inside a MAIL or RCPT path is an address that needs
 * SMTPUTF8, which is not offered: 553 5.6.7 (RFC 6531); elsewhere in a
 * command it stays 500 5.5.2. Neither runs the command.
 */
START_TEST(test_8bit_address)
{
	struct client *c = client_new(1, 0);

	unread(c);
	expect_prefix(say(c, "EHLO x\r\n"), "250-");
	ck_assert_str_eq(say(c, "MAIL FROM:<j\xc3\xbcrgen@example.net>\r\n"),
	    "553 5.6.7 Error: non-ASCII address without SMTPUTF8\r\n");
	expect_prefix(say(c, "RCPT TO:<alice@example.org>\r\n"), "503 5.5.1 ");
	ck_assert_str_eq(say(c, "MAIL FROM:<a@b.example> X=\xff\r\n"),
	    "500 5.5.2 Error: 8-bit byte in command\r\n");
	expect_prefix(say(c, "mail from:<a@b.example>\r\n"), "250 2.1.0 ");
	ck_assert_str_eq(say(c, "RCPT TO:<x@ex\xe4mple.org>\r\n"),
	    "553 5.6.7 Error: non-ASCII address without SMTPUTF8\r\n");
	ck_assert_str_eq(say(c, "rcpt to:<\xe2\x80\xa4@remote.example\r\n"),
	    "553 5.6.7 Error: non-ASCII address without SMTPUTF8\r\n");
	ck_assert_str_eq(say(c, "RCPT TO:<alice@example.org> X=\xe4\r\n"),
	    "500 5.5.2 Error: 8-bit byte in command\r\n");
	ck_assert_str_eq(say(c, "RCPT \xe4TO:<alice@example.org>\r\n"),
	    "500 5.5.2 Error: 8-bit byte in command\r\n");
	ck_assert_str_eq(say(c, "VRFY <j\xc3\xbcrgen@example.org>\r\n"),
	    "500 5.5.2 Error: 8-bit byte in command\r\n");
	/* A bare CR before the 8-bit byte is what the line is refused for. */
	ck_assert_str_eq(say(c, "RCPT TO:<a\rb\xe4@example.org>\r\n"),
	    "500 5.5.2 Error: bare CR in command\r\n");
	/* Not one recipient was taken. */
	expect_prefix(say(c, "DATA\r\n"), "503 5.5.1 ");
	client_free(c);
}
END_TEST

/* ---- every command in every state ------------------------------------ */

enum tstate { T_START, T_GREETED, T_MAIL, T_RCPT, T_NSTATES, T_CLOSED, T_DATA,
	T_BDAT };

static const char *const reach[T_NSTATES] = {
	"",
	"EHLO client.example\r\n",
	"EHLO client.example\r\nMAIL FROM:<sender@remote.example>\r\n",
	"EHLO client.example\r\nMAIL FROM:<sender@remote.example>\r\n"
	    "RCPT TO:<alice@example.org>\r\n",
};

static const char *const table_commands[] = {
	"EHLO x.example", "HELO x.example", "MAIL FROM:<s@remote.example>",
	"RCPT TO:<bob@example.org>", "DATA", "RSET", "NOOP", "HELP",
	"VRFY alice", "QUIT", "EXPN staff", "TURN", "ETRN example.org",
	"STARTTLS", "AUTH PLAIN", "BDAT 0", "FOO", "",
};
#define NCOMMANDS (sizeof(table_commands) / sizeof(table_commands[0]))

static const struct expect {
	const char *reply;
	enum tstate next;
} table[T_NSTATES][NCOMMANDS] = {
	[T_START] = {
		{ "250-", T_GREETED }, { "250 ", T_GREETED },
		{ "503 5.5.1 ", T_START }, { "503 5.5.1 ", T_START },
		{ "503 5.5.1 ", T_START }, { "250 2.0.0 ", T_START },
		{ "250 2.0.0 ", T_START }, { "214 2.0.0 ", T_START },
		{ "252 2.5.2 ", T_START }, { "221 2.0.0 ", T_CLOSED },
		{ "502 5.5.1 ", T_START }, { "502 5.5.1 ", T_START },
		{ "502 5.5.1 ", T_START }, { "502 5.5.1 ", T_START },
		{ "502 5.5.1 ", T_START }, { "503 5.5.1 ", T_START },
		{ "500 5.5.1 ", T_START }, { "500 5.5.1 ", T_START },
	},
	[T_GREETED] = {
		{ "250-", T_GREETED }, { "250 ", T_GREETED },
		{ "250 2.1.0 ", T_MAIL }, { "503 5.5.1 ", T_GREETED },
		{ "503 5.5.1 ", T_GREETED }, { "250 2.0.0 ", T_GREETED },
		{ "250 2.0.0 ", T_GREETED }, { "214 2.0.0 ", T_GREETED },
		{ "252 2.5.2 ", T_GREETED }, { "221 2.0.0 ", T_CLOSED },
		{ "502 5.5.1 ", T_GREETED }, { "502 5.5.1 ", T_GREETED },
		{ "502 5.5.1 ", T_GREETED }, { "502 5.5.1 ", T_GREETED },
		{ "502 5.5.1 ", T_GREETED }, { "503 5.5.1 ", T_GREETED },
		{ "500 5.5.1 ", T_GREETED }, { "500 5.5.1 ", T_GREETED },
	},
	[T_MAIL] = {
		{ "250-", T_GREETED }, { "250 ", T_GREETED },
		{ "503 5.5.1 ", T_MAIL }, { "250 2.1.5 ", T_RCPT },
		{ "503 5.5.1 ", T_MAIL }, { "250 2.0.0 ", T_GREETED },
		{ "250 2.0.0 ", T_MAIL }, { "214 2.0.0 ", T_MAIL },
		{ "252 2.5.2 ", T_MAIL }, { "221 2.0.0 ", T_CLOSED },
		{ "502 5.5.1 ", T_MAIL }, { "502 5.5.1 ", T_MAIL },
		{ "502 5.5.1 ", T_MAIL }, { "502 5.5.1 ", T_MAIL },
		{ "502 5.5.1 ", T_MAIL }, { "503 5.5.1 ", T_MAIL },
		{ "500 5.5.1 ", T_MAIL }, { "500 5.5.1 ", T_MAIL },
	},
	[T_RCPT] = {
		{ "250-", T_GREETED }, { "250 ", T_GREETED },
		{ "503 5.5.1 ", T_RCPT }, { "250 2.1.5 ", T_RCPT },
		{ "354 ", T_DATA }, { "250 2.0.0 ", T_GREETED },
		{ "250 2.0.0 ", T_RCPT }, { "214 2.0.0 ", T_RCPT },
		{ "252 2.5.2 ", T_RCPT }, { "221 2.0.0 ", T_CLOSED },
		{ "502 5.5.1 ", T_RCPT }, { "502 5.5.1 ", T_RCPT },
		{ "502 5.5.1 ", T_RCPT }, { "502 5.5.1 ", T_RCPT },
		{ "502 5.5.1 ", T_RCPT }, { "250 2.0.0 ", T_BDAT },
		{ "500 5.5.1 ", T_RCPT }, { "500 5.5.1 ", T_RCPT },
	},
};

/*
 * probe_state - find out the state by the replies it gives: only RCPT
 * takes DATA (and BDAT says why not), MAIL and RCPT take RCPT, only
 * GREETED takes MAIL.
 */
static enum tstate
probe_state(struct client *c)
{
	const char *r;

	if (session_closing(c->s))
		return T_CLOSED;
	if (session_in_data(c->s))
		return T_DATA;
	r = say(c, "DATA\r\n");
	if (strncmp(r, "354 ", 4) == 0)
		return T_RCPT;
	if (strcmp(r, "503 5.5.1 Error: DATA after BDAT\r\n") == 0)
		return T_BDAT;
	expect_prefix(r, "503 5.5.1 ");
	r = say(c, "RCPT TO:<bob@example.org>\r\n");
	if (strncmp(r, "250 2.1.5 ", 10) == 0)
		return T_MAIL;
	expect_prefix(r, "503 5.5.1 ");
	r = say(c, "MAIL FROM:<>\r\n");
	if (strncmp(r, "250 2.1.0 ", 10) == 0)
		return T_GREETED;
	expect_prefix(r, "503 5.5.1 ");
	return T_START;
}

START_TEST(test_state_table)
{
	unsigned st = (unsigned)_i / NCOMMANDS, cmd = (unsigned)_i % NCOMMANDS;
	const struct expect *e = &table[st][cmd];
	struct client *c = client_new(0, 0);
	char line[128];

	say(c, reach[st]);
	ck_assert(!session_closing(c->s));
	snprintf(line, sizeof(line), "%s\r\n", table_commands[cmd]);
	expect_prefix(say(c, line), e->reply);
	ck_assert_msg(probe_state(c) == e->next,
	    "state %u, \"%s\": wrong state after", st, table_commands[cmd]);
	client_free(c);
}
END_TEST

/* In DATA, commands are text. */
START_TEST(test_data_state_commands_are_text)
{
	struct client *c = client_new(0, 0);
	const struct session_message *m;
	char text[1024];
	size_t i, o = 0;

	say(c, reach[T_RCPT]);
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	ck_assert(session_in_data(c->s));
	for (i = 0; i < NCOMMANDS; i++) {
		ck_assert_str_eq(say(c, table_commands[i]), "");
		ck_assert_str_eq(say(c, "\r\n"), "");
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s\n",
		    table_commands[i]);
	}
	ck_assert_str_eq(say(c, ".\r\n"), "");
	ck_assert(!session_in_data(c->s));
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	ck_assert_uint_eq(m->size, o);
	ck_assert(memcmp(msg_text(c, m), text, o) == 0);
	session_stored(c->s, SESSION_STORE_OK, "ABC");
	ck_assert_str_eq(unread(c), "");
	client_drain(c);
	ck_assert_str_eq(unread(c), "250 2.0.0 Ok: queued as ABC\r\n");
	ck_assert(probe_state(c) == T_GREETED);
	client_free(c);
}
END_TEST

/* ---- the message handed over ----------------------------------------- */

START_TEST(test_message_fields)
{
	struct client *c = client_new(1, 0);
	const struct session_message *m;
	const char *r;

	say(c, "EHLO client.example\r\n");
	r = say(c, "MAIL FROM:<Sender@Remote.Example> SIZE=100 body=8BITMIME\r\n"
	    "RCPT TO:<alice@example.org>\r\n"
	    "RCPT TO:<BOB@Example.NET>\r\n"
	    "RCPT TO:<\"carol\"@example.org>\r\n"
	    "RCPT TO:<@relay.example:Someone@Other.Example>\r\n"
	    "RCPT TO:<postmaster>\r\n"
	    "DATA\r\n"
	    "Subject: hi\r\n\r\n..dot\r\n\x80\x01 8-bit\r\n.\r\nNOOP\r\n");
	ck_assert_str_eq(r, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n");
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	ck_assert_uint_eq(session_input_room(c->s), 0);
	ck_assert_int_eq(session_input(c->s, "x", 1), -1);
	ck_assert_str_eq(m->helo, "client.example");
	ck_assert_int_eq(m->esmtp, 1);
	ck_assert_str_eq(m->client_addr, "127.0.0.1");
	ck_assert_str_eq(m->sender, "Sender@remote.example");
	ck_assert_str_eq(m->mail_params, "SIZE=100 body=8BITMIME");
	ck_assert_uint_eq(m->nrcpts, 4);	/* postmaster is alice: kept once */
	ck_assert_str_eq(m->rcpts[0].address, "alice@example.org");
	ck_assert_str_eq(m->rcpts[0].mailbox, "alice");
	ck_assert_str_eq(m->rcpts[0].domain, "example.org");
	ck_assert_str_eq(m->rcpts[1].address, "BOB@example.net");
	ck_assert_str_eq(m->rcpts[1].mailbox, "bob");
	ck_assert_str_eq(m->rcpts[1].domain, "example.net");
	ck_assert_str_eq(m->rcpts[2].address, "\"carol\"@example.org");
	ck_assert_str_eq(m->rcpts[2].mailbox, "Carol");
	ck_assert_str_eq(m->rcpts[3].address, "Someone@other.example");
	ck_assert_ptr_null(m->rcpts[3].mailbox);
	ck_assert_str_eq(m->rcpts[3].domain, "other.example");
	ck_assert_uint_eq(m->size, 27);
	ck_assert(memcmp(msg_text(c, m), "Subject: hi\n\n.dot\n\x80\x01 8-bit\n", 27)
	    == 0);
	session_stored(c->s, SESSION_STORE_OK, "0123456789ABCDEF0");
	ck_assert_ptr_null(session_pending(c->s));
	client_drain(c);
	ck_assert_str_eq(unread(c), "250 2.0.0 Ok: queued as 0123456789ABCDEF0\r\n"
	    "250 2.0.0 Ok\r\n");
	client_free(c);
}
END_TEST

START_TEST(test_message_helo_null_sender)
{
	struct client *c = client_new(0, 0);
	const struct session_message *m;

	say(c, "HELO old.example\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.org>\r\n"
	    "DATA\r\n.\r\n");
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	ck_assert_int_eq(m->esmtp, 0);
	ck_assert_str_eq(m->helo, "old.example");
	ck_assert_str_eq(m->sender, "");
	ck_assert_str_eq(m->mail_params, "");
	ck_assert_uint_eq(m->size, 0);
	ck_assert_ptr_nonnull(msg_text(c, m));
	session_stored(c->s, SESSION_STORE_OK, "X1");
	client_free(c);
}
END_TEST

START_TEST(test_stored_results)
{
	static const struct {
		enum session_store_result r;
		const char *reply;
	} cases[] = {
		{ SESSION_STORE_OK, "250 2.0.0 Ok: queued as AAAA1\r\n" },
		{ SESSION_STORE_TEMPFAIL, "451 4.3.0 " },
		{ SESSION_STORE_NOSPACE, "452 4.3.1 " },
	};
	struct client *c = client_new(0, 0);
	size_t i;

	say(c, "EHLO x\r\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unread(c);
		say(c, "MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@example.org>"
		    "\r\nDATA\r\nhello\r\n.\r\n");
		ck_assert_ptr_nonnull(session_pending(c->s));
		unread(c);
		session_stored(c->s, cases[i].r, "AAAA1");
		client_drain(c);
		expect_prefix(unread(c), cases[i].reply);
		ck_assert_ptr_null(session_pending(c->s));
		/* Back to GREETED: the transaction is gone, the greeting kept. */
		expect_prefix(say(c, "RCPT TO:<bob@example.org>\r\n"),
		    "503 5.5.1 ");
	}
	/* A stray session_stored() is ignored. */
	session_stored(c->s, SESSION_STORE_OK, "ZZZ");
	client_drain(c);
	ck_assert_str_eq(unread(c), "");
	client_free(c);
}
END_TEST

/* ---- pipelining ------------------------------------------------------ */

static const char batch[] =
	"EHLO client.example\r\n"
	"MAIL FROM:<a@remote.example> SIZE=20\r\n"
	"RCPT TO:<alice@example.org>\r\n"
	"RCPT TO:<nobody@example.org>\r\n"
	"RCPT TO:<x@remote.example>\r\n"
	"RCPT TO:<bob@example.org>\r\n"
	"DATA\r\n"
	"Subject: one\r\n\r\nbody\r\n..\r\n.\r\n"
	"MAIL FROM:<>\r\n"
	"RCPT TO:<Carol@example.net>\r\n"
	"DATA\r\n"
	"two\r\n.\r\n"
	"RSET\r\n"
	"BOGUS\r\n"
	"MAIL FROM:<b@remote.example>\r\n"
	"RCPT TO:<postmaster>\r\n"
	"DATA\r\n"
	"three\n\r\n.\r\n"
	"NOOP\r\n"
	"QUIT\r\n"
	"NOOP\r\n";

static const char batch_replies[] =
	GREETING
	EHLO_REPLY
	"250 2.1.0 Ok\r\n"
	"250 2.1.5 Ok\r\n"
	"550 5.1.1 <nobody@example.org>: Recipient address rejected: "
	    "User unknown\r\n"
	"554 5.7.1 <x@remote.example>: Relay access denied\r\n"
	"250 2.1.5 Ok\r\n"
	"354 End data with <CR><LF>.<CR><LF>\r\n"
	"250 2.0.0 Ok: queued as ID1\r\n"
	"250 2.1.0 Ok\r\n"
	"250 2.1.5 Ok\r\n"
	"354 End data with <CR><LF>.<CR><LF>\r\n"
	"250 2.0.0 Ok: queued as ID2\r\n"
	"250 2.0.0 Ok\r\n"
	"500 5.5.1 Error: command not recognized\r\n"
	"250 2.1.0 Ok\r\n"
	"250 2.1.5 Ok\r\n"
	"354 End data with <CR><LF>.<CR><LF>\r\n"
	"550 5.5.2 Error: bare CR or LF in message text\r\n"
	"250 2.0.0 Ok\r\n"
	"221 2.0.0 Bye\r\n";

static const char batch_log[] =
	"[helo=client.example esmtp=1 from=<a@remote.example> SIZE=20|"
	"alice@example.org:alice:example.org|bob@example.org:bob:example.org|"
	"Subject: one\n\nbody\n.\n]"
	"[helo=client.example esmtp=1 from=<> |"
	"Carol@example.net:Carol:example.net|two\n]";

START_TEST(test_pipelining_batch)
{
	char *whole, *bytes, *seven, *log1, *log2, *log3;

	whole = run_stream(batch, sizeof(batch) - 1, 0, 0, &log1);
	ck_assert_str_eq(whole, batch_replies);
	ck_assert_str_eq(log1, batch_log);
	bytes = run_stream(batch, sizeof(batch) - 1, 1, 0, &log2);
	ck_assert_str_eq(bytes, whole);
	ck_assert_str_eq(log2, log1);
	seven = run_stream(batch, sizeof(batch) - 1, 7, 0, &log3);
	ck_assert_str_eq(seven, whole);
	ck_assert_str_eq(log3, log1);
	free(whole);
	free(bytes);
	free(seven);
	free(log1);
	free(log2);
	free(log3);
}
END_TEST

/* A batch far larger than the input buffer: nothing lost, all in order. */
START_TEST(test_pipelining_huge_batch)
{
	static const char one[] = "MAIL FROM:<a@remote.example>\r\n"
	    "RCPT TO:<alice@example.org>\r\nDATA\r\nmessage\r\n.\r\n";
	static const char one_reply[] = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 Ok: queued as ID%u\r\n";
	const unsigned n = 3000;
	char *in = NULL, *want = NULL, *out, *log;
	size_t inlen = 0, wantlen = 0;
	char line[256];
	unsigned i;

	append(&in, &inlen, "EHLO x\r\n", 8);
	append(&want, &wantlen, GREETING, strlen(GREETING));
	append(&want, &wantlen, EHLO_REPLY, strlen(EHLO_REPLY));
	for (i = 1; i <= n; i++) {
		append(&in, &inlen, one, sizeof(one) - 1);
		append(&want, &wantlen, line, (size_t)snprintf(line,
		    sizeof(line), one_reply, i));
	}
	ck_assert_uint_gt(inlen, 200000);
	out = run_stream(in, inlen, 0, 0, &log);
	ck_assert_str_eq(out, want);
	free(out);
	free(log);
	free(in);
	free(want);
}
END_TEST

/* A client that never reads: the engine stops, and goes on later. */
START_TEST(test_output_high_water)
{
	struct session *s = session_new(conf, "::1", 0, "S2", NULL, NULL);
	size_t len, total = 0, fed = 0, room;
	char *in = NULL;
	size_t inlen = 0;
	unsigned i;

	ck_assert_ptr_nonnull(s);
	/* HELO: NOOP would soon count as junk (SESSION_JUNK_LIMIT). */
	for (i = 0; i < 20000; i++)
		append(&in, &inlen, "HELO x\r\n", 8);
	/* Feed without reading replies until the session refuses more. */
	while (fed < inlen && (room = session_input_room(s)) > 0) {
		len = inlen - fed < room ? inlen - fed : room;
		ck_assert_int_eq(session_input(s, in + fed, len), 0);
		fed += len;
	}
	ck_assert_uint_lt(fed, inlen);
	(void)session_output(s, &len);
	ck_assert_uint_le(len, 64 * 1024);
	ck_assert_uint_gt(len, 16 * 1024);
	/* Now read everything, feeding as the room allows. */
	for (;;) {
		(void)session_output(s, &len);
		total += len;
		session_output_drop(s, len);
		if (fed == inlen) {
			(void)session_output(s, &len);
			if (len == 0)
				break;
			continue;
		}
		room = session_input_room(s);
		len = inlen - fed < room ? inlen - fed : room;
		ck_assert_int_eq(session_input(s, in + fed, len), 0);
		fed += len;
	}
	ck_assert_uint_eq(total, strlen(GREETING) + 20000 * strlen("250 " HOST
	    "\r\n"));
	ck_assert(!session_closing(s));
	session_free(s);
	free(in);
}
END_TEST

START_TEST(test_input_room)
{
	struct client *c = client_new(0, 0);
	size_t room = session_input_room(c->s);
	char *big = malloc(room + 1);

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', room + 1);
	ck_assert_int_eq(session_input(c->s, big, room + 1), -1);
	ck_assert_int_eq(session_input(c->s, big, 0), 0);
	/* Nothing was taken. */
	ck_assert_str_eq(say(c, "NOOP\r\n"), GREETING "250 2.0.0 Ok\r\n");
	free(big);
	client_free(c);
}
END_TEST

/* ---- hostile commands ------------------------------------------------ */

START_TEST(test_line_length)
{
	struct client *c = client_new(0, 0);
	char line[2048];
	size_t i;

	unread(c);
	/* 512 octets with CRLF: the longest line allowed. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	memcpy(line + 510, "\r\n", 3);
	ck_assert_str_eq(say(c, line), "250 2.0.0 Ok\r\n");
	/* 513 octets: refused once, never run. */
	memcpy(line, "QUIT ", 5);
	memcpy(line + 511, "\r\n", 3);
	ck_assert_str_eq(say(c, line), "500 5.5.2 Error: line too long\r\n");
	ck_assert(!session_closing(c->s));
	/* A command hidden past the limit is never run. */
	memcpy(line, "NOOP ", 5);
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	memcpy(line + 512, "QUIT", 4);
	memcpy(line + 600, "\r\nQUIT\r\n", 9);
	ck_assert_str_eq(say(c, line), "500 5.5.2 Error: line too long\r\n"
	    "221 2.0.0 Bye\r\n");
	client_free(c);

	/* A very long line in many pieces: one 500, then commands again. */
	c = client_new(0, 0);
	unread(c);
	memset(line, 'y', sizeof(line));
	for (i = 0; i < 100; i++)
		client_send(c, line, sizeof(line));
	ck_assert_str_eq(unread(c), "500 5.5.2 Error: line too long\r\n");
	ck_assert_str_eq(say(c, "RSET\r\nNOOP\r\n"), "250 2.0.0 Ok\r\n");
	ck_assert_str_eq(say(c, "NOOP\r\n"), "250 2.0.0 Ok\r\n");
	client_free(c);
}
END_TEST

START_TEST(test_bad_bytes_in_command)
{
	struct client *c = client_new(0, 0);

	unread(c);
	ck_assert_str_eq(say(c, "NOOP\n"), "500 5.5.2 Error: bare LF in command\r\n");
	ck_assert_str_eq(say(c, "NO\rOP\r\n"),
	    "500 5.5.2 Error: bare CR in command\r\n");
	client_send(c, "NO\0OP\r\n", 7);
	ck_assert_str_eq(unread(c), "500 5.5.2 Error: NUL in command\r\n");
	ck_assert_str_eq(say(c, "HELO caf\xc3\xa9\r\n"),
	    "500 5.5.2 Error: 8-bit byte in command\r\n");
	ck_assert_str_eq(say(c, "\n"), "500 5.5.2 Error: bare LF in command\r\n");
	ck_assert_str_eq(say(c, "\r\r\n"),
	    "500 5.5.2 Error: bare CR in command\r\n");
	/* None of them greeted. */
	expect_prefix(say(c, "MAIL FROM:<>\r\n"), "503 5.5.1 ");
	/* A bare LF ends the line: what follows is the next command. */
	ck_assert_str_eq(say(c, "EHLO x\nNOOP\r\n"),
	    "500 5.5.2 Error: bare LF in command\r\n250 2.0.0 Ok\r\n");
	expect_prefix(say(c, "MAIL FROM:<>\r\n"), "503 5.5.1 ");
	client_free(c);
}
END_TEST

START_TEST(test_case_insensitive)
{
	struct client *c = client_new(0, 0);

	unread(c);
	expect_prefix(say(c, "eHlO x\r\n"), "250-");
	expect_prefix(say(c, "mail from:<>\r\n"), "250 2.1.0 ");
	expect_prefix(say(c, "rCpT tO:<ALICE@EXAMPLE.ORG>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "data\r\n"), "354 ");
	ck_assert_str_eq(say(c, ".\r\n"), "");
	session_stored(c->s, SESSION_STORE_OK, "Q");
	client_drain(c);
	expect_prefix(unread(c), "250 2.0.0 ");
	expect_prefix(say(c, "quit\r\n"), "221 2.0.0 ");
	client_free(c);
}
END_TEST

START_TEST(test_quit_mid_batch)
{
	struct client *c = client_new(0, 0);

	unread(c);
	ck_assert_str_eq(say(c, "NOOP\r\nQUIT\r\nNOOP\r\nEHLO x\r\n"),
	    "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
	ck_assert(session_closing(c->s));
	ck_assert_uint_eq(session_input_room(c->s), 0);
	ck_assert_int_eq(session_input(c->s, "NOOP\r\n", 6), -1);
	session_timeout(c->s);
	session_shutdown(c->s);
	client_drain(c);
	ck_assert_str_eq(unread(c), "");
	client_free(c);
}
END_TEST

START_TEST(test_error_limit)
{
	struct client *c = client_new(0, 0);
	char *in = NULL, *want = NULL;
	size_t inlen = 0, wantlen = 0;
	int i;

	unread(c);
	for (i = 0; i < SESSION_MAX_ERRORS + 5; i++) {
		append(&in, &inlen, "XYZZY\r\n", 7);
		if (i < SESSION_MAX_ERRORS)
			append(&want, &wantlen, "500 5.5.1 Error: command not "
			    "recognized\r\n", 41);
	}
	append(&want, &wantlen, "421 4.7.0 " HOST " Error: too many errors\r\n",
	    strlen("421 4.7.0 " HOST " Error: too many errors\r\n"));
	ck_assert_str_eq(say(c, in), want);
	ck_assert(session_closing(c->s));
	client_free(c);
	free(in);
	free(want);

	/* Errors of all kinds count: 5xx and 4xx alike. */
	c = client_new(0, 0);
	unread(c);
	say(c, "EHLO x\r\nMAIL FROM:<a@remote.example>\r\n");
	for (i = 0; i < SESSION_MAX_ERRORS - 1; i++)
		expect_prefix(say(c, i % 2 ? "RCPT TO:<zed@example.org>\r\n" :
		    "RCPT TO:<z@remote.example>\r\n"), i % 2 ? "550" : "554");
	ck_assert(!session_closing(c->s));
	ck_assert_str_eq(say(c, "DATA\r\n"), "503 5.5.1 Error: need RCPT command"
	    "\r\n421 4.7.0 " HOST " Error: too many errors\r\n");
	ck_assert(session_closing(c->s));
	client_free(c);
}
END_TEST

START_TEST(test_timeout_shutdown)
{
	struct client *c = client_new(0, 0);

	unread(c);
	session_timeout(c->s);
	client_drain(c);
	ck_assert_str_eq(unread(c), "421 4.4.2 " HOST " Error: timeout exceeded\r\n");
	ck_assert(session_closing(c->s));
	ck_assert_uint_eq(session_input_room(c->s), 0);
	client_free(c);

	/* In the middle of a message: nothing is handed over. */
	c = client_new(0, 0);
	say(c, reach[T_RCPT]);
	say(c, "DATA\r\nSubject: x\r\n\r\npart");
	ck_assert(session_in_data(c->s));
	unread(c);
	session_shutdown(c->s);
	client_drain(c);
	ck_assert_str_eq(unread(c), "421 4.3.2 " HOST " Service shutting down\r\n");
	ck_assert(session_closing(c->s));
	ck_assert(!session_in_data(c->s));
	ck_assert_ptr_null(session_pending(c->s));
	session_timeout(c->s);
	client_drain(c);
	ck_assert_str_eq(unread(c), "");
	client_free(c);

	/* A pending message is not answered by the 421. */
	c = client_new(0, 0);
	say(c, reach[T_RCPT]);
	say(c, "DATA\r\nx\r\n.\r\n");
	ck_assert_ptr_nonnull(session_pending(c->s));
	unread(c);
	session_shutdown(c->s);
	client_drain(c);
	ck_assert_str_eq(unread(c), "421 4.3.2 " HOST " Service shutting down\r\n");
	ck_assert_ptr_null(session_pending(c->s));
	client_free(c);
}
END_TEST

/* ---- MAIL and RCPT ----------------------------------------------------- */

START_TEST(test_mail_syntax)
{
	static const struct {
		const char *line, *reply;
	} cases[] = {
		{ "MAIL FROM:<a@remote.example>\r\n", "250 2.1.0 " },
		{ "MAIL FROM: <a@remote.example>\r\n", "250 2.1.0 " },
		{ "MAIL FROM:<>\r\n", "250 2.1.0 " },
		{ "MAIL FROM:<@x.example,@y.example:a@remote.example>\r\n", "250 2.1.0 " },
		{ "MAIL FROM:<a@remote.example> SIZE=4096\r\n", "250 2.1.0 " },
		{ "MAIL FROM:<a@remote.example> SIZE=4097\r\n", "552 5.3.4 " },
		{ "MAIL FROM:<a@remote.example> SIZE=99999999999999999999999999\r\n", "552 5.3.4 " },
		{ "MAIL FROM:<a@remote.example> SIZE=\r\n", "501 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> SIZE=12k\r\n", "501 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> SIZE=-1\r\n", "501 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> SIZE=1 SIZE=2\r\n", "501 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> BODY=7BIT\r\n", "250 2.1.0 " },
		{ "MAIL FROM:<a@remote.example> BODY=8bitmime SIZE=10\r\n", "250 2.1.0 " },
		{ "MAIL FROM:<a@remote.example> BODY=BINARY\r\n", "555 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> SMTPUTF8=YES\r\n", "501 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> SMTPUTF8 SMTPUTF8\r\n",
		    "501 5.5.4 " },
		{ "MAIL FROM:<a@remote.example> AUTH=<>\r\n", "555 5.5.4 " },
		{ "MAIL FROM:a@remote.example\r\n", "501 5.1.7 " },
		{ "MAIL FROM:<a@remote.example\r\n", "501 5.1.7 " },
		{ "MAIL FROM:<a@remote.example>x\r\n", "501 5.1.7 " },
		{ "MAIL FROM:<a@@remote.example>\r\n", "501 5.1.7 " },
		{ "MAIL FROM:<postmaster>\r\n", "501 5.1.7 " },
		{ "MAIL FROM:\r\n", "501 5.1.7 " },
		{ "MAIL TO:<a@remote.example>\r\n", "501 5.5.4 " },
		{ "MAIL\r\n", "501 5.5.4 " },
		{ "MAIL FROM<a@remote.example>\r\n", "501 5.5.4 " },
	};
	struct client *c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = client_new(0, 0);
		say(c, "EHLO x\r\n");
		expect_prefix(say(c, cases[i].line), cases[i].reply);
		ck_assert_msg(probe_state(c) ==
		    (cases[i].reply[0] == '2' ? T_MAIL : T_GREETED), "%s",
		    cases[i].line);
		client_free(c);
	}
}
END_TEST

START_TEST(test_mail_long_parts)
{
	char line[600];
	struct client *c = client_new(0, 0);
	int n;

	say(c, "EHLO x\r\n");
	n = snprintf(line, sizeof(line), "MAIL FROM:<%065d@remote.example>\r\n", 0);
	ck_assert(n > 0);
	expect_prefix(say(c, line), "501 5.1.7 ");
	snprintf(line, sizeof(line), "MAIL FROM:<%064d@remote.example>\r\n", 0);
	expect_prefix(say(c, line), "250 2.1.0 ");
	client_free(c);
}
END_TEST

static const char *
rcpt_reply(int relay, const char *rcpt)
{
	static char result[512];
	struct client *c = client_new(relay, 0);
	char line[600];

	say(c, "EHLO x\r\nMAIL FROM:<s@remote.example>\r\n");
	snprintf(line, sizeof(line), "RCPT TO:%s\r\n", rcpt);
	snprintf(result, sizeof(result), "%s", say(c, line));
	client_free(c);
	return result;
}

START_TEST(test_rcpt_local)
{
	expect_prefix(rcpt_reply(0, "<alice@example.org>"), "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, " <alice@example.org>"), "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, "<ALICE@EXAMPLE.NET>"), "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, "<carol@example.org>"), "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, "<\"alice\"@example.org>"), "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, "<@a.example,@b.example:bob@example.org>"),
	    "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, "<dave@example.org>"), "550 5.1.1 ");
	expect_prefix(rcpt_reply(0, "<alice.x@example.org>"), "550 5.1.1 ");
	/* Tricks aimed at a remote domain stay local, and unknown. */
	expect_prefix(rcpt_reply(0, "<x%remote.example@example.org>"), "550 5.1.1 ");
	expect_prefix(rcpt_reply(1, "<x%remote.example@example.org>"), "550 5.1.1 ");
	expect_prefix(rcpt_reply(1, "<remote.example!x@example.org>"), "550 5.1.1 ");
	expect_prefix(rcpt_reply(1, "<\"x@remote.example\"@example.org>"),
	    "550 5.1.1 ");
	expect_prefix(rcpt_reply(0, "<@example.org:x@remote.example>"), "554 5.7.1 ");
	/* Syntax. */
	expect_prefix(rcpt_reply(0, "<>"), "501 5.1.3 ");
	expect_prefix(rcpt_reply(0, "alice@example.org"), "501 5.1.3 ");
	expect_prefix(rcpt_reply(0, "<alice@example.org"), "501 5.1.3 ");
	expect_prefix(rcpt_reply(0, "<alice@example.org>x"), "501 5.1.3 ");
	expect_prefix(rcpt_reply(0, "<alice>"), "501 5.1.3 ");
	expect_prefix(rcpt_reply(0, "<alice@example.org> NOTIFY=NEVER"),
	    "250 2.1.5 ");
	expect_prefix(rcpt_reply(0, "<alice@example.org> XYZ=1"),
	    "555 5.5.4 ");
	expect_prefix(rcpt_reply(0, "<alice@example.org>  "), "250 2.1.5 ");
}
END_TEST

START_TEST(test_rcpt_syntax_forms)
{
	struct client *c = client_new(0, 0);

	say(c, "EHLO x\r\nMAIL FROM:<>\r\n");
	expect_prefix(say(c, "RCPT <alice@example.org>\r\n"), "501 5.5.4 ");
	expect_prefix(say(c, "RCPT\r\n"), "501 5.5.4 ");
	expect_prefix(say(c, "RCPT FROM:<alice@example.org>\r\n"), "501 5.5.4 ");
	expect_prefix(say(c, "DATA\r\n"), "503 5.5.1 ");
	client_free(c);
}
END_TEST

START_TEST(test_rcpt_long_parts)
{
	char addr[600], label[64];
	int n;

	n = snprintf(addr, sizeof(addr), "<%065d@example.org>", 0);
	ck_assert(n > 0);
	expect_prefix(rcpt_reply(1, addr), "501 5.1.3 ");
	/* A domain of 256 octets. */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(addr, sizeof(addr), "<x@%s.%s.%s.%s.example>", label, label,
	    label, label);
	expect_prefix(rcpt_reply(1, addr), "501 5.1.3 ");
	/* 246 octets: fine. */
	snprintf(addr, sizeof(addr), "<x@%s.%s.%s.%.46s.example>", label, label,
	    label, label);
	expect_prefix(rcpt_reply(1, addr), "250 2.1.5 ");
}
END_TEST

START_TEST(test_rcpt_postmaster)
{
	static const char *const forms[] = {
		"<postmaster>", "<POSTMASTER>", "<PostMaster>",
		"<postmaster@example.org>", "<PostMaster@EXAMPLE.NET>",
		"<\"postmaster\"@example.org>",
	};
	struct client *c;
	const struct session_message *m;
	char line[128];
	size_t i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		c = client_new(0, 0);
		say(c, "EHLO x\r\nMAIL FROM:<>\r\n");
		snprintf(line, sizeof(line), "RCPT TO:%s\r\nDATA\r\nx\r\n.\r\n",
		    forms[i]);
		expect_prefix(say(c, line), "250 2.1.5 Ok\r\n354 ");
		ck_assert_ptr_nonnull(m = session_pending(c->s));
		ck_assert_uint_eq(m->nrcpts, 1);
		ck_assert_str_eq(m->rcpts[0].mailbox, "alice");
		if (i < 3) {
			ck_assert_str_eq(m->rcpts[0].address, "postmaster");
			ck_assert_str_eq(m->rcpts[0].domain, "");
		}
		session_stored(c->s, SESSION_STORE_OK, "P");
		client_free(c);
	}
	/* Another domain's postmaster is just a remote address. */
	expect_prefix(rcpt_reply(0, "<postmaster@remote.example>"), "554 5.7.1 ");
	expect_prefix(rcpt_reply(1, "<postmaster@remote.example>"), "250 2.1.5 ");
}
END_TEST

START_TEST(test_rcpt_relay)
{
	static const struct {
		const char *rcpt, *denied, *allowed;
	} cases[] = {
		{ "<a@remote.example>", "554 5.7.1 ", "250 2.1.5 " },
		{ "<a@Sub.Remote.Example>", "554 5.7.1 ", "250 2.1.5 " },
		{ "<a@[1.2.3.4]>", "554 5.7.1 ", "550 5.7.1 " },
		{ "<a@[IPv6:::1]>", "554 5.7.1 ", "550 5.7.1 " },
		{ "<a@[127.0.0.1]>", "554 5.7.1 ", "550 5.7.1 " },
		/* RFC 1123 2.1: a numeric last label is an address, no domain. */
		{ "<a@127.0.0.1>", "554 5.7.1 ", "501 5.1.2 " },
		{ "<a@2130706433>", "554 5.7.1 ", "501 5.1.2 " },
		{ "<a@0x7f000001>", "554 5.7.1 ", "501 5.1.2 " },
		{ "<a@remote.example.0x7f>", "554 5.7.1 ", "501 5.1.2 " },
		{ "<a@0x7f.example>", "554 5.7.1 ", "250 2.1.5 " },
		{ "<a@../x>", "501 5.1.3 ", "501 5.1.3 " },
		{ "<a@x/y.example>", "501 5.1.3 ", "501 5.1.3 " },
		{ "<a@.x.example>", "501 5.1.3 ", "501 5.1.3 " },
		{ "<a@x..example>", "501 5.1.3 ", "501 5.1.3 " },
		{ "<a@x\\y.example>", "501 5.1.3 ", "501 5.1.3 " },
		{ "<a@-x.example>", "501 5.1.3 ", "501 5.1.3 " },
		{ "<a@example.org.>", "501 5.1.3 ", "501 5.1.3 " },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expect_prefix(rcpt_reply(0, cases[i].rcpt), cases[i].denied);
		expect_prefix(rcpt_reply(1, cases[i].rcpt), cases[i].allowed);
	}
}
END_TEST

START_TEST(test_relay_message)
{
	struct client *c = client_new(1, 0);
	const struct session_message *m;

	say(c, "EHLO x\r\nMAIL FROM:<s@here.example>\r\n");
	expect_prefix(say(c, "RCPT TO:<One@Remote.Example>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "RCPT TO:<One@remote.example>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "RCPT TO:<one@remote.example>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "RCPT TO:<x@[1.2.3.4]>\r\n"), "550 5.7.1 ");
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	say(c, "X-Envelope-To: <evil@bad.example>\r\n\r\nhi\r\n.\r\n");
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	/* Same address twice is kept once; local parts keep their case. */
	ck_assert_uint_eq(m->nrcpts, 2);
	ck_assert_str_eq(m->rcpts[0].address, "One@remote.example");
	ck_assert_str_eq(m->rcpts[1].address, "one@remote.example");
	ck_assert_str_eq(m->rcpts[0].domain, "remote.example");
	ck_assert_ptr_null(m->rcpts[0].mailbox);
	ck_assert_str_eq(msg_text(c, m), "X-Envelope-To: <evil@bad.example>\n\nhi\n");
	session_stored(c->s, SESSION_STORE_OK, "R");
	client_free(c);
}
END_TEST

START_TEST(test_max_recipients)
{
	static const char *const users[] = { "alice", "bob", "Carol" };
	struct client *c = client_new(1, 0);
	const struct session_message *m;
	char line[128];
	int i;

	say(c, "EHLO x\r\nMAIL FROM:<>\r\n");
	for (i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "RCPT TO:<%s@example.org>\r\n",
		    users[i]);
		expect_prefix(say(c, line), "250 2.1.5 ");
	}
	expect_prefix(say(c, "RCPT TO:<r1@remote.example>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "RCPT TO:<r2@remote.example>\r\n"), "250 2.1.5 ");
	/* Full: a new one is refused, a duplicate is not new. */
	ck_assert_str_eq(say(c, "RCPT TO:<r3@remote.example>\r\n"),
	    "452 4.5.3 Error: too many recipients\r\n");
	expect_prefix(say(c, "RCPT TO:<BOB@example.net>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "RCPT TO:<postmaster>\r\n"), "250 2.1.5 ");
	/* Overshooting recipients do not end the session (RFC 5321 4.5.3.1.10). */
	for (i = 0; i < 3 * SESSION_MAX_ERRORS; i++)
		expect_prefix(say(c, "RCPT TO:<r4@remote.example>\r\n"),
		    "452 4.5.3 ");
	ck_assert(!session_closing(c->s));
	say(c, "DATA\r\n.\r\n");
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	ck_assert_uint_eq(m->nrcpts, MAX_RCPTS);
	ck_assert_str_eq(m->rcpts[4].address, "r2@remote.example");
	session_stored(c->s, SESSION_STORE_OK, "M");
	client_free(c);
}
END_TEST

START_TEST(test_rset_and_ehlo_reset)
{
	struct client *c = client_new(0, 0);

	unread(c);
	ck_assert_str_eq(say(c, "RSET\r\n"), "250 2.0.0 Ok\r\n");
	expect_prefix(say(c, "MAIL FROM:<>\r\n"), "503 5.5.1 ");
	expect_prefix(say(c, "RSET x\r\n"), "501 5.5.4 ");
	say(c, reach[T_RCPT]);
	expect_prefix(say(c, "RSET\r\n"), "250 2.0.0 ");
	expect_prefix(say(c, "RCPT TO:<alice@example.org>\r\n"), "503 5.5.1 ");
	expect_prefix(say(c, "MAIL FROM:<>\r\n"), "250 2.1.0 ");
	expect_prefix(say(c, "RCPT TO:<alice@example.org>\r\n"), "250 2.1.5 ");
	expect_prefix(say(c, "HELO y\r\n"), "250 ");
	expect_prefix(say(c, "DATA\r\n"), "503 5.5.1 ");
	expect_prefix(say(c, "MAIL FROM:<a@remote.example>\r\n"), "250 2.1.0 ");
	expect_prefix(say(c, "RCPT TO:<bob@example.org>\r\n"), "250 2.1.5 ");
	/* A failed EHLO changes nothing. */
	expect_prefix(say(c, "EHLO\r\n"), "501 5.5.4 ");
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	say(c, ".\r\n");
	ck_assert_uint_eq(session_pending(c->s)->nrcpts, 1);
	ck_assert_str_eq(session_pending(c->s)->helo, "y");
	ck_assert_str_eq(session_pending(c->s)->rcpts[0].address,
	    "bob@example.org");
	session_stored(c->s, SESSION_STORE_OK, "E");
	client_free(c);
}
END_TEST

START_TEST(test_vrfy_help_noop)
{
	struct client *c = client_new(0, 0);
	char *first;

	unread(c);
	expect_prefix(say(c, "VRFY alice\r\n"), "252 2.5.2 ");
	first = strdup(say(c, "VRFY nobody\r\n"));
	ck_assert_ptr_nonnull(first);
	ck_assert_str_eq(first, say(c, "VRFY alice\r\n"));
	free(first);
	expect_prefix(say(c, "VRFY\r\n"), "501 5.5.4 ");
	expect_prefix(say(c, "HELP\r\n"), "214 2.0.0 ");
	expect_prefix(say(c, "HELP MAIL\r\n"), "214 2.0.0 ");
	expect_prefix(say(c, "NOOP anything\r\n"), "250 2.0.0 ");
	expect_prefix(say(c, "DATA x\r\n"), "503 5.5.1 ");
	client_free(c);
}
END_TEST

/* ---- message text ---------------------------------------------------- */

/* text_of - the text handed over for these DATA bytes, or NULL with *reply */
static char *
text_of(const char *data, size_t len, size_t chunk, size_t *textlen,
    char **replies)
{
	struct client *c = client_new(0, chunk);
	const struct session_message *m;
	char *text = NULL;

	say(c, reach[T_RCPT]);
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	client_send(c, data, len);
	*textlen = 0;
	if ((m = session_pending(c->s)) != NULL) {
		text = malloc(m->size + 1);
		ck_assert_ptr_nonnull(text);
		memcpy(text, msg_text(c, m), m->size);
		text[m->size] = '\0';
		*textlen = m->size;
		session_stored(c->s, SESSION_STORE_OK, "T");
		client_pump(c);
	}
	*replies = strdup(unread(c));
	ck_assert_ptr_nonnull(*replies);
	client_free(c);
	return text;
}

START_TEST(test_dot_stuffing)
{
	static const struct {
		const char *in, *text;
	} cases[] = {
		{ ".\r\n", "" },
		{ "..\r\n.\r\n", ".\n" },
		{ "...\r\n.\r\n", "..\n" },
		{ ".x\r\n.\r\n", "x\n" },
		{ "a\r\n..b\r\n.\r\n", "a\n.b\n" },
		{ "a.\r\n.a\r\n.\r\n", "a.\na\n" },
		{ ". \r\n.\r\n", " \n" },
		{ "\r\n\r\n.\r\n", "\n\n" },
		{ "no end of line.\r\n.\r\n", "no end of line.\n" },
		{ "x\t \x7f\r\n.\r\n", "x\t \x7f\n" },
	};
	size_t i, len;
	char *text, *replies;
	size_t chunk;

	for (chunk = 0; chunk <= 1; chunk++)
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			text = text_of(cases[i].in, strlen(cases[i].in), chunk,
			    &len, &replies);
			ck_assert_msg(text != NULL, "%s: %s", cases[i].in,
			    replies);
			ck_assert_str_eq(text, cases[i].text);
			ck_assert_uint_eq(len, strlen(cases[i].text));
			ck_assert_str_eq(replies, "250 2.0.0 Ok: queued as T\r\n");
			free(text);
			free(replies);
		}
}
END_TEST

START_TEST(test_text_bytes_kept)
{
	static const char in[] = "a\x01" "b\r\n\xff\xfe\r\n.\r\n";
	char *text, *replies, *big;
	size_t len, i;

	text = text_of(in, sizeof(in) - 1, 0, &len, &replies);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, 7);
	ck_assert(memcmp(text, "a\x01" "b\n\xff\xfe\n", 7) == 0);
	free(text);
	free(replies);

	/* A line of 3000 octets (over 1000) is kept as it is. */
	big = malloc(3000 + 6);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i < 3000; i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big + 3000, "\r\n.\r\n", 5);
	text = text_of(big, 3005, 0, &len, &replies);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, 3001);
	ck_assert(memcmp(text, big, 3000) == 0 && text[3000] == '\n');
	free(text);
	free(replies);
	free(big);
}
END_TEST

/*
 * Every smuggled ending: never the end of the message, never a second
 * message; the real end then brings one 550 5.5.2 and nothing is stored.
 */
START_TEST(test_smuggling)
{
	static const char *const endings[] = {
		"\n.\n", "\n.\r\n", "\r.\r", "\r.\n", "\r\n.\n", "\r\n.\r",
		"\n.\r", "\r.\r\n", "\r\n.\r\r\n", "\r\n\r.\r\n", "\r\n.\n\r\n",
		"\r\n \r\n.\n", "\n..\n", "\r\n..\n", "\r\n.\r.\r\n",
		"\r\n\n.\r\n",
	};
	char in[512], *text, *replies;
	size_t i, len, chunk;
	int n;

	for (chunk = 0; chunk <= 1; chunk++)
		for (i = 0; i < sizeof(endings) / sizeof(endings[0]); i++) {
			n = snprintf(in, sizeof(in), "Subject: a%s"
			    "MAIL FROM:<evil@remote.example>\r\n"
			    "RCPT TO:<bob@example.org>\r\nDATA\r\n"
			    "Subject: smuggled\r\n.\r\nNOOP\r\n", endings[i]);
			ck_assert(n > 0 && (size_t)n < sizeof(in));
			text = text_of(in, (size_t)n, chunk, &len, &replies);
			ck_assert_msg(text == NULL, "ending %zu was taken", i);
			ck_assert_msg(strcmp(replies, "550 5.5.2 Error: bare CR "
			    "or LF in message text\r\n250 2.0.0 Ok\r\n") == 0,
			    "ending %zu: %s", i, replies);
		free(replies);
	}
}
END_TEST

/* After a refused message the session goes on as usual. */
START_TEST(test_smuggling_then_good)
{
	struct client *c = client_new(0, 0);

	say(c, reach[T_RCPT]);
	unread(c);
	ck_assert_str_eq(say(c, "DATA\r\nx\n.\nMAIL FROM:<e@x.example>\r\n"
	    ".\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "550 5.5.2 Error: bare CR or LF in message text\r\n");
	ck_assert(probe_state(c) == T_GREETED);
	expect_prefix(say(c, "RCPT TO:<alice@example.org>\r\nDATA\r\n"
	    "fine\r\n.\r\n"), "250 2.1.5 Ok\r\n354 ");
	ck_assert_str_eq(msg_text(c, session_pending(c->s)), "fine\n");
	session_stored(c->s, SESSION_STORE_OK, "G");
	client_free(c);
}
END_TEST

START_TEST(test_message_size)
{
	char *in, *text, *replies;
	size_t len, i;

	in = malloc(MAX_SIZE + 16);
	ck_assert_ptr_nonnull(in);
	/*
	 * Exactly max_message_size octets as sent (RFC 1870: the CRLF
	 * counts two, the final dot none): accepted, stored with LF.
	 */
	for (i = 0; i < MAX_SIZE - 2; i++)
		in[i] = 'a';
	memcpy(in + MAX_SIZE - 2, "\r\n.\r\n", 5);
	text = text_of(in, MAX_SIZE + 3, 0, &len, &replies);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, MAX_SIZE - 1);
	free(text);
	free(replies);
	/* One more: read to the end, then 552, and the session goes on. */
	in[0] = 'b';
	memcpy(in + MAX_SIZE - 2, "b\r\n.\r\nNOOP\r\n", 12);
	text = text_of(in, MAX_SIZE + 10, 0, &len, &replies);
	ck_assert_ptr_null(text);
	ck_assert_str_eq(replies, "552 5.3.4 Error: message exceeds fixed "
	    "maximum message size\r\n250 2.0.0 Ok\r\n");
	free(replies);
	/* Byte by byte, the same. */
	text = text_of(in, MAX_SIZE + 10, 1, &len, &replies);
	ck_assert_ptr_null(text);
	expect_prefix(replies, "552 5.3.4 ");
	free(replies);
	free(in);

	/*
	 * Empty lines only: stored they would be half the limit, as sent
	 * they are over it (the count is taken before CRLF becomes LF).
	 */
	in = malloc(MAX_SIZE + 16);
	ck_assert_ptr_nonnull(in);
	for (i = 0; i + 2 <= MAX_SIZE + 2; i += 2)
		memcpy(in + i, "\r\n", 2);
	memcpy(in + i, ".\r\n", 3);
	text = text_of(in, i + 3, 0, &len, &replies);
	ck_assert_ptr_null(text);
	expect_prefix(replies, "552 5.3.4 ");
	free(replies);
	free(in);
}
END_TEST

START_TEST(test_huge_message_discarded)
{
	struct client *c = client_new(0, 0);
	char chunk[8192];
	int i;

	say(c, reach[T_RCPT]);
	say(c, "DATA\r\n");
	unread(c);
	memset(chunk, 'z', sizeof(chunk));
	for (i = 0; i < 1000; i++) {
		client_send(c, chunk, sizeof(chunk));
		client_send(c, "\r\n", 2);
	}
	ck_assert_str_eq(unread(c), "");
	ck_assert(session_in_data(c->s));
	expect_prefix(say(c, ".\r\n"), "552 5.3.4 ");
	ck_assert(!session_in_data(c->s));
	ck_assert_ptr_null(session_pending(c->s));
	client_free(c);
}
END_TEST

/* ---- log records ----------------------------------------------------- */

static void
expect_logged(const char *what)
{
	ck_assert_msg(logged != NULL && strstr(logged, what) != NULL,
	    "not logged: %s", what);
}

START_TEST(test_log_records)
{
	struct client *c = client_new(0, 0);

	say(c, "EHLO client.example\r\nMAIL FROM:<a@remote.example> SIZE=9\r\n"
	    "RCPT TO:<alice@example.org>\r\nRCPT TO:<x@remote.example>\r\n"
	    "RCPT TO:<nobody@example.org>\r\nAUTH PLAIN c2VjcmV0\r\n"
	    "DATA\r\nx\n\r\n.\r\n"
	    "MAIL FROM:<b@remote.example>\r\nRCPT TO:<bob@example.org>\r\n"
	    "DATA\r\nok\r\n.\r\n");
	session_stored(c->s, SESSION_STORE_OK, "MSGID1");
	expect_logged(" INFO S1 EHLO client.example from [127.0.0.1]");
	expect_logged(" INFO S1 from=<a@remote.example> SIZE=9");
	expect_logged(" INFO S1 to=<alice@example.org> accepted, mailbox alice");
	/* Rejections name the client, its HELO and the sender (Postfix). */
	expect_logged(" INFO S1 reject: \"RCPT TO:<x@remote.example>\" from "
	    "[127.0.0.1]: 554 5.7.1 <x@remote.example>: Relay access denied; "
	    "from=<a@remote.example> helo=<client.example>");
	expect_logged(" INFO S1 reject: \"RCPT TO:<nobody@example.org>\" "
	    "from [127.0.0.1]: 550 5.1.1 ");
	expect_logged(" INFO S1 reject: end of data from [127.0.0.1]: 550 "
	    "5.5.2 Error: bare CR or LF in message text; "
	    "from=<a@remote.example> helo=<client.example>");
	expect_logged(" INFO S1 message rejected: bare CR or LF in text: "
	    "from=<a@remote.example> nrcpt=1");
	expect_logged(" INFO S1 queued as MSGID1: from=<b@remote.example> "
	    "nrcpt=1 size=3");
	expect_logged("\"AUTH ...\" from [127.0.0.1]: 502 5.5.1");
	ck_assert_ptr_null(strstr(logged, "c2VjcmV0"));
	client_free(c);
}
END_TEST

/* ---- streaming, actions, pipelining guard, junk, summary ------------- */

/* A NUL in the text: read to the end, refused, the text let go at once. */
START_TEST(test_text_nul_refused)
{
	static const char text[] = "Subject: x\r\n\r\n.\0\r\nmore\r\n";
	struct client *c = client_new(0, 0);

	say(c, reach[T_RCPT]);
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	client_send(c, text, sizeof(text) - 1);
	ck_assert_str_eq(unread(c), "");
	/* Refused at the NUL: the sink was closed, nothing more written. */
	ck_assert_int_eq(c->text.open, 0);
	ck_assert_str_eq(say(c, ".\r\n"),
	    "550 5.6.0 Error: NUL byte in message text\r\n");
	ck_assert_ptr_null(session_pending(c->s));
	ck_assert(probe_state(c) == T_GREETED);
	client_free(c);
}
END_TEST

/*
 * The sink fails while the text streams in: nothing more is written,
 * the client is read to the end and answered at the final dot (452
 * for a full disk, 451 otherwise), and the next transaction works.
 */
START_TEST(test_text_write_failure)
{
	static const struct {
		int err;
		const char *reply;
	} cases[] = {
		{ ENOSPC, "452 4.3.1 Error: insufficient system storage\r\n" },
		{ EDQUOT, "452 4.3.1 Error: insufficient system storage\r\n" },
		{ EIO, "451 4.3.0 Error: queue file write error\r\n" },
	};
	struct client *c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = client_new(0, 0);
		c->text.fail_write = cases[i].err;
		c->text.fail_after = 10;
		say(c, reach[T_RCPT]);
		expect_prefix(say(c, "DATA\r\n"), "354 ");
		ck_assert_str_eq(say(c, "0123456789\r\nthis does not fit\r\n"),
		    "");
		ck_assert_int_eq(c->text.open, 0);
		ck_assert_uint_eq(c->text.len, 10);
		ck_assert_str_eq(say(c, "and more\r\n.\r\n"), cases[i].reply);
		ck_assert_ptr_null(session_pending(c->s));
		/* A server failure, not the client's: the session goes on. */
		c->text.fail_write = 0;
		expect_prefix(say(c, "MAIL FROM:<a@x.example>\r\nRCPT TO:"
		    "<bob@example.org>\r\nDATA\r\nok\r\n.\r\n"), "250 2.1.0 ");
		ck_assert_str_eq(msg_text(c, session_pending(c->s)), "ok\n");
		session_stored(c->s, SESSION_STORE_OK, "W");
		client_free(c);
	}
}
END_TEST

/* No room for a message: DATA gets 451 (452 when the disk is full). */
START_TEST(test_text_open_failure)
{
	struct client *c = client_new(0, 0);

	c->text.fail_open = EMFILE;
	say(c, reach[T_RCPT]);
	ck_assert_str_eq(say(c, "DATA\r\n"),
	    "451 4.3.0 Error: cannot accept a message now\r\n");
	/* The transaction stands: more recipients may come. */
	expect_prefix(say(c, "RCPT TO:<bob@example.org>\r\n"), "250 2.1.5 ");
	c->text.fail_open = ENOSPC;
	ck_assert_str_eq(say(c, "DATA\r\n"),
	    "452 4.3.1 Error: insufficient system storage\r\n");
	c->text.fail_open = 0;
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	ck_assert_uint_eq(c->text.opens, 1);
	client_free(c);
}
END_TEST

/*
 * The text reaches the sink in order and in pieces, never kept by the
 * engine: fed one byte at a time, a message far over the input buffer
 * arrives whole.
 */
START_TEST(test_text_streams_to_sink)
{
	struct client *c = client_new(0, 0);
	char line[80];
	size_t i, want = 0;

	conf->max_message_size = 1 << 20;
	say(c, reach[T_RCPT]);
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	memset(line, 'q', sizeof(line));
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	for (i = 0; i < 2000; i++) {
		client_send(c, line, sizeof(line));
		want += sizeof(line) - 1;
		ck_assert_uint_eq(c->text.len, want);
	}
	ck_assert_str_eq(say(c, ".\r\n"), "");
	ck_assert_uint_eq(session_pending(c->s)->size, want);
	ck_assert_uint_eq(session_pending(c->s)->octets, want + 2000);
	session_stored(c->s, SESSION_STORE_OK, "BIG");
	ck_assert_uint_eq(c->text.closes, 1);
	client_free(c);
	conf->max_message_size = MAX_SIZE;
}
END_TEST

/* Actions come in order: the store, then (after QUIT) the close. */
START_TEST(test_actions_in_order)
{
	struct client *c = client_new(0, 0);

	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_NONE);
	say(c, reach[T_RCPT]);
	say(c, "DATA\r\n");
	say(c, "hi\r\n.\r\nQUIT\r\n");
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_STORE);
	session_action_taken(c->s);
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_NONE);
	ck_assert(!session_closing(c->s));
	session_stored(c->s, SESSION_STORE_OK, "A1");
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_CLOSE);
	session_action_taken(c->s);
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_NONE);
	ck_assert(session_closing(c->s));
	client_drain(c);
	ck_assert_str_eq(unread(c), "250 2.0.0 Ok: queued as A1\r\n"
	    "221 2.0.0 Bye\r\n");
	client_free(c);
}
END_TEST

/*
 * Issue: text pipelined after a refused DATA ran as commands. In one
 * write, the refused DATA sees the rest waiting: 554 5.5.0 and close,
 * nothing of it run. Fed in pieces, the first text line (a header) is
 * no command: the same 554 before anything runs.
 */
static const char injection[] =
    "MAIL FROM:<me@example.net>\r\nRCPT TO:<nosuch@example.org>\r\n"
    "DATA\r\nSubject: innocent\r\n\r\nMAIL FROM:<ceo@example.org>\r\n"
    "RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: injected\r\n\r\n"
    "evil\r\n.\r\n";

START_TEST(test_pipelining_after_refused_data)
{
	static const char head[] = "250 2.1.0 Ok\r\n"
	    "550 5.1.1 <nosuch@example.org>: Recipient address rejected: "
	    "User unknown\r\n"
	    "503 5.5.1 Error: need RCPT command\r\n";
	struct client *c;
	size_t chunk;

	for (chunk = 0; chunk <= 1; chunk++) {
		c = client_new(0, chunk);
		say(c, "EHLO client.example\r\n");
		unread(c);
		client_send(c, injection, sizeof(injection) - 1);
		ck_assert_str_eq(unread(c), chunk == 0
		    ? "250 2.1.0 Ok\r\n"
		    "550 5.1.1 <nosuch@example.org>: Recipient address "
		    "rejected: User unknown\r\n"
		    "503 5.5.1 Error: need RCPT command\r\n"
		    "554 5.5.0 Error: improper use of SMTP command "
		    "pipelining\r\n"
		    : "250 2.1.0 Ok\r\n"
		    "550 5.1.1 <nosuch@example.org>: Recipient address "
		    "rejected: User unknown\r\n"
		    "503 5.5.1 Error: need RCPT command\r\n"
		    "554 5.5.0 Error: message text sent after a refused DATA "
		    "command\r\n");
		ck_assert(session_closing(c->s));
		ck_assert_ptr_null(session_pending(c->s));
		/* No message was ever begun: bob gets nothing. */
		ck_assert_uint_eq(c->text.opens, 0);
		client_free(c);
	}

	/* A client that waits for the 503 and goes on is served. */
	c = client_new(0, 0);
	say(c, "EHLO client.example\r\n");
	unread(c);
	ck_assert_str_eq(say(c, "MAIL FROM:<me@example.net>\r\n"
	    "RCPT TO:<nosuch@example.org>\r\nDATA\r\n"), head);
	ck_assert_str_eq(say(c, "RSET\r\n"), "250 2.0.0 Ok\r\n");
	expect_prefix(say(c, "MAIL FROM:<me@example.net>\r\n"), "250 ");
	ck_assert(!session_closing(c->s));
	client_free(c);
}
END_TEST

/*
 * Postfix's smtpd_junk_command_limit: 100 NOOPs are free, then each
 * counts as an error, and the error limit ends the session.
 */
START_TEST(test_junk_command_limit)
{
	struct client *c = client_new(0, 0);
	unsigned i;

	say(c, "EHLO client.example\r\n");
	unread(c);
	for (i = 0; i < SESSION_JUNK_LIMIT + SESSION_MAX_ERRORS - 1; i++)
		ck_assert_str_eq(say(c, i % 2 ? "NOOP\r\n" : "RSET\r\n"),
		    i % 2 ? "250 2.0.0 Ok\r\n" : "250 2.0.0 Ok\r\n");
	ck_assert(!session_closing(c->s));
	ck_assert_str_eq(say(c, "NOOP\r\n"), "250 2.0.0 Ok\r\n"
	    "421 4.7.0 mx.example.org Error: too many errors\r\n");
	ck_assert(session_closing(c->s));
	client_free(c);
}
END_TEST

/* ---- BDAT (RFC 3030) -------------------------------------------------- */

/* bdat_text - the text a BDAT transaction of chunks hands over, or NULL */
static char *
bdat_text(const char *msg, size_t len, size_t split, size_t *outlen)
{
	struct client *c = client_new(0, 0);
	const struct session_message *m;
	char cmd[64];
	char *text = NULL;

	say(c, reach[T_RCPT]);
	snprintf(cmd, sizeof(cmd), "BDAT %zu\r\n", split);
	client_send(c, cmd, strlen(cmd));
	client_send(c, msg, split);
	snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", len - split);
	client_send(c, cmd, strlen(cmd));
	client_send(c, msg + split, len - split);
	if ((m = session_pending(c->s)) != NULL) {
		*outlen = m->size;
		text = malloc(m->size + 1);
		ck_assert_ptr_nonnull(text);
		memcpy(text, msg_text(c, m), m->size);
		ck_assert_uint_eq(m->octets, len);
	}
	client_free(c);
	return text;
}

/*
 * The same message by DATA (dot-stuffed) and by BDAT, split between
 * two chunks at every octet (CRLF split too), is the same text.
 */
START_TEST(test_bdat_same_text_as_data)
{
	static const char msg[] = "Subject: same\r\n.leading dot\r\n\r\n"
	    "..two\r\n.\r\nend\r\n";
	static const char stuffed[] = "Subject: same\r\n..leading dot\r\n\r\n"
	    "...two\r\n..\r\nend\r\n.\r\n";
	struct client *c = client_new(0, 0);
	const struct session_message *m;
	char *data_text, *text;
	size_t data_len, len, split;

	say(c, reach[T_RCPT]);
	expect_prefix(say(c, "DATA\r\n"), "354 ");
	say(c, stuffed);
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	data_len = m->size;
	ck_assert_ptr_nonnull(data_text = strndup(msg_text(c, m), m->size));
	ck_assert_str_eq(data_text, "Subject: same\n.leading dot\n\n..two\n.\n"
	    "end\n");
	client_free(c);

	for (split = 0; split <= sizeof(msg) - 1; split++) {
		text = bdat_text(msg, sizeof(msg) - 1, split, &len);
		ck_assert_msg(text != NULL, "split %zu: nothing pending", split);
		ck_assert_msg(len == data_len && memcmp(text, data_text, len)
		    == 0, "split %zu: \"%.*s\"", split, (int)len, text);
		free(text);
	}
	free(data_text);
}
END_TEST

/* SIZE counts the octets of the chunks; past it 552, then 503. */
START_TEST(test_bdat_size)
{
	struct client *c = client_new(0, 0);
	char *big = malloc(MAX_SIZE + 1);

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', MAX_SIZE);
	say(c, reach[T_RCPT]);
	ck_assert_str_eq(say(c, "BDAT 4000\r\n"), "");
	ck_assert(session_in_data(c->s));
	client_send(c, big, 4000);
	ck_assert(!session_in_data(c->s));
	ck_assert_str_eq(unread(c), "250 2.0.0 Ok: 4000 octets received\r\n");
	client_send(c, "BDAT 96 LAST\r\n", 14);
	client_send(c, big, 96);
	ck_assert_ptr_nonnull(session_pending(c->s));
	ck_assert_uint_eq(session_pending(c->s)->size, MAX_SIZE);
	session_stored(c->s, SESSION_STORE_OK, "S1");
	client_drain(c);
	ck_assert_str_eq(unread(c), "250 2.0.0 Ok: queued as S1\r\n");

	say(c, "MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.org>\r\n");
	unread(c);
	client_send(c, "BDAT 4000\r\n", 11);
	client_send(c, big, 4000);
	client_send(c, "BDAT 97\r\n", 9);
	client_send(c, big, 97);
	client_send(c, "BDAT 5 LAST\r\nRSET\n", 18);
	ck_assert_str_eq(unread(c), "250 2.0.0 Ok: 4000 octets received\r\n"
	    "552 5.3.4 Error: message exceeds fixed maximum message size\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n");
	ck_assert_ptr_null(session_pending(c->s));
	ck_assert_uint_eq(c->text.opens, c->text.closes + 0);
	free(big);
	client_free(c);
}
END_TEST

/*
 * No room for the message, or it cannot be kept: the chunk is read,
 * then 451/452, and the transaction is over (a BDAT already pipelined
 * after it must not start a message with the rest).
 */
START_TEST(test_bdat_store_failures)
{
	struct client *c = client_new(0, 0);

	c->text.fail_open = ENOSPC;
	say(c, reach[T_RCPT]);
	ck_assert_str_eq(say(c, "BDAT 3\r\nabcBDAT 2 LAST\r\nxy"),
	    "452 4.3.1 Error: insufficient system storage\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n");
	ck_assert_uint_eq(c->text.opens, 0);
	c->text.fail_open = EMFILE;
	say(c, "MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.org>\r\n");
	unread(c);
	ck_assert_str_eq(say(c, "BDAT 1 LAST\r\na"),
	    "451 4.3.0 Error: cannot accept a message now\r\n");
	c->text.fail_open = 0;
	c->text.fail_write = EIO;
	c->text.fail_after = 2;
	say(c, "MAIL FROM:<a@x.example>\r\nRCPT TO:<alice@example.org>\r\n");
	unread(c);
	ck_assert_str_eq(say(c, "BDAT 4\r\nabcdBDAT 1 LAST\r\ne"),
	    "451 4.3.0 Error: queue file write error\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n");
	ck_assert_uint_eq(c->text.opens, 1);
	ck_assert_uint_eq(c->text.closes, 1);
	client_free(c);
}
END_TEST

/* Chunks are counted in the disconnect record as bdat, each one. */
START_TEST(test_bdat_summary)
{
	struct client *c = client_new(0, 0);
	char sum[SESSION_SUMMARY_SIZE];

	say(c, reach[T_RCPT]);
	say(c, "BDAT 2\r\nabBDAT 1 LAST\r\nc");
	session_stored(c->s, SESSION_STORE_OK, "S");
	client_drain(c);
	say(c, "BDAT 1 LAST\r\nx");
	ck_assert_int_eq(session_summary(c->s, sum, sizeof(sum)), 0);
	ck_assert_str_eq(sum, "ehlo=1 mail=1 rcpt=1 bdat=2/3 commands=5/6");
	client_free(c);
}
END_TEST

/* The disconnect record's counts, as Postfix writes them. */
START_TEST(test_summary)
{
	struct client *c = client_new(0, 0);
	char sum[SESSION_SUMMARY_SIZE];

	ck_assert_int_eq(session_summary(c->s, sum, sizeof(sum)), 0);
	ck_assert_str_eq(sum, "commands=0");
	say(c, "EHLO client.example\r\nMAIL FROM:<a@x.example>\r\n"
	    "RCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
	    "DATA\r\nhi\r\n.\r\n");
	session_stored(c->s, SESSION_STORE_OK, "S");
	say(c, "BOGUS\r\nQUIT\r\n");
	ck_assert_int_eq(session_summary(c->s, sum, sizeof(sum)), 0);
	ck_assert_str_eq(sum, "ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 "
	    "unknown=0/1 commands=5/7");
	ck_assert_int_eq(session_summary(c->s, sum, 10), -1);
	client_free(c);

	/* A message refused at its end counts as a failed DATA. */
	c = client_new(0, 0);
	say(c, reach[T_RCPT]);
	say(c, "DATA\r\nbare\nLF\r\n.\r\n");
	ck_assert_int_eq(session_summary(c->s, sum, sizeof(sum)), 0);
	ck_assert_str_eq(sum, "ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4");
	client_free(c);
}
END_TEST

/* ---- STARTTLS --------------------------------------------------------- */

#define EHLO_REPLY_TLS	"250-" HOST "\r\n250-PIPELINING\r\n250-SIZE 4096\r\n" \
			"250-8BITMIME\r\n250-STARTTLS\r\n" \
			"250-ENHANCEDSTATUSCODES\r\n" \
			"250-SMTPUTF8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n" \
			"250-DSN\r\n250-LIMITS RCPTMAX=5\r\n250 HELP\r\n"

/* STARTTLS is offered only when TLS can be had, and not once in TLS. */
START_TEST(test_starttls_offered)
{
	struct client *c = client_new(0, 0);

	ck_assert_str_eq(unread(c), GREETING);
	ck_assert_str_eq(say(c, "EHLO client.example\r\n"), EHLO_REPLY);
	expect_prefix(say(c, "STARTTLS\r\n"), "502 5.5.1 ");
	session_tls_offer(c->s);
	ck_assert_str_eq(say(c, "EHLO client.example\r\n"), EHLO_REPLY_TLS);
	ck_assert_str_eq(say(c, "STARTTLS\r\n"),
	    "220 2.0.0 Ready to start TLS\r\n");
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_STARTTLS);
	session_action_taken(c->s);
	ck_assert_uint_eq(session_input_room(c->s), 0);
	ck_assert_ptr_null(session_tls(c->s));
	ck_assert_int_eq(session_tls_started(c->s, TLS_TEXT), 0);
	ck_assert_str_eq(session_tls(c->s), TLS_TEXT);
	/* No second greeting; the client speaks first (RFC 3207). */
	client_drain(c);
	ck_assert_str_eq(unread(c), "");
	ck_assert_str_eq(say(c, "EHLO client.example\r\n"), EHLO_REPLY);
	ck_assert_str_eq(say(c, "STARTTLS\r\n"),
	    "503 5.5.1 Error: TLS already active\r\n");
	/* A second handshake is refused by the engine too. */
	ck_assert_int_eq(session_tls_started(c->s, TLS_TEXT), -1);
	client_free(c);
}
END_TEST

/*
 * CVE-2011-0411: commands pipelined after STARTTLS in the same packet
 * must not run, in plaintext or after the handshake: no reply to
 * them, and the session after the handshake knows no EHLO (the RSET
 * and MAIL were never run, as the disconnect counts show).
 */
START_TEST(test_starttls_injection)
{
	struct client *c = client_new(0, 0);
	char summary[SESSION_SUMMARY_SIZE];

	session_tls_offer(c->s);
	say(c, "EHLO client.example\r\n");
	ck_assert_str_eq(say(c, "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x>\r\n"),
	    "220 2.0.0 Ready to start TLS\r\n");
	ck_assert_uint_eq(c->pendlen, 0);
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_STARTTLS);
	session_action_taken(c->s);
	ck_assert_int_eq(session_action(c->s), SESSION_ACTION_NONE);
	ck_assert_ptr_nonnull(strstr(logged, "STARTTLS: 26 bytes sent after "
	    "it before TLS thrown away"));
	ck_assert_int_eq(session_tls_started(c->s, TLS_TEXT), 0);
	client_drain(c);
	ck_assert_str_eq(unread(c), "");
	ck_assert_int_eq(session_summary(c->s, summary, sizeof(summary)), 0);
	ck_assert_str_eq(summary, "ehlo=1 starttls=1 commands=2");
	expect_prefix(say(c, "MAIL FROM:<a@example.net>\r\n"),
	    "503 5.5.1 Error: send HELO/EHLO first");
	client_free(c);
}
END_TEST

/* A message received in TLS carries the description; one without, NULL. */
START_TEST(test_starttls_message_tls)
{
	struct client *c = client_new(0, 0);
	const struct session_message *m;

	say(c, "EHLO client.example\r\nMAIL FROM:<a@example.net>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\nhi\r\n.\r\n");
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	ck_assert_ptr_null(m->tls);
	session_stored(c->s, SESSION_STORE_OK, "A1");
	client_free(c);

	c = client_new(0, 0);
	ck_assert_int_eq(session_tls_started(c->s, TLS_TEXT), 0);
	client_drain(c);
	ck_assert_str_eq(unread(c), GREETING);
	say(c, "EHLO client.example\r\nMAIL FROM:<a@example.net>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\nhi\r\n.\r\n");
	ck_assert_ptr_nonnull(m = session_pending(c->s));
	ck_assert_str_eq(m->tls, TLS_TEXT);
	ck_assert_int_eq(m->esmtp, 1);
	session_stored(c->s, SESSION_STORE_OK, "A2");
	client_free(c);
}
END_TEST

/* ---- transcripts ----------------------------------------------------- */

static char **transcripts;
static size_t ntranscripts;

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
transcripts_list(void)
{
	DIR *d;
	struct dirent *e;
	size_t len;
	char **v;

	d = opendir(TEST_SRCDIR "/transcripts");
	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", TEST_SRCDIR "/transcripts",
		    strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".dlg") != 0)
			continue;
		v = realloc(transcripts, (ntranscripts + 1) * sizeof(*v));
		if (v == NULL || (v[ntranscripts] = strdup(e->d_name)) == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(EXIT_FAILURE);
		}
		transcripts = v;
		ntranscripts++;
	}
	closedir(d);
	qsort(transcripts, ntranscripts, sizeof(*transcripts), name_cmp);
}

static void
transcripts_free(void)
{
	size_t i;

	for (i = 0; i < ntranscripts; i++)
		free(transcripts[i]);
	free(transcripts);
}

#define TFAIL(...) ck_abort_msg(__VA_ARGS__)

/* expect_rcpts - check "A:M A:M ..." against the pending recipients */
static void
expect_rcpts(const struct session_message *m, char *list, const char *where)
{
	char *word, *save = NULL, *mailbox;
	size_t i = 0;

	for (word = strtok_r(list, " ", &save); word != NULL;
	    word = strtok_r(NULL, " ", &save), i++) {
		if ((mailbox = strrchr(word, ':')) == NULL)
			TFAIL("%s: expect-rcpts needs ADDRESS:MAILBOX", where);
		*mailbox++ = '\0';
		if (i >= m->nrcpts)
			TFAIL("%s: only %zu recipients", where, m->nrcpts);
		if (unescape(word, word) == SIZE_MAX)
			TFAIL("%s: bad escape", where);
		if (strcmp(m->rcpts[i].address, word) != 0)
			TFAIL("%s: recipient %zu is %s, not %s", where, i,
			    m->rcpts[i].address, word);
		if (strcmp(mailbox, "-") == 0 ? m->rcpts[i].mailbox != NULL :
		    m->rcpts[i].mailbox == NULL ||
		    strcmp(m->rcpts[i].mailbox, mailbox) != 0)
			TFAIL("%s: recipient %zu has mailbox %s, not %s", where,
			    i, m->rcpts[i].mailbox ? m->rcpts[i].mailbox : "-",
			    mailbox);
	}
	if (i != m->nrcpts)
		TFAIL("%s: %zu recipients, expected %zu", where, m->nrcpts, i);
}

/* expect_originals - check "O O ..." ("-": none) against the pending recipients */
static void
expect_originals(const struct session_message *m, char *list,
    const char *where)
{
	char *word, *save = NULL;
	const char *got;
	size_t i = 0;

	for (word = strtok_r(list, " ", &save); word != NULL;
	    word = strtok_r(NULL, " ", &save), i++) {
		if (i >= m->nrcpts)
			TFAIL("%s: only %zu recipients", where, m->nrcpts);
		got = m->rcpts[i].original ? m->rcpts[i].original : "-";
		if (strcmp(got, word) != 0)
			TFAIL("%s: recipient %zu has original %s, not %s", where,
			    i, got, word);
	}
	if (i != m->nrcpts)
		TFAIL("%s: %zu recipients, expected %zu", where, m->nrcpts, i);
}

/*
 * expect_field - check "V V ..." against one field of each pending
 * recipient: 'd' its domain, 'p' its parameters (escaped, "-" for none)
 */
static void
expect_field(const struct session_message *m, char *list, const char *where,
    int field)
{
	char *word, *save = NULL, want[1024];
	const char *got;
	size_t i = 0;

	for (word = strtok_r(list, " ", &save); word != NULL;
	    word = strtok_r(NULL, " ", &save), i++) {
		if (i >= m->nrcpts)
			TFAIL("%s: only %zu recipients", where, m->nrcpts);
		if (strlen(word) >= sizeof(want) || unescape(word, want)
		    == SIZE_MAX)
			TFAIL("%s: bad escape", where);
		if (field == 'd')
			got = m->rcpts[i].domain;
		else
			got = m->rcpts[i].params != NULL
			    && *m->rcpts[i].params ? m->rcpts[i].params : "-";
		if (strcmp(got, want) != 0)
			TFAIL("%s: recipient %zu has %s \"%s\", not \"%s\"",
			    where, i, field == 'd' ? "domain" : "params", got,
			    want);
	}
	if (i != m->nrcpts)
		TFAIL("%s: %zu recipients, expected %zu", where, m->nrcpts, i);
}

/* directive - one "! ..." line */
static void
directive(struct client *c, char *arg, char *buf, const char *where)
{
	const struct session_message *m = session_pending(c->s);
	size_t n;

	if (strcmp(arg, "relay") == 0) {
		if (c->outread > 0 || c->pendlen > 0)
			TFAIL("%s: relay must come first", where);
		session_free(c->s);
		c->outlen = 0;
		c->s = session_new(conf, "127.0.0.1", 1, "S1", &test_sink,
		    &c->text);
		ck_assert_ptr_nonnull(c->s);
		client_drain(c);
	} else if (strncmp(arg, "catchall ", 9) == 0) {
		/* The test's configuration; teardown makes a fresh one. */
		free(conf->catchall);
		conf->catchall = strdup(arg + 9);
		ck_assert_ptr_nonnull(conf->catchall);
	} else if (strncmp(arg, "expect-domains ", 15) == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		expect_field(m, arg + 15, where, 'd');
	} else if (strncmp(arg, "expect-rcpt-params ", 19) == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		expect_field(m, arg + 19, where, 'p');
	} else if (strncmp(arg, "expect-originals ", 17) == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		expect_originals(m, arg + 17, where);
	} else if (strncmp(arg, "stored ", 7) == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		if (strncmp(arg + 7, "OK ", 3) == 0)
			session_stored(c->s, SESSION_STORE_OK, arg + 10);
		else if (strcmp(arg + 7, "TEMPFAIL") == 0)
			session_stored(c->s, SESSION_STORE_TEMPFAIL, NULL);
		else if (strcmp(arg + 7, "NOSPACE") == 0)
			session_stored(c->s, SESSION_STORE_NOSPACE, NULL);
		else
			TFAIL("%s: bad stored directive", where);
		client_pump(c);
	} else if (strncmp(arg, "expect-text ", 12) == 0 ||
	    strcmp(arg, "expect-text") == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		if ((n = unescape(arg + (arg[11] ? 12 : 11), buf)) == SIZE_MAX)
			TFAIL("%s: bad escape", where);
		if (n != m->size || memcmp(buf, msg_text(c, m), n) != 0)
			TFAIL("%s: text is \"%.*s\"", where, (int)m->size,
			    msg_text(c, m));
	} else if (strncmp(arg, "expect-sender ", 14) == 0 ||
	    strcmp(arg, "expect-sender") == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		if (unescape(arg + (arg[13] ? 14 : 13), buf) == SIZE_MAX ||
		    strcmp(buf, m->sender) != 0)
			TFAIL("%s: sender is \"%s\"", where, m->sender);
	} else if (strncmp(arg, "expect-params ", 14) == 0 ||
	    strcmp(arg, "expect-params") == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		if (unescape(arg + (arg[13] ? 14 : 13), buf) == SIZE_MAX ||
		    strcmp(buf, m->mail_params) != 0)
			TFAIL("%s: params are \"%s\"", where, m->mail_params);
	} else if (strncmp(arg, "expect-rcpts ", 13) == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		expect_rcpts(m, arg + 13, where);
	} else if (strcmp(arg, "no-pending") == 0) {
		if (m != NULL)
			TFAIL("%s: a message is pending", where);
	} else if (strcmp(arg, "timeout") == 0) {
		session_timeout(c->s);
		client_drain(c);
	} else if (strcmp(arg, "shutdown") == 0) {
		session_shutdown(c->s);
		client_drain(c);
	} else if (strcmp(arg, "closed") == 0) {
		if (!session_closing(c->s))
			TFAIL("%s: session is not closing", where);
	} else if (strcmp(arg, "tls-offer") == 0) {
		session_tls_offer(c->s);
	} else if (strcmp(arg, "starttls") == 0) {
		if (session_action(c->s) != SESSION_ACTION_STARTTLS)
			TFAIL("%s: no STARTTLS action", where);
		session_action_taken(c->s);
		if (session_input_room(c->s) != 0)
			TFAIL("%s: input taken before the handshake", where);
		c->pendlen = 0;
		if (session_tls_started(c->s, TLS_TEXT) < 0)
			TFAIL("%s: session_tls_started failed", where);
		client_pump(c);
	} else if (strcmp(arg, "implicit-tls") == 0) {
		if (session_tls_started(c->s, TLS_TEXT) < 0)
			TFAIL("%s: session_tls_started failed", where);
		client_pump(c);
	} else if (strncmp(arg, "expect-tls ", 11) == 0) {
		if (m == NULL)
			TFAIL("%s: no message pending", where);
		if (unescape(arg + 11, buf) == SIZE_MAX)
			TFAIL("%s: bad escape", where);
		if (strcmp(buf, "-") == 0 ? m->tls != NULL : m->tls == NULL
		    || strcmp(buf, m->tls) != 0)
			TFAIL("%s: tls is \"%s\"", where,
			    m->tls != NULL ? m->tls : "-");
	} else {
		TFAIL("%s: unknown directive \"%s\"", where, arg);
	}
}

static void
replay(const char *name, size_t chunk)
{
	char path[1024], where[1100];
	char *line = NULL, *buf, *got;
	size_t cap = 0, len, n, wlen;
	unsigned lineno = 0;
	struct client *c;
	ssize_t r;
	FILE *f;

	snprintf(path, sizeof(path), "%s/transcripts/%s", TEST_SRCDIR, name);
	ck_assert_msg((f = fopen(path, "r")) != NULL, "%s: %s", path,
	    strerror(errno));
	c = client_new(0, chunk);
	while ((r = getline(&line, &cap, f)) >= 0) {
		lineno++;
		len = (size_t)r;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		snprintf(where, sizeof(where), "%s:%u (chunk %zu)", name, lineno,
		    chunk);
		if (len == 0 || line[0] == '#')
			continue;
		if (len < 2)
			TFAIL("%s: bad line", where);
		buf = malloc(len + 3);
		ck_assert_ptr_nonnull(buf);
		if (line[0] == 'C' && (line[1] == ':' || line[1] == '-')) {
			n = unescape(line + 2 + (line[2] == ' '), buf);
			if (n == SIZE_MAX)
				TFAIL("%s: bad escape", where);
			if (line[1] == ':') {
				memcpy(buf + n, "\r\n", 2);
				n += 2;
			}
			client_send(c, buf, n);
		} else if (line[0] == 'S' && line[1] == ':') {
			const char *want = line + 2 + (line[2] == ' ');

			wlen = strlen(want);
			if ((got = next_line(c)) == NULL)
				TFAIL("%s: expected \"%s\", got no reply", where,
				    want);
			if (wlen > 0 && want[wlen - 1] == '*' ?
			    strncmp(got, want, wlen - 1) != 0 :
			    strcmp(got, want) != 0)
				TFAIL("%s: expected \"%s\", got \"%s\"", where,
				    want, got);
			free(got);
		} else if (line[0] == '!' && line[1] == ' ') {
			directive(c, line + 2, buf, where);
		} else {
			TFAIL("%s: bad line", where);
		}
		free(buf);
	}
	snprintf(where, sizeof(where), "%s:end (chunk %zu)", name, chunk);
	if (c->outread < c->outlen)
		TFAIL("%s: replies not expected: \"%s\"", where,
		    c->out + c->outread);
	if (c->pendlen > 0 && !session_closing(c->s))
		TFAIL("%s: %zu client bytes not taken", where, c->pendlen);
	free(line);
	fclose(f);
	client_free(c);
}

START_TEST(test_transcript)
{
	replay(transcripts[_i], 0);
	replay(transcripts[_i], 1);
}
END_TEST

START_TEST(test_transcripts_present)
{
	/* The dialogs named by the requirements must exist. */
	ck_assert_uint_ge(ntranscripts, 12);
}
END_TEST

static Suite *
session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc;

	tc = tcase_create("commands");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_greeting);
	tcase_add_test(tc, test_ehlo_reply);
	tcase_add_test(tc, test_helo_argument);
	tcase_add_test(tc, test_helo_checked);
	tcase_add_test(tc, test_8bit_address);
	tcase_add_loop_test(tc, test_state_table, 0,
	    (int)(T_NSTATES * NCOMMANDS));
	tcase_add_test(tc, test_data_state_commands_are_text);
	tcase_add_test(tc, test_case_insensitive);
	tcase_add_test(tc, test_rset_and_ehlo_reset);
	tcase_add_test(tc, test_vrfy_help_noop);
	tcase_add_test(tc, test_quit_mid_batch);
	tcase_add_test(tc, test_error_limit);
	tcase_add_test(tc, test_timeout_shutdown);
	tcase_add_test(tc, test_log_records);
	suite_add_tcase(s, tc);

	tc = tcase_create("starttls");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_starttls_offered);
	tcase_add_test(tc, test_starttls_injection);
	tcase_add_test(tc, test_starttls_message_tls);
	suite_add_tcase(s, tc);

	tc = tcase_create("input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pipelining_batch);
	tcase_add_test(tc, test_pipelining_huge_batch);
	tcase_add_test(tc, test_output_high_water);
	tcase_add_test(tc, test_input_room);
	tcase_add_test(tc, test_line_length);
	tcase_add_test(tc, test_bad_bytes_in_command);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("envelope");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mail_syntax);
	tcase_add_test(tc, test_mail_long_parts);
	tcase_add_test(tc, test_rcpt_local);
	tcase_add_test(tc, test_rcpt_syntax_forms);
	tcase_add_test(tc, test_rcpt_long_parts);
	tcase_add_test(tc, test_rcpt_postmaster);
	tcase_add_test(tc, test_rcpt_relay);
	tcase_add_test(tc, test_relay_message);
	tcase_add_test(tc, test_max_recipients);
	suite_add_tcase(s, tc);

	tc = tcase_create("message");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_message_fields);
	tcase_add_test(tc, test_message_helo_null_sender);
	tcase_add_test(tc, test_stored_results);
	tcase_add_test(tc, test_dot_stuffing);
	tcase_add_test(tc, test_text_bytes_kept);
	tcase_add_test(tc, test_smuggling);
	tcase_add_test(tc, test_smuggling_then_good);
	tcase_add_test(tc, test_message_size);
	tcase_add_test(tc, test_huge_message_discarded);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("streaming");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_text_nul_refused);
	tcase_add_test(tc, test_text_write_failure);
	tcase_add_test(tc, test_text_open_failure);
	tcase_add_test(tc, test_text_streams_to_sink);
	tcase_add_test(tc, test_actions_in_order);
	tcase_add_test(tc, test_pipelining_after_refused_data);
	tcase_add_test(tc, test_junk_command_limit);
	tcase_add_test(tc, test_summary);
	suite_add_tcase(s, tc);

	tc = tcase_create("bdat");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_bdat_same_text_as_data);
	tcase_add_test(tc, test_bdat_size);
	tcase_add_test(tc, test_bdat_store_failures);
	tcase_add_test(tc, test_bdat_summary);
	suite_add_tcase(s, tc);

	tc = tcase_create("transcripts");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_transcripts_present);
	tcase_add_test(tc, test_http_request_closes);
	tcase_add_test(tc, test_lines_count_only_complete_lines);
	tcase_add_loop_test(tc, test_transcript, 0, (int)ntranscripts);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	transcripts_list();
	sr = srunner_create(session_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	transcripts_free();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
