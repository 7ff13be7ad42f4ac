"""test_hostile - raw-socket dialogs with clients that pipeline, smuggle,
send over-long lines, NUL, 8-bit and bare line ends, hang up mid-DATA,
make too many errors or are no SMTP clients at all. After every test the
daemon must still be alive and serving (and stop with status 0)."""

import socket
import time
import unittest

from harness import (DaemonTestCase, HELO, SLOW, VALGRIND, smtp_data,
                     split_trace)

MSG = b"Subject: hostile\n\nbody\n"


class Hostile(DaemonTestCase):

    def tearDown(self):
        self.assertDaemonAlive()

    def assertNothingStored(self):
        for u in ("alice", "bob"):
            self.assertEqual(self.d.files(u), [], "%s/new" % u)
            self.assertEqual(self.d.files(u, "tmp"), [], "%s/tmp" % u)
        self.assertEqual(self.d.queue_domains(), [])

    # -- pipelining ---------------------------------------------------
    def test_pipelined_batch_three_messages(self):
        c = self.client()
        batch = b"EHLO " + HELO.encode() + b"\r\n"
        bodies = []
        for i, (sender, rcpt) in enumerate([("a@x.example", "alice"),
                                            ("b@x.example", "bob"),
                                            ("c@x.example", "alice")]):
            body = b"Subject: pipelined %d\n\n.dot\nmessage %d\n" % (i, i)
            bodies.append((sender, rcpt, body))
            batch += (b"MAIL FROM:<%s>\r\nRCPT TO:<%s@example.org>\r\n"
                      b"DATA\r\n" % (sender.encode(), rcpt.encode()))
            batch += smtp_data(body)
        batch += b"QUIT\r\n"
        c.send(batch)
        ehlo = c.reply()
        self.assertEqual(ehlo.code, 250, ehlo)
        ids = []
        for sender, rcpt, body in bodies:
            c.expect(250, "2.1.0")
            c.expect(250, "2.1.5")
            c.expect(354)
            r = c.expect(250, "2.0.0")
            ids.append(r.queued_id())
        c.expect(221, "2.0.0")
        self.assertTrue(c.closed(), "not closed after QUIT")
        self.assertEqual(c.buf, b"")
        self.assertEqual(len(set(ids)), 3, ids)
        for msgid, (sender, rcpt, body) in zip(ids, bodies):
            self.assertDelivered(rcpt, msgid, sender,
                                 rcpt + "@example.org", body)
        self.assertEqual(len(self.d.files("alice")), 2)
        self.assertEqual(len(self.d.files("bob")), 1)

    def test_big_pipelined_batch_nothing_lost(self):
        # 3000 commands in one go (about 20 kB): every one answered, in
        # order, whatever the daemon's buffer sizes are. (EHLO, not NOOP:
        # past 100 NOOPs each counts as an error, as in Postfix.)
        c = self.client()
        c.hello()
        n = 3000
        batch = (b"EHLO " + HELO.encode() + b"\r\n") * n
        batch += b"MAIL FROM:<s@x.example>\r\nRCPT TO:<bob@example.org>\r\n"
        batch += b"DATA\r\n" + smtp_data(MSG) + b"QUIT\r\n"
        c.send_background(batch)
        for i in range(n):
            r = c.reply()
            self.assertEqual(r.code, 250, "reply %d: %r" % (i, r))
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        r = c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", MSG)

    def test_one_byte_at_a_time(self):
        c = self.client()
        dialog = (b"EHLO " + HELO.encode() + b"\r\n"
                  b"MAIL FROM:<s@x.example>\r\n"
                  b"RCPT TO:<alice@example.org>\r\nDATA\r\n"
                  + smtp_data(b"Subject: slow\n\n.x\n") + b"QUIT\r\n")
        for i in range(len(dialog)):
            c.send(dialog[i:i + 1])
        c.expect(250)
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        r = c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org", b"Subject: slow\n\n.x\n")

    # -- SMTP smuggling -----------------------------------------------
    SMUGGLING_ENDINGS = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n",
                         b"\r.\r\n", b"\r\n.\r", b"\n.\r", b"\r.\n",
                         b"\r\n.\r\r\n", b"\n..\n"]

    def test_smuggling_endings(self):
        for ending in self.SMUGGLING_ENDINGS:
            with self.subTest(ending=ending):
                self.smuggle(ending)

    def smuggle(self, ending):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(b"Subject: smuggling\r\n\r\nhello" + ending +
               b"MAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.org>\r\n"
               b"DATA\r\nsmuggled\r\n" + b"\r\n.\r\n")
        first = c.reply()
        # Had the ending closed the message, replies to the smuggled
        # MAIL, RCPT, DATA and its dot would follow.
        extra = c.nothing_more(0.5)
        try:
            noop = c.cmd("NOOP")
        except (OSError, ConnectionError, AssertionError) as e:
            noop = e
        c.close()
        time.sleep(0.1)
        # Safety first: bob got nothing, no stored file holds the
        # smuggled text as a message of its own.
        self.assertEqual(self.d.files("bob"), [], "smuggled to bob")
        for name in self.d.files("alice"):
            data = self.d.read("alice", name)
            _, text = split_trace(data, 3)
            self.assertFalse(text.startswith(b"smuggled"), data)
        self.assertLessEqual(len(self.d.files("alice")), 1)
        self.assertTrue(extra, "more replies after the first (%r): %r"
                        % (first, c.buf))
        self.assertTrue(getattr(noop, "code", None) == 250,
                        "NOOP after the message: %r" % (noop,))
        # The contract: read to the real CRLF.CRLF, 550 5.5.2, no file.
        self.assertEqual((first.code, first.enhanced), (550, "5.5.2"), first)
        self.assertNothingStored()

    def test_bare_lf_in_text_refused(self):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["alice@example.org"],
                          b"Subject: lf\r\n\r\nbare\nlf\r\n.\r\n")
        self.assertEqual((r.code, r.enhanced), (550, "5.5.2"), r)
        c.expect_ok("NOOP", 250, "2.0.0")
        # The transaction is over: a new MAIL is taken.
        r = c.transaction("s@x.example", ["alice@example.org"],
                          smtp_data(MSG))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(len(self.d.files("alice")), 1)

    # -- long lines -----------------------------------------------------
    def test_command_line_too_long(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        # "RSET" starts at octet 512 of the line. Were the tail run as a
        # command, it would answer (and reset the transaction); so the
        # next reply must be the 354 of DATA.
        line = b"NOOP " + b"x" * 507 + b"RSET"
        self.assertEqual(len(line), 516)
        c.send(line + b"\r\nDATA\r\n")
        c.expect(500, "5.5.2")
        r = c.reply()
        self.assertEqual(r.code, 354, "tail of the long line was run? %r"
                         % r)
        c.send(smtp_data(MSG))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org", MSG)

    def test_very_long_line_one_reply(self):
        c = self.client()
        c.hello()
        c.send_background(b"MAIL FROM:<" + b"a" * 100000 + b"@x.example>\r\n"
                          b"NOOP\r\n")
        c.expect(500, "5.5.2")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"),
                         "the long line answered more than once? %r" % r)
        # No transaction was started by it.
        c.expect_ok("RCPT TO:<alice@example.org>", 503, "5.5.1")

    def test_line_of_512_octets_is_fine(self):
        c = self.client()
        c.hello()
        line = b"NOOP " + b"x" * 505
        self.assertEqual(len(line + b"\r\n"), 512)
        c.send(line + b"\r\n")
        c.expect(250, "2.0.0")

    def test_long_text_line_stored_unchanged(self):
        c = self.client()
        c.hello()
        msg = (b"Subject: long line\n\n" + b"0123456789" * 500 + b"\n"
               + b"." + b"y" * 2999 + b"\nend\n")
        r = c.transaction("s@x.example", ["bob@example.org"], smtp_data(msg))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", msg)

    # -- bytes that have no place in a command ---------------------------
    def test_nul_in_command(self):
        c = self.client()
        c.hello()
        c.send(b"NOOP\x00\r\n")
        c.expect(500, "5.5.2")
        c.send(b"MAIL FROM:<a\x00b@x.example>\r\n")
        c.expect(500, "5.5.2")
        # Not run: no transaction.
        c.expect_ok("RCPT TO:<alice@example.org>", 503, "5.5.1")
        c.expect_ok("NOOP", 250, "2.0.0")

    def test_8bit_in_command(self):
        c = self.client()
        c.hello()
        c.send(b"NOOP caf\xc3\xa9\r\n")
        c.expect(500, "5.5.2")
        # Inside a path: an address that needs SMTPUTF8 (RFC 6531).
        c.send(b"MAIL FROM:<j\xfcrgen@x.example>\r\n")
        c.expect(553, "5.6.7")
        c.expect_ok("RCPT TO:<alice@example.org>", 503, "5.5.1")
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.send(b"RCPT TO:<\xe4lice@example.org>\r\n")
        c.expect(553, "5.6.7")
        c.expect_ok("DATA", 503, "5.5.1")

    def test_bare_lf_command(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        # Not run: RSET would end the transaction.
        c.send(b"RSET\n")
        c.expect(500, "5.5.2")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(MSG))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("alice", r.queued_id(), "s@x.example",
                             "alice@example.org", MSG)

    def test_bare_cr_in_command(self):
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.send(b"RCPT TO:<alice@example.org>\rRSET\r\n")
        c.expect(500, "5.5.2")
        self.assertTrue(c.nothing_more(), c.buf)
        c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(smtp_data(MSG))
        r = c.expect(250, "2.0.0")
        self.assertDelivered("bob", r.queued_id(), "s@x.example",
                             "bob@example.org", MSG)
        self.assertEqual(self.d.files("alice"), [])

    # -- clients that go away or misbehave --------------------------------
    def test_disconnect_in_data(self):
        for how in ("close", "reset", "close after CRLF.CR"):
            with self.subTest(how=how):
                c = self.client()
                c.hello()
                c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
                c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
                c.expect_ok("RCPT TO:<bob@example.org>", 250, "2.1.5")
                c.expect_ok("DATA", 354)
                c.send(b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 100)
                if how == "close after CRLF.CR":
                    c.send(b"last\r\n.\r")
                time.sleep(0.1)
                if how == "reset":
                    c.abort()
                else:
                    c.close()
                # Give the daemon time to (wrongly) store something.
                deadline = time.monotonic() + 1.0 * SLOW
                while time.monotonic() < deadline:
                    self.assertNothingStored()
                    time.sleep(0.1)
                self.assertTrue(self.d.alive())

    def test_reset_before_reading_replies(self):
        # Replies written to a client that has reset the connection raise
        # EPIPE/SIGPIPE in the daemon: it must survive them all.
        for i in range(20):
            c = self.client()
            c.send(b"EHLO " + HELO.encode() + b"\r\n" + b"NOOP\r\n" * 2000)
            c.abort()
        time.sleep(0.2)
        self.assertTrue(self.d.alive())

    def test_too_many_errors_421(self):
        c = self.client()
        c.hello()
        codes = []
        for i in range(60):
            try:
                c.send(b"XYZZY %d\r\n" % i)
                r = c.reply(timeout=5)
            except (OSError, ConnectionError):
                break
            codes.append((r.code, r.enhanced))
            if r.code == 421:
                break
        self.assertIn((421, "4.7.0"), codes, codes)
        self.assertTrue(set(codes[:-1]) <= {(500, "5.5.1")}, codes)
        self.assertGreaterEqual(len(codes), 4, codes)
        self.assertLessEqual(len(codes), 40, codes)
        self.assertTrue(c.closed(timeout=5), "still open after 421")

    def test_http_request(self):
        c = self.client()
        c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
        replies = []
        try:
            for _ in range(5):
                replies.append(c.reply(timeout=3))
        except (OSError, ConnectionError):
            pass
        self.assertGreaterEqual(len(replies), 1)
        for r in replies:
            self.assertIn(r.code // 100, (4, 5), replies)
        c.close()
        # POST with a body, too.
        c = self.client()
        c.send(b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n"
               b"QUIT\r\nRSET\r\n")
        try:
            while True:
                r = c.reply(timeout=3)
                self.assertNotEqual(r.code // 100, 3, r)
        except (OSError, ConnectionError):
            pass
        self.assertNothingStored()


class MaxConnections(DaemonTestCase):
    daemon_opts = dict(max_connections=2)

    def test_third_client_421(self):
        # The harness's start-up probe holds a slot until it is gone.
        self.assertTrue(self.d.wait_for(
            lambda: "disconnect from" in self.d.log(), timeout=3))
        c1 = self.client()
        c2 = self.client()
        c3 = self.client(greet=False)
        r = c3.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.7.0"), r)
        self.assertTrue(c3.closed(timeout=5))
        # The two served keep working; when one leaves, a new one is let in.
        c1.hello()
        c2.hello()
        c1.expect_ok("QUIT", 221, "2.0.0")
        self.assertTrue(c1.closed())
        # (The daemon lingers until the client closes its end too, at
        # most CONN_LINGER_MS; till then the slot is taken.)
        c1.close()

        def let_in():
            c = self.d.client(greet=False)
            r = c.reply()
            if r.code == 220:
                self.addCleanup(c.close)
                return c
            c.close()
            return None
        c4 = self.d.wait_for(let_in, timeout=3)
        self.assertTrue(c4, "no slot freed after a client left")
        c4.expect_ok("NOOP", 250, "2.0.0")
        c2.expect_ok("NOOP", 250, "2.0.0")


class NonReader(DaemonTestCase):
    """A client that sends and never reads its replies must not make the
    daemon buffer without bound nor stop it serving others."""

    def test_client_that_never_reads(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=2)
        self.addCleanup(s.close)
        s.setblocking(False)
        sent = 0
        # HELP: no junk command (NOOP would end the session after 120)
        # and it allocates nothing (under ASan, freed memory stays in
        # the quarantine and counts in RSS).
        chunk = b"HELP\r\n" * 10000
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sent < 50 * 1024 * 1024:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
        # The daemon stopped reading at some point (flow control) ...
        self.assertLess(sent, 50 * 1024 * 1024)
        if not VALGRIND:
            with open("/proc/%d/status" % self.d.proc.pid) as f:
                rss = [l for l in f if l.startswith("VmRSS:")]
            if rss:
                kb = int(rss[0].split()[1])
                self.assertLess(kb, 64 * 1024, "daemon RSS %d kB" % kb)
        # ... and still serves others.
        with self.d.client() as c:
            c.hello()
            r = c.transaction("s@x.example", ["alice@example.org"],
                              smtp_data(MSG))
            self.assertEqual(r.code, 250, r)
        self.assertTrue(self.d.alive())


if __name__ == "__main__":
    unittest.main()
