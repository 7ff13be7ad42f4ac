/*
 * NAME
 *	json - the pieces of maildir-inspect's JSON documents
 * SYNOPSIS
 *	#include "json.h"
 * DESCRIPTION
 *	json_string() writes len bytes of s as a JSON string: '"' and '\\'
 *	escaped, control characters as \n, \t, \r or \u00XX, valid UTF-8
 *	passed through, and every byte that is not part of valid UTF-8 as
 *	\u00XX (the byte read as Latin-1), so the document is always valid
 *	JSON whatever a file holds.
 *	json_cstring() does it for a C string; json_nstring() writes null
 *	for a NULL string.
 *	json_key() writes ",\"key\":" (without the comma when first).
 * DIAGNOSTICS
 *	None here: the caller checks ferror() when it is done.
 */
#ifndef MAILDIR_INSPECT_JSON_H
#define MAILDIR_INSPECT_JSON_H

#include <stddef.h>
#include <stdio.h>

void json_string(FILE *fp, const char *s, size_t len);
void json_cstring(FILE *fp, const char *s);
void json_nstring(FILE *fp, const char *s);
void json_key(FILE *fp, const char *key, int first);

#endif
