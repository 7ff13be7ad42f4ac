/*
 * NAME
 *	check - the "check" command: the integrity of the tree
 * SYNOPSIS
 *	See check.h.
 * DESCRIPTION
 *	The walk is the one every command uses, in its strict form; check
 *	adds what needs a file opened: the envelope of each letter, and
 *	that every recipient belongs to the domain the letter waits for
 *	(the delivery stage trusts the directory).
 * DIAGNOSTICS
 *	See check.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "check.h"
#include "json.h"
#include "queuefile.h"
#include "scan.h"

struct check_problem {
	enum scan_problem kind;
	char *path;
	char *detail;
};

struct check {
	struct inspect *in;
	struct check_problem *problems;
	size_t nproblems;
	size_t cap;
	unsigned long long letters;
	int nomem;
};

static void check_problem(void *ctx, enum scan_problem kind,
    const char *path, const char *detail, int err);
static int check_letter(void *ctx, const struct scan_letter *l);
static int check_recipients(struct check *ck, const struct scan_letter *l,
    const struct queuefile *qf);
static int check_compare(const void *a, const void *b);

static void
check_problem(void *ctx, enum scan_problem kind, const char *path,
    const char *detail, int err)
{
	struct check *ck = ctx;
	struct check_problem *grown, *p;
	size_t cap;

	if (ck->nomem)
		return;
	if (ck->nproblems == ck->cap) {
		cap = ck->cap ? ck->cap * 2 : 16;
		if ((grown = realloc(ck->problems, cap * sizeof(*grown)))
		    == NULL) {
			ck->nomem = 1;
			return;
		}
		ck->problems = grown;
		ck->cap = cap;
	}
	p = &ck->problems[ck->nproblems];
	p->kind = kind;
	p->path = strdup(path);
	p->detail = strdup(detail != NULL ? detail : strerror(err));
	if (p->path == NULL || p->detail == NULL) {
		free(p->path);
		free(p->detail);
		ck->nomem = 1;
		return;
	}
	ck->nproblems++;
}

/*
 * check_recipients - every recipient's domain is the directory's: a
 * UTF-8 domain (SMTPUTF8) by its A-label form, which names the directory
 */
static int
check_recipients(struct check *ck, const struct scan_letter *l,
    const struct queuefile *qf)
{
	const char *rcpt, *at;
	char detail[QUEUEFILE_LINE_MAX + 128], path[QUEUEFILE_LINE_MAX + 3];
	struct addr a;
	size_t i, used;
	int n;

	for (i = 0; i < queuefile_nrcpts(qf); i++) {
		rcpt = queuefile_rcpt(qf, i);
		if ((at = strrchr(rcpt, '@')) != NULL
		    && strcasecmp(at + 1, l->domain) == 0)
			continue;
		n = snprintf(path, sizeof(path), "<%s>", rcpt);
		if (n > 0 && (size_t)n < sizeof(path)
		    && addr_parse_path(path, (size_t)n, ADDR_ALLOW_UTF8, &a,
		    &used) == ADDR_OK && strcmp(a.ace, l->domain) == 0)
			continue;
		/* A detail cut short still names the problem. */
		(void)snprintf(detail, sizeof(detail),
		    "recipient <%s> is not in %s", rcpt, l->domain);
		check_problem(ck, SCAN_WRONG_DOMAIN, l->path, detail, 0);
		return 0;
	}
	return 0;
}

static int
check_letter(void *ctx, const struct scan_letter *l)
{
	struct check *ck = ctx;
	struct queuefile *qf;
	struct queuefile_error err;
	int fd, r;

	if (ck->nomem)
		return -1;
	fd = openat(l->dirfd, l->name,
	    O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			check_problem(ck, SCAN_UNREADABLE, l->path, NULL,
			    errno);
		return 0;
	}
	ck->letters++;
	r = queuefile_read(fd, &qf, &err);
	if (r < 0) {
		if (errno == ENOMEM) {
			(void)close(fd);
			return -1;
		}
		check_problem(ck, SCAN_UNREADABLE, l->path, NULL, errno);
	} else if (r > 0) {
		check_problem(ck, SCAN_MALFORMED_ENVELOPE, l->path, err.reason,
		    0);
	} else {
		(void)check_recipients(ck, l, qf);
		queuefile_free(qf);
	}
	(void)close(fd);
	return ck->nomem ? -1 : 0;
}

static int
check_compare(const void *a, const void *b)
{
	const struct check_problem *x = a, *y = b;
	int c;

	if ((c = strcmp(x->path, y->path)) != 0)
		return c;
	return (int)x->kind - (int)y->kind;
}

int
check_run(struct inspect *in)
{
	static const struct scan_ops ops = {
		.letter = check_letter,
		.problem = check_problem,
	};
	struct check ck;
	const struct check_problem *p;
	size_t i;
	int status;

	memset(&ck, 0, sizeof(ck));
	ck.in = in;
	if (scan_queue(in, SCAN_QUEUED | SCAN_ERROR | SCAN_STRICT, &ops, &ck)
	    < 0 || scan_users(in, SCAN_STRICT, &ops, &ck) < 0 || ck.nomem) {
		inspect_warnx("out of memory");
		status = EX_OSERR;
		goto fail;
	}
	if (ck.nproblems > 0)
		qsort(ck.problems, ck.nproblems, sizeof(ck.problems[0]),
		    check_compare);
	if (in->json) {
		printf("{\"version\":1,\"command\":\"check\",\"root\":");
		json_cstring(stdout, in->root);
		printf(",\"now\":%lld,\"stale_after\":%ld,\"letters\":%llu,"
		    "\"problems\":[", (long long)in->now, INSPECT_STALE_AFTER,
		    ck.letters);
		for (i = 0; i < ck.nproblems; i++) {
			p = &ck.problems[i];
			printf("%s{\"kind\":\"%s\",\"path\":", i ? "," : "",
			    scan_problem_name(p->kind));
			json_cstring(stdout, p->path);
			printf(",\"detail\":");
			json_cstring(stdout, p->detail);
			putchar('}');
		}
		printf("],\"ok\":%s}\n", ck.nproblems ? "false" : "true");
	} else {
		for (i = 0; i < ck.nproblems; i++) {
			p = &ck.problems[i];
			printf("%s: ", scan_problem_name(p->kind));
			inspect_print_safe(stdout, p->path, strlen(p->path),
			    INSPECT_ESC_8BIT);
			printf(": ");
			inspect_print_safe(stdout, p->detail, strlen(p->detail),
			    INSPECT_ESC_8BIT);
			putchar('\n');
		}
		if (ck.nproblems == 0)
			printf("no problems (%llu letters checked)\n",
			    ck.letters);
		else
			printf("%zu problem%s (%llu letters checked)\n",
			    ck.nproblems, ck.nproblems == 1 ? "" : "s",
			    ck.letters);
	}
	status = ck.nproblems > 0 ? 1 : 0;
fail:
	for (i = 0; i < ck.nproblems; i++) {
		free(ck.problems[i].path);
		free(ck.problems[i].detail);
	}
	free(ck.problems);
	return status;
}
