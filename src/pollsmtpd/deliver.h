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
 *	    to that mailbox), Received;
 *	  one file per remote domain in root/.OTHER_SERVERS/<domain>/,
 *	    headed X-Envelope-From, one X-Envelope-To per distinct
 *	    recipient of that domain, Received;
 *	then the message text as the session gives it (not copied). The
 *	message ID is written to id (at least DELIVER_ID_SIZE bytes) whether
 *	or not storing succeeds, so that failures can be logged under it.
 *	session_id names the session in the log records.
 *	The result is what session_stored() takes.
 *
 *	deliver_make_id() makes a new message ID: DELIVER_ID_LEN uppercase
 *	hex digits (seconds, microseconds, a counter), unique on the host.
 *	deliver_format_date() writes an RFC 5322 date in UTC ("+0000").
 *
 *	The interface is synchronous for now. Group commit will add a
 *	submit call that collects messages and a flush called from the
 *	event loop's idle hook; deliver_message() will stay as the
 *	one-message case.
 * DIAGNOSTICS
 *	deliver_new() returns NULL when out of memory. deliver_message()
 *	returns SESSION_STORE_OK, SESSION_STORE_NOSPACE (ENOSPC, EDQUOT) or
 *	SESSION_STORE_TEMPFAIL (any other failure), and logs the outcome.
 * LIMITS
 *	An ID is unique as long as fewer than 65536 messages are stored in
 *	one microsecond by one process.
 */
#ifndef POLLSMTPD_DELIVER_H
#define POLLSMTPD_DELIVER_H

#include <stddef.h>
#include <time.h>

#include "session.h"

#define DELIVER_ID_LEN	17
#define DELIVER_ID_SIZE	(DELIVER_ID_LEN + 1)
#define DELIVER_DATE_SIZE	40

struct conf;
struct maildir;
struct deliver;

struct deliver *deliver_new(const struct conf *conf, struct maildir *md);
void deliver_free(struct deliver *d);
enum session_store_result deliver_message(struct deliver *d,
    const char *session_id, const struct session_message *msg,
    char *id, size_t idlen);
int deliver_make_id(struct deliver *d, char *id, size_t idlen);
int deliver_format_date(time_t t, char *dst, size_t dstlen);

#endif
