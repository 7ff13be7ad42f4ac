/*
 * NAME
 *	agent - the delivery agent: the process that drains the remote queue
 * SYNOPSIS
 *	See agent.h.
 * DESCRIPTION
 *	The supervisor (in the daemon) forks the agent, restarts it with a
 *	backoff when it dies (a timer of the daemon's loop: the daemon
 *	never waits), forwards SIGUSR1 and stops it. The agent learns that
 *	the daemon is gone from a pipe whose only write end the daemon
 *	holds, as the logger does.
 *
 *	The agent (doc/delivery.md has the whole design):
 *	- knows every letter of root/.OTHER_SERVERS: a full scan at start
 *	  and every AGENT_RESCAN_S seconds, and inotify on the queue and
 *	  on each domain directory in between, so a letter is seen at
 *	  once; each letter is waiting (a heap ordered by its next
 *	  attempt, read from its state file), ready (its domain's list) or
 *	  active (claimed by a session);
 *	- runs sessions, at most delivery.max_connections, at most
 *	  delivery.max_per_domain for one domain: DNS (dns.c), connect to
 *	  up to AGENT_ADDRS addresses in order, then the client engine
 *	  (client.c) over an io, carrying as many ready letters of the
 *	  domain as come; when the engine wants TLS (STARTTLS answered
 *	  220) the io becomes a TLS client and its handshake runs in the
 *	  loop; one that fails is, with delivery.tls = "may", followed by
 *	  the same address in plaintext (doc/delivery.md, STARTTLS);
 *	- claims a letter by renaming it to <domain>/.claim/NAME:HOST
 *	  before it is sent, and after the result either removes it, or
 *	  writes its state and puts it (shrunk to the recipients still
 *	  due) back as <domain>/NAME, and moves what failed for good to
 *	  error/ after queueing the bounce. Every step is durable before
 *	  the next, so a kill -9 at any moment leaves the letter either
 *	  queued or claimed by this host, and claims of this host are taken
 *	  back when the agent starts;
 *	- sleeps in poll() until a descriptor, its loop timer (the earliest
 *	  of the next due letter, the next rescan and c-ares's timeout) or
 *	  a signal (signalfd: SIGUSR1, SIGTERM, SIGINT) wakes it.
 * DIAGNOSTICS
 *	Everything is logged; nothing stops the agent but its signals, the
 *	daemon's end, or a failure to set itself up (exit status 71).
 * LIMITS
 *	AGENT_ADDRS addresses tried per attempt; AGENT_HEADER_MAX bytes of
 *	a letter's header section are read (Received: counting, bounces).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "agent.h"
#include "bounce.h"
#include "buf.h"
#include "child.h"
#include "claim.h"
#include "client.h"
#include "conf.h"
#include "dns.h"
#include "event.h"
#include "io.h"
#include "log.h"
#include "maildir.h"
#include "queuefile.h"
#include "tls.h"

#define AGENT_ADDRS		5	/* addresses tried per attempt */
#define AGENT_RESCAN_S		60
#define AGENT_CONNECT_S		30	/* connect timeout */
#define AGENT_HEADER_MAX	(64 * 1024)
#define AGENT_FULL_MAX		(16 * 1024 * 1024)	/* RET=FULL up to this */
#define AGENT_DSN_MAX		512	/* "RET=... ENVID=..." for MAIL */
#define AGENT_BOUNCE_MAX	(256 * 1024)
#define AGENT_CHUNK		(64 * 1024)
#define AGENT_OUT_LOW		(64 * 1024)	/* refill the text below this */
#define AGENT_HASH		4096
#define AGENT_RESTART_MIN_MS	100
#define AGENT_RESTART_MAX_MS	30000
#define AGENT_STABLE_MS		10000
#define AGENT_STOP_MS		5000
#define AGENT_DNS_TIMEOUT_MS	2000
#define AGENT_DNS_TRIES		2
#define AGENT_RELAY_MAX		(DNS_NAME_MAX + 64)
#define AGENT_SYNC_MS		20	/* removals made durable within this */
#define AGENT_SYNC_MAX		256	/* ... or after this many letters */
#define AGENT_PATH_MAX		(MAILDIR_NAME_MAX * 2 + 64)
#define MAILDIR_QUEUE_TMP	".tmp"	/* root/.OTHER_SERVERS/.tmp */

/* ---- the supervisor, in the daemon ---------------------------------- */

struct agent {
	struct event_loop *loop;
	const struct conf *conf;
	struct agent_hooks hooks;
	pid_t pid;
	int lifeline;			/* write end: the agent's read end EOFs */
	struct event_timer *restart;	/* the restart backoff */
	struct timespec started;
	long backoff_ms;
	int stopping;
};

static void agent_fork(struct agent *a);
static void agent_restart_due(struct event_loop *loop, struct event_timer *t,
    void *ctx);
static long agent_ms_since(const struct timespec *then);

/* ---- the agent, in its own process ----------------------------------- */

enum agent_where {
	AGENT_WAITING,			/* in the heap until due */
	AGENT_READY,			/* in its domain's ready list */
	AGENT_ACTIVE,			/* claimed by a session */
};

struct agent_domain;

struct agent_letter {
	struct agent_domain *dom;
	char name[MAILDIR_NAME_MAX];
	int64_t due;			/* epoch milliseconds */
	enum agent_where where;
	size_t heap_idx;
	struct agent_letter *ready_next;
	struct agent_letter *hash_next;
	int seen;			/* by the scan in progress */
	int forced;			/* due now by SIGUSR1 */
};

struct agent_domain {
	char *name;
	int wd;				/* inotify watch, or -1 */
	struct agent_letter *ready_head, *ready_tail;
	size_t nready;
	long nsessions;
	int claims_unsynced;		/* .claim/ changed since its fsync */
	struct agent_domain *next;
};

struct agent_outcome {
	int kind;			/* AGENT_SENT, _DEFERRED, _FAILED */
	struct client_reply reply;
	char relay[AGENT_RELAY_MAX];	/* "host[ip]:port" or "none" */
	char remote_mta[DNS_NAME_MAX];	/* "" when none answered */
	int dsn_offered;		/* the server took NOTIFY itself */
};

#define AGENT_SENT	0
#define AGENT_DEFERRED	1
#define AGENT_FAILED	2

/* A claimed letter, loaded for sending. */
struct agent_work {
	struct agent_letter *letter;
	char id[64];
	int fd;				/* the claimed file */
	struct queuefile *qf;
	const char **rcpts;
	const char **rcpt_dsn;		/* each recipient's NOTIFY, ORCPT */
	char mail_dsn[AGENT_DSN_MAX];	/* RET, ENVID for MAIL */
	struct queuefile_state state;
	int has_state;			/* .state/NAME was there at the claim */
	struct buf *headers;		/* its header section */
	long long arrival;
	off_t size, offset;		/* file size, next byte of text */
	long long renewed;		/* the claim taken or last renewed */
	struct client_letter cl;
};

struct agent_ctx;

struct agent_session {
	struct agent_ctx *ag;
	struct agent_domain *dom;
	struct dns_lookup *lookup;
	struct dns_addr addrs[AGENT_ADDRS];
	size_t naddrs, addr_i;
	char relay[AGENT_RELAY_MAX];	/* of the connection now */
	int fd;				/* connecting, or io's */
	struct io *io;
	struct client *cl;
	int handshaking;		/* STARTTLS: the TLS handshake */
	size_t plain_addr;		/* addr_i + 1 retried without TLS, or 0 */
	struct agent_work *work;
	int letters;			/* letters tried on this connection */
	int loop_checked;
	int usable;			/* reached the idle state once */
	struct client_reply last_error;	/* why the last address failed */
	struct agent_session *next, *prev;
};

struct agent_ctx {
	const struct conf *conf;
	const struct agent_hooks *hooks;
	struct event_loop *loop;
	struct maildir *md;
	struct dns *dns;
	int queuefd;			/* root/.OTHER_SERVERS */
	int inotify_fd, queue_wd;
	struct event_timer *timer;	/* the earliest thing due */
	int sig_fd, parent_fd, log_fd;
	char host[MAILDIR_NAME_MAX];	/* this host in claim names */
	struct agent_domain *domains;
	struct agent_letter *hash[AGENT_HASH];
	struct agent_letter **heap;
	size_t nheap, heap_cap;
	struct agent_session *sessions;
	long nsessions;
	long long next_rescan;
	long long next_sweep;		/* of the claims of every domain */
	unsigned long tmp_counter;
	int64_t unsynced_since;		/* the first removal not synced (ms) */
	unsigned nunsynced;		/* removals not synced */
	uint64_t last_usec;
	unsigned id_counter;
	int status;			/* the exit status once stopped */
	struct tls_client *tls;		/* STARTTLS, or NULL: not possible */
	char relay_host[DNS_NAME_MAX];	/* delivery.relayhost, parsed */
	unsigned short relay_port;
	int relay_literal;
};

static long long agent_time(void);
static int64_t agent_now_ms(void);
static int agent_setup(struct agent_ctx *ag, int parent_fd);
static void agent_teardown(struct agent_ctx *ag);
static void agent_idle(struct event_loop *loop, void *ctx);
static void agent_signal(struct event_loop *loop, int fd, int events,
    void *ctx);
static void agent_parent_gone(struct event_loop *loop, int fd, int events,
    void *ctx);
static void agent_log_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static void agent_timer(struct event_loop *loop, struct event_timer *t,
    void *ctx);
static void agent_inotify(struct event_loop *loop, int fd, int events,
    void *ctx);
static void agent_stop_now(struct agent_ctx *ag, int status);

static struct agent_domain *agent_domain_get(struct agent_ctx *ag,
    const char *name);
static void agent_scan(struct agent_ctx *ag);
static void agent_scan_domain(struct agent_ctx *ag, struct agent_domain *dom);
static void agent_take_back_claims(struct agent_ctx *ag,
    struct agent_domain *dom, int dfd);
static void agent_sweep_claims(struct agent_ctx *ag);
static int agent_claim_held(void *ctx, const char *name);
static void agent_claim_taken(void *ctx, const char *name,
    const char *holder);
static long long agent_sweep_period(const struct agent_ctx *ag);
static void agent_renew_claims(struct agent_ctx *ag);
static void agent_clean_own_tmp(struct agent_ctx *ag);
static void agent_letter_found(struct agent_ctx *ag, struct agent_domain *dom,
    const char *name, int dfd);
static struct agent_letter *agent_letter_find(struct agent_ctx *ag,
    const struct agent_domain *dom, const char *name);
static void agent_letter_forget(struct agent_ctx *ag, struct agent_letter *l);
static void agent_letter_wait(struct agent_ctx *ag, struct agent_letter *l,
    int64_t due);
static void agent_letter_ready(struct agent_ctx *ag, struct agent_letter *l);
static struct agent_letter *agent_ready_pop(struct agent_domain *dom);
static unsigned agent_hash(const struct agent_domain *dom, const char *name);
static void agent_heap_push(struct agent_ctx *ag, struct agent_letter *l);
static void agent_heap_remove(struct agent_ctx *ag, struct agent_letter *l);
static void agent_heap_up(struct agent_ctx *ag, size_t i);
static void agent_heap_down(struct agent_ctx *ag, size_t i);
static void agent_due(struct agent_ctx *ag, int all);
static void agent_dispatch(struct agent_ctx *ag);
static int agent_is_letter_name(const char *name);

static void agent_session_start(struct agent_ctx *ag, struct agent_domain *dom);
static void agent_session_resolved(void *ctx, const struct dns_result *r);
static void agent_session_connect(struct agent_session *s);
static void agent_session_connected(struct event_loop *loop, int fd,
    int events, void *ctx);
static void agent_session_io(struct event_loop *loop, int fd, int events,
    void *ctx);
static void agent_session_step(struct agent_session *s);
static void agent_session_next_addr(struct agent_session *s);
static void agent_session_disconnect(struct agent_session *s);
static void agent_session_end(struct agent_session *s);
static void agent_session_free(struct agent_session *s, int release);
static void agent_session_fail_domain(struct agent_session *s,
    const struct client_reply *r, int kind);
static int agent_session_fill_body(struct agent_session *s);
static void agent_session_start_tls(struct agent_session *s);
static void agent_session_handshake(struct agent_session *s, int events);
static void agent_session_tls_failed(struct agent_session *s,
    const char *why);

static struct agent_work *agent_claim(struct agent_ctx *ag,
    struct agent_letter *l, struct client_reply *why);
static void agent_work_free(struct agent_work *w);
static void agent_release(struct agent_ctx *ag, struct agent_work *w);
static void agent_finish(struct agent_ctx *ag, struct agent_work *w,
    struct agent_outcome *out);
static void agent_finish_all(struct agent_ctx *ag, struct agent_work *w,
    const struct client_reply *r, int kind, const char *relay);
static int agent_write_tmp(struct agent_ctx *ag, const struct iovec *iov,
    int iovcnt, int src_fd, off_t src_off, char *tmpname, size_t tmplen);
static int agent_write_state(struct agent_ctx *ag, int dfd,
    const char *name, const struct queuefile_state *st);
static int agent_envelope_copy(struct agent_ctx *ag, struct agent_work *w,
    const struct agent_outcome *out, int kind, int dst_dfd, const char *dst,
    int noreplace, char *placed, size_t placedlen);
static int agent_bounce(struct agent_ctx *ag, struct agent_work *w,
    const struct agent_outcome *out, int kind);
static int agent_notify(const struct agent_work *w, size_t i,
    const struct agent_outcome *o, int kind);
static int agent_make_id(struct agent_ctx *ag, char *id, size_t idlen);
static int agent_open_domain(struct agent_ctx *ag, const char *domain);
static int agent_mkdirat(int dfd, const char *name);
static int agent_fsync_dir(struct agent_ctx *ag, int dfd, const char *path);
static void agent_sync_claims(struct agent_ctx *ag, int64_t now, int all);
static int agent_claim_name(struct agent_ctx *ag, const char *name,
    char *dst, size_t len);
static void agent_log_outcome(struct agent_ctx *ag, struct agent_work *w,
    size_t i, const struct agent_outcome *o);
static void agent_reply(struct client_reply *r, int code, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int agent_count_received(const struct buf *headers);
static void agent_format_relay(char *dst, size_t len,
    const struct dns_addr *a, unsigned short port);

/* ==== the supervisor =================================================== */

struct agent *
agent_start(struct event_loop *loop, const struct conf *conf,
    const struct agent_hooks *hooks)
{
	struct agent *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->loop = loop;
	a->conf = conf;
	a->hooks = *hooks;
	a->lifeline = -1;
	if ((a->restart = event_timer_add(loop, -1, agent_restart_due, a))
	    == NULL) {
		free(a);
		return NULL;
	}
	agent_fork(a);
	return a;
}

pid_t
agent_pid(const struct agent *a)
{
	return a != NULL ? a->pid : 0;
}

static long
agent_ms_since(const struct timespec *then)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - then->tv_sec) * 1000L
	    + (now.tv_nsec - then->tv_nsec) / 1000000L;
}

/* agent_fork - start the agent; on failure, try again after a delay */
static void
agent_fork(struct agent *a)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_warn("-", "delivery agent: pipe");
		goto later;
	}
	if (a->hooks.before_fork != NULL)
		a->hooks.before_fork(a->hooks.ctx);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		log_warn("-", "cannot fork the delivery agent");
		close(fds[0]);
		close(fds[1]);
		goto later;
	}
	if (pid == 0) {
		close(fds[1]);
		_exit(agent_run(a->conf, fds[0], &a->hooks));
	}
	close(fds[0]);
	a->lifeline = fds[1];
	a->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &a->started);
	log_info("-", "delivery agent started (pid %ld)", (long)pid);
	return;

later:
	event_timer_set(a->restart, 1000);
}

static void
agent_restart_due(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct agent *a = ctx;

	(void)loop;
	(void)t;
	if (a->pid == 0 && !a->stopping)
		agent_fork(a);
}

void
agent_reap(struct agent *a)
{
	int status = 0, known = 1;
	pid_t r;

	if (a == NULL || a->pid == 0)
		return;
	r = waitpid(a->pid, &status, WNOHANG);
	if (r == 0 || (r < 0 && errno != ECHILD))
		return;
	/* ECHILD: reaped by another waitpid(-1): gone, status unknown. */
	known = r == a->pid;
	close(a->lifeline);
	a->lifeline = -1;
	if (a->stopping) {
		a->pid = 0;
		return;
	}
	if (agent_ms_since(&a->started) >= AGENT_STABLE_MS)
		a->backoff_ms = AGENT_RESTART_MIN_MS;
	else
		a->backoff_ms = a->backoff_ms == 0 ? AGENT_RESTART_MIN_MS
		    : a->backoff_ms * 2 > AGENT_RESTART_MAX_MS
		    ? AGENT_RESTART_MAX_MS : a->backoff_ms * 2;
	if (!known)
		log_warnx("-", "delivery agent %ld is gone; starting a new "
		    "one in %ld ms", (long)a->pid, a->backoff_ms);
	else if (WIFSIGNALED(status))
		log_warnx("-", "delivery agent %ld killed by signal %d; "
		    "starting a new one in %ld ms", (long)a->pid,
		    WTERMSIG(status), a->backoff_ms);
	else
		log_warnx("-", "delivery agent %ld exited with status %d; "
		    "starting a new one in %ld ms", (long)a->pid,
		    WEXITSTATUS(status), a->backoff_ms);
	a->pid = 0;
	event_timer_set(a->restart, a->backoff_ms);
}

void
agent_kick(struct agent *a)
{
	if (a != NULL && a->pid > 0 && kill(a->pid, SIGUSR1) < 0)
		log_warn("-", "cannot signal the delivery agent");
}

void
agent_stop(struct agent *a)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int i, status;

	if (a == NULL)
		return;
	a->stopping = 1;
	if (a->pid > 0) {
		(void)kill(a->pid, SIGTERM);
		for (i = 0; i < AGENT_STOP_MS / 10; i++) {
			if (waitpid(a->pid, &status, WNOHANG) != 0)
				break;
			nanosleep(&pause, NULL);
		}
		if (i == AGENT_STOP_MS / 10) {
			log_warnx("-", "delivery agent %ld did not stop; "
			    "killing it", (long)a->pid);
			(void)kill(a->pid, SIGKILL);
			(void)waitpid(a->pid, &status, 0);
		}
	}
	if (a->lifeline >= 0)
		close(a->lifeline);
	event_timer_del(a->restart);
	free(a);
}

/* ==== the agent process ================================================ */

static long long
agent_time(void)
{
	return (long long)time(NULL);
}

static int64_t
agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
agent_reply(struct client_reply *r, int code, const char *status,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	memset(r, 0, sizeof(*r));
	r->code = code;
	(void)snprintf(r->status, sizeof(r->status), "%s", status);
	n = snprintf(r->text, sizeof(r->text), "%d %s ", code, status);
	if (n < 0 || (size_t)n >= sizeof(r->text))
		return;
	va_start(ap, fmt);
	(void)vsnprintf(r->text + n, sizeof(r->text) - (size_t)n, fmt, ap);
	va_end(ap);
}

int
agent_run(const struct conf *conf, int parent_fd,
    const struct agent_hooks *hooks)
{
	struct agent_ctx *ag;
	int status;

	if ((ag = calloc(1, sizeof(*ag))) == NULL)
		return EX_OSERR;
	ag->conf = conf;
	ag->hooks = hooks;
	ag->status = EX_OK;
	if (agent_setup(ag, parent_fd) < 0) {
		agent_teardown(ag);
		free(ag);
		return EX_OSERR;
	}
	log_info("-", "delivery agent serving %s (pid %ld)",
	    conf->delivery_relayhost[0] != '\0' ? conf->delivery_relayhost
	    : "the queue by MX", (long)getpid());
	agent_clean_own_tmp(ag);
	agent_scan(ag);
	agent_dispatch(ag);
	if (event_loop_run(ag->loop) < 0) {
		log_warn("-", "delivery agent: poll");
		ag->status = EX_OSERR;
	}
	status = ag->status;
	agent_teardown(ag);
	free(ag);
	return status;
}

static int
agent_setup(struct agent_ctx *ag, int parent_fd)
{
	const struct conf *conf = ag->conf;
	struct sigaction sa;
	sigset_t mask;
	int keep[3];
	size_t nkeep = 0, i;

	ag->queuefd = ag->inotify_fd = ag->sig_fd = -1;
	ag->parent_fd = parent_fd;
	ag->log_fd = ag->hooks->log_fd != NULL
	    ? ag->hooks->log_fd(ag->hooks->ctx) : -1;
	keep[nkeep++] = parent_fd;
	if (ag->log_fd >= 0)
		keep[nkeep++] = ag->log_fd;
	/* Nothing of the daemon's: listeners, clients, the logger's pipe. */
	child_close_others(keep, nkeep);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGPIPE, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -1;

	if (conf->delivery_relayhost[0] != '\0'
	    && conf_parse_relayhost(conf->delivery_relayhost, ag->relay_host,
	    sizeof(ag->relay_host), &ag->relay_literal, &ag->relay_port,
	    25) < 0) {
		log_warnx("-", "delivery.relayhost %s does not parse",
		    conf->delivery_relayhost);
		return -1;
	}
	/* This host in claim names: as Maildir names write it. */
	if (claim_host_name(conf->hostname, ag->host, sizeof(ag->host)) < 0) {
		log_warnx("-", "hostname %s is too long for claim names",
		    conf->hostname);
		return -1;
	}

	if ((ag->loop = event_loop_new()) == NULL)
		return -1;
	if ((ag->md = maildir_open(conf->maildir_path, conf->hostname,
	    conf->maildir_fsync)) == NULL) {
		log_warn("-", "delivery agent: cannot open %s",
		    conf->maildir_path);
		return -1;
	}
	for (i = 0; i < conf->nusers; i++)
		if (maildir_add_user(ag->md, conf->users[i]) < 0)
			log_warn("-", "delivery agent: Maildir of %s",
			    conf->users[i]);
	if ((ag->queuefd = open(conf->maildir_path, O_RDONLY | O_DIRECTORY
	    | O_CLOEXEC)) < 0)
		return -1;
	{
		int q = openat(ag->queuefd, MAILDIR_QUEUE_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		close(ag->queuefd);
		if ((ag->queuefd = q) < 0) {
			log_warn("-", "delivery agent: %s/%s",
			    conf->maildir_path, MAILDIR_QUEUE_DIR);
			return -1;
		}
	}
	if ((ag->dns = dns_new(ag->loop, conf->delivery_resolvers,
	    conf->ndelivery_resolvers, AGENT_DNS_TIMEOUT_MS,
	    AGENT_DNS_TRIES)) == NULL)
		return -1;
	if (conf->delivery_tls != CONF_TLS_NONE && !tls_available())
		log_warnx("-", "delivery agent: built without OpenSSL, no "
		    "STARTTLS: %s", conf->delivery_tls == CONF_TLS_ENCRYPT
		    ? "delivery.tls = \"encrypt\" defers every letter"
		    : "letters go in plaintext");
	if (conf->delivery_tls != CONF_TLS_NONE && tls_available()) {
		char err[TLS_ERROR_MAX];

		/* Without it "may" sends in plaintext, "encrypt" defers. */
		if ((ag->tls = tls_client_new(conf->tls_min_version, err,
		    sizeof(err))) == NULL)
			log_warnx("-", "delivery agent: no STARTTLS: %s", err);
	}
	if ((ag->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0
	    || event_add(ag->loop, ag->sig_fd, EVENT_READ, agent_signal,
	    ag) < 0)
		return -1;
	if (event_add(ag->loop, parent_fd, EVENT_READ, agent_parent_gone,
	    ag) < 0)
		return -1;
	if ((ag->timer = event_timer_add(ag->loop, -1, agent_timer, ag))
	    == NULL)
		return -1;
	if (ag->log_fd >= 0 && event_add(ag->loop, ag->log_fd, 0,
	    agent_log_ready, ag) < 0)
		return -1;
	ag->queue_wd = -1;
	if ((ag->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		log_warn("-", "delivery agent: inotify (new letters are "
		    "found by the rescan every %d s)", AGENT_RESCAN_S);
	else if (event_add(ag->loop, ag->inotify_fd, EVENT_READ,
	    agent_inotify, ag) < 0)
		return -1;
	else {
		char path[PATH_MAX];
		int n;

		/* New domain directories; each domain gets its own watch. */
		n = snprintf(path, sizeof(path), "%s/%s",
		    conf->maildir_path, MAILDIR_QUEUE_DIR);
		ag->queue_wd = n > 0 && (size_t)n < sizeof(path)
		    ? inotify_add_watch(ag->inotify_fd, path, IN_CREATE
		    | IN_MOVED_TO | IN_ONLYDIR) : -1;
		if (ag->queue_wd < 0)
			log_warn("-", "delivery agent: inotify on %s", path);
	}
	event_set_idle(ag->loop, agent_idle, ag);
	return 0;
}

static void
agent_teardown(struct agent_ctx *ag)
{
	struct agent_domain *dom;
	struct agent_letter *l, *next;
	size_t i;

	while (ag->sessions != NULL)
		agent_session_free(ag->sessions, 1);
	agent_sync_claims(ag, 0, 1);
	tls_client_free(ag->tls);
	for (i = 0; i < AGENT_HASH; i++)
		for (l = ag->hash[i]; l != NULL; l = next) {
			next = l->hash_next;
			free(l);
		}
	free(ag->heap);
	while ((dom = ag->domains) != NULL) {
		ag->domains = dom->next;
		free(dom->name);
		free(dom);
	}
	dns_free(ag->dns);
	if (ag->inotify_fd >= 0)
		close(ag->inotify_fd);
	event_timer_del(ag->timer);
	if (ag->sig_fd >= 0)
		close(ag->sig_fd);
	if (ag->queuefd >= 0)
		close(ag->queuefd);
	maildir_close(ag->md);
	event_loop_free(ag->loop);
	if (ag->hooks->log_flush != NULL)
		ag->hooks->log_flush(ag->hooks->ctx);
}

/* agent_stop_now - release every claim, then leave the loop */
static void
agent_stop_now(struct agent_ctx *ag, int status)
{
	ag->status = status;
	while (ag->sessions != NULL)
		agent_session_free(ag->sessions, 1);
	event_loop_stop(ag->loop);
}

static void
agent_signal(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct agent_ctx *ag = ctx;
	struct signalfd_siginfo si;

	(void)loop;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			log_info("-", "SIGUSR1: %zu deferred letter%s due now",
			    ag->nheap, ag->nheap == 1 ? "" : "s");
			agent_due(ag, 1);
			agent_dispatch(ag);
		} else {
			log_info("-", "delivery agent stopping");
			agent_stop_now(ag, EX_OK);
			return;
		}
	}
}

static void
agent_parent_gone(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct agent_ctx *ag = ctx;
	char c;

	(void)loop;
	(void)events;
	if (read(fd, &c, 1) == 0) {
		log_info("-", "the daemon is gone: delivery agent stopping");
		event_del(ag->loop, fd);
		agent_stop_now(ag, EX_OK);
	}
}

static void
agent_log_ready(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct agent_ctx *ag = ctx;

	(void)loop;
	(void)fd;
	(void)events;
	ag->hooks->log_flush(ag->hooks->ctx);
}

/*
 * agent_idle - before each poll(): records to the logger, and the timer
 * set to the earliest of the next due letter, the rescan and c-ares.
 */
static void
agent_idle(struct event_loop *loop, void *ctx)
{
	struct agent_ctx *ag = ctx;
	const struct agent_session *s;
	int64_t now, wait, w;
	long long every;

	now = agent_now_ms();
	agent_sync_claims(ag, now, ag->nsessions == 0);
	if (ag->log_fd >= 0) {
		ag->hooks->log_flush(ag->hooks->ctx);
		event_set(loop, ag->log_fd,
		    ag->hooks->log_wants_write(ag->hooks->ctx)
		    ? EVENT_WRITE : 0);
	}
	wait = ag->next_rescan * 1000 - now;
	if (ag->next_sweep * 1000 - now < wait)
		wait = ag->next_sweep * 1000 - now;
	every = ag->conf->delivery_claim_timeout / 3;
	if (every < 1)
		every = 1;
	for (s = ag->sessions; s != NULL; s = s->next)
		if (s->work != NULL && (s->work->renewed + every) * 1000 - now
		    < wait)
			wait = (s->work->renewed + every) * 1000 - now;
	if (ag->nheap > 0 && ag->heap[0]->due - now < wait)
		wait = ag->heap[0]->due - now;
	if (ag->nunsynced > 0 && ag->unsynced_since + AGENT_SYNC_MS - now < wait)
		wait = ag->unsynced_since + AGENT_SYNC_MS - now;
	if ((w = dns_timeout(ag->dns)) >= 0 && w < wait)
		wait = w;
	/*
	 * At least 1 ms: due times are wall-clock seconds or milliseconds,
	 * the loop's clock is monotonic, so a wake-up may come a little
	 * before what it was for; it then comes again 1 ms later instead of
	 * making the loop spin.
	 */
	if (wait < 1)
		wait = 1;
	event_timer_set(ag->timer, wait);
}

static void
agent_timer(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct agent_ctx *ag = ctx;

	(void)loop;
	(void)t;
	dns_process_timeouts(ag->dns);
	if (agent_time() >= ag->next_rescan)
		agent_scan(ag);
	else if (agent_time() >= ag->next_sweep)
		agent_sweep_claims(ag);
	agent_renew_claims(ag);
	agent_due(ag, 0);
	agent_dispatch(ag);
}

/* agent_inotify - a letter or a domain directory appeared */
static void
agent_inotify(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct agent_ctx *ag = ctx;
	char buf[16384] __attribute__((aligned(__alignof__(
	    struct inotify_event))));
	const struct inotify_event *ev;
	struct agent_domain *dom;
	ssize_t n;
	char *p;
	int rescan = 0;

	(void)loop;
	(void)events;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)(void *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				rescan = 1;
				continue;
			}
			if (ev->len == 0 || ev->name[0] == '.')
				continue;
			if (ev->wd == ag->queue_wd) {
				if ((ev->mask & IN_ISDIR)
				    && addr_domain_is_safe(ev->name)
				    && (dom = agent_domain_get(ag, ev->name))
				    != NULL)
					agent_scan_domain(ag, dom);
				continue;
			}
			for (dom = ag->domains; dom != NULL; dom = dom->next)
				if (dom->wd == ev->wd)
					break;
			if (dom == NULL || (ev->mask & IN_ISDIR)
			    || !agent_is_letter_name(ev->name))
				continue;
			if (agent_letter_find(ag, dom, ev->name) == NULL) {
				int dfd = agent_open_domain(ag, dom->name);

				if (dfd >= 0) {
					agent_letter_found(ag, dom, ev->name,
					    dfd);
					close(dfd);
				}
			}
		}
	}
	if (rescan)
		agent_scan(ag);
	agent_dispatch(ag);
}

/* ---- the table of letters -------------------------------------------- */

static int
agent_is_letter_name(const char *name)
{
	char id[64];

	return name[0] != '.' && strchr(name, ':') == NULL
	    && strlen(name) < MAILDIR_NAME_MAX
	    && maildir_name_id(name, id, sizeof(id)) == 0;
}

static unsigned
agent_hash(const struct agent_domain *dom, const char *name)
{
	unsigned h = (unsigned)(uintptr_t)dom * 2654435761u;

	while (*name != '\0')
		h = h * 31 + (unsigned char)*name++;
	return h % AGENT_HASH;
}

static struct agent_letter *
agent_letter_find(struct agent_ctx *ag, const struct agent_domain *dom,
    const char *name)
{
	struct agent_letter *l;

	for (l = ag->hash[agent_hash(dom, name)]; l != NULL; l = l->hash_next)
		if (l->dom == dom && strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

static struct agent_domain *
agent_domain_get(struct agent_ctx *ag, const char *name)
{
	struct agent_domain *dom;
	char path[PATH_MAX];
	int n;

	for (dom = ag->domains; dom != NULL; dom = dom->next)
		if (strcmp(dom->name, name) == 0)
			return dom;
	if ((dom = calloc(1, sizeof(*dom))) == NULL
	    || (dom->name = strdup(name)) == NULL) {
		free(dom);
		log_warn("-", "delivery agent: out of memory");
		return NULL;
	}
	dom->wd = -1;
	n = snprintf(path, sizeof(path), "%s/%s/%s", ag->conf->maildir_path,
	    MAILDIR_QUEUE_DIR, name);
	if (ag->inotify_fd >= 0 && n > 0 && (size_t)n < sizeof(path))
		dom->wd = inotify_add_watch(ag->inotify_fd, path,
		    IN_MOVED_TO | IN_CREATE | IN_ONLYDIR);
	dom->next = ag->domains;
	ag->domains = dom;
	return dom;
}

/* agent_scan - every domain and letter of the queue; stale claims back */
static void
agent_scan(struct agent_ctx *ag)
{
	struct agent_domain *dom;
	struct dirent *de;
	DIR *d;
	int fd;

	ag->next_rescan = agent_time() + AGENT_RESCAN_S;
	ag->next_sweep = agent_time() + agent_sweep_period(ag);
	if ((fd = openat(ag->queuefd, ".", O_RDONLY | O_DIRECTORY
	    | O_CLOEXEC)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		log_warn("-", "delivery agent: cannot read the queue");
		return;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !addr_domain_is_safe(de->d_name))
			continue;
		if ((dom = agent_domain_get(ag, de->d_name)) != NULL)
			agent_scan_domain(ag, dom);
	}
	closedir(d);
}

static void
agent_scan_domain(struct agent_ctx *ag, struct agent_domain *dom)
{
	struct dirent *de;
	DIR *d;
	int dfd, fd;

	if ((dfd = agent_open_domain(ag, dom->name)) < 0)
		return;
	agent_take_back_claims(ag, dom, dfd);
	if ((fd = dup(dfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		close(dfd);
		return;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!agent_is_letter_name(de->d_name))
			continue;
		if (agent_letter_find(ag, dom, de->d_name) == NULL)
			agent_letter_found(ag, dom, de->d_name, dfd);
	}
	closedir(d);
	close(dfd);
}

/* What agent_take_back_claims() gives claim_sweep() as its ctx. */
struct agent_sweep {
	struct agent_ctx *ag;
	struct agent_domain *dom;
	int dfd;
};

/* agent_claim_held - a session of ours holds <domain>/.claim/NAME:us */
static int
agent_claim_held(void *ctx, const char *name)
{
	const struct agent_sweep *sw = ctx;
	const struct agent_letter *l = agent_letter_find(sw->ag, sw->dom, name);

	return l != NULL && l->where == AGENT_ACTIVE;
}

/* agent_claim_taken - a letter back in its domain: known from now on */
static void
agent_claim_taken(void *ctx, const char *name, const char *holder)
{
	const struct agent_sweep *sw = ctx;
	int mine = strcmp(holder, sw->ag->host) == 0;

	log_info("-", "took back the claim %s/%s:%s%s", sw->dom->name, name,
	    holder, mine ? "" : " (timed out)");
	if (agent_letter_find(sw->ag, sw->dom, name) == NULL)
		agent_letter_found(sw->ag, sw->dom, name, sw->dfd);
}

/* agent_sweep_period - seconds between two looks at every .claim/ */
static long long
agent_sweep_period(const struct agent_ctx *ag)
{
	long long p = ag->conf->delivery_claim_timeout / 2;

	if (p < 1)
		p = 1;
	return p < AGENT_RESCAN_S ? p : AGENT_RESCAN_S;
}

/*
 * agent_take_back_claims - <domain>/.claim/NAME:HOST back to NAME: ours
 * that no session holds (a previous agent of this host died with them),
 * and those of other hosts not renewed for delivery.claim_timeout (a
 * dead host's). The next sweep is due when the first claim seen now
 * would go stale, or after agent_sweep_period() at the latest.
 */
static void
agent_take_back_claims(struct agent_ctx *ag, struct agent_domain *dom,
    int dfd)
{
	struct agent_sweep ctx = { ag, dom, dfd };
	struct claim_sweep sw;

	memset(&sw, 0, sizeof(sw));
	sw.host = ag->host;
	sw.timeout = ag->conf->delivery_claim_timeout;
	sw.now = (time_t)agent_time();
	sw.held = agent_claim_held;
	sw.taken = agent_claim_taken;
	sw.ctx = &ctx;
	if (claim_sweep(dfd, &sw) < 0)
		log_warn("-", "delivery agent: cannot read %s/%s", dom->name,
		    QUEUEFILE_CLAIM_DIR);
	if (sw.next != 0 && (long long)sw.next < ag->next_sweep)
		ag->next_sweep = (long long)sw.next;
	if (sw.changed) {
		(void)agent_fsync_dir(ag, dfd, ".");
		(void)agent_fsync_dir(ag, dfd, QUEUEFILE_CLAIM_DIR);
	}
}

/* agent_sweep_claims - stale claims of every known domain taken back */
static void
agent_sweep_claims(struct agent_ctx *ag)
{
	struct agent_domain *dom;
	int dfd;

	ag->next_sweep = agent_time() + agent_sweep_period(ag);
	for (dom = ag->domains; dom != NULL; dom = dom->next) {
		if ((dfd = agent_open_domain(ag, dom->name)) < 0)
			continue;
		agent_take_back_claims(ag, dom, dfd);
		close(dfd);
	}
}

/*
 * agent_renew_claims - every claim a session of ours has held for a
 * third of claim_timeout is renewed: a slow transaction never looks
 * like a dead host's to the others.
 */
static void
agent_renew_claims(struct agent_ctx *ag)
{
	struct agent_session *s;
	long long now = agent_time(), every;

	every = ag->conf->delivery_claim_timeout / 3;
	if (every < 1)
		every = 1;
	for (s = ag->sessions; s != NULL; s = s->next) {
		if (s->work == NULL || now - s->work->renewed < every)
			continue;
		if (claim_renew(s->work->fd) < 0)
			log_warn(s->work->id, "cannot renew the claim of "
			    "%s/%s", s->dom->name, s->work->letter->name);
		s->work->renewed = now;
	}
}

/*
 * agent_clean_own_tmp - the files a previous agent of this host left in
 * .OTHER_SERVERS/.tmp/ (agent.HOST.PID.N) when it died; other hosts'
 * are theirs.
 */
static void
agent_clean_own_tmp(struct agent_ctx *ag)
{
	char prefix[MAILDIR_NAME_MAX + 16], path[AGENT_PATH_MAX];
	struct dirent *de;
	DIR *d;
	size_t plen;
	int fd, n;

	n = snprintf(prefix, sizeof(prefix), "agent.%s.", ag->host);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return;
	plen = (size_t)n;
	if ((fd = openat(ag->queuefd, MAILDIR_QUEUE_TMP, O_RDONLY | O_DIRECTORY
	    | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, plen) != 0
		    || strspn(de->d_name + plen, "0123456789.")
		    != strlen(de->d_name + plen))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", MAILDIR_QUEUE_TMP,
		    de->d_name) < (int)sizeof(path)
		    && unlinkat(ag->queuefd, path, 0) == 0)
			log_info("-", "removed %s/%s/%s left by a delivery "
			    "agent that died", ag->conf->maildir_path,
			    MAILDIR_QUEUE_DIR, path);
	}
	closedir(d);
}

/* agent_letter_found - a letter not known yet: due when its state says */
static void
agent_letter_found(struct agent_ctx *ag, struct agent_domain *dom,
    const char *name, int dfd)
{
	struct queuefile_state st;
	struct agent_letter *l;
	char path[AGENT_PATH_MAX];
	unsigned h;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_warn("-", "delivery agent: out of memory");
		return;
	}
	l->dom = dom;
	(void)snprintf(l->name, sizeof(l->name), "%s", name);
	h = agent_hash(dom, name);
	l->hash_next = ag->hash[h];
	ag->hash[h] = l;
	l->where = AGENT_ACTIVE;	/* in no list yet */
	l->heap_idx = (size_t)-1;
	if (snprintf(path, sizeof(path), "%s/%s", QUEUEFILE_STATE_DIR, name)
	    < (int)sizeof(path) && queuefile_state_read(dfd, path, &st) == 0
	    && st.next_attempt > agent_time()) {
		agent_letter_wait(ag, l, (int64_t)st.next_attempt * 1000);
		return;
	}
	agent_letter_ready(ag, l);
}

static void
agent_letter_forget(struct agent_ctx *ag, struct agent_letter *l)
{
	struct agent_letter **pp;

	if (l->where == AGENT_WAITING && l->heap_idx < ag->nheap
	    && ag->heap[l->heap_idx] == l)
		agent_heap_remove(ag, l);
	for (pp = &ag->hash[agent_hash(l->dom, l->name)]; *pp != NULL;
	    pp = &(*pp)->hash_next)
		if (*pp == l) {
			*pp = l->hash_next;
			break;
		}
	free(l);
}

/* agent_letter_wait - l (not in any list) waits until due */
static void
agent_letter_wait(struct agent_ctx *ag, struct agent_letter *l, int64_t due)
{
	l->where = AGENT_WAITING;
	l->due = due;
	agent_heap_push(ag, l);
}

/* agent_letter_ready - l (not in any list, or waiting) is due now */
static void
agent_letter_ready(struct agent_ctx *ag, struct agent_letter *l)
{
	struct agent_domain *dom = l->dom;

	if (l->where == AGENT_WAITING && l->heap_idx < ag->nheap
	    && ag->heap[l->heap_idx] == l)
		agent_heap_remove(ag, l);
	l->where = AGENT_READY;
	l->ready_next = NULL;
	if (dom->ready_tail != NULL)
		dom->ready_tail->ready_next = l;
	else
		dom->ready_head = l;
	dom->ready_tail = l;
	dom->nready++;
}

static struct agent_letter *
agent_ready_pop(struct agent_domain *dom)
{
	struct agent_letter *l = dom->ready_head;

	if (l == NULL)
		return NULL;
	dom->ready_head = l->ready_next;
	if (dom->ready_head == NULL)
		dom->ready_tail = NULL;
	dom->nready--;
	l->ready_next = NULL;
	l->where = AGENT_ACTIVE;
	return l;
}

static void
agent_heap_up(struct agent_ctx *ag, size_t i)
{
	struct agent_letter *l = ag->heap[i];

	while (i > 0 && ag->heap[(i - 1) / 2]->due > l->due) {
		ag->heap[i] = ag->heap[(i - 1) / 2];
		ag->heap[i]->heap_idx = i;
		i = (i - 1) / 2;
	}
	ag->heap[i] = l;
	l->heap_idx = i;
}

static void
agent_heap_down(struct agent_ctx *ag, size_t i)
{
	struct agent_letter *l = ag->heap[i];
	size_t c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= ag->nheap)
			break;
		if (c + 1 < ag->nheap && ag->heap[c + 1]->due < ag->heap[c]->due)
			c++;
		if (ag->heap[c]->due >= l->due)
			break;
		ag->heap[i] = ag->heap[c];
		ag->heap[i]->heap_idx = i;
		i = c;
	}
	ag->heap[i] = l;
	l->heap_idx = i;
}

static void
agent_heap_push(struct agent_ctx *ag, struct agent_letter *l)
{
	struct agent_letter **v;

	if (ag->nheap == ag->heap_cap) {
		size_t cap = ag->heap_cap ? ag->heap_cap * 2 : 64;

		if ((v = realloc(ag->heap, cap * sizeof(*v))) == NULL) {
			/* No room to wait: try it now instead. */
			log_warn("-", "delivery agent: out of memory");
			agent_letter_ready(ag, l);
			return;
		}
		ag->heap = v;
		ag->heap_cap = cap;
	}
	ag->heap[ag->nheap] = l;
	l->heap_idx = ag->nheap++;
	agent_heap_up(ag, l->heap_idx);
}

static void
agent_heap_remove(struct agent_ctx *ag, struct agent_letter *l)
{
	size_t i = l->heap_idx;

	ag->nheap--;
	if (i != ag->nheap) {
		ag->heap[i] = ag->heap[ag->nheap];
		ag->heap[i]->heap_idx = i;
		agent_heap_down(ag, i);
		agent_heap_up(ag, ag->heap[i]->heap_idx);
	}
	l->heap_idx = (size_t)-1;
}

/* agent_due - waiting letters whose time came (all: every one) to ready */
static void
agent_due(struct agent_ctx *ag, int all)
{
	int64_t now = agent_now_ms();

	while (ag->nheap > 0 && (all || ag->heap[0]->due <= now)) {
		ag->heap[0]->forced = all;
		agent_letter_ready(ag, ag->heap[0]);
	}
}

/* agent_dispatch - sessions for the domains with ready letters */
static void
agent_dispatch(struct agent_ctx *ag)
{
	const struct conf *conf = ag->conf;
	struct agent_domain *dom;

	for (dom = ag->domains; dom != NULL; dom = dom->next)
		while (dom->nready > (size_t)dom->nsessions
		    && dom->nsessions < conf->delivery_max_per_domain
		    && ag->nsessions < conf->delivery_max_connections)
			agent_session_start(ag, dom);
}

/* ---- sessions ---------------------------------------------------------- */

static void
agent_session_start(struct agent_ctx *ag, struct agent_domain *dom)
{
	struct agent_session *s;
	struct dns_result r;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("-", "delivery agent: out of memory");
		return;
	}
	s->ag = ag;
	s->dom = dom;
	s->fd = -1;
	s->next = ag->sessions;
	if (ag->sessions != NULL)
		ag->sessions->prev = s;
	ag->sessions = s;
	ag->nsessions++;
	dom->nsessions++;
	if (ag->relay_host[0] != '\0' && ag->relay_literal) {
		/* [IP]:PORT - no DNS at all. */
		struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&r.addrs[0].ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&r.addrs[0].ss;

		memset(&r, 0, sizeof(r));
		r.status = DNS_OK;
		r.naddrs = 1;
		(void)snprintf(r.addrs[0].host, sizeof(r.addrs[0].host), "%s",
		    ag->relay_host);
		if (inet_pton(AF_INET, ag->relay_host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			r.addrs[0].sslen = sizeof(*sin);
		} else {
			(void)inet_pton(AF_INET6, ag->relay_host,
			    &sin6->sin6_addr);
			sin6->sin6_family = AF_INET6;
			r.addrs[0].sslen = sizeof(*sin6);
		}
		agent_session_resolved(s, &r);
		return;
	}
	if (ag->relay_host[0] != '\0')
		s->lookup = dns_lookup_host(ag->dns, ag->relay_host,
		    agent_session_resolved, s);
	else
		s->lookup = dns_lookup_mx(ag->dns, dom->name,
		    agent_session_resolved, s);
	if (s->lookup == NULL) {
		struct client_reply rep;

		agent_reply(&rep, 451, "4.3.0", "cannot look up %s: %s",
		    dom->name, strerror(errno));
		agent_session_fail_domain(s, &rep, AGENT_DEFERRED);
		agent_session_free(s, 0);
	}
}

/*
 * agent_session_resolved - where the letters go. A destination that is
 * this host (an MX named as our hostname) leaves only the MX hosts
 * preferred to us (RFC 5321 5.1); none: a loop, 5.4.6.
 */
static void
agent_session_resolved(void *ctx, const struct dns_result *r)
{
	struct agent_session *s = ctx;
	struct agent_ctx *ag = s->ag;
	struct client_reply rep;
	unsigned short port;
	size_t i;
	int mypref = INT_MAX;

	s->lookup = NULL;
	switch (r->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		agent_reply(&rep, 550, "5.1.2", "Host or domain name not "
		    "found: %s", r->error);
		agent_session_fail_domain(s, &rep, AGENT_FAILED);
		agent_session_free(s, 0);
		return;
	case DNS_NULLMX:
		agent_reply(&rep, 556, "5.1.10", "%s", r->error);
		agent_session_fail_domain(s, &rep, AGENT_FAILED);
		agent_session_free(s, 0);
		return;
	case DNS_NOHOSTS:
		agent_reply(&rep, 550, "5.4.4", "%s", r->error);
		agent_session_fail_domain(s, &rep, AGENT_FAILED);
		agent_session_free(s, 0);
		return;
	case DNS_TEMPFAIL:
	default:
		agent_reply(&rep, 451, "4.4.3", "%s", r->error);
		agent_session_fail_domain(s, &rep, AGENT_DEFERRED);
		agent_session_free(s, 0);
		return;
	}
	port = ag->relay_host[0] != '\0' ? ag->relay_port
	    : (unsigned short)ag->conf->delivery_port;
	for (i = 0; i < r->naddrs; i++)
		if (ag->relay_host[0] == '\0' && r->addrs[i].pref >= 0
		    && strcasecmp(r->addrs[i].host, ag->conf->hostname) == 0
		    && r->addrs[i].pref < mypref)
			mypref = r->addrs[i].pref;
	for (i = 0; i < r->naddrs && s->naddrs < AGENT_ADDRS; i++) {
		if (mypref != INT_MAX && r->addrs[i].pref >= mypref)
			continue;
		s->addrs[s->naddrs] = r->addrs[i];
		if (s->addrs[s->naddrs].ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)(void *)&s->addrs[s->naddrs].ss)
			    ->sin6_port = htons(port);
		else
			((struct sockaddr_in *)(void *)&s->addrs[s->naddrs].ss)
			    ->sin_port = htons(port);
		s->naddrs++;
	}
	if (s->naddrs == 0) {
		agent_reply(&rep, 550, "5.4.6", "mail for %s loops back to "
		    "myself (%s is its best mail exchanger)", s->dom->name,
		    ag->conf->hostname);
		agent_session_fail_domain(s, &rep, AGENT_FAILED);
		agent_session_free(s, 0);
		return;
	}
	s->addr_i = 0;
	agent_session_connect(s);
}

static void
agent_format_relay(char *dst, size_t len, const struct dns_addr *a,
    unsigned short port)
{
	char ip[INET6_ADDRSTRLEN];
	const void *src;

	if (a->ss.ss_family == AF_INET6)
		src = &((const struct sockaddr_in6 *)(const void *)&a->ss)
		    ->sin6_addr;
	else
		src = &((const struct sockaddr_in *)(const void *)&a->ss)
		    ->sin_addr;
	if (inet_ntop(a->ss.ss_family, src, ip, sizeof(ip)) == NULL)
		(void)snprintf(ip, sizeof(ip), "?");
	(void)snprintf(dst, len, "%s[%s]:%u", a->host, ip, port);
}

/* agent_session_connect - the next address, non-blocking */
static void
agent_session_connect(struct agent_session *s)
{
	struct agent_ctx *ag = s->ag;
	const struct dns_addr *a;
	unsigned short port;
	int fd;

	while (s->addr_i < s->naddrs) {
		a = &s->addrs[s->addr_i];
		port = ntohs(a->ss.ss_family == AF_INET6
		    ? ((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_port
		    : ((const struct sockaddr_in *)(const void *)&a->ss)->sin_port);
		agent_format_relay(s->relay, sizeof(s->relay), a, port);
		fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK
		    | SOCK_CLOEXEC, 0);
		if (fd >= 0 && (connect(fd, (const struct sockaddr *)&a->ss,
		    a->sslen) == 0 || errno == EINPROGRESS)) {
			if (event_add(ag->loop, fd, EVENT_WRITE,
			    agent_session_connected, s) == 0) {
				s->fd = fd;
				event_deadline(ag->loop, fd,
				    AGENT_CONNECT_S * 1000);
				return;
			}
		}
		agent_reply(&s->last_error, 451, "4.4.1", "connect to %s: %s",
		    s->relay, strerror(errno));
		log_info("-", "connect to %s: %s", s->relay, strerror(errno));
		if (fd >= 0)
			close(fd);
		s->addr_i++;
	}
	agent_session_end(s);
}

static void
agent_session_connected(struct event_loop *loop, int fd, int events,
    void *ctx)
{
	struct agent_session *s = ctx;
	struct agent_ctx *ag = s->ag;
	socklen_t len = sizeof(int);
	int err = 0;

	if (events & EVENT_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		agent_reply(&s->last_error, 451, "4.4.1", "connect to %s: %s",
		    s->relay, strerror(err));
		log_info("-", "connect to %s: %s", s->relay, strerror(err));
		event_del(loop, fd);
		close(fd);
		s->fd = -1;
		s->addr_i++;
		agent_session_connect(s);
		return;
	}
	event_del(loop, fd);
	if ((s->io = io_new(fd)) == NULL) {
		s->fd = -1;		/* io_new() closed it */
		agent_reply(&s->last_error, 451, "4.3.0", "out of memory");
		agent_session_next_addr(s);
		return;
	}
	/* After a failed handshake "may" tries this address in plaintext. */
	if ((s->cl = client_new(ag->conf->hostname, ag->conf->delivery_tls,
	    ag->tls != NULL && s->plain_addr != s->addr_i + 1)) == NULL
	    || event_add(loop, fd, EVENT_READ, agent_session_io, s) < 0) {
		agent_reply(&s->last_error, 451, "4.3.0", "out of memory");
		agent_session_next_addr(s);
		return;
	}
	s->letters = 0;
	s->loop_checked = 0;
	agent_session_step(s);
}

static void
agent_session_io(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct agent_session *s = ctx;
	struct buf *out;
	char data[16384];
	ssize_t n;

	(void)loop;
	(void)fd;
	if (s->handshaking) {
		agent_session_handshake(s, events);
		return;
	}
	if (events & EVENT_TIMEOUT) {
		client_lost(s->cl, "timeout waiting for the server");
		agent_session_step(s);
		return;
	}
	/* With TLS, a read may wait for the socket to take bytes. */
	if (events & (io_events(s->io, EVENT_READ) | EVENT_ERROR)) {
		do {
			n = io_read(s->io, data, sizeof(data));
			if (n > 0)
				(void)client_feed(s->cl, data, (size_t)n);
			else if (n == 0)
				client_lost(s->cl, "the server closed the "
				    "connection");
			else if (errno != EAGAIN && errno != EINTR)
				client_lost(s->cl, strerror(errno));
		} while (n > 0 && client_want(s->cl) != CLIENT_WANT_CLOSE
		    && io_pending(s->io) > 0);
	}
	if ((events & io_events(s->io, EVENT_WRITE))
	    && client_want(s->cl) != CLIENT_WANT_CLOSE) {
		out = client_output(s->cl);
		while (buf_len(out) > 0) {
			n = io_write(s->io, buf_data(out), buf_len(out));
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					client_lost(s->cl, strerror(errno));
				break;
			}
			buf_consume(out, (size_t)n);
			if (buf_len(out) < AGENT_OUT_LOW
			    && client_want(s->cl) == CLIENT_WANT_BODY
			    && agent_session_fill_body(s) < 0)
				break;
		}
	}
	agent_session_step(s);
}

/*
 * agent_session_fill_body - more of the letter's text into the engine,
 * up to AGENT_OUT_LOW bytes waiting; its end ends the text.
 */
static int
agent_session_fill_body(struct agent_session *s)
{
	struct agent_work *w = s->work;
	struct buf *out = client_output(s->cl);
	char chunk[AGENT_CHUNK];
	ssize_t n;

	while (client_want(s->cl) == CLIENT_WANT_BODY
	    && buf_len(out) < AGENT_OUT_LOW) {
		if (w->offset >= w->size) {
			if (client_body_end(s->cl) < 0)
				goto fail;
			return 0;
		}
		n = pread(w->fd, chunk, sizeof(chunk), w->offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		w->offset += n;
		if (client_body(s->cl, chunk, (size_t)n) < 0)
			goto fail;
	}
	return 0;

fail:
	log_warn(w->id, "cannot read the letter %s/%s", s->dom->name,
	    w->letter->name);
	client_lost(s->cl, "the letter could not be read");
	return -1;
}

/* agent_session_step - act on what the engine wants, until it waits */
static void
agent_session_step(struct agent_session *s)
{
	struct agent_ctx *ag = s->ag;
	const struct client_result *res;
	struct agent_outcome *out;
	struct agent_letter *l;
	struct client_reply why;
	size_t i;
	int want, timeout;

	for (;;) {
		if ((res = client_result(s->cl)) != NULL && s->work != NULL) {
			struct agent_work *w = s->work;

			if ((out = calloc(res->nrcpts, sizeof(*out))) == NULL) {
				/* Not a word of it was kept: all again. */
				agent_release(ag, w);
			} else {
				for (i = 0; i < res->nrcpts; i++) {
					out[i].reply = res->rcpt[i];
					out[i].kind = res->rcpt[i].code / 100 == 2
					    ? AGENT_SENT : res->rcpt[i].code / 100
					    == 5 ? AGENT_FAILED : AGENT_DEFERRED;
					(void)snprintf(out[i].relay,
					    sizeof(out[i].relay), "%s", s->relay);
					(void)snprintf(out[i].remote_mta,
					    sizeof(out[i].remote_mta), "%s",
					    s->addrs[s->addr_i].host);
					out[i].dsn_offered = client_has(s->cl,
					    CLIENT_EXT_DSN);
				}
				agent_finish(ag, w, out);
				free(out);
			}
			s->work = NULL;
			client_result_clear(s->cl);
		}
		want = client_want(s->cl);
		if (want == CLIENT_WANT_LETTER && !s->loop_checked) {
			s->loop_checked = 1;
			s->usable = 1;
			if (strcasecmp(client_server_name(s->cl),
			    ag->conf->hostname) == 0) {
				agent_reply(&why, 550, "5.4.6", "mail for %s "
				    "loops back to myself (%s greeted us with "
				    "our own name %s)", s->dom->name, s->relay,
				    ag->conf->hostname);
				agent_session_fail_domain(s, &why,
				    AGENT_FAILED);
				client_quit(s->cl);
				continue;
			}
		}
		if (want == CLIENT_WANT_LETTER) {
			struct agent_work *w = NULL;

			while ((l = agent_ready_pop(s->dom)) != NULL)
				if ((w = agent_claim(ag, l, &why)) != NULL)
					break;
			if (w == NULL) {
				client_quit(s->cl);
				continue;
			}
			s->work = w;
			s->letters++;
			if (w->cl.nrcpts == 0 || client_letter(s->cl, &w->cl)
			    < 0) {
				agent_release(ag, w);
				s->work = NULL;
				client_quit(s->cl);
			}
			continue;
		}
		if (want == CLIENT_WANT_BODY) {
			if (buf_len(client_output(s->cl)) < AGENT_OUT_LOW
			    && agent_session_fill_body(s) == 0
			    && client_want(s->cl) == CLIENT_WANT_BODY
			    && buf_len(client_output(s->cl)) < AGENT_OUT_LOW)
				continue;
			if (client_want(s->cl) != CLIENT_WANT_BODY)
				continue;
			break;
		}
		if (want == CLIENT_WANT_TLS) {
			agent_session_start_tls(s);
			return;
		}
		if (want == CLIENT_WANT_CLOSE) {
			if (!s->usable) {
				const struct client_reply *e;

				e = client_session_error(s->cl);
				if (e->code != 0) {
					s->last_error = *e;
					log_info("-", "%s: %s", s->relay,
					    e->text);
				}
				agent_session_next_addr(s);
				return;
			}
			/* A close_notify: OpenSSL resumes no session without. */
			(void)io_shutdown(s->io);
			agent_session_end(s);
			return;
		}
		break;
	}
	event_set(ag->loop, s->fd, io_events(s->io, EVENT_READ
	    | (buf_len(client_output(s->cl)) > 0 ? EVENT_WRITE : 0)));
	timeout = client_timeout(s->cl);
	event_deadline(ag->loop, s->fd, timeout > 0 ? timeout * 1000L : -1);
}

/*
 * agent_session_start_tls - the server said 220 to STARTTLS: the TLS
 * handshake, in the loop, with the engine's limit for it
 */
static void
agent_session_start_tls(struct agent_session *s)
{
	struct agent_ctx *ag = s->ag;

	if (ag->tls == NULL || io_start_tls_client(s->io, ag->tls,
	    s->addrs[s->addr_i].host, s->relay) < 0) {
		agent_session_tls_failed(s, strerror(errno));
		return;
	}
	s->handshaking = 1;
	event_deadline(ag->loop, s->fd, client_timeout(s->cl) * 1000L);
	agent_session_handshake(s, 0);
}

/*
 * agent_session_handshake - move the handshake on; when it is done, log
 * what was agreed and what the certificate is, and the engine starts
 * over with EHLO (RFC 3207 4.2)
 */
static void
agent_session_handshake(struct agent_session *s, int events)
{
	struct agent_ctx *ag = s->ag;
	char text[256];
	const char *why = "unknown";
	int verified;

	if (events & EVENT_TIMEOUT) {
		agent_session_tls_failed(s, "timeout");
		return;
	}
	if (io_handshake(s->io) < 0) {
		if (errno == EAGAIN) {
			event_set(ag->loop, s->fd, io_events(s->io, 0));
			return;
		}
		if ((why = io_tls_error(s->io)) == NULL)
			why = strerror(errno);
		agent_session_tls_failed(s, why);
		return;
	}
	s->handshaking = 0;
	if (io_tls_describe(s->io, text, sizeof(text)) < 0)
		(void)snprintf(text, sizeof(text), "TLS");
	verified = io_tls_peer_verified(s->io, &why);
	log_info("-", "%s: TLS established: %s%s, certificate %s%s", s->relay,
	    text, io_tls_resumed(s->io) ? ", session resumed" : "",
	    verified == 1 ? "verified" : "not verified: ",
	    verified == 1 ? "" : why);
	client_tls_started(s->cl);
	agent_session_step(s);
}

/*
 * agent_session_tls_failed - the handshake failed (or TLS could not
 * start). "may": this address again at once, in plaintext (Postfix's
 * smtp(8) does the same for its "may" level); "encrypt": nothing goes
 * in the clear, the next address is tried and the letters are deferred
 * with 4.7.5 when none does better.
 */
static void
agent_session_tls_failed(struct agent_session *s, const char *why)
{
	int may = s->ag->conf->delivery_tls == CONF_TLS_MAY;

	log_info("-", "%s: TLS handshake failed: %s%s", s->relay, why,
	    may ? "; trying again without TLS" : "");
	s->handshaking = 0;
	if (may) {
		s->plain_addr = s->addr_i + 1;
		agent_session_disconnect(s);
		agent_session_connect(s);
		return;
	}
	agent_reply(&s->last_error, 454, "4.7.5", "Cannot start TLS with %s: "
	    "handshake failure (%s)", s->relay, why);
	agent_session_next_addr(s);
}

/* agent_session_next_addr - this connection is useless: the next address */
static void
agent_session_next_addr(struct agent_session *s)
{
	agent_session_disconnect(s);
	s->addr_i++;
	agent_session_connect(s);
}

/* agent_session_disconnect - close the connection, forget its dialog */
static void
agent_session_disconnect(struct agent_session *s)
{
	if (s->fd >= 0)
		event_del(s->ag->loop, s->fd);
	if (s->io != NULL)
		io_free(s->io);
	else if (s->fd >= 0)
		close(s->fd);
	s->io = NULL;
	s->fd = -1;
	client_free(s->cl);
	s->cl = NULL;
	s->handshaking = 0;
}

/*
 * agent_session_end - the session is over. When no connection got as
 * far as MAIL, every ready letter of the domain is deferred with the last
 * error: the destination cannot be reached now.
 */
static void
agent_session_end(struct agent_session *s)
{
	struct agent_ctx *ag = s->ag;

	if (!s->usable) {
		if (s->last_error.code == 0)
			agent_reply(&s->last_error, 451, "4.4.1", "no "
			    "mail exchanger of %s could be reached",
			    s->dom->name);
		agent_session_fail_domain(s, &s->last_error,
		    s->last_error.code / 100 == 5 ? AGENT_FAILED
		    : AGENT_DEFERRED);
	}
	agent_session_free(s, 1);
	agent_dispatch(ag);
}

/* agent_session_fail_domain - every ready letter of the domain gets r */
static void
agent_session_fail_domain(struct agent_session *s,
    const struct client_reply *r, int kind)
{
	struct agent_ctx *ag = s->ag;
	struct agent_letter *l;
	struct agent_work *w;
	struct client_reply why;
	const char *relay = s->fd >= 0 || s->cl != NULL ? s->relay : "none";

	if (kind == AGENT_FAILED && r->code / 100 == 4)
		kind = AGENT_DEFERRED;
	while ((l = agent_ready_pop(s->dom)) != NULL) {
		if ((w = agent_claim(ag, l, &why)) == NULL)
			continue;
		agent_finish_all(ag, w, r, kind, relay[0] ? relay : "none");
	}
}

/* agent_session_free - close and forget; release: claims go back */
static void
agent_session_free(struct agent_session *s, int release)
{
	struct agent_ctx *ag = s->ag;

	if (s->work != NULL) {
		if (release)
			agent_release(ag, s->work);
		else
			agent_work_free(s->work);
		s->work = NULL;
	}
	dns_cancel(s->lookup);
	if (s->fd >= 0)
		event_del(ag->loop, s->fd);
	if (s->io != NULL)
		io_free(s->io);
	else if (s->fd >= 0)
		close(s->fd);
	client_free(s->cl);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ag->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	ag->nsessions--;
	s->dom->nsessions--;
	free(s);
}

/* ---- letters on disk --------------------------------------------------- */

static int
agent_open_domain(struct agent_ctx *ag, const char *domain)
{
	return openat(ag->queuefd, domain, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
	    | O_CLOEXEC);
}

static int
agent_mkdirat(int dfd, const char *name)
{
	return mkdirat(dfd, name, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

static int
agent_fsync_dir(struct agent_ctx *ag, int dfd, const char *path)
{
	int fd, rc;

	if (!ag->conf->maildir_fsync)
		return 0;
	if ((fd = openat(dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * agent_sync_claims - the group commit of removals: one fsync of each
 * .claim/ that letters left since the last one, once the first of them
 * is AGENT_SYNC_MS old or AGENT_SYNC_MAX are waiting (all: now, when any
 * is). Nothing waits for a removal to be durable: a crash before it
 * brings the claim back, and the letter is sent twice, as after a crash
 * between the 250 and the unlink; the window bounds how many.
 */
static void
agent_sync_claims(struct agent_ctx *ag, int64_t now, int all)
{
	struct agent_domain *dom;
	int dfd;

	if (ag->nunsynced == 0 || (!all && ag->nunsynced < AGENT_SYNC_MAX
	    && now - ag->unsynced_since < AGENT_SYNC_MS))
		return;
	ag->nunsynced = 0;
	for (dom = ag->domains; dom != NULL; dom = dom->next) {
		if (!dom->claims_unsynced)
			continue;
		dom->claims_unsynced = 0;
		if ((dfd = agent_open_domain(ag, dom->name)) < 0
		    || agent_fsync_dir(ag, dfd, QUEUEFILE_CLAIM_DIR) < 0)
			log_warn("-", "delivery agent: cannot sync %s/%s",
			    dom->name, QUEUEFILE_CLAIM_DIR);
		if (dfd >= 0)
			close(dfd);
	}
}

static int
agent_claim_name(struct agent_ctx *ag, const char *name, char *dst,
    size_t len)
{
	return claim_path(dst, len, name, ag->host);
}

/* agent_count_received - Received: lines of a header section */
static int
agent_count_received(const struct buf *headers)
{
	const char *p = buf_data(headers), *end = p + buf_len(headers);
	int n = 0;

	while (p != NULL && p < end) {
		if ((size_t)(end - p) >= 9 && strncasecmp(p, "Received:", 9)
		    == 0)
			n++;
		if ((p = memchr(p, '\n', (size_t)(end - p))) != NULL)
			p++;
	}
	return n;
}

/*
 * agent_claim - rename the letter to <domain>/.claim/NAME:HOST and load
 * it. NULL when it is gone (another host took it) or cannot be read
 * (then it goes to error/ when it is malformed, or waits).
 */
static struct agent_work *
agent_claim(struct agent_ctx *ag, struct agent_letter *l,
    struct client_reply *why)
{
	struct agent_work *w = NULL;
	struct queuefile_error qerr;
	struct stat st;
	char claim[AGENT_PATH_MAX], path[AGENT_PATH_MAX];
	const char *params, *v;
	size_t i, vlen;
	int dfd, rc, n, forced;

	if ((dfd = agent_open_domain(ag, l->dom->name)) < 0)
		goto gone;
	if (agent_claim_name(ag, l->name, claim, sizeof(claim)) < 0
	    || agent_mkdirat(dfd, QUEUEFILE_STATE_DIR) < 0) {
		close(dfd);
		agent_letter_wait(ag, l, agent_now_ms() + 60000);
		return NULL;
	}
	if (claim_take(dfd, l->name, ag->host) < 0) {
		close(dfd);
		if (errno == ENOENT)
			goto gone;	/* another host has it, or sent it */
		log_warn("-", "cannot claim %s/%s", l->dom->name, l->name);
		agent_letter_wait(ag, l, agent_now_ms() + 60000);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL
	    || (w->headers = buf_new(AGENT_HEADER_MAX)) == NULL)
		goto fail;
	w->letter = l;
	w->fd = -1;
	w->renewed = agent_time();
	if (maildir_name_id(l->name, w->id, sizeof(w->id)) < 0)
		(void)snprintf(w->id, sizeof(w->id), "-");
	w->arrival = strtoll(l->name, NULL, 10);
	if ((w->fd = openat(dfd, claim, O_RDONLY | O_NOFOLLOW | O_CLOEXEC))
	    < 0 || fstat(w->fd, &st) < 0)
		goto fail;
	w->size = st.st_size;
	/* Absent (1: never tried) is the one case with nothing to remove. */
	w->has_state = 1;
	if (snprintf(path, sizeof(path), "%s/%s", QUEUEFILE_STATE_DIR,
	    l->name) >= (int)sizeof(path)
	    || (rc = queuefile_state_read(dfd, path, &w->state)) < 0)
		memset(&w->state, 0, sizeof(w->state));
	else if (rc == 1)
		w->has_state = 0;
	forced = l->forced;
	l->forced = 0;
	if (!forced && w->state.next_attempt > agent_time()
	    && (int64_t)w->state.next_attempt * 1000 > l->due) {
		/*
		 * Another host tried it since we saw it, and deferred it:
		 * its schedule holds here too.
		 */
		int64_t due = (int64_t)w->state.next_attempt * 1000;

		(void)claim_give_back(dfd, l->name, ag->host);
		(void)agent_fsync_dir(ag, dfd, ".");
		close(dfd);
		agent_work_free(w);
		agent_letter_wait(ag, l, due);
		return NULL;
	}
	rc = queuefile_read(w->fd, &w->qf, &qerr);
	if (rc < 0)
		goto fail;
	if (rc > 0) {
		/* Nobody can be told: it goes to error/ as it is. */
		log_warnx(w->id, "%s/%s: malformed envelope (%s): moved to "
		    "error/", l->dom->name, l->name, qerr.reason);
		(void)agent_mkdirat(dfd, "error");
		if (snprintf(path, sizeof(path), "error/%s", l->name)
		    < (int)sizeof(path) && renameat(dfd, claim, dfd, path) == 0) {
			(void)agent_fsync_dir(ag, dfd, "error");
			(void)agent_fsync_dir(ag, dfd, QUEUEFILE_CLAIM_DIR);
		}
		close(dfd);
		agent_work_free(w);
		agent_letter_forget(ag, l);
		return NULL;
	}
	if (queuefile_read_headers(w->fd, (off_t)queuefile_envelope_len(w->qf),
	    w->headers) < 0 && errno != EMSGSIZE)
		goto fail;
	if ((w->rcpts = calloc(queuefile_nrcpts(w->qf), sizeof(*w->rcpts)))
	    == NULL || (w->rcpt_dsn = calloc(queuefile_nrcpts(w->qf),
	    sizeof(*w->rcpt_dsn))) == NULL)
		goto fail;
	for (i = 0; i < queuefile_nrcpts(w->qf); i++) {
		w->rcpts[i] = queuefile_rcpt(w->qf, i);
		/* Only NOTIFY and ORCPT are kept after a recipient. */
		w->rcpt_dsn[i] = queuefile_rcpt_params(w->qf, i);
	}
	params = queuefile_params(w->qf);
	/* RET and ENVID go on when the next hop offers DSN (RFC 3461 4). */
	n = 0;
	if ((v = queuefile_param(params, "RET", &vlen)) != NULL)
		n = snprintf(w->mail_dsn, sizeof(w->mail_dsn), "RET=%.*s",
		    (int)vlen, v);
	if (n >= 0 && (size_t)n < sizeof(w->mail_dsn)
	    && (v = queuefile_param(params, "ENVID", &vlen)) != NULL)
		n += snprintf(w->mail_dsn + n, sizeof(w->mail_dsn) - (size_t)n,
		    "%sENVID=%.*s", n > 0 ? " " : "", (int)vlen, v);
	if (n < 0 || (size_t)n >= sizeof(w->mail_dsn))
		w->mail_dsn[0] = '\0';	/* longer than RFC 3461 allows */
	w->cl.mail_dsn = w->mail_dsn;
	w->cl.rcpt_dsn = w->rcpt_dsn;
	w->cl.smtputf8 = queuefile_smtputf8(w->qf);
	v = queuefile_param(params, "BODY", &vlen);
	w->cl.binarymime = v != NULL && vlen == 10
	    && strncasecmp(v, "BINARYMIME", 10) == 0;
	w->offset = (off_t)queuefile_envelope_len(w->qf);
	w->cl.sender = queuefile_sender(w->qf);
	w->cl.rcpts = w->rcpts;
	w->cl.nrcpts = queuefile_nrcpts(w->qf);
	w->cl.size = (size_t)(w->size - w->offset);
	w->cl.eightbit = strcasestr(params, "BODY=8BITMIME") != NULL;
	close(dfd);
	if (agent_count_received(w->headers) > 100) {
		agent_reply(why, 554, "5.4.6", "too many Received: headers "
		    "(%d): mail forwarding loop", agent_count_received(w->headers));
		agent_finish_all(ag, w, why, AGENT_FAILED, "none");
		return NULL;
	}
	return w;

fail:
	log_warn("-", "cannot read the letter %s/%s", l->dom->name, l->name);
	if (w != NULL)
		agent_release(ag, w);
	else {
		/* Claimed, not loaded: back it goes, to be tried later. */
		(void)renameat(dfd, claim, dfd, l->name);
		agent_letter_wait(ag, l, agent_now_ms() + 60000);
	}
	close(dfd);
	return NULL;

gone:
	agent_letter_forget(ag, l);
	return NULL;
}

static void
agent_work_free(struct agent_work *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	queuefile_free(w->qf);
	free(w->rcpts);
	free(w->rcpt_dsn);
	buf_free(w->headers);
	free(w);
}

/*
 * agent_release - put a claimed letter back untouched (nothing about it
 * was learnt): due again at once, or on a later start.
 */
static void
agent_release(struct agent_ctx *ag, struct agent_work *w)
{
	struct agent_letter *l = w->letter;
	int dfd;

	if ((dfd = agent_open_domain(ag, l->dom->name)) >= 0) {
		if (claim_give_back(dfd, l->name, ag->host) == 0)
			(void)agent_fsync_dir(ag, dfd, ".");
		close(dfd);
	}
	agent_work_free(w);
	agent_letter_wait(ag, l, agent_now_ms() + 1000);
}

/* agent_finish_all - one reply for every recipient of the letter */
static void
agent_finish_all(struct agent_ctx *ag, struct agent_work *w,
    const struct client_reply *r, int kind, const char *relay)
{
	struct agent_outcome *out;
	size_t i, n = queuefile_nrcpts(w->qf);

	if ((out = calloc(n, sizeof(*out))) == NULL) {
		agent_release(ag, w);
		return;
	}
	for (i = 0; i < n; i++) {
		out[i].kind = kind;
		out[i].reply = *r;
		(void)snprintf(out[i].relay, sizeof(out[i].relay), "%s", relay);
	}
	agent_finish(ag, w, out);
	free(out);
}

static void
agent_log_outcome(struct agent_ctx *ag, struct agent_work *w, size_t i,
    const struct agent_outcome *o)
{
	static const char *const words[] = { "sent", "deferred", "bounced" };

	log_info(w->id, "to=<%s>, relay=%s, delay=%llds, dsn=%s, status=%s "
	    "(%s)", w->rcpts[i], o->relay[0] ? o->relay : "none",
	    agent_time() - w->arrival, o->reply.status, words[o->kind],
	    o->reply.text);
	(void)ag;
}

/*
 * agent_write_tmp - a new file in root/.OTHER_SERVERS/.tmp/ holding the
 * iovecs, then (src_fd >= 0) the bytes of src_fd from src_off to its
 * end; fsynced and closed. Its name (relative to the queue) in tmpname.
 */
static int
agent_write_tmp(struct agent_ctx *ag, const struct iovec *iov, int iovcnt,
    int src_fd, off_t src_off, char *tmpname, size_t tmplen)
{
	char chunk[AGENT_CHUNK];
	ssize_t n, w;
	int fd, i, saved;
	size_t done;

	n = snprintf(tmpname, tmplen, ".tmp/agent.%s.%ld.%lu", ag->host,
	    (long)getpid(), ++ag->tmp_counter);
	if (n < 0 || (size_t)n >= tmplen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = openat(ag->queuefd, tmpname, O_WRONLY | O_CREAT | O_EXCL
	    | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return -1;
	for (i = 0; i < iovcnt; i++) {
		for (done = 0; done < iov[i].iov_len; done += (size_t)w) {
			w = write(fd, (const char *)iov[i].iov_base + done,
			    iov[i].iov_len - done);
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w < 0)
				goto fail;
		}
	}
	while (src_fd >= 0) {
		n = pread(src_fd, chunk, sizeof(chunk), src_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		src_off += n;
		for (done = 0; done < (size_t)n; done += (size_t)w) {
			w = write(fd, chunk + done, (size_t)n - done);
			if (w < 0 && errno == EINTR) {
				w = 0;
				continue;
			}
			if (w < 0)
				goto fail;
		}
	}
	if ((ag->conf->maildir_fsync && fsync(fd) < 0) || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;

fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	(void)unlinkat(ag->queuefd, tmpname, 0);
	errno = saved;
	return -1;
}

/* agent_write_state - dfd/.state/NAME replaced atomically by st */
static int
agent_write_state(struct agent_ctx *ag, int dfd, const char *name,
    const struct queuefile_state *st)
{
	char text[QUEUEFILE_ERROR_MAX + 128], tmp[AGENT_PATH_MAX];
	char path[AGENT_PATH_MAX];
	struct iovec iov;
	int n;

	if ((n = queuefile_state_format(st, text, sizeof(text))) < 0
	    || snprintf(path, sizeof(path), "%s/%s", QUEUEFILE_STATE_DIR, name)
	    >= (int)sizeof(path) || agent_mkdirat(dfd, QUEUEFILE_STATE_DIR) < 0)
		return -1;
	iov.iov_base = text;
	iov.iov_len = (size_t)n;
	if (agent_write_tmp(ag, &iov, 1, -1, 0, tmp, sizeof(tmp)) < 0)
		return -1;
	if (renameat(ag->queuefd, tmp, dfd, path) < 0) {
		(void)unlinkat(ag->queuefd, tmp, 0);
		return -1;
	}
	return agent_fsync_dir(ag, dfd, QUEUEFILE_STATE_DIR);
}

/*
 * agent_envelope_copy - the letter with only the recipients whose
 * outcome is kind, written to dst in dst_dfd (noreplace: never over an
 * existing file - then dst,2 dst,3 ... are tried; placed gets the name),
 * or, without noreplace, over this host's claim of the letter dst (while
 * the claim is still ours: else -1 and ESTALE).
 */
static int
agent_envelope_copy(struct agent_ctx *ag, struct agent_work *w,
    const struct agent_outcome *out, int kind, int dst_dfd, const char *dst,
    int noreplace, char *placed, size_t placedlen)
{
	char env[QUEUEFILE_CHUNK * 2], tmp[AGENT_PATH_MAX], tmppath[PATH_MAX];
	struct buf *b;
	struct iovec iov;
	const char *p, *end, *lf;
	size_t rcpt = 0, elen = queuefile_envelope_len(w->qf);
	ssize_t n;
	int rc = -1, k, line = 0;

	if ((b = buf_new(elen + 1)) == NULL)
		return -1;
	/* The envelope lines as they are: From, then the To lines kept. */
	while (buf_len(b) < elen) {
		size_t want = elen - buf_len(b);

		n = pread(w->fd, env, want < sizeof(env) ? want : sizeof(env),
		    (off_t)buf_len(b));
		if (n <= 0 || buf_append(b, env, (size_t)n) < 0)
			goto done;
	}
	p = buf_data(b);
	end = p + elen;
	{
		struct buf *kept = buf_new(elen + 1);

		if (kept == NULL)
			goto done;
		for (; p < end; p = lf + 1, line++) {
			if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
				lf = end - 1;
			if (line == 0 || out[rcpt].kind == kind)
				(void)buf_append(kept, p, (size_t)(lf - p) + 1);
			if (line > 0)
				rcpt++;
			if (rcpt >= queuefile_nrcpts(w->qf))
				break;
		}
		iov.iov_base = (void *)buf_data(kept);
		iov.iov_len = buf_len(kept);
		k = agent_write_tmp(ag, &iov, 1, w->fd, (off_t)elen, tmp,
		    sizeof(tmp));
		buf_free(kept);
		if (k < 0)
			goto done;
	}
	if (!noreplace) {
		if (claim_replace(dst_dfd, dst, ag->host, w->fd, ag->queuefd,
		    tmp) < 0)
			goto unlink;
		(void)snprintf(placed, placedlen, "%s", dst);
		rc = 0;
		goto done;
	}
	for (k = 1; k < 100; k++) {
		if (k == 1)
			n = snprintf(placed, placedlen, "%s", dst);
		else
			n = snprintf(placed, placedlen, "%s,%d", dst, k);
		if (n < 0 || (size_t)n >= placedlen)
			break;
		if (linkat(ag->queuefd, tmp, dst_dfd, placed, 0) == 0) {
			rc = 0;
			break;
		}
		if (errno != EEXIST)
			break;
	}
unlink:
	k = errno;
	(void)snprintf(tmppath, sizeof(tmppath), "%s", tmp);
	(void)unlinkat(ag->queuefd, tmppath, 0);
	errno = k;
done:
	buf_free(b);
	return rc;
}

/* agent_make_id - a message ID of ours: hex time, 'Z', a counter */
static int
agent_make_id(struct agent_ctx *ag, char *id, size_t idlen)
{
	struct timeval tv;
	uint64_t usec;
	int n;

	gettimeofday(&tv, NULL);
	usec = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	if (usec <= ag->last_usec)
		usec = ag->last_usec + 1;
	ag->last_usec = usec;
	ag->id_counter++;
	/* 'Z' is no hex digit: never the same as a receiver's ID. */
	n = snprintf(id, idlen, "%08lX%05lXZ%03X",
	    (unsigned long)(usec / 1000000) & 0xffffffffUL,
	    (unsigned long)(usec % 1000000), ag->id_counter & 0xfffU);
	return n < 0 || (size_t)n >= idlen ? -1 : 0;
}

/*
 * agent_notify - whether recipient i (outcome o) gets a notice of kind
 * AGENT_FAILED (a bounce: NOTIFY has FAILURE, or no NOTIFY at all, RFC
 * 3461 4.1) or AGENT_SENT (a "relayed" report: NOTIFY has SUCCESS and
 * the next hop did not offer DSN, so it cannot report it itself).
 */
static int
agent_notify(const struct agent_work *w, size_t i,
    const struct agent_outcome *o, int kind)
{
	int asked;

	if (o->kind != kind || (kind == AGENT_SENT && o->dsn_offered))
		return 0;
	asked = queuefile_notify(queuefile_rcpt_params(w->qf, i),
	    kind == AGENT_SENT ? "SUCCESS" : "FAILURE");
	return asked < 0 ? kind == AGENT_FAILED : asked;
}

/*
 * agent_bounce - the notice of kind AGENT_FAILED (a bounce of the
 * failed recipients that want one) or AGENT_SENT (a "relayed" report of
 * those sent that asked NOTIFY=SUCCESS) to the sender, stored durably:
 * in the sender's Maildir when the sender is local (or to the
 * postmaster when the local part, also without its +extension, is no
 * user), else queued for the sender's domain. RET=FULL puts the whole
 * letter in a bounce (when it is under AGENT_FULL_MAX; a "relayed"
 * report carries the headers whatever RET says, RFC 3461 4.3), ENVID
 * and ORCPT are reported. Returns 0 when stored,
 * or when there is nobody to tell (<>, an address literal, no recipient
 * asked; logged), -1 when it could not be stored (the failed recipients
 * then wait, to try again).
 */
static int
agent_bounce(struct agent_ctx *ag, struct agent_work *w,
    const struct agent_outcome *out, int kind)
{
	const struct conf *conf = ag->conf;
	struct bounce_rcpt *br = NULL;
	struct bounce_info bi;
	struct maildir_copy copy;
	struct iovec iov[2];
	struct conf_target target;
	struct addr a;
	struct buf *text = NULL, *head = NULL, *full = NULL;
	char (*diag)[CLIENT_TEXT_MAX + 16] = NULL;
	char (*orcpt)[QUEUEFILE_LINE_MAX] = NULL;
	const char *sender = queuefile_sender(w->qf), *user = NULL, *v;
	char path[ADDR_PATH_MAX + 3], id[32], date[64];
	char envid[QUEUEFILE_LINE_MAX];
	size_t i, n = 0, used, vlen, elen = queuefile_envelope_len(w->qf);
	off_t msglen = w->size - (off_t)elen;
	int rc = -1, ret_full;

	if (*sender == '\0')
		return 0;		/* never a bounce of a bounce */
	for (i = 0; i < queuefile_nrcpts(w->qf); i++)
		n += agent_notify(w, i, &out[i], kind);
	if (n == 0) {
		if (kind == AGENT_FAILED)
			log_info(w->id, "no bounce: NOTIFY says not to");
		return 0;
	}
	n = 0;
	v = queuefile_param(queuefile_params(w->qf), "RET", &vlen);
	/* A report of no failure returns the headers (RFC 3461 4.3). */
	ret_full = kind == AGENT_FAILED && v != NULL && vlen == 4
	    && strncasecmp(v, "FULL", 4) == 0
	    && msglen >= 0 && msglen <= AGENT_FULL_MAX;
	v = queuefile_param(queuefile_params(w->qf), "ENVID", &vlen);
	if (v == NULL || addr_xtext_decode(v, vlen, envid, sizeof(envid)) < 0)
		envid[0] = '\0';
	/* Under SMTPUTF8 the sender may be UTF-8: the report is, too. */
	if (snprintf(path, sizeof(path), "<%s>", sender) >= (int)sizeof(path)
	    || addr_parse_path(path, strlen(path), queuefile_smtputf8(w->qf)
	    ? ADDR_ALLOW_UTF8 : 0, &a, &used) != ADDR_OK) {
		log_warnx(w->id, "no bounce: the sender <%s> is no address",
		    sender);
		return 0;
	}
	if (!a.literal && conf_is_local_domain(conf, a.ace)) {
		/* A user, also with a +extension; else the postmaster. */
		if (conf_lookup_local(conf, a.mailbox, &target)
		    && target.user != NULL)
			user = target.user;
		else
			user = conf->postmaster;
		if (user == NULL || *user == '\0') {
			log_warnx(w->id, "no bounce: <%s> is no local user and "
			    "there is no postmaster", sender);
			return 0;
		}
	} else if (a.literal || !addr_domain_is_safe(a.ace)) {
		log_warnx(w->id, "no bounce: <%s> cannot be queued", sender);
		return 0;
	}
	if (agent_make_id(ag, id, sizeof(id)) < 0
	    || bounce_format_date((time_t)agent_time(), date, sizeof(date)) < 0
	    || (br = calloc(queuefile_nrcpts(w->qf), sizeof(*br))) == NULL
	    || (diag = calloc(queuefile_nrcpts(w->qf), sizeof(*diag))) == NULL
	    || (orcpt = calloc(queuefile_nrcpts(w->qf), sizeof(*orcpt)))
	    == NULL || (text = buf_new(AGENT_BOUNCE_MAX
	    + (ret_full ? (size_t)msglen : 0))) == NULL
	    || (head = buf_new(4096)) == NULL)
		goto done;
	if (ret_full) {
		/* RET=FULL: the letter from its Received: line on. */
		char chunk[AGENT_CHUNK];
		ssize_t got;
		off_t off = (off_t)elen;

		if ((full = buf_new((size_t)msglen + 1)) == NULL)
			goto done;
		while ((got = pread(w->fd, chunk, sizeof(chunk), off)) != 0) {
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0 || buf_append(full, chunk, (size_t)got) < 0)
				goto done;
			off += got;
		}
	}
	for (i = 0; i < queuefile_nrcpts(w->qf); i++) {
		if (!agent_notify(w, i, &out[i], kind))
			continue;
		v = queuefile_param(queuefile_rcpt_params(w->qf, i), "ORCPT",
		    &vlen);
		if (v != NULL && addr_xtext_decode(v, vlen, orcpt[n],
		    sizeof(orcpt[n])) == 0)
			br[n].orcpt = orcpt[n];
		br[n].rcpt = w->rcpts[i];
		br[n].status = out[i].reply.status;
		/* RFC 3464 2.3.6: "smtp" for a remote reply, ours else. */
		(void)snprintf(diag[n], sizeof(diag[n]), "%s; %s",
		    out[i].remote_mta[0] ? "smtp" : "X-Pollsmtpd",
		    out[i].reply.text);
		br[n].diagnostic = diag[n];
		br[n].remote_mta = out[i].remote_mta[0] ? out[i].remote_mta
		    : NULL;
		n++;
	}
	memset(&bi, 0, sizeof(bi));
	bi.hostname = conf->hostname;
	bi.id = id;
	bi.orig_id = w->id;
	bi.sender = sender;
	bi.arrival = (time_t)w->arrival;
	bi.now = (time_t)agent_time();
	bi.rcpts = br;
	bi.nrcpts = n;
	bi.headers = buf_data(w->headers);
	bi.headers_len = buf_len(w->headers);
	bi.envid = envid[0] != '\0' ? envid : NULL;
	bi.relayed = kind == AGENT_SENT;
	if (full != NULL) {
		bi.message = buf_len(full) > 0 ? buf_data(full) : "";
		bi.message_len = buf_len(full);
	}
	if (bounce_format(&bi, text) < 0)
		goto done;
	if (user != NULL) {
		if (buf_printf(head, "Return-Path: <>\nDelivered-To: %s\n"
		    "Received: by %s (pollsmtpd) id %s; %s\n", sender,
		    conf->hostname, id, date) < 0)
			goto done;
	} else if (buf_printf(head, "X-Envelope-From: <>%s\n"
	    "X-Envelope-To: <%s>\nReceived: by %s (pollsmtpd) id %s; %s\n",
	    bounce_is_global(&bi) ? " SMTPUTF8" : "", sender, conf->hostname,
	    id, date) < 0)
		goto done;
	iov[0].iov_base = (void *)buf_data(head);
	iov[0].iov_len = buf_len(head);
	iov[1].iov_base = (void *)buf_data(text);
	iov[1].iov_len = buf_len(text);
	memset(&copy, 0, sizeof(copy));
	copy.mailbox = user;
	copy.domain = user == NULL ? a.ace : NULL;
	copy.iov = iov;
	copy.iovcnt = 2;
	copy.text_fd = -1;
	if (maildir_deliver(ag->md, id, &copy, 1) < 0) {
		log_warn(w->id, "cannot store the bounce to <%s>", sender);
		goto done;
	}
	log_info(w->id, "sender %s notification: %s (to <%s>%s%s)",
	    kind == AGENT_SENT ? "delivery status" : "non-delivery", id,
	    sender, user != NULL ? ", Maildir of " : "",
	    user != NULL ? user : "");
	rc = 0;
done:
	buf_free(full);
	free(orcpt);
	buf_free(head);
	buf_free(text);
	free(diag);
	free(br);
	return rc;
}

/*
 * agent_finish - the letter's recipients have their outcomes: log them,
 * then, each step durable before the next: the bounce of the failed
 * ones; a copy of the letter for them in error/ (its state file says
 * why); then either the letter (shrunk to those deferred, with its new
 * state) back in <domain>/, or the claim and the state removed.
 */
static void
agent_finish(struct agent_ctx *ag, struct agent_work *w,
    struct agent_outcome *out)
{
	const struct conf *conf = ag->conf;
	struct agent_letter *l = w->letter;
	struct queuefile_state st;
	char claim[AGENT_PATH_MAX], placed[MAILDIR_NAME_MAX + 8];
	char path[AGENT_PATH_MAX];
	size_t i, n = queuefile_nrcpts(w->qf), nsent = 0, ndefer = 0, nfail = 0;
	long long now = agent_time(), interval;
	int64_t due;
	int dfd, expired, edfd;
	const struct client_reply *last = NULL;
	const char *last_relay = "none";

	expired = now - w->arrival >= conf->delivery_max_lifetime;
	for (i = 0; i < n; i++) {
		if (out[i].kind == AGENT_DEFERRED && expired) {
			out[i].kind = AGENT_FAILED;
			(void)strncat(out[i].reply.text, " (delivery time "
			    "expired)", sizeof(out[i].reply.text)
			    - strlen(out[i].reply.text) - 1);
		}
	}
	if ((dfd = agent_open_domain(ag, l->dom->name)) < 0
	    || agent_claim_name(ag, l->name, claim, sizeof(claim)) < 0) {
		log_warn(w->id, "cannot reach %s/%s", l->dom->name, l->name);
		if (dfd >= 0)
			close(dfd);
		agent_work_free(w);
		agent_letter_wait(ag, l, agent_now_ms()
		    + conf->delivery_retry_first * 1000);
		return;
	}
	for (i = 0; i < n; i++)
		if (out[i].kind == AGENT_FAILED)
			nfail++;
	if (nfail > 0 && agent_bounce(ag, w, out, AGENT_FAILED) < 0) {
		/* No bounce stored: they wait and fail again later. */
		for (i = 0; i < n; i++)
			if (out[i].kind == AGENT_FAILED)
				out[i].kind = AGENT_DEFERRED;
		nfail = 0;
	}
	/*
	 * NOTIFY=SUCCESS to a next hop without DSN: "relayed" (RFC 3461
	 * 4.1). Sent is sent: a report that cannot be stored is logged.
	 */
	if (agent_bounce(ag, w, out, AGENT_SENT) < 0)
		log_warnx(w->id, "no delivery status notification stored");
	for (i = 0; i < n; i++) {
		agent_log_outcome(ag, w, i, &out[i]);
		nsent += out[i].kind == AGENT_SENT;
		if (out[i].kind == AGENT_DEFERRED) {
			ndefer++;
			last = &out[i].reply;
			last_relay = out[i].relay[0] ? out[i].relay : "none";
		}
	}
	if (nfail > 0) {
		memset(&st, 0, sizeof(st));
		st.attempts = w->state.attempts + 1;
		for (i = 0; i < n; i++)
			if (out[i].kind == AGENT_FAILED) {
				(void)snprintf(st.last_error,
				    sizeof(st.last_error), "<%s>: %s",
				    w->rcpts[i], out[i].reply.text);
				break;
			}
		/* error/NAME: the failed recipients, never over another. */
		(void)agent_mkdirat(dfd, "error");
		if ((edfd = openat(dfd, "error", O_RDONLY | O_DIRECTORY
		    | O_CLOEXEC)) >= 0) {
			if (agent_envelope_copy(ag, w, out, AGENT_FAILED, edfd,
			    l->name, 1, placed, sizeof(placed)) == 0) {
				(void)agent_write_state(ag, edfd, placed, &st);
				(void)agent_fsync_dir(ag, edfd, ".");
			} else
				log_warn(w->id, "cannot write %s/error/%s",
				    l->dom->name, l->name);
			close(edfd);
		}
	}
	if (ndefer > 0) {
		memset(&st, 0, sizeof(st));
		st.attempts = w->state.attempts + 1;
		interval = conf->delivery_retry_first;
		for (i = 1; i < (size_t)st.attempts && interval
		    < conf->delivery_retry_max; i++)
			interval *= 2;
		if (interval > conf->delivery_retry_max)
			interval = conf->delivery_retry_max;
		due = agent_now_ms() + interval * 1000;
		st.next_attempt = (due + 999) / 1000;
		if (last != NULL)
			(void)snprintf(st.last_error, sizeof(st.last_error),
			    "%s (relay=%s)", last->text, last_relay);
		(void)agent_write_state(ag, dfd, l->name, &st);
		/*
		 * Shrunk: the new text replaces the claim (so there is never
		 * a second copy to send), then goes back like any claim.
		 */
		if (nsent + nfail > 0 && agent_envelope_copy(ag, w, out,
		    AGENT_DEFERRED, dfd, l->name, 0, placed, sizeof(placed))
		    < 0) {
			if (errno == ESTALE)
				log_warnx(w->id, "the claim of %s/%s was taken "
				    "back by another host meanwhile",
				    l->dom->name, l->name);
			else
				log_warn(w->id, "cannot shrink %s/%s; it is "
				    "kept whole", l->dom->name, l->name);
		}
		(void)claim_give_back(dfd, l->name, ag->host);
		(void)agent_fsync_dir(ag, dfd, ".");
		(void)agent_fsync_dir(ag, dfd, QUEUEFILE_CLAIM_DIR);
		close(dfd);
		agent_work_free(w);
		agent_letter_wait(ag, l, due);
		return;
	}
	/* Made durable with others' by agent_sync_claims(). */
	if (unlinkat(dfd, claim, 0) < 0)
		log_warn(w->id, "cannot remove %s/%s", l->dom->name, claim);
	else {
		l->dom->claims_unsynced = 1;
		if (ag->nunsynced++ == 0)
			ag->unsynced_since = agent_now_ms();
	}
	if (w->has_state && snprintf(path, sizeof(path), "%s/%s",
	    QUEUEFILE_STATE_DIR, l->name) < (int)sizeof(path)
	    && unlinkat(dfd, path, 0) == 0)
		(void)agent_fsync_dir(ag, dfd, QUEUEFILE_STATE_DIR);
	log_info(w->id, "removed");
	close(dfd);
	agent_work_free(w);
	agent_letter_forget(ag, l);
}
