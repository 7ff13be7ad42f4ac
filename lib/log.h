/*
 * NAME
 *	log - log records of the daemon (client side)
 * SYNOPSIS
 *	#include "log.h"
 * DESCRIPTION
 *	Every part of pollsmtpd logs through these functions. A record is one
 *	line: "TIME LEVEL ID EVENT", with TIME in UTC ISO 8601 with
 *	milliseconds (2026-11-26T07:00:00.123Z), LEVEL one of DEBUG, INFO,
 *	WARN, ERROR, ID a session or message ID ("-" when none), and EVENT
 *	the formatted text. Control characters and bytes over 0x7e in the
 *	record are written as \xHH (and a backslash as \\), so nothing taken
 *	from the wire can start a new line or forge a record. A record is
 *	at most LOG_RECORD_MAX bytes; a longer one is cut and ends in "...".
 *
 *	log_init() sets the program name and whether DEBUG records are made.
 *	log_set_sink() sends finished records to sink (the logger-process
 *	client installs one); without a sink, records go to stderr.
 *	log_debug_enabled() tells whether DEBUG records are wanted: the
 *	log_debug() macro tests it before formatting anything.
 *	log_info(), log_warnx() and log_errx() log a record;
 *	log_warn() and log_err() append ": strerror(errno)".
 *	fatal() and fatalx() log an ERROR record and exit(EX_OSERR / EX_SOFTWARE).
 *	log_panic() names the function where a state that cannot happen
 *	happened, and aborts.
 *	log_escape() writes src as the log would show it, into dst.
 *	log_bytes() logs "WHAT: \"BYTES\"" with bytes taken as they are
 *	(NUL included) and escaped once, for a line from the wire that was
 *	refused for the bytes in it.
 *	log_format() formats a record into dst (at most LOG_RECORD_MAX
 *	bytes, NUL-terminated) without sending it anywhere, and returns its
 *	length; the logger client uses it to make its own records.
 * DIAGNOSTICS
 *	These functions keep errno. Nothing here fails visibly: a record that
 *	cannot be written is dropped by the sink, which counts it.
 */
#ifndef POLLSMTPD_LOG_H
#define POLLSMTPD_LOG_H

#include <stddef.h>
#include <stdarg.h>

#define LOG_RECORD_MAX 2048

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

typedef void (*log_sink_fn)(enum log_level level, const char *record,
    size_t len, void *ctx);

void log_init(const char *progname, int debug);
void log_set_debug(int debug);
void log_set_sink(log_sink_fn sink, void *ctx);
int log_debug_enabled(void);

void log_record(enum log_level level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vrecord(enum log_level level, const char *id, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

#define log_debug(id, ...) \
	do { \
		if (log_debug_enabled()) \
			log_record(LOG_LEVEL_DEBUG, (id), __VA_ARGS__); \
	} while (0)
void log_info(const char *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_warnx(const char *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_warn(const char *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_errx(const char *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_err(const char *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
__attribute__((noreturn)) void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void log_panic(const char *func, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

size_t log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);
void log_bytes(enum log_level level, const char *id, const char *what,
    const void *bytes, size_t len);
size_t log_format(char *dst, enum log_level level, const char *id,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
