/*
 * NAME
 *	check_client - unit tests of the outbound SMTP engine
 * DESCRIPTION
 *	Transcripts, tests/transcripts-client/ *.dlg, are replayed through
 *	the engine. A transcript is lines of:
 *	  S: TEXT	the server says TEXT (CRLF added)
 *	  S- BYTES	the server sends BYTES (\r \n \\ escapes, no CRLF added)
 *	  C: TEXT	the engine's next output is TEXT CRLF
 *	  ! new helo=NAME tls=none|may|encrypt [tls-available]
 *	  ! tls-started	client_tls_started() (the handshake is done)
 *	  ! letter SENDER|<> RCPT,RCPT... size=N [8bit] [utf8] [binary]
 *	      [mail=PARAMS] [rcptN=PARAMS]   (DSN parameters; '|' is a space)
 *	  ! body TEXT	(escapes) given to client_body()
 *	  ! end		client_body_end()
 *	  ! result CODE...	the letter's reply codes, in recipient order
 *	  ! status X.Y.Z...	and their enhanced status codes
 *	  ! text-N TEXT	recipient N's reply text
 *	  ! want reply|letter|body|tls|close
 *	  ! timeout N	client_timeout()
 *	  ! quit		client_quit()
 *	  ! lost REASON	client_lost()
 *	  ! error CODE	client_session_error()'s code
 *	  ! error-text TEXT	is part of its text
 *	  ! server-name NAME / ! size-limit N
 *	and at the end no output may be left unmatched.
 *	Each transcript is also replayed with every S: line fed one byte at
 *	a time.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "client.h"
#include "conf.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

static char **transcripts;
static size_t ntranscripts;

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
transcripts_list(void)
{
	DIR *d;
	struct dirent *e;
	char **v;

	d = opendir(TEST_SRCDIR "/transcripts-client");
	if (d == NULL) {
		perror(TEST_SRCDIR "/transcripts-client");
		exit(1);
	}
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 4, ".dlg") != 0)
			continue;
		v = realloc(transcripts, (ntranscripts + 1) * sizeof(*v));
		if (v == NULL || (v[ntranscripts] = strdup(e->d_name)) == NULL)
			exit(1);
		transcripts = v;
		ntranscripts++;
	}
	closedir(d);
	qsort(transcripts, ntranscripts, sizeof(*transcripts), name_cmp);
}

/* unescape - \r \n \\ in place; returns the new length */
static size_t
unescape(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		if (r[0] == '\\' && r[1] == 'r') {
			*w++ = '\r';
			r += 2;
		} else if (r[0] == '\\' && r[1] == 'n') {
			*w++ = '\n';
			r += 2;
		} else if (r[0] == '\\' && r[1] == '\\') {
			*w++ = '\\';
			r += 2;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* One letter handed to the engine: what it points to must stay. */
struct t_letter {
	char sender[256];
	char rcptbuf[2048];
	const char *rcpts[32];
	char mail_dsn[256];
	char rcpt_dsn[32][256];
	const char *rcpt_dsnp[32];
	struct client_letter l;
};

static void
feed(struct client *c, const char *data, size_t len, int bytewise)
{
	size_t i;

	if (!bytewise) {
		(void)client_feed(c, data, len);
		return;
	}
	for (i = 0; i < len; i++)
		(void)client_feed(c, data + i, 1);
}

static void
replay(const char *name, int bytewise)
{
	char path[1024], line[4096], where[1100];
	struct client *c = NULL;
	struct t_letter *letter = calloc(1, sizeof(*letter));
	FILE *fp;
	unsigned lineno = 0;
	size_t len;

	ck_assert_ptr_nonnull(letter);
	snprintf(path, sizeof(path), "%s/transcripts-client/%s", TEST_SRCDIR,
	    name);
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "%s: cannot open", path);
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		snprintf(where, sizeof(where), "%s:%u", name, lineno);
		if (len == 0 || line[0] == '#')
			continue;
		if (strncmp(line, "! new", 5) == 0) {
			int policy = CONF_TLS_MAY;
			const char *helo = "out.example", *p;
			char hbuf[256];

			if ((p = strstr(line, "helo=")) != NULL) {
				sscanf(p + 5, "%255s", hbuf);
				helo = hbuf;
			}
			if (strstr(line, "tls=none") != NULL)
				policy = CONF_TLS_NONE;
			if (strstr(line, "tls=encrypt") != NULL)
				policy = CONF_TLS_ENCRYPT;
			client_free(c);
			c = client_new(helo, policy,
			    strstr(line, " tls-available") != NULL);
			ck_assert_ptr_nonnull(c);
			continue;
		}
		ck_assert_msg(c != NULL, "%s: no '! new' first", where);
		if (strncmp(line, "S:", 2) == 0) {
			char *text = line[2] == ' ' ? line + 3 : line + 2;
			size_t n = strlen(text);

			text[n++] = '\r';
			text[n++] = '\n';
			feed(c, text, n, bytewise);
		} else if (strncmp(line, "S-", 2) == 0) {
			char *text = line + 3;

			len = unescape(text);
			feed(c, text, len, bytewise);
		} else if (strncmp(line, "C:", 2) == 0) {
			const char *want = line[2] == ' ' ? line + 3 : line + 2;
			struct buf *out = client_output(c);
			size_t n = strlen(want);
			const char *got = buf_data(out);

			ck_assert_msg(buf_len(out) >= n + 2
			    && memcmp(got, want, n) == 0
			    && memcmp(got + n, "\r\n", 2) == 0,
			    "%s: expected \"%s\", the engine has \"%.*s\"", where,
			    want, (int)(buf_len(out) > 200 ? 200 : buf_len(out)),
			    got ? got : "");
			buf_consume(out, n + 2);
		} else if (strncmp(line, "! letter ", 9) == 0) {
			char rcpts[2048], *tok, *save = NULL;
			size_t size = 0, n = 0;
			const char *p;

			memset(letter, 0, sizeof(*letter));
			ck_assert_int_eq(sscanf(line + 9, "%255s %2047s",
			    letter->sender, rcpts), 2);
			if (strcmp(letter->sender, "<>") == 0)
				letter->sender[0] = '\0';
			snprintf(letter->rcptbuf, sizeof(letter->rcptbuf), "%s",
			    rcpts);
			for (tok = strtok_r(letter->rcptbuf, ",", &save);
			    tok != NULL && n < 32;
			    tok = strtok_r(NULL, ",", &save))
				letter->rcpts[n++] = tok;
			if ((p = strstr(line, "size=")) != NULL)
				size = strtoul(p + 5, NULL, 10);
			letter->l.sender = letter->sender;
			letter->l.rcpts = letter->rcpts;
			letter->l.nrcpts = n;
			letter->l.size = size;
			letter->l.eightbit = strstr(line, " 8bit") != NULL;
			letter->l.smtputf8 = strstr(line, " utf8") != NULL;
			letter->l.binarymime = strstr(line, " binary") != NULL;
			if ((p = strstr(line, " mail=")) != NULL) {
				sscanf(p + 6, "%255s", letter->mail_dsn);
				for (char *q = letter->mail_dsn; *q; q++)
					if (*q == '|')
						*q = ' ';
				letter->l.mail_dsn = letter->mail_dsn;
			}
			for (p = strstr(line, " rcpt"); p != NULL;
			    p = strstr(p + 1, " rcpt")) {
				char *end, *q;
				unsigned long k = strtoul(p + 5, &end, 10);

				if (end == p + 5 || *end != '=' || k >= 32)
					continue;
				sscanf(end + 1, "%255s", letter->rcpt_dsn[k]);
				for (q = letter->rcpt_dsn[k]; *q; q++)
					if (*q == '|')
						*q = ' ';
				letter->rcpt_dsnp[k] = letter->rcpt_dsn[k];
				letter->l.rcpt_dsn = letter->rcpt_dsnp;
			}
			ck_assert_msg(client_letter(c, &letter->l) == 0,
			    "%s: client_letter refused", where);
		} else if (strncmp(line, "! body ", 7) == 0) {
			len = unescape(line + 7);
			ck_assert_msg(client_body(c, line + 7, len) == 0,
			    "%s: client_body refused", where);
		} else if (strcmp(line, "! end") == 0) {
			ck_assert_msg(client_body_end(c) == 0,
			    "%s: client_body_end refused", where);
		} else if (strncmp(line, "! result ", 9) == 0
		    || strncmp(line, "! status ", 9) == 0) {
			const struct client_result *r = client_result(c);
			char *tok, *save = NULL;
			size_t i = 0;

			ck_assert_msg(r != NULL, "%s: no result", where);
			for (tok = strtok_r(line + 9, " ", &save); tok != NULL;
			    tok = strtok_r(NULL, " ", &save), i++) {
				ck_assert_msg(i < r->nrcpts, "%s: %zu results",
				    where, r->nrcpts);
				if (line[2] == 'r')
					ck_assert_msg(r->rcpt[i].code
					    == atoi(tok), "%s: recipient %zu "
					    "got %d", where, i,
					    r->rcpt[i].code);
				else
					ck_assert_msg(strcmp(r->rcpt[i].status,
					    tok) == 0, "%s: recipient %zu got "
					    "%s", where, i, r->rcpt[i].status);
			}
			ck_assert_msg(i == r->nrcpts, "%s: %zu results", where,
			    r->nrcpts);
		} else if (strncmp(line, "! text-", 7) == 0) {
			const struct client_result *r = client_result(c);
			char *end;
			size_t i = strtoul(line + 7, &end, 10);

			ck_assert_msg(r != NULL && i < r->nrcpts, "%s", where);
			ck_assert_msg(strcmp(r->rcpt[i].text, end + 1) == 0,
			    "%s: text \"%s\"", where, r->rcpt[i].text);
		} else if (strncmp(line, "! want ", 7) == 0) {
			static const char *const names[] = {
				"reply", "letter", "body", "tls", "close",
			};
			enum client_want w = client_want(c);

			ck_assert_msg(strcmp(names[w], line + 7) == 0,
			    "%s: the engine wants %s", where, names[w]);
		} else if (strncmp(line, "! timeout ", 10) == 0) {
			ck_assert_msg(client_timeout(c) == atoi(line + 10),
			    "%s: timeout %d", where, client_timeout(c));
		} else if (strcmp(line, "! tls-started") == 0) {
			ck_assert_msg(client_want(c) == CLIENT_WANT_TLS,
			    "%s: TLS not wanted", where);
			client_tls_started(c);
		} else if (strcmp(line, "! quit") == 0) {
			client_quit(c);
		} else if (strncmp(line, "! lost ", 7) == 0) {
			client_lost(c, line + 7);
		} else if (strncmp(line, "! error ", 8) == 0) {
			ck_assert_msg(client_session_error(c)->code
			    == atoi(line + 8), "%s: error %d", where,
			    client_session_error(c)->code);
		} else if (strncmp(line, "! error-text ", 13) == 0) {
			ck_assert_msg(strstr(client_session_error(c)->text,
			    line + 13) != NULL, "%s: error text \"%s\"", where,
			    client_session_error(c)->text);
		} else if (strncmp(line, "! server-name ", 14) == 0) {
			ck_assert_str_eq(client_server_name(c), line + 14);
		} else if (strncmp(line, "! size-limit ", 13) == 0) {
			ck_assert_uint_eq(client_size_limit(c),
			    strtoul(line + 13, NULL, 10));
		} else
			ck_abort_msg("%s: unknown line", where);
	}
	fclose(fp);
	ck_assert_msg(c != NULL, "%s: empty", name);
	ck_assert_msg(buf_len(client_output(c)) == 0,
	    "%s: output left unmatched: \"%.*s\"", name,
	    (int)buf_len(client_output(c)), buf_data(client_output(c)));
	client_free(c);
	free(letter);
}

START_TEST(test_transcript)
{
	replay(transcripts[_i], 0);
}
END_TEST

START_TEST(test_transcript_bytewise)
{
	replay(transcripts[_i], 1);
}
END_TEST

/* A reply line over the limit, and a line that is no reply, close it. */
START_TEST(test_protocol_errors)
{
	struct client *c = client_new("out.example", CONF_TLS_MAY, 0);
	char big[CLIENT_LINE_MAX + 10];

	memset(big, 'x', sizeof(big));
	memcpy(big, "220 ", 4);
	ck_assert_int_eq(client_feed(c, big, sizeof(big)), -1);
	ck_assert_int_eq(client_want(c), CLIENT_WANT_CLOSE);
	ck_assert_int_eq(client_session_error(c)->code, 421);
	client_free(c);

	c = client_new("out.example", CONF_TLS_MAY, 0);
	ck_assert_int_eq(client_feed(c, "hello there\r\n", 13), -1);
	ck_assert_int_eq(client_want(c), CLIENT_WANT_CLOSE);
	client_free(c);

	/* A continuation line with another code is no reply either. */
	c = client_new("out.example", CONF_TLS_MAY, 0);
	ck_assert_int_eq(client_feed(c, "220-a\r\n250 b\r\n", 14), -1);
	client_free(c);
}
END_TEST

/* client_letter() only when a letter is wanted, and with recipients. */
START_TEST(test_letter_refused_when_busy)
{
	struct client *c = client_new("out.example", CONF_TLS_MAY, 0);
	const char *rcpt = "r@x.example";
	struct client_letter l = { .sender = "a@example.org", .rcpts = &rcpt,
	    .nrcpts = 1, .size = 3 };

	ck_assert_int_eq(client_letter(c, &l), -1);
	(void)client_feed(c, "220 hi\r\n250 ok\r\n", 16);
	ck_assert_int_eq(client_want(c), CLIENT_WANT_LETTER);
	l.nrcpts = 0;
	ck_assert_int_eq(client_letter(c, &l), -1);
	l.nrcpts = 1;
	ck_assert_int_eq(client_letter(c, &l), 0);
	ck_assert_int_eq(client_letter(c, &l), -1);
	client_free(c);
}
END_TEST

/* Control bytes in a reply never reach the text kept for logs. */
START_TEST(test_reply_text_cleaned)
{
	struct client *c = client_new("out.example", CONF_TLS_MAY, 0);
	const char *rcpt = "r@x.example";
	struct client_letter l = { .sender = "a@example.org", .rcpts = &rcpt,
	    .nrcpts = 1, .size = 3 };
	const struct client_result *r;

	(void)client_feed(c, "220 hi\r\n250 ok\r\n", 16);
	ck_assert_int_eq(client_letter(c, &l), 0);
	(void)client_feed(c, "550 5.1.1 bad\x1b[0m\xff\r\n",
	    strlen("550 5.1.1 bad\x1b[0m\xff\r\n"));
	r = client_result(c);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->rcpt[0].text, "550 5.1.1 bad?[0m?");
	client_free(c);
}
END_TEST

static Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("transcripts");

	tcase_add_loop_test(tc, test_transcript, 0, (int)ntranscripts);
	tcase_add_loop_test(tc, test_transcript_bytewise, 0,
	    (int)ntranscripts);
	suite_add_tcase(s, tc);
	tc = tcase_create("engine");
	tcase_add_test(tc, test_protocol_errors);
	tcase_add_test(tc, test_letter_refused_when_busy);
	tcase_add_test(tc, test_reply_text_cleaned);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	transcripts_list();
	sr = srunner_create(client_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	for (size_t i = 0; i < ntranscripts; i++)
		free(transcripts[i]);
	free(transcripts);
	return failed == 0 ? 0 : 1;
}
