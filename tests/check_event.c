/*
 * NAME
 *	check_event - tests of the poll() loop
 * DESCRIPTION
 *	Readiness reaches the right callback; a descriptor deleted by an
 *	earlier callback of the same iteration is not called (also when its
 *	number is reused at once); deadlines fire once, the nearest first,
 *	not before their time, and can be cleared or rearmed; errors are
 *	reported without being asked for; the idle hook runs before each
 *	poll; a signal does not end the loop.
 *
 *	Quiet descriptors (not polled on every iteration): a pipe or socket
 *	without events goes quiet, and when it becomes readable while quiet
 *	it is served well before the safety net's full scan, also while other
 *	descriptors keep the loop busy; deadlines of quiet descriptors fire
 *	on time and in order; deleting and reusing descriptors while quiet
 *	ones wake up in the same iteration is safe; a lost notification is
 *	made good by SIGIO (the kernel's overflow signal) and, failing
 *	that, by the periodic full scan.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "event.h"

#define MAX_CALLS 64

struct call {
	int fd;
	int events;
	int64_t when;
};

/* What the callbacks saw, in order; reset by each test. */
struct record {
	struct call calls[MAX_CALLS];
	int ncalls;
	int stop_after;			/* stop the loop after this many calls */
	int victim;			/* fd the callback deletes, or -1 */
	int rearm;			/* fd whose deadline the callback resets */
	int reuse;			/* 1: reopen the victim's number at once */
	int reused[2];			/* the pipe that took the number */
};

static struct record rec;

static void record_reset(void);
static void record_cb(struct event_loop *loop, int fd, int events, void *ctx);
static void reused_cb(struct event_loop *loop, int fd, int events, void *ctx);
static void make_pipe(int p[2]);

static void
record_reset(void)
{
	memset(&rec, 0, sizeof(rec));
	rec.stop_after = 1;
	rec.victim = -1;
	rec.rearm = -1;
	rec.reused[0] = rec.reused[1] = -1;
}

static void
make_pipe(int p[2])
{
	ck_assert_int_eq(pipe(p), 0);
}

static void
record_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	char c;

	(void)ctx;
	ck_assert_int_lt(rec.ncalls, MAX_CALLS);
	/* Take the byte, so that the descriptor is not ready again. */
	if (events & EVENT_READ)
		ck_assert_int_eq(read(fd, &c, 1), 1);
	rec.calls[rec.ncalls].fd = fd;
	rec.calls[rec.ncalls].events = events;
	rec.calls[rec.ncalls].when = event_now(loop);
	rec.ncalls++;
	if (rec.victim >= 0 && rec.victim != fd) {
		event_del(loop, rec.victim);
		if (rec.reuse) {
			/* The lowest free number is the victim's: take it back. */
			close(rec.victim);
			make_pipe(rec.reused);
			ck_assert_int_eq(rec.reused[0], rec.victim);
			ck_assert_int_eq(event_add(loop, rec.reused[0],
			    EVENT_READ, reused_cb, NULL), 0);
		}
		rec.victim = -1;
	}
	if (rec.rearm >= 0 && rec.rearm != fd) {
		event_deadline(loop, rec.rearm, 10000);
		rec.rearm = -1;
	}
	if (rec.ncalls >= rec.stop_after)
		event_loop_stop(loop);
}

static void
reused_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)ctx;
	ck_abort_msg("the callback of a descriptor added in this iteration ran");
}

START_TEST(test_add_errors)
{
	struct event_loop *loop = event_loop_new();
	int p[2];

	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), 0);
	errno = 0;
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), -1);
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_int_eq(event_add(loop, -1, EVENT_READ, record_cb, NULL), -1);
	ck_assert_int_eq(errno, EBADF);
	event_del(loop, p[0]);
	event_del(loop, p[0]);		/* harmless */
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), 0);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_read_and_write_ready)
{
	struct event_loop *loop = event_loop_new();
	int p[2];

	record_reset();
	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].fd, p[0]);
	ck_assert_int_eq(rec.calls[0].events, EVENT_READ);

	/* Not asked for: a readable fd with no events wanted stays quiet. */
	record_reset();
	event_set(loop, p[0], 0);
	ck_assert_int_eq(event_add(loop, p[1], EVENT_WRITE, record_cb, NULL), 0);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].fd, p[1]);
	ck_assert_int_eq(rec.calls[0].events, EVENT_WRITE);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* Both are ready; whichever runs first deletes the other. */
START_TEST(test_deleted_not_called_same_iteration)
{
	struct event_loop *loop = event_loop_new();
	int a[2], b[2];

	record_reset();
	rec.stop_after = 1;
	make_pipe(a);
	make_pipe(b);
	ck_assert_int_eq(event_add(loop, a[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, b[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(write(a[1], "x", 1), 1);
	ck_assert_int_eq(write(b[1], "x", 1), 1);
	/* The first callback deletes b[0] (or a[0] if b runs first). */
	rec.victim = b[0];
	rec.stop_after = 2;
	/* Stop by a deadline in case only one callback runs, as it must. */
	ck_assert_int_eq(event_add(loop, a[1], 0, record_cb, NULL), 0);
	event_deadline(loop, a[1], 50);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 2);
	ck_assert_int_eq(rec.calls[0].fd, a[0]);
	ck_assert_int_eq(rec.calls[1].fd, a[1]);
	ck_assert_int_eq(rec.calls[1].events, EVENT_TIMEOUT);
	event_loop_free(loop);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}
END_TEST

/*
 * A callback deletes a ready descriptor, closes it and gets the same
 * number back from pipe(): the new registration must not receive the
 * old descriptor's readiness.
 */
START_TEST(test_reused_number_not_called)
{
	struct event_loop *loop = event_loop_new();
	int a[2], b[2], timer[2];

	record_reset();
	make_pipe(a);
	make_pipe(b);
	make_pipe(timer);
	ck_assert_int_eq(event_add(loop, a[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, b[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, timer[0], 0, record_cb, NULL), 0);
	ck_assert_int_eq(write(a[1], "x", 1), 1);
	ck_assert_int_eq(write(b[1], "x", 1), 1);
	rec.victim = b[0];
	rec.reuse = 1;
	rec.stop_after = 2;
	event_deadline(loop, timer[0], 30);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 2);
	ck_assert_int_eq(rec.calls[0].fd, a[0]);
	ck_assert_int_eq(rec.calls[1].fd, timer[0]);
	event_del(loop, rec.reused[0]);
	close(rec.reused[0]);
	close(rec.reused[1]);
	event_loop_free(loop);
	close(a[0]);
	close(a[1]);
	close(b[1]);
	close(timer[0]);
	close(timer[1]);
}
END_TEST

START_TEST(test_deadline_fires_once_not_early)
{
	struct event_loop *loop = event_loop_new();
	int p[2];
	int64_t start;

	record_reset();
	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), 0);
	start = event_now(loop);
	event_deadline(loop, p[0], 60);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].events, EVENT_TIMEOUT);
	ck_assert_int_ge(rec.calls[0].when - start, 60);
	ck_assert_int_lt(rec.calls[0].when - start, 1000);

	/* Once: the next thing to happen is the write, not another timeout. */
	record_reset();
	ck_assert_int_eq(event_add(loop, p[1], 0, record_cb, NULL), 0);
	event_deadline(loop, p[1], 100);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].fd, p[1]);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_nearest_deadline_first_and_clear)
{
	struct event_loop *loop = event_loop_new();
	int a[2], b[2];

	record_reset();
	make_pipe(a);
	make_pipe(b);
	ck_assert_int_eq(event_add(loop, a[0], 0, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, b[0], 0, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, a[1], 0, record_cb, NULL), 0);
	event_deadline(loop, a[0], 200);
	event_deadline(loop, b[0], 20);
	event_deadline(loop, a[1], 10);
	event_deadline(loop, a[1], -1);	/* cleared: never fires */
	rec.stop_after = 2;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 2);
	ck_assert_int_eq(rec.calls[0].fd, b[0]);
	ck_assert_int_eq(rec.calls[1].fd, a[0]);
	ck_assert_int_ge(rec.calls[1].when - rec.calls[0].when, 100);
	event_loop_free(loop);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}
END_TEST

/* Two deadlines pass together; the first callback rearms the other's. */
START_TEST(test_rearmed_deadline_respected)
{
	struct event_loop *loop = event_loop_new();
	int a[2], stop[2];

	record_reset();
	make_pipe(a);
	make_pipe(stop);
	ck_assert_int_eq(event_add(loop, a[0], 0, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, a[1], 0, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, stop[0], 0, record_cb, NULL), 0);
	event_deadline(loop, a[0], 0);
	event_deadline(loop, a[1], 0);
	event_deadline(loop, stop[0], 80);
	rec.rearm = a[1];
	rec.stop_after = 2;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 2);
	ck_assert_int_eq(rec.calls[0].fd, a[0]);
	ck_assert_int_eq(rec.calls[1].fd, stop[0]);
	event_loop_free(loop);
	close(a[0]);
	close(a[1]);
	close(stop[0]);
	close(stop[1]);
}
END_TEST

START_TEST(test_error_reported_unasked)
{
	struct event_loop *loop = event_loop_new();
	int p[2];

	record_reset();
	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], 0, record_cb, NULL), 0);
	close(p[1]);			/* the read end now reports POLLHUP */
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].events & EVENT_ERROR, EVENT_ERROR);
	ck_assert_int_eq(rec.calls[0].events & EVENT_READ, 0);
	event_loop_free(loop);
	close(p[0]);
}
END_TEST

/*
 * Many descriptors, deleted from the front and the middle: the slot
 * that moves into the hole keeps working under its own number.
 */
START_TEST(test_swap_on_delete_keeps_map)
{
	struct event_loop *loop = event_loop_new();
	int p[40][2], i;

	record_reset();
	for (i = 0; i < 40; i++) {
		make_pipe(p[i]);
		ck_assert_int_eq(event_add(loop, p[i][0], 0, record_cb, NULL),
		    0);
	}
	event_del(loop, p[0][0]);
	event_del(loop, p[17][0]);
	event_set(loop, p[39][0], EVENT_READ);
	event_set(loop, p[38][0], EVENT_READ);
	ck_assert_int_eq(write(p[39][1], "x", 1), 1);
	ck_assert_int_eq(write(p[0][1], "x", 1), 1);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].fd, p[39][0]);
	event_loop_free(loop);
	for (i = 0; i < 40; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}
END_TEST

static int idle_calls;

static void
idle_cb(struct event_loop *loop, void *ctx)
{
	int *fd = ctx;

	idle_calls++;
	if (idle_calls == 1)
		ck_assert_int_eq(write(*fd, "x", 1), 1);
	else
		event_loop_stop(loop);
}

START_TEST(test_idle_before_each_poll)
{
	struct event_loop *loop = event_loop_new();
	int p[2];

	record_reset();
	rec.stop_after = 100;
	idle_calls = 0;
	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), 0);
	event_set_idle(loop, idle_cb, &p[1]);
	/* Idle writes, poll wakes for it, the next idle stops the loop. */
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(idle_calls, 2);
	ck_assert_int_eq(rec.ncalls, 1);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * Several idle hooks: added ones in order, then the one set with
 * event_set_idle(); a hook removed from within a hook is not called
 * again.
 */
static char idle_order[16];
static size_t idle_norder;

static void
idle_mark(struct event_loop *loop, void *ctx)
{
	const char *tag = ctx;

	if (idle_norder < sizeof(idle_order) - 1)
		idle_order[idle_norder++] = *tag;
	if (*tag == 'b')
		event_del_idle(loop, idle_mark, ctx);
}

static void
idle_last(struct event_loop *loop, void *ctx)
{
	(void)ctx;
	if (idle_norder < sizeof(idle_order) - 1)
		idle_order[idle_norder++] = 'z';
	if (idle_norder >= 6)
		event_loop_stop(loop);
}

START_TEST(test_idle_hooks_in_order)
{
	struct event_loop *loop = event_loop_new();
	static char a = 'a', b = 'b', c = 'c';
	int p[2];

	memset(idle_order, 0, sizeof(idle_order));
	idle_norder = 0;
	make_pipe(p);
	/* A deadline of 0 ms keeps poll() from sleeping between iterations. */
	ck_assert_int_eq(event_add(loop, p[0], 0, record_cb, NULL), 0);
	event_set_idle(loop, idle_last, NULL);
	ck_assert_int_eq(event_add_idle(loop, idle_mark, &a), 0);
	ck_assert_int_eq(event_add_idle(loop, idle_mark, &b), 0);
	ck_assert_int_eq(event_add_idle(loop, idle_mark, &c), 0);
	record_reset();
	rec.stop_after = 100;
	event_deadline(loop, p[0], 0);
	ck_assert_int_eq(event_loop_run(loop), 0);
	/* b removed itself: c is skipped once (its slot moved), never doubled. */
	ck_assert_str_eq(idle_order, "abz" "acz");
	/* Removing an unknown hook changes nothing. */
	event_del_idle(loop, idle_mark, &b);
	event_del_idle(loop, idle_last, NULL);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

static void
alarm_handler(int sig)
{
	(void)sig;
}

START_TEST(test_signal_does_not_end_loop)
{
	struct event_loop *loop = event_loop_new();
	struct itimerval it;
	struct sigaction sa;
	int p[2];

	record_reset();
	make_pipe(p);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alarm_handler;	/* no SA_RESTART: poll gets EINTR */
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	memset(&it, 0, sizeof(it));
	it.it_value.tv_usec = 20000;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	ck_assert_int_eq(event_add(loop, p[0], 0, record_cb, NULL), 0);
	event_deadline(loop, p[0], 150);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.ncalls, 1);
	ck_assert_int_eq(rec.calls[0].events, EVENT_TIMEOUT);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * event_loop_again(): a hook that left work asks for another iteration
 * at once. With a pipe that never becomes readable and no deadline,
 * poll() would otherwise sleep for ever (and the test time out).
 */
static int again_calls;

static void
again_cb(struct event_loop *loop, void *ctx)
{
	(void)ctx;
	if (++again_calls < 3)
		event_loop_again(loop);
	else
		event_loop_stop(loop);
}

START_TEST(test_again_does_not_sleep)
{
	struct event_loop *loop = event_loop_new();
	int p[2];

	record_reset();
	again_calls = 0;
	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(event_add_idle(loop, again_cb, NULL), 0);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(again_calls, 3);
	ck_assert_int_eq(rec.ncalls, 0);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ------------------------------------------------------------ quiet */

#define QUIET_MS	20	/* event_loop_quiet_after() of these tests */
#define SIGNAL_BOUND_MS	300	/* served through the signal: far below */
#define FULL_SCAN_MS	2000	/* the safety net (event.c) */

/* A descriptor the tests make ready while it is quiet. */
struct sleeper {
	int fds[2];		/* [0] is registered, [1] makes it ready */
	int written;		/* [1] was written to (while [0] was quiet) */
	int served;		/* its callback ran for EVENT_READ */
	int idle_at_write;	/* qt.idle_runs then */
	int idle_at_served;
	int64_t t_write;
	int64_t t_served;
};

/*
 * What the ticker does: every 10 ms, when every sleeper is quiet, the
 * action (write, or something the test chose) happens once. The
 * ticker stops the loop after 5 s whatever happened, so that a test
 * fails instead of hanging.
 */
struct quiet_test {
	struct sleeper sl[8];
	int nsl;
	int tick[2];
	int ticks;
	int acted;
	int stop_when_served;	/* stop when this many were served */
	int nserved;
	int spin[2];		/* -1, or a pipe whose write end keeps busy */
	long spins;
	void (*action)(struct event_loop *loop, struct quiet_test *qt);
	int delete_others;	/* sleeper_cb: the first served deletes the others */
	int idle_runs;		/* idle hooks run so far: iterations */
	int victim_deleted;
	int reused[2];
};

static struct quiet_test qt;

static void
sleeper_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct sleeper *sl = ctx;
	char c;
	int k;

	if (!(events & EVENT_READ))
		return;
	ck_assert_int_eq(read(fd, &c, 1), 1);
	ck_assert_msg(sl->written, "fd %d readable before it was written", fd);
	sl->served = 1;
	sl->t_served = event_now(loop);
	sl->idle_at_served = qt.idle_runs;
	qt.nserved++;
	/*
	 * The first one served deletes the others: closes them, and takes
	 * the first one's number back at once for a new registration.
	 */
	if (qt.delete_others) {
		qt.delete_others = 0;
		for (k = 0; k < qt.nsl; k++) {
			if (&qt.sl[k] == sl)
				continue;
			event_del(loop, qt.sl[k].fds[0]);
			close(qt.sl[k].fds[0]);
			if (qt.reused[0] < 0) {
				make_pipe(qt.reused);
				ck_assert_int_eq(qt.reused[0], qt.sl[k].fds[0]);
				ck_assert_int_eq(event_add(loop, qt.reused[0],
				    EVENT_READ, reused_cb, NULL), 0);
			}
			qt.sl[k].fds[0] = -1;
			qt.victim_deleted++;
		}
	}
	if (qt.nserved >= qt.stop_when_served)
		event_loop_stop(loop);
}

static void
spin_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)ctx;
	qt.spins++;
}

static int
all_quiet(struct event_loop *loop)
{
	int k;

	for (k = 0; k < qt.nsl; k++)
		if (qt.sl[k].fds[0] >= 0 && !event_is_quiet(loop, qt.sl[k].fds[0]))
			return 0;
	return 1;
}

/* write_all - the default action: every sleeper gets a byte */
static void
write_all(struct event_loop *loop, struct quiet_test *t)
{
	int k;

	for (k = 0; k < t->nsl; k++) {
		t->sl[k].written = 1;
		t->sl[k].t_write = event_now(loop);
		t->sl[k].idle_at_write = t->idle_runs;
		ck_assert_int_eq(write(t->sl[k].fds[1], "x", 1), 1);
	}
}

static void
tick_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	(void)events;
	(void)ctx;
	if (++qt.ticks > 500) {
		event_loop_stop(loop);
		return;
	}
	if (!qt.acted && all_quiet(loop)) {
		qt.acted = 1;
		qt.action(loop, &qt);
	}
	event_deadline(loop, fd, 10);
}

static void
count_idle(struct event_loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	qt.idle_runs++;
}

/* quiet_setup - n sleepers (sockets when sockets, else pipes), a ticker */
static struct event_loop *
quiet_setup(int n, int sockets, int spin)
{
	struct event_loop *loop = event_loop_new();
	int k;

	ck_assert_ptr_nonnull(loop);
	memset(&qt, 0, sizeof(qt));
	qt.nsl = n;
	qt.stop_when_served = n;
	qt.action = write_all;
	qt.spin[0] = qt.spin[1] = -1;
	qt.reused[0] = qt.reused[1] = -1;
	event_loop_quiet_after(loop, QUIET_MS);
	for (k = 0; k < n; k++) {
		if (sockets)
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0,
			    qt.sl[k].fds), 0);
		else
			make_pipe(qt.sl[k].fds);
		ck_assert_int_eq(event_add(loop, qt.sl[k].fds[0], EVENT_READ,
		    sleeper_cb, &qt.sl[k]), 0);
		ck_assert(!event_is_quiet(loop, qt.sl[k].fds[0]));
	}
	ck_assert_int_eq(event_add_idle(loop, count_idle, NULL), 0);
	make_pipe(qt.tick);
	ck_assert_int_eq(event_add(loop, qt.tick[0], 0, tick_cb, NULL), 0);
	event_deadline(loop, qt.tick[0], 10);
	if (spin) {
		/* Always writable: the loop never sleeps, busy the whole time. */
		make_pipe(qt.spin);
		ck_assert_int_eq(event_add(loop, qt.spin[1], EVENT_WRITE,
		    spin_cb, NULL), 0);
	}
	return loop;
}

static void
quiet_teardown(struct event_loop *loop)
{
	int k;

	event_loop_free(loop);
	for (k = 0; k < qt.nsl; k++) {
		if (qt.sl[k].fds[0] >= 0)
			close(qt.sl[k].fds[0]);
		close(qt.sl[k].fds[1]);
	}
	close(qt.tick[0]);
	close(qt.tick[1]);
	if (qt.spin[0] >= 0) {
		close(qt.spin[0]);
		close(qt.spin[1]);
	}
	if (qt.reused[0] >= 0) {
		close(qt.reused[0]);
		close(qt.reused[1]);
	}
}

/*
 * A quiet pipe, then a quiet socket, become readable: each is served,
 * and through the kernel's signal, not the safety net's full scan, in
 * the iteration that got the signal.
 * With _i = 2, 3 another descriptor keeps the loop busy meanwhile.
 */
START_TEST(test_quiet_readable_served)
{
	struct event_loop *loop;
	int sockets = _i & 1, spin = _i >= 2;

	loop = quiet_setup(1, sockets, spin);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_msg(qt.acted, "the descriptor never went quiet");
	ck_assert_msg(qt.sl[0].served, "a quiet descriptor was never served");
	ck_assert_int_lt(qt.sl[0].t_served - qt.sl[0].t_write,
	    SIGNAL_BOUND_MS);
	/*
	 * In the very iteration whose poll() got the signal: one run of
	 * the idle hooks in between, not two (they may take long).
	 */
	ck_assert_int_eq(qt.sl[0].idle_at_served - qt.sl[0].idle_at_write, 1);
	if (spin)
		ck_assert_int_gt(qt.spins, 10);
	/* Served means busy again: polled on every iteration now. */
	ck_assert(!event_is_quiet(loop, qt.sl[0].fds[0]));
	quiet_teardown(loop);
}
END_TEST

/* Never quiet when told so; a write end waiting to write never is. */
START_TEST(test_quiet_off_and_writers_stay_busy)
{
	struct event_loop *loop = event_loop_new();
	int a[2], w[2];

	record_reset();
	make_pipe(a);
	ck_assert_int_eq(pipe2(w, O_NONBLOCK), 0);
	memset(&qt, 0, sizeof(qt));
	event_loop_quiet_after(loop, -1);
	ck_assert_int_eq(event_add(loop, a[0], EVENT_READ, record_cb, NULL), 0);
	ck_assert_int_eq(event_add(loop, a[1], 0, record_cb, NULL), 0);
	event_deadline(loop, a[1], 100);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(rec.calls[0].events, EVENT_TIMEOUT);
	ck_assert(!event_is_quiet(loop, a[0]));
	ck_assert(!event_is_quiet(loop, a[1]));

	/* Quiet allowed: the reader goes quiet, with O_ASYNC on. */
	record_reset();
	event_loop_quiet_after(loop, 10);
	ck_assert_int_eq(event_add(loop, w[1], 0, spin_cb, NULL), 0);
	event_deadline(loop, a[1], 150);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert(event_is_quiet(loop, a[0]));
	ck_assert(event_is_quiet(loop, w[1]));
	ck_assert_int_eq(fcntl(a[0], F_GETFL) & O_ASYNC, O_ASYNC);
	/* Asked to write, a quiet one wakes, and stays busy while it asks. */
	event_set(loop, w[1], EVENT_WRITE);
	ck_assert(!event_is_quiet(loop, w[1]));
	ck_assert_int_eq(fcntl(w[1], F_GETFL) & O_ASYNC, 0);
	record_reset();
	event_deadline(loop, a[1], 150);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert(!event_is_quiet(loop, w[1]));
	ck_assert_int_gt(qt.spins, 10);
	/* Deleted: O_ASYNC is given back. */
	event_del(loop, a[0]);
	ck_assert_int_eq(fcntl(a[0], F_GETFL) & O_ASYNC, 0);
	ck_assert(!event_is_quiet(loop, a[0]));
	event_loop_free(loop);
	close(a[0]);
	close(a[1]);
	close(w[0]);
	close(w[1]);
}
END_TEST

/*
 * Deadlines of quiet descriptors fire on time and in their order,
 * while every one of them is quiet (none is polled).
 */
static int64_t dl_start;
static int dl_order[32];
static int dl_n;
static int dl_fds[32][2];
static int dl_quiet_at_fire;

static void
dl_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	int k = (int)(intptr_t)ctx;

	(void)fd;
	ck_assert_int_eq(events, EVENT_TIMEOUT);
	/* Not early: deadline k is 300 + 10 k ms after dl_start. */
	ck_assert_int_ge(event_now(loop) - dl_start, 300 + 10 * k);
	ck_assert_int_lt(event_now(loop) - dl_start, 300 + 10 * k + 500);
	if (event_is_quiet(loop, fd))
		dl_quiet_at_fire++;
	dl_order[dl_n++] = k;
	if (dl_n == 32)
		event_loop_stop(loop);
}

START_TEST(test_quiet_deadlines_on_time)
{
	struct event_loop *loop = event_loop_new();
	int k;

	event_loop_quiet_after(loop, QUIET_MS);
	dl_n = 0;
	dl_quiet_at_fire = 0;
	dl_start = event_now(loop);
	for (k = 0; k < 32; k++) {
		if (k & 1)
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0,
			    dl_fds[k]), 0);
		else
			make_pipe(dl_fds[k]);
		ck_assert_int_eq(event_add(loop, dl_fds[k][0], EVENT_READ,
		    dl_cb, (void *)(intptr_t)k), 0);
	}
	/* Set in reverse: the heap, not the order of setting, decides. */
	for (k = 31; k >= 0; k--)
		event_deadline(loop, dl_fds[k][0], 300 + 10 * k);
	/* One set and cleared again never fires. */
	event_deadline(loop, dl_fds[5][0], 1);
	event_deadline(loop, dl_fds[5][0], 300 + 50);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(dl_n, 32);
	for (k = 0; k < 32; k++)
		ck_assert_int_eq(dl_order[k], k);
	/* They were quiet when their deadlines came (most, at least). */
	ck_assert_int_ge(dl_quiet_at_fire, 30);
	event_loop_free(loop);
	for (k = 0; k < 32; k++) {
		close(dl_fds[k][0]);
		close(dl_fds[k][1]);
	}
}
END_TEST

/*
 * Three quiet descriptors become readable together; the first one
 * served deletes the two others, closes them and takes one number
 * back at once: neither the deleted nor the new registration is called.
 */
START_TEST(test_quiet_del_and_reuse_while_waking)
{
	struct event_loop *loop;
	int k;

	loop = quiet_setup(3, 0, 0);
	qt.delete_others = 1;
	qt.stop_when_served = 1;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert(qt.acted);
	ck_assert_int_eq(qt.nserved, 1);
	ck_assert_int_eq(qt.victim_deleted, 2);
	/* Run on for 20 ticks: nothing of the deleted ones may come. */
	qt.stop_when_served = 100;
	qt.ticks = 480;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(qt.nserved, 1);
	for (k = 0; k < 3; k++)
		if (qt.sl[k].fds[0] >= 0)
			ck_assert(qt.sl[k].served);
	/* reused[0] took one number; the other deleted one is closed. */
	event_del(loop, qt.reused[0]);
	quiet_teardown(loop);
}
END_TEST

/*
 * A lost notification: O_ASYNC turned off behind the loop's back, so
 * no signal comes. With SIGIO (what the kernel sends when its queue of
 * real-time signals is full) the loop polls everything at once; without
 * it the periodic full scan finds the descriptor within its interval.
 */
static void
lose_signal(struct event_loop *loop, struct quiet_test *t)
{
	int fl = fcntl(t->sl[0].fds[0], F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fcntl(t->sl[0].fds[0], F_SETFL, fl & ~O_ASYNC), 0);
	write_all(loop, t);
}

static void
lose_signal_sigio(struct event_loop *loop, struct quiet_test *t)
{
	lose_signal(loop, t);
	ck_assert_int_eq(kill(getpid(), SIGIO), 0);
}

START_TEST(test_quiet_lost_signal)
{
	struct event_loop *loop;
	int64_t took;

	loop = quiet_setup(1, 1, 0);
	qt.action = _i ? lose_signal_sigio : lose_signal;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert(qt.acted);
	ck_assert_msg(qt.sl[0].served, "the lost descriptor was never served");
	took = qt.sl[0].t_served - qt.sl[0].t_write;
	if (_i)
		ck_assert_int_lt(took, SIGNAL_BOUND_MS);
	else
		ck_assert_int_lt(took, FULL_SCAN_MS + 1000);
	quiet_teardown(loop);
}
END_TEST

/*
 * event_loop_again() still makes poll() not sleep with quiet
 * descriptors: with no deadline left, the next wake-up would be the
 * safety net's full scan, seconds away.
 */
START_TEST(test_again_with_quiet)
{
	struct event_loop *loop;
	int64_t start;

	loop = quiet_setup(1, 0, 0);
	qt.stop_when_served = 1;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert(qt.sl[0].served);
	event_deadline(loop, qt.tick[0], -1);
	again_calls = 0;
	ck_assert_int_eq(event_add_idle(loop, again_cb, NULL), 0);
	start = event_now(loop);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(again_calls, 3);
	ck_assert_int_lt(event_now(loop) - start, FULL_SCAN_MS / 2);
	quiet_teardown(loop);
}
END_TEST

static Suite *
event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_add_errors);
	tcase_add_test(tc, test_read_and_write_ready);
	tcase_add_test(tc, test_deleted_not_called_same_iteration);
	tcase_add_test(tc, test_reused_number_not_called);
	tcase_add_test(tc, test_deadline_fires_once_not_early);
	tcase_add_test(tc, test_nearest_deadline_first_and_clear);
	tcase_add_test(tc, test_rearmed_deadline_respected);
	tcase_add_test(tc, test_error_reported_unasked);
	tcase_add_test(tc, test_swap_on_delete_keeps_map);
	tcase_add_test(tc, test_idle_before_each_poll);
	tcase_add_test(tc, test_idle_hooks_in_order);
	tcase_add_test(tc, test_signal_does_not_end_loop);
	tcase_add_test(tc, test_again_does_not_sleep);
	tcase_add_loop_test(tc, test_quiet_readable_served, 0, 4);
	tcase_add_test(tc, test_quiet_off_and_writers_stay_busy);
	tcase_add_test(tc, test_quiet_deadlines_on_time);
	tcase_add_test(tc, test_quiet_del_and_reuse_while_waking);
	tcase_add_loop_test(tc, test_quiet_lost_signal, 0, 2);
	tcase_add_test(tc, test_again_with_quiet);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(event_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
