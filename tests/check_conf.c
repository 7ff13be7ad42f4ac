/*
 * NAME
 *	check_conf - tests of the configuration loader
 * DESCRIPTION
 *	Every key is read when set and has its default when not; every kind
 *	of problem is reported as exactly "FILE:LINE: KEY: text", all of
 *	them in one pass, and then no configuration is returned. The listen
 *	and network parsers, the relay matcher (IPv4, IPv6, IPv4-mapped) and
 *	the user and domain lookups are tested on their own. The installed
 *	etc/pollsmtpd.conf.in must load cleanly once its placeholders are
 *	filled in, listening on loopback only.
 *
 *	Configuration files live in a mkdtemp() directory that each test
 *	removes again.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"

#define MAX_REPORTS 64

static char tmpdir[PATH_MAX];
static char conf_path[PATH_MAX];	/* tmpdir/test.conf */
static char *reports[MAX_REPORTS];
static size_t nreports;

static void
collect(const char *message, void *ctx)
{
	(void)ctx;
	if (nreports < MAX_REPORTS)
		reports[nreports++] = strdup(message);
}

static void
clear_reports(void)
{
	while (nreports > 0)
		free(reports[--nreports]);
}

static void
setup(void)
{
	const char *base = getenv("TMPDIR");
	int n;

	n = snprintf(tmpdir, sizeof(tmpdir), "%s/check_conf.XXXXXX",
	    base != NULL && base[0] == '/' ? base : "/tmp");
	ck_assert(n > 0 && (size_t)n < sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	n = snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(conf_path));
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
teardown(void)
{
	clear_reports();
	ck_assert_int_eq(nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* load_text - write text as tmpdir/test.conf and load it */
static struct conf *
load_text(const char *text)
{
	clear_reports();
	write_file(conf_path, text);
	return conf_load(conf_path, collect, NULL);
}

/* load_ok - text must load without a single report */
static struct conf *
load_ok(const char *text)
{
	struct conf *conf = load_text(text);

	ck_assert_msg(nreports == 0, "unexpected report: %s",
	    nreports > 0 ? reports[0] : "");
	ck_assert_ptr_nonnull(conf);
	return conf;
}

/*
 * expect_reports - text must fail to load with exactly these reports, in
 * this order; each expected one is "LINE: text", the file name is added.
 */
static void
expect_reports_at(const char *path, const char *const *expected)
{
	char want[2048];
	size_t i, n = 0;
	int len;

	while (expected[n] != NULL)
		n++;
	for (i = 0; i < n && i < nreports; i++) {
		len = snprintf(want, sizeof(want), "%s:%s", path, expected[i]);
		ck_assert(len > 0 && (size_t)len < sizeof(want));
		ck_assert_str_eq(reports[i], want);
	}
	ck_assert_msg(nreports == n, "%zu reports, %zu expected; extra: %s",
	    nreports, n, nreports > n ? reports[n] : "(none)");
}

static void
expect_reports(const char *text, const char *const *expected)
{
	struct conf *conf = load_text(text);

	ck_assert_ptr_null(conf);
	expect_reports_at(conf_path, expected);
}

#define EXPECT(text, ...) \
	expect_reports((text), (const char *const[]){__VA_ARGS__, NULL})

static unsigned
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
}

/* addr_text - the address of ss as inet_ntop writes it */
static const char *
addr_text(const struct sockaddr_storage *ss, char *dst, size_t size)
{
	const void *a = ss->ss_family == AF_INET
	    ? (const void *)&((const struct sockaddr_in *)(const void *)ss)->sin_addr
	    : (const void *)&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;

	ck_assert_ptr_nonnull(inet_ntop(ss->ss_family, a, dst, (socklen_t)size));
	return dst;
}

static const char *
network_text(const struct conf_network *net, char *dst, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	ck_assert_ptr_nonnull(inet_ntop(net->family, net->addr, a, sizeof(a)));
	n = snprintf(dst, size, "%s/%u", a, net->prefix);
	ck_assert(n > 0 && (size_t)n < size);
	return dst;
}

static void
assert_listen(const struct conf_listen *l, const char *text, int family,
    const char *addr, unsigned port)
{
	char a[INET6_ADDRSTRLEN];

	ck_assert_str_eq(l->text, text);
	ck_assert_int_eq(l->addr.ss_family, family);
	ck_assert_uint_eq(l->addrlen, family == AF_INET
	    ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	ck_assert_str_eq(addr_text(&l->addr, a, sizeof(a)), addr);
	ck_assert_uint_eq(port_of(&l->addr), port);
}

/* assert_defaults - every value but file and the given paths is a default */
static void
assert_default_values(const struct conf *conf)
{
	char host[256], n[64];

	ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	ck_assert_str_eq(conf->hostname, host);
	ck_assert_int_eq(conf->debug, 0);
	ck_assert_int_eq(conf->maildir_fsync, 1);
	ck_assert_uint_eq(conf->nlisten, 2);
	assert_listen(&conf->listen[0], "0.0.0.0:25", AF_INET, "0.0.0.0", 25);
	assert_listen(&conf->listen[1], "[::]:25", AF_INET6, "::", 25);
	ck_assert_int_eq(conf->max_connections, 1024);
	ck_assert_int_eq(conf->max_message_size, 10485760);
	ck_assert_int_eq(conf->max_recipients, 100);
	ck_assert_int_eq(conf->command_timeout, 300);
	ck_assert_int_eq(conf->data_timeout, 600);
	ck_assert_str_eq(conf->user, "pollsmtpd");
	ck_assert_str_eq(conf->group, "pollsmtpd");
	ck_assert_uint_eq(conf->ndomains, 1);
	ck_assert_str_eq(conf->domains[0], "example.org");
	ck_assert_uint_eq(conf->nusers, 2);
	ck_assert_str_eq(conf->users[0], "alice");
	ck_assert_str_eq(conf->users[1], "bob");
	ck_assert_str_eq(conf->postmaster, "alice");
	ck_assert_uint_eq(conf->nrelay_networks, 2);
	ck_assert_str_eq(network_text(&conf->relay_networks[0], n, sizeof(n)),
	    "127.0.0.0/8");
	ck_assert_int_eq(conf->relay_networks[0].family, AF_INET);
	ck_assert_str_eq(network_text(&conf->relay_networks[1], n, sizeof(n)),
	    "::1/128");
	ck_assert_int_eq(conf->relay_networks[1].family, AF_INET6);
	ck_assert_int_eq(conf->delivery_enabled, 1);
	ck_assert_uint_eq(conf->ndelivery_resolvers, 0);
	ck_assert_str_eq(conf->delivery_relayhost, "");
	ck_assert_int_eq(conf->delivery_port, 25);
	ck_assert_int_eq(conf->delivery_max_connections, 50);
	ck_assert_int_eq(conf->delivery_max_per_domain, 5);
	ck_assert_int_eq(conf->delivery_retry_first, 300);
	ck_assert_int_eq(conf->delivery_retry_max, 3600);
	ck_assert_int_eq(conf->delivery_max_lifetime, 432000);
	ck_assert_int_eq(conf->delivery_tls, CONF_TLS_MAY);
	ck_assert_int_eq(conf->delivery_claim_timeout, 3600);
}

/* The delivery group: every key, and what each refuses. */
START_TEST(test_delivery)
{
	struct conf *conf;
	char host[64];
	unsigned short port;
	int literal;

	conf = load_ok("delivery = {\n"
	    "  enabled = false;\n"
	    "  resolvers = [ \"127.0.0.1:5353\", \"::1\", \"[::1]:53\", "
	    "\"192.0.2.1\" ];\n"
	    "  relayhost = \"[127.0.0.2]:2525\";\n"
	    "  port = 2526;\n"
	    "  max_connections = 7;\n"
	    "  max_per_domain = 2;\n"
	    "  retry_first = 1;\n"
	    "  retry_max = 2;\n"
	    "  max_lifetime = 3;\n"
	    "  tls = \"encrypt\";\n"
	    "  claim_timeout = 4;\n"
	    "};\n");
	ck_assert_int_eq(conf->delivery_enabled, 0);
	ck_assert_uint_eq(conf->ndelivery_resolvers, 4);
	ck_assert_str_eq(conf->delivery_resolvers[0], "127.0.0.1:5353");
	ck_assert_str_eq(conf->delivery_resolvers[2], "[::1]:53");
	ck_assert_str_eq(conf->delivery_relayhost, "[127.0.0.2]:2525");
	ck_assert_int_eq(conf->delivery_port, 2526);
	ck_assert_int_eq(conf->delivery_max_connections, 7);
	ck_assert_int_eq(conf->delivery_max_per_domain, 2);
	ck_assert_int_eq(conf->delivery_retry_first, 1);
	ck_assert_int_eq(conf->delivery_retry_max, 2);
	ck_assert_int_eq(conf->delivery_max_lifetime, 3);
	ck_assert_int_eq(conf->delivery_tls, CONF_TLS_ENCRYPT);
	ck_assert_int_eq(conf->delivery_claim_timeout, 4);
	conf_free(conf);

	EXPECT("delivery = {\n"
	    "  resolvers = [ \"ns.example\" ];\n"
	    "  relayhost = \"[mx.example]:25\";\n"
	    "  tls = \"always\";\n"
	    "  port = 0;\n"
	    "  retry_first = 0;\n"
	    "  color = 1;\n"
	    "};\n",
	    "2: delivery.resolvers[0]: \"ns.example\" is not a numeric ADDRESS, ADDRESS:PORT or [IPV6-ADDRESS]:PORT",
	    "3: delivery.relayhost: \"[mx.example]:25\" is not \"\", HOST, HOST:PORT, [IP] or [IP]:PORT",
	    "4: delivery.tls: \"always\" is not \"none\", \"may\" or \"encrypt\"",
	    "5: delivery.port: 0 is out of range (1 to 65535)",
	    "6: delivery.retry_first: 0 is out of range (1 to 2592000)",
	    "7: delivery.color: unknown key");

	ck_assert_int_eq(conf_parse_relayhost("mx.example", host, sizeof(host),
	    &literal, &port, 25), 0);
	ck_assert_str_eq(host, "mx.example");
	ck_assert_int_eq(literal, 0);
	ck_assert_uint_eq(port, 25);
	ck_assert_int_eq(conf_parse_relayhost("mx.example:2525", host,
	    sizeof(host), &literal, &port, 25), 0);
	ck_assert_uint_eq(port, 2525);
	ck_assert_int_eq(conf_parse_relayhost("[::1]:26", host, sizeof(host),
	    &literal, &port, 25), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(literal, 1);
	ck_assert_uint_eq(port, 26);
	ck_assert_int_eq(conf_parse_relayhost("[192.0.2.1]", host,
	    sizeof(host), &literal, &port, 25), 0);
	ck_assert_uint_eq(port, 25);
	ck_assert_int_eq(conf_parse_relayhost("::1", host, sizeof(host),
	    &literal, &port, 25), -1);
	ck_assert_int_eq(conf_parse_relayhost("[192.0.2.1]x", host,
	    sizeof(host), &literal, &port, 25), -1);
	ck_assert_int_eq(conf_parse_relayhost("mx.example:0", host,
	    sizeof(host), &literal, &port, 25), -1);
}
END_TEST

START_TEST(test_defaults)
{
	struct conf *conf = conf_defaults();

	ck_assert_ptr_nonnull(conf);
	assert_default_values(conf);
	ck_assert_ptr_null(conf->file);
	ck_assert_str_eq(conf->maildir_path, "/var/spool/pollsmtpd");
	ck_assert_str_eq(conf->pid_file, "/run/pollsmtpd.pid");
	ck_assert_str_eq(conf->log_file, "/var/log/pollsmtpd/pollsmtpd.log");
	conf_free(conf);
	conf_free(NULL);
}
END_TEST

START_TEST(test_empty_file_is_all_defaults)
{
	struct conf *conf = load_ok("# nothing but a comment\n\n");

	assert_default_values(conf);
	ck_assert_str_eq(conf->file, conf_path);
	ck_assert_str_eq(conf->maildir_path, "/var/spool/pollsmtpd");
	ck_assert_str_eq(conf->pid_file, "/run/pollsmtpd.pid");
	ck_assert_str_eq(conf->log_file, "/var/log/pollsmtpd/pollsmtpd.log");
	conf_free(conf);

	conf = load_ok("");
	assert_default_values(conf);
	conf_free(conf);
}
END_TEST

START_TEST(test_every_key_set)
{
	struct conf *conf = load_ok(
	    "hostname = \"mx.test.example\";\n"
	    "application = {\n"
	    "  debug = true;\n"
	    "  maildir = { path = \"/srv/mail\"; fsync = false; };\n"
	    "};\n"
	    "server = {\n"
	    "  listen = [ \"127.0.0.1:2525\", \"[::1]:2526\", \"[::ffff:192.0.2.1]:25\" ];\n"
	    "  max_connections = 7;\n"
	    "  max_message_size = 20971520L;\n"
	    "  max_recipients = 3;\n"
	    "  command_timeout = 30;\n"
	    "  data_timeout = 60;\n"
	    "  user = \"mail\";\n"
	    "  group = \"nogroup\";\n"
	    "  pid_file = \"/tmp/x.pid\";\n"
	    "};\n"
	    "local = {\n"
	    "  domains = [ \"Example.COM\", \"mail.example.net\" ];\n"
	    "  users = ( \"Carol\", \"dave.x\", \"e_f-g+h\" );\n"
	    "  postmaster = \"CAROL\";\n"
	    "};\n"
	    "relay = { networks = [ \"10.0.0.0/8\", \"2001:db8:8000::/33\", \"192.0.2.7\" ]; };\n"
	    "log = { file = \"\"; };\n");
	char n[64];

	ck_assert_str_eq(conf->hostname, "mx.test.example");
	ck_assert_int_eq(conf->debug, 1);
	ck_assert_str_eq(conf->maildir_path, "/srv/mail");
	ck_assert_int_eq(conf->maildir_fsync, 0);
	ck_assert_uint_eq(conf->nlisten, 3);
	assert_listen(&conf->listen[0], "127.0.0.1:2525", AF_INET, "127.0.0.1", 2525);
	assert_listen(&conf->listen[1], "[::1]:2526", AF_INET6, "::1", 2526);
	assert_listen(&conf->listen[2], "[::ffff:192.0.2.1]:25", AF_INET6,
	    "::ffff:192.0.2.1", 25);
	ck_assert_int_eq(conf->max_connections, 7);
	ck_assert_int_eq(conf->max_message_size, 20971520);
	ck_assert_int_eq(conf->max_recipients, 3);
	ck_assert_int_eq(conf->command_timeout, 30);
	ck_assert_int_eq(conf->data_timeout, 60);
	ck_assert_str_eq(conf->user, "mail");
	ck_assert_str_eq(conf->group, "nogroup");
	ck_assert_str_eq(conf->pid_file, "/tmp/x.pid");
	/* Domains are stored lower-cased, users as configured. */
	ck_assert_uint_eq(conf->ndomains, 2);
	ck_assert_str_eq(conf->domains[0], "example.com");
	ck_assert_str_eq(conf->domains[1], "mail.example.net");
	ck_assert_uint_eq(conf->nusers, 3);
	ck_assert_str_eq(conf->users[0], "Carol");
	ck_assert_str_eq(conf->users[1], "dave.x");
	ck_assert_str_eq(conf->users[2], "e_f-g+h");
	ck_assert_str_eq(conf->postmaster, "Carol");
	ck_assert_uint_eq(conf->nrelay_networks, 3);
	ck_assert_str_eq(network_text(&conf->relay_networks[0], n, sizeof(n)),
	    "10.0.0.0/8");
	ck_assert_str_eq(network_text(&conf->relay_networks[1], n, sizeof(n)),
	    "2001:db8:8000::/33");
	ck_assert_str_eq(network_text(&conf->relay_networks[2], n, sizeof(n)),
	    "192.0.2.7/32");
	ck_assert_str_eq(conf->log_file, "");
	conf_free(conf);
}
END_TEST

START_TEST(test_empty_lists)
{
	/* No local domains and no relaying are legitimate choices. */
	struct conf *conf = load_ok(
	    "local = { domains = [ ]; };\n"
	    "relay = { networks = ( ); };\n");

	ck_assert_uint_eq(conf->ndomains, 0);
	ck_assert_uint_eq(conf->nrelay_networks, 0);
	ck_assert_int_eq(conf_is_local_domain(conf, "example.org"), 0);
	conf_free(conf);
}
END_TEST

START_TEST(test_missing_file)
{
	char path[PATH_MAX + 16];
	int n = snprintf(path, sizeof(path), "%s/none.conf", tmpdir);

	ck_assert(n > 0 && (size_t)n < sizeof(path));
	ck_assert_ptr_null(conf_load(path, collect, NULL));
	expect_reports_at(path, (const char *const[]){
	    "0: cannot open: No such file or directory", NULL});

	clear_reports();
	ck_assert_ptr_null(conf_load(tmpdir, collect, NULL));
	expect_reports_at(tmpdir, (const char *const[]){
	    "0: cannot open: Is a directory", NULL});
}
END_TEST

START_TEST(test_syntax_errors)
{
	EXPECT("hostname = \"x\";\n"
	    "\n"
	    "server = { max_connections = ; };\n",
	    "3: syntax error");
	EXPECT("log = { file = \"\"; };\n"
	    "server = { };\n"
	    "log = { };\n",
	    "3: duplicate setting name");
	EXPECT("server = {\n"
	    "  listen = [ \"127.0.0.1:25\", 25 ];\n"
	    "};\n",
	    "2: mismatched element type in array");
}
END_TEST

START_TEST(test_include)
{
	char inc[PATH_MAX + 16];
	struct conf *conf;
	int n = snprintf(inc, sizeof(inc), "%s/local.conf", tmpdir);

	ck_assert(n > 0 && (size_t)n < sizeof(inc));
	/* A relative @include is found next to the including file. */
	write_file(inc, "local = {\n  users = [ \"zoe\" ];\n  postmaster = \"zoe\";\n};\n");
	conf = load_ok("hostname = \"h\";\n@include \"local.conf\"\n");
	ck_assert_str_eq(conf->postmaster, "zoe");
	conf_free(conf);

	/* A problem in the included file names that file and its line. */
	write_file(inc, "\nlocal = {\n  mailbox = \"zoe\";\n};\n");
	ck_assert_ptr_null(load_text("@include \"local.conf\"\n"));
	expect_reports_at(inc, (const char *const[]){
	    "3: local.mailbox: unknown key", NULL});
}
END_TEST

START_TEST(test_unknown_keys)
{
	EXPECT("foo = 1;\n"
	    "application = {\n"
	    "  debuq = true;\n"
	    "  maildir = { pathh = \"/x\"; };\n"
	    "};\n"
	    "server = { listen = [ \"127.0.0.1:25\" ]; extra = \"x\"; };\n"
	    "local = { };\n"
	    "relay = { net = [ ]; };\n"
	    "log = { file = \"\"; level = 1; };\n"
	    "Hostname = \"x\";\n"
	    "more = { hostname = \"y\"; };\n",
	    "1: foo: unknown key",
	    "3: application.debuq: unknown key",
	    "4: application.maildir.pathh: unknown key",
	    "6: server.extra: unknown key",
	    "8: relay.net: unknown key",
	    "9: log.level: unknown key",
	    "10: Hostname: unknown key",
	    "11: more: unknown key");
}
END_TEST

START_TEST(test_wrong_types)
{
	EXPECT("hostname = 5;\n"
	    "application = {\n"
	    "  debug = 1;\n"
	    "  maildir = \"x\";\n"
	    "};\n"
	    "server = {\n"
	    "  listen = \"127.0.0.1:25\";\n"
	    "  max_connections = \"10\";\n"
	    "  max_message_size = 1.5e7;\n"
	    "  max_recipients = true;\n"
	    "  command_timeout = [ 1 ];\n"
	    "  data_timeout = ( 1 );\n"
	    "  user = 0;\n"
	    "  group = false;\n"
	    "  pid_file = { };\n"
	    "};\n"
	    "local = {\n"
	    "  users = [ 1, 2 ];\n"
	    "  domains = ( \"example.org\", 5,\n"
	    "     [ \"x\" ] );\n"
	    "  postmaster = false;\n"
	    "};\n"
	    "relay = 1;\n"
	    "log = { file = 0L; };\n"
	    "log2 = 1;\n",
	    "1: hostname: expected a string, not an integer",
	    "3: application.debug: expected a boolean (true or false), not an integer",
	    "4: application.maildir: expected a group, not a string",
	    "7: server.listen: expected a list of strings, not a string",
	    "8: server.max_connections: expected an integer, not a string",
	    "9: server.max_message_size: expected an integer, not a float",
	    "10: server.max_recipients: expected an integer, not a boolean",
	    "11: server.command_timeout: expected an integer, not an array",
	    "12: server.data_timeout: expected an integer, not a list",
	    "13: server.user: expected a string, not an integer",
	    "14: server.group: expected a string, not a boolean",
	    "15: server.pid_file: expected a string, not a group",
	    "18: local.users[0]: expected a string, not an integer",
	    "18: local.users[1]: expected a string, not an integer",
	    "19: local.domains[1]: expected a string, not an integer",
	    "20: local.domains[2]: expected a string, not an array",
	    "21: local.postmaster: expected a string, not a boolean",
	    "23: relay: expected a group, not an integer",
	    "24: log.file: expected a string, not an integer",
	    "25: log2: unknown key");
}
END_TEST

START_TEST(test_integer_ranges)
{
#define F(field) offsetof(struct conf, field)
	static const struct {
		const char *text;
		const char *report;	/* NULL: must load */
		size_t field;
		long value;
	} cases[] = {
		{"server = { max_connections = 0; };",
		    "1: server.max_connections: 0 is out of range (1 to 2147483647)", F(max_connections), 0},
		{"server = { max_connections = -1; };",
		    "1: server.max_connections: -1 is out of range (1 to 2147483647)", F(max_connections), 0},
		{"server = { max_connections = 1; };", NULL, F(max_connections), 1},
		{"server = { max_connections = 0x7fffffff; };", NULL, F(max_connections), 2147483647},
		{"server = { max_message_size = 1023; };",
		    "1: server.max_message_size: 1023 is out of range (1024 to 2147483647)", F(max_message_size), 0},
		{"server = { max_message_size = 1024; };", NULL, F(max_message_size), 1024},
		{"server = { max_message_size = 2147483647L; };", NULL, F(max_message_size), 2147483647},
		{"server = { max_message_size = 2147483648L; };",
		    "1: server.max_message_size: 2147483648 is out of range (1024 to 2147483647)", F(max_message_size), 0},
		{"server = { max_recipients = 0; };",
		    "1: server.max_recipients: 0 is out of range (1 to 2147483647)", F(max_recipients), 0},
		{"server = { max_recipients = 1; };", NULL, F(max_recipients), 1},
		{"server = { command_timeout = 0; };",
		    "1: server.command_timeout: 0 is out of range (1 to 86400)", F(command_timeout), 0},
		{"server = { command_timeout = 1; };", NULL, F(command_timeout), 1},
		{"server = { command_timeout = 86400; };", NULL, F(command_timeout), 86400},
		{"server = { command_timeout = 86401; };",
		    "1: server.command_timeout: 86401 is out of range (1 to 86400)", F(command_timeout), 0},
		{"server = { data_timeout = 0L; };",
		    "1: server.data_timeout: 0 is out of range (1 to 86400)", F(data_timeout), 0},
		{"server = { data_timeout = 86400L; };", NULL, F(data_timeout), 86400},
		{"server = { data_timeout = 86401; };",
		    "1: server.data_timeout: 86401 is out of range (1 to 86400)", F(data_timeout), 0},
	};
	struct conf *conf;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].report != NULL) {
			EXPECT(cases[i].text, cases[i].report);
			continue;
		}
		conf = load_ok(cases[i].text);
		ck_assert_int_eq(*(long *)(void *)((char *)conf
		    + cases[i].field), cases[i].value);
		conf_free(conf);
	}
#undef F
}
END_TEST

START_TEST(test_listen_errors)
{
	EXPECT("server = {\n"
	    "  listen = [ \"127.0.0.1:25\",\n"
	    "    \"localhost:25\",\n"
	    "    \"127.0.0.1:0\",\n"
	    "    \"[::1]:65536\",\n"
	    "    \"::1:25\",\n"
	    "    \"127.0.0.1:25\",\n"
	    "    \"[::1]:25\" ];\n"
	    "};\n",
	    "3: server.listen[1]: \"localhost:25\" is not a numeric ADDRESS:PORT or [IPV6-ADDRESS]:PORT",
	    "4: server.listen[2]: \"127.0.0.1:0\": port 0 is not allowed (1 to 65535)",
	    "5: server.listen[3]: \"[::1]:65536\": port 65536 is over 65535",
	    "6: server.listen[4]: \"::1:25\" is not a numeric ADDRESS:PORT or [IPV6-ADDRESS]:PORT",
	    "7: server.listen[5]: \"127.0.0.1:25\" is listed twice");
	EXPECT("\nserver = { listen = [ ]; };\n",
	    "2: server.listen: at least one address is needed");
}
END_TEST

START_TEST(test_parse_listen)
{
	static const char *const bad[] = {
		"", ":", ":25", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:123456",
		"127.0.0.1:+25", "127.0.0.1:-25", "127.0.0.1: 25",
		"127.0.0.1:25 ", "127.0.0.1:25x", "127.0.0.1:0x19",
		"127.1:25", "0x7f.0.0.1:25", "127.0.0.256:25", " 127.0.0.1:25",
		"localhost:25", "mx.example.org:25", "*:25",
		"::1:25", "[::1]", "[::1]:", "[::1]25", "[::1:25", "::1]:25",
		"[]:25", "[127.0.0.1]:25", "[::1]:25:26", "[fe80::1%lo]:25",
		"[::g]:25", "[::1]:65536",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000]:25",
	};
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = 0;
	char a[INET6_ADDRSTRLEN];
	size_t i;

	ck_assert_int_eq(conf_parse_listen("127.0.0.1:2525", &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_uint_eq(len, sizeof(*sin));
	ck_assert_uint_eq(ntohs(sin->sin_port), 2525);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);

	ck_assert_int_eq(conf_parse_listen("0.0.0.0:65535", &ss, &len), 0);
	ck_assert_uint_eq(ntohs(sin->sin_port), 65535);
	ck_assert_uint_eq(sin->sin_addr.s_addr, 0);

	ck_assert_int_eq(conf_parse_listen("192.0.2.1:1", &ss, &len), 0);
	ck_assert_uint_eq(ntohs(sin->sin_port), 1);
	ck_assert_str_eq(addr_text(&ss, a, sizeof(a)), "192.0.2.1");

	ck_assert_int_eq(conf_parse_listen("[::]:25", &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_uint_eq(len, sizeof(*sin6));
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 25);
	ck_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));

	ck_assert_int_eq(conf_parse_listen("[2001:DB8::1]:0025", &ss, &len), 0);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 25);
	ck_assert_str_eq(addr_text(&ss, a, sizeof(a)), "2001:db8::1");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(conf_parse_listen(bad[i], &ss, &len) == -1,
		    "\"%s\" was accepted", bad[i]);
}
END_TEST

START_TEST(test_paths)
{
	EXPECT("application = {\n"
	    "  maildir = {\n"
	    "    path = \"spool/pollsmtpd\";\n"
	    "  };\n"
	    "};\n"
	    "server = { pid_file = \"run/x.pid\"; };\n"
	    "log = {\n"
	    "  file = \"log/x.log\";\n"
	    "};\n",
	    "3: application.maildir.path: \"spool/pollsmtpd\" is not an absolute path",
	    "6: server.pid_file: \"run/x.pid\" is not an absolute path",
	    "8: log.file: \"log/x.log\" is not an absolute path or \"\" (stderr)");
	EXPECT("application = { maildir = { path = \"\"; }; };\n"
	    "server = { pid_file = \"\"; };\n",
	    "1: application.maildir.path: \"\" is not an absolute path",
	    "2: server.pid_file: \"\" is not an absolute path");
}
END_TEST

START_TEST(test_names)
{
	struct conf *conf;

	EXPECT("hostname = \"mx example\";\n"
	    "server = {\n"
	    "  user = \"\";\n"
	    "  group = \"a\\tb\";\n"
	    "};\n",
	    "1: hostname: \"mx example\" is not a host name (printable, no spaces)",
	    "3: server.user: \"\" is not a user name (printable, no spaces)",
	    "4: server.group: \"a\\x09b\" is not a group name (printable, no spaces)");
	EXPECT("hostname = \"\";\n",
	    "1: hostname: \"\" is not a host name (printable, no spaces)");
	EXPECT("hostname = \"caf\\xe9\";\n",
	    "1: hostname: \"caf\\xe9\" is not a host name (printable, no spaces)");

	conf = load_ok("hostname = \"[192.0.2.1]\";\n"
	    "server = { user = \"_smtp\"; group = \"mail\"; };\n");
	ck_assert_str_eq(conf->hostname, "[192.0.2.1]");
	ck_assert_str_eq(conf->user, "_smtp");
	ck_assert_str_eq(conf->group, "mail");
	conf_free(conf);
}
END_TEST

START_TEST(test_long_value_is_cut_in_report)
{
	char text[1024];
	char value[401];
	int n;

	memset(value, 'a', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	n = snprintf(text, sizeof(text), "local = { domains = [ \"%s.org\" ]; };\n",
	    value);
	ck_assert(n > 0 && (size_t)n < sizeof(text));
	ck_assert_ptr_null(load_text(text));
	ck_assert_uint_eq(nreports, 1);
	ck_assert_ptr_nonnull(strstr(reports[0], ":1: local.domains[0]: \"aaaa"));
	ck_assert_ptr_nonnull(strstr(reports[0], "a\"... is not a domain name"));
	ck_assert_uint_lt(strlen(reports[0]), strlen(conf_path) + 200);
}
END_TEST

START_TEST(test_users)
{
	struct conf *conf;
	char text[512];
	int n;

	EXPECT("local = {\n"
	    "  users = [ \"alice\", \".hidden\", \"..\", \"a/b\", \"Alice\",\n"
	    "    \"x_y-z+w.v\", \"\", \"caf\\xc3\\xa9\", \"a b\",\n"
	    "    \"12345678901234567890123456789012345678901234567890123456789012345\" ];\n"
	    "  postmaster = \"nobody\";\n"
	    "};\n",
	    "2: local.users[1]: \".hidden\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)",
	    "2: local.users[2]: \"..\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)",
	    "2: local.users[3]: \"a/b\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)",
	    "2: local.users[4]: \"Alice\" is listed twice",
	    "3: local.users[6]: \"\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)",
	    "3: local.users[7]: \"caf\\xc3\\xa9\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)",
	    "3: local.users[8]: \"a b\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)",
	    "4: local.users[9]: \"12345678901234567890123456789012345678901234567890123456789012345\" is not a mailbox name (letters, digits, '.', '-', '_', '+', no leading '.', at most 64)");

	/* 64 octets is the longest local part RFC 5321 allows, so it is fine. */
	n = snprintf(text, sizeof(text),
	    "local = { users = [ \"%s\" ]; postmaster = \"%s\"; };\n",
	    "1234567890123456789012345678901234567890123456789012345678901234",
	    "1234567890123456789012345678901234567890123456789012345678901234");
	ck_assert(n > 0 && (size_t)n < sizeof(text));
	conf = load_ok(text);
	ck_assert_uint_eq(strlen(conf->users[0]), 64);
	conf_free(conf);

	conf = load_ok("local = { users = [ \"Alice\", \"x.y\" ]; postmaster = \"ALICE\"; };\n");
	ck_assert_str_eq(conf->postmaster, "Alice");
	conf_free(conf);
}
END_TEST

START_TEST(test_postmaster)
{
	EXPECT("local = {\n"
	    "  users = [ \"alice\" ];\n"
	    "  postmaster = \"carol\";\n"
	    "};\n",
	    "3: local.postmaster: \"carol\" is not one of local.users");
	/* The postmaster may come before the users. */
	EXPECT("local = {\n"
	    "  postmaster = \"bob\";\n"
	    "  users = [ \"alice\" ];\n"
	    "};\n",
	    "2: local.postmaster: \"bob\" is not one of local.users");
	/* Without local.postmaster the default "alice" must still be a user. */
	EXPECT("local = {\n"
	    "  users = [ \"carol\" ];\n"
	    "};\n",
	    "2: local.postmaster: not set, and the default \"alice\" is not one of local.users");
	EXPECT("local = { users = [ ]; postmaster = \"alice\"; };\n",
	    "1: local.postmaster: \"alice\" is not one of local.users");
	EXPECT("local = { postmaster = \"carol\"; };\n",
	    "1: local.postmaster: \"carol\" is not one of local.users");
	/* With users, there must be a postmaster (RFC 5321 4.5.1). */
	EXPECT("local = { postmaster = \"\"; };\n",
	    "1: local.postmaster: \"\" is allowed only with local.users = [ ] or an alias named postmaster");
}
END_TEST

START_TEST(test_domains)
{
	struct conf *conf;

	EXPECT("local = {\n"
	    "  domains = [ \"example.org\", \"-a.org\", \"a-.org\", \"a..org\",\n"
	    "    \".org\", \"org.\", \"a_b.org\", \"192.0.2.1\", \"ex ample.org\",\n"
	    "    \"EXAMPLE.ORG\", \"[192.0.2.1]\", \"\",\n"
	    "    \"a234567890123456789012345678901234567890123456789012345678901234.org\" ];\n"
	    "};\n",
	    "2: local.domains[1]: \"-a.org\" is not a domain name (letters, digits, '-', dots)",
	    "2: local.domains[2]: \"a-.org\" is not a domain name (letters, digits, '-', dots)",
	    "2: local.domains[3]: \"a..org\" is not a domain name (letters, digits, '-', dots)",
	    "3: local.domains[4]: \".org\" is not a domain name (letters, digits, '-', dots)",
	    "3: local.domains[5]: \"org.\" is not a domain name (letters, digits, '-', dots)",
	    "3: local.domains[6]: \"a_b.org\" is not a domain name (letters, digits, '-', dots)",
	    "3: local.domains[7]: \"192.0.2.1\" is not a domain name (letters, digits, '-', dots)",
	    "3: local.domains[8]: \"ex ample.org\" is not a domain name (letters, digits, '-', dots)",
	    "4: local.domains[9]: \"EXAMPLE.ORG\" is listed twice",
	    "4: local.domains[10]: \"[192.0.2.1]\" is not a domain name (letters, digits, '-', dots)",
	    "4: local.domains[11]: \"\" is not a domain name (letters, digits, '-', dots)",
	    "5: local.domains[12]: \"a234567890123456789012345678901234567890123456789012345678901234.org\" is not a domain name (letters, digits, '-', dots)");

	conf = load_ok("local = { domains = [ \"LocalHost\", \"xn--bcher-kva.Example\",\n"
	    "  \"3com.com\", \"a.b-c.d9\",\n"
	    "  \"a23456789012345678901234567890123456789012345678901234567890123.org\" ]; };\n");
	ck_assert_uint_eq(conf->ndomains, 5);
	ck_assert_str_eq(conf->domains[0], "localhost");
	ck_assert_str_eq(conf->domains[1], "xn--bcher-kva.example");
	ck_assert_str_eq(conf->domains[2], "3com.com");
	ck_assert_str_eq(conf->domains[3], "a.b-c.d9");
	conf_free(conf);
}
END_TEST

START_TEST(test_network_errors)
{
	EXPECT("relay = {\n"
	    "  networks = [ \"10.0.0.0/8\", \"10.0.0.0/33\", \"::/129\",\n"
	    "    \"10.0.0.0/\", \"/8\", \"10.0.0/8\", \"10.0.0.0/8x\",\n"
	    "    \"fe80::1%lo\", \"host.example\", \"10.0.0.0/ 8\",\n"
	    "    \"10.0.0.0/0008\", \"10.0.0.0/-1\", \"\" ];\n"
	    "};\n",
	    "2: relay.networks[1]: \"10.0.0.0/33\": prefix length 33 is over 32",
	    "2: relay.networks[2]: \"::/129\": prefix length 129 is over 128",
	    "3: relay.networks[3]: \"10.0.0.0/\" is not a numeric ADDRESS/PREFIX",
	    "3: relay.networks[4]: \"/8\" is not a numeric ADDRESS/PREFIX",
	    "3: relay.networks[5]: \"10.0.0/8\" is not a numeric ADDRESS/PREFIX",
	    "3: relay.networks[6]: \"10.0.0.0/8x\" is not a numeric ADDRESS/PREFIX",
	    "4: relay.networks[7]: \"fe80::1%lo\" is not a numeric ADDRESS/PREFIX",
	    "4: relay.networks[8]: \"host.example\" is not a numeric ADDRESS/PREFIX",
	    "4: relay.networks[9]: \"10.0.0.0/ 8\" is not a numeric ADDRESS/PREFIX",
	    "5: relay.networks[10]: \"10.0.0.0/0008\" is not a numeric ADDRESS/PREFIX",
	    "5: relay.networks[11]: \"10.0.0.0/-1\" is not a numeric ADDRESS/PREFIX",
	    "5: relay.networks[12]: \"\" is not a numeric ADDRESS/PREFIX");
}
END_TEST

/*
 * Issue 12: reports that say exactly what is wrong, and a warning that
 * does not stop the load.
 */
START_TEST(test_precise_reports)
{
	struct conf *conf;
	char where[PATH_MAX + 16], want[PATH_MAX + 32];
	int n;

	EXPECT("server = {\n"
	    "  listen = [ \"127.0.0.1:99999\", \"[::1]:0\",\n"
	    "    \"127.0.0.1:123456789012345678901234567890\" ];\n"
	    "  max_connections = 3000000000;\n"
	    "  max_recipients = 99999999999999999999;\n"
	    "  max_message_size = 0x100000000;\n"
	    "  command_timeout = 86401;\n"
	    "};\n"
	    "relay = { networks = [ \"10.0.0.0/33\", \"::1/1000000\" ]; };\n",
	    "2: server.listen[0]: \"127.0.0.1:99999\": port 99999 is over 65535",
	    "2: server.listen[1]: \"[::1]:0\": port 0 is not allowed (1 to 65535)",
	    "3: server.listen[2]: \"127.0.0.1:123456789012345678901234567890\": "
	    "the port is over 65535",
	    "4: server.max_connections: 3000000000 is out of range (1 to 2147483647)",
	    "5: server.max_recipients: 99999999999999999999 is out of range "
	    "(1 to 2147483647)",
	    "6: server.max_message_size: 0x100000000 is out of range "
	    "(1024 to 2147483647)",
	    "7: server.command_timeout: 86401 is out of range (1 to 86400)",
	    "9: relay.networks[0]: \"10.0.0.0/33\": prefix length 33 is over 32",
	    "9: relay.networks[1]: \"::1/1000000\": the prefix length is over 128");

	/* Host bits: a warning, and the network as it is used. */
	conf = load_text("relay = { networks = [ \"10.0.0.1/8\",\n"
	    "  \"2001:db8::1/32\", \"192.0.2.0/24\" ]; };\n");
	ck_assert_ptr_nonnull(conf);
	ck_assert_uint_eq(nreports, 2);
	n = snprintf(want, sizeof(want), "%s:1: warning: relay.networks[0]: "
	    "\"10.0.0.1/8\" has host bits set: taken as 10.0.0.0/8", conf_path);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(reports[0], want);
	n = snprintf(want, sizeof(want), "%s:2: warning: relay.networks[1]: "
	    "\"2001:db8::1/32\" has host bits set: taken as 2001:db8::/32",
	    conf_path);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(reports[1], want);
	ck_assert_uint_eq(conf->nrelay_networks, 3);
	conf_free(conf);

	/* In range, written in any way libconfig takes, is no problem. */
	conf = load_text("server = { max_connections = 2147483647;\n"
	    "  max_message_size = 3000000000L; };\n");
	ck_assert_ptr_null(conf);
	n = snprintf(want, sizeof(want), "%s:2: server.max_message_size: "
	    "3000000000 is out of range (1024 to 2147483647)", conf_path);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_uint_eq(nreports, 1);
	ck_assert_str_eq(reports[0], want);
	conf = load_text("server = { max_connections = 2147483647; };\n");
	ck_assert_ptr_nonnull(conf);
	ck_assert_int_eq(conf->max_connections, 2147483647);

	/* conf_where(): the line of a key, or line 0 for a default. */
	ck_assert_int_eq(conf_is_default(conf, "server.user"), 1);
	ck_assert_int_eq(conf_is_default(conf, "server.max_connections"), 0);
	conf_where(conf, "server.max_connections", where, sizeof(where));
	n = snprintf(want, sizeof(want), "%s:1", conf_path);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(where, want);
	conf_where(conf, "server.user", where, sizeof(where));
	n = snprintf(want, sizeof(want), "%s:0", conf_path);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(where, want);
	conf_free(conf);
}
END_TEST

START_TEST(test_where_in_include)
{
	char inc[PATH_MAX + 16], where[PATH_MAX + 32], want[PATH_MAX + 32];
	struct conf *conf;
	int n = snprintf(inc, sizeof(inc), "%s/server.conf", tmpdir);

	ck_assert(n > 0 && (size_t)n < sizeof(inc));
	write_file(inc, "server = {\n\n  user = \"mail\";\n};\n");
	conf = load_ok("hostname = \"h\";\n@include \"server.conf\"\n");
	conf_where(conf, "server.user", where, sizeof(where));
	n = snprintf(want, sizeof(want), "%s:3", inc);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(where, want);
	conf_where(conf, "hostname", where, sizeof(where));
	n = snprintf(want, sizeof(want), "%s:1", conf_path);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(where, want);
	conf_free(conf);
}
END_TEST

START_TEST(test_parse_network)
{
	static const struct {
		const char *text;
		int family;
		const char *network;
	} good[] = {
		{"127.0.0.0/8", AF_INET, "127.0.0.0/8"},
		{"10.1.2.3/8", AF_INET, "10.0.0.0/8"},
		{"192.168.255.255/23", AF_INET, "192.168.254.0/23"},
		{"192.168.1.129/25", AF_INET, "192.168.1.128/25"},
		{"192.0.2.1", AF_INET, "192.0.2.1/32"},
		{"192.0.2.1/32", AF_INET, "192.0.2.1/32"},
		{"255.255.255.255/0", AF_INET, "0.0.0.0/0"},
		{"::1", AF_INET6, "::1/128"},
		{"::1/128", AF_INET6, "::1/128"},
		{"2001:db8:ffff::1/33", AF_INET6, "2001:db8:8000::/33"},
		{"2001:DB8::/32", AF_INET6, "2001:db8::/32"},
		{"ffff::1/0", AF_INET6, "::/0"},
		{"fe80::1:2:3:4/64", AF_INET6, "fe80::/64"},
		{"::ffff:10.1.2.3/104", AF_INET6, "::ffff:10.0.0.0/104"},
	};
	struct conf_network net;
	char n[64];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(conf_parse_network(good[i].text, &net) == 0,
		    "\"%s\" was refused", good[i].text);
		ck_assert_int_eq(net.family, good[i].family);
		ck_assert_str_eq(network_text(&net, n, sizeof(n)), good[i].network);
	}
	ck_assert_int_eq(conf_parse_network("10.0.0.0/33", &net), -1);
	ck_assert_int_eq(conf_parse_network("::/129", &net), -1);
	ck_assert_int_eq(conf_parse_network("10.0.0.0/8/8", &net), -1);
	ck_assert_int_eq(conf_parse_network("127.1/8", &net), -1);
	ck_assert_int_eq(conf_parse_network("[::1]/128", &net), -1);
}
END_TEST

/* client - a socket address of the family, text and port given */
static const struct sockaddr *
client(struct sockaddr_storage *ss, const char *text)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(40000);
		ck_assert_int_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
		ck_assert_int_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

START_TEST(test_relay_allowed)
{
	struct conf *conf = conf_defaults();
	struct sockaddr_storage ss;
	struct sockaddr_un sun;

	ck_assert_ptr_nonnull(conf);
	/* Defaults: the loopback networks, whatever the socket family. */
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "127.0.0.1")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "127.255.255.254")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "128.0.0.1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::1")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::2")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:127.0.0.1")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:192.0.2.1")), 0);
	/* IPv4-compatible (deprecated) is not IPv4-mapped. */
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::127.0.0.1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, NULL), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ck_assert_int_eq(conf_relay_allowed(conf, (struct sockaddr *)&sun), 0);
	conf_free(conf);

	conf = load_ok("relay = { networks = [ \"10.0.0.0/8\", \"192.168.1.128/25\",\n"
	    "  \"2001:db8::/32\", \"::ffff:172.16.0.0/108\" ]; };\n");
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "10.0.0.0")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "10.255.1.1")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "11.0.0.1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "9.255.255.255")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "192.168.1.128")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "192.168.1.255")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "192.168.1.127")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "127.0.0.1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "2001:db8::5")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "2001:db8:ffff:ffff::")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "2001:db9::")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:10.1.1.1")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:11.1.1.1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:192.168.1.200")), 1);
	/* A mapped IPv6 network matches mapped clients, not plain IPv4 ones. */
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:172.16.3.4")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "172.16.3.4")), 0);
	conf_free(conf);

	conf = load_ok("relay = { networks = [ \"0.0.0.0/0\" ]; };\n");
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "203.0.113.9")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::ffff:203.0.113.9")), 1);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "2001:db8::1")), 0);
	conf_free(conf);

	conf = load_ok("relay = { networks = [ ]; };\n");
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "127.0.0.1")), 0);
	ck_assert_int_eq(conf_relay_allowed(conf, client(&ss, "::1")), 0);
	conf_free(conf);
}
END_TEST

START_TEST(test_lookups)
{
	struct conf *conf = load_ok(
	    "local = {\n"
	    "  domains = [ \"Example.ORG\", \"mail.example.net\" ];\n"
	    "  users = [ \"Alice\", \"bob\" ];\n"
	    "  postmaster = \"alice\";\n"
	    "};\n");

	ck_assert_str_eq(conf_find_user(conf, "alice"), "Alice");
	ck_assert_str_eq(conf_find_user(conf, "ALICE"), "Alice");
	ck_assert_str_eq(conf_find_user(conf, "BoB"), "bob");
	ck_assert_ptr_null(conf_find_user(conf, "alic"));
	ck_assert_ptr_null(conf_find_user(conf, "alice2"));
	ck_assert_ptr_null(conf_find_user(conf, "carol"));
	ck_assert_ptr_null(conf_find_user(conf, ""));
	ck_assert_ptr_null(conf_find_user(conf, NULL));
	ck_assert_int_eq(conf_is_local_domain(conf, "example.org"), 1);
	ck_assert_int_eq(conf_is_local_domain(conf, "EXAMPLE.org"), 1);
	ck_assert_int_eq(conf_is_local_domain(conf, "Mail.Example.Net"), 1);
	ck_assert_int_eq(conf_is_local_domain(conf, "example.net"), 0);
	ck_assert_int_eq(conf_is_local_domain(conf, "sub.example.org"), 0);
	ck_assert_int_eq(conf_is_local_domain(conf, "example.org.evil"), 0);
	ck_assert_int_eq(conf_is_local_domain(conf, ""), 0);
	ck_assert_int_eq(conf_is_local_domain(conf, NULL), 0);
	conf_free(conf);
}
END_TEST

START_TEST(test_relay_only)
{
	struct conf *conf;
	struct conf_target t;

	/* No users: the postmaster is "" unless set, and nothing is local. */
	conf = load_ok("local = { users = [ ]; };\n");
	ck_assert_uint_eq(conf->nusers, 0);
	ck_assert_str_eq(conf->postmaster, "");
	ck_assert_int_eq(conf_lookup_local(conf, "postmaster", &t), 1);
	ck_assert_int_eq(t.postmaster, 1);
	ck_assert_ptr_null(t.user);
	ck_assert_ptr_null(t.alias);
	ck_assert_int_eq(conf_lookup_local(conf, "alice", &t), 0);
	conf_free(conf);
	conf = load_ok("local = { users = [ ]; postmaster = \"\"; };\n");
	ck_assert_str_eq(conf->postmaster, "");
	conf_free(conf);
	/* An alias may take the postmaster's mail elsewhere. */
	conf = load_ok("local = { users = [ ];\n"
	    "  aliases = { postmaster = [ \"hostmaster@isp.example\" ]; }; };\n");
	ck_assert_int_eq(conf_lookup_local(conf, "PostMaster", &t), 1);
	ck_assert_ptr_nonnull(t.alias);
	ck_assert_uint_eq(t.alias->nremotes, 1);
	ck_assert_str_eq(t.alias->remotes[0], "hostmaster@isp.example");
	conf_free(conf);
	conf = load_ok("local = { postmaster = \"\";\n"
	    "  aliases = { postmaster = [ \"bob\" ]; }; };\n");
	ck_assert_int_eq(conf_lookup_local(conf, "postmaster", &t), 1);
	ck_assert_ptr_nonnull(t.alias);
	ck_assert_str_eq(t.alias->mailboxes[0], "bob");
	conf_free(conf);
}
END_TEST

START_TEST(test_recipient_delimiter)
{
	struct conf *conf;
	struct conf_target t;

	conf = load_ok("local = { users = [ \"alice\", \"b+c\" ]; };\n");
	ck_assert_str_eq(conf->recipient_delimiter, "+");
	ck_assert_int_eq(conf_lookup_local(conf, "alice+lists", &t), 1);
	ck_assert_str_eq(t.user, "alice");
	ck_assert_int_eq(conf_lookup_local(conf, "ALICE+a+b", &t), 1);
	ck_assert_str_eq(t.user, "alice");
	/* The whole local part first: a user may have the delimiter in it. */
	ck_assert_int_eq(conf_lookup_local(conf, "b+c", &t), 1);
	ck_assert_str_eq(t.user, "b+c");
	ck_assert_int_eq(conf_lookup_local(conf, "+alice", &t), 0);
	ck_assert_int_eq(conf_lookup_local(conf, "alice-x", &t), 0);
	ck_assert_int_eq(conf_lookup_local(conf, "postmaster+x", &t), 1);
	ck_assert_str_eq(t.user, "alice");
	conf_free(conf);

	conf = load_ok("local = { recipient_delimiter = \"\"; };\n");
	ck_assert_int_eq(conf_lookup_local(conf, "alice+lists", &t), 0);
	ck_assert_int_eq(conf_lookup_local(conf, "alice", &t), 1);
	conf_free(conf);
	conf = load_ok("local = { recipient_delimiter = \"-+\"; };\n");
	ck_assert_int_eq(conf_lookup_local(conf, "bob-x+y", &t), 1);
	ck_assert_str_eq(t.user, "bob");
	conf_free(conf);

	EXPECT("local = {\n  recipient_delimiter = \"a\";\n};\n",
	    "2: local.recipient_delimiter: \"a\" is not \"\" or up to 8 of the characters +-_=.~#!$%&'*/?^`{|}");
	EXPECT("local = { recipient_delimiter = 1; };\n",
	    "1: local.recipient_delimiter: expected a string, not an integer");
}
END_TEST

START_TEST(test_catchall)
{
	struct conf *conf;

	conf = load_ok("local = { users = [ \"alice\", \"Bob\" ]; };\n");
	ck_assert_str_eq(conf->catchall, "");
	conf_free(conf);
	conf = load_ok("local = { catchall = \"BOB\"; users = [ \"alice\", \"Bob\" ]; };\n");
	ck_assert_str_eq(conf->catchall, "Bob");
	conf_free(conf);
	EXPECT("local = {\n  catchall = \"carol\";\n};\n",
	    "2: local.catchall: \"carol\" is not one of local.users");
	EXPECT("local = { catchall = [ ]; };\n",
	    "1: local.catchall: expected a string, not an array");
}
END_TEST

START_TEST(test_aliases)
{
	struct conf *conf;
	struct conf_target t;
	const struct conf_alias *a;

	conf = load_ok(
	    "local = {\n"
	    "  domains = [ \"example.org\", \"example.net\" ];\n"
	    "  aliases = {\n"
	    "    info = [ \"alice\", \"bob\", \"Alice+x\" ];\n"
	    "    sales = [ \"info\", \"bob@EXAMPLE.net\", \"Partner@Remote.Example\",\n"
	    "      \"partner@remote.example\", \"Partner@remote.example\" ];\n"
	    "    all = [ \"sales\", \"info\", \"postmaster\" ];\n"
	    "  };\n"
	    "  users = [ \"alice\", \"bob\" ];\n"
	    "};\n");
	ck_assert_uint_eq(conf->naliases, 3);
	a = conf_find_alias(conf, "INFO");
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->nmailboxes, 2);
	ck_assert_str_eq(a->mailboxes[0], "alice");
	ck_assert_str_eq(a->mailboxes[1], "bob");
	ck_assert_uint_eq(a->nremotes, 0);
	a = conf_find_alias(conf, "sales");
	ck_assert_uint_eq(a->nmailboxes, 2);
	/* Local parts keep their case, domains are lower-cased. */
	ck_assert_uint_eq(a->nremotes, 2);
	ck_assert_str_eq(a->remotes[0], "Partner@remote.example");
	ck_assert_str_eq(a->remotes[1], "partner@remote.example");
	a = conf_find_alias(conf, "all");
	ck_assert_uint_eq(a->nmailboxes, 2);
	ck_assert_uint_eq(a->nremotes, 2);
	ck_assert_ptr_null(conf_find_alias(conf, "alice"));
	ck_assert_int_eq(conf_lookup_local(conf, "sales+q3", &t), 1);
	ck_assert_ptr_eq(t.alias, conf_find_alias(conf, "sales"));
	conf_free(conf);

	/* Loops, at each alias on the loop; unknown targets at their lines. */
	EXPECT("local = { aliases = {\n"
	    "  a = [ \"b\" ];\n"
	    "  b = [ \"c\" ];\n"
	    "  c = [ \"a\", \"alice\" ];\n"
	    "  d = [ \"d\" ];\n"
	    "  e = [ \"alice\",\n"
	    "    \"carol\", \"x@[192.0.2.1]\", \"nobody@example.org\",\n"
	    "    \"not an address@x\", \"y@1.2.3.4\", \"\" ];\n"
	    "  f = [ \"e\", \"a\" ];\n"
	    "}; };\n",
	    "2: local.aliases.a: alias loop: a -> b -> c -> a",
	    "3: local.aliases.b: alias loop: b -> c -> a -> b",
	    "4: local.aliases.c: alias loop: c -> a -> b -> c",
	    "5: local.aliases.d: alias loop: d -> d",
	    "7: local.aliases.e: \"carol\" is not a user, an alias or a remote address",
	    "7: local.aliases.e: \"x@[192.0.2.1]\" is not an address (local@domain)",
	    "7: local.aliases.e: \"nobody@example.org\" is not a user, an alias or a remote address",
	    "8: local.aliases.e: \"not an address@x\" is not an address (local@domain)",
	    "8: local.aliases.e: \"y@1.2.3.4\" has no usable domain name",
	    "8: local.aliases.e: \"\" is not a user, an alias or a remote address");
	EXPECT("local = { users = [ ]; aliases = {\n"
	    "  a = [ \"postmaster\" ];\n"
	    "  alice = [ \"x@y.example\" ];\n"
	    "  Bob = [ ];\n"
	    "  c = \"x@y.example\";\n"
	    "  d = [ 1 ];\n"
	    "}; };\n",
	    "4: local.aliases.Bob: at least one target is needed",
	    "5: local.aliases.c: expected a list of strings, not a string",
	    "6: local.aliases.d[0]: expected a string, not an integer",
	    "2: local.aliases.a: \"postmaster\" is not a user, an alias or a remote address (no postmaster is configured)");
	EXPECT("local = { aliases = {\n"
	    "  alice = [ \"bob\" ];\n"
	    "}; };\n",
	    "2: local.aliases.alice: \"alice\" is also one of local.users");
	EXPECT("local = { aliases = [ \"a\" ]; };\n",
	    "1: local.aliases: expected a group of name = [ targets ], not an array");
	/* Nested CONF_ALIAS_DEPTH deep is fine, one more is not. */
	conf = load_ok("local = { aliases = {\n"
	    "  a1 = [ \"a2\" ]; a2 = [ \"a3\" ]; a3 = [ \"a4\" ]; a4 = [ \"a5\" ];\n"
	    "  a5 = [ \"a6\" ]; a6 = [ \"a7\" ]; a7 = [ \"a8\" ]; a8 = [ \"bob\" ];\n"
	    "}; };\n");
	ck_assert_str_eq(conf_find_alias(conf, "a1")->mailboxes[0], "bob");
	conf_free(conf);
	EXPECT("local = { aliases = {\n"
	    "  a0 = [ \"a1\" ];\n"
	    "  a1 = [ \"a2\" ]; a2 = [ \"a3\" ]; a3 = [ \"a4\" ]; a4 = [ \"a5\" ];\n"
	    "  a5 = [ \"a6\" ]; a6 = [ \"a7\" ]; a7 = [ \"a8\" ]; a8 = [ \"bob\" ];\n"
	    "}; };\n",
	    "2: local.aliases.a0: aliases nested deeper than 8");
}
END_TEST

/* read_all - the whole of path, NUL-terminated */
static char *
read_all(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text;
	long size;

	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	ck_assert_int_ge(size, 0);
	rewind(fp);
	text = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)size, fp), (size_t)size);
	text[size] = '\0';
	fclose(fp);
	return text;
}

/* replace_all - text with every from replaced by to (a new string) */
static char *
replace_all(char *text, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to), n = 0, len;
	const char *p, *q;
	char *out, *o;

	for (p = text; (p = strstr(p, from)) != NULL; p += flen)
		n++;
	ck_assert_uint_gt(n, 0);
	len = strlen(text) - n * flen + n * tlen;
	out = malloc(len + 1);
	ck_assert_ptr_nonnull(out);
	for (p = text, o = out; (q = strstr(p, from)) != NULL; p = q + flen) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tlen);
		o += tlen;
	}
	memcpy(o, p, strlen(p) + 1);
	free(text);
	return out;
}

/* key_is_set - does some line of text set key (not in a comment)? */
static int
key_is_set(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *line, *p;

	for (line = text; line != NULL && *line != '\0';
	    line = (p = strchr(line, '\n')) ? p + 1 : NULL) {
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (strncmp(p, key, klen) != 0)
			continue;
		for (p += klen; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '=')
			return 1;
	}
	return 0;
}

/* no_placeholder - is no "@NAME@" left for the Makefile to fill in? */
static int
no_placeholder(const char *text)
{
	const char *p, *q;

	for (p = text; (p = strchr(p, '@')) != NULL; p++) {
		for (q = p + 1; (*q >= 'A' && *q <= 'Z') || *q == '_'; q++)
			;
		if (q > p + 1 && *q == '@')
			return 0;
	}
	return 1;
}

START_TEST(test_installed_conf)
{
	static const char *const keys[] = {
		"application", "debug", "maildir", "path", "fsync", "server",
		"listen", "max_connections", "max_message_size",
		"max_recipients", "command_timeout", "data_timeout", "user",
		"group", "pid_file", "local", "domains", "users", "postmaster",
		"relay", "networks", "log", "file",
	};
	char spool[PATH_MAX + 16], logdir[PATH_MAX + 16], rundir[PATH_MAX + 16];
	char want[PATH_MAX + 64];
	char *text = read_all(TEST_SRCDIR "/../etc/pollsmtpd.conf.in");
	struct conf *conf;
	size_t i;
	int n;

	/* hostname is left to gethostname(), so it is shown commented out. */
	ck_assert_ptr_nonnull(strstr(text, "# hostname = "));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_msg(key_is_set(text, keys[i]), "%s is not set", keys[i]);

	n = snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(spool));
	n = snprintf(logdir, sizeof(logdir), "%s/log", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(logdir));
	n = snprintf(rundir, sizeof(rundir), "%s/run", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(rundir));
	text = replace_all(text, "@SPOOLDIR@", spool);
	text = replace_all(text, "@LOGDIR@", logdir);
	text = replace_all(text, "@RUNDIR@", rundir);
	text = replace_all(text, "@USER@", "pollsmtpd");
	text = replace_all(text, "@GROUP@", "pollsmtpd");
	ck_assert_msg(no_placeholder(text), "a placeholder is left: %s",
	    strchr(text, '@'));

	/* It listens on loopback until configured; all else is the default. */
	conf = load_ok(text);
	ck_assert_uint_eq(conf->nlisten, 2);
	assert_listen(&conf->listen[0], "127.0.0.1:25", AF_INET, "127.0.0.1",
	    25);
	assert_listen(&conf->listen[1], "[::1]:25", AF_INET6, "::1", 25);
	conf_free(conf);
	text = replace_all(text, "[ \"127.0.0.1:25\", \"[::1]:25\" ]",
	    "[ \"0.0.0.0:25\", \"[::]:25\" ]");

	conf = load_ok(text);
	free(text);
	assert_default_values(conf);
	ck_assert_str_eq(conf->maildir_path, spool);
	n = snprintf(want, sizeof(want), "%s/pollsmtpd.log", logdir);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(conf->log_file, want);
	n = snprintf(want, sizeof(want), "%s/pollsmtpd.pid", rundir);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(conf->pid_file, want);
	conf_free(conf);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("load");
	TCase *tp = tcase_create("parsers");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_empty_file_is_all_defaults);
	tcase_add_test(tc, test_every_key_set);
	tcase_add_test(tc, test_empty_lists);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_include);
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_integer_ranges);
	tcase_add_test(tc, test_listen_errors);
	tcase_add_test(tc, test_paths);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_long_value_is_cut_in_report);
	tcase_add_test(tc, test_users);
	tcase_add_test(tc, test_postmaster);
	tcase_add_test(tc, test_domains);
	tcase_add_test(tc, test_network_errors);
	tcase_add_test(tc, test_precise_reports);
	tcase_add_test(tc, test_where_in_include);
	tcase_add_test(tc, test_delivery);
	tcase_add_test(tc, test_relay_allowed);
	tcase_add_test(tc, test_lookups);
	tcase_add_test(tc, test_relay_only);
	tcase_add_test(tc, test_recipient_delimiter);
	tcase_add_test(tc, test_catchall);
	tcase_add_test(tc, test_aliases);
	tcase_add_test(tc, test_installed_conf);
	suite_add_tcase(s, tc);

	tcase_add_test(tp, test_parse_listen);
	tcase_add_test(tp, test_parse_network);
	suite_add_tcase(s, tp);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
