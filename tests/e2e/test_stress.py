"""test_stress - load and hostile clients, each bounded in count and time.

  IdleConnections   5,000 idle clients held open while a normal client
                    still delivers within a few seconds; prints the
                    daemon's RSS per idle connection (a measurement; only
                    a loose bound is asserted).
  Slowloris         500 clients that send one byte a second and never
                    finish a command are each cut with 421 4.4.2 (or a
                    close) at command_timeout, while a normal client is
                    served.
  NonReaders        clients that pipeline HELOs and never read: the
                    daemon stops reading them (its RSS stays bounded while
                    they try to push 50 MB), serves others meanwhile, and
                    when one starts reading it gets every reply, in order.
  MaxConnections    with max_connections = 20, clients 21 and up get
                    421 4.7.0 and a close; the 20 keep working; slots
                    come back when clients leave.
  ManyRecipients    10^5 pipelined RCPTs in one transaction
                    (max_recipients = 100): 100 x 250 2.1.5 then 452 4.5.3
                    for every other one, all in order; memory stays flat;
                    the queue file names exactly the first 100.

All are skipped under E2E_VALGRIND=1 (too slow there, and valgrind's RSS
says nothing about the daemon's). The file descriptor limit of this
process (inherited by the daemon) is raised to what the tests need.
With E2E_SANITIZERS=yes (a build with --enable-sanitizers; make check
sets it) the bounds on RSS are relaxed by what AddressSanitizer adds
(see rss_limit()); every other assertion is the same.
"""

import os
import re
import resource
import selectors
import socket
import threading
import time
import unittest

from harness import Client, DaemonTestCase, HELO, VALGRIND, smtp_data

MSG = b"Subject: stress\n\nbody\n"
KIB = 1024
MIB = 1024 * 1024
SANITIZERS = os.environ.get("E2E_SANITIZERS", "") == "yes"


def asan_quarantine_bytes():
    """ASan's quarantine of freed memory: quarantine_size_mb of
    ASAN_OPTIONS (the last one given wins), else its default, 256 MB."""
    found = re.findall(r"(?:^|[:,\s])quarantine_size_mb=(-?\d+)",
                       os.environ.get("ASAN_OPTIONS", ""))
    mb = int(found[-1]) if found else -1
    return (256 if mb < 0 else mb) * MIB


def rss_limit(normal, per_connection=False):
    """The bound on RSS growth for a limit of normal bytes. Under ASan a
    block carries redzones and 1/8 of its size in shadow (twice the
    bytes is ample), and freed blocks stay resident in the quarantine
    until it is full: a growth bound gets the quarantine on top. A
    per-connection figure averages the quarantine away."""
    if not SANITIZERS:
        return normal
    if per_connection:
        return 2 * normal
    return 2 * normal + asan_quarantine_bytes()


def rss_bytes(pid):
    """The VmRSS of a process, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) * KIB
    raise AssertionError("no VmRSS for pid %d" % pid)


class RssSampler:
    """Samples a process's RSS in a thread; .peak is the highest seen."""

    def __init__(self, pid, every=0.02):
        self.pid = pid
        self.every = every
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, AssertionError):
                return
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        return False


def raise_nofile(want):
    """Raise this process's soft RLIMIT_NOFILE towards want (up to the
    hard limit); return the old limits, for restore_nofile()."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = old
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError):
            pass
    return old


def nofile_soft():
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return float("inf") if soft == resource.RLIM_INFINITY else soft


def deliver_one(port, rcpt="alice@example.org"):
    """A normal client's whole transaction; returns (seconds, reply)."""
    started = time.monotonic()
    with Client(("127.0.0.1", port), timeout=10) as c:
        c.expect(220)
        c.hello()
        r = c.transaction("s@x.example", [rcpt], smtp_data(MSG))
        c.expect_ok("QUIT", 221, "2.0.0")
    return time.monotonic() - started, r


class NofileMixin:
    """Raise the descriptor limit before the daemon starts (it inherits
    it) and put it back afterwards."""

    NOFILE = 1024

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._old_nofile = raise_nofile(cls.NOFILE)

    @classmethod
    def tearDownClass(cls):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, cls._old_nofile)
        except (ValueError, OSError):
            pass
        super().tearDownClass()

    def setUp(self):
        if nofile_soft() < self.NOFILE:
            self.skipTest("cannot raise RLIMIT_NOFILE to %d (have %s)"
                          % (self.NOFILE, nofile_soft()))
        super().setUp()


@unittest.skipIf(VALGRIND, "load tests are not run under valgrind")
class IdleConnections(NofileMixin, DaemonTestCase):
    N = 5000
    NOFILE = N + 200
    daemon_opts = dict(max_connections=N + 100, debug=False)

    def test_5000_idle_and_one_delivers(self):
        pid = self.d.proc.pid
        self.d.wait_connections(0)     # the start-up probe is gone
        before = rss_bytes(pid)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        started = time.monotonic()
        for i in range(self.N):
            s = socket.create_connection(("127.0.0.1", self.d.port),
                                         timeout=10)
            socks.append(s)
        # Every one is accepted and greeted (so it has its session).
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)
        pending = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(4096)
                pending[s] += data
                if b"\n" in pending[s] or not data:
                    self.assertTrue(pending[s].startswith(b"220 "),
                                    pending[s])
                    sel.unregister(s)
                    del pending[s]
        self.assertEqual(len(pending), 0, "%d of %d idle clients not "
                         "greeted" % (len(pending), self.N))
        opened = time.monotonic() - started
        self.d.wait_connections(self.N)
        after = rss_bytes(pid)
        per = (after - before) / self.N
        print("\nRSS per idle connection: %d bytes (daemon RSS %d kB "
              "before, %d kB with %d idle clients; opened in %.1f s)"
              % (per, before // KIB, after // KIB, self.N, opened))

        # A normal client still delivers, promptly.
        took, r = deliver_one(self.d.port)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertLess(took, 3.0, "delivery took %.2f s with %d idle "
                        "clients" % (took, self.N))
        self.assertEqual(len(self.d.files("alice")), 1)
        self.assertLess(per, rss_limit(64 * KIB, per_connection=True),
                        "RSS per idle connection")

        # The idle ones are still there and answer.
        for s in (socks[0], socks[self.N // 2], socks[-1]):
            s.setblocking(True)
            s.settimeout(10)
            s.sendall(b"NOOP\r\n")
            self.assertTrue(s.recv(4096).startswith(b"250 2.0.0"))


@unittest.skipIf(VALGRIND, "load tests are not run under valgrind")
class Slowloris(NofileMixin, DaemonTestCase):
    N = 500
    TIMEOUT = 2
    SLACK = 3.0
    NOFILE = N + 200
    daemon_opts = dict(command_timeout=TIMEOUT, max_connections=N + 50,
                       debug=False)

    def test_500_slow_clients_cut_at_timeout(self):
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)
        clients = {}        # socket -> dict(t0, buf, cut, how)
        self.addCleanup(lambda: [s.close() for s in clients])
        for i in range(self.N):
            s = socket.create_connection(("127.0.0.1", self.d.port),
                                         timeout=10)
            s.setblocking(False)
            clients[s] = dict(t0=time.monotonic(), buf=b"", cut=None,
                              how=None, sent=0)
            sel.register(s, selectors.EVENT_READ)
        # Never a line end: a command that is never finished.
        drip = b"MAIL FROM:<" + b"s" * 400

        result = {}

        def normal():
            try:
                result["took"], result["reply"] = deliver_one(self.d.port)
            except BaseException as e:  # reported below
                result["error"] = repr(e)

        helper = threading.Thread(target=normal, daemon=True)
        helper_started = False
        open_ = set(clients)
        last_drip = 0.0
        deadline = time.monotonic() + self.TIMEOUT + self.SLACK + 3
        while open_ and time.monotonic() < deadline:
            now = time.monotonic()
            if now - last_drip >= 1.0:
                last_drip = now
                for s in list(open_):
                    st = clients[s]
                    try:
                        s.send(drip[st["sent"]:st["sent"] + 1])
                        st["sent"] += 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.cut(sel, open_, s, st, "send error")
            if not helper_started and now - min(
                    c["t0"] for c in clients.values()) > 1.0:
                helper.start()
                helper_started = True
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                st = clients[s]
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    self.cut(sel, open_, s, st, "reset")
                    continue
                except BlockingIOError:
                    continue
                if not data:
                    self.cut(sel, open_, s, st, "close")
                    continue
                st["buf"] += data
                if b"421 " in st["buf"]:
                    self.cut(sel, open_, s, st, "421")
        helper.join(10)

        self.assertEqual(len(open_), 0, "%d of %d slow clients still open "
                         "after %.1f s of one byte a second "
                         "(command_timeout %d s)"
                         % (len(open_), self.N, time.monotonic() - min(
                             st["t0"] for st in clients.values()),
                            self.TIMEOUT))
        early, late, bad = [], [], []
        for s, st in clients.items():
            after = st["cut"] - st["t0"]
            if after < self.TIMEOUT - 0.5:
                early.append(after)
            if after > self.TIMEOUT + self.SLACK:
                late.append(after)
            lines = st["buf"].split(b"\r\n")
            replies = [l for l in lines[1:] if l]
            if not lines[0].startswith(b"220 ") or any(
                    not l.startswith(b"421 4.4.2 ") for l in replies):
                bad.append(st["buf"])
        with421 = sum(1 for st in clients.values() if st["how"] == "421")
        print("\nslowloris: %d of %d cut with 421 4.4.2, the rest by a "
              "close; cut after %.2f..%.2f s (command_timeout %d s)"
              % (with421, self.N,
                 min(st["cut"] - st["t0"] for st in clients.values()),
                 max(st["cut"] - st["t0"] for st in clients.values()),
                 self.TIMEOUT))
        self.assertEqual(bad[:3], [], "%d clients saw other replies" %
                         len(bad))
        self.assertEqual(early, [], "cut before the timeout")
        self.assertEqual(late, [], "cut too late")
        self.assertNotIn("error", result, result.get("error"))
        r = result.get("reply")
        self.assertIsNotNone(r, "normal client did not finish")
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertLess(result["took"], 2.0)

    @staticmethod
    def cut(sel, open_, s, st, how):
        if s in open_:
            st["cut"] = time.monotonic()
            st["how"] = how
            open_.discard(s)
            sel.unregister(s)
            s.close()


@unittest.skipIf(VALGRIND, "load tests are not run under valgrind")
class NonReaders(DaemonTestCase):
    K = 4
    PUSH = 50 * MIB     # what each of them tries to push
    daemon_opts = dict(debug=False)

    def test_clients_that_never_read(self):
        pid = self.d.proc.pid
        self.d.wait_connections(0)     # the start-up probe is gone
        before = rss_bytes(pid)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(self.K):
            s = socket.create_connection(("127.0.0.1", self.d.port),
                                         timeout=10)
            s.setblocking(False)
            socks.append(s)
        sent = [0] * self.K
        # HELO, not NOOP: past 100 NOOPs each counts as an error (as
        # Postfix's smtpd_junk_command_limit), which would end them early.
        line = b"HELO x.example\r\n"
        chunk = line * 4000
        with RssSampler(pid) as rss:
            # Push until each has sent PUSH, or all are held by flow
            # control for a second, or 8 s are over.
            deadline = time.monotonic() + 8
            stuck_since = None
            while time.monotonic() < deadline and min(sent) < self.PUSH:
                progress = False
                for i, s in enumerate(socks):
                    if sent[i] >= self.PUSH:
                        continue
                    off = sent[i] % len(chunk)
                    try:
                        n = s.send(chunk[off:])
                    except BlockingIOError:
                        continue
                    sent[i] += n
                    progress = progress or n > 0
                if progress:
                    stuck_since = None
                else:
                    stuck_since = stuck_since or time.monotonic()
                    if time.monotonic() - stuck_since > 1.0:
                        break
                    time.sleep(0.01)
        # Others are served meanwhile.
            took, r = deliver_one(self.d.port)
        growth = rss.peak - before
        print("\nnon-readers: %d clients pushed %s MB (each tried %d MB)"
              "; daemon RSS grew by %d kB (peak)"
              % (self.K, "/".join("%.1f" % (n / MIB) for n in sent),
                 self.PUSH // MIB, growth // KIB))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertLess(took, 3.0)
        self.assertLess(max(sent), self.PUSH,
                        "the daemon took all 50 MB: no flow control")
        self.assertLess(growth, rss_limit(64 * MIB),
                        "daemon RSS grew by %d kB" % (growth // KIB))

        # The first one starts reading: it is answered, every NOOP, in
        # order, nothing lost; then QUIT.
        s = socks[0]
        s.setblocking(True)
        s.settimeout(30)
        got = []

        def reader():
            try:
                while True:
                    data = s.recv(1 << 20)
                    if not data:
                        break
                    got.append(data)
            except OSError as e:
                got.append(repr(e).encode())

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        rest = (-sent[0]) % len(line)
        s.sendall(line[len(line) - rest:] + b"QUIT\r\n")
        t.join(30)
        self.assertFalse(t.is_alive(), "no end of replies")
        data = b"".join(got)
        lines = data.split(b"\r\n")
        self.assertEqual(lines[-1], b"", data[-200:])
        self.assertTrue(lines[0].startswith(b"220 "), lines[0])
        body = lines[1:-1]
        noops = (sent[0] + rest) // len(line)
        last = body[-1]
        if last.startswith(b"221 2.0.0"):
            # Paused, not cut: every NOOP answered.
            self.assertEqual(len(body) - 1, noops)
        else:
            # Cut: 421 after some of them.
            self.assertTrue(last.startswith(b"421 "), last)
            self.assertLessEqual(len(body) - 1, noops)
        self.assertEqual(set(body[:-1]), {b"250 mx.test.example"})


@unittest.skipIf(VALGRIND, "load tests are not run under valgrind")
class MaxConnections(DaemonTestCase):
    MAX = 20
    daemon_opts = dict(max_connections=MAX)

    def test_beyond_max_connections_421(self):
        self.d.wait_connections(0)     # the start-up probe is gone
        served = [self.client() for _ in range(self.MAX)]
        for i in range(5):
            c = self.client(greet=False)
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (421, "4.7.0"),
                             "client %d: %r" % (self.MAX + 1 + i, r))
            self.assertTrue(c.closed(timeout=5), "still open after 421")
            self.assertEqual(c.buf, b"")
        for c in served:
            c.expect_ok("NOOP", 250, "2.0.0")
        for c in served[:3]:
            c.close()
        # The slots come back: three more are served, the next is not.
        deadline = time.monotonic() + 5
        back = []
        while len(back) < 3 and time.monotonic() < deadline:
            c = self.client(greet=False)
            r = c.reply()
            if r.code == 220:
                back.append(c)
            else:
                self.assertEqual((r.code, r.enhanced), (421, "4.7.0"))
                time.sleep(0.05)
        self.assertEqual(len(back), 3)
        c = self.client(greet=False)
        self.assertEqual(c.reply().code, 421)
        back[0].hello()
        r = back[0].transaction("s@x.example", ["bob@example.org"],
                                smtp_data(MSG))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)


@unittest.skipIf(VALGRIND, "load tests are not run under valgrind")
class ManyRecipients(DaemonTestCase):
    N = 100000
    MAX = 100
    daemon_opts = dict(max_recipients=MAX, debug=False)

    def test_100000_pipelined_rcpts(self):
        pid = self.d.proc.pid
        self.d.wait_connections(0)     # the start-up probe is gone
        before = rss_bytes(pid)
        batch = [b"EHLO " + HELO.encode() + b"\r\n",
                 b"MAIL FROM:<s@x.example>\r\n"]
        batch += [b"RCPT TO:<r%d@remote.example>\r\n" % i
                  for i in range(self.N)]
        batch += [b"DATA\r\n", smtp_data(MSG), b"QUIT\r\n"]
        batch = b"".join(batch)
        c = self.client()
        with RssSampler(pid) as rss:
            started = time.monotonic()
            sender = c.send_background(batch)
            chunks = [c.buf]
            c.buf = b""
            c.sock.settimeout(60)
            while True:
                data = c.sock.recv(1 << 20)
                if not data:
                    break
                chunks.append(data)
            took = time.monotonic() - started
            sender.join(10)
        growth = rss.peak - before
        print("\n%d pipelined RCPTs answered in %.1f s; daemon RSS grew by "
              "%d kB (peak)" % (self.N, took, growth // KIB))
        lines = b"".join(chunks).split(b"\r\n")
        self.assertEqual(lines[-1], b"")
        lines = lines[:-1]
        # EHLO: 250-... lines, then "250 HELP" (or whatever is last).
        k = 0
        while lines[k].startswith(b"250-"):
            k += 1
        self.assertTrue(lines[k].startswith(b"250 "), lines[k])
        codes = [l[:9] for l in lines[k + 1:]]
        want = ([b"250 2.1.0"] + [b"250 2.1.5"] * self.MAX +
                [b"452 4.5.3"] * (self.N - self.MAX) +
                [b"354 End d", b"250 2.0.0", b"221 2.0.0"])
        self.assertEqual(len(codes), len(want))
        bad = [(i, a, b_) for i, (a, b_) in enumerate(zip(codes, want))
               if a != b_]
        self.assertEqual(bad[:5], [], "%d replies out of place" % len(bad))
        self.assertLess(growth, rss_limit(16 * MIB),
                        "daemon RSS grew by %d kB" % (growth // KIB))
        # One queue file, naming exactly the first MAX recipients.
        names = self.d.queue_files("remote.example")
        self.assertEqual(len(names), 1, names)
        data = self.d.read_queue("remote.example", names[0])
        env = [l for l in data.split(b"\n")[:self.MAX + 2]
               if l.startswith(b"X-Envelope-To: ")]
        self.assertEqual(env, [b"X-Envelope-To: <r%d@remote.example>" % i
                               for i in range(self.MAX)])
        self.assertTrue(data.endswith(b"\n" + MSG))


if __name__ == "__main__":
    unittest.main()
