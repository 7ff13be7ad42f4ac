/*
 * NAME
 *	check_queuefile - tests of the queue-file envelope reader
 * DESCRIPTION
 *	Valid envelopes give back sender, params and every recipient as
 *	written; a malformed one is refused with the line and a reason that
 *	names the problem; a file cut short anywhere inside the envelope is
 *	reported as truncated; nothing after the server's Received: line is
 *	ever read as envelope. The file-descriptor reader agrees with the
 *	buffer parser, also when lines cross its read chunks.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "queuefile.h"

#define RECEIVED "Received: from client.example ([127.0.0.1]) by " \
	"mx.example.org (pollsmtpd) with ESMTP id 0123456789ABCDEF0; " \
	"Thu, 26 Nov 2026 07:00:00 +0000\n"
#define MESSAGE "Subject: hello\nFrom: a@example.net\n\nHi.\n"

static int
parse_str(const char *text, struct queuefile **qf,
    struct queuefile_error *err)
{
	return queuefile_parse(text, strlen(text), qf, err);
}

/* expect_malformed - text is refused at line with a reason holding word */
static void
expect_malformed(const char *text, size_t len, unsigned long line,
    int truncated, const char *word)
{
	struct queuefile *qf = (struct queuefile *)1;
	struct queuefile_error err;

	ck_assert_int_eq(queuefile_parse(text, len, &qf, &err), 1);
	ck_assert_ptr_null(qf);
	ck_assert_uint_eq(err.line, line);
	ck_assert_int_eq(err.truncated, truncated);
	if (strstr(err.reason, word) == NULL)
		ck_abort_msg("reason \"%s\" lacks \"%s\"", err.reason, word);
	if (line > 0) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "line %lu: ", line);
		ck_assert_int_eq(strncmp(err.reason, prefix, strlen(prefix)),
		    0);
	}
}

static void
expect_malformed_str(const char *text, unsigned long line, const char *word)
{
	expect_malformed(text, strlen(text), line, 0, word);
}

/* temp_file - an unlinked temporary file holding len bytes of data */
static int
temp_file(const char *data, size_t len)
{
	char path[] = "/tmp/check_queuefile.XXXXXX";
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	return fd;
}

START_TEST(test_simple)
{
	const char *text = "X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED MESSAGE;
	struct queuefile *qf;
	struct queuefile_error err;

	ck_assert_int_eq(parse_str(text, &qf, &err), 0);
	ck_assert_str_eq(queuefile_sender(qf), "a@example.net");
	ck_assert_str_eq(queuefile_params(qf), "");
	ck_assert_uint_eq(queuefile_nrcpts(qf), 1);
	ck_assert_str_eq(queuefile_rcpt(qf, 0), "r@remote.example");
	ck_assert_ptr_null(queuefile_rcpt(qf, 1));
	ck_assert_uint_eq(queuefile_envelope_len(qf),
	    strlen("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n"));
	ck_assert_int_eq(strncmp(text + queuefile_envelope_len(qf),
	    "Received: ", 10), 0);
	queuefile_free(qf);
	queuefile_free(NULL);
}
END_TEST

START_TEST(test_null_sender_and_params)
{
	const char *text = "X-Envelope-From: <> SIZE=1234 BODY=8BITMIME\n"
	    "X-Envelope-To: <\"john doe\"@remote.example>\n"
	    "X-Envelope-To: <x@remote.example>\n" RECEIVED;
	struct queuefile *qf;
	struct queuefile_error err;

	ck_assert_int_eq(parse_str(text, &qf, &err), 0);
	ck_assert_str_eq(queuefile_sender(qf), "");
	ck_assert_str_eq(queuefile_params(qf), "SIZE=1234 BODY=8BITMIME");
	ck_assert_uint_eq(queuefile_nrcpts(qf), 2);
	ck_assert_str_eq(queuefile_rcpt(qf, 0), "\"john doe\"@remote.example");
	ck_assert_str_eq(queuefile_rcpt(qf, 1), "x@remote.example");
	queuefile_free(qf);
}
END_TEST

/* envelope_with - From, nrcpts recipients, Received:, a message */
static struct buf *
envelope_with(size_t nrcpts)
{
	struct buf *b = buf_new(64 * 1024 * 1024);
	size_t i;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(buf_printf(b, "X-Envelope-From: <s@example.net>\n"),
	    0);
	for (i = 0; i < nrcpts; i++)
		ck_assert_int_eq(buf_printf(b,
		    "X-Envelope-To: <user%zu@remote.example>\n", i), 0);
	ck_assert_int_eq(buf_printf(b, "%s", RECEIVED MESSAGE), 0);
	return b;
}

START_TEST(test_many_recipients)
{
	struct buf *b = envelope_with(QUEUEFILE_RCPT_MAX);
	struct queuefile *qf;
	struct queuefile_error err;

	ck_assert_int_eq(queuefile_parse(buf_data(b), buf_len(b), &qf, &err),
	    0);
	ck_assert_uint_eq(queuefile_nrcpts(qf), QUEUEFILE_RCPT_MAX);
	ck_assert_str_eq(queuefile_rcpt(qf, 0), "user0@remote.example");
	ck_assert_str_eq(queuefile_rcpt(qf, 54321), "user54321@remote.example");
	ck_assert_str_eq(queuefile_rcpt(qf, QUEUEFILE_RCPT_MAX - 1),
	    "user99999@remote.example");
	queuefile_free(qf);
	buf_free(b);
}
END_TEST

START_TEST(test_too_many_recipients)
{
	struct buf *b = envelope_with(QUEUEFILE_RCPT_MAX + 1);

	expect_malformed(buf_data(b), buf_len(b), QUEUEFILE_RCPT_MAX + 2, 0,
	    "more than 100000 recipients");
	buf_free(b);
}
END_TEST

START_TEST(test_missing_from)
{
	expect_malformed_str("X-Envelope-To: <r@remote.example>\n" RECEIVED,
	    1, "X-Envelope-To before X-Envelope-From");
	expect_malformed_str(RECEIVED MESSAGE, 1, "no X-Envelope-From");
	expect_malformed_str(MESSAGE, 1, "no X-Envelope-From");
}
END_TEST

START_TEST(test_from_not_first)
{
	expect_malformed_str("Subject: x\nX-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "no X-Envelope-From");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n"
	    "X-Envelope-From: <b@example.net>\n" RECEIVED, 3,
	    "a second X-Envelope-From");
}
END_TEST

START_TEST(test_to_missing)
{
	expect_malformed_str("X-Envelope-From: <a@example.net>\n" RECEIVED,
	    2, "no X-Envelope-To before Received:");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "Subject: x\n" RECEIVED, 2, "expected X-Envelope-To");
}
END_TEST

START_TEST(test_no_received)
{
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" MESSAGE, 3,
	    "expected X-Envelope-To or Received:");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n"
	    "x-envelope-to: <s@remote.example>\n" RECEIVED, 3,
	    "malformed X-Envelope- line");
}
END_TEST

START_TEST(test_dsn_params)
{
	/* As deliver.c writes them: MAIL's after the sender, RCPT's after each recipient. */
	const char *text = "X-Envelope-From: <a@example.net> SIZE=10 RET=HDRS "
	    "ENVID=QQ+2B314159\n"
	    "X-Envelope-To: <r@remote.example> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;r+40remote.example\n"
	    "X-Envelope-To: <s@remote.example>\n"
	    "X-Envelope-To: <t@remote.example> NOTIFY=NEVER\n" RECEIVED MESSAGE;
	struct queuefile *qf;
	struct queuefile_error err;
	const char *v;
	size_t len;

	ck_assert_int_eq(parse_str(text, &qf, &err), 0);
	ck_assert_str_eq(queuefile_params(qf),
	    "SIZE=10 RET=HDRS ENVID=QQ+2B314159");
	ck_assert_uint_eq(queuefile_nrcpts(qf), 3);
	ck_assert_str_eq(queuefile_rcpt(qf, 0), "r@remote.example");
	ck_assert_str_eq(queuefile_rcpt_params(qf, 0),
	    "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r+40remote.example");
	ck_assert_str_eq(queuefile_rcpt_params(qf, 1), "");
	ck_assert_str_eq(queuefile_rcpt_params(qf, 2), "NOTIFY=NEVER");
	ck_assert_ptr_null(queuefile_rcpt_params(qf, 3));
	ck_assert_int_eq(queuefile_smtputf8(qf), 0);

	v = queuefile_param(queuefile_rcpt_params(qf, 0), "notify", &len);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(strncmp(v, "SUCCESS,FAILURE", len), 0);
	ck_assert_uint_eq(len, 15);
	v = queuefile_param(queuefile_rcpt_params(qf, 0), "ORCPT", &len);
	ck_assert_uint_eq(len, strlen("rfc822;r+40remote.example"));
	ck_assert_int_eq(strncmp(v, "rfc822;r+40remote.example", len), 0);
	v = queuefile_param(queuefile_params(qf), "RET", &len);
	ck_assert_int_eq(strncmp(v, "HDRS", len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_ptr_null(queuefile_param(queuefile_params(qf), "RE", &len));
	ck_assert_ptr_null(queuefile_param(queuefile_rcpt_params(qf, 1),
	    "NOTIFY", &len));
	ck_assert_uint_eq(queuefile_envelope_len(qf),
	    (size_t)(strstr(text, "Received:") - text));
	queuefile_free(qf);
}
END_TEST

START_TEST(test_notify)
{
	/* Whole keywords of the list, any case; "SUCCESS" is no "SUCC". */
	ck_assert_int_eq(queuefile_notify("NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;r+40remote.example", "FAILURE"), 1);
	ck_assert_int_eq(queuefile_notify("NOTIFY=success,failure",
	    "SUCCESS"), 1);
	ck_assert_int_eq(queuefile_notify("NOTIFY=SUCCESS", "FAILURE"), 0);
	ck_assert_int_eq(queuefile_notify("NOTIFY=SUCCESS", "SUCC"), 0);
	ck_assert_int_eq(queuefile_notify("NOTIFY=SUCC", "SUCCESS"), 0);
	ck_assert_int_eq(queuefile_notify("NOTIFY=NEVER", "FAILURE"), 0);
	ck_assert_int_eq(queuefile_notify("NOTIFY=DELAY,SUCCESS", "SUCCESS"),
	    1);
	/* The list ends at its parameter: the next one is not read. */
	ck_assert_int_eq(queuefile_notify("NOTIFY=DELAY FAILURE", "FAILURE"),
	    0);
	ck_assert_int_eq(queuefile_notify("NOTIFY= ORCPT=rfc822;x",
	    "FAILURE"), 0);
	/* No NOTIFY: each caller's default. */
	ck_assert_int_eq(queuefile_notify("", "FAILURE"), -1);
	ck_assert_int_eq(queuefile_notify("ORCPT=rfc822;NOTIFY", "FAILURE"),
	    -1);
}
END_TEST

START_TEST(test_smtputf8_envelope)
{
	/* SMTPUTF8: UTF-8 addresses; the directory is the A-label's. */
	const char *text = "X-Envelope-From: <j\xc3\xbcrgen@example.net> "
	    "SMTPUTF8 BODY=8BITMIME\n"
	    "X-Envelope-To: <\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90"
	    ".\xe6\xb5\x8b\xe8\xaf\x95> NOTIFY=NEVER\n" RECEIVED MESSAGE;
	struct queuefile *qf;
	struct queuefile_error err;
	size_t len;

	ck_assert_int_eq(parse_str(text, &qf, &err), 0);
	ck_assert_str_eq(queuefile_sender(qf), "j\xc3\xbcrgen@example.net");
	ck_assert_int_eq(queuefile_smtputf8(qf), 1);
	ck_assert_ptr_nonnull(queuefile_param(queuefile_params(qf),
	    "smtputf8", &len));
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(queuefile_rcpt(qf, 0), "\xe7\x94\xa8\xe6\x88\xb7@"
	    "\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95");
	queuefile_free(qf);

	/* Without SMTPUTF8 the same bytes are malformed. */
	expect_malformed_str("X-Envelope-From: <j\xc3\xbcrgen@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1, "8-bit byte");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <\xc3\xa9@remote.example>\n" RECEIVED, 2,
	    "8-bit byte");
	/* With it, only good UTF-8. */
	expect_malformed_str("X-Envelope-From: <a@example.net> SMTPUTF8\n"
	    "X-Envelope-To: <\xe9@remote.example>\n" RECEIVED, 2,
	    "not UTF-8");
	/* The sender's parameters stay ASCII even with it (RFC 6531 3.3
	 * lets a value be UTF-8, but none the daemon accepts is). */
	expect_malformed_str("X-Envelope-From: <a@example.net> SMTPUTF8 "
	    "ENVID=\xc3\xa9\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "8-bit byte in a sender parameter");
	/* A recipient's ORCPT=utf-8;unitext may be UTF-8 with it, not
	 * without. */
	ck_assert_int_eq(parse_str("X-Envelope-From: <a@example.net> SMTPUTF8\n"
	    "X-Envelope-To: <r@remote.example> ORCPT=utf-8;\xc3\xa9@x.example\n"
	    RECEIVED MESSAGE, &qf, &err), 0);
	ck_assert_str_eq(queuefile_rcpt_params(qf, 0),
	    "ORCPT=utf-8;\xc3\xa9@x.example");
	queuefile_free(qf);
	/* SMTPUTF8 inside the path is no parameter. */
	expect_malformed_str("X-Envelope-From: <\"a SMTPUTF8 \xc3\xa9\"@x.example>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "bad sender path");
}
END_TEST

START_TEST(test_bad_paths)
{
	expect_malformed_str("X-Envelope-From: a@example.net\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "bad sender path");
	expect_malformed_str("X-Envelope-From: <a@example.net>x\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "more than");
	expect_malformed_str("X-Envelope-From: <a@example.net> \n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "more than");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <>\n" RECEIVED, 2, "bad recipient path");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>NOTIFY=NEVER\n" RECEIVED, 2,
	    "text after the recipient path");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example> \n" RECEIVED, 2,
	    "text after the recipient path");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example> NOTIFY=NEVER  ORCPT=x\n"
	    RECEIVED, 2, "bad recipient parameter");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example> =NEVER\n" RECEIVED, 2,
	    "bad recipient parameter");
	expect_malformed_str("X-Envelope-From: <a@example.net> SIZE=1 \n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "bad sender parameter");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@@remote.example>\n" RECEIVED, 2,
	    "bad recipient path");
	expect_malformed_str("X-Envelope-From:<a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "malformed X-Envelope- line");
}
END_TEST

START_TEST(test_line_length)
{
	struct buf *b = buf_new(8192);
	struct queuefile *qf;
	struct queuefile_error err;
	char local[65];
	size_t pad;

	/* A recipient line of exactly QUEUEFILE_LINE_MAX octets is fine... */
	memset(local, 'l', 64);
	local[64] = '\0';
	ck_assert_int_eq(buf_printf(b, "X-Envelope-From: <a@example.net> X="),
	    0);
	pad = QUEUEFILE_LINE_MAX
	    - strlen("X-Envelope-From: <a@example.net> X=");
	while (pad-- > 0)
		ck_assert_int_eq(buf_append(b, "p", 1), 0);
	ck_assert_int_eq(buf_printf(b, "\nX-Envelope-To: <%s@remote.example>\n"
	    RECEIVED, local), 0);
	ck_assert_int_eq(queuefile_parse(buf_data(b), buf_len(b), &qf, &err),
	    0);
	ck_assert_uint_eq(strlen(queuefile_params(qf)),
	    QUEUEFILE_LINE_MAX - strlen("X-Envelope-From: <a@example.net> "));
	queuefile_free(qf);

	/* ...one more is not, with or without a LF in sight. */
	buf_reset(b);
	ck_assert_int_eq(buf_printf(b, "X-Envelope-From: <a@example.net> X="),
	    0);
	pad = QUEUEFILE_LINE_MAX + 1
	    - strlen("X-Envelope-From: <a@example.net> X=");
	while (pad-- > 0)
		ck_assert_int_eq(buf_append(b, "p", 1), 0);
	expect_malformed(buf_data(b), buf_len(b), 1, 0, "longer than 1000");
	ck_assert_int_eq(buf_printf(b, "\nX-Envelope-To: <r@remote.example>\n"
	    RECEIVED), 0);
	expect_malformed(buf_data(b), buf_len(b), 1, 0, "longer than 1000");
	buf_free(b);
}
END_TEST

START_TEST(test_bad_bytes)
{
	static const char nul[] = "X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\0\n" RECEIVED;

	expect_malformed(nul, sizeof(nul) - 1, 2, 0, "NUL");
	expect_malformed_str("X-Envelope-From: <a@example.net>\r\n"
	    "X-Envelope-To: <r@remote.example>\r\n" RECEIVED, 1, "CR");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r\x01@remote.example>\n" RECEIVED, 2,
	    "control character 0x01");
	expect_malformed_str("X-Envelope-From: <a\xc3\xa9@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED, 1,
	    "8-bit byte 0xc3");
	expect_malformed_str("X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n"
	    "Received: from x\r\n", 3, "CR");
}
END_TEST

START_TEST(test_injected_recipient_is_message)
{
	/* A client that writes envelope lines at the top of its message. */
	const char *text = "X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n" RECEIVED
	    "X-Envelope-To: <evil@attacker.example>\n"
	    "X-Envelope-From: <forged@example.net>\n\nbody\n";
	struct queuefile *qf;
	struct queuefile_error err;

	ck_assert_int_eq(parse_str(text, &qf, &err), 0);
	ck_assert_str_eq(queuefile_sender(qf), "a@example.net");
	ck_assert_uint_eq(queuefile_nrcpts(qf), 1);
	ck_assert_str_eq(queuefile_rcpt(qf, 0), "r@remote.example");
	queuefile_free(qf);
}
END_TEST

START_TEST(test_truncated_everywhere)
{
	const char *text = "X-Envelope-From: <a@example.net> SIZE=10\n"
	    "X-Envelope-To: <r@remote.example>\n"
	    "X-Envelope-To: <s@remote.example>\n" RECEIVED;
	size_t len = strlen(text), cut;
	struct queuefile *qf;
	struct queuefile_error err;

	/* Every proper prefix is truncated, the whole is an envelope. */
	for (cut = 0; cut < len; cut++) {
		ck_assert_int_eq(queuefile_parse(text, cut, &qf, &err), 1);
		ck_assert_ptr_null(qf);
		if (!err.truncated)
			ck_abort_msg("cut at %zu: not truncated: %s", cut,
			    err.reason);
	}
	ck_assert_int_eq(queuefile_parse(text, len, &qf, &err), 0);
	queuefile_free(qf);

	expect_malformed("", 0, 0, 1, "empty");
	expect_malformed(text, 20, 1, 1, "ends inside a line");
	expect_malformed(text, strlen("X-Envelope-From: <a@example.net> "
	    "SIZE=10\n"), 2, 1, "ends after X-Envelope-From");
	expect_malformed(text, strlen("X-Envelope-From: <a@example.net> "
	    "SIZE=10\nX-Envelope-To: <r@remote.example>\n"), 3, 1,
	    "ends before the Received: line");
	expect_malformed(text, len - 1, 4, 1, "ends inside a line");
}
END_TEST

START_TEST(test_read_fd)
{
	/* 700 recipients: the envelope crosses several read chunks. */
	struct buf *b = envelope_with(700);
	struct queuefile *qf, *qf2;
	struct queuefile_error err;
	size_t i;
	int fd;

	fd = temp_file(buf_data(b), buf_len(b));
	/* The file offset is neither used nor moved. */
	ck_assert_int_eq(queuefile_read(fd, &qf, &err), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), (off_t)buf_len(b));
	ck_assert_int_eq(queuefile_parse(buf_data(b), buf_len(b), &qf2, &err),
	    0);
	ck_assert_uint_eq(queuefile_nrcpts(qf), 700);
	ck_assert_uint_eq(queuefile_envelope_len(qf),
	    queuefile_envelope_len(qf2));
	ck_assert_str_eq(queuefile_sender(qf), "s@example.net");
	for (i = 0; i < 700; i++)
		ck_assert_str_eq(queuefile_rcpt(qf, i), queuefile_rcpt(qf2, i));
	queuefile_free(qf);
	queuefile_free(qf2);
	ck_assert_int_eq(close(fd), 0);

	/* Truncated and malformed files, as from the buffer. */
	fd = temp_file(buf_data(b), 5000);
	ck_assert_int_eq(queuefile_read(fd, &qf, &err), 1);
	ck_assert_ptr_null(qf);
	ck_assert_int_eq(err.truncated, 1);
	ck_assert_int_eq(close(fd), 0);
	fd = temp_file("X-Envelope-From: <a@example.net>\n" MESSAGE,
	    strlen("X-Envelope-From: <a@example.net>\n" MESSAGE));
	ck_assert_int_eq(queuefile_read(fd, &qf, &err), 1);
	ck_assert_uint_eq(err.line, 2);
	ck_assert_int_eq(err.truncated, 0);
	ck_assert_int_eq(close(fd), 0);
	buf_free(b);

	/* A read error is not a malformed envelope. */
	fd = open("/", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	errno = 0;
	ck_assert_int_eq(queuefile_read(fd, &qf, &err), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_ptr_null(qf);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

START_TEST(test_read_fd_long_line)
{
	/* An over-long line is refused without reading it to its end. */
	struct buf *b = buf_new(1024 * 1024);
	struct queuefile *qf;
	struct queuefile_error err;
	int fd;

	ck_assert_int_eq(buf_printf(b, "X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example"), 0);
	while (buf_len(b) < 100000)
		ck_assert_int_eq(buf_append(b, "x", 1), 0);
	fd = temp_file(buf_data(b), buf_len(b));
	ck_assert_int_eq(queuefile_read(fd, &qf, &err), 1);
	ck_assert_uint_eq(err.line, 2);
	ck_assert_ptr_nonnull(strstr(err.reason, "longer than"));
	ck_assert_int_eq(close(fd), 0);
	buf_free(b);
}
END_TEST

START_TEST(test_header_len)
{
	const char *m = "Received: x\nSubject: y\n\nbody\n\nmore\n";
	int complete;

	ck_assert_uint_eq(queuefile_header_len(m, strlen(m), &complete),
	    strlen("Received: x\nSubject: y\n"));
	ck_assert_int_eq(complete, 1);
	ck_assert_uint_eq(queuefile_header_len("Subject: y\n", 11, &complete),
	    11);
	ck_assert_int_eq(complete, 0);
	ck_assert_uint_eq(queuefile_header_len("\nbody\n", 6, &complete), 0);
	ck_assert_int_eq(complete, 1);
	ck_assert_uint_eq(queuefile_header_len("", 0, &complete), 0);
	ck_assert_int_eq(complete, 0);
	/* BINARYMIME, kept as received: CR LF ends the header section. */
	m = "Received: x\nSubject: y\r\n\r\nbody \xff\x00\n\nmore\n";
	ck_assert_uint_eq(queuefile_header_len(m, strlen(m), &complete),
	    strlen("Received: x\nSubject: y\r\n"));
	ck_assert_int_eq(complete, 1);
	ck_assert_uint_eq(queuefile_header_len("\r\nbody\n", 7, &complete), 0);
	ck_assert_int_eq(complete, 1);
	/* A CR inside a line, or one at the end, ends nothing. */
	m = "Subject: y\r\nX: a\rb\r\n\r";
	ck_assert_uint_eq(queuefile_header_len(m, strlen(m), &complete),
	    strlen(m));
	ck_assert_int_eq(complete, 0);
}
END_TEST

/*
 * A BINARYMIME text's empty line CR LF, with its CR the last byte of a
 * read chunk: the section ends before it, nothing of the body is read.
 */
START_TEST(test_read_headers_crlf)
{
	const char *env = "X-Envelope-From: <a@example.net> BODY=BINARYMIME\n"
	    "X-Envelope-To: <r@remote.example>\n";
	struct buf *file = buf_new(1024 * 1024);
	struct buf *out = buf_new(1024 * 1024);
	size_t hdrlen, at;
	int fd;

	for (at = QUEUEFILE_CHUNK - 1; at <= QUEUEFILE_CHUNK + 1; at++) {
		buf_reset(file);
		buf_reset(out);
		ck_assert_int_eq(buf_printf(file, "%s" RECEIVED "X-Filler: ",
		    env), 0);
		/* The empty line's CR at offset at of the read. */
		while (buf_len(file) < strlen(env) + at - 2)
			ck_assert_int_eq(buf_append(file, "f", 1), 0);
		ck_assert_int_eq(buf_append(file, "\r\n", 2), 0);
		hdrlen = buf_len(file) - strlen(env);
		ck_assert_uint_eq(hdrlen, at);
		ck_assert_int_eq(buf_append(file, "\r\nbinary \xff\x00\n\n"
		    "more\r\n", 19), 0);
		fd = temp_file(buf_data(file), buf_len(file));
		ck_assert_int_eq(queuefile_read_headers(fd, (off_t)strlen(env),
		    out), 0);
		ck_assert_uint_eq(buf_len(out), hdrlen);
		ck_assert_int_eq(memcmp(buf_data(out), buf_data(file)
		    + strlen(env), hdrlen), 0);
		ck_assert_int_eq(close(fd), 0);
	}
	/* A text that is one CR: read whole, and the read ends. */
	buf_reset(out);
	fd = temp_file("\r", 1);
	ck_assert_int_eq(queuefile_read_headers(fd, 0, out), 0);
	ck_assert_uint_eq(buf_len(out), 1);
	ck_assert_int_eq(close(fd), 0);
	buf_free(file);
	buf_free(out);
}
END_TEST

START_TEST(test_read_headers)
{
	const char *env = "X-Envelope-From: <a@example.net>\n"
	    "X-Envelope-To: <r@remote.example>\n";
	struct buf *file = buf_new(1024 * 1024);
	struct buf *out = buf_new(1024 * 1024);
	struct buf *small = buf_new(100);
	size_t hdrlen;
	int fd;

	/*
	 * The header section ends with its LF exactly at the end of the
	 * first read chunk: the empty line starts the next chunk.
	 */
	ck_assert_int_eq(buf_printf(file, "%s" RECEIVED "X-Filler: ", env), 0);
	while (buf_len(file) < strlen(env) + QUEUEFILE_CHUNK - 1)
		ck_assert_int_eq(buf_append(file, "f", 1), 0);
	ck_assert_int_eq(buf_append(file, "\n", 1), 0);
	hdrlen = buf_len(file) - strlen(env);
	ck_assert_uint_eq(hdrlen, QUEUEFILE_CHUNK);
	ck_assert_int_eq(buf_printf(file, "\nbody line\n"), 0);
	fd = temp_file(buf_data(file), buf_len(file));
	ck_assert_int_eq(queuefile_read_headers(fd, (off_t)strlen(env), out),
	    0);
	ck_assert_uint_eq(buf_len(out), hdrlen);
	ck_assert_int_eq(memcmp(buf_data(out), buf_data(file) + strlen(env),
	    hdrlen), 0);
	ck_assert_int_eq(buf_data(out)[hdrlen - 1], '\n');

	errno = 0;
	ck_assert_int_eq(queuefile_read_headers(fd, 0, small), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_int_eq(close(fd), 0);

	/* No empty line: the headers run to the end of the file. */
	buf_reset(out);
	fd = temp_file("Received: x\nSubject: y", 22);
	ck_assert_int_eq(queuefile_read_headers(fd, 0, out), 0);
	ck_assert_uint_eq(buf_len(out), 22);
	ck_assert_int_eq(close(fd), 0);
	buf_free(file);
	buf_free(out);
	buf_free(small);
}
END_TEST

static Suite *
queuefile_suite(void)
{
	Suite *s = suite_create("queuefile");
	TCase *tc = tcase_create("envelope");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_simple);
	tcase_add_test(tc, test_null_sender_and_params);
	tcase_add_test(tc, test_many_recipients);
	tcase_add_test(tc, test_too_many_recipients);
	tcase_add_test(tc, test_missing_from);
	tcase_add_test(tc, test_from_not_first);
	tcase_add_test(tc, test_to_missing);
	tcase_add_test(tc, test_no_received);
	tcase_add_test(tc, test_bad_paths);
	tcase_add_test(tc, test_dsn_params);
	tcase_add_test(tc, test_smtputf8_envelope);
	tcase_add_test(tc, test_line_length);
	tcase_add_test(tc, test_bad_bytes);
	tcase_add_test(tc, test_injected_recipient_is_message);
	tcase_add_test(tc, test_truncated_everywhere);
	tcase_add_test(tc, test_read_fd);
	tcase_add_test(tc, test_read_fd_long_line);
	tcase_add_test(tc, test_notify);
	tcase_add_test(tc, test_header_len);
	tcase_add_test(tc, test_read_headers);
	tcase_add_test(tc, test_read_headers_crlf);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(queuefile_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
