/*
 * NAME
 *	dns - MX and address lookups with c-ares, inside the event loop
 * SYNOPSIS
 *	See dns.h.
 * DESCRIPTION
 *	A lookup is a small tree of c-ares queries: MX first, then AAAA and
 *	A for each host (all at once), and it is complete when no query of
 *	it is outstanding. A complete lookup waits on a list until the
 *	loop's next idle pass hands it to its caller, so that done() never
 *	runs inside dns_lookup_*() or inside c-ares (whose callbacks must
 *	not destroy the channel), and a cancelled one is only freed there.
 *
 *	Which sockets c-ares has open, and for what, it says through
 *	ARES_OPT_SOCK_STATE_CB; that is mirrored into the loop, so the
 *	poll set always holds exactly c-ares's sockets.
 * DIAGNOSTICS
 *	See dns.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>

#include "dns.h"
#include "event.h"
#include "log.h"

struct dns_host {
	char name[DNS_NAME_MAX];
	int pref;
	unsigned rank;			/* random: orders equal preferences */
	struct sockaddr_storage v6[DNS_ADDR_MAX], v4[DNS_ADDR_MAX];
	size_t n6, n4;
};

struct dns_query {
	struct dns_lookup *l;
	struct dns_host *host;		/* NULL for the MX query */
	int type;			/* ns_t_mx, ns_t_a, ns_t_aaaa */
};

struct dns_lookup {
	struct dns *d;
	dns_done_fn done;		/* NULL once cancelled */
	void *ctx;
	char name[DNS_NAME_MAX];
	int outstanding;		/* queries not answered yet */
	int complete;			/* on the done list */
	int final;			/* the MX answer says it all */
	int tempfail;			/* some query failed for now */
	char tempfail_why[DNS_ERROR_MAX];
	struct dns_result result;
	struct dns_host hosts[DNS_HOST_MAX];
	size_t nhosts;
	struct dns_lookup *next;	/* the done list, or all lookups */
	struct dns_lookup *all_next, *all_prev;
};

struct dns {
	struct event_loop *loop;
	ares_channel channel;
	int channel_ok;
	struct dns_lookup *done_list;
	struct dns_lookup *all;
	int idle_added;
	unsigned seed;
};

static void dns_sock_state(void *data, ares_socket_t fd, int readable,
    int writable);
static void dns_ready(struct event_loop *loop, int fd, int events, void *ctx);
static void dns_idle(struct event_loop *loop, void *ctx);
static struct dns_lookup *dns_lookup_new(struct dns *d, const char *name,
    dns_done_fn done, void *ctx);
static void dns_query(struct dns_lookup *l, struct dns_host *h, int type);
static void dns_answer(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen);
static void dns_mx_answer(struct dns_lookup *l, int status,
    unsigned char *abuf, int alen);
static void dns_addr_answer(struct dns_lookup *l, struct dns_host *h,
    int type, int status, unsigned char *abuf, int alen);
static void dns_finish(struct dns_lookup *l);
static void dns_assemble(struct dns_lookup *l);
static int dns_host_compare(const void *a, const void *b);
static void dns_unlink(struct dns_lookup *l);
static int dns_is_tempfail(int status);

struct dns *
dns_new(struct event_loop *loop, char *const *servers, size_t nservers,
    int timeout_ms, int tries)
{
	struct ares_options opts;
	struct dns *d;
	char *csv = NULL;
	size_t i, len = 0;
	int rc;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		log_warnx("-", "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_warn("-", "dns: out of memory");
		ares_library_cleanup();
		return NULL;
	}
	d->loop = loop;
	d->seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opts.timeout = timeout_ms;
	opts.tries = tries;
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = d;
	rc = ares_init_options(&d->channel, &opts, ARES_OPT_FLAGS
	    | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		log_warnx("-", "c-ares: %s", ares_strerror(rc));
		goto fail;
	}
	d->channel_ok = 1;
	if (nservers > 0) {
		for (i = 0; i < nservers; i++)
			len += strlen(servers[i]) + 1;
		if ((csv = malloc(len)) == NULL) {
			log_warn("-", "dns: out of memory");
			goto fail;
		}
		csv[0] = '\0';
		for (i = 0, len = 0; i < nservers; i++) {
			size_t n = strlen(servers[i]);

			if (i > 0)
				csv[len++] = ',';
			memcpy(csv + len, servers[i], n);
			len += n;
		}
		csv[len] = '\0';
		if ((rc = ares_set_servers_ports_csv(d->channel, csv))
		    != ARES_SUCCESS) {
			log_warnx("-", "c-ares: resolvers %s: %s", csv,
			    ares_strerror(rc));
			goto fail;
		}
		free(csv);
		csv = NULL;
	}
	return d;

fail:
	free(csv);
	dns_free(d);
	return NULL;
}

void
dns_free(struct dns *d)
{
	struct dns_lookup *l;

	if (d == NULL)
		return;
	for (l = d->all; l != NULL; l = l->all_next)
		l->done = NULL;
	if (d->channel_ok)
		ares_destroy(d->channel);	/* every query: EDESTRUCTION */
	while ((l = d->all) != NULL) {
		dns_unlink(l);
		free(l);
	}
	if (d->idle_added)
		event_del_idle(d->loop, dns_idle, d);
	free(d);
	ares_library_cleanup();
}

/* dns_sock_state - c-ares opened, changed or closed one of its sockets */
static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	int events = (readable ? EVENT_READ : 0) | (writable ? EVENT_WRITE : 0);

	if (!readable && !writable) {
		event_del(d->loop, fd);
		return;
	}
	if (event_add(d->loop, fd, events, dns_ready, d) < 0) {
		if (errno == EEXIST)
			event_set(d->loop, fd, events);
		else
			log_warn("-", "dns: cannot watch socket %d", fd);
	}
}

static void
dns_ready(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct dns *d = ctx;

	(void)loop;
	if (events & EVENT_TIMEOUT)
		return;
	ares_process_fd(d->channel,
	    (events & (EVENT_READ | EVENT_ERROR)) ? fd : ARES_SOCKET_BAD,
	    (events & EVENT_WRITE) ? fd : ARES_SOCKET_BAD);
}

int
dns_timeout(struct dns *d)
{
	struct timeval tv, *tvp;

	if ((tvp = ares_timeout(d->channel, NULL, &tv)) == NULL)
		return -1;
	return (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
}

void
dns_process_timeouts(struct dns *d)
{
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* dns_idle - before poll(): hand complete lookups to their callers */
static void
dns_idle(struct event_loop *loop, void *ctx)
{
	struct dns *d = ctx;
	struct dns_lookup *l;

	(void)loop;
	while ((l = d->done_list) != NULL) {
		d->done_list = l->next;
		dns_unlink(l);
		if (l->done != NULL)
			l->done(l->ctx, &l->result);
		free(l);
	}
}

static void
dns_unlink(struct dns_lookup *l)
{
	struct dns *d = l->d;

	if (l->all_prev != NULL)
		l->all_prev->all_next = l->all_next;
	else if (d->all == l)
		d->all = l->all_next;
	if (l->all_next != NULL)
		l->all_next->all_prev = l->all_prev;
	l->all_next = l->all_prev = NULL;
}

static struct dns_lookup *
dns_lookup_new(struct dns *d, const char *name, dns_done_fn done, void *ctx)
{
	struct dns_lookup *l;
	size_t len = strlen(name);

	if (len == 0 || len > 253) {
		errno = EINVAL;
		return NULL;
	}
	if (!d->idle_added) {
		if (event_add_idle(d->loop, dns_idle, d) < 0)
			return NULL;
		d->idle_added = 1;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->d = d;
	l->done = done;
	l->ctx = ctx;
	memcpy(l->name, name, len + 1);
	l->all_next = d->all;
	if (d->all != NULL)
		d->all->all_prev = l;
	d->all = l;
	return l;
}

struct dns_lookup *
dns_lookup_mx(struct dns *d, const char *domain, dns_done_fn done, void *ctx)
{
	struct dns_lookup *l;

	if ((l = dns_lookup_new(d, domain, done, ctx)) == NULL)
		return NULL;
	dns_query(l, NULL, ns_t_mx);
	return l;
}

struct dns_lookup *
dns_lookup_host(struct dns *d, const char *host, dns_done_fn done, void *ctx)
{
	struct dns_lookup *l;
	struct dns_host *h;

	if ((l = dns_lookup_new(d, host, done, ctx)) == NULL)
		return NULL;
	h = &l->hosts[l->nhosts++];
	memcpy(h->name, l->name, sizeof(h->name));
	h->pref = -1;
	dns_query(l, h, ns_t_aaaa);
	dns_query(l, h, ns_t_a);
	return l;
}

void
dns_cancel(struct dns_lookup *l)
{
	if (l != NULL)
		l->done = NULL;
}

static void
dns_query(struct dns_lookup *l, struct dns_host *h, int type)
{
	struct dns_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		l->tempfail = 1;
		(void)snprintf(l->tempfail_why, sizeof(l->tempfail_why),
		    "out of memory");
		if (l->outstanding == 0)
			dns_finish(l);
		return;
	}
	q->l = l;
	q->host = h;
	q->type = type;
	l->outstanding++;
	ares_query(l->d->channel, h != NULL ? h->name : l->name, ns_c_in,
	    type, dns_answer, q);
}

static int
dns_is_tempfail(int status)
{
	return status != ARES_SUCCESS && status != ARES_ENODATA
	    && status != ARES_ENOTFOUND;
}

/* dns_answer - c-ares's callback for every query */
static void
dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_lookup *l = q->l;

	(void)timeouts;
	l->outstanding--;
	if (status == ARES_EDESTRUCTION) {
		free(q);
		return;			/* dns_free() frees the lookups */
	}
	if (q->type == ns_t_mx)
		dns_mx_answer(l, status, abuf, alen);
	else
		dns_addr_answer(l, q->host, q->type, status, abuf, alen);
	free(q);
	if (l->outstanding == 0 && !l->complete)
		dns_finish(l);
}

static void
dns_mx_answer(struct dns_lookup *l, int status, unsigned char *abuf,
    int alen)
{
	struct ares_mx_reply *mx = NULL, *m;
	struct dns_host *h;
	int rc;

	if (status == ARES_ENOTFOUND) {
		l->result.status = DNS_NXDOMAIN;
		(void)snprintf(l->result.error, sizeof(l->result.error),
		    "the domain %s does not exist (NXDOMAIN)", l->name);
		l->final = 1;		/* nothing more to ask */
		return;
	}
	if (status == ARES_ENODATA) {
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		h = &l->hosts[l->nhosts++];
		memcpy(h->name, l->name, sizeof(h->name));
		h->pref = -1;
		dns_query(l, h, ns_t_aaaa);
		dns_query(l, h, ns_t_a);
		return;
	}
	if (status != ARES_SUCCESS) {
		l->result.status = DNS_TEMPFAIL;
		(void)snprintf(l->result.error, sizeof(l->result.error),
		    "MX lookup of %s: %s", l->name, ares_strerror(status));
		l->final = 1;
		return;
	}
	if ((rc = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS) {
		if (rc == ARES_ENODATA) {
			dns_mx_answer(l, ARES_ENODATA, NULL, 0);
			return;
		}
		l->result.status = DNS_TEMPFAIL;
		(void)snprintf(l->result.error, sizeof(l->result.error),
		    "MX lookup of %s: %s", l->name, ares_strerror(rc));
		l->final = 1;
		return;
	}
	for (m = mx; m != NULL; m = m->next) {
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
			/* RFC 7505: a null MX; the domain takes no mail. */
			l->result.status = DNS_NULLMX;
			(void)snprintf(l->result.error, sizeof(l->result.error),
			    "the domain %s accepts no mail (null MX)",
			    l->name);
			l->final = 1;
			ares_free_data(mx);
			return;
		}
	}
	for (m = mx; m != NULL && l->nhosts < DNS_HOST_MAX; m = m->next) {
		size_t len = strlen(m->host);

		if (len >= DNS_NAME_MAX)
			continue;
		h = &l->hosts[l->nhosts++];
		memcpy(h->name, m->host, len + 1);
		h->pref = m->priority;
		h->rank = (unsigned)rand_r(&l->d->seed);
	}
	ares_free_data(mx);
	qsort(l->hosts, l->nhosts, sizeof(l->hosts[0]), dns_host_compare);
	for (size_t i = 0; i < l->nhosts; i++) {
		dns_query(l, &l->hosts[i], ns_t_aaaa);
		dns_query(l, &l->hosts[i], ns_t_a);
	}
}

static int
dns_host_compare(const void *a, const void *b)
{
	const struct dns_host *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return 0;
}

static void
dns_addr_answer(struct dns_lookup *l, struct dns_host *h, int type,
    int status, unsigned char *abuf, int alen)
{
	struct ares_addrttl a4[DNS_ADDR_MAX];
	struct ares_addr6ttl a6[DNS_ADDR_MAX];
	int n = DNS_ADDR_MAX, i, rc;

	if (status != ARES_SUCCESS) {
		if (dns_is_tempfail(status)) {
			l->tempfail = 1;
			(void)snprintf(l->tempfail_why,
			    sizeof(l->tempfail_why), "%s lookup of %s: %s",
			    type == ns_t_a ? "A" : "AAAA", h->name,
			    ares_strerror(status));
		}
		return;
	}
	if (type == ns_t_a) {
		rc = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
		for (i = 0; rc == ARES_SUCCESS && i < n; i++) {
			struct sockaddr_in *sin = (struct sockaddr_in *)
			    (void *)&h->v4[h->n4++];

			memset(sin, 0, sizeof(*sin));
			sin->sin_family = AF_INET;
			sin->sin_addr = a4[i].ipaddr;
		}
	} else {
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
		for (i = 0; rc == ARES_SUCCESS && i < n; i++) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)
			    (void *)&h->v6[h->n6++];

			memset(sin6, 0, sizeof(*sin6));
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, &a6[i].ip6addr,
			    sizeof(sin6->sin6_addr));
		}
	}
	if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
		l->tempfail = 1;
		(void)snprintf(l->tempfail_why, sizeof(l->tempfail_why),
		    "%s lookup of %s: %s", type == ns_t_a ? "A" : "AAAA",
		    h->name, ares_strerror(rc));
	}
}

/* dns_assemble - the addresses, in MX order, each host AAAA then A */
static void
dns_assemble(struct dns_lookup *l)
{
	struct dns_result *r = &l->result;
	size_t i, k;

	if (l->final)
		return;			/* MX said it all */
	for (i = 0; i < l->nhosts && r->naddrs < DNS_ADDR_MAX; i++) {
		struct dns_host *h = &l->hosts[i];

		for (k = 0; k < h->n6 + h->n4 && r->naddrs < DNS_ADDR_MAX;
		    k++) {
			struct dns_addr *a = &r->addrs[r->naddrs++];

			memcpy(a->host, h->name, sizeof(a->host));
			a->pref = h->pref;
			a->ss = k < h->n6 ? h->v6[k] : h->v4[k - h->n6];
			a->sslen = a->ss.ss_family == AF_INET6
			    ? sizeof(struct sockaddr_in6)
			    : sizeof(struct sockaddr_in);
		}
	}
	if (r->naddrs > 0) {
		r->status = DNS_OK;
		return;
	}
	if (l->tempfail) {
		r->status = DNS_TEMPFAIL;
		(void)snprintf(r->error, sizeof(r->error), "%s",
		    l->tempfail_why);
		return;
	}
	r->status = DNS_NOHOSTS;
	if (l->nhosts == 1 && l->hosts[0].pref < 0)
		(void)snprintf(r->error, sizeof(r->error), "no address for "
		    "%s (no MX, no A, no AAAA record)", l->name);
	else
		(void)snprintf(r->error, sizeof(r->error), "no address for "
		    "any mail exchanger of %s", l->name);
}

/* dns_finish - every query answered: the result waits for dns_idle() */
static void
dns_finish(struct dns_lookup *l)
{
	dns_assemble(l);
	l->complete = 1;
	l->next = l->d->done_list;
	l->d->done_list = l;
	event_loop_again(l->d->loop);
}
