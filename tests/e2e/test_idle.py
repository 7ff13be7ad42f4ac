"""test_idle - 2,000 idle connections while a client delivers.

The event loop stops polling a descriptor that has been idle for a while
(it goes "quiet": signal-driven I/O tells the loop when it is ready
again; lib/event.c). These tests check what a user sees of that: with
2,000 greeted, idle connections that the daemon has made quiet (O_ASYNC
on its side of each, read from /proc/PID/fdinfo), a client delivers
messages that land whole on disk, and every idle connection that then
speaks gets its answer: NOOP -> 250, all at once and one after another,
and a QUIT -> 221 and a closed connection at the end.

Bounded in count and time: every wait has a deadline (longer under
valgrind); how fast the answers come is measured by `make bench`
(bench/idle.py), not asserted here.
"""

import os
import resource
import selectors
import socket
import threading
import time
import unittest

from harness import Client, DaemonTestCase, SLOW, smtp_data

N = 2000
MESSAGES = 20
DEADLINE = 60 * SLOW
O_ASYNC = 0o20000           # <asm-generic/fcntl.h> FASYNC


def raise_nofile(want):
    """Raise the soft descriptor limit to want (if the hard one allows);
    return the old limits."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = old
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError):
            pass
    return old


def quiet_sockets(pid):
    """How many of pid's sockets have O_ASYNC set (the loop's quiet ones)."""
    count = 0
    fddir = "/proc/%d/fd" % pid
    for name in os.listdir(fddir):
        try:
            if not os.readlink(os.path.join(fddir, name)).startswith(
                    "socket:"):
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, name)) as f:
                for line in f:
                    if line.startswith("flags:"):
                        if int(line.split()[1], 8) & O_ASYNC:
                            count += 1
                        break
        except OSError:
            continue            # closed meanwhile
    return count


def body(i):
    return (b"From: <sender@x.example>\nSubject: beside the idle %d\n\n"
            % i + b"line of message %d\n" % i * 30)


@unittest.skipUnless(os.path.isdir("/proc/self/fdinfo"), "needs /proc")
class IdleConnections(DaemonTestCase):
    NOFILE = N + 300
    daemon_opts = dict(max_connections=N + 100, debug=False)

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
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft != resource.RLIM_INFINITY and soft < self.NOFILE:
            self.skipTest("cannot raise RLIMIT_NOFILE to %d (have %d)"
                          % (self.NOFILE, soft))
        super().setUp()

    # -- helpers ------------------------------------------------------
    def open_idle(self, n):
        """n connections, each greeted with 220; returned non-blocking."""
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.d.port),
                                         timeout=10 * SLOW)
            s.setblocking(False)
            socks.append(s)
        got = self.replies_from(socks, "greeting")
        for s in socks:
            self.assertTrue(got[s].startswith(b"220 "), got[s][:80])
        return socks

    def replies_from(self, socks, what):
        """Read one reply line from each socket; {sock: bytes}."""
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)
        pending = {}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
        done = {}
        deadline = time.monotonic() + DEADLINE
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(4096)
                pending[s] += data
                if b"\r\n" in pending[s] or not data:
                    sel.unregister(s)
                    done[s] = pending.pop(s)
        sel.close()
        self.assertEqual(len(pending), 0, "%d of %d idle clients got no %s"
                         " in %d s" % (len(pending), len(socks), what,
                                       DEADLINE))
        return done

    def wait_quiet(self, want):
        """Poll /proc until the daemon has made want sockets quiet."""
        pid = self.d.proc.pid
        deadline = time.monotonic() + 30 * SLOW
        n = quiet_sockets(pid)
        while n < want and time.monotonic() < deadline:
            time.sleep(0.1)
            n = quiet_sockets(pid)
        self.assertGreaterEqual(n, want, "only %d of the daemon's sockets "
                                "went quiet" % n)

    def deliver(self, results):
        """MESSAGES transactions on one connection; replies to results."""
        try:
            with Client(("127.0.0.1", self.d.port),
                        timeout=DEADLINE) as c:
                c.expect(220)
                c.hello()
                for i in range(MESSAGES):
                    r = c.transaction("sender@x.example",
                                      ["alice@example.org"],
                                      smtp_data(body(i)))
                    results.append(r)
                c.expect_ok("QUIT", 221, "2.0.0")
        except BaseException as e:  # reported by the test
            results.append(e)

    # -- the test -----------------------------------------------------
    def test_2000_idle_answered_while_a_client_delivers(self):
        socks = self.open_idle(N)
        # Most are quiet now: not polled, woken by the kernel's signal.
        self.wait_quiet(N * 9 // 10)

        # A client delivers; meanwhile every idle one says NOOP at once.
        results = []
        t = threading.Thread(target=self.deliver, args=(results,),
                             daemon=True)
        t.start()
        for s in socks:
            s.sendall(b"NOOP\r\n")
        got = self.replies_from(socks, "reply to NOOP")
        t.join(DEADLINE)
        self.assertFalse(t.is_alive(), "the delivering client is stuck")
        for s in socks:
            self.assertTrue(got[s].startswith(b"250 "), got[s][:80])
        self.assertEqual(len(results), MESSAGES, results[-1:])
        for r in results:
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)

        # Every message is on disk, whole.
        files = self.d.wait_for(
            lambda: len(self.d.files("alice")) >= MESSAGES and
            self.d.files("alice"), timeout=10)
        self.assertEqual(len(files), MESSAGES)
        texts = [self.d.read("alice", f) for f in files]
        for i in range(MESSAGES):
            self.assertEqual(sum(1 for t_ in texts if t_.endswith(body(i))),
                             1, "message %d not stored exactly once" % i)

        # Quiet again, then one at a time: each is answered alone.
        self.wait_quiet(N * 9 // 10)
        for s in socks[::20]:
            s.sendall(b"NOOP\r\n")
            reply = self.replies_from([s], "reply to a lone NOOP")[s]
            self.assertTrue(reply.startswith(b"250 "), reply[:80])

        # The last word: QUIT is answered and the connection closed.
        last = socks[-1]
        last.sendall(b"QUIT\r\n")
        reply = self.replies_from([last], "reply to QUIT")[last]
        self.assertTrue(reply.startswith(b"221 "), reply[:80])
        last.setblocking(True)
        last.settimeout(10 * SLOW)
        self.assertEqual(last.recv(4096), b"")


if __name__ == "__main__":
    unittest.main()
