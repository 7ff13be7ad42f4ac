/*
 * NAME
 *	fuzz_addr - libFuzzer harness for the RFC 5321 path parser
 * DESCRIPTION
 *	Whatever the bytes, the parser stays inside them, and what it
 *	accepts keeps its promises: the path ends in '>', the parts fit
 *	their limits, hold no control or 8-bit byte, the domain is lower
 *	case, a domain called safe could not climb out of a directory, and
 *	the formatted address parses again to the same parts.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n > max)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a, again;
	char text[ADDR_PATH_MAX + 3];
	size_t consumed, i;
	int flags;

	if (size < 1)
		return 0;
	flags = data[0] & (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER);
	data++;
	size--;
	if (addr_parse_path((const char *)data, size, flags, &a, &consumed) != ADDR_OK)
		return 0;
	if (consumed < 2 || consumed > size || data[0] != '<' ||
	    data[consumed - 1] != '>' || consumed > ADDR_PATH_MAX + 200)
		abort();
	check_text(a.local, ADDR_LOCAL_MAX);
	check_text(a.mailbox, ADDR_LOCAL_MAX);
	check_text(a.domain, ADDR_DOMAIN_MAX);
	if (!a.literal)
		for (i = 0; a.domain[i]; i++)
			if (a.domain[i] >= 'A' && a.domain[i] <= 'Z')
				abort();
	if (addr_domain_is_safe(a.domain) &&
	    (a.literal || strchr(a.domain, '/') || strstr(a.domain, "..") ||
	    a.domain[0] == '.' || strchr(a.domain, '\\') || a.domain[0] == '\0'))
		abort();
	if (a.null || a.postmaster)
		return 0;
	/* The address as it would be written in an envelope parses again. */
	text[0] = '<';
	if (addr_format(&a, text + 1, sizeof(text) - 2) < 0)
		return 0;
	i = strlen(text);
	text[i++] = '>';
	if (addr_parse_path(text, i, 0, &again, &consumed) != ADDR_OK ||
	    consumed != i || strcmp(again.domain, a.domain) != 0 ||
	    strcmp(again.mailbox, a.mailbox) != 0)
		abort();
	return 0;
}
