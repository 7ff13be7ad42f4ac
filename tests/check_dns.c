/*
 * NAME
 *	check_dns - unit tests of the c-ares lookups, against a real server
 * DESCRIPTION
 *	dnsmasq (Debian's dnsmasq-base) is started once for the suite, in
 *	the foreground on 127.0.0.1 and a free port, with a private
 *	configuration, --no-resolv and no hosts file: it serves the zone
 *	test. only, and the resolver under test is pointed at it, so no
 *	query leaves loopback. slow.test is forwarded to a UDP socket of
 *	this process that never answers (a timeout).
 *	Without dnsmasq the suite is skipped (exit 77).
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "event.h"

static const char *const dnsmasq_paths[] = {
	"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq",
};

static pid_t dnsmasq_pid;
static int dnsmasq_port;
static int silent_fd = -1;		/* slow.test: never answers */
static char dir[] = "/tmp/check_dns.XXXXXX";
static char server[64];

static int
free_udp_port(int *keep_fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0
	    || getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		exit(99);
	port = ntohs(sin.sin_port);
	if (keep_fd != NULL)
		*keep_fd = fd;
	else
		close(fd);
	return port;
}

/* dns_server_up - a query that dnsmasq answers, or -1 after a while */
static int
dns_server_up(void)
{
	static const unsigned char q[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		1, 'a', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
	};
	struct sockaddr_in sin;
	struct timeval tv = { 0, 200000 };
	unsigned char buf[512];
	int fd, i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)dnsmasq_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < 50; i++) {
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin,
		    sizeof(sin));
		if (recv(fd, buf, sizeof(buf), 0) > 0) {
			close(fd);
			return 0;
		}
		close(fd);
	}
	return -1;
}

static void
start_dnsmasq(void)
{
	const char *bin = NULL;
	char conf[256], arg[300];
	FILE *fp;
	size_t i;
	int slow_port, attempt;

	for (i = 0; i < sizeof(dnsmasq_paths) / sizeof(dnsmasq_paths[0]); i++)
		if (access(dnsmasq_paths[i], X_OK) == 0)
			bin = dnsmasq_paths[i];
	if (bin == NULL) {
		printf("SKIP: dnsmasq is not installed "
		    "(apt-get install dnsmasq-base)\n");
		exit(77);
	}
	if (mkdtemp(dir) == NULL)
		exit(99);
	slow_port = free_udp_port(&silent_fd);
	/*
	 * The port was free for UDP a moment ago; dnsmasq also wants it for
	 * TCP, and another test may take it meanwhile: a dnsmasq that
	 * exits at once ("Address already in use") is tried on another.
	 */
	for (attempt = 0; attempt < 5; attempt++) {
		dnsmasq_port = free_udp_port(NULL);
		snprintf(server, sizeof(server), "127.0.0.1:%d", dnsmasq_port);
		snprintf(conf, sizeof(conf), "%s/dnsmasq.conf", dir);
		if ((fp = fopen(conf, "w")) == NULL)
			exit(99);
		fprintf(fp,
		    "no-resolv\nno-hosts\nno-poll\nbind-interfaces\n"
		    "listen-address=127.0.0.1\nport=%d\nlocal=/test/\n"
		    "cache-size=0\n"
		    "mx-host=a.test,mx1.a.test,10\n"
		    "mx-host=a.test,mx2.a.test,20\n"
		    "host-record=mx1.a.test,127.0.0.2\n"
		    "host-record=mx2.a.test,127.0.0.3,::1\n"
		    "host-record=implicit.test,127.0.0.4\n"
		    "mx-host=null.test,.,0\n"
		    "mx-host=nohost.test,ghost.test,10\n"
		    "server=/slow.test/127.0.0.1#%d\n",
		    dnsmasq_port, slow_port);
		fclose(fp);
		snprintf(arg, sizeof(arg), "--conf-file=%s", conf);
		if ((dnsmasq_pid = fork()) == 0) {
			if (getuid() == 0)
				execl(bin, bin, "--keep-in-foreground", arg,
				    "--pid-file=", "--user=root",
				    "--log-facility=/dev/null", (char *)NULL);
			else
				execl(bin, bin, "--keep-in-foreground", arg,
				    "--pid-file=", "--log-facility=/dev/null",
				    (char *)NULL);
			_exit(127);
		}
		if (dnsmasq_pid < 0)
			break;
		if (dns_server_up() == 0)
			return;
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = 0;
	}
	fprintf(stderr, "dnsmasq did not start\n");
	exit(99);
}

static void
stop_dnsmasq(void)
{
	char path[300];

	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = 0;
	}
	snprintf(path, sizeof(path), "%s/dnsmasq.conf", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- one lookup, driven by a loop with c-ares's timeouts -------------- */

struct run {
	struct event_loop *loop;
	struct dns *dns;
	struct event_timer *timer;	/* c-ares's next timeout */
	int done;
	struct dns_result result;
};

static void
run_done(void *ctx, const struct dns_result *r)
{
	struct run *run = ctx;

	run->result = *r;
	run->done++;
	event_loop_stop(run->loop);
}

static void
run_timer(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct run *run = ctx;

	(void)loop;
	(void)t;
	dns_process_timeouts(run->dns);
}

/* run_idle - before each poll(), the timer at c-ares's next timeout */
static void
run_idle(struct event_loop *loop, void *ctx)
{
	struct run *run = ctx;
	int ms = dns_timeout(run->dns);

	(void)loop;
	event_timer_set(run->timer, ms);
}

static void
run_setup(struct run *run, int timeout_ms)
{
	char *servers[1] = { server };

	memset(run, 0, sizeof(*run));
	run->loop = event_loop_new();
	ck_assert_ptr_nonnull(run->loop);
	run->dns = dns_new(run->loop, servers, 1, timeout_ms, 1);
	ck_assert_ptr_nonnull(run->dns);
	run->timer = event_timer_add(run->loop, -1, run_timer, run);
	ck_assert_ptr_nonnull(run->timer);
	event_set_idle(run->loop, run_idle, run);
}

static void
run_free(struct run *run)
{
	dns_free(run->dns);
	event_timer_del(run->timer);
	event_loop_free(run->loop);
}

static const struct dns_result *
lookup(struct run *run, const char *name, int mx)
{
	struct dns_lookup *l;

	run->done = 0;
	l = mx ? dns_lookup_mx(run->dns, name, run_done, run)
	    : dns_lookup_host(run->dns, name, run_done, run);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(run->done, 0);	/* never from within the call */
	ck_assert_int_eq(event_loop_run(run->loop), 0);
	ck_assert_int_eq(run->done, 1);
	return &run->result;
}

static const char *
addr_text(const struct dns_addr *a, char *buf, size_t len)
{
	const void *src = a->ss.ss_family == AF_INET6
	    ? (const void *)&((const struct sockaddr_in6 *)(const void *)
	    &a->ss)->sin6_addr
	    : (const void *)&((const struct sockaddr_in *)(const void *)
	    &a->ss)->sin_addr;

	return inet_ntop(a->ss.ss_family, src, buf, (socklen_t)len);
}

START_TEST(test_mx_order)
{
	struct run run;
	const struct dns_result *r;
	char b[64];

	run_setup(&run, 2000);
	r = lookup(&run, "a.test", 1);
	ck_assert_int_eq(r->status, DNS_OK);
	ck_assert_uint_eq(r->naddrs, 3);
	/* Preference 10 first; each host's AAAA before its A. */
	ck_assert_str_eq(r->addrs[0].host, "mx1.a.test");
	ck_assert_int_eq(r->addrs[0].pref, 10);
	ck_assert_str_eq(addr_text(&r->addrs[0], b, sizeof(b)), "127.0.0.2");
	ck_assert_str_eq(r->addrs[1].host, "mx2.a.test");
	ck_assert_str_eq(addr_text(&r->addrs[1], b, sizeof(b)), "::1");
	ck_assert_str_eq(addr_text(&r->addrs[2], b, sizeof(b)), "127.0.0.3");
	ck_assert_int_eq(r->addrs[2].pref, 20);
	run_free(&run);
}
END_TEST

START_TEST(test_implicit_mx)
{
	struct run run;
	const struct dns_result *r;
	char b[64];

	run_setup(&run, 2000);
	r = lookup(&run, "implicit.test", 1);
	ck_assert_int_eq(r->status, DNS_OK);
	ck_assert_uint_eq(r->naddrs, 1);
	ck_assert_str_eq(r->addrs[0].host, "implicit.test");
	ck_assert_int_eq(r->addrs[0].pref, -1);
	ck_assert_str_eq(addr_text(&r->addrs[0], b, sizeof(b)), "127.0.0.4");
	run_free(&run);
}
END_TEST

START_TEST(test_nxdomain)
{
	struct run run;
	const struct dns_result *r;

	run_setup(&run, 2000);
	r = lookup(&run, "nx.test", 1);
	ck_assert_int_eq(r->status, DNS_NXDOMAIN);
	ck_assert_ptr_nonnull(strstr(r->error, "nx.test"));
	run_free(&run);
}
END_TEST

START_TEST(test_null_mx)
{
	struct run run;
	const struct dns_result *r;

	run_setup(&run, 2000);
	r = lookup(&run, "null.test", 1);
	ck_assert_int_eq(r->status, DNS_NULLMX);
	ck_assert_ptr_nonnull(strstr(r->error, "null MX"));
	run_free(&run);
}
END_TEST

START_TEST(test_no_address_for_mx)
{
	struct run run;
	const struct dns_result *r;

	run_setup(&run, 2000);
	r = lookup(&run, "nohost.test", 1);
	ck_assert_int_eq(r->status, DNS_NOHOSTS);
	run_free(&run);
}
END_TEST

START_TEST(test_timeout_is_tempfail)
{
	struct run run;
	const struct dns_result *r;
	struct timespec t0, t1;

	run_setup(&run, 300);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = lookup(&run, "slow.test", 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(r->status, DNS_TEMPFAIL);
	ck_assert_ptr_nonnull(strstr(r->error, "slow.test"));
	/* The loop slept on c-ares's timeout, it did not spin or hang. */
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 5);
	run_free(&run);
}
END_TEST

START_TEST(test_host_lookup)
{
	struct run run;
	const struct dns_result *r;

	run_setup(&run, 2000);
	r = lookup(&run, "mx2.a.test", 0);
	ck_assert_int_eq(r->status, DNS_OK);
	ck_assert_uint_eq(r->naddrs, 2);
	r = lookup(&run, "ghost.test", 0);
	ck_assert_int_eq(r->status, DNS_NOHOSTS);
	run_free(&run);
}
END_TEST

/* A cancelled lookup never calls back; dns_free() with some outstanding. */
START_TEST(test_cancel_and_free)
{
	struct run run;
	struct dns_lookup *l;

	run_setup(&run, 2000);
	l = dns_lookup_mx(run.dns, "a.test", run_done, &run);
	ck_assert_ptr_nonnull(l);
	dns_cancel(l);
	ck_assert_ptr_nonnull(dns_lookup_mx(run.dns, "implicit.test",
	    run_done, &run));
	ck_assert_int_eq(event_loop_run(run.loop), 0);
	ck_assert_int_eq(run.done, 1);
	ck_assert_str_eq(run.result.addrs[0].host, "implicit.test");
	ck_assert_ptr_nonnull(dns_lookup_mx(run.dns, "slow.test", run_done,
	    &run));
	run_free(&run);
}
END_TEST

START_TEST(test_name_too_long)
{
	struct run run;
	char name[300];

	run_setup(&run, 2000);
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_ptr_null(dns_lookup_mx(run.dns, name, run_done, &run));
	ck_assert_int_eq(errno, EINVAL);
	run_free(&run);
}
END_TEST

static Suite *
dns_suite(void)
{
	Suite *s = suite_create("dns");
	TCase *tc = tcase_create("dnsmasq");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_mx_order);
	tcase_add_test(tc, test_implicit_mx);
	tcase_add_test(tc, test_nxdomain);
	tcase_add_test(tc, test_null_mx);
	tcase_add_test(tc, test_no_address_for_mx);
	tcase_add_test(tc, test_timeout_is_tempfail);
	tcase_add_test(tc, test_host_lookup);
	tcase_add_test(tc, test_cancel_and_free);
	tcase_add_test(tc, test_name_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	start_dnsmasq();
	sr = srunner_create(dns_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	stop_dnsmasq();
	if (silent_fd >= 0)
		close(silent_fd);
	return failed == 0 ? 0 : 1;
}
