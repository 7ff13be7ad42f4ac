/*
 * NAME
 *	io - the bytes of one connection, and what to poll for
 * SYNOPSIS
 *	See io.h.
 * DESCRIPTION
 *	The plain socket io: read(2), send(2) with MSG_NOSIGNAL (a client
 *	that closed must not kill the daemon with SIGPIPE), EINTR retried
 *	here so that callers see only EAGAIN or a real failure.
 *
 *	The TLS io: OpenSSL reads and writes the socket itself (its
 *	socket BIO uses write(2), which raises SIGPIPE when the peer is
 *	gone: pollsmtpd and its delivery agent ignore SIGPIPE). The error
 *	queue is cleared before every call, so that SSL_get_error() judges
 *	that call alone. When a call says WANT_READ or WANT_WRITE, the event it
 *	waits for is kept per direction (handshake, read, write) and
 *	io_events() asks the loop for that one, not for the one the caller
 *	wanted; a write that must be repeated is repeated with the same
 *	length. Read-ahead stays off, so OpenSSL never holds a whole
 *	record it has not decrypted: what poll() cannot see is exactly
 *	SSL_pending(), and a partial record waits for bytes poll() will
 *	see. After a fatal TLS error no close_notify is sent (OpenSSL
 *	forbids SSL_shutdown() then).
 *
 *	A TLS socket gets TCP_NODELAY: OpenSSL writes the server's last
 *	handshake flight and the session tickets in separate writes, and
 *	with Nagle the next reply waits behind the unacknowledged tickets
 *	for the client's delayed ACK, 40 ms a connection. (Plaintext
 *	replies go out in one write a flush and never meet it.)
 * DIAGNOSTICS
 *	See io.h. Nothing here logs or exits.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#include "event.h"
#include "io.h"
#include "tls.h"

struct io {
	int fd;
#ifdef HAVE_OPENSSL
	SSL *ssl;		/* NULL: a plain socket */
	int handshaking;	/* io_start_tls() done, handshake not finished */
	int failed;		/* a fatal TLS error: no close_notify */
	int hs_wait;		/* EVENT_* the handshake waits for */
	int read_wait;		/* EVENT_* the last SSL_read() waits for, or 0 */
	int write_wait;		/* EVENT_* the last SSL_write() waits for, or 0 */
	size_t write_len;	/* length of the SSL_write() to repeat, or 0 */
	unsigned long error;	/* OpenSSL's code of the last failure */
#endif
};

#ifdef HAVE_OPENSSL
static int io_tls_fail(struct io *io, int ret, int *wait);
static int io_tls_attach(struct io *io, SSL *ssl, int client);
#endif

struct io *
io_new(int fd)
{
	struct io *io;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if ((io = calloc(1, sizeof(*io))) == NULL) {
		(void)close(fd);
		errno = ENOMEM;
		return NULL;
	}
	io->fd = fd;
	return io;
}

void
io_free(struct io *io)
{
	if (io == NULL)
		return;
#ifdef HAVE_OPENSSL
	SSL_free(io->ssl);
#endif
	(void)close(io->fd);
	free(io);
}

int
io_fd(const struct io *io)
{
	return io->fd;
}

#ifdef HAVE_OPENSSL
/*
 * io_tls_fail - an OpenSSL call returned ret <= 0: keep in *wait what
 * it waits for and say EAGAIN, or set errno for a failure. Returns
 * the value io_read() and io_write() return: -1, or 0 for the peer's
 * close_notify (or its end of file, SSL_OP_IGNORE_UNEXPECTED_EOF).
 */
static int
io_tls_fail(struct io *io, int ret, int *wait)
{
	int saved = errno;

	switch (SSL_get_error(io->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		*wait = EVENT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*wait = EVENT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		*wait = 0;
		return 0;
	case SSL_ERROR_SYSCALL:
		io->failed = 1;
		io->error = ERR_peek_last_error();
		errno = saved != 0 && saved != EAGAIN ? saved : ECONNRESET;
		return -1;
	default:
		io->failed = 1;
		io->error = ERR_peek_last_error();
		errno = EPROTO;
		return -1;
	}
}
#endif

ssize_t
io_read(struct io *io, void *buf, size_t len)
{
	ssize_t n;

#ifdef HAVE_OPENSSL
	if (io->ssl != NULL) {
		int r;

		if (io->handshaking && io_handshake(io) < 0)
			return -1;
		if (len > INT_MAX)
			len = INT_MAX;
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_read(io->ssl, buf, (int)len)) > 0) {
			io->read_wait = 0;
			return r;
		}
		return io_tls_fail(io, r, &io->read_wait);
	}
#endif
	do
		n = read(io->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return n;
}

ssize_t
io_write(struct io *io, const void *buf, size_t len)
{
	ssize_t n;

#ifdef HAVE_OPENSSL
	if (io->ssl != NULL) {
		int r;

		if (io->handshaking && io_handshake(io) < 0)
			return -1;
		if (len > INT_MAX)
			len = INT_MAX;
		if (io->write_len > 0) {
			/* OpenSSL holds part of the last call's bytes. */
			if (len < io->write_len) {
				errno = EINVAL;
				return -1;
			}
			len = io->write_len;
		}
		if (len == 0)
			return 0;
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_write(io->ssl, buf, (int)len)) > 0) {
			io->write_len = 0;
			io->write_wait = 0;
			return r;
		}
		if (io_tls_fail(io, r, &io->write_wait) == 0) {
			errno = EPIPE;	/* a close_notify while we write */
			return -1;
		}
		if (errno == EAGAIN)
			io->write_len = len;
		return -1;
	}
#endif
	do
		n = send(io->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return n;
}

int
io_events(const struct io *io, int want)
{
	int events = 0;

#ifdef HAVE_OPENSSL
	if (io->ssl != NULL) {
		if (io->handshaking)
			return io->hs_wait;
		if (want & EVENT_READ)
			events |= io->read_wait ? io->read_wait : EVENT_READ;
		if (want & EVENT_WRITE)
			events |= io->write_wait ? io->write_wait : EVENT_WRITE;
		return events;
	}
#endif
	events = want & (EVENT_READ | EVENT_WRITE);
	return events;
}

size_t
io_pending(const struct io *io)
{
#ifdef HAVE_OPENSSL
	int n;

	if (io->ssl != NULL && !io->handshaking
	    && (n = SSL_pending(io->ssl)) > 0)
		return (size_t)n;
#else
	(void)io;
#endif
	return 0;
}

int
io_shutdown(struct io *io)
{
#ifdef HAVE_OPENSSL
	if (io->ssl != NULL && !io->handshaking && !io->failed) {
		ERR_clear_error();
		/* A close_notify that does not fit now is not waited for. */
		if (SSL_shutdown(io->ssl) < 0) {
			ERR_clear_error();
			return 0;
		}
	}
#endif
	return shutdown(io->fd, SHUT_WR);
}

#ifdef HAVE_OPENSSL

/* io_tls_attach - ssl takes over the socket, as server or client */
static int
io_tls_attach(struct io *io, SSL *ssl, int client)
{
	int on = 1;

	if (SSL_set_fd(ssl, io->fd) != 1) {
		ERR_clear_error();
		SSL_free(ssl);
		errno = ENOMEM;
		return -1;
	}
	if (client)
		SSL_set_connect_state(ssl);
	else
		SSL_set_accept_state(ssl);
	/* Not a TCP socket (a test's socketpair): nothing to turn off. */
	(void)setsockopt(io->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	io->ssl = ssl;
	io->handshaking = 1;
	/* The client speaks first. */
	io->hs_wait = client ? EVENT_WRITE : EVENT_READ;
	return 0;
}

int
io_start_tls(struct io *io, struct tls *tls)
{
	SSL *ssl;

	if (io->ssl != NULL) {
		errno = EALREADY;
		return -1;
	}
	if ((ssl = tls_ssl_new(tls)) == NULL)
		return -1;
	return io_tls_attach(io, ssl, 0);
}

int
io_start_tls_client(struct io *io, struct tls_client *tc,
    const char *servername, const char *dest)
{
	SSL *ssl;

	if (io->ssl != NULL) {
		errno = EALREADY;
		return -1;
	}
	if ((ssl = tls_client_ssl_new(tc, servername, dest)) == NULL)
		return -1;
	return io_tls_attach(io, ssl, 1);
}

int
io_handshake(struct io *io)
{
	int r;

	if (io->ssl == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (!io->handshaking)
		return 0;
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_do_handshake(io->ssl)) == 1) {
		io->handshaking = 0;
		io->hs_wait = 0;
		return 0;
	}
	if (io_tls_fail(io, r, &io->hs_wait) == 0) {
		/* The client closed in the middle of it. */
		io->failed = 1;
		errno = ECONNRESET;
	}
	return -1;
}

int
io_is_tls(const struct io *io)
{
	return io->ssl != NULL;
}

int
io_tls_describe(const struct io *io, char *dst, size_t dstlen)
{
	const SSL_CIPHER *cipher;
	int bits, alg_bits = 0, n;

	if (io->ssl == NULL || io->handshaking
	    || (cipher = SSL_get_current_cipher(io->ssl)) == NULL)
		return -1;
	bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
	n = snprintf(dst, dstlen, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(io->ssl), SSL_CIPHER_get_name(cipher), bits,
	    alg_bits);
	return n < 0 || (size_t)n >= dstlen ? -1 : 0;
}

const char *
io_tls_error(const struct io *io)
{
	const char *r;

	if (io->ssl == NULL || io->error == 0)
		return NULL;
	r = ERR_reason_error_string(io->error);
	return r != NULL ? r : "TLS error";
}

int
io_tls_peer_verified(const struct io *io, const char **why)
{
	long result;

	if (io->ssl == NULL || io->handshaking)
		return -1;
	if (SSL_get0_peer_certificate(io->ssl) == NULL) {
		*why = "no certificate";
		return 0;
	}
	if ((result = SSL_get_verify_result(io->ssl)) == X509_V_OK)
		return 1;
	*why = X509_verify_cert_error_string(result);
	return 0;
}

int
io_tls_resumed(const struct io *io)
{
	return io->ssl != NULL && !io->handshaking
	    && SSL_session_reused(io->ssl) == 1;
}

#else /* !HAVE_OPENSSL */

int
io_start_tls(struct io *io, struct tls *tls)
{
	(void)io;
	(void)tls;
	errno = ENOTSUP;
	return -1;
}

int
io_start_tls_client(struct io *io, struct tls_client *tc,
    const char *servername, const char *dest)
{
	(void)io;
	(void)tc;
	(void)servername;
	(void)dest;
	errno = ENOTSUP;
	return -1;
}

int
io_tls_peer_verified(const struct io *io, const char **why)
{
	(void)io;
	(void)why;
	return -1;
}

int
io_tls_resumed(const struct io *io)
{
	(void)io;
	return 0;
}

int
io_handshake(struct io *io)
{
	(void)io;
	errno = EINVAL;
	return -1;
}

int
io_is_tls(const struct io *io)
{
	(void)io;
	return 0;
}

int
io_tls_describe(const struct io *io, char *dst, size_t dstlen)
{
	(void)io;
	(void)dst;
	(void)dstlen;
	return -1;
}

const char *
io_tls_error(const struct io *io)
{
	(void)io;
	return NULL;
}

#endif /* HAVE_OPENSSL */
