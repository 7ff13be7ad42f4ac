/*
 * NAME
 *	list - the "list" and "show" commands: letters with their envelopes
 * SYNOPSIS
 *	See list.h.
 * DESCRIPTION
 *	Both commands first collect the letters they want from the
 *	directories alone (name, size, mtime), sort them, and only then
 *	open each in turn: at most one file is open at a time, memory grows
 *	with the number of letters but not with their envelopes, and a file
 *	that went away in between (delivered, bounced) is skipped quietly.
 * DIAGNOSTICS
 *	See list.h.
 * LIMITS
 *	show reads at most LIST_HEADERS_MAX bytes of headers and, with
 *	--body, at most LIST_MESSAGE_MAX bytes of message.
 */
#include "config.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "json.h"
#include "list.h"
#include "queuefile.h"
#include "scan.h"

#define LIST_HEADERS_MAX	(1024 * 1024)
#define LIST_MESSAGE_MAX	(1024L * 1024 * 1024)

struct list_letter {
	char *domain;			/* NULL when delivered */
	char *user;			/* a delivered letter's user */
	int in_cur;			/* delivered, in cur/ (else new/) */
	char *name;
	char *path;			/* relative to the root */
	char id[INSPECT_ID_MAX];
	int in_error;
	off_t size;
	time_t mtime;
	const char *claim_host;		/* in name: the holder, or NULL */
	time_t claim_since;		/* taken or last renewed */
};

struct list {
	struct inspect *in;
	struct list_letter *letters;
	size_t nletters;
	size_t cap;
	int nomem;
};

/* One letter opened: its envelope, or why it has none. */
struct list_open {
	int fd;
	struct queuefile *qf;		/* NULL when malformed */
	struct queuefile_error err;
};

static int list_collect(void *ctx, const struct scan_letter *l);
static int show_collect(void *ctx, const struct scan_letter *l);
static int list_add(struct list *ls, const struct scan_letter *l);
static void list_problem(void *ctx, enum scan_problem kind,
    const char *path, const char *detail, int err);
static int list_compare(const void *a, const void *b);
static void list_free(struct list *ls);
static int list_open(struct inspect *in, const struct list_letter *l,
    struct list_open *lo);
static void list_close(struct list_open *lo);
static int list_matches(const struct inspect *in,
    const struct queuefile *qf);
static void list_json_param(const char *params, const char *name,
    int xtext);
static void list_json_letter(const struct inspect *in,
    const struct list_letter *l, const struct queuefile *qf,
    const struct queuefile_error *err);
static void list_arrival(time_t mtime, char *dst, size_t len);
static void list_state(const struct inspect *in, const struct list_letter *l,
    struct queuefile_state *st);
static void list_text_letter(const struct inspect *in,
    const struct list_letter *l, int idw, int domw,
    const struct queuefile *qf, const struct queuefile_error *err);
static void list_total(const struct inspect *in, unsigned long long count,
    unsigned long long bytes);
static int show_letter(struct inspect *in, const struct list_letter *l,
    int first);
static int show_trace_value(const char *h, size_t len, const char *field,
    size_t index, const char **value, size_t *vlen);
static void show_json_trace(const char *h, size_t len, const char *field,
    int array);
static int show_delivered(struct inspect *in, const struct list_letter *l,
    int first);
static void show_json_headers(const char *h, size_t len);
static int show_read_message(int fd, off_t offset, struct buf **out);

static int
list_add(struct list *ls, const struct scan_letter *l)
{
	struct list_letter *grown, *n;
	size_t cap;

	if (ls->nletters == ls->cap) {
		cap = ls->cap ? ls->cap * 2 : 64;
		if ((grown = realloc(ls->letters, cap * sizeof(*grown)))
		    == NULL)
			goto nomem;
		ls->letters = grown;
		ls->cap = cap;
	}
	n = &ls->letters[ls->nletters];
	memset(n, 0, sizeof(*n));
	if (l->domain != NULL)
		n->domain = strdup(l->domain);
	else
		n->user = strdup(l->user);
	n->in_cur = l->folder != NULL && strcmp(l->folder, "cur") == 0;
	n->name = strdup(l->name);
	n->path = strdup(l->path);
	if ((n->domain == NULL && n->user == NULL) || n->name == NULL
	    || n->path == NULL) {
		free(n->domain);
		free(n->user);
		free(n->name);
		free(n->path);
		goto nomem;
	}
	/* scan.c took the ID from the name: it fits. */
	(void)snprintf(n->id, sizeof(n->id), "%s", l->id);
	n->in_error = l->in_error;
	n->size = l->size;
	n->mtime = l->mtime;
	if (l->claim_host != NULL && strchr(n->name, ':') != NULL) {
		n->claim_host = strchr(n->name, ':') + 1;
		n->claim_since = l->claim_since;
	}
	ls->nletters++;
	return 0;

nomem:
	ls->nomem = 1;
	return -1;
}

static int
list_collect(void *ctx, const struct scan_letter *l)
{
	struct list *ls = ctx;

	if (ls->in->older_than >= 0
	    && inspect_age(ls->in, l->mtime) <= ls->in->older_than)
		return 0;
	return list_add(ls, l);
}

static int
show_collect(void *ctx, const struct scan_letter *l)
{
	struct list *ls = ctx;

	if (strcmp(l->id, ls->in->id) != 0)
		return 0;
	return list_add(ls, l);
}

static void
list_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err)
{
	struct list *ls = ctx;

	if (kind == SCAN_UNREADABLE)
		inspect_io_error(ls->in, path, err);
}

/*
 * list_compare - queue letters by domain, then delivered ones by user;
 * then oldest first, queued before error/, by name
 */
static int
list_compare(const void *a, const void *b)
{
	const struct list_letter *x = a, *y = b;
	int c;

	if ((x->domain == NULL) != (y->domain == NULL))
		return x->domain == NULL ? 1 : -1;
	if (x->domain != NULL && (c = strcmp(x->domain, y->domain)) != 0)
		return c;
	if (x->user != NULL && (c = strcmp(x->user, y->user)) != 0)
		return c;
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	if (x->in_error != y->in_error)
		return x->in_error - y->in_error;
	return strcmp(x->name, y->name);
}

static void
list_free(struct list *ls)
{
	size_t i;

	for (i = 0; i < ls->nletters; i++) {
		free(ls->letters[i].domain);
		free(ls->letters[i].user);
		free(ls->letters[i].name);
		free(ls->letters[i].path);
	}
	free(ls->letters);
}

/*
 * list_open - open a letter and read its envelope. Returns 1 (lo is
 * filled: close it with list_close()), 0 (the file is gone, or could not
 * be read: reported), or -1 (out of memory).
 */
static int
list_open(struct inspect *in, const struct list_letter *l,
    struct list_open *lo)
{
	int r;

	memset(lo, 0, sizeof(*lo));
	lo->fd = openat(in->rootfd, l->path,
	    O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (lo->fd < 0) {
		if (errno != ENOENT)
			inspect_io_error(in, l->path, errno);
		return 0;
	}
	r = queuefile_read(lo->fd, &lo->qf, &lo->err);
	if (r < 0) {
		int saved = errno;

		(void)close(lo->fd);
		if (saved == ENOMEM)
			return -1;
		inspect_io_error(in, l->path, saved);
		return 0;
	}
	return 1;
}

static void
list_close(struct list_open *lo)
{
	queuefile_free(lo->qf);
	(void)close(lo->fd);
}

static int
list_matches(const struct inspect *in, const struct queuefile *qf)
{
	size_t i;
	int found;

	if (in->from == NULL && in->to == NULL)
		return 1;
	if (qf == NULL)
		return 0;
	if (in->from != NULL) {
		if (strcmp(in->from, "<>") == 0) {
			if (*queuefile_sender(qf) != '\0')
				return 0;
		} else if (!inspect_contains_nocase(queuefile_sender(qf),
		    in->from))
			return 0;
	}
	if (in->to != NULL) {
		found = 0;
		for (i = 0; i < queuefile_nrcpts(qf) && !found; i++)
			found = inspect_contains_nocase(queuefile_rcpt(qf, i),
			    in->to);
		if (!found)
			return 0;
	}
	return 1;
}

/*
 * list_state - the delivery agent's state of a queued letter: the file
 * .state/NAME beside it (a claimed letter, .claim/NAME:HOST, has its
 * state in the domain's .state/). No file, or one that cannot be read:
 * never tried.
 */
static void
list_state(const struct inspect *in, const struct list_letter *l,
    struct queuefile_state *st)
{
	char path[PATH_MAX];
	const char *slash = strrchr(l->path, '/'), *colon;
	size_t dirlen, namelen;
	int n;

	memset(st, 0, sizeof(*st));
	if (slash == NULL)
		return;
	dirlen = (size_t)(slash - l->path);
	if (dirlen >= 7 && memcmp(slash - 7, "/.claim", 7) == 0)
		dirlen -= 7;
	namelen = (colon = strchr(l->name, ':')) != NULL
	    ? (size_t)(colon - l->name) : strlen(l->name);
	n = snprintf(path, sizeof(path), "%.*s/%s/%.*s", (int)dirlen, l->path,
	    QUEUEFILE_STATE_DIR, (int)namelen, l->name);
	if (n < 0 || (size_t)n >= sizeof(path)
	    || queuefile_state_read(in->rootfd, path, st) < 0)
		memset(st, 0, sizeof(*st));
}

/* list_json_letter - the members every letter object has, without braces */
static void
list_json_letter(const struct inspect *in, const struct list_letter *l,
    const struct queuefile *qf, const struct queuefile_error *err)
{
	struct queuefile_state st;
	char unicode[ADDR_DOMAIN_MAX + 1];
	size_t i;

	printf("\"id\":");
	json_cstring(stdout, l->id);
	printf(",\"domain\":");
	json_cstring(stdout, l->domain);
	/* The directory is the A-label form; people read the U-labels. */
	printf(",\"domain_unicode\":");
	json_cstring(stdout, addr_domain_to_unicode(l->domain, unicode,
	    sizeof(unicode)) == 0 ? unicode : l->domain);
	printf(",\"state\":\"%s\",\"file\":", l->in_error ? "error" : "queued");
	json_cstring(stdout, l->name);
	printf(",\"path\":");
	json_cstring(stdout, l->path);
	printf(",\"size\":%lld,\"mtime\":%lld,\"age\":%lld,\"sender\":",
	    (long long)l->size, (long long)l->mtime,
	    inspect_age(in, l->mtime));
	json_nstring(stdout, qf ? queuefile_sender(qf) : NULL);
	printf(",\"params\":");
	json_nstring(stdout, qf ? queuefile_params(qf) : NULL);
	printf(",\"recipients\":[");
	for (i = 0; qf != NULL && i < queuefile_nrcpts(qf); i++) {
		if (i > 0)
			putchar(',');
		json_cstring(stdout, queuefile_rcpt(qf, i));
	}
	printf("],\"recipient_params\":[");
	for (i = 0; qf != NULL && i < queuefile_nrcpts(qf); i++) {
		if (i > 0)
			putchar(',');
		json_cstring(stdout, queuefile_rcpt_params(qf, i));
	}
	printf("],\"dsn\":");
	if (qf == NULL) {
		printf("null");
	} else {
		printf("{\"ret\":");
		list_json_param(queuefile_params(qf), "RET", 0);
		printf(",\"envid\":");
		list_json_param(queuefile_params(qf), "ENVID", 1);
		printf(",\"notify\":[");
		for (i = 0; i < queuefile_nrcpts(qf); i++) {
			if (i > 0)
				putchar(',');
			list_json_param(queuefile_rcpt_params(qf, i), "NOTIFY",
			    0);
		}
		printf("],\"orcpt\":[");
		for (i = 0; i < queuefile_nrcpts(qf); i++) {
			if (i > 0)
				putchar(',');
			list_json_param(queuefile_rcpt_params(qf, i), "ORCPT",
			    1);
		}
		printf("]}");
	}
	printf(",\"malformed\":");
	json_nstring(stdout, qf ? NULL : err->reason);
	list_state(in, l, &st);
	printf(",\"claimed\":%s,\"claimed_by\":",
	    l->claim_host != NULL ? "true" : "false");
	json_nstring(stdout, l->claim_host);
	printf(",\"claimed_since\":");
	if (l->claim_host != NULL)
		printf("%lld", (long long)l->claim_since);
	else
		printf("null");
	printf(",\"attempts\":%ld,\"next_attempt\":", st.attempts);
	if (st.next_attempt > (long long)in->now)
		printf("%lld", st.next_attempt);
	else
		printf("null");
	printf(",\"last_error\":");
	json_nstring(stdout, st.last_error[0] ? st.last_error : NULL);
}

/*
 * list_json_param - the value of one ESMTP parameter as a JSON string,
 * or null when params lack it. With xtext, RFC 3461's xtext is decoded
 * (ORCPT after its "addr-type;", which is kept); a value that does not
 * decode, or RFC 6533's utf-8 form, is shown as it is.
 */
static void
list_json_param(const char *params, const char *name, int xtext)
{
	char raw[QUEUEFILE_LINE_MAX + 1], out[QUEUEFILE_LINE_MAX + 1];
	const char *v, *semi;
	size_t len, skip = 0;

	if ((v = queuefile_param(params, name, &len)) == NULL) {
		printf("null");
		return;
	}
	if (!xtext || len >= sizeof(raw)) {
		json_string(stdout, v, len);
		return;
	}
	memcpy(raw, v, len);
	raw[len] = '\0';
	if (strcmp(name, "ORCPT") == 0) {
		if ((semi = strchr(raw, ';')) == NULL
		    || strncasecmp(raw, "utf-8;", 6) == 0) {
			json_cstring(stdout, raw);
			return;
		}
		skip = (size_t)(semi - raw) + 1;
	}
	memcpy(out, raw, skip);
	if (addr_xtext_decode(raw + skip, len - skip, out + skip,
	    sizeof(out) - skip) < 0) {
		json_cstring(stdout, raw);
		return;
	}
	json_cstring(stdout, out);
}

/* list_arrival - the file's mtime in UTC, as the log writes times */
static void
list_arrival(time_t mtime, char *dst, size_t len)
{
	struct tm tm;

	if (gmtime_r(&mtime, &tm) == NULL
	    || strftime(dst, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(dst, len, "-");
}

static void
list_text_letter(const struct inspect *in, const struct list_letter *l,
    int idw, int domw, const struct queuefile *qf,
    const struct queuefile_error *err)
{
	struct queuefile_state st;
	char age[32], arrival[32], next[32];
	size_t i;

	inspect_format_age(inspect_age(in, l->mtime), age, sizeof(age));
	list_arrival(l->mtime, arrival, sizeof(arrival));
	printf("%-*s %-*s %10lld %20s %7s ", idw, l->id, domw, l->domain,
	    (long long)l->size, arrival, age);
	if (qf == NULL) {
		printf("%6s (malformed envelope: ", "-");
		inspect_print_safe(stdout, err->reason, strlen(err->reason),
		    INSPECT_ESC_8BIT);
		printf(")\n");
		return;
	}
	/*
	 * The envelope holds printable ASCII, or good UTF-8 with SMTPUTF8
	 * (queuefile checks it).
	 */
	printf("%6zu <%s>", queuefile_nrcpts(qf), queuefile_sender(qf));
	for (i = 0; i < queuefile_nrcpts(qf); i++)
		printf(" <%s>", queuefile_rcpt(qf, i));
	putchar('\n');
	if (l->claim_host != NULL) {
		list_arrival(l->claim_since, next, sizeof(next));
		inspect_format_age(inspect_age(in, l->claim_since), age,
		    sizeof(age));
		printf("%*s(claimed by ", idw, "");
		inspect_print_safe(stdout, l->claim_host,
		    strlen(l->claim_host), INSPECT_ESC_8BIT);
		printf(" since %s, %s ago)\n", next, age);
	}
	/* Like postqueue -p, the reason under a deferred letter. */
	list_state(in, l, &st);
	if (st.attempts > 0 || st.last_error[0] != '\0') {
		if (st.next_attempt > (long long)in->now)
			list_arrival((time_t)st.next_attempt, next,
			    sizeof(next));
		else
			(void)snprintf(next, sizeof(next), "now");
		printf("%*s(%ld attempt%s, next %s: ", idw, "", st.attempts,
		    st.attempts == 1 ? "" : "s", next);
		inspect_print_safe(stdout, st.last_error,
		    strlen(st.last_error), INSPECT_ESC_8BIT);
		printf(")\n");
	}
}

/* list_total - the last line of the text, as postqueue -p ends its own */
static void
list_total(const struct inspect *in, unsigned long long count,
    unsigned long long bytes)
{
	int filtered = in->domain != NULL || in->from != NULL
	    || in->to != NULL || in->older_than >= 0;

	if (count > 0)
		printf("-- %llu KiB in %llu letter%s.\n", (bytes + 1023) / 1024,
		    count, count == 1 ? "" : "s");
	else if (filtered)
		printf("No letter matches.\n");
	else if (in->error)
		printf("No letter in error/\n");
	else
		printf("Mail queue is empty\n");
}

int
list_run(struct inspect *in)
{
	static const struct scan_ops ops = {
		.letter = list_collect,
		.problem = list_problem,
	};
	struct list ls;
	struct list_open lo;
	unsigned long long count = 0, bytes = 0;
	size_t i;
	int idw = 2, domw = 6, r, status = 0;

	memset(&ls, 0, sizeof(ls));
	ls.in = in;
	if (scan_queue(in, in->error ? SCAN_ERROR : SCAN_QUEUED, &ops, &ls) < 0
	    || ls.nomem)
		goto nomem;
	if (ls.nletters > 0)
		qsort(ls.letters, ls.nletters, sizeof(ls.letters[0]),
		    list_compare);
	for (i = 0; i < ls.nletters; i++) {
		if (strlen(ls.letters[i].id) > (size_t)idw)
			idw = (int)strlen(ls.letters[i].id);
		if (strlen(ls.letters[i].domain) > (size_t)domw)
			domw = (int)strlen(ls.letters[i].domain);
	}

	if (in->json) {
		printf("{\"version\":1,\"command\":\"list\",\"root\":");
		json_cstring(stdout, in->root);
		printf(",\"now\":%lld,\"filters\":{\"domain\":",
		    (long long)in->now);
		json_nstring(stdout, in->domain);
		printf(",\"from\":");
		json_nstring(stdout, in->from);
		printf(",\"to\":");
		json_nstring(stdout, in->to);
		if (in->older_than >= 0)
			printf(",\"older_than\":%lld", in->older_than);
		else
			printf(",\"older_than\":null");
		printf(",\"error\":%s},\"letters\":[",
		    in->error ? "true" : "false");
	}
	for (i = 0; i < ls.nletters; i++) {
		if ((r = list_open(in, &ls.letters[i], &lo)) < 0)
			goto nomem;
		if (r == 0)
			continue;
		if (list_matches(in, lo.qf)) {
			if (in->json) {
				printf("%s{", count > 0 ? "," : "");
				list_json_letter(in, &ls.letters[i], lo.qf,
				    &lo.err);
				putchar('}');
			} else {
				/* No header above an empty queue (postqueue). */
				if (count == 0)
					printf("%-*s %-*s %10s %20s %7s %6s "
					    "%s\n", idw, "ID", domw, "DOMAIN",
					    "SIZE", "ARRIVAL", "AGE", "RCPTS",
					    "SENDER RECIPIENTS");
				list_text_letter(in, &ls.letters[i], idw, domw,
				    lo.qf, &lo.err);
			}
			count++;
			bytes += (unsigned long long)ls.letters[i].size;
		}
		list_close(&lo);
	}
	if (in->json)
		printf("],\"count\":%llu,\"bytes\":%llu}\n", count, bytes);
	else
		list_total(in, count, bytes);
	list_free(&ls);
	return status;

nomem:
	inspect_warnx("out of memory");
	list_free(&ls);
	return EX_OSERR;
}

/*
 * show_json_headers - the header section as an array of fields, each a
 * string with its continuation lines (joined by "\n") and without the
 * final LF.
 */
static void
show_json_headers(const char *h, size_t len)
{
	size_t start = 0, pos = 0, n = 0;
	const char *lf;

	putchar('[');
	while (pos < len) {
		lf = memchr(h + pos, '\n', len - pos);
		pos = lf ? (size_t)(lf - h) + 1 : len;
		if (pos < len && (h[pos] == ' ' || h[pos] == '\t'))
			continue;
		if (n++ > 0)
			putchar(',');
		json_string(stdout, h + start,
		    pos - start - (h[pos - 1] == '\n' ? 1 : 0));
		start = pos;
	}
	putchar(']');
}

/* show_read_message - the file from offset to its end */
static int
show_read_message(int fd, off_t offset, struct buf **out)
{
	char chunk[65536];
	ssize_t n;

	if ((*out = buf_new(LIST_MESSAGE_MAX)) == NULL)
		return -1;
	for (;;) {
		n = pread(fd, chunk, sizeof(chunk), offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (buf_append(*out, chunk, (size_t)n) < 0)
			return -1;
		offset += n;
	}
}

/*
 * show_letter - one letter, text or a JSON object. Returns 1 (shown),
 * 0 (gone or unreadable: reported), -1 (out of memory).
 */
static int
show_letter(struct inspect *in, const struct list_letter *l, int first)
{
	struct list_open lo;
	struct buf *hdr = NULL, *msg = NULL;
	const char *text = NULL;
	size_t i, len = 0, hlen = 0;
	struct queuefile_state st;
	int complete = 0, r, ret = 1;
	char age[32], next[32], unicode[ADDR_DOMAIN_MAX + 1];

	if (l->domain == NULL)
		return show_delivered(in, l, first);
	if ((r = list_open(in, l, &lo)) <= 0)
		return r;
	if (lo.qf != NULL) {
		off_t off = (off_t)queuefile_envelope_len(lo.qf);

		if (in->body) {
			r = show_read_message(lo.fd, off, &msg);
			text = msg ? buf_data(msg) : NULL;
			len = msg ? buf_len(msg) : 0;
		} else {
			hdr = buf_new(LIST_HEADERS_MAX);
			r = hdr ? queuefile_read_headers(lo.fd, off, hdr) : -1;
			text = hdr ? buf_data(hdr) : NULL;
			len = hdr ? buf_len(hdr) : 0;
		}
		if (r < 0) {
			int saved = errno;

			if (saved == ENOMEM) {
				ret = -1;
				goto fail;
			}
			/* Headers too big to show whole: show what fits. */
			inspect_io_error(in, l->path, saved);
			if (saved != EMSGSIZE)
				goto fail;
		}
		if (text == NULL)
			text = "";
		hlen = queuefile_header_len(text, len, &complete);
	}

	if (in->json) {
		printf("%s{", first ? "" : ",");
		list_json_letter(in, l, lo.qf, &lo.err);
		printf(",\"user\":null,\"folder\":null,\"headers\":");
		if (lo.qf == NULL)
			printf("null");
		else
			show_json_headers(text, hlen);
		printf(",\"body\":");
		if (lo.qf == NULL || !in->body)
			printf("null");
		else if (complete)
			json_string(stdout, text + hlen + 1, len - hlen - 1);
		else
			printf("\"\"");
		putchar('}');
		goto fail;
	}

	if (!first)
		putchar('\n');
	inspect_format_age(inspect_age(in, l->mtime), age, sizeof(age));
	printf("path: ");
	inspect_print_safe(stdout, l->path, strlen(l->path), INSPECT_ESC_8BIT);
	printf("\nid: %s\ndomain: %s", l->id, l->domain);
	if (addr_domain_to_unicode(l->domain, unicode, sizeof(unicode)) == 0
	    && strcmp(unicode, l->domain) != 0)
		printf(" (%s)", unicode);
	printf("\nstate: %s\nsize: %lld\nage: %s (%lld s)\n",
	    l->in_error ? "error" : "queued", (long long)l->size, age,
	    inspect_age(in, l->mtime));
	if (l->claim_host != NULL) {
		list_arrival(l->claim_since, next, sizeof(next));
		printf("claimed_by: ");
		inspect_print_safe(stdout, l->claim_host,
		    strlen(l->claim_host), INSPECT_ESC_8BIT);
		printf("\nclaimed_since: %s (%lld)\n", next,
		    (long long)l->claim_since);
	}
	list_state(in, l, &st);
	printf("attempts: %ld\n", st.attempts);
	if (st.next_attempt > (long long)in->now) {
		list_arrival((time_t)st.next_attempt, next, sizeof(next));
		printf("next_attempt: %s (%lld)\n", next, st.next_attempt);
	} else
		printf("next_attempt: now\n");
	printf("last_error: ");
	if (st.last_error[0] != '\0')
		inspect_print_safe(stdout, st.last_error,
		    strlen(st.last_error), INSPECT_ESC_8BIT);
	else
		printf("none");
	putchar('\n');
	if (lo.qf == NULL) {
		printf("malformed: %s\n", lo.err.reason);
		goto fail;
	}
	printf("sender: <%s>\n", queuefile_sender(lo.qf));
	if (*queuefile_params(lo.qf) != '\0')
		printf("params: %s\n", queuefile_params(lo.qf));
	for (i = 0; i < queuefile_nrcpts(lo.qf); i++)
		printf("recipient: <%s>%s%s\n", queuefile_rcpt(lo.qf, i),
		    *queuefile_rcpt_params(lo.qf, i) ? " " : "",
		    queuefile_rcpt_params(lo.qf, i));
	putchar('\n');
	inspect_print_safe(stdout, text, in->body ? len : hlen,
	    INSPECT_KEEP_LINES);
	if ((in->body ? len : hlen) > 0 && text[(in->body ? len : hlen) - 1]
	    != '\n')
		putchar('\n');
fail:
	buf_free(hdr);
	buf_free(msg);
	list_close(&lo);
	return ret;
}

/*
 * show_trace_value - the index-th value of field (e.g. "Delivered-To:")
 * among the lines the daemon puts in front of a delivered message -
 * Return-Path:, Delivered-To:, then its Received:, which ends the run so
 * that a field the client wrote is never taken for one - without the
 * angle brackets. Returns 1 with *value and *vlen set, or 0.
 */
static int
show_trace_value(const char *h, size_t len, const char *field, size_t index,
    const char **value, size_t *vlen)
{
	size_t pos = 0, end, flen = strlen(field);
	const char *lf, *v;

	while (pos < len) {
		lf = memchr(h + pos, '\n', len - pos);
		end = lf ? (size_t)(lf - h) : len;
		if (end - pos > flen && strncasecmp(h + pos, field, flen) == 0) {
			v = h + pos + flen;
			while (v < h + end && (*v == ' ' || *v == '\t'))
				v++;
			*value = v;
			*vlen = (size_t)(h + end - v);
			if (*vlen >= 2 && v[0] == '<' && v[*vlen - 1] == '>') {
				(*value)++;
				*vlen -= 2;
			}
			if (index-- == 0)
				return 1;
		} else if (!(end - pos >= 12
		    && strncasecmp(h + pos, "Return-Path:", 12) == 0)
		    && !(end - pos >= 13
		    && strncasecmp(h + pos, "Delivered-To:", 13) == 0)) {
			return 0;
		}
		pos = end + 1;
	}
	return 0;
}

/* show_json_trace - a trace value as a string (or null), or all of them */
static void
show_json_trace(const char *h, size_t len, const char *field, int array)
{
	const char *v;
	size_t i, vlen;

	if (!array) {
		if (show_trace_value(h, len, field, 0, &v, &vlen))
			json_string(stdout, v, vlen);
		else
			printf("null");
		return;
	}
	putchar('[');
	for (i = 0; show_trace_value(h, len, field, i, &v, &vlen); i++) {
		if (i > 0)
			putchar(',');
		json_string(stdout, v, vlen);
	}
	putchar(']');
}

/*
 * show_delivered - a letter in a user's new/ or cur/. It has no envelope:
 * the file is the message with the daemon's Return-Path:, Delivered-To:
 * and Received: in front, so sender and recipient come from those.
 * Returns 1 (shown), 0 (gone or unreadable: reported), -1 (out of
 * memory).
 */
static int
show_delivered(struct inspect *in, const struct list_letter *l, int first)
{
	struct buf *data = NULL;
	const char *text, *v;
	size_t i, len, hlen, vlen;
	int fd, r, saved, complete = 0, ret = 1;
	char age[32];

	fd = openat(in->rootfd, l->path,
	    O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			inspect_io_error(in, l->path, errno);
		return 0;
	}
	if (in->body) {
		r = show_read_message(fd, 0, &data);
	} else {
		data = buf_new(LIST_HEADERS_MAX);
		r = data ? queuefile_read_headers(fd, 0, data) : -1;
	}
	if (r < 0) {
		saved = errno;
		if (saved == ENOMEM || data == NULL) {
			ret = -1;
			goto fail;
		}
		/* Headers too big to show whole: show what fits. */
		inspect_io_error(in, l->path, saved);
		if (saved != EMSGSIZE) {
			ret = 0;
			goto fail;
		}
	}
	text = buf_len(data) > 0 ? buf_data(data) : "";
	len = buf_len(data);
	hlen = queuefile_header_len(text, len, &complete);

	if (in->json) {
		printf("%s{\"id\":", first ? "" : ",");
		json_cstring(stdout, l->id);
		printf(",\"domain\":null,\"domain_unicode\":null,"
		    "\"state\":\"delivered\",\"file\":");
		json_cstring(stdout, l->name);
		printf(",\"path\":");
		json_cstring(stdout, l->path);
		printf(",\"size\":%lld,\"mtime\":%lld,\"age\":%lld,\"sender\":",
		    (long long)l->size, (long long)l->mtime,
		    inspect_age(in, l->mtime));
		show_json_trace(text, hlen, "Return-Path:", 0);
		printf(",\"params\":null,\"recipients\":");
		show_json_trace(text, hlen, "Delivered-To:", 1);
		printf(",\"recipient_params\":null,\"dsn\":null"
		    ",\"malformed\":null,\"user\":");
		json_cstring(stdout, l->user);
		printf(",\"folder\":\"%s\",\"headers\":", l->in_cur ? "cur" : "new");
		show_json_headers(text, hlen);
		printf(",\"body\":");
		if (!in->body)
			printf("null");
		else if (complete)
			json_string(stdout, text + hlen + 1, len - hlen - 1);
		else
			printf("\"\"");
		putchar('}');
		goto fail;
	}

	if (!first)
		putchar('\n');
	inspect_format_age(inspect_age(in, l->mtime), age, sizeof(age));
	printf("path: ");
	inspect_print_safe(stdout, l->path, strlen(l->path), INSPECT_ESC_8BIT);
	printf("\nid: %s\nuser: ", l->id);
	inspect_print_safe(stdout, l->user, strlen(l->user), INSPECT_ESC_8BIT);
	printf("\nfolder: %s\nstate: delivered\nsize: %lld\n"
	    "age: %s (%lld s)\n", l->in_cur ? "cur" : "new",
	    (long long)l->size, age, inspect_age(in, l->mtime));
	if (show_trace_value(text, hlen, "Return-Path:", 0, &v, &vlen)) {
		printf("sender: <");
		inspect_print_safe(stdout, v, vlen, 0);
		printf(">\n");
	}
	for (i = 0; show_trace_value(text, hlen, "Delivered-To:", i, &v, &vlen);
	    i++) {
		printf("recipient: <");
		inspect_print_safe(stdout, v, vlen, 0);
		printf(">\n");
	}
	putchar('\n');
	inspect_print_safe(stdout, text, in->body ? len : hlen,
	    INSPECT_KEEP_LINES);
	if ((in->body ? len : hlen) > 0 && text[(in->body ? len : hlen) - 1]
	    != '\n')
		putchar('\n');
fail:
	buf_free(data);
	(void)close(fd);
	return ret;
}

int
show_run(struct inspect *in)
{
	static const struct scan_ops ops = {
		.letter = show_collect,
		.problem = list_problem,
	};
	struct list ls;
	size_t i, shown = 0;
	int r;

	memset(&ls, 0, sizeof(ls));
	ls.in = in;
	if (scan_queue(in, SCAN_QUEUED | SCAN_ERROR, &ops, &ls) < 0
	    || ls.nomem || scan_users(in, SCAN_DELIVERED, &ops, &ls) < 0
	    || ls.nomem)
		goto nomem;
	if (ls.nletters > 0)
		qsort(ls.letters, ls.nletters, sizeof(ls.letters[0]),
		    list_compare);
	if (in->json) {
		printf("{\"version\":1,\"command\":\"show\",\"root\":");
		json_cstring(stdout, in->root);
		printf(",\"now\":%lld,\"id\":", (long long)in->now);
		json_cstring(stdout, in->id);
		printf(",\"letters\":[");
	}
	for (i = 0; i < ls.nletters; i++) {
		if ((r = show_letter(in, &ls.letters[i], shown == 0)) < 0)
			goto nomem;
		shown += (size_t)r;
	}
	if (in->json)
		printf("]}\n");
	list_free(&ls);
	if (shown == 0 && in->status == 0) {
		inspect_warnx("no letter, queued or delivered, has the ID %s",
		    in->id);
		return 1;
	}
	return 0;

nomem:
	inspect_warnx("out of memory");
	list_free(&ls);
	return EX_OSERR;
}
