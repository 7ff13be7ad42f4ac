"""test_relay - relay control and the remote queue, end to end.

What test_smtp.Relay leaves out: a message for local users and several
remote domains is stored everywhere or nowhere; relay.networks is matched
as CIDR (a /8 admits 127.0.0.2, an empty list admits nobody); the queue
tmp directory stays empty; a numeric "domain" (an IPv4 address without
its brackets) or an address literal is never relayed and never becomes a
queue directory.
"""

import os
import unittest

from harness import DaemonTestCase, smtp_data


RCPTS = ["alice@example.org", "bob@example.org", "carol@one.example",
         "dave@two.example", "erin@three.example"]


class AllOrNothing(DaemonTestCase):
    daemon_opts = dict(relay_networks=["127.0.0.1/32"])

    def everything(self):
        return [p for p in self.d.all_files()]

    def test_five_places_or_none(self):
        # The third remote domain's directory cannot be made: a file
        # stands where it would go.
        qdir = self.d.queue_dir()
        os.makedirs(qdir, exist_ok=True)
        blocker = os.path.join(qdir, "three.example")
        with open(blocker, "w") as f:
            f.write("not a directory\n")
        before = self.everything()

        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        for r in RCPTS:
            c.expect_ok("RCPT TO:<%s>" % r, 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(b"Subject: all or nothing\n\nx\n"))
        c.expect(451, "4.3.0")
        self.assertEqual(self.everything(), before,
                         "a failed message left files behind")

        # With the way clear, the same transaction lands in all five.
        os.unlink(blocker)
        msg = b"Subject: all or nothing\n\nx\n"
        r = c.transaction("s@x.example", RCPTS, smtp_data(msg))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        msgid = r.queued_id()
        for user, rcpt in (("alice", RCPTS[0]), ("bob", RCPTS[1])):
            self.assertDelivered(user, msgid, "s@x.example", rcpt, msg)
        self.assertEqual(self.d.queue_domains(),
                         ["one.example", "three.example", "two.example"])
        for dom in ("one.example", "two.example", "three.example"):
            names = self.d.queue_files(dom)
            self.assertEqual(len(names), 1, (dom, names))
            self.assertIn(".%s." % msgid, names[0])
            self.assertTrue(os.path.isdir(os.path.join(
                self.d.queue_dir(dom), "error")))
        self.assertEqual(os.listdir(os.path.join(qdir, ".tmp")), [])


class NumericDomains(DaemonTestCase):
    """RFC 1123 2.1: no top-level domain is all-numeric, so a domain whose
    last label is a number (decimal, octal or 0x hex, as inet_aton reads
    it) is an address in disguise: 501 5.1.2 even from a relay client,
    and no directory of that name. A valid address literal is refused as
    policy (550 5.7.1), not as syntax."""
    daemon_opts = dict(relay_networks=["127.0.0.1/32"])

    def test_numeric_domains_refused(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        for rcpt in ["x@127.0.0.1", "x@2130706433", "x@0x7f000001",
                     "x@0X7F000001", "x@0177.0.0.1", "x@remote.example.0x1f",
                     "x@10.1"]:
            with self.subTest(rcpt=rcpt):
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                self.assertEqual((r.code, r.enhanced), (501, "5.1.2"), r)
                self.assertIn("numeric domain", r.text)
        for rcpt in ["alice@[127.0.0.1]", "x@[192.0.2.1]", "x@[IPv6:::1]"]:
            with self.subTest(rcpt=rcpt):
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
                self.assertIn("address literal", r.text)
        # Nothing was taken: DATA has no recipient.
        c.expect_ok("DATA", 503, "5.5.1")
        c.expect_ok("RSET", 250, "2.0.0")
        # A name that only starts with a number is a domain.
        r = c.transaction("s@x.example", ["x@0x7f.example"],
                          smtp_data(b"Subject: numeric\n\nx\n"))
        self.assertEqual(r.code, 250, r)
        c.expect_ok("QUIT", 221, "2.0.0")
        self.assertEqual(self.d.queue_domains(), ["0x7f.example"])
        for name in ("127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1",
                     "[127.0.0.1]", "10.1"):
            self.assertFalse(os.path.lexists(self.d.queue_dir(name)), name)


class WideNetwork(DaemonTestCase):
    daemon_opts = dict(relay_networks=["127.0.0.0/8"])

    def test_slash_8_admits_127_0_0_2(self):
        c = self.client(source="127.0.0.2")
        c.hello()
        r = c.transaction("s@x.example", ["carol@remote.example"],
                          smtp_data(b"Subject: wide\n\nx\n"))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(len(self.d.queue_files("remote.example")), 1)


class NoRelayAtAll(DaemonTestCase):
    daemon_opts = dict(relay_networks=[])

    def test_empty_networks_deny_loopback_too(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<carol@remote.example>", 554, "5.7.1")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("QUIT", 221, "2.0.0")
        self.assertEqual(self.d.queue_domains(), [])


if __name__ == "__main__":
    unittest.main()
