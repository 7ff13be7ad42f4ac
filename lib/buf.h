/*
 * NAME
 *	buf - bounded byte buffers
 * SYNOPSIS
 *	#include "buf.h"
 * DESCRIPTION
 *	A buf holds bytes that grow at the end and are consumed from the
 *	front. Every buf has a hard maximum fixed at creation: an append that
 *	would pass it fails and changes nothing. Memory is taken lazily and
 *	given back when the buffer empties, so an idle buf costs a few words.
 *
 *	buf_new() makes an empty buffer that may hold up to max bytes.
 *	buf_free() releases it (NULL is allowed).
 *	buf_append() adds len bytes at the end.
 *	buf_printf() adds formatted text at the end (no terminating NUL).
 *	buf_data() and buf_len() show the content; buf_data() of an empty
 *	buf may be NULL. The content is followed by a NUL that is not counted,
 *	so text can be read as a C string.
 *	buf_consume() drops n bytes from the front; buf_reset() drops all and
 *	releases the memory.
 *	buf_room() tells how many more bytes an append may add.
 * DIAGNOSTICS
 *	buf_new() returns NULL when out of memory. buf_append() and
 *	buf_printf() return 0, or -1 with errno EMSGSIZE (over the maximum)
 *	or ENOMEM; on failure the buffer is unchanged.
 * LIMITS
 *	The maximum is fixed at creation.
 */
#ifndef POLLSMTPD_BUF_H
#define POLLSMTPD_BUF_H

#include <stddef.h>

struct buf;

struct buf *buf_new(size_t max);
void buf_free(struct buf *b);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *buf_data(const struct buf *b);
size_t buf_len(const struct buf *b);
size_t buf_room(const struct buf *b);
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);

#endif
