/*
 * NAME
 *	buf - bounded byte buffers
 * SYNOPSIS
 *	See buf.h.
 * DESCRIPTION
 *	The content lives in [data + off, data + off + len). Consuming from
 *	the front only moves off; the bytes are moved down when an append
 *	needs the room, so a reader that consumes in small steps costs no
 *	copying per step. Capacity grows by doubling and never past max + 1
 *	(the +1 keeps a NUL after the content).
 * DIAGNOSTICS
 *	buf_new() returns NULL; buf_append() and buf_printf() return -1 with
 *	errno EMSGSIZE or ENOMEM and leave the buffer unchanged.
 * LIMITS
 *	The maximum given to buf_new().
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct buf {
	char *data;
	size_t off;		/* consumed bytes at the front */
	size_t len;		/* bytes of content after off */
	size_t cap;		/* allocated, including room for the NUL */
	size_t max;		/* hard limit of len */
};

#define BUF_MIN_CAP 256

static int buf_reserve(struct buf *b, size_t extra);

struct buf *
buf_new(size_t max)
{
	struct buf *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->max = max;
	return b;
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	free(b);
}

/* buf_reserve - make room for extra more bytes plus the NUL */
static int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->max - b->len) {
		errno = EMSGSIZE;
		return -1;
	}
	need = b->len + extra + 1;
	if (b->off + need <= b->cap)
		return 0;
	if (need <= b->cap) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		return 0;
	}
	cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need)
		cap = cap > (SIZE_MAX / 2) ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if (cap < need)
		cap = need;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if ((p = realloc(b->data, cap)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (buf_reserve(b, len) < 0)
		return -1;
	memcpy(b->data + b->off + b->len, data, len);
	b->len += len;
	b->data[b->off + b->len] = '\0';
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	if (buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(b->data + b->off + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *
buf_data(const struct buf *b)
{
	return b->data ? b->data + b->off : NULL;
}

size_t
buf_len(const struct buf *b)
{
	return b->len;
}

size_t
buf_room(const struct buf *b)
{
	return b->max - b->len;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	b->off += n;
	b->len -= n;
}

void
buf_reset(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}
