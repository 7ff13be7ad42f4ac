/*
 * NAME
 *	event - the poll() loop: descriptors, deadlines, nothing of SMTP
 * SYNOPSIS
 *	See event.h.
 * DESCRIPTION
 *	The loop keeps one pollfd array that poll() takes as it is, and a
 *	parallel array of handlers (callback, context, deadline). A map from
 *	descriptor number to slot index makes event_add(), event_set(),
 *	event_del() and event_deadline() O(1): event_del() moves the last
 *	slot into the hole, so the array never has gaps.
 *
 *	One iteration: call the idle hooks, compute the poll timeout from the
 *	nearest deadline, poll(), then collect every slot that has events or
 *	an expired deadline into a "fired" list and only then run the
 *	callbacks. A callback may add and delete any descriptor, including
 *	closing one and getting the same number back from accept(): every
 *	registration carries a serial number, and a fired entry whose
 *	descriptor is gone or was registered again is skipped, so a deleted
 *	descriptor's callback is never called later in the same iteration.
 *
 *	Deadlines are kept in the slots and found by a linear scan
 *	(event_timer_nearest(), event_timer_expired()). That is O(n) per
 *	iteration, cheap next to poll() itself, which is O(n) too; the two
 *	functions are the only code that knows how deadlines are stored, so
 *	a heap can replace the scan without touching anything else.
 *
 *	Time is CLOCK_MONOTONIC in milliseconds: a step of the wall clock
 *	neither fires nor delays a timeout.
 * DIAGNOSTICS
 *	event_add() returns -1 with errno ENOMEM or EEXIST (EBADF for a
 *	negative fd). event_set() and event_deadline() on a descriptor that
 *	is not registered are programming errors and panic. event_del() of
 *	an unknown descriptor does nothing. event_loop_run() returns -1 when
 *	poll() fails with another error than EINTR.
 * LIMITS
 *	Memory grows with the highest descriptor number (one int each for
 *	the map) and the number of registered descriptors.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "log.h"

#define EVENT_NO_DEADLINE	INT64_MAX
#define EVENT_MIN_SLOTS		16

struct event_handler {
	event_fn fn;
	void *ctx;
	int64_t deadline;		/* absolute ms, or EVENT_NO_DEADLINE */
	uint64_t serial;		/* which registration of this fd */
};

/* An idle hook of event_add_idle(). */
struct event_idle {
	event_idle_fn fn;
	void *ctx;
};

/* A slot that poll() or a deadline woke, remembered until its callback runs. */
struct event_fired {
	int fd;
	int events;
	uint64_t serial;
};

struct event_loop {
	struct pollfd *pfds;		/* what poll() watches, slots 0..n-1 */
	struct event_handler *handlers;	/* parallel to pfds */
	struct event_fired *fired;	/* same capacity as the slots */
	size_t n;
	size_t cap;
	int *slot_of;			/* fd -> slot index + 1; 0: not registered */
	size_t slot_of_len;
	uint64_t next_serial;
	struct event_idle *idles;	/* event_add_idle(), in order */
	size_t nidles;
	size_t idles_cap;
	event_idle_fn idle_fn;		/* event_set_idle(): runs last */
	void *idle_ctx;
	int64_t now;			/* clock at the last wake-up */
	int stop;
	int again;			/* event_loop_again(): next poll() does not sleep */
};

static int64_t event_clock(void);
static int event_grow_slots(struct event_loop *loop);
static int event_grow_map(struct event_loop *loop, int fd);
static int event_slot(const struct event_loop *loop, int fd);
static short event_to_poll(int events);
static int event_from_poll(short revents);
static int64_t event_timer_nearest(const struct event_loop *loop);
static int event_timer_expired(const struct event_loop *loop, size_t slot);
static int event_poll_timeout(struct event_loop *loop);
static size_t event_collect(struct event_loop *loop);
static void event_dispatch(struct event_loop *loop, size_t nfired);
static void event_run_idle(struct event_loop *loop);

/* event_clock - CLOCK_MONOTONIC in milliseconds */
static int64_t
event_clock(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		log_panic(__func__, "clock_gettime: %s", strerror(errno));
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct event_loop *
event_loop_new(void)
{
	struct event_loop *loop;

	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		return NULL;
	loop->next_serial = 1;
	loop->now = event_clock();
	return loop;
}

void
event_loop_free(struct event_loop *loop)
{
	if (loop == NULL)
		return;
	free(loop->pfds);
	free(loop->handlers);
	free(loop->fired);
	free(loop->slot_of);
	free(loop->idles);
	free(loop);
}

/* event_grow_slots - double the slot arrays; all three or none change */
static int
event_grow_slots(struct event_loop *loop)
{
	size_t cap = loop->cap ? loop->cap * 2 : EVENT_MIN_SLOTS;
	struct pollfd *pfds;
	struct event_handler *handlers;
	struct event_fired *fired;

	/*
	 * Each realloc keeps the old block valid when it fails, and a
	 * bigger block than needed is harmless: only cap says what is
	 * usable, and it changes only when all three succeeded.
	 */
	if ((pfds = realloc(loop->pfds, cap * sizeof(*pfds))) == NULL)
		return -1;
	loop->pfds = pfds;
	if ((handlers = realloc(loop->handlers, cap * sizeof(*handlers))) == NULL)
		return -1;
	loop->handlers = handlers;
	if ((fired = realloc(loop->fired, cap * sizeof(*fired))) == NULL)
		return -1;
	loop->fired = fired;
	loop->cap = cap;
	return 0;
}

/* event_grow_map - make slot_of long enough to hold fd */
static int
event_grow_map(struct event_loop *loop, int fd)
{
	size_t len = loop->slot_of_len ? loop->slot_of_len : 64;
	int *map;

	while (len <= (size_t)fd)
		len *= 2;
	if ((map = realloc(loop->slot_of, len * sizeof(*map))) == NULL)
		return -1;
	memset(map + loop->slot_of_len, 0,
	    (len - loop->slot_of_len) * sizeof(*map));
	loop->slot_of = map;
	loop->slot_of_len = len;
	return 0;
}

/* event_slot - slot index of fd, or -1 when fd is not registered */
static int
event_slot(const struct event_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->slot_of_len)
		return -1;
	return loop->slot_of[fd] - 1;
}

static short
event_to_poll(int events)
{
	short p = 0;

	if (events & EVENT_READ)
		p |= POLLIN;
	if (events & EVENT_WRITE)
		p |= POLLOUT;
	return p;
}

static int
event_from_poll(short revents)
{
	int events = 0;

	if (revents & POLLIN)
		events |= EVENT_READ;
	if (revents & POLLOUT)
		events |= EVENT_WRITE;
	if (revents & (POLLERR | POLLHUP | POLLNVAL))
		events |= EVENT_ERROR;
	return events;
}

int
event_add(struct event_loop *loop, int fd, int events, event_fn fn, void *ctx)
{
	size_t i;

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (event_slot(loop, fd) >= 0) {
		errno = EEXIST;
		return -1;
	}
	if ((size_t)fd >= loop->slot_of_len && event_grow_map(loop, fd) < 0)
		goto fail;
	if (loop->n == loop->cap && event_grow_slots(loop) < 0)
		goto fail;

	i = loop->n++;
	loop->pfds[i].fd = fd;
	loop->pfds[i].events = event_to_poll(events);
	loop->pfds[i].revents = 0;
	loop->handlers[i].fn = fn;
	loop->handlers[i].ctx = ctx;
	loop->handlers[i].deadline = EVENT_NO_DEADLINE;
	loop->handlers[i].serial = loop->next_serial++;
	loop->slot_of[fd] = (int)i + 1;
	return 0;

fail:
	errno = ENOMEM;
	return -1;
}

void
event_set(struct event_loop *loop, int fd, int events)
{
	int i;

	if ((i = event_slot(loop, fd)) < 0)
		log_panic(__func__, "descriptor %d is not registered", fd);
	loop->pfds[i].events = event_to_poll(events);
}

void
event_del(struct event_loop *loop, int fd)
{
	int i;
	size_t last;

	if ((i = event_slot(loop, fd)) < 0)
		return;
	last = loop->n - 1;
	if ((size_t)i != last) {
		loop->pfds[i] = loop->pfds[last];
		loop->handlers[i] = loop->handlers[last];
		loop->slot_of[loop->pfds[i].fd] = i + 1;
	}
	loop->slot_of[fd] = 0;
	loop->n--;
}

void
event_deadline(struct event_loop *loop, int fd, int64_t ms)
{
	int i;

	if ((i = event_slot(loop, fd)) < 0)
		log_panic(__func__, "descriptor %d is not registered", fd);
	if (ms < 0)
		loop->handlers[i].deadline = EVENT_NO_DEADLINE;
	else if (ms > EVENT_NO_DEADLINE - event_clock())
		loop->handlers[i].deadline = EVENT_NO_DEADLINE - 1;
	else
		loop->handlers[i].deadline = event_clock() + ms;
}

void
event_set_idle(struct event_loop *loop, event_idle_fn fn, void *ctx)
{
	loop->idle_fn = fn;
	loop->idle_ctx = ctx;
}

int
event_add_idle(struct event_loop *loop, event_idle_fn fn, void *ctx)
{
	struct event_idle *grown;
	size_t cap;

	if (loop->nidles == loop->idles_cap) {
		cap = loop->idles_cap ? loop->idles_cap * 2 : 4;
		if ((grown = realloc(loop->idles, cap * sizeof(*grown))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		loop->idles = grown;
		loop->idles_cap = cap;
	}
	loop->idles[loop->nidles].fn = fn;
	loop->idles[loop->nidles].ctx = ctx;
	loop->nidles++;
	return 0;
}

/* event_del_idle - keeps the order of the others: they may depend on it */
void
event_del_idle(struct event_loop *loop, event_idle_fn fn, void *ctx)
{
	size_t i;

	for (i = 0; i < loop->nidles; i++) {
		if (loop->idles[i].fn != fn || loop->idles[i].ctx != ctx)
			continue;
		memmove(&loop->idles[i], &loop->idles[i + 1],
		    (loop->nidles - i - 1) * sizeof(loop->idles[0]));
		loop->nidles--;
		return;
	}
}

/*
 * event_run_idle - the added hooks in order, then the one set last. The
 * count is read again after each call: a hook may remove hooks (then one
 * may be skipped for this iteration, never called twice or after its
 * removal).
 */
static void
event_run_idle(struct event_loop *loop)
{
	size_t i;

	for (i = 0; i < loop->nidles && !loop->stop; i++)
		loop->idles[i].fn(loop, loop->idles[i].ctx);
	if (loop->idle_fn != NULL && !loop->stop)
		loop->idle_fn(loop, loop->idle_ctx);
}

void
event_loop_stop(struct event_loop *loop)
{
	loop->stop = 1;
}

void
event_loop_again(struct event_loop *loop)
{
	loop->again = 1;
}

int64_t
event_now(const struct event_loop *loop)
{
	(void)loop;
	return event_clock();
}

/*
 * event_timer_nearest - the earliest deadline of all slots, or
 * EVENT_NO_DEADLINE. Together with event_timer_expired() this is all
 * the loop knows of how deadlines are stored.
 */
static int64_t
event_timer_nearest(const struct event_loop *loop)
{
	int64_t nearest = EVENT_NO_DEADLINE;
	size_t i;

	for (i = 0; i < loop->n; i++)
		if (loop->handlers[i].deadline < nearest)
			nearest = loop->handlers[i].deadline;
	return nearest;
}

/* event_timer_expired - whether the slot's deadline has passed at loop->now */
static int
event_timer_expired(const struct event_loop *loop, size_t slot)
{
	int64_t deadline = loop->handlers[slot].deadline;

	return deadline != EVENT_NO_DEADLINE && deadline <= loop->now;
}

/* event_poll_timeout - milliseconds poll() may sleep: -1 (no deadline) or >= 0 */
static int
event_poll_timeout(struct event_loop *loop)
{
	int64_t nearest = event_timer_nearest(loop);
	int64_t wait;

	if (loop->again) {
		/* Work is left for the next iteration: look, do not sleep. */
		loop->again = 0;
		loop->now = event_clock();
		return 0;
	}
	if (nearest == EVENT_NO_DEADLINE)
		return -1;
	loop->now = event_clock();
	if (nearest <= loop->now)
		return 0;
	wait = nearest - loop->now;
	return wait > INT_MAX ? INT_MAX : (int)wait;
}

/*
 * event_collect - remember every slot that poll() woke or whose
 * deadline passed, before any callback can reorder the slots. A
 * deadline that fires is cleared here: it fires once.
 */
static size_t
event_collect(struct event_loop *loop)
{
	size_t i, nfired = 0;
	int events;

	loop->now = event_clock();
	for (i = 0; i < loop->n; i++) {
		events = event_from_poll(loop->pfds[i].revents);
		loop->pfds[i].revents = 0;
		if (event_timer_expired(loop, i)) {
			events |= EVENT_TIMEOUT;
			loop->handlers[i].deadline = EVENT_NO_DEADLINE;
		}
		if (events == 0)
			continue;
		loop->fired[nfired].fd = loop->pfds[i].fd;
		loop->fired[nfired].events = events;
		loop->fired[nfired].serial = loop->handlers[i].serial;
		nfired++;
	}
	return nfired;
}

/*
 * event_dispatch - run the callbacks of the collected slots. A slot
 * deleted (or deleted and registered again) by an earlier callback of
 * this iteration is skipped: its serial no longer matches. Events are
 * those of the poll() just done; only the timeout is checked again.
 */
static void
event_dispatch(struct event_loop *loop, size_t nfired)
{
	struct event_fired f;
	size_t k;
	int i;

	for (k = 0; k < nfired; k++) {
		/* Copy: a callback's event_add() may move loop->fired. */
		f = loop->fired[k];
		if ((i = event_slot(loop, f.fd)) < 0
		    || loop->handlers[i].serial != f.serial)
			continue;
		/*
		 * event_collect() cleared the deadline that fired; one that
		 * is set again means an earlier callback rearmed the timer,
		 * and the old expiry no longer holds.
		 */
		if ((f.events & EVENT_TIMEOUT)
		    && loop->handlers[i].deadline != EVENT_NO_DEADLINE)
			f.events &= ~EVENT_TIMEOUT;
		if (f.events == 0)
			continue;
		loop->handlers[i].fn(loop, f.fd, f.events, loop->handlers[i].ctx);
	}
}

/*
 * event_loop_run - serve until event_loop_stop()
 *
 * Each iteration calls the idle hooks first, so that work collected by
 * the callbacks (messages to commit, log records) is done before the
 * process sleeps. Returns 0 after event_loop_stop(), or -1 with errno
 * when poll() fails for another reason than a signal.
 */
int
event_loop_run(struct event_loop *loop)
{
	int timeout;

	loop->stop = 0;
	while (!loop->stop) {
		event_run_idle(loop);
		if (loop->stop)
			break;
		timeout = event_poll_timeout(loop);
		if (poll(loop->pfds, loop->n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		event_dispatch(loop, event_collect(loop));
	}
	return 0;
}
