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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
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
	int clear;			/* fd whose deadline the callback clears */
	int reuse;			/* 1: reopen the victim's number at once */
	int reused[2];			/* the pipe that took the number */
};

static struct record rec;

static void record_reset(void);
static void record_cb(struct event_loop *loop, int fd, int events, void *ctx);
static void reused_cb(struct event_loop *loop, int fd, int events, void *ctx);
static void make_pipe(int p[2]);
static void two_deadlines(int clear);

static void
record_reset(void)
{
	memset(&rec, 0, sizeof(rec));
	rec.stop_after = 1;
	rec.victim = -1;
	rec.rearm = -1;
	rec.clear = -1;
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
	if (rec.clear >= 0 && rec.clear != fd) {
		event_deadline(loop, rec.clear, -1);
		rec.clear = -1;
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

/*
 * two_deadlines - two deadlines pass together and the first callback
 * changes the other's (rearms it for later, or clears it): the expiry
 * already collected is not delivered; a third descriptor's deadline
 * ends the run.
 */
static void
two_deadlines(int clear)
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
	if (clear)
		rec.clear = a[1];
	else
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

/* The first callback rearms the other's deadline. */
START_TEST(test_rearmed_deadline_respected)
{
	two_deadlines(0);
}
END_TEST

/* The first callback clears it (as a timer deleted is not called). */
START_TEST(test_cleared_deadline_not_delivered)
{
	two_deadlines(1);
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
 * Descriptors that all go idle together, with nothing else to wake the
 * loop before a timer far away: they go quiet in their time, not at the
 * timer's wake-up (the loop wakes for the quiet check they are due),
 * and then the loop sleeps: a handful of iterations, no busy polling.
 */
#define BURST_N		20
#define BURST_LOOK_MS	400

struct burst {
	int fds[BURST_N][2];
	int quiet_at_look;
	unsigned long idle_runs;
};

static void
burst_read(struct event_loop *loop, int fd, int events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)ctx;
	ck_abort_msg("nothing was written to a burst descriptor");
}

static void
burst_look(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct burst *b = ctx;
	int k;

	(void)t;
	for (k = 0; k < BURST_N; k++)
		b->quiet_at_look += event_is_quiet(loop, b->fds[k][0]);
	event_loop_stop(loop);
}

static void
burst_idle(struct event_loop *loop, void *ctx)
{
	(void)loop;
	((struct burst *)ctx)->idle_runs++;
}

START_TEST(test_quiet_without_other_events)
{
	struct event_loop *loop = event_loop_new();
	struct event_timer *t;
	struct burst b;
	int k;

	ck_assert_ptr_nonnull(loop);
	memset(&b, 0, sizeof(b));
	event_loop_quiet_after(loop, QUIET_MS);
	for (k = 0; k < BURST_N; k++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, b.fds[k]),
		    0);
		ck_assert_int_eq(event_add(loop, b.fds[k][0], EVENT_READ,
		    burst_read, &b), 0);
	}
	ck_assert_int_eq(event_add_idle(loop, burst_idle, &b), 0);
	ck_assert_ptr_nonnull(t = event_timer_add(loop, BURST_LOOK_MS,
	    burst_look, &b));
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_msg(b.quiet_at_look == BURST_N, "%d of %d descriptors "
	    "quiet after %d ms (quiet_after %d ms)", b.quiet_at_look, BURST_N,
	    BURST_LOOK_MS, QUIET_MS);
	/* Woken for the checks only: far fewer than one per millisecond. */
	ck_assert_msg(b.idle_runs <= 20, "%lu iterations in %d ms",
	    b.idle_runs, BURST_LOOK_MS);
	event_timer_del(t);
	event_loop_free(loop);
	for (k = 0; k < BURST_N; k++) {
		close(b.fds[k][0]);
		close(b.fds[k][1]);
	}
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

/* ------------------------------------------------------------ timers */

/*
 * A probe: a timer or a descriptor's deadline that notes its tag in
 * torder when it fires, then does its action. Timers are upper case,
 * deadlines lower case in these tests.
 */
struct tprobe {
	char tag;
	struct event_timer *t;		/* NULL for a descriptor's probe */
	int calls;
	int64_t when;			/* event_now() of the last call */
	int armed_in_cb;		/* event_timer_armed() inside the call */
	int rearms;			/* set itself again this many times */
	int64_t rearm_ms;
	int del_self;			/* delete itself in its callback */
	struct tprobe *victim;		/* a timer it deletes, or NULL */
	struct tprobe *spawn;		/* a timer it adds (ms 0), or NULL */
	int64_t iter;			/* tidle_runs at the last call */
};

static char torder[64];
static size_t ntorder;
static size_t tstop_after;		/* stop when torder is this long */
static int64_t tidle_runs;		/* iterations: the idle hook counts */

static void tprobe_timer_cb(struct event_loop *loop, struct event_timer *t,
    void *ctx);
static void tprobe_fd_cb(struct event_loop *loop, int fd, int events,
    void *ctx);
static void tprobe_fired(struct event_loop *loop, struct tprobe *p);
static void tcount_idle(struct event_loop *loop, void *ctx);
static struct event_loop *tsetup(size_t stop_after);

static void
tcount_idle(struct event_loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	tidle_runs++;
}

static struct event_loop *
tsetup(size_t stop_after)
{
	struct event_loop *loop = event_loop_new();

	ck_assert_ptr_nonnull(loop);
	memset(torder, 0, sizeof(torder));
	ntorder = 0;
	tstop_after = stop_after;
	tidle_runs = 0;
	ck_assert_int_eq(event_add_idle(loop, tcount_idle, NULL), 0);
	return loop;
}

static void
tprobe_fired(struct event_loop *loop, struct tprobe *p)
{
	ck_assert_uint_lt(ntorder, sizeof(torder) - 1);
	torder[ntorder++] = p->tag;
	p->calls++;
	p->when = event_now(loop);
	p->iter = tidle_runs;
	if (p->victim != NULL) {
		event_timer_del(p->victim->t);
		p->victim->t = NULL;
		p->victim = NULL;
	}
	if (p->spawn != NULL) {
		/* Likely in the memory just freed: it must not inherit a call. */
		p->spawn->t = event_timer_add(loop, 0, tprobe_timer_cb, p->spawn);
		ck_assert_ptr_nonnull(p->spawn->t);
		p->spawn = NULL;
	}
	if (ntorder >= tstop_after)
		event_loop_stop(loop);
}

static void
tprobe_timer_cb(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct tprobe *p = ctx;

	ck_assert_ptr_eq(t, p->t);
	p->armed_in_cb = event_timer_armed(t);
	if (p->rearms > 0) {
		p->rearms--;
		event_timer_set(t, p->rearm_ms);
	}
	if (p->del_self) {
		event_timer_del(t);
		p->t = NULL;
	}
	tprobe_fired(loop, p);
}

static void
tprobe_fd_cb(struct event_loop *loop, int fd, int events, void *ctx)
{
	(void)fd;
	ck_assert_int_eq(events, EVENT_TIMEOUT);
	tprobe_fired(loop, ctx);
}

/* One-shot, on time (not early, not much later), then disarmed. */
START_TEST(test_timer_fires_on_time)
{
	struct event_loop *loop = tsetup(2);
	struct tprobe a = { .tag = 'A' }, b = { .tag = 'B' },
	    idle = { .tag = 'I' }, kept = { .tag = 'K' };
	int64_t start = event_now(loop);

	ck_assert_ptr_nonnull(a.t = event_timer_add(loop, 60, tprobe_timer_cb,
	    &a));
	ck_assert_ptr_nonnull(b.t = event_timer_add(loop, 200,
	    tprobe_timer_cb, &b));
	/* Made unarmed: never fires until set. */
	ck_assert_ptr_nonnull(idle.t = event_timer_add(loop, -1,
	    tprobe_timer_cb, &idle));
	ck_assert(event_timer_armed(a.t));
	ck_assert(!event_timer_armed(idle.t));
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "AB");
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_ge(a.when - start, 60);
	ck_assert_int_lt(a.when - start, 1000);
	ck_assert_int_ge(b.when - start, 200);
	/* Not armed in its own callback any more, nor after. */
	ck_assert(!a.armed_in_cb);
	ck_assert(!event_timer_armed(a.t));

	/* Armed later, the unarmed one fires like any other. */
	tstop_after = 3;
	start = event_now(loop);
	event_timer_set(idle.t, 30);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "ABI");
	ck_assert_int_ge(idle.when - start, 30);
	ck_assert_int_eq(a.calls, 1);
	event_timer_del(a.t);
	event_timer_del(b.t);
	event_timer_del(NULL);		/* harmless */
	/* Armed or not, what is not deleted goes with the loop. */
	ck_assert_ptr_nonnull(kept.t = event_timer_add(loop, 5000,
	    tprobe_timer_cb, &kept));
	event_loop_free(loop);
}
END_TEST

/*
 * Rearmed: by its own callback (it fires again, each time a whole
 * interval later), before it fires (the later time holds), and
 * disarmed (it never fires).
 */
START_TEST(test_timer_rearm)
{
	struct event_loop *loop = tsetup(4);
	struct tprobe a = { .tag = 'A', .rearms = 2, .rearm_ms = 40 },
	    b = { .tag = 'B' }, d = { .tag = 'D' };
	int64_t start = event_now(loop);

	ck_assert_ptr_nonnull(a.t = event_timer_add(loop, 30, tprobe_timer_cb,
	    &a));
	ck_assert_ptr_nonnull(b.t = event_timer_add(loop, 20, tprobe_timer_cb,
	    &b));
	ck_assert_ptr_nonnull(d.t = event_timer_add(loop, 10, tprobe_timer_cb,
	    &d));
	event_timer_set(b.t, 250);
	event_timer_set(d.t, -1);
	ck_assert(!event_timer_armed(d.t));
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "AAAB");
	ck_assert_int_eq(a.calls, 3);
	ck_assert_int_eq(d.calls, 0);
	ck_assert_int_ge(a.when - start, 30 + 40 + 40);
	ck_assert_int_ge(b.when - start, 250);
	ck_assert(!event_timer_armed(a.t));
	event_loop_free(loop);
}
END_TEST

/*
 * Deleted inside its own callback, also right after it set itself
 * again: never called again, and nothing of it is touched (valgrind,
 * ASan).
 */
START_TEST(test_timer_delete_in_own_callback)
{
	struct event_loop *loop = tsetup(3);
	struct tprobe a = { .tag = 'A', .del_self = 1 },
	    r = { .tag = 'R', .rearms = 1, .rearm_ms = 0, .del_self = 1 },
	    stop = { .tag = 'S' };

	ck_assert_ptr_nonnull(a.t = event_timer_add(loop, 0, tprobe_timer_cb,
	    &a));
	ck_assert_ptr_nonnull(r.t = event_timer_add(loop, 10, tprobe_timer_cb,
	    &r));
	ck_assert_ptr_nonnull(stop.t = event_timer_add(loop, 80,
	    tprobe_timer_cb, &stop));
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "ARS");
	ck_assert_ptr_null(a.t);
	ck_assert_ptr_null(r.t);
	event_loop_free(loop);
}
END_TEST

/*
 * Two timers and a deadline expire in the same iteration. The first
 * called deletes the second timer, which is then not called, and adds
 * a new one (which malloc() is likely to place where the deleted one
 * was): the new one fires in a later iteration, once, not as the
 * deleted one. A deadline's callback deleting a timer that expired
 * with it works the same.
 */
START_TEST(test_timer_delete_in_other_callback)
{
	struct event_loop *loop = tsetup(3);
	struct tprobe a = { .tag = 'A' }, b = { .tag = 'B' },
	    c = { .tag = 'C' }, x = { .tag = 'x' }, y = { .tag = 'Y' },
	    stop = { .tag = 'S' };
	int p[2];

	make_pipe(p);
	ck_assert_int_eq(event_add(loop, p[0], 0, tprobe_fd_cb, &x), 0);
	ck_assert_ptr_nonnull(a.t = event_timer_add(loop, 0, tprobe_timer_cb,
	    &a));
	ck_assert_ptr_nonnull(b.t = event_timer_add(loop, 0, tprobe_timer_cb,
	    &b));
	event_deadline(loop, p[0], 0);
	ck_assert_ptr_nonnull(y.t = event_timer_add(loop, 0, tprobe_timer_cb,
	    &y));
	a.victim = &b;
	a.spawn = &c;
	x.victim = &y;
	ck_assert_ptr_nonnull(stop.t = event_timer_add(loop, 100,
	    tprobe_timer_cb, &stop));
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "AxC");
	ck_assert_int_eq(b.calls, 0);
	ck_assert_int_eq(y.calls, 0);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_gt(c.iter, a.iter);
	ck_assert_int_eq(x.iter, a.iter);
	/* Nothing else is left to fire but the stop timer. */
	tstop_after = 4;
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "AxCS");
	ck_assert_int_eq(c.calls, 1);
	event_loop_free(loop);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * Deleted before it fires, also after its time passed but before the
 * loop looked, or disarmed by an earlier callback of the iteration in
 * which it expired: it never fires.
 */
static void
tdisarm_cb(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct tprobe *p = ctx;

	(void)t;
	/* Disarmed, not deleted: tprobe_fired() must not see a victim. */
	event_timer_set(p->victim->t, -1);
	p->victim = NULL;
	tprobe_fired(loop, p);
}

START_TEST(test_timer_never_fires_after_delete)
{
	struct event_loop *loop = tsetup(2);
	struct tprobe a = { .tag = 'A' }, b = { .tag = 'B' },
	    late = { .tag = 'L' }, d = { .tag = 'D' }, v = { .tag = 'V' },
	    stop = { .tag = 'S' };
	int64_t start = event_now(loop);

	ck_assert_ptr_nonnull(a.t = event_timer_add(loop, 30, tprobe_timer_cb,
	    &a));
	ck_assert_ptr_nonnull(b.t = event_timer_add(loop, 60, tprobe_timer_cb,
	    &b));
	ck_assert_ptr_nonnull(late.t = event_timer_add(loop, 0,
	    tprobe_timer_cb, &late));
	ck_assert_ptr_nonnull(d.t = event_timer_add(loop, 0, tdisarm_cb, &d));
	ck_assert_ptr_nonnull(v.t = event_timer_add(loop, 0, tprobe_timer_cb,
	    &v));
	d.victim = &v;
	ck_assert_ptr_nonnull(stop.t = event_timer_add(loop, 150,
	    tprobe_timer_cb, &stop));
	event_timer_del(a.t);
	event_timer_del(b.t);
	/* Its time has passed; the loop has not looked yet. */
	while (event_now(loop) - start < 5)
		;
	event_timer_del(late.t);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "DS");
	ck_assert_int_ge(stop.when - start, 150);
	ck_assert_int_eq(v.calls, 0);
	ck_assert(!event_timer_armed(v.t));
	event_loop_free(loop);
}
END_TEST

/*
 * Timers and deadlines in one order: by time, and at the same time by
 * the order they were set, whichever kind. Set out of order.
 */
START_TEST(test_timers_and_deadlines_interleaved)
{
	struct event_loop *loop = tsetup(10);
	struct tprobe t[5], d[5];
	int p[5][2], k;
	/* Tags by expected position: "AbCdeFgHIj". */
	static const struct {
		int timer;
		int64_t ms;
		char tag;
	} plan[10] = {
		{ 0, 120, 'e' }, { 1, 0, 'A' }, { 0, 40, 'b' },
		{ 1, 140, 'F' }, { 1, 60, 'C' }, { 0, 80, 'd' },
		/* Same ms, set in this order: deadline, timer; timer, deadline. */
		{ 0, 200, 'g' }, { 1, 200, 'H' }, { 1, 240, 'I' },
		{ 0, 240, 'j' },
	};
	int nt = 0, nd = 0;

	memset(t, 0, sizeof(t));
	memset(d, 0, sizeof(d));
	for (k = 0; k < 5; k++) {
		make_pipe(p[k]);
		ck_assert_int_eq(event_add(loop, p[k][0], EVENT_READ,
		    tprobe_fd_cb, &d[k]), 0);
	}
	for (k = 0; k < 10; k++) {
		if (plan[k].timer) {
			t[nt].tag = plan[k].tag;
			ck_assert_ptr_nonnull(t[nt].t = event_timer_add(loop,
			    plan[k].ms, tprobe_timer_cb, &t[nt]));
			nt++;
		} else {
			d[nd].tag = plan[k].tag;
			event_deadline(loop, p[nd][0], plan[k].ms);
			nd++;
		}
	}
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "AbCdeFgHIj");
	event_loop_free(loop);
	for (k = 0; k < 5; k++) {
		close(p[k][0]);
		close(p[k][1]);
	}
}
END_TEST

/*
 * Many timers: n set at random far times, each set again at another,
 * half deleted at random, the rest set to fire now in a random order:
 * they fire in that order (same time: order of setting). The CPU time
 * per timer grows with log n, not n: at 64 times the timers, a heap
 * pays about 1.6 times per timer (a bit more for the cache), a list
 * kept in order 64 times; the bound sits between them.
 */
#define MANY_SMALL	1000
#define MANY_LARGE	64000
#define MANY_RATIO_MAX	12.0

/* No ck_assert() while timed: each one writes to Check's pipe. */
struct many {
	struct event_timer **t;
	size_t *perm;
	size_t n, fired, next;
	size_t bad;			/* fired out of order, or not its own */
	int nomem;			/* an event_timer_add() failed */
	uint64_t rng;
};

static struct many many;

static uint64_t
many_random(void)
{
	/* xorshift64: the same sequence each run, no libc state. */
	many.rng ^= many.rng << 13;
	many.rng ^= many.rng >> 7;
	many.rng ^= many.rng << 17;
	return many.rng;
}

static void
many_shuffle(size_t *v, size_t n)
{
	size_t i, j, x;

	for (i = n; i > 1; i--) {
		j = (size_t)(many_random() % i);
		x = v[i - 1];
		v[i - 1] = v[j];
		v[j] = x;
	}
}

static void
many_cb(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	size_t k = (size_t)(uintptr_t)ctx;

	if (t != many.t[k] || k != many.perm[many.next])
		many.bad++;
	many.next++;
	if (++many.fired == many.n / 2)
		event_loop_stop(loop);
}

/* many_round - one round with n timers; its CPU time in nanoseconds */
static double
many_round(size_t n)
{
	struct event_loop *loop = event_loop_new();
	struct timespec t0, t1;
	size_t k, *all;

	ck_assert_ptr_nonnull(loop);
	ck_assert_ptr_nonnull(many.t = calloc(n, sizeof(*many.t)));
	ck_assert_ptr_nonnull(all = calloc(n, sizeof(*all)));
	many.n = n;
	many.fired = many.next = many.bad = 0;
	many.nomem = 0;
	for (k = 0; k < n; k++)
		all[k] = k;
	many_shuffle(all, n);
	ck_assert_int_eq(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0), 0);
	for (k = 0; k < n; k++)
		if ((many.t[k] = event_timer_add(loop, 1000000
		    + (int64_t)(many_random() % 9000000), many_cb,
		    (void *)(uintptr_t)k)) == NULL)
			many.nomem = 1;
	ck_assert(!many.nomem);
	for (k = 0; k < n; k++)
		event_timer_set(many.t[k],
		    1000000 + (int64_t)(many_random() % 9000000));
	/* The first half of a shuffle is deleted, the rest fire now. */
	for (k = 0; k < n / 2; k++) {
		event_timer_del(many.t[all[k]]);
		many.t[all[k]] = NULL;
	}
	many.perm = all + n / 2;
	many_shuffle(many.perm, n - n / 2);
	for (k = 0; k < n - n / 2; k++)
		event_timer_set(many.t[many.perm[k]], 0);
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_int_eq(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1), 0);
	ck_assert_uint_eq(many.fired, n / 2);
	ck_assert_msg(many.bad == 0, "%zu of %zu timers fired out of order",
	    many.bad, n / 2);
	event_loop_free(loop);		/* frees the timers that fired */
	free(many.t);
	free(all);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e9
	    + (double)(t1.tv_nsec - t0.tv_nsec);
}

START_TEST(test_many_timers_log_n)
{
	double small, large, best_small = 0, best_large = 0, ratio;
	int round, k;

	many.rng = 0x9e3779b97f4a7c15ULL;
	/* The best of three each: other processes only ever add time. */
	for (round = 0; round < 3; round++) {
		small = 0;
		for (k = 0; k < MANY_LARGE / MANY_SMALL; k++)
			small += many_round(MANY_SMALL);
		large = many_round(MANY_LARGE);
		if (round == 0 || small < best_small)
			best_small = small;
		if (round == 0 || large < best_large)
			best_large = large;
	}
	ratio = best_large / best_small;
	fprintf(stderr, "many timers: %.0f ns per timer at %d, %.0f at %d "
	    "(ratio %.2f)\n", best_small / MANY_LARGE, MANY_SMALL,
	    best_large / MANY_LARGE, MANY_LARGE, ratio);
	ck_assert_msg(ratio < MANY_RATIO_MAX, "cost per timer grew %.2f times "
	    "from %d to %d timers", ratio, MANY_SMALL, MANY_LARGE);
}
END_TEST

/*
 * While every descriptor is quiet (none polled), a timer fires on
 * time, not at the safety net's full scan, and a descriptor it makes
 * readable is served through the kernel's signal.
 */
static int64_t tquiet_since;

static void
tquiet_cb(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct tprobe *p = ctx;

	(void)t;
	ck_assert_msg(all_quiet(loop), "not every descriptor was quiet");
	tprobe_fired(loop, p);
	write_all(loop, &qt);
}

/* tquiet_tick - every 10 ms until all are quiet, then arms the probe */
static void
tquiet_tick(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct tprobe *p = ctx;

	if (!all_quiet(loop)) {
		event_timer_set(t, 10);
		return;
	}
	tquiet_since = event_now(loop);
	event_timer_set(p->t, 400);
}

static void
tstop_cb(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	(void)t;
	(void)ctx;
	event_loop_stop(loop);
}

START_TEST(test_timer_while_quiet)
{
	struct event_loop *loop;
	struct event_timer *bound, *tick;
	struct tprobe a = { .tag = 'A' };

	loop = quiet_setup(4, 1, 0);
	/* Not the deadline ticker: this one stops once all are quiet. */
	event_deadline(loop, qt.tick[0], -1);
	memset(torder, 0, sizeof(torder));
	ntorder = 0;
	tstop_after = 100;
	tquiet_since = -1;
	ck_assert_ptr_nonnull(a.t = event_timer_add(loop, -1, tquiet_cb, &a));
	ck_assert_ptr_nonnull(tick = event_timer_add(loop, 10, tquiet_tick,
	    &a));
	/* A test that fails does not hang. */
	ck_assert_ptr_nonnull(bound = event_timer_add(loop, 5000, tstop_cb,
	    NULL));
	ck_assert_int_eq(event_loop_run(loop), 0);
	ck_assert_str_eq(torder, "A");
	ck_assert_int_ge(a.when - tquiet_since, 400);
	ck_assert_int_lt(a.when - tquiet_since, FULL_SCAN_MS);
	ck_assert_int_eq(qt.nserved, 4);
	ck_assert_int_lt(qt.sl[0].t_served - qt.sl[0].t_write,
	    SIGNAL_BOUND_MS);
	event_timer_del(a.t);
	event_timer_del(bound);
	event_timer_del(tick);
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
	tcase_add_test(tc, test_cleared_deadline_not_delivered);
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
	tcase_add_test(tc, test_quiet_without_other_events);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("timers");
	tcase_add_test(tc, test_timer_fires_on_time);
	tcase_add_test(tc, test_timer_rearm);
	tcase_add_test(tc, test_timer_delete_in_own_callback);
	tcase_add_test(tc, test_timer_delete_in_other_callback);
	tcase_add_test(tc, test_timer_never_fires_after_delete);
	tcase_add_test(tc, test_timers_and_deadlines_interleaved);
	tcase_add_test(tc, test_many_timers_log_n);
	tcase_add_test(tc, test_timer_while_quiet);
	tcase_set_timeout(tc, 120);
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
