/*
 * NAME
 *	dns - MX and address lookups with c-ares, inside the event loop
 * SYNOPSIS
 *	#include "dns.h"
 * DESCRIPTION
 *	dns_new() makes a resolver whose sockets join loop: c-ares tells
 *	which of its sockets wait for what (its socket state callback) and
 *	they are added to, changed in or removed from the loop; readiness
 *	goes back with ares_process_fd(). Nothing here blocks. servers
 *	("IP", "IP:PORT", "[V6]:PORT"; delivery.resolvers) replace
 *	/etc/resolv.conf when nservers > 0. timeout_ms and tries are
 *	c-ares's per-query timeout (doubled on each try) and tries.
 *	The search list and HOSTALIASES are never used: every name is
 *	asked as given. dns_free() cancels every lookup (their callbacks
 *	are not called) and releases the resolver (NULL allowed).
 *
 *	dns_lookup_mx() finds where mail for domain goes (RFC 5321 5.1):
 *	its MX records, lowest preference first, equal ones in random
 *	order, each host's AAAA then A addresses; no MX record (but the
 *	domain exists): the domain's own addresses ("implicit MX"). A null
 *	MX (RFC 7505, "0 .") is DNS_NULLMX, a domain that does not exist
 *	DNS_NXDOMAIN, no address for any host DNS_NOHOSTS, and any other
 *	failure (SERVFAIL, REFUSED, a timeout) DNS_TEMPFAIL - unless an
 *	address was found, then the hosts that answered are used.
 *	dns_lookup_host() is the same for one host alone (no MX lookup):
 *	delivery.relayhost.
 *	Either calls done(ctx, result) exactly once, later, from the loop
 *	(never from within the call), unless dns_cancel() comes first.
 *	Addresses have port 0.
 *	dns_cancel() forgets a lookup: done is not called.
 *
 *	dns_timeout() is how many milliseconds the loop may sleep before
 *	dns_process_timeouts() must run (-1: no query waits).
 * DIAGNOSTICS
 *	dns_new() returns NULL and logs why (c-ares could not start, a
 *	server that c-ares refuses). dns_lookup_*() return NULL (ENOMEM,
 *	EINVAL for a name over 253 bytes).
 * LIMITS
 *	DNS_HOST_MAX MX hosts are looked at, DNS_ADDR_MAX addresses kept.
 */
#ifndef POLLSMTPD_DNS_H
#define POLLSMTPD_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#define DNS_HOST_MAX	10
#define DNS_ADDR_MAX	10
#define DNS_NAME_MAX	256
#define DNS_ERROR_MAX	400

struct event_loop;
struct dns;
struct dns_lookup;

enum dns_status {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NULLMX,
	DNS_NOHOSTS,
	DNS_TEMPFAIL,
};

struct dns_addr {
	char host[DNS_NAME_MAX];	/* the MX host (or the domain) */
	int pref;			/* its preference; -1 when implicit */
	struct sockaddr_storage ss;
	socklen_t sslen;
};

struct dns_result {
	enum dns_status status;
	char error[DNS_ERROR_MAX];	/* what failed, for logs and bounces */
	size_t naddrs;
	struct dns_addr addrs[DNS_ADDR_MAX];
};

typedef void (*dns_done_fn)(void *ctx, const struct dns_result *r);

struct dns *dns_new(struct event_loop *loop, char *const *servers,
    size_t nservers, int timeout_ms, int tries);
void dns_free(struct dns *d);
struct dns_lookup *dns_lookup_mx(struct dns *d, const char *domain,
    dns_done_fn done, void *ctx);
struct dns_lookup *dns_lookup_host(struct dns *d, const char *host,
    dns_done_fn done, void *ctx);
void dns_cancel(struct dns_lookup *l);
int dns_timeout(struct dns *d);
void dns_process_timeouts(struct dns *d);

#endif
