/*
 * NAME
 *	check_bounce - unit tests of the RFC 3464 bounce
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"

static const char headers[] =
    "Received: from c.example by mx.example.org (pollsmtpd) with ESMTP id "
    "ABC; Tue, 1 Dec 2026 10:00:00 +0000\n"
    "Subject: hello\n"
    "From: <a@example.org>\n";

static void
info(struct bounce_info *bi, struct bounce_rcpt *r)
{
	memset(bi, 0, sizeof(*bi));
	memset(r, 0, 2 * sizeof(*r));
	r[0].rcpt = "nobody@remote.example";
	r[0].status = "5.1.1";
	r[0].diagnostic = "smtp; 550 5.1.1 <nobody@remote.example>: unknown";
	r[0].remote_mta = "mx.remote.example";
	r[1].rcpt = "late@remote.example";
	r[1].status = "4.4.1";
	r[1].diagnostic = "X-Pollsmtpd; 451 4.4.1 connect to "
	    "mx.remote.example[192.0.2.1]:25: Connection refused (delivery "
	    "time expired)";
	r[1].remote_mta = NULL;
	bi->hostname = "mx.example.org";
	bi->id = "0000000100000Z001";
	bi->orig_id = "ABC";
	bi->sender = "a@example.org";
	bi->arrival = 1796112000;	/* Tue, 1 Dec 2026 08:00:00 +0000 */
	bi->now = 1796119200;
	bi->rcpts = r;
	bi->nrcpts = 2;
	bi->headers = headers;
	bi->headers_len = sizeof(headers) - 1;
}

START_TEST(test_date)
{
	char d[64];

	ck_assert_int_eq(bounce_format_date(1796112000, d, sizeof(d)), 0);
	ck_assert_str_eq(d, "Tue, 1 Dec 2026 08:00:00 +0000");
	ck_assert_int_eq(bounce_format_date(1796112000, d, 10), -1);
}
END_TEST

START_TEST(test_structure)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t, *p, *report, *hdrs;
	const char *boundary = "0000000100000Z001/mx.example.org";

	info(&bi, r);
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	/* The header of the bounce. */
	ck_assert_ptr_eq(strstr(t, "From: MAILER-DAEMON@mx.example.org"), t);
	ck_assert_ptr_nonnull(strstr(t, "\nTo: <a@example.org>\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nAuto-Submitted: auto-replied\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nDate: Tue, 1 Dec 2026 10:00:00 "
	    "+0000\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\n\tboundary=\""
	    "0000000100000Z001/mx.example.org\"\n"));
	/* Three parts, in order, and the closing boundary last. */
	p = strstr(t, "\n--0000000100000Z001/mx.example.org\n"
	    "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n");
	ck_assert_ptr_nonnull(p);
	report = strstr(t, "\n--0000000100000Z001/mx.example.org\n"
	    "Content-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; mx.example.org\n");
	ck_assert_ptr_nonnull(report);
	ck_assert(report > p);
	hdrs = strstr(t, "Content-Type: text/rfc822-headers\n\n");
	ck_assert_ptr_nonnull(hdrs);
	ck_assert(hdrs > report);
	ck_assert_ptr_nonnull(strstr(hdrs, headers));
	ck_assert_str_eq(t + buf_len(b) - strlen(boundary) - 6,
	    "\n--0000000100000Z001/mx.example.org--\n");
	/* The per-message fields, then one block per recipient. */
	ck_assert_ptr_nonnull(strstr(report, "\nArrival-Date: Tue, 1 Dec 2026 "
	    "08:00:00 +0000\n"));
	ck_assert_ptr_nonnull(strstr(report,
	    "\n\nFinal-Recipient: rfc822; nobody@remote.example\n"
	    "Action: failed\n"
	    "Status: 5.1.1\n"
	    "Remote-MTA: dns; mx.remote.example\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <nobody@remote.example>: "
	    "unknown\n"));
	/* No server answered the second: no Remote-MTA. */
	ck_assert_ptr_nonnull(strstr(report,
	    "\n\nFinal-Recipient: rfc822; late@remote.example\n"
	    "Action: failed\n"
	    "Status: 4.4.1\n"
	    "Diagnostic-Code: X-Pollsmtpd; 451 4.4.1"));
	/* The human part names the recipients and the queue ID. */
	ck_assert_ptr_nonnull(strstr(p, "queue ID ABC"));
	ck_assert_ptr_nonnull(strstr(p, "<nobody@remote.example>: smtp; 550"));
	/* Nothing but LF line ends. */
	ck_assert_ptr_null(strchr(t, '\r'));
	buf_free(b);
}
END_TEST

/* A header section without its last LF still ends the part cleanly. */
START_TEST(test_headers_without_lf)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);

	info(&bi, r);
	bi.headers = "Subject: x";
	bi.headers_len = 10;
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	ck_assert_ptr_nonnull(strstr(buf_data(b), "\n\nSubject: x\n\n--"));
	buf_free(b);
}
END_TEST

START_TEST(test_too_big)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(512);

	info(&bi, r);
	ck_assert_int_eq(bounce_format(&bi, b), -1);
	buf_free(b);
}
END_TEST

static const char message[] =
    "Received: from c.example by mx.example.org (pollsmtpd) with ESMTP id "
    "ABC; Tue, 1 Dec 2026 10:00:00 +0000\n"
    "Subject: hello\n"
    "From: <a@example.org>\n"
    "\n"
    "the body, line one\n"
    "and line two\n";

/* RET=HDRS (and no RET): the third part is the headers only. */
START_TEST(test_ret_hdrs)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t;

	info(&bi, r);
	bi.headers = message;
	bi.headers_len = strstr(message, "\n\n") - message + 1;
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "Content-Description: Undelivered "
	    "Message Headers\nContent-Type: text/rfc822-headers\n\n"
	    "Received: from c.example"));
	ck_assert_ptr_null(strstr(t, "message/rfc822"));
	ck_assert_ptr_null(strstr(t, "the body, line one"));
	ck_assert_ptr_nonnull(strstr(t, "From: <a@example.org>\n\n--"));
	buf_free(b);
}
END_TEST

/* RET=FULL: message/rfc822 with the whole message, body and all. */
START_TEST(test_ret_full)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t, *part;

	info(&bi, r);
	bi.message = message;
	bi.message_len = sizeof(message) - 1;
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	part = strstr(t, "--0000000100000Z001/mx.example.org\n"
	    "Content-Description: Undelivered Message\n"
	    "Content-Type: message/rfc822\n\n");
	ck_assert_ptr_nonnull(part);
	ck_assert_ptr_nonnull(strstr(part, message));
	ck_assert_ptr_nonnull(strstr(part, "and line two\n\n"
	    "--0000000100000Z001/mx.example.org--\n"));
	ck_assert_ptr_null(strstr(t, "text/rfc822-headers"));
	buf_free(b);
}
END_TEST

/* ENVID and ORCPT (RFC 3464 2.2.1, 2.3.1), in their places. */
START_TEST(test_envid_orcpt)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t;

	info(&bi, r);
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	ck_assert_ptr_null(strstr(buf_data(b), "Original-"));
	buf_reset(b);
	bi.envid = "QQ314159";
	r[0].orcpt = "rfc822;nobody+tag@remote.example";
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "Content-Type: message/delivery-status"
	    "\n\nOriginal-Envelope-Id: QQ314159\n"
	    "Reporting-MTA: dns; mx.example.org\n"));
	ck_assert_ptr_nonnull(strstr(t, "\n\nOriginal-Recipient: "
	    "rfc822;nobody+tag@remote.example\n"
	    "Final-Recipient: rfc822; nobody@remote.example\n"
	    "Action: failed\n"));
	/* The second recipient had no ORCPT: none invented. */
	ck_assert_ptr_nonnull(strstr(t, "\n\nFinal-Recipient: rfc822; "
	    "late@remote.example\n"));
	ck_assert_ptr_null(strstr(strstr(t, "Original-Recipient") + 1,
	    "Original-Recipient"));
	buf_free(b);
}
END_TEST

/* A success report: "relayed" for every recipient, not a bounce. */
START_TEST(test_relayed)
{
	struct bounce_info bi;
	struct bounce_rcpt r[1];
	struct buf *b = buf_new(65536);
	const char *t;

	memset(r, 0, sizeof(r));
	{
		struct bounce_rcpt two[2];

		info(&bi, two);
	}
	r[0].rcpt = "bob@remote.example";
	r[0].status = "2.0.0";
	r[0].diagnostic = "smtp; 250 2.0.0 Ok: queued as 99";
	r[0].remote_mta = "mx.remote.example";
	bi.rcpts = r;
	bi.nrcpts = 1;
	bi.relayed = 1;
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "\nSubject: Successful Mail Delivery "
	    "Report\n"));
	ck_assert_ptr_null(strstr(t, "Undelivered"));
	ck_assert_ptr_null(strstr(t, "Action: failed"));
	ck_assert_ptr_nonnull(strstr(t, "\n\nFinal-Recipient: rfc822; "
	    "bob@remote.example\n"
	    "Action: relayed\n"
	    "Status: 2.0.0\n"
	    "Remote-MTA: dns; mx.remote.example\n"
	    "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 99\n"));
	ck_assert_ptr_nonnull(strstr(t, "was relayed to the recipients"));
	ck_assert_ptr_nonnull(strstr(t, "Content-Description: Relayed Message "
	    "Headers\nContent-Type: text/rfc822-headers\n"));
	buf_free(b);
}
END_TEST

/*
 * The report of a local delivery: "delivered", Status 2.0.0, no
 * Remote-MTA or Diagnostic-Code, ENVID and ORCPT; the headers only
 * even when the whole message is offered (RFC 3461 4.3).
 */
START_TEST(test_delivered)
{
	static const char whole[] = "Subject: hello\n\nthe body line\n";
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t, *report, *hdrs;

	info(&bi, r);
	memset(r, 0, sizeof(r));
	r[0].rcpt = "alice@example.org";
	r[0].status = "2.0.0";
	r[0].orcpt = "rfc822;Alice+x@example.org";
	r[1].rcpt = "bob@example.org";
	r[1].status = "2.0.0";
	bi.envid = "E-1";
	bi.message = whole;
	bi.message_len = sizeof(whole) - 1;
	bi.delivered = 1;
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_eq(strstr(t, "From: MAILER-DAEMON@mx.example.org"), t);
	ck_assert_ptr_nonnull(strstr(t, "\nSubject: Successful Mail Delivery "
	    "Report\n"));
	ck_assert_ptr_nonnull(strstr(t, "was delivered to the mailboxes"));
	ck_assert_ptr_nonnull(strstr(t, "queue ID ABC"));
	ck_assert_ptr_nonnull(strstr(t, "\n<alice@example.org>: delivered to "
	    "mailbox\n<bob@example.org>: delivered to mailbox\n"));
	report = strstr(t, "Content-Type: message/delivery-status\n\n"
	    "Original-Envelope-Id: E-1\nReporting-MTA: dns; mx.example.org\n");
	ck_assert_ptr_nonnull(report);
	ck_assert_ptr_nonnull(strstr(report, "\n\n"
	    "Original-Recipient: rfc822;Alice+x@example.org\n"
	    "Final-Recipient: rfc822; alice@example.org\n"
	    "Action: delivered\n"
	    "Status: 2.0.0\n"
	    "Last-Attempt-Date: Tue, 1 Dec 2026 10:00:00 +0000\n"));
	ck_assert_ptr_nonnull(strstr(report, "\n\n"
	    "Final-Recipient: rfc822; bob@example.org\n"
	    "Action: delivered\n"
	    "Status: 2.0.0\n"));
	ck_assert_ptr_null(strstr(t, "Remote-MTA"));
	ck_assert_ptr_null(strstr(t, "Diagnostic-Code"));
	ck_assert_ptr_null(strstr(t, "Action: failed"));
	ck_assert_ptr_null(strstr(t, "Action: relayed"));
	hdrs = strstr(t, "Content-Description: Delivered Message Headers\n"
	    "Content-Type: text/rfc822-headers\n\n");
	ck_assert_ptr_nonnull(hdrs);
	ck_assert(hdrs > report);
	ck_assert_ptr_nonnull(strstr(hdrs, headers));
	ck_assert_ptr_null(strstr(t, "the body line"));
	ck_assert_ptr_null(strstr(t, "message/rfc822"));
	ck_assert_ptr_null(strchr(t, '\r'));
	buf_free(b);
}
END_TEST

/*
 * RFC 6533: a UTF-8 recipient makes the report global: its type, the
 * notice's charset, the utf-8 address type for that recipient only, and
 * the headers as message/global-headers.
 */
START_TEST(test_global_recipient)
{
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t, *report, *hdrs;

	info(&bi, r);
	r[0].rcpt = "j\xc3\xb6rg@b\xc3\xbc" "cher.example";
	ck_assert_int_eq(bounce_is_global(&bi), 1);
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "\nContent-Type: multipart/report; "
	    "report-type=global-delivery-status;\n"));
	ck_assert_ptr_nonnull(strstr(t, "Content-Type: text/plain; "
	    "charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"));
	ck_assert_ptr_nonnull(strstr(t, "\n<j\xc3\xb6rg@b\xc3\xbc" "cher.example>: "
	    "smtp; 550"));
	ck_assert_ptr_nonnull(strstr(t, "report-type=global-delivery-status;"
	    "\n\tboundary=\"0000000100000Z001/mx.example.org\"\n"
	    "Content-Transfer-Encoding: 8bit\n\n"));
	report = strstr(t, "Content-Type: message/global-delivery-status\n"
	    "Content-Transfer-Encoding: 8bit\n\n"
	    "Reporting-MTA: dns; mx.example.org\n");
	ck_assert_ptr_nonnull(report);
	ck_assert_ptr_nonnull(strstr(report, "\n\nFinal-Recipient: utf-8; "
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example\nAction: failed\n"));
	/* An ASCII address keeps the rfc822 type. */
	ck_assert_ptr_nonnull(strstr(report, "\n\nFinal-Recipient: rfc822; "
	    "late@remote.example\n"));
	hdrs = strstr(t, "Content-Type: message/global-headers\n"
	    "Content-Transfer-Encoding: 8bit\n\n");
	ck_assert_ptr_nonnull(hdrs);
	ck_assert(hdrs > report);
	ck_assert_ptr_nonnull(strstr(hdrs, headers));
	ck_assert_ptr_null(strstr(t, "message/delivery-status"));
	ck_assert_ptr_null(strstr(t, "text/rfc822-headers"));
	ck_assert_ptr_null(strstr(t, "us-ascii"));
	buf_free(b);
}
END_TEST

/* A UTF-8 sender, or UTF-8 in the text returned, is enough too. */
START_TEST(test_global_sender_and_text)
{
	static const char utf8_headers[] = "Subject: Gr\xc3\xbc\xc3\x9f"
	    "e\nFrom: <a@example.org>\n";
	static const char whole[] = "Subject: Gr\xc3\xbc\xc3\x9f" "e\n\nbody\n";
	struct bounce_info bi;
	struct bounce_rcpt r[2];
	struct buf *b = buf_new(65536);
	const char *t;

	info(&bi, r);
	ck_assert_int_eq(bounce_is_global(&bi), 0);
	bi.sender = "\xc3\xa5sa@example.org";
	ck_assert_int_eq(bounce_is_global(&bi), 1);
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "\nTo: <\xc3\xa5sa@example.org>\n"));
	ck_assert_ptr_nonnull(strstr(t, "report-type=global-delivery-status"));
	buf_reset(b);

	info(&bi, r);
	bi.headers = utf8_headers;
	bi.headers_len = sizeof(utf8_headers) - 1;
	ck_assert_int_eq(bounce_is_global(&bi), 1);
	/* RET=FULL: the text returned is the message, as message/global. */
	bi.message = whole;
	bi.message_len = sizeof(whole) - 1;
	ck_assert_int_eq(bounce_is_global(&bi), 1);
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "Content-Type: message/global\n"
	    "Content-Transfer-Encoding: 8bit\n\n"
	    "Subject: Gr\xc3\xbc\xc3\x9f" "e\n\nbody\n"));
	ck_assert_ptr_nonnull(strstr(t, "\n\nFinal-Recipient: rfc822; "
	    "nobody@remote.example\n"));
	buf_reset(b);

	/* ASCII message returned whole, UTF-8 only in headers not sent. */
	info(&bi, r);
	bi.message = "Subject: x\n\nbody\n";
	bi.message_len = strlen(bi.message);
	bi.headers = utf8_headers;
	bi.headers_len = sizeof(utf8_headers) - 1;
	ck_assert_int_eq(bounce_is_global(&bi), 0);
	ck_assert_int_eq(bounce_format(&bi, b), 0);
	t = buf_data(b);
	ck_assert_ptr_nonnull(strstr(t, "Content-Type: message/rfc822\n\n"));
	ck_assert_ptr_nonnull(strstr(t, "report-type=delivery-status;"));
	ck_assert_ptr_null(strstr(t, "Content-Transfer-Encoding"));
	buf_free(b);
}
END_TEST

static Suite *
bounce_suite(void)
{
	Suite *s = suite_create("bounce");
	TCase *tc = tcase_create("bounce");

	tcase_add_test(tc, test_date);
	tcase_add_test(tc, test_structure);
	tcase_add_test(tc, test_headers_without_lf);
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_ret_hdrs);
	tcase_add_test(tc, test_ret_full);
	tcase_add_test(tc, test_envid_orcpt);
	tcase_add_test(tc, test_relayed);
	tcase_add_test(tc, test_delivered);
	tcase_add_test(tc, test_global_recipient);
	tcase_add_test(tc, test_global_sender_and_text);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(bounce_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
