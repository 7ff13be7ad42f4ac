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

static Suite *
bounce_suite(void)
{
	Suite *s = suite_create("bounce");
	TCase *tc = tcase_create("bounce");

	tcase_add_test(tc, test_date);
	tcase_add_test(tc, test_structure);
	tcase_add_test(tc, test_headers_without_lf);
	tcase_add_test(tc, test_too_big);
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
