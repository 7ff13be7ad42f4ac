/*
 * NAME
 *	addr - RFC 5321 paths (reverse-path and forward-path)
 * SYNOPSIS
 *	#include "addr.h"
 * DESCRIPTION
 *	addr_parse_path() parses the path that starts at text[0] (which must
 *	be '<'), by RFC 5321 section 4.1.2 grammar:
 *	  Path = "<" [ A-d-l ":" ] Mailbox ">"; Mailbox = Local-part "@" ( Domain / address-literal )
 *	Local-part is a Dot-string or a Quoted-string; Domain is sub-domains
 *	of letters, digits and hyphens (no empty label, no leading or
 *	trailing hyphen); address-literal is [IPv4] or [IPv6:...] (checked
 *	with inet_pton) or [tag:text]. A source route (A-d-l) is checked
 *	and then dropped. With ADDR_ALLOW_NULL the null path "<>" is
 *	accepted; with ADDR_ALLOW_POSTMASTER "<postmaster>" (any case, no
 *	domain) is accepted. No 8-bit, control or NUL byte is accepted
 *	anywhere.
 *
 *	On success *consumed is the length of the path including '>', and
 *	out holds:
 *	  local    the local part as written (quotes kept), for envelopes;
 *	  mailbox  the local part with quoting undone, for lookups;
 *	  domain   the domain lower-cased (address literals: as written,
 *	           with IPv6 tag lower-cased), "" for <> and <postmaster>;
 *	  literal  true when domain is an address literal;
 *	  null     true for <>; postmaster true for <postmaster>.
 *	addr_format() writes "local@domain" (or "" / "postmaster").
 *	addr_domain_is_safe() tells whether a domain (as returned in
 *	out->domain) may be used as a directory name: not a literal, no
 *	'/', '\\', NUL, no leading dot, no "..", LDH labels only, and a
 *	last label that is not a number (RFC 1123 2.1: there is no
 *	all-numeric top-level domain, so "127.0.0.1", "2130706433" and
 *	"0x7f000001" are addresses written without brackets).
 *	addr_helo_valid() tells whether a HELO/EHLO argument may be used:
 *	a domain (letters, digits, hyphens and, as real clients send them,
 *	underscores; one trailing dot tolerated; a last label that is not
 *	a number) or an address literal [IPv4] or [IPv6:...] checked with
 *	inet_pton().
 * DIAGNOSTICS
 *	addr_parse_path() returns ADDR_OK or one of the errors below; out is
 *	then undefined.
 * LIMITS
 *	Local part 64 octets, domain 255, whole path 256 (RFC 5321 4.5.3.1).
 */
#ifndef POLLSMTPD_ADDR_H
#define POLLSMTPD_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64
#define ADDR_DOMAIN_MAX	255
#define ADDR_PATH_MAX	256

#define ADDR_ALLOW_NULL		0x01
#define ADDR_ALLOW_POSTMASTER	0x02

enum addr_result {
	ADDR_OK = 0,
	ADDR_ESYNTAX,		/* not a path by the grammar */
	ADDR_ELOCAL_LONG,	/* local part over 64 octets */
	ADDR_EDOMAIN_LONG,	/* domain over 255 octets */
	ADDR_EPATH_LONG,	/* path over 256 octets */
	ADDR_ENULL,		/* <> where it is not allowed */
};

struct addr {
	char local[ADDR_LOCAL_MAX + 1];
	char mailbox[ADDR_LOCAL_MAX + 1];
	char domain[ADDR_DOMAIN_MAX + 1];
	int literal;
	int null;
	int postmaster;
};

enum addr_result addr_parse_path(const char *text, size_t len, int flags,
    struct addr *out, size_t *consumed);
int addr_format(const struct addr *a, char *dst, size_t dstlen);
int addr_domain_is_safe(const char *domain);
int addr_helo_valid(const char *name);
const char *addr_strerror(enum addr_result r);

#endif
