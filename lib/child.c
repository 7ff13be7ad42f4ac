/*
 * NAME
 *	child - what a freshly forked child of the daemon does first
 * SYNOPSIS
 *	See child.h.
 * DESCRIPTION
 *	Before close_range() the child closed every number up to the
 *	descriptor limit, one system call each: with the limit the daemon
 *	raises itself to for 10,000 clients, 40,000 failing close() calls
 *	at every start and every restart of a child.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <sys/resource.h>
#include <unistd.h>

#include "child.h"

static void child_close_span(unsigned int first, unsigned int last);

void
child_close_others(const int *keep, size_t nkeep)
{
	int sorted[CHILD_KEEP_MAX], fd;
	size_t n = 0, i, j;
	unsigned int from = 3;

	/* The kept ones above 2, ascending, each once. */
	for (i = 0; i < nkeep && n < CHILD_KEEP_MAX; i++) {
		if ((fd = keep[i]) < 3)
			continue;
		for (j = 0; j < n && sorted[j] != fd; j++)
			;
		if (j < n)
			continue;
		for (j = n++; j > 0 && sorted[j - 1] > fd; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = fd;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned int)sorted[i] > from)
			child_close_span(from, (unsigned int)sorted[i] - 1);
		from = (unsigned int)sorted[i] + 1;
	}
	child_close_span(from, UINT_MAX);
}

/* child_close_span - close first..last (last UINT_MAX: to the end) */
static void
child_close_span(unsigned int first, unsigned int last)
{
	struct rlimit rl;
	unsigned long fd, end = 1024;

#ifdef HAVE_CLOSE_RANGE
	if (close_range(first, last, 0) == 0)
		return;
#endif
	/* No close_range() here (ENOSYS): one by one to the limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		end = (unsigned long)rl.rlim_cur;
	if (last != UINT_MAX && (unsigned long)last + 1 < end)
		end = (unsigned long)last + 1;
	for (fd = first; fd < end; fd++)
		(void)close((int)fd);
}
