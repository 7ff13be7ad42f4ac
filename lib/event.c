/*
 * NAME
 *	event - the poll() loop: descriptors, deadlines, timers, nothing of SMTP
 * SYNOPSIS
 *	See event.h.
 * DESCRIPTION
 *	The loop keeps one pollfd array that poll() takes as it is, and a
 *	parallel array of handlers (callback, context, deadline, activity). A
 *	map from descriptor number to slot index makes event_add(),
 *	event_set(), event_del() and event_deadline() O(1) (O(log n) with a
 *	deadline): a slot leaves no hole, another one is moved into it.
 *
 *	Busy and quiet descriptors. poll() costs O(n) per call, and so does
 *	waking up from it: with 10,000 idle clients one wake-up is about
 *	3 ms here, more than a fresh client's whole transaction should
 *	take. So the array is split in two runs:
 *
 *	    [0, nbusy)   busy: polled on every iteration
 *	    [nbusy, n)   quiet: not polled; the kernel tells us when one
 *	                 of them becomes ready
 *
 *	A descriptor starts busy and becomes quiet when it has had no event
 *	for quiet_after ms (50 by default; event_loop_quiet_after()) and
 *	waits for nothing that comes at once (EVENT_WRITE). Only sockets and
 *	pipes can be quiet (fstat() tells, once): for them the loop turns on
 *	signal-driven I/O (O_ASYNC, F_SETOWN to this process, F_SETSIG to
 *	EVENT_SIGNAL), so that data, a connection to accept, a hang-up or
 *	an error on a quiet descriptor queues a real-time signal carrying
 *	the descriptor number. That signal is blocked (and ignored, should
 *	anyone unblock it) and read from a signalfd that is itself a busy
 *	descriptor of the loop. Its callback moves each named descriptor
 *	back to the busy run (O_ASYNC off again), and before the iteration
 *	ends one poll() with timeout 0 of those woken slots serves what they
 *	are ready for (not one iteration later: the idle hooks in between
 *	may take long, a group commit's fsync). Anything else (the
 *	daemon's signalfd, a message queue) is always busy.
 *
 *	Going quiet is checked for at most every quiet_after / 4 ms, on the
 *	busy run only. The loop wakes for a check when a busy descriptor is
 *	due to go quiet (next_quiet_due), even with nothing else to do: else
 *	a burst of clients that go idle together would stay polled until
 *	the next event, which may be a deadline minutes away. After O_ASYNC is set, one poll() of that descriptor
 *	with timeout 0 closes the race with data that came just before:
 *	a descriptor found ready stays busy.
 *
 *	When too many signals are queued (RLIMIT_SIGPENDING), the kernel
 *	sends plain SIGIO instead, without a descriptor number: the loop
 *	then polls the whole array once (a "full scan"). A full scan is
 *	also made every EVENT_FULL_SCAN_MS (2 s) while any descriptor is
 *	quiet, as a safety net that bounds the latency of any notification
 *	that could ever be lost; one scan of 10,000 quiet sockets takes
 *	3-5 ms here, so the net costs 0.15-0.25% of a core. The full scan uses timeout 0: a blocking poll() over every
 *	descriptor is exactly the cost this design avoids.
 *
 *	So an iteration costs O(busy + expired timers + signals), however
 *	many descriptors are quiet; with no traffic at all the loop sleeps
 *	in a poll() of the busy run and wakes for the safety net only.
 *
 *	Signals are process-wide: one loop per process uses them (the
 *	first that needs to; a loop made in a child after fork() may take
 *	them over). Another loop in the same process keeps every descriptor
 *	busy, which is correct, only slower.
 *
 *	One iteration: call the idle hooks, compute the poll timeout from
 *	the nearest deadline or timer (and the next full scan), poll() the
 *	busy run (or everything), then collect every descriptor that has
 *	events or an expired deadline, and every expired timer, into a
 *	"fired" list and only then run the callbacks. A callback may add and delete any descriptor, including
 *	closing one and getting the same number back from accept(): every
 *	registration carries a serial number, and a fired entry whose
 *	descriptor is gone or was registered again is skipped, so a deleted
 *	descriptor's callback is never called later in the same iteration.
 *	Moving slots between the runs is safe at any time for the same
 *	reason: the fired list names descriptors, not slots.
 *
 *	Deadlines are a binary heap ordered by time, then by the order they
 *	were set (equal deadlines fire first set, first called): the nearest
 *	is O(1), setting or clearing one O(log n), and only expired ones are
 *	looked at. A linear scan of every handler per iteration would be the
 *	next O(n) once poll() no longer is.
 *
 *	Timers (event_timer_add()) are for what belongs to no descriptor: a
 *	restart backoff, a retry time, a resolver's timeout. They live in
 *	the same heap as the deadlines, an entry naming either a descriptor
 *	or a timer, so that one order (time, then when set) holds for both,
 *	the poll timeout is one look at the top, and a timer costs what a
 *	deadline does: O(log n) to set, clear or delete, nothing while it
 *	waits. A timer is a small object of its own that knows its heap
 *	position and, between being collected and being called, its entry
 *	in the fired list: setting or deleting it clears that entry (O(1)),
 *	so a timer deleted by an earlier callback of the iteration is never
 *	called, and its memory, even when malloc() hands it out again at
 *	once, is never looked at. The heap and the fired list have room
 *	for one entry per slot and one per timer (grown by event_add() and
 *	event_timer_add(), the only calls that can fail), so arming a
 *	deadline or a timer never allocates.
 *
 *	Time is CLOCK_MONOTONIC in milliseconds: a step of the wall clock
 *	neither fires nor delays a timeout.
 * DIAGNOSTICS
 *	event_add() returns -1 with errno ENOMEM or EEXIST (EBADF for a
 *	negative fd), event_timer_add() NULL with errno ENOMEM.
 *	event_set() and event_deadline() on a descriptor that
 *	is not registered are programming errors and panic. event_del() of
 *	an unknown descriptor does nothing. event_loop_run() returns -1 when
 *	poll() fails with another error than EINTR. When signal-driven I/O
 *	cannot be set up (or fcntl() refuses it for a descriptor), the
 *	descriptors concerned simply stay busy.
 * LIMITS
 *	Memory grows with the highest descriptor number (one int each for
 *	the map), the number of registered descriptors (a handler, a
 *	pollfd, a fired entry and a heap entry each) and of timers (an
 *	object, a fired entry and a heap entry each); descriptors and
 *	timers together are at most UINT_MAX.
 *	The loop owns O_ASYNC, F_SETOWN and F_SETSIG of its descriptors
 *	while they are registered; EVENT_SIGNAL and SIGIO stay blocked and
 *	ignored in the process (and its children) once a descriptor went
 *	quiet.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "log.h"

#define EVENT_NO_DEADLINE	INT64_MAX
#define EVENT_MIN_SLOTS		16
#define EVENT_QUIET_AFTER_MS	50	/* default of event_loop_quiet_after() */
#define EVENT_FULL_SCAN_MS	2000	/* safety net while descriptors are quiet */
#define EVENT_SIGNAL		(SIGRTMIN + 2)
#define EVENT_SIGINFO_BATCH	64	/* signalfd records read at once */

/* Whether a descriptor may go quiet: decided once, by its type. */
enum event_kind {
	EVENT_KIND_UNKNOWN = 0,		/* not asked yet */
	EVENT_KIND_QUIETABLE,		/* socket or pipe: O_ASYNC works */
	EVENT_KIND_ALWAYS,		/* anything else: polled every time */
};

struct event_handler {
	event_fn fn;
	void *ctx;
	uint64_t serial;		/* which registration of this fd */
	uint64_t fired_iter;		/* iteration of fired_at, 0: none */
	int64_t last_active;		/* loop->now of its last event */
	unsigned int heap_at;		/* its deadline's heap index + 1; 0: none */
	unsigned int fired_at;		/* its entry in loop->fired */
	unsigned char kind;		/* enum event_kind */
	unsigned char async;		/* O_ASYNC is on: the slot is quiet */
	unsigned char owned;		/* F_SETOWN and F_SETSIG are done */
};

/* A descriptor's deadline or an armed timer, in the heap. */
struct event_due {
	int64_t when;			/* absolute ms */
	uint64_t seq;			/* when it was set: ties fire in order */
	struct event_timer *timer;	/* a timer's; NULL: the deadline of fd */
	int fd;
};

/* A timer of event_timer_add(): belongs to the loop, not to a descriptor. */
struct event_timer {
	struct event_loop *loop;
	event_timer_fn fn;
	void *ctx;
	unsigned int heap_at;		/* heap index + 1; 0: not armed */
	unsigned int fired_at;		/* loop->fired index + 1 until it runs */
	struct event_timer *prev, *next;	/* every timer of the loop */
};

/* An idle hook of event_add_idle(). */
struct event_idle {
	event_idle_fn fn;
	void *ctx;
};

/*
 * A descriptor that poll() or a deadline woke, or a timer that expired,
 * kept until its callback runs. A timer's entry has fd -1, and a NULL
 * timer once the timer was deleted or set again before its turn.
 */
struct event_fired {
	int fd;				/* -1: a timer's entry */
	int events;
	union {
		uint64_t serial;	/* a descriptor's: which registration */
		struct event_timer *timer;
	} u;
};

struct event_loop {
	struct pollfd *pfds;		/* slots 0..n-1, busy ones first */
	struct event_handler *handlers;	/* parallel to pfds */
	struct event_fired *fired;	/* capacity qcap */
	size_t n;
	size_t nbusy;			/* slots 0..nbusy-1 are polled always */
	size_t cap;
	int *slot_of;			/* fd -> slot index + 1; 0: not registered */
	size_t slot_of_len;
	uint64_t next_serial;
	struct event_due *heap;		/* binary heap, nearest first */
	size_t nheap;
	size_t qcap;			/* of heap and fired: >= cap + ntimers */
	uint64_t next_due_seq;
	struct event_timer *timers;	/* every timer, in no order */
	size_t ntimers;
	uint64_t iter;			/* iterations, from 1 */
	struct event_idle *idles;	/* event_add_idle(), in order */
	size_t nidles;
	size_t idles_cap;
	event_idle_fn idle_fn;		/* event_set_idle(): runs last */
	void *idle_ctx;
	int64_t now;			/* clock at the last wake-up */
	int64_t quiet_after;		/* ms without events; < 0: never quiet */
	int64_t next_quiet_check;
	int64_t next_quiet_due;		/* a busy one may go quiet; or none */
	int64_t next_full_scan;
	int full_scan;			/* SIGIO came: poll everything next */
	size_t woken_lo;		/* first slot woken by a signal, or SIZE_MAX */
	int sigfd;			/* our signalfd, or -1 */
	int no_quiet;			/* signals could not be had: all busy */
	int stop;
	int again;			/* event_loop_again(): next poll() does not sleep */
};

/*
 * The process whose loop owns EVENT_SIGNAL: signals go to a process,
 * not to a loop, so only one loop of a process can use them. A pid,
 * not a flag, so that a child after fork() may have a loop of its own.
 */
static pid_t event_signal_owner;

static int64_t event_clock(void);
static int event_grow_slots(struct event_loop *loop);
static int event_grow_queues(struct event_loop *loop, size_t need);
static int event_grow_map(struct event_loop *loop, int fd);
static int event_slot(const struct event_loop *loop, int fd);
static void event_swap(struct event_loop *loop, size_t a, size_t b);
static short event_to_poll(int events);
static int event_from_poll(short revents);
static int64_t event_due_at(int64_t ms);
static int event_heap_less(const struct event_due *a,
    const struct event_due *b);
static void event_heap_place(struct event_loop *loop, size_t pos,
    struct event_due d);
static size_t event_heap_up(struct event_loop *loop, size_t pos);
static void event_heap_down(struct event_loop *loop, size_t pos);
static void event_heap_put(struct event_loop *loop, unsigned int heap_at,
    struct event_due d);
static void event_heap_remove(struct event_loop *loop, size_t pos);
static int64_t event_heap_nearest(const struct event_loop *loop);
static void event_timer_unfire(struct event_timer *t);
static int event_signal_setup(struct event_loop *loop);
static void event_signal_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static int event_async(int fd, int on);
static void event_wake(struct event_loop *loop, size_t slot);
static int event_try_quiet(struct event_loop *loop, size_t slot);
static void event_quiet_check(struct event_loop *loop);
static void event_quiet_due(struct event_loop *loop,
    const struct event_handler *h);
static int event_poll_timeout(struct event_loop *loop, int full);
static void event_fire(struct event_loop *loop, size_t slot, int events,
    size_t *nfired);
static void event_fire_timer(struct event_loop *loop, struct event_timer *t,
    size_t *nfired);
static size_t event_collect(struct event_loop *loop, size_t lo, size_t hi);
static void event_serve_woken(struct event_loop *loop);
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
	loop->next_due_seq = 1;
	loop->now = event_clock();
	loop->quiet_after = EVENT_QUIET_AFTER_MS;
	loop->next_quiet_check = loop->now;
	loop->next_quiet_due = EVENT_NO_DEADLINE;
	loop->next_full_scan = loop->now + EVENT_FULL_SCAN_MS;
	loop->sigfd = -1;
	loop->woken_lo = SIZE_MAX;
	return loop;
}

void
event_loop_free(struct event_loop *loop)
{
	struct signalfd_siginfo si[EVENT_SIGINFO_BATCH];
	struct event_timer *t;

	if (loop == NULL)
		return;
	while ((t = loop->timers) != NULL) {
		loop->timers = t->next;
		free(t);
	}
	if (loop->sigfd >= 0) {
		/* What is still queued would only wait against the user's limit. */
		while (read(loop->sigfd, si, sizeof(si)) > 0)
			;
		close(loop->sigfd);
		if (event_signal_owner == getpid())
			event_signal_owner = 0;
	}
	free(loop->pfds);
	free(loop->handlers);
	free(loop->fired);
	free(loop->slot_of);
	free(loop->heap);
	free(loop->idles);
	free(loop);
}

/* event_grow_slots - double the slot arrays; cap changes only if all did */
static int
event_grow_slots(struct event_loop *loop)
{
	size_t cap = loop->cap ? loop->cap * 2 : EVENT_MIN_SLOTS;
	struct pollfd *pfds;
	struct event_handler *handlers;

	/*
	 * Each realloc keeps the old block valid when it fails, and a
	 * bigger block than needed is harmless: only cap says what is
	 * usable, and it changes only when everything succeeded.
	 */
	if (cap > UINT_MAX)
		return -1;
	if ((pfds = realloc(loop->pfds, cap * sizeof(*pfds))) == NULL)
		return -1;
	loop->pfds = pfds;
	if ((handlers = realloc(loop->handlers, cap * sizeof(*handlers))) == NULL)
		return -1;
	loop->handlers = handlers;
	if (event_grow_queues(loop, cap + loop->ntimers) < 0)
		return -1;
	loop->cap = cap;
	return 0;
}

/*
 * event_grow_queues - room in the heap and the fired list for need
 * entries. Each holds one entry per descriptor and one per timer at
 * most, so with qcap >= cap + ntimers, kept by event_add() and
 * event_timer_add(), neither event_deadline() nor event_timer_set()
 * nor event_collect() can run out of room.
 */
static int
event_grow_queues(struct event_loop *loop, size_t need)
{
	size_t qcap = loop->qcap ? loop->qcap : EVENT_MIN_SLOTS;
	struct event_due *heap;
	struct event_fired *fired;

	if (need <= loop->qcap)
		return 0;
	if (need > UINT_MAX)
		return -1;
	while (qcap < need)
		qcap *= 2;
	if (qcap > UINT_MAX)
		qcap = UINT_MAX;
	if ((heap = realloc(loop->heap, qcap * sizeof(*heap))) == NULL)
		return -1;
	loop->heap = heap;
	if ((fired = realloc(loop->fired, qcap * sizeof(*fired))) == NULL)
		return -1;
	loop->fired = fired;
	loop->qcap = qcap;
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

/* event_swap - exchange two slots (pollfd and handler), map kept right */
static void
event_swap(struct event_loop *loop, size_t a, size_t b)
{
	struct pollfd p;
	struct event_handler h;

	if (a == b)
		return;
	p = loop->pfds[a];
	loop->pfds[a] = loop->pfds[b];
	loop->pfds[b] = p;
	h = loop->handlers[a];
	loop->handlers[a] = loop->handlers[b];
	loop->handlers[b] = h;
	loop->slot_of[loop->pfds[a].fd] = (int)a + 1;
	loop->slot_of[loop->pfds[b].fd] = (int)b + 1;
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
	struct event_handler *h;
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

	/* Appended, then swapped to the end of the busy run: new is busy. */
	i = loop->n++;
	loop->pfds[i].fd = fd;
	loop->pfds[i].events = event_to_poll(events);
	loop->pfds[i].revents = 0;
	h = &loop->handlers[i];
	memset(h, 0, sizeof(*h));
	h->fn = fn;
	h->ctx = ctx;
	h->serial = loop->next_serial++;
	h->last_active = loop->now;
	event_quiet_due(loop, h);
	loop->slot_of[fd] = (int)i + 1;
	event_swap(loop, i, loop->nbusy++);
	return 0;

fail:
	errno = ENOMEM;
	return -1;
}

void
event_set(struct event_loop *loop, int fd, int events)
{
	short old;
	int i;

	if ((i = event_slot(loop, fd)) < 0)
		log_panic(__func__, "descriptor %d is not registered", fd);
	old = loop->pfds[i].events;
	loop->pfds[i].events = event_to_poll(events);
	/*
	 * Readiness for an event it did not ask for was never signalled
	 * to a quiet descriptor, so a new wish makes it busy: the next
	 * poll() looks.
	 */
	if ((loop->pfds[i].events & ~old) != 0 && loop->handlers[i].async)
		event_wake(loop, (size_t)i);
	/* No longer waiting to write: it may go quiet in its time. */
	if ((old & POLLOUT) && !(loop->pfds[i].events & POLLOUT))
		event_quiet_due(loop, &loop->handlers[i]);
}

void
event_del(struct event_loop *loop, int fd)
{
	struct event_handler *h;
	int i;

	if ((i = event_slot(loop, fd)) < 0)
		return;
	h = &loop->handlers[i];
	if (h->heap_at != 0)
		event_heap_remove(loop, h->heap_at - 1);
	if (h->async)
		(void)event_async(fd, 0);
	/* Keep the runs whole: busy -> end of busy -> end of all. */
	if ((size_t)i < loop->nbusy) {
		event_swap(loop, (size_t)i, loop->nbusy - 1);
		i = (int)--loop->nbusy;
	}
	event_swap(loop, (size_t)i, loop->n - 1);
	loop->slot_of[fd] = 0;
	loop->n--;
}

/* ---------------------------------------------------------------- the heap */

/* event_due_at - the absolute time ms from now, kept below "none" */
static int64_t
event_due_at(int64_t ms)
{
	int64_t now = event_clock();

	return ms > EVENT_NO_DEADLINE - 1 - now ? EVENT_NO_DEADLINE - 1
	    : now + ms;
}

static int
event_heap_less(const struct event_due *a, const struct event_due *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* event_heap_place - put d at heap position pos and tell its owner */
static void
event_heap_place(struct event_loop *loop, size_t pos, struct event_due d)
{
	loop->heap[pos] = d;
	if (d.timer != NULL)
		d.timer->heap_at = (unsigned int)pos + 1;
	else
		loop->handlers[loop->slot_of[d.fd] - 1].heap_at =
		    (unsigned int)pos + 1;
}

/* event_heap_up - sift the entry at pos up; returns where it stopped */
static size_t
event_heap_up(struct event_loop *loop, size_t pos)
{
	struct event_due d = loop->heap[pos];
	size_t parent;

	while (pos > 0) {
		parent = (pos - 1) / 2;
		if (!event_heap_less(&d, &loop->heap[parent]))
			break;
		event_heap_place(loop, pos, loop->heap[parent]);
		pos = parent;
	}
	event_heap_place(loop, pos, d);
	return pos;
}

static void
event_heap_down(struct event_loop *loop, size_t pos)
{
	struct event_due d = loop->heap[pos];
	size_t child;

	for (;;) {
		child = 2 * pos + 1;
		if (child >= loop->nheap)
			break;
		if (child + 1 < loop->nheap
		    && event_heap_less(&loop->heap[child + 1],
		    &loop->heap[child]))
			child++;
		if (!event_heap_less(&loop->heap[child], &d))
			break;
		event_heap_place(loop, pos, loop->heap[child]);
		pos = child;
	}
	event_heap_place(loop, pos, d);
}

/*
 * event_heap_put - d replaces its owner's entry (heap_at, 0: it has
 * none) or is added; qcap guarantees the room.
 */
static void
event_heap_put(struct event_loop *loop, unsigned int heap_at,
    struct event_due d)
{
	size_t pos;

	if (heap_at != 0) {
		pos = heap_at - 1;
	} else {
		if (loop->nheap >= loop->qcap)
			log_panic(__func__, "heap full (%zu)", loop->nheap);
		pos = loop->nheap++;
	}
	loop->heap[pos] = d;
	event_heap_down(loop, event_heap_up(loop, pos));
}

/* event_heap_remove - take the entry at heap position pos away */
static void
event_heap_remove(struct event_loop *loop, size_t pos)
{
	struct event_due *d = &loop->heap[pos];

	if (d->timer != NULL)
		d->timer->heap_at = 0;
	else
		loop->handlers[loop->slot_of[d->fd] - 1].heap_at = 0;
	if (pos == --loop->nheap)
		return;
	/* The last one fills the hole and goes up or down from there. */
	loop->heap[pos] = loop->heap[loop->nheap];
	event_heap_down(loop, event_heap_up(loop, pos));
}

/* event_heap_nearest - the earliest deadline or timer, or EVENT_NO_DEADLINE */
static int64_t
event_heap_nearest(const struct event_loop *loop)
{
	return loop->nheap > 0 ? loop->heap[0].when : EVENT_NO_DEADLINE;
}

/* ---------------------------------------------------------------- deadlines */

void
event_deadline(struct event_loop *loop, int fd, int64_t ms)
{
	struct event_handler *h;
	struct event_due d;
	int i;

	if ((i = event_slot(loop, fd)) < 0)
		log_panic(__func__, "descriptor %d is not registered", fd);
	h = &loop->handlers[i];
	if (ms < 0) {
		if (h->heap_at != 0)
			event_heap_remove(loop, h->heap_at - 1);
		/*
		 * An expiry already collected in this iteration, its callback
		 * not yet run, is withdrawn too: cleared means no timeout.
		 */
		if (h->fired_iter != 0 && h->fired_iter == loop->iter
		    && loop->fired[h->fired_at].u.serial == h->serial)
			loop->fired[h->fired_at].events &= ~EVENT_TIMEOUT;
		return;
	}
	d.when = event_due_at(ms);
	d.seq = loop->next_due_seq++;
	d.timer = NULL;
	d.fd = fd;
	event_heap_put(loop, h->heap_at, d);
}

/* ---------------------------------------------------------------- timers */

struct event_timer *
event_timer_add(struct event_loop *loop, int64_t ms, event_timer_fn fn,
    void *ctx)
{
	struct event_timer *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail;
	if (event_grow_queues(loop, loop->cap + loop->ntimers + 1) < 0)
		goto fail;
	t->loop = loop;
	t->fn = fn;
	t->ctx = ctx;
	t->next = loop->timers;
	if (loop->timers != NULL)
		loop->timers->prev = t;
	loop->timers = t;
	loop->ntimers++;
	if (ms >= 0)
		event_timer_set(t, ms);
	return t;

fail:
	free(t);
	errno = ENOMEM;
	return NULL;
}

/*
 * event_timer_unfire - a timer that expired in this iteration but has
 * not been called yet is called no more: whoever sets or deletes it
 * has decided anew.
 */
static void
event_timer_unfire(struct event_timer *t)
{
	if (t->fired_at == 0)
		return;
	t->loop->fired[t->fired_at - 1].u.timer = NULL;
	t->fired_at = 0;
}

void
event_timer_set(struct event_timer *t, int64_t ms)
{
	struct event_loop *loop = t->loop;
	struct event_due d;

	event_timer_unfire(t);
	if (ms < 0) {
		if (t->heap_at != 0)
			event_heap_remove(loop, t->heap_at - 1);
		return;
	}
	d.when = event_due_at(ms);
	d.seq = loop->next_due_seq++;
	d.timer = t;
	d.fd = -1;
	event_heap_put(loop, t->heap_at, d);
}

void
event_timer_del(struct event_timer *t)
{
	struct event_loop *loop;

	if (t == NULL)
		return;
	loop = t->loop;
	event_timer_unfire(t);
	if (t->heap_at != 0)
		event_heap_remove(loop, t->heap_at - 1);
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		loop->timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	loop->ntimers--;
	free(t);
}

int
event_timer_armed(const struct event_timer *t)
{
	return t->heap_at != 0;
}

/* ---------------------------------------------------------------- idle hooks */

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

/* ---------------------------------------------------------------- quiet */

void
event_loop_quiet_after(struct event_loop *loop, int64_t ms)
{
	size_t i;

	loop->quiet_after = ms;
	loop->next_quiet_check = loop->now;
	loop->next_quiet_due = loop->now;
	if (ms >= 0)
		return;
	/* Never quiet: every descriptor is polled again from now on. */
	for (i = loop->n; i > loop->nbusy; i--)
		event_wake(loop, i - 1);
}

int
event_is_quiet(const struct event_loop *loop, int fd)
{
	int i;

	if ((i = event_slot(loop, fd)) < 0)
		return 0;
	return (size_t)i >= loop->nbusy;
}

/*
 * event_signal_setup - block and ignore EVENT_SIGNAL and SIGIO, read
 * them from a signalfd that is a (busy) descriptor of this loop.
 * Returns 0, or -1 when this process cannot give them to this loop.
 */
static int
event_signal_setup(struct event_loop *loop)
{
	struct sigaction sa;
	sigset_t set;
	int fd;

	if (event_signal_owner == getpid())
		return -1;
	sigemptyset(&set);
	sigaddset(&set, EVENT_SIGNAL);
	sigaddset(&set, SIGIO);
	/*
	 * Blocked signals are queued even when ignored; ignored, they
	 * cannot kill the process should a later sigprocmask() unblock
	 * them (their default action is to terminate).
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(EVENT_SIGNAL, &sa, NULL) < 0
	    || sigaction(SIGIO, &sa, NULL) < 0
	    || sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return -1;
	if (event_add(loop, fd, EVENT_READ, event_signal_ready, NULL) < 0) {
		close(fd);
		return -1;
	}
	loop->sigfd = fd;
	event_signal_owner = getpid();
	return 0;
}

/*
 * event_signal_ready - quiet descriptors that became ready: each named
 * one is busy again (stale names, of descriptors deleted since, are
 * ignored); SIGIO means some names were lost, and all is polled.
 */
static void
event_signal_ready(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct signalfd_siginfo si[EVENT_SIGINFO_BATCH];
	ssize_t got;
	size_t k;
	int i;

	(void)events;
	(void)ctx;
	while ((got = read(fd, si, sizeof(si))) > 0) {
		for (k = 0; k < (size_t)got / sizeof(si[0]); k++) {
			if (si[k].ssi_signo == SIGIO) {
				loop->full_scan = 1;
				continue;
			}
			if ((i = event_slot(loop, (int)si[k].ssi_fd)) < 0
			    || !loop->handlers[i].async)
				continue;
			/* Woken slots go to the end of the busy run. */
			if (loop->woken_lo > loop->nbusy)
				loop->woken_lo = loop->nbusy;
			event_wake(loop, (size_t)i);
		}
		if ((size_t)got < sizeof(si))
			break;
	}
}

/* event_async - turn signal-driven I/O of fd on or off; 0 or -1 */
static int
event_async(int fd, int on)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) < 0)
		return -1;
	fl = on ? fl | O_ASYNC : fl & ~O_ASYNC;
	return fcntl(fd, F_SETFL, fl);
}

/* event_wake - a quiet slot becomes busy (polled on every iteration) */
static void
event_wake(struct event_loop *loop, size_t slot)
{
	struct event_handler *h = &loop->handlers[slot];

	if (slot < loop->nbusy)
		return;
	/* Should this fail, the signals it may still send are harmless. */
	if (h->async)
		(void)event_async(loop->pfds[slot].fd, 0);
	h->async = 0;
	h->last_active = loop->now;
	event_quiet_due(loop, h);
	event_swap(loop, slot, loop->nbusy++);
}

/*
 * event_try_quiet - make a busy slot quiet if it can be: 1 when it
 * went quiet (it is then the first slot of the quiet run), 0 when it
 * stays busy.
 */
static int
event_try_quiet(struct event_loop *loop, size_t slot)
{
	struct event_handler *h = &loop->handlers[slot];
	struct pollfd probe;
	struct stat st;
	int fd = loop->pfds[slot].fd;

	if (h->kind == EVENT_KIND_UNKNOWN) {
		h->kind = fstat(fd, &st) == 0
		    && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
		    ? EVENT_KIND_QUIETABLE : EVENT_KIND_ALWAYS;
	}
	if (h->kind != EVENT_KIND_QUIETABLE)
		return 0;
	if (loop->sigfd < 0 && event_signal_setup(loop) < 0) {
		loop->no_quiet = 1;
		return 0;
	}
	/* The signalfd was added at the end of the busy run: slot is intact. */
	h = &loop->handlers[slot];
	if (!h->owned) {
		if (fcntl(fd, F_SETOWN, getpid()) < 0
		    || fcntl(fd, F_SETSIG, EVENT_SIGNAL) < 0) {
			h->kind = EVENT_KIND_ALWAYS;
			return 0;
		}
		h->owned = 1;
	}
	if (event_async(fd, 1) < 0) {
		h->kind = EVENT_KIND_ALWAYS;
		return 0;
	}
	/* Ready before O_ASYNC was on: no signal will come for it. */
	probe.fd = fd;
	probe.events = loop->pfds[slot].events;
	probe.revents = 0;
	if (poll(&probe, 1, 0) != 0) {
		(void)event_async(fd, 0);
		h->last_active = loop->now;
		return 0;
	}
	h->async = 1;
	event_swap(loop, slot, --loop->nbusy);
	return 1;
}

/*
 * event_quiet_check - busy slots without events for quiet_after ms go
 * quiet; those that wait to write stay. From the end of the busy run
 * backwards, so that the slot swapped into a hole has been looked at.
 */
static void
event_quiet_check(struct event_loop *loop)
{
	size_t i;
	int64_t since;

	if (loop->quiet_after < 0 || loop->no_quiet
	    || loop->now < loop->next_quiet_check)
		return;
	loop->next_quiet_check = loop->now + loop->quiet_after / 4;
	loop->next_quiet_due = EVENT_NO_DEADLINE;
	since = loop->now - loop->quiet_after;
	for (i = loop->nbusy; i > 0; i--) {
		struct event_handler *h = &loop->handlers[i - 1];

		if (h->kind == EVENT_KIND_ALWAYS
		    || (loop->pfds[i - 1].events & POLLOUT))
			continue;
		/* Too recent, or found ready: its turn comes later. */
		if (h->last_active > since || !event_try_quiet(loop, i - 1)) {
			if (loop->no_quiet)
				return;
			/* The signalfd's event_add() may have moved handlers. */
			h = &loop->handlers[i - 1];
			if (h->kind != EVENT_KIND_ALWAYS)
				event_quiet_due(loop, h);
		}
	}
}

/*
 * event_quiet_due - busy h may go quiet quiet_after ms after its last
 * event: the loop must wake by then, even with nothing else to do, or a
 * burst of descriptors that all go idle together stays polled until the
 * next event (a deadline minutes away)
 */
static void
event_quiet_due(struct event_loop *loop, const struct event_handler *h)
{
	int64_t due = h->last_active + loop->quiet_after;

	if (due < loop->next_quiet_due)
		loop->next_quiet_due = due;
}

/* ---------------------------------------------------------------- the loop */

/*
 * event_poll_timeout - milliseconds poll() may sleep: -1 (nothing to
 * wait for) or >= 0. A full scan never sleeps; while descriptors are
 * quiet, the busy poll() wakes up for the next full scan.
 */
static int
event_poll_timeout(struct event_loop *loop, int full)
{
	int64_t nearest = event_heap_nearest(loop);
	int64_t wait, due;

	if (loop->again || full) {
		/* Work is left for the next iteration: look, do not sleep. */
		loop->again = 0;
		return 0;
	}
	if (loop->nbusy < loop->n && loop->next_full_scan < nearest)
		nearest = loop->next_full_scan;
	/* The next quiet check that has a descriptor to make quiet. */
	if (loop->quiet_after >= 0 && !loop->no_quiet
	    && loop->next_quiet_due != EVENT_NO_DEADLINE) {
		due = loop->next_quiet_due > loop->next_quiet_check
		    ? loop->next_quiet_due : loop->next_quiet_check;
		if (due < nearest)
			nearest = due;
	}
	if (nearest == EVENT_NO_DEADLINE)
		return -1;
	if (nearest <= loop->now)
		return 0;
	wait = nearest - loop->now;
	return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* event_fire - note events of a slot; one fired entry per descriptor */
static void
event_fire(struct event_loop *loop, size_t slot, int events, size_t *nfired)
{
	struct event_handler *h = &loop->handlers[slot];

	if (h->fired_iter == loop->iter) {
		loop->fired[h->fired_at].events |= events;
		return;
	}
	h->fired_iter = loop->iter;
	h->fired_at = (unsigned int)*nfired;
	loop->fired[*nfired].fd = loop->pfds[slot].fd;
	loop->fired[*nfired].events = events;
	loop->fired[*nfired].u.serial = h->serial;
	(*nfired)++;
}

/* event_fire_timer - note an expired timer (out of the heap already) */
static void
event_fire_timer(struct event_loop *loop, struct event_timer *t,
    size_t *nfired)
{
	t->fired_at = (unsigned int)*nfired + 1;
	loop->fired[*nfired].fd = -1;
	loop->fired[*nfired].events = EVENT_TIMEOUT;
	loop->fired[*nfired].u.timer = t;
	(*nfired)++;
}

/*
 * event_collect - remember every descriptor that poll() woke (among
 * the slots lo..hi-1) or whose deadline passed, and every timer that
 * expired, before any callback can reorder the slots. A deadline or
 * timer that fires leaves the heap here: it fires once. Quiet slots
 * that poll() found ready (a full scan) become busy.
 */
static size_t
event_collect(struct event_loop *loop, size_t lo, size_t hi)
{
	struct event_due d;
	size_t i, k, nfired = 0;
	int events;

	loop->now = event_clock();
	loop->iter++;
	/* Expired deadlines and timers first, nearest first. */
	while (loop->nheap > 0 && loop->heap[0].when <= loop->now) {
		d = loop->heap[0];
		event_heap_remove(loop, 0);
		if (d.timer != NULL)
			event_fire_timer(loop, d.timer, &nfired);
		else
			event_fire(loop, (size_t)event_slot(loop, d.fd),
			    EVENT_TIMEOUT, &nfired);
	}
	for (i = lo; i < hi; i++) {
		events = event_from_poll(loop->pfds[i].revents);
		loop->pfds[i].revents = 0;
		if (events == 0)
			continue;
		loop->handlers[i].last_active = loop->now;
		event_fire(loop, i, events, &nfired);
	}
	if (hi > loop->nbusy) {
		for (k = 0; k < nfired; k++) {
			if (loop->fired[k].fd < 0)
				continue;
			i = (size_t)event_slot(loop, loop->fired[k].fd);
			if ((loop->fired[k].events & ~EVENT_TIMEOUT)
			    && loop->handlers[i].async)
				event_wake(loop, i);
		}
	}
	return nfired;
}

/*
 * event_dispatch - run the callbacks of the collected descriptors and
 * timers. A descriptor deleted (or deleted and registered again) by an
 * earlier callback of this iteration is skipped: its serial no longer
 * matches; a timer deleted or set again has lost its entry. Events are
 * those of the poll() just done; only the timeout is checked again (a
 * deadline set again by an earlier callback drops it here, one cleared
 * has had it withdrawn by event_deadline()).
 */
static void
event_dispatch(struct event_loop *loop, size_t nfired)
{
	struct event_fired f;
	struct event_timer *t;
	size_t k;
	int i;

	for (k = 0; k < nfired; k++) {
		/* Copy: a callback's event_add() may move loop->fired. */
		f = loop->fired[k];
		if (f.fd < 0) {
			if ((t = f.u.timer) == NULL)
				continue;
			t->fired_at = 0;
			t->fn(loop, t, t->ctx);
			continue;
		}
		if ((i = event_slot(loop, f.fd)) < 0
		    || loop->handlers[i].serial != f.u.serial)
			continue;
		/*
		 * event_collect() cleared the deadline that fired; one that
		 * is set again means an earlier callback rearmed the timer,
		 * and the old expiry no longer holds.
		 */
		if ((f.events & EVENT_TIMEOUT) && loop->handlers[i].heap_at != 0)
			f.events &= ~EVENT_TIMEOUT;
		if (f.events == 0)
			continue;
		loop->handlers[i].fn(loop, f.fd, f.events, loop->handlers[i].ctx);
	}
}

/*
 * event_serve_woken - descriptors that signals woke in this iteration
 * are polled (timeout 0) and served at once, not one iteration later:
 * the idle hooks in between may take long (a group commit's fsync).
 * They are the slots from woken_lo to the end of the busy run (with
 * any added since, which does no harm); a slot moved out of that range
 * by a deletion is served by the next iteration instead.
 */
static void
event_serve_woken(struct event_loop *loop)
{
	size_t lo = loop->woken_lo;

	loop->woken_lo = SIZE_MAX;
	if (lo >= loop->nbusy || loop->stop)
		return;
	if (poll(loop->pfds + lo, loop->nbusy - lo, 0) > 0)
		event_dispatch(loop, event_collect(loop, lo, loop->nbusy));
}

/*
 * event_loop_run - serve until event_loop_stop()
 *
 * Each iteration calls the idle hooks first, so that work collected by
 * the callbacks (messages to commit, log records) is done before the
 * process sleeps; then it polls the busy run, or every slot when a full
 * scan is due. Returns 0 after event_loop_stop(), or -1 with errno when
 * poll() fails for another reason than a signal.
 */
int
event_loop_run(struct event_loop *loop)
{
	size_t npolled;
	int timeout, full;

	loop->stop = 0;
	while (!loop->stop) {
		event_run_idle(loop);
		if (loop->stop)
			break;
		loop->now = event_clock();
		full = loop->nbusy < loop->n
		    && (loop->full_scan || loop->now >= loop->next_full_scan);
		timeout = event_poll_timeout(loop, full);
		npolled = full ? loop->n : loop->nbusy;
		if (poll(loop->pfds, npolled, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (full) {
			loop->full_scan = 0;
			loop->next_full_scan = event_clock() + EVENT_FULL_SCAN_MS;
		}
		event_dispatch(loop, event_collect(loop, 0, npolled));
		event_serve_woken(loop);
		event_quiet_check(loop);
	}
	return 0;
}
