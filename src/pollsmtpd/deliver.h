/*
 * NAME
 *	deliver - turn an accepted message into Maildir and queue files
 * SYNOPSIS
 *	#include "deliver.h"
 * DESCRIPTION
 *	deliver_new() prepares delivery into md (already opened, users
 *	added) with the names and limits of conf; both must outlive it.
 *	deliver_free() releases it (NULL allowed).
 *
 *	deliver_message() stores one message handed over by the session
 *	engine, all copies or none, before it returns:
 *	  one file per distinct local mailbox in root/<user>/new/, headed
 *	    Return-Path, Delivered-To (the first recipient address that led
 *	    to that mailbox; after an alias or the catch-all, the final
 *	    user@domain and under it a second Delivered-To with the address
 *	    given, RFC 9228), Received;
 *	  one file per remote domain in root/.OTHER_SERVERS/<domain>/
 *	    (the A-label form of a UTF-8 domain), headed X-Envelope-From
 *	    with MAIL's parameters, one X-Envelope-To per distinct
 *	    recipient of that domain with its RCPT parameters (NOTIFY,
 *	    ORCPT), Received;
 *	and, when a local recipient asked NOTIFY=SUCCESS and the sender is
 *	not <>, one success report of its own ID (RFC 3461 6.2, RFC 3464
 *	"Action: delivered", by bounce_format(): every such recipient,
 *	ENVID, ORCPT, the message's headers) headed Return-Path: <> in
 *	the sender's Maildir (a local user, also with a +extension, else
 *	the postmaster) or X-Envelope-From: <> / X-Envelope-To: <sender>
 *	in root/.OTHER_SERVERS/<sender's domain>/, for the agent to send;
 *	a sender that cannot be answered gets none (logged);
 *	then the message text: msg->size bytes from the start of text_fd
 *	(the spool the session's sink filled; copied by the kernel). The
 *	message ID is written to id (at least DELIVER_ID_SIZE bytes) whether
 *	or not storing succeeds, so that failures can be logged under it.
 *	session_id names the session in the log records.
 *	The result is what session_stored() takes.
 *
 *	deliver_spool_open() opens an anonymous file where the text of a
 *	message to come can wait for its copies (maildir_spool_open()).
 *
 *	deliver_make_id() makes a new message ID: DELIVER_ID_LEN uppercase
 *	hex digits (seconds, microseconds, a counter), unique on the host.
 *	deliver_format_date() writes an RFC 5322 date in UTC ("+0000").
 *
 *	Group commit: deliver_submit() queues msg and its text_fd (both
 *	must stay valid until done is called: the session keeps msg until
 *	session_stored()) and returns at once; deliver_submit_text() the
 *	same with the text in memory (msg->size bytes at text, valid until
 *	done is called), for a message small enough to need no spool file. deliver_flush() stores every
 *	message queued before it was called, syncing them together (see
 *	maildir_batch_commit()), and only then calls each one's done(ctx,
 *	result, id): the result and ID that session_stored() takes. The
 *	event loop's idle hook calls it, so messages whose final dot
 *	arrived in the same loop iteration share their syncs. A done
 *	callback may submit again; such a message waits for the next flush
 *	(the next loop iteration), so that one client pipelining messages
 *	cannot keep the others waiting for a chain of commits; flush
 *	returns how many wait. deliver_cancel() forgets every queued
 *	message of ctx (nothing of it is stored) and every done call still
 *	due to ctx. deliver_pending() is the number of messages queued.
 *	deliver_set_max_files() bounds the files one commit keeps open
 *	(each a descriptor until the sync, plus one per remote domain
 *	directory; default DELIVER_BATCH_FILES), for the descriptor budget
 *	of the process.
 *	deliver_message() stores one message at once (a batch of one).
 * DIAGNOSTICS
 *	The report is part of the message's all-or-none: if it cannot be
 *	built or stored, nothing of the message is stored either. The log
 *	says "success report ID queued for <sender>" under the message's ID
 *	and has a record under the report's.
 *	deliver_new() returns NULL when out of memory. deliver_message()
 *	returns SESSION_STORE_OK, SESSION_STORE_NOSPACE (ENOSPC, EDQUOT) or
 *	SESSION_STORE_TEMPFAIL (any other failure), and logs the outcome;
 *	done callbacks get the same. deliver_submit() returns 0, or -1
 *	(ENOMEM) when msg cannot be queued: done will not be called.
 * LIMITS
 *	An ID is unique as long as fewer than 65536 messages are stored in
 *	one microsecond by one process. One commit takes at most
 *	DELIVER_BATCH_MESSAGES messages and, unless a single message needs
 *	more, the max_files files (each an open descriptor until the sync);
 *	more queued messages make more commits in the same flush.
 */
#ifndef POLLSMTPD_DELIVER_H
#define POLLSMTPD_DELIVER_H

#include <stddef.h>
#include <time.h>

#include "session.h"

#define DELIVER_ID_LEN	17
#define DELIVER_ID_SIZE	(DELIVER_ID_LEN + 1)
#define DELIVER_DATE_SIZE	40
#define DELIVER_BATCH_MESSAGES	128
#define DELIVER_BATCH_FILES	256

struct conf;
struct maildir;
struct deliver;

typedef void (*deliver_done_fn)(void *ctx, enum session_store_result result,
    const char *id);

struct deliver *deliver_new(const struct conf *conf, struct maildir *md);
void deliver_free(struct deliver *d);
enum session_store_result deliver_message(struct deliver *d,
    const char *session_id, const struct session_message *msg,
    int text_fd, char *id, size_t idlen);
int deliver_submit(struct deliver *d, const char *session_id,
    const struct session_message *msg, int text_fd, deliver_done_fn done,
    void *ctx);
int deliver_submit_text(struct deliver *d, const char *session_id,
    const struct session_message *msg, const char *text,
    deliver_done_fn done, void *ctx);
size_t deliver_flush(struct deliver *d);
void deliver_set_max_files(struct deliver *d, size_t max_files);
void deliver_cancel(struct deliver *d, void *ctx);
size_t deliver_pending(const struct deliver *d);
int deliver_spool_open(struct deliver *d);
int deliver_make_id(struct deliver *d, char *id, size_t idlen);
int deliver_format_date(time_t t, char *dst, size_t dstlen);

#endif
