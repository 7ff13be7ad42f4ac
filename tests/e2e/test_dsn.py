"""test_dsn - the delivery agent honours DSN (RFC 3461) end to end,
and sends BINARYMIME (RFC 3030) with BDAT.

A client sends through pollsmtpd with NOTIFY, ORCPT, RET and ENVID; the
agent delivers to an SMTP sink of test_delivery (on 127.0.0.2, found
through dnsmasq on loopback) and the test looks at what the sink was
sent and at what arrives in the sender's (alice's) Maildir.

"No notice arrives" is asserted only after the agent has finished the
letter: its bounce (or report) is stored before the letter goes to
error/ or is removed, so once that has happened, a notice would be
there already. Log records are waited for: the logger writes them on
its own time.
"""

import email
import email.policy
import json
import os
import re
import smtplib
import unittest

import harness
from test_delivery import DeliveryTest, wait_until
from test_extensions import ExtTestCase, inspect


class DsnBase(DeliveryTest):
    """Helpers: a client with ESMTP parameters, a sink, a report."""

    def dsn_send(self, rcpts, mail_params="", sender="alice@example.org"):
        """rcpts: [(address, "NOTIFY=... ORCPT=...")]; returns the ID."""
        c = self.daemon.client()
        c.expect_ok("EHLO client.test", 250)
        c.expect_ok("MAIL FROM:<%s>%s" % (sender,
                    " " + mail_params if mail_params else ""), 250)
        for addr, params in rcpts:
            c.expect_ok("RCPT TO:<%s>%s" % (addr, " " + params
                                             if params else ""), 250)
        c.expect_ok("DATA", 354)
        reply = c.expect_ok("Subject: dsn test\r\n\r\nthe body line\r\n.",
                            250)
        c.expect_ok("QUIT", 221)
        c.close()
        return re.search(r"queued as (\w+)", reply.text).group(1)

    def setup_sink(self, domain, dsn):
        sink = self.add_sink("127.0.0.2")
        if dsn:
            sink.ehlo = sink.ehlo + ["DSN"]
        self.dns.mx(domain, "mx." + domain, 10)
        self.dns.a("mx." + domain, "127.0.0.2")
        return sink

    def report(self, raw):
        self.assertIn(b"Return-Path: <>\n", raw)
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = msg.get_payload()
        fields = [dict(b.items()) for b in parts[1].get_payload()]
        return msg, parts, fields


    @staticmethod
    def wire(s):
        """s as the harness client sends it: its UTF-8 bytes, one
        latin-1 character each."""
        return s.encode("utf-8").decode("latin-1")

    @staticmethod
    def logged(s):
        """s as a log record has it: 8-bit bytes as \\xHH, as a regex."""
        return re.escape("".join(
            chr(b) if 0x20 <= b < 0x7f else "\\x%02x" % b
            for b in s.encode("utf-8")))


class DsnTest(DsnBase):

    def test_notify_never_no_bounce(self):
        """NOTIFY=NEVER and a 5xx: error/ has the letter, no bounce."""
        sink = self.setup_sink("never.test", dsn=False)
        sink.rcpt = lambda a: "550 5.1.1 <%s>: no such user" % a
        self.start()
        qid = self.dsn_send([("nobody@never.test", "NOTIFY=NEVER")])
        wait_until(lambda: self.errors("never.test"), 10, "error/")
        self.wait_empty("never.test")
        wait_until(lambda: self.log_has(r"%s no bounce: NOTIFY says not to"
                                        % qid), 10, "the log record")
        wait_until(lambda: self.log_has(
            r"%s to=<nobody@never.test>.*status=bounced" % qid), 10,
            "the bounced record")
        self.assertEqual(self.daemon.files("alice"), [])

    def test_bounce_only_for_failure_with_full_envid_orcpt(self):
        """Of two failed recipients only the one without NEVER is in the
        bounce; RET=FULL returns the whole message, ENVID and ORCPT
        are reported."""
        sink = self.setup_sink("mixed.test", dsn=False)
        sink.rcpt = lambda a: "550 5.1.1 <%s>: no such user" % a
        self.start()
        qid = self.dsn_send(
            [("quiet@mixed.test", "NOTIFY=NEVER"),
             ("loud@mixed.test", "NOTIFY=FAILURE ORCPT=rfc822;Loud+2Bx@"
              "mixed.test")], "RET=FULL ENVID=QQ314159")
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        self.wait_empty("mixed.test")
        self.assertEqual(len(self.daemon.files("alice")), 1)
        msg, parts, fields = self.report(self.bounces()[0])
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to "
                         "Sender")
        self.assertEqual(fields[0]["Original-Envelope-Id"], "QQ314159")
        self.assertEqual(len(fields), 2)
        self.assertEqual(fields[1]["Final-Recipient"],
                         "rfc822; loud@mixed.test")
        self.assertEqual(fields[1]["Original-Recipient"],
                         "rfc822;Loud+x@mixed.test")
        self.assertEqual(fields[1]["Action"], "failed")
        self.assertNotIn(b"quiet@mixed.test>: smtp", self.bounces()[0])
        self.assertEqual(parts[2].get_content_type(), "message/rfc822")
        inner = parts[2].get_payload()[0]
        self.assertEqual(inner["Subject"], "dsn test")
        self.assertIn("the body line", inner.get_payload())
        self.assertIn("id %s" % qid, inner["Received"])

    def test_ret_hdrs_headers_only(self):
        """RET=HDRS: the third part is the headers, not the body."""
        sink = self.setup_sink("hdrs.test", dsn=False)
        sink.rcpt = lambda a: "550 5.1.1 <%s>: no such user" % a
        self.start()
        self.dsn_send([("nobody@hdrs.test", "")], "RET=HDRS")
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        _, parts, fields = self.report(self.bounces()[0])
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: dsn test", parts[2].get_payload())
        self.assertNotIn(b"the body line", self.bounces()[0])
        self.assertNotIn("Original-Envelope-Id", fields[0])

    def test_success_without_dsn_relayed_report(self):
        """NOTIFY=SUCCESS, next hop without DSN: it gets no DSN
        parameters, and a report "relayed" reaches the sender."""
        sink = self.setup_sink("plain.test", dsn=False)
        self.start()
        qid = self.dsn_send([("bob@plain.test", "NOTIFY=SUCCESS,FAILURE "
                              "ORCPT=rfc822;bob@plain.test"),
                             ("carol@plain.test", "")],
                            "RET=HDRS ENVID=E-42")
        wait_until(lambda: self.daemon.files("alice"), 10, "the report")
        self.wait_empty("plain.test")
        wait_until(lambda: sink.transcripts, 10, "the sink's transcript")
        mail, rcpts, _ = sink.letters[0]
        self.assertEqual(rcpts, ["bob@plain.test", "carol@plain.test"])
        self.assertNotIn("RET=", mail)
        self.assertNotIn("ENVID=", mail)
        self.assertFalse([l for l in sink.transcripts[0]
                          if "NOTIFY" in l or "ORCPT" in l])
        self.assertEqual(len(self.daemon.files("alice")), 1)
        msg, parts, fields = self.report(self.bounces()[0])
        self.assertEqual(msg["Subject"], "Successful Mail Delivery Report")
        self.assertEqual(fields[0]["Original-Envelope-Id"], "E-42")
        # Only bob asked: carol is not in the report.
        self.assertEqual(len(fields), 2)
        self.assertEqual(fields[1]["Final-Recipient"],
                         "rfc822; bob@plain.test")
        self.assertEqual(fields[1]["Original-Recipient"],
                         "rfc822;bob@plain.test")
        self.assertEqual(fields[1]["Action"], "relayed")
        self.assertEqual(fields[1]["Status"], "2.0.0")
        self.assertEqual(fields[1]["Remote-MTA"], "dns; mx.plain.test")
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
        wait_until(lambda: self.log_has(
            r"%s sender delivery status notification" % qid), 10,
            "the notification record")

    def test_success_relayed_report_headers_only_with_ret_full(self):
        """RET=FULL asks for the message in a report of failure; a
        "relayed" report carries its headers only (RFC 3461 4.3)."""
        self.setup_sink("plain.test", dsn=False)
        self.start()
        self.dsn_send([("bob@plain.test", "NOTIFY=SUCCESS")], "RET=FULL")
        wait_until(lambda: self.daemon.files("alice"), 10, "the report")
        _, parts, fields = self.report(self.bounces()[0])
        self.assertEqual(fields[1]["Action"], "relayed")
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: dsn test", parts[2].get_payload())
        self.assertNotIn(b"the body line", self.bounces()[0])

    def test_bounce_to_a_plus_tag_sender_reaches_the_user(self):
        """A local sender with a +extension gets the bounce in the
        user's Maildir, not the postmaster's (alice here)."""
        sink = self.setup_sink("tag.test", dsn=False)
        sink.rcpt = lambda a: "550 5.1.1 <%s>: no such user" % a
        self.start()
        self.dsn_send([("nobody@tag.test", "")], sender="bob+lists@example.org")
        wait_until(lambda: self.daemon.files("bob"), 10, "the bounce")
        self.assertEqual(self.daemon.files("alice"), [])
        with open(os.path.join(self.daemon.maildir("bob"),
                               self.daemon.files("bob")[0]), "rb") as f:
            _, _, fields = self.report(f.read())
        self.assertEqual(fields[1]["Action"], "failed")

    def test_success_with_dsn_passed_on(self):
        """NOTIFY=SUCCESS, next hop with DSN: RET/ENVID on MAIL, NOTIFY
        and ORCPT on RCPT, and no report of ours."""
        sink = self.setup_sink("dsn.test", dsn=True)
        self.start()
        qid = self.dsn_send([("bob@dsn.test", "NOTIFY=SUCCESS "
                              "ORCPT=rfc822;bob+2Btag@dsn.test")],
                            "RET=FULL ENVID=E-43")
        wait_until(lambda: sink.letters, 10, "the letter at the sink")
        self.wait_empty("dsn.test")
        wait_until(lambda: self.log_has(r"%s removed" % qid), 10,
                   "the letter removed")
        wait_until(lambda: sink.transcripts, 10, "the sink's transcript")
        mail, _, _ = sink.letters[0]
        self.assertTrue(mail.endswith(" RET=FULL ENVID=E-43"), mail)
        self.assertIn("C: RCPT TO:<bob@dsn.test> NOTIFY=SUCCESS "
                      "ORCPT=rfc822;bob+2Btag@dsn.test", sink.transcripts[0])
        self.assertEqual(self.daemon.files("alice"), [])
        self.assertFalse(self.log_has(r"%s sender delivery status" % qid))


class GlobalDsnTest(DsnBase):
    """SMTPUTF8 letters (RFC 6531) whose reports hold UTF-8 are
    internationalized as RFC 6533 says, and reach a UTF-8 sender."""

    def test_utf8_recipient_bounce_is_global(self):
        """A UTF-8 recipient fails: alice's bounce is a
        global-delivery-status report with the utf-8 address type."""
        sink = self.setup_sink("utf8.test", dsn=False)
        sink.ehlo = sink.ehlo + ["SMTPUTF8"]
        sink.rcpt = lambda a: "550 5.1.1 no such user"
        self.start()
        rcpt = "j\u00f6rg@utf8.test"
        self.dsn_send([(self.wire(rcpt), "")], "SMTPUTF8")
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        self.wait_empty("utf8.test")
        # The agent said SMTPUTF8 to the sink, which refused the RCPT
        # (the sink keeps a transcript once the connection has ended).
        wait_until(lambda: sink.transcripts, 10, "the sink's transcript")
        self.assertTrue([l for l in sink.transcripts[0]
                         if l.startswith("C: MAIL") and "SMTPUTF8" in l])
        raw = self.bounces()[0]
        self.assertIn(b"report-type=global-delivery-status;", raw)
        self.assertIn(b"Content-Type: text/plain; charset=utf-8\n", raw)
        self.assertIn(b"Content-Type: message/global-delivery-status\n"
                      b"Content-Transfer-Encoding: 8bit\n\n", raw)
        self.assertIn(("\n\nFinal-Recipient: utf-8; %s\nAction: failed\n"
                       "Status: 5.1.1\n" % rcpt).encode(), raw)
        self.assertIn(("\n<%s>: smtp; 550 5.1.1" % rcpt).encode(), raw)
        self.assertIn(b"Content-Type: message/global-headers\n"
                      b"Content-Transfer-Encoding: 8bit\n\n", raw)
        for ascii_only in (b"message/delivery-status", b"rfc822-headers",
                           b"us-ascii"):
            self.assertNotIn(ascii_only, raw)

    def test_utf8_sender_gets_its_bounce_with_smtputf8(self):
        """A UTF-8 sender of another domain: its bounce is queued with
        SMTPUTF8 and sent on to the sender's server, MAIL FROM:<>
        SMTPUTF8 and the sender as it was given (before, the agent
        could not read the sender and stored no bounce at all)."""
        sink = self.setup_sink("hard8.test", dsn=False)
        sink.ehlo = sink.ehlo + ["SMTPUTF8"]
        sink.rcpt = lambda a: ("550 5.1.1 no such user"
                               if a.startswith("nobody") else "250 2.1.5 Ok")
        self.dns.mx("sender8.test", "mx.hard8.test", 10)
        self.start()
        sender = "\u00e5sa@sender8.test"
        self.dsn_send([("nobody@hard8.test", "")], "SMTPUTF8",
                      sender=self.wire(sender))

        def bounce():
            return [l for l in sink.letters if l[0].startswith("MAIL FROM:<>")]
        got = wait_until(bounce, 15 * harness.SLOW,
                         "the bounce at the sender's server")
        mail, rcpts, data = got[0]
        self.assertIn("SMTPUTF8", mail.upper().split())
        self.assertEqual([r.encode("latin-1").decode("utf-8") for r in rcpts],
                         [sender])
        self.assertIn(("\r\nTo: <%s>\r\n" % sender).encode(), data)
        self.assertIn(b"report-type=global-delivery-status;", data)
        self.assertIn(b"\r\nFinal-Recipient: rfc822; nobody@hard8.test\r\n",
                      data)
        self.wait_empty("hard8.test")
        self.wait_empty("sender8.test")
        self.assert_logged(r"non-delivery notification: \w+ \(to <%s>\)"
                           % self.logged(sender))


class BinarymimeTest(DsnBase):

    BODY = (b"Subject: binary\r\n\r\n.leading dot\r\nbare LF\nbare CR\r"
            b"\xff\xfe\x00 and NUL\r\n")

    def bdat_send(self, rcpt):
        c = self.daemon.client()
        c.expect_ok("EHLO client.test", 250)
        c.expect_ok("MAIL FROM:<alice@example.org> BODY=BINARYMIME", 250)
        c.expect_ok("RCPT TO:<%s>" % rcpt, 250)
        c.send(b"BDAT %d LAST\r\n" % len(self.BODY) + self.BODY)
        reply = c.expect(250)
        c.expect_ok("QUIT", 221)
        c.close()
        return re.search(r"queued as (\w+)", reply.text).group(1)

    def test_bdat_bytes_as_received(self):
        """CHUNKING and BINARYMIME offered: BODY=BINARYMIME, BDAT, the
        very bytes the client sent after our Received: line."""
        sink = self.setup_sink("bin.test", dsn=False)
        sink.ehlo = sink.ehlo + ["CHUNKING", "BINARYMIME"]
        self.start()
        qid = self.bdat_send("bob@bin.test")
        wait_until(lambda: sink.letters, 10, "the letter at the sink")
        self.wait_empty("bin.test")
        mail, rcpts, data = sink.letters[0]
        self.assertIn(" BODY=BINARYMIME", mail)
        self.assertTrue(data.endswith(self.BODY), data)
        first = data[:len(data) - len(self.BODY)]
        self.assertTrue(first.startswith(b"Received: "), first)
        self.assertIn(("id %s" % qid).encode(), first)
        self.assertTrue(first.endswith(b"\r\n"))
        self.assertEqual(first.count(b"\n"), 1)
        wait_until(lambda: sink.transcripts, 10, "the sink's transcript")
        self.assertFalse([l for l in sink.transcripts[0]
                          if l.startswith("C: DATA")])

    def test_no_chunking_fails_563(self):
        """The next hop lacks CHUNKING/BINARYMIME: failed for good with
        5.6.3, nothing sent, and the sender gets a bounce."""
        sink = self.setup_sink("nobin.test", dsn=False)
        self.start()
        self.bdat_send("bob@nobin.test")
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        self.wait_empty("nobin.test")
        _, parts, fields = self.report(self.bounces()[0])
        self.assertEqual(fields[1]["Status"], "5.6.3")
        self.assertEqual(sink.letters, [])
        # The text is kept with its CR LFs: its header section ends at
        # the CR LF empty line, and none of the binary body is returned.
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: binary", parts[2].get_payload())
        self.assertNotIn(b".leading dot", self.bounces()[0])
        self.assertNotIn(b"\xff\xfe", self.bounces()[0])
        wait_until(lambda: sink.transcripts, 10, "the sink's transcript")
        self.assertFalse([l for l in sink.transcripts[0]
                          if l.startswith("C: MAIL")])
        self.assertTrue(self.errors("nobin.test"))


class LocalSuccessReport(ExtTestCase):
    """NOTIFY=SUCCESS for local recipients: the receiving daemon writes
    the "delivered" report (RFC 3461 6.2, RFC 3464) in the same commit
    as the message, so it is on disk when the 250 arrives. The agent
    is off: a report for a remote sender stays queued to be looked at.
    """

    daemon_opts = dict(domains=["example.org"],
                       users=["alice", "bob", "carol"])
    extra_local = '  aliases = { info = [ "bob", "carol" ]; };\n'

    BODY = "the body line, not in a report\r\n"

    def smtp_send(self, sender, rcpts, mail_options=()):
        """rcpts: [(address, [RCPT options])]; returns the queue ID."""
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=30)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertTrue(s.has_extn("dsn"))
        code, _ = s.mail(sender, list(mail_options))
        self.assertEqual(code, 250)
        for addr, opts in rcpts:
            code, _ = s.rcpt(addr, list(opts))
            self.assertEqual(code, 250, addr)
        # Bytes: a UTF-8 sender (SMTPUTF8) is UTF-8 in From: too.
        code, text = s.data(("From: <%s>\r\nSubject: dsn local\r\n\r\n%s"
                             % (sender or "nobody@example.org", self.BODY))
                            .encode("utf-8"))
        self.assertEqual(code, 250, text)
        s.quit()
        return re.search(rb"queued as (\w+)", text).group(1).decode()

    def report_of(self, raw, qid):
        """The parsed report; checks what every report has."""
        self.assertTrue(raw.startswith(b"Return-Path: <>\n"), raw[:200])
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.assertEqual(msg["From"], "MAILER-DAEMON@%s (Mail Delivery "
                         "System)" % harness.HOSTNAME)
        self.assertEqual(msg["Subject"], "Successful Mail Delivery Report")
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = msg.get_payload()
        self.assertEqual(len(parts), 3)
        self.assertEqual(parts[1].get_content_type(),
                         "message/delivery-status")
        fields = [dict(b.items()) for b in parts[1].get_payload()]
        self.assertEqual(fields[0]["Reporting-MTA"],
                         "dns; %s" % harness.HOSTNAME)
        self.assertEqual(fields[0]["X-Pollsmtpd-Queue-ID"], qid)
        # Headers only (RFC 3461 4.3), our Received: line first.
        self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
        hdrs = parts[2].get_payload()
        self.assertTrue(hdrs.startswith("Received: from client.test"), hdrs)
        self.assertIn("id %s;" % qid, hdrs)
        self.assertIn("Subject: dsn local", hdrs)
        self.assertNotIn(b"the body line", raw)
        return msg, fields

    def the_report(self, user, qid):
        """user's Maildir holds the message's copy (when asked) and one
        report, whose ID the log names: (report text, report ID)."""
        names = [n for n in self.d.files(user) if qid not in n]
        self.assertEqual(len(names), 1, self.d.files(user))
        rid = names[0].split(".")[1]
        return self.d.read(user, names[0]), rid

    def wait_logged(self, pattern):
        wait_until(lambda: re.search(pattern, self.d.log()), 10,
                   "the log record %r" % pattern)

    def test_local_sender_gets_delivered_report(self):
        """RET=HDRS, ENVID, ORCPT: alice's Maildir has the report
        when the 250 arrives; bob has the message."""
        qid = self.smtp_send("alice@example.org",
                             [("bob@example.org", ["NOTIFY=SUCCESS",
                                                   "ORCPT=rfc822;Bob+2Bx@"
                                                   "example.org"])],
                             ["ENVID=E+2D77", "RET=HDRS"])
        self.assertEqual(len(self.d.files("bob")), 1)
        self.assertIn(qid, self.d.files("bob")[0])
        raw, rid = self.the_report("alice", qid)
        self.assertNotEqual(rid, qid)
        self.assertIn(b"\nDelivered-To: alice@example.org\n", raw)
        msg, fields = self.report_of(raw, qid)
        self.assertEqual(msg["To"], "<alice@example.org>")
        self.assertEqual(fields[0]["Original-Envelope-Id"], "E-77")
        self.assertEqual(len(fields), 2)
        self.assertEqual(fields[1]["Final-Recipient"],
                         "rfc822; bob@example.org")
        self.assertEqual(fields[1]["Original-Recipient"],
                         "rfc822;Bob+x@example.org")
        self.assertEqual(fields[1]["Action"], "delivered")
        self.assertEqual(fields[1]["Status"], "2.0.0")
        self.assertNotIn("Remote-MTA", fields[1])
        self.assertEqual(self.d.queue_domains(), [])
        self.wait_logged(r"%s success report %s queued for "
                         r"<alice@example\.org> \(Maildir of alice\)"
                         % (qid, rid))
        self.wait_logged(r"%s from=<> to=<alice@example\.org> success "
                         r"report of %s, 1 recipient delivered" % (rid, qid))

    def test_remote_sender_gets_a_queue_letter(self):
        """A remote sender: a letter from <> for the sender's domain,
        in the queue format, which maildir-inspect shows."""
        qid = self.smtp_send("Far@Remote.Example",
                             [("carol@example.org", ["NOTIFY=SUCCESS"])],
                             ["ENVID=R-1"])
        self.assertEqual(len(self.d.files("carol")), 1)
        self.assertEqual(self.d.queue_domains(), ["remote.example"])
        names = self.d.queue_files("remote.example")
        self.assertEqual(len(names), 1)
        rid = names[0].split(".")[1]
        self.assertNotEqual(rid, qid)
        st, out = inspect(self.d, "--json", "show", rid)
        self.assertEqual(st, 0, out)
        doc = json.loads(out)
        letter = doc["letters"][0] if "letters" in doc else doc
        self.assertEqual(letter["sender"], "")
        # The session lower-cases the domain of the sender it keeps.
        self.assertEqual(letter["recipients"], ["Far@remote.example"])
        raw = self.d.read_queue("remote.example", names[0])
        self.assertTrue(raw.startswith(b"X-Envelope-From: <>\n"
                                       b"X-Envelope-To: <Far@remote.example>\n"
                                       b"Received: by "), raw[:200])
        body = raw.split(b"\n", 3)[3]
        msg = email.message_from_bytes(body, policy=email.policy.compat32)
        self.assertEqual(msg["To"], "<Far@remote.example>")
        fields = [dict(b.items()) for b in msg.get_payload()[1].get_payload()]
        self.assertEqual(fields[0]["Original-Envelope-Id"], "R-1")
        self.assertEqual(fields[1]["Final-Recipient"],
                         "rfc822; carol@example.org")
        self.assertEqual(fields[1]["Action"], "delivered")
        st, out = inspect(self.d, "check")
        self.assertEqual(st, 0, out)
        self.wait_logged(r"%s success report %s queued for "
                         r"<Far@remote\.example> \(domain remote\.example\)"
                         % (qid, rid))

    def test_mixed_recipients_one_report(self):
        """SUCCESS,FAILURE for bob, FAILURE for carol, SUCCESS for a
        remote one (the agent's, kept in its queue file): one report,
        naming bob only, headers only although RET=FULL."""
        qid = self.smtp_send("alice@example.org",
                             [("bob@example.org", ["NOTIFY=SUCCESS,FAILURE"]),
                              ("carol@example.org", ["NOTIFY=FAILURE"]),
                              ("r@remote.example", ["NOTIFY=SUCCESS"])],
                             ["RET=FULL"])
        raw, rid = self.the_report("alice", qid)
        _, fields = self.report_of(raw, qid)
        self.assertNotIn("Original-Envelope-Id", fields[0])
        self.assertEqual([f["Final-Recipient"] for f in fields[1:]],
                         ["rfc822; bob@example.org"])
        self.assertNotIn(b"carol", raw)
        self.assertNotIn(b"r@remote.example", raw)
        q = self.d.queue_files("remote.example")
        self.assertEqual(len(q), 1)
        self.assertIn(qid, q[0])
        self.assertIn(b"X-Envelope-To: <r@remote.example> NOTIFY=SUCCESS\n",
                      self.d.read_queue("remote.example", q[0]))

    def test_alias_and_tag(self):
        """Through an alias (bob and carol, the alias as
        Original-Recipient) and a +tag (the address given): bob, the
        sender, gets the message and the report of all three."""
        qid = self.smtp_send("bob@example.org",
                             [("info@example.org", ["NOTIFY=SUCCESS"]),
                              ("alice+lists@example.org",
                               ["NOTIFY=SUCCESS"])])
        self.assertEqual(len(self.d.files("alice")), 1)
        self.assertEqual(len(self.d.files("carol")), 1)
        self.assertEqual(len(self.d.files("bob")), 2)
        raw, rid = self.the_report("bob", qid)
        _, fields = self.report_of(raw, qid)
        got = [(f["Final-Recipient"], f.get("Original-Recipient"),
                f["Action"]) for f in fields[1:]]
        self.assertEqual(got, [
            ("rfc822; bob@example.org", "rfc822;info@example.org",
             "delivered"),
            ("rfc822; carol@example.org", "rfc822;info@example.org",
             "delivered"),
            ("rfc822; alice+lists@example.org", None, "delivered")])
        self.wait_logged(r"%s from=<> to=<bob@example\.org> success "
                         r"report of %s, 3 recipients delivered" % (rid, qid))

    def test_utf8_sender_gets_a_global_report(self):
        """SMTPUTF8 and a UTF-8 sender of another domain: the report is
        queued with SMTPUTF8 for it, internationalized (RFC 6533), and
        maildir-inspect reads the queue file (before, no report was
        made for a UTF-8 address)."""
        sender = "\u00e5sa@remote.example"
        qid = self.smtp_send(sender, [("carol@example.org",
                                       ["NOTIFY=SUCCESS"])], ["SMTPUTF8"])
        self.assertEqual(len(self.d.files("carol")), 1)
        names = self.d.queue_files("remote.example")
        self.assertEqual(len(names), 1)
        rid = names[0].split(".")[1]
        raw = self.d.read_queue("remote.example", names[0])
        self.assertTrue(raw.startswith(("X-Envelope-From: <> SMTPUTF8\n"
                                        "X-Envelope-To: <%s>\n" % sender)
                                       .encode()), raw[:200])
        self.assertIn(("\nTo: <%s>\n" % sender).encode(), raw)
        self.assertIn(b"report-type=global-delivery-status;", raw)
        self.assertIn(b"\n\nFinal-Recipient: rfc822; carol@example.org\n"
                      b"Action: delivered\n", raw)
        st, out = inspect(self.d, "check")
        self.assertEqual(st, 0, out)
        self.wait_logged(r"%s success report %s queued for <%s>"
                         % (qid, rid, DsnBase.logged(sender)))

    def test_no_report(self):
        """NOTIFY=NEVER, FAILURE or none, and the null sender: the
        message is stored, no report anywhere."""
        cases = [("alice@example.org", ["NOTIFY=NEVER"]),
                 ("alice@example.org", ["NOTIFY=FAILURE,DELAY"]),
                 ("alice@example.org", []),
                 ("", ["NOTIFY=SUCCESS"])]
        for n, (sender, opts) in enumerate(cases, 1):
            qid = self.smtp_send(sender, [("bob@example.org", opts)])
            self.assertEqual(len(self.d.files("bob")), n)
            self.assertEqual(self.d.files("alice"), [])
            self.assertEqual(self.d.queue_domains(), [])
            self.wait_logged(r"%s to=<bob@example\.org> mailbox=bob "
                             r"status=delivered" % qid)
            self.assertNotRegex(self.d.log(), r"%s success report" % qid)


if __name__ == "__main__":
    unittest.main()
