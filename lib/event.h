/*
 * NAME
 *	event - the poll() loop: descriptors, deadlines, timers, nothing of SMTP
 * SYNOPSIS
 *	#include "event.h"
 * DESCRIPTION
 *	One event loop watches every descriptor of the daemon in one poll()
 *	set. Each registered descriptor has a callback, a context pointer,
 *	the events it wants (EVENT_READ, EVENT_WRITE, or none) and an
 *	optional deadline. Timers belong to no descriptor. The poll timeout
 *	is the nearest deadline or timer.
 *
 *	event_loop_new() makes a loop; event_loop_free() releases it.
 *	event_add() registers fd; event_set() changes the events wanted;
 *	event_del() forgets fd (its callback is not called again, even later
 *	in the same iteration).
 *	event_deadline() sets fd's deadline to ms milliseconds from now, or
 *	clears it with ms < 0; when it passes, the callback gets
 *	EVENT_TIMEOUT (once; set a new one if wanted).
 *
 *	event_timer_add() makes a one-shot timer that calls fn(loop, t,
 *	ctx) ms milliseconds from now, or is not armed yet with ms < 0.
 *	event_timer_set() arms it again for ms from now (whether or not it
 *	was armed or has fired), or disarms it with ms < 0; it stays the
 *	loop's until event_timer_del(), which frees it. Both may be called
 *	from any callback, the timer's own included. A timer that expired
 *	in this iteration but was set or deleted by an earlier callback is
 *	not called for that expiry. Deadlines and timers due at the same
 *	millisecond fire in the order they were set. event_timer_armed()
 *	tells whether t waits to fire. event_loop_free() frees the timers
 *	that were not deleted.
 *	event_loop_run() runs until event_loop_stop(); before each poll() it
 *	calls the idle hooks, where callers finish work collected during the
 *	iteration (group commit, log records): first every hook added with
 *	event_add_idle(), in the order they were added, then the one set
 *	with event_set_idle() (replaced by each call; NULL for none), so
 *	that it sees what the others did. event_del_idle() removes a hook
 *	added with event_add_idle() (fn and ctx both match), also from
 *	within a hook.
 *	event_loop_again() asks that the next poll() not sleep (timeout 0):
 *	an idle hook that left work for the next iteration calls it, so that
 *	the work goes on as soon as the other descriptors have been looked at.
 *	event_now() is the loop's monotonic clock in milliseconds.
 *
 *	Idle descriptors cost nothing per iteration: a socket or pipe that
 *	had no event for a while (50 ms by default) and does not wait to
 *	write goes "quiet": it leaves the poll() set, and the kernel tells
 *	the loop (signal-driven I/O, a real-time signal read from a
 *	signalfd) when it becomes ready, so that it is polled again at
 *	once. Callers see no difference: every descriptor is served as
 *	before, deadlines of quiet ones fire on time. event_set() that asks
 *	for an event not asked for before makes a quiet descriptor busy.
 *	event_loop_quiet_after() sets how many milliseconds without events
 *	make a descriptor quiet; ms < 0 keeps (and makes) every descriptor
 *	busy: poll() then watches all of them on every iteration.
 *	event_is_quiet() tells whether fd is quiet now (for tests and
 *	diagnostics; 0 for a descriptor that is not registered).
 * DIAGNOSTICS
 *	event_add() and event_add_idle() return 0, or -1 with errno
 *	(ENOMEM, EEXIST). event_timer_add() returns NULL with errno ENOMEM;
 *	event_timer_set() and event_deadline() cannot fail.
 *	event_loop_run() returns 0 after event_loop_stop(), -1 when poll()
 *	fails for another reason than EINTR.
 * LIMITS
 *	While descriptors are quiet, the loop owns their O_ASYNC flag,
 *	F_SETOWN and F_SETSIG, and the process keeps SIGIO and the signal
 *	SIGRTMIN + 2 blocked and ignored (inherited by children). One loop
 *	per process makes descriptors quiet; another keeps all busy.
 */
#ifndef POLLSMTPD_EVENT_H
#define POLLSMTPD_EVENT_H

#include <stdint.h>

#define EVENT_READ	0x01
#define EVENT_WRITE	0x02
#define EVENT_ERROR	0x04	/* POLLERR/POLLHUP/POLLNVAL (reported, never asked for) */
#define EVENT_TIMEOUT	0x08

struct event_loop;
struct event_timer;
typedef void (*event_fn)(struct event_loop *loop, int fd, int events, void *ctx);
typedef void (*event_idle_fn)(struct event_loop *loop, void *ctx);
typedef void (*event_timer_fn)(struct event_loop *loop, struct event_timer *t,
    void *ctx);

struct event_loop *event_loop_new(void);
void event_loop_free(struct event_loop *loop);
int event_add(struct event_loop *loop, int fd, int events, event_fn fn, void *ctx);
void event_set(struct event_loop *loop, int fd, int events);
void event_del(struct event_loop *loop, int fd);
void event_deadline(struct event_loop *loop, int fd, int64_t ms);
struct event_timer *event_timer_add(struct event_loop *loop, int64_t ms,
    event_timer_fn fn, void *ctx);
void event_timer_set(struct event_timer *t, int64_t ms);
void event_timer_del(struct event_timer *t);
int event_timer_armed(const struct event_timer *t);
void event_set_idle(struct event_loop *loop, event_idle_fn fn, void *ctx);
int event_add_idle(struct event_loop *loop, event_idle_fn fn, void *ctx);
void event_del_idle(struct event_loop *loop, event_idle_fn fn, void *ctx);
int event_loop_run(struct event_loop *loop);
void event_loop_stop(struct event_loop *loop);
void event_loop_again(struct event_loop *loop);
int64_t event_now(const struct event_loop *loop);
void event_loop_quiet_after(struct event_loop *loop, int64_t ms);
int event_is_quiet(const struct event_loop *loop, int fd);

#endif
