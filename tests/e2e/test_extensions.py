"""test_extensions - addresses people use and the extensions big senders
use, end to end (issue 15).

Addressing: a +extension reaches the user and Delivered-To keeps it; an
alias answers one 250 and gives each final mailbox one copy and its
remote targets a queue file, whoever the client is; the catch-all takes
unknown local parts; a relay-only host (local.users = [ ]) starts and
relays, and refuses <postmaster> unless an alias names it.

SMTPUTF8: Python's smtplib with mail_options=["SMTPUTF8"] sends UTF-8
addresses and headers; a UTF-8 recipient domain is queued under its
A-label directory, the queue file keeps the UTF-8 addresses, and
maildir-inspect shows both forms of the domain.

CHUNKING: a message sent in BDAT chunks (smtplib has no BDAT: raw
sockets; a CRLF split across chunks, all of it pipelined) is on disk the
same bytes as the same message sent with DATA; a BINARYMIME body is
stored as it came.

DSN: RET, ENVID, NOTIFY and ORCPT are kept in the queue file (MAIL's
after the sender, RCPT's after each recipient) and maildir-inspect show
--json gives them, decoded; LIMITS is in the EHLO reply.
"""

import json
import os
import smtplib
import subprocess
import unittest

from harness import (Daemon, DaemonTestCase, smtp_data, split_trace,
                     received_re, daemon_path, conf_list, HELO)


class ExtDaemon(Daemon):
    """A daemon whose local group gets extra lines (aliases, catchall,
    recipient_delimiter), which the shared harness does not write."""

    extra_local = ""

    def config_text(self):
        text = super().config_text()
        marker = "  postmaster = "
        at = text.index(marker)
        end = text.index("\n", at) + 1
        return text[:end] + self.extra_local + text[end:]


class ExtTestCase(DaemonTestCase):
    extra_local = ""

    def setUp(self):
        d = ExtDaemon(**self.daemon_opts)
        d.extra_local = self.extra_local
        self.d = d.start()
        self.addCleanup(self._stop_daemon)

    def one_file(self, user):
        names = self.d.files(user)
        self.assertEqual(len(names), 1, (user, names))
        return self.d.read(user, names[0])

    def queue_file(self, domain):
        names = self.d.queue_files(domain)
        self.assertEqual(len(names), 1, (domain, names))
        return self.d.read_queue(domain, names[0])


MSG = b"Subject: hello\n\nbody\n"


class Addressing(ExtTestCase):
    daemon_opts = dict(domains=["example.org", "example.net"],
                       users=["alice", "bob", "carol"],
                       relay_networks=[])
    extra_local = """\
  aliases = {
    info = [ "alice", "bob" ];
    team = [ "info", "carol@example.net", "partner@remote.example" ];
  };
"""

    def test_tag_reaches_the_user_and_delivered_to_keeps_it(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["alice+lists@example.org"],
                          smtp_data(MSG))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice+lists@example.org", MSG)
        c.expect_ok("MAIL FROM:<s@x.example>", 250)
        c.expect_ok("RCPT TO:<nobody+lists@example.org>", 550, "5.1.1")

    def test_alias_local_and_remote_targets(self):
        # The client may not relay: the remote target is queued anyway.
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<partner@remote.example>", 554, "5.7.1")
        c.expect_ok("RCPT TO:<team@example.org>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(MSG))
        r = c.expect(250, "2.0.0")
        msgid = r.queued_id()
        # alice: one copy, by her own address (given first by the alias,
        # so its Delivered-To pair names the alias).
        data = self.one_file("alice")
        fields, rest = split_trace(data, 4)
        self.assertEqual(fields[:3], [
            "Return-Path: <s@x.example>",
            "Delivered-To: alice@example.org",
            "Delivered-To: team@example.org"])
        self.assertRegex(fields[3], received_re(HELO, "127.0.0.1", msgid))
        self.assertEqual(rest, MSG)
        # Local domains share their users: a copy is addressed in the
        # domain the alias was written to, whatever domain a target named.
        for user, dom in (("bob", "example.org"), ("carol", "example.org")):
            fields, rest = split_trace(self.one_file(user), 4)
            self.assertEqual(fields[1], "Delivered-To: %s@%s" % (user, dom))
            self.assertEqual(fields[2], "Delivered-To: team@example.org")
            self.assertEqual(rest, MSG)
        q = self.queue_file("remote.example")
        head = q.split(b"\nReceived: ", 1)[0].decode()
        self.assertEqual(head.splitlines()[0], "X-Envelope-From: <s@x.example>")
        self.assertEqual(head.splitlines()[1].split(" ")[:2],
                         ["X-Envelope-To:", "<partner@remote.example>"])
        self.assertTrue(q.endswith(MSG))
        self.assertEqual(self.d.queue_domains(), ["remote.example"])


class CatchAll(ExtTestCase):
    daemon_opts = dict(users=["alice", "bob"])
    extra_local = '  catchall = "bob";\n  recipient_delimiter = "";\n'

    def test_unknown_local_parts_go_to_the_catchall(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["whoever@example.org"],
                          smtp_data(MSG))
        self.assertEqual(r.code, 250, r)
        fields, rest = split_trace(self.one_file("bob"), 4)
        self.assertEqual(fields[1:3], ["Delivered-To: bob@example.org",
                                       "Delivered-To: whoever@example.org"])
        self.assertEqual(rest, MSG)
        # With no delimiter alice+x is no alice: the catch-all takes it.
        r = c.transaction("s@x.example", ["alice+x@example.org"],
                          smtp_data(MSG))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(self.d.files("alice"), [])
        self.assertEqual(len(self.d.files("bob")), 2)


class RelayOnly(ExtTestCase):
    daemon_opts = dict(users=[], postmaster="", domains=["example.org"],
                       relay_networks=["127.0.0.1/32"])

    def test_relays_and_refuses_postmaster(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250)
        c.expect_ok("RCPT TO:<postmaster>", 550, "5.1.1")
        c.expect_ok("RCPT TO:<postmaster@example.org>", 550, "5.1.1")
        c.expect_ok("RCPT TO:<alice@example.org>", 550, "5.1.1")
        c.expect_ok("RCPT TO:<dave@remote.example>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(MSG))
        c.expect(250, "2.0.0")
        self.assertTrue(self.queue_file("remote.example").endswith(MSG))
        # (and the daemon's lock for its host, no mailbox)
        self.assertEqual(sorted(n for n in os.listdir(self.d.root)
                                if not n.startswith(".lock.")),
                         [".OTHER_SERVERS"])


class RelayOnlyPostmasterAlias(ExtTestCase):
    daemon_opts = dict(users=[], postmaster="", domains=["example.org"],
                       relay_networks=[])
    extra_local = ('  aliases = { postmaster = [ "hostmaster@isp.example" ];'
                   ' };\n')

    def test_postmaster_alias(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["postmaster"], smtp_data(MSG))
        self.assertEqual(r.code, 250, r)
        q = self.queue_file("isp.example")
        self.assertIn(b"\nX-Envelope-To: <hostmaster@isp.example>", q)


def inspect(d, *args):
    """Run maildir-inspect on the daemon's tree; (status, stdout)."""
    exe = os.environ.get("MAILDIR_INSPECT") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src",
        "maildir-inspect", "maildir-inspect")
    p = subprocess.run([exe, "-d", d.root] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stdout


UTF8_RCPT = "\u7528\u6237@\u4f8b\u5b50.\u6d4b\u8bd5"      # 用户@例子.测试
UTF8_ACE = "xn--fsqu00a.xn--0zwm56d"


class SmtpUtf8(ExtTestCase):
    daemon_opts = dict(relay_networks=["127.0.0.1/32"])

    def test_smtplib_utf8_domain_queued_under_its_a_label(self):
        sender = "j\u00fcrgen@b\u00fccher.example"
        msg = ("From: J\u00fcrgen <%s>\r\nTo: <%s>\r\n"
               "Subject: Gr\u00fc\u00dfe\r\n\r\nHallo!\r\n"
               % (sender, UTF8_RCPT)).encode("utf-8")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as s:
            s.ehlo("client.test.example")
            self.assertTrue(s.has_extn("smtputf8"))
            refused = s.sendmail(sender, [UTF8_RCPT, "alice@example.org"],
                                 msg, mail_options=["SMTPUTF8"])
            self.assertEqual(refused, {})
        self.assertEqual(self.d.queue_domains(), [UTF8_ACE])
        q = self.queue_file(UTF8_ACE)
        lines = q.split(b"\n")
        self.assertEqual(lines[0].decode("utf-8"),
                         "X-Envelope-From: <%s> size=%d SMTPUTF8"
                         % (sender, len(msg)))
        self.assertEqual(lines[1].decode("utf-8"),
                         "X-Envelope-To: <%s>" % UTF8_RCPT)
        self.assertRegex(lines[2].decode(), r"^Received: .* with UTF8SMTP id ")
        self.assertTrue(q.endswith(msg.replace(b"\r\n", b"\n")))
        # The local copy keeps the UTF-8 sender in Return-Path.
        data = self.one_file("alice")
        self.assertTrue(data.startswith(
            ("Return-Path: <%s>\nDelivered-To: alice@example.org\n"
             % sender).encode("utf-8")), data[:200])
        self.assertTrue(data.endswith(msg.replace(b"\r\n", b"\n")))

        st, out = inspect(self.d, "--json", "list")
        self.assertEqual(st, 0, out)
        doc = json.loads(out)
        letter = doc["letters"][0]
        self.assertEqual(letter["domain"], UTF8_ACE)
        self.assertEqual(letter["domain_unicode"], UTF8_RCPT.split("@")[1])
        self.assertEqual(letter["recipients"], [UTF8_RCPT])
        self.assertEqual(letter["sender"], sender)
        # The UTF-8 recipient belongs in its A-label directory.
        st, out = inspect(self.d, "check")
        self.assertEqual(st, 0, out)
        st, out = inspect(self.d, "show", letter["id"])
        self.assertEqual(st, 0, out)
        self.assertIn(("domain: %s (%s)\n" % (UTF8_ACE,
                       UTF8_RCPT.split("@")[1])).encode("utf-8"), out)

    def test_without_smtputf8_an_8bit_address_is_553(self):
        c = self.client()
        c.hello()
        c.send("MAIL FROM:<s@x.example>\r\n")
        c.expect(250)
        c.send(("RCPT TO:<%s>\r\n" % UTF8_RCPT).encode("utf-8"))
        c.expect(553, "5.6.7")
        c.send(b"RSET\r\n")
        c.expect(250)
        c.send(b"MAIL FROM:<j\xfcrgen@x.example> SMTPUTF8\r\n")
        c.expect(501, "5.5.2")
        self.assertEqual(self.d.queue_domains(), [])


class Chunking(ExtTestCase):
    MSG = (b"From: a@x.example\r\nSubject: chunks\r\n\r\n"
           b".a line with a leading dot\r\n..two\r\n.\r\n"
           + b"x" * 3000 + b"\r\n\xe4 8-bit\r\nend\r\n")

    def body_after_trace(self, data):
        fields, rest = split_trace(data, 3)
        return fields, rest

    def test_bdat_message_is_byte_identical_to_data(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["alice@example.org"],
                          smtp_data(self.MSG.replace(b"\r\n", b"\n")))
        self.assertEqual(r.code, 250, r)
        data_id = r.queued_id()
        # Three chunks, the second ending inside a CRLF, all pipelined.
        m = self.MSG
        cut1 = m.index(b"..two") + 3
        cut2 = m.index(b"\r\nend") + 1
        c.send(b"MAIL FROM:<s@x.example> BODY=8BITMIME\r\n"
               b"RCPT TO:<alice@example.org>\r\n"
               + b"BDAT %d\r\n" % cut1 + m[:cut1]
               + b"BDAT %d\r\n" % (cut2 - cut1) + m[cut1:cut2]
               + b"BDAT %d LAST\r\n" % (len(m) - cut2) + m[cut2:])
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        self.assertEqual(c.expect(250, "2.0.0").last,
                         "250 2.0.0 Ok: %d octets received" % cut1)
        self.assertEqual(c.expect(250, "2.0.0").last,
                         "250 2.0.0 Ok: %d octets received" % cut2)
        bdat_id = c.expect(250, "2.0.0").queued_id()
        self.assertIsNotNone(bdat_id)
        stored = {}
        for name in self.d.files("alice"):
            fields, rest = split_trace(self.d.read("alice", name), 3)
            stored[name.split(".")[1]] = (fields, rest)
        self.assertEqual(sorted(stored), sorted([data_id, bdat_id]))
        self.assertEqual(stored[data_id][1], stored[bdat_id][1])
        self.assertEqual(stored[bdat_id][1], m.replace(b"\r\n", b"\n"))
        self.assertEqual(stored[data_id][0][:2], stored[bdat_id][0][:2])

    def test_binarymime_stored_as_received(self):
        body = (b"MIME-Version: 1.0\r\nContent-Type: application/octet-"
                b"stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                + bytes(range(256)) + b"\rno LF\nno CR\r\n")
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example> BODY=BINARYMIME", 250, "2.1.0")
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 503, "5.5.1")
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        c.expect(250, "2.0.0")
        fields, rest = split_trace(self.one_file("bob"), 3)
        self.assertEqual(rest, body)

    def test_bdat_after_failed_bdat_and_short_last(self):
        c = self.client()
        c.hello()
        # "BDAT 10 LAST" with 9 octets, then a command: the tenth octet
        # is the command's first byte; the rest is no command.
        c.send(b"MAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.org>\r\n"
               b"BDAT 10 LAST\r\n123456789NOOP\r\n")
        c.expect(250)
        c.expect(250)
        c.expect(250, "2.0.0")
        c.expect(500, "5.5.1")
        fields, rest = split_trace(self.one_file("alice"), 3)
        self.assertEqual(rest, b"123456789N")
        # A failed chunk ends the transaction: the next is read, refused.
        c.send(b"MAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.org>\r\n"
               b"BDAT 3\r\na\nbBDAT 4 LAST\r\nQUIT")
        c.expect(250)
        c.expect(250)
        c.expect(550, "5.5.2")
        c.expect(503, "5.5.1")
        c.expect_ok("NOOP", 250)
        self.assertEqual(len(self.d.files("alice")), 1)


class Dsn(ExtTestCase):
    daemon_opts = dict(relay_networks=["127.0.0.1/32"], max_recipients=7)
    extra_local = '  aliases = { fwd = [ "far@remote.example" ]; };\n'

    def test_dsn_parameters_in_queue_file_and_inspect(self):
        c = self.client()
        r = c.hello()
        self.assertIn("250-DSN", r.text)
        self.assertIn("250-LIMITS RCPTMAX=7", r.text)
        c.expect_ok("MAIL FROM:<s@x.example> RET=HDRS ENVID=QQ+2B314159",
                    250, "2.1.0")
        c.expect_ok("RCPT TO:<r@remote.example> NOTIFY=SUCCESS,FAILURE "
                    "ORCPT=rfc822;Orig+2Bx@remote.example", 250, "2.1.5")
        c.expect_ok("RCPT TO:<n@remote.example> NOTIFY=NEVER", 250, "2.1.5")
        c.expect_ok("RCPT TO:<p@remote.example>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<fwd@example.org> NOTIFY=delay", 250, "2.1.5")
        c.expect_ok("RCPT TO:<q@remote.example> NOTIFY=NEVER,SUCCESS",
                    501, "5.5.4")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(MSG))
        msgid = c.expect(250, "2.0.0").queued_id()
        head = self.queue_file("remote.example").split(b"\nReceived: ")[0]
        self.assertEqual(head.decode().splitlines(), [
            "X-Envelope-From: <s@x.example> RET=HDRS ENVID=QQ+2B314159",
            "X-Envelope-To: <r@remote.example> NOTIFY=SUCCESS,FAILURE "
            "ORCPT=rfc822;Orig+2Bx@remote.example",
            "X-Envelope-To: <n@remote.example> NOTIFY=NEVER",
            "X-Envelope-To: <p@remote.example>",
            "X-Envelope-To: <far@remote.example> NOTIFY=DELAY "
            "ORCPT=rfc822;fwd@example.org"])

        st, out = inspect(self.d, "--json", "show", msgid)
        self.assertEqual(st, 0, out)
        doc = json.loads(out)
        letter = doc["letters"][0] if "letters" in doc else doc
        self.assertEqual(letter["recipients"], [
            "r@remote.example", "n@remote.example", "p@remote.example",
            "far@remote.example"])
        self.assertEqual(letter["recipient_params"], [
            "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+2Bx@remote.example",
            "NOTIFY=NEVER", "", "NOTIFY=DELAY ORCPT=rfc822;fwd@example.org"])
        self.assertEqual(letter["dsn"], {
            "ret": "HDRS", "envid": "QQ+314159",
            "notify": ["SUCCESS,FAILURE", "NEVER", None, "DELAY"],
            "orcpt": ["rfc822;Orig+x@remote.example", None, None,
                      "rfc822;fwd@example.org"]})
        st, out = inspect(self.d, "show", msgid)
        self.assertIn(b"recipient: <n@remote.example> NOTIFY=NEVER\n", out)
        st, out = inspect(self.d, "check")
        self.assertEqual(st, 0, out)


class CheckConfig(unittest.TestCase):
    """pollsmtpd -t: alias loops and unknown targets are FILE:LINE errors
    (exit 78); a relay-only configuration is good."""

    def check(self, extra_local, users='[ "alice" ]', postmaster='"alice"'):
        d = ExtDaemon(users=[], postmaster="")
        d.extra_local = extra_local
        d.dir = self.tmp
        d.port = 2525
        text = d.config_text()
        for old, new in (("  users = %s;" % conf_list([]),
                          "  users = %s;" % users),
                         ('  postmaster = "";',
                          "  postmaster = %s;" % postmaster)):
            self.assertIn(old, text)
            text = text.replace(old, new)
        path = os.path.join(self.tmp, "t.conf")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([daemon_path(), "-t", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        return p.returncode, p.stderr.decode(), path, text

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="test_extensions.")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.tmp))

    def test_alias_loop_and_unknown_target(self):
        st, err, path, text = self.check(
            '  aliases = {\n    a = [ "b" ];\n    b = [ "a", "alice" ];\n'
            '    c = [ "carol" ];\n  };\n')
        self.assertEqual(st, 78, err)
        lines = text.splitlines()
        la = lines.index('    a = [ "b" ];') + 1
        lc = lines.index('    c = [ "carol" ];') + 1
        self.assertIn("%s:%d: local.aliases.a: alias loop: a -> b -> a"
                      % (path, la), err)
        self.assertIn('%s:%d: local.aliases.c: "carol" is not a user, an '
                      'alias or a remote address' % (path, lc), err)

    def test_relay_only_is_good(self):
        st, err, path, text = self.check("", users="[ ]", postmaster='""')
        self.assertEqual(st, 0, err)


if __name__ == "__main__":
    unittest.main()
