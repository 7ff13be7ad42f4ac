/*
 * NAME
 *	log - log records of the daemon (client side)
 * SYNOPSIS
 *	See log.h.
 * DESCRIPTION
 *	A record is formatted once, here, into a fixed buffer: time, level,
 *	ID, then the event text with every byte that is not printable ASCII
 *	escaped. The finished line (without newline) goes to the sink; the
 *	default sink writes it to stderr with a newline in one write(2), so
 *	records from several processes never interleave within a line.
 * DIAGNOSTICS
 *	None: logging never fails visibly, and errno is kept.
 * LIMITS
 *	LOG_RECORD_MAX bytes a record.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/*
 * The logging state is global by nature: every module logs, and the
 * settings are made once at start-up (and when the logger client
 * installs its sink).
 */
static const char *log_progname = "pollsmtpd";
static int log_debug_on;
static log_sink_fn log_sink;
static void *log_sink_ctx;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "DEBUG",
	[LOG_LEVEL_INFO] = "INFO",
	[LOG_LEVEL_WARN] = "WARN",
	[LOG_LEVEL_ERROR] = "ERROR",
};

static void log_stderr(enum log_level level, const char *record, size_t len);

void
log_init(const char *progname, int debug)
{
	if (progname != NULL)
		log_progname = progname;
	log_debug_on = debug;
}

void
log_set_debug(int debug)
{
	log_debug_on = debug;
}

void
log_set_sink(log_sink_fn sink, void *ctx)
{
	log_sink = sink;
	log_sink_ctx = ctx;
}

int
log_debug_enabled(void)
{
	return log_debug_on;
}

/* log_escape - write src with non-printable bytes as \xHH, NUL-terminated */
size_t
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (dstlen == 0)
		return 0;
	for (i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
		} else if (c == '\\') {
			if (o + 2 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return o;
}

static void
log_stderr(enum log_level level, const char *record, size_t len)
{
	char line[LOG_RECORD_MAX + 1];

	(void)level;
	memcpy(line, record, len);
	line[len] = '\n';
	/* Best effort: a log that cannot be written must not stop the mail. */
	if (write(STDERR_FILENO, line, len + 1) < 0)
		return;
}

/* log_vformat - make a record in dst[LOG_RECORD_MAX]; 0 on failure */
static size_t log_vformat(char *dst, enum log_level level, const char *id,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static size_t
log_vformat(char *dst, enum log_level level, const char *id, const char *fmt,
    va_list ap)
{
	char text[LOG_RECORD_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len, tlen;
	int n, cut;

	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		return 0;
	cut = (size_t)n >= sizeof(text);
	tlen = cut ? sizeof(text) - 1 : (size_t)n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(dst, LOG_RECORD_MAX,
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
	    log_level_names[level], id != NULL && *id ? id : "-");
	if (n < 0 || (size_t)n >= LOG_RECORD_MAX)
		return 0;
	len = (size_t)n;
	len += log_escape(dst + len, LOG_RECORD_MAX - len, text, tlen);
	/* log_escape() stops short of the end only when the record is full. */
	if (cut || len + 4 >= LOG_RECORD_MAX)
		memcpy(dst + len - 3, "...", 3);
	return len;
}

size_t
log_format(char *dst, enum log_level level, const char *id,
    const char *fmt, ...)
{
	va_list ap;
	size_t len;
	int saved_errno = errno;

	va_start(ap, fmt);
	len = log_vformat(dst, level, id, fmt, ap);
	va_end(ap);
	errno = saved_errno;
	return len;
}

/* log_emit - hand a finished record to the sink, or to stderr */
static void
log_emit(enum log_level level, const char *record, size_t len)
{
	if (log_sink != NULL)
		log_sink(level, record, len, log_sink_ctx);
	else
		log_stderr(level, record, len);
}

void
log_vrecord(enum log_level level, const char *id, const char *fmt, va_list ap)
{
	char record[LOG_RECORD_MAX];
	size_t len;
	int saved_errno = errno;

	if (level == LOG_LEVEL_DEBUG && !log_debug_on)
		goto out;
	if ((len = log_vformat(record, level, id, fmt, ap)) > 0)
		log_emit(level, record, len);
out:
	errno = saved_errno;
}

void
log_bytes(enum log_level level, const char *id, const char *what,
    const void *bytes, size_t len)
{
	char record[LOG_RECORD_MAX];
	size_t n;
	int saved_errno = errno;

	if (level == LOG_LEVEL_DEBUG && !log_debug_on)
		goto out;
	n = log_format(record, level, id, "%s: \"", what);
	/* Room for the closing quote; a cut shows as "..." before it. */
	if (n == 0 || n + 5 >= sizeof(record))
		goto out;
	n += log_escape(record + n, sizeof(record) - n - 1, bytes, len);
	if (n + 5 >= sizeof(record))
		memcpy(record + n - 3, "...", 3);
	record[n++] = '"';
	log_emit(level, record, n);
out:
	errno = saved_errno;
}

void
log_record(enum log_level level, const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vrecord(level, id, fmt, ap);
	va_end(ap);
}

void
log_info(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vrecord(LOG_LEVEL_INFO, id, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vrecord(LOG_LEVEL_WARN, id, fmt, ap);
	va_end(ap);
}

void
log_errx(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vrecord(LOG_LEVEL_ERROR, id, fmt, ap);
	va_end(ap);
}

/* log_with_errno - a record with ": strerror(errno)" appended */
static void log_with_errno(enum log_level level, const char *id,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
log_with_errno(enum log_level level, const char *id, const char *fmt,
    va_list ap)
{
	char text[LOG_RECORD_MAX];
	int saved_errno = errno;

	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	log_record(level, id, "%s: %s", text, strerror(saved_errno));
	errno = saved_errno;
}

void
log_warn(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_with_errno(LOG_LEVEL_WARN, id, fmt, ap);
	va_end(ap);
}

void
log_err(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_with_errno(LOG_LEVEL_ERROR, id, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_with_errno(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(EX_OSERR);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vrecord(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(EX_SOFTWARE);
}

void
log_panic(const char *func, const char *fmt, ...)
{
	char text[LOG_RECORD_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	log_record(LOG_LEVEL_ERROR, NULL, "panic: %s: %s", func, text);
	abort();
}
