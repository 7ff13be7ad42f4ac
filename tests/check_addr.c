/*
 * NAME
 *	check_addr - Check suite of the RFC 5321 path parser (lib/addr.c)
 * SYNOPSIS
 *	tests/check_addr
 * DESCRIPTION
 *	Valid paths (dot-strings, quoted local parts, source routes, address
 *	literals, case folding, the 64/255/256 limits exactly) and hostile
 *	ones (over-long by one, empty labels, dots and hyphens at the edges,
 *	NUL, CR, LF, 8-bit bytes, spaces, path tricks meant to reach a
 *	remote domain or the file system), addr_domain_is_safe() as the gate
 *	to directory names (numeric "domains" such as 127.0.0.1, 2130706433
 *	and 0x7f000001 refused), addr_helo_valid() as the gate between a
 *	HELO/EHLO argument and Received:, addr_format() and addr_strerror().
 *
 *	Every parse gets its text in a heap block of exactly len bytes
 *	without a NUL, so a read past the end shows under valgrind and
 *	AddressSanitizer.
 * DIAGNOSTICS
 *	Exit status 0 when every test passes.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define ANY	(ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER)
/* A literal with a NUL inside, and its length up to the last byte. */
#define NUL_TEXT(s)	(s), sizeof(s) - 1

/*
 * One parse and what it must give. len 0 means strlen(text); consumed 0
 * means the whole text. For errors only want is compared.
 */
struct path_case {
	const char *text;
	size_t len;
	int flags;
	enum addr_result want;
	const char *local;
	const char *mailbox;
	const char *domain;
	int literal;
	size_t consumed;
};

static const struct path_case path_cases[] = {
	/* Plain mailboxes. */
	{"<alice@example.org>", 0, 0, ADDR_OK, "alice", "alice", "example.org", 0, 0},
	{"<a@b>", 0, 0, ADDR_OK, "a", "a", "b", 0, 0},
	{"<first.last@sub.example.org>", 0, 0, ADDR_OK, "first.last", "first.last", "sub.example.org", 0, 0},
	{"<User.Name@Example.ORG>", 0, 0, ADDR_OK, "User.Name", "User.Name", "example.org", 0, 0},
	{"<a+tag@a-b.example>", 0, 0, ADDR_OK, "a+tag", "a+tag", "a-b.example", 0, 0},
	{"<x@xn--bcher-kva.example>", 0, 0, ADDR_OK, "x", "x", "xn--bcher-kva.example", 0, 0},
	{"<!#$%&'*+-/=?^_`{|}~@example.org>", 0, 0, ADDR_OK, "!#$%&'*+-/=?^_`{|}~", "!#$%&'*+-/=?^_`{|}~", "example.org", 0, 0},
	{"<u@123.example>", 0, 0, ADDR_OK, "u", "u", "123.example", 0, 0},
	{"<u@localhost>", 0, 0, ADDR_OK, "u", "u", "localhost", 0, 0},
	/* The rest of the line is the caller's: ESMTP parameters. */
	{"<a@b> SIZE=100 BODY=8BITMIME", 0, 0, ADDR_OK, "a", "a", "b", 0, 5},
	{"<a@b>>", 0, 0, ADDR_OK, "a", "a", "b", 0, 5},
	{"<a@b>\r\n", 0, 0, ADDR_OK, "a", "a", "b", 0, 5},

	/* Quoted local parts: local as written, mailbox unquoted. */
	{"<\"john doe\"@example.org>", 0, 0, ADDR_OK, "\"john doe\"", "john doe", "example.org", 0, 0},
	{"<\"a\\\"b\"@example.org>", 0, 0, ADDR_OK, "\"a\\\"b\"", "a\"b", "example.org", 0, 0},
	{"<\"a\\\\b\"@example.org>", 0, 0, ADDR_OK, "\"a\\\\b\"", "a\\b", "example.org", 0, 0},
	{"<\"\\a\\ b\"@example.org>", 0, 0, ADDR_OK, "\"\\a\\ b\"", "a b", "example.org", 0, 0},
	{"<\"a.b\"@example.org>", 0, 0, ADDR_OK, "\"a.b\"", "a.b", "example.org", 0, 0},
	{"<\"..\"@example.org>", 0, 0, ADDR_OK, "\"..\"", "..", "example.org", 0, 0},
	{"<\"\"@example.org>", 0, 0, ADDR_OK, "\"\"", "", "example.org", 0, 0},
	{"<\"a>b\"@c> X=1", 0, 0, ADDR_OK, "\"a>b\"", "a>b", "c", 0, 9},

	/* Source routes: checked, then dropped. */
	{"<@a,@b:u@d>", 0, 0, ADDR_OK, "u", "u", "d", 0, 0},
	{"<@relay.example:u@Dest.Example>", 0, 0, ADDR_OK, "u", "u", "dest.example", 0, 0},
	{"<@a:u@[1.2.3.4]>", 0, 0, ADDR_OK, "u", "u", "[1.2.3.4]", 1, 0},

	/* Address literals. */
	{"<u@[1.2.3.4]>", 0, 0, ADDR_OK, "u", "u", "[1.2.3.4]", 1, 0},
	{"<u@[0.0.0.0]>", 0, 0, ADDR_OK, "u", "u", "[0.0.0.0]", 1, 0},
	{"<u@[255.255.255.255]>", 0, 0, ADDR_OK, "u", "u", "[255.255.255.255]", 1, 0},
	{"<u@[IPv6:::1]>", 0, 0, ADDR_OK, "u", "u", "[ipv6:::1]", 1, 0},
	{"<u@[ipv6:2001:DB8::1]>", 0, 0, ADDR_OK, "u", "u", "[ipv6:2001:DB8::1]", 1, 0},
	{"<u@[IPV6:::ffff:192.0.2.1]>", 0, 0, ADDR_OK, "u", "u", "[ipv6:::ffff:192.0.2.1]", 1, 0},
	{"<u@[IPv6:2001:db8:0:0:0:0:0:1]>", 0, 0, ADDR_OK, "u", "u", "[ipv6:2001:db8:0:0:0:0:0:1]", 1, 0},
	{"<u@[x-tag:any.Thing]>", 0, 0, ADDR_OK, "u", "u", "[x-tag:any.Thing]", 1, 0},
	{"<u@[x-tag:../../etc]>", 0, 0, ADDR_OK, "u", "u", "[x-tag:../../etc]", 1, 0},

	/* Null path and postmaster. */
	{"<>", 0, ADDR_ALLOW_NULL, ADDR_OK, "", "", "", 0, 0},
	{"<> SIZE=10", 0, ANY, ADDR_OK, "", "", "", 0, 2},
	{"<>", 0, 0, ADDR_ENULL, NULL, NULL, NULL, 0, 0},
	{"<>", 0, ADDR_ALLOW_POSTMASTER, ADDR_ENULL, NULL, NULL, NULL, 0, 0},
	{"<postmaster>", 0, ADDR_ALLOW_POSTMASTER, ADDR_OK, "postmaster", "postmaster", "", 0, 0},
	{"<PostMaster> NOTIFY=NEVER", 0, ANY, ADDR_OK, "PostMaster", "PostMaster", "", 0, 12},
	{"<postmaster@Example.org>", 0, ANY, ADDR_OK, "postmaster", "postmaster", "example.org", 0, 0},
	{"<postmaster>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<postmaster>", 0, ADDR_ALLOW_NULL, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<postmasterx>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<postmaste>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<postmaster >", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<postmaster", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"postmaster\">", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a:postmaster>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Relay tricks: all parse, none names a remote domain. */
	{"<x%remote@local>", 0, 0, ADDR_OK, "x%remote", "x%remote", "local", 0, 0},
	{"<remote!x@local>", 0, 0, ADDR_OK, "remote!x", "remote!x", "local", 0, 0},
	{"<\"x@remote\"@local>", 0, 0, ADDR_OK, "\"x@remote\"", "x@remote", "local", 0, 0},
	{"<@local:x@remote>", 0, 0, ADDR_OK, "x", "x", "remote", 0, 0},
	{"<x@remote@local>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Brackets. */
	{"alice@example.org", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"alice@example.org>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{" <a@b>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@b", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@b.example", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a@b>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<<a@b>>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@b)", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	/* The '>' is past len: the parser must not see it. */
	{"<a@b>", 4, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<>", 1, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<postmaster>", 11, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* No '@', empty parts. */
	{"<alice>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@example.org>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<alice@>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Dots and hyphens in the wrong places. */
	{"<a..b@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<.a@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a.@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<.@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@a..b>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@.example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example.org.>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@.>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@..>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@-example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example-.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example.-org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example.org->", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@->", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* File system tricks in the domain. */
	{"<a@../etc>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example.org/../../etc>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@..%2f>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@a/b>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@/etc>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@a\\b>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@a_b.example>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@a:b>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a\\b@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Spaces outside quotes. */
	{"<a b@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"< a@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example.org >", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a @example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@ example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a\t@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\tb\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* NUL, CR, LF anywhere (len given, so the NUL is inside the text). */
	{NUL_TEXT("<a\0b@example.org>"), 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<ab@exa\0mple.org>"), 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<ab@example.org\0>"), 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<\0>"), ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<\"a\0b\"@example.org>"), 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<\"a\\\0\"@example.org>"), 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<u@[1.2.3.4\0]>"), 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{NUL_TEXT("<postmaster\0>"), ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a\r@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@example.org\r\n>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a\n@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@exam\nple.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\r\nb\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\\\r\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\\\n\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a\x7f@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\x7f\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* 8-bit bytes anywhere. */
	{"<j\xc3\xbcrgen@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@b\xc3\xbc" "cher.example>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"j\xc3\xbcrgen\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\\\xff\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a@[1.2.3.4\xff]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\xff>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Quoted strings that do not close or quote nothing. */
	{"<\"abc@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"abc\\\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\"b@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<a\"b\"@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<\"a\".b@example.org>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Bad source routes. */
	{"<@a:>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a,b:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a;@b:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a,:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a@b>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a::u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a..b:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@../x:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@[1.2.3.4]:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a, @b:u@d>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<@a:<>>", 0, ANY, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},

	/* Bad address literals. */
	{"<u@[300.1.1.1]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1.2.3]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1.2.3.4.5]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1.2.3.4.]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[localhost]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[example.org]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1234567890123456789]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[IPv6:zz]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[IPv6:]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[IPv6:1.2.3.4]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[IPv6:fe80::1%eth0]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[::1]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1.2.3.4>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1.2.3.4]x>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[1.2.3.4].example>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[ 1.2.3.4]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[[1.2.3.4]]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@x.[1.2.3.4]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[x-tag:]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[:x]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[-x:y]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[x-:y]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[x_y:z]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[x-tag:a\\b]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[x-tag:a[b]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
	{"<u@[x-tag:a b]>", 0, 0, ADDR_ESYNTAX, NULL, NULL, NULL, 0, 0},
};

static char *
dup_exact(const char *text, size_t len)
{
	/* malloc(0) may return NULL; keep one byte that is never read. */
	char *p = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, text, len);
	return p;
}

/* parse - addr_parse_path on a copy of exactly len bytes */
static enum addr_result
parse(const char *text, size_t len, int flags, struct addr *out,
    size_t *consumed)
{
	char *copy = dup_exact(text, len);
	enum addr_result r;

	r = addr_parse_path(copy, len, flags, out, consumed);
	free(copy);
	return r;
}

static enum addr_result
parse_str(const char *text, int flags, struct addr *out, size_t *consumed)
{
	return parse(text, strlen(text), flags, out, consumed);
}

/* Strings of one repeated letter and domains of a given length. */
static void
fill(char *dst, char ch, size_t n)
{
	memset(dst, ch, n);
	dst[n] = '\0';
}

/*
 * make_domain - a valid domain of exactly n octets: labels of 63
 * letters, the last one shorter, never an empty label.
 */
static void
make_domain(char *dst, size_t n)
{
	size_t take;

	while (n > 0) {
		if (n <= 63) {
			memset(dst, 'd', n);
			dst += n;
			break;
		}
		take = n - 2 >= 63 ? 63 : n - 2;
		memset(dst, 'd', take);
		dst[take] = '.';
		dst += take + 1;
		n -= take + 1;
	}
	*dst = '\0';
}

START_TEST(test_path_table)
{
	const struct path_case *t = &path_cases[_i];
	size_t len = t->len ? t->len : strlen(t->text);
	struct addr a;
	size_t consumed = 12345;
	enum addr_result r;

	r = parse(t->text, len, t->flags, &a, &consumed);
	ck_assert_msg(r == t->want, "case %d %s: got %s, want %s", _i,
	    t->text, addr_strerror(r), addr_strerror(t->want));
	if (t->want != ADDR_OK) {
		ck_assert_uint_eq(consumed, 0);
		ck_assert_str_eq(a.domain, "");
		ck_assert_str_eq(a.local, "");
		return;
	}
	ck_assert_uint_eq(consumed, t->consumed ? t->consumed : len);
	ck_assert_str_eq(a.local, t->local);
	ck_assert_str_eq(a.mailbox, t->mailbox);
	ck_assert_str_eq(a.domain, t->domain);
	ck_assert_int_eq(a.literal, t->literal);
	ck_assert_int_eq(a.null, strcmp(t->text, "<>") == 0
	    || strncmp(t->text, "<> ", 3) == 0);
	ck_assert_int_eq(a.postmaster, t->domain[0] == '\0' && t->local[0] != '\0');
	/* A parsed domain names a directory exactly when it is a real one. */
	ck_assert_int_eq(addr_domain_is_safe(a.domain),
	    !a.literal && a.domain[0] != '\0');
}
END_TEST

START_TEST(test_consumed_may_be_null)
{
	struct addr a;

	ck_assert_int_eq(parse("<a@b> X", 7, 0, &a, NULL), ADDR_OK);
	ck_assert_str_eq(a.domain, "b");
	ck_assert_int_eq(addr_parse_path(NULL, 0, ANY, &a, NULL), ADDR_ESYNTAX);
}
END_TEST

/* Limits: exactly at the limit passes, one more octet fails. */
START_TEST(test_local_64)
{
	char local[80], path[128];
	struct addr a;
	size_t consumed;

	fill(local, 'l', 64);
	snprintf(path, sizeof(path), "<%s@example.org>", local);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed), ADDR_OK);
	ck_assert_str_eq(a.local, local);
	ck_assert_uint_eq(consumed, strlen(path));

	fill(local, 'l', 65);
	snprintf(path, sizeof(path), "<%s@example.org>", local);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed),
	    ADDR_ELOCAL_LONG);
}
END_TEST

START_TEST(test_quoted_local_64)
{
	char local[80], path[128];
	struct addr a;

	/* 62 letters in quotes: 64 octets as written. */
	fill(local, 'q', 62);
	snprintf(path, sizeof(path), "<\"%s\"@example.org>", local);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_OK);
	ck_assert_uint_eq(strlen(a.local), 64);
	ck_assert_str_eq(a.mailbox, local);

	fill(local, 'q', 63);
	snprintf(path, sizeof(path), "<\"%s\"@example.org>", local);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_ELOCAL_LONG);

	/* Backslashes count as written: 30 quoted pairs + 2 = 62, +2 = 64. */
	snprintf(path, sizeof(path), "<\"%s\\a\"@example.org>",
	    "\\a\\b\\c\\d\\e\\f\\g\\h\\i\\j\\k\\l\\m\\n\\o\\p\\q\\r\\s\\t\\u\\v\\w\\x\\y\\z\\0\\1\\2\\3");
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_OK);
	ck_assert_uint_eq(strlen(a.local), 64);
	ck_assert_str_eq(a.mailbox, "abcdefghijklmnopqrstuvwxyz0123a");

	/* The same and one more letter: 65. */
	snprintf(path, sizeof(path), "<\"%s\\ab\"@example.org>",
	    "\\a\\b\\c\\d\\e\\f\\g\\h\\i\\j\\k\\l\\m\\n\\o\\p\\q\\r\\s\\t\\u\\v\\w\\x\\y\\z\\0\\1\\2\\3");
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_ELOCAL_LONG);
}
END_TEST

START_TEST(test_label_63)
{
	char label[80], path[128];
	struct addr a;

	fill(label, 'x', 63);
	snprintf(path, sizeof(path), "<u@%s.example>", label);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_OK);
	ck_assert_int_eq(addr_domain_is_safe(a.domain), 1);

	fill(label, 'x', 64);
	snprintf(path, sizeof(path), "<u@%s.example>", label);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_ESYNTAX);
}
END_TEST

/*
 * The path limit (256 with "<", "@" and ">") is tighter than local 64 +
 * domain 255, so a 255-octet domain parses as a domain but not as a path.
 */
START_TEST(test_path_256)
{
	char domain[300], path[400];
	struct addr a;
	size_t consumed;

	/* "<" + "u" + "@" + 252 + ">" = 256 */
	make_domain(domain, 252);
	snprintf(path, sizeof(path), "<u@%s> SIZE=1", domain);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed), ADDR_OK);
	ck_assert_uint_eq(consumed, 256);
	ck_assert_str_eq(a.domain, domain);
	ck_assert_int_eq(addr_domain_is_safe(a.domain), 1);

	make_domain(domain, 253);
	snprintf(path, sizeof(path), "<u@%s>", domain);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed),
	    ADDR_EPATH_LONG);
	ck_assert_uint_eq(consumed, 0);

	/* A long local part with a long domain. */
	make_domain(domain, 256 - 3 - 64);
	snprintf(path, sizeof(path), "<%064d@%s>", 0, domain);
	ck_assert_uint_eq(strlen(path), 256);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed), ADDR_OK);
	ck_assert_uint_eq(consumed, 256);
	make_domain(domain, 256 - 3 - 64 + 1);
	snprintf(path, sizeof(path), "<%064d@%s>", 0, domain);
	ck_assert_uint_eq(strlen(path), 257);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EPATH_LONG);
}
END_TEST

START_TEST(test_domain_255)
{
	char domain[300], path[400];
	struct addr a;

	make_domain(domain, 255);
	ck_assert_uint_eq(strlen(domain), 255);
	snprintf(path, sizeof(path), "<u@%s>", domain);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EPATH_LONG);
	ck_assert_int_eq(addr_domain_is_safe(domain), 1);

	make_domain(domain, 256);
	ck_assert_uint_eq(strlen(domain), 256);
	snprintf(path, sizeof(path), "<u@%s>", domain);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EDOMAIN_LONG);
	ck_assert_int_eq(addr_domain_is_safe(domain), 0);

	/* A route domain is held to the same limit. */
	snprintf(path, sizeof(path), "<@%s:u@d>", domain);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EDOMAIN_LONG);
}
END_TEST

START_TEST(test_route_counts_in_path)
{
	char path[400];
	struct addr a;
	size_t n, consumed;
	int k;

	/* "<" + 82 * "@a," (246) + "@a:" + local + "@d>": 256 - 6 - 247 = 3 */
	n = (size_t)snprintf(path, sizeof(path), "<");
	for (k = 0; k < 82; k++)
		n += (size_t)snprintf(path + n, sizeof(path) - n, "@a,");
	snprintf(path + n, sizeof(path) - n, "@a:uvw@d>");
	ck_assert_uint_eq(strlen(path), 256);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed), ADDR_OK);
	ck_assert_uint_eq(consumed, 256);
	ck_assert_str_eq(a.local, "uvw");
	ck_assert_str_eq(a.domain, "d");

	snprintf(path + n, sizeof(path) - n, "@a:uvwx@d>");
	ck_assert_uint_eq(strlen(path), 257);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, &consumed),
	    ADDR_EPATH_LONG);
	ck_assert_uint_eq(consumed, 0);
}
END_TEST

START_TEST(test_literal_long)
{
	char path[700], content[600];
	struct addr a;

	/* A general literal of 253 + 2 octets fits the domain; one more does not. */
	fill(content, 'v', 253 - 6);
	snprintf(path, sizeof(path), "<u@[x-tag:%s]>", content);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EPATH_LONG);
	fill(content, 'v', 253 - 6 + 1);
	snprintf(path, sizeof(path), "<u@[x-tag:%s]>", content);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EDOMAIN_LONG);
	fill(content, 'v', 500);
	snprintf(path, sizeof(path), "<u@[x-tag:%s]>", content);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EDOMAIN_LONG);
	fill(content, '1', 500);
	snprintf(path, sizeof(path), "<u@[%s]>", content);
	ck_assert_int_eq(parse(path, strlen(path), 0, &a, NULL), ADDR_EDOMAIN_LONG);
}
END_TEST

START_TEST(test_long_garbage)
{
	char path[2000];
	struct addr a;

	/* Long runs stop at the limit, not at the end of the text. */
	memset(path, 'a', sizeof(path));
	path[0] = '<';
	ck_assert_int_eq(parse(path, sizeof(path), 0, &a, NULL), ADDR_ELOCAL_LONG);
	path[2] = '@';
	ck_assert_int_eq(parse(path, sizeof(path), 0, &a, NULL), ADDR_ESYNTAX);
	memset(path + 1, '.', sizeof(path) - 1);
	ck_assert_int_eq(parse(path, sizeof(path), 0, &a, NULL), ADDR_ESYNTAX);
	memset(path + 1, '"', sizeof(path) - 1);
	ck_assert_int_eq(parse(path, sizeof(path), 0, &a, NULL), ADDR_ESYNTAX);
}
END_TEST

/* addr_domain_is_safe: which domains may become directory names. */
static const struct safe_case {
	const char *domain;
	int safe;
} safe_cases[] = {
	{"example.org", 1},
	{"a", 1},
	{"localhost", 1},
	{"a-b.example", 1},
	{"a--b.example", 1},
	{"xn--bcher-kva.example", 1},
	{"123.example", 1},
	{"0x7f.example", 1},
	{"a.0xg", 1},
	{"a.1x", 1},
	{"a.x0", 1},
	{"a.x1f", 1},
	/* RFC 1123 2.1: a last label that is a number makes an address. */
	{"1.2.3.4", 0},
	{"127.0.0.1", 0},
	{"2130706433", 0},
	{"0x7f000001", 0},
	{"0x7f.0.0.1", 0},
	{"127.0.0.0x1", 0},
	{"example.123", 0},
	{"example.0x1f", 0},
	{"example.0x", 0},
	{"0177.0.0.01", 0},
	{"0", 0},
	{"", 0},
	{".", 0},
	{"..", 0},
	{"...", 0},
	{"../etc", 0},
	{"..example", 0},
	{"example/..", 0},
	{"a/b", 0},
	{"/", 0},
	{"/etc", 0},
	{"a\\b", 0},
	{"\\", 0},
	{".example.org", 0},
	{".tmp", 0},
	{"example.org.", 0},
	{"a..b", 0},
	{"-a", 0},
	{"a-", 0},
	{"a.-b", 0},
	{"a-.b", 0},
	{"-", 0},
	{"Example.org", 0},
	{"EXAMPLE.ORG", 0},
	{"[1.2.3.4]", 0},
	{"[ipv6:::1]", 0},
	{"[x-tag:foo]", 0},
	{"a b", 0},
	{"a_b", 0},
	{"a:b", 0},
	{"a\nb", 0},
	{"a\rb", 0},
	{"\tab", 0},
	{"b\xc3\xbc" "cher.example", 0},
	{"a*", 0},
	{"~", 0},
};

START_TEST(test_safe_table)
{
	const struct safe_case *t = &safe_cases[_i];

	ck_assert_msg(addr_domain_is_safe(t->domain) == t->safe,
	    "addr_domain_is_safe(\"%s\") != %d", t->domain, t->safe);
}
END_TEST

/* addr_helo_valid: what a HELO/EHLO argument may be. */
static const struct helo_case {
	const char *name;
	int valid;
} helo_cases[] = {
	{"client.example", 1},
	{"Client.EXAMPLE.org", 1},
	{"x", 1},
	{"localhost", 1},
	{"my_pc", 1},
	{"_srv.example", 1},
	{"my_pc.local_net.example", 1},
	{"a-b.example", 1},
	{"xn--bcher-kva.example", 1},
	{"123.example", 1},
	{"client.example.", 1},
	{"[127.0.0.1]", 1},
	{"[192.0.2.1]", 1},
	{"[IPv6:::1]", 1},
	{"[ipv6:2001:db8::1]", 1},
	{"[IPV6:::ffff:192.0.2.1]", 1},
	/* Anything else: 501 5.5.4. */
	{"", 0},
	{".", 0},
	{"..", 0},
	{"a;b", 0},
	{"a;b.example", 0},
	{"client.example; by evil", 0},
	{"a b", 0},
	{"a\tb", 0},
	{"a(b)", 0},
	{"a,b", 0},
	{"a/b", 0},
	{"../../../tmp/x", 0},
	{"a\\b", 0},
	{"a\"b", 0},
	{"a@b", 0},
	{"a:b", 0},
	{"a\x01" "b", 0},
	{"a\x7f" "b", 0},
	{"\x1b[2J", 0},
	{"caf\xc3\xa9.example", 0},
	{"a..b", 0},
	{".a", 0},
	{"a.example..", 0},
	{"-a.example", 0},
	{"a-.example", 0},
	{"a.-b", 0},
	{"a-", 0},
	{"127.0.0.1", 0},
	{"2130706433", 0},
	{"0x7f000001", 0},
	{"0X7F000001", 0},
	{"client.123", 0},
	{"127.0.0.1.", 0},
	{"[127.0.0.1", 0},
	{"127.0.0.1]", 0},
	{"[127.0.0.1]x", 0},
	{"[127.0.0.1].example", 0},
	{"[]", 0},
	{"[256.0.0.1]", 0},
	{"[127.1]", 0},
	{"[localhost]", 0},
	{"[IPv6:::g]", 0},
	{"[IPv6:127.0.0.1]", 0},
	{"[IPv6:::1%lo]", 0},
	{"[x-tag:something]", 0},
	{"[::1]", 0},
};

START_TEST(test_helo_table)
{
	const struct helo_case *t = &helo_cases[_i];

	ck_assert_msg(addr_helo_valid(t->name) == t->valid,
	    "addr_helo_valid(\"%s\") != %d", t->name, t->valid);
}
END_TEST

START_TEST(test_helo_limits)
{
	char name[300];

	ck_assert_int_eq(addr_helo_valid(NULL), 0);
	fill(name, 'h', 63);
	ck_assert_int_eq(addr_helo_valid(name), 1);
	fill(name, 'h', 64);
	ck_assert_int_eq(addr_helo_valid(name), 0);
	make_domain(name, 255);
	ck_assert_int_eq(addr_helo_valid(name), 1);
	make_domain(name, 256);
	ck_assert_int_eq(addr_helo_valid(name), 0);
	/* The trailing dot counts. */
	make_domain(name, 254);
	memcpy(name + 254, ".", 2);
	ck_assert_int_eq(addr_helo_valid(name), 1);
	make_domain(name, 255);
	memcpy(name + 255, ".", 2);
	ck_assert_int_eq(addr_helo_valid(name), 0);
}
END_TEST

START_TEST(test_safe_limits)
{
	char domain[300];

	ck_assert_int_eq(addr_domain_is_safe(NULL), 0);
	fill(domain, 'z', 63);
	ck_assert_int_eq(addr_domain_is_safe(domain), 1);
	fill(domain, 'z', 64);
	ck_assert_int_eq(addr_domain_is_safe(domain), 0);
	make_domain(domain, 255);
	ck_assert_int_eq(addr_domain_is_safe(domain), 1);
	make_domain(domain, 256);
	ck_assert_int_eq(addr_domain_is_safe(domain), 0);
	/* What a NUL hides is not there: the name ends at it. */
	ck_assert_int_eq(addr_domain_is_safe("a\0/../../etc"), 1);
	ck_assert_int_eq(addr_domain_is_safe("\0a"), 0);
}
END_TEST

START_TEST(test_format)
{
	struct addr a;
	char dst[300];

	ck_assert_int_eq(parse_str("<Alice@Example.ORG>", 0, &a, NULL), ADDR_OK);
	ck_assert_int_eq(addr_format(&a, dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "Alice@example.org");
	/* Exactly enough room, then one byte short. */
	ck_assert_int_eq(addr_format(&a, dst, 18), 0);
	ck_assert_str_eq(dst, "Alice@example.org");
	ck_assert_int_eq(addr_format(&a, dst, 17), -1);
	ck_assert_str_eq(dst, "");
	ck_assert_int_eq(addr_format(&a, dst, 0), -1);

	ck_assert_int_eq(parse_str("<\"a b\"@c>", 0, &a, NULL), ADDR_OK);
	ck_assert_int_eq(addr_format(&a, dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "\"a b\"@c");

	ck_assert_int_eq(parse_str("<@r1,@r2:u@[IPv6:::1]>", 0, &a, NULL), ADDR_OK);
	ck_assert_int_eq(addr_format(&a, dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "u@[ipv6:::1]");

	ck_assert_int_eq(parse_str("<>", ADDR_ALLOW_NULL, &a, NULL), ADDR_OK);
	memcpy(dst, "junk", 5);
	ck_assert_int_eq(addr_format(&a, dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "");
	ck_assert_int_eq(addr_format(&a, dst, 1), 0);

	ck_assert_int_eq(parse_str("<POSTMASTER>", ADDR_ALLOW_POSTMASTER, &a,
	    NULL), ADDR_OK);
	ck_assert_int_eq(addr_format(&a, dst, sizeof(dst)), 0);
	ck_assert_str_eq(dst, "POSTMASTER");
	ck_assert_int_eq(addr_format(&a, dst, 10), -1);
}
END_TEST

START_TEST(test_strerror)
{
	static const enum addr_result all[] = {
		ADDR_OK, ADDR_ESYNTAX, ADDR_ELOCAL_LONG, ADDR_EDOMAIN_LONG,
		ADDR_EPATH_LONG, ADDR_ENULL,
	};
	size_t i, j;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		ck_assert_ptr_nonnull(addr_strerror(all[i]));
		ck_assert_uint_gt(strlen(addr_strerror(all[i])), 0);
		for (j = 0; j < i; j++)
			ck_assert_str_ne(addr_strerror(all[i]), addr_strerror(all[j]));
	}
	ck_assert_ptr_nonnull(addr_strerror((enum addr_result)99));
}
END_TEST

/*
 * Mutated paths: each round takes a case of the table and changes,
 * inserts or deletes a few bytes (grammar bytes or any byte at all).
 * Whatever comes in, a success obeys every promise of addr.h, a failure
 * leaves nothing behind, and nothing is read past the end.
 */
static uint32_t
rand_next(uint32_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 17;
	*state ^= *state << 5;
	return *state;
}

static int
rand_byte(uint32_t *state)
{
	static const char alphabet[] = "<>@.,:\"\\[]-aZ09 %!/\r\n\t\x80\xff";

	if (rand_next(state) % 4 == 0)
		return (int)(rand_next(state) & 0xff);
	return alphabet[rand_next(state) % (sizeof(alphabet) - 1)];
}

static void
roundtrip(const struct addr *a)
{
	char text[ADDR_PATH_MAX + 3];
	struct addr again;
	size_t n, consumed;

	text[0] = '<';
	ck_assert_int_eq(addr_format(a, text + 1, sizeof(text) - 2), 0);
	n = strlen(text);
	text[n++] = '>';
	ck_assert_int_eq(parse(text, n, 0, &again, &consumed), ADDR_OK);
	ck_assert_uint_eq(consumed, n);
	ck_assert_str_eq(again.local, a->local);
	ck_assert_str_eq(again.mailbox, a->mailbox);
	ck_assert_str_eq(again.domain, a->domain);
	ck_assert_int_eq(again.literal, a->literal);
}

/* last_label_is_number - the test's own reading of RFC 1123 2.1 */
static int
last_label_is_number(const char *domain)
{
	const char *last = strrchr(domain, '.');

	last = last ? last + 1 : domain;
	if (strncmp(last, "0x", 2) == 0)
		return strspn(last + 2, "0123456789abcdef") == strlen(last + 2);
	return *last != '\0' && strspn(last, "0123456789") == strlen(last);
}

/* ---- SMTPUTF8: UTF-8 paths and A-labels ---------------------------- */

START_TEST(test_utf8_paths)
{
	struct addr a;
	size_t used;
	const char *p;

	/* Without ADDR_ALLOW_UTF8 no 8-bit byte passes. */
	p = "<j\xc3\xbcrgen@example.net>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), 0, &a, &used),
	    ADDR_ESYNTAX);
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	ck_assert_str_eq(a.local, "j\xc3\xbcrgen");
	ck_assert_str_eq(a.domain, "example.net");
	ck_assert_str_eq(a.ace, "example.net");
	ck_assert_int_eq(a.utf8, 1);
	ck_assert_uint_eq(used, strlen(p));

	/* An ASCII path has ace == domain and utf8 0, with or without it. */
	p = "<a@Example.ORG>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	ck_assert_str_eq(a.ace, "example.org");
	ck_assert_int_eq(a.utf8, 0);

	/* A U-label domain: ace is IDNA2008, ASCII, and a safe directory. */
	p = "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	ck_assert_str_eq(a.domain, "\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95");
	ck_assert_str_eq(a.ace, "xn--fsqu00a.xn--0zwm56d");
	ck_assert_int_eq(addr_domain_is_safe(a.ace), 1);
	ck_assert_int_eq(addr_domain_is_safe(a.domain), 0);
	p = "<x@B\xc3\xbc" "cher.Example>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	ck_assert_str_eq(a.ace, "xn--bcher-kva.example");
	/* UTS #46 folds case: "Ü" is "ü". */
	p = "<x@B\xc3\x9c" "CHER.example>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	ck_assert_str_eq(a.ace, "xn--bcher-kva.example");
	/* Quoted local parts may hold UTF-8 too. */
	p = "<\"j\xc3\xbc rgen\"@example.net>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	ck_assert_str_eq(a.mailbox, "j\xc3\xbc rgen");

	/* IDNA2008 refuses: a leading combining mark, a symbol (U+2665). */
	p = "<x@\xcc\x81x.example>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_EIDNA);
	p = "<x@\xe2\x99\xa5.example>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_EIDNA);
	ck_assert_str_eq(addr_strerror(ADDR_EIDNA),
	    "not a valid internationalized domain name");
	/* A U-label of full-stop look-alikes cannot smuggle a dot or a slash. */
	p = "<x@a\xef\xbc\x8f" "b.example>";	/* U+FF0F FULLWIDTH SOLIDUS */
	ck_assert_int_ne(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);
	p = "<x@..\xe3\x80\x82" "example>";	/* U+3002 IDEOGRAPHIC FULL STOP */
	ck_assert_int_ne(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_OK);

	/* Bad UTF-8 is a syntax error even when UTF-8 is allowed. */
	p = "<j\xfcrgen@example.net>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_ESYNTAX);
	p = "<a\xc2\x85@example.net>";	/* C1 control NEL */
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_ESYNTAX);
	/* A sequence cut by the end of the text reads nothing past it. */
	p = "<a\xc3";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_ESYNTAX);
	/* The limits count octets. */
	p = "<\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "x@example.net>";
	ck_assert_int_eq(addr_parse_path(p, strlen(p), ADDR_ALLOW_UTF8, &a,
	    &used), ADDR_ELOCAL_LONG);
}
END_TEST

START_TEST(test_utf8_chars)
{
	ck_assert_uint_eq(addr_utf8_char("\xc3\xa9", 2), 2);
	ck_assert_uint_eq(addr_utf8_char("\xe2\x82\xac", 3), 3);
	ck_assert_uint_eq(addr_utf8_char("\xf0\x9f\x93\xa7", 4), 4);
	ck_assert_uint_eq(addr_utf8_char("\xf4\x8f\xbf\xbf", 4), 4);
	ck_assert_uint_eq(addr_utf8_char("\xc2\xa0", 2), 2);
	ck_assert_uint_eq(addr_utf8_char("a", 1), 0);
	ck_assert_uint_eq(addr_utf8_char("\xc3\xa9", 1), 0);	/* cut */
	ck_assert_uint_eq(addr_utf8_char("\xc0\xaf", 2), 0);	/* overlong */
	ck_assert_uint_eq(addr_utf8_char("\xe0\x80\xaf", 3), 0);
	ck_assert_uint_eq(addr_utf8_char("\xf0\x80\x80\xaf", 4), 0);
	ck_assert_uint_eq(addr_utf8_char("\xed\xa0\x80", 3), 0); /* surrogate */
	ck_assert_uint_eq(addr_utf8_char("\xf4\x90\x80\x80", 4), 0);
	ck_assert_uint_eq(addr_utf8_char("\xc2\x80", 2), 0);	/* C1 */
	ck_assert_uint_eq(addr_utf8_char("\xc2\x9f", 2), 0);
	ck_assert_uint_eq(addr_utf8_char("\x80", 1), 0);
	ck_assert_uint_eq(addr_utf8_char("\xc3\x28", 2), 0);
	ck_assert_int_eq(addr_utf8_valid("plain ascii", 11), 1);
	ck_assert_int_eq(addr_utf8_valid("caf\xc3\xa9!", 6), 1);
	ck_assert_int_eq(addr_utf8_valid("caf\xc3", 4), 0);
	ck_assert_int_eq(addr_utf8_valid("\xff", 1), 0);
	ck_assert_int_eq(addr_utf8_valid("", 0), 1);
}
END_TEST

START_TEST(test_domain_to_unicode)
{
	char out[ADDR_DOMAIN_MAX + 1];

	ck_assert_int_eq(addr_domain_to_unicode("xn--fsqu00a.xn--0zwm56d", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95");
	ck_assert_int_eq(addr_domain_to_unicode("xn--bcher-kva.example", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "b\xc3\xbc" "cher.example");
	ck_assert_int_eq(addr_domain_to_unicode("example.org", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "example.org");
	/* Not a valid A-label: shown as it is. */
	ck_assert_int_eq(addr_domain_to_unicode("xn--zz.example", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "xn--zz.example");
	ck_assert_int_eq(addr_domain_to_unicode("example.org", out, 5), -1);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_xtext)
{
	char out[64];

	ck_assert_int_eq(addr_xtext_decode("QQ+2B314159", 11, out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "QQ+314159");
	ck_assert_int_eq(addr_xtext_decode("a+20b", 5, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a b");
	ck_assert_int_eq(addr_xtext_decode("", 0, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	/* Upper-case hex only, two digits, no "=", nothing below "!". */
	ck_assert_int_eq(addr_xtext_decode("a+2b", 4, out, sizeof(out)), -1);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(addr_xtext_decode("a+2", 3, out, sizeof(out)), -1);
	ck_assert_int_eq(addr_xtext_decode("a+", 2, out, sizeof(out)), -1);
	ck_assert_int_eq(addr_xtext_decode("a=b", 3, out, sizeof(out)), -1);
	ck_assert_int_eq(addr_xtext_decode("a b", 3, out, sizeof(out)), -1);
	ck_assert_int_eq(addr_xtext_decode("a\xc3\xa9", 3, out, sizeof(out)),
	    -1);
	/* A decoded control or 8-bit byte is refused. */
	ck_assert_int_eq(addr_xtext_decode("a+0Ab", 5, out, sizeof(out)), -1);
	ck_assert_int_eq(addr_xtext_decode("a+C3", 4, out, sizeof(out)), -1);
	ck_assert_int_eq(addr_xtext_decode("abcd", 4, out, 4), -1);
	ck_assert_int_eq(addr_xtext_decode("abc", 3, out, 4), 0);
	/* The length is the caller's: nothing past it is read. */
	ck_assert_int_eq(addr_xtext_decode("ab+2B", 3, out, sizeof(out)), -1);

	ck_assert_int_eq(addr_xtext_encode("info+x=y@example.org", out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "info+2Bx+3Dy@example.org");
	ck_assert_int_eq(addr_xtext_encode("a b", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a+20b");
	ck_assert_int_eq(addr_xtext_encode("abc", out, 3), -1);
	ck_assert_int_eq(addr_xtext_encode("+", out, 3), -1);
	ck_assert_int_eq(addr_xtext_encode("+", out, 4), 0);

	ck_assert_int_eq(addr_utf8_xtext_valid("j\\x{FC}rgen@x.example", 21, 0),
	    1);
	ck_assert_int_eq(addr_utf8_xtext_valid("\\x{1F4E7}", 9, 0), 1);
	ck_assert_int_eq(addr_utf8_xtext_valid("j\\x{fc}rgen", 11, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("\\x{F}", 5, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("\\x{D800}", 8, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("\\x{110000}", 10, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("\\x{FC", 5, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("a+b", 3, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("a=b", 3, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("", 0, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("j\xc3\xbcrgen", 7, 0), 0);
	ck_assert_int_eq(addr_utf8_xtext_valid("j\xc3\xbcrgen", 7, 1), 1);
	ck_assert_int_eq(addr_utf8_xtext_valid("j\xfcrgen", 6, 1), 0);
}
END_TEST

START_TEST(test_mutated_paths)
{
	const size_t ncases = sizeof(path_cases) / sizeof(path_cases[0]);
	uint32_t state = 0x2545f491u;
	char text[300];
	const struct path_case *seed;
	struct addr a;
	size_t len, consumed, pos, n, ok = 0, bad = 0;
	enum addr_result r;
	int round, edits;

	for (round = 0; round < 50000; round++) {
		seed = &path_cases[rand_next(&state) % ncases];
		len = seed->len ? seed->len : strlen(seed->text);
		memcpy(text, seed->text, len);
		for (edits = (int)(rand_next(&state) % 4); edits > 0; edits--) {
			pos = len ? rand_next(&state) % len : 0;
			switch (rand_next(&state) % 3) {
			case 0:
				if (len > 0)
					text[pos] = (char)rand_byte(&state);
				break;
			case 1:
				if (len + 1 < sizeof(text)) {
					memmove(text + pos + 1, text + pos, len - pos);
					text[pos] = (char)rand_byte(&state);
					len++;
				}
				break;
			default:
				if (len > 0) {
					memmove(text + pos, text + pos + 1, len - pos - 1);
					len--;
				}
				break;
			}
		}
		r = parse(text, len, (int)(rand_next(&state) % 4), &a, &consumed);
		if (r != ADDR_OK) {
			bad++;
			ck_assert_uint_eq(consumed, 0);
			ck_assert_str_eq(a.local, "");
			ck_assert_str_eq(a.domain, "");
			continue;
		}
		ok++;
		ck_assert_uint_le(consumed, len);
		ck_assert_uint_le(consumed, ADDR_PATH_MAX);
		ck_assert_int_eq(text[0], '<');
		ck_assert_int_eq(text[consumed - 1], '>');
		ck_assert_uint_le(strlen(a.local), ADDR_LOCAL_MAX);
		ck_assert_uint_le(strlen(a.mailbox), strlen(a.local));
		ck_assert_uint_le(strlen(a.domain), ADDR_DOMAIN_MAX);
		/* Nothing outside printable ASCII reaches the result. */
		for (n = 0; a.local[n]; n++)
			ck_assert(a.local[n] >= 32 && a.local[n] <= 126);
		for (n = 0; a.domain[n]; n++) {
			ck_assert(a.domain[n] > 32 && a.domain[n] <= 126);
			ck_assert(a.literal || !(a.domain[n] >= 'A' && a.domain[n] <= 'Z'));
		}
		ck_assert_int_eq(a.null, consumed == 2);
		ck_assert_int_eq(addr_domain_is_safe(a.domain),
		    !a.literal && !a.null && !a.postmaster
		    && !last_label_is_number(a.domain));
		if (a.null || a.postmaster)
			continue;
		/* The address as an envelope writes it parses to the same. */
		roundtrip(&a);
	}
	/* Both branches must be reached for the test to mean anything. */
	ck_assert_uint_gt(ok, 1000);
	ck_assert_uint_gt(bad, 1000);
}
END_TEST

static Suite *
addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc;

	tc = tcase_create("paths");
	tcase_add_loop_test(tc, test_path_table, 0,
	    (int)(sizeof(path_cases) / sizeof(path_cases[0])));
	tcase_add_test(tc, test_consumed_may_be_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_local_64);
	tcase_add_test(tc, test_quoted_local_64);
	tcase_add_test(tc, test_label_63);
	tcase_add_test(tc, test_path_256);
	tcase_add_test(tc, test_domain_255);
	tcase_add_test(tc, test_route_counts_in_path);
	tcase_add_test(tc, test_literal_long);
	tcase_add_test(tc, test_long_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("safe");
	tcase_add_loop_test(tc, test_safe_table, 0,
	    (int)(sizeof(safe_cases) / sizeof(safe_cases[0])));
	tcase_add_test(tc, test_safe_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("helo");
	tcase_add_loop_test(tc, test_helo_table, 0,
	    (int)(sizeof(helo_cases) / sizeof(helo_cases[0])));
	tcase_add_test(tc, test_helo_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_strerror);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutated");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_mutated_paths);
	tcase_add_test(tc, test_utf8_paths);
	tcase_add_test(tc, test_utf8_chars);
	tcase_add_test(tc, test_domain_to_unicode);
	tcase_add_test(tc, test_xtext);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
