/*
 * NAME
 *	check_io - Check suite of lib/io
 * SYNOPSIS
 *	tests/check_io
 * DESCRIPTION
 *	Each test works over a non-blocking AF_UNIX socketpair: one end
 *	belongs to the io under test, the other is the peer, read and
 *	written with plain system calls. The tests look at what the peer
 *	sees and what the io's caller is told: bytes moved whole and in
 *	order (also a write larger than the socket buffer takes, which
 *	must be partial, never lost), EAGAIN when nothing waits, 0 at the
 *	peer's close, EPIPE when writing to a closed peer (with SIGPIPE at
 *	its default action, so a raised signal would kill the test), the
 *	events to poll for, no pending bytes for a plain socket, a
 *	half-close that leaves our reading side open, and io_free()
 *	closing the descriptor.
 * DIAGNOSTICS
 *	Exit status 0 when every test passes.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "io.h"

static int peer = -1;			/* the other end, for the test */
static struct io *io;			/* the end under test */

static void setup(void);
static void teardown(void);
static void assert_closed(int fd);
static void peer_read_exactly(char *buf, size_t len);
static Suite *io_suite(void);

static void
setup(void)
{
	int sv[2];

	/* A SIGPIPE must kill the test, not be ignored behind our back. */
	ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
	    | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_ptr_nonnull(io = io_new(sv[0]));
	ck_assert_int_eq(io_fd(io), sv[0]);
	peer = sv[1];
}

static void
teardown(void)
{
	io_free(io);
	io = NULL;
	if (peer != -1)
		(void)close(peer);
	peer = -1;
}

/* assert_closed - fd is not an open descriptor any more */

static void
assert_closed(int fd)
{
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
}

/* peer_read_exactly - len bytes from the peer, waiting for each with poll */

static void
peer_read_exactly(char *buf, size_t len)
{
	struct pollfd pfd = { .fd = peer, .events = POLLIN };
	size_t have = 0;
	ssize_t n;

	while (have < len) {
		n = read(peer, buf + have, len - have);
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		ck_assert_int_eq(n, -1);
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	}
}

/*
 * Bytes.
 */

START_TEST(test_read_write)
{
	char buf[64];

	ck_assert_int_eq(io_write(io, "250 OK\r\n", 8), 8);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(read(peer, buf, sizeof(buf)), 8);
	ck_assert_str_eq(buf, "250 OK\r\n");

	ck_assert_int_eq(write(peer, "NOOP\r\nQUIT\r\n", 12), 12);
	memset(buf, 0, sizeof(buf));
	/* At most len bytes: the rest waits for the next read. */
	ck_assert_int_eq(io_read(io, buf, 6), 6);
	ck_assert_str_eq(buf, "NOOP\r\n");
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "QUIT\r\n");

	/* Nothing asked, nothing moved. */
	ck_assert_int_eq(io_write(io, "x", 0), 0);
	errno = 0;
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
}
END_TEST

/*
 * More than the socket holds: io_write() takes part of it (never
 * blocking), then EAGAIN; what it said it took arrives whole and in
 * order once the peer reads.
 */

START_TEST(test_write_partial)
{
	enum { BIG = 8 * 1024 * 1024 };
	char *data, *got;
	size_t taken = 0;
	ssize_t n;
	size_t i;

	ck_assert_ptr_nonnull(data = malloc(BIG));
	ck_assert_ptr_nonnull(got = malloc(BIG));
	for (i = 0; i < BIG; i++)
		data[i] = (char)(i * 13 + i / 509);
	n = io_write(io, data, BIG);
	ck_assert_int_gt(n, 0);
	ck_assert_int_lt(n, BIG);
	taken = (size_t)n;
	/* Go on until the socket is full. */
	while ((n = io_write(io, data + taken, BIG - taken)) > 0)
		taken += (size_t)n;
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_lt(taken, BIG);
	peer_read_exactly(got, taken);
	ck_assert(memcmp(got, data, taken) == 0);
	/* Nothing more than what was reported taken. */
	errno = 0;
	ck_assert_int_eq(read(peer, got, 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	free(got);
	free(data);
}
END_TEST

START_TEST(test_read_nothing_waits)
{
	char buf[16];

	errno = 0;
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* Still usable afterwards. */
	ck_assert_int_eq(write(peer, "a", 1), 1);
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 1);
	ck_assert_int_eq(buf[0], 'a');
}
END_TEST

/* The peer's close: its last bytes first, then 0, and 0 again. */

START_TEST(test_read_peer_closed)
{
	char buf[16];

	ck_assert_int_eq(write(peer, "last", 4), 4);
	ck_assert_int_eq(close(peer), 0);
	peer = -1;
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 4);
	ck_assert(memcmp(buf, "last", 4) == 0);
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 0);
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 0);
}
END_TEST

/* Writing to a peer that is gone: EPIPE, and the process lives on. */

START_TEST(test_write_peer_closed)
{
	ck_assert_int_eq(close(peer), 0);
	peer = -1;
	errno = 0;
	ck_assert_int_eq(io_write(io, "221 Bye\r\n", 9), -1);
	ck_assert_int_eq(errno, EPIPE);
	errno = 0;
	ck_assert_int_eq(io_write(io, "again", 5), -1);
	ck_assert_int_eq(errno, EPIPE);
}
END_TEST

/*
 * What to poll for.
 */

START_TEST(test_events_plain)
{
	char buf[4];

	ck_assert_int_eq(io_events(io, 0), 0);
	ck_assert_int_eq(io_events(io, EVENT_READ), EVENT_READ);
	ck_assert_int_eq(io_events(io, EVENT_WRITE), EVENT_WRITE);
	ck_assert_int_eq(io_events(io, EVENT_READ | EVENT_WRITE),
	    EVENT_READ | EVENT_WRITE);
	/* Nothing held where poll() cannot see it, bytes waiting or not. */
	ck_assert_uint_eq(io_pending(io), 0);
	ck_assert_int_eq(write(peer, "abcdef", 6), 6);
	ck_assert_uint_eq(io_pending(io), 0);
	ck_assert_int_eq(io_read(io, buf, 2), 2);
	ck_assert_uint_eq(io_pending(io), 0);
}
END_TEST

/*
 * Half-close: the peer reads our end of file and can still send to us;
 * we can no longer send.
 */

START_TEST(test_shutdown)
{
	char buf[16];

	ck_assert_int_eq(io_write(io, "421 closing\r\n", 13), 13);
	ck_assert_int_eq(io_shutdown(io), 0);
	ck_assert_int_eq(read(peer, buf, sizeof(buf)), 13);
	ck_assert(memcmp(buf, "421 closing\r\n", 13) == 0);
	ck_assert_int_eq(read(peer, buf, sizeof(buf)), 0);

	ck_assert_int_eq(write(peer, "QUIT\r\n", 6), 6);
	ck_assert_int_eq(io_read(io, buf, sizeof(buf)), 6);
	ck_assert(memcmp(buf, "QUIT\r\n", 6) == 0);

	errno = 0;
	ck_assert_int_eq(io_write(io, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
}
END_TEST

/*
 * Ownership of the descriptor.
 */

START_TEST(test_free_closes)
{
	char buf[4];
	int fd = io_fd(io);

	io_free(io);
	io = NULL;
	assert_closed(fd);
	/* The peer sees the connection end. */
	ck_assert_int_eq(read(peer, buf, sizeof(buf)), 0);
	io_free(NULL);
}
END_TEST

START_TEST(test_new_bad_fd)
{
	errno = 0;
	ck_assert_ptr_null(io_new(-1));
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

static Suite *
io_suite(void)
{
	Suite *s = suite_create("io");
	TCase *tc;

	tc = tcase_create("bytes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_read_write);
	tcase_add_test(tc, test_write_partial);
	tcase_add_test(tc, test_read_nothing_waits);
	tcase_add_test(tc, test_read_peer_closed);
	tcase_add_test(tc, test_write_peer_closed);
	suite_add_tcase(s, tc);

	tc = tcase_create("poll");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_events_plain);
	tcase_add_test(tc, test_shutdown);
	suite_add_tcase(s, tc);

	tc = tcase_create("descriptor");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_free_closes);
	tcase_add_test(tc, test_new_bad_fd);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(io_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
