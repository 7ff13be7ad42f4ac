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

void
inspect_print_safe(FILE *fp, const char *s, size_t len, int flags)
{
	size_t i, start = 0;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if ((c >= 0x20 && c < 0x7f)
		    || (c >= 0x80 && !(flags & INSPECT_ESC_8BIT))
		    || ((c == '\t' || c == '\n')
			&& (flags & INSPECT_KEEP_LINES)))
			continue;
		fwrite(s + start, 1, i - start, fp);
		fprintf(fp, "\\x%02x", c);
		start = i + 1;
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
