/*
 * NAME
 *	io - the bytes of one connection, and what to poll for
 * SYNOPSIS
 *	See io.h.
 * DESCRIPTION
 *	The plain socket io: read(2), send(2) with MSG_NOSIGNAL (a client
 *	that closed must not kill the daemon with SIGPIPE), EINTR retried
 *	here so that callers see only EAGAIN or a real failure.
 * DIAGNOSTICS
 *	See io.h. Nothing here logs or exits.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event.h"
#include "io.h"

struct io {
	int fd;
};

struct io *
io_new(int fd)
{
	struct io *io;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if ((io = calloc(1, sizeof(*io))) == NULL) {
		(void)close(fd);
		errno = ENOMEM;
		return NULL;
	}
	io->fd = fd;
	return io;
}

void
io_free(struct io *io)
{
	if (io == NULL)
		return;
	(void)close(io->fd);
	free(io);
}

int
io_fd(const struct io *io)
{
	return io->fd;
}

ssize_t
io_read(struct io *io, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(io->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return n;
}

ssize_t
io_write(struct io *io, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(io->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EWOULDBLOCK)
		errno = EAGAIN;
	return n;
}

int
io_events(const struct io *io, int want)
{
	(void)io;
	return want & (EVENT_READ | EVENT_WRITE);
}

size_t
io_pending(const struct io *io)
{
	(void)io;
	return 0;
}

int
io_shutdown(struct io *io)
{
	return shutdown(io->fd, SHUT_WR);
}
