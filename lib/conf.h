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
 *	cannot be a directory name, a bad relay network, an alias that
 *	names an unknown user, loops or nests deeper than CONF_ALIAS_DEPTH,
 *	a catch-all that is not a user, a tls.certificate without a tls.key
 *	or the reverse, an unknown tls.min_version, server.listen_tls
 *	without a certificate (or in a build without OpenSSL), an address
 *	in both server.listen and server.listen_tls. Whether the
 *	certificate and key files load is not checked here (tls_new() does;
 *	tls_certificate_at and tls_key_at tell where to report it).
 *	conf_defaults() returns a configuration of defaults only (tests).
 *	conf_free() releases a configuration (NULL is allowed).
 *
 *	conf_find_user() looks a local part up in local.users, ignoring case,
 *	and returns the configured name (the mailbox directory) or NULL.
 *	conf_is_local_domain() tells whether domain is in local.domains,
 *	ignoring case.
 *	conf_lookup_local() finds what a local part of a local domain names:
 *	an alias, a user, or the postmaster, first as given, then (with
 *	local.recipient_delimiter) without the extension that starts at the
 *	first delimiter ("alice+lists" -> "alice"). It does not apply
 *	local.catchall: that is the caller's last resort.
 *	conf_find_alias() looks an alias name up, ignoring case.
 *	conf_relay_allowed() tells whether a client address is inside
 *	relay.networks; an IPv4-mapped IPv6 address matches as IPv4.
 *	conf_parse_listen() turns "HOST:PORT" or "[V6]:PORT" into a socket
 *	address, numerically (never a DNS query).
 *	conf_parse_network() turns "ADDR/PREFIX" (or a bare ADDR) into a
 *	struct conf_network (host bits cleared; conf_load() warns of them).
 *	conf_where() writes "FILE:LINE" of the setting of key (a dotted
 *	path, "server.user") into dst and returns dst; for a key not in the
 *	file (its default applies) it is "FILE:0". conf_is_default() tells
 *	whether key was not set in the file. Start-up checks that need the
 *	system (does the user exist?) name the key this way.
 *
 *	Reports are precise: a port out of range says "port 99999 is over
 *	65535", a prefix "prefix length 33 is over 32", an integer the
 *	range it must be in, as written (not as libconfig wrapped it). A
 *	network with host bits set ("10.0.0.1/8") is a warning
 *	("FILE:LINE: warning: ..."): reported, but the load succeeds.
 *	struct conf_network.
 *	conf_parse_relayhost() splits delivery.relayhost: "HOST", "HOST:PORT",
 *	"[IP]" or "[IP]:PORT" into host (without brackets; *literal set for
 *	the bracketed form, which must be a numeric address) and port
 *	(default_port when none is given).
 * DIAGNOSTICS
 *	conf_load() returns NULL when there was any problem (all reported).
 *	conf_parse_listen(), conf_parse_network() and conf_parse_relayhost()
 *	return 0 or -1.
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

/* Where a key was set: conf_where() reads these. */
struct conf_place {
	char *key;			/* "server.user" */
	char *file;			/* the file (an @include's, maybe) */
	unsigned line;
};

#define CONF_ALIAS_DEPTH	8

/*
 * An alias, resolved at load time to what it finally names: each local
 * user once and each remote address once (aliases of aliases, users
 * named with a delimiter or with a local domain are all followed).
 */
struct conf_alias {
	char *name;			/* as configured */
	char **targets;			/* as configured */
	size_t ntargets;
	const char **mailboxes;		/* final users: strings of conf->users */
	size_t nmailboxes;
	char **remotes;			/* final remote addresses, local@domain */
	size_t nremotes;
};

/* What a local part names; see conf_lookup_local(). */
struct conf_target {
	const char *user;		/* a configured user, or NULL */
	const struct conf_alias *alias;	/* or an alias, or NULL */
	int postmaster;			/* it named the postmaster */
};

struct conf {
	char *file;			/* the file it was read from */
	char *hostname;			/* default: gethostname() */

	int debug;			/* application.debug */
	char *maildir_path;		/* application.maildir.path (absolute) */
	int maildir_fsync;		/* application.maildir.fsync */

	struct conf_listen *listen;	/* server.listen */
	size_t nlisten;
	struct conf_listen *listen_tls;	/* server.listen_tls: implicit TLS */
	size_t nlisten_tls;
	char *tls_certificate;		/* tls.certificate; "" = no TLS */
	char *tls_key;			/* tls.key */
	int tls_min_version;		/* tls.min_version, tls_parse_version() */
	char *tls_certificate_at;	/* "FILE:LINE" of tls.certificate, or NULL */
	char *tls_key_at;		/* "FILE:LINE" of tls.key, or NULL */
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
	char *postmaster;		/* local.postmaster, one of users, or "" */
	char *recipient_delimiter;	/* local.recipient_delimiter; "" = none */
	char *catchall;			/* local.catchall: a user, or "" */
	struct conf_alias *aliases;	/* local.aliases */
	size_t naliases;

	struct conf_network *relay_networks;	/* relay.networks */
	size_t nrelay_networks;

	char *log_file;			/* log.file; "" = stderr */

	struct conf_place *places;	/* every key set in the file */
	size_t nplaces;
	int delivery_enabled;		/* delivery.enabled */
	char **delivery_resolvers;	/* delivery.resolvers: "IP" or "IP:PORT" */
	size_t ndelivery_resolvers;
	char *delivery_relayhost;	/* "HOST[:PORT]", "[IP][:PORT]" or "" */
	long delivery_port;		/* TCP port of mail exchangers */
	long delivery_max_connections;	/* outbound sessions at once */
	long delivery_max_per_domain;	/* outbound sessions to one domain */
	long delivery_retry_first;	/* seconds to the first retry */
	long delivery_retry_max;	/* the retry interval grows up to this */
	long delivery_max_lifetime;	/* seconds in the queue before failing */
	int delivery_tls;		/* CONF_TLS_NONE, _MAY, _ENCRYPT */
	long delivery_claim_timeout;	/* seconds before a claim is taken back */
};

/* delivery.tls */
#define CONF_TLS_NONE		0
#define CONF_TLS_MAY		1
#define CONF_TLS_ENCRYPT	2

typedef void (*conf_report_fn)(const char *message, void *ctx);

struct conf *conf_load(const char *path, conf_report_fn report, void *ctx);
struct conf *conf_defaults(void);
void conf_free(struct conf *conf);

const char *conf_find_user(const struct conf *conf, const char *local);
int conf_is_local_domain(const struct conf *conf, const char *domain);
const struct conf_alias *conf_find_alias(const struct conf *conf,
    const char *name);
int conf_lookup_local(const struct conf *conf, const char *local,
    struct conf_target *target);
int conf_relay_allowed(const struct conf *conf, const struct sockaddr *sa);
int conf_parse_listen(const char *text, struct sockaddr_storage *ss,
    socklen_t *len);
int conf_parse_network(const char *text, struct conf_network *net);
const char *conf_where(const struct conf *conf, const char *key, char *dst,
    size_t size);
int conf_is_default(const struct conf *conf, const char *key);
int conf_parse_relayhost(const char *text, char *host, size_t hostlen,
    int *literal, unsigned short *port, unsigned short default_port);

#endif
