/*
 * NAME
 *	conn - client connections: glue between the event loop and sessions
 * SYNOPSIS
 *	#include "conn.h"
 * DESCRIPTION
 *	conn_server_new() prepares a server that serves the clients of
 *	conf on loop and stores their messages through dl; all three must
 *	outlive it. conn_server_free() closes every listener and client
 *	(without a word to the clients) and releases it (NULL allowed).
 *
 *	conn_server_set_tls() gives the server its TLS context (tls.h;
 *	it must outlive the server): from then on STARTTLS is offered to
 *	new plaintext clients, and server.listen_tls listeners can be
 *	made. NULL (the start) means no TLS.
 *
 *	conn_listen() creates, binds and registers a non-blocking listening
 *	socket for every conf->listen entry, then every conf->listen_tls
 *	entry (IPv6 sockets are IPv6 only, so
 *	"0.0.0.0:25" and "[::]:25" can both be bound). On failure *failed
 *	is the entry's text, every socket made so far is closed, and errno
 *	tells why (ENOTSUP: a listen_tls entry without a TLS context).
 *	conn_listen_fd() is the listener number i (0 .. conf->nlisten - 1,
 *	then the listen_tls ones) after conn_listen(), e.g. to find an
 *	ephemeral port.
 *
 *	Clients are served by the loop from then on: conn reads at most
 *	what the session takes, writes its replies, stores the messages it
 *	hands over (group commit: through deliver_submit(), flushed by an
 *	idle hook of the loop before each poll(); a message is answered only
 *	once its files are durable) and applies command_timeout and
 *	data_timeout. Beyond max_connections, a new client gets
 *	"421 4.7.0" and is closed. When descriptors run out, a client is
 *	accepted on a spare descriptor and closed with "421 4.3.2", or
 *	accepting pauses for a second: the loop never spins on EMFILE.
 *
 *	Beyond max_connections_per_ip clients from one address outside
 *	relay.networks, a new one gets "421 4.7.0" and is closed.
 *
 *	Descriptors: conn_descriptors_wanted() is the open file limit that
 *	conf needs (each client a socket and, in DATA, a spool file; one
 *	commit's files and domain directories; the rest of the process).
 *	conn_budget(), called once everything else is open, splits the
 *	limit the process has: storing keeps room for one whole commit
 *	(at least one message to max_recipients domains), and when what is
 *	left cannot serve max_connections clients, fewer are served (a warning
 *	says so) so that new clients get 421 before a client in session
 *	could fail at its final dot. conn_max_clients() is that number.
 *
 *	conn_shutdown() stops accepting, sends "421 4.3.2" to every client
 *	(best effort, without waiting) and closes them all.
 *	conn_count() is the number of open client connections.
 * DIAGNOSTICS
 *	conn_server_new() returns NULL when out of memory (it registers an
 *	idle hook on loop, removed by conn_server_free()); conn_listen()
 *	returns 0 or -1. conn_budget() returns 0, or -1 with EMFILE when the
 *	limit cannot serve a single client and a commit. Client failures
 *	are logged and end that client only.
 * LIMITS
 *	A closing client is given CONN_LINGER_MS to take its last replies.
 */
#ifndef POLLSMTPD_CONN_H
#define POLLSMTPD_CONN_H

#include <stddef.h>

#define CONN_LINGER_MS		5000
#define CONN_ACCEPT_BATCH	64
#define CONN_ACCEPT_PAUSE_MS	1000

struct conf;
struct deliver;
struct tls;
struct event_loop;
struct conn_server;

struct conn_server *conn_server_new(struct event_loop *loop,
    const struct conf *conf, struct deliver *dl);
void conn_server_free(struct conn_server *srv);
void conn_server_set_tls(struct conn_server *srv, struct tls *tls);
int conn_listen(struct conn_server *srv, const char **failed);
int conn_listen_fd(const struct conn_server *srv, size_t i);
unsigned long conn_descriptors_wanted(const struct conf *conf);
int conn_budget(struct conn_server *srv);
size_t conn_max_clients(const struct conn_server *srv);
void conn_shutdown(struct conn_server *srv);
size_t conn_count(const struct conn_server *srv);

#endif
