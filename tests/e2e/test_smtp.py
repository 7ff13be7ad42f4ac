"""test_smtp - the daemon seen by well-behaved clients: Python smtplib
and plain command dialogs. Checks reply codes (with enhanced status codes)
and the exact bytes stored on disk."""

import email.utils
import os
import re
import signal
import smtplib
import socket
import time
import unittest

from harness import (DaemonTestCase, HELO, HOSTNAME, IO_TIMEOUT, SLOW,
                     have_ipv6_loopback, received_re, smtp_data, split_trace)

# A message with everything a careless implementation gets wrong: lines
# that start with one or two dots, a line that is only a dot, an empty
# line, trailing white space, a tab, and 8-bit text.
MESSAGE = (
    b"From: Sender <sender@x.example>\n"
    b"To: Alice <alice@example.org>\n"
    b"Subject: end-to-end test\n"
    b"Message-ID: <e2e-1@x.example>\n"
    b"\n"
    b"First line.\n"
    b".one leading dot\n"
    b"..two leading dots\n"
    b".\n"
    b"..\n"
    b"\n"
    b"trailing space   \n"
    b"\ttab first\n"
    b"8-bit: Gr\xc3\xbc\xc3\x9fe\n"
    b"last line\n"
)


def smtp(d, **kw):
    """smtplib client; local_hostname so that smtplib asks no DNS."""
    return smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO,
                        timeout=IO_TIMEOUT, **kw)


def smtplib_send(d, sender, rcpts, message, esmtp=True, mail_options=()):
    """MAIL/RCPT/DATA through smtplib; returns the queue ID of the 250.
    message has LF line ends; smtplib sends bytes as they are, so they
    become CRLF here (smtplib does the dot-stuffing)."""
    message = message.replace(b"\n", b"\r\n")
    with smtp(d) as s:
        code, _ = s.ehlo() if esmtp else s.helo()
        assert code == 250, code
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (r, code, resp)
        code, resp = s.data(message)
        assert code == 250, (code, resp)
        text = resp.decode("latin-1")
        assert text.startswith("2.0.0 "), text
        m = re.search(r"queued as ([A-Za-z0-9]+)", text)
        assert m, text
        s.quit()
        return m.group(1)


class Delivery(DaemonTestCase):

    def test_one_recipient_exact_bytes(self):
        msgid = smtplib_send(self.d, "sender@x.example",
                             ["alice@example.org"], MESSAGE,
                             mail_options=["BODY=8BITMIME"])
        self.assertRegex(msgid, r"^[A-Za-z0-9]+$")
        self.assertDelivered("alice", msgid, "sender@x.example",
                             "alice@example.org", MESSAGE)
        self.assertEqual(self.d.files("alice", "tmp"), [])
        self.assertEqual(self.d.files("bob"), [])

    def test_id_in_log(self):
        msgid = smtplib_send(self.d, "s@x.example", ["alice@example.org"],
                             b"Subject: log\n\nx\n")
        self.assertTrue(self.d.wait_for(lambda: msgid in self.d.log()),
                        "queue ID %s not logged:\n%s"
                        % (msgid, self.d.log_tail()))

    def test_received_date_is_now(self):
        msgid = smtplib_send(self.d, "s@x.example", ["bob@example.org"],
                             b"Subject: date\n\nx\n")
        data = self.d.read("bob", self.d.files("bob")[0])
        fields, _ = split_trace(data, 3)
        m = received_re(HELO, "127.0.0.1", msgid).match(fields[2])
        self.assertTrue(m, fields[2])
        when = email.utils.parsedate_to_datetime(m.group(1)).timestamp()
        self.assertLess(abs(when - time.time()), 300, m.group(1))

    def test_two_local_recipients_one_file_each(self):
        msgid = smtplib_send(self.d, "sender@x.example",
                             ["alice@example.org", "bob@example.org"],
                             MESSAGE)
        a = self.assertDelivered("alice", msgid, "sender@x.example",
                                 "alice@example.org", MESSAGE)
        b = self.assertDelivered("bob", msgid, "sender@x.example",
                                 "bob@example.org", MESSAGE)
        self.assertEqual(len(self.d.files("alice")), 1)
        self.assertEqual(len(self.d.files("bob")), 1)
        for u in ("alice", "bob"):
            self.assertEqual(self.d.files(u, "tmp"), [], u)
            self.assertEqual(self.d.files(u, "cur"), [], u)
        # The same message: only Delivered-To differs.
        da = self.d.read("alice", a).split(b"\n")
        db = self.d.read("bob", b).split(b"\n")
        self.assertEqual(da[:1] + da[2:], db[:1] + db[2:])

    def test_ids_are_unique(self):
        ids = [smtplib_send(self.d, "s@x.example", ["alice@example.org"],
                            b"Subject: %d\n\nbody\n" % i) for i in range(5)]
        self.assertEqual(len(set(ids)), 5, ids)
        self.assertEqual(len(self.d.files("alice")), 5)

    def test_helo_gives_with_smtp(self):
        msgid = smtplib_send(self.d, "s@x.example", ["bob@example.org"],
                             b"Subject: helo\n\nhi\n", esmtp=False)
        self.assertDelivered("bob", msgid, "s@x.example", "bob@example.org",
                             b"Subject: helo\n\nhi\n", proto="SMTP")

    def test_null_sender(self):
        c = self.client()
        c.hello()
        r = c.transaction("", ["alice@example.org"],
                          smtp_data(b"Subject: bounce\n\nbody\n"))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("alice", r.queued_id(), "", "alice@example.org",
                             b"Subject: bounce\n\nbody\n")

    def test_postmaster_forms(self):
        forms = [("postmaster", "postmaster"),
                 ("Postmaster", "postmaster"),
                 ("POSTMASTER", "postmaster"),
                 ("postmaster@example.org", "postmaster@example.org"),
                 ("PostMaster@EXAMPLE.org", "postmaster@example.org")]
        for rcpt, delivered in forms:
            with self.subTest(rcpt=rcpt):
                body = ("Subject: to %s\n\nx\n" % rcpt).encode()
                c = self.client()
                c.hello()
                r = c.transaction("s@x.example", [rcpt], smtp_data(body))
                c.close()
                self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
                msgid = r.queued_id()
                names = [n for n in self.d.files("alice")
                         if ".%s." % msgid in n]
                self.assertEqual(len(names), 1, self.d.files("alice"))
                data = self.d.read("alice", names[0])
                fields, rest = split_trace(data, 3)
                self.assertEqual(fields[0], "Return-Path: <s@x.example>")
                # The address as accepted; case is the client's.
                self.assertEqual(fields[1].lower(),
                                 "delivered-to: " + delivered)
                self.assertTrue(fields[1].startswith("Delivered-To: "))
                self.assertRegex(fields[2],
                                 received_re(HELO, "127.0.0.1", msgid))
                self.assertEqual(rest, body)
        self.assertEqual(self.d.files("bob"), [])

    def test_user_and_domain_ignore_case(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["BOB@Example.ORG"],
                          smtp_data(b"Subject: case\n\nx\n"))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(len(self.d.files("bob")), 1)
        data = self.d.read("bob", self.d.files("bob")[0])
        fields, rest = split_trace(data, 3)
        self.assertEqual(fields[1].lower(), "delivered-to: bob@example.org")

    def test_alice_and_postmaster_in_one_transaction(self):
        # Both name alice's mailbox: the message must still be accepted
        # and stored (never a 451 or a half-written mailbox).
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["alice@example.org", "postmaster"],
                          smtp_data(b"Subject: twice\n\nx\n"))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        names = self.d.files("alice")
        self.assertGreaterEqual(len(names), 1)
        for n in names:
            self.assertTrue(self.d.read("alice", n).endswith(
                b"Subject: twice\n\nx\n"))
        self.assertEqual(self.d.files("alice", "tmp"), [])

    def test_unknown_user_550(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<carol@example.org>", 550, "5.1.1")
        c.expect_ok("RCPT TO:<Carol@EXAMPLE.ORG>", 550, "5.1.1")
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: x\n\ny\n"))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", b"Subject: x\n\ny\n")
        self.assertEqual(self.d.files("alice"), [])
        # (.lock.HOST is the daemon's lock on the tree for its host.)
        self.assertEqual(sorted(n for n in os.listdir(self.d.root)
                                if not n.startswith(".lock.")),
                         sorted([".OTHER_SERVERS", "alice", "bob"]))

    def test_unknown_user_smtplib(self):
        with smtp(self.d) as s:
            s.ehlo()
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                s.sendmail("s@x.example", ["nobody@example.org"],
                           b"Subject: x\n\ny\n")
            code, resp = cm.exception.recipients["nobody@example.org"]
            self.assertEqual(code, 550)
            self.assertTrue(resp.startswith(b"5.1.1"), resp)
        self.assertEqual(self.d.files("alice") + self.d.files("bob"), [])

    def test_source_route_ignored(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<@a.example,@b.example:alice@example.org>",
                    250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: route\n\nx\n"))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org", b"Subject: route\n\nx\n")

    def test_message_without_final_newline_and_empty_message(self):
        # smtplib adds the CRLF a message lacks; the stored text ends in LF.
        msgid = smtplib_send(self.d, "s@x.example", ["alice@example.org"],
                             b"Subject: no final newline\n\nabc")
        self.assertDelivered("alice", msgid, "s@x.example",
                             "alice@example.org",
                             b"Subject: no final newline\n\nabc\n")
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["bob@example.org"], b".\r\n")
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", b"")


@unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
class IPv6(DaemonTestCase):
    daemon_opts = dict(ipv6=True, relay_networks=["127.0.0.1/32", "::1/128"])

    def test_both_listeners_serve(self):
        c4 = self.client()
        c6 = self.client(ipv6=True)
        for c in (c4, c6):
            self.assertTrue(c.greeting.last.startswith("220 " + HOSTNAME))
            c.hello()
        r4 = c4.transaction("s@x.example", ["alice@example.org"],
                            smtp_data(b"Subject: v4\n\nx\n"))
        r6 = c6.transaction("s@x.example", ["alice@example.org"],
                            smtp_data(b"Subject: v6\n\nx\n"))
        self.assertEqual(r4.code, 250, r4)
        self.assertEqual(r6.code, 250, r6)
        self.assertDelivered("alice", r4.queued_id(), "s@x.example",
                             "alice@example.org", b"Subject: v4\n\nx\n")
        self.assertDelivered("alice", r6.queued_id(), "s@x.example",
                             "alice@example.org", b"Subject: v6\n\nx\n",
                             addr="IPv6:::1")


class Relay(DaemonTestCase):
    daemon_opts = dict(relay_networks=["127.0.0.1/32"])

    def assertQueued(self, domain, msgid, sender_line, rcpts, message,
                     addr="127.0.0.1"):
        names = [n for n in self.d.queue_files(domain) if ".%s." % msgid in n]
        self.assertEqual(len(names), 1, (domain, self.d.queue_files(domain)))
        self.assertMaildirName(names[0], msgid)
        self.assertTrue(os.path.isdir(os.path.join(
            self.d.queue_dir(domain), "error")), "no %s/error/" % domain)
        data = self.d.read_queue(domain, names[0])
        n = 1 + len(rcpts)
        fields, rest = split_trace(data, n + 1)
        self.assertEqual(fields[0], "X-Envelope-From: " + sender_line)
        self.assertEqual(fields[1:n],
                         ["X-Envelope-To: <%s>" % r for r in rcpts])
        self.assertRegex(fields[n], received_re(HELO, addr, msgid))
        self.assertEqual(rest, message)

    def test_relay_allowed_from_127_0_0_1(self):
        c = self.client()
        c.hello()
        msg = b"Subject: relay\n\n.dot\nbody\n"
        r = c.transaction("s@x.example",
                          ["carol@remote.example", "dave@remote.example"],
                          smtp_data(msg))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        msgid = r.queued_id()
        self.assertEqual(self.d.queue_domains(), ["remote.example"])
        self.assertEqual(len(self.d.queue_files("remote.example")), 1)
        self.assertQueued("remote.example", msgid, "<s@x.example>",
                          ["carol@remote.example", "dave@remote.example"],
                          msg)
        tmp = os.path.join(self.d.queue_dir(), ".tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])
        self.assertEqual(self.d.files("alice") + self.d.files("bob"), [])

    def test_relay_domain_lower_cased(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["carol@Remote.EXAMPLE"],
                          smtp_data(b"Subject: case\n\nx\n"))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(self.d.queue_domains(), ["remote.example"])
        self.assertEqual(len(self.d.queue_files("remote.example")), 1)

    def test_relay_params_and_null_sender(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example> SIZE=100 BODY=8BITMIME",
                    250, "2.1.0")
        c.expect_ok("RCPT TO:<carol@remote.example>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: p\n\nx\n"))
        r = c.expect(250, "2.0.0")
        self.assertQueued("remote.example", r.queued_id(),
                          "<s@x.example> SIZE=100 BODY=8BITMIME",
                          ["carol@remote.example"], b"Subject: p\n\nx\n")
        r = c.transaction("", ["dave@remote.example"],
                          smtp_data(b"Subject: n\n\nx\n"))
        self.assertEqual(r.code, 250, r)
        self.assertQueued("remote.example", r.queued_id(), "<>",
                          ["dave@remote.example"], b"Subject: n\n\nx\n")

    def test_local_and_two_remote_domains(self):
        c = self.client()
        c.hello()
        msg = b"Subject: mixed\n\nx\n"
        r = c.transaction("s@x.example",
                          ["alice@example.org", "carol@remote.example",
                           "erin@other.example", "dave@remote.example"],
                          smtp_data(msg))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        msgid = r.queued_id()
        self.assertDelivered("alice", msgid, "s@x.example",
                             "alice@example.org", msg)
        self.assertEqual(self.d.queue_domains(),
                         ["other.example", "remote.example"])
        self.assertQueued("remote.example", msgid, "<s@x.example>",
                          ["carol@remote.example", "dave@remote.example"],
                          msg)
        self.assertQueued("other.example", msgid, "<s@x.example>",
                          ["erin@other.example"], msg)

    def test_envelope_lines_in_message_add_no_recipient(self):
        c = self.client()
        c.hello()
        msg = (b"X-Envelope-To: <mallory@evil.example>\n"
               b"X-Envelope-From: <boss@remote.example>\n"
               b"Subject: inject\n\nx\n")
        r = c.transaction("s@x.example", ["carol@remote.example"],
                          smtp_data(msg))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(self.d.queue_domains(), ["remote.example"])
        self.assertQueued("remote.example", r.queued_id(), "<s@x.example>",
                          ["carol@remote.example"], msg)

    def test_relay_denied_from_127_0_0_2(self):
        c = self.client(source="127.0.0.2")
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<carol@remote.example>", 554, "5.7.1")
        r = c.cmd("DATA")
        # RFC 5321 3.3: no valid recipient, DATA gets 503 or 554.
        self.assertIn(r.code, (503, 554), r)
        # Local mail from there is fine, and says where it came from.
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<dave@remote.example>", 554, "5.7.1")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: from .2\n\nx\n"))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", b"Subject: from .2\n\nx\n",
                             addr="127.0.0.2")
        self.assertEqual(self.d.queue_domains(), [])

    def test_relay_tricks_from_127_0_0_2(self):
        tricks = ["x%remote.example@example.org",
                  "remote.example!x@example.org",
                  '"x@remote.example"@example.org',
                  "@example.org:x@remote.example",
                  "x@remote.example.",
                  "x@[127.0.0.1]"]
        c = self.client(source="127.0.0.2")
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        for t in tricks:
            with self.subTest(rcpt=t):
                r = c.cmd("RCPT TO:<%s>" % t)
                self.assertGreaterEqual(r.code, 500, r)
        r = c.cmd("DATA")
        self.assertIn(r.code, (503, 554), r)
        c.expect_ok("QUIT", 221, "2.0.0")
        self.assertEqual(self.d.queue_domains(), [])
        self.assertEqual(self.d.files("alice") + self.d.files("bob"), [])

    def test_unsafe_remote_domains_501(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        for rcpt in ["x@..", "x@a..example", "x@-bad.example",
                     "x@.remote.example"]:
            with self.subTest(rcpt=rcpt):
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                self.assertEqual(r.code, 501, r)
                self.assertIn(r.enhanced, ("5.1.2", "5.1.3"), r)
        self.assertEqual(self.d.queue_domains(), [])


class Commands(DaemonTestCase):

    def test_greeting(self):
        c = self.client()
        self.assertRegex(c.greeting.last,
                         r"^220 %s ESMTP" % re.escape(HOSTNAME))

    def test_ehlo_keywords(self):
        c = self.client()
        r = c.hello()
        self.assertGreater(len(r.lines), 1, r)
        self.assertTrue(r.lines[0].decode().startswith("250-" + HOSTNAME),
                        r)
        kw = {}
        for line in r.lines[1:]:
            words = line[4:].decode().split()
            kw[words[0].upper()] = words[1:]
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "HELP"):
            self.assertIn(k, kw, r)
        self.assertEqual(kw.get("SIZE"), ["10485760"], r)

    def test_helo(self):
        c = self.client()
        r = c.expect_ok("HELO " + HELO, 250)
        self.assertEqual(len(r.lines), 1, r)
        self.assertTrue(r.last.startswith("250 " + HOSTNAME), r)
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")

    def test_noop_in_every_state(self):
        c = self.client()
        c.expect_ok("NOOP", 250, "2.0.0")
        c.hello()
        c.expect_ok("NOOP", 250, "2.0.0")
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("NOOP", 250, "2.0.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("NOOP", 250, "2.0.0")
        # NOOP changed nothing: the transaction goes through.
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: noop\n\nx\n"))
        c.expect(250, "2.0.0")
        self.assertEqual(len(self.d.files("alice")), 1)

    def test_rset(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("RSET", 250, "2.0.0")
        c.expect_ok("DATA", 503, "5.5.1")
        c.expect_ok("RCPT TO:<alice@example.org>", 503, "5.5.1")
        # The greeting survives RSET.
        c.expect_ok("MAIL FROM:<t@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: after rset\n\nx\n"))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("bob", r.queued_id(), "t@x.example",
                             "bob@example.org", b"Subject: after rset\n\nx\n")
        self.assertEqual(self.d.files("alice"), [])
        c.expect_ok("RSET", 250, "2.0.0")

    def test_rset_before_greeting(self):
        c = self.client()
        c.expect_ok("RSET", 250, "2.0.0")
        c.expect_ok("MAIL FROM:<s@x.example>", 503, "5.5.1")

    def test_help(self):
        c = self.client()
        r = c.cmd("HELP")
        self.assertEqual((r.code, r.enhanced), (214, "2.0.0"), r)
        c.hello()
        r = c.cmd("HELP MAIL")
        self.assertEqual(r.code, 214, r)

    def test_vrfy_reveals_nothing(self):
        c = self.client()
        c.hello()
        a = c.expect_ok("VRFY alice", 252, "2.5.2")
        n = c.expect_ok("VRFY nobody", 252, "2.5.2")
        self.assertEqual(a.text.replace("alice", "X"),
                         n.text.replace("nobody", "X"))

    def test_expn_and_friends_502(self):
        c = self.client()
        c.hello()
        for cmd in ("EXPN staff", "TURN", "ETRN example.org"):
            with self.subTest(cmd=cmd):
                c.expect_ok(cmd, 502, "5.5.1")

    def test_unknown_command_500(self):
        c = self.client()
        c.expect_ok("XYZZY", 500, "5.5.1")
        c.hello()
        c.expect_ok("MAILFROM:<s@x.example>", 500, "5.5.1")

    def test_commands_ignore_case(self):
        c = self.client()
        c.expect_ok("ehlo " + HELO, 250)
        c.expect_ok("mail from:<s@x.example>", 250, "2.1.0")
        c.expect_ok("rcpt to:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("data", 354)
        c.send(smtp_data(b"Subject: lower\n\nx\n"))
        c.expect(250, "2.0.0")
        c.expect_ok("quit", 221, "2.0.0")

    def test_quit(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("QUIT", 221, "2.0.0")
        self.assertTrue(c.closed(), "connection still open after QUIT")
        self.assertEqual(c.buf, b"")
        self.assertEqual(self.d.files("alice"), [])

    def test_quit_before_greeting(self):
        c = self.client()
        c.expect_ok("QUIT", 221, "2.0.0")
        self.assertTrue(c.closed())

    def test_syntax_errors(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<not an address>", 501, "5.1.7")
        c.expect_ok("MAIL FROM:<a@@x.example>", 501, "5.1.7")
        c.expect_ok("MAIL FROM:<s@x.example> FOO=BAR", 555, "5.5.4")
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<bad@@example.org>", 501, "5.1.3")
        c.expect_ok("RCPT TO:<%s@example.org>" % ("a" * 65), 501, "5.1.3")
        c.expect_ok("RCPT TO:<alice@example.org> FOO=BAR", 555, "5.5.4")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")

    def test_sender_too_long_501(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<%s@x.example>" % ("a" * 65), 501, "5.1.7")
        c.expect_ok("MAIL FROM:<a@%s.example>" % ".".join(["b" * 60] * 5),
                    501, "5.1.7")


# Out-of-sequence commands: (setup commands, command, expected); each on a
# fresh connection; after the 503 the state must be unchanged (checked by
# going on with the commands in "then").
OUT_OF_SEQUENCE = [
    ("MAIL before EHLO", [], "MAIL FROM:<s@x.example>"),
    ("RCPT before EHLO", [], "RCPT TO:<alice@example.org>"),
    ("DATA before EHLO", [], "DATA"),
    ("RCPT before MAIL", ["EHLO " + HELO], "RCPT TO:<alice@example.org>"),
    ("DATA before MAIL", ["EHLO " + HELO], "DATA"),
    ("DATA before RCPT", ["EHLO " + HELO, "MAIL FROM:<s@x.example>"],
     "DATA"),
    ("nested MAIL", ["EHLO " + HELO, "MAIL FROM:<s@x.example>"],
     "MAIL FROM:<other@x.example>"),
    ("MAIL after RCPT", ["EHLO " + HELO, "MAIL FROM:<s@x.example>",
                         "RCPT TO:<alice@example.org>"],
     "MAIL FROM:<other@x.example>"),
]


class OutOfSequence(DaemonTestCase):

    def test_each_case_503(self):
        for name, setup, cmd in OUT_OF_SEQUENCE:
            with self.subTest(case=name):
                c = self.client()
                for s in setup:
                    r = c.cmd(s)
                    self.assertLess(r.code, 400, (s, r))
                c.expect_ok(cmd, 503, "5.5.1")
                # Nothing changed: the transaction goes on from where it
                # was, and the message keeps the first sender.
                if not setup:
                    c.hello()
                if len(setup) < 2:
                    c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
                if len(setup) < 3:
                    c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
                c.expect_ok("DATA", 354)
                body = ("Subject: %s\n\nx\n" % name).encode()
                c.send(smtp_data(body))
                r = c.expect(250, "2.0.0")
                self.assertDelivered("alice", r.queued_id(), "s@x.example",
                                     "alice@example.org", body)
                c.close()

    def test_ehlo_aborts_transaction(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.hello()
        c.expect_ok("DATA", 503, "5.5.1")
        c.expect_ok("RCPT TO:<alice@example.org>", 503, "5.5.1")
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")

    def test_commands_during_data_are_text(self):
        # Inside DATA, command words are message text.
        c = self.client()
        c.hello()
        body = b"QUIT\nRSET\nMAIL FROM:<x@y>\n"
        r = c.transaction("s@x.example", ["alice@example.org"],
                          smtp_data(body))
        self.assertEqual(r.code, 250, r)
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org", body)
        c.expect_ok("NOOP", 250, "2.0.0")


class SizeLimit(DaemonTestCase):
    daemon_opts = dict(max_message_size=10000)

    def test_size_advertised(self):
        c = self.client()
        r = c.hello()
        self.assertIn("250-SIZE 10000", r.text.replace("250 SIZE",
                                                       "250-SIZE"))

    def test_size_parameter_too_big_552(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example> SIZE=10001", 552, "5.3.4")
        c.expect_ok("MAIL FROM:<s@x.example> SIZE=99999999999999999999",
                    552, "5.3.4")
        # The refused MAIL started no transaction.
        c.expect_ok("RCPT TO:<alice@example.org>", 503, "5.5.1")
        c.expect_ok("MAIL FROM:<s@x.example> SIZE=5000", 250, "2.1.0")

    def test_message_too_big_552_nothing_stored(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        # 30 kB of text, with command lines in it: they must be read as
        # text up to the final dot, never run.
        lines = [b"MAIL FROM:<evil@x.example>", b"RCPT TO:<bob@example.org>",
                 b"DATA"] + [b"x" * 98] * 300
        c.send_background(smtp_data(b"\n".join(lines) + b"\n"))
        c.expect(552, "5.3.4")
        self.assertTrue(c.nothing_more(), c.buf)
        c.expect_ok("NOOP", 250, "2.0.0")
        self.assertEqual(self.d.files("alice") + self.d.files("bob"), [])
        self.assertEqual(self.d.files("alice", "tmp") +
                         self.d.files("bob", "tmp"), [])
        # The session goes on; a message that fits is taken.
        r = c.transaction("s@x.example", ["alice@example.org"],
                          smtp_data(b"Subject: small\n\n" + b"y" * 5000
                                    + b"\n"))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org",
                             b"Subject: small\n\n" + b"y" * 5000 + b"\n")

    def test_smtplib_too_big(self):
        with smtp(self.d) as s:
            s.ehlo()
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                # smtplib sends SIZE= itself, as the server advertises it.
                s.sendmail("s@x.example", ["alice@example.org"],
                           b"Subject: big\n\n" + b"z" * 20000 + b"\n")
            self.assertEqual(cm.exception.smtp_code, 552)
        self.assertEqual(self.d.files("alice"), [])


class MaxRecipients(DaemonTestCase):
    daemon_opts = dict(max_recipients=2, users=["alice", "bob", "carol"])

    def test_452_beyond_limit(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        # (A repeated mailbox, e.g. <postmaster> = alice, may be taken
        # again: it adds no recipient. New ones may not.)
        c.expect_ok("RCPT TO:<carol@example.org>", 452, "4.5.3")
        c.expect_ok("RCPT TO:<x@remote.example>", 452, "4.5.3")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: limit\n\nx\n"))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org", b"Subject: limit\n\nx\n")
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", b"Subject: limit\n\nx\n")
        self.assertEqual(len(self.d.files("alice")), 1)
        self.assertEqual(self.d.files("carol"), [])
        self.assertEqual(self.d.queue_domains(), [])
        # The limit is per transaction.
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")


class Timeouts(DaemonTestCase):
    daemon_opts = dict(command_timeout=2, data_timeout=3)

    def assertTimedOut(self, c, started, low, high):
        r = c.reply(timeout=high * SLOW + 5)
        elapsed = time.monotonic() - started
        self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
        self.assertTrue(c.closed(timeout=5 * SLOW),
                        "not closed after 421")
        self.assertGreaterEqual(elapsed, low)
        self.assertLessEqual(elapsed, high * SLOW + 1)

    def test_silent_client_after_greeting(self):
        c = self.client()
        self.assertTimedOut(c, time.monotonic(), 1.5, 5)

    def test_silent_client_after_ehlo(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        started = time.monotonic()
        self.assertTimedOut(c, started, 1.5, 5)
        self.assertEqual(self.d.files("alice"), [])

    def test_activity_restarts_command_timer(self):
        c = self.client()
        c.hello()
        # Idle for 1 s at a time (half the timeout): nothing may come
        # meanwhile, and each NOOP starts the timer again.
        for _ in range(4):
            self.assertTrue(c.nothing_more(1.0 / min(SLOW, 3)))
            c.expect_ok("NOOP", 250, "2.0.0")
        c.expect_ok("QUIT", 221, "2.0.0")

    def test_data_timeout_whole_phase(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        started = time.monotonic()
        # A line every 0.5 s keeps the connection busy but the whole DATA
        # phase may last data_timeout (3 s) only.
        r = None
        for i in range(20):
            try:
                c.send(b"line %d\r\n" % i)
            except OSError:
                break
            if not c.nothing_more(0.5):
                break
        self.assertTimedOut(c, started, 2.5, 6)
        self.assertEqual(self.d.files("alice"), [])
        self.assertEqual(self.d.files("alice", "tmp"), [])


class Shutdown(DaemonTestCase):

    def test_sigterm_answers_open_sessions_421(self):
        c1 = self.client()
        c1.hello()
        c2 = self.client()
        c2.hello()
        c2.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c2.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c2.expect_ok("DATA", 354)
        c2.send(b"Subject: half\r\n\r\nhalf a message\r\n")
        # c2 is in DATA (354 came): whether or not the daemon has read
        # the half message yet, it must not store it.
        self.d.stop(remove=False)      # SIGTERM; asserts exit status 0
        for c in (c1, c2):
            r = c.reply(timeout=5)
            self.assertEqual((r.code, r.enhanced), (421, "4.3.2"), r)
            self.assertTrue(c.closed(timeout=5))
        self.assertEqual(self.d.files("alice"), [])
        self.assertEqual(self.d.files("alice", "tmp"), [])
        # Stopped: nobody listens any more.
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.d.port), timeout=2)


if __name__ == "__main__":
    unittest.main()
