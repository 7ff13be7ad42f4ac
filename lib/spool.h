/*
 * NAME
 *	spool - message text streamed to a file as it arrives
 * SYNOPSIS
 *	#include "spool.h"
 * DESCRIPTION
 *	A spool is one file that receives the text of one message in order,
 *	through a small fixed window, so that memory does not grow with the
 *	size of the message. The file is normally anonymous (O_TMPFILE, or
 *	created and unlinked at once by the caller): when its descriptor is
 *	closed, nothing of it is left on disk.
 *
 *	spool_new() takes ownership of fd, a regular file open for reading
 *	and writing at offset 0, and returns an empty spool.
 *	spool_new_lazy() returns an empty spool without a file: open_file
 *	(ctx) is called for one (a descriptor as spool_new() takes, or -1
 *	with errno) only when the text outgrows the window, so a message
 *	of at most SPOOL_WINDOW bytes never has one. spool_free() closes
 *	the file and releases the window (NULL allowed).
 *
 *	spool_write() appends len bytes. Bytes are kept in the window and
 *	written when it is full. The first failure is kept: it and every
 *	later call return -1 with that errno, and nothing more is written,
 *	so the caller may go on reading the client and report the error
 *	at the end.
 *	spool_finish() writes what the window holds; after it, spool_fd()
 *	and spool_size() describe the whole text: bytes [0, size) of fd;
 *	except in a lazy spool that never needed its file: then spool_fd()
 *	is -1 and spool_text() points to the size bytes in the window
 *	(valid until spool_free()). spool_text() is NULL when the text is
 *	in the file.
 *	spool_size() counts every byte given to spool_write() that was
 *	taken (also those still in the window).
 *	spool_error() is the kept errno, or 0.
 * DIAGNOSTICS
 *	spool_new() returns NULL (errno ENOMEM, or EBADF for fd < 0; fd is
 *	closed then); spool_new_lazy() NULL (ENOMEM). spool_write() and
 *	spool_finish() return 0, or -1 with errno: the write error (ENOSPC,
 *	EDQUOT, EIO, EFBIG, ...), a lazy spool's open_file error, or ENOMEM
 *	when the window cannot be had.
 * LIMITS
 *	SPOOL_WINDOW bytes of memory while a message is being received.
 */
#ifndef POLLSMTPD_SPOOL_H
#define POLLSMTPD_SPOOL_H

#include <stddef.h>

#define SPOOL_WINDOW	(16 * 1024)

struct spool;

struct spool *spool_new(int fd);
struct spool *spool_new_lazy(int (*open_file)(void *ctx), void *ctx);
void spool_free(struct spool *sp);
int spool_write(struct spool *sp, const void *data, size_t len);
int spool_finish(struct spool *sp);
int spool_fd(const struct spool *sp);
const char *spool_text(const struct spool *sp);
size_t spool_size(const struct spool *sp);
int spool_error(const struct spool *sp);

#endif
