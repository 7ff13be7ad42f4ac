/*
 * NAME
 *	spool - message text streamed to a file as it arrives
 * SYNOPSIS
 *	See spool.h.
 * DESCRIPTION
 *	The window is taken at the first write, so an empty message costs
 *	no memory here. Writes go out with pwrite() at the offset the spool keeps,
 *	so the file offset is never relied on and a short write (a file
 *	system filling up) is simply continued until the kernel says why
 *	it cannot.
 *
 *	A lazy spool (spool_new_lazy()) has no file until the window
 *	overflows: a message that fits in the window (most mail) never
 *	costs a file create, which on a journalling file system busy with
 *	the syncs of the group commit waits for the journal as long as the
 *	create of the copy itself does.
 *
 *	The spool does not sync: the copies made from it are what must be
 *	durable (see maildir), and the spool itself is gone when its
 *	descriptor is closed.
 * DIAGNOSTICS
 *	See spool.h. Nothing here logs or exits.
 * LIMITS
 *	SPOOL_WINDOW bytes of memory per spool in use.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

struct spool {
	int fd;			/* -1 until a lazy spool needs its file */
	int (*open)(void *);	/* a lazy spool's file, or NULL */
	void *open_ctx;
	int err;		/* first failure, kept */
	char *window;		/* SPOOL_WINDOW bytes, or NULL */
	size_t held;		/* bytes in the window */
	size_t flushed;		/* bytes in the file */
};

static int spool_flush(struct spool *sp);

struct spool *
spool_new(int fd)
{
	struct spool *sp;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		(void)close(fd);
		errno = ENOMEM;
		return NULL;
	}
	sp->fd = fd;
	return sp;
}

struct spool *
spool_new_lazy(int (*open_file)(void *ctx), void *ctx)
{
	struct spool *sp;

	if ((sp = calloc(1, sizeof(*sp))) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	sp->fd = -1;
	sp->open = open_file;
	sp->open_ctx = ctx;
	return sp;
}

void
spool_free(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->fd >= 0)
		(void)close(sp->fd);
	free(sp->window);
	free(sp);
}

/* spool_flush - the window to the file, all of it or the error kept */
static int
spool_flush(struct spool *sp)
{
	size_t off = 0;
	ssize_t n;

	if (sp->fd < 0 && sp->held > 0) {
		if ((sp->fd = sp->open(sp->open_ctx)) < 0) {
			sp->err = errno ? errno : EIO;
			sp->fd = -1;
			errno = sp->err;
			return -1;
		}
	}
	while (off < sp->held) {
		n = pwrite(sp->fd, sp->window + off, sp->held - off,
		    (off_t)(sp->flushed + off));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sp->err = errno;
			return -1;
		}
		if (n == 0) {
			/* No progress and no reason: do not spin. */
			sp->err = EIO;
			errno = EIO;
			return -1;
		}
		off += (size_t)n;
	}
	sp->flushed += sp->held;
	sp->held = 0;
	return 0;
}

int
spool_write(struct spool *sp, const void *data, size_t len)
{
	const char *p = data;
	size_t n;

	if (sp->err != 0) {
		errno = sp->err;
		return -1;
	}
	if (len > 0 && sp->window == NULL
	    && (sp->window = malloc(SPOOL_WINDOW)) == NULL) {
		sp->err = ENOMEM;
		errno = ENOMEM;
		return -1;
	}
	while (len > 0) {
		if (sp->held == SPOOL_WINDOW && spool_flush(sp) < 0)
			return -1;
		n = SPOOL_WINDOW - sp->held;
		if (n > len)
			n = len;
		memcpy(sp->window + sp->held, p, n);
		sp->held += n;
		p += n;
		len -= n;
	}
	return 0;
}

int
spool_finish(struct spool *sp)
{
	if (sp->err != 0) {
		errno = sp->err;
		return -1;
	}
	/* A lazy spool whose text fits in the window keeps it there. */
	if (sp->fd < 0)
		return 0;
	return spool_flush(sp);
}

const char *
spool_text(const struct spool *sp)
{
	if (sp->fd >= 0)
		return NULL;
	return sp->window != NULL ? sp->window : "";
}

int
spool_fd(const struct spool *sp)
{
	return sp->fd;
}

size_t
spool_size(const struct spool *sp)
{
	return sp->flushed + sp->held;
}

int
spool_error(const struct spool *sp)
{
	return sp->err;
}
