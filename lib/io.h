/*
 * NAME
 *	io - the bytes of one connection, and what to poll for
 * SYNOPSIS
 *	#include "io.h"
 * DESCRIPTION
 *	One io object owns one connected, non-blocking socket and moves its
 *	bytes. Callers never touch the descriptor's data themselves: they
 *	read and write through the io, ask it what the event loop should
 *	wait for, and ask it whether it holds bytes that poll() cannot see.
 *	Today every io is a plain socket; a TLS io (OpenSSL) keeps the same
 *	contract, which is why the contract has the two questions below.
 *
 *	io_new() takes ownership of fd. io_free() closes it and releases
 *	the io (NULL allowed). io_fd() is the descriptor, for the loop.
 *
 *	io_read() reads at most len bytes: > 0 bytes read, 0 the peer has
 *	closed, -1 with errno (EAGAIN: nothing now, wait as io_events()
 *	says; anything else: the connection is lost).
 *	io_write() writes at most len bytes: >= 0 bytes taken, -1 with
 *	errno as for io_read() (EPIPE and ECONNRESET: the peer is gone).
 *	Never raises SIGPIPE.
 *	io_events() turns what the caller wants (EVENT_READ, EVENT_WRITE
 *	of event.h, or both) into what the loop must wait for: the same for
 *	a plain socket; a TLS io may need to write in order to read, or the
 *	reverse.
 *	io_pending() is the number of bytes io_read() can return without
 *	waiting, already taken from the socket (0 for a plain socket):
 *	when it is not 0 the caller reads again before going back to
 *	poll(), which would not wake for them.
 *	io_shutdown() ends our direction of the connection (the peer reads
 *	an end of file) while its bytes may still be read.
 * DIAGNOSTICS
 *	io_new() returns NULL (ENOMEM; fd is then closed, or EBADF).
 *	io_shutdown() returns 0 or -1 with errno.
 */
#ifndef POLLSMTPD_IO_H
#define POLLSMTPD_IO_H

#include <stddef.h>
#include <sys/types.h>

struct io;

struct io *io_new(int fd);
void io_free(struct io *io);
int io_fd(const struct io *io);
ssize_t io_read(struct io *io, void *buf, size_t len);
ssize_t io_write(struct io *io, const void *buf, size_t len);
int io_events(const struct io *io, int want);
size_t io_pending(const struct io *io);
int io_shutdown(struct io *io);

#endif
