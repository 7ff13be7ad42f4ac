/*
 * NAME
 *	tls - the TLS contexts: the server's (certificate, key, protocol
 *	floor) and the delivery agent's client context
 * SYNOPSIS
 *	#include "tls.h"
 * DESCRIPTION
 *	One struct tls holds the OpenSSL server context that every TLS
 *	connection starts from (io_start_tls() in io.h). It is made once
 *	from the configured files and may be loaded again from the same
 *	files (SIGHUP) while connections made from the old context go on:
 *	each connection keeps the context it was made from.
 *
 *	The context: the PEM certificate chain and the private key, which
 *	must belong together; the lowest protocol version allowed
 *	(tls_parse_version()); renegotiation off; OpenSSL's default
 *	ciphers; session tickets on (stateless, so no session cache grows
 *	with the clients); OpenSSL's buffers released while a connection
 *	is idle; a key with a passphrase is refused rather than asked for.
 *
 *	tls_available() tells whether the program was built with OpenSSL.
 *	tls_parse_version() turns "TLSv1", "TLSv1.1", "TLSv1.2" or
 *	"TLSv1.3" into a version number (OpenSSL's), or 0.
 *	tls_new() loads certificate and key; tls_free() releases (NULL
 *	allowed; connections still using the context keep it alive).
 *	tls_reload() loads the same files again and puts the new context
 *	in place; when they do not load, the old one stays in use.
 *	tls_describe() writes what the loaded certificate is, for the
 *	log: its subject and its SHA-256 fingerprint.
 *	tls_ssl_new() is a new server-side connection object (an SSL *)
 *	of the current context, for io.c.
 *
 *	The client side (the delivery agent's STARTTLS). One struct
 *	tls_client holds the client context every outbound TLS connection
 *	starts from (io_start_tls_client() in io.h): the lowest protocol
 *	version allowed, renegotiation off, OpenSSL's default ciphers, the
 *	system's trust store (OpenSSL's default paths). The security is
 *	opportunistic (RFC 7435; Postfix's "may" and "encrypt" levels):
 *	the connection is encrypted whatever certificate the server shows;
 *	the certificate is checked (chain against the trust store, and the
 *	server's name when there is one) only so that the result can be
 *	logged, never to refuse the server. Sessions are resumed per
 *	destination (TLS_CLIENT_SESSIONS of them kept, the oldest
 *	forgotten).
 *	tls_client_new() makes the context; tls_client_free() releases it
 *	(NULL allowed; connections still using it keep it alive).
 *	tls_client_ssl_new() is a new client-side connection object for
 *	io.c: servername, when it is a host name (not an address literal),
 *	is sent as SNI (RFC 6066) and is the name the certificate is
 *	checked against; dest names the destination whose session is
 *	resumed ("host[ip]:port"; NULL: none).
 * DIAGNOSTICS
 *	tls_new() returns NULL and tls_reload() -1 with a message in err:
 *	what could not be read or did not match and why; *what says
 *	which file it is about (TLS_WHAT_CERTIFICATE or TLS_WHAT_KEY), so
 *	that the caller can name the configuration line. Without OpenSSL
 *	tls_new() always fails ("built without OpenSSL").
 *	tls_ssl_new() returns NULL when out of memory.
 *	tls_client_new() returns NULL with a message in err (without
 *	OpenSSL: "built without OpenSSL"); tls_client_ssl_new() NULL with
 *	errno (ENOMEM; ENOTSUP without OpenSSL).
 * LIMITS
 *	err is cut to errlen (TLS_ERROR_MAX is enough).
 */
#ifndef POLLSMTPD_TLS_H
#define POLLSMTPD_TLS_H

#include <stddef.h>
#include <string.h>

#define TLS_ERROR_MAX		512
#define TLS_DESCRIBE_MAX	512
#define TLS_CLIENT_SESSIONS	64

enum tls_what {
	TLS_WHAT_CERTIFICATE,
	TLS_WHAT_KEY,
};

struct tls;
struct tls_client;
struct ssl_st;

/*
 * These two are inline: conf uses them, and conf is linked into
 * maildir-inspect, which must not pull OpenSSL in with tls.o. The
 * numbers are the protocol versions of RFC 8446 and before, as OpenSSL
 * has them (TLS1_2_VERSION is 0x0303).
 */
static inline int
tls_available(void)
{
#ifdef HAVE_OPENSSL
	return 1;
#else
	return 0;
#endif
}

static inline int
tls_parse_version(const char *text)
{
	static const struct {
		const char *name;
		int version;
	} versions[] = {
		{ "TLSv1", 0x0301 }, { "TLSv1.0", 0x0301 },
		{ "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 },
		{ "TLSv1.3", 0x0304 },
	};
	size_t i;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (strcmp(text, versions[i].name) == 0)
			return versions[i].version;
	return 0;
}

struct tls *tls_new(const char *certificate, const char *key,
    int min_version, char *err, size_t errlen, enum tls_what *what);
int tls_reload(struct tls *tls, char *err, size_t errlen,
    enum tls_what *what);
void tls_free(struct tls *tls);
int tls_describe(const struct tls *tls, char *dst, size_t dstlen);
struct ssl_st *tls_ssl_new(struct tls *tls);
struct tls_client *tls_client_new(int min_version, char *err,
    size_t errlen);
void tls_client_free(struct tls_client *tc);
struct ssl_st *tls_client_ssl_new(struct tls_client *tc,
    const char *servername, const char *dest);

#endif
