/*
 * NAME
 *	conn - client connections: glue between the event loop and sessions
 * SYNOPSIS
 *	See conn.h.
 * DESCRIPTION
 *	Every client is a non-blocking socket in the event loop and a
 *	session engine. conn_drive() is the one place that moves a client
 *	forward: it stores the messages the session hands over, writes what
 *	the session has to say, and then decides what to wait for:
 *	  EVENT_WRITE only while replies wait to be sent;
 *	  EVENT_READ only while the session takes input
 *	    (session_input_room() > 0). The session says 0 while too much
 *	    output waits, so a client that sends commands but never reads
 *	    the replies stops being read: the kernel's buffers fill up and
 *	    TCP flow control holds the client, not our memory.
 *
 *	Storing: a message the session hands over is submitted to deliver
 *	(group commit) and the client waits, taking no input, until the
 *	loop's idle hook, conn_idle(), flushes deliver: every message
 *	whose final dot came in the same loop iteration is synced in one
 *	pass, and each client gets its 250 (or 451/452) only from
 *	conn_stored(), after its files are durable. The hook runs before
 *	every poll(), so no message waits past the iteration it completed
 *	in, and a lone client waits no longer than it did for a
 *	synchronous store.
 *
 *	Deadlines: command_timeout is set at connect and after each read
 *	outside DATA that completed a command (the session replied);
 *	data_timeout is set once when the session enters DATA and covers
 *	the whole message; back to command_timeout after it. When a
 *	deadline passes the session says 421 4.4.2.
 *
 *	Closing: when the session has ended, its last replies are written
 *	(waiting at most CONN_LINGER_MS for a client that does not read),
 *	then the write side is shut and the client's remaining input is
 *	read and dropped until it closes (again at most CONN_LINGER_MS).
 *	Closing a socket that still has unread input makes the kernel send
 *	a reset, and a reset can destroy the reply (221 or 421) that the
 *	client has not read yet; the lingering close avoids that. The
 *	session's disconnect record is logged, and its address's slot of
 *	max_connections_per_ip given back, when the linger starts (its
 *	replies are out, the session is over), not when it ends; the
 *	descriptor still counts until it is closed.
 *
 *	TLS. After the session's STARTTLS action its 220 is sent in
 *	plaintext, then the io becomes TLS and the handshake runs in the
 *	loop like any other wait: the client waits for what OpenSSL asks
 *	for, under command_timeout; a handshake that fails or runs out of
 *	time closes the connection (nothing can be said to a client whose
 *	TLS state is unknown). A client of a server.listen_tls listener
 *	starts with the handshake, and its greeting waits for the end of
 *	it. Bytes OpenSSL has decrypted but the session could not take
 *	yet are read before the loop sleeps again (poll() does not see
 *	them).
 *
 *	All clients share one read buffer: the process has one thread and
 *	the session copies what it takes.
 * DIAGNOSTICS
 *	Connects, disconnects (with the reason), refused clients and
 *	descriptor shortages are logged; session ids are "S" and a counter
 *	in hex.
 * LIMITS
 *	CONN_ACCEPT_BATCH accepts per listener and loop iteration;
 *	conn_read_buf bytes per read.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/resource.h>

#include "conf.h"
#include "conn.h"
#include "deliver.h"
#include "event.h"
#include "io.h"
#include "log.h"
#include "session.h"
#include "spool.h"
#include "tls.h"

#define CONN_ID_SIZE	24
#define CONN_READS_PER_WAKE	4	/* reads of what an io holds, a wake */
#define CONN_STORE_GRACE_MS	100	/* a timeout while storing waits this */
#define CONN_TLS_TEXT_MAX	128	/* "TLSv1.3 with cipher ... (256/256 bits)" */

static const char conn_reply_busy[] =
    "421 4.7.0 Too many connections, try again later\r\n";
static const char conn_reply_nofd[] =
    "421 4.3.2 Out of resources, try again later\r\n";
static const char conn_reply_per_ip[] =
    "421 4.7.0 Too many connections from your address, try again later\r\n";

/* Open connections of one client address (outside relay.networks). */
struct conn_ip {
	struct conn_ip *next;
	unsigned count;
	char addr[INET6_ADDRSTRLEN];
};

struct conn {
	struct conn_server *srv;
	struct conn *prev;
	struct conn *next;
	struct session *session;
	struct io *io;
	struct spool *spool;		/* the text of the message in DATA */
	struct conn_ip *ip;		/* its per-address count, or NULL */
	int fd;				/* io_fd(io), the loop's key */
	int in_data;			/* data_timeout applies */
	int storing;			/* message submitted, conn_stored() due */
	int closing;			/* session ended; last replies being sent */
	int lingering;			/* replies sent, write side shut */
	int summarised;			/* its disconnect record is logged */
	int tls_due;			/* STARTTLS taken: TLS once the 220 is sent */
	int handshaking;		/* the TLS handshake runs */
	char id[CONN_ID_SIZE];
	char addr[INET6_ADDRSTRLEN];
};

struct conn_server {
	struct event_loop *loop;
	const struct conf *conf;
	struct deliver *dl;
	int *listen_fds;		/* listen, then listen_tls; -1 when closed */
	size_t nlisten;			/* both lists */
	size_t nlisten_plain;		/* the first ones, of server.listen */
	struct tls *tls;		/* NULL: no STARTTLS, no implicit TLS */
	struct conn *clients;
	size_t nclients;
	size_t max_clients;		/* max_connections, or less: see conn_budget() */
	struct conn_ip **ips;		/* hash of client addresses */
	size_t nbuckets;
	int spare_fd;			/* given up to accept when out of descriptors */
	unsigned long next_session;
};

/*
 * The one read buffer of all clients: a single thread reads into it
 * and session_input() copies what it keeps before the next read.
 */
static char conn_read_buf[64 * 1024];

static void conn_accept_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static void conn_accept_tls_ready(struct event_loop *loop, int fd,
    int events, void *ctx);
static void conn_accept(struct conn_server *srv, int lfd, int events,
    int implicit_tls);
static void conn_start_tls(struct conn *c);
static void conn_handshake(struct conn *c);
static void conn_accept_pause(struct conn_server *srv, int lfd);
static void conn_out_of_fds(struct conn_server *srv, int lfd);
static void conn_turn_away(int fd, const char *reply, size_t len);
static void conn_new_client(struct conn_server *srv, int fd,
    const struct sockaddr_storage *ss, int implicit_tls);
static void conn_client_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static int conn_read(struct conn *c);
static int conn_flush(struct conn *c);
static void conn_drive(struct conn *c);
static void conn_linger(struct conn *c, int events);
static void conn_log_disconnect(struct conn *c, const char *reason);
static void conn_close(struct conn *c, const char *reason);
static void conn_format_addr(const struct sockaddr *sa, char *dst,
    size_t dstlen);
static void conn_close_listeners(struct conn_server *srv);
static void conn_idle(struct event_loop *loop, void *ctx);
static void conn_stored(void *ctx, enum session_store_result result,
    const char *id);
static void conn_store(struct conn *c);
static int conn_text_open(void *ctx);
static int conn_text_write(void *ctx, const char *text, size_t len);
static void conn_text_close(void *ctx);
static struct conn_ip **conn_ip_slot(struct conn_server *srv,
    const char *addr);
static struct conn_ip *conn_ip_take(struct conn_server *srv,
    const char *addr);
static void conn_ip_release(struct conn_server *srv, struct conn_ip *ip);
static long conn_open_descriptors(void);

static const struct session_sink conn_sink = {
	conn_text_open, conn_text_write, conn_text_close,
};

struct conn_server *
conn_server_new(struct event_loop *loop, const struct conf *conf,
    struct deliver *dl)
{
	struct conn_server *srv;
	size_t i, n = conf->nlisten + conf->nlisten_tls;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return NULL;
	if ((srv->listen_fds = calloc(n ? n : 1, sizeof(int))) == NULL) {
		free(srv);
		return NULL;
	}
	for (i = 0; i < n; i++)
		srv->listen_fds[i] = -1;
	srv->nlisten = n;
	srv->nlisten_plain = conf->nlisten;
	srv->loop = loop;
	srv->conf = conf;
	srv->dl = dl;
	srv->spare_fd = -1;
	srv->max_clients = conf->max_connections > 0
	    ? (size_t)conf->max_connections : 0;
	/* About one bucket per client slot, a power of two. */
	for (srv->nbuckets = 64; srv->nbuckets < srv->max_clients
	    && srv->nbuckets < 65536; srv->nbuckets *= 2)
		;
	if ((srv->ips = calloc(srv->nbuckets, sizeof(*srv->ips))) == NULL
	    || event_add_idle(loop, conn_idle, srv) < 0) {
		free(srv->ips);
		free(srv->listen_fds);
		free(srv);
		return NULL;
	}
	return srv;
}

void
conn_server_set_tls(struct conn_server *srv, struct tls *tls)
{
	srv->tls = tls;
}

void
conn_server_free(struct conn_server *srv)
{
	if (srv == NULL)
		return;
	event_del_idle(srv->loop, conn_idle, srv);
	conn_close_listeners(srv);
	while (srv->clients != NULL)
		conn_close(srv->clients, "server stopped");
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	free(srv->ips);
	free(srv->listen_fds);
	free(srv);
}

/*
 * Descriptors. Each client holds its socket and, while in DATA, its
 * spool file; a commit holds up to max_files tmp files and as many
 * domain directories, plus the directory cache. CONN_FD_FIXED covers
 * what else the process has open (listeners, logger queue and pipe,
 * the Maildir's kept directories are counted when the plan is made).
 */
#define CONN_FD_PER_CLIENT	2
#define CONN_FD_PER_FILE	2
#define CONN_FD_DIR_CACHE	16
#define CONN_FD_SLACK		32

static size_t
conn_store_files(const struct conf *conf)
{
	size_t files = DELIVER_BATCH_FILES;

	if (conf->max_recipients > 0 && (size_t)conf->max_recipients > files)
		files = (size_t)conf->max_recipients;
	return files;
}

unsigned long
conn_descriptors_wanted(const struct conf *conf)
{
	return (unsigned long)conf->max_connections * CONN_FD_PER_CLIENT
	    + conn_store_files(conf) * CONN_FD_PER_FILE + CONN_FD_DIR_CACHE
	    + conf->nlisten + conf->nlisten_tls + conf->nusers * 2
	    + CONN_FD_SLACK * 2;
}

/* conn_open_descriptors - how many descriptors the process has open */
static long
conn_open_descriptors(void)
{
	struct dirent *de;
	DIR *dir;
	long n = 0;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	(void)closedir(dir);
	return n - 1;		/* the directory's own descriptor */
}

/*
 * conn_budget - split what the descriptor limit leaves between clients
 * and storing, so that a client already in session never fails at its
 * final dot for want of a descriptor: storing keeps room for one full
 * commit (or one message to max_recipients remote domains, whichever
 * is more), and clients past what is left get 421 at connect.
 */
int
conn_budget(struct conn_server *srv)
{
	const struct conf *conf = srv->conf;
	struct rlimit rl;
	size_t files = conn_store_files(conf), min_files, clients, avail;
	long open_now = conn_open_descriptors();

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (open_now < 0)
		open_now = (long)(conf->nlisten + conf->nusers * 2) + 16;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur
	    <= (rlim_t)open_now + CONN_FD_SLACK + CONN_FD_DIR_CACHE) {
		errno = EMFILE;
		return -1;
	}
	avail = rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX / 4
	    : (size_t)rl.rlim_cur - (size_t)open_now - CONN_FD_SLACK;
	if (avail >= files * CONN_FD_PER_FILE + CONN_FD_DIR_CACHE
	    + srv->max_clients * CONN_FD_PER_CLIENT) {
		deliver_set_max_files(srv->dl, files);
		return 0;
	}
	/* Short: storing gets at most half, but never less than one message. */
	min_files = conf->max_recipients > 0 ? (size_t)conf->max_recipients : 1;
	files = avail / 2 > CONN_FD_DIR_CACHE
	    ? (avail / 2 - CONN_FD_DIR_CACHE) / CONN_FD_PER_FILE : 0;
	if (files > conn_store_files(conf))
		files = conn_store_files(conf);
	if (files < min_files)
		files = min_files;
	if (avail <= files * CONN_FD_PER_FILE + CONN_FD_DIR_CACHE) {
		errno = EMFILE;
		return -1;
	}
	clients = (avail - files * CONN_FD_PER_FILE - CONN_FD_DIR_CACHE)
	    / CONN_FD_PER_CLIENT;
	if (clients == 0) {
		errno = EMFILE;
		return -1;
	}
	if (clients < srv->max_clients) {
		log_warnx("-", "open file limit %lu serves %zu clients, not the "
		    "%zu of max_connections (raise the limit: each client may "
		    "take %d descriptors, storing keeps %zu)",
		    (unsigned long)rl.rlim_cur, clients, srv->max_clients,
		    CONN_FD_PER_CLIENT, files * CONN_FD_PER_FILE
		    + CONN_FD_DIR_CACHE);
		srv->max_clients = clients;
	}
	deliver_set_max_files(srv->dl, files);
	return 0;
}

size_t
conn_max_clients(const struct conn_server *srv)
{
	return srv->max_clients;
}

/*
 * Per-address counts: a chained hash of the text addresses of the
 * clients outside relay.networks (they are exempt, as Postfix exempts
 * $mynetworks), so that the check at accept costs O(1).
 */
static struct conn_ip **
conn_ip_slot(struct conn_server *srv, const char *addr)
{
	struct conn_ip **slot;
	unsigned long h = 5381;
	const char *p;

	for (p = addr; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	for (slot = &srv->ips[h & (srv->nbuckets - 1)]; *slot != NULL;
	    slot = &(*slot)->next)
		if (strcmp((*slot)->addr, addr) == 0)
			break;
	return slot;
}

/* conn_ip_take - one more client from addr: its entry, or NULL (full or ENOMEM) */
static struct conn_ip *
conn_ip_take(struct conn_server *srv, const char *addr)
{
	struct conn_ip **slot = conn_ip_slot(srv, addr);
	struct conn_ip *ip = *slot;

	if (ip == NULL) {
		if ((ip = calloc(1, sizeof(*ip))) == NULL)
			return NULL;
		snprintf(ip->addr, sizeof(ip->addr), "%s", addr);
		*slot = ip;
	} else if (srv->conf->max_connections_per_ip > 0 && ip->count
	    >= (unsigned long)srv->conf->max_connections_per_ip) {
		errno = EUSERS;
		return NULL;
	}
	ip->count++;
	return ip;
}

static void
conn_ip_release(struct conn_server *srv, struct conn_ip *ip)
{
	struct conn_ip **slot;

	if (ip == NULL || --ip->count > 0)
		return;
	slot = conn_ip_slot(srv, ip->addr);
	*slot = ip->next;
	free(ip);
}

size_t
conn_count(const struct conn_server *srv)
{
	return srv->nclients;
}

int
conn_listen_fd(const struct conn_server *srv, size_t i)
{
	return i < srv->nlisten ? srv->listen_fds[i] : -1;
}

/* conn_format_addr - numeric text of a socket address: "1.2.3.4" or "::1" */
static void
conn_format_addr(const struct sockaddr *sa, char *dst, size_t dstlen)
{
	const void *raw = NULL;

	if (sa->sa_family == AF_INET)
		raw = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		raw = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (raw == NULL || inet_ntop(sa->sa_family, raw, dst, dstlen) == NULL)
		snprintf(dst, dstlen, "unknown");
}

/*
 * conn_host_has_ipv6 - whether the host has any IPv6 address at all
 * (/proc/net/if_inet6 lists them, one a line; a kernel without IPv6
 * has no such file, a network namespace or container with IPv6 turned
 * off an empty one)
 */
static int
conn_host_has_ipv6(void)
{
	FILE *f;
	int c;

	if ((f = fopen("/proc/net/if_inet6", "re")) == NULL)
		return errno != ENOENT;
	c = getc(f);
	(void)fclose(f);
	return c != EOF;
}

/*
 * conn_listen - one listening socket per configured address
 *
 * SO_REUSEADDR lets a restarted daemon bind while old connections are
 * in TIME_WAIT; IPV6_V6ONLY keeps "[::]" from taking the IPv4 port
 * that "0.0.0.0" wants.
 *
 * An IPv6 listener on a host without IPv6 (no IPv6 in the kernel, or
 * none configured: a container with it turned off) is left out with a
 * warning, as Postfix's inet_protocols = all does, so that the
 * packaged [ "127.0.0.1:25", "[::1]:25" ] starts there; any other
 * failure, or no listener left, stops the start.
 */
int
conn_listen(struct conn_server *srv, const char **failed)
{
	const struct conf_listen *l;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char addr[INET6_ADDRSTRLEN];
	int fd = -1, on = 1, saved, r;
	size_t i, nopen = 0;

	for (i = 0; i < srv->nlisten; i++) {
		int implicit_tls = i >= srv->nlisten_plain;

		l = implicit_tls ? &srv->conf->listen_tls[i - srv->nlisten_plain]
		    : &srv->conf->listen[i];
		*failed = l->text;
		if (implicit_tls && srv->tls == NULL) {
			errno = ENOTSUP;	/* conf and main see to it */
			goto fail;
		}
		fd = socket(l->addr.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 && errno == EAFNOSUPPORT
		    && l->addr.ss_family == AF_INET6) {
			log_warnx("-", "not listening on %s: this host has "
			    "no IPv6", l->text);
			continue;
		}
		if (fd < 0)
			goto fail;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)) < 0)
			goto fail;
		if (l->addr.ss_family == AF_INET6 && setsockopt(fd,
		    IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
			goto fail;
		r = bind(fd, (const struct sockaddr *)&l->addr, l->addrlen);
		if (r < 0 && errno == EADDRNOTAVAIL
		    && l->addr.ss_family == AF_INET6 && !conn_host_has_ipv6()) {
			log_warnx("-", "not listening on %s: this host has "
			    "no IPv6 address", l->text);
			(void)close(fd);
			fd = -1;
			continue;
		}
		if (r < 0 || listen(fd, SOMAXCONN) < 0)
			goto fail;
		if (event_add(srv->loop, fd, EVENT_READ, implicit_tls
		    ? conn_accept_tls_ready : conn_accept_ready, srv) < 0)
			goto fail;
		srv->listen_fds[i] = fd;
		fd = -1;
		nopen++;

		/* The port actually bound, for ":0" in tests. */
		sslen = sizeof(ss);
		if (getsockname(srv->listen_fds[i], (struct sockaddr *)&ss,
		    &sslen) == 0) {
			conn_format_addr((struct sockaddr *)&ss, addr,
			    sizeof(addr));
			log_info("-", ss.ss_family == AF_INET6
			    ? "listening on [%s]:%u%s" : "listening on %s:%u%s",
			    addr, ntohs(ss.ss_family == AF_INET6
			    ? ((struct sockaddr_in6 *)&ss)->sin6_port
			    : ((struct sockaddr_in *)&ss)->sin_port),
			    implicit_tls ? " (TLS)" : "");
		}
	}

	if (nopen == 0 && srv->nlisten > 0) {
		/* Every listener was an IPv6 one on a host without IPv6. */
		errno = EADDRNOTAVAIL;
		goto fail;
	}

	/*
	 * The spare descriptor is what lets us answer and close a client
	 * when every other descriptor is taken (see conn_out_of_fds()).
	 */
	if (srv->spare_fd < 0)
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	*failed = NULL;
	return 0;

fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	conn_close_listeners(srv);
	errno = saved;
	return -1;
}

static void
conn_close_listeners(struct conn_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisten; i++) {
		if (srv->listen_fds[i] < 0)
			continue;
		event_del(srv->loop, srv->listen_fds[i]);
		close(srv->listen_fds[i]);
		srv->listen_fds[i] = -1;
	}
}

/* conn_turn_away - best-effort one-line reply to a client we do not serve */
static void
conn_turn_away(int fd, const char *reply, size_t len)
{
	ssize_t n;

	char junk[512];
	int i;

	/* The socket is new and its buffer empty: one line always fits. */
	n = send(fd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	/*
	 * Closing a socket with unread input sends a reset, which may throw
	 * the 421 away before the client reads it: take what already came
	 * (a client that did not wait for the greeting), without waiting.
	 */
	(void)shutdown(fd, SHUT_WR);
	for (i = 0; i < 8 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/* conn_accept_pause - stop accepting on lfd for CONN_ACCEPT_PAUSE_MS */
static void
conn_accept_pause(struct conn_server *srv, int lfd)
{
	event_set(srv->loop, lfd, 0);
	event_deadline(srv->loop, lfd, CONN_ACCEPT_PAUSE_MS);
}

/*
 * conn_out_of_fds - accept() failed with EMFILE or ENFILE
 *
 * The pending client stays in the listen queue, so the listener stays
 * readable and poll() would return at once, forever. Take one client
 * out of the queue on the spare descriptor, tell it to come back later
 * and close it; when even the spare cannot be had again, stop
 * listening for a while.
 */
static void
conn_out_of_fds(struct conn_server *srv, int lfd)
{
	int fd;

	if (srv->spare_fd >= 0) {
		close(srv->spare_fd);
		srv->spare_fd = -1;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_turn_away(fd, conn_reply_nofd,
			    sizeof(conn_reply_nofd) - 1);
			log_warnx("-", "out of descriptors: client turned away");
		}
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (srv->spare_fd >= 0)
			return;
	}
	log_warnx("-", "out of descriptors: not accepting for %d ms",
	    CONN_ACCEPT_PAUSE_MS);
	conn_accept_pause(srv, lfd);
}

static void
conn_accept_ready(struct event_loop *loop, int lfd, int events, void *ctx)
{
	(void)loop;
	conn_accept(ctx, lfd, events, 0);
}

static void
conn_accept_tls_ready(struct event_loop *loop, int lfd, int events,
    void *ctx)
{
	(void)loop;
	conn_accept(ctx, lfd, events, 1);
}

/*
 * conn_accept - a listener is readable (or its pause ended):
 * accept up to CONN_ACCEPT_BATCH clients, so that a flood of connects
 * cannot starve the clients already served.
 */
static void
conn_accept(struct conn_server *srv, int lfd, int events, int implicit_tls)
{
	struct event_loop *loop = srv->loop;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char addr[INET6_ADDRSTRLEN];
	int fd, k;

	if (events & EVENT_TIMEOUT) {
		if (srv->spare_fd < 0)
			srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		event_set(loop, lfd, EVENT_READ);
		log_info("-", "accepting again");
	}
	if (!(events & (EVENT_READ | EVENT_ERROR)))
		return;

	for (k = 0; k < CONN_ACCEPT_BATCH; k++) {
		sslen = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:	/* a firewall rule refused it */
				continue;
			case EMFILE:
			case ENFILE:
				conn_out_of_fds(srv, lfd);
				return;
			default:	/* ENOBUFS, ENOMEM, ...: let it recover */
				log_warn("-", "accept");
				conn_accept_pause(srv, lfd);
				return;
			}
		}
		if (srv->nclients >= srv->max_clients) {
			conn_format_addr((struct sockaddr *)&ss, addr,
			    sizeof(addr));
			log_info("-", "refused [%s]: %zu connections",
			    addr, srv->max_clients);
			conn_turn_away(fd, conn_reply_busy,
			    sizeof(conn_reply_busy) - 1);
			continue;
		}
		conn_new_client(srv, fd, &ss, implicit_tls);
	}
}

static void
conn_new_client(struct conn_server *srv, int fd,
    const struct sockaddr_storage *ss, int implicit_tls)
{
	const struct sockaddr *sa = (const struct sockaddr *)ss;
	struct conn *c;
	int relay;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->srv = srv;
	c->fd = fd;
	conn_format_addr(sa, c->addr, sizeof(c->addr));
	relay = conf_relay_allowed(srv->conf, sa);
	if (!relay && (c->ip = conn_ip_take(srv, c->addr)) == NULL) {
		if (errno == EUSERS) {
			log_info("-", "refused [%s]: %ld connections from it",
			    c->addr, srv->conf->max_connections_per_ip);
			conn_turn_away(fd, conn_reply_per_ip,
			    sizeof(conn_reply_per_ip) - 1);
			free(c);
			return;
		}
		goto fail;
	}
	if ((c->io = io_new(fd)) == NULL) {
		fd = -1;	/* io_new() closed it */
		goto fail;
	}
	srv->next_session++;
	if (snprintf(c->id, sizeof(c->id), "S%lX", srv->next_session)
	    >= (int)sizeof(c->id))
		log_panic(__func__, "session id does not fit");
	if ((c->session = session_new(srv->conf, c->addr, relay, c->id,
	    &conn_sink, c)) == NULL)
		goto fail;
	if (implicit_tls) {
		if (io_start_tls(c->io, srv->tls) < 0)
			goto fail;
		c->handshaking = 1;
	} else if (srv->tls != NULL) {
		session_tls_offer(c->session);
	}
	if (event_add(srv->loop, fd, 0, conn_client_ready, c) < 0)
		goto fail;

	c->next = srv->clients;
	if (srv->clients != NULL)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nclients++;
	log_info(c->id, "connect from [%s]%s%s", c->addr,
	    relay ? " (relay allowed)" : "", implicit_tls ? " (TLS)" : "");
	event_deadline(srv->loop, fd, srv->conf->command_timeout * 1000);
	if (c->handshaking)
		conn_handshake(c);
	else
		conn_drive(c);
	return;

fail:
	log_warn("-", "cannot serve a new client");
	if (c != NULL) {
		session_free(c->session);
		conn_ip_release(srv, c->ip);
		if (c->io != NULL)
			fd = -1;
		io_free(c->io);
	}
	free(c);
	if (fd >= 0)
		close(fd);
}

/*
 * conn_client_ready - the loop's callback for one client
 *
 * Reading comes before the error check: a client may have sent its
 * last commands and closed, and those deserve an answer.
 */
static void
conn_client_ready(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct conn *c = ctx;

	if (c->lingering) {
		conn_linger(c, events);
		return;
	}
	if (c->handshaking) {
		if (events & EVENT_TIMEOUT)
			conn_close(c, "TLS handshake timed out");
		else
			conn_handshake(c);
		return;
	}
	if (events & EVENT_TIMEOUT) {
		if (c->closing) {
			conn_close(c, "client did not take its last replies");
			return;
		}
		if (c->storing) {
			/*
			 * Its message is in the group commit, which the next
			 * loop iteration finishes (and then the session may
			 * go): the deadline waits that long, so the message
			 * is never freed under the commit.
			 */
			event_deadline(loop, fd, CONN_STORE_GRACE_MS);
			return;
		}
		log_info(c->id, "timeout %s", c->in_data ? "in DATA"
		    : "waiting for a command");
		session_timeout(c->session);
		conn_drive(c);
		return;
	}
	/* With TLS, a read may wait for the socket to take bytes. */
	if (events & io_events(c->io, EVENT_READ)) {
		if (conn_read(c) < 0)
			return;
	} else if ((events & EVENT_ERROR) && !(events & EVENT_WRITE)) {
		conn_close(c, c->in_data ? "connection lost in DATA"
		    : "connection lost");
		return;
	}
	conn_drive(c);
}

/*
 * conn_read - read what the session takes now, and what the io holds
 * beyond the socket (poll() cannot see that). Returns 0, or -1 when the
 * client is gone (and closed).
 */
static int
conn_read(struct conn *c)
{
	const struct conf *conf = c->srv->conf;
	size_t room, before, after;
	ssize_t n;
	int k;

	for (k = 0; k < CONN_READS_PER_WAKE; k++) {
		if ((room = session_input_room(c->session)) == 0)
			return 0;
		if (room > sizeof(conn_read_buf))
			room = sizeof(conn_read_buf);
		n = io_read(c->io, conn_read_buf, room);
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			log_info(c->id, "read error: %s", strerror(errno));
			conn_close(c, c->in_data ? "connection lost in DATA"
			    : "connection lost");
			return -1;
		}
		if (n == 0) {
			conn_close(c, c->in_data ? "connection lost in DATA"
			    : "client closed the connection");
			return -1;
		}
		(void)session_output(c->session, &before);
		if (session_input(c->session, conn_read_buf, (size_t)n) < 0)
			log_panic(__func__, "session refused %zd bytes of %zu "
			    "allowed", n, room);
		(void)session_output(c->session, &after);
		/*
		 * Every complete command gets a reply, so new output means
		 * one was run: only then does command_timeout start again. A
		 * client that drips a byte at a time never completes one and
		 * is cut when it runs out, as an idle one is.
		 */
		if (after > before && !c->in_data
		    && !session_in_data(c->session))
			event_deadline(c->srv->loop, c->fd,
			    conf->command_timeout * 1000);
		if (io_pending(c->io) == 0)
			return 0;
	}
	return 0;
}

/*
 * conn_flush - send the replies that wait. Returns 0 (all sent, or the
 * socket is full), or -1 when the client is gone. Each accepted byte
 * is dropped from the session at once, which may let it run commands
 * it kept and make more replies: the loop goes on while the socket
 * takes them.
 */
static int
conn_flush(struct conn *c)
{
	const char *out;
	size_t len;
	ssize_t n;

	while ((out = session_output(c->session, &len)) != NULL && len > 0) {
		if ((n = io_write(c->io, out, len)) < 0)
			return errno == EAGAIN ? 0 : -1;
		session_output_drop(c->session, (size_t)n);
	}
	return 0;
}

/*
 * conn_store - the session's message is complete: its text is made
 * whole on disk and the message submitted to the group commit; the
 * reply comes from conn_stored(). A text that could not be written
 * whole is answered at once.
 */
static void
conn_store(struct conn *c)
{
	const struct session_message *msg = session_pending(c->session);
	int err;

	if (msg == NULL)
		log_panic(__func__, "store asked for without a message");
	if (c->spool == NULL || spool_finish(c->spool) < 0) {
		err = c->spool == NULL ? EIO : errno;
		errno = err;
		log_warn(c->id, "cannot keep message text");
		session_stored(c->session, err == ENOSPC || err == EDQUOT
		    ? SESSION_STORE_NOSPACE : SESSION_STORE_TEMPFAIL, NULL);
		return;
	}
	if ((spool_text(c->spool) != NULL
	    ? deliver_submit_text(c->srv->dl, c->id, msg,
	    spool_text(c->spool), conn_stored, c)
	    : deliver_submit(c->srv->dl, c->id, msg, spool_fd(c->spool),
	    conn_stored, c)) < 0) {
		log_warn(c->id, "cannot queue a message for storing");
		session_stored(c->session, SESSION_STORE_TEMPFAIL, NULL);
		return;
	}
	c->storing = 1;
}

/*
 * conn_drive - act, reply, then choose what to wait for
 *
 * The session's actions are taken in the order it asked for them. A
 * message is only submitted here; its reply comes from conn_stored()
 * after the group commit. Sending replies can let the session take up
 * input it kept, which may complete another message, hence the loop.
 */
static void
conn_drive(struct conn *c)
{
	struct event_loop *loop = c->srv->loop;
	const struct conf *conf = c->srv->conf;
	enum session_action a;
	size_t outlen;
	int in_data, events;

	for (;;) {
		while (!c->storing
		    && (a = session_action(c->session)) != SESSION_ACTION_NONE) {
			session_action_taken(c->session);
			if (a == SESSION_ACTION_STORE) {
				conn_store(c);
			} else if (a == SESSION_ACTION_STARTTLS) {
				c->tls_due = 1;
			} else if (!c->closing) {
				c->closing = 1;
				event_deadline(loop, c->fd, CONN_LINGER_MS);
			}
		}
		if (conn_flush(c) < 0) {
			conn_close(c, c->in_data ? "connection lost in DATA"
			    : "connection lost");
			return;
		}
		/* Replies sent may have let the session ask for more. */
		if (c->storing
		    || session_action(c->session) == SESSION_ACTION_NONE)
			break;
	}

	(void)session_output(c->session, &outlen);
	if (c->tls_due && outlen == 0 && !c->closing) {
		/* The 220 is out: from the next byte on, TLS. */
		conn_start_tls(c);
		return;
	}

	in_data = session_in_data(c->session);
	if (!c->closing) {
		if (in_data && !c->in_data)
			event_deadline(loop, c->fd, conf->data_timeout * 1000);
		else if (!in_data && c->in_data)
			event_deadline(loop, c->fd,
			    conf->command_timeout * 1000);
	}
	c->in_data = in_data;

	(void)session_output(c->session, &outlen);
	if (c->closing) {
		if (outlen == 0) {
			/*
			 * Replies sent: shut our side, wait for the client's.
			 * The session is over: its record is logged now, not
			 * when a slow client lets the linger end.
			 */
			(void)io_shutdown(c->io);
			c->lingering = 1;
			conn_log_disconnect(c, "closed");
			/* Its address may connect again, as the record says. */
			conn_ip_release(c->srv, c->ip);
			c->ip = NULL;
			event_set(loop, c->fd, io_events(c->io, EVENT_READ));
			event_deadline(loop, c->fd, CONN_LINGER_MS);
			return;
		}
		event_set(loop, c->fd, io_events(c->io, EVENT_WRITE));
		return;
	}

	events = 0;
	if (outlen > 0)
		events |= EVENT_WRITE;
	if (session_input_room(c->session) > 0)
		events |= EVENT_READ;
	event_set(loop, c->fd, io_events(c->io, events));

	/*
	 * Decrypted bytes that the session had no room for when they came
	 * wait in OpenSSL, where poll() cannot see them: read them now
	 * that it has room. Each read takes some, so this ends.
	 */
	if ((events & EVENT_READ) && io_pending(c->io) > 0) {
		if (conn_read(c) < 0)
			return;
		conn_drive(c);
	}
}

/* conn_start_tls - the STARTTLS reply is sent: the handshake begins */
static void
conn_start_tls(struct conn *c)
{
	c->tls_due = 0;
	if (c->srv->tls == NULL || io_start_tls(c->io, c->srv->tls) < 0) {
		log_warn(c->id, "cannot start TLS");
		conn_close(c, "TLS not available");
		return;
	}
	c->handshaking = 1;
	event_deadline(c->srv->loop, c->fd,
	    c->srv->conf->command_timeout * 1000);
	conn_handshake(c);
}

/*
 * conn_handshake - move the TLS handshake on; when it is done the
 * session hears of it (and starts over, or greets), and the client is
 * driven as before.
 */
static void
conn_handshake(struct conn *c)
{
	char text[CONN_TLS_TEXT_MAX];
	const char *why;

	if (io_handshake(c->io) < 0) {
		if (errno == EAGAIN) {
			event_set(c->srv->loop, c->fd, io_events(c->io, 0));
			return;
		}
		why = io_tls_error(c->io);
		log_info(c->id, "TLS handshake failed: %s", why != NULL ? why
		    : strerror(errno));
		conn_close(c, "TLS handshake failed");
		return;
	}
	c->handshaking = 0;
	if (io_tls_describe(c->io, text, sizeof(text)) < 0)
		snprintf(text, sizeof(text), "TLS");
	if (session_tls_started(c->session, text) < 0) {
		log_warnx(c->id, "session cannot start TLS");
		conn_close(c, "TLS not available");
		return;
	}
	event_deadline(c->srv->loop, c->fd,
	    c->srv->conf->command_timeout * 1000);
	conn_drive(c);
}

/*
 * conn_stored - deliver's answer for the message this client submitted:
 * its files are durable (or gone); now the session may say so.
 */
static void
conn_stored(void *ctx, enum session_store_result result, const char *id)
{
	struct conn *c = ctx;

	c->storing = 0;
	session_stored(c->session, result, id);
	conn_drive(c);
}

/*
 * conn_idle - before each poll(): commit what this iteration collected.
 * Messages that the answered clients submitted meanwhile wait for the
 * next iteration, which must then come without sleeping.
 */
static void
conn_idle(struct event_loop *loop, void *ctx)
{
	struct conn_server *srv = ctx;

	if (deliver_pending(srv->dl) > 0 && deliver_flush(srv->dl) > 0)
		event_loop_again(loop);
}

/*
 * The session's sink: the text of a message goes to a spool, which
 * opens its file only when the text outgrows its window.
 */
static int
conn_spool_file(void *ctx)
{
	struct conn *c = ctx;

	return deliver_spool_open(c->srv->dl);
}

static int
conn_text_open(void *ctx)
{
	struct conn *c = ctx;

	if (c->spool != NULL)
		log_panic(__func__, "a second message text at once");
	if ((c->spool = spool_new_lazy(conn_spool_file, c)) == NULL)
		return -1;
	return 0;
}

static int
conn_text_write(void *ctx, const char *text, size_t len)
{
	struct conn *c = ctx;

	return spool_write(c->spool, text, len);
}

static void
conn_text_close(void *ctx)
{
	struct conn *c = ctx;

	spool_free(c->spool);
	c->spool = NULL;
}

/* conn_linger - drop what a finished client still sends, until it closes */
static void
conn_linger(struct conn *c, int events)
{
	ssize_t n;
	int k;

	if (events & EVENT_TIMEOUT) {
		conn_close(c, "closed");
		return;
	}
	for (k = 0; k < 4; k++) {
		n = io_read(c->io, conn_read_buf, sizeof(conn_read_buf));
		if (n > 0)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		conn_close(c, "closed");
		return;
	}
}

/* conn_log_disconnect - the session's one disconnect record */
static void
conn_log_disconnect(struct conn *c, const char *reason)
{
	char summary[SESSION_SUMMARY_SIZE];

	if (c->summarised)
		return;
	c->summarised = 1;
	if (session_summary(c->session, summary, sizeof(summary)) < 0)
		snprintf(summary, sizeof(summary), "-");
	log_info(c->id, "disconnect from [%s] %s (%s)", c->addr, summary,
	    reason);
}

static void
conn_close(struct conn *c, const char *reason)
{
	struct conn_server *srv = c->srv;

	conn_log_disconnect(c, reason);
	/* Its message, if one waits, was never answered: it is dropped. */
	if (c->storing)
		deliver_cancel(srv->dl, c);
	event_del(srv->loop, c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nclients--;
	/* The session closes its text (the spool) as it goes. */
	session_free(c->session);
	spool_free(c->spool);
	io_free(c->io);
	conn_ip_release(srv, c->ip);
	free(c);
}

/*
 * conn_shutdown - the daemon stops: no new clients, 421 4.3.2 to each
 * open session and close. Messages already received whole are stored
 * (and answered) first, so none is left half-done; a message still
 * being received is dropped with its session.
 */
void
conn_shutdown(struct conn_server *srv)
{
	struct conn *c;

	conn_close_listeners(srv);
	/*
	 * Every message received whole is stored and answered, also those
	 * that answered clients took up from their input meanwhile (the
	 * input is finite: nothing is read here).
	 */
	while (deliver_flush(srv->dl) > 0)
		;
	while ((c = srv->clients) != NULL) {
		if (!c->lingering && !c->handshaking) {
			if (!session_closing(c->session))
				session_shutdown(c->session);
			(void)conn_flush(c);
		}
		conn_close(c, "shutdown");
	}
}
