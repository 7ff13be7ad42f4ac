/*
 * NAME
 *	check_conn - Check suite of the client connections (conn)
 * SYNOPSIS
 *	tests/check_conn
 * DESCRIPTION
 *	A real server: a configuration loaded from a file written for the
 *	test (listen on 127.0.0.1, a free port; a Maildir root in a temporary
 *	directory), the event loop, deliver and conn_server, run in a child
 *	process; the test is the client, over real sockets with timeouts.
 *	What a client sees is asserted: the replies, and in the server's
 *	/proc/PID/fd and the tree what must not be left.
 *
 *	  the descriptor budget: with an ample limit every max_connections
 *	    client is served; with 400 (and max_connections 200) fewer are,
 *	    and the 421 comes at connect; with a limit too small for one
 *	    client and one commit, conn_budget() says EMFILE;
 *	  max_connections_per_ip: the next client from that address gets
 *	    421 4.7.0, another address and relay clients are served;
 *	  a client gone in the middle of DATA leaves no spool descriptor and
 *	    no file;
 *	  a client pipelining after a refused DATA gets 554 5.5.0 and the
 *	    connection closes.
 * DIAGNOSTICS
 *	Exit status 0 when every test passed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "deliver.h"
#include "event.h"
#include "log.h"
#include "maildir.h"

#define IO_TIMEOUT_MS	10000

struct server {
	char dir[64];
	char root[128];
	struct conf *conf;
	struct maildir *md;
	struct deliver *dl;
	struct event_loop *loop;
	struct conn_server *srv;
	int port;
	pid_t pid;		/* the child running the loop */
};

static void quiet(enum log_level level, const char *record, size_t len,
    void *ctx);
static void report(const char *message, void *ctx);
static void server_setup(struct server *sv, const char *extra);
static void server_run(struct server *sv);
static void server_stop(struct server *sv);
static int client_connect(int port, const char *source);
static void client_send(int fd, const char *text);
static char *client_reply(int fd);
static int client_closed(int fd);
static int spool_fds(pid_t pid);
static int tree_files(const char *dir);

static void
quiet(enum log_level level, const char *record, size_t len, void *ctx)
{
	(void)level;
	(void)record;
	(void)len;
	(void)ctx;
}

static void
report(const char *message, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "conf: %s\n", message);
}

/* server_setup - configuration, tree, loop and listener (not running yet) */
static void
server_setup(struct server *sv, const char *extra)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	const char *failed;
	char conf_path[192];
	FILE *f;
	int probe;

	/* A port that was free a moment ago (the configuration wants one). */
	ck_assert_int_ge(probe = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(probe, (struct sockaddr *)&sin, &len), 0);
	close(probe);

	memset(sv, 0, sizeof(*sv));
	snprintf(sv->dir, sizeof(sv->dir), "/tmp/check_conn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sv->dir));
	snprintf(sv->root, sizeof(sv->root), "%s/root", sv->dir);
	snprintf(conf_path, sizeof(conf_path), "%s/test.conf", sv->dir);
	ck_assert_ptr_nonnull(f = fopen(conf_path, "w"));
	fprintf(f, "hostname = \"mx.test.example\";\n"
	    "application = { maildir = { path = \"%s\"; fsync = false; }; };\n"
	    "server = { listen = [ \"127.0.0.1:%d\" ]; %s };\n"
	    "local = { domains = [ \"example.org\" ]; users = [ \"alice\" ];"
	    " postmaster = \"alice\"; };\n"
	    "relay = { networks = [ \"127.0.0.1/32\" ]; };\n",
	    sv->root, ntohs(sin.sin_port), extra);
	ck_assert_int_eq(fclose(f), 0);
	log_set_sink(quiet, NULL);
	ck_assert_ptr_nonnull(sv->conf = conf_load(conf_path, report, NULL));
	ck_assert_ptr_nonnull(sv->md = maildir_open(sv->root, "mx.test.example",
	    0));
	ck_assert_int_eq(maildir_add_user(sv->md, "alice"), 0);
	ck_assert_ptr_nonnull(sv->dl = deliver_new(sv->conf, sv->md));
	ck_assert_ptr_nonnull(sv->loop = event_loop_new());
	ck_assert_ptr_nonnull(sv->srv = conn_server_new(sv->loop, sv->conf,
	    sv->dl));
	ck_assert_int_eq(conn_listen(sv->srv, &failed), 0);
	len = sizeof(sin);
	ck_assert_int_eq(getsockname(conn_listen_fd(sv->srv, 0),
	    (struct sockaddr *)&sin, &len), 0);
	sv->port = ntohs(sin.sin_port);
}

/* server_run - serve in a child until server_stop() */
static void
server_run(struct server *sv)
{
	sv->pid = fork();
	ck_assert_int_ge(sv->pid, 0);
	if (sv->pid == 0) {
		(void)event_loop_run(sv->loop);
		_exit(0);
	}
}

static void
server_stop(struct server *sv)
{
	char cmd[128];
	int status;

	if (sv->pid > 0) {
		(void)kill(sv->pid, SIGKILL);
		(void)waitpid(sv->pid, &status, 0);
	}
	conn_server_free(sv->srv);
	event_loop_free(sv->loop);
	deliver_free(sv->dl);
	maildir_close(sv->md);
	conf_free(sv->conf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sv->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* client_connect - a blocking socket to the server, from source if set */
static int
client_connect(int port, const char *source)
{
	struct sockaddr_in sin;
	struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (source != NULL) {
		ck_assert_int_eq(inet_pton(AF_INET, source, &sin.sin_addr), 1);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
	}
	sin.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr), 1);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void
client_send(int fd, const char *text)
{
	size_t len = strlen(text);

	ck_assert_int_eq(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* client_reply - one whole reply (continuation lines included), malloc'ed */
static char *
client_reply(int fd)
{
	char buf[4096];
	size_t len = 0;
	ssize_t n;
	char *line;

	for (;;) {
		ck_assert_uint_lt(len, sizeof(buf) - 1);
		n = recv(fd, buf + len, 1, 0);
		ck_assert_msg(n == 1, "no reply (have \"%.*s\")", (int)len, buf);
		len++;
		if (buf[len - 1] != '\n')
			continue;
		/* The last line of a reply is "NNN " ... */
		line = buf + len - 2;
		while (line > buf && line[-1] != '\n')
			line--;
		if (buf + len - line >= 4 && line[3] == ' ')
			break;
	}
	buf[len] = '\0';
	ck_assert_ptr_nonnull(line = strdup(buf));
	return line;
}

/* client_closed - the server closed (end of file within the timeout) */
static int
client_closed(int fd)
{
	char buf[256];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	return n == 0;
}

/* spool_fds - the server's descriptors of spool files */
static int
spool_fds(pid_t pid)
{
	char path[320], link[512];
	struct dirent *de;
	DIR *d;
	int n = 0;
	ssize_t k;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	ck_assert_ptr_nonnull(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "/proc/%ld/fd/%s", (long)pid,
		    de->d_name);
		if ((k = readlink(path, link, sizeof(link) - 1)) < 0)
			continue;
		link[k] = '\0';
		if (strstr(link, "/.OTHER_SERVERS/.tmp/") != NULL)
			n++;
	}
	(void)closedir(d);
	return n;
}

/* tree_files - regular files below dir (find -type f | wc -l) */
static int
tree_files(const char *dir)
{
	char cmd[256];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	ck_assert_int_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* wait_until - poll a condition for up to IO_TIMEOUT_MS */
#define wait_until(cond) do {						\
	int waited_ = 0;						\
	while (!(cond) && waited_ < IO_TIMEOUT_MS) {			\
		(void)poll(NULL, 0, 5);					\
		waited_ += 5;						\
	}								\
	ck_assert_msg((cond), "timed out waiting for " #cond);	\
} while (0)

START_TEST(test_budget_ample_limit)
{
	struct server sv;

	server_setup(&sv, "max_connections = 50;");
	ck_assert_int_eq(conn_budget(sv.srv), 0);
	ck_assert_uint_eq(conn_max_clients(sv.srv), 50);
	ck_assert_uint_ge(conn_descriptors_wanted(sv.conf), 2 * 50 + 2 * 256);
	server_stop(&sv);
}
END_TEST

/*
 * A limit of 400 for max_connections 200: storing keeps its room, the
 * clients get the rest, and client number conn_max_clients() + 1 is
 * told 421 at connect, never a 451 at its final dot.
 */
START_TEST(test_budget_short_limit)
{
	struct rlimit rl = { 400, 400 };
	struct server sv;
	size_t max, i;
	int *fds;
	char *r;

	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	server_setup(&sv, "max_connections = 200;");
	ck_assert_int_eq(conn_budget(sv.srv), 0);
	max = conn_max_clients(sv.srv);
	ck_assert_uint_gt(max, 10);
	ck_assert_uint_lt(max, 200);
	server_run(&sv);
	ck_assert_ptr_nonnull(fds = calloc(max + 1, sizeof(*fds)));
	for (i = 0; i < max; i++) {
		fds[i] = client_connect(sv.port, NULL);
		r = client_reply(fds[i]);
		ck_assert_msg(strncmp(r, "220 ", 4) == 0, "client %zu: %s", i, r);
		free(r);
	}
	fds[max] = client_connect(sv.port, NULL);
	r = client_reply(fds[max]);
	ck_assert_str_eq(r, "421 4.7.0 Too many connections, try again "
	    "later\r\n");
	free(r);
	ck_assert(client_closed(fds[max]));
	/* The last one served still stores its message. */
	client_send(fds[max - 1], "HELO x.example\r\nMAIL FROM:<s@x.example>\r\n"
	    "RCPT TO:<alice@example.org>\r\nDATA\r\n");
	free(client_reply(fds[max - 1]));
	free(client_reply(fds[max - 1]));
	free(client_reply(fds[max - 1]));
	r = client_reply(fds[max - 1]);
	ck_assert_msg(strncmp(r, "354 ", 4) == 0, "%s", r);
	free(r);
	client_send(fds[max - 1], "hello\r\n.\r\n");
	r = client_reply(fds[max - 1]);
	ck_assert_msg(strncmp(r, "250 2.0.0 Ok: queued as ", 24) == 0, "%s", r);
	free(r);
	for (i = 0; i <= max; i++)
		close(fds[i]);
	free(fds);
	server_stop(&sv);
}
END_TEST

START_TEST(test_budget_too_small)
{
	struct rlimit rl = { 48, 48 };
	struct server sv;

	server_setup(&sv, "max_connections = 10;");
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	errno = 0;
	ck_assert_int_eq(conn_budget(sv.srv), -1);
	ck_assert_int_eq(errno, EMFILE);
	server_stop(&sv);
}
END_TEST

START_TEST(test_per_ip_limit)
{
	struct server sv;
	int fds[6], i;
	char *r;

	server_setup(&sv, "max_connections_per_ip = 2;");
	ck_assert_int_eq(conn_budget(sv.srv), 0);
	server_run(&sv);
	for (i = 0; i < 2; i++) {
		fds[i] = client_connect(sv.port, "127.0.0.2");
		r = client_reply(fds[i]);
		ck_assert_msg(strncmp(r, "220 ", 4) == 0, "%s", r);
		free(r);
	}
	fds[2] = client_connect(sv.port, "127.0.0.2");
	r = client_reply(fds[2]);
	ck_assert_str_eq(r, "421 4.7.0 Too many connections from your "
	    "address, try again later\r\n");
	free(r);
	ck_assert(client_closed(fds[2]));
	close(fds[2]);
	/* Another address, and a relay client (127.0.0.1), are served. */
	fds[3] = client_connect(sv.port, "127.0.0.3");
	r = client_reply(fds[3]);
	ck_assert_msg(strncmp(r, "220 ", 4) == 0, "%s", r);
	free(r);
	for (i = 4; i < 6; i++) {
		fds[i] = client_connect(sv.port, NULL);
		r = client_reply(fds[i]);
		ck_assert_msg(strncmp(r, "220 ", 4) == 0, "%s", r);
		free(r);
	}
	/* One leaves: its address may come again. */
	client_send(fds[0], "QUIT\r\n");
	free(client_reply(fds[0]));
	ck_assert(client_closed(fds[0]));
	close(fds[0]);
	for (i = 0; i < 100; i++) {
		fds[0] = client_connect(sv.port, "127.0.0.2");
		r = client_reply(fds[0]);
		if (strncmp(r, "220 ", 4) == 0) {
			free(r);
			break;
		}
		/* The server may not have seen the close yet. */
		free(r);
		close(fds[0]);
		(void)poll(NULL, 0, 10);
	}
	ck_assert_int_lt(i, 100);
	for (i = 0; i < 6; i++)
		if (i != 2)
			close(fds[i]);
	server_stop(&sv);
}
END_TEST

/* A client gone in the middle of DATA: no spool descriptor, no file. */
START_TEST(test_lost_in_data_leaves_nothing)
{
	struct server sv;
	char text[8192];
	int fd, i;
	char *r;

	server_setup(&sv, "");
	ck_assert_int_eq(conn_budget(sv.srv), 0);
	server_run(&sv);
	fd = client_connect(sv.port, NULL);
	free(client_reply(fd));
	client_send(fd, "HELO x.example\r\nMAIL FROM:<s@x.example>\r\n"
	    "RCPT TO:<alice@example.org>\r\nRCPT TO:<r@remote.example>\r\n"
	    "DATA\r\n");
	for (i = 0; i < 4; i++)
		free(client_reply(fd));
	r = client_reply(fd);
	ck_assert_msg(strncmp(r, "354 ", 4) == 0, "%s", r);
	free(r);
	memset(text, 'k', sizeof(text));
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(send(fd, text, sizeof(text), MSG_NOSIGNAL),
		    (ssize_t)sizeof(text));
		client_send(fd, "\r\n");
	}
	wait_until(spool_fds(sv.pid) == 1);
	close(fd);
	wait_until(spool_fds(sv.pid) == 0);
	ck_assert_int_eq(tree_files(sv.root), 0);
	server_stop(&sv);
}
END_TEST

/* Pipelined text after a refused DATA: 554 5.5.0, closed, nothing stored. */
START_TEST(test_pipelining_after_refused_data)
{
	struct server sv;
	int fd, i;
	char *r;

	server_setup(&sv, "");
	ck_assert_int_eq(conn_budget(sv.srv), 0);
	server_run(&sv);
	fd = client_connect(sv.port, "127.0.0.2");
	free(client_reply(fd));
	client_send(fd, "EHLO x.example\r\n");
	free(client_reply(fd));
	client_send(fd, "MAIL FROM:<me@example.net>\r\n"
	    "RCPT TO:<nosuch@example.org>\r\nDATA\r\n"
	    "Subject: innocent\r\n\r\nMAIL FROM:<ceo@example.org>\r\n"
	    "RCPT TO:<alice@example.org>\r\nDATA\r\nSubject: injected\r\n\r\n"
	    "evil\r\n.\r\n");
	for (i = 0; i < 3; i++)
		free(client_reply(fd));
	r = client_reply(fd);
	ck_assert_str_eq(r, "554 5.5.0 Error: improper use of SMTP command "
	    "pipelining\r\n");
	free(r);
	ck_assert(client_closed(fd));
	close(fd);
	ck_assert_int_eq(tree_files(sv.root), 0);
	server_stop(&sv);
}
END_TEST

static Suite *
conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_budget_ample_limit);
	tcase_add_test(tc, test_budget_short_limit);
	tcase_add_test(tc, test_budget_too_small);
	tcase_add_test(tc, test_per_ip_limit);
	tcase_add_test(tc, test_lost_in_data_leaves_nothing);
	tcase_add_test(tc, test_pipelining_after_refused_data);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
