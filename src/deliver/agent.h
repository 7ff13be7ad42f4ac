/*
 * NAME
 *	agent - the delivery agent: the process that drains the remote queue
 * SYNOPSIS
 *	#include "agent.h"
 * DESCRIPTION
 *	The daemon's side (the supervisor):
 *	agent_start() forks the delivery agent, a child of the daemon with
 *	its own poll() loop (see doc/delivery.md), and registers in loop
 *	the timer that restarts it. hooks are the daemon's: before_fork()
 *	runs before every fork (the daemon flushes its log records, so that
 *	the child does not send them again); in the child, log_fd() is the
 *	one inherited descriptor to keep besides the agent's own, and
 *	log_flush()/log_wants_write() move log records as the daemon's
 *	idle hook does.
 *	agent_reap() is called on SIGCHLD: an agent that died is logged
 *	and forked again after a delay (100 ms, doubling up to 30 s while
 *	it keeps dying within 10 s of its start); the daemon never waits.
 *	agent_kick() forwards SIGUSR1: every deferred letter is tried now.
 *	agent_stop() asks the agent to stop (SIGTERM), waits a few seconds
 *	for it, and frees the supervisor (NULL allowed).
 *	agent_pid() is the running agent's pid, or 0.
 *
 *	agent_run() is the agent itself (exported for tests): it serves
 *	until SIGTERM, SIGINT, or the end of file on parent_fd (the daemon
 *	is gone), and returns an exit status.
 * DIAGNOSTICS
 *	agent_start() returns NULL (ENOMEM, or the timer cannot be made);
 *	a failed fork is logged and tried again later.
 */
#ifndef POLLSMTPD_AGENT_H
#define POLLSMTPD_AGENT_H

#include <sys/types.h>

struct conf;
struct event_loop;
struct agent;

struct agent_hooks {
	void (*before_fork)(void *ctx);
	int (*log_fd)(void *ctx);
	void (*log_flush)(void *ctx);
	int (*log_wants_write)(void *ctx);
	void *ctx;
};

struct agent *agent_start(struct event_loop *loop, const struct conf *conf,
    const struct agent_hooks *hooks);
void agent_reap(struct agent *a);
void agent_kick(struct agent *a);
void agent_stop(struct agent *a);
pid_t agent_pid(const struct agent *a);
int agent_run(const struct conf *conf, int parent_fd,
    const struct agent_hooks *hooks);

#endif
