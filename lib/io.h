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
 *	An io starts as a plain socket and may become a TLS connection
 *	(OpenSSL) with the same contract, which is why the contract has
 *	the two questions below.
 *
 *	io_new() takes ownership of fd. io_free() closes it and releases
 *	the io (NULL allowed). io_fd() is the descriptor, for the loop.
 *
 *	io_read() reads at most len bytes: > 0 bytes read, 0 the peer has
 *	closed, -1 with errno (EAGAIN: nothing now, wait as io_events()
 *	says; anything else: the connection is lost).
 *	io_write() writes at most len bytes: >= 0 bytes taken, -1 with
 *	errno as for io_read() (EPIPE and ECONNRESET: the peer is gone).
 *	A plain io never raises SIGPIPE; a TLS one may (OpenSSL writes
 *	with write(2)): a program with TLS connections ignores SIGPIPE.
 *	io_events() turns what the caller wants (EVENT_READ, EVENT_WRITE
 *	of event.h, or both) into what the loop must wait for: the same for
 *	a plain socket; a TLS io may need to write in order to read, or the
 *	reverse.
 *	io_pending() is the number of bytes io_read() can return without
 *	waiting, already taken from the socket (0 for a plain socket):
 *	when it is not 0 the caller reads again before going back to
 *	poll(), which would not wake for them.
 *	io_shutdown() ends our direction of the connection (the peer reads
 *	an end of file; with TLS, a close_notify goes first) while its
 *	bytes may still be read.
 *
 *	TLS (tls.h). io_start_tls() makes the io a server-side TLS
 *	connection of tls's current context: from then on every byte goes
 *	through OpenSSL. Whatever the caller still holds of plaintext it
 *	must throw away (after STARTTLS, RFC 3207). io_handshake() moves
 *	the handshake on; until it is done the caller waits as
 *	io_events() says (whatever it passes as want) and calls it again.
 *	io_read() and io_write() during the handshake move it on too, and
 *	say EAGAIN until it is done. After OpenSSL asked to wait, the same
 *	call is repeated: io_write() after an EAGAIN must be given at
 *	least as many bytes, the same ones first (the caller's buffer may
 *	have moved); io_events() tells what each direction waits for (a
 *	read may wait to write, and the reverse). io_pending() counts the
 *	decrypted bytes OpenSSL holds.
 *	io_start_tls_client() is the same for the client side (the
 *	delivery agent after the server's 220 to STARTTLS): a connection of
 *	the client context tc (tls.h) that sends servername as SNI when it
 *	is a host name, and resumes the session of dest when one is kept.
 *	The client speaks first: the handshake's first wait is for WRITE.
 *	Everything else (io_handshake(), reads, writes, waits) is the same
 *	code for both sides.
 *	io_is_tls() tells whether io_start_tls() was done;
 *	io_tls_describe() writes the protocol and cipher of a finished
 *	handshake, as Postfix names them in Received: "TLSv1.3 with cipher
 *	TLS_AES_256_GCM_SHA384 (256/256 bits)"; io_tls_error() is
 *	OpenSSL's reason for the last TLS failure ("wrong version number"),
 *	or NULL. io_tls_peer_verified() tells, after a finished handshake,
 *	whether the peer's certificate verified (chain to the trust store,
 *	and the name given to io_start_tls_client()), and if not, why
 *	(*why: "self-signed certificate", "no certificate"); nothing is
 *	refused for it. io_tls_resumed() tells whether the handshake
 *	resumed an earlier session.
 * DIAGNOSTICS
 *	io_new() returns NULL (ENOMEM; fd is then closed, or EBADF).
 *	io_shutdown() returns 0 or -1 with errno.
 *	io_start_tls() returns 0, or -1 with errno (ENOMEM; ENOTSUP when
 *	built without OpenSSL; EALREADY when the io is TLS already), as
 *	io_start_tls_client() does.
 *	io_handshake() returns 0 when the handshake is done, -1 with
 *	errno: EAGAIN (wait and call again), EPROTO (the peer does not
 *	speak TLS as we do: io_tls_error() says why), ECONNRESET (it
 *	closed), or another error of the socket. A TLS failure in io_read()
 *	or io_write() is EPROTO too.
 *	io_tls_describe() returns 0, or -1 (no finished handshake, or dst
 *	too small). io_tls_peer_verified() returns 1 (verified), 0 (not),
 *	or -1 (no finished handshake).
 */
#ifndef POLLSMTPD_IO_H
#define POLLSMTPD_IO_H

#include <stddef.h>
#include <sys/types.h>

struct io;
struct tls;
struct tls_client;

struct io *io_new(int fd);
void io_free(struct io *io);
int io_fd(const struct io *io);
ssize_t io_read(struct io *io, void *buf, size_t len);
ssize_t io_write(struct io *io, const void *buf, size_t len);
int io_events(const struct io *io, int want);
size_t io_pending(const struct io *io);
int io_shutdown(struct io *io);
int io_start_tls(struct io *io, struct tls *tls);
int io_start_tls_client(struct io *io, struct tls_client *tc,
    const char *servername, const char *dest);
int io_handshake(struct io *io);
int io_is_tls(const struct io *io);
int io_tls_describe(const struct io *io, char *dst, size_t dstlen);
const char *io_tls_error(const struct io *io);
int io_tls_peer_verified(const struct io *io, const char **why);
int io_tls_resumed(const struct io *io);

#endif
