/*
 * NAME
 *	addr - RFC 5321 paths (reverse-path and forward-path)
 * SYNOPSIS
 *	#include "addr.h"
 *
 *	enum addr_result addr_parse_path(text, len, flags, out, consumed)
 *	int addr_format(a, dst, dstlen)
 *	int addr_domain_is_safe(domain)
 *	int addr_helo_valid(name)
 *	const char *addr_strerror(r)
 * DESCRIPTION
 *	addr_parse_path() parses the path at text[0] by the grammar of RFC
 *	5321 section 4.1.2 and reads no byte past text[len - 1]; the text
 *	need not be NUL-terminated. A source route is checked like any
 *	domain and then dropped: the route never decides where mail goes.
 *	The text after '>' is the caller's (ESMTP parameters).
 *
 *	addr_format() writes the addr-spec of a parsed path ("local@domain",
 *	"" for <>, the local part alone for <postmaster>).
 *
 *	addr_domain_is_safe() is the gate between the wire and the file
 *	system: only a lower-case LDH domain passes, never a literal, and
 *	never a name whose last label is a number (RFC 1123 2.1), which
 *	is an IPv4 address in disguise ("127.0.0.1", "2130706433",
 *	"0x7f000001": inet_aton(3) takes them all).
 *
 *	addr_helo_valid() is the gate between a HELO/EHLO argument and the
 *	Received: line and the log: a domain as above in any case, with
 *	underscores tolerated (real clients send host names like
 *	"my_pc") and one trailing dot (as Postfix tolerates it), or an
 *	address literal [IPv4] / [IPv6:...] whose address inet_pton()
 *	takes. A general literal [tag:text] names no host and is refused.
 *
 *	addr_strerror() gives a short English text for a result.
 * DIAGNOSTICS
 *	addr_parse_path() returns ADDR_OK, or an error with out cleared and
 *	*consumed 0. addr_format() returns 0, or -1 when dst is too small
 *	(dst then holds "" if it has room for that). addr_domain_is_safe()
 *	and addr_helo_valid() return 1 or 0.
 * LIMITS
 *	Local part 64 octets as written (quotes and backslashes count),
 *	domain 255, whole path 256 including "<", ">" and any source route
 *	(RFC 5321 4.5.3.1). A domain label is at most 63 octets (RFC 1035
 *	2.3.4); a longer one is a syntax error. Because "<", "@" and ">"
 *	count, a path can hold a domain of at most 253 octets. A HELO
 *	name is at most 255 octets, its trailing dot included.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define ADDR_LABEL_MAX	63

/*
 * The unparsed rest of the path. Every read goes through addr_peek(),
 * which is what keeps the parser inside text[0 .. len - 1].
 */
struct addr_cursor {
	const char *text;
	size_t len;
	size_t pos;
	int utf8;		/* ADDR_ALLOW_UTF8: UTF8-non-ascii may appear */
	int saw_8bit;		/* and did */
};

static int addr_peek(const struct addr_cursor *c);
static int addr_is_alpha(int ch);
static int addr_is_let_dig(int ch);
static int addr_is_atext(int ch);
static int addr_lower(int ch);
static int addr_match_nocase(const char *s, size_t len, const char *word);
static int addr_is_hex(int ch);
static int addr_label_is_numeric(const char *label, size_t len);
static size_t addr_peek_utf8(struct addr_cursor *c);
static enum addr_result addr_parse_domain(struct addr_cursor *c, char *dst);
static enum addr_result addr_make_ace(const char *domain, char *ace);
static int addr_hex_upper(int ch);
static enum addr_result addr_parse_route(struct addr_cursor *c);
static enum addr_result addr_parse_literal(struct addr_cursor *c, char *dst);
static enum addr_result addr_parse_local(struct addr_cursor *c,
    struct addr *out);

/* addr_peek - the byte at the cursor, or -1 at the end of the text */
static int
addr_peek(const struct addr_cursor *c)
{
	if (c->pos >= c->len)
		return -1;
	return (unsigned char)c->text[c->pos];
}

/*
 * addr_peek_utf8 - with ADDR_ALLOW_UTF8, the length of the UTF8-non-ascii
 * character at the cursor (RFC 6531), else 0
 */
static size_t
addr_peek_utf8(struct addr_cursor *c)
{
	size_t n;

	if (!c->utf8 || c->pos >= c->len)
		return 0;
	n = addr_utf8_char(c->text + c->pos, c->len - c->pos);
	if (n > 0)
		c->saw_8bit = 1;
	return n;
}

/*
 * The character classes are spelled out in ASCII instead of <ctype.h>,
 * whose answers depend on the locale and which would let 8-bit bytes in.
 */
static int
addr_is_alpha(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int
addr_is_let_dig(int ch)
{
	return addr_is_alpha(ch) || (ch >= '0' && ch <= '9');
}

/* addr_is_atext - RFC 5322 atext, the letters of a Dot-string atom */
static int
addr_is_atext(int ch)
{
	return addr_is_let_dig(ch) || (ch > 0 && strchr("!#$%&'*+-/=?^_`{|}~",
	    ch) != NULL);
}

static int
addr_lower(int ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch;
}

/* addr_match_nocase - whether s[0 .. len - 1] is word, ignoring ASCII case */
static int
addr_match_nocase(const char *s, size_t len, const char *word)
{
	size_t i;

	if (strlen(word) != len)
		return 0;
	for (i = 0; i < len; i++)
		if (addr_lower((unsigned char)s[i])
		    != addr_lower((unsigned char)word[i]))
			return 0;
	return 1;
}

static int
addr_is_hex(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')
	    || (ch >= 'A' && ch <= 'F');
}

/*
 * addr_label_is_numeric - whether a last label makes the name a number:
 * all decimal digits (octal too), or "0x" and hex digits, which is what
 * inet_aton(3) reads as the last part of an IPv4 address.
 */
static int
addr_label_is_numeric(const char *label, size_t len)
{
	size_t i = 0;

	if (len >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) {
		for (i = 2; i < len; i++)
			if (!addr_is_hex((unsigned char)label[i]))
				return 0;
		return 1;
	}
	for (i = 0; i < len; i++)
		if (label[i] < '0' || label[i] > '9')
			return 0;
	return len > 0;
}

/*
 * addr_parse_domain - Domain = sub-domain *("." sub-domain)
 *
 * Writes the domain lower-cased and NUL-terminated into dst, which has
 * room for ADDR_DOMAIN_MAX + 1 bytes. Stops at the first byte that
 * cannot continue a domain and leaves it to the caller; so a domain
 * followed by '/', '\\' or a NUL is refused there by what follows.
 */
static enum addr_result
addr_parse_domain(struct addr_cursor *c, char *dst)
{
	size_t n = 0, label = 0;
	int ch, prev = '.';

	size_t u;

	while ((ch = addr_peek(c)) >= 0) {
		if ((u = addr_peek_utf8(c)) > 0) {
			/* A U-label's octets; IDNA checks it in addr_make_ace(). */
			if ((label += u) > ADDR_LABEL_MAX)
				return ADDR_ESYNTAX;
			if (n + u > ADDR_DOMAIN_MAX)
				return ADDR_EDOMAIN_LONG;
			memcpy(dst + n, c->text + c->pos, u);
			n += u;
			c->pos += u;
			prev = 'a';
			continue;
		}
		if (ch == '.') {
			if (label == 0 || prev == '-')
				return ADDR_ESYNTAX;
			label = 0;
		} else if (addr_is_let_dig(ch) || ch == '-') {
			if (ch == '-' && label == 0)
				return ADDR_ESYNTAX;
			if (++label > ADDR_LABEL_MAX)
				return ADDR_ESYNTAX;
		} else {
			break;
		}
		if (n >= ADDR_DOMAIN_MAX)
			return ADDR_EDOMAIN_LONG;
		dst[n++] = (char)addr_lower(ch);
		prev = ch;
		c->pos++;
	}
	/* Empty domain, trailing dot or trailing hyphen. */
	if (label == 0 || prev == '-')
		return ADDR_ESYNTAX;
	dst[n] = '\0';
	return ADDR_OK;
}

/*
 * addr_parse_route - A-d-l ":" where A-d-l = At-domain *( "," At-domain )
 *
 * The cursor is at the first '@'. The route is checked as strictly as
 * the mailbox's domain and then forgotten (RFC 5321 appendix C: a
 * server SHOULD ignore it).
 */
static enum addr_result
addr_parse_route(struct addr_cursor *c)
{
	char scratch[ADDR_DOMAIN_MAX + 1];
	enum addr_result r;

	for (;;) {
		if (addr_peek(c) != '@')
			return ADDR_ESYNTAX;
		c->pos++;
		if ((r = addr_parse_domain(c, scratch)) != ADDR_OK)
			return r;
		switch (addr_peek(c)) {
		case ',':
			c->pos++;
			continue;
		case ':':
			c->pos++;
			return ADDR_OK;
		default:
			return ADDR_ESYNTAX;
		}
	}
}

/*
 * addr_parse_literal - address-literal = "[" ( IPv4 / "IPv6:" IPv6 /
 *	Standardized-tag ":" 1*dcontent ) "]"
 *
 * The cursor is at '['. dst gets the literal as written, brackets
 * included, with the IPv6 tag lower-cased. The addresses are checked
 * with inet_pton(), which takes no DNS name and no zone index. A tag
 * that spells IPv6 in any case is an IPv6 literal or nothing, so a bad
 * IPv6 address cannot slip through as a general literal.
 */
static enum addr_result
addr_parse_literal(struct addr_cursor *c, char *dst)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *content, *colon, *value;
	size_t start, clen, tlen, vlen, i;
	int ch;

	c->pos++;
	start = c->pos;
	/* dcontent: printable US-ASCII except "[", "\" and "]". */
	while ((ch = addr_peek(c)) >= 33 && ch <= 126 && ch != '['
	    && ch != '\\' && ch != ']') {
		if (c->pos - start + 3 > ADDR_DOMAIN_MAX)
			return ADDR_EDOMAIN_LONG;
		c->pos++;
	}
	if (addr_peek(c) != ']')
		return ADDR_ESYNTAX;
	content = c->text + start;
	clen = c->pos - start;
	c->pos++;
	if (clen == 0)
		return ADDR_ESYNTAX;

	if ((colon = memchr(content, ':', clen)) == NULL) {
		if (clen >= sizeof(ip))
			return ADDR_ESYNTAX;
		memcpy(ip, content, clen);
		ip[clen] = '\0';
		if (inet_pton(AF_INET, ip, bin) != 1)
			return ADDR_ESYNTAX;
		memcpy(dst, c->text + start - 1, clen + 2);
		dst[clen + 2] = '\0';
		return ADDR_OK;
	}

	tlen = (size_t)(colon - content);
	value = colon + 1;
	vlen = clen - tlen - 1;
	if (addr_match_nocase(content, tlen, "IPv6")) {
		if (vlen >= sizeof(ip))
			return ADDR_ESYNTAX;
		memcpy(ip, value, vlen);
		ip[vlen] = '\0';
		if (inet_pton(AF_INET6, ip, bin) != 1)
			return ADDR_ESYNTAX;
		memcpy(dst, "[ipv6:", 6);
		memcpy(dst + 6, value, vlen);
		memcpy(dst + 6 + vlen, "]", 2);
		return ADDR_OK;
	}

	/* Standardized-tag: a tag shaped like a domain label. */
	if (tlen == 0 || vlen == 0
	    || !addr_is_let_dig((unsigned char)content[0])
	    || !addr_is_let_dig((unsigned char)content[tlen - 1]))
		return ADDR_ESYNTAX;
	for (i = 0; i < tlen; i++)
		if (!addr_is_let_dig((unsigned char)content[i])
		    && content[i] != '-')
			return ADDR_ESYNTAX;
	memcpy(dst, c->text + start - 1, clen + 2);
	dst[clen + 2] = '\0';
	return ADDR_OK;
}

/*
 * addr_parse_local - Local-part = Dot-string / Quoted-string
 *
 * out->local gets the local part as written, out->mailbox the same with
 * the quotes and quoted-pair backslashes taken away. Only printable
 * ASCII and, inside quotes, the space are accepted (qtextSMTP,
 * quoted-pairSMTP): no TAB, CR, LF, NUL or 8-bit byte even when quoted.
 */
static enum addr_result
addr_parse_local(struct addr_cursor *c, struct addr *out)
{
	size_t n = 0, m = 0, u;
	int ch, prev = '.';

	if (addr_peek(c) == '"') {
		out->local[n++] = '"';
		c->pos++;
		for (;;) {
			if ((ch = addr_peek(c)) < 0)
				return ADDR_ESYNTAX;
			if ((u = addr_peek_utf8(c)) > 0) {
				if (n + u > ADDR_LOCAL_MAX)
					return ADDR_ELOCAL_LONG;
				memcpy(out->local + n, c->text + c->pos, u);
				memcpy(out->mailbox + m, c->text + c->pos, u);
				n += u;
				m += u;
				c->pos += u;
				continue;
			}
			c->pos++;
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (n >= ADDR_LOCAL_MAX)
					return ADDR_ELOCAL_LONG;
				out->local[n++] = '\\';
				if ((ch = addr_peek(c)) < 32 || ch > 126)
					return ADDR_ESYNTAX;
				c->pos++;
			} else if (ch < 32 || ch > 126) {
				return ADDR_ESYNTAX;
			}
			if (n >= ADDR_LOCAL_MAX)
				return ADDR_ELOCAL_LONG;
			out->local[n++] = (char)ch;
			out->mailbox[m++] = (char)ch;
		}
		if (n >= ADDR_LOCAL_MAX)
			return ADDR_ELOCAL_LONG;
		out->local[n++] = '"';
	} else {
		while ((ch = addr_peek(c)) >= 0) {
			if ((u = addr_peek_utf8(c)) > 0) {
				if (n + u > ADDR_LOCAL_MAX)
					return ADDR_ELOCAL_LONG;
				memcpy(out->local + n, c->text + c->pos, u);
				memcpy(out->mailbox + m, c->text + c->pos, u);
				n += u;
				m += u;
				c->pos += u;
				prev = 'a';
				continue;
			}
			if (ch == '.') {
				if (prev == '.')
					return ADDR_ESYNTAX;
			} else if (!addr_is_atext(ch)) {
				break;
			}
			if (n >= ADDR_LOCAL_MAX)
				return ADDR_ELOCAL_LONG;
			out->local[n++] = (char)ch;
			out->mailbox[m++] = (char)ch;
			prev = ch;
			c->pos++;
		}
		/* Empty local part or trailing dot. */
		if (prev == '.')
			return ADDR_ESYNTAX;
	}
	out->local[n] = '\0';
	out->mailbox[m] = '\0';
	return ADDR_OK;
}

/*
 * addr_parse_path - parse "<" [ A-d-l ":" ] Mailbox ">", or "<>", or
 *	"<postmaster>"
 *
 * flags: ADDR_ALLOW_NULL accepts "<>" (else ADDR_ENULL); and
 * ADDR_ALLOW_POSTMASTER accepts "<postmaster>" in any case without a
 * domain (else it is a mailbox without '@', ADDR_ESYNTAX). A path that
 * does not start with '<' is ADDR_ESYNTAX: the brackets are required.
 * The length limits are checked as the parts are read, the whole path
 * once '>' is found, so the most specific error is the one returned.
 */
enum addr_result
addr_parse_path(const char *text, size_t len, int flags, struct addr *out,
    size_t *consumed)
{
	struct addr_cursor cur = { text, len, 0, (flags & ADDR_ALLOW_UTF8) != 0,
	    0 };
	enum addr_result r;

	memset(out, 0, sizeof(*out));
	if (consumed != NULL)
		*consumed = 0;
	r = ADDR_ESYNTAX;
	if (text == NULL || addr_peek(&cur) != '<')
		goto fail;
	cur.pos++;

	if (addr_peek(&cur) == '>') {
		if (!(flags & ADDR_ALLOW_NULL)) {
			r = ADDR_ENULL;
			goto fail;
		}
		cur.pos++;
		out->null = 1;
		goto done;
	}

	if ((flags & ADDR_ALLOW_POSTMASTER) && len >= 12
	    && addr_match_nocase(text + 1, 10, "postmaster")
	    && text[11] == '>') {
		memcpy(out->local, text + 1, 10);
		memcpy(out->mailbox, text + 1, 10);
		cur.pos = 12;
		out->postmaster = 1;
		goto done;
	}

	if (addr_peek(&cur) == '@' && (r = addr_parse_route(&cur)) != ADDR_OK)
		goto fail;
	if ((r = addr_parse_local(&cur, out)) != ADDR_OK)
		goto fail;
	r = ADDR_ESYNTAX;
	if (addr_peek(&cur) != '@')
		goto fail;
	cur.pos++;
	if (addr_peek(&cur) == '[') {
		r = addr_parse_literal(&cur, out->domain);
		out->literal = 1;
	} else {
		r = addr_parse_domain(&cur, out->domain);
	}
	if (r != ADDR_OK)
		goto fail;
	if (out->literal)
		memcpy(out->ace, out->domain, sizeof(out->ace));
	else if ((r = addr_make_ace(out->domain, out->ace)) != ADDR_OK)
		goto fail;
	r = ADDR_ESYNTAX;
	if (addr_peek(&cur) != '>')
		goto fail;
	cur.pos++;

done:
	r = ADDR_EPATH_LONG;
	if (cur.pos > ADDR_PATH_MAX)
		goto fail;
	out->utf8 = cur.saw_8bit;
	if (consumed != NULL)
		*consumed = cur.pos;
	return ADDR_OK;

fail:
	/* Nobody may act on half a parse. */
	memset(out, 0, sizeof(*out));
	return r;
}

/*
 * addr_make_ace - the A-label form of a parsed domain: the domain itself
 * when it is ASCII, else IDNA2008 (UTS #46 non-transitional mapping,
 * which also folds case, as Postfix and browsers do) through libidn2,
 * and then it must pass addr_domain_is_safe() like any domain.
 */
static enum addr_result
addr_make_ace(const char *domain, char *ace)
{
	const char *p;
	char *out = NULL;
	size_t n;

	for (p = domain; *p != '\0' && (unsigned char)*p < 0x80; p++)
		;
	if (*p == '\0') {
		memcpy(ace, domain, strlen(domain) + 1);
		return ADDR_OK;
	}
	if (idn2_to_ascii_8z(domain, &out, IDN2_NFC_INPUT
	    | IDN2_NONTRANSITIONAL) != IDN2_OK || out == NULL)
		goto fail;
	if ((n = strlen(out)) > ADDR_DOMAIN_MAX || !addr_domain_is_safe(out))
		goto fail;
	memcpy(ace, out, n + 1);
	idn2_free(out);
	return ADDR_OK;

fail:
	idn2_free(out);
	return ADDR_EIDNA;
}

/*
 * addr_utf8_char - the length of the UTF8-non-ascii character (RFC 3629
 * UTF8-2 / UTF8-3 / UTF8-4) at p, reading no more than len bytes; 0
 * when there is none: an ASCII byte, a bad or cut sequence, an overlong
 * form, a surrogate, a code point over U+10FFFF, or a C1 control
 * (U+0080 .. U+009F, which would act on a terminal).
 */
size_t
addr_utf8_char(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned long cp;
	size_t n, i;

	if (len == 0 || u[0] < 0xc2 || u[0] > 0xf4)
		return 0;
	n = u[0] >= 0xf0 ? 4 : u[0] >= 0xe0 ? 3 : 2;
	if (len < n)
		return 0;
	cp = u[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
	for (i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (u[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
	    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
		return 0;
	return n;
}

/* addr_utf8_valid - every byte of p[0 .. len - 1] ASCII or good UTF-8 */
int
addr_utf8_valid(const char *p, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((unsigned char)p[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = addr_utf8_char(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/*
 * addr_domain_to_unicode - the U-label form of an A-label domain, for
 * people to read; the domain itself when it holds no A-label or is not
 * a valid one
 */
int
addr_domain_to_unicode(const char *ace, char *dst, size_t dstlen)
{
	char *out = NULL;
	int n;

	if (dstlen == 0)
		return -1;
	if (strstr(ace, "xn--") == NULL
	    || idn2_to_unicode_8z8z(ace, &out, 0) != IDN2_OK || out == NULL
	    || !addr_utf8_valid(out, strlen(out))) {
		idn2_free(out);
		out = NULL;
	}
	n = snprintf(dst, dstlen, "%s", out != NULL ? out : ace);
	idn2_free(out);
	if (n < 0 || (size_t)n >= dstlen) {
		dst[0] = '\0';
		return -1;
	}
	return 0;
}

/* addr_hex_upper - the value of an upper-case hex digit, or -1 */
static int
addr_hex_upper(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * addr_xtext_decode - RFC 3461 xtext: xchar is "!" to "~" but "+" and
 * "=", hexchar "+" and two upper-case hex digits. Writes the decoded
 * text, NUL-terminated, to dst; a decoded byte outside printable ASCII
 * (SP to "~") is refused too: DSN's texts are addresses and IDs.
 */
int
addr_xtext_decode(const char *s, size_t len, char *dst, size_t dstlen)
{
	size_t i, o = 0;
	int hi, lo, ch;

	if (dstlen == 0)
		return -1;
	for (i = 0; i < len; i++) {
		ch = (unsigned char)s[i];
		if (ch == '+') {
			if (i + 2 >= len || (hi = addr_hex_upper((unsigned char)
			    s[i + 1])) < 0 || (lo = addr_hex_upper((unsigned char)
			    s[i + 2])) < 0)
				goto fail;
			ch = hi * 16 + lo;
			i += 2;
		} else if (ch < '!' || ch > '~' || ch == '=') {
			goto fail;
		}
		if (ch < ' ' || ch > '~' || o + 1 >= dstlen)
			goto fail;
		dst[o++] = (char)ch;
	}
	dst[o] = '\0';
	return 0;

fail:
	dst[0] = '\0';
	return -1;
}

/*
 * addr_xtext_encode - s as xtext: "+", "=" and every byte outside "!"
 * to "~" as "+HH"
 */
int
addr_xtext_encode(const char *s, char *dst, size_t dstlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char ch;

	for (; (ch = (unsigned char)*s) != '\0'; s++) {
		if (ch >= '!' && ch <= '~' && ch != '+' && ch != '=') {
			if (o + 1 >= dstlen)
				goto fail;
			dst[o++] = (char)ch;
			continue;
		}
		if (o + 3 >= dstlen)
			goto fail;
		dst[o++] = '+';
		dst[o++] = hex[ch >> 4];
		dst[o++] = hex[ch & 15];
	}
	if (dstlen == 0)
		return -1;
	dst[o] = '\0';
	return 0;

fail:
	if (dstlen > 0)
		dst[0] = '\0';
	return -1;
}

/*
 * addr_utf8_xtext_valid - RFC 6533: utf-8-addr-xtext is QCHAR ("!" to
 * "~" but "+", "=" and "\\") and EmbeddedUnicodeChar "\x{HEXPOINT}" (2
 * to 6 upper-case hex digits naming a Unicode scalar value: no
 * surrogate, nothing over U+10FFFF); utf-8-addr-unitext (unitext set)
 * also takes UTF-8 characters.
 */
int
addr_utf8_xtext_valid(const char *s, size_t len, int unitext)
{
	unsigned long cp;
	size_t i = 0, k, n;
	int d;

	if (len == 0)
		return 0;
	while (i < len) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\\') {
			if (i + 3 >= len || s[i + 1] != 'x' || s[i + 2] != '{')
				return 0;
			cp = 0;
			for (k = i + 3; k < len && s[k] != '}'; k++) {
				if ((d = addr_hex_upper((unsigned char)s[k])) < 0
				    || k - i - 3 >= 6)
					return 0;
				cp = cp * 16 + (unsigned long)d;
			}
			if (k >= len || k - i - 3 < 2 || cp > 0x10ffff
			    || (cp >= 0xd800 && cp <= 0xdfff))
				return 0;
			i = k + 1;
		} else if (ch >= '!' && ch <= '~' && ch != '+' && ch != '=') {
			i++;
		} else if (unitext && ch >= 0x80
		    && (n = addr_utf8_char(s + i, len - i)) > 0) {
			i += n;
		} else {
			return 0;
		}
	}
	return 1;
}

int
addr_format(const struct addr *a, char *dst, size_t dstlen)
{
	int n;

	if (dstlen == 0)
		return -1;
	if (a->null)
		n = snprintf(dst, dstlen, "%s", "");
	else if (a->domain[0] == '\0')
		n = snprintf(dst, dstlen, "%s", a->local);
	else
		n = snprintf(dst, dstlen, "%s@%s", a->local, a->domain);
	if (n < 0 || (size_t)n >= dstlen) {
		dst[0] = '\0';
		return -1;
	}
	return 0;
}

/*
 * addr_domain_is_safe - may this domain name a directory?
 *
 * Stricter than the parser on purpose: it sees the lower-cased result
 * and accepts only [a-z0-9-] labels of 1 to 63 octets, not starting or
 * ending with '-', joined by single dots, 255 octets at most, the last
 * one not a number. So no literal, no '/', '\\', "..", leading or
 * trailing dot, upper case, space, byte outside ASCII or IPv4 address
 * without its brackets can ever become a path component.
 */
int
addr_domain_is_safe(const char *domain)
{
	size_t n, label = 0, start = 0;
	int ch, prev = '.';

	if (domain == NULL || domain[0] == '\0')
		return 0;
	for (n = 0; (ch = (unsigned char)domain[n]) != '\0'; n++) {
		if (n >= ADDR_DOMAIN_MAX)
			return 0;
		if (ch == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
		    || ch == '-') {
			if (ch == '-' && label == 0)
				return 0;
			if (label++ == 0)
				start = n;
			if (label > ADDR_LABEL_MAX)
				return 0;
		} else {
			return 0;
		}
		prev = ch;
	}
	if (label == 0 || prev == '-')
		return 0;
	return !addr_label_is_numeric(domain + start, label);
}

/*
 * addr_helo_valid - may this HELO/EHLO argument go into Received:?
 *
 * The name must be whole: the caller has already taken away the blanks
 * that end a command line, and anything else (a second word, a ';', a
 * control byte) refuses it.
 */
int
addr_helo_valid(const char *name)
{
	struct addr_cursor c;
	char literal[ADDR_DOMAIN_MAX + 1];
	size_t i, n, label = 0, start = 0;
	int ch, prev = '.';

	if (name == NULL || (n = strlen(name)) == 0 || n > ADDR_DOMAIN_MAX)
		return 0;
	if (name[0] == '[') {
		c.text = name;
		c.len = n;
		c.pos = 0;
		if (addr_parse_literal(&c, literal) != ADDR_OK || c.pos != n)
			return 0;
		/* [IPv4] has no ':'; the IPv6 tag comes back lower-cased. */
		return strchr(literal, ':') == NULL
		    || strncmp(literal, "[ipv6:", 6) == 0;
	}
	if (name[n - 1] == '.')
		n--;
	for (i = 0; i < n; i++) {
		ch = (unsigned char)name[i];
		if (ch == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if (addr_is_let_dig(ch) || ch == '-' || ch == '_') {
			if (ch == '-' && label == 0)
				return 0;
			if (label++ == 0)
				start = i;
			if (label > ADDR_LABEL_MAX)
				return 0;
		} else {
			return 0;
		}
		prev = ch;
	}
	if (label == 0 || prev == '-')
		return 0;
	return !addr_label_is_numeric(name + start, label);
}

const char *
addr_strerror(enum addr_result r)
{
	switch (r) {
	case ADDR_OK:
		return "ok";
	case ADDR_ESYNTAX:
		return "syntax error in path";
	case ADDR_ELOCAL_LONG:
		return "local part longer than 64 octets";
	case ADDR_EDOMAIN_LONG:
		return "domain longer than 255 octets";
	case ADDR_EPATH_LONG:
		return "path longer than 256 octets";
	case ADDR_ENULL:
		return "null path not allowed here";
	case ADDR_EIDNA:
		return "not a valid internationalized domain name";
	}
	return "unknown address error";
}
