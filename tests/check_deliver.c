/*
 * NAME
 *	check_deliver - Check suite of src/pollsmtpd/deliver
 * SYNOPSIS
 *	tests/check_deliver
 * DESCRIPTION
 *	Each test works on a real Maildir tree in a fresh directory made
 *	with mkdtemp(3) under /tmp (users alice and bob, fsync on), with a
 *	configuration from conf_defaults() naming the host and the local
 *	domains. Messages are built by hand as the session engine hands
 *	them over, and their text waits in a real spool file (the
 *	anonymous file maildir_spool_open() gives), written with write(2)
 *	so that its offset is at the end, as the session leaves it.
 *
 *	The tests look at what an administrator would find: the exact
 *	bytes of each letter and queue file (header lines, the Received:
 *	line of the moment of delivery, then the text), the files that must
 *	not exist after a failure, and the done callbacks a session would
 *	get: their results, their IDs, and in which flush they come. Group
 *	commit is observed through those callbacks and the "group commit:"
 *	DEBUG records (log_set_sink()).
 * DIAGNOSTICS
 *	Exit status 0 when every test passes.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "maildir.h"
#include "session.h"

#define HOST	"mx.example.org"
#define SENDER	"s@sender.example"
#define HELO	"client.example"
#define CLIENT	"192.0.2.1"
#define LOGGED_MAX	(64 * 1024)
#define MAX_DONE	16

/* One done callback's context: what a session would have been told. */
struct done_rec {
	unsigned calls;
	unsigned flush;			/* the flush that called it */
	enum session_store_result result;
	char id[DELIVER_ID_SIZE];
	/* Submitted from within this callback, when not NULL. */
	const struct session_message *then_msg;
	int then_fd;
	struct done_rec *then_ctx;
	struct done_rec *cancel;	/* cancelled from within, or NULL */
	int files_seen;			/* regular files when it was called */
};

static char tmpdir[PATH_MAX];		/* made by mkdtemp() for one test */
static char root[PATH_MAX];		/* tmpdir/root: the Maildir root */
static struct conf *conf;
static struct maildir *md;
static struct deliver *d;
static unsigned flush_no;		/* the flush running now, from 1 */
static char logged[LOGGED_MAX];		/* every record, one a line */
static size_t loggedlen;
static int nregular;			/* nftw() callback's count */

static const struct session_rcpt rcpt_alice = {
	.address = "alice@example.org", .mailbox = "alice", .domain = "example.org", .params = ""
};
static const struct session_rcpt rcpt_bob = {
	.address = "bob@example.org", .mailbox = "bob", .domain = "example.org", .params = ""
};
static const struct session_rcpt rcpt_r1 = {
	.address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example", .params = ""
};

static void xpath(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_strings(char ***v, size_t *n, const char *const *src,
    size_t count);
static struct conf *make_conf(void);
static void log_keep(enum log_level level, const char *record, size_t len,
    void *ctx);
static int rm_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw);
static int count_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw);
static void setup(void);
static void teardown(void);
static int count_files(void);
static int count_entries(const char *dir);
static void only_entry(const char *dir, char *name, size_t namelen);
static char *read_file(const char *path, size_t *lenp);
static int spool_text(const char *text, size_t len);
static void message_init(struct session_message *m,
    const struct session_rcpt *rcpts, size_t nrcpts, size_t size);
static void assert_letter(const char *path, const char *head,
    const char *from, const char *proto, const char *id, time_t before,
    time_t after, const char *text, size_t textlen);
static void assert_only_letter(const char *dir, const char *head,
    const char *id, time_t before, time_t after, const char *text,
    size_t textlen);
static void done_record(void *ctx, enum session_store_result result,
    const char *id);
static unsigned count_logged(const char *what);
static void assert_stored_as(const char *dir, const char *id);
static void other_entry(const char *dir, const char *id, char *name,
    size_t namelen);
static void report_id(const char *id, char *rid, size_t ridlen);
static Suite *deliver_suite(void);

/* xpath - format a path; a cut path would make a test lie */

static void
xpath(char *dst, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, PATH_MAX, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	ck_assert_int_lt(n, PATH_MAX);
}

static void
set_strings(char ***v, size_t *n, const char *const *src, size_t count)
{
	size_t i;

	for (i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = calloc(count, sizeof(**v));
	ck_assert_ptr_nonnull(*v);
	for (i = 0; i < count; i++) {
		(*v)[i] = strdup(src[i]);
		ck_assert_ptr_nonnull((*v)[i]);
	}
	*n = count;
}

static struct conf *
make_conf(void)
{
	static const char *const domains[] = { "example.org", "example.net" };
	static const char *const users[] = { "alice", "bob" };
	struct conf *c;

	ck_assert_ptr_nonnull(c = conf_defaults());
	free(c->hostname);
	ck_assert_ptr_nonnull(c->hostname = strdup(HOST));
	free(c->postmaster);
	ck_assert_ptr_nonnull(c->postmaster = strdup("alice"));
	set_strings(&c->domains, &c->ndomains, domains, 2);
	set_strings(&c->users, &c->nusers, users, 2);
	return c;
}

static void
log_keep(enum log_level level, const char *record, size_t len, void *ctx)
{
	(void)level;
	(void)ctx;
	if (loggedlen + len + 2 > sizeof(logged))
		return;
	memcpy(logged + loggedlen, record, len);
	loggedlen += len;
	logged[loggedlen++] = '\n';
	logged[loggedlen] = '\0';
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path) == -1 ? -1 : 0;
}

static int
count_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode))
		nregular++;
	return 0;
}

static void
setup(void)
{
	xpath(tmpdir, "/tmp/check_deliver.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	xpath(root, "%s/root", tmpdir);
	loggedlen = 0;
	logged[0] = '\0';
	flush_no = 0;
	log_set_sink(log_keep, NULL);
	log_set_debug(0);
	conf = make_conf();
	ck_assert_ptr_nonnull(md = maildir_open(root, HOST, 1));
	ck_assert_int_eq(maildir_add_user(md, "alice"), 0);
	ck_assert_int_eq(maildir_add_user(md, "bob"), 0);
	ck_assert_ptr_nonnull(d = deliver_new(conf, md));
}

static void
teardown(void)
{
	deliver_free(d);
	d = NULL;
	maildir_close(md);
	md = NULL;
	conf_free(conf);
	conf = NULL;
	log_set_sink(NULL, NULL);
	(void)nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* count_files - regular files anywhere under root */

static int
count_files(void)
{
	nregular = 0;
	ck_assert_int_eq(nftw(root, count_entry, 16, FTW_PHYS), 0);
	return nregular;
}

/* count_entries - entries of dir other than . and .., -1 if no dir */

static int
count_entries(const char *dir)
{
	DIR *dp;
	struct dirent *de;
	int n = 0;

	if ((dp = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	(void)closedir(dp);
	return n;
}

/* only_entry - the name of the one regular file dir must hold */

static void
only_entry(const char *dir, char *name, size_t namelen)
{
	DIR *dp;
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(dp = opendir(dir));
	while ((de = readdir(dp)) != NULL) {
		if (de->d_type == DT_DIR)
			continue;
		ck_assert_uint_lt(strlen(de->d_name), namelen);
		memcpy(name, de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	(void)closedir(dp);
	ck_assert_int_eq(n, 1);
}

/* read_file - the whole of path, NUL-terminated for messages */

static char *
read_file(const char *path, size_t *lenp)
{
	struct stat st;
	char *data;
	size_t have = 0;
	ssize_t n;
	int fd;

	ck_assert_int_ge(fd = open(path, O_RDONLY), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_ptr_nonnull(data = malloc((size_t)st.st_size + 1));
	while (have < (size_t)st.st_size
	    && (n = read(fd, data + have, (size_t)st.st_size - have)) > 0)
		have += (size_t)n;
	(void)close(fd);
	ck_assert_uint_eq(have, (size_t)st.st_size);
	data[have] = '\0';
	*lenp = have;
	return data;
}

/* spool_text - a spool file holding text, its offset at the end */

static int
spool_text(const char *text, size_t len)
{
	size_t done = 0;
	ssize_t n;
	int fd;

	ck_assert_int_ge(fd = maildir_spool_open(md), 0);
	while (done < len) {
		n = write(fd, text + done, len - done);
		ck_assert_int_gt(n, 0);
		done += (size_t)n;
	}
	return fd;
}

static void
message_init(struct session_message *m, const struct session_rcpt *rcpts,
    size_t nrcpts, size_t size)
{
	memset(m, 0, sizeof(*m));
	m->helo = HELO;
	m->esmtp = 1;
	m->client_addr = CLIENT;
	m->sender = SENDER;
	m->mail_params = "";
	m->rcpts = rcpts;
	m->nrcpts = nrcpts;
	m->size = size;
	m->octets = size;
}

/*
 * assert_letter - path holds exactly head, the Received: line "from
 * HELO ([ADDR])" (from) "... with ESMTP" (proto) with id and the date
 * of a second in [before, after], then the text.
 */

static void
assert_letter(const char *path, const char *head, const char *from,
    const char *proto, const char *id, time_t before, time_t after,
    const char *text, size_t textlen)
{
	char date[DELIVER_DATE_SIZE];
	char received[512];
	char *got;
	size_t len, hlen, rlen = 0;
	time_t t;
	int n, found = 0;

	got = read_file(path, &len);
	hlen = strlen(head);
	ck_assert_uint_ge(len, hlen);
	ck_assert_msg(memcmp(got, head, hlen) == 0, "%s starts:\n%.*s", path,
	    (int)(len < hlen + 200 ? len : hlen + 200), got);
	for (t = before; t <= after && !found; t++) {
		ck_assert_int_eq(deliver_format_date(t, date, sizeof(date)), 0);
		n = snprintf(received, sizeof(received), "Received: %s by "
		    HOST " (pollsmtpd) with %s id %s; %s\n", from, proto, id,
		    date);
		ck_assert(n > 0 && (size_t)n < sizeof(received));
		rlen = (size_t)n;
		found = len == hlen + rlen + textlen
		    && memcmp(got + hlen, received, rlen) == 0;
	}
	ck_assert_msg(found, "%s: no Received: line of %s as expected "
	    "in:\n%.*s", path, id, (int)(len < hlen + 300 ? len : hlen + 300),
	    got);
	ck_assert(memcmp(got + hlen + rlen, text, textlen) == 0);
	free(got);
}

/*
 * assert_only_letter - root/dir holds one file, and it is the letter
 * head, Received: from the test client with ESMTP under id, then text
 */
static void
assert_only_letter(const char *dir, const char *head, const char *id,
    time_t before, time_t after, const char *text, size_t textlen)
{
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];

	xpath(p, "%s/%s", root, dir);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/%s/%s", root, dir, name);
	assert_letter(p, head, "from " HELO " ([" CLIENT "])", "ESMTP", id,
	    before, after, text, textlen);
}

static void
done_record(void *ctx, enum session_store_result result, const char *id)
{
	struct done_rec *r = ctx;

	r->calls++;
	r->flush = flush_no;
	r->result = result;
	ck_assert_uint_lt(strlen(id), sizeof(r->id));
	memcpy(r->id, id, strlen(id) + 1);
	r->files_seen = count_files();
	if (r->then_msg != NULL) {
		ck_assert_int_eq(deliver_submit(d, "S2", r->then_msg,
		    r->then_fd, done_record, r->then_ctx), 0);
		r->then_msg = NULL;
	}
	if (r->cancel != NULL)
		deliver_cancel(d, r->cancel);
}

/* count_logged - records that contain what */

static unsigned
count_logged(const char *what)
{
	const char *p = logged;
	unsigned n = 0;

	while ((p = strstr(p, what)) != NULL) {
		n++;
		p += strlen(what);
	}
	return n;
}

/* assert_stored_as - dir holds one letter, named for id */

static void
assert_stored_as(const char *dir, const char *id)
{
	char name[MAILDIR_NAME_MAX];
	char got[DELIVER_ID_SIZE];

	only_entry(dir, name, sizeof(name));
	ck_assert_int_eq(maildir_name_id(name, got, sizeof(got)), 0);
	ck_assert_str_eq(got, id);
}

/*
 * One message at once.
 */

/*
 * Two local mailboxes (alice twice: through postmaster, which names
 * her too) and one remote domain with two addresses (one given twice):
 * three files of one name, each exactly its header lines, the
 * Received: line, and a text of several windows from the spool.
 */

START_TEST(test_message_copies)
{
	static const struct session_rcpt rcpts[] = {
		{ .address = "alice@example.org", .mailbox = "alice", .domain = "example.org", .params = "" },
		{ .address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
		{ .address = "postmaster", .mailbox = "alice", .domain = "", .params = "" },
		{ .address = "bob@example.net", .mailbox = "bob", .domain = "example.net", .params = "" },
		{ .address = "R2@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
		{ .address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
	};
	enum { TEXTLEN = 70001 };
	struct session_message msg;
	char id[DELIVER_ID_SIZE];
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	char *text;
	time_t before, after;
	size_t i;
	int fd;

	ck_assert_ptr_nonnull(text = malloc(TEXTLEN));
	for (i = 0; i < TEXTLEN; i++)
		text[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 7 + i / 64)
		    % 26);
	memcpy(text, "Subject: copies\n\n", 17);
	fd = spool_text(text, TEXTLEN);
	message_init(&msg, rcpts, sizeof(rcpts) / sizeof(rcpts[0]), TEXTLEN);
	msg.mail_params = "BODY=8BITMIME";

	before = time(NULL);
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_OK);
	after = time(NULL);
	ck_assert_uint_eq(strlen(id), DELIVER_ID_LEN);
	ck_assert_uint_eq(strspn(id, "0123456789ABCDEF"), DELIVER_ID_LEN);

	xpath(p, "%s/alice/new", root);
	only_entry(p, name, sizeof(name));
	ck_assert_ptr_nonnull(strstr(name, id));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_letter(p, "Return-Path: <" SENDER ">\n"
	    "Delivered-To: alice@example.org\n",
	    "from " HELO " ([" CLIENT "])", "ESMTP", id, before, after, text,
	    TEXTLEN);
	xpath(p, "%s/bob/new/%s", root, name);
	assert_letter(p, "Return-Path: <" SENDER ">\n"
	    "Delivered-To: bob@example.net\n",
	    "from " HELO " ([" CLIENT "])", "ESMTP", id, before, after, text,
	    TEXTLEN);
	xpath(p, "%s/.OTHER_SERVERS/remote.example/%s", root, name);
	assert_letter(p, "X-Envelope-From: <" SENDER "> BODY=8BITMIME\n"
	    "X-Envelope-To: <r1@remote.example>\n"
	    "X-Envelope-To: <R2@remote.example>\n",
	    "from " HELO " ([" CLIENT "])", "ESMTP", id, before, after, text,
	    TEXTLEN);

	/* Three letters, nothing in any tmp/, the spool still anonymous. */
	ck_assert_int_eq(count_files(), 3);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/bob/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_uint_eq(count_logged(id), 7);
	ck_assert_uint_eq(count_logged("status=delivered"), 3);
	ck_assert_uint_eq(count_logged("status=queued"), 3);
	ck_assert_int_eq(close(fd), 0);
	free(text);
}
END_TEST

/*
 * HELO (not EHLO) from an IPv6 client, no parameters: "with SMTP", the
 * address as an IPv6 literal, X-Envelope-From alone on its line; a
 * line end in a header value becomes '?', it never starts a header.
 */

START_TEST(test_message_helo_ipv6)
{
	static const char text[] = "Subject: six\n\nhi\n";
	static const struct session_rcpt rcpts[] = {
		{ .address = "bob@example.org", .mailbox = "bob", .domain = "example.org", .params = "" },
		{ .address = "x@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
	};
	struct session_message msg;
	char id[DELIVER_ID_SIZE];
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	time_t before, after;
	int fd;

	fd = spool_text(text, sizeof(text) - 1);
	message_init(&msg, rcpts, 2, sizeof(text) - 1);
	msg.esmtp = 0;
	msg.helo = "evil\r\nX-Injected: yes";
	msg.client_addr = "2001:db8::25";
	before = time(NULL);
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_OK);
	after = time(NULL);
	xpath(p, "%s/bob/new", root);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/bob/new/%s", root, name);
	assert_letter(p, "Return-Path: <" SENDER ">\n"
	    "Delivered-To: bob@example.org\n",
	    "from evil??X-Injected: yes ([IPv6:2001:db8::25])", "SMTP", id,
	    before, after, text, sizeof(text) - 1);
	(void)close(fd);
}
END_TEST

/*
 * The text is shorter than the message says (a spool cut short): no
 * letter may be stored cut, nothing is left anywhere, the result is a
 * temporary failure, and the next message is stored.
 */

START_TEST(test_message_short_text)
{
	static const char text[] = "Subject: cut\n\nonly this\n";
	static const struct session_rcpt rcpts[] = {
		{ .address = "alice@example.org", .mailbox = "alice", .domain = "example.org", .params = "" },
		{ .address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
	};
	struct session_message msg;
	char id[DELIVER_ID_SIZE];
	char p[PATH_MAX];
	int fd;

	fd = spool_text(text, sizeof(text) - 1);
	message_init(&msg, rcpts, 2, sizeof(text) - 1 + 100);
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_TEMPFAIL);
	ck_assert_uint_eq(strlen(id), DELIVER_ID_LEN);
	ck_assert_int_eq(count_files(), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_uint_eq(count_logged("not stored (temporary failure)"), 1);
	ck_assert_ptr_nonnull(strstr(logged, id));
	ck_assert_uint_eq(count_logged("status="), 0);

	/* The same spool with the right size. */
	msg.size = sizeof(text) - 1;
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_OK);
	ck_assert_int_eq(count_files(), 2);
	(void)close(fd);
}
END_TEST

/* No recipient: refused, nothing made. */

START_TEST(test_message_no_recipient)
{
	struct session_message msg;
	char id[DELIVER_ID_SIZE];
	int fd;

	fd = spool_text("x\n", 2);
	message_init(&msg, &rcpt_alice, 0, 2);
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_TEMPFAIL);
	ck_assert_int_eq(count_files(), 0);
	(void)close(fd);
}
END_TEST

/*
 * Group commit.
 */

/*
 * Two messages submitted: nothing is stored before the flush; the
 * flush stores both and only then tells each, OK, under its own ID.
 */

START_TEST(test_flush_stores_both)
{
	static const char text1[] = "Subject: one\n\n1\n";
	static const char text2[] = "Subject: two\n\n2\n";
	struct session_message m1, m2;
	struct done_rec r1, r2;
	char p[PATH_MAX];
	char name[MAILDIR_NAME_MAX];
	time_t before, after;
	int fd1, fd2;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	fd1 = spool_text(text1, sizeof(text1) - 1);
	fd2 = spool_text(text2, sizeof(text2) - 1);
	message_init(&m1, &rcpt_alice, 1, sizeof(text1) - 1);
	message_init(&m2, &rcpt_r1, 1, sizeof(text2) - 1);
	ck_assert_int_eq(deliver_submit(d, "S1", &m1, fd1, done_record, &r1),
	    0);
	ck_assert_int_eq(deliver_submit(d, "S2", &m2, fd2, done_record, &r2),
	    0);
	ck_assert_uint_eq(deliver_pending(d), 2);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_uint_eq(r1.calls + r2.calls, 0);

	flush_no = 1;
	before = time(NULL);
	ck_assert_uint_eq(deliver_flush(d), 0);
	after = time(NULL);
	ck_assert_uint_eq(deliver_pending(d), 0);
	ck_assert_uint_eq(r1.calls, 1);
	ck_assert_uint_eq(r2.calls, 1);
	ck_assert_int_eq(r1.result, SESSION_STORE_OK);
	ck_assert_int_eq(r2.result, SESSION_STORE_OK);
	ck_assert_uint_eq(strlen(r1.id), DELIVER_ID_LEN);
	ck_assert_uint_eq(strlen(r2.id), DELIVER_ID_LEN);
	ck_assert_str_ne(r1.id, r2.id);
	/* Each was told only when both were in place. */
	ck_assert_int_eq(r1.files_seen, 2);
	ck_assert_int_eq(r2.files_seen, 2);

	xpath(p, "%s/alice/new", root);
	assert_stored_as(p, r1.id);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/alice/new/%s", root, name);
	assert_letter(p, "Return-Path: <" SENDER ">\n"
	    "Delivered-To: alice@example.org\n",
	    "from " HELO " ([" CLIENT "])", "ESMTP", r1.id, before, after,
	    text1, sizeof(text1) - 1);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	assert_stored_as(p, r2.id);
	only_entry(p, name, sizeof(name));
	xpath(p, "%s/.OTHER_SERVERS/remote.example/%s", root, name);
	assert_letter(p, "X-Envelope-From: <" SENDER ">\n"
	    "X-Envelope-To: <r1@remote.example>\n",
	    "from " HELO " ([" CLIENT "])", "ESMTP", r2.id, before, after,
	    text2, sizeof(text2) - 1);
	ck_assert_int_eq(count_files(), 2);

	/* Nothing queued: a flush does nothing and calls no one. */
	flush_no = 2;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(r1.calls + r2.calls, 2);
	(void)close(fd1);
	(void)close(fd2);
}
END_TEST

/*
 * A text in memory (deliver_submit_text(): a message that fit in the
 * spool's window) is stored byte for byte like one from a file, in
 * the same flush as one from a file, in a local and a remote copy.
 */

START_TEST(test_flush_text_in_memory)
{
	static const char text1[] = "Subject: in memory\n\nno file\n";
	static const char text2[] = "Subject: from a file\n\n2\n";
	static const struct session_rcpt two[] = {
		{ .address = "alice@example.org", .mailbox = "alice", .domain = "example.org", .params = "" },
		{ .address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
	};
	struct session_message m1, m2;
	struct done_rec r1, r2;
	time_t before, after;
	int fd2;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	fd2 = spool_text(text2, sizeof(text2) - 1);
	message_init(&m1, two, 2, sizeof(text1) - 1);
	message_init(&m2, &rcpt_bob, 1, sizeof(text2) - 1);
	ck_assert_int_eq(deliver_submit_text(d, "S1", &m1, text1,
	    done_record, &r1), 0);
	ck_assert_int_eq(deliver_submit(d, "S2", &m2, fd2, done_record, &r2),
	    0);
	flush_no = 1;
	before = time(NULL);
	ck_assert_uint_eq(deliver_flush(d), 0);
	after = time(NULL);
	ck_assert_int_eq(r1.result, SESSION_STORE_OK);
	ck_assert_int_eq(r2.result, SESSION_STORE_OK);
	ck_assert_int_eq(r1.files_seen, 3);

	assert_only_letter("alice/new", "Return-Path: <" SENDER ">\n"
	    "Delivered-To: alice@example.org\n",
	    r1.id, before, after, text1, sizeof(text1) - 1);
	assert_only_letter(".OTHER_SERVERS/remote.example",
	    "X-Envelope-From: <" SENDER ">\n"
	    "X-Envelope-To: <r1@remote.example>\n",
	    r1.id, before, after, text1, sizeof(text1) - 1);
	assert_only_letter("bob/new", "Return-Path: <" SENDER ">\n"
	    "Delivered-To: bob@example.org\n",
	    r2.id, before, after, text2, sizeof(text2) - 1);
	ck_assert_int_eq(count_files(), 3);
	(void)close(fd2);
}
END_TEST

/*
 * Fairness: a done callback that submits the next message (a client
 * pipelining) does not get it stored in the same flush. The flush says
 * one message waits; the next flush stores it and tells it.
 */

START_TEST(test_flush_fair)
{
	static const char text[] = "Subject: pipelined\n\nx\n";
	struct session_message m1, m2;
	struct done_rec r1, r2;
	char p[PATH_MAX];
	int fd1, fd2;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	fd1 = spool_text(text, sizeof(text) - 1);
	fd2 = spool_text(text, sizeof(text) - 1);
	message_init(&m1, &rcpt_alice, 1, sizeof(text) - 1);
	message_init(&m2, &rcpt_bob, 1, sizeof(text) - 1);
	r1.then_msg = &m2;
	r1.then_fd = fd2;
	r1.then_ctx = &r2;
	ck_assert_int_eq(deliver_submit(d, "S1", &m1, fd1, done_record, &r1),
	    0);

	flush_no = 1;
	ck_assert_uint_eq(deliver_flush(d), 1);
	ck_assert_uint_eq(r1.calls, 1);
	ck_assert_int_eq(r1.result, SESSION_STORE_OK);
	ck_assert_uint_eq(r2.calls, 0);
	ck_assert_uint_eq(deliver_pending(d), 1);
	ck_assert_int_eq(count_files(), 1);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 0);

	flush_no = 2;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(r1.calls, 1);
	ck_assert_uint_eq(r2.calls, 1);
	ck_assert_uint_eq(r2.flush, 2);
	ck_assert_int_eq(r2.result, SESSION_STORE_OK);
	ck_assert_str_ne(r1.id, r2.id);
	assert_stored_as(p, r2.id);
	ck_assert_int_eq(count_files(), 2);
	(void)close(fd1);
	(void)close(fd2);
}
END_TEST

/*
 * deliver_cancel() before the flush: nothing of that ctx is stored and
 * it is not called; the others are. Cancelled from within an earlier
 * done callback of the same commit, a ctx is not called either.
 */

START_TEST(test_cancel)
{
	static const char text[] = "Subject: gone\n\nx\n";
	struct session_message m1, m2, m3;
	struct done_rec r1, r2, r3;
	char p[PATH_MAX];
	int fd;

	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));
	fd = spool_text(text, sizeof(text) - 1);
	message_init(&m1, &rcpt_alice, 1, sizeof(text) - 1);
	message_init(&m2, &rcpt_bob, 1, sizeof(text) - 1);
	message_init(&m3, &rcpt_r1, 1, sizeof(text) - 1);
	ck_assert_int_eq(deliver_submit(d, "S1", &m1, fd, done_record, &r1),
	    0);
	ck_assert_int_eq(deliver_submit(d, "S2", &m2, fd, done_record, &r2),
	    0);
	ck_assert_int_eq(deliver_submit(d, "S2", &m3, fd, done_record, &r2),
	    0);
	ck_assert_uint_eq(deliver_pending(d), 3);
	deliver_cancel(d, &r2);
	ck_assert_uint_eq(deliver_pending(d), 1);
	flush_no = 1;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(r1.calls, 1);
	ck_assert_int_eq(r1.result, SESSION_STORE_OK);
	ck_assert_uint_eq(r2.calls, 0);
	xpath(p, "%s/alice/new", root);
	assert_stored_as(p, r1.id);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	ck_assert_int_le(count_entries(p), 1);	/* error/ at most */
	ck_assert_int_eq(count_files(), 1);

	/* r1's done call cancels r3, whose message shares the commit. */
	r1.cancel = &r3;
	ck_assert_int_eq(deliver_submit(d, "S1", &m1, fd, done_record, &r1),
	    0);
	ck_assert_int_eq(deliver_submit(d, "S3", &m2, fd, done_record, &r3),
	    0);
	flush_no = 2;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(r1.calls, 2);
	ck_assert_uint_eq(r3.calls, 0);
	ck_assert_uint_eq(r2.calls, 0);
	(void)close(fd);
}
END_TEST

/*
 * deliver_set_max_files(d, 2): three one-recipient messages make two
 * commits in one flush (2 + 1), the first two told before the third
 * is in place; by default the three share one commit. A message with
 * more files than the bound still goes, alone.
 */

START_TEST(test_max_files)
{
	static const char text[] = "Subject: bounded\n\nx\n";
	static const struct session_rcpt three[] = {
		{ .address = "alice@example.org", .mailbox = "alice", .domain = "example.org", .params = "" },
		{ .address = "bob@example.org", .mailbox = "bob", .domain = "example.org", .params = "" },
		{ .address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example", .params = "" },
	};
	struct session_message m[3], big;
	struct done_rec r[3], rbig;
	int fd, i;

	fd = spool_text(text, sizeof(text) - 1);
	message_init(&m[0], &rcpt_alice, 1, sizeof(text) - 1);
	message_init(&m[1], &rcpt_bob, 1, sizeof(text) - 1);
	message_init(&m[2], &rcpt_r1, 1, sizeof(text) - 1);
	log_set_debug(1);

	/* The default bound: one commit. */
	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(deliver_submit(d, "S", &m[i], fd, done_record,
		    &r[i]), 0);
	flush_no = 1;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(count_logged("group commit:"), 1);
	ck_assert_uint_eq(count_logged("group commit: 3 messages, 3 "
	    "recipients"), 1);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(r[i].calls, 1);
		ck_assert_int_eq(r[i].result, SESSION_STORE_OK);
		ck_assert_int_eq(r[i].files_seen, 3);
	}

	/* Two files a commit: two commits, still in one flush. */
	deliver_set_max_files(d, 2);
	loggedlen = 0;
	logged[0] = '\0';
	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(deliver_submit(d, "S", &m[i], fd, done_record,
		    &r[i]), 0);
	flush_no = 2;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(count_logged("group commit:"), 2);
	ck_assert_uint_eq(count_logged("group commit: 2 messages, 2 "
	    "recipients"), 1);
	ck_assert_uint_eq(count_logged("group commit: 1 messages, 1 "
	    "recipients"), 1);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(r[i].calls, 1);
		ck_assert_uint_eq(r[i].flush, 2);
		ck_assert_int_eq(r[i].result, SESSION_STORE_OK);
	}
	/* The first commit's messages were told before the third existed. */
	ck_assert_int_eq(r[0].files_seen, 5);
	ck_assert_int_eq(r[1].files_seen, 5);
	ck_assert_int_eq(r[2].files_seen, 6);
	ck_assert_int_eq(count_files(), 6);

	/* Three files for one message, over the bound of two: alone. */
	loggedlen = 0;
	logged[0] = '\0';
	memset(&rbig, 0, sizeof(rbig));
	memset(r, 0, sizeof(r));
	message_init(&big, three, 3, sizeof(text) - 1);
	ck_assert_int_eq(deliver_submit(d, "S", &m[0], fd, done_record,
	    &r[0]), 0);
	ck_assert_int_eq(deliver_submit(d, "S", &big, fd, done_record, &rbig),
	    0);
	flush_no = 3;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(count_logged("group commit:"), 2);
	ck_assert_uint_eq(count_logged("group commit: 1 messages, 3 "
	    "recipients"), 1);
	ck_assert_int_eq(r[0].result, SESSION_STORE_OK);
	ck_assert_uint_eq(rbig.calls, 1);
	ck_assert_int_eq(rbig.result, SESSION_STORE_OK);
	ck_assert_int_eq(count_files(), 10);
	(void)close(fd);
}
END_TEST

/*
 * The spool.
 */

/* deliver_spool_open(): a file to read and write, with no name anywhere. */

START_TEST(test_spool_open_anonymous)
{
	static const char text[] = "Subject: waits\n\n";
	struct stat st;
	char p[PATH_MAX];
	char buf[sizeof(text)];
	int fd, flags;

	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_ge(fd = deliver_spool_open(d), 0);
	ck_assert_int_ne(flags = fcntl(fd, F_GETFL), -1);
	ck_assert_int_eq(flags & O_ACCMODE, O_RDWR);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0),
	    (ssize_t)sizeof(text) - 1);
	ck_assert(memcmp(buf, text, sizeof(text) - 1) == 0);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(count_entries(p), 0);
}
END_TEST

/*
 * DSN NOTIFY=SUCCESS for local recipients (RFC 3461 6.2): the report
 * is one more file of the same commit, of its own ID.
 */

/* other_entry - the one regular file of dir whose name does not hold id */

static void
other_entry(const char *dir, const char *id, char *name, size_t namelen)
{
	DIR *dp;
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(dp = opendir(dir));
	while ((de = readdir(dp)) != NULL) {
		if (de->d_type == DT_DIR || strstr(de->d_name, id) != NULL)
			continue;
		ck_assert_uint_lt(strlen(de->d_name), namelen);
		memcpy(name, de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	(void)closedir(dp);
	ck_assert_int_eq(n, 1);
}

/* report_id - the ID the log gives the success report of id */

static void
report_id(const char *id, char *rid, size_t ridlen)
{
	char what[64];
	const char *p;

	ck_assert_int_lt(snprintf(what, sizeof(what), "%s success report ",
	    id), (int)sizeof(what));
	ck_assert_ptr_nonnull(p = strstr(logged, what));
	p += strlen(what);
	ck_assert_uint_eq(strspn(p, "0123456789ABCDEF"), DELIVER_ID_LEN);
	ck_assert_uint_lt(DELIVER_ID_LEN, ridlen);
	memcpy(rid, p, DELIVER_ID_LEN);
	rid[DELIVER_ID_LEN] = '\0';
}

/*
 * A local sender (bob): his Maildir gets the message (he asked, through
 * an alias) and one report naming the two local recipients that asked
 * SUCCESS (alice with her ORCPT; bob through the alias, the address
 * given as Original-Recipient), not alice+tag (FAILURE only) nor the
 * remote one (the agent's). Headers only, whatever RET says; ENVID as
 * Original-Envelope-Id; the remote queue file keeps its NOTIFY.
 */

START_TEST(test_report_local_sender)
{
	static const char text[] = "Subject: report test\nFrom: <bob@example.org>\n"
	    "\nthe body line\n";
	static const struct session_rcpt rcpts[] = {
		{ .address = "alice@example.org", .mailbox = "alice", .domain = "example.org",
		  .params = "NOTIFY=SUCCESS ORCPT=rfc822;Alice+2Bx@example.org" },
		{ .address = "alice+tag@example.org", .mailbox = "alice", .domain = "example.org",
		  .params = "NOTIFY=FAILURE" },
		{ .address = "bob@example.org", .original = "team@example.org",
		  .mailbox = "bob", .domain = "example.org", .params = "NOTIFY=DELAY,SUCCESS" },
		{ .address = "r1@remote.example", .mailbox = NULL, .domain = "remote.example",
		  .params = "NOTIFY=SUCCESS" },
	};
	struct session_message msg;
	char id[DELIVER_ID_SIZE], rid[DELIVER_ID_SIZE], what[256];
	char p[PATH_MAX], name[MAILDIR_NAME_MAX];
	char *got;
	size_t len;
	int fd;

	fd = spool_text(text, sizeof(text) - 1);
	message_init(&msg, rcpts, 4, sizeof(text) - 1);
	msg.sender = "bob@example.org";
	msg.mail_params = "RET=FULL ENVID=E+2D1";
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_OK);
	report_id(id, rid, sizeof(rid));
	ck_assert_str_ne(rid, id);
	ck_assert_int_eq(count_files(), 4);
	xpath(p, "%s/alice/new", root);
	assert_stored_as(p, id);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 2);
	other_entry(p, id, name, sizeof(name));
	ck_assert_ptr_nonnull(strstr(name, rid));
	xpath(p, "%s/bob/new/%s", root, name);
	got = read_file(p, &len);
	ck_assert_int_lt(snprintf(what, sizeof(what), "Return-Path: <>\n"
	    "Delivered-To: bob@example.org\nReceived: by " HOST " (pollsmtpd) "
	    "id %s; ", rid), (int)sizeof(what));
	ck_assert_msg(strncmp(got, what, strlen(what)) == 0, "%s", got);
	ck_assert_ptr_nonnull(strstr(got, "\nFrom: MAILER-DAEMON@" HOST));
	ck_assert_ptr_nonnull(strstr(got, "\nTo: <bob@example.org>\n"));
	ck_assert_ptr_nonnull(strstr(got, "\nSubject: Successful Mail "
	    "Delivery Report\n"));
	ck_assert_ptr_nonnull(strstr(got, "report-type=delivery-status"));
	ck_assert_ptr_nonnull(strstr(got, "\n\nOriginal-Envelope-Id: E-1\n"
	    "Reporting-MTA: dns; " HOST "\n"));
	ck_assert_ptr_nonnull(strstr(got, "\n\n"
	    "Original-Recipient: rfc822;Alice+x@example.org\n"
	    "Final-Recipient: rfc822; alice@example.org\n"
	    "Action: delivered\n"
	    "Status: 2.0.0\n"));
	ck_assert_ptr_nonnull(strstr(got, "\n\n"
	    "Original-Recipient: rfc822;team@example.org\n"
	    "Final-Recipient: rfc822; bob@example.org\n"
	    "Action: delivered\n"
	    "Status: 2.0.0\n"));
	ck_assert_ptr_null(strstr(got, "alice+tag"));
	ck_assert_ptr_null(strstr(got, "r1@remote.example"));
	ck_assert_ptr_null(strstr(got, "Remote-MTA"));
	ck_assert_ptr_nonnull(strstr(got, "Content-Type: text/rfc822-headers\n"
	    "\nReceived: from " HELO));
	ck_assert_int_lt(snprintf(what, sizeof(what), "id %s; ", id),
	    (int)sizeof(what));
	ck_assert_ptr_nonnull(strstr(got, what));
	ck_assert_ptr_nonnull(strstr(got, "\nSubject: report test\n"
	    "From: <bob@example.org>\n\n--"));
	ck_assert_ptr_null(strstr(got, "the body line"));
	ck_assert_ptr_null(strstr(got, "message/rfc822"));
	free(got);
	xpath(p, "%s/.OTHER_SERVERS/remote.example", root);
	assert_stored_as(p, id);
	ck_assert_int_lt(snprintf(what, sizeof(what), "%s success report %s "
	    "queued for <bob@example.org> (Maildir of bob)", id, rid),
	    (int)sizeof(what));
	ck_assert_uint_eq(count_logged(what), 1);
	ck_assert_int_lt(snprintf(what, sizeof(what), "%s from=<> "
	    "to=<bob@example.org> success report of %s, 2 recipients "
	    "delivered", rid, id), (int)sizeof(what));
	ck_assert_uint_eq(count_logged(what), 1);
	(void)close(fd);
}
END_TEST

/*
 * A remote sender: the report is a queue letter for the sender's
 * domain (lower-cased), from <> to the sender, which the agent sends,
 * next to the message's own queue file for that domain (whose
 * recipient is the agent's to report). alice asked twice (also as
 * alice+tag): both addresses are reported.
 */

START_TEST(test_report_remote_sender)
{
	static const char text[] = "Subject: far\n\nbody\n";
	static const struct session_rcpt rcpts[] = {
		{ .address = "alice@example.org", .mailbox = "alice", .domain = "example.org",
		  .params = "NOTIFY=SUCCESS" },
		{ .address = "alice+tag@example.org", .mailbox = "alice", .domain = "example.org",
		  .params = "NOTIFY=FAILURE,SUCCESS" },
		{ .address = "peer@sender.example", .mailbox = NULL, .domain = "sender.example",
		  .params = "NOTIFY=SUCCESS" },
	};
	struct session_message msg;
	char id[DELIVER_ID_SIZE], rid[DELIVER_ID_SIZE], what[256];
	char p[PATH_MAX], name[MAILDIR_NAME_MAX];
	char *got;
	size_t len;
	int fd;

	fd = spool_text(text, sizeof(text) - 1);
	message_init(&msg, rcpts, 3, sizeof(text) - 1);
	msg.sender = "S@Sender.EXAMPLE";
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_OK);
	report_id(id, rid, sizeof(rid));
	ck_assert_int_eq(count_files(), 3);
	xpath(p, "%s/alice/new", root);
	assert_stored_as(p, id);
	/* The message's queue file and the report, side by side. */
	xpath(p, "%s/.OTHER_SERVERS/sender.example", root);
	ck_assert_int_eq(count_entries(p), 3);	/* and error/ */
	other_entry(p, id, name, sizeof(name));
	ck_assert_ptr_nonnull(strstr(name, rid));
	xpath(p, "%s/.OTHER_SERVERS/sender.example/%s", root, name);
	got = read_file(p, &len);
	ck_assert_int_lt(snprintf(what, sizeof(what), "X-Envelope-From: <>\n"
	    "X-Envelope-To: <S@Sender.EXAMPLE>\nReceived: by " HOST
	    " (pollsmtpd) id %s; ", rid), (int)sizeof(what));
	ck_assert_msg(strncmp(got, what, strlen(what)) == 0, "%s", got);
	ck_assert_ptr_nonnull(strstr(got, "\nFinal-Recipient: rfc822; "
	    "alice@example.org\nAction: delivered\n"));
	ck_assert_ptr_nonnull(strstr(got, "\nFinal-Recipient: rfc822; "
	    "alice+tag@example.org\nAction: delivered\n"));
	ck_assert_ptr_null(strstr(got, "Original-Envelope-Id"));
	ck_assert_ptr_null(strstr(got, "Original-Recipient"));
	ck_assert_ptr_null(strstr(got, "peer@"));
	free(got);
	ck_assert_uint_eq(count_logged("(domain sender.example)"), 1);
	(void)close(fd);
}
END_TEST

/*
 * No report: NOTIFY without SUCCESS, or none; the null sender; only a
 * remote recipient asked (the agent's); a sender that cannot be
 * answered. The message is stored all the same.
 */

START_TEST(test_report_none)
{
	static const struct {
		const char *sender;
		const char *params;
		int remote;
		int smtputf8;
		const char *logged;
	} cases[] = {
		{ "bob@example.org", "NOTIFY=NEVER", 0, 0, NULL },
		{ "bob@example.org", "NOTIFY=FAILURE", 0, 0, NULL },
		{ "bob@example.org", "NOTIFY=FAILURE,DELAY ORCPT=rfc822;SUCCESS", 0, 0, NULL },
		{ "bob@example.org", "", 0, 0, NULL },
		{ "", "NOTIFY=SUCCESS", 0, 0, NULL },
		{ "bob@example.org", "NOTIFY=SUCCESS", 1, 0, NULL },
		{ "bob@[192.0.2.7]", "NOTIFY=SUCCESS", 0, 0, "cannot be queued" },
		/* Without SMTPUTF8 a UTF-8 sender is no address. */
		{ "j\xc3\xb6@example.org", "NOTIFY=SUCCESS", 0, 0, "is no address" },
	};
	static const char text[] = "Subject: none\n\nbody\n";
	struct session_rcpt rcpt;
	struct session_message msg;
	char id[DELIVER_ID_SIZE];
	size_t i;
	int fd, files = 0;

	fd = spool_text(text, sizeof(text) - 1);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rcpt = cases[i].remote ? rcpt_r1 : rcpt_alice;
		rcpt.params = cases[i].params;
		message_init(&msg, &rcpt, 1, sizeof(text) - 1);
		msg.sender = cases[i].sender;
		msg.smtputf8 = cases[i].smtputf8;
		ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id,
		    sizeof(id)), SESSION_STORE_OK);
		ck_assert_int_eq(count_files(), ++files);
		ck_assert_msg(count_logged(" success report ") == 0,
		    "case %zu: %s", i, logged);
		if (cases[i].logged != NULL)
			ck_assert_msg(count_logged(cases[i].logged) == 1,
			    "case %zu: %s", i, logged);
	}
	(void)close(fd);
}
END_TEST

/*
 * All or none: when the message cannot be stored (its spool is short)
 * no report is made; when the report cannot be (the sender's queue
 * directory is a file), the message is not stored either: 451, and
 * nothing is left anywhere.
 */

START_TEST(test_report_all_or_none)
{
	static const char text[] = "Subject: both\n\nbody\n";
	struct session_rcpt rcpt = rcpt_alice;
	struct session_message msg;
	char id[DELIVER_ID_SIZE];
	char p[PATH_MAX];
	int fd, bad;

	rcpt.params = "NOTIFY=SUCCESS";
	fd = spool_text(text, sizeof(text) - 1);
	message_init(&msg, &rcpt, 1, sizeof(text) - 1);
	xpath(p, "%s/.OTHER_SERVERS/sender.example", root);
	ck_assert_int_ge(bad = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600), 0);
	(void)close(bad);
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_TEMPFAIL);
	ck_assert_int_eq(count_files(), 1);	/* the planted file */
	xpath(p, "%s/alice/new", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/alice/tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	xpath(p, "%s/.OTHER_SERVERS/.tmp", root);
	ck_assert_int_eq(count_entries(p), 0);
	ck_assert_uint_eq(count_logged(" success report "), 0);
	xpath(p, "%s/.OTHER_SERVERS/sender.example", root);
	ck_assert_int_eq(unlink(p), 0);

	msg.size = sizeof(text) - 1 + 10;
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_TEMPFAIL);
	ck_assert_int_eq(count_files(), 0);
	ck_assert_uint_eq(count_logged(" success report "), 0);

	/* Both can be stored: both are. */
	msg.size = sizeof(text) - 1;
	ck_assert_int_eq(deliver_message(d, "S1", &msg, fd, id, sizeof(id)),
	    SESSION_STORE_OK);
	ck_assert_int_eq(count_files(), 2);
	ck_assert_uint_eq(count_logged(" success report "), 2);
	(void)close(fd);
}
END_TEST

/*
 * Group commit: two messages in one flush, each with its report, and
 * the report counts as a file against max_files.
 */

START_TEST(test_report_group)
{
	static const char text[] = "Subject: group\n\nbody\n";
	struct session_rcpt rcpt = rcpt_alice;
	struct session_message m1, m2;
	struct done_rec r1, r2;
	char p[PATH_MAX], name[MAILDIR_NAME_MAX];
	int fd;

	rcpt.params = "NOTIFY=SUCCESS";
	fd = spool_text(text, sizeof(text) - 1);
	message_init(&m1, &rcpt, 1, sizeof(text) - 1);
	message_init(&m2, &rcpt, 1, sizeof(text) - 1);
	m2.sender = "bob@example.org";
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	deliver_set_max_files(d, 3);
	log_set_debug(1);
	ck_assert_int_eq(deliver_submit(d, "S1", &m1, fd, done_record, &r1), 0);
	ck_assert_int_eq(deliver_submit(d, "S2", &m2, fd, done_record, &r2), 0);
	flush_no = 1;
	ck_assert_uint_eq(deliver_flush(d), 0);
	ck_assert_uint_eq(r1.calls, 1);
	ck_assert_uint_eq(r2.calls, 1);
	ck_assert_int_eq(r1.result, SESSION_STORE_OK);
	ck_assert_int_eq(r2.result, SESSION_STORE_OK);
	/* 2 + 2 files over 3: two commits. */
	ck_assert_uint_eq(count_logged("group commit: 1 messages"), 2);
	ck_assert_int_eq(count_files(), 4);
	xpath(p, "%s/bob/new", root);
	ck_assert_int_eq(count_entries(p), 1);
	xpath(p, "%s/.OTHER_SERVERS/sender.example", root);
	only_entry(p, name, sizeof(name));
	ck_assert_uint_eq(count_logged(" success report "), 4);
	(void)close(fd);
}
END_TEST

static Suite *
deliver_suite(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc;

	tc = tcase_create("message");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_message_copies);
	tcase_add_test(tc, test_message_helo_ipv6);
	tcase_add_test(tc, test_message_short_text);
	tcase_add_test(tc, test_message_no_recipient);
	suite_add_tcase(s, tc);

	tc = tcase_create("group");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_flush_stores_both);
	tcase_add_test(tc, test_flush_text_in_memory);
	tcase_add_test(tc, test_flush_fair);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_max_files);
	suite_add_tcase(s, tc);

	tc = tcase_create("report");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_report_local_sender);
	tcase_add_test(tc, test_report_remote_sender);
	tcase_add_test(tc, test_report_none);
	tcase_add_test(tc, test_report_all_or_none);
	tcase_add_test(tc, test_report_group);
	suite_add_tcase(s, tc);

	tc = tcase_create("spool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_spool_open_anonymous);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(deliver_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
