/*
 * NAME
 *	summary - the "summary" command: the queue and the mailboxes at a glance
 * SYNOPSIS
 *	See summary.h.
 * DESCRIPTION
 *	Like qshape's totals and postqueue -p's last line, for every domain
 *	at once: one pass of readdir(3) and fstatat(2) over the queue, so
 *	that 100,000 letters take about as long as listing them.
 * DIAGNOSTICS
 *	See summary.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "json.h"
#include "scan.h"
#include "summary.h"

struct summary_domain {
	char *name;
	unsigned long long queued;
	unsigned long long bytes;
	long long oldest;		/* -1 when nothing is queued */
	unsigned long long error;
	unsigned long long error_bytes;
};

struct summary_user {
	char *name;
	long nnew;
	long ncur;
};

struct summary {
	struct inspect *in;
	struct summary_domain *domains;
	size_t ndomains;
	size_t domains_cap;
	struct summary_user *users;
	size_t nusers;
	size_t users_cap;
	int nomem;
};

static void summary_domain(void *ctx, const char *domain);
static int summary_letter(void *ctx, const struct scan_letter *l);
static void summary_user(void *ctx, const struct scan_user *u);
static void summary_problem(void *ctx, enum scan_problem kind,
    const char *path, const char *detail, int err);
static void summary_total(const struct summary *sm, struct summary_domain *t,
    long *nnew, long *ncur);
static void summary_text(const struct summary *sm);
static void summary_json(const struct summary *sm);
static void summary_age(long long age, char *dst, size_t len);
static void summary_json_oldest(long long oldest);

static void
summary_domain(void *ctx, const char *domain)
{
	struct summary *sm = ctx;
	struct summary_domain *grown;
	size_t cap;

	if (sm->nomem)
		return;
	if (sm->ndomains == sm->domains_cap) {
		cap = sm->domains_cap ? sm->domains_cap * 2 : 16;
		grown = realloc(sm->domains, cap * sizeof(*grown));
		if (grown == NULL) {
			sm->nomem = 1;
			return;
		}
		sm->domains = grown;
		sm->domains_cap = cap;
	}
	memset(&sm->domains[sm->ndomains], 0, sizeof(sm->domains[0]));
	if ((sm->domains[sm->ndomains].name = strdup(domain)) == NULL) {
		sm->nomem = 1;
		return;
	}
	sm->domains[sm->ndomains].oldest = -1;
	sm->ndomains++;
}

static int
summary_letter(void *ctx, const struct scan_letter *l)
{
	struct summary *sm = ctx;
	struct summary_domain *d;
	long long age;

	if (sm->nomem)
		return -1;
	/* scan_queue() announces each domain before its letters. */
	d = &sm->domains[sm->ndomains - 1];
	if (l->in_error) {
		d->error++;
		d->error_bytes += (unsigned long long)l->size;
		return 0;
	}
	d->queued++;
	d->bytes += (unsigned long long)l->size;
	age = inspect_age(sm->in, l->mtime);
	if (age > d->oldest)
		d->oldest = age;
	return 0;
}

static void
summary_user(void *ctx, const struct scan_user *u)
{
	struct summary *sm = ctx;
	struct summary_user *grown;
	size_t cap;

	if (sm->nomem)
		return;
	if (sm->nusers == sm->users_cap) {
		cap = sm->users_cap ? sm->users_cap * 2 : 16;
		grown = realloc(sm->users, cap * sizeof(*grown));
		if (grown == NULL) {
			sm->nomem = 1;
			return;
		}
		sm->users = grown;
		sm->users_cap = cap;
	}
	if ((sm->users[sm->nusers].name = strdup(u->name)) == NULL) {
		sm->nomem = 1;
		return;
	}
	sm->users[sm->nusers].nnew = u->nnew;
	sm->users[sm->nusers].ncur = u->ncur;
	sm->nusers++;
}

static void
summary_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err)
{
	struct summary *sm = ctx;

	if (kind == SCAN_UNREADABLE)
		inspect_io_error(sm->in, path, err);
}

static void
summary_total(const struct summary *sm, struct summary_domain *t,
    long *nnew, long *ncur)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->oldest = -1;
	for (i = 0; i < sm->ndomains; i++) {
		t->queued += sm->domains[i].queued;
		t->bytes += sm->domains[i].bytes;
		t->error += sm->domains[i].error;
		t->error_bytes += sm->domains[i].error_bytes;
		if (sm->domains[i].oldest > t->oldest)
			t->oldest = sm->domains[i].oldest;
	}
	*nnew = *ncur = 0;
	for (i = 0; i < sm->nusers; i++) {
		if (sm->users[i].nnew > 0)
			*nnew += sm->users[i].nnew;
		if (sm->users[i].ncur > 0)
			*ncur += sm->users[i].ncur;
	}
}

static void
summary_age(long long age, char *dst, size_t len)
{
	if (age < 0)
		(void)snprintf(dst, len, "-");
	else
		inspect_format_age(age, dst, len);
}

/* A domain with no letter at all (an old, emptied one) is not shown. */
#define SUMMARY_SHOWN(d)	((d)->queued > 0 || (d)->error > 0)

static void
summary_text(const struct summary *sm)
{
	struct summary_domain total;
	const struct summary_domain *d;
	char age[32], count[32];
	long nnew, ncur;
	size_t i;
	int width = 6;

	summary_total(sm, &total, &nnew, &ncur);
	for (i = 0; i < sm->ndomains; i++)
		if (SUMMARY_SHOWN(&sm->domains[i])
		    && strlen(sm->domains[i].name) > (size_t)width)
			width = (int)strlen(sm->domains[i].name);
	printf("%-*s %8s %12s %8s %8s\n", width, "DOMAIN", "QUEUED", "BYTES",
	    "OLDEST", "ERROR");
	for (i = 0; i < sm->ndomains; i++) {
		d = &sm->domains[i];
		if (!SUMMARY_SHOWN(d))
			continue;
		summary_age(d->oldest, age, sizeof(age));
		printf("%-*s %8llu %12llu %8s %8llu\n", width, d->name,
		    d->queued, d->bytes, age, d->error);
	}
	summary_age(total.oldest, age, sizeof(age));
	printf("%-*s %8llu %12llu %8s %8llu\n", width, "TOTAL", total.queued,
	    total.bytes, age, total.error);
	if (sm->nusers == 0)
		return;

	width = 6;
	for (i = 0; i < sm->nusers; i++)
		if (strlen(sm->users[i].name) > (size_t)width)
			width = (int)strlen(sm->users[i].name);
	printf("\n%-*s %8s %8s\n", width, "USER", "NEW", "CUR");
	for (i = 0; i < sm->nusers; i++) {
		printf("%-*s", width, sm->users[i].name);
		(void)snprintf(count, sizeof(count), "%ld", sm->users[i].nnew);
		printf(" %8s", sm->users[i].nnew < 0 ? "-" : count);
		(void)snprintf(count, sizeof(count), "%ld", sm->users[i].ncur);
		printf(" %8s\n", sm->users[i].ncur < 0 ? "-" : count);
	}
	printf("%-*s %8ld %8ld\n", width, "TOTAL", nnew, ncur);
}

static void
summary_json_oldest(long long oldest)
{
	if (oldest < 0)
		fputs("null", stdout);
	else
		printf("%lld", oldest);
}

static void
summary_json(const struct summary *sm)
{
	struct summary_domain total;
	const struct summary_domain *d;
	long nnew, ncur;
	size_t i, shown = 0;

	summary_total(sm, &total, &nnew, &ncur);
	printf("{\"version\":1,\"command\":\"summary\",\"root\":");
	json_cstring(stdout, sm->in->root);
	printf(",\"now\":%lld,\"domains\":[", (long long)sm->in->now);
	for (i = 0; i < sm->ndomains; i++) {
		d = &sm->domains[i];
		if (!SUMMARY_SHOWN(d))
			continue;
		printf("%s{\"domain\":", shown++ ? "," : "");
		json_cstring(stdout, d->name);
		printf(",\"queued\":%llu,\"bytes\":%llu,\"oldest\":", d->queued,
		    d->bytes);
		summary_json_oldest(d->oldest);
		printf(",\"error\":%llu,\"error_bytes\":%llu}", d->error,
		    d->error_bytes);
	}
	printf("],\"users\":[");
	for (i = 0; i < sm->nusers; i++) {
		printf("%s{\"user\":", i ? "," : "");
		json_cstring(stdout, sm->users[i].name);
		if (sm->users[i].nnew < 0)
			printf(",\"new\":null");
		else
			printf(",\"new\":%ld", sm->users[i].nnew);
		if (sm->users[i].ncur < 0)
			printf(",\"cur\":null}");
		else
			printf(",\"cur\":%ld}", sm->users[i].ncur);
	}
	printf("],\"totals\":{\"domains\":%zu,\"queued\":%llu,\"bytes\":%llu,"
	    "\"oldest\":", shown, total.queued, total.bytes);
	summary_json_oldest(total.oldest);
	printf(",\"error\":%llu,\"error_bytes\":%llu,\"new\":%ld,"
	    "\"cur\":%ld}}\n",
	    total.error, total.error_bytes, nnew, ncur);
}

int
summary_run(struct inspect *in)
{
	static const struct scan_ops ops = {
		.domain = summary_domain,
		.letter = summary_letter,
		.user = summary_user,
		.problem = summary_problem,
	};
	struct summary sm;
	size_t i;
	int status = 0;

	memset(&sm, 0, sizeof(sm));
	sm.in = in;
	if (scan_queue(in, SCAN_QUEUED | SCAN_ERROR, &ops, &sm) < 0
	    || scan_users(in, 0, &ops, &sm) < 0 || sm.nomem) {
		inspect_warnx("out of memory");
		status = EX_OSERR;
		goto fail;
	}
	if (in->json)
		summary_json(&sm);
	else
		summary_text(&sm);
fail:
	for (i = 0; i < sm.ndomains; i++)
		free(sm.domains[i].name);
	free(sm.domains);
	for (i = 0; i < sm.nusers; i++)
		free(sm.users[i].name);
	free(sm.users);
	return status;
}
