/*
 * NAME
 *	inspect - what every maildir-inspect command shares
 * SYNOPSIS
 *	See inspect.h.
 * DESCRIPTION
 *	Diagnostics, durations and ages, and output that is safe to show on
 *	a terminal whatever bytes a file name or a message holds.
 * DIAGNOSTICS
 *	See inspect.h.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "inspect.h"

void
inspect_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("maildir-inspect: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
inspect_io_error(struct inspect *in, const char *path, int err)
{
	fputs("maildir-inspect: ", stderr);
	inspect_print_safe(stderr, path, strlen(path), INSPECT_ESC_8BIT);
	fprintf(stderr, ": %s\n", strerror(err));
	in->status = EX_IOERR;
}

int
inspect_parse_duration(const char *text, long long *seconds)
{
	long long total = 0, n, unit;
	const char *s = text;

	if (*s == '\0')
		return -1;
	while (*s != '\0') {
		if (!isdigit((unsigned char)*s))
			return -1;
		for (n = 0; isdigit((unsigned char)*s); s++) {
			if (n > (LLONG_MAX - 9) / 10)
				return -1;
			n = n * 10 + (*s - '0');
		}
		switch (*s) {
		case '\0':
			/* A bare number is seconds, but only on its own. */
			if (s != text && total != 0)
				return -1;
			unit = 1;
			break;
		case 's':
			unit = 1;
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = 86400;
			break;
		case 'w':
			unit = 7 * 86400;
			break;
		default:
			return -1;
		}
		if (*s != '\0')
			s++;
		if (n > (LLONG_MAX / 2) / unit || total > LLONG_MAX / 2)
			return -1;
		total += n * unit;
	}
	*seconds = total;
	return 0;
}

void
inspect_format_age(long long age, char *dst, size_t len)
{
	/* Ages are short: a truncated one would still be a number. */
	if (age < 0)
		age = 0;
	if (age < 60)
		(void)snprintf(dst, len, "%llds", age);
	else if (age < 3600)
		(void)snprintf(dst, len, "%lldm", age / 60);
	else if (age < 86400)
		(void)snprintf(dst, len, "%lldh%02lldm", age / 3600,
		    age % 3600 / 60);
	else
		(void)snprintf(dst, len, "%lldd%02lldh", age / 86400,
		    age % 86400 / 3600);
}

/*
 * inspect_utf8_len - the length of the valid UTF-8 sequence of two or
 * more bytes at s, or 0 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF).
 */
size_t
inspect_utf8_len(const unsigned char *s, size_t len)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (len == 0)
		return 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * inspect_print_safe - bytes for a terminal
 *
 * A terminal acts on C0 controls (ESC starts a sequence), on DEL, and
 * on C1 controls, which come either as a raw byte 0x80-0x9f (0x9b is the
 * 8-bit CSI) or, in a UTF-8 terminal, as the characters U+0080-U+009F
 * (0xc2 0x80 - 0xc2 0x9f). All of them are written as \xHH, and so is
 * every byte that is not part of valid UTF-8: what passes is printable
 * ASCII and valid UTF-8 of characters from U+00A0 up (TAB and LF too
 * with INSPECT_KEEP_LINES; nothing over 0x7e with INSPECT_ESC_8BIT).
 */
void
inspect_print_safe(FILE *fp, const char *s, size_t len, int flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start = 0, n;

	while (i < len) {
		if ((u[i] >= 0x20 && u[i] < 0x7f)
		    || ((u[i] == '\t' || u[i] == '\n')
			&& (flags & INSPECT_KEEP_LINES))) {
			i++;
			continue;
		}
		if (u[i] >= 0x80 && !(flags & INSPECT_ESC_8BIT)
		    && (n = inspect_utf8_len(u + i, len - i)) > 0
		    && !(u[i] == 0xc2 && u[i + 1] < 0xa0)) {
			i += n;
			continue;
		}
		fwrite(s + start, 1, i - start, fp);
		fprintf(fp, "\\x%02x", u[i]);
		start = ++i;
	}
	fwrite(s + start, 1, len - start, fp);
}

int
inspect_contains_nocase(const char *haystack, const char *needle)
{
	size_t n = strlen(needle);
	const char *h;

	for (h = haystack; *h != '\0'; h++)
		if (strncasecmp(h, needle, n) == 0)
			return 1;
	return n == 0;
}

long long
inspect_age(const struct inspect *in, time_t mtime)
{
	/* A clock step back makes no letter younger than new. */
	return mtime > in->now ? 0 : (long long)(in->now - mtime);
}
