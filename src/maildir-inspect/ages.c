/*
 * NAME
 *	ages - the "ages" command: letters by domain and age bucket (qshape)
 * SYNOPSIS
 *	See ages.h.
 * DESCRIPTION
 *	The buckets double in width, as qshape's do, so that a glance tells
 *	a domain that is slow now from one that has been dead for hours.
 *
 *	By recipient domain (the default) the walk alone is enough: a
 *	letter's directory is its domain, and scan_queue() announces each
 *	domain before its letters. By sender domain (in->by_sender) the
 *	envelope must be read: the letters are collected from the walk,
 *	the copies of one message (a file per remote domain) are counted
 *	once, and each is opened in turn, one file at a time.
 * DIAGNOSTICS
 *	See ages.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ages.h"
#include "json.h"
#include "queuefile.h"
#include "scan.h"

/* The first bucket ends at 5 minutes; each next one is twice as wide. */
#define AGES_FIRST	(5LL * 60)

/* What qshape names the null sender's domain, and ours for a bad file. */
#define AGES_NULL_SENDER	"MAILER-DAEMON"
#define AGES_MALFORMED		"(malformed)"

struct ages_domain {
	char *name;
	unsigned long long total;
	unsigned long long counts[AGES_BUCKETS_MAX];
};

/* One letter waiting to be read for its sender (in->by_sender). */
struct ages_letter {
	char *path;			/* relative to the root */
	char id[INSPECT_ID_MAX];
	time_t mtime;
};

struct ages {
	struct inspect *in;
	struct ages_domain *domains;
	size_t ndomains;
	size_t cap;
	struct ages_letter *letters;
	size_t nletters;
	size_t letters_cap;
	int nomem;
};

static long long ages_from(int b);
static int ages_bucket(int nbuckets, long long age);
static struct ages_domain *ages_add_domain(struct ages *ag, const char *name);
static void ages_domain(void *ctx, const char *domain);
static int ages_letter(void *ctx, const struct scan_letter *l);
static int ages_collect(void *ctx, const struct scan_letter *l);
static void ages_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err);
static int ages_compare(const void *a, const void *b);
static int ages_compare_names(const void *a, const void *b);
static int ages_compare_letters(const void *a, const void *b);
static int ages_sender_domain(struct ages *ag, const struct ages_letter *l,
    char *dst, size_t len);
static int ages_by_sender(struct ages *ag);
static void ages_label(int nbuckets, int b, int json, char *dst, size_t len);
static void ages_text_row(const char *name, int width, int nbuckets,
    const struct ages_domain *d);
static void ages_json_counts(int nbuckets, const struct ages_domain *d);
static void ages_text(const struct ages *ag, const struct ages_domain *total,
    int width);
static void ages_json(const struct inspect *in, const struct ages *ag,
    const struct ages_domain *total);

/* ages_from - the lower bound of bucket b in seconds */
static long long
ages_from(int b)
{
	return b == 0 ? 0 : AGES_FIRST << (b - 1);
}

/* ages_bucket - the bucket of an age: from <= age < the next from */
static int
ages_bucket(int nbuckets, long long age)
{
	int b;

	for (b = nbuckets - 1; b > 0 && age < ages_from(b); b--)
		continue;
	return b;
}

static struct ages_domain *
ages_add_domain(struct ages *ag, const char *name)
{
	struct ages_domain *grown;
	size_t cap;

	if (ag->ndomains == ag->cap) {
		cap = ag->cap ? ag->cap * 2 : 16;
		if ((grown = realloc(ag->domains, cap * sizeof(*grown)))
		    == NULL) {
			ag->nomem = 1;
			return NULL;
		}
		ag->domains = grown;
		ag->cap = cap;
	}
	memset(&ag->domains[ag->ndomains], 0, sizeof(ag->domains[0]));
	if ((ag->domains[ag->ndomains].name = strdup(name)) == NULL) {
		ag->nomem = 1;
		return NULL;
	}
	return &ag->domains[ag->ndomains++];
}

static void
ages_domain(void *ctx, const char *domain)
{
	struct ages *ag = ctx;

	if (!ag->nomem)
		(void)ages_add_domain(ag, domain);
}

static int
ages_letter(void *ctx, const struct scan_letter *l)
{
	struct ages *ag = ctx;
	struct ages_domain *d;

	if (ag->nomem)
		return -1;
	d = &ag->domains[ag->ndomains - 1];
	d->counts[ages_bucket(ag->in->buckets,
	    inspect_age(ag->in, l->mtime))]++;
	d->total++;
	return 0;
}

/* ages_collect - remember a letter whose sender is to be read */
static int
ages_collect(void *ctx, const struct scan_letter *l)
{
	struct ages *ag = ctx;
	struct ages_letter *grown, *n;
	size_t cap;

	if (ag->nomem)
		return -1;
	if (ag->nletters == ag->letters_cap) {
		cap = ag->letters_cap ? ag->letters_cap * 2 : 64;
		if ((grown = realloc(ag->letters, cap * sizeof(*grown)))
		    == NULL)
			goto nomem;
		ag->letters = grown;
		ag->letters_cap = cap;
	}
	n = &ag->letters[ag->nletters];
	if ((n->path = strdup(l->path)) == NULL)
		goto nomem;
	/* scan.c took the ID from the name: it fits. */
	(void)snprintf(n->id, sizeof(n->id), "%s", l->id);
	n->mtime = l->mtime;
	ag->nletters++;
	return 0;

nomem:
	ag->nomem = 1;
	return -1;
}

static void
ages_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err)
{
	struct ages *ag = ctx;

	(void)detail;
	if (kind == SCAN_UNREADABLE)
		inspect_io_error(ag->in, path, err);
}

/* ages_compare - most letters first, then by name */
static int
ages_compare(const void *a, const void *b)
{
	const struct ages_domain *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
ages_compare_names(const void *a, const void *b)
{
	const struct ages_domain *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* ages_compare_letters - by ID, so that a message's copies meet */
static int
ages_compare_letters(const void *a, const void *b)
{
	const struct ages_letter *x = a, *y = b;

	return strcmp(x->id, y->id);
}

/*
 * ages_sender_domain - the lower-cased domain of a letter's sender into
 * dst. Returns 1, 0 when the file is gone or unreadable (reported), or
 * -1 when out of memory.
 */
static int
ages_sender_domain(struct ages *ag, const struct ages_letter *l, char *dst,
    size_t len)
{
	struct queuefile *qf = NULL;
	struct queuefile_error err;
	const char *sender, *at;
	char *p;
	int fd, r, saved;

	fd = openat(ag->in->rootfd, l->path,
	    O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			inspect_io_error(ag->in, l->path, errno);
		return 0;
	}
	r = queuefile_read(fd, &qf, &err);
	saved = errno;
	(void)close(fd);
	if (r < 0) {
		if (saved == ENOMEM)
			return -1;
		inspect_io_error(ag->in, l->path, saved);
		return 0;
	}
	if (r > 0) {
		(void)snprintf(dst, len, "%s", AGES_MALFORMED);
		return 1;
	}
	sender = queuefile_sender(qf);
	if (*sender == '\0') {
		(void)snprintf(dst, len, "%s", AGES_NULL_SENDER);
	} else {
		/* The envelope was checked: the last '@' starts the domain. */
		at = strrchr(sender, '@');
		(void)snprintf(dst, len, "%s", at ? at + 1 : sender);
		for (p = dst; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	queuefile_free(qf);
	return 1;
}

/*
 * ages_by_sender - count the collected letters by sender domain: one
 * count per message, each domain once in ag->domains.
 */
static int
ages_by_sender(struct ages *ag)
{
	struct ages_domain *d, *merged;
	char domain[512];
	size_t i, j, n;
	int b, r;

	if (ag->nletters > 0)
		qsort(ag->letters, ag->nletters, sizeof(ag->letters[0]),
		    ages_compare_letters);
	for (i = 0; i < ag->nletters; i++) {
		if (i > 0 && strcmp(ag->letters[i].id, ag->letters[i - 1].id)
		    == 0)
			continue;
		if ((r = ages_sender_domain(ag, &ag->letters[i], domain,
		    sizeof(domain))) < 0)
			return -1;
		if (r == 0)
			continue;
		/* One entry a letter for now; merged by name below. */
		if ((d = ages_add_domain(ag, domain)) == NULL)
			return -1;
		d->counts[ages_bucket(ag->in->buckets,
		    inspect_age(ag->in, ag->letters[i].mtime))]++;
		d->total++;
	}
	if (ag->ndomains == 0)
		return 0;
	qsort(ag->domains, ag->ndomains, sizeof(ag->domains[0]),
	    ages_compare_names);
	for (i = 0, n = 0; i < ag->ndomains; i = j) {
		merged = &ag->domains[n++];
		if (merged != &ag->domains[i])
			*merged = ag->domains[i];
		for (j = i + 1; j < ag->ndomains
		    && strcmp(ag->domains[j].name, merged->name) == 0; j++) {
			merged->total += ag->domains[j].total;
			for (b = 0; b < ag->in->buckets; b++)
				merged->counts[b] += ag->domains[j].counts[b];
			free(ag->domains[j].name);
		}
	}
	ag->ndomains = n;
	return 0;
}

/*
 * ages_label - a bucket's name: qshape's in text (its upper bound in
 * minutes, "1280+" for the last), "A-Bm" / "Am+" in JSON.
 */
static void
ages_label(int nbuckets, int b, int json, char *dst, size_t len)
{
	long long from = ages_from(b) / 60, to = ages_from(b + 1) / 60;

	/* Labels are short: a truncated one cannot happen with len 48. */
	if (b + 1 < nbuckets && json)
		(void)snprintf(dst, len, "%lld-%lldm", from, to);
	else if (b + 1 < nbuckets)
		(void)snprintf(dst, len, "%lld", to);
	else if (json)
		(void)snprintf(dst, len, "%lldm+", from);
	else
		(void)snprintf(dst, len, "%lld+", from);
}

static void
ages_text_row(const char *name, int width, int nbuckets,
    const struct ages_domain *d)
{
	int b;

	/* Domains are checked names; senders' domains checked ASCII. */
	printf("%-*s %6llu", width, name, d->total);
	for (b = 0; b < nbuckets; b++)
		printf(" %5llu", d->counts[b]);
	putchar('\n');
}

static void
ages_json_counts(int nbuckets, const struct ages_domain *d)
{
	int b;

	printf("\"total\":%llu,\"counts\":[", d->total);
	for (b = 0; b < nbuckets; b++)
		printf("%s%llu", b ? "," : "", d->counts[b]);
	putchar(']');
}

static void
ages_text(const struct ages *ag, const struct ages_domain *total, int width)
{
	char label[48];
	size_t i;
	int b;

	printf("%-*s %6s", width, ag->in->by_sender ? "SENDER" : "DOMAIN",
	    "T");
	for (b = 0; b < ag->in->buckets; b++) {
		ages_label(ag->in->buckets, b, 0, label, sizeof(label));
		printf(" %5s", label);
	}
	putchar('\n');
	ages_text_row("TOTAL", width, ag->in->buckets, total);
	for (i = 0; i < ag->ndomains && ag->domains[i].total > 0; i++)
		ages_text_row(ag->domains[i].name, width, ag->in->buckets,
		    &ag->domains[i]);
}

static void
ages_json(const struct inspect *in, const struct ages *ag,
    const struct ages_domain *total)
{
	char label[48];
	size_t i;
	int b;

	printf("{\"version\":1,\"command\":\"ages\",\"root\":");
	json_cstring(stdout, in->root);
	printf(",\"now\":%lld,\"state\":\"%s\",\"by\":\"%s\",\"buckets\":[",
	    (long long)in->now, in->error ? "error" : "queued",
	    in->by_sender ? "sender" : "recipient");
	for (b = 0; b < in->buckets; b++) {
		ages_label(in->buckets, b, 1, label, sizeof(label));
		printf("%s{\"label\":\"%s\",\"from\":%lld,\"to\":", b ? "," : "",
		    label, ages_from(b));
		if (b + 1 < in->buckets)
			printf("%lld}", ages_from(b + 1));
		else
			printf("null}");
	}
	printf("],\"domains\":[");
	for (i = 0; i < ag->ndomains && ag->domains[i].total > 0; i++) {
		printf("%s{\"domain\":", i ? "," : "");
		json_cstring(stdout, ag->domains[i].name);
		putchar(',');
		ages_json_counts(in->buckets, &ag->domains[i]);
		putchar('}');
	}
	printf("],\"totals\":{");
	ages_json_counts(in->buckets, total);
	printf("}}\n");
}

int
ages_run(struct inspect *in)
{
	static const struct scan_ops by_recipient = {
		.domain = ages_domain,
		.letter = ages_letter,
		.problem = ages_problem,
	};
	static const struct scan_ops by_sender = {
		.letter = ages_collect,
		.problem = ages_problem,
	};
	struct ages ag;
	struct ages_domain total;
	size_t i;
	int b, width = 6, status = 0;

	memset(&ag, 0, sizeof(ag));
	ag.in = in;
	if (scan_queue(in, in->error ? SCAN_ERROR : SCAN_QUEUED,
	    in->by_sender ? &by_sender : &by_recipient, &ag) < 0 || ag.nomem
	    || (in->by_sender && ages_by_sender(&ag) < 0)) {
		inspect_warnx("out of memory");
		status = EX_OSERR;
		goto fail;
	}
	if (ag.ndomains > 0)
		qsort(ag.domains, ag.ndomains, sizeof(ag.domains[0]),
		    ages_compare);
	memset(&total, 0, sizeof(total));
	for (i = 0; i < ag.ndomains; i++) {
		total.total += ag.domains[i].total;
		for (b = 0; b < in->buckets; b++)
			total.counts[b] += ag.domains[i].counts[b];
		if (ag.domains[i].total > 0
		    && strlen(ag.domains[i].name) > (size_t)width)
			width = (int)strlen(ag.domains[i].name);
	}

	if (in->json)
		ages_json(in, &ag, &total);
	else
		ages_text(&ag, &total, width);
fail:
	for (i = 0; i < ag.ndomains; i++)
		free(ag.domains[i].name);
	free(ag.domains);
	for (i = 0; i < ag.nletters; i++)
		free(ag.letters[i].path);
	free(ag.letters);
	return status;
}
