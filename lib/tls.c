/*
 * NAME
 *	tls - the TLS contexts: the server's, and the delivery agent's client
 * SYNOPSIS
 *	See tls.h.
 * DESCRIPTION
 *	A new context is built whole before it replaces the old one, so a
 *	reload that fails leaves the server as it was. OpenSSL counts the
 *	references to a context: each SSL * made from it holds one, so
 *	the old context lives on until its last connection is freed.
 *
 *	Files are opened here first, so that a missing or unreadable file
 *	is reported with the system's reason (OpenSSL would say only
 *	"system lib"); what OpenSSL then finds wrong in the PEM text is
 *	reported with its reason string.
 *
 *	The client context verifies with SSL_VERIFY_NONE: OpenSSL still
 *	checks the chain (and the name set with SSL_set1_host()) and keeps
 *	the result for SSL_get_verify_result(), but goes on whatever it
 *	is, which is what opportunistic TLS asks for. Sessions for
 *	resumption come from OpenSSL's new-session callback (with TLS 1.3
 *	after the handshake, when the server's tickets are read) and are
 *	kept in a small table keyed by destination; each connection object
 *	carries its destination's key as ex_data, freed with it.
 * DIAGNOSTICS
 *	See tls.h. Nothing here logs or exits.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#include "tls.h"

static void tls_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* tls_error - err gets the message, cut visibly when it does not fit */
static void
tls_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
	else if ((size_t)n >= errlen && errlen > 4)
		memcpy(err + errlen - 4, "...", 4);
}

#ifdef HAVE_OPENSSL

struct tls {
	SSL_CTX *ctx;
	char *certificate;
	char *key;
	int min_version;
};

#define TLS_DEST_MAX	320

struct tls_client_session {
	char dest[TLS_DEST_MAX];	/* "" : a free slot */
	SSL_SESSION *session;
	unsigned long long used;	/* tc->clock when last stored or used */
};

struct tls_client {
	SSL_CTX *ctx;
	struct tls_client_session sessions[TLS_CLIENT_SESSIONS];
	unsigned long long clock;
};

/*
 * The ex_data index of a connection's destination: OpenSSL's indexes
 * belong to the process, so one is asked for once and kept here.
 */
static int tls_dest_index = -1;

static void tls_dest_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
    int idx, long argl, void *argp);
static int tls_client_new_session(SSL *ssl, SSL_SESSION *session);
static int tls_is_address(const char *name);

static SSL_CTX *tls_context_new(const char *certificate, const char *key,
    int min_version, char *err, size_t errlen, enum tls_what *what);
static int tls_readable(const char *path, char *err, size_t errlen);
static const char *tls_reason(void);
static int tls_mismatch(void);
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u);

/* tls_reason - OpenSSL's reason for the last failure, never NULL */
static const char *
tls_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	return r != NULL ? r : "unknown OpenSSL error";
}

/* tls_mismatch - whether the last failure is a key of another certificate */
static int
tls_mismatch(void)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_X509
	    && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH
	    || ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

/* tls_readable - whether path can be opened for reading, with why not */
static int
tls_readable(const char *path, char *err, size_t errlen)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		tls_error(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	(void)close(fd);
	return 0;
}

/* tls_no_passphrase - a key that needs one is refused, never prompted for */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static SSL_CTX *
tls_context_new(const char *certificate, const char *key, int min_version,
    char *err, size_t errlen, enum tls_what *what)
{
	static const unsigned char sid_ctx[] = "pollsmtpd";
	SSL_CTX *ctx;

	*what = TLS_WHAT_CERTIFICATE;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_error(err, errlen, "cannot make a TLS context: %s",
		    tls_reason());
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min_version)) {
		tls_error(err, errlen, "cannot set the lowest TLS version: %s",
		    tls_reason());
		goto fail;
	}
	/*
	 * No renegotiation (a client could make us do the costly part of
	 * a handshake again and again); an end without close_notify is an
	 * end (SMTP has its own, QUIT); no session cache: tickets resume
	 * sessions without any state kept here.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
	    | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	(void)SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/*
	 * Partial writes and a moving buffer: the caller's output buffer
	 * may be compacted between a write that must be repeated and its
	 * repetition. Released buffers: an idle connection holds no
	 * record buffers (about 34 KiB each).
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
	    | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	(void)SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);

	if (tls_readable(certificate, err, errlen) < 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1) {
		tls_error(err, errlen, "%s: cannot load the certificate: %s",
		    certificate, tls_reason());
		goto fail;
	}
	*what = TLS_WHAT_KEY;
	if (tls_readable(key, err, errlen) < 0)
		goto fail;
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		if (tls_mismatch())
			tls_error(err, errlen, "%s: the private key does not "
			    "belong to the certificate %s", key, certificate);
		else
			tls_error(err, errlen, "%s: cannot load the private "
			    "key: %s", key, tls_reason());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "%s: the private key does not belong to "
		    "the certificate %s", key, certificate);
		goto fail;
	}
	ERR_clear_error();
	return ctx;

fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls *
tls_new(const char *certificate, const char *key, int min_version,
    char *err, size_t errlen, enum tls_what *what)
{
	struct tls *tls;
	enum tls_what dummy;

	if (what == NULL)
		what = &dummy;
	*what = TLS_WHAT_CERTIFICATE;
	if ((tls = calloc(1, sizeof(*tls))) == NULL
	    || (tls->certificate = strdup(certificate)) == NULL
	    || (tls->key = strdup(key)) == NULL) {
		tls_error(err, errlen, "out of memory");
		goto fail;
	}
	tls->min_version = min_version;
	if ((tls->ctx = tls_context_new(certificate, key, min_version, err,
	    errlen, what)) == NULL)
		goto fail;
	return tls;

fail:
	tls_free(tls);
	return NULL;
}

int
tls_reload(struct tls *tls, char *err, size_t errlen, enum tls_what *what)
{
	SSL_CTX *ctx;
	enum tls_what dummy;

	if (what == NULL)
		what = &dummy;
	if ((ctx = tls_context_new(tls->certificate, tls->key,
	    tls->min_version, err, errlen, what)) == NULL)
		return -1;
	SSL_CTX_free(tls->ctx);
	tls->ctx = ctx;
	return 0;
}

void
tls_free(struct tls *tls)
{
	if (tls == NULL)
		return;
	SSL_CTX_free(tls->ctx);
	free(tls->certificate);
	free(tls->key);
	free(tls);
}

int
tls_describe(const struct tls *tls, char *dst, size_t dstlen)
{
	static const char digits[] = "0123456789ABCDEF";
	unsigned char md[EVP_MAX_MD_SIZE];
	char subject[256], hex[EVP_MAX_MD_SIZE * 3 + 1];
	unsigned mdlen = 0, i;
	X509 *x = SSL_CTX_get0_certificate(tls->ctx);
	int n;

	if (x == NULL || X509_digest(x, EVP_sha256(), md, &mdlen) != 1) {
		ERR_clear_error();
		return -1;
	}
	if (X509_NAME_oneline(X509_get_subject_name(x), subject,
	    sizeof(subject)) == NULL)
		subject[0] = '\0';
	for (i = 0; i < mdlen; i++) {
		hex[i * 3] = digits[md[i] >> 4];
		hex[i * 3 + 1] = digits[md[i] & 15];
		hex[i * 3 + 2] = ':';
	}
	hex[mdlen > 0 ? mdlen * 3 - 1 : 0] = '\0';
	n = snprintf(dst, dstlen, "subject %s, SHA256 fingerprint %s",
	    subject, hex);
	return n < 0 || (size_t)n >= dstlen ? -1 : 0;
}

struct ssl_st *
tls_ssl_new(struct tls *tls)
{
	SSL *ssl;

	ERR_clear_error();
	if ((ssl = SSL_new(tls->ctx)) == NULL) {
		ERR_clear_error();
		errno = ENOMEM;
	}
	return ssl;
}

/* ---- the client context ------------------------------------------------ */

/* tls_dest_free - a connection object is freed: so is its destination */
static void
tls_dest_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* tls_is_address - whether name is an IPv4 or IPv6 address literal */
static int
tls_is_address(const char *name)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, a) == 1
	    || inet_pton(AF_INET6, name, a) == 1;
}

struct tls_client *
tls_client_new(int min_version, char *err, size_t errlen)
{
	struct tls_client *tc;

	ERR_clear_error();
	if (tls_dest_index < 0 && (tls_dest_index = SSL_get_ex_new_index(0,
	    NULL, NULL, NULL, tls_dest_free)) < 0) {
		tls_error(err, errlen, "cannot make a TLS client context: %s",
		    tls_reason());
		ERR_clear_error();
		return NULL;
	}
	if ((tc = calloc(1, sizeof(*tc))) == NULL) {
		tls_error(err, errlen, "out of memory");
		return NULL;
	}
	if ((tc->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_error(err, errlen, "cannot make a TLS client context: %s",
		    tls_reason());
		goto fail;
	}
	if (!SSL_CTX_set_min_proto_version(tc->ctx, min_version)) {
		tls_error(err, errlen, "cannot set the lowest TLS version: %s",
		    tls_reason());
		goto fail;
	}
	/* As the server's context: no renegotiation, SMTP's QUIT ends it. */
	SSL_CTX_set_options(tc->ctx, SSL_OP_NO_RENEGOTIATION
	    | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(tc->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
	    | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/*
	 * Opportunistic (RFC 7435 section 3): the certificate is checked
	 * for the log only. A host without a trust store still encrypts.
	 */
	SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(tc->ctx) != 1)
		ERR_clear_error();
	SSL_CTX_set_session_cache_mode(tc->ctx, SSL_SESS_CACHE_CLIENT
	    | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(tc->ctx, tls_client_new_session);
	SSL_CTX_set_app_data(tc->ctx, tc);
	ERR_clear_error();
	return tc;

fail:
	ERR_clear_error();
	tls_client_free(tc);
	return NULL;
}

void
tls_client_free(struct tls_client *tc)
{
	size_t i;

	if (tc == NULL)
		return;
	for (i = 0; i < TLS_CLIENT_SESSIONS; i++)
		SSL_SESSION_free(tc->sessions[i].session);
	/* A connection still open holds the context, not tc. */
	if (tc->ctx != NULL)
		SSL_CTX_set_app_data(tc->ctx, NULL);
	SSL_CTX_free(tc->ctx);
	free(tc);
}

/*
 * tls_client_new_session - OpenSSL has a session the server will resume:
 * it replaces the one kept for the connection's destination, or the
 * least recently used. Returns 1: the reference is ours now.
 */
static int
tls_client_new_session(SSL *ssl, SSL_SESSION *session)
{
	struct tls_client *tc = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *dest = SSL_get_ex_data(ssl, tls_dest_index);
	struct tls_client_session *slot = NULL;
	size_t i;

	if (tc == NULL || dest == NULL || !SSL_SESSION_is_resumable(session))
		return 0;
	for (i = 0; i < TLS_CLIENT_SESSIONS; i++)
		if (strcmp(tc->sessions[i].dest, dest) == 0) {
			slot = &tc->sessions[i];
			break;
		}
	for (i = 0; slot == NULL && i < TLS_CLIENT_SESSIONS; i++)
		if (tc->sessions[i].dest[0] == '\0')
			slot = &tc->sessions[i];
	if (slot == NULL) {
		slot = &tc->sessions[0];
		for (i = 1; i < TLS_CLIENT_SESSIONS; i++)
			if (tc->sessions[i].used < slot->used)
				slot = &tc->sessions[i];
	}
	SSL_SESSION_free(slot->session);
	slot->session = session;
	(void)snprintf(slot->dest, sizeof(slot->dest), "%s", dest);
	slot->used = ++tc->clock;
	return 1;
}

struct ssl_st *
tls_client_ssl_new(struct tls_client *tc, const char *servername,
    const char *dest)
{
	SSL *ssl;
	char *key = NULL;
	size_t i;

	ERR_clear_error();
	if ((ssl = SSL_new(tc->ctx)) == NULL)
		goto fail;
	if (servername != NULL && *servername != '\0'
	    && !tls_is_address(servername)
	    && (SSL_set_tlsext_host_name(ssl, servername) != 1
	    || SSL_set1_host(ssl, servername) != 1))
		goto fail;
	if (dest != NULL && strlen(dest) < TLS_DEST_MAX) {
		if ((key = strdup(dest)) == NULL
		    || SSL_set_ex_data(ssl, tls_dest_index, key) != 1)
			goto fail;
		key = NULL;		/* freed with ssl now */
		for (i = 0; i < TLS_CLIENT_SESSIONS; i++)
			if (tc->sessions[i].session != NULL
			    && strcmp(tc->sessions[i].dest, dest) == 0) {
				(void)SSL_set_session(ssl,
				    tc->sessions[i].session);
				tc->sessions[i].used = ++tc->clock;
				break;
			}
	}
	ERR_clear_error();
	return ssl;

fail:
	ERR_clear_error();
	free(key);
	SSL_free(ssl);
	errno = ENOMEM;
	return NULL;
}

#else /* !HAVE_OPENSSL */

struct tls *
tls_new(const char *certificate, const char *key, int min_version,
    char *err, size_t errlen, enum tls_what *what)
{
	(void)certificate;
	(void)key;
	(void)min_version;
	if (what != NULL)
		*what = TLS_WHAT_CERTIFICATE;
	tls_error(err, errlen, "built without OpenSSL: no TLS");
	return NULL;
}

int
tls_reload(struct tls *tls, char *err, size_t errlen, enum tls_what *what)
{
	(void)tls;
	if (what != NULL)
		*what = TLS_WHAT_CERTIFICATE;
	tls_error(err, errlen, "built without OpenSSL: no TLS");
	return -1;
}

void
tls_free(struct tls *tls)
{
	(void)tls;
}

int
tls_describe(const struct tls *tls, char *dst, size_t dstlen)
{
	(void)tls;
	(void)dst;
	(void)dstlen;
	return -1;
}

struct ssl_st *
tls_ssl_new(struct tls *tls)
{
	(void)tls;
	errno = ENOTSUP;
	return NULL;
}

struct tls_client *
tls_client_new(int min_version, char *err, size_t errlen)
{
	(void)min_version;
	tls_error(err, errlen, "built without OpenSSL: no TLS");
	return NULL;
}

void
tls_client_free(struct tls_client *tc)
{
	(void)tc;
}

struct ssl_st *
tls_client_ssl_new(struct tls_client *tc, const char *servername,
    const char *dest)
{
	(void)tc;
	(void)servername;
	(void)dest;
	errno = ENOTSUP;
	return NULL;
}

#endif /* HAVE_OPENSSL */
