/*
 * NAME
 *	conf - the configuration file (libconfig syntax), loaded once
 * SYNOPSIS
 *	#include "conf.h"
 * DESCRIPTION
 *	conf_load() reads and checks FILE and returns the configuration with
 *	every key filled in (defaults for those not given). Every problem is
 *	reported through report() as "FILE:LINE: message" (LINE is the line
 *	of the offending setting, or of the syntax error; 0 when no line
 *	applies) and loading goes on to find the others. Problems: syntax
 *	errors, unknown keys (at any level), wrong types, values out of
 *	range, a listen address that does not parse, a missing or relative
 *	maildir path, a postmaster who is not a user, a user name that
 *	cannot be a directory name, a bad relay network, a tls.certificate
 *	without a tls.key or the reverse, an unknown tls.min_version,
 *	server.listen_tls without a certificate (or in a build without
 *	OpenSSL), an address in both server.listen and server.listen_tls.
 *	Whether the certificate and key files load is not checked here
 *	(tls_new() does; tls_certificate_at and tls_key_at tell where
 *	to report it).
 *	conf_defaults() returns a configuration of defaults only (tests).
 *	conf_free() releases a configuration (NULL is allowed).
 *
 *	conf_find_user() looks a local part up in local.users, ignoring case,
 *	and returns the configured name (the mailbox directory) or NULL.
 *	conf_is_local_domain() tells whether domain is in local.domains,
 *	ignoring case.
 *	conf_relay_allowed() tells whether a client address is inside
 *	relay.networks; an IPv4-mapped IPv6 address matches as IPv4.
 *	conf_parse_listen() turns "HOST:PORT" or "[V6]:PORT" into a socket
 *	address, numerically (never a DNS query).
 *	conf_parse_network() turns "ADDR/PREFIX" (or a bare ADDR) into a
 *	struct conf_network.
 * DIAGNOSTICS
 *	conf_load() returns NULL when there was any problem (all reported).
 *	conf_parse_listen() and conf_parse_network() return 0 or -1.
 */
#ifndef POLLSMTPD_CONF_H
#define POLLSMTPD_CONF_H

#include <stddef.h>
#include <sys/socket.h>

struct conf_listen {
	char *text;			/* as configured: "127.0.0.1:2525" */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct conf_network {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network address, host bits zero */
	unsigned prefix;		/* 0..32 or 0..128 */
};

struct conf {
	char *file;			/* the file it was read from */
	char *hostname;			/* default: gethostname() */

	int debug;			/* application.debug */
	char *maildir_path;		/* application.maildir.path (absolute) */
	int maildir_fsync;		/* application.maildir.fsync */

	struct conf_listen *listen;	/* server.listen */
	size_t nlisten;
	long max_connections;		/* server.max_connections, >= 1 */
	long max_connections_per_ip;	/* outside relay.networks; 0: no limit */
	long max_message_size;		/* server.max_message_size, bytes, >= 1024 */
	long max_recipients;		/* server.max_recipients, >= 1 */
	long command_timeout;		/* server.command_timeout, seconds, >= 1 */
	long data_timeout;		/* server.data_timeout, seconds, >= 1 */
	char *user;			/* server.user */
	char *group;			/* server.group */
	char *pid_file;			/* server.pid_file */

	char **domains;			/* local.domains */
	size_t ndomains;
	char **users;			/* local.users */
	size_t nusers;
	char *postmaster;		/* local.postmaster, one of users */

	struct conf_network *relay_networks;	/* relay.networks */
	size_t nrelay_networks;

	char *log_file;			/* log.file; "" = stderr */

	struct conf_listen *listen_tls;	/* server.listen_tls: implicit TLS */
	size_t nlisten_tls;
	char *tls_certificate;		/* tls.certificate; "" = no TLS */
	char *tls_key;			/* tls.key */
	int tls_min_version;		/* tls.min_version, tls_parse_version() */
	char *tls_certificate_at;	/* "FILE:LINE" of tls.certificate, or NULL */
	char *tls_key_at;		/* "FILE:LINE" of tls.key, or NULL */
};

typedef void (*conf_report_fn)(const char *message, void *ctx);

struct conf *conf_load(const char *path, conf_report_fn report, void *ctx);
struct conf *conf_defaults(void);
void conf_free(struct conf *conf);

const char *conf_find_user(const struct conf *conf, const char *local);
int conf_is_local_domain(const struct conf *conf, const char *domain);
int conf_relay_allowed(const struct conf *conf, const struct sockaddr *sa);
int conf_parse_listen(const char *text, struct sockaddr_storage *ss,
    socklen_t *len);
int conf_parse_network(const char *text, struct conf_network *net);

#endif
