"""test_streaming - DATA is streamed to disk: memory does not grow with
message size, SIZE counts what is sent, a fair group commit, and a
descriptor budget that keeps room for storing.

  MemoryAndDots     200 clients, each 4 MiB into its DATA (not at the
                    dot): the daemon's RSS has grown by at most 64 KiB a
                    client; then all 200 send their final dot at once
                    (max_connections = 200) and every one gets 250, with
                    the bytes on disk. Under valgrind: 20 clients, 1 MiB.
  SizeCount         SIZE counts the octets as sent (RFC 1870): 2,096,014
                    octets of CRLF are over a 1 MiB limit (stored they
                    would be under it): 552 5.3.4, nothing stored, no
                    spool left open; exactly the limit as sent is taken.
  SpoolGone         a client that disconnects in the middle of DATA
                    leaves no spool file: the daemon's descriptor of it is
                    closed, nothing is left in the tree.
  Fairness          while one client pipelines 1,000 messages, another
                    client's NOOP is answered after at most a few of its
                    commits (the old daemon ran them all first).
  Descriptors       with an open file limit of 400 (hard) and
                    max_connections 200, the daemon warns at start and
                    serves fewer clients: the next gets 421 at connect,
                    and a message to 100 remote domains from a client in
                    session is stored. With 256 and max_recipients 50,
                    the same: 421 at connect, never 451 at the dot.
  PerIp             max_connections_per_ip from one address outside
                    relay.networks: the next gets 421 4.7.0; relay
                    clients are exempt.
"""

import os
import re
import selectors
import socket
import threading
import time
import unittest

from harness import (VALGRIND, Client, DaemonTestCase, smtp_data)

KIB = 1024
MIB = 1024 * KIB
SANITIZERS = os.environ.get("E2E_SANITIZERS", "") == "yes"


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * KIB
    raise AssertionError("no VmRSS for pid %d" % pid)


def spool_fds(pid):
    """The daemon's open descriptors of spool files (anonymous files in
    the queue's .tmp/)."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if "/.OTHER_SERVERS/.tmp/" in target:
            out.append(target)
    return out


def open_data(port, n, rcpt="alice@example.org", sender="s@x.example"):
    """n clients, each past 354 (pipelined MAIL/RCPT/DATA)."""
    clients = []
    for _ in range(n):
        c = Client(("127.0.0.1", port), timeout=30)
        c.expect(220)
        c.send(b"EHLO client.test.example\r\nMAIL FROM:<%s>\r\n"
               b"RCPT TO:<%s>\r\nDATA\r\n" % (sender.encode(), rcpt.encode()))
        c.expect(250)
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        clients.append(c)
    return clients


def push_all(socks, total, chunk, deadline):
    """Send total bytes of chunk (repeated) on every socket, without
    blocking on any one of them; bounded by deadline."""
    sel = selectors.DefaultSelector()
    sent = {}
    for s in socks:
        s.setblocking(False)
        sent[s] = 0
        sel.register(s, selectors.EVENT_WRITE)
    try:
        while sent and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                off = sent[s] % len(chunk)
                want = min(len(chunk) - off, total - sent[s])
                try:
                    sent[s] += s.send(chunk[off:off + want])
                except BlockingIOError:
                    continue
                if sent[s] >= total:
                    sel.unregister(s)
                    del sent[s]
    finally:
        sel.close()
        for s in socks:
            s.setblocking(True)
    return not sent


class MemoryAndDots(DaemonTestCase):
    N = 20 if VALGRIND else 200
    SIZE = (1 if VALGRIND else 4) * MIB
    daemon_opts = dict(max_connections=200, debug=False,
                       max_message_size=8 * MIB)

    def test_200_clients_4mib_into_data_then_200_dots(self):
        pid = self.d.proc.pid
        # Warm up: one whole message, so that what a first delivery
        # allocates once is in the baseline.
        c = self.client()
        c.hello()
        self.assertEqual(c.transaction("s@x.example", ["bob@example.org"],
                                       smtp_data(b"warm\n")).code, 250)
        c.close()
        before = rss_bytes(pid)
        clients = open_data(self.d.port, self.N)
        self.addCleanup(lambda: [c.close() for c in clients])
        line = b"x" * 78 + b"\r\n"
        chunk = line * (64 * KIB // len(line))
        self.assertTrue(push_all([c.sock for c in clients], self.SIZE,
                                 chunk, time.monotonic() + 300),
                        "could not send the text in time")
        # Every byte sent is in the daemon once its spools have grown to
        # it (less what a spool's window still holds): wait for that.
        full, rest = divmod(self.SIZE, len(line))
        stored = full * (len(line) - 1) + rest

        def spooled():
            total = 0
            for fd in os.listdir("/proc/%d/fd" % pid):
                path = "/proc/%d/fd/%s" % (pid, fd)
                try:
                    if "/.OTHER_SERVERS/.tmp/" in os.readlink(path):
                        total += os.stat(path).st_size
                except OSError:
                    continue
            return total

        self.d.wait_for(lambda: spooled() >= self.N * (stored - 16 * KIB),
                        timeout=120)
        self.assertEqual(len(spool_fds(pid)), self.N)
        growth = rss_bytes(pid) - before
        per_client = growth / self.N
        limit = 64 * KIB * (2 if SANITIZERS else 1)
        print("\nstreaming: %d clients %d MiB into DATA: RSS grew by %d kB "
              "(%.1f kB a client)" % (self.N, self.SIZE // MIB,
                                      growth // KIB, per_client / KIB))
        self.assertLess(per_client, limit,
                        "RSS grew by %d bytes a client" % per_client)

        # All final dots at once: every one gets 250 (descriptors for
        # storing are kept: no 451 "Too many open files").
        for c in clients:
            c.send(b"\r\n.\r\n")
        ids = []
        for c in clients:
            r = c.reply(timeout=120)
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
            ids.append(r.queued_id())
        self.assertEqual(len(set(ids)), self.N)
        names = self.d.files("alice")
        self.assertEqual(len(names), self.N)
        data = self.d.read("alice", names[0])
        self.assertIn(b"\nReceived: from client.test.example", data)
        # Return-Path, Delivered-To, Received, then the text: the lines
        # sent, the last one cut short by the CRLF before the dot.
        text = data.split(b"\n", 3)[3]
        self.assertEqual(len(text), stored + 1)
        self.assertEqual(text[:len(line) - 1], line[:-2] + b"\n")
        self.assertEqual(spool_fds(pid), [])


class SizeCount(DaemonTestCase):
    daemon_opts = dict(max_message_size=MIB, debug=False)

    def test_crlf_counted_as_sent(self):
        pid = self.d.proc.pid
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        # 1,048,007 empty lines: 2,096,014 octets as sent, half stored.
        c.send(b"\r\n" * 1048007 + b".\r\n")
        r = c.reply(timeout=30)
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertEqual(self.d.all_files(), [])
        self.assertEqual(spool_fds(pid), [])
        # The session goes on; exactly 1 MiB as sent is taken.
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(b"\r\n" * (MIB // 2) + b".\r\n")
        r = c.reply(timeout=30)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        data = self.d.read("alice", self.d.files("alice")[0])
        self.assertTrue(data.endswith(b"\n" * (MIB // 2)))
        # A declared SIZE over the limit is refused at MAIL.
        c.expect_ok("MAIL FROM:<s@x.example> SIZE=%d" % (MIB + 1), 552,
                    "5.3.4")


class SpoolGone(DaemonTestCase):
    daemon_opts = dict(debug=False)

    def test_disconnect_mid_data_leaves_nothing(self):
        pid = self.d.proc.pid
        c = self.client()
        c.hello()
        c.expect_ok("MAIL FROM:<s@x.example>", 250, "2.1.0")
        c.expect_ok("RCPT TO:<alice@example.org>", 250, "2.1.5")
        c.expect_ok("RCPT TO:<r@remote.example>", 250, "2.1.5")
        c.expect_ok("DATA", 354)
        c.send(b"Subject: cut\r\n\r\n" + (b"z" * 78 + b"\r\n") * 4000)
        self.d.wait_for(lambda: len(spool_fds(pid)) == 1, timeout=10)
        c.abort()
        self.d.wait_for(lambda: spool_fds(pid) == [], timeout=10)
        self.assertEqual(self.d.all_files(), [])
        self.assertEqual(os.listdir(os.path.join(self.d.queue_dir(),
                                                 ".tmp")), [])


class Fairness(DaemonTestCase):
    N = 100 if VALGRIND else 1000
    daemon_opts = dict(debug=True)

    def test_noop_not_held_behind_a_pipeline(self):
        b = self.client()
        b.hello("b.test.example")
        a = self.client()
        a.hello("a.test.example")
        one = (b"MAIL FROM:<a@x.example>\r\nRCPT TO:<bob@example.org>\r\n"
               b"DATA\r\nSubject: p\r\n\r\nx\r\n.\r\n")
        got = []
        done = threading.Event()

        def reader():
            try:
                while len(got) < 4 * self.N:
                    got.append(a.reply(timeout=120))
            finally:
                done.set()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        a.send_background(one * self.N)
        # Wait until A's first message is answered, then ask B.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                r.code == 250 and r.enhanced == "2.0.0" for r in got):
            time.sleep(0.001)
        k1 = sum(1 for r in list(got) if r.queued_id())
        b.expect_ok("NOOP", 250, "2.0.0")
        k2 = sum(1 for r in list(got) if r.queued_id())
        done.wait(300)
        self.assertEqual(sum(1 for r in got if r.queued_id()), self.N)
        # The log says how many of A's commits came before B's NOOP was
        # run: those beyond the k1 that A had already seen answered are
        # what B waited for.
        self.d.stop(remove=False)
        log = self.d.log().splitlines()
        ids = {}
        for line in log:
            for name in ("a", "b"):
                if " EHLO %s.test.example from " % name in line:
                    ids[name] = line.split()[2]
        a_id, b_id = ids["a"], ids["b"]
        n_before = 0
        for line in log:
            parts = line.split()
            if len(parts) < 4:
                continue
            if parts[2] == a_id and "< 250 2.0.0 Ok: queued as" in line:
                n_before += 1
            if parts[2] == b_id and line.endswith("> NOOP"):
                break
        waited = n_before - k1
        print("\nfairness: A had %d answered when B sent NOOP, %d when B "
              "got 250; A's commits before B's NOOP ran: %d (waited %d)"
              % (k1, k2, n_before, waited))
        # k1 is what the reader thread had seen, which lags what the
        # daemon had sent by a commit or two on a busy machine (5 was
        # seen once, in an unprivileged distcheck): 8 of 1,000 still
        # says B was not held behind A's pipeline.
        self.assertLessEqual(waited, 8, "B waited for %d of A's commits"
                             % waited)
        self.d.stop()


class Descriptors(DaemonTestCase):
    daemon_opts = dict(max_connections=200, nofile=400, debug=False)

    def serve_until_421(self, limit):
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(limit):
            c = Client(("127.0.0.1", self.d.port), timeout=10)
            r = c.reply()
            if r.code == 421:
                self.assertEqual(r.enhanced, "4.7.0", r)
                c.close()
                return held
            self.assertEqual(r.code, 220, r)
            c.hello()
            held.append(c)
        self.fail("no 421 after %d clients" % limit)

    def test_limit_400_budget_and_100_domains(self):
        # (valgrind keeps a few descriptors of the limit for itself)
        self.assertTrue(self.d.wait_for(lambda: re.search(
            r"open file limit \d+ serves \d+ clients", self.d.log()), 5),
            self.d.log_tail())
        held = self.serve_until_421(200)
        self.assertGreater(len(held), 10)
        self.assertLess(len(held), 200)
        c = held[0]
        rcpts = ["r@d%d.example" % i for i in range(100)]
        r = c.transaction("s@x.example", rcpts, smtp_data(b"many\n"))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertEqual(len(self.d.queue_domains()), 100)
        # And every client in session can still store at once.
        for c in held:
            c.send(b"MAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.org>"
                   b"\r\nDATA\r\n")
        for c in held:
            c.expect(250)
            c.expect(250)
            c.expect(354)
        for c in held:
            c.send(smtp_data(b"at once\n"))
        for c in held:
            r = c.reply(timeout=60)
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)


class Descriptors256(DaemonTestCase):
    daemon_opts = dict(max_connections=1024, nofile=256, debug=False,
                       max_recipients=50)

    def test_limit_256_new_clients_421_first(self):
        # (valgrind keeps a few descriptors of the limit for itself)
        self.assertTrue(self.d.wait_for(lambda: re.search(
            r"open file limit \d+ serves \d+ clients", self.d.log()), 5),
            self.d.log_tail())
        held = Descriptors.serve_until_421(self, 300)
        for c in held:
            c.send(b"MAIL FROM:<s@x.example>\r\nRCPT TO:<bob@example.org>"
                   b"\r\nDATA\r\n")
        for c in held:
            c.expect(250)
            c.expect(250)
            c.expect(354)
        for c in held:
            c.send(smtp_data(b"fits\n"))
        for c in held:
            r = c.reply(timeout=60)
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertEqual(len(self.d.files("bob")), len(held))


class PerIp(DaemonTestCase):
    daemon_opts = dict(max_connections_per_ip=3, debug=False)

    def test_per_address_limit_outside_relay_networks(self):
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(3):
            c = Client(("127.0.0.1", self.d.port), source="127.0.0.2",
                       timeout=10)
            c.expect(220)
            held.append(c)
        c = Client(("127.0.0.1", self.d.port), source="127.0.0.2",
                   timeout=10)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.7.0"), r)
        self.assertTrue(c.closed())
        c.close()
        # Another address is not affected; relay clients are exempt.
        other = Client(("127.0.0.1", self.d.port), source="127.0.0.3",
                       timeout=10)
        other.expect(220)
        held.append(other)
        for _ in range(5):
            c = Client(("127.0.0.1", self.d.port), timeout=10)
            c.expect(220)
            held.append(c)
        # A slot comes back when a client leaves.
        held[0].expect_ok("QUIT", 221, "2.0.0")
        held[0].close()
        self.d.wait_for(lambda: "disconnect from [127.0.0.2]"
                        in self.d.log(), timeout=10)
        c = Client(("127.0.0.1", self.d.port), source="127.0.0.2",
                   timeout=10)
        c.expect(220)
        held.append(c)


if __name__ == "__main__":
    unittest.main()
