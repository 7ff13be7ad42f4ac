/*
 * NAME
 *	child - what a freshly forked child of the daemon does first
 * SYNOPSIS
 *	#include "child.h"
 * DESCRIPTION
 *	The logger and the delivery agent are forked from a daemon that may
 *	hold thousands of descriptors (listeners, clients, the other
 *	child's pipes). A child must hold none of them: a listener kept
 *	open in a child outlives the daemon, a client's socket kept open
 *	never sees its close.
 *
 *	child_close_others() closes every descriptor above 2 except the
 *	nkeep in keep (in any order; duplicates and negative entries are
 *	allowed and ignored). It takes one close_range(2) call per gap
 *	between kept descriptors where the kernel has it, and closes one
 *	by one up to RLIMIT_NOFILE where it does not (Linux before 5.9).
 * DIAGNOSTICS
 *	None: a descriptor that cannot be closed is not open.
 * LIMITS
 *	At most CHILD_KEEP_MAX descriptors are kept; more is a programming
 *	error (the rest are closed).
 */
#ifndef POLLSMTPD_CHILD_H
#define POLLSMTPD_CHILD_H

#include <stddef.h>

#define CHILD_KEEP_MAX	8

void child_close_others(const int *keep, size_t nkeep);

#endif
