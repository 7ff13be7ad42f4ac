/*
 * NAME
 *	conf - the configuration file (libconfig syntax), loaded once
 * SYNOPSIS
 *	See conf.h.
 * DESCRIPTION
 *	conf_load() starts from conf_defaults() and walks the parsed file
 *	against a table of known keys (conf_keys below): every setting the
 *	table does not name is an unknown key, every setting of the wrong
 *	libconfig type is reported, and every value passes its own check
 *	before it replaces the default. Checks that need two keys (the
 *	postmaster must be a user, there must be a listen address) run once
 *	the whole file has been walked. Nothing stops at the first problem:
 *	the caller sees every one of them, each as "FILE:LINE: KEY: text".
 *
 *	Aliases are read as written and resolved once the whole file has
 *	been walked (users and aliases may come in any order): each alias
 *	is followed down to users and remote addresses, through at most
 *	CONF_ALIAS_DEPTH aliases, with the chain kept so that a loop is
 *	reported by each alias on it and named in full ("a -> b -> a").
 *	A problem inside a nested alias is reported once, by that alias.
 *
 *	Integer keys take libconfig int and int64 (the "L" suffix) values;
 *	boolean keys take only true/false; list keys take an array [ ] or a
 *	list ( ) of strings.
 * DIAGNOSTICS
 *	conf_load() returns NULL after reporting every problem (also "out of
 *	memory" and "cannot open: REASON" at line 0). conf_defaults() returns
 *	NULL when out of memory. conf_parse_listen() and conf_parse_network()
 *	return -1 on any syntax error; they never resolve names.
 * LIMITS
 *	A report is at most CONF_REPORT_MAX bytes; quoted values in it are
 *	cut at CONF_QUOTE_MAX bytes and end in "...". libconfig 1.5 silently
 *	truncates an integer literal over 2147483647 written without the L
 *	suffix; that cannot be seen from here.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "tls.h"

#define CONF_REPORT_MAX		1024
#define CONF_QUOTE_MAX		96
#define CONF_PATH_MAX		128	/* "server.listen[12]" and the like */
#define CONF_USER_MAX		64	/* RFC 5321 local-part limit */
#define CONF_DOMAIN_MAX		253	/* RFC 1035 name without the root dot */
#define CONF_LABEL_MAX		63
#define CONF_HOSTNAME_MAX	255
#define CONF_TIMEOUT_MAX	86400	/* keeps seconds * 1000 inside an int */

/* What conf_load() carries through the walk. */
struct conf_loader {
	struct conf *conf;
	const char *path;		/* the file as named by the caller */
	const char *dir;		/* its directory, for @include */
	conf_report_fn report;
	void *ctx;
	int errors;
	int warning;			/* the report being made is a warning */
	const config_setting_t *users;	/* for the postmaster check: */
	const config_setting_t *postmaster;	/* where to report, */
	int users_bad, postmaster_bad;	/* and whether it makes sense */
	const config_setting_t *catchall;	/* local.catchall, if set */
	const config_setting_t *aliases;	/* local.aliases, if set */
	int aliases_bad;
	const config_setting_t *listen_tls;	/* for the TLS checks */
	const config_setting_t *certificate;
	const config_setting_t *key;
};

enum conf_key_type {
	CONF_KEY_GROUP,
	CONF_KEY_BOOL,			/* int in struct conf */
	CONF_KEY_INT,			/* long in struct conf */
	CONF_KEY_STRING,		/* char * in struct conf */
	CONF_KEY_OWN,			/* loaded by its own function */
};

struct conf_key {
	const char *name;
	enum conf_key_type type;
	const struct conf_key *members;	/* GROUP: ends with a NULL name */
	size_t offset;			/* BOOL, INT, STRING */
	long min, max;			/* INT */
	int (*string_ok)(const char *);	/* STRING */
	const char *string_what;	/* STRING: what string_ok wants */
	void (*load)(struct conf_loader *, const config_setting_t *,
	    const char *);		/* OWN */
};

static void conf_vreport(struct conf_loader *, const char *, unsigned,
    const char *, va_list) __attribute__((format(printf, 4, 0)));
static void conf_report_line(struct conf_loader *, const char *, unsigned,
    const char *, ...) __attribute__((format(printf, 4, 5)));
static void conf_vreport_in(struct conf_loader *, const char *, unsigned,
    const char *, va_list) __attribute__((format(printf, 4, 0)));
static void conf_report_in(struct conf_loader *, const char *, unsigned,
    const char *, ...) __attribute__((format(printf, 4, 5)));
static void conf_report(struct conf_loader *, const config_setting_t *,
    const char *, ...) __attribute__((format(printf, 3, 4)));
static void conf_warn(struct conf_loader *, const config_setting_t *,
    const char *, ...) __attribute__((format(printf, 3, 4)));
static void conf_report_nomem(struct conf_loader *);
static int conf_network_parse(const char *, struct conf_network *, char *,
    size_t);
static int conf_listen_parse(const char *, struct sockaddr_storage *,
    socklen_t *, char *, size_t);
static int conf_literal_int(const config_setting_t *, const char *,
    char *, size_t);
static void conf_note_place(struct conf_loader *, const config_setting_t *,
    const char *);
static const char *conf_quote(char *, size_t, const char *);
static const char *conf_type_name(int);
static const char *conf_key_path(char *, size_t, const char *, const char *,
    int);
static int conf_ascii_lower(int);
static int conf_casecmp(const char *, const char *);
static int conf_is_alnum(int);
static int conf_word_ok(const char *);
static int conf_absolute_ok(const char *);
static int conf_absolute_or_empty_ok(const char *);
static int conf_domain_ok(const char *);
static int conf_user_ok(const char *);
static int conf_parse_port(const char *, unsigned short *, unsigned long *);
static int conf_prefix_match(const unsigned char *, const unsigned char *,
    unsigned);
static void conf_free_strings(char **, size_t);
static void conf_free_listen(struct conf_listen *, size_t);
static char **conf_strings(const char *const *, size_t);
static char *conf_default_hostname(void);
static int conf_list_length(struct conf_loader *, const config_setting_t *,
    const char *);
static const char *conf_list_string(struct conf_loader *,
    const config_setting_t *, const char *, int, char *, size_t);
static void conf_load_names(struct conf_loader *, const config_setting_t *,
    const char *, char ***, size_t *, int (*)(const char *), const char *,
    int);
static void conf_load_addresses(struct conf_loader *,
    const config_setting_t *, const char *, struct conf_listen **,
    size_t *, int);
static void conf_load_listen(struct conf_loader *, const config_setting_t *,
    const char *);
static void conf_load_listen_tls(struct conf_loader *,
    const config_setting_t *, const char *);
static void conf_load_tls_file(struct conf_loader *, const config_setting_t *,
    const char *);
static void conf_load_tls_version(struct conf_loader *,
    const config_setting_t *, const char *);
static void conf_check_tls(struct conf_loader *);
static char *conf_setting_at(struct conf_loader *, const config_setting_t *);
static void conf_load_domains(struct conf_loader *, const config_setting_t *,
    const char *);
static void conf_load_users(struct conf_loader *, const config_setting_t *,
    const char *);
static void conf_load_postmaster(struct conf_loader *,
    const config_setting_t *, const char *);
static void conf_load_networks(struct conf_loader *, const config_setting_t *,
    const char *);
static void conf_load_setting(struct conf_loader *, const config_setting_t *,
    const struct conf_key *, const char *);
static void conf_load_group(struct conf_loader *, const config_setting_t *,
    const struct conf_key *, const char *);
static void conf_load_resolvers(struct conf_loader *,
    const config_setting_t *, const char *);
static void conf_load_tls_policy(struct conf_loader *,
    const config_setting_t *, const char *);
static int conf_relayhost_ok(const char *);
static void conf_check_postmaster(struct conf_loader *);
static int conf_delimiter_ok(const char *);
static void conf_load_catchall(struct conf_loader *,
    const config_setting_t *, const char *);
static void conf_load_aliases(struct conf_loader *,
    const config_setting_t *, const char *);
static void conf_free_aliases(struct conf_alias *, size_t);
static int conf_alias_add_mailbox(struct conf_alias *, const char *);
static int conf_alias_add_remote(struct conf_alias *, const char *);
static int conf_alias_expand(struct conf_loader *, struct conf_alias *,
    const struct conf_alias **, unsigned, const config_setting_t *);
static void conf_check_aliases(struct conf_loader *);
static void conf_check_catchall(struct conf_loader *);
static int conf_lookup_name(const struct conf *, const char *, size_t,
    struct conf_target *);
static char *conf_include_dir(const char *);

#define CONF_OFF(field)	offsetof(struct conf, field)

static const struct conf_key conf_maildir_keys[] = {
	{"path", CONF_KEY_STRING, NULL, CONF_OFF(maildir_path), 0, 0,
	    conf_absolute_ok, "an absolute path", NULL},
	{"fsync", CONF_KEY_BOOL, NULL, CONF_OFF(maildir_fsync), 0, 0,
	    NULL, NULL, NULL},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_application_keys[] = {
	{"debug", CONF_KEY_BOOL, NULL, CONF_OFF(debug), 0, 0,
	    NULL, NULL, NULL},
	{"maildir", CONF_KEY_GROUP, conf_maildir_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_server_keys[] = {
	{"listen", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_listen},
	{"listen_tls", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_listen_tls},
	{"max_connections", CONF_KEY_INT, NULL, CONF_OFF(max_connections),
	    1, INT_MAX, NULL, NULL, NULL},
	{"max_connections_per_ip", CONF_KEY_INT, NULL,
	    CONF_OFF(max_connections_per_ip), 0, INT_MAX, NULL, NULL, NULL},
	{"max_message_size", CONF_KEY_INT, NULL, CONF_OFF(max_message_size),
	    1024, INT_MAX, NULL, NULL, NULL},
	{"max_recipients", CONF_KEY_INT, NULL, CONF_OFF(max_recipients),
	    1, INT_MAX, NULL, NULL, NULL},
	{"command_timeout", CONF_KEY_INT, NULL, CONF_OFF(command_timeout),
	    1, CONF_TIMEOUT_MAX, NULL, NULL, NULL},
	{"data_timeout", CONF_KEY_INT, NULL, CONF_OFF(data_timeout),
	    1, CONF_TIMEOUT_MAX, NULL, NULL, NULL},
	{"user", CONF_KEY_STRING, NULL, CONF_OFF(user), 0, 0,
	    conf_word_ok, "a user name (printable, no spaces)", NULL},
	{"group", CONF_KEY_STRING, NULL, CONF_OFF(group), 0, 0,
	    conf_word_ok, "a group name (printable, no spaces)", NULL},
	{"pid_file", CONF_KEY_STRING, NULL, CONF_OFF(pid_file), 0, 0,
	    conf_absolute_ok, "an absolute path", NULL},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_local_keys[] = {
	{"domains", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_domains},
	{"users", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_users},
	{"postmaster", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_postmaster},
	{"recipient_delimiter", CONF_KEY_STRING, NULL,
	    CONF_OFF(recipient_delimiter), 0, 0, conf_delimiter_ok,
	    "\"\" or up to 8 of the characters +-_=.~#!$%&'*/?^`{|}", NULL},
	{"catchall", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_catchall},
	{"aliases", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_aliases},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_relay_keys[] = {
	{"networks", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_networks},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_log_keys[] = {
	{"file", CONF_KEY_STRING, NULL, CONF_OFF(log_file), 0, 0,
	    conf_absolute_or_empty_ok, "an absolute path or \"\" (stderr)",
	    NULL},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_delivery_keys[] = {
	{"enabled", CONF_KEY_BOOL, NULL, CONF_OFF(delivery_enabled), 0, 0,
	    NULL, NULL, NULL},
	{"resolvers", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_resolvers},
	{"relayhost", CONF_KEY_STRING, NULL, CONF_OFF(delivery_relayhost), 0, 0,
	    conf_relayhost_ok, "\"\", HOST, HOST:PORT, [IP] or [IP]:PORT", NULL},
	{"port", CONF_KEY_INT, NULL, CONF_OFF(delivery_port), 1, 65535,
	    NULL, NULL, NULL},
	{"max_connections", CONF_KEY_INT, NULL,
	    CONF_OFF(delivery_max_connections), 1, 10000, NULL, NULL, NULL},
	{"max_per_domain", CONF_KEY_INT, NULL,
	    CONF_OFF(delivery_max_per_domain), 1, 10000, NULL, NULL, NULL},
	{"retry_first", CONF_KEY_INT, NULL, CONF_OFF(delivery_retry_first),
	    1, 30L * 86400, NULL, NULL, NULL},
	{"retry_max", CONF_KEY_INT, NULL, CONF_OFF(delivery_retry_max),
	    1, 30L * 86400, NULL, NULL, NULL},
	{"max_lifetime", CONF_KEY_INT, NULL, CONF_OFF(delivery_max_lifetime),
	    1, 365L * 86400, NULL, NULL, NULL},
	{"tls", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_tls_policy},
	{"claim_timeout", CONF_KEY_INT, NULL,
	    CONF_OFF(delivery_claim_timeout), 1, 30L * 86400, NULL, NULL, NULL},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_tls_keys[] = {
	{"certificate", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_tls_file},
	{"key", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_tls_file},
	{"min_version", CONF_KEY_OWN, NULL, 0, 0, 0,
	    NULL, NULL, conf_load_tls_version},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

static const struct conf_key conf_keys[] = {
	{"hostname", CONF_KEY_STRING, NULL, CONF_OFF(hostname), 0, 0,
	    conf_word_ok, "a host name (printable, no spaces)", NULL},
	{"application", CONF_KEY_GROUP, conf_application_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{"server", CONF_KEY_GROUP, conf_server_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{"local", CONF_KEY_GROUP, conf_local_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{"relay", CONF_KEY_GROUP, conf_relay_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{"log", CONF_KEY_GROUP, conf_log_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{"delivery", CONF_KEY_GROUP, conf_delivery_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{"tls", CONF_KEY_GROUP, conf_tls_keys, 0, 0, 0,
	    NULL, NULL, NULL},
	{NULL, 0, NULL, 0, 0, 0, NULL, NULL, NULL},
};

/* The defaults of design.md; paths are the installed ones, not configure's. */
static const char *const conf_default_listen[] = {"0.0.0.0:25", "[::]:25"};
static const char *const conf_default_domains[] = {"example.org"};
static const char *const conf_default_users[] = {"alice", "bob"};
static const char *const conf_default_networks[] = {"127.0.0.0/8", "::1/128"};
#define CONF_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * conf_vreport - hand one "FILE:LINE: message" to the caller; with
 * ld->warning set it is "FILE:LINE: warning: message" and no error.
 */
static void
conf_vreport(struct conf_loader *ld, const char *file, unsigned line,
    const char *fmt, va_list ap)
{
	char msg[CONF_REPORT_MAX];
	int n, m;

	if (!ld->warning)
		ld->errors++;
	n = snprintf(msg, sizeof(msg), "%s:%u: %s", file, line,
	    ld->warning ? "warning: " : "");
	if (n < 0)
		return;
	if ((size_t)n < sizeof(msg)) {
		m = vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
		if (m < 0)
			return;
		n += m;
	}
	/* A report cut short says so rather than passing for whole. */
	if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	ld->report(msg, ld->ctx);
}

static void
conf_report_line(struct conf_loader *ld, const char *file, unsigned line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vreport(ld, file, line, fmt, ap);
	va_end(ap);
}

/*
 * conf_vreport_in - report at a line of file, which is NULL for the main
 * file, or the name an @include gave: relative to the main file's
 * directory, where libconfig looked for it, and shown so.
 */
static void
conf_vreport_in(struct conf_loader *ld, const char *file, unsigned line,
    const char *fmt, va_list ap)
{
	char where[PATH_MAX];
	int n;

	if (file == NULL || strcmp(file, ld->path) == 0) {
		file = ld->path;
	} else if (file[0] != '/' && ld->dir != NULL) {
		n = snprintf(where, sizeof(where), "%s/%s", ld->dir, file);
		if (n > 0 && (size_t)n < sizeof(where))
			file = where;
	}
	conf_vreport(ld, file, line, fmt, ap);
}

static void
conf_report_in(struct conf_loader *ld, const char *file, unsigned line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vreport_in(ld, file, line, fmt, ap);
	va_end(ap);
}

/* conf_report - report a problem with setting s, at its file and line */
static void
conf_report(struct conf_loader *ld, const config_setting_t *s,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_vreport_in(ld, config_setting_source_file(s),
	    config_setting_source_line(s), fmt, ap);
	va_end(ap);
}

/* conf_warn - like conf_report, but a warning: loading still succeeds */
static void
conf_warn(struct conf_loader *ld, const config_setting_t *s,
    const char *fmt, ...)
{
	va_list ap;

	ld->warning = 1;
	va_start(ap, fmt);
	conf_vreport_in(ld, config_setting_source_file(s),
	    config_setting_source_line(s), fmt, ap);
	va_end(ap);
	ld->warning = 0;
}

static void
conf_report_nomem(struct conf_loader *ld)
{
	conf_report_line(ld, ld->path, 0, "out of memory");
}

/*
 * conf_quote - src in double quotes, bytes outside printable ASCII (and
 * the quote and backslash) as \xHH, cut with "..." to fit dst. A value
 * from the file goes through here before it goes into a report, so a
 * report is always one printable line.
 */
static const char *
conf_quote(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	unsigned char c;

	/* Room for the quotes, "..." and the NUL is kept back. */
	dst[o++] = '"';
	for (; (c = (unsigned char)*src) != '\0'; src++) {
		int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';

		if (o + (plain ? 1 : 4) + 5 > size) {
			memcpy(dst + o, "\"...", 5);
			return dst;
		}
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

/* conf_type_name - a libconfig type as a report names it */
static const char *
conf_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/* conf_key_path - "prefix.name" or "prefix[index]", cut visibly */
static const char *
conf_key_path(char *dst, size_t size, const char *prefix, const char *name,
    int index)
{
	int n;

	if (name != NULL && prefix == NULL)
		n = snprintf(dst, size, "%s", name);
	else if (name != NULL)
		n = snprintf(dst, size, "%s.%s", prefix, name);
	else
		n = snprintf(dst, size, "%s[%d]", prefix, index);
	if (n < 0)
		dst[0] = '\0';
	else if ((size_t)n >= size)
		memcpy(dst + size - 4, "...", 4);
	return dst;
}

static int
conf_ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* conf_casecmp - strcasecmp for ASCII only, whatever the locale says */
static int
conf_casecmp(const char *a, const char *b)
{
	int ca, cb;

	do {
		ca = conf_ascii_lower((unsigned char)*a++);
		cb = conf_ascii_lower((unsigned char)*b++);
	} while (ca == cb && ca != '\0');
	return ca - cb;
}

static int
conf_is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	    || (c >= '0' && c <= '9');
}

/* conf_word_ok - non-empty, printable ASCII, no space: fits a header line */
static int
conf_word_ok(const char *s)
{
	size_t len = strlen(s);
	const char *p;

	if (len == 0 || len > CONF_HOSTNAME_MAX)
		return 0;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

static int
conf_absolute_ok(const char *s)
{
	return s[0] == '/';
}

static int
conf_absolute_or_empty_ok(const char *s)
{
	return s[0] == '\0' || s[0] == '/';
}

/*
 * conf_domain_ok - an LDH domain name (RFC 1035, RFC 1123): labels of
 * letters, digits and inner hyphens, 1-63 octets, 253 in all. A last
 * label of digits only is refused, so that no dotted quad passes for a
 * domain.
 */
static int
conf_domain_ok(const char *s)
{
	size_t len = strlen(s), label = 0;
	int digits_only = 1;
	const char *p;

	if (len == 0 || len > CONF_DOMAIN_MAX)
		return 0;
	for (p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > CONF_LABEL_MAX || p[-1] == '-')
				return 0;
			if (*p == '\0')
				return !digits_only;
			label = 0;
			digits_only = 1;
			continue;
		}
		if (!conf_is_alnum((unsigned char)*p) && *p != '-')
			return 0;
		if (*p == '-' && label == 0)
			return 0;
		if (*p < '0' || *p > '9')
			digits_only = 0;
		label++;
	}
}

/*
 * conf_user_ok - a name that is safe as a directory under the Maildir
 * root: letters, digits, '.', '-', '_', '+'; never a leading dot (that
 * also keeps "..", ".OTHER_SERVERS" and hidden names out); at most 64.
 */
static int
conf_user_ok(const char *s)
{
	size_t len = strlen(s);
	const char *p;

	if (len == 0 || len > CONF_USER_MAX || s[0] == '.')
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!conf_is_alnum((unsigned char)*p) && strchr(".-_+", *p) == NULL)
			return 0;
	return 1;
}

/*
 * conf_parse_port - 1 to 65535 in decimal digits, nothing else; returns
 * 0, -1 for no number at all, -2 for a number out of range (*over gets
 * it, or ULONG_MAX when it has too many digits to say).
 */
static int
conf_parse_port(const char *s, unsigned short *port, unsigned long *over)
{
	unsigned long v = 0;
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9')
			return -1;
		if (v <= 1000000)
			v = v * 10 + (unsigned long)(s[n] - '0');
		else
			v = ULONG_MAX;
	}
	if (n == 0)
		return -1;
	if (v < 1 || v > 65535) {
		*over = v;
		return -2;
	}
	*port = (unsigned short)v;
	return 0;
}

int
conf_parse_listen(const char *text, struct sockaddr_storage *ss,
    socklen_t *len)
{
	return conf_listen_parse(text, ss, len, NULL, 0);
}

/*
 * conf_listen_parse - conf_parse_listen(), and when why is not NULL a
 * precise reason for a port out of range (else why stays "").
 */
static int
conf_listen_parse(const char *text, struct sockaddr_storage *ss,
    socklen_t *len, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN];
	const char *end, *port;
	unsigned short portnum;
	unsigned long over = 0;
	size_t hostlen;
	int v6 = text[0] == '[', rc;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (v6) {
		if ((end = strchr(text, ']')) == NULL || end[1] != ':')
			return -1;
		text++;
		port = end + 2;
	} else {
		/* An unbracketed IPv6 address would make the port ambiguous. */
		if ((end = strchr(text, ':')) == NULL || strchr(end + 1, ':'))
			return -1;
		port = end + 1;
	}
	hostlen = (size_t)(end - text);
	if (hostlen == 0 || hostlen >= sizeof(host))
		return -1;
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';
	if ((rc = conf_parse_port(port, &portnum, &over)) < 0) {
		if (rc == -2 && why != NULL && whylen > 0) {
			if (over == 0)
				(void)snprintf(why, whylen, "port 0 is not "
				    "allowed (1 to 65535)");
			else if (over == ULONG_MAX)
				(void)snprintf(why, whylen, "the port is over "
				    "65535");
			else
				(void)snprintf(why, whylen, "port %lu is over "
				    "65535", over);
		}
		return -1;
	}

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		/* inet_pton, not getaddrinfo: no "127.1", no scope, no DNS. */
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(portnum);
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(portnum);
		*len = sizeof(*sin);
	}
	return 0;
}

int
conf_parse_network(const char *text, struct conf_network *net)
{
	return conf_network_parse(text, net, NULL, 0) < 0 ? -1 : 0;
}

/*
 * conf_network_parse - conf_parse_network(); with why, a precise reason
 * on failure ("prefix length 33 is over 32"), or else "" for a bad
 * address. Returns 1 when host bits were set (and cleared): legal, but
 * likely not what was meant.
 */
static int
conf_network_parse(const char *text, struct conf_network *net, char *why,
    size_t whylen)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hostlen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned long prefix = 0, max;
	unsigned char mask;
	size_t i, n;
	int hostbits = 0;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (hostlen == 0 || hostlen >= sizeof(host))
		return -1;
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';

	memset(net, 0, sizeof(*net));
	if (strchr(host, ':') != NULL) {
		if (inet_pton(AF_INET6, host, net->addr) != 1)
			return -1;
		net->family = AF_INET6;
		max = 128;
	} else {
		if (inet_pton(AF_INET, host, net->addr) != 1)
			return -1;
		net->family = AF_INET;
		max = 32;
	}

	if (slash == NULL) {
		prefix = max;
	} else {
		for (n = 0; slash[1 + n] != '\0'; n++) {
			if (slash[1 + n] < '0' || slash[1 + n] > '9')
				return -1;
			if (prefix <= 1000)
				prefix = prefix * 10
				    + (unsigned long)(slash[1 + n] - '0');
		}
		/* "/0008": more digits than a prefix has is no prefix. */
		if (n == 0 || (n > 3 && prefix <= max))
			return -1;
		if (prefix > max) {
			if (why != NULL && whylen > 0) {
				if (prefix > 1000)
					(void)snprintf(why, whylen, "the prefix "
					    "length is over %lu", max);
				else
					(void)snprintf(why, whylen, "prefix "
					    "length %lu is over %lu", prefix,
					    max);
			}
			return -1;
		}
	}
	net->prefix = (unsigned)prefix;

	/* The host bits go, so matching is a plain prefix comparison. */
	for (i = prefix / 8; i < sizeof(net->addr); i++) {
		mask = i == prefix / 8 ? (unsigned char)(0xff00 >> (prefix % 8)) : 0;
		if ((net->addr[i] & ~mask) != 0)
			hostbits = 1;
		net->addr[i] &= mask;
	}
	return hostbits;
}

/* conf_prefix_match - do the first prefix bits of a and b agree? */
static int
conf_prefix_match(const unsigned char *a, const unsigned char *b,
    unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff00 >> rest);
	return (a[whole] & mask) == (b[whole] & mask);
}

int
conf_relay_allowed(const struct conf *conf, const struct sockaddr *sa)
{
	const unsigned char *v4 = NULL, *v6 = NULL;
	size_t i;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		v4 = (const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		v6 = a6->s6_addr;
		/* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(a6))
			v4 = a6->s6_addr + 12;
	} else {
		return 0;
	}

	for (i = 0; i < conf->nrelay_networks; i++) {
		const struct conf_network *net = &conf->relay_networks[i];

		if (net->family == AF_INET && v4 != NULL
		    && conf_prefix_match(v4, net->addr, net->prefix))
			return 1;
		if (net->family == AF_INET6 && v6 != NULL
		    && conf_prefix_match(v6, net->addr, net->prefix))
			return 1;
	}
	return 0;
}

const char *
conf_find_user(const struct conf *conf, const char *local)
{
	size_t i;

	if (local == NULL)
		return NULL;
	for (i = 0; i < conf->nusers; i++)
		if (conf_casecmp(conf->users[i], local) == 0)
			return conf->users[i];
	return NULL;
}

int
conf_is_local_domain(const struct conf *conf, const char *domain)
{
	size_t i;

	if (domain == NULL)
		return 0;
	for (i = 0; i < conf->ndomains; i++)
		if (conf_casecmp(conf->domains[i], domain) == 0)
			return 1;
	return 0;
}

const struct conf_alias *
conf_find_alias(const struct conf *conf, const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < conf->naliases; i++)
		if (conf_casecmp(conf->aliases[i].name, name) == 0)
			return &conf->aliases[i];
	return NULL;
}

/*
 * conf_lookup_name - what the first len bytes of local name: an alias,
 * the postmaster (local.postmaster may be "": no user then), a user
 */
static int
conf_lookup_name(const struct conf *conf, const char *local, size_t len,
    struct conf_target *t)
{
	char name[CONF_USER_MAX + 1];

	if (len > CONF_USER_MAX)
		return 0;
	memcpy(name, local, len);
	name[len] = '\0';
	if ((t->alias = conf_find_alias(conf, name)) != NULL)
		return 1;
	if (conf_casecmp(name, "postmaster") == 0) {
		t->postmaster = 1;
		t->user = conf_find_user(conf, conf->postmaster);
		return 1;
	}
	return (t->user = conf_find_user(conf, name)) != NULL;
}

int
conf_lookup_local(const struct conf *conf, const char *local,
    struct conf_target *target)
{
	const char *delim = conf->recipient_delimiter;
	size_t n;

	memset(target, 0, sizeof(*target));
	if (local == NULL)
		return 0;
	if (conf_lookup_name(conf, local, strlen(local), target))
		return 1;
	if (delim == NULL || *delim == '\0')
		return 0;
	/* Postfix splits at the first delimiter: "a+b+c" -> "a". */
	n = strcspn(local, delim);
	if (n == 0 || local[n] == '\0')
		return 0;
	return conf_lookup_name(conf, local, n, target);
}

static void
conf_free_strings(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
conf_free_listen(struct conf_listen *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i].text);
	free(v);
}

void
conf_free(struct conf *conf)
{
	size_t i;

	if (conf == NULL)
		return;
	free(conf->file);
	free(conf->hostname);
	free(conf->maildir_path);
	conf_free_listen(conf->listen, conf->nlisten);
	free(conf->user);
	free(conf->group);
	free(conf->pid_file);
	conf_free_strings(conf->domains, conf->ndomains);
	conf_free_strings(conf->users, conf->nusers);
	free(conf->postmaster);
	free(conf->recipient_delimiter);
	free(conf->catchall);
	conf_free_aliases(conf->aliases, conf->naliases);
	free(conf->relay_networks);
	free(conf->log_file);
	for (i = 0; i < conf->nplaces; i++) {
		free(conf->places[i].key);
		free(conf->places[i].file);
	}
	free(conf->places);
	conf_free_strings(conf->delivery_resolvers, conf->ndelivery_resolvers);
	free(conf->delivery_relayhost);
	conf_free_listen(conf->listen_tls, conf->nlisten_tls);
	free(conf->tls_certificate);
	free(conf->tls_key);
	free(conf->tls_certificate_at);
	free(conf->tls_key_at);
	free(conf);
}

/* conf_strings - a malloc'ed copy of a list of n strings, or NULL */
static char **
conf_strings(const char *const *src, size_t n)
{
	char **v;
	size_t i;

	if ((v = calloc(n, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((v[i] = strdup(src[i])) == NULL) {
			conf_free_strings(v, i);
			return NULL;
		}
	}
	return v;
}

/* conf_default_hostname - gethostname(), or "localhost" if it is unusable */
static char *
conf_default_hostname(void)
{
	char name[CONF_HOSTNAME_MAX + 1];

	if (gethostname(name, sizeof(name)) < 0)
		return strdup("localhost");
	/* POSIX leaves a truncated name unterminated. */
	name[sizeof(name) - 1] = '\0';
	if (!conf_word_ok(name))
		return strdup("localhost");
	return strdup(name);
}

struct conf *
conf_defaults(void)
{
	struct conf *conf;
	size_t i;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		return NULL;
	conf->debug = 0;
	conf->maildir_fsync = 1;
	conf->max_connections = 1024;
	conf->max_connections_per_ip = 20;
	conf->max_message_size = 10485760;
	conf->max_recipients = 100;
	conf->command_timeout = 300;
	conf->data_timeout = 600;
	conf->delivery_enabled = 1;
	conf->delivery_port = 25;
	conf->delivery_max_connections = 50;
	conf->delivery_max_per_domain = 5;
	conf->delivery_retry_first = 300;
	conf->delivery_retry_max = 3600;
	conf->delivery_max_lifetime = 432000;
	conf->delivery_tls = CONF_TLS_MAY;
	conf->delivery_claim_timeout = 3600;
	if ((conf->delivery_relayhost = strdup("")) == NULL)
		goto fail;
	conf->tls_min_version = tls_parse_version("TLSv1.2");
	if ((conf->hostname = conf_default_hostname()) == NULL
	    || (conf->maildir_path = strdup("/var/spool/pollsmtpd")) == NULL
	    || (conf->user = strdup("pollsmtpd")) == NULL
	    || (conf->group = strdup("pollsmtpd")) == NULL
	    || (conf->pid_file = strdup("/run/pollsmtpd.pid")) == NULL
	    || (conf->postmaster = strdup("alice")) == NULL
	    || (conf->recipient_delimiter = strdup("+")) == NULL
	    || (conf->catchall = strdup("")) == NULL
	    || (conf->log_file =
	    strdup("/var/log/pollsmtpd/pollsmtpd.log")) == NULL
	    || (conf->tls_certificate = strdup("")) == NULL
	    || (conf->tls_key = strdup("")) == NULL)
		goto fail;

	if ((conf->listen = calloc(CONF_NELEM(conf_default_listen),
	    sizeof(*conf->listen))) == NULL)
		goto fail;
	for (i = 0; i < CONF_NELEM(conf_default_listen); i++) {
		struct conf_listen *l = &conf->listen[i];

		if ((l->text = strdup(conf_default_listen[i])) == NULL)
			goto fail;
		conf->nlisten++;
		if (conf_parse_listen(l->text, &l->addr, &l->addrlen) < 0)
			goto fail;
	}

	if ((conf->domains = conf_strings(conf_default_domains,
	    CONF_NELEM(conf_default_domains))) == NULL)
		goto fail;
	conf->ndomains = CONF_NELEM(conf_default_domains);
	if ((conf->users = conf_strings(conf_default_users,
	    CONF_NELEM(conf_default_users))) == NULL)
		goto fail;
	conf->nusers = CONF_NELEM(conf_default_users);

	if ((conf->relay_networks = calloc(CONF_NELEM(conf_default_networks),
	    sizeof(*conf->relay_networks))) == NULL)
		goto fail;
	for (i = 0; i < CONF_NELEM(conf_default_networks); i++)
		if (conf_parse_network(conf_default_networks[i],
		    &conf->relay_networks[i]) < 0)
			goto fail;
	conf->nrelay_networks = CONF_NELEM(conf_default_networks);
	return conf;

fail:
	conf_free(conf);
	return NULL;
}

/*
 * conf_list_length - the length of a list key (an array or a list), or
 * -1 after reporting that s is neither.
 */
static int
conf_list_length(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		conf_report(ld, s, "%s: expected a list of strings, not %s",
		    path, conf_type_name(config_setting_type(s)));
		return -1;
	}
	return config_setting_length(s);
}

/*
 * conf_list_string - element i of a list key as a string, or NULL after
 * reporting its type. The element's own line is the one reported.
 */
static const char *
conf_list_string(struct conf_loader *ld, const config_setting_t *s,
    const char *path, int i, char *elem_path, size_t size)
{
	const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

	conf_key_path(elem_path, size, path, NULL, i);
	if (config_setting_type(e) != CONFIG_TYPE_STRING) {
		conf_report(ld, e, "%s: expected a string, not %s", elem_path,
		    conf_type_name(config_setting_type(e)));
		return NULL;
	}
	return config_setting_get_string(e);
}

static void
conf_load_listen(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	conf_load_addresses(ld, s, path, &ld->conf->listen, &ld->conf->nlisten,
	    0);
}

/* conf_load_listen_tls - may be empty; checked with tls.* at the end */
static void
conf_load_listen_tls(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	ld->listen_tls = s;
	conf_load_addresses(ld, s, path, &ld->conf->listen_tls,
	    &ld->conf->nlisten_tls, 1);
}

/*
 * conf_load_addresses - a list of listening addresses into *list: each
 * one numeric and there once; empty only when allowed.
 */
static void
conf_load_addresses(struct conf_loader *ld, const config_setting_t *s,
    const char *path, struct conf_listen **list, size_t *nlist,
    int empty_ok)
{
	struct conf_listen *v;
	char epath[CONF_PATH_MAX], q[CONF_QUOTE_MAX], why[CONF_QUOTE_MAX];
	const char *text;
	size_t n = 0, j;
	int len, i;

	if ((len = conf_list_length(ld, s, path)) < 0)
		return;
	if (len == 0 && !empty_ok) {
		conf_report(ld, s, "%s: at least one address is needed", path);
		return;
	}
	if ((v = calloc((size_t)len + 1, sizeof(*v))) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	for (i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);

		if ((text = conf_list_string(ld, s, path, i, epath,
		    sizeof(epath))) == NULL)
			continue;
		if (conf_listen_parse(text, &v[n].addr, &v[n].addrlen, why,
		    sizeof(why)) < 0) {
			if (why[0] != '\0')
				conf_report(ld, e, "%s: %s: %s", epath,
				    conf_quote(q, sizeof(q), text), why);
			else
				conf_report(ld, e, "%s: %s is not a numeric "
				    "ADDRESS:PORT or [IPV6-ADDRESS]:PORT", epath,
				    conf_quote(q, sizeof(q), text));
			continue;
		}
		/* Two equal entries could never both be bound. */
		for (j = 0; j < n; j++)
			if (v[j].addrlen == v[n].addrlen
			    && memcmp(&v[j].addr, &v[n].addr, v[n].addrlen) == 0)
				break;
		if (j < n) {
			conf_report(ld, e, "%s: %s is listed twice", epath,
			    conf_quote(q, sizeof(q), text));
			continue;
		}
		if ((v[n].text = strdup(text)) == NULL) {
			conf_report_nomem(ld);
			break;
		}
		n++;
	}
	conf_free_listen(*list, *nlist);
	*list = v;
	*nlist = n;
}

/* conf_setting_at - "FILE:LINE" of setting s, for reports made later */
static char *
conf_setting_at(struct conf_loader *ld, const config_setting_t *s)
{
	char where[PATH_MAX + 16];
	const char *file = config_setting_source_file(s);
	int n;

	if (file == NULL || strcmp(file, ld->path) == 0)
		file = ld->path;
	if (file[0] != '/' && file != ld->path && ld->dir != NULL)
		n = snprintf(where, sizeof(where), "%s/%s:%u", ld->dir, file,
		    config_setting_source_line(s));
	else
		n = snprintf(where, sizeof(where), "%s:%u", file,
		    config_setting_source_line(s));
	if (n < 0 || (size_t)n >= sizeof(where))
		return strdup(ld->path);
	return strdup(where);
}

/*
 * conf_load_tls_file - tls.certificate and tls.key: "" or an absolute
 * path; where it was set is kept, for pollsmtpd -t and start-up to
 * report that the file does not load.
 */
static void
conf_load_tls_file(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	int is_key = strcmp(config_setting_name(s), "key") == 0;
	char q[CONF_QUOTE_MAX];
	const char *text;
	char *copy, *where;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_report(ld, s, "%s: expected a string, not %s", path,
		    conf_type_name(config_setting_type(s)));
		return;
	}
	text = config_setting_get_string(s);
	if (!conf_absolute_or_empty_ok(text)) {
		conf_report(ld, s, "%s: %s is not an absolute path or \"\"",
		    path, conf_quote(q, sizeof(q), text));
		return;
	}
	if ((copy = strdup(text)) == NULL
	    || (where = conf_setting_at(ld, s)) == NULL) {
		free(copy);
		conf_report_nomem(ld);
		return;
	}
	if (is_key) {
		ld->key = s;
		free(ld->conf->tls_key);
		ld->conf->tls_key = copy;
		free(ld->conf->tls_key_at);
		ld->conf->tls_key_at = where;
	} else {
		ld->certificate = s;
		free(ld->conf->tls_certificate);
		ld->conf->tls_certificate = copy;
		free(ld->conf->tls_certificate_at);
		ld->conf->tls_certificate_at = where;
	}
}

static void
conf_load_tls_version(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	char q[CONF_QUOTE_MAX];
	int v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_report(ld, s, "%s: expected a string, not %s", path,
		    conf_type_name(config_setting_type(s)));
		return;
	}
	if ((v = tls_parse_version(config_setting_get_string(s))) == 0) {
		conf_report(ld, s, "%s: %s is not one of \"TLSv1\", "
		    "\"TLSv1.1\", \"TLSv1.2\", \"TLSv1.3\"", path,
		    conf_quote(q, sizeof(q), config_setting_get_string(s)));
		return;
	}
	ld->conf->tls_min_version = v;
}

/*
 * conf_check_tls - certificate and key come together; implicit TLS
 * needs them (and OpenSSL); no address serves both plain and TLS.
 */
static void
conf_check_tls(struct conf_loader *ld)
{
	struct conf *conf = ld->conf;
	char q[CONF_QUOTE_MAX];
	size_t i, j;

	if (*conf->tls_certificate != '\0' && *conf->tls_key == '\0')
		conf_report(ld, ld->certificate, "tls.certificate: set, but "
		    "tls.key is not");
	if (*conf->tls_key != '\0' && *conf->tls_certificate == '\0')
		conf_report(ld, ld->key, "tls.key: set, but tls.certificate "
		    "is not");
	if (conf->nlisten_tls == 0 || ld->listen_tls == NULL)
		return;
	if (!tls_available())
		conf_report(ld, ld->listen_tls, "server.listen_tls: this "
		    "pollsmtpd was built without OpenSSL (no TLS)");
	else if (*conf->tls_certificate == '\0')
		conf_report(ld, ld->listen_tls, "server.listen_tls: needs "
		    "tls.certificate and tls.key");
	for (i = 0; i < conf->nlisten_tls; i++)
		for (j = 0; j < conf->nlisten; j++)
			if (conf->listen_tls[i].addrlen == conf->listen[j].addrlen
			    && memcmp(&conf->listen_tls[i].addr,
			    &conf->listen[j].addr, conf->listen[j].addrlen) == 0)
				conf_report(ld, ld->listen_tls,
				    "server.listen_tls: %s is in server.listen "
				    "too", conf_quote(q, sizeof(q),
				    conf->listen_tls[i].text));
}

/*
 * conf_load_names - local.domains and local.users: each element passes
 * name_ok, is not there twice in any case, and is stored lower-cased if
 * lower is set.
 */
static void
conf_load_names(struct conf_loader *ld, const config_setting_t *s,
    const char *path, char ***names, size_t *nnames,
    int (*name_ok)(const char *), const char *what, int lower)
{
	char epath[CONF_PATH_MAX], q[CONF_QUOTE_MAX];
	const char *text;
	char **v, *p;
	size_t n = 0, j;
	int len, i;

	if ((len = conf_list_length(ld, s, path)) < 0)
		return;
	if ((v = calloc((size_t)len + 1, sizeof(*v))) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	for (i = 0; i < len; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);

		if ((text = conf_list_string(ld, s, path, i, epath,
		    sizeof(epath))) == NULL)
			continue;
		if (!name_ok(text)) {
			conf_report(ld, e, "%s: %s is not %s", epath,
			    conf_quote(q, sizeof(q), text), what);
			continue;
		}
		for (j = 0; j < n; j++)
			if (conf_casecmp(v[j], text) == 0)
				break;
		if (j < n) {
			conf_report(ld, e, "%s: %s is listed twice", epath,
			    conf_quote(q, sizeof(q), text));
			continue;
		}
		if ((v[n] = strdup(text)) == NULL) {
			conf_report_nomem(ld);
			break;
		}
		if (lower)
			for (p = v[n]; *p != '\0'; p++)
				*p = (char)conf_ascii_lower((unsigned char)*p);
		n++;
	}
	conf_free_strings(*names, *nnames);
	*names = v;
	*nnames = n;
}

static void
conf_load_domains(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	conf_load_names(ld, s, path, &ld->conf->domains, &ld->conf->ndomains,
	    conf_domain_ok, "a domain name (letters, digits, '-', dots)", 1);
}

static void
conf_load_users(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	int errors = ld->errors;

	ld->users = s;
	conf_load_names(ld, s, path, &ld->conf->users, &ld->conf->nusers,
	    conf_user_ok, "a mailbox name (letters, digits, '.', '-', '_', "
	    "'+', no leading '.', at most 64)", 0);
	ld->users_bad = ld->errors != errors;
}

/*
 * conf_load_postmaster - only the type is checked here: whether it names
 * a user is known once local.users is read, which may come later.
 */
static void
conf_load_postmaster(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	char *copy;

	ld->postmaster = s;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_report(ld, s, "%s: expected a string, not %s", path,
		    conf_type_name(config_setting_type(s)));
		ld->postmaster_bad = 1;
		return;
	}
	if ((copy = strdup(config_setting_get_string(s))) == NULL) {
		conf_report_nomem(ld);
		ld->postmaster_bad = 1;
		return;
	}
	free(ld->conf->postmaster);
	ld->conf->postmaster = copy;
}

static void
conf_load_networks(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	struct conf_network *v;
	char epath[CONF_PATH_MAX], q[CONF_QUOTE_MAX], why[CONF_QUOTE_MAX];
	char shown[INET6_ADDRSTRLEN];
	const config_setting_t *e;
	const char *text;
	size_t n = 0;
	int len, i, rc;

	if ((len = conf_list_length(ld, s, path)) < 0)
		return;
	if ((v = calloc((size_t)len + 1, sizeof(*v))) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	for (i = 0; i < len; i++) {
		if ((text = conf_list_string(ld, s, path, i, epath,
		    sizeof(epath))) == NULL)
			continue;
		e = config_setting_get_elem(s, (unsigned)i);
		if ((rc = conf_network_parse(text, &v[n], why,
		    sizeof(why))) < 0) {
			if (why[0] != '\0')
				conf_report(ld, e, "%s: %s: %s", epath,
				    conf_quote(q, sizeof(q), text), why);
			else
				conf_report(ld, e, "%s: %s is not a numeric "
				    "ADDRESS/PREFIX", epath,
				    conf_quote(q, sizeof(q), text));
			continue;
		}
		if (rc == 1) {
			if (inet_ntop(v[n].family, v[n].addr, shown,
			    sizeof(shown)) == NULL)
				shown[0] = '\0';
			conf_warn(ld, e, "%s: %s has host bits set: taken as "
			    "%s/%u", epath, conf_quote(q, sizeof(q), text),
			    shown, v[n].prefix);
		}
		n++;
	}
	free(ld->conf->relay_networks);
	ld->conf->relay_networks = v;
	ld->conf->nrelay_networks = n;
}

/*
 * conf_relayhost_ok - delivery.relayhost: "" or what
 * conf_parse_relayhost() takes.
 */
static int
conf_relayhost_ok(const char *s)
{
	char host[CONF_HOSTNAME_MAX + 1];
	unsigned short port;
	int literal;

	if (*s == '\0')
		return 1;
	return conf_parse_relayhost(s, host, sizeof(host), &literal, &port,
	    25) == 0;
}

int
conf_parse_relayhost(const char *text, char *host, size_t hostlen,
    int *literal, unsigned short *port, unsigned short default_port)
{
	unsigned char addr[16];
	const char *end, *colon;
	unsigned long over;
	size_t len;

	*port = default_port;
	*literal = 0;
	if (*text == '[') {
		if ((end = strchr(text, ']')) == NULL)
			return -1;
		len = (size_t)(end - text - 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
		text++;
		*literal = 1;
	} else {
		colon = strrchr(text, ':');
		len = colon != NULL ? (size_t)(colon - text) : strlen(text);
	}
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	if (colon != NULL && conf_parse_port(colon + 1, port, &over) < 0)
		return -1;
	if (*literal)
		return inet_pton(AF_INET, host, addr) == 1
		    || inet_pton(AF_INET6, host, addr) == 1 ? 0 : -1;
	return conf_domain_ok(host) ? 0 : -1;
}

/*
 * conf_load_resolvers - delivery.resolvers: numeric "IP", "IP:PORT",
 * "V6" or "[V6]:PORT", as c-ares takes them.
 */
static void
conf_load_resolvers(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	struct sockaddr_storage ss;
	unsigned char addr[16];
	socklen_t sslen;
	char epath[CONF_PATH_MAX], q[CONF_QUOTE_MAX];
	const char *text;
	char **v;
	size_t n = 0;
	int len, i;

	if ((len = conf_list_length(ld, s, path)) < 0)
		return;
	if ((v = calloc((size_t)len + 1, sizeof(*v))) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	for (i = 0; i < len; i++) {
		if ((text = conf_list_string(ld, s, path, i, epath,
		    sizeof(epath))) == NULL)
			continue;
		if (inet_pton(AF_INET, text, addr) != 1
		    && inet_pton(AF_INET6, text, addr) != 1
		    && conf_parse_listen(text, &ss, &sslen) < 0) {
			conf_report(ld, config_setting_get_elem(s, (unsigned)i),
			    "%s: %s is not a numeric ADDRESS, ADDRESS:PORT or "
			    "[IPV6-ADDRESS]:PORT", epath,
			    conf_quote(q, sizeof(q), text));
			continue;
		}
		if ((v[n] = strdup(text)) == NULL) {
			conf_report_nomem(ld);
			break;
		}
		n++;
	}
	conf_free_strings(ld->conf->delivery_resolvers,
	    ld->conf->ndelivery_resolvers);
	ld->conf->delivery_resolvers = v;
	ld->conf->ndelivery_resolvers = n;
}

/* conf_load_tls_policy - delivery.tls: "none", "may" or "encrypt" */
static void
conf_load_tls_policy(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	char q[CONF_QUOTE_MAX];
	const char *text;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_report(ld, s, "%s: expected a string, not %s", path,
		    conf_type_name(config_setting_type(s)));
		return;
	}
	text = config_setting_get_string(s);
	if (strcmp(text, "none") == 0)
		ld->conf->delivery_tls = CONF_TLS_NONE;
	else if (strcmp(text, "may") == 0)
		ld->conf->delivery_tls = CONF_TLS_MAY;
	else if (strcmp(text, "encrypt") == 0)
		ld->conf->delivery_tls = CONF_TLS_ENCRYPT;
	else
		conf_report(ld, s, "%s: %s is not \"none\", \"may\" or "
		    "\"encrypt\"", path, conf_quote(q, sizeof(q), text));
}

/* conf_load_setting - check setting s against its key k and store it */
static void
conf_load_setting(struct conf_loader *ld, const config_setting_t *s,
    const struct conf_key *k, const char *path)
{
	char q[CONF_QUOTE_MAX];
	int type = config_setting_type(s);
	const char *text;
	char *copy, **field;
	long long v;

	if (k->type != CONF_KEY_GROUP)
		conf_note_place(ld, s, path);
	switch (k->type) {
	case CONF_KEY_GROUP:
		if (type != CONFIG_TYPE_GROUP) {
			conf_report(ld, s, "%s: expected a group, not %s", path,
			    conf_type_name(type));
			return;
		}
		conf_load_group(ld, s, k->members, path);
		return;
	case CONF_KEY_BOOL:
		if (type != CONFIG_TYPE_BOOL) {
			conf_report(ld, s, "%s: expected a boolean (true or "
			    "false), not %s", path, conf_type_name(type));
			return;
		}
		*(int *)(void *)((char *)ld->conf + k->offset) =
		    config_setting_get_bool(s) != 0;
		return;
	case CONF_KEY_INT:
		if (type == CONFIG_TYPE_INT)
			v = config_setting_get_int(s);
		else if (type == CONFIG_TYPE_INT64)
			v = config_setting_get_int64(s);
		else {
			conf_report(ld, s, "%s: expected an integer, not %s",
			    path, conf_type_name(type));
			return;
		}
		/*
		 * libconfig 1.5 wraps an int literal over 32 bits: the text
		 * on the setting's line says what was written.
		 */
		if (type == CONFIG_TYPE_INT && conf_literal_int(s,
		    config_setting_name(s), q, sizeof(q)) == 1) {
			conf_report(ld, s, "%s: %s is out of range (%ld to "
			    "%ld)", path, q, k->min, k->max);
			return;
		}
		if (v < k->min || v > k->max) {
			conf_report(ld, s, "%s: %lld is out of range (%ld to %ld)",
			    path, v, k->min, k->max);
			return;
		}
		*(long *)(void *)((char *)ld->conf + k->offset) = (long)v;
		return;
	case CONF_KEY_STRING:
		if (type != CONFIG_TYPE_STRING) {
			conf_report(ld, s, "%s: expected a string, not %s", path,
			    conf_type_name(type));
			return;
		}
		text = config_setting_get_string(s);
		if (k->string_ok != NULL && !k->string_ok(text)) {
			conf_report(ld, s, "%s: %s is not %s", path,
			    conf_quote(q, sizeof(q), text), k->string_what);
			return;
		}
		if ((copy = strdup(text)) == NULL) {
			conf_report_nomem(ld);
			return;
		}
		field = (char **)(void *)((char *)ld->conf + k->offset);
		free(*field);
		*field = copy;
		return;
	case CONF_KEY_OWN:
		k->load(ld, s, path);
		return;
	}
}

/* conf_load_group - every member of group must be one of keys */
static void
conf_load_group(struct conf_loader *ld, const config_setting_t *group,
    const struct conf_key *keys, const char *prefix)
{
	char path[CONF_PATH_MAX];
	const config_setting_t *s;
	const struct conf_key *k;
	int i, len = config_setting_length(group);

	for (i = 0; i < len; i++) {
		s = config_setting_get_elem(group, (unsigned)i);
		conf_key_path(path, sizeof(path), prefix,
		    config_setting_name(s), 0);
		for (k = keys; k->name != NULL; k++)
			if (strcmp(k->name, config_setting_name(s)) == 0)
				break;
		if (k->name == NULL) {
			conf_report(ld, s, "%s: unknown key", path);
			continue;
		}
		conf_load_setting(ld, s, k, path);
	}
}

/*
 * conf_check_postmaster - local.postmaster must name one of local.users;
 * the user's own spelling is kept, since it names the directory.
 */
static void
conf_check_postmaster(struct conf_loader *ld)
{
	struct conf *conf = ld->conf;
	char q[CONF_QUOTE_MAX];
	const char *user;
	char *copy;

	/* A broken list of users would only make a second, false report. */
	if (ld->users_bad || ld->postmaster_bad)
		return;
	/*
	 * A relay-only host (no users) needs no postmaster mailbox: unset,
	 * it is "" and <postmaster> is refused unless an alias names it.
	 * With users, "" is allowed only when such an alias exists.
	 */
	if (conf->nusers == 0 && ld->postmaster == NULL)
		conf->postmaster[0] = '\0';
	if (conf->postmaster[0] == '\0') {
		if (conf->nusers == 0 || conf_find_alias(conf, "postmaster")
		    != NULL)
			return;
		conf_report(ld, ld->postmaster, "local.postmaster: \"\" is "
		    "allowed only with local.users = [ ] or an alias named "
		    "postmaster");
		return;
	}
	if ((user = conf_find_user(conf, conf->postmaster)) != NULL) {
		if ((copy = strdup(user)) == NULL) {
			conf_report_nomem(ld);
			return;
		}
		free(conf->postmaster);
		conf->postmaster = copy;
		return;
	}
	if (ld->postmaster != NULL)
		conf_report(ld, ld->postmaster, "local.postmaster: %s is not one "
		    "of local.users", conf_quote(q, sizeof(q), conf->postmaster));
	else if (ld->users != NULL)
		conf_report(ld, ld->users, "local.postmaster: not set, and the "
		    "default %s is not one of local.users",
		    conf_quote(q, sizeof(q), conf->postmaster));
	else
		conf_report_line(ld, ld->path, 0, "local.postmaster: %s is "
		    "not one of local.users",
		    conf_quote(q, sizeof(q), conf->postmaster));
}

/*
 * conf_literal_int - the integer literal of setting name as written on
 * its line, into dst; returns 1 when it is one that libconfig cannot
 * hold as an int (over 32 bits, written without the L suffix), 0 when
 * it fits or cannot be found. Decimal and 0x hexadecimal.
 */
static int
conf_literal_int(const config_setting_t *s, const char *name, char *dst,
    size_t size)
{
	char line[CONF_REPORT_MAX];
	const char *file = config_setting_source_file(s), *p, *start;
	unsigned want = config_setting_source_line(s), at = 0;
	size_t nlen = strlen(name), n;
	unsigned long long v = 0, limit;
	int hex = 0, neg = 0, big = 0;
	FILE *fp;

	if (file == NULL || want == 0 || (fp = fopen(file, "re")) == NULL)
		return 0;
	while (at < want && fgets(line, sizeof(line), fp) != NULL)
		if (strchr(line, '\n') != NULL || feof(fp))
			at++;
	(void)fclose(fp);
	if (at != want)
		return 0;
	for (p = line; (p = strstr(p, name)) != NULL; p += nlen) {
		if (p > line && (conf_is_alnum((unsigned char)p[-1])
		    || p[-1] == '_'))
			continue;
		start = p + nlen;
		while (*start == ' ' || *start == '\t')
			start++;
		if (*start != '=' && *start != ':')
			continue;
		start++;
		while (*start == ' ' || *start == '\t')
			start++;
		break;
	}
	if (p == NULL)
		return 0;
	p = start;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		hex = 1;
		p += 2;
	}
	for (n = 0; hex ? isxdigit((unsigned char)p[n])
	    : isdigit((unsigned char)p[n]); n++) {
		unsigned d = isdigit((unsigned char)p[n]) ? (unsigned)(p[n] - '0')
		    : (unsigned)(tolower((unsigned char)p[n]) - 'a' + 10);

		if (v > (ULLONG_MAX - d) / (hex ? 16 : 10))
			big = 1;
		else
			v = v * (hex ? 16 : 10) + d;
	}
	if (n == 0 || p[n] == 'L' || p[n] == 'l' || p[n] == '.')
		return 0;
	/* An int takes 0x80000000..0xffffffff as a negative number. */
	limit = hex ? 0xffffffffULL : (neg ? 2147483648ULL : 2147483647ULL);
	if (!big && v <= limit)
		return 0;
	n += (size_t)(p - start);
	if (n >= size)
		n = size - 1;
	memcpy(dst, start, n);
	dst[n] = '\0';
	return 1;
}

/*
 * conf_note_place - remember where key path was set (the last setting
 * wins, as for the value), for conf_where().
 */
static void
conf_note_place(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	struct conf *conf = ld->conf;
	struct conf_place *grown, *pl;
	const char *file = config_setting_source_file(s);
	char where[PATH_MAX];
	size_t i;
	int n;

	if (file == NULL || strcmp(file, ld->path) == 0) {
		file = ld->path;
	} else if (file[0] != '/' && ld->dir != NULL) {
		n = snprintf(where, sizeof(where), "%s/%s", ld->dir, file);
		if (n > 0 && (size_t)n < sizeof(where))
			file = where;
	}
	for (i = 0; i < conf->nplaces; i++)
		if (strcmp(conf->places[i].key, path) == 0)
			break;
	if (i == conf->nplaces) {
		grown = realloc(conf->places, (conf->nplaces + 1)
		    * sizeof(*conf->places));
		if (grown == NULL) {
			conf_report_nomem(ld);
			return;
		}
		conf->places = grown;
		pl = &conf->places[conf->nplaces];
		if ((pl->key = strdup(path)) == NULL) {
			conf_report_nomem(ld);
			return;
		}
		pl->file = NULL;
		conf->nplaces++;
	}
	pl = &conf->places[i];
	free(pl->file);
	if ((pl->file = strdup(file)) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	pl->line = config_setting_source_line(s);
}

const char *
conf_where(const struct conf *conf, const char *key, char *dst,
    size_t size)
{
	size_t i;
	int n;

	for (i = 0; i < conf->nplaces; i++)
		if (strcmp(conf->places[i].key, key) == 0)
			break;
	if (i < conf->nplaces)
		n = snprintf(dst, size, "%s:%u", conf->places[i].file,
		    conf->places[i].line);
	else
		n = snprintf(dst, size, "%s:0", conf->file ? conf->file : "-");
	if (n < 0 || (size_t)n >= size)
		/* A cut path would point elsewhere: say less, but true. */
		(void)snprintf(dst, size, "-:0");
	return dst;
}

int
conf_is_default(const struct conf *conf, const char *key)
{
	size_t i;

	for (i = 0; i < conf->nplaces; i++)
		if (strcmp(conf->places[i].key, key) == 0)
			return 0;
	return 1;
}

/*
 * conf_delimiter_ok - "" or a few characters that may stand in a local
 * part and are neither letters nor digits (Postfix's recipient_delimiter
 * takes several; the first one found in a local part splits it)
 */
static int
conf_delimiter_ok(const char *s)
{
	const char *p;

	if (strlen(s) > 8)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (strchr("+-_=.~#!$%&'*/?^`{|}", *p) == NULL)
			return 0;
	return 1;
}

/* conf_load_catchall - the type only; conf_check_catchall() does the rest */
static void
conf_load_catchall(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	char *copy;

	ld->catchall = s;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_report(ld, s, "%s: expected a string, not %s", path,
		    conf_type_name(config_setting_type(s)));
		return;
	}
	if ((copy = strdup(config_setting_get_string(s))) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	free(ld->conf->catchall);
	ld->conf->catchall = copy;
}

/* conf_check_catchall - local.catchall is "" or one of local.users */
static void
conf_check_catchall(struct conf_loader *ld)
{
	struct conf *conf = ld->conf;
	char q[CONF_QUOTE_MAX];
	const char *user;
	char *copy;

	if (ld->users_bad || conf->catchall[0] == '\0')
		return;
	if ((user = conf_find_user(conf, conf->catchall)) == NULL) {
		conf_report(ld, ld->catchall, "local.catchall: %s is not one of "
		    "local.users", conf_quote(q, sizeof(q), conf->catchall));
		return;
	}
	if ((copy = strdup(user)) == NULL) {
		conf_report_nomem(ld);
		return;
	}
	free(conf->catchall);
	conf->catchall = copy;
}

static void
conf_free_aliases(struct conf_alias *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].name);
		conf_free_strings(v[i].targets, v[i].ntargets);
		free(v[i].mailboxes);
		conf_free_strings(v[i].remotes, v[i].nremotes);
	}
	free(v);
}

/*
 * conf_load_aliases - local.aliases = { name = [ "target", ... ]; ... };
 * the targets are kept as written here and resolved by
 * conf_check_aliases() once users and the postmaster are known.
 */
static void
conf_load_aliases(struct conf_loader *ld, const config_setting_t *s,
    const char *path)
{
	char apath[CONF_PATH_MAX], epath[CONF_PATH_MAX], q[CONF_QUOTE_MAX];
	struct conf_alias *v, *a;
	const config_setting_t *m;
	const char *name, *text;
	size_t n = 0, j;
	int len, ntargets, i, k;

	ld->aliases = s;
	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		conf_report(ld, s, "%s: expected a group of name = [ targets ], "
		    "not %s", path, conf_type_name(config_setting_type(s)));
		ld->aliases_bad = 1;
		return;
	}
	len = config_setting_length(s);
	if ((v = calloc((size_t)len + 1, sizeof(*v))) == NULL) {
		conf_report_nomem(ld);
		ld->aliases_bad = 1;
		return;
	}
	for (i = 0; i < len; i++) {
		m = config_setting_get_elem(s, (unsigned)i);
		name = config_setting_name(m);
		conf_key_path(apath, sizeof(apath), path, name, 0);
		if (!conf_user_ok(name)) {
			conf_report(ld, m, "%s: %s is not a local part (at most "
			    "64)", apath, conf_quote(q, sizeof(q), name));
			continue;
		}
		for (j = 0; j < n; j++)
			if (conf_casecmp(v[j].name, name) == 0)
				break;
		if (j < n) {
			conf_report(ld, m, "%s: %s is listed twice", apath,
			    conf_quote(q, sizeof(q), name));
			continue;
		}
		if ((ntargets = conf_list_length(ld, m, apath)) < 0)
			continue;
		if (ntargets == 0) {
			conf_report(ld, m, "%s: at least one target is needed",
			    apath);
			continue;
		}
		a = &v[n];
		if ((a->name = strdup(name)) == NULL
		    || (a->targets = calloc((size_t)ntargets,
		    sizeof(*a->targets))) == NULL) {
			conf_report_nomem(ld);
			free(a->name);
			a->name = NULL;
			break;
		}
		for (k = 0; k < ntargets; k++) {
			if ((text = conf_list_string(ld, m, apath, k, epath,
			    sizeof(epath))) == NULL)
				continue;
			if ((a->targets[a->ntargets] = strdup(text)) == NULL) {
				conf_report_nomem(ld);
				break;
			}
			a->ntargets++;
		}
		n++;
	}
	conf_free_aliases(ld->conf->aliases, ld->conf->naliases);
	ld->conf->aliases = v;
	ld->conf->naliases = n;
}

static int
conf_alias_add_mailbox(struct conf_alias *a, const char *user)
{
	const char **v;
	size_t i;

	for (i = 0; i < a->nmailboxes; i++)
		if (a->mailboxes[i] == user)
			return 0;
	if ((v = reallocarray(a->mailboxes, a->nmailboxes + 1,
	    sizeof(*v))) == NULL)
		return -1;
	a->mailboxes = v;
	v[a->nmailboxes++] = user;
	return 0;
}

static int
conf_alias_add_remote(struct conf_alias *a, const char *address)
{
	char **v;
	size_t i;

	for (i = 0; i < a->nremotes; i++)
		if (strcmp(a->remotes[i], address) == 0)
			return 0;
	if ((v = reallocarray(a->remotes, a->nremotes + 1,
	    sizeof(*v))) == NULL)
		return -1;
	a->remotes = v;
	if ((v[a->nremotes] = strdup(address)) == NULL)
		return -1;
	a->nremotes++;
	return 0;
}

/*
 * conf_alias_expand - add to top what the alias stack[depth - 1] names.
 * Returns 0, or -1 when something cannot be resolved. Only top's own
 * targets (depth 1) are reported here, at their lines, and loops at the
 * line of top when they lead back to it: a nested alias reports its own
 * problems when it is expanded as a top.
 */
static int
conf_alias_expand(struct conf_loader *ld, struct conf_alias *top,
    const struct conf_alias **stack, unsigned depth,
    const config_setting_t *where)
{
	const struct conf_alias *a = stack[depth - 1];
	char apath[CONF_PATH_MAX], q[CONF_QUOTE_MAX];
	char path[ADDR_PATH_MAX + 3], address[ADDR_LOCAL_MAX +
	    ADDR_DOMAIN_MAX + 2], chain[CONF_REPORT_MAX / 2];
	const config_setting_t *e;
	struct conf_target t;
	struct addr parsed;
	const char *local;
	size_t i, used, o;
	unsigned j;
	int bad = 0, n;

	conf_key_path(apath, sizeof(apath), "local.aliases", top->name, 0);
	for (i = 0; i < a->ntargets; i++) {
		e = depth == 1 ? config_setting_get_elem(where, (unsigned)i)
		    : where;
		if (e == NULL)
			e = where;
		local = a->targets[i];
		if (strchr(local, '@') != NULL) {
			n = snprintf(path, sizeof(path), "<%s>", local);
			if (n < 0 || (size_t)n >= sizeof(path)
			    || addr_parse_path(path, (size_t)n, 0, &parsed,
			    &used) != ADDR_OK || used != (size_t)n
			    || parsed.literal) {
				if (depth == 1)
					conf_report(ld, e, "%s: %s is not an "
					    "address (local@domain)", apath,
					    conf_quote(q, sizeof(q), local));
				bad = 1;
				continue;
			}
			if (!conf_is_local_domain(ld->conf, parsed.domain)) {
				if (!addr_domain_is_safe(parsed.domain)
				    || addr_format(&parsed, address,
				    sizeof(address)) < 0) {
					if (depth == 1)
						conf_report(ld, e, "%s: %s has no "
						    "usable domain name", apath,
						    conf_quote(q, sizeof(q),
						    local));
					bad = 1;
				} else if (conf_alias_add_remote(top,
				    address) < 0) {
					conf_report_nomem(ld);
					bad = 1;
				}
				continue;
			}
			local = parsed.mailbox;
		}
		if (!conf_lookup_local(ld->conf, local, &t)
		    || (t.user == NULL && t.alias == NULL)) {
			if (depth == 1)
				conf_report(ld, e, "%s: %s is not a user, an "
				    "alias or a remote address%s", apath,
				    conf_quote(q, sizeof(q), a->targets[i]),
				    t.postmaster ? " (no postmaster is "
				    "configured)" : "");
			bad = 1;
			continue;
		}
		if (t.user != NULL) {
			if (conf_alias_add_mailbox(top, t.user) < 0) {
				conf_report_nomem(ld);
				bad = 1;
			}
			continue;
		}
		for (j = 0; j < depth; j++)
			if (stack[j] == t.alias)
				break;
		if (j < depth) {
			if (j == 0) {
				for (o = 0, j = 0; j <= depth; j++) {
					n = snprintf(chain + o, sizeof(chain) - o,
					    "%s%s", j > 0 ? " -> " : "",
					    j < depth ? stack[j]->name
					    : t.alias->name);
					if (n < 0 || (size_t)n >= sizeof(chain) - o)
						break;
					o += (size_t)n;
				}
				conf_report(ld, where, "%s: alias loop: %s", apath,
				    chain);
			}
			bad = 1;
			continue;
		}
		if (depth == CONF_ALIAS_DEPTH) {
			conf_report(ld, where, "%s: aliases nested deeper than "
			    "%d", apath, CONF_ALIAS_DEPTH);
			bad = 1;
			continue;
		}
		stack[depth] = t.alias;
		if (conf_alias_expand(ld, top, stack, depth + 1, where) < 0)
			bad = 1;
	}
	return bad ? -1 : 0;
}

/*
 * conf_check_aliases - resolve every alias to its users and remote
 * addresses; an alias may not share its name with a user.
 */
static void
conf_check_aliases(struct conf_loader *ld)
{
	const struct conf_alias *stack[CONF_ALIAS_DEPTH];
	struct conf *conf = ld->conf;
	const config_setting_t *where;
	char apath[CONF_PATH_MAX], q[CONF_QUOTE_MAX];
	size_t i;

	if (ld->aliases == NULL || ld->aliases_bad || ld->users_bad)
		return;
	for (i = 0; i < conf->naliases; i++) {
		struct conf_alias *a = &conf->aliases[i];

		where = config_setting_get_member(ld->aliases, a->name);
		if (where == NULL)
			where = ld->aliases;
		conf_key_path(apath, sizeof(apath), "local.aliases", a->name,
		    0);
		if (conf_find_user(conf, a->name) != NULL) {
			conf_report(ld, where, "%s: %s is also one of "
			    "local.users", apath,
			    conf_quote(q, sizeof(q), a->name));
			continue;
		}
		stack[0] = a;
		(void)conf_alias_expand(ld, a, stack, 1, where);
	}
}

/* conf_include_dir - the directory of path, for relative @include */
static char *
conf_include_dir(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

struct conf *
conf_load(const char *path, conf_report_fn report, void *ctx)
{
	struct conf_loader ld;
	struct stat st;
	config_t cf;
	char *dir = NULL;
	int fd, cf_inited = 0;

	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.report = report;
	ld.ctx = ctx;

	/*
	 * libconfig says only "file I/O error" and leaves errno unreliable,
	 * so the reason a file cannot be read is found out here.
	 */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		conf_report_line(&ld, path, 0, "cannot open: %s",
		    strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		conf_report_line(&ld, path, 0, "cannot open: %s",
		    strerror(errno));
		close(fd);
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		conf_report_line(&ld, path, 0, "cannot open: %s",
		    strerror(EISDIR));
		close(fd);
		goto fail;
	}
	close(fd);

	if ((ld.conf = conf_defaults()) == NULL
	    || (ld.conf->file = strdup(path)) == NULL
	    || (dir = conf_include_dir(path)) == NULL) {
		conf_report_nomem(&ld);
		goto fail;
	}

	ld.dir = dir;
	config_init(&cf);
	cf_inited = 1;
	config_set_include_dir(&cf, dir);
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_PARSE)
			conf_report_in(&ld, config_error_file(&cf),
			    (unsigned)config_error_line(&cf), "%s",
			    config_error_text(&cf));
		else
			conf_report_line(&ld, path, 0, "cannot read: %s",
			    config_error_text(&cf));
		goto fail;
	}

	conf_load_group(&ld, config_root_setting(&cf), conf_keys, NULL);
	conf_check_aliases(&ld);
	conf_check_postmaster(&ld);
	conf_check_catchall(&ld);
	conf_check_tls(&ld);
	if (ld.errors > 0)
		goto fail;

	config_destroy(&cf);
	free(dir);
	return ld.conf;

fail:
	if (cf_inited)
		config_destroy(&cf);
	free(dir);
	conf_free(ld.conf);
	return NULL;
}
