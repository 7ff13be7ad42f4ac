/*
 * NAME
 *	json - the pieces of maildir-inspect's JSON documents
 * SYNOPSIS
 *	See json.h.
 * DESCRIPTION
 *	Strings are the only part that needs care: names and messages on
 *	disk may hold any byte, and a monitoring script must still be able
 *	to parse the document.
 * DIAGNOSTICS
 *	None.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

static size_t json_utf8_len(const unsigned char *s, size_t len);

/*
 * json_utf8_len - the length of the valid UTF-8 sequence of two or more
 * bytes at s, or 0 (RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF).
 */
static size_t
json_utf8_len(const unsigned char *s, size_t len)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

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

void
json_string(FILE *fp, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start = 0, n;

	fputc('"', fp);
	while (i < len) {
		if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"'
		    && u[i] != '\\') {
			i++;
			continue;
		}
		if (u[i] >= 0x80 && (n = json_utf8_len(u + i, len - i)) > 0) {
			i += n;
			continue;
		}
		fwrite(s + start, 1, i - start, fp);
		switch (u[i]) {
		case '"':
			fputs("\\\"", fp);
			break;
		case '\\':
			fputs("\\\\", fp);
			break;
		case '\n':
			fputs("\\n", fp);
			break;
		case '\t':
			fputs("\\t", fp);
			break;
		case '\r':
			fputs("\\r", fp);
			break;
		default:
			fprintf(fp, "\\u%04x", u[i]);
			break;
		}
		start = ++i;
	}
	fwrite(s + start, 1, len - start, fp);
	fputc('"', fp);
}

void
json_cstring(FILE *fp, const char *s)
{
	json_string(fp, s, strlen(s));
}

void
json_nstring(FILE *fp, const char *s)
{
	if (s == NULL)
		fputs("null", fp);
	else
		json_cstring(fp, s);
}

void
json_key(FILE *fp, const char *key, int first)
{
	if (!first)
		fputc(',', fp);
	json_cstring(fp, key);
	fputc(':', fp);
}
