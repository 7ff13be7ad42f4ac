/*
 * NAME
 *	ages - the "ages" command: letters by domain and age bucket (qshape)
 * SYNOPSIS
 *	See ages.h.
 * DESCRIPTION
 *	The buckets double in width, as qshape's do, so that a glance tells
 *	a domain that is slow now from one that has been dead for hours.
 * DIAGNOSTICS
 *	See ages.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ages.h"
#include "json.h"
#include "scan.h"

#define AGES_BUCKETS	7

/* Lower bounds in seconds; the last bucket has no upper bound. */
static const long long ages_from[AGES_BUCKETS] = {
	0, 5 * 60, 10 * 60, 20 * 60, 40 * 60, 80 * 60, 160 * 60,
};
static const char *const ages_labels[AGES_BUCKETS] = {
	"0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160m+",
};

struct ages_domain {
	char *name;
	unsigned long long total;
	unsigned long long counts[AGES_BUCKETS];
};

struct ages {
	struct inspect *in;
	struct ages_domain *domains;
	size_t ndomains;
	size_t cap;
	int nomem;
};

static void ages_domain(void *ctx, const char *domain);
static int ages_letter(void *ctx, const struct scan_letter *l);
static void ages_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err);
static int ages_compare(const void *a, const void *b);
static void ages_text_row(const char *name, int width,
    const struct ages_domain *d);
static void ages_json_counts(const struct ages_domain *d);
static void ages_text(const struct ages *ag, const struct ages_domain *total,
    int width);
static void ages_json(const struct inspect *in, const struct ages *ag,
    const struct ages_domain *total);

static void
ages_domain(void *ctx, const char *domain)
{
	struct ages *ag = ctx;
	struct ages_domain *grown;
	size_t cap;

	if (ag->nomem)
		return;
	if (ag->ndomains == ag->cap) {
		cap = ag->cap ? ag->cap * 2 : 16;
		if ((grown = realloc(ag->domains, cap * sizeof(*grown)))
		    == NULL) {
			ag->nomem = 1;
			return;
		}
		ag->domains = grown;
		ag->cap = cap;
	}
	memset(&ag->domains[ag->ndomains], 0, sizeof(ag->domains[0]));
	if ((ag->domains[ag->ndomains].name = strdup(domain)) == NULL) {
		ag->nomem = 1;
		return;
	}
	ag->ndomains++;
}

static int
ages_letter(void *ctx, const struct scan_letter *l)
{
	struct ages *ag = ctx;
	struct ages_domain *d;
	long long age;
	int b;

	if (ag->nomem)
		return -1;
	d = &ag->domains[ag->ndomains - 1];
	age = inspect_age(ag->in, l->mtime);
	for (b = AGES_BUCKETS - 1; b > 0 && age < ages_from[b]; b--)
		continue;
	d->counts[b]++;
	d->total++;
	return 0;
}

static void
ages_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err)
{
	struct ages *ag = ctx;

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

static void
ages_text_row(const char *name, int width, const struct ages_domain *d)
{
	int b;

	printf("%-*s %7llu", width, name, d->total);
	for (b = 0; b < AGES_BUCKETS; b++)
		printf(" %7llu", d->counts[b]);
	putchar('\n');
}

static void
ages_json_counts(const struct ages_domain *d)
{
	int b;

	printf("\"total\":%llu,\"counts\":[", d->total);
	for (b = 0; b < AGES_BUCKETS; b++)
		printf("%s%llu", b ? "," : "", d->counts[b]);
	putchar(']');
}

static void
ages_text(const struct ages *ag, const struct ages_domain *total, int width)
{
	size_t i;
	int b;

	printf("%-*s %7s", width, "DOMAIN", "TOTAL");
	for (b = 0; b < AGES_BUCKETS; b++)
		printf(" %7s", ages_labels[b]);
	putchar('\n');
	ages_text_row("TOTAL", width, total);
	for (i = 0; i < ag->ndomains && ag->domains[i].total > 0; i++)
		ages_text_row(ag->domains[i].name, width, &ag->domains[i]);
}

static void
ages_json(const struct inspect *in, const struct ages *ag,
    const struct ages_domain *total)
{
	size_t i;
	int b;

	printf("{\"version\":1,\"command\":\"ages\",\"root\":");
	json_cstring(stdout, in->root);
	printf(",\"now\":%lld,\"state\":\"%s\",\"buckets\":[",
	    (long long)in->now, in->error ? "error" : "queued");
	for (b = 0; b < AGES_BUCKETS; b++) {
		printf("%s{\"label\":\"%s\",\"from\":%lld,\"to\":",
		    b ? "," : "", ages_labels[b], ages_from[b]);
		if (b + 1 < AGES_BUCKETS)
			printf("%lld}", ages_from[b + 1]);
		else
			printf("null}");
	}
	printf("],\"domains\":[");
	for (i = 0; i < ag->ndomains && ag->domains[i].total > 0; i++) {
		printf("%s{\"domain\":", i ? "," : "");
		json_cstring(stdout, ag->domains[i].name);
		putchar(',');
		ages_json_counts(&ag->domains[i]);
		putchar('}');
	}
	printf("],\"totals\":{");
	ages_json_counts(total);
	printf("}}\n");
}

int
ages_run(struct inspect *in)
{
	static const struct scan_ops ops = {
		.domain = ages_domain,
		.letter = ages_letter,
		.problem = ages_problem,
	};
	struct ages ag;
	struct ages_domain total;
	size_t i;
	int b, width = 6, status = 0;

	memset(&ag, 0, sizeof(ag));
	ag.in = in;
	if (scan_queue(in, in->error ? SCAN_ERROR : SCAN_QUEUED, &ops, &ag) < 0
	    || ag.nomem) {
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
		for (b = 0; b < AGES_BUCKETS; b++)
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
	return status;
}
