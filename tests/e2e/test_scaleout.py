"""test_scaleout - several pollsmtpd hosts on one Maildir tree (scale-out).

Every daemon has its own hostname and its own loopback address
(127.0.0.2, .3, ...) and all share one tree, as hosts behind equal MX
records share one NFS export (doc/scale-out.md):

- two receiving daemons take 2 x 2,000 messages at once: every copy lands
  once, in names of the host that took it, and nothing collides;
- two delivery agents drain one queue of 2,000 letters into an SMTP sink
  on 127.0.0.4 (delivery.relayhost, so no DNS): each letter arrives once
  (counted by Message-ID); one host is killed with -9 (daemon and agent)
  while it holds claims: the other takes them back after claim_timeout
  and finishes them, nothing is lost;
- maildir-inspect names the holder of a claim and reports a stale one.

E2E_NFS_ROOT=DIR (a directory on an NFS mount) runs the two-host tests
with the tree there too; without it those runs skip, saying why (no NFS
client in this kernel, for one). Counts are lower under valgrind.
"""

import collections
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest
import shutil

import harness
from harness import Daemon, SLOW, VALGRIND

COUNT = 200 if VALGRIND else 2000
CLAIM_TIMEOUT = 3
HERE = os.path.dirname(os.path.abspath(__file__))


def inspect_path():
    path = os.environ.get("MAILDIR_INSPECT")
    if not path:
        path = os.path.join(HERE, "..", "..", "src", "maildir-inspect",
                            "maildir-inspect")
    return os.path.abspath(path)


def wait_until(predicate, timeout, what, log=None):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s%s" % (
                what, "; log:\n" + log() if log else ""))
        time.sleep(0.05)


def nfs_reason():
    """None when E2E_NFS_ROOT names a directory on NFS, else why not."""
    root = os.environ.get("E2E_NFS_ROOT")
    with open("/proc/filesystems") as f:
        kinds = f.read().split()
    if root is None:
        if "nfs" not in kinds and "nfs4" not in kinds:
            return ("no NFS client in this kernel (nfs/nfs4 not in "
                    "/proc/filesystems, no modules to load): set "
                    "E2E_NFS_ROOT to a directory on an NFS mount elsewhere")
        return "E2E_NFS_ROOT is not set (a directory on an NFS mount)"
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2].startswith("nfs") and \
                    os.path.realpath(root).startswith(fields[1]):
                return None
    return "E2E_NFS_ROOT=%s is not on an NFS mount" % root


def make_base(nfs):
    """A directory for one test's shared tree (on NFS when asked)."""
    parent = os.environ.get("E2E_NFS_ROOT") if nfs else \
        (os.environ.get("E2E_TMPDIR") or None)
    base = tempfile.mkdtemp(prefix="pollsmtpd-scale-", dir=parent)
    os.chmod(base, 0o711)
    return base


# -- SMTP clients ----------------------------------------------------------

class Sender:
    """Sends messages over one connection, each with its own
    Message-ID, PIPELINING the envelope."""

    def __init__(self, addr, port):
        self.sock = socket.create_connection((addr, port),
                                             timeout=30 * SLOW)
        self.f = self.sock.makefile("rb")
        self.reply(220)
        self.sock.sendall(b"EHLO sender.test\r\n")
        self.reply(250)

    def reply(self, code):
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("connection closed, %d expected"
                                     % code)
            if line[3:4] != b"-":
                break
        if int(line[:3]) != code:
            raise AssertionError("%r, %d expected" % (line, code))
        return line

    def send(self, msgid, rcpts):
        cmds = [b"MAIL FROM:<alice@example.org>\r\n"]
        cmds += [b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts]
        cmds.append(b"DATA\r\n")
        self.sock.sendall(b"".join(cmds))
        self.reply(250)
        for _ in rcpts:
            self.reply(250)
        self.reply(354)
        self.sock.sendall(b"Message-ID: <%s>\r\nSubject: scale-out\r\n\r\n"
                          b"body of %s\r\n.\r\n" % (msgid.encode(),
                                                    msgid.encode()))
        self.reply(250)

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply(221)
        finally:
            self.f.close()
            self.sock.close()


def send_many(daemon, prefix, count, rcpts, conns=4, errors=None):
    """count messages to daemon over conns connections at once; the
    Message-IDs are PREFIX.N@scale.test."""
    def run(k):
        try:
            s = Sender(daemon.opts["address"], daemon.port)
            for n in range(k, count, conns):
                s.send("%s.%d@scale.test" % (prefix, n), rcpts)
            s.close()
        except Exception as e:          # reported by the caller
            errors.append("%s: %r" % (prefix, e))
    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    return threads


def message_id(path):
    with open(path, "rb") as f:
        m = re.search(rb"^Message-ID: <([^>]*)>", f.read(), re.M | re.I)
    return m.group(1).decode() if m else None


# -- the destination -------------------------------------------------------

class Sink:
    """An SMTP server on 127.0.0.4 that counts letters by Message-ID and
    by the EHLO name (the sending host). stall(host) makes it hold the
    reply to the final dot of that host's letters until the connection
    drops: they are never accepted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids = collections.Counter()
        self.by_host = collections.Counter()
        self.open = collections.Counter()
        self.stalled = collections.Counter()
        self.stall_host = None
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sink.serve(self)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.4", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def stall(self, host):
        with self.lock:
            self.stall_host = host

    def serve(self, h):
        host = None

        def send(line):
            h.wfile.write(line.encode() + b"\r\n")
            h.wfile.flush()
        try:
            send("220 sink.test ESMTP")
            while True:
                line = h.rfile.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    if host is None:
                        host = line[5:].strip().decode()
                        with self.lock:
                            self.open[host] += 1
                    send("250 sink.test")
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    send("250 ok")
                elif verb == b"DATA":
                    send("354 go on")
                    msgid = None
                    while True:
                        t = h.rfile.readline()
                        if not t or t == b".\r\n":
                            break
                        m = re.match(rb"Message-ID: <([^>]*)>", t, re.I)
                        if m and msgid is None:
                            msgid = m.group(1).decode()
                    if not t:
                        return
                    with self.lock:
                        stall = host == self.stall_host
                        if stall:
                            self.stalled[host] += 1
                        else:
                            self.ids[msgid] += 1
                            self.by_host[host] += 1
                    if stall:
                        # Never answered: wait for the connection to drop.
                        while h.connection.recv(4096):
                            pass
                        return
                    send("250 2.0.0 accepted")
                elif verb == b"QUIT":
                    send("221 bye")
                    return
                else:
                    send("502 what")
        except OSError:
            return
        finally:
            if host is not None:
                with self.lock:
                    self.open[host] -= 1
                    if host == self.stall_host and self.stalled[host]:
                        self.stalled[host] -= 1

    def total(self):
        with self.lock:
            return sum(self.ids.values())


# -- the tests -------------------------------------------------------------

class ScaleOut(unittest.TestCase):
    nfs = False

    def setUp(self):
        if self.nfs:
            reason = nfs_reason()
            if reason:
                self.skipTest(reason)
        self.base = make_base(self.nfs)
        self.root = os.path.join(self.base, "root")
        self.daemons = []
        self.ok = False

    def tearDown(self):
        for d in self.daemons:
            if d.proc is not None:
                d.stop(remove=self.ok)
        if self.ok:
            shutil.rmtree(self.base, ignore_errors=True)

    def daemon(self, host, address, **opts):
        opts.setdefault("debug", False)
        opts.setdefault("fsync", False)
        d = Daemon(hostname=host, address=address, root=self.root,
                   domains=["example.org"], users=["alice"],
                   relay_networks=["127.0.0.0/8"], **opts)
        d.start()
        self.daemons.append(d)
        return d

    def log(self):
        return "\n".join("== %s\n%s" % (d.opts["hostname"], d.log_tail(30))
                         for d in self.daemons)


class TestTwoReceivers(ScaleOut):

    def test_two_hosts_receive_at_once(self):
        """2 x COUNT messages (each for a local user and a remote domain)
        into two daemons on one tree at once: each copy lands once, named
        by its host; each host has its own lock; tmp/ is empty."""
        # Leftovers of a crash of each host, and a file of a host that
        # lives on: each daemon removes only its own.
        for sub in ("alice/tmp", ".OTHER_SERVERS/.tmp"):
            os.makedirs(os.path.join(self.root, sub))
        for host in ("rx1.test", "rx2.test", "rx3.test"):
            with open(os.path.join(self.root, "alice/tmp",
                                   "1.LEFT1.%s" % host), "w") as f:
                f.write("x")
        harness.give_to_daemon_user(self.base)
        rx1 = self.daemon("rx1.test", "127.0.0.2")
        tmp = os.path.join(self.root, "alice/tmp")
        wait_until(lambda: "1.LEFT1.rx1.test" not in os.listdir(tmp), 10,
                   "rx1 cleaning its tmp/", self.log)
        self.assertIn("1.LEFT1.rx2.test", os.listdir(tmp))
        rx2 = self.daemon("rx2.test", "127.0.0.3")
        wait_until(lambda: "1.LEFT1.rx2.test" not in os.listdir(tmp), 10,
                   "rx2 cleaning its tmp/", self.log)
        self.assertEqual(os.listdir(tmp), ["1.LEFT1.rx3.test"])
        os.unlink(os.path.join(tmp, "1.LEFT1.rx3.test"))
        self.assertEqual(sorted(n for n in os.listdir(self.root)
                                if n.startswith(".lock.")),
                         [".lock.rx1.test", ".lock.rx2.test"])

        errors = []
        rcpts = ["alice@example.org", "bob@remote.test"]
        started = time.monotonic()
        threads = send_many(rx1, "rx1", COUNT, rcpts, errors=errors) + \
            send_many(rx2, "rx2", COUNT, rcpts, errors=errors)
        for t in threads:
            t.join(300 * SLOW)
        elapsed = time.monotonic() - started
        self.assertEqual(errors, [])
        print("\n%d messages (%d files) through two hosts in %.1f s" % (
            2 * COUNT, 4 * COUNT, elapsed))

        want = set("%s.%d@scale.test" % (p, n) for p in ("rx1", "rx2")
                   for n in range(COUNT))
        for d in (os.path.join(self.root, "alice/new"),
                  os.path.join(self.root, ".OTHER_SERVERS/remote.test")):
            names = [n for n in os.listdir(d)
                     if os.path.isfile(os.path.join(d, n))]
            self.assertEqual(len(names), 2 * COUNT, d)
            ids = collections.Counter(message_id(os.path.join(d, n))
                                      for n in names)
            self.assertEqual(set(ids), want, d)
            self.assertEqual(max(ids.values()), 1, d)
            for n in names:
                msgid = message_id(os.path.join(d, n))
                host = msgid.split(".")[0] + ".test"
                self.assertTrue(n.endswith("." + host), (n, msgid))
        for sub in ("alice/tmp", ".OTHER_SERVERS/.tmp"):
            self.assertEqual(os.listdir(os.path.join(self.root, sub)), [])
        for d in list(self.daemons):
            d.stop()
        self.ok = True


class TestTwoAgents(ScaleOut):

    def setUp(self):
        super().setUp()
        self.sink = Sink()

    def tearDown(self):
        super().tearDown()
        self.sink.stop()

    def agent(self, host, address):
        return self.daemon(host, address, delivery={
            "enabled": "true",
            "relayhost": harness.conf_string("[127.0.0.4]:%d"
                                             % self.sink.port),
            "claim_timeout": str(CLAIM_TIMEOUT),
            "retry_first": "1",
            "retry_max": "2",
        })

    def queue(self):
        d = os.path.join(self.root, ".OTHER_SERVERS", "remote.test")
        return sorted(n for n in os.listdir(d)
                      if os.path.isfile(os.path.join(d, n)))

    def claims(self):
        d = os.path.join(self.root, ".OTHER_SERVERS", "remote.test",
                         ".claim")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def inspect(self, daemon, *args):
        r = subprocess.run([inspect_path(), "-c", daemon.conf_path] +
                           list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60 * SLOW)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def kill_host(self, d):
        """kill -9 the daemon and its children (agent, logger), the
        daemon stopped first so that it restarts no agent."""
        pid = d.proc.pid
        os.kill(pid, signal.SIGSTOP)
        for child in harness.children_of(pid):
            os.kill(child, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        d.proc.wait(10)
        d.proc = None

    @unittest.skipIf(VALGRIND, "two agents racing under load and a kill "
                     "-9 timed against claim_timeout: a load test, not run "
                     "under valgrind like the others")
    def test_two_agents_one_queue_one_killed(self):
        """COUNT letters, two agents: each letter arrives once; agent A is
        killed -9 holding claims; B takes them back after claim_timeout;
        nothing is lost, the queue ends empty."""
        harness.give_to_daemon_user(self.base)
        rx = self.daemon("rx.test", "127.0.0.5")
        errors = []
        for t in send_many(rx, "q", COUNT, ["bob@remote.test"],
                           errors=errors):
            t.join(300 * SLOW)
        self.assertEqual(errors, [])
        rx.stop()
        self.daemons.remove(rx)
        self.assertEqual(len(self.queue()), COUNT)

        started = time.monotonic()
        a = self.agent("agent-a.test", "127.0.0.2")
        b = self.agent("agent-b.test", "127.0.0.3")
        # Midway, A's letters are held at the final dot; A is killed
        # once every session of its holds one (so none is between the
        # sink's 250 and its claim's removal).
        wait_until(lambda: self.sink.total() >= COUNT * 3 // 10, 120,
                   "a third delivered", self.log)
        self.sink.stall("agent-a.test")

        def a_quiet():
            with self.sink.lock:
                return self.sink.stalled["agent-a.test"] >= 1 and \
                    self.sink.stalled["agent-a.test"] == \
                    self.sink.open["agent-a.test"]
        wait_until(a_quiet, 60, "every session of A stalled", self.log)
        held = [c for c in self.claims() if c.endswith(":agent-a.test")]
        self.assertTrue(held, self.claims())
        # Alive, A renews what it holds: B leaves it alone well past
        # claim_timeout.
        claim_dir = os.path.join(self.root, ".OTHER_SERVERS/remote.test/"
                                 ".claim")
        quiet_until = time.monotonic() + CLAIM_TIMEOUT + 2
        while time.monotonic() < quiet_until:
            self.assertTrue(set(held) <= set(self.claims()),
                            "B took a live host's claims: %s" % b.log_tail())
            time.sleep(0.1)
        self.assertNotIn("agent-a.test (timed out)", b.log())
        # maildir-inspect names the holder of each claim and since when.
        rc, out, err = self.inspect(b, "--json", "list", "remote.test")
        self.assertEqual(rc, 0, err)
        listed = json.loads(out)["letters"]
        by_a = [x for x in listed if x["claimed_by"] == "agent-a.test"]
        self.assertTrue(by_a, listed[:3])
        for x in by_a:
            self.assertTrue(x["claimed"])
            self.assertLessEqual(abs(x["claimed_since"] - time.time()),
                                 CLAIM_TIMEOUT + 5)
        last_renewal = max(os.stat(os.path.join(claim_dir, c)).st_ctime
                           for c in held)
        self.kill_host(a)
        delivered_by_a = self.sink.by_host["agent-a.test"]
        # Taken back no earlier than claim_timeout after the last sign
        # of life, and soon after it (a sweep a second at most later).
        wait_until(lambda: not set(held) & set(self.claims()),
                   CLAIM_TIMEOUT + 10, "A's claims taken back", self.log)
        gone = time.time()
        self.assertGreaterEqual(gone - last_renewal, CLAIM_TIMEOUT - 0.05)
        if not VALGRIND:
            self.assertLess(gone - last_renewal, CLAIM_TIMEOUT + 3)

        # B finishes everything, A's claims included, after the timeout.
        wait_until(lambda: self.sink.total() >= COUNT and
                   not self.queue() and not self.claims(), 120,
                   "every letter delivered", self.log)
        elapsed = time.monotonic() - started
        self.assertIn("(timed out)", b.log())
        took = [ln for ln in b.log().splitlines()
                if "took back the claim" in ln and "agent-a.test" in ln]
        self.assertTrue(took, b.log_tail())
        with self.sink.lock:
            ids = dict(self.sink.ids)
        want = set("q.%d@scale.test" % n for n in range(COUNT))
        self.assertEqual(set(ids), want)
        dups = sorted(k for k, v in ids.items() if v != 1)
        self.assertEqual(dups, [])
        self.assertGreater(delivered_by_a, 0)
        self.assertGreater(self.sink.by_host["agent-b.test"], 0)
        state = os.path.join(self.root, ".OTHER_SERVERS/remote.test/.state")
        self.assertEqual(os.listdir(state) if os.path.isdir(state) else [],
                         [])
        self.assertEqual(os.listdir(os.path.join(
            self.root, ".OTHER_SERVERS/remote.test/error")), [])
        print("\n%d letters, two agents, one killed: %.1f s (A sent %d "
              "before it died, B %d, %d claims taken back)" % (
                  COUNT, elapsed, delivered_by_a,
                  self.sink.by_host["agent-b.test"], len(took)))
        b.stop()
        self.daemons.remove(b)
        self.ok = True

    def test_inspect_stale_claim(self):
        """A claim of a host that is gone: list shows who holds it and
        since when; check says nothing while it is fresh, then reports
        it as stale-claim (exit 1) once claim_timeout has passed."""
        harness.give_to_daemon_user(self.base)
        rx = self.daemon("rx.test", "127.0.0.5", delivery={
            "enabled": "false", "claim_timeout": str(CLAIM_TIMEOUT)})
        errors = []
        for t in send_many(rx, "one", 1, ["bob@remote.test"], conns=1,
                           errors=errors):
            t.join(60 * SLOW)
        self.assertEqual(errors, [])
        name = self.queue()[0]
        d = os.path.join(self.root, ".OTHER_SERVERS", "remote.test")
        os.makedirs(os.path.join(d, ".claim"))
        os.rename(os.path.join(d, name),
                  os.path.join(d, ".claim", name + ":gone.test"))
        claimed = time.time()
        rc, out, err = self.inspect(rx, "--json", "list")
        self.assertEqual(rc, 0, err)
        (x,) = json.loads(out)["letters"]
        self.assertEqual((x["claimed"], x["claimed_by"]),
                         (True, "gone.test"))
        self.assertLessEqual(abs(x["claimed_since"] - claimed), 2)
        rc, out, err = self.inspect(rx, "list")
        self.assertRegex(out, r"\(claimed by gone\.test since "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, \w+ ago\)")
        rc, out, err = self.inspect(rx, "check")
        self.assertEqual((rc, out.splitlines()[-1]),
                         (0, "no problems (1 letters checked)"), out)

        def stale():
            return self.inspect(rx, "--json", "check")
        r = wait_until(lambda: (lambda t: t if t[0] == 1 else None)(
            stale()), CLAIM_TIMEOUT + 5, "check to see the stale claim")
        problems = json.loads(r[1])["problems"]
        self.assertEqual([p["kind"] for p in problems], ["stale-claim"])
        self.assertEqual(problems[0]["path"], ".OTHER_SERVERS/remote.test/"
                         ".claim/%s:gone.test" % name)
        self.assertIn("claimed by gone.test since ", problems[0]["detail"])
        rc, out, err = self.inspect(rx, "check")
        self.assertEqual(rc, 1)
        self.assertIn("stale-claim: .OTHER_SERVERS/remote.test/.claim/", out)
        rx.stop()
        self.daemons.remove(rx)
        self.ok = True


class TestTwoReceiversNfs(TestTwoReceivers):
    nfs = True


class TestTwoAgentsNfs(TestTwoAgents):
    nfs = True

    def test_inspect_stale_claim(self):
        self.skipTest("the same on NFS: run once, on the local tree")


if __name__ == "__main__":
    unittest.main(verbosity=2)
