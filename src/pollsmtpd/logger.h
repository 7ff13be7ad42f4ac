/*
 * NAME
 *	logger - the logging process and the daemon's side of its queue
 * SYNOPSIS
 *	#include "logger.h"
 * DESCRIPTION
 *	The daemon hands every log record to a child process, the logger,
 *	through a POSIX message queue; the logger appends them to the log
 *	file, so that a slow disk or a stuck log never slows the mail.
 *
 *	logger_start() opens the log file (path "" means standard error),
 *	creates a uniquely named queue (unlinked at once, so that no queue
 *	outlives the daemon, whatever kills it), forks the logger and
 *	installs the log sink that feeds it. When uid is not (uid_t)-1 the
 *	logger drops to uid/gid (with the supplementary groups of user)
 *	right after it is forked.
 *	The sink never blocks: it appends the record to a bounded buffer;
 *	when the buffer is full, records are dropped and counted, and the
 *	next record that gets through is preceded by one that says how many
 *	were lost.
 *	logger_flush() sends what the queue takes, as many records to a
 *	message as fit; the event loop calls it before each poll(), so the
 *	records of one iteration travel together.
 *	logger_fd() is the queue descriptor and logger_wants_write() tells
 *	whether records still wait for room, i.e. whether the event loop
 *	should poll the descriptor for writing.
 *	logger_reap() is called on SIGCHLD: when the logger died it is
 *	logged and a new one is forked (records keep waiting meanwhile) at
 *	once, or, after a logger that died soon after its start, after a
 *	delay that doubles each time (100 ms up to 30 s).
 *	logger_restart_wait() forks the new logger when its delay is over
 *	and returns -1, or returns the milliseconds still to wait (the event
 *	loop sets a deadline for them); -1 too when nothing waits.
 *	logger_replay() adds finished records (lines, each ending in LF) to
 *	the backlog, as if logged now: start-up records made before the
 *	logger ran reach the log file too.
 *	logger_reopen() asks the logger to reopen the log file (SIGHUP).
 *	logger_stop() sends every waiting record (waiting at most a few
 *	seconds), tells the logger to finish, waits for it, and frees all.
 *	logger_child_main() is the logger's loop (internal; exported for
 *	tests).
 * DIAGNOSTICS
 *	logger_start() returns NULL and logs why (the log file cannot be
 *	opened, no queue, no fork).
 * LIMITS
 *	LOGGER_BACKLOG_MAX bytes of records wait in the daemon.
 */
#ifndef POLLSMTPD_LOGGER_H
#define POLLSMTPD_LOGGER_H

#include <sys/types.h>

#define LOGGER_BACKLOG_MAX	(1024 * 1024)

struct logger;

struct logger *logger_start(const char *log_file, uid_t uid, gid_t gid,
    const char *user);
int logger_fd(const struct logger *lg);
int logger_wants_write(const struct logger *lg);
void logger_flush(struct logger *lg);
void logger_reap(struct logger *lg);
long logger_restart_wait(struct logger *lg);
void logger_replay(struct logger *lg, const char *records, size_t len);
void logger_reopen(struct logger *lg);
void logger_stop(struct logger *lg);
pid_t logger_pid(const struct logger *lg);

#endif
