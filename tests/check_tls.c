/*
 * NAME
 *	check_tls - Check suite of the TLS context and the TLS io
 * SYNOPSIS
 *	tests/check_tls
 * DESCRIPTION
 *	The server side is lib/tls.c and lib/io.c as the daemon uses them;
 *	the client side is OpenSSL, in the same process, at the other end
 *	of a non-blocking socketpair, so every step of a handshake and
 *	every wait can be seen: the handshake waits for the client's hello
 *	whatever the caller wanted (want-read for a write), a full socket
 *	makes a write wait and the same write is then repeated, decrypted
 *	bytes that poll() cannot see are counted by io_pending(), a client
 *	that does not speak TLS fails the handshake with OpenSSL's reason,
 *	close_notify both ways.
 *
 *	The client side (the delivery agent's STARTTLS) is the same io with
 *	io_start_tls_client(), against an OpenSSL server in the same way:
 *	the client speaks first, the host name goes as SNI (an address
 *	literal does not), a self-signed certificate does not verify and
 *	the connection goes on all the same (opportunistic), a second
 *	connection to the same destination resumes the session, a server
 *	that sends garbage fails the handshake.
 *
 *	The certificates are made here (P-256, self-signed) in a temporary
 *	directory, never taken from the source tree. The tls keys of the
 *	configuration file are checked here too (conf_load() on files
 *	written by the test).
 * DIAGNOSTICS
 *	Exit status 0 when every test passed.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "event.h"
#include "io.h"
#include "tls.h"

#define STEPS_MAX	200

static char dir[] = "/tmp/check_tls.XXXXXX";
static char cert_a[256], key_a[256], cert_b[256], key_b[256], junk[256];

static void make_pair(const char *cert, const char *key, const char *cn);
static void write_file(const char *path, const char *text);
static void setup(void);
static void teardown(void);
static SSL_CTX *client_ctx(void);
static struct tls *server_tls(void);
static void pair(int sv[2]);
static SSL *tls_pair(struct tls *tls, SSL_CTX *cctx, int sv[2],
    struct io **io);
static int handshake(struct io *io, SSL *cl);
static Suite *tls_suite(void);
static SSL_CTX *server_ctx(void);
static int client_handshake(struct io *io, SSL *srv);
static int sni_seen(SSL *ssl, int *alert, void *arg);

/* The SNI the test server saw last ("" for none). */
static char sni[256];

/* make_pair - a self-signed P-256 certificate for cn and its key */
static void
make_pair(const char *cert, const char *key, const char *cn)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;

	ck_assert_ptr_nonnull(pkey);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	ck_assert_int_eq(X509_set_pubkey(x, pkey), 1);
	name = X509_get_subject_name(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
	ck_assert_int_gt(X509_sign(x, pkey, EVP_sha256()), 0);
	ck_assert_ptr_nonnull(f = fopen(cert, "w"));
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(f = fopen(key, "w"));
	ck_assert_int_eq(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL,
	    NULL), 1);
	ck_assert_int_eq(fclose(f), 0);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cert_a, sizeof(cert_a), "%s/a.crt", dir);
	snprintf(key_a, sizeof(key_a), "%s/a.key", dir);
	snprintf(cert_b, sizeof(cert_b), "%s/b.crt", dir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", dir);
	snprintf(junk, sizeof(junk), "%s/junk.pem", dir);
	make_pair(cert_a, key_a, "a.test.example");
	make_pair(cert_b, key_b, "b.test.example");
	write_file(junk, "-----BEGIN PRIVATE KEY-----\nnot base64 !\n"
	    "-----END PRIVATE KEY-----\n");
}

static void
teardown(void)
{
	char path[300];
	const char *names[] = { "a.crt", "a.key", "b.crt", "b.key",
	    "junk.pem", "c.crt", "c.key", "t.conf" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(dir);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

static struct tls *
server_tls(void)
{
	char err[TLS_ERROR_MAX];
	struct tls *tls;

	tls = tls_new(cert_a, key_a, tls_parse_version("TLSv1.2"), err,
	    sizeof(err), NULL);
	ck_assert_msg(tls != NULL, "tls_new: %s", err);
	return tls;
}

static void
pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
}

/*
 * tls_pair - a socket pair: on sv[0] a server-side TLS io of tls (in
 * *io), on sv[1] a client of cctx about to connect (returned); the
 * handshake is the caller's
 */
static SSL *
tls_pair(struct tls *tls, SSL_CTX *cctx, int sv[2], struct io **io)
{
	SSL *cl;

	pair(sv);
	ck_assert_ptr_nonnull(*io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls(*io, tls), 0);
	ck_assert_ptr_nonnull(cl = SSL_new(cctx));
	ck_assert_int_eq(SSL_set_fd(cl, sv[1]), 1);
	SSL_set_connect_state(cl);
	return cl;
}

/*
 * handshake - run both sides until the server's is done, waiting in
 * poll() for what the server's io asks (as the daemon's loop does).
 * Returns the number of server steps.
 */
static int
handshake(struct io *io, SSL *cl)
{
	struct pollfd p;
	int steps, r;

	for (steps = 1; steps < STEPS_MAX; steps++) {
		r = SSL_do_handshake(cl);
		if (r != 1)
			ck_assert_int_eq(SSL_get_error(cl, r) == SSL_ERROR_WANT_READ
			    || SSL_get_error(cl, r) == SSL_ERROR_WANT_WRITE, 1);
		if (io_handshake(io) == 0)
			break;
		ck_assert_int_eq(errno, EAGAIN);
		p.fd = io_fd(io);
		p.events = (io_events(io, 0) & EVENT_READ ? POLLIN : 0)
		    | (io_events(io, 0) & EVENT_WRITE ? POLLOUT : 0);
		ck_assert_int_ne(p.events, 0);
		/* The client's turn may be what it waits for. */
		(void)poll(&p, 1, 0);
	}
	ck_assert_int_lt(steps, STEPS_MAX);
	/* The client reads the server's last flight (and the tickets). */
	for (r = 0; r < STEPS_MAX && SSL_do_handshake(cl) != 1; r++)
		;
	return steps;
}

/*
 * The handshake waits for the client's hello: for READ, whatever the
 * caller wanted; then bytes both ways, and the description.
 */
START_TEST(test_handshake_and_bytes)
{
	struct tls *tls = server_tls();
	SSL_CTX *cctx = client_ctx();
	char buf[64], text[128];
	struct io *io;
	SSL *cl;
	int sv[2];

	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_is_tls(io), 0);
	ck_assert_int_eq(io_start_tls(io, tls), 0);
	ck_assert_int_eq(io_is_tls(io), 1);
	ck_assert_int_eq(io_start_tls(io, tls), -1);
	ck_assert_int_eq(errno, EALREADY);
	ck_assert_int_eq(io_handshake(io), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(io_events(io, EVENT_WRITE), EVENT_READ);
	ck_assert_int_eq(io_events(io, 0), EVENT_READ);
	ck_assert_int_eq(io_tls_describe(io, text, sizeof(text)), -1);
	/* Reading or writing before the end of the handshake: EAGAIN. */
	ck_assert_int_eq(io_write(io, "x", 1), -1);
	ck_assert_int_eq(errno, EAGAIN);

	ck_assert_ptr_nonnull(cl = SSL_new(cctx));
	ck_assert_int_eq(SSL_set_fd(cl, sv[1]), 1);
	SSL_set_connect_state(cl);
	ck_assert_int_gt(handshake(io, cl), 1);
	ck_assert_int_eq(io_tls_describe(io, text, sizeof(text)), 0);
	ck_assert_msg(strncmp(text, "TLSv1.3 with cipher TLS_", 24) == 0
	    && strstr(text, " bits)") != NULL, "description: %s", text);
	ck_assert_int_eq(io_tls_describe(io, text, 10), -1);

	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(io_events(io, EVENT_READ), EVENT_READ);
	ck_assert_int_eq(SSL_write(cl, "EHLO a\r\n", 8), 8);
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 8);
	ck_assert_int_eq(memcmp(buf, "EHLO a\r\n", 8), 0);
	ck_assert_int_eq(io_write(io, "250 ok\r\n", 8), 8);
	ck_assert_int_eq(SSL_read(cl, buf, sizeof(buf)), 8);
	ck_assert_int_eq(memcmp(buf, "250 ok\r\n", 8), 0);
	ck_assert_ptr_null(io_tls_error(io));

	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	SSL_CTX_free(cctx);
	tls_free(tls);
}
END_TEST

/*
 * Decrypted bytes the caller did not take stay in OpenSSL: poll()
 * does not see them, io_pending() does.
 */
START_TEST(test_pending_bytes)
{
	struct tls *tls = server_tls();
	SSL_CTX *cctx = client_ctx();
	char out[1000], buf[1000];
	struct pollfd p;
	struct io *io;
	SSL *cl;
	int sv[2];

	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_pending(io), 0);
	ck_assert_int_eq(io_start_tls(io, tls), 0);
	ck_assert_ptr_nonnull(cl = SSL_new(cctx));
	ck_assert_int_eq(SSL_set_fd(cl, sv[1]), 1);
	SSL_set_connect_state(cl);
	handshake(io, cl);

	memset(out, 'm', sizeof(out));
	ck_assert_int_eq(SSL_write(cl, out, sizeof(out)), (int)sizeof(out));
	ck_assert_int_eq(io_read(io, buf, 10), 10);
	ck_assert_uint_eq(io_pending(io), sizeof(out) - 10);
	p.fd = io_fd(io);
	p.events = POLLIN;
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(io_read(io, buf + 10, sizeof(buf)),
	    (int)sizeof(out) - 10);
	ck_assert_uint_eq(io_pending(io), 0);
	ck_assert_int_eq(memcmp(buf, out, sizeof(out)), 0);

	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	SSL_CTX_free(cctx);
	tls_free(tls);
}
END_TEST

/*
 * A full socket: the write waits for WRITE; it must be repeated with
 * as many bytes (fewer: EINVAL), and goes through once the client
 * reads.
 */
START_TEST(test_want_write_repeated)
{
	static char chunk[16384];
	struct tls *tls = server_tls();
	SSL_CTX *cctx = client_ctx();
	char buf[16384];
	size_t sent = 0, got = 0;
	struct io *io;
	ssize_t n;
	SSL *cl;
	int sv[2], r, k;

	cl = tls_pair(tls, cctx, sv, &io);
	handshake(io, cl);

	memset(chunk, 'w', sizeof(chunk));
	for (k = 0; k < 10000; k++) {
		if ((n = io_write(io, chunk, sizeof(chunk))) < 0)
			break;
		sent += (size_t)n;
	}
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_gt(sent, 0);
	ck_assert_int_eq(io_events(io, EVENT_WRITE), EVENT_WRITE);
	ck_assert_int_eq(io_events(io, EVENT_READ), EVENT_READ);
	ck_assert_int_eq(io_write(io, chunk, 100), -1);
	ck_assert_int_eq(errno, EINVAL);

	/*
	 * The client reads a little at a time; the same write is repeated
	 * until it goes through, then the client takes the rest.
	 */
	for (k = 0; k < 100000; k++) {
		if ((r = SSL_read(cl, buf, 4096)) > 0)
			got += (size_t)r;
		else
			ck_assert_int_eq(SSL_get_error(cl, r),
			    SSL_ERROR_WANT_READ);
		if ((n = io_write(io, chunk, sizeof(chunk))) > 0) {
			sent += (size_t)n;
			break;
		}
		ck_assert_int_eq(errno, EAGAIN);
	}
	ck_assert_int_gt(n, 0);
	for (k = 0; k < 100000 && got < sent; k++) {
		if ((r = SSL_read(cl, buf, sizeof(buf))) > 0)
			got += (size_t)r;
		else
			ck_assert_int_eq(SSL_get_error(cl, r),
			    SSL_ERROR_WANT_READ);
	}
	ck_assert_uint_eq(got, sent);
	ck_assert_int_eq(io_events(io, EVENT_WRITE), EVENT_WRITE);

	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	SSL_CTX_free(cctx);
	tls_free(tls);
}
END_TEST

/* A client that speaks SMTP to a TLS port: EPROTO, with OpenSSL's reason. */
START_TEST(test_not_tls)
{
	struct tls *tls = server_tls();
	struct io *io;
	int sv[2];

	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls(io, tls), 0);
	ck_assert_int_eq(write(sv[1], "EHLO client.example\r\n", 21), 21);
	ck_assert_int_eq(io_handshake(io), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_ptr_nonnull(io_tls_error(io));
	/* No close_notify after a fatal error; the socket is shut. */
	ck_assert_int_eq(io_shutdown(io), 0);
	io_free(io);

	/* A client that closes in the middle of it. */
	close(sv[1]);
	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls(io, tls), 0);
	close(sv[1]);
	ck_assert_int_eq(io_handshake(io), -1);
	ck_assert_int_ne(errno, EAGAIN);
	io_free(io);
	tls_free(tls);
}
END_TEST

/* close_notify both ways: the peer's is an end of file, ours one too. */
START_TEST(test_close_notify)
{
	struct tls *tls = server_tls();
	SSL_CTX *cctx = client_ctx();
	char buf[16];
	struct io *io;
	SSL *cl;
	int sv[2], r, k;

	cl = tls_pair(tls, cctx, sv, &io);
	handshake(io, cl);

	ck_assert_int_eq(io_shutdown(io), 0);
	for (k = 0; k < 10 && (r = SSL_read(cl, buf, sizeof(buf))) < 0; k++)
		;
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(SSL_get_error(cl, r), SSL_ERROR_ZERO_RETURN);
	(void)SSL_shutdown(cl);
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 0);

	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	SSL_CTX_free(cctx);
	tls_free(tls);
}
END_TEST

/*
 * Renegotiation is refused: a TLS 1.2 client that asks for it after
 * the handshake does not get a second handshake, and the connection
 * still carries bytes.
 */
START_TEST(test_no_renegotiation)
{
	struct tls *tls = server_tls();
	SSL_CTX *cctx = client_ctx();
	char buf[64];
	struct io *io;
	SSL *cl;
	int sv[2], k, r = 0, n = -1;

	ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
	cl = tls_pair(tls, cctx, sv, &io);
	handshake(io, cl);
	ck_assert_int_eq(SSL_version(cl), TLS1_2_VERSION);

	ck_assert_int_eq(SSL_renegotiate(cl), 1);
	for (k = 0; k < STEPS_MAX; k++) {
		r = SSL_do_handshake(cl);
		if (r == 1 || SSL_get_error(cl, r) != SSL_ERROR_WANT_READ)
			break;
		n = (int)io_read(io, buf, sizeof(buf));
		if (n < 0)
			ck_assert_int_eq(errno, EAGAIN);
	}
	/* OpenSSL's client takes the refusal (a no_renegotiation alert). */
	ck_assert_int_eq(SSL_renegotiate_pending(cl), 1);
	ERR_clear_error();
	ck_assert_int_eq(io_write(io, "250 ok\r\n", 8), 8);
	ck_assert_ptr_null(io_tls_error(io));

	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	SSL_CTX_free(cctx);
	tls_free(tls);
}
END_TEST

/* Below tls.min_version (TLS 1.2 here): the handshake fails. */
START_TEST(test_old_protocol_refused)
{
	struct tls *tls = server_tls();
	SSL_CTX *cctx = client_ctx();
	struct io *io;
	SSL *cl;
	int sv[2], k, r;

	/* The client's own floor goes, so that it offers TLS 1.1 at all. */
	SSL_CTX_set_security_level(cctx, 0);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION), 1);
	cl = tls_pair(tls, cctx, sv, &io);
	r = SSL_do_handshake(cl);
	ck_assert_int_eq(SSL_get_error(cl, r), SSL_ERROR_WANT_READ);
	for (k = 0; k < 10 && (r = io_handshake(io)) < 0 && errno == EAGAIN; k++)
		;
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_str_eq(io_tls_error(io), "unsupported protocol");

	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	SSL_CTX_free(cctx);
	tls_free(tls);
}
END_TEST

/* sni_seen - the test server's servername callback: keep what came */
static int
sni_seen(SSL *ssl, int *alert, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	(void)arg;
	snprintf(sni, sizeof(sni), "%s", name != NULL ? name : "");
	return SSL_TLSEXT_ERR_OK;
}

/* server_ctx - a plain OpenSSL server of a.test.example, tickets on */
static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, cert_a), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key_a,
	    SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_seen);
	return ctx;
}

/*
 * client_handshake - run both sides until the client io's handshake is
 * done, waiting as it asks; the server then writes "220 x" and the
 * client reads it (with TLS 1.3, the server's tickets come with it).
 * Returns 0, or -1 with errno when the client's handshake failed.
 */
static int
client_handshake(struct io *io, SSL *srv)
{
	char buf[16];
	ssize_t n = -1;
	int steps, r;

	for (steps = 0; steps < STEPS_MAX; steps++) {
		if (io_handshake(io) == 0)
			break;
		if (errno != EAGAIN)
			return -1;
		ck_assert_int_ne(io_events(io, 0), 0);
		r = SSL_do_handshake(srv);
		if (r != 1)
			ck_assert_int_eq(SSL_get_error(srv, r)
			    == SSL_ERROR_WANT_READ || SSL_get_error(srv, r)
			    == SSL_ERROR_WANT_WRITE, 1);
	}
	ck_assert_int_lt(steps, STEPS_MAX);
	for (steps = 0; steps < STEPS_MAX && SSL_do_handshake(srv) != 1;
	    steps++)
		;
	ck_assert_int_eq(SSL_write(srv, "220 x\r\n", 7), 7);
	for (steps = 0; steps < STEPS_MAX
	    && (n = io_read(io, buf, sizeof(buf))) < 0; steps++)
		ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(n, 7);
	ck_assert_int_eq(memcmp(buf, "220 x\r\n", 7), 0);
	return 0;
}

/*
 * The client io: it speaks first, sends the name as SNI, goes on with
 * a certificate that does not verify (and says why), carries bytes; a
 * second connection to the same destination resumes the session, one
 * to another destination does not.
 */
START_TEST(test_client_handshake)
{
	char err[TLS_ERROR_MAX], text[128], buf[16];
	struct tls_client *tc;
	SSL_CTX *sctx = server_ctx();
	const char *why = NULL;
	struct io *io;
	SSL *srv;
	int sv[2], round;

	tc = tls_client_new(tls_parse_version("TLSv1.2"), err, sizeof(err));
	ck_assert_msg(tc != NULL, "tls_client_new: %s", err);
	for (round = 0; round < 3; round++) {
		pair(sv);
		ck_assert_ptr_nonnull(io = io_new(sv[0]));
		ck_assert_int_eq(io_start_tls_client(io, tc, "a.test.example",
		    round < 2 ? "a.test.example[127.0.0.2]:25"
		    : "a.test.example[127.0.0.3]:25"), 0);
		ck_assert_int_eq(io_start_tls_client(io, tc, "x", NULL), -1);
		ck_assert_int_eq(errno, EALREADY);
		ck_assert_int_eq(io_events(io, EVENT_READ), EVENT_WRITE);
		ck_assert_int_eq(io_tls_peer_verified(io, &why), -1);
		ck_assert_ptr_nonnull(srv = SSL_new(sctx));
		ck_assert_int_eq(SSL_set_fd(srv, sv[1]), 1);
		SSL_set_accept_state(srv);
		sni[0] = '\0';
		ck_assert_int_eq(client_handshake(io, srv), 0);
		ck_assert_str_eq(sni, "a.test.example");
		ck_assert_int_eq(io_tls_resumed(io), round == 1);
		ck_assert_int_eq(io_tls_peer_verified(io, &why), 0);
		ck_assert_msg(why != NULL && strstr(why, "self-signed") != NULL,
		    "why: %s", why ? why : "NULL");
		ck_assert_int_eq(io_tls_describe(io, text, sizeof(text)), 0);
		ck_assert_msg(strncmp(text, "TLSv1.3 with cipher ", 20) == 0,
		    "description: %s", text);
		ck_assert_int_eq(io_write(io, "EHLO a\r\n", 8), 8);
		ck_assert_int_eq(SSL_read(srv, buf, sizeof(buf)), 8);
		ck_assert_int_eq(memcmp(buf, "EHLO a\r\n", 8), 0);
		/* OpenSSL resumes no session that ended without a close_notify. */
		ck_assert_int_eq(io_shutdown(io), 0);
		SSL_free(srv);
		io_free(io);
		close(sv[1]);
	}
	tls_client_free(tc);
	SSL_CTX_free(sctx);
}
END_TEST

/* An address literal is no host name: no SNI, no name checked. */
START_TEST(test_client_no_sni_for_address)
{
	char err[TLS_ERROR_MAX];
	struct tls_client *tc;
	SSL_CTX *sctx = server_ctx();
	struct io *io;
	SSL *srv;
	int sv[2];

	tc = tls_client_new(tls_parse_version("TLSv1.2"), err, sizeof(err));
	ck_assert_ptr_nonnull(tc);
	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls_client(io, tc, "127.0.0.2", NULL), 0);
	ck_assert_ptr_nonnull(srv = SSL_new(sctx));
	ck_assert_int_eq(SSL_set_fd(srv, sv[1]), 1);
	SSL_set_accept_state(srv);
	snprintf(sni, sizeof(sni), "not called");
	ck_assert_int_eq(client_handshake(io, srv), 0);
	ck_assert_str_eq(sni, "");
	ck_assert_int_eq(io_tls_resumed(io), 0);
	SSL_free(srv);
	io_free(io);
	close(sv[1]);
	tls_client_free(tc);
	SSL_CTX_free(sctx);
}
END_TEST

/*
 * A server that answers the client's hello with bytes that are no TLS
 * (or closes): EPROTO with OpenSSL's reason (or ECONNRESET).
 */
START_TEST(test_client_garbage)
{
	static const char notls[] = "250 this is no TLS record\r\n";
	char err[TLS_ERROR_MAX], hello[4096];
	struct tls_client *tc;
	struct io *io;
	int sv[2];

	/* A write to a closed peer: EPIPE, as in the agent, not SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	tc = tls_client_new(tls_parse_version("TLSv1.2"), err, sizeof(err));
	ck_assert_ptr_nonnull(tc);
	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls_client(io, tc, "a.test.example", NULL),
	    0);
	ck_assert_int_eq(io_handshake(io), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(io_events(io, EVENT_WRITE), EVENT_READ);
	ck_assert_int_gt(read(sv[1], hello, sizeof(hello)), 0);
	ck_assert_int_eq(write(sv[1], notls, sizeof(notls) - 1),
	    (ssize_t)sizeof(notls) - 1);
	ck_assert_int_eq(io_handshake(io), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_ptr_nonnull(io_tls_error(io));
	io_free(io);
	close(sv[1]);

	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls_client(io, tc, "a.test.example", NULL),
	    0);
	close(sv[1]);
	ck_assert_int_eq(io_handshake(io), -1);
	ck_assert_int_ne(errno, EAGAIN);
	io_free(io);
	tls_client_free(tc);
}
END_TEST

/* What cannot be loaded is named, with the file it is about. */
START_TEST(test_tls_new_errors)
{
	char err[TLS_ERROR_MAX], path[300];
	enum tls_what what;
	int v12 = tls_parse_version("TLSv1.2");

	snprintf(path, sizeof(path), "%s/none.crt", dir);
	ck_assert_ptr_null(tls_new(path, key_a, v12, err, sizeof(err), &what));
	ck_assert_int_eq(what, TLS_WHAT_CERTIFICATE);
	ck_assert_msg(strstr(err, "No such file or directory") != NULL, "%s",
	    err);
	ck_assert_ptr_null(tls_new(junk, key_a, v12, err, sizeof(err), &what));
	ck_assert_int_eq(what, TLS_WHAT_CERTIFICATE);
	ck_assert_msg(strstr(err, "cannot load the certificate") != NULL, "%s",
	    err);
	ck_assert_ptr_null(tls_new(cert_a, junk, v12, err, sizeof(err), &what));
	ck_assert_int_eq(what, TLS_WHAT_KEY);
	ck_assert_msg(strstr(err, "cannot load the private key") != NULL, "%s",
	    err);
	ck_assert_ptr_null(tls_new(cert_a, key_b, v12, err, sizeof(err), &what));
	ck_assert_int_eq(what, TLS_WHAT_KEY);
	ck_assert_msg(strstr(err, "does not belong to the certificate") != NULL,
	    "%s", err);
	ck_assert_int_eq(tls_parse_version("TLSv1.3"), TLS1_3_VERSION);
	ck_assert_int_eq(tls_parse_version("TLSv1"), TLS1_VERSION);
	ck_assert_int_eq(tls_parse_version("SSLv3"), 0);
	ck_assert_int_eq(tls_available(), 1);
}
END_TEST

/*
 * Reload: the same paths, new contents. A broken pair keeps the old
 * context; a good one replaces it, and a connection made before goes
 * on with the old one.
 */
START_TEST(test_reload)
{
	char err[TLS_ERROR_MAX], before[TLS_DESCRIBE_MAX];
	char after[TLS_DESCRIBE_MAX], path_c[300], path_k[300], cmd[1000];
	SSL_CTX *cctx = client_ctx();
	enum tls_what what;
	struct tls *tls;
	struct io *io;
	SSL *cl;
	int sv[2];

	snprintf(path_c, sizeof(path_c), "%s/c.crt", dir);
	snprintf(path_k, sizeof(path_k), "%s/c.key", dir);
	ck_assert_int_eq(rename(cert_a, path_c), 0);
	ck_assert_int_eq(rename(key_a, path_k), 0);
	tls = tls_new(path_c, path_k, tls_parse_version("TLSv1.2"), err,
	    sizeof(err), NULL);
	ck_assert_msg(tls != NULL, "%s", err);
	ck_assert_int_eq(tls_describe(tls, before, sizeof(before)), 0);
	ck_assert_msg(strstr(before, "CN = a.test.example") != NULL
	    || strstr(before, "CN=a.test.example") != NULL, "%s", before);
	ck_assert_ptr_nonnull(strstr(before, "SHA256 fingerprint "));

	/* A connection of the old context, handshake half-way. */
	pair(sv);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_start_tls(io, tls), 0);

	/* New certificate, old key: refused, the old pair stays. */
	snprintf(cmd, sizeof(cmd), "cp %s %s", cert_b, path_c);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(tls_reload(tls, err, sizeof(err), &what), -1);
	ck_assert_int_eq(what, TLS_WHAT_KEY);
	ck_assert_int_eq(tls_describe(tls, after, sizeof(after)), 0);
	ck_assert_str_eq(after, before);

	snprintf(cmd, sizeof(cmd), "cp %s %s", key_b, path_k);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(tls_reload(tls, err, sizeof(err), &what), 0);
	ck_assert_int_eq(tls_describe(tls, after, sizeof(after)), 0);
	ck_assert_str_ne(after, before);
	ck_assert_ptr_nonnull(strstr(after, "b.test.example"));

	/* The old connection finishes with the old certificate. */
	ck_assert_ptr_nonnull(cl = SSL_new(cctx));
	ck_assert_int_eq(SSL_set_fd(cl, sv[1]), 1);
	SSL_set_connect_state(cl);
	handshake(io, cl);
	{
		X509 *peer = SSL_get1_peer_certificate(cl);
		char cn[64];

		ck_assert_ptr_nonnull(peer);
		ck_assert_int_gt(X509_NAME_get_text_by_NID(
		    X509_get_subject_name(peer), NID_commonName, cn,
		    sizeof(cn)), 0);
		ck_assert_str_eq(cn, "a.test.example");
		X509_free(peer);
	}
	SSL_free(cl);
	io_free(io);
	close(sv[1]);
	tls_free(tls);
	SSL_CTX_free(cctx);
}
END_TEST

/* conf: the tls group and server.listen_tls, problems at FILE:LINE. */
static char reports[4096];

static void
keep_report(const char *message, void *ctx)
{
	size_t n = strlen(reports);

	(void)ctx;
	snprintf(reports + n, sizeof(reports) - n, "%s\n", message);
}

static struct conf *
load(const char *text)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/t.conf", dir);
	write_file(path, text);
	reports[0] = '\0';
	return conf_load(path, keep_report, NULL);
}

START_TEST(test_conf_tls_keys)
{
	char want[1024], text[2048];
	struct conf *c;

	ck_assert_ptr_nonnull(c = load("log = { file = \"\"; };\n"));
	ck_assert_str_eq(c->tls_certificate, "");
	ck_assert_int_eq(c->tls_min_version, TLS1_2_VERSION);
	ck_assert_uint_eq(c->nlisten_tls, 0);
	conf_free(c);

	snprintf(text, sizeof(text), "server = {\n"
	    "  listen = [ \"127.0.0.1:2525\" ];\n"
	    "  listen_tls = [ \"127.0.0.1:4465\", \"[::1]:4465\" ];\n};\n"
	    "tls = {\n  certificate = \"%s\";\n  key = \"%s\";\n"
	    "  min_version = \"TLSv1.3\";\n};\n", cert_a, key_a);
	ck_assert_msg((c = load(text)) != NULL, "%s", reports);
	ck_assert_uint_eq(c->nlisten_tls, 2);
	ck_assert_str_eq(c->listen_tls[1].text, "[::1]:4465");
	ck_assert_str_eq(c->tls_certificate, cert_a);
	ck_assert_str_eq(c->tls_key, key_a);
	ck_assert_int_eq(c->tls_min_version, TLS1_3_VERSION);
	snprintf(want, sizeof(want), "%s/t.conf:6", dir);
	ck_assert_str_eq(c->tls_certificate_at, want);
	snprintf(want, sizeof(want), "%s/t.conf:7", dir);
	ck_assert_str_eq(c->tls_key_at, want);
	conf_free(c);

	ck_assert_ptr_null(load("tls = {\n  certificate = \"/x.crt\";\n"
	    "  min_version = \"SSLv3\";\n  ciphers = \"ALL\";\n};\n"
	    "server = {\n  listen = [ \"127.0.0.1:25\" ];\n"
	    "  listen_tls = [ \"127.0.0.1:25\", \"x\" ];\n};\n"));
	snprintf(want, sizeof(want),
	    "%s/t.conf:3: tls.min_version: \"SSLv3\" is not one of \"TLSv1\", "
	    "\"TLSv1.1\", \"TLSv1.2\", \"TLSv1.3\"\n"
	    "%s/t.conf:4: tls.ciphers: unknown key\n"
	    "%s/t.conf:8: server.listen_tls[1]: \"x\" is not a numeric "
	    "ADDRESS:PORT or [IPV6-ADDRESS]:PORT\n"
	    "%s/t.conf:2: tls.certificate: set, but tls.key is not\n"
	    "%s/t.conf:8: server.listen_tls: \"127.0.0.1:25\" is in "
	    "server.listen too\n", dir, dir, dir, dir, dir);
	ck_assert_str_eq(reports, want);

	ck_assert_ptr_null(load("tls = {\n  key = \"relative.key\";\n};\n"
	    "server = {\n  listen_tls = [ \"127.0.0.1:465\" ];\n};\n"));
	snprintf(want, sizeof(want),
	    "%s/t.conf:2: tls.key: \"relative.key\" is not an absolute path "
	    "or \"\"\n"
	    "%s/t.conf:5: server.listen_tls: needs tls.certificate and "
	    "tls.key\n", dir, dir);
	ck_assert_str_eq(reports, want);
}
END_TEST

static Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc;

	tc = tcase_create("io");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handshake_and_bytes);
	tcase_add_test(tc, test_pending_bytes);
	tcase_add_test(tc, test_want_write_repeated);
	tcase_add_test(tc, test_not_tls);
	tcase_add_test(tc, test_close_notify);
	tcase_add_test(tc, test_no_renegotiation);
	tcase_add_test(tc, test_old_protocol_refused);
	tcase_add_test(tc, test_client_handshake);
	tcase_add_test(tc, test_client_no_sni_for_address);
	tcase_add_test(tc, test_client_garbage);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("context");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_tls_new_errors);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_conf_tls_keys);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(tls_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
