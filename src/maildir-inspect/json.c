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

#include "inspect.h"
#include "json.h"

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
		if (u[i] >= 0x80 && (n = inspect_utf8_len(u + i, len - i)) > 0) {
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
