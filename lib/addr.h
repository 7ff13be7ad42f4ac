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
 *	domain) is accepted. No control or NUL byte is accepted
 *	anywhere, and no 8-bit byte unless ADDR_ALLOW_UTF8 is given
 *	(SMTPUTF8, RFC 6531): then the local part and the domain may hold
 *	UTF-8 characters (checked, C1 controls refused), and a UTF-8 domain
 *	must convert to A-labels by IDNA2008 (UTS #46 non-transitional,
 *	libidn2).
 *
 *	On success *consumed is the length of the path including '>', and
 *	out holds:
 *	  local    the local part as written (quotes kept), for envelopes;
 *	  mailbox  the local part with quoting undone, for lookups;
 *	  domain   the domain lower-cased (address literals: as written,
 *	           with IPv6 tag lower-cased), "" for <> and <postmaster>;
 *	  ace      the domain as A-labels ("xn--..."), ASCII, which is the
 *	           only form that names a directory; equal to domain
 *	           when that is ASCII (and for literals);
 *	  utf8     true when the path held an 8-bit byte;
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
 *	addr_utf8_char() is the length (2 to 4) of the UTF-8 non-ASCII
 *	character at p, or 0 (ASCII, a bad sequence, a C1 control);
 *	addr_utf8_valid() tells whether p[0 .. len - 1] is all ASCII or good
 *	UTF-8. addr_domain_to_unicode() writes the U-label form of an
 *	A-label domain (or the domain itself when it has none), for display.
 *	addr_xtext_decode() decodes RFC 3461 xtext (DSN's ENVID and ORCPT)
 *	into a NUL-terminated string of printable ASCII; addr_xtext_encode()
 *	does the reverse. addr_utf8_xtext_valid() checks RFC 6533's
 *	utf-8-addr-xtext (unitext: also utf-8-addr-unitext, SMTPUTF8 only).
 * DIAGNOSTICS
 *	addr_parse_path() returns ADDR_OK or one of the errors below; out is
 *	then undefined.
 *	addr_xtext_decode() and addr_xtext_encode() return 0, or -1 (bad
 *	xtext, a decoded byte that is not printable ASCII, or dst too
 *	small; dst is then ""). addr_utf8_xtext_valid() returns 1 or 0.
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
#define ADDR_ALLOW_UTF8		0x04

enum addr_result {
	ADDR_OK = 0,
	ADDR_ESYNTAX,		/* not a path by the grammar */
	ADDR_ELOCAL_LONG,	/* local part over 64 octets */
	ADDR_EDOMAIN_LONG,	/* domain over 255 octets */
	ADDR_EPATH_LONG,	/* path over 256 octets */
	ADDR_ENULL,		/* <> where it is not allowed */
	ADDR_EIDNA,		/* a UTF-8 domain IDNA2008 refuses */
};

struct addr {
	char local[ADDR_LOCAL_MAX + 1];
	char mailbox[ADDR_LOCAL_MAX + 1];
	char domain[ADDR_DOMAIN_MAX + 1];
	char ace[ADDR_DOMAIN_MAX + 1];	/* domain as A-labels (ASCII) */
	int utf8;			/* an 8-bit byte appeared */
	int literal;
	int null;
	int postmaster;
};

enum addr_result addr_parse_path(const char *text, size_t len, int flags,
    struct addr *out, size_t *consumed);
int addr_format(const struct addr *a, char *dst, size_t dstlen);
int addr_domain_is_safe(const char *domain);
int addr_helo_valid(const char *name);
size_t addr_utf8_char(const char *p, size_t len);
int addr_utf8_valid(const char *p, size_t len);
int addr_domain_to_unicode(const char *ace, char *dst, size_t dstlen);
int addr_xtext_decode(const char *s, size_t len, char *dst, size_t dstlen);
int addr_xtext_encode(const char *s, char *dst, size_t dstlen);
int addr_utf8_xtext_valid(const char *s, size_t len, int unitext);
const char *addr_strerror(enum addr_result r);

#endif
