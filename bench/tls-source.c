/*
 * NAME
 *	tls-source - an SMTP load source with STARTTLS, for bench/run
 * SYNOPSIS
 *	tls-source -s SESSIONS -m COUNT [-l SIZE] [-f FROM] [-t TO]
 *	    [-M HELO] [-r] HOST:PORT
 * DESCRIPTION
 *	What Postfix's smtp-source does with one connection per message
 *	(it has no TLS), with a STARTTLS in each: SESSIONS processes send
 *	COUNT messages in all, each message over a new connection:
 *	greeting, EHLO, STARTTLS, the handshake, EHLO again, MAIL, RCPT,
 *	DATA, SIZE bytes of text in lines of 78 characters, the final dot,
 *	QUIT. Every reply is read and checked (2xx or 3xx where due).
 *	Certificates are not verified (the servers under test use a
 *	self-signed one); no resumption unless -r (each process then
 *	offers its previous session, as an MTA's session cache does).
 *
 *	Only numeric IPv4 addresses; built by bench/run with
 *	`cc tls-source.c -lssl -lcrypto`.
 * DIAGNOSTICS
 *	Exit status 0 when every message was accepted, 1 when any failed
 *	(the first failure of each process is printed on stderr), 64 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define SOURCE_TIMEOUT	30	/* seconds for any one read or write */

struct source_conn {
	int fd;
	SSL *ssl;
	char buf[4096];
	size_t len;
	char last[512];		/* the last reply line, for messages */
};

static const char *source_from = "bench@client.example";
static const char *source_to = "alice@example.org";
static const char *source_helo = "client.example";

static int source_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int source_write(struct source_conn *c, const char *data, size_t len);
static int source_reply(struct source_conn *c, int want);
static int source_command(struct source_conn *c, const char *line, int want);
static int source_message(SSL_CTX *ctx, const struct sockaddr_in *sin,
    const char *text, size_t textlen, SSL_SESSION **session);
static int source_session(SSL_CTX *ctx, const struct sockaddr_in *sin,
    long count, const char *text, size_t textlen, int resume);

static int
source_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "tls-source: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return -1;
}

static int
source_write(struct source_conn *c, const char *data, size_t len)
{
	ssize_t n;
	int r;

	while (len > 0) {
		if (c->ssl != NULL) {
			if ((r = SSL_write(c->ssl, data, (int)len)) <= 0)
				return source_fail("SSL_write: %s",
				    ERR_reason_error_string(ERR_get_error()));
			n = r;
		} else if ((n = send(c->fd, data, len, MSG_NOSIGNAL)) < 0) {
			return source_fail("send: %s", strerror(errno));
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* source_reply - read one whole reply; its code must start with want */
static int
source_reply(struct source_conn *c, int want)
{
	char *lf;
	ssize_t n;
	size_t linelen;

	for (;;) {
		while ((lf = memchr(c->buf, '\n', c->len)) != NULL) {
			linelen = (size_t)(lf - c->buf) + 1;
			snprintf(c->last, sizeof(c->last), "%.*s",
			    (int)(linelen > 2 ? linelen - 2 : 0), c->buf);
			memmove(c->buf, c->buf + linelen, c->len - linelen);
			c->len -= linelen;
			if (linelen >= 4 && c->last[3] == '-')
				continue;
			if (c->last[0] != '0' + want)
				return source_fail("unexpected reply: %s",
				    c->last);
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return source_fail("reply line too long");
		if (c->ssl != NULL)
			n = SSL_read(c->ssl, c->buf + c->len,
			    (int)(sizeof(c->buf) - c->len));
		else
			n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len,
			    0);
		if (n <= 0)
			return source_fail("connection closed or failed while "
			    "waiting for a %dxx reply", want);
		c->len += (size_t)n;
	}
}

static int
source_command(struct source_conn *c, const char *line, int want)
{
	if (source_write(c, line, strlen(line)) < 0)
		return -1;
	return source_reply(c, want);
}

/* source_message - one connection, one message through STARTTLS */
static int
source_message(SSL_CTX *ctx, const struct sockaddr_in *sin, const char *text,
    size_t textlen, SSL_SESSION **session)
{
	struct timeval tv = { SOURCE_TIMEOUT, 0 };
	char line[600];
	struct source_conn c;
	int on = 1, status = -1;

	memset(&c, 0, sizeof(c));
	if ((c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return source_fail("socket: %s", strerror(errno));
	(void)setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(c.fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0) {
		source_fail("connect: %s", strerror(errno));
		goto done;
	}
	snprintf(line, sizeof(line), "EHLO %s\r\n", source_helo);
	if (source_reply(&c, 2) < 0 || source_command(&c, line, 2) < 0
	    || source_command(&c, "STARTTLS\r\n", 2) < 0)
		goto done;
	if (c.len != 0) {
		source_fail("bytes after the 220 to STARTTLS");
		goto done;
	}
	if ((c.ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c.ssl, c.fd) != 1)
		goto done;
	if (session != NULL && *session != NULL)
		(void)SSL_set_session(c.ssl, *session);
	if (SSL_connect(c.ssl) != 1) {
		source_fail("TLS handshake: %s",
		    ERR_reason_error_string(ERR_get_error()));
		goto done;
	}
	if (source_command(&c, line, 2) < 0)
		goto done;
	snprintf(line, sizeof(line), "MAIL FROM:<%s>\r\n", source_from);
	if (source_command(&c, line, 2) < 0)
		goto done;
	snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", source_to);
	if (source_command(&c, line, 2) < 0
	    || source_command(&c, "DATA\r\n", 3) < 0
	    || source_write(&c, text, textlen) < 0
	    || source_command(&c, ".\r\n", 2) < 0
	    || source_command(&c, "QUIT\r\n", 2) < 0)
		goto done;
	if (session != NULL) {
		SSL_SESSION_free(*session);
		*session = SSL_get1_session(c.ssl);
	}
	status = 0;
done:
	SSL_free(c.ssl);
	close(c.fd);
	return status;
}

static int
source_session(SSL_CTX *ctx, const struct sockaddr_in *sin, long count,
    const char *text, size_t textlen, int resume)
{
	SSL_SESSION *session = NULL;
	long i;
	int failed = 0;

	for (i = 0; i < count; i++)
		if (source_message(ctx, sin, text, textlen,
		    resume ? &session : NULL) < 0)
			failed = 1;
	SSL_SESSION_free(session);
	return failed;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	long sessions = 1, count = 1, size = 4096, i, share;
	char *text, *colon, host[64];
	size_t textlen = 0;
	int opt, resume = 0, failed = 0, st;
	SSL_CTX *ctx;
	pid_t pid;

	while ((opt = getopt(argc, argv, "s:m:l:f:t:M:r")) != -1) {
		switch (opt) {
		case 's': sessions = strtol(optarg, NULL, 10); break;
		case 'm': count = strtol(optarg, NULL, 10); break;
		case 'l': size = strtol(optarg, NULL, 10); break;
		case 'f': source_from = optarg; break;
		case 't': source_to = optarg; break;
		case 'M': source_helo = optarg; break;
		case 'r': resume = 1; break;
		default: goto usage;
		}
	}
	if (optind + 1 != argc || sessions < 1 || count < 1 || size < 0
	    || (colon = strrchr(argv[optind], ':')) == NULL
	    || (size_t)(colon - argv[optind]) >= sizeof(host))
		goto usage;
	memcpy(host, argv[optind], (size_t)(colon - argv[optind]));
	host[colon - argv[optind]] = '\0';
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)strtol(colon + 1, NULL, 10));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		goto usage;

	/* The text: lines of 78 x's and CRLF, SIZE bytes or a little more. */
	if ((text = malloc((size_t)size + 200)) == NULL)
		return 71;
	textlen = (size_t)snprintf(text, 200, "Subject: tls-source\r\n\r\n");
	while (textlen < (size_t)size) {
		memset(text + textlen, 'x', 78);
		memcpy(text + textlen + 78, "\r\n", 2);
		textlen += 80;
	}

	signal(SIGPIPE, SIG_IGN);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return 71;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);

	if (sessions > count)
		sessions = count;
	for (i = 0; i < sessions; i++) {
		share = count / sessions + (i < count % sessions ? 1 : 0);
		if ((pid = fork()) < 0)
			return 71;
		if (pid == 0)
			_exit(source_session(ctx, &sin, share, text, textlen,
			    resume));
	}
	while ((pid = wait(&st)) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	SSL_CTX_free(ctx);
	free(text);
	return failed;

usage:
	fprintf(stderr, "usage: tls-source -s SESSIONS -m COUNT [-l SIZE] "
	    "[-f FROM] [-t TO] [-M HELO] [-r] IPV4:PORT\n");
	return 64;
}
